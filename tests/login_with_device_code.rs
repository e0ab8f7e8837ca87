//! A user signs in with `ssofs login` against the devstack's Azure AD stand-in and sees it in
//! `ssofs status`; tokens land 0600 in the state directory.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn ssofs(args: &[&str], config: &std::path::Path, state: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ssofs"))
        .args(args)
        .env("SSOFS_CONFIG", config)
        .env("SSOFS_STATE_DIR", state)
        .env("XDG_CONFIG_HOME", state.join("no-user-config"))
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn user_logs_in_with_device_code_and_status_shows_them() {
    let dir = std::env::temp_dir().join(format!("ssofs-login-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.auto_approve = Some("alice".into());
    cfg.device_code_interval = std::time::Duration::from_secs(1);
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    let state = dir.join("state");

    let status = tokio::task::spawn_blocking({
        let (p, s) = (stack.profile_file.clone(), state.clone());
        move || {
            let before = ssofs(&["status"], &p, &s);
            let login = ssofs(&["login"], &p, &s);
            let after = ssofs(&["status"], &p, &s);
            (before, login, after)
        }
    })
    .await
    .unwrap();
    let (before, login, after) = status;
    let text = |o: &std::process::Output| {
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    };
    assert!(text(&before).contains("not signed in"), "{}", text(&before));
    assert!(login.status.success(), "{}", text(&login));
    assert!(text(&login).contains("enter the code"), "{}", text(&login));
    assert!(text(&login).contains("Signed in as alice@contoso.onmicrosoft.com"), "{}", text(&login));
    assert!(text(&after).contains("signed in as alice@contoso.onmicrosoft.com"), "{}", text(&after));
    assert!(!text(&login).contains("eyJ"), "no token is printed");

    let file = state.join("devstack.tokens.json");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declined_sign_in_says_what_happened() {
    let dir = std::env::temp_dir().join(format!("ssofs-login-declined-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.device_code_interval = std::time::Duration::from_secs(1);
    cfg.device_code_lifetime = std::time::Duration::from_secs(3);
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    let (p, s) = (stack.profile_file.clone(), dir.join("state"));
    // Nobody approves: the code expires and ssofs says to try again.
    let out = tokio::task::spawn_blocking(move || ssofs(&["login"], &p, &s)).await.unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expired_token") && err.contains("ssofs login"), "{err}");
    stack.shutdown().await;
}
