//! `ssofs status [--json]` and `ssofs token --claims` after a sign-in: who, which tenant, groups,
//! until when — and never a token.

use crate::support::identity::Stack;
use crate::support::text;
use serde_json::Value;
use ssofs_devstack::scenario::{GROUP_DATA_ENGINEERING, TENANT_ID};

#[tokio::test(flavor = "multi_thread")]
async fn status_json_is_valid_and_names_alice_and_her_expiry() {
    let stack = Stack::start("status-json", |c| c.auto_approve = Some("alice".into())).await;

    let before = stack.run(&["status", "--json"], &[]).await;
    assert!(before.status.success(), "{}", text(&before));
    let v: Value = serde_json::from_slice(&before.stdout).expect("valid JSON when signed out");
    assert_eq!(v["logged_in"], false);
    assert_eq!(v["profile"], "devstack");

    let login = stack.run(&["login", "--device-code", "--no-qr"], &[]).await;
    assert!(login.status.success(), "{}", text(&login));
    let out = stack.run(&["status", "--json"], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["profile"], "devstack");
    assert_eq!(v["logged_in"], true);
    assert_eq!(v["upn"], "alice@contoso.onmicrosoft.com");
    assert_eq!(v["tid"], TENANT_ID);
    assert_eq!(v["groups"], 1);
    assert_eq!(v["refresh_token_present"], true);
    assert_eq!(v["expired"], false);
    let expires = v["expires_at"].as_str().unwrap();
    let at = time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339).unwrap();
    let left = at.unix_timestamp() - time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((3000..=3700).contains(&left), "about an hour left: {expires}");

    let human = stack.run(&["status"], &[]).await;
    let h = text(&human);
    assert!(h.contains("signed in as alice@contoso.onmicrosoft.com") && h.contains(TENANT_ID), "{h}");
    assert!(h.contains("groups:        1") && h.contains("valid until"), "{h}");

    let claims = stack.run(&["token", "--claims"], &[]).await;
    assert!(claims.status.success(), "{}", text(&claims));
    let c: Value = serde_json::from_slice(&claims.stdout).expect("claims are JSON");
    assert_eq!(c["preferred_username"], "alice@contoso.onmicrosoft.com");
    assert_eq!(c["groups"][0], GROUP_DATA_ENGINEERING);
    assert!(c.get("alg").is_none() && c.get("kid").is_none(), "claims only, no header");

    let stored: Value = serde_json::from_slice(&std::fs::read(stack.token_file("devstack")).unwrap()).unwrap();
    for secret in ["id_token", "access_token", "refresh_token"] {
        let s = stored[secret].as_str().unwrap();
        for o in [&out, &human, &claims] {
            assert!(!text(o).contains(s), "{secret} shown");
        }
        let signature = s.rsplit('.').next().unwrap();
        assert!(!text(&claims).contains(signature), "no signature");
    }

    // Without --claims, `token` refuses rather than printing a token.
    let bare = stack.run(&["token"], &[]).await;
    assert!(!bare.status.success());
    assert!(String::from_utf8_lossy(&bare.stderr).contains("--claims"));

    let logout = stack.run(&["logout"], &[]).await;
    assert!(text(&logout).contains("signed out"));
    let after = stack.run(&["token", "--claims"], &[]).await;
    assert!(!after.status.success() && text(&after).contains("not signed in"), "{}", text(&after));
    stack.running.shutdown().await;
}
