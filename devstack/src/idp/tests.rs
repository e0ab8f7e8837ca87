//! Drives the IdP's router in-process with `oneshot`, the way the ssofs client and MinIO see it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

use super::Idp;
use crate::Config;
use crate::keys;
use crate::scenario::{CLIENT_ID, GROUP_DATA_ENGINEERING, ROLE_READWRITE, TENANT_DOMAIN, TENANT_ID};

const BASE: &str = "http://127.0.0.1:41234";
const REDIRECT: &str = "http://127.0.0.1:53682/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// Polling without pacing is the norm in tests; the slow_down test sets its own interval.
fn config() -> Config {
    let mut cfg = Config::new("/nonexistent-devstack-state");
    cfg.device_code_interval = Duration::ZERO;
    cfg
}

fn start(cfg: &Config) -> (Arc<Idp>, Router) {
    let idp = Idp::new(cfg, BASE);
    let router = idp.router();
    (idp, router)
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.text()))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn location(&self) -> String {
        self.headers[header::LOCATION].to_str().unwrap().to_string()
    }

    /// The AADSTS code of an error body.
    fn error_code(&self) -> u64 {
        self.json()["error_codes"][0].as_u64().unwrap()
    }
}

async fn send(router: &Router, request: Request<Body>) -> Reply {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap().to_vec();
    Reply { status, headers, body }
}

async fn get(router: &Router, uri: &str) -> Reply {
    send(router, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn post(router: &Router, uri: &str, form: &[(&str, &str)]) -> Reply {
    let body = serde_urlencoded::to_string(form).unwrap();
    let request = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    send(router, request).await
}

fn token_url() -> String {
    format!("/{TENANT_ID}/oauth2/v2.0/token")
}

async fn start_device_flow(router: &Router, scope: &str) -> Value {
    let reply =
        post(router, &format!("/{TENANT_ID}/oauth2/v2.0/devicecode"), &[("client_id", CLIENT_ID), ("scope", scope)])
            .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}

async fn poll(router: &Router, device_code: &str) -> Reply {
    let grant = "urn:ietf:params:oauth:grant-type:device_code";
    post(router, &token_url(), &[("grant_type", grant), ("client_id", CLIENT_ID), ("device_code", device_code)]).await
}

/// Signs `user` in through the device flow and returns the token response.
async fn device_login(idp: &Idp, router: &Router, user: &str, scope: &str) -> Value {
    let flow = start_device_flow(router, scope).await;
    idp.approve(flow["user_code"].as_str().unwrap(), user, false).unwrap();
    let reply = poll(router, flow["device_code"].as_str().unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}

async fn refresh(router: &Router, refresh_token: &str) -> Reply {
    post(
        router,
        &token_url(),
        &[("grant_type", "refresh_token"), ("client_id", CLIENT_ID), ("refresh_token", refresh_token)],
    )
    .await
}

fn jwt_header(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn jwt_claims(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn decoding_key(kid: &str) -> DecodingKey {
    let key = keys::all().into_iter().find(|k| k.kid == kid).expect("kid is one of the fixed keys");
    let (n, e) = key.components();
    DecodingKey::from_rsa_components(n, e).unwrap()
}

/// Verifies an RS256 token for the app (signature, aud, iss) and returns its claims.
fn verify_for_app(token: &str, check_exp: bool) -> Value {
    let kid = jwt_header(token)["kid"].as_str().unwrap().to_string();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[CLIENT_ID]);
    validation.set_issuer(&[format!("{BASE}/{TENANT_ID}/v2.0")]);
    validation.validate_exp = check_exp;
    if !check_exp {
        validation.required_spec_claims.clear();
    }
    jsonwebtoken::decode::<Value>(token, &decoding_key(&kid), &validation).unwrap().claims
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

// Discovery and keys.

#[tokio::test]
async fn discovery_for_tenant_guid_and_domain_is_concrete() {
    let (_, router) = start(&config());
    for tenant in [TENANT_ID, TENANT_DOMAIN] {
        let reply = get(&router, &format!("/{tenant}/v2.0/.well-known/openid-configuration")).await;
        assert_eq!(reply.status, StatusCode::OK);
        let doc = reply.json();
        assert_eq!(doc["issuer"], format!("{BASE}/{TENANT_ID}/v2.0"));
        assert_eq!(doc["token_endpoint"], format!("{BASE}/{TENANT_ID}/oauth2/v2.0/token"));
        assert_eq!(doc["device_authorization_endpoint"], format!("{BASE}/{TENANT_ID}/oauth2/v2.0/devicecode"));
        assert_eq!(doc["jwks_uri"], format!("{BASE}/{TENANT_ID}/discovery/v2.0/keys"));
        assert_eq!(doc["subject_types_supported"], serde_json::json!(["pairwise"]));
        assert_eq!(doc["request_uri_parameter_supported"], false);
        assert!(doc.get("code_challenge_methods_supported").is_none());
    }
}

#[tokio::test]
async fn discovery_for_common_uses_template_issuer() {
    let (_, router) = start(&config());
    for tenant in ["common", "organizations"] {
        let doc = get(&router, &format!("/{tenant}/v2.0/.well-known/openid-configuration")).await.json();
        assert_eq!(doc["issuer"], format!("{BASE}/{{tenantid}}/v2.0"));
        assert_eq!(doc["authorization_endpoint"], format!("{BASE}/{tenant}/oauth2/v2.0/authorize"));
        assert_eq!(doc["tenant_region_scope"], Value::Null);
    }
}

#[tokio::test]
async fn unknown_and_consumer_tenants_are_not_found() {
    let (_, router) = start(&config());
    for tenant in ["consumers", "fabrikam.onmicrosoft.com"] {
        let reply = get(&router, &format!("/{tenant}/v2.0/.well-known/openid-configuration")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.error_code(), 90002);
        let reply = post(&router, &format!("/{tenant}/oauth2/v2.0/token"), &[]).await;
        assert_eq!(reply.error_code(), 90002);
    }
}

#[tokio::test]
async fn jwks_publishes_two_keys_without_alg_with_tenant_issuer() {
    let (_, router) = start(&config());
    let jwks = get(&router, &format!("/{TENANT_ID}/discovery/v2.0/keys")).await.json();
    let keys = jwks["keys"].as_array().unwrap();
    assert!(keys.len() >= 2);
    for key in keys {
        assert!(key.get("alg").is_none());
        for field in ["kty", "use", "kid", "x5t", "n", "e", "x5c"] {
            assert!(key.get(field).is_some(), "missing {field}");
        }
        assert_eq!(key["issuer"], format!("{BASE}/{TENANT_ID}/v2.0"));
    }
    let common = get(&router, "/common/discovery/v2.0/keys").await.json();
    assert_eq!(common["keys"][0]["issuer"], format!("{BASE}/{{tenantid}}/v2.0"));
}

#[tokio::test]
async fn rotation_switches_to_a_key_not_published_before() {
    let (idp, router) = start(&config());
    let kids = |jwks: Value| -> Vec<String> {
        jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect()
    };
    let jwks_url = format!("/{TENANT_ID}/discovery/v2.0/keys");
    for _ in 0..7 {
        let before = kids(get(&router, &jwks_url).await.json());
        let old_kid =
            jwt_header(device_login(&idp, &router, "alice", "openid").await["id_token"].as_str().unwrap())["kid"]
                .as_str()
                .unwrap()
                .to_string();
        let new_kid = idp.rotate_keys();
        assert!(!before.contains(&new_kid), "{new_kid} was already published");
        let after = kids(get(&router, &jwks_url).await.json());
        assert!(after.contains(&new_kid) && after.contains(&old_kid), "old and new key published");
        let token = device_login(&idp, &router, "alice", "openid").await["id_token"].as_str().unwrap().to_string();
        assert_eq!(jwt_header(&token)["kid"], new_kid.as_str());
        verify_for_app(&token, true);
    }
}

// Device code.

#[tokio::test]
async fn device_flow_pending_then_approved_then_tokens_once() {
    let (idp, router) = start(&config());
    let flow = start_device_flow(&router, "openid profile email offline_access").await;
    let user_code = flow["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert!(user_code.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
    assert_eq!(flow["verification_uri"], format!("{BASE}/devicelogin"));
    assert!(flow.get("verification_uri_complete").is_none());
    assert!(flow["message"].as_str().unwrap().contains(user_code));
    assert_eq!(flow["expires_in"], 900);

    let device_code = flow["device_code"].as_str().unwrap();
    let pending = poll(&router, device_code).await;
    assert_eq!(pending.status, StatusCode::BAD_REQUEST);
    assert_eq!(pending.json()["error"], "authorization_pending");
    assert_eq!(pending.error_code(), 70016);

    idp.approve(&user_code.to_lowercase(), "alice", false).unwrap();
    let reply = poll(&router, device_code).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let tokens = reply.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["refresh_token"].is_string());
    assert!(tokens["ext_expires_in"].is_number());
    let claims = verify_for_app(tokens["id_token"].as_str().unwrap(), true);
    assert_eq!(claims["oid"], "0a1b2c3d-aaaa-4bbb-8ccc-000000000001");
    assert_eq!(claims["tid"], TENANT_ID);
    assert_eq!(claims["ver"], "2.0");
    assert_eq!(claims["preferred_username"], format!("alice@{TENANT_DOMAIN}"));
    assert_eq!(claims["groups"], serde_json::json!([GROUP_DATA_ENGINEERING]));
    assert_eq!(claims["roles"], serde_json::json!([ROLE_READWRITE]));
    assert_eq!(claims["sub"].as_str().unwrap().len(), 43);

    let again = poll(&router, device_code).await;
    assert_eq!(again.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn device_flow_declined_unknown_and_expired_codes() {
    let mut cfg = config();
    let (idp, router) = start(&cfg);
    let flow = start_device_flow(&router, "openid").await;
    idp.approve(flow["user_code"].as_str().unwrap(), "eve", true).unwrap();
    let declined = poll(&router, flow["device_code"].as_str().unwrap()).await;
    assert_eq!(declined.json()["error"], "authorization_declined");

    let unknown = poll(&router, "DAQABIQEAAADnot-a-real-code").await;
    assert_eq!(unknown.json()["error"], "bad_verification_code");
    assert!(idp.approve("ZZZZZZZZZ", "alice", false).is_err());
    assert!(idp.approve(flow["user_code"].as_str().unwrap(), "mallory", false).is_err());

    cfg.device_code_lifetime = Duration::from_millis(200);
    let (idp, router) = start(&cfg);
    let flow = start_device_flow(&router, "openid").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let expired = poll(&router, flow["device_code"].as_str().unwrap()).await;
    assert_eq!(expired.json()["error"], "expired_token");
    assert_eq!(expired.error_code(), 70020);
    assert!(idp.approve(flow["user_code"].as_str().unwrap(), "alice", false).is_err());
}

#[tokio::test]
async fn device_flow_polled_too_fast_is_slowed_down() {
    let mut cfg = config();
    cfg.device_code_interval = Duration::from_secs(5);
    let (_, router) = start(&cfg);
    let flow = start_device_flow(&router, "openid").await;
    assert_eq!(flow["interval"], 5);
    let device_code = flow["device_code"].as_str().unwrap();
    assert_eq!(poll(&router, device_code).await.json()["error"], "authorization_pending");
    assert_eq!(poll(&router, device_code).await.json()["error"], "slow_down");
}

#[tokio::test]
async fn auto_approve_signs_in_on_first_poll() {
    let (idp, router) = start(&config());
    assert!(idp.set_auto_approve(Some("nobody")).is_err());
    idp.set_auto_approve(Some("oscar")).unwrap();
    let flow = start_device_flow(&router, "openid").await;
    let reply = poll(&router, flow["device_code"].as_str().unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let claims = verify_for_app(reply.json()["id_token"].as_str().unwrap(), true);
    assert_eq!(claims["oid"], "0a1b2c3d-aaaa-4bbb-8ccc-000000000002");
    assert!(reply.json().get("refresh_token").is_none(), "no offline_access, no refresh token");
}

#[tokio::test]
async fn device_login_page_approves() {
    let (_, router) = start(&config());
    let flow = start_device_flow(&router, "openid").await;
    let user_code = flow["user_code"].as_str().unwrap();
    let page = get(&router, &format!("/devicelogin?otc={user_code}")).await;
    assert!(page.text().contains(user_code));
    let done = post(&router, "/devicelogin", &[("otc", user_code), ("user", "alice"), ("action", "approve")]).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert_eq!(poll(&router, flow["device_code"].as_str().unwrap()).await.status, StatusCode::OK);
    let bad = post(&router, "/devicelogin", &[("otc", "NOPE"), ("user", "alice")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn client_checks() {
    let mut cfg = config();
    let (_, router) = start(&cfg);
    let flow = start_device_flow(&router, "openid").await;
    let device_code = flow["device_code"].as_str().unwrap();
    let grant = "urn:ietf:params:oauth:grant-type:device_code";

    let unknown = post(
        &router,
        &token_url(),
        &[("grant_type", grant), ("client_id", "11111111-2222-3333-4444-555555555555"), ("device_code", device_code)],
    )
    .await;
    assert_eq!(unknown.json()["error"], "unauthorized_client");
    assert_eq!(unknown.error_code(), 700016);

    let secret = post(
        &router,
        &token_url(),
        &[("grant_type", grant), ("client_id", CLIENT_ID), ("device_code", device_code), ("client_secret", "x")],
    )
    .await;
    assert_eq!(secret.status, StatusCode::UNAUTHORIZED);
    assert_eq!(secret.error_code(), 700025);

    cfg.public_client_flows = false;
    let (_, router) = start(&cfg);
    let flow = start_device_flow(&router, "openid").await;
    let confidential = poll(&router, flow["device_code"].as_str().unwrap()).await;
    assert_eq!(confidential.status, StatusCode::UNAUTHORIZED);
    assert_eq!(confidential.json()["error"], "invalid_client");
    assert_eq!(confidential.error_code(), 7000218);
}

#[tokio::test]
async fn token_endpoint_request_errors() {
    let (_, router) = start(&config());
    let missing = post(&router, &token_url(), &[("client_id", CLIENT_ID)]).await;
    assert_eq!(missing.json()["error"], "invalid_request");
    assert_eq!(missing.error_code(), 900144);
    let unsupported = post(&router, &token_url(), &[("grant_type", "password"), ("client_id", CLIENT_ID)]).await;
    assert_eq!(unsupported.json()["error"], "unsupported_grant_type");
    assert_eq!(unsupported.error_code(), 70003);
    let garbage = send(&router, Request::post(token_url()).body(Body::from(vec![0xff, 0x00, b'%'])).unwrap()).await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn error_bodies_are_shaped_like_azure_and_responses_carry_date() {
    let (_, router) = start(&config());
    let reply = post(&router, &token_url(), &[("grant_type", "password"), ("client_id", CLIENT_ID)]).await;
    let body = reply.json();
    let description = body["error_description"].as_str().unwrap();
    assert!(description.starts_with("AADSTS70003: "));
    assert!(description.contains("\r\nTrace ID: ") && description.contains("\r\nCorrelation ID: "));
    assert!(description.contains("\r\nTimestamp: "));
    for field in ["timestamp", "trace_id", "correlation_id"] {
        assert!(body[field].is_string(), "missing {field}");
    }
    assert_eq!(body["error_uri"], format!("{BASE}/error?code=70003"));
    let date = reply.headers[header::DATE].to_str().unwrap();
    let date = httpdate::parse_http_date(date).unwrap();
    let skew = std::time::SystemTime::now().duration_since(date).unwrap_or_default();
    assert!(skew < Duration::from_secs(5));
    let discovery = get(&router, "/common/v2.0/.well-known/openid-configuration").await;
    assert!(discovery.headers.contains_key(header::DATE));
}

// Authorization code + PKCE.

fn challenge() -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()))
}

fn authorize_url(extra: &[(&str, &str)]) -> String {
    let challenge = challenge();
    let mut params = vec![
        ("client_id", CLIENT_ID),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile offline_access"),
        ("state", "st4te"),
        ("nonce", "n0nce"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    // Extra parameters replace the defaults (the IdP reads the first occurrence).
    params.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    params.extend_from_slice(extra);
    format!("/{TENANT_ID}/oauth2/v2.0/authorize?{}", serde_urlencoded::to_string(&params).unwrap())
}

/// Follows the authorize redirect and returns the code.
async fn authorize_code(router: &Router, extra: &[(&str, &str)]) -> String {
    let reply = get(router, &authorize_url(extra)).await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.text());
    let location = reply.location();
    let (target, query) = location.split_once('?').unwrap();
    assert_eq!(target, REDIRECT);
    let params: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
    assert!(params.contains(&("state".into(), "st4te".into())));
    params.into_iter().find(|(k, _)| k == "code").expect("code in redirect").1
}

async fn redeem(router: &Router, code: &str, verifier: &str, redirect_uri: &str) -> Reply {
    post(
        router,
        &token_url(),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ],
    )
    .await
}

#[tokio::test]
async fn auth_code_with_pkce_single_use() {
    let (_, router) = start(&config());
    let code = authorize_code(&router, &[("login_hint", "alice")]).await;

    let wrong = redeem(&router, &code, "not-the-verifier-not-the-verifier-not-the-v", REDIRECT).await;
    assert_eq!(wrong.json()["error"], "invalid_grant");
    assert_eq!(wrong.error_code(), 501481);

    let tokens = redeem(&router, &code, VERIFIER, REDIRECT).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
    let claims = verify_for_app(tokens.json()["id_token"].as_str().unwrap(), true);
    assert_eq!(claims["nonce"], "n0nce");
    assert_eq!(claims["name"], "Alice Analyst");

    let reused = redeem(&router, &code, VERIFIER, REDIRECT).await;
    assert_eq!(reused.json()["error"], "invalid_grant");
    assert_eq!(reused.error_code(), 54005);

    let unknown = redeem(&router, "1.AXnot-a-code", VERIFIER, REDIRECT).await;
    assert_eq!(unknown.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn auth_code_redirect_uri_must_match() {
    let (idp, router) = start(&config());
    idp.set_auto_approve(Some("alice")).unwrap();
    let code = authorize_code(&router, &[]).await;
    let other = redeem(&router, &code, VERIFIER, "http://127.0.0.1:53682/other").await;
    assert_eq!(other.json()["error"], "invalid_grant");
    assert_eq!(other.error_code(), 500112);
}

#[tokio::test]
async fn only_loopback_redirect_uris_are_accepted() {
    let (_, router) = start(&config());
    for bad in ["http://[::1]:5000/cb", "https://127.0.0.1/cb", "http://evil.example/cb", "http://localhost.evil/"] {
        let url = authorize_url(&[("redirect_uri", bad), ("login_hint", "alice")]);
        let reply = get(&router, &url).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(reply.text().contains("AADSTS50011"), "{bad}");
    }
    for good in ["http://localhost/", "http://localhost:8400", "http://127.0.0.1:1/any/path?x=1"] {
        let reply = get(&router, &authorize_url(&[("redirect_uri", good), ("login_hint", "bob")])).await;
        assert_eq!(reply.status, StatusCode::FOUND, "{good}");
        assert!(reply.location().starts_with(good), "{good}");
    }
}

#[tokio::test]
async fn authorize_without_user_shows_picker() {
    let (_, router) = start(&config());
    let reply = get(&router, &authorize_url(&[])).await;
    assert_eq!(reply.status, StatusCode::OK);
    let html = reply.text();
    assert!(html.contains("login_hint=alice") && html.contains("login_hint=bob"));

    let silent = get(&router, &authorize_url(&[("prompt", "none")])).await;
    assert!(silent.location().contains("error=login_required"));
    let unknown_user = get(&router, &authorize_url(&[("login_hint", "mallory")])).await;
    assert!(unknown_user.text().contains("AADSTS50034"));
    let bad_type = get(&router, &authorize_url(&[("response_type", "token")])).await;
    assert_eq!(bad_type.status, StatusCode::FOUND);
    assert!(bad_type.location().contains("error=unsupported_response_type"));
}

// Refresh tokens.

#[tokio::test]
async fn refresh_returns_new_token_and_old_one_keeps_working() {
    let (idp, router) = start(&config());
    let first = device_login(&idp, &router, "alice", "openid offline_access").await;
    let rt1 = first["refresh_token"].as_str().unwrap();

    let second = refresh(&router, rt1).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    let second = second.json();
    let rt2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(rt1, rt2);
    verify_for_app(second["id_token"].as_str().unwrap(), true);

    let third = refresh(&router, rt1).await;
    assert_eq!(third.status, StatusCode::OK, "old refresh token still valid");
    assert_eq!(refresh(&router, rt2).await.status, StatusCode::OK);

    let unknown = refresh(&router, "1.AXnot-a-token").await;
    assert_eq!(unknown.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn refresh_may_narrow_scope_to_the_app_api() {
    let (idp, router) = start(&config());
    let first = device_login(&idp, &router, "alice", "openid offline_access").await;
    let app_scope = format!("api://{CLIENT_ID}/access_as_user offline_access");
    let reply = post(
        &router,
        &token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ("scope", &app_scope),
        ],
    )
    .await
    .json();
    assert_eq!(reply["scope"], format!("api://{CLIENT_ID}/access_as_user"));
    let claims = verify_for_app(reply["access_token"].as_str().unwrap(), true);
    assert_eq!(claims["scp"], "access_as_user");
    assert_eq!(claims["azp"], CLIENT_ID);
}

#[tokio::test]
async fn revoked_and_expired_refresh_tokens_are_refused() {
    let mut cfg = config();
    let (idp, router) = start(&cfg);
    let tokens = device_login(&idp, &router, "alice", "openid offline_access").await;
    assert_eq!(idp.revoke("alice").unwrap(), 1);
    assert!(idp.revoke("mallory").is_err());
    let revoked = refresh(&router, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(revoked.json()["error"], "invalid_grant");
    assert_eq!(revoked.error_code(), 50173);

    cfg.refresh_token_lifetime = Duration::from_millis(200);
    let (idp, router) = start(&cfg);
    let tokens = device_login(&idp, &router, "alice", "openid offline_access").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let expired = refresh(&router, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(expired.json()["error"], "invalid_grant");
    assert_eq!(expired.error_code(), 700082);
}

// Claims and token kinds.

#[tokio::test]
async fn bob_gets_groups_overage_instead_of_groups() {
    let (idp, router) = start(&config());
    let scope = format!("openid api://{CLIENT_ID}/access_as_user");
    let tokens = device_login(&idp, &router, "bob", &scope).await;
    for token in [&tokens["id_token"], &tokens["access_token"]] {
        let claims = verify_for_app(token.as_str().unwrap(), true);
        assert!(claims.get("groups").is_none());
        assert_eq!(claims["_claim_names"], serde_json::json!({"groups": "src1"}));
        let endpoint = claims["_claim_sources"]["src1"]["endpoint"].as_str().unwrap();
        assert_eq!(
            endpoint,
            "https://graph.microsoft.com/v1.0/users/0a1b2c3d-aaaa-4bbb-8ccc-000000000004/getMemberObjects"
        );
        assert_eq!(claims["roles"], serde_json::json!([ROLE_READWRITE]));
    }
    let eve = device_login(&idp, &router, "eve", "openid").await;
    let claims = verify_for_app(eve["id_token"].as_str().unwrap(), true);
    assert!(claims.get("groups").is_none() && claims.get("_claim_names").is_none() && claims.get("roles").is_none());
}

#[tokio::test]
async fn graph_tokens_cannot_be_verified_by_third_parties() {
    let (idp, router) = start(&config());
    let tokens = device_login(&idp, &router, "alice", "openid profile User.Read").await;
    let access = tokens["access_token"].as_str().unwrap();
    let header = jwt_header(access);
    assert!(header["nonce"].is_string());
    let claims = jwt_claims(access);
    assert_eq!(claims["aud"], "00000003-0000-0000-c000-000000000000");
    assert_eq!(claims["ver"], "1.0");
    assert_eq!(claims["iss"], format!("https://sts.windows.net/{TENANT_ID}/"));
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_aud = false;
    let key = decoding_key(header["kid"].as_str().unwrap());
    assert!(jsonwebtoken::decode::<Value>(access, &key, &validation).is_err());
    assert_eq!(tokens["scope"], "User.Read openid profile");

    // Graph itself (our userinfo stand-in) accepts it, and answers the ID token's pairwise sub.
    let request = Request::get("/oidc/userinfo")
        .header(header::AUTHORIZATION, format!("Bearer {access}"))
        .body(Body::empty())
        .unwrap();
    let info = send(&router, request).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.text());
    let id_claims = verify_for_app(tokens["id_token"].as_str().unwrap(), true);
    assert_eq!(info.json()["sub"], id_claims["sub"]);
    assert_eq!(get(&router, "/oidc/userinfo").await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn clock_offset_shifts_iat_nbf_exp() {
    let (idp, router) = start(&config());
    idp.set_clock_offset(-7200);
    let tokens = device_login(&idp, &router, "alice", "openid").await;
    let claims = verify_for_app(tokens["id_token"].as_str().unwrap(), false);
    let iat = claims["iat"].as_i64().unwrap();
    assert!((iat - (now() - 7200)).abs() <= 5, "iat {iat} not shifted");
    assert_eq!(claims["nbf"], claims["iat"]);
    assert_eq!(claims["exp"].as_i64().unwrap(), iat + 3600);

    idp.set_clock_offset(600);
    let tokens = device_login(&idp, &router, "alice", "openid").await;
    let claims = verify_for_app(tokens["id_token"].as_str().unwrap(), false);
    assert!((claims["nbf"].as_i64().unwrap() - (now() + 600)).abs() <= 5);
}
