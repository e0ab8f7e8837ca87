//! Faults injected by the devstack, seen through a mounted ssofs: reads resume across an S3 outage and
//! across connections cut mid-response, writes go through throttling, and nothing hangs.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::{self, Mounted, root_s3, sha, unique_dir};
use ssofs::mount::MountOptions;

/// A devstack and alice's mount of it, with the fault controls at hand.
struct Faulty {
    stack: ssofs_devstack::Running,
    mount: Mounted,
    mountpoint: PathBuf,
}

impl Faulty {
    async fn fault(&self, pairs: &[(&str, &str)]) {
        let resp =
            reqwest::Client::new().post(format!("{}/faults", self.stack.control_url)).form(pairs).send().await.unwrap();
        assert!(resp.status().is_success(), "fault {pairs:?}");
    }

    fn s3(&self) -> aws_sdk_s3::Client {
        root_s3(&self.stack)
    }

    async fn finish(self) {
        self.mount.unmount();
        self.stack.shutdown().await;
    }
}

async fn mounted(tag: &str) -> Faulty {
    mounted_with(tag, |_| {}, MountOptions::default()).await
}

async fn mounted_with(tag: &str, tweak: impl FnOnce(&mut ssofs_devstack::Config), options: MountOptions) -> Faulty {
    let dir = unique_dir(&format!("faults-{tag}"));
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.device_code_interval = Duration::from_secs(1);
    tweak(&mut cfg);
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    let mount = support::mount_as(&stack, "alice", &dir, options).await;
    let mountpoint = mount.mountpoint.clone();
    Faulty { stack, mount, mountpoint }
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 24) as u8).collect()
}

/// A directory's entries, or the first error opening or reading it.
fn list_all(dir: &std::path::Path) -> std::io::Result<Vec<std::fs::DirEntry>> {
    std::fs::read_dir(dir)?.collect()
}

async fn put(m: &Faulty, key: &str, body: Vec<u8>) {
    support::s3_put(&m.stack, "analytics-raw", key, body).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_resumes_across_a_three_second_outage() {
    let m = mounted("outage").await;
    let body = pattern(100 << 20, 7);
    let want = sha(&body);
    put(&m, "outage.bin", body).await;
    let path = m.mountpoint.join("analytics-raw/outage.bin");
    let mut file = std::fs::File::open(&path).unwrap();
    let mut first = vec![0u8; 1 << 20];
    tokio::task::block_in_place(|| file.read_exact(&mut first).unwrap());
    m.fault(&[("s3_down", "1")]).await;
    let reader = std::thread::spawn(move || {
        let started = Instant::now();
        let mut rest = Vec::new();
        file.read_to_end(&mut rest).unwrap();
        (rest, started.elapsed())
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    m.fault(&[("s3_down", "0")]).await;
    let (rest, took) = tokio::task::block_in_place(|| reader.join().unwrap());
    first.extend(rest);
    assert_eq!(sha(&first), want, "the whole file, byte for byte, across the outage");
    eprintln!("cat of 100 MiB across a 3 s outage: finished {} ms after the outage began", took.as_millis());
    m.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_survive_connections_cut_mid_response_and_writes_survive_throttling() {
    let m = mounted("drops").await;
    let body = pattern(24 << 20, 3);
    let want = sha(&body);
    put(&m, "drops.bin", body).await;
    m.fault(&[("drop_permille", "300"), ("slowdown_permille", "200")]).await;
    let dir = m.mountpoint.join("analytics-raw");
    let (got, written) = tokio::task::block_in_place(|| {
        let got = sha(&std::fs::read(dir.join("drops.bin")).unwrap());
        let mut written = Vec::new();
        for i in 0..20 {
            let p = dir.join(format!("throttled-{i}.txt"));
            std::fs::write(&p, format!("file {i}")).unwrap();
            written.push(std::fs::read_to_string(&p).unwrap());
        }
        (got, written)
    });
    assert_eq!(got, want, "cut responses were fetched again, not presented as whole");
    for (i, w) in written.iter().enumerate() {
        assert_eq!(w, &format!("file {i}"));
    }
    m.fault(&[("reset", "1")]).await;
    let log: Vec<serde_json::Value> =
        reqwest::get(format!("{}/requests", m.stack.control_url)).await.unwrap().json().await.unwrap();
    let throttled = log.iter().filter(|r| r["status"] == 503).count();
    eprintln!("{throttled} requests answered 503 SlowDown; every operation completed");
    assert!(throttled > 0, "the fault was active");
    for i in 0..20 {
        let got = m.s3().get_object().bucket("analytics-raw").key(format!("throttled-{i}.txt")).send().await.unwrap();
        assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), format!("file {i}").as_bytes());
    }
    m.finish().await;
}

/// Each operation ends within `op_timeout` (here 5 s) whether S3 refuses connections or accepts
/// them and never answers; the caller gets EIO, and the mount works again once S3 does.
#[tokio::test(flavor = "multi_thread")]
async fn a_long_outage_fails_operations_within_op_timeout() {
    let options = MountOptions { op_timeout: Some(Duration::from_secs(5)), ..MountOptions::default() };
    let m = mounted_with("bounded", |_| {}, options).await;
    put(&m, "bounded-1.txt", b"hello".to_vec()).await;
    put(&m, "bounded-2.txt", b"hello".to_vec()).await;
    for (n, fault) in [(1, ("s3_down", "1")), (2, ("latency_ms", "600000"))] {
        m.fault(&[fault]).await;
        let path = m.mountpoint.join(format!("analytics-raw/bounded-{n}.txt"));
        let started = Instant::now();
        let result = tokio::task::block_in_place(|| std::fs::read(&path));
        let took = started.elapsed();
        m.fault(&[("reset", "1")]).await;
        let err = result.expect_err("S3 stayed unusable: the read fails");
        eprintln!("{fault:?}: the read failed after {} ms: {err}", took.as_millis());
        assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
        assert!(took < Duration::from_secs(8), "{fault:?}: bounded by op_timeout=5, took {took:?}");
    }
    let back = tokio::task::block_in_place(|| std::fs::read(m.mountpoint.join("analytics-raw/bounded-1.txt")));
    assert_eq!(back.unwrap(), b"hello", "served again once S3 is back");
    m.finish().await;
}

/// A wrong endpoint, proxy or captive portal answering `200 OK` with an HTML page, and replies that
/// are well framed but cut short: reads and listings fail at once with EIO (no HTML shown as a
/// file, no retrying for op_timeout), a written file's fsync fails and its data stays staged, and
/// close() uploads it once S3 answers properly again.
#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_answering_html_or_cut_replies_fails_clearly_and_loses_nothing() {
    let options = MountOptions { op_timeout: Some(Duration::from_secs(8)), ..MountOptions::default() };
    let m = mounted_with("hostile", |_| {}, options).await;
    let body = pattern(3 << 20, 7);
    put(&m, "hostile/data.bin", body.clone()).await;
    put(&m, "hostile/other.bin", body.clone()).await;
    // Directories that exist but were never listed through the mount.
    put(&m, "hostile-a/x", b"x".to_vec()).await;
    put(&m, "hostile-b/y", b"y".to_vec()).await;
    let dir = m.mountpoint.join("analytics-raw/hostile");
    let data = dir.join("data.bin");
    // Listing and attributes come first, with S3 well: what is cached is not the point here.
    let seen = tokio::task::block_in_place(|| std::fs::read_dir(&dir).unwrap().count());
    assert_eq!(seen, 2);

    m.fault(&[("html_replies", "1")]).await;
    let started = Instant::now();
    let read = tokio::task::block_in_place(|| std::fs::read(&data));
    let list = tokio::task::block_in_place(|| list_all(&m.mountpoint.join("analytics-raw/hostile-a")));
    let took = started.elapsed();
    let err = read.expect_err("an HTML page is not the object");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert_eq!(list.expect_err("an HTML page is not a listing").raw_os_error(), Some(libc::EIO));
    assert!(took < Duration::from_secs(5), "not retried until op_timeout (8 s): {took:?}");

    // A write whose upload is answered with HTML: fsync fails, nothing is taken as stored.
    let written = dir.join("written.bin");
    let payload = pattern(1 << 20, 9);
    let mut f = tokio::task::block_in_place(|| std::fs::File::create(&written).unwrap());
    use std::io::Write;
    tokio::task::block_in_place(|| f.write_all(&payload).unwrap());
    let synced = tokio::task::block_in_place(|| f.sync_all());
    assert!(synced.is_err(), "an upload answered with HTML is not stored");

    // Well-framed replies cut in half: never shown as the whole object.
    m.fault(&[("html_replies", "0"), ("truncated_replies", "1")]).await;
    let cut_started = Instant::now();
    let cut = tokio::task::block_in_place(|| std::fs::read(dir.join("other.bin")));
    let err = cut.expect_err("a reply holding half the bytes asked for is an error, not the file");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    let list = tokio::task::block_in_place(|| list_all(&m.mountpoint.join("analytics-raw/hostile-b")));
    let err = list.expect_err("truncated listing XML is an error, not a shorter listing");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    eprintln!(
        "HTML pages: read and listing failed with EIO after {} ms in all; truncated replies: read and listing \
         failed with EIO after {} ms in all (retried until op_timeout=8 s)",
        took.as_millis(),
        cut_started.elapsed().as_millis()
    );

    // S3 answers properly again: the staged write goes up at close, reads are whole.
    m.fault(&[("reset", "1")]).await;
    tokio::task::block_in_place(|| f.sync_all()).expect("the staged data goes up once S3 answers properly");
    drop(f);
    let stored = m.s3().get_object().bucket("analytics-raw").key("hostile/written.bin").send().await.unwrap();
    assert_eq!(sha(&stored.body.collect().await.unwrap().into_bytes()), sha(&payload), "uploaded whole at close");
    let whole = tokio::task::block_in_place(|| std::fs::read(dir.join("other.bin")).unwrap());
    assert_eq!(sha(&whole), sha(&body));
    // (DirEntry keeps the directory open: only the count is kept, so the unmount is not busy.)
    let listed = tokio::task::block_in_place(|| list_all(&m.mountpoint.join("analytics-raw/hostile-b")).unwrap().len());
    assert_eq!(listed, 1, "the directory listed whole once replies are");
    m.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_object_keys_are_shown_correctly_or_skipped() {
    let m = mounted("keys").await;
    let long = "l".repeat(300);
    let deep: String = (0..30).map(|i| format!("d{i}/")).collect::<String>() + "bottom.txt";
    // (key, the path it must appear at through the mount, or None when it must be skipped)
    let table: Vec<(String, Option<String>)> = vec![
        ("keys/caf\u{e9}.txt".into(), Some("keys/caf\u{e9}.txt".into())),
        ("keys/cafe\u{301}.txt".into(), Some("keys/cafe\u{301}.txt".into())),
        ("keys/with space.txt".into(), Some("keys/with space.txt".into())),
        ("keys/new\nline.txt".into(), Some("keys/new\nline.txt".into())),
        ("keys/percent%20.txt".into(), Some("keys/percent%20.txt".into())),
        ("keys/plus+sign.txt".into(), Some("keys/plus+sign.txt".into())),
        ("keys/back\\slash.txt".into(), Some("keys/back\\slash.txt".into())),
        (format!("keys/{long}"), None),
        ("keys/a/../b.txt".into(), None),
        ("keys/x//y.txt".into(), None),
        ("keys/trailing/".into(), Some("keys/trailing".into())),
        (format!("keys/{deep}"), Some(format!("keys/{deep}"))),
    ];
    for (i, (key, _)) in table.iter().enumerate() {
        put(&m, key, format!("body {i}").into_bytes()).await;
    }
    let root = m.mountpoint.join("analytics-raw");
    let table2 = table.clone();
    tokio::task::block_in_place(move || {
        for (i, (key, shown)) in table2.iter().enumerate() {
            match shown {
                Some(rel) if key.ends_with('/') => {
                    assert!(root.join(rel).is_dir(), "{key:?} is a directory");
                }
                Some(rel) => {
                    assert_eq!(std::fs::read_to_string(root.join(rel)).unwrap(), format!("body {i}"), "{key:?}");
                }
                None => {}
            }
        }
        let names: Vec<String> = std::fs::read_dir(root.join("keys"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.len() > 255), "no name over 255 bytes: {names:?}");
        // NFC and NFD spellings are different keys and stay different files.
        assert!(names.contains(&"caf\u{e9}.txt".to_string()) && names.contains(&"cafe\u{301}.txt".to_string()));
        // `a/../b.txt`: `a` is listed, its `..` segment is not.
        let a: Vec<String> = std::fs::read_dir(root.join("keys/a"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(a.is_empty(), "{a:?}");
    });
    m.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_closed_during_an_outage_completes_after_recovery() {
    let m = mounted("write-outage").await;
    let path = m.mountpoint.join("analytics-raw/during-outage.txt");
    let mut f = tokio::task::block_in_place(|| std::fs::File::create(&path).unwrap());
    use std::io::Write;
    tokio::task::block_in_place(|| f.write_all(b"written while S3 was down").unwrap());
    m.fault(&[("s3_down", "1")]).await;
    let closer = std::thread::spawn(move || {
        let started = Instant::now();
        (f.sync_all(), started.elapsed())
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    m.fault(&[("s3_down", "0")]).await;
    let (synced, took) = tokio::task::block_in_place(|| closer.join().unwrap());
    assert!(synced.is_ok(), "fsync completes once S3 is back: {synced:?}");
    eprintln!("fsync across a 3 s outage returned after {} ms", took.as_millis());
    let got = m.s3().get_object().bucket("analytics-raw").key("during-outage.txt").send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"written while S3 was down");
    m.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mount_survives_an_idp_outage_until_credentials_expire_and_recovers_after() {
    let m = mounted_with(
        "idp-outage",
        |c| {
            c.sts_min_duration = Duration::from_secs(30);
            c.id_token_lifetime = Duration::from_secs(60);
        },
        MountOptions {
            duration_seconds: Some(30),
            attr_ttl: Some(Duration::ZERO),
            dir_ttl: Some(Duration::ZERO),
            ..Default::default()
        },
    )
    .await;
    let readme = m.mountpoint.join("analytics-raw/README.txt");
    let list = || std::fs::read_dir(m.mountpoint.join("analytics-raw")).map(|d| d.count());
    assert!(tokio::task::block_in_place(list).is_ok());
    m.fault(&[("idp_down", "1")]).await;
    // Still served with the credentials in hand; then, once they expire, refused promptly.
    let outage = Instant::now();
    let mut refused_after = None;
    while outage.elapsed() < Duration::from_secs(70) {
        let started = Instant::now();
        let result = tokio::task::block_in_place(list);
        assert!(started.elapsed() < Duration::from_secs(10), "no operation hangs: {:?}", started.elapsed());
        if let Err(e) = result {
            assert_eq!(e.raw_os_error(), Some(libc::EACCES), "a permission error, not EIO: {e}");
            refused_after = Some(outage.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let refused_after = refused_after.expect("refused once the credentials expired");
    assert!(refused_after >= Duration::from_secs(1), "kept working on the credentials in hand");
    m.fault(&[("idp_down", "0")]).await;
    let back = Instant::now();
    loop {
        if tokio::task::block_in_place(|| std::fs::read(&readme)).is_ok() {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(60), "recovered after the IdP came back");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "IdP outage: served for {} s on the credentials in hand, refused with EACCES after that, recovered {} s after the IdP returned",
        refused_after.as_secs(),
        back.elapsed().as_secs()
    );
    m.finish().await;
}
