//! Authorization code flow with PKCE for a native app on a loopback redirect URI: the authorize endpoint
//! (with a user picker for humans) and code redemption at the token endpoint.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use sha2::{Digest, Sha256};

use crate::scenario::{self, CLIENT_ID, TENANT_DOMAIN, User};

use super::discovery::Tenant;
use super::error::AzureError;
use super::form::{Form, check_client};
use super::pages::{error_page, escape, found, page};
use super::scopes::Scopes;
use super::tokens::{Grant, b64, random_b64};
use super::{Idp, lock};

/// Azure's authorization codes live about ten minutes.
const CODE_LIFETIME: Duration = Duration::from_secs(600);

pub(crate) struct AuthCode {
    redirect_uri: String,
    challenge: Option<Challenge>,
    grant: Grant,
    expires: Instant,
    redeemed: bool,
}

#[derive(Debug, Clone)]
struct Challenge {
    value: String,
    method: ChallengeMethod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChallengeMethod {
    S256,
    Plain,
}

/// What the authorize request turned into, once the app's redirect URI is trusted.
enum Outcome {
    Code(String),
    /// No user known yet: show the picker (with a note when `login_hint` named nobody).
    PickUser(Option<String>),
}

/// The registered redirect URI is `http://localhost`: Azure matches it on any port and we accept any
/// path; `127.0.0.1` is accepted as well. `[::1]` and everything else is a mismatch.
pub(crate) fn is_loopback_redirect(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    (host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1") && port_ok
}

pub(crate) async fn authorize(
    State(idp): State<Arc<Idp>>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let form = Form::parse(query.unwrap_or_default().as_bytes());
    idp.authorize_request(&tenant, &form)
}

impl Idp {
    fn authorize_request(&self, tenant: &str, form: &Form) -> Response {
        // Until the redirect URI is validated, errors are shown in the browser, as Azure does.
        let redirect_uri = match trusted_redirect_uri(tenant, form) {
            Ok(uri) => uri,
            Err(err) => return error_page(&err),
        };
        let (reply, mode_error) = Reply::new(redirect_uri, form);
        if let Some(err) = mode_error {
            return reply.error(&err);
        }
        match self.authorize_outcome(form) {
            Ok(Outcome::Code(code)) => reply.code(&code),
            Ok(Outcome::PickUser(note)) => user_picker(form, note.as_deref()),
            Err(err) => reply.error(&err),
        }
    }

    fn authorize_outcome(&self, form: &Form) -> Result<Outcome, AzureError> {
        let response_type = form.require("response_type")?;
        if response_type != "code" {
            return Err(AzureError::new(
                "unsupported_response_type",
                700054,
                format!("response_type '{response_type}' is not enabled for the application."),
            ));
        }
        let scopes = Scopes::parse(form.get("scope").unwrap_or(""))?;
        let challenge = parse_challenge(form)?;
        let user = match form.get("login_hint") {
            Some(hint) => match scenario::find_user(hint) {
                Some(user) => user,
                None => return Ok(Outcome::PickUser(Some(unknown_user(hint).headline()))),
            },
            None => match self.auto_approve_user() {
                Some(user) => user,
                None if form.get("prompt") == Some("none") => return Err(login_required()),
                None => return Ok(Outcome::PickUser(None)),
            },
        };
        let grant = Grant { user, scopes, nonce: form.get("nonce").map(str::to_string) };
        Ok(Outcome::Code(self.new_auth_code(form, challenge, grant)))
    }

    fn new_auth_code(&self, form: &Form, challenge: Option<Challenge>, grant: Grant) -> String {
        let code = format!("1.AX{}", random_b64(192));
        let now = Instant::now();
        let redirect_uri = form.get("redirect_uri").unwrap_or_default().to_string();
        tracing::info!(user = grant.user.name, "authorization code issued");
        let mut codes = lock(&self.auth_codes);
        codes.retain(|_, c| now < c.expires + CODE_LIFETIME);
        codes.insert(
            code.clone(),
            AuthCode { redirect_uri, challenge, grant, expires: now + CODE_LIFETIME, redeemed: false },
        );
        code
    }

    /// Redeems a code at the token endpoint: single use, unexpired, same redirect URI, PKCE verified.
    pub(crate) fn redeem_auth_code(&self, form: &Form) -> Result<Grant, AzureError> {
        let code = form.require("code")?;
        let redirect_uri = form.require("redirect_uri")?;
        let mut codes = lock(&self.auth_codes);
        let entry = codes.get_mut(code).ok_or_else(AzureError::malformed_grant)?;
        if entry.redeemed {
            return Err(AzureError::new(
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an \
                 existing refresh token.",
            ));
        }
        if Instant::now() >= entry.expires {
            return Err(AzureError::new(
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to inactivity. Send a new \
                 interactive authorization request for this user and resource.",
            ));
        }
        if entry.redirect_uri != redirect_uri {
            return Err(AzureError::new(
                "invalid_grant",
                500112,
                format!(
                    "The reply address '{redirect_uri}' does not match the reply address '{}' provided when \
                     requesting Authorization code.",
                    entry.redirect_uri
                ),
            ));
        }
        verify_pkce(entry.challenge.as_ref(), form.get("code_verifier"))?;
        entry.redeemed = true;
        Ok(entry.grant.clone())
    }
}

/// Checks what must hold before Azure trusts the redirect URI: tenant, app, registered URI.
fn trusted_redirect_uri(tenant: &str, form: &Form) -> Result<String, AzureError> {
    Tenant::parse(tenant).ok_or_else(|| AzureError::tenant_not_found("invalid_request", tenant))?;
    check_client(form.require("client_id")?)?;
    let uri = form.require("redirect_uri")?;
    if !is_loopback_redirect(uri) {
        return Err(AzureError::new(
            "invalid_request",
            50011,
            format!(
                "The redirect URI '{uri}' specified in the request does not match the redirect URIs configured \
                 for the application '{CLIENT_ID}'. Make sure the redirect URI sent in the request matches one \
                 added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError \
                 to learn more about how to fix this."
            ),
        ));
    }
    Ok(uri.to_string())
}

fn parse_challenge(form: &Form) -> Result<Option<Challenge>, AzureError> {
    let Some(value) = form.get("code_challenge") else {
        return Ok(None);
    };
    // RFC 7636: the method defaults to plain.
    let method = match form.get("code_challenge_method").unwrap_or("plain") {
        "S256" => ChallengeMethod::S256,
        "plain" => ChallengeMethod::Plain,
        other => {
            return Err(AzureError::new(
                "invalid_request",
                501491,
                format!("Invalid code_challenge_method '{other}'. Supported methods are 'S256' and 'plain'."),
            ));
        }
    };
    Ok(Some(Challenge { value: value.to_string(), method }))
}

fn verify_pkce(challenge: Option<&Challenge>, verifier: Option<&str>) -> Result<(), AzureError> {
    let Some(challenge) = challenge else {
        return Ok(());
    };
    let matches = verifier.is_some_and(|v| match challenge.method {
        ChallengeMethod::S256 => b64(&Sha256::digest(v.as_bytes())) == challenge.value,
        ChallengeMethod::Plain => v == challenge.value,
    });
    if matches {
        Ok(())
    } else {
        Err(AzureError::new(
            "invalid_grant",
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
        ))
    }
}

fn unknown_user(hint: &str) -> AzureError {
    AzureError::new(
        "invalid_request",
        50034,
        format!(
            "The user account {hint} does not exist in the {TENANT_DOMAIN} directory. To sign into this \
             application, the account must be added to the directory."
        ),
    )
}

fn login_required() -> AzureError {
    AzureError::new("login_required", 50058, "A silent sign-in request was sent but no user is signed in.")
}

/// How the answer travels back to the app (`response_mode`), plus the app's `state`.
struct Reply {
    redirect_uri: String,
    state: Option<String>,
    mode: ResponseMode,
}

#[derive(Clone, Copy)]
enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

impl Reply {
    /// An unknown `response_mode` comes back as the error to send (in query mode).
    fn new(redirect_uri: String, form: &Form) -> (Reply, Option<AzureError>) {
        let state = form.get("state").map(str::to_string);
        let (mode, error) = match form.get("response_mode").unwrap_or("query") {
            "query" => (ResponseMode::Query, None),
            "fragment" => (ResponseMode::Fragment, None),
            "form_post" => (ResponseMode::FormPost, None),
            other => {
                let err = AzureError::new(
                    "invalid_request",
                    900142,
                    format!("The provided value for the input parameter 'response_mode' is not valid: '{other}'."),
                );
                (ResponseMode::Query, Some(err))
            }
        };
        (Reply { redirect_uri, state, mode }, error)
    }

    fn code(&self, code: &str) -> Response {
        self.send(vec![("code", code.to_string())])
    }

    fn error(&self, err: &AzureError) -> Response {
        self.send(vec![
            ("error", err.error.to_string()),
            ("error_description", err.headline()),
            ("error_codes", err.code.to_string()),
        ])
    }

    fn send(&self, mut params: Vec<(&str, String)>) -> Response {
        if let Some(state) = &self.state {
            params.push(("state", state.clone()));
        }
        let encoded = serde_urlencoded::to_string(&params).unwrap_or_default();
        match self.mode {
            ResponseMode::Query => {
                let separator = if self.redirect_uri.contains('?') { '&' } else { '?' };
                found(&format!("{}{separator}{encoded}", self.redirect_uri))
            }
            ResponseMode::Fragment => found(&format!("{}#{encoded}", self.redirect_uri)),
            ResponseMode::FormPost => self.form_post(&params),
        }
    }

    /// `form_post`: a page that posts the parameters to the redirect URI as soon as it loads.
    fn form_post(&self, params: &[(&str, String)]) -> Response {
        let inputs: String = params
            .iter()
            .map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", escape(k), escape(v)))
            .collect();
        let body = format!(
            "<form method=\"post\" action=\"{}\">{inputs}<noscript><button>Continue</button></noscript></form>\
             <script>document.forms[0].submit()</script>",
            escape(&self.redirect_uri)
        );
        page(StatusCode::OK, "Working...", &body)
    }
}

/// Azure's account picker, as links back to this request with `login_hint` set.
fn user_picker(form: &Form, note: Option<&str>) -> Response {
    let query = form.query_without("login_hint");
    let links: String = scenario::users()
        .iter()
        .map(|u: &User| {
            let href = format!("?{query}&login_hint={}", urlencoding::encode(u.name));
            format!("<li><a href=\"{}\">{}</a> ({})</li>\n", escape(&href), escape(u.display_name), escape(&u.upn()))
        })
        .collect();
    let note = note.map(|n| format!("<p style=\"color:#a00\">{}</p>\n", escape(n))).unwrap_or_default();
    page(StatusCode::OK, "Pick an account", &format!("{note}<ul>\n{links}</ul>"))
}
