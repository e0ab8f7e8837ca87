//! A big file written in order goes up to S3 in parts while it is written, so close waits only
//! for the tail; killing ssofs mid-write or an S3 outage mid-upload loses nothing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{self, root_s3, sha, text, unique_dir};
use ssofs::mount::MountOptions;

const MIB: usize = 1 << 20;
const BUCKET: &str = "analytics-raw";

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 24) as u8).collect()
}

/// The S3 requests the devstack logged from index `since` on, as (operation, HTTP status).
async fn requests(stack: &ssofs_devstack::Running, since: usize) -> Vec<(String, u64)> {
    let url = format!("{}/requests?since={since}", stack.control_url);
    let log: Vec<serde_json::Value> = reqwest::get(url).await.unwrap().json().await.unwrap();
    log.iter().map(|r| (r["op"].as_str().unwrap_or("").to_string(), r["status"].as_u64().unwrap_or(0))).collect()
}

async fn request_count(stack: &ssofs_devstack::Running) -> usize {
    let url = format!("{}/requests/count", stack.control_url);
    let v: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    v["count"].as_u64().unwrap() as usize
}

async fn fault(stack: &ssofs_devstack::Running, pairs: &[(&str, &str)]) {
    let resp = reqwest::Client::new().post(format!("{}/faults", stack.control_url)).form(pairs).send().await.unwrap();
    assert!(resp.status().is_success(), "fault {pairs:?}");
}

/// Waits until the devstack has stored at least `n` parts (UploadPart answered 200) since `since`;
/// the test fails when that never happens (the file was not streamed).
async fn until_parts_stored(stack: &ssofs_devstack::Running, since: usize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = requests(stack, since).await;
        if log.iter().filter(|(op, status)| op == "UploadPart" && *status == 200).count() >= n {
            return;
        }
        assert!(Instant::now() < deadline, "no UploadPart while the file is still open: {log:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes `data` to `file` in 1 MiB writes, in order.
fn write_in_order(file: &mut std::fs::File, data: &[u8]) {
    tokio::task::block_in_place(|| data.chunks(MIB).for_each(|c| file.write_all(c).unwrap()));
}

async fn object(stack: &ssofs_devstack::Running, key: &str) -> Vec<u8> {
    support::s3_get(stack, BUCKET, key).await
}

/// Multipart uploads the server still holds for `key`: none once an upload is over.
async fn open_uploads(stack: &ssofs_devstack::Running, key: &str) -> usize {
    let out = root_s3(stack).list_multipart_uploads().bucket(BUCKET).prefix(key).send().await.unwrap();
    out.uploads().len()
}

async fn devstack(dir: &Path) -> ssofs_devstack::Running {
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.auto_approve = Some("alice".into());
    cfg.device_code_interval = Duration::from_secs(1);
    ssofs_devstack::start(cfg).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_written_in_order_is_uploaded_in_parts_before_close_and_whole_after() {
    let dir = unique_dir("stream-seq");
    let stack = devstack(&dir).await;
    let mount = support::mount_as(&stack, "alice", &dir, MountOptions::default()).await;
    let data = pattern(64 * MIB, 1);
    let since = request_count(&stack).await;
    let mut file = tokio::task::block_in_place(|| std::fs::File::create(mount.path("analytics-raw/seq.bin")).unwrap());
    write_in_order(&mut file, &data);
    until_parts_stored(&stack, since, 3).await;
    let at_close = request_count(&stack).await;
    let closed = Instant::now();
    tokio::task::block_in_place(|| drop(file));
    let close_ms = closed.elapsed().as_millis();
    let before: Vec<String> = requests(&stack, since).await[..at_close - since].iter().map(|r| r.0.clone()).collect();
    let after: Vec<String> = requests(&stack, at_close).await.into_iter().map(|r| r.0).collect();
    eprintln!("64 MiB written in order: before close {before:?}; close took {close_ms} ms and sent {after:?}");
    assert!(before.iter().filter(|op| *op == "UploadPart").count() >= 3, "parts went up while writing: {before:?}");
    assert!(!after.iter().any(|op| op == "PutObject"), "the file was not uploaded again at close: {after:?}");
    assert!(after.iter().any(|op| op == "CompleteMultipartUpload"), "{after:?}");
    assert_eq!(sha(&object(&stack, "seq.bin").await), sha(&data), "byte-exact after close");
    assert_eq!(open_uploads(&stack, "seq.bin").await, 0);
    mount.unmount();
    stack.shutdown().await;
}

/// SIGKILL of the mount process while a streamed file is half written: the staged copy holds every
/// byte written, `ssofs recover` uploads it and aborts the multipart upload the kill left behind.
#[tokio::test(flavor = "multi_thread")]
async fn ssofs_killed_mid_write_leaves_the_streamed_file_recoverable() {
    let dir = unique_dir("stream-kill");
    let stack = devstack(&dir).await;
    let ssofs = |args: &[&str]| tokio::task::block_in_place(|| support::ssofs_cli(&stack, &dir, args));
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let login = ssofs(&["login", "--device-code", "--no-qr"]);
    assert!(login.status.success(), "{}", text(&login));
    let m = mnt.to_str().unwrap().to_string();
    assert!(ssofs(&["mount", &m]).status.success());
    let pid = support::server_pid(&mnt).expect("the background mount");
    let data = pattern(40 * MIB, 2);
    let since = request_count(&stack).await;
    let mut file = std::fs::File::create(mnt.join("analytics-raw/killed.bin")).unwrap();
    write_in_order(&mut file, &data);
    until_parts_stored(&stack, since, 1).await;
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    while Path::new(&format!("/proc/{pid}")).exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(file);
    let _ = Command::new("fusermount3").arg("-uz").arg(&mnt).status();
    assert!(root_s3(&stack).head_object().bucket(BUCKET).key("killed.bin").send().await.is_err(), "never completed");

    let recover = ssofs(&["recover"]);
    assert!(recover.status.success(), "{}", text(&recover));
    assert!(text(&recover).contains("uploaded analytics-raw/killed.bin"), "{}", text(&recover));
    assert_eq!(sha(&object(&stack, "killed.bin").await), sha(&data), "every byte written before the kill");
    assert_eq!(open_uploads(&stack, "killed.bin").await, 0, "recover aborted the upload the kill interrupted");
    stack.shutdown().await;
}

/// The staged copies under `root` (any depth) whose sidecar names `key`.
fn staged_copies(root: &Path, key: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let name = p.to_string_lossy().to_string();
            if p.is_dir() {
                dirs.push(p);
            } else if let Some(data) = name.strip_suffix(".meta.json") {
                let sidecar: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                if sidecar["key"] == key {
                    found.push(PathBuf::from(data));
                }
            }
        }
    }
    found
}

/// S3 goes down while parts are going up. A short outage: close succeeds once S3 is back and the
/// object is whole. A long one (past op_timeout): close fails with EIO and the staged copy keeps
/// every byte, for recover.
#[tokio::test(flavor = "multi_thread")]
async fn an_s3_outage_mid_upload_loses_nothing() {
    let dir = unique_dir("stream-outage");
    let stack = devstack(&dir).await;
    let options = MountOptions { op_timeout: Some(Duration::from_secs(5)), ..MountOptions::default() };
    let mount = support::mount_as(&stack, "alice", &dir, options).await;
    for (key, outage) in [("short.bin", Duration::from_secs(2)), ("long.bin", Duration::from_secs(40))] {
        let data = pattern(48 * MIB, 3);
        let since = request_count(&stack).await;
        let path = mount.path(&format!("analytics-raw/{key}"));
        let mut file = tokio::task::block_in_place(|| std::fs::File::create(&path).unwrap());
        write_in_order(&mut file, &data[..24 * MIB]);
        until_parts_stored(&stack, since, 1).await;
        fault(&stack, &[("s3_down", "1")]).await;
        write_in_order(&mut file, &data[24 * MIB..]);
        let closer = std::thread::spawn(move || {
            let synced = file.sync_all();
            drop(file);
            synced
        });
        tokio::time::sleep(outage).await;
        fault(&stack, &[("s3_down", "0")]).await;
        let closed = tokio::task::block_in_place(|| closer.join().unwrap());
        eprintln!("{key}: S3 down for {outage:?} mid-upload; fsync and close: {closed:?}");
        if outage < Duration::from_secs(5) {
            assert!(closed.is_ok(), "{key}: close succeeds after a short outage: {closed:?}");
            assert_eq!(sha(&object(&stack, key).await), sha(&data), "{key}: whole after the outage");
        } else {
            let err = closed.expect_err("S3 down past op_timeout: the upload fails");
            assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
            let kept = staged_copies(&dir.join("cache"), key);
            assert_eq!(kept.len(), 1, "{kept:?}");
            assert_eq!(sha(&std::fs::read(&kept[0]).unwrap()), sha(&data), "{key}: every byte kept staged");
        }
    }
    mount.unmount();
    stack.shutdown().await;
}
