//! Test-control API under `/_devstack/` (clearly not Azure): approve device codes, steer the IdP's
//! clock and keys, revoke refresh tokens, expire STS sessions, read the S3 request log, seed many
//! objects at once. Form-encoded POSTs, JSON answers.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::idp::Idp;
use crate::s3::auth::Iam;
use crate::s3::server::RequestLog;
use crate::s3::store::Store;

#[derive(Clone)]
pub struct Control {
    pub idp: Arc<Idp>,
    pub iam: Arc<Iam>,
    pub log: Arc<RequestLog>,
    pub faults: Arc<crate::faults::Faults>,
    pub store: Store,
}

pub fn router(control: Control) -> Router {
    Router::new()
        .route("/approve", post(approve))
        .route("/auto-approve", post(auto_approve))
        .route("/rotate-keys", post(rotate_keys))
        .route("/revoke", post(revoke))
        .route("/clock-offset", post(clock_offset))
        .route("/expire-sessions", post(expire_sessions))
        .route("/requests", get(requests))
        .route("/requests/count", get(request_count))
        .route("/seed-objects", post(seed_objects))
        .route("/faults", get(faults).post(set_faults))
        .with_state(control)
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "ok": false, "error": message }))).into_response()
}

#[derive(Deserialize)]
struct ApproveForm {
    user_code: String,
    user: String,
    #[serde(default)]
    decline: Option<String>,
}

async fn approve(State(c): State<Control>, Form(f): Form<ApproveForm>) -> Response {
    let decline = matches!(f.decline.as_deref(), Some("1" | "true" | "yes"));
    match c.idp.approve(&f.user_code, &f.user, decline) {
        Ok(()) => Json(json!({ "ok": true, "declined": decline })).into_response(),
        Err(e) => bad_request(e),
    }
}

#[derive(Deserialize)]
struct UserForm {
    #[serde(default)]
    user: String,
}

async fn auto_approve(State(c): State<Control>, Form(f): Form<UserForm>) -> Response {
    let user = Some(f.user.trim()).filter(|u| !u.is_empty());
    match c.idp.set_auto_approve(user) {
        Ok(()) => Json(json!({ "ok": true, "auto_approve": user })).into_response(),
        Err(e) => bad_request(e),
    }
}

async fn rotate_keys(State(c): State<Control>) -> Response {
    Json(json!({ "ok": true, "kid": c.idp.rotate_keys() })).into_response()
}

async fn revoke(State(c): State<Control>, Form(f): Form<UserForm>) -> Response {
    match c.idp.revoke(&f.user) {
        Ok(n) => Json(json!({ "ok": true, "revoked": n })).into_response(),
        Err(e) => bad_request(e),
    }
}

#[derive(Deserialize)]
struct OffsetForm {
    seconds: String,
}

async fn clock_offset(State(c): State<Control>, Form(f): Form<OffsetForm>) -> Response {
    match f.seconds.trim().parse::<i64>() {
        Ok(s) => {
            c.idp.set_clock_offset(s);
            Json(json!({ "ok": true, "seconds": s })).into_response()
        }
        Err(_) => bad_request(format!("seconds must be a whole number (may be negative), got {:?}", f.seconds)),
    }
}

async fn expire_sessions(State(c): State<Control>) -> Response {
    Json(json!({ "ok": true, "expired": c.iam.expire_sessions() })).into_response()
}

#[derive(Deserialize)]
struct RequestsQuery {
    #[serde(default)]
    since: usize,
}

/// `GET /requests[?since=N]`: the S3/STS request log, from its `N`th record on (benchmarks read only
/// what one step cost, from the count taken before it).
async fn requests(State(c): State<Control>, Query(q): Query<RequestsQuery>) -> Response {
    Json(c.log.since(q.since)).into_response()
}

async fn request_count(State(c): State<Control>) -> Response {
    Json(json!({ "count": c.log.count() })).into_response()
}

#[derive(Deserialize)]
struct SeedForm {
    bucket: String,
    prefix: String,
    count: usize,
    #[serde(default)]
    size: usize,
}

/// `POST /seed-objects` (`bucket`, `prefix`, `count`, `size` in bytes, default 0): `count` objects
/// `{prefix}{i:06}` written straight into the store, as the scenario's seed is: no S3 request, nothing
/// in the request log. 100,000 objects for a listing benchmark take seconds.
async fn seed_objects(State(c): State<Control>, Form(f): Form<SeedForm>) -> Response {
    let started = Instant::now();
    let SeedForm { bucket, prefix, count, size } = f;
    let store = c.store.clone();
    let done = tokio::task::spawn_blocking(move || {
        let body = vec![b'x'; size];
        (0..count).try_for_each(|i| store.put_bytes(&bucket, &format!("{prefix}{i:06}"), &body))
    })
    .await;
    match done {
        Ok(Ok(())) => {
            Json(json!({ "ok": true, "count": count, "secs": started.elapsed().as_secs_f64() })).into_response()
        }
        Ok(Err(e)) => bad_request(e.to_string()),
        Err(e) => {
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "ok": false, "error": e.to_string() }))).into_response()
        }
    }
}

async fn faults(State(c): State<Control>) -> Response {
    Json(c.faults.settings()).into_response()
}

/// `POST /faults` with any of `s3_down`, `latency_ms`, `slowdown_permille`, `drop_permille`,
/// `sts_down`, `idp_down` (flags as 1/0), or `reset=1`.
async fn set_faults(State(c): State<Control>, Form(pairs): Form<Vec<(String, String)>>) -> Response {
    match c.faults.apply(&pairs) {
        Ok(()) => Json(json!({ "ok": true, "faults": c.faults.settings() })).into_response(),
        Err(e) => bad_request(e),
    }
}
