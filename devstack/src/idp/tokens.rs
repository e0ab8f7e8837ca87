//! Token minting: ID tokens, v2 access tokens for the app's own API, Graph access tokens (which only
//! Graph can verify), opaque refresh tokens, and the token endpoint's success body.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use rand::RngCore;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::keys::SigningKey;
use crate::scenario::{CLIENT_ID, GROUPS_OVERAGE_LIMIT, TENANT_ID, User};

use super::Idp;
use super::error::AzureError;
use super::scopes::{GRAPH_APP_ID, Resource, Scopes};

/// Who signed in, for which scopes: everything a token request needs once its grant checked out.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub user: User,
    pub scopes: Scopes,
    /// `nonce` of the authorize request, echoed in the ID token.
    pub nonce: Option<String>,
}

/// What to put in a token response besides the access token.
#[derive(Debug, Clone)]
pub(crate) struct Extras {
    pub id_token: bool,
    /// Issue a refresh token carrying these scopes (the original grant's, which a refresh may narrow).
    pub refresh_scopes: Option<Scopes>,
}

/// base64url without padding, as JWTs and Azure's opaque values use.
pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `len` random bytes, base64url-encoded.
pub(crate) fn random_b64(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut bytes);
    b64(&bytes)
}

/// Azure's pairwise `sub`: stable per user and app, different across apps.
pub(crate) fn pairwise_sub(oid: &str, app_id: &str) -> String {
    b64(&Sha256::digest(format!("{oid}{app_id}{TENANT_ID}").as_bytes()))
}

impl Idp {
    /// The token endpoint's success body for `grant`.
    pub(crate) fn token_response(&self, grant: &Grant, extras: Extras) -> Result<Value, AzureError> {
        let key = self.signing_key();
        let now = self.token_clock();
        let access_lifetime = self.cfg.access_token_lifetime.as_secs();
        let access_token = match &grant.scopes.resource {
            Resource::App(_) => self.app_access_token(&key, grant, now)?,
            Resource::Graph(_) => graph_access_token(&key, grant, now, access_lifetime)?,
        };
        let mut body = json!({
            "token_type": "Bearer",
            "scope": grant.scopes.granted(),
            "expires_in": access_lifetime,
            "ext_expires_in": access_lifetime,
            "access_token": access_token,
        });
        if let Some(scopes) = &extras.refresh_scopes {
            body["refresh_token"] = Value::String(self.new_refresh_token(&grant.user, scopes));
        }
        if extras.id_token {
            body["id_token"] = Value::String(self.id_token(&key, grant, now)?);
        }
        Ok(body)
    }

    /// Unix time as tokens see it: the real clock shifted by the control API's offset.
    fn token_clock(&self) -> i64 {
        let real = time::OffsetDateTime::now_utc().unix_timestamp();
        real + self.clock_offset.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn id_token(&self, key: &SigningKey, grant: &Grant, now: i64) -> Result<String, AzureError> {
        let user = &grant.user;
        let mut claims = self.v2_common_claims(user, now, self.cfg.id_token_lifetime.as_secs());
        // Azure hands out name and preferred_username only for the `profile` scope; `email` for the
        // `email` scope; `upn` is an optional claim configured on the app registration.
        if grant.scopes.has("profile") {
            claims.insert("name".into(), json!(user.display_name));
            claims.insert("preferred_username".into(), json!(user.upn()));
        }
        if grant.scopes.has("email") {
            claims.insert("email".into(), json!(user.upn()));
        }
        claims.insert("upn".into(), json!(user.upn()));
        if let Some(nonce) = &grant.nonce {
            claims.insert("nonce".into(), json!(nonce));
        }
        if self.cfg.id_token_padding > 0 {
            claims.insert("devstack_padding".into(), json!("p".repeat(self.cfg.id_token_padding)));
        }
        sign_jwt(key, &v2_header(key), &Value::Object(claims))
    }

    fn app_access_token(&self, key: &SigningKey, grant: &Grant, now: i64) -> Result<String, AzureError> {
        let user = &grant.user;
        let mut claims = self.v2_common_claims(user, now, self.cfg.access_token_lifetime.as_secs());
        claims.insert("azp".into(), json!(CLIENT_ID));
        // 0: a public client, which proves no secret.
        claims.insert("azpacr".into(), json!("0"));
        claims.insert("name".into(), json!(user.display_name));
        claims.insert("preferred_username".into(), json!(user.upn()));
        claims.insert("scp".into(), json!(grant.scopes.scp()));
        sign_jwt(key, &v2_header(key), &Value::Object(claims))
    }

    /// Claims shared by v2 ID and access tokens for the app (`aud` = the app's client id).
    fn v2_common_claims(&self, user: &User, now: i64, lifetime: u64) -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("aud".into(), json!(CLIENT_ID));
        claims.insert("iss".into(), json!(self.issuer()));
        insert_times(&mut claims, now, lifetime);
        claims.insert("aio".into(), json!(random_b64(96)));
        claims.insert("oid".into(), json!(user.oid));
        claims.insert("rh".into(), json!(opaque_rh()));
        claims.insert("sub".into(), json!(pairwise_sub(user.oid, CLIENT_ID)));
        claims.insert("tid".into(), json!(TENANT_ID));
        claims.insert("uti".into(), json!(random_b64(16)));
        claims.insert("ver".into(), json!("2.0"));
        insert_roles_and_groups(&mut claims, user);
        claims
    }
}

fn insert_times(claims: &mut Map<String, Value>, now: i64, lifetime: u64) {
    let lifetime = i64::try_from(lifetime).unwrap_or(i64::MAX / 2);
    claims.insert("iat".into(), json!(now));
    claims.insert("nbf".into(), json!(now));
    claims.insert("exp".into(), json!(now.saturating_add(lifetime)));
}

/// `roles` when the user has app roles; `groups`, or above the overage limit the pointer to Graph
/// that Azure sends instead, so that big-group users cannot bloat the token.
fn insert_roles_and_groups(claims: &mut Map<String, Value>, user: &User) {
    if !user.roles.is_empty() {
        claims.insert("roles".into(), json!(user.roles));
    }
    if user.groups.len() > GROUPS_OVERAGE_LIMIT {
        let endpoint = format!("https://graph.microsoft.com/v1.0/users/{}/getMemberObjects", user.oid);
        claims.insert("_claim_names".into(), json!({"groups": "src1"}));
        claims.insert("_claim_sources".into(), json!({"src1": {"endpoint": endpoint}}));
    } else if !user.groups.is_empty() {
        claims.insert("groups".into(), json!(user.groups));
    }
}

fn opaque_rh() -> String {
    format!("1.AX{}.", random_b64(48))
}

fn v2_header(key: &SigningKey) -> Value {
    json!({"typ": "JWT", "alg": "RS256", "kid": key.kid})
}

/// The certificate thumbprint published for the key; Azure's kids equal it.
fn x5t(key: &SigningKey) -> Value {
    key.jwk("")["x5t"].clone()
}

/// `header.claims.signature`, RS256 over exactly the bytes published.
fn sign_jwt(key: &SigningKey, header: &Value, claims: &Value) -> Result<String, AzureError> {
    let message = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let signature = rs256(key, &message)?;
    Ok(format!("{message}.{signature}"))
}

fn rs256(key: &SigningKey, message: &str) -> Result<String, AzureError> {
    jsonwebtoken::crypto::sign(message.as_bytes(), &key.encoding, Algorithm::RS256)
        .map_err(|e| AzureError::server_error(format!("Token signing failed: {e}")))
}

/// The header value Graph tokens are signed over in place of their `nonce`.
pub(crate) fn hashed_nonce(nonce: &str) -> String {
    b64(&Sha256::digest(nonce.as_bytes()))
}

/// A Microsoft Graph (v1) access token. Its header carries a `nonce`, and the signature covers the
/// header with that nonce replaced by its SHA-256: standard JWT libraries fail to verify it, as they
/// fail on real Graph tokens, so nobody mistakes it for a token meant for them.
fn graph_access_token(key: &SigningKey, grant: &Grant, now: i64, lifetime: u64) -> Result<String, AzureError> {
    let nonce = random_b64(64);
    let mut header =
        json!({"typ": "JWT", "nonce": hashed_nonce(&nonce), "alg": "RS256", "x5t": x5t(key), "kid": key.kid});
    let claims = Value::Object(graph_claims(grant, now, lifetime));
    let payload = b64(claims.to_string().as_bytes());
    let signed_message = format!("{}.{payload}", b64(header.to_string().as_bytes()));
    let signature = rs256(key, &signed_message)?;
    header["nonce"] = json!(nonce);
    Ok(format!("{}.{payload}.{signature}", b64(header.to_string().as_bytes())))
}

fn graph_claims(grant: &Grant, now: i64, lifetime: u64) -> Map<String, Value> {
    let user = &grant.user;
    let (given, family) = user.display_name.split_once(' ').unwrap_or((user.display_name, ""));
    let mut claims = Map::new();
    claims.insert("aud".into(), json!(GRAPH_APP_ID));
    claims.insert("iss".into(), json!(format!("https://sts.windows.net/{TENANT_ID}/")));
    insert_times(&mut claims, now, lifetime);
    claims.insert("acct".into(), json!(0));
    claims.insert("acr".into(), json!("1"));
    claims.insert("aio".into(), json!(random_b64(96)));
    claims.insert("amr".into(), json!(["pwd"]));
    claims.insert("app_displayname".into(), json!("ssofs"));
    claims.insert("appid".into(), json!(CLIENT_ID));
    claims.insert("appidacr".into(), json!("0"));
    claims.insert("family_name".into(), json!(family));
    claims.insert("given_name".into(), json!(given));
    claims.insert("idtyp".into(), json!("user"));
    claims.insert("name".into(), json!(user.display_name));
    claims.insert("oid".into(), json!(user.oid));
    claims.insert("rh".into(), json!(opaque_rh()));
    claims.insert("scp".into(), json!(grant.scopes.scp()));
    claims.insert("sub".into(), json!(pairwise_sub(user.oid, GRAPH_APP_ID)));
    claims.insert("tenant_region_scope".into(), json!(super::discovery::REGION));
    claims.insert("tid".into(), json!(TENANT_ID));
    claims.insert("unique_name".into(), json!(user.upn()));
    claims.insert("upn".into(), json!(user.upn()));
    claims.insert("uti".into(), json!(random_b64(16)));
    claims.insert("ver".into(), json!("1.0"));
    claims
}
