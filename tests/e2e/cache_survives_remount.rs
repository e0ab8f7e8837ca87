//! A user reads a dataset through a mount with `-o cache_dir=`, unmounts (or reboots) and mounts
//! again: reading it again costs no GetObject, its blocks come from the disk cache. When the object
//! changes behind the mount's back, the next mount serves the new content, never the old blocks. In a
//! multi-user mount the blocks on disk stay each user's own across remounts.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::system::{UnixUser, tag};
use crate::support::{self, s3_put, sha, text, unique_dir};
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
    assert_eq!(blocks_dir.permissions().mode() & 0o777, 0o700);
    let _ = std::fs::remove_dir_all(&dir);
    stack.shutdown().await;
}

/// Mounts `-o multiuser` with a cache_dir (as root, served in the background), waiting for it.
async fn mount_multiuser(stack: &ssofs_devstack::Running, dir: &std::path::Path) -> String {
    let m = dir.join("mnt").to_str().unwrap().to_string();
    let options =
        format!("multiuser,cache_dir={},state_dir={}", dir.join("cache").display(), dir.join("root-state").display());
    let out = tokio::task::block_in_place(|| support::ssofs_cli(stack, dir, &["mount", &m, "-o", &options]));
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !support::is_mounted(&dir.join("mnt")) {
        assert!(Instant::now() < deadline, "not mounted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    m
}

/// Unmounts and waits for the serving process to exit (it holds the cache directory until then).
async fn unmount_multiuser(stack: &ssofs_devstack::Running, dir: &std::path::Path, m: &str) {
    let pid = support::server_pid(std::path::Path::new(m));
    let out = tokio::task::block_in_place(|| support::ssofs_cli(stack, dir, &["unmount", m]));
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(60);
    while pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}/exe")).exists()) {
        assert!(Instant::now() < deadline, "the mount process did not exit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GetObjects the dataset costs when `user` reads it through the multi-user mount `m`.
async fn read_as(stack: &ssofs_devstack::Running, user: &UnixUser, m: &str, want: &str) -> usize {
    let before = request_count(stack).await;
    let out = tokio::task::block_in_place(|| user.run(&format!("sha256sum {m}/{BUCKET}/{KEY}")));
    assert!(text(&out).starts_with(want), "{} reads the dataset: {}", user.name, text(&out));
    gets_since(stack, before).await
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_multiuser_mount_each_user_gets_only_the_blocks_they_fetched_also_after_a_remount() {
    let stack = start_stack().await;
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = PathBuf::from(format!("/tmp/ssofs-mupcache-{}-{n}", std::process::id()));
    std::fs::create_dir_all(dir.join("mnt")).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let homes = PathBuf::from("/tmp/ssofs-mupcache-homes");
    let tag = tag();
    let (ann, bob) = (UnixUser::create(&format!("pca{tag}"), &homes), UnixUser::create(&format!("pcb{tag}"), &homes));
    // The same Azure AD account for both: only the Unix identity tells their blocks apart.
    ann.sign_in(&stack, "alice").await;
    bob.sign_in(&stack, "alice").await;
    let body: Vec<u8> = (0..16usize << 20).map(|i| (i % 239) as u8).collect();
    s3_put(&stack, BUCKET, KEY, body.clone()).await;
    let want = sha(&body);

    let m = mount_multiuser(&stack, &dir).await;
    assert!(read_as(&stack, &ann, &m, &want).await > 0, "ann's first read fetches the dataset");
    unmount_multiuser(&stack, &dir, &m).await;

    let m = mount_multiuser(&stack, &dir).await;
    assert_eq!(read_as(&stack, &ann, &m, &want).await, 0, "ann's blocks are on disk for her after the remount");
    assert!(read_as(&stack, &bob, &m, &want).await > 0, "bob is never served ann's blocks: he fetches his own");
    unmount_multiuser(&stack, &dir, &m).await;

    let blocks = dir.join("cache/blocks");
    let meta = std::fs::metadata(&blocks).unwrap();
    assert_eq!((meta.uid(), meta.permissions().mode() & 0o777), (0, 0o700), "root's, private");
    for e in std::fs::read_dir(&blocks).unwrap() {
        let meta = e.unwrap().metadata().unwrap();
        assert_eq!((meta.uid(), meta.permissions().mode() & 0o777), (0, 0o600));
    }
    let _ = std::fs::remove_dir_all(&dir);
    stack.shutdown().await;
}
