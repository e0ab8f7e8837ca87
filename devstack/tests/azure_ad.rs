//! The identity provider behaves as Azure AD v2 does (`../shared/spec/azure-ad.md`), seen over HTTP.

mod common;

use std::time::Duration;

use base64::Engine;
use common::{Stack, claims, header};
use serde_json::Value;
use sha2::Digest;
use ssofs_devstack::scenario;

fn aadsts(v: &Value) -> u64 {
    v["error_codes"][0].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn discovery_documents_follow_azure_for_tenant_and_common() {
    let s = Stack::start("disco").await;
    let d: Value =
        s.http.get(s.tenant_url("v2.0/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    let base = &s.running.idp_url;
    let tid = scenario::TENANT_ID;
    assert_eq!(d["issuer"], format!("{base}/{tid}/v2.0"));
    assert_eq!(d["token_endpoint"], format!("{base}/{tid}/oauth2/v2.0/token"));
    assert_eq!(d["authorization_endpoint"], format!("{base}/{tid}/oauth2/v2.0/authorize"));
    assert_eq!(d["device_authorization_endpoint"], format!("{base}/{tid}/oauth2/v2.0/devicecode"));
    assert_eq!(d["jwks_uri"], format!("{base}/{tid}/discovery/v2.0/keys"));
    assert_eq!(d["subject_types_supported"], serde_json::json!(["pairwise"]));
    assert_eq!(d["id_token_signing_alg_values_supported"], serde_json::json!(["RS256"]));
    assert!(d.get("code_challenge_methods_supported").is_none(), "Azure does not advertise PKCE methods");

    for tenant in ["common", "organizations"] {
        let url = format!("{base}/{tenant}/v2.0/.well-known/openid-configuration");
        let d: Value = s.http.get(url).send().await.unwrap().json().await.unwrap();
        assert_eq!(d["issuer"], format!("{base}/{{tenantid}}/v2.0"), "{tenant} has the template issuer");
    }
    // The verified domain works like the GUID; an unknown tenant is AADSTS90002.
    let by_domain = s.http.get(format!("{base}/{}/v2.0/.well-known/openid-configuration", scenario::TENANT_DOMAIN));
    assert_eq!(by_domain.send().await.unwrap().status(), 200);
    let resp =
        s.http.get(format!("{base}/nosuchtenant.example/v2.0/.well-known/openid-configuration")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(aadsts(&resp.json().await.unwrap()), 90002);
    s.running.shutdown().await;
}

#[tokio::test]
async fn jwks_has_several_keys_without_alg() {
    let s = Stack::start("jwks").await;
    let jwks: Value = s.http.get(s.tenant_url("discovery/v2.0/keys")).send().await.unwrap().json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert!(keys.len() >= 2, "several keys: {jwks}");
    for k in keys {
        assert_eq!(k["kty"], "RSA");
        assert_eq!(k["use"], "sig");
        assert!(k.get("alg").is_none(), "Azure publishes no alg: {k}");
        for field in ["kid", "x5t", "n", "e", "x5c", "issuer"] {
            assert!(k.get(field).is_some(), "{field} missing in {k}");
        }
    }
    s.running.shutdown().await;
}

#[tokio::test]
async fn device_flow_pending_then_approved_gives_azure_shaped_tokens() {
    let s = Stack::start("device").await;
    let dc = s.device_code("openid profile email offline_access").await;
    assert!(dc.get("verification_uri_complete").is_none());
    assert!(dc["verification_uri"].as_str().unwrap().starts_with("http"));
    assert_eq!(dc["interval"], 1);
    assert!(dc["message"].as_str().unwrap().contains(dc["user_code"].as_str().unwrap()));
    let device_code = dc["device_code"].as_str().unwrap();

    let (status, pending) = s.poll(device_code).await;
    assert_eq!(status, 400);
    assert_eq!(pending["error"], "authorization_pending");
    assert_eq!(aadsts(&pending), 70016);
    assert!(pending["error_description"].as_str().unwrap().starts_with("AADSTS70016:"));

    s.control("approve", &[("user_code", dc["user_code"].as_str().unwrap()), ("user", "alice")]).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, tokens) = s.poll(device_code).await;
    assert_eq!(status, 200, "{tokens}");
    for field in ["token_type", "scope", "expires_in", "ext_expires_in", "access_token", "refresh_token", "id_token"] {
        assert!(tokens.get(field).is_some(), "{field} missing: {tokens}");
    }
    let id = tokens["id_token"].as_str().unwrap();
    let h = header(id);
    assert_eq!(h["alg"], "RS256");
    assert_eq!(h["typ"], "JWT");
    let c = claims(id);
    assert_eq!(c["aud"], scenario::CLIENT_ID);
    assert_eq!(c["tid"], scenario::TENANT_ID);
    assert_eq!(c["ver"], "2.0");
    assert_eq!(c["oid"], "0a1b2c3d-aaaa-4bbb-8ccc-000000000001");
    assert_eq!(c["preferred_username"], "alice@contoso.onmicrosoft.com");
    assert_eq!(c["groups"], serde_json::json!([scenario::GROUP_DATA_ENGINEERING]));
    assert_eq!(c["roles"], serde_json::json!([scenario::ROLE_READWRITE]));
    assert_ne!(c["sub"], c["oid"], "sub is pairwise, not the object id");
    for field in ["iat", "nbf", "exp", "name", "iss"] {
        assert!(c.get(field).is_some(), "{field} missing: {c}");
    }
    // Verify the signature against the published JWKS.
    verify_with_jwks(&s, id).await;

    // A redeemed device code cannot be redeemed again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, again) = s.poll(device_code).await;
    assert_eq!(status, 400);
    assert_ne!(again["error"], "authorization_pending");
    s.running.shutdown().await;
}

async fn verify_with_jwks(s: &Stack, jwt: &str) {
    let jwks: Value = s.http.get(s.tenant_url("discovery/v2.0/keys")).send().await.unwrap().json().await.unwrap();
    let kid = header(jwt)["kid"].as_str().unwrap().to_string();
    let key = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid.as_str()).expect("kid published");
    let dk =
        jsonwebtoken::DecodingKey::from_rsa_components(key["n"].as_str().unwrap(), key["e"].as_str().unwrap()).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&[scenario::CLIENT_ID]);
    jsonwebtoken::decode::<Value>(jwt, &dk, &v).expect("signature verifies");
}

#[tokio::test]
async fn device_flow_declined_bad_code_and_expired() {
    let s = Stack::start_with("device-errors", |c| c.device_code_lifetime = Duration::from_secs(2)).await;
    let dc = s.device_code("openid offline_access").await;
    s.control("approve", &[("user_code", dc["user_code"].as_str().unwrap()), ("user", "alice"), ("decline", "1")])
        .await;
    let (_, declined) = s.poll(dc["device_code"].as_str().unwrap()).await;
    assert_eq!(declined["error"], "authorization_declined", "{declined}");

    let (_, bad) = s.poll("not-a-device-code").await;
    assert_eq!(bad["error"], "bad_verification_code", "{bad}");

    let dc = s.device_code("openid").await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (_, expired) = s.poll(dc["device_code"].as_str().unwrap()).await;
    assert_eq!(expired["error"], "expired_token", "{expired}");
    assert_eq!(aadsts(&expired), 70020);

    // Approving an unknown code through the control API is an error, not a silent success.
    let resp = s
        .http
        .post(format!("{}/approve", s.running.control_url))
        .form(&[("user_code", "NOSUCHCOD"), ("user", "alice")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    s.running.shutdown().await;
}

#[tokio::test]
async fn polling_too_fast_gets_slow_down() {
    let s = Stack::start_with("slowdown", |c| c.device_code_interval = Duration::from_secs(5)).await;
    let dc = s.device_code("openid").await;
    let code = dc["device_code"].as_str().unwrap();
    let (_, first) = s.poll(code).await;
    assert_eq!(first["error"], "authorization_pending");
    let (_, second) = s.poll(code).await;
    assert_eq!(second["error"], "slow_down", "{second}");
    s.running.shutdown().await;
}

#[tokio::test]
async fn auto_approve_signs_in_without_a_human() {
    let s = Stack::start_with("auto", |c| c.auto_approve = Some("oscar".into())).await;
    let dc = s.device_code("openid profile").await;
    let (status, tokens) = s.poll(dc["device_code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())["preferred_username"], "oscar@contoso.onmicrosoft.com");
    // ...and it can be changed at runtime.
    s.control("auto-approve", &[("user", "eve")]).await;
    let dc = s.device_code("openid profile").await;
    let (_, tokens) = s.poll(dc["device_code"].as_str().unwrap()).await;
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())["preferred_username"], "eve@contoso.onmicrosoft.com");
    s.running.shutdown().await;
}

fn pkce_pair() -> (String, String) {
    let verifier = "kM2f8Qp1x9ZrT4vY7bN3cH6jL0aS5dW8eR2tU9iO1pA".to_string();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

async fn authorize(s: &Stack, redirect_uri: &str, challenge: &str, hint: &str) -> reqwest::Response {
    s.http
        .get(s.tenant_url("oauth2/v2.0/authorize"))
        .query(&[
            ("client_id", scenario::CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("scope", "openid profile offline_access"),
            ("state", "st4te"),
            ("nonce", "n0nce"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("login_hint", hint),
        ])
        .send()
        .await
        .unwrap()
}

fn code_from(resp: &reqwest::Response) -> String {
    assert_eq!(resp.status(), 302, "authorize redirects back");
    let loc = resp.headers()["location"].to_str().unwrap();
    let url = reqwest::Url::parse(loc).unwrap();
    assert_eq!(url.query_pairs().find(|(k, _)| k == "state").unwrap().1, "st4te");
    url.query_pairs().find(|(k, _)| k == "code").unwrap().1.to_string()
}

#[tokio::test]
async fn pkce_checks_the_verifier_and_codes_are_single_use() {
    let s = Stack::start("pkce").await;
    let (verifier, challenge) = pkce_pair();
    let redirect = "http://127.0.0.1:53123/callback";
    let redeem = |code: String, verifier: String| {
        let s = &s;
        async move {
            s.token(&[
                ("grant_type", "authorization_code"),
                ("client_id", scenario::CLIENT_ID),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", &verifier),
            ])
            .await
        }
    };

    let code = code_from(&authorize(&s, redirect, &challenge, "alice").await);
    let (status, wrong) = redeem(code.clone(), "x".repeat(43)).await;
    assert_eq!(status, 400);
    assert_eq!(wrong["error"], "invalid_grant");
    assert_eq!(aadsts(&wrong), 501481);

    let code = code_from(&authorize(&s, redirect, &challenge, "alice@contoso.onmicrosoft.com").await);
    let (status, tokens) = redeem(code.clone(), verifier.clone()).await;
    assert_eq!(status, 200, "{tokens}");
    let c = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(c["nonce"], "n0nce");
    assert_eq!(c["preferred_username"], "alice@contoso.onmicrosoft.com");
    let (_, reused) = redeem(code, verifier).await;
    assert_eq!(aadsts(&reused), 54005, "{reused}");

    // Any loopback port works on localhost too; [::1] and other hosts do not (AADSTS50011).
    let other_port = authorize(&s, "http://localhost:40001/", &challenge, "oscar").await;
    assert_eq!(other_port.status(), 302);
    for bad in ["http://[::1]:5000/", "https://evil.example/cb"] {
        let resp = authorize(&s, bad, &challenge, "alice").await;
        assert_ne!(resp.status(), 302, "{bad} must not be redirected to");
        assert!(resp.text().await.unwrap().contains("AADSTS50011"));
    }
    s.running.shutdown().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_the_old_one_stays_valid() {
    let s = Stack::start("refresh").await;
    let tokens = s.login("alice").await;
    let rt1 = tokens["refresh_token"].as_str().unwrap().to_string();
    let refresh = |rt: String| {
        let s = &s;
        async move {
            s.token(&[("grant_type", "refresh_token"), ("client_id", scenario::CLIENT_ID), ("refresh_token", &rt)])
                .await
        }
    };
    let (status, t2) = refresh(rt1.clone()).await;
    assert_eq!(status, 200, "{t2}");
    let rt2 = t2["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2, "a new refresh token on every use");
    assert!(t2.get("id_token").is_some(), "a new id_token when openid was granted");
    let (status, _) = refresh(rt1.clone()).await;
    assert_eq!(status, 200, "the old refresh token stays valid");

    let revoked = s.control("revoke", &[("user", "alice")]).await;
    assert!(revoked["revoked"].as_u64().unwrap() >= 2);
    let (status, err) = refresh(rt2).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"], "invalid_grant");
    assert_eq!(aadsts(&err), 50173);
    s.running.shutdown().await;
}

#[tokio::test]
async fn refresh_tokens_expire() {
    let s = Stack::start_with("rt-expiry", |c| c.refresh_token_lifetime = Duration::from_secs(1)).await;
    let tokens = s.login("oscar").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let (status, err) =
        s.token(&[("grant_type", "refresh_token"), ("client_id", scenario::CLIENT_ID), ("refresh_token", rt)]).await;
    assert_eq!(status, 400);
    assert_eq!(aadsts(&err), 700082, "{err}");
    s.running.shutdown().await;
}

#[tokio::test]
async fn more_than_200_groups_becomes_the_overage_claim() {
    let s = Stack::start("overage").await;
    let c = claims(&s.id_token("bob").await);
    assert!(c.get("groups").is_none(), "no groups claim on overage: {c}");
    assert_eq!(c["_claim_names"]["groups"], "src1");
    assert!(c["_claim_sources"]["src1"]["endpoint"].as_str().unwrap().contains("getMemberObjects"));
    // eve has no groups at all: no claim, and no overage either.
    let eve = claims(&s.id_token("eve").await);
    assert!(eve.get("groups").is_none() && eve.get("_claim_names").is_none(), "{eve}");
    s.running.shutdown().await;
}

#[tokio::test]
async fn key_rotation_signs_with_a_newly_published_key() {
    let s = Stack::start("rotate").await;
    let jwks_url = s.tenant_url("discovery/v2.0/keys");
    let before: Value = s.http.get(&jwks_url).send().await.unwrap().json().await.unwrap();
    let old_kid = header(&s.id_token("alice").await)["kid"].as_str().unwrap().to_string();
    let rotated = s.control("rotate-keys", &[]).await;
    let new_kid = rotated["kid"].as_str().unwrap().to_string();
    assert_ne!(new_kid, old_kid);
    assert!(
        !before["keys"].as_array().unwrap().iter().any(|k| k["kid"] == new_kid.as_str()),
        "new key was unpublished"
    );
    let token = s.id_token("alice").await;
    assert_eq!(header(&token)["kid"], new_kid.as_str());
    verify_with_jwks(&s, &token).await;
    s.running.shutdown().await;
}

#[tokio::test]
async fn clock_offset_shifts_issued_tokens() {
    let s = Stack::start("clock").await;
    s.control("clock-offset", &[("seconds", "600")]).await;
    let c = claims(&s.id_token("alice").await);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let iat = c["iat"].as_i64().unwrap();
    assert!((iat - now - 600).abs() < 5, "iat {iat} is now+600 ({now})");
    assert!((c["nbf"].as_i64().unwrap() - now - 600).abs() < 5);
    s.running.shutdown().await;
}

#[tokio::test]
async fn public_client_flows_off_gives_aadsts7000218() {
    let s = Stack::start_with("noflows", |c| {
        c.public_client_flows = false;
        c.auto_approve = Some("alice".into());
    })
    .await;
    // Azure hands out the code, then refuses to redeem it for a public client.
    let dc = s.device_code("openid").await;
    let (status, v) = s.poll(dc["device_code"].as_str().unwrap()).await;
    assert_eq!(status, 401, "{v}");
    assert_eq!(v["error"], "invalid_client", "{v}");
    assert_eq!(aadsts(&v), 7000218);
    s.running.shutdown().await;
}
