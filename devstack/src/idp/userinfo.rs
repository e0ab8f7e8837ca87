//! A minimal stand-in for Graph's `/oidc/userinfo`: it accepts only the Graph access tokens this IdP
//! minted (verifying them the way Graph does, with the hashed header nonce) and answers the OIDC
//! profile claims.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Value, json};

use super::Idp;
use super::scopes::GRAPH_APP_ID;
use super::tokens::{b64, hashed_nonce, pairwise_sub};

pub(crate) async fn userinfo(State(idp): State<Arc<Idp>>, headers: HeaderMap) -> Response {
    let token =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match token.and_then(|t| idp.verified_graph_claims(t.trim())) {
        Some(claims) => axum::Json(profile(&claims)).into_response(),
        None => unauthorized(),
    }
}

impl Idp {
    /// The claims of a valid, unexpired Graph token signed by one of our keys; None otherwise.
    fn verified_graph_claims(&self, token: &str) -> Option<Value> {
        let mut parts = token.split('.');
        let (header_b64, payload_b64, signature) = (parts.next()?, parts.next()?, parts.next()?);
        let mut header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_b64).ok()?).ok()?;
        let nonce = header.get("nonce")?.as_str()?.to_string();
        let kid = header.get("kid")?.as_str()?.to_string();
        header["nonce"] = json!(hashed_nonce(&nonce));
        let signed_message = format!("{}.{payload_b64}", b64(header.to_string().as_bytes()));
        let key = self.keys.iter().find(|k| k.kid == kid)?;
        let (n, e) = key.components();
        let decoding = DecodingKey::from_rsa_components(n, e).ok()?;
        let valid = jsonwebtoken::crypto::verify(signature, signed_message.as_bytes(), &decoding, Algorithm::RS256);
        if !valid.ok()? {
            return None;
        }
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload_b64).ok()?).ok()?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let fresh = claims.get("exp")?.as_i64()? > now;
        (claims.get("aud")?.as_str()? == GRAPH_APP_ID && fresh).then_some(claims)
    }
}

/// Graph's userinfo answers with the app's pairwise `sub` (as in the ID token) and profile claims.
fn profile(claims: &Value) -> Value {
    let field = |name: &str| claims.get(name).cloned().unwrap_or(Value::Null);
    let sub = match (claims.get("oid").and_then(Value::as_str), claims.get("appid").and_then(Value::as_str)) {
        (Some(oid), Some(app)) => json!(pairwise_sub(oid, app)),
        _ => Value::Null,
    };
    json!({
        "sub": sub,
        "name": field("name"),
        "family_name": field("family_name"),
        "given_name": field("given_name"),
        "email": field("upn"),
    })
}

/// Graph's answer to a missing or foreign token.
fn unauthorized() -> Response {
    let body = json!({"error": {"code": "InvalidAuthenticationToken", "message": "Access token validation failure."}});
    (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}
