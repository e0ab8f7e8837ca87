//! Device authorization grant (RFC 8628) as Azure runs it: the devicecode endpoint, polling at the
//! token endpoint, and the `/devicelogin` page where a human (or the control API) approves a user code.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use rand::Rng;
use serde_json::{Value, json};

use crate::scenario::{self, CLIENT_ID, User};

use super::discovery::Tenant;
use super::error::{AzureError, no_store_json};
use super::form::{Form, check_client};
use super::pages::{escape, page};
use super::scopes::Scopes;
use super::tokens::{Grant, random_b64};
use super::{Idp, lock};

/// Letters and digits that cannot be mistaken for each other (no I/1, O/0).
const USER_CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const USER_CODE_LEN: usize = 9;
/// How long finished or expired codes are kept, so late polls still get a precise error.
const KEEP_AFTER_EXPIRY: Duration = Duration::from_secs(600);

pub(crate) struct DeviceCode {
    user_code: String,
    scopes: Scopes,
    expires: Instant,
    interval: Duration,
    last_poll: Option<Instant>,
    state: DeviceState,
}

enum DeviceState {
    Pending,
    Approved(User),
    Declined,
    /// Tokens were handed out; the code cannot be used again.
    Redeemed,
}

pub(crate) async fn devicecode(State(idp): State<Arc<Idp>>, Path(tenant): Path<String>, body: Bytes) -> Response {
    match idp.start_device_flow(&tenant, &Form::parse(&body)) {
        Ok(body) => no_store_json(StatusCode::OK, &body),
        Err(err) => err.into_json_response(&idp.base_url),
    }
}

impl Idp {
    fn start_device_flow(&self, tenant: &str, form: &Form) -> Result<Value, AzureError> {
        Tenant::parse(tenant).ok_or_else(|| AzureError::tenant_not_found("invalid_request", tenant))?;
        check_client(form.require("client_id")?)?;
        let scopes = Scopes::parse(form.get("scope").unwrap_or(""))?;
        let device_code = format!("DAQABIQEAAAD{}", random_b64(96));
        let now = Instant::now();
        let lifetime = self.cfg.device_code_lifetime;
        let interval = self.cfg.device_code_interval;
        let user_code = {
            let mut codes = lock(&self.device_codes);
            codes.retain(|_, d| now < d.expires + KEEP_AFTER_EXPIRY);
            let user_code = unused_user_code(&codes);
            codes.insert(
                device_code.clone(),
                DeviceCode {
                    user_code: user_code.clone(),
                    scopes,
                    expires: now + lifetime,
                    interval,
                    last_poll: None,
                    state: DeviceState::Pending,
                },
            );
            user_code
        };
        tracing::info!("device code issued");
        let verification_uri = format!("{}/devicelogin", self.base_url);
        Ok(json!({
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": verification_uri,
            "expires_in": lifetime.as_secs(),
            "interval": interval.as_secs(),
            "message": format!(
                "To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."
            ),
        }))
    }

    /// One poll of the token endpoint with a device code: tokens once approved, else the RFC 8628 error
    /// for the code's state. An auto-approve user approves a pending code on its first poll.
    pub(crate) fn poll_device_code(&self, device_code: &str) -> Result<Grant, AzureError> {
        let auto_user = self.auto_approve_user();
        let now = Instant::now();
        let mut codes = lock(&self.device_codes);
        let code = codes.get_mut(device_code).ok_or_else(bad_verification_code)?;
        if matches!(code.state, DeviceState::Redeemed) {
            return Err(already_redeemed());
        }
        if now >= code.expires {
            return Err(expired_token());
        }
        let user = match (&code.state, auto_user) {
            (DeviceState::Approved(user), _) => user.clone(),
            (DeviceState::Declined, _) => return Err(declined()),
            (DeviceState::Pending, Some(user)) => user,
            (DeviceState::Pending, None) => return Err(code.pending_poll(now)),
            (DeviceState::Redeemed, _) => return Err(already_redeemed()),
        };
        code.state = DeviceState::Redeemed;
        tracing::info!(user = user.name, "device code redeemed");
        Ok(Grant { user, scopes: code.scopes.clone(), nonce: None })
    }

    pub(crate) fn decide_device_code(&self, user_code: &str, user: &str, decline: bool) -> Result<(), String> {
        let user = super::known_user(user)?;
        let wanted = normalize_user_code(user_code);
        let mut codes = lock(&self.device_codes);
        let code = codes
            .values_mut()
            .find(|d| d.user_code == wanted)
            .ok_or_else(|| format!("unknown user code '{user_code}'"))?;
        if Instant::now() >= code.expires {
            return Err(format!("user code '{wanted}' has expired"));
        }
        if !matches!(code.state, DeviceState::Pending) {
            return Err(format!("user code '{wanted}' was already used"));
        }
        tracing::info!(user = user.name, decline, "device code decided");
        code.state = if decline { DeviceState::Declined } else { DeviceState::Approved(user) };
        Ok(())
    }
}

impl DeviceCode {
    /// `slow_down` when this poll came sooner than half the interval after the previous one (clients
    /// then add 5 s), else `authorization_pending`.
    fn pending_poll(&mut self, now: Instant) -> AzureError {
        let too_soon = self.last_poll.is_some_and(|last| now.duration_since(last) < self.interval / 2);
        self.last_poll = Some(now);
        if too_soon {
            AzureError::new(
                "slow_down",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Polling too frequently; increase the \
                 polling interval by 5 seconds.",
            )
        } else {
            AzureError::new(
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )
        }
    }
}

fn unused_user_code(codes: &std::collections::HashMap<String, DeviceCode>) -> String {
    let mut rng = rand::thread_rng();
    loop {
        let candidate: String = (0..USER_CODE_LEN)
            .map(|_| USER_CODE_ALPHABET[rng.gen_range(0..USER_CODE_ALPHABET.len())] as char)
            .collect();
        if !codes.values().any(|d| d.user_code == candidate) {
            return candidate;
        }
    }
}

/// People type codes in lower case and with separators.
fn normalize_user_code(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

fn bad_verification_code() -> AzureError {
    AzureError::new(
        "bad_verification_code",
        70018,
        "The provided value for the input parameter 'device_code' is not valid. The device code was not recognized.",
    )
}

fn expired_token() -> AzureError {
    AzureError::new(
        "expired_token",
        70020,
        "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
    )
}

fn declined() -> AzureError {
    AzureError::new(
        "authorization_declined",
        70000,
        "The user declined the authorization request for this device code.",
    )
}

fn already_redeemed() -> AzureError {
    AzureError::new(
        "invalid_grant",
        70000,
        "The provided value for the input parameter 'device_code' is not valid. It has already been redeemed.",
    )
}

// The browser side: Azure's microsoft.com/devicelogin, reduced to a code box and a user picker.

pub(crate) async fn login_page(RawQuery(query): RawQuery) -> Response {
    let form = Form::parse(query.unwrap_or_default().as_bytes());
    page(StatusCode::OK, "Enter code", &login_form(form.get("otc").unwrap_or(""), None))
}

pub(crate) async fn login_submit(State(idp): State<Arc<Idp>>, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let code = form.get("otc").unwrap_or("");
    let user = form.get("user").unwrap_or("");
    let decline = form.get("action") == Some("decline");
    match idp.decide_device_code(code, user, decline) {
        Ok(()) if decline => page(
            StatusCode::OK,
            "Sign-in declined",
            "<p>You declined the sign-in on the other device. You may now close this window.</p>",
        ),
        Ok(()) => {
            let body = format!(
                "<p>You have signed in to the <b>ssofs</b> application ({CLIENT_ID}) on your device as {}. You may \
                 now close this window.</p>",
                escape(user)
            );
            page(StatusCode::OK, "You're signed in", &body)
        }
        Err(message) => page(StatusCode::BAD_REQUEST, "Enter code", &login_form(code, Some(&message))),
    }
}

fn login_form(code: &str, problem: Option<&str>) -> String {
    let problem = problem.map(|p| format!("<p style=\"color:#a00\">{}</p>\n", escape(p))).unwrap_or_default();
    let options: String = scenario::users()
        .iter()
        .map(|u| format!("<option value=\"{}\">{} ({})</option>", u.name, escape(u.display_name), escape(&u.upn())))
        .collect();
    format!(
        "{problem}<p>Enter the code displayed on your app or device.</p>\n\
         <form method=\"post\" action=\"devicelogin\">\n\
         <p><label>Code <input name=\"otc\" value=\"{}\" autocomplete=\"off\" autofocus required></label></p>\n\
         <p><label>Sign in as <select name=\"user\">{options}</select></label></p>\n\
         <p><button name=\"action\" value=\"approve\">Sign in</button> \
         <button name=\"action\" value=\"decline\">Decline</button></p>\n</form>",
        escape(code)
    )
}
