//! The sign-in behind a running mount is revoked (or expires after 90 days unused): the mount keeps
//! serving on the credentials in hand, then refuses with EACCES; its log says a new login is needed
//! and what to run, and so does `ssofs status`. After `ssofs login` the same mount serves again,
//! without a remount, and status no longer asks for a sign-in.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{control_client, is_mounted, ssofs_cli, text, unique_dir};

/// Unmounts on the way out, even when an assertion failed.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        if is_mounted(&self.0) {
            let _ = Command::new("fusermount3").arg("-uz").arg(&self.0).status();
        }
    }
}

async fn control(stack: &ssofs_devstack::Running, path: &str, user: &str) {
    let resp = control_client(stack).post(format!("{}/{path}", stack.control_url)).form(&[("user", user)]).send();
    assert!(resp.await.unwrap().status().is_success(), "{path}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_sign_in_is_reported_and_the_mount_recovers_after_login() {
    let dir = unique_dir("relogin");
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.device_code_interval = Duration::from_secs(1);
    cfg.auto_approve = Some("alice".into());
    cfg.sts_min_duration = Duration::from_secs(30);
    cfg.id_token_lifetime = Duration::from_secs(60);
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    let run = |args: &[&str]| tokio::task::block_in_place(|| ssofs_cli(&stack, &dir, args));

    let login = run(&["login", "--device-code", "--no-qr"]);
    assert!(login.status.success(), "{}", text(&login));
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let log = dir.join("mount.log");
    let options = format!("duration_seconds=30,attr_ttl=0,dir_ttl=0,log_file={}", log.display());
    let mounted = run(&["mount", mnt.to_str().unwrap(), "-o", &options]);
    assert!(mounted.status.success(), "{}", text(&mounted));
    let _unmount = Unmount(mnt.clone());
    let readme = mnt.join("analytics-raw/README.txt");
    let read = || tokio::task::block_in_place(|| std::fs::read(&readme));
    assert!(read().is_ok());

    control(&stack, "revoke", "alice").await;
    let revoked = Instant::now();
    let refused = loop {
        match read() {
            Err(e) => break e,
            Ok(_) => {
                assert!(revoked.elapsed() < Duration::from_secs(90), "refused once the credentials expired");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    assert_eq!(refused.raw_os_error(), Some(libc::EACCES), "{refused}");
    let refused_after = revoked.elapsed();

    // The mount's log (the journal under systemd) and `ssofs status` both say what to do.
    let logged = std::fs::read_to_string(&log).unwrap();
    let line = logged.lines().find(|l| l.contains("cannot renew S3 credentials")).unwrap_or_else(|| panic!("{logged}"));
    assert!(line.contains("ssofs login --profile devstack") && line.contains("AADSTS50173"), "{line}");
    let status = run(&["status"]);
    assert!(text(&status).contains("NEW SIGN-IN NEEDED"), "{}", text(&status));
    assert!(text(&status).contains("AADSTS50173"), "{}", text(&status));
    let json: serde_json::Value = serde_json::from_slice(&run(&["status", "--json"]).stdout).unwrap();
    assert!(json["login_required"].as_str().is_some_and(|r| r.contains("AADSTS50173")), "{json}");

    // A new sign-in: the running mount serves again by itself.
    let login = run(&["login", "--device-code", "--no-qr"]);
    assert!(login.status.success(), "{}", text(&login));
    let relogged = Instant::now();
    while read().is_err() {
        assert!(relogged.elapsed() < Duration::from_secs(60), "the mount recovers after the new login");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let recovered_after = relogged.elapsed();
    assert!(!text(&run(&["status"])).contains("NEW SIGN-IN NEEDED"));
    eprintln!(
        "revoked: served {} s more on the credentials in hand, then EACCES; served again {} ms after `ssofs login`",
        refused_after.as_secs(),
        recovered_after.as_millis()
    );
    let unmounted = run(&["unmount", mnt.to_str().unwrap()]);
    assert!(unmounted.status.success(), "{}", text(&unmounted));
    stack.shutdown().await;
}
