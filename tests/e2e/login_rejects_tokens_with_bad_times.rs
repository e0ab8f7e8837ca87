//! The devstack's IdP clock is shifted (`/_devstack/clock-offset` moves iat/nbf/exp of new tokens):
//! `ssofs login` refuses the ID token and says the clock is the likely culprit, storing nothing.

use crate::support::identity::Stack;
use crate::support::text;

#[tokio::test(flavor = "multi_thread")]
async fn tokens_from_the_future_and_the_past_are_refused_with_their_own_message() {
    let stack = Stack::start("login-times", |c| c.auto_approve = Some("alice".into())).await;

    stack.control("clock-offset", &[("seconds", "3600")]).await;
    let future = stack.run(&["login", "--device-code", "--no-qr"], &[]).await;
    assert!(!future.status.success());
    let f = String::from_utf8_lossy(&future.stderr);
    assert!(f.contains("does not verify") && f.contains("not valid before") && f.contains("clock"), "{f}");

    stack.control("clock-offset", &[("seconds", "-7200")]).await;
    let past = stack.run(&["login", "--device-code", "--no-qr"], &[]).await;
    assert!(!past.status.success());
    let p = String::from_utf8_lossy(&past.stderr);
    assert!(p.contains("expired at"), "{p}");
    assert!(!stack.token_file("devstack").exists(), "nothing stored");

    // Within the leeway, a slightly skewed IdP is fine.
    stack.control("clock-offset", &[("seconds", "20")]).await;
    let ok = stack.run(&["login", "--device-code", "--no-qr"], &[]).await;
    assert!(ok.status.success(), "{}", text(&ok));
    stack.running.shutdown().await;
}
