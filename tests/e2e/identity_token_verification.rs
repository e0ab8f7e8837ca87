//! ID token verification against the devstack's real discovery document and JWKS: tokens forged with the
//! devstack's own signing keys are rejected for exactly what is wrong with them, each with its own
//! message; key rotation is followed by fetching the keys again; `/common` uses the `{tenantid}` template.

use std::time::Duration;

use crate::support::identity::Stack;
use jsonwebtoken::{Algorithm, Header};
use openidconnect::{OAuth2TokenResponse, RefreshToken};
use serde_json::{Value, json};
use ssofs::config::{self, Profile, Sources};
use ssofs::identity::login::{self, Provider};
use ssofs_devstack::keys::{self, SigningKey};
use ssofs_devstack::scenario::{CLIENT_ID, TENANT_ID};

fn profile(stack: &Stack) -> Profile {
    config::load_profile(&Sources { extra: Some(stack.running.profile_file.clone()), ..Default::default() }, None)
        .unwrap()
}

fn now() -> i64 {
    login::now_unix()
}

fn forge(key: &SigningKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

fn claims(stack: &Stack) -> Value {
    let t = now();
    json!({
        "iss": stack.running.issuer, "aud": CLIENT_ID, "tid": TENANT_ID, "iat": t, "nbf": t, "exp": t + 3600,
        "sub": "s", "oid": "o", "preferred_username": "alice@contoso.onmicrosoft.com", "ver": "2.0",
    })
}

fn with(mut c: Value, key: &str, v: Value) -> Value {
    c[key] = v;
    c
}

fn check(provider: &Provider, profile: &Profile, token: &str) -> Result<(), String> {
    provider.verify_id_token(profile, token, None).map(|_| ()).map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_tokens_are_rejected_each_with_its_own_message() {
    let stack = Stack::start("verify-forged", |_| {}).await;
    let profile = profile(&stack);
    let provider = login::discover(&profile).await.unwrap();
    let keys = keys::all();
    // The devstack signs with key 1 and publishes keys 1 and 0.
    let (signer, kid) = (&keys[1], keys[1].kid.clone());
    let base = claims(&stack);

    check(&provider, &profile, &forge(signer, &kid, &base)).expect("a well-formed token from the IdP's key verifies");

    let wrong_issuer = check(
        &provider,
        &profile,
        &forge(signer, &kid, &with(base.clone(), "iss", json!("https://login.microsoftonline.com/x/v2.0"))),
    )
    .unwrap_err();
    let wrong_audience =
        check(&provider, &profile, &forge(signer, &kid, &with(base.clone(), "aud", json!("another-app")))).unwrap_err();
    // Signed with a key the IdP never published, but claiming the IdP's kid.
    let bad_signature = check(&provider, &profile, &forge(&keys[3], &kid, &base)).unwrap_err();
    let expired =
        check(&provider, &profile, &forge(signer, &kid, &with(base.clone(), "exp", json!(now() - 3600)))).unwrap_err();
    let future = with(with(base.clone(), "nbf", json!(now() + 3600)), "iat", json!(now() + 3600));
    let not_yet_valid = check(&provider, &profile, &forge(signer, &kid, &future)).unwrap_err();

    assert!(wrong_issuer.contains("was issued by https://login.microsoftonline.com/x/v2.0"), "{wrong_issuer}");
    assert!(wrong_issuer.contains(&stack.running.issuer), "names the trusted issuer: {wrong_issuer}");
    assert!(wrong_audience.contains("meant for application another-app") && wrong_audience.contains(CLIENT_ID));
    assert!(bad_signature.contains("signature does not verify"), "{bad_signature}");
    assert!(expired.contains("expired at"), "{expired}");
    assert!(not_yet_valid.contains("not valid before") && not_yet_valid.contains("clock"), "{not_yet_valid}");
    let all = [&wrong_issuer, &wrong_audience, &bad_signature, &expired, &not_yet_valid];
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b);
        }
    }

    // A payload changed after signing.
    let good = forge(signer, &kid, &base);
    let mut parts: Vec<&str> = good.split('.').collect();
    let other = forge(signer, &kid, &with(base.clone(), "preferred_username", json!("mallory@contoso")));
    parts[1] = other.split('.').nth(1).unwrap();
    let tampered = check(&provider, &profile, &parts.join(".")).unwrap_err();
    assert!(tampered.contains("signature does not verify"), "{tampered}");

    // A kid the IdP does not publish, even after fetching its keys again.
    let unknown =
        provider.verify_id_token_refetching(&profile, &forge(&keys[4], &keys[4].kid, &base), None).await.unwrap_err();
    assert!(unknown.to_string().contains("does not publish"), "{unknown}");

    // Garbage never panics.
    for junk in ["", "abc", "a.b.c", "eyJhbGciOiJub25lIn0.e30."] {
        assert!(check(&provider, &profile, junk).is_err());
    }
    stack.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nonce_must_match_when_one_was_sent() {
    let stack = Stack::start("verify-nonce", |_| {}).await;
    let profile = profile(&stack);
    let provider = login::discover(&profile).await.unwrap();
    let keys = keys::all();
    let token = forge(&keys[1], &keys[1].kid, &with(claims(&stack), "nonce", json!("n-1")));
    assert!(provider.verify_id_token(&profile, &token, Some("n-1")).is_ok());
    let err = provider.verify_id_token(&profile, &token, Some("n-2")).unwrap_err().to_string();
    assert!(err.contains("nonce does not match"), "{err}");
    stack.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn v1_issuer_only_when_the_profile_accepts_it() {
    let stack = Stack::start("verify-v1", |_| {}).await;
    let mut profile = profile(&stack);
    let provider = login::discover(&profile).await.unwrap();
    let keys = keys::all();
    let v1 = forge(
        &keys[1],
        &keys[1].kid,
        &with(claims(&stack), "iss", json!(format!("https://sts.windows.net/{TENANT_ID}/"))),
    );
    let err = check(&provider, &profile, &v1).unwrap_err();
    assert!(err.contains("accept_v1_issuer = true"), "{err}");
    profile.accept_v1_issuer = true;
    check(&provider, &profile, &v1).expect("accepted when configured");
    // Even then, not another tenant's v1 issuer.
    let other = forge(
        &keys[1],
        &keys[1].kid,
        &with(
            with(claims(&stack), "iss", json!("https://sts.windows.net/other-tenant/")),
            "tid",
            json!("other-tenant"),
        ),
    );
    assert!(check(&provider, &profile, &other).is_err());
    stack.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn common_authority_completes_the_tenantid_template_with_tid() {
    let stack = Stack::start("verify-common", |_| {}).await;
    let mut profile = profile(&stack);
    profile.issuer = format!("{}/common/v2.0", stack.running.idp_url);
    let provider = login::discover(&profile).await.unwrap();
    let keys = keys::all();
    let c = claims(&stack);
    check(&provider, &profile, &forge(&keys[1], &keys[1].kid, &c)).expect("iss = template with tid");
    // iss of one tenant with the tid of another.
    let mixed = with(c, "tid", json!("11111111-2222-3333-4444-555555555555"));
    let err = check(&provider, &profile, &forge(&keys[1], &keys[1].kid, &mixed)).unwrap_err();
    assert!(err.contains("11111111-2222-3333-4444-555555555555/v2.0"), "{err}");
    stack.running.shutdown().await;
}

/// Sign in, then the IdP rotates its signing key: the next ID token (from a refresh) names a key the
/// provider did not publish at discovery. Verification fetches the JWKS again, once, and succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn key_rotation_between_login_and_a_later_verification() {
    let stack = Stack::start("verify-rotation", |c| c.auto_approve = Some("alice".into())).await;
    let profile = profile(&stack);
    let provider = login::discover(&profile).await.unwrap();
    let polling = login::DevicePolling { interval_override: Some(Duration::from_millis(200)), qr: false };
    let first = login::device_code_with(&provider, &profile, &mut Vec::new(), &polling).await.unwrap();

    let rotated = stack.control("rotate-keys", &[]).await;
    let new_kid = rotated["kid"].as_str().unwrap().to_string();

    let rt = RefreshToken::new(first.refresh_token.clone().unwrap());
    let resp = provider.client.exchange_refresh_token(&rt).unwrap().request_async(&provider.http).await.unwrap();
    assert!(resp.refresh_token().is_some());
    // With the keys from discovery only, the new kid is unknown...
    let stale = login::stored_tokens(&provider, &profile, &resp, None, None).unwrap_err().to_string();
    assert!(stale.contains(&new_kid) && stale.contains("does not publish"), "{stale}");
    // ...and fetching them again (what login and `verified_tokens` do) finds it.
    let second = login::verified_tokens(&provider, &profile, &resp, None, None).await.unwrap();
    assert_eq!(second.username.as_deref(), Some("alice@contoso.onmicrosoft.com"));
    login::stored_tokens(&provider, &profile, &resp, None, None).expect("the refetched keys are kept");
    stack.running.shutdown().await;
}
