//! A user's sign-in is revoked while their mount runs in the background: besides the log and
//! `ssofs status`, their desktop shows one notification (freedesktop Notify on the session bus)
//! naming the profile, what to run and why, however often the mount retries.
//!
//! The session bus is a private `dbus-daemon --session`; the notification service on it is this
//! test's own recorder owning org.freedesktop.Notifications.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zbus::zvariant::OwnedValue;

use crate::support::{control_client, is_mounted, text, unique_dir};

/// One recorded Notify call: app name, summary, body.
type Call = (String, String, String);

struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Recorder {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        _actions: Vec<String>,
        _hints: HashMap<String, OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut calls = self.calls.lock().unwrap();
        calls.push((app_name, summary, body));
        calls.len() as u32
    }
}

/// A private session bus; killed on drop, with the mount unmounted first.
struct Desktop {
    daemon: Child,
    address: String,
    mountpoint: Option<PathBuf>,
}

impl Drop for Desktop {
    fn drop(&mut self) {
        if let Some(mnt) = &self.mountpoint
            && is_mounted(mnt)
        {
            let _ = Command::new("fusermount3").arg("-uz").arg(mnt).status();
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

fn session_bus(dir: &Path) -> Desktop {
    let socket = dir.join("bus");
    let config = dir.join("session.conf");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
            socket.display()
        ),
    )
    .unwrap();
    let mut daemon = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", config.display()))
        .args(["--nofork", "--print-address"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("dbus-daemon runs (scripts/install-deps installs the dbus package)");
    let mut address = String::new();
    BufReader::new(daemon.stdout.take().unwrap()).read_line(&mut address).unwrap();
    Desktop { daemon, address: address.trim().to_string(), mountpoint: None }
}

/// The ssofs binary as `support::ssofs_cli` runs it, on the private session bus.
fn ssofs(stack: &ssofs_devstack::Running, dir: &Path, bus: &str, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ssofs"));
    c.args(args)
        .env("SSOFS_CONFIG", &stack.profile_file)
        .env("SSOFS_STATE_DIR", dir.join("state"))
        .env("XDG_CONFIG_HOME", dir.join("no-config"))
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .env_remove("BROWSER")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY");
    tokio::task::block_in_place(|| c.output().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_sign_in_shows_one_desktop_notification_saying_what_to_run() {
    let dir = unique_dir("notify");
    std::fs::create_dir_all(&dir).unwrap();
    let mut desktop = session_bus(&dir);
    let calls = Arc::new(Mutex::new(Vec::new()));
    let _service = zbus::connection::Builder::address(desktop.address.as_str())
        .unwrap()
        .name("org.freedesktop.Notifications")
        .unwrap()
        .serve_at("/org/freedesktop/Notifications", Recorder { calls: calls.clone() })
        .unwrap()
        .build()
        .await
        .expect("the test's notification service is on the private bus");

    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.device_code_interval = Duration::from_secs(1);
    cfg.auto_approve = Some("alice".into());
    cfg.sts_min_duration = Duration::from_secs(30);
    cfg.id_token_lifetime = Duration::from_secs(60);
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    let bus = desktop.address.clone();
    let run = |args: &[&str]| ssofs(&stack, &dir, &bus, args);

    let login = run(&["login", "--device-code", "--no-qr"]);
    assert!(login.status.success(), "{}", text(&login));
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let log = dir.join("mount.log");
    let options = format!("duration_seconds=30,log_level=ssofs=debug:warn,log_file={}", log.display());
    let mounted = run(&["mount", mnt.to_str().unwrap(), "-o", &options]);
    assert!(mounted.status.success(), "{}", text(&mounted));
    desktop.mountpoint = Some(mnt.clone());
    assert!(calls.lock().unwrap().is_empty(), "a working sign-in notifies nobody");

    let resp = control_client(&stack).post(format!("{}/revoke", stack.control_url)).form(&[("user", "alice")]);
    assert!(resp.send().await.unwrap().status().is_success());

    // The mount retries its renewal with backoff; each retry is refused again. Wait for two
    // refusals after the first, which must not notify again.
    let again = "a new sign-in is still needed";
    let revoked = Instant::now();
    while std::fs::read_to_string(&log).unwrap_or_default().matches(again).count() < 2 {
        assert!(revoked.elapsed() < Duration::from_secs(120), "the mount retried: {}", read(&log));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The notification is sent in the background of the first refusal: give the bus a moment.
    let retried = Instant::now();
    while calls.lock().unwrap().is_empty() && retried.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "one notification per event, not per retry: {calls:?}\n{}", read(&log));
    let (app, summary, body) = &calls[0];
    assert_eq!(app, "ssofs");
    assert!(summary.contains("devstack"), "{summary}");
    assert!(body.contains("ssofs login --profile devstack"), "{body}");
    assert!(body.contains("AADSTS50173"), "the identity provider's reason: {body}");
    let tokens = std::fs::read_to_string(dir.join("state/devstack.tokens.json")).unwrap();
    let stored: serde_json::Value = serde_json::from_str(&tokens).unwrap();
    for secret in ["id_token", "access_token", "refresh_token"] {
        let value = stored[secret].as_str().unwrap();
        assert!(!body.contains(value) && !summary.contains(value), "no {secret} in the notification");
    }

    let unmounted = run(&["unmount", mnt.to_str().unwrap()]);
    assert!(unmounted.status.success(), "{}", text(&unmounted));
    stack.shutdown().await;
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
