//! A user reads a dataset through a mount with `-o cache_dir=`, unmounts (or reboots) and mounts
//! again: reading it again costs no GetObject, its blocks come from the disk cache. When the object
//! changes behind the mount's back, the next mount serves the new content, never the old blocks.

use std::time::Duration;

use crate::support::{self, s3_put, sha, unique_dir};
use ssofs::mount::MountOptions;

const BUCKET: &str = "analytics-raw";
const KEY: &str = "datasets/remount.bin";
const MIB: usize = 64;

async fn start_stack() -> ssofs_devstack::Running {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let mut cfg = ssofs_devstack::Config::new(std::env::temp_dir().join(format!("ssofs-stack-pcache-{n}")));
    cfg.device_code_interval = Duration::from_secs(1);
    ssofs_devstack::start(cfg).await.unwrap()
}

async fn request_count(stack: &ssofs_devstack::Running) -> u64 {
    let url = format!("{}/requests/count", stack.control_url);
    let v: serde_json::Value = support::control_client(stack).get(url).send().await.unwrap().json().await.unwrap();
    v["count"].as_u64().unwrap()
}

/// GetObject requests for the dataset since the `since`th record of the devstack's log.
async fn gets_since(stack: &ssofs_devstack::Running, since: u64) -> usize {
    let url = format!("{}/requests?since={since}", stack.control_url);
    let log: Vec<serde_json::Value> =
        support::control_client(stack).get(url).send().await.unwrap().json().await.unwrap();
    log.iter().filter(|r| r["op"] == "GetObject" && r["path"].as_str().unwrap_or("").ends_with(KEY)).count()
}

/// Mounts (cache_dir is `dir/cache`, as every test mount has), reads the dataset through it,
/// unmounts; the dataset's SHA-256 and the GetObject requests the read cost.
async fn read_through_a_mount(stack: &ssofs_devstack::Running, dir: &std::path::Path) -> (String, usize) {
    let m = support::mount_as(stack, "alice", dir, MountOptions::default()).await;
    let before = request_count(stack).await;
    let path = m.path(&format!("{BUCKET}/{KEY}"));
    let data = tokio::task::spawn_blocking(move || std::fs::read(path).unwrap()).await.unwrap();
    let gets = gets_since(stack, before).await;
    tokio::task::spawn_blocking(move || m.unmount()).await.unwrap();
    (sha(&data), gets)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dataset_read_before_a_remount_is_read_from_disk_until_it_changes() {
    let stack = start_stack().await;
    let dir = unique_dir("pcache");
    let first: Vec<u8> = (0..MIB << 20).map(|i| (i % 253) as u8).collect();
    s3_put(&stack, BUCKET, KEY, first.clone()).await;

    let (got, gets) = read_through_a_mount(&stack, &dir).await;
    assert_eq!(got, sha(&first));
    assert!(gets > 0, "the first read fetches the object");

    let (got, gets) = read_through_a_mount(&stack, &dir).await;
    assert_eq!(got, sha(&first), "the same content after the remount");
    assert_eq!(gets, 0, "after a remount the dataset comes from the disk cache, no GetObject");

    // Another writer replaces it (new ETag): the old blocks must never be served.
    let second: Vec<u8> = (0..MIB << 20).map(|i| (i % 241) as u8 ^ 0x5a).collect();
    s3_put(&stack, BUCKET, KEY, second.clone()).await;
    let (got, gets) = read_through_a_mount(&stack, &dir).await;
    assert_eq!(got, sha(&second), "the new content, not the cached blocks of the old version");
    assert!(gets > 0, "the new version is fetched");

    let cache = std::fs::read_dir(dir.join("cache/blocks")).unwrap().count();
    assert!(cache > 64, "the blocks are kept on disk: {cache} files");
    let blocks_dir = std::fs::metadata(dir.join("cache/blocks")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(blocks_dir.permissions().mode() & 0o777, 0o700);
    let _ = std::fs::remove_dir_all(&dir);
    stack.shutdown().await;
}
