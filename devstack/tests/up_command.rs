//! `ssofs-devstack up` as a newcomer runs it: ready quickly, files written, clean stop on SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn up_writes_its_files_serves_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("devstack-up-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ssofs-devstack"))
        .args(["up", "--state-dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let env_file = dir.join("devstack.env");
    while !env_file.exists() {
        assert!(started.elapsed() < Duration::from_secs(30), "devstack.env never appeared");
        assert!(child.try_wait().unwrap().is_none(), "devstack exited early");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ready = started.elapsed();
    eprintln!("devstack ready after {} ms", ready.as_millis());

    let env = std::fs::read_to_string(&env_file).unwrap();
    let get = |k: &str| {
        env.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).unwrap_or_else(|| panic!("{k} missing")).to_string()
    };
    for key in [
        "DEVSTACK_ISSUER",
        "DEVSTACK_TENANT",
        "DEVSTACK_CLIENT_ID",
        "DEVSTACK_ROOT_ACCESS_KEY",
        "DEVSTACK_ROOT_SECRET_KEY",
    ] {
        assert!(!get(key).is_empty());
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o077, 0, "env file holds root keys");
    let profile = std::fs::read_to_string(dir.join("ssofs.toml")).unwrap();
    assert!(profile.contains("[profiles.devstack]") && profile.contains(&get("DEVSTACK_S3_ENDPOINT")));

    // Both ports answer.
    for url in [format!("{}/.well-known/openid-configuration", get("DEVSTACK_ISSUER")), get("DEVSTACK_S3_ENDPOINT")] {
        let addr = url.trim_start_matches("http://").split('/').next().unwrap().to_string();
        std::net::TcpStream::connect(addr).expect("port open");
    }
    let control = get("DEVSTACK_CONTROL_URL");
    assert!(control.ends_with("/_devstack"));

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "devstack did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let mut out = String::new();
    use std::io::Read;
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(out.lines().count(), 1, "a one-line summary: {out}");
    assert!(out.starts_with("devstack ready"));
}
