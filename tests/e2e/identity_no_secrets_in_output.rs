//! With trace logging on (SSOFS_LOG or RUST_LOG), no ID token, access token or refresh token appears in
//! anything `ssofs login`, `status` or `token --claims` prints.

use crate::support::identity::{Stack, curl_browser};
use crate::support::text;
use serde_json::Value;

async fn check(stack: &Stack, log_var: &str, login: &[&str], extra_env: &[(&str, &str)]) {
    let mut env = vec![(log_var, "trace")];
    env.extend_from_slice(extra_env);
    let outputs = vec![
        stack.run(login, &env).await,
        stack.run(&["status"], &env).await,
        stack.run(&["status", "--json"], &env).await,
        stack.run(&["token", "--claims"], &env).await,
    ];
    assert!(outputs[0].status.success(), "{}", text(&outputs[0]));
    assert!(text(&outputs[0]).contains("TRACE") || text(&outputs[0]).contains("DEBUG"), "logging is on");
    let stored: Value = serde_json::from_slice(&std::fs::read(stack.token_file("devstack")).unwrap()).unwrap();
    for secret in ["id_token", "access_token", "refresh_token"] {
        let value = stored[secret].as_str().unwrap();
        assert!(value.len() > 20);
        // The whole token, and its signature on its own (the part no claim display could explain).
        let tail = value.rsplit('.').next().unwrap();
        for o in &outputs {
            let t = text(o);
            assert!(!t.contains(value), "{secret} in output with {log_var}=trace");
            assert!(!t.contains(tail), "{secret} signature in output with {log_var}=trace");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn device_code_login_with_trace_logging_prints_no_token() {
    let stack = Stack::start("secrets-device", |c| c.auto_approve = Some("alice".into())).await;
    check(&stack, "SSOFS_LOG", &["login", "--device-code"], &[]).await;
    check(&stack, "RUST_LOG", &["login", "--device-code"], &[]).await;
    stack.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn browser_login_with_trace_logging_prints_no_token() {
    let stack = Stack::start("secrets-browser", |c| c.auto_approve = Some("alice".into())).await;
    let browser = curl_browser(&stack.dir);
    let b = browser.to_str().unwrap();
    check(&stack, "SSOFS_LOG", &["login", "--browser"], &[("BROWSER", b)]).await;
    check(&stack, "RUST_LOG", &["login", "--browser"], &[("BROWSER", b)]).await;
    stack.running.shutdown().await;
}
