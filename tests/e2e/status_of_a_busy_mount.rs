//! `ssofs status` shows what a mount is doing, and `-o metrics=127.0.0.1:PORT` serves it to
//! Prometheus: after a read and a write through a real mount, both show the bytes moved, the S3
//! requests made and the FUSE operations served, by the right amounts.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use ssofs::mount::MountOptions;

use crate::support::prometheus::{scrape, total};
use crate::support::{self, text};

#[tokio::test(flavor = "multi_thread")]
async fn status_and_metrics_show_the_reads_writes_and_requests_of_a_busy_mount() {
    let dir = support::temp_dir("busy");
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.device_code_interval = Duration::from_secs(1);
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    let big: Vec<u8> = (0..(3 << 20) + 5).map(|i: u32| (i % 251) as u8).collect();
    support::s3_put(&stack, "analytics-raw", "busy/big.bin", big.clone()).await;
    let port = support::free_port();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let options = MountOptions { metrics: Some(addr), ..Default::default() };
    let m = support::mount_as(&stack, "alice", &dir, options).await;

    let before = scrape(port).await;
    let readme = tokio::task::block_in_place(|| std::fs::read(m.path("analytics-raw/README.txt")).unwrap());
    let after_readme = scrape(port).await;
    let read = tokio::task::block_in_place(|| std::fs::read(m.path("analytics-raw/busy/big.bin")).unwrap());
    assert!(read == big, "the big object reads back whole");
    let after_big = scrape(port).await;
    let written = b"a line written through the mount\n".repeat(3);
    tokio::task::block_in_place(|| std::fs::write(m.path("analytics-raw/busy/written.txt"), &written).unwrap());
    let after_write = scrape(port).await;

    let delta = |a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>, name: &str, labels: &[&str]| {
        total(b, name, labels) - total(a, name, labels)
    };
    let get = ["operation=\"GetObject\""];
    assert_eq!(delta(&before, &after_readme, "ssofs_s3_requests_total", &get), 1.0, "one GET for a small file");
    assert_eq!(delta(&before, &after_readme, "ssofs_s3_received_bytes_total", &get), readme.len() as f64);
    assert_eq!(
        delta(&after_readme, &after_big, "ssofs_s3_received_bytes_total", &get),
        big.len() as f64,
        "every byte of the big object came down once"
    );
    let put = ["operation=\"PutObject\""];
    assert_eq!(delta(&after_big, &after_write, "ssofs_s3_requests_total", &put), 1.0);
    assert_eq!(delta(&after_big, &after_write, "ssofs_s3_sent_bytes_total", &put), written.len() as f64);
    let write_ok = ["operation=\"write\"", "errno=\"0\""];
    assert_eq!(delta(&after_big, &after_write, "ssofs_fuse_operations_total", &write_ok), 1.0, "one write(2)");
    assert!(delta(&before, &after_big, "ssofs_block_cache_misses_total", &[]) >= 2.0, "README and big.bin blocks");
    assert!(total(&after_write, "ssofs_s3_request_duration_seconds_bucket", &get) > 0.0, "latency histogram");
    assert_eq!(total(&after_write, "ssofs_uploads_total", &["outcome=\"ok\""]), 1.0);
    assert_eq!(total(&after_write, "ssofs_uploads_in_flight", &[]), 0.0);
    assert!(total(&after_write, "ssofs_sts_renewals_total", &["outcome=\"ok\""]) >= 1.0);
    assert_eq!(total(&after_write, "ssofs_identities", &["state=\"signed_in\""]), 1.0);

    let json = tokio::task::block_in_place(|| support::ssofs_cli(&stack, &dir, &["status", "--json"]));
    assert!(json.status.success(), "{}", text(&json));
    let v: Value = serde_json::from_slice(&json.stdout).expect("status --json is JSON");
    assert_eq!(v["upn"], "alice@contoso.onmicrosoft.com", "the sign-in part is as before");
    let mnt = m.mountpoint.display().to_string();
    let mounts = v["mounts"].as_array().expect("a list of mounts");
    let mine = mounts.iter().find(|x| x["mountpoint"] == mnt.as_str()).unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(mine["profile"], "devstack");
    assert_eq!(mine["pid"], std::process::id());
    assert_eq!(mine["metrics"], format!("127.0.0.1:{port}"));
    let ids = mine["identities"].as_array().unwrap();
    assert_eq!(ids.len(), 1, "{mine:#}");
    let me = &ids[0];
    assert_eq!(me["user"], "alice@contoso.onmicrosoft.com");
    assert_eq!(me["bytes_read"], (readme.len() + big.len()) as u64, "{me:#}");
    assert_eq!(me["bytes_written"], written.len() as u64);
    assert!(me["credentials_expire_at"].as_str().is_some_and(|t| t.starts_with("20")), "{me:#}");
    assert!(me["cache_misses"].as_u64().unwrap() >= 2, "{me:#}");
    let ratio = me["cache_hit_ratio"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&ratio), "{me:#}");
    assert_eq!(me["uploads_in_flight"], serde_json::json!([]));
    assert_eq!(me["uploads_failed"], serde_json::json!([]));

    let human = tokio::task::block_in_place(|| support::ssofs_cli(&stack, &dir, &["status"]));
    let h = text(&human);
    assert!(h.contains(&format!("mount {mnt} (profile devstack, pid {}", std::process::id())), "{h}");
    assert!(h.contains("alice@contoso.onmicrosoft.com (uid 0)") && h.contains("block cache hit ratio"), "{h}");
    assert!(h.contains(&format!("written {} B", written.len())), "{h}");

    // The control socket answers the same metrics text.
    let socket = ssofs::mount::control::socket_path(&dir.join("state"), &m.mountpoint);
    let text_answer = ssofs::mount::control::ask(&socket, "metrics", Duration::from_secs(10)).unwrap();
    assert!(text_answer.contains("# TYPE ssofs_s3_requests_total counter"), "{text_answer}");
    m.unmount();
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_on_an_address_others_can_reach_are_refused_naming_the_option() {
    let dir = support::temp_dir("metrics-refused");
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.device_code_interval = Duration::from_secs(1);
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let out = tokio::task::block_in_place(|| {
        support::ssofs_cli(&stack, &dir, &["mount", mnt.to_str().unwrap(), "-o", "metrics=0.0.0.0:1"])
    });
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("metrics=0.0.0.0:1") && t.contains("not a loopback address"), "{t}");
    assert!(t.contains("127.0.0.1:1"), "says what to use instead: {t}");
    assert!(!support::is_mounted(&mnt));
    stack.shutdown().await;
}

/// The status of the mount at `mnt` as `ssofs status --json` reports it: its one identity.
fn identity_in_status(stack: &ssofs_devstack::Running, dir: &std::path::Path, mnt: &str) -> Value {
    let out = support::ssofs_cli(stack, dir, &["status", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mounts = v["mounts"].as_array().cloned().unwrap_or_default();
    let mine = mounts.into_iter().find(|x| x["mountpoint"] == mnt).unwrap_or_else(|| panic!("{v:#}"));
    mine["identities"][0].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_an_upload_in_flight_and_then_where_a_refused_one_is_kept() {
    let dir = support::temp_dir("refused-status");
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.device_code_interval = Duration::from_secs(1);
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    // Oscar may read the analytics buckets, not write them.
    let m = support::mount_as(&stack, "oscar", &dir, MountOptions::default()).await;
    let mnt = m.mountpoint.display().to_string();
    // Slow answers keep the upload in flight long enough to be seen.
    support::control_client(&stack)
        .post(format!("{}/faults", stack.control_url))
        .form(&[("latency_ms", "1500")])
        .send()
        .await
        .unwrap();
    let target = m.path("analytics-raw/oscar-denied.bin");
    let size = 2u64 << 20;
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let mut f = std::fs::File::create(&target).unwrap();
        f.write_all(&vec![7u8; size as usize]).unwrap();
        f.sync_all()
    });
    let in_flight = tokio::task::block_in_place(|| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let me = identity_in_status(&stack, &dir, &mnt);
            if let Some(u) = me["uploads_in_flight"].as_array().and_then(|u| u.first()).cloned() {
                return u;
            }
            assert!(!writer.is_finished() && std::time::Instant::now() < deadline, "never seen in flight: {me:#}");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    assert_eq!(
        (in_flight["bucket"].as_str(), in_flight["key"].as_str()),
        (Some("analytics-raw"), Some("oscar-denied.bin"))
    );
    assert_eq!(in_flight["total"], size, "{in_flight:#}");
    let fsync = writer.join().unwrap();
    assert_eq!(fsync.unwrap_err().kind(), std::io::ErrorKind::PermissionDenied, "the policy refuses oscar's upload");

    // The close after the failed fsync tries once more (the last close uploads the final state).
    let me = tokio::task::block_in_place(|| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let me = identity_in_status(&stack, &dir, &mnt);
            if me["uploads_in_flight"] == serde_json::json!([]) {
                return me;
            }
            assert!(std::time::Instant::now() < deadline, "still in flight: {me:#}");
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    assert_eq!(me["user"], "oscar@contoso.onmicrosoft.com");
    let failed = me["uploads_failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{me:#}");
    assert_eq!((failed[0]["key"].as_str(), failed[0]["refused"].as_bool()), (Some("oscar-denied.bin"), Some(true)));
    let staged = std::path::PathBuf::from(failed[0]["staged"].as_str().unwrap());
    assert_eq!(std::fs::metadata(&staged).map(|s| s.len()).ok(), Some(size), "the data is kept where status says");
    assert!(me["last_error"]["message"].as_str().unwrap().contains("oscar-denied.bin"), "{me:#}");
    let human = tokio::task::block_in_place(|| support::ssofs_cli(&stack, &dir, &["status"]));
    let h = text(&human);
    assert!(h.contains("upload refused at") && h.contains(&format!("data kept in {}", staged.display())), "{h}");
    support::control_client(&stack)
        .post(format!("{}/faults", stack.control_url))
        .form(&[("latency_ms", "0")])
        .send()
        .await
        .unwrap();
    drop(m);
    stack.shutdown().await;
}
