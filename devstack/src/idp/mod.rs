//! An OpenID provider shaped like Azure AD (Entra ID) v2 for one tenant and one public-client app:
//! discovery, JWKS with rotation, device code, auth code + PKCE on loopback redirects, refresh tokens,
//! and Azure's error bodies. It behaves as `/work/shared/spec/azure-ad.md` describes Azure, so clients
//! tested against it meet the same shapes in production.
//!
//! All state lives in memory behind mutexes and atomics; the `/_devstack` control API drives it through
//! the public methods of [`Idp`].

mod authorize;
mod device;
mod discovery;
mod error;
mod form;
mod pages;
mod refresh;
mod scopes;
mod token;
mod tokens;
mod userinfo;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::extract::RawQuery;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};

use crate::Config;
use crate::keys::{self, SigningKey};
use crate::scenario::{self, TENANT_ID};

/// Index of the first signing key; the key before it is published too, so the JWKS starts with two.
const FIRST_KEY: usize = 1;

pub struct Idp {
    cfg: Config,
    base_url: String,
    keys: Vec<SigningKey>,
    /// Index into `keys` of the key signing new tokens.
    current_key: AtomicUsize,
    /// Seconds added to iat/nbf/exp of new tokens, to emulate a skewed IdP clock.
    clock_offset: AtomicI64,
    /// Short name of the user who signs in without being asked.
    auto_approve: Mutex<Option<String>>,
    device_codes: Mutex<HashMap<String, device::DeviceCode>>,
    auth_codes: Mutex<HashMap<String, authorize::AuthCode>>,
    refresh_tokens: Mutex<HashMap<String, refresh::RefreshGrant>>,
}

impl Idp {
    /// `base_url` like "http://127.0.0.1:41234" (no trailing slash), known after binding.
    pub fn new(cfg: &Config, base_url: &str) -> Arc<Idp> {
        let auto_approve = cfg.auto_approve.as_deref().and_then(|name| match scenario::find_user(name) {
            Some(user) => Some(user.name.to_string()),
            None => {
                tracing::warn!(user = name, "auto-approve user is not in the scenario; ignoring it");
                None
            }
        });
        Arc::new(Idp {
            cfg: cfg.clone(),
            base_url: base_url.trim_end_matches('/').to_string(),
            keys: keys::all(),
            current_key: AtomicUsize::new(FIRST_KEY),
            clock_offset: AtomicI64::new(0),
            auto_approve: Mutex::new(auto_approve),
            device_codes: Mutex::new(HashMap::new()),
            auth_codes: Mutex::new(HashMap::new()),
            refresh_tokens: Mutex::new(HashMap::new()),
        })
    }

    /// The Azure-shaped routes (not the `/_devstack` control routes).
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/{tenant}/v2.0/.well-known/openid-configuration", get(discovery::openid_configuration))
            .route("/{tenant}/discovery/v2.0/keys", get(discovery::jwks))
            .route("/{tenant}/oauth2/v2.0/authorize", get(authorize::authorize))
            .route("/{tenant}/oauth2/v2.0/token", post(token::token))
            .route("/{tenant}/oauth2/v2.0/devicecode", post(device::devicecode))
            .route("/{tenant}/oauth2/v2.0/logout", get(logout))
            .route("/devicelogin", get(device::login_page).post(device::login_submit))
            .route("/oidc/userinfo", get(userinfo::userinfo))
            .route("/error", get(error_code_page))
            .layer(axum::middleware::map_response(add_date_header))
            .with_state(Arc::clone(self))
    }

    /// The issuer of every token: "{base}/{TENANT_ID}/v2.0".
    pub fn issuer(&self) -> String {
        format!("{}/{TENANT_ID}/v2.0", self.base_url)
    }

    /// Approves (or declines) the pending device code with this user code, as the named user.
    pub fn approve(&self, user_code: &str, user: &str, decline: bool) -> Result<(), String> {
        self.decide_device_code(user_code, user, decline)
    }

    /// Sets (or clears) the user who signs in without being asked.
    pub fn set_auto_approve(&self, user: Option<&str>) -> Result<(), String> {
        let name = match user {
            Some(name) => Some(known_user(name)?.name.to_string()),
            None => None,
        };
        *lock(&self.auto_approve) = name;
        Ok(())
    }

    /// Switches signing to the next key and returns its kid. The new key was not in the JWKS before,
    /// so clients that cached the JWKS must refetch on the unknown kid; the old key stays published.
    pub fn rotate_keys(&self) -> String {
        let count = self.keys.len();
        let previous = self
            .current_key
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |i| Some((i + 1) % count))
            .unwrap_or(FIRST_KEY);
        let kid = self.keys[(previous + 1) % count].kid.clone();
        tracing::info!(%kid, "signing key rotated");
        kid
    }

    /// Revokes every refresh token of the user; returns how many were still usable.
    pub fn revoke(&self, user: &str) -> Result<usize, String> {
        let user = known_user(user)?;
        Ok(self.revoke_refresh_tokens(user.name))
    }

    /// Shifts iat/nbf/exp of every token issued from now on by this many seconds.
    pub fn set_clock_offset(&self, seconds: i64) {
        self.clock_offset.store(seconds, Ordering::Relaxed);
    }

    /// The key signing new tokens.
    fn signing_key(&self) -> SigningKey {
        self.keys[self.current_key.load(Ordering::SeqCst) % self.keys.len()].clone()
    }

    /// The keys in the JWKS: the current one and the one before it, so tokens signed just before a
    /// rotation still verify.
    fn published_keys(&self) -> [&SigningKey; 2] {
        let count = self.keys.len();
        let current = self.current_key.load(Ordering::SeqCst) % count;
        [&self.keys[current], &self.keys[(current + count - 1) % count]]
    }

    /// The auto-approve user, if one is set.
    fn auto_approve_user(&self) -> Option<scenario::User> {
        lock(&self.auto_approve).as_deref().and_then(scenario::find_user)
    }
}

fn known_user(name: &str) -> Result<scenario::User, String> {
    scenario::find_user(name).ok_or_else(|| format!("unknown user '{name}'"))
}

/// Locks a mutex, carrying on after a panic elsewhere: the maps stay consistent between statements.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Clients compare their clock with the `Date` header; hyper adds one when serving, but the router may
/// be served by other means (tests, other servers), so every response gets one here.
async fn add_date_header(mut response: Response) -> Response {
    if !response.headers().contains_key(header::DATE) {
        let now = httpdate::fmt_http_date(std::time::SystemTime::now());
        if let Ok(value) = HeaderValue::from_str(&now) {
            response.headers_mut().insert(header::DATE, value);
        }
    }
    response
}

/// Azure's sign-out page. A loopback `post_logout_redirect_uri` (the only kind registered) is followed.
async fn logout(RawQuery(query): RawQuery) -> Response {
    let form = form::Form::parse(query.unwrap_or_default().as_bytes());
    match form.get("post_logout_redirect_uri") {
        Some(uri) if authorize::is_loopback_redirect(uri) => pages::found(uri),
        _ => pages::page(
            StatusCode::OK,
            "You signed out of your account",
            "<p>It's a good idea to close all browser windows.</p>",
        ),
    }
}

/// Target of `error_uri` in error bodies.
async fn error_code_page(RawQuery(query): RawQuery) -> Response {
    let form = form::Form::parse(query.unwrap_or_default().as_bytes());
    let code: String = form.get("code").unwrap_or("").chars().filter(char::is_ascii_digit).collect();
    let body = format!(
        "<p>Error code <code>AADSTS{code}</code>. The <code>error_description</code> of the response that linked \
         here explains it.</p>"
    );
    pages::page(StatusCode::OK, "Error lookup", &body)
}
