//! A user signs in with `ssofs login --device-code` against the devstack's Azure AD stand-in: the
//! pending → approved path, declined, expired, slow_down, and an app without public client flows.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::support::identity::{Stack, read_until, user_code};
use crate::support::text;

#[tokio::test(flavor = "multi_thread")]
async fn user_logs_in_with_device_code_and_status_shows_them() {
    let stack = Stack::start("device-auto", |c| c.auto_approve = Some("alice".into())).await;
    let before = stack.run(&["status"], &[]).await;
    // No display and no $BROWSER: the device code is the default.
    let login = stack.run(&["login"], &[]).await;
    let after = stack.run(&["status"], &[]).await;
    assert!(text(&before).contains("not signed in"), "{}", text(&before));
    assert!(login.status.success(), "{}", text(&login));
    let out = text(&login);
    assert!(out.contains("enter the code"), "{out}");
    assert!(out.contains("QR code") && out.contains('█'), "a QR code of the URL is printed: {out}");
    assert!(out.contains("Signed in as alice@contoso.onmicrosoft.com"), "{out}");
    assert!(text(&after).contains("signed in as alice@contoso.onmicrosoft.com"), "{}", text(&after));
    assert!(!out.contains("eyJ"), "no token is printed");

    let file = stack.token_file("devstack");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    stack.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_until_the_user_approves_then_signed_in() {
    let stack = Stack::start("device-approve", |_| {}).await;
    let mut child = stack.spawn(&["login", "--device-code", "--no-qr"], &[]);
    let (lines, mut rest) = read_until(&mut child, "enter the code");
    let code = user_code(lines.last().unwrap());
    // Let ssofs poll a few times while the code is pending.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stack.control("approve", &[("user_code", &code), ("user", "oscar")]).await;
    let status = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let mut out = String::new();
    rest.read_to_string(&mut out).unwrap();
    assert!(status.status.success(), "{out}{}", String::from_utf8_lossy(&status.stderr));
    assert!(out.contains("Signed in as oscar@contoso.onmicrosoft.com"), "{out}");
    assert!(!lines.concat().contains('█'), "--no-qr prints no QR code");
    stack.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declined_sign_in_says_what_happened() {
    let stack = Stack::start("device-decline", |_| {}).await;
    let mut child = stack.spawn(&["login", "--device-code"], &[]);
    let (lines, _rest) = read_until(&mut child, "enter the code");
    let code = user_code(lines.last().unwrap());
    stack.control("approve", &[("user_code", &code), ("user", "alice"), ("decline", "1")]).await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("authorization_declined") && err.contains("declined"), "{err}");
    assert!(err.contains("ssofs login"), "says how to retry: {err}");
    assert!(!stack.token_file("devstack").exists(), "nothing stored");
    stack.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_code_says_to_try_again() {
    let stack = Stack::start("device-expired", |c| c.device_code_lifetime = Duration::from_secs(3)).await;
    // Nobody approves: the code expires and ssofs says to try again.
    let out = stack.run(&["login", "--device-code"], &[]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expired_token") && err.contains("ssofs login"), "{err}");
    stack.running.shutdown().await;
}

/// ssofs is made to poll faster than asked; the provider answers slow_down, and ssofs backs off by
/// 5 s as RFC 8628 says and still completes the sign-in.
#[tokio::test(flavor = "multi_thread")]
async fn slow_down_makes_ssofs_poll_less_often() {
    let stack = Stack::start("device-slow", |c| c.device_code_interval = Duration::from_secs(4)).await;
    let started = std::time::Instant::now();
    let mut child = stack.spawn(&["login", "--device-code", "--no-qr", "--poll-interval", "1"], &[]);
    let (lines, mut rest) = read_until(&mut child, "enter the code");
    let code = user_code(lines.last().unwrap());
    let slowed = tokio::task::spawn_blocking(move || {
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            use std::io::BufRead;
            if rest.read_line(&mut line).unwrap() == 0 {
                break;
            }
            seen.push_str(&line);
            if line.contains("poll less often") {
                return (seen, rest, child);
            }
        }
        panic!("no slow_down notice: {seen}");
    })
    .await
    .unwrap();
    let (seen, mut rest, child) = slowed;
    assert!(seen.contains("polling every 9 s"), "4 s interval + 5 s: {seen}");
    stack.control("approve", &[("user_code", &code), ("user", "alice")]).await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let mut tail = String::new();
    rest.read_to_string(&mut tail).unwrap();
    assert!(out.status.success(), "{tail}{}", String::from_utf8_lossy(&out.stderr));
    assert!(tail.contains("Signed in as alice"), "{tail}");
    assert!(started.elapsed() >= Duration::from_secs(9), "waited the longer interval");
    stack.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_public_client_flows_the_fix_is_named() {
    let stack = Stack::start("device-7000218", |c| c.public_client_flows = false).await;
    let out = stack.run(&["login", "--device-code"], &[]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AADSTS7000218") && err.contains("Allow public client flows"), "{err}");
    stack.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_client_id_is_700016() {
    let stack = Stack::start("device-700016", |c| c.auto_approve = Some("alice".into())).await;
    let out = stack.run(&["login", "--device-code", "--client-id", "00000000-0000-0000-0000-000000000000"], &[]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AADSTS700016") && err.contains("client_id"), "{err}");
    stack.running.shutdown().await;
}
