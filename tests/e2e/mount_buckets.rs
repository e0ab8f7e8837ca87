//! A user mounts their buckets and uses them with ordinary file operations: real FUSE mounts against
//! the devstack's S3 endpoint, with the user's own STS credentials.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{self, Mounted, root_s3, s3_get, sha, unique_dir};
use ssofs::mount::MountOptions;

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    v.sort();
    v
}

async fn mount_as(stack: &ssofs_devstack::Running, user: &str, tag: &str, opts: MountOptions) -> Mounted {
    support::mount_as(stack, user, &unique_dir(&format!("mount-{tag}")), opts).await
}

async fn start_stack(tag: &str) -> ssofs_devstack::Running {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let mut cfg = ssofs_devstack::Config::new(std::env::temp_dir().join(format!("ssofs-stack-{tag}-{n}")));
    cfg.device_code_interval = Duration::from_secs(1);
    ssofs_devstack::start(cfg).await.unwrap()
}

/// Stops the devstack and deletes its objects (these tests store 100 MB and more).
async fn shut_down_and_remove(stack: ssofs_devstack::Running) {
    let dir = stack.profile_file.parent().map(std::path::Path::to_path_buf);
    stack.shutdown().await;
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A mount made by root reads ahead as much as one FUSE request carries (the kernel's default for
/// FUSE is 128 KiB), so a sequential read costs an eighth of the requests.
#[tokio::test(flavor = "multi_thread")]
async fn a_root_mount_reads_ahead_a_whole_fuse_request() {
    let stack = start_stack("readahead").await;
    let m = mount_as(&stack, "alice", "readahead", MountOptions::default()).await;
    let line = support::mount_line(&m.mountpoint).expect("mounted");
    let device = line.split(' ').nth(2).unwrap().to_string();
    // Raised just after the kernel mounted it: on a loaded machine the test may look first.
    let want = (ssofs::fuse::MAX_REQUEST / 1024).to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut kb = String::new();
    while std::time::Instant::now() < deadline {
        kb = std::fs::read_to_string(format!("/sys/class/bdi/{device}/read_ahead_kb")).unwrap();
        if kb.trim() == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(kb.trim(), want, "{line}");
    m.unmount();
    stack.shutdown().await;
}

fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn alice_mounts_her_buckets_and_works_with_files() {
    let stack = start_stack("alice").await;
    let m = mount_as(&stack, "alice", "alice", MountOptions::default()).await;
    let root = m.mountpoint.clone();
    assert_eq!(blocking(move || names(&root)), ["analytics-curated", "analytics-raw"], "finance is not shown");

    let raw = m.path("analytics-raw");
    let r = raw.clone();
    let (readme, listing) = blocking(move || (std::fs::read_to_string(r.join("README.txt")).unwrap(), names(&r)));
    assert!(readme.starts_with("Raw event exports"));
    assert_eq!(listing, ["README.txt", "events", "schemas"]);

    // Round trips of 0 B, 1 B and 5 MiB, checked by a direct S3 GET.
    let five_mib: Vec<u8> = (0..5u32 << 20).map(|i| (i % 253) as u8).collect();
    for (name, body) in [("zero.bin", Vec::new()), ("one.bin", vec![42u8]), ("five.bin", five_mib)] {
        let (p, b) = (raw.join(name), body.clone());
        let back = blocking(move || {
            std::fs::write(&p, &b).unwrap();
            std::fs::read(&p).unwrap()
        });
        assert_eq!(back, body, "{name} through the mount");
        assert_eq!(s3_get(&stack, "analytics-raw", name).await, body, "{name} in S3");
    }

    // Append, truncate, random write, mkdir/rmdir, rename, unlink.
    let r = raw.clone();
    blocking(move || {
        use std::io::{Seek, SeekFrom, Write};
        let f = r.join("notes.txt");
        std::fs::write(&f, b"hello").unwrap();
        std::fs::OpenOptions::new().append(true).open(&f).unwrap().write_all(b" world").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"hello world");
        let mut h = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
        h.seek(SeekFrom::Start(0)).unwrap();
        h.write_all(b"J").unwrap();
        drop(h);
        assert_eq!(std::fs::read(&f).unwrap(), b"Jello world");
        std::fs::OpenOptions::new().write(true).open(&f).unwrap().set_len(5).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"Jello");

        std::fs::create_dir(r.join("newdir")).unwrap();
        std::fs::rename(&f, r.join("newdir/notes.txt")).unwrap();
        let err = std::fs::remove_dir(r.join("newdir")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTEMPTY));
        std::fs::rename(r.join("newdir"), r.join("moved")).unwrap();
        assert_eq!(std::fs::read(r.join("moved/notes.txt")).unwrap(), b"Jello");
        std::fs::remove_file(r.join("moved/notes.txt")).unwrap();
        std::fs::remove_dir(r.join("moved")).unwrap();
        assert!(!r.join("moved").exists());
    });
    assert_eq!(s3_get(&stack, "analytics-raw", "five.bin").await.len(), 5 << 20);
    let finance = m.path("finance");
    let err = blocking(move || std::fs::read_dir(finance).unwrap_err());
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    m.unmount();
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oscar_reads_but_cannot_copy_into_analytics() {
    let stack = start_stack("oscar").await;
    let m = mount_as(&stack, "oscar", "oscar", MountOptions::default()).await;
    let raw = m.path("analytics-raw");
    let src = std::env::temp_dir().join(format!("oscar-note-{}", std::process::id()));
    std::fs::write(&src, b"audit note").unwrap();
    let (err, cp) = blocking(move || {
        use std::io::Write;
        assert!(std::fs::read(raw.join("events/2026/11/01/part-0000.csv")).unwrap().starts_with(b"ts,user"));
        let mut f = std::fs::File::create(raw.join("oscar.txt")).unwrap();
        f.write_all(b"audit note").unwrap();
        // The upload happens at fsync/close; the policy's refusal comes back there.
        let err = f.sync_all().unwrap_err();
        drop(f);
        let cp = std::process::Command::new("cp").arg(&src).arg(raw.join("copied.txt")).output().unwrap();
        (err, cp)
    });
    assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
    assert!(!cp.status.success());
    assert!(
        String::from_utf8_lossy(&cp.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&cp.stderr)
    );
    m.unmount();
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn large_files_concurrent_readers_and_changes_behind_the_mounts_back() {
    let stack = start_stack("large").await;
    let opts = MountOptions {
        attr_ttl: Some(Duration::from_millis(500)),
        dir_ttl: Some(Duration::from_millis(500)),
        ..Default::default()
    };
    let m = mount_as(&stack, "alice", "large", opts).await;
    let curated = m.path("analytics-curated");

    // 100 MiB through the mount (a multipart upload), checked against a direct GET.
    let big: Vec<u8> = (0..100u32 << 20).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    let want = sha(&big);
    let (p, b) = (curated.join("big.bin"), big);
    let read_back = blocking(move || {
        std::fs::write(&p, &b).unwrap();
        sha(&std::fs::read(&p).unwrap())
    });
    assert_eq!(read_back, want);
    assert_eq!(sha(&s3_get(&stack, "analytics-curated", "big.bin").await), want);

    // Four readers of one file at once all see the same bytes.
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let p = curated.join("big.bin");
            std::thread::spawn(move || sha(&std::fs::read(p).unwrap()))
        })
        .collect();
    for r in readers {
        assert_eq!(r.join().unwrap(), want);
    }

    // An object changed behind the mount's back is seen once the TTLs pass.
    let summary = curated.join("reports/weekly/summary.md");
    let s = summary.clone();
    assert!(blocking(move || std::fs::read_to_string(s).unwrap()).starts_with("# Weekly summary"));
    root_s3(&stack)
        .put_object()
        .bucket("analytics-curated")
        .key("reports/weekly/summary.md")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"rewritten elsewhere"))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(blocking(move || std::fs::read_to_string(summary).unwrap()), "rewritten elsewhere");
    m.unmount();
    shut_down_and_remove(stack).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_ten_thousand_objects_costs_only_the_listing() {
    let stack = start_stack("tenk").await;
    let s3 = root_s3(&stack);
    use futures::StreamExt;
    futures::stream::iter(0..10_000)
        .map(|i| {
            let s3 = s3.clone();
            async move {
                s3.put_object()
                    .bucket("analytics-raw")
                    .key(format!("many/obj-{i:05}.csv"))
                    .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
                    .send()
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    let m = mount_as(&stack, "alice", "tenk", MountOptions::default()).await;
    let log_len = reqwest::get(format!("{}/requests", stack.control_url))
        .await
        .unwrap()
        .json::<Vec<serde_json::Value>>()
        .await
        .unwrap()
        .len();
    let many = m.path("analytics-raw/many");
    // `ls -l`: list the directory and stat every entry.
    let count = blocking(move || {
        let out = std::process::Command::new("ls").arg("-l").arg(&many).output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains("obj-")).count()
    });
    assert_eq!(count, 10_000, "the listing is complete");
    let log: Vec<serde_json::Value> =
        reqwest::get(format!("{}/requests", stack.control_url)).await.unwrap().json().await.unwrap();
    let new = &log[log_len..];
    let lists = new.iter().filter(|r| r["op"] == "ListObjectsV2").count();
    let others: Vec<&serde_json::Value> = new.iter().filter(|r| r["op"] != "ListObjectsV2").collect();
    eprintln!("ls -l of 10,000 objects: {lists} ListObjectsV2 requests, {} others", others.len());
    assert!(lists <= 14, "10 pages of 1,000 plus the lookups of the path itself: {lists}");
    let per_entry: Vec<_> = new.iter().filter(|r| r["path"].as_str().unwrap_or("").contains("/many/obj-")).collect();
    assert!(per_entry.is_empty(), "no request per entry: {per_entry:?}");
    assert!(others.len() <= 4, "only the lookups of the path itself: {others:?}");
    // The cold lookup of `many` only asks whether anything is below it: one entry, not a page of
    // 1,000 that the server must walk the directory for (16-22 ms over 111,000 keys, the bench's
    // cold first byte).
    let probe = new.iter().find(|r| {
        let q = r["query"].as_str().unwrap_or("");
        r["op"] == "ListObjectsV2" && q.contains("prefix=many%2F") && !q.contains("continuation-token")
    });
    let probe_query = probe.map(|r| r["query"].as_str().unwrap_or("").to_string()).unwrap_or_default();
    assert!(probe_query.contains("max-keys=1&") || probe_query.ends_with("max-keys=1"), "{probe_query}");
    m.unmount();
    shut_down_and_remove(stack).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mount_outlives_several_credential_lifetimes_without_errors() {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let mut cfg = ssofs_devstack::Config::new(std::env::temp_dir().join(format!("ssofs-stack-lifetimes-{n}")));
    cfg.device_code_interval = Duration::from_secs(1);
    cfg.sts_min_duration = Duration::from_secs(30);
    cfg.id_token_lifetime = Duration::from_secs(60);
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    let opts = MountOptions {
        duration_seconds: Some(30),
        attr_ttl: Some(Duration::from_millis(200)),
        dir_ttl: Some(Duration::from_millis(200)),
        ..Default::default()
    };
    let m = mount_as(&stack, "alice", "lifetimes", opts).await;
    let raw = m.path("analytics-raw");
    // Three 30-second credential lifetimes and a bit, reading, writing and listing all along.
    let (ops, errors) = blocking(move || {
        let (mut ops, mut errors) = (0u64, Vec::new());
        let end = Instant::now() + Duration::from_secs(100);
        let mut i = 0u64;
        while Instant::now() < end {
            let name = raw.join(format!("tick-{}.txt", i % 5));
            let body = format!("tick {i}");
            let results = [
                std::fs::write(&name, &body).map(|_| ()),
                std::fs::read_to_string(&name).and_then(|b| {
                    if b == body { Ok(()) } else { Err(std::io::Error::other(format!("read {b:?}, wrote {body:?}"))) }
                }),
                std::fs::read_dir(&raw).map(|d| d.count()).map(|_| ()),
                std::fs::read(raw.join("README.txt")).map(|_| ()),
            ];
            for r in results {
                ops += 1;
                if let Err(e) = r {
                    errors.push(format!("op {ops}: {e}"));
                }
            }
            i += 1;
            std::thread::sleep(Duration::from_millis(200));
        }
        (ops, errors)
    });
    let log: Vec<serde_json::Value> =
        reqwest::get(format!("{}/requests", stack.control_url)).await.unwrap().json().await.unwrap();
    let sts = log.iter().filter(|r| r["op"] == "AssumeRoleWithWebIdentity").count();
    let keys: std::collections::BTreeSet<&str> = log
        .iter()
        .filter(|r| r["op"] != "AssumeRoleWithWebIdentity")
        .filter_map(|r| r["access_key"].as_str())
        .collect();
    eprintln!(
        "across 100 s of 30 s credentials: {ops} operations, {} errors, {sts} STS calls, {} access keys",
        errors.len(),
        keys.len()
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert!(sts >= 4, "credentials were renewed: {sts} STS calls");
    m.unmount();
    stack.shutdown().await;
}
