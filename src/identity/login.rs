//! `ssofs login`: discovery of the profile's identity provider, the device authorization grant
//! (RFC 8628) and the verification of every ID token before anything is stored. The browser flow
//! (auth code + PKCE on a loopback redirect) lives in [`super::browser`].

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::sync::RwLock;
use std::time::{Duration, SystemTime};

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod, CoreDeviceAuthorizationResponse,
    CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, ClientId, DeviceAuthorizationUrl, JsonWebKeySet, Nonce, OAuth2TokenResponse,
    ProviderMetadata, RequestTokenError, Scope,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::verify::{self, Expectations, ExpectedIssuer, VerifyError};
use super::{IdentityError, StoredTokens, aadsts_code, azure_advice, clock};
use crate::config::Profile;

#[derive(Clone, Debug, Deserialize, Serialize)]
struct DeviceEndpoint {
    device_authorization_endpoint: DeviceAuthorizationUrl,
}
impl AdditionalProviderMetadata for DeviceEndpoint {}

type DeviceProviderMetadata = ProviderMetadata<
    DeviceEndpoint,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// An HTTP client for the identity provider: no redirects (SSRF), bounded time, the one trust rule.
pub fn http_client(profile: &Profile) -> Result<openidconnect::reqwest::Client, IdentityError> {
    let b = openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30));
    // System roots plus every certificate of ca_file, as for STS and S3 (trust.rs).
    let mut b = crate::trust::reqwest_trust(b, profile.ca_file.as_deref()).map_err(IdentityError::Config)?;
    if profile.insecure_tls {
        tracing::warn!(issuer = %profile.issuer, "TLS certificate verification is OFF for the identity provider (insecure_tls)");
        b = b.danger_accept_invalid_certs(true);
    }
    b.build().map_err(|e| IdentityError::Config(format!("cannot build HTTP client: {e}")))
}

/// The identity provider as discovered from the profile's issuer: an OpenID client, the HTTP client
/// used to talk to it, and what ID tokens are verified against. Discovery happens once per process
/// and is reused for refreshes; the signing keys are fetched again when a token names an unknown one.
pub struct Provider {
    pub client: OidcClient,
    pub http: openidconnect::reqwest::Client,
    /// The issuer ID tokens must carry (Azure's `{tenantid}` template for /common and /organizations).
    pub issuer: ExpectedIssuer,
    /// Seconds the provider's clock (HTTP `Date`) is ahead of ours, when it sent one.
    pub clock_skew: Option<i64>,
    /// The clock warning for the user, when the skew is beyond [`clock::MAX_SKEW_SECS`].
    pub clock_warning: Option<String>,
    jwks_uri: String,
    keys: RwLock<JsonWebKeySet<CoreJsonWebKey>>,
    algorithms: Vec<CoreJwsSigningAlgorithm>,
}

pub type OidcClient = openidconnect::Client<
    openidconnect::EmptyAdditionalClaims,
    CoreAuthDisplay,
    openidconnect::core::CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    openidconnect::core::CoreAuthPrompt,
    openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    openidconnect::core::CoreTokenResponse,
    openidconnect::core::CoreTokenIntrospectionResponse,
    openidconnect::core::CoreRevocableToken,
    openidconnect::core::CoreRevocationErrorResponse,
    openidconnect::EndpointSet,
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// GETs a JSON document; returns the body and the `Date` header.
async fn get_json(
    http: &openidconnect::reqwest::Client,
    url: &str,
    what: &str,
) -> Result<(Vec<u8>, Option<String>), IdentityError> {
    let resp = http
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| IdentityError::Unreachable { url: url.to_string(), detail: error_chain(&e) })?;
    let status = resp.status();
    let date = resp.headers().get("date").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = resp
        .bytes()
        .await
        .map_err(|e| IdentityError::Unreachable { url: url.to_string(), detail: error_chain(&e) })?
        .to_vec();
    if !status.is_success() {
        // Azure answers an unknown tenant with its JSON error body (AADSTS90002).
        let json: Value = serde_json::from_slice(&body).unwrap_or_default();
        if let Some(error) = json.get("error").and_then(Value::as_str) {
            let code = aadsts_code(json.get("error_description").and_then(Value::as_str).unwrap_or(""));
            return Err(IdentityError::Refused { error: error.to_string(), code, advice: azure_advice(error, code) });
        }
        return Err(IdentityError::Discovery { url: url.to_string(), detail: format!("{what}: HTTP {status}") });
    }
    Ok((body, date))
}

/// Fetches the discovery document and JWKS and builds the client.
///
/// The document's issuer must be served by the authority the profile names (same scheme, host and
/// port): Azure answers a tenant domain with the tenant GUID's issuer, and `/common` and
/// `/organizations` with the `{tenantid}` template, so an exact match would reject both.
pub async fn discover(profile: &Profile) -> Result<Provider, IdentityError> {
    let http = http_client(profile)?;
    let profile_issuer = openidconnect::url::Url::parse(&profile.issuer)
        .map_err(|e| IdentityError::Config(format!("issuer {:?} is not a URL: {e}", profile.issuer)))?;
    let disco_url = format!("{}/.well-known/openid-configuration", profile.issuer);
    let (body, date) = get_json(&http, &disco_url, "discovery document").await?;
    let clock_skew = clock::skew(date.as_deref(), SystemTime::now());
    let bad = |detail: String| IdentityError::Discovery { url: disco_url.clone(), detail };
    let metadata: DeviceProviderMetadata = serde_json::from_slice(&body).map_err(|e| bad(e.to_string()))?;
    let doc_issuer = metadata.issuer().as_str().trim_end_matches('/').to_string();
    let same_authority = openidconnect::url::Url::parse(&doc_issuer.replace("{tenantid}", "tenantid"))
        .is_ok_and(|u| u.origin() == profile_issuer.origin());
    if doc_issuer != profile.issuer && !same_authority {
        return Err(bad(format!(
            "it names issuer {doc_issuer}, which is not served by {}; check the profile's issuer",
            profile_issuer.origin().ascii_serialization()
        )));
    }
    let jwks_uri = metadata.jwks_uri().url().to_string();
    let keys = fetch_keys(&http, &jwks_uri).await?;
    let algorithms = metadata.id_token_signing_alg_values_supported().clone();
    let device_url = metadata.additional_metadata().device_authorization_endpoint.clone();
    let metadata = metadata.set_jwks(keys.clone());
    let client = CoreClient::from_provider_metadata(metadata, ClientId::new(profile.client_id.clone()), None)
        .set_device_authorization_url(device_url);
    let clock_warning = clock::check(clock_skew, &profile.issuer);
    tracing::debug!(issuer = %doc_issuer, keys = keys.keys().len(), ?clock_skew, "identity provider discovered");
    Ok(Provider {
        client,
        http,
        issuer: ExpectedIssuer::from_discovered(&doc_issuer),
        clock_skew,
        clock_warning,
        jwks_uri,
        keys: RwLock::new(keys),
        algorithms,
    })
}

async fn fetch_keys(
    http: &openidconnect::reqwest::Client,
    jwks_uri: &str,
) -> Result<JsonWebKeySet<CoreJsonWebKey>, IdentityError> {
    let (body, _) = get_json(http, jwks_uri, "signing keys (JWKS)").await?;
    serde_json::from_slice(&body)
        .map_err(|e| IdentityError::Discovery { url: jwks_uri.to_string(), detail: format!("JWKS: {e}") })
}

impl Provider {
    /// Verifies an ID token with the keys fetched so far.
    pub fn verify_id_token(
        &self,
        profile: &Profile,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<Map<String, Value>, VerifyError> {
        let keys = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let expect = Expectations {
            issuer: &self.issuer,
            client_id: &profile.client_id,
            accept_v1_issuer: profile.accept_v1_issuer,
            nonce,
            algorithms: &self.algorithms,
            now: now_unix(),
        };
        verify::verify(id_token, &keys, &expect)
    }

    /// Fetches the JWKS again (after a key rotation).
    pub async fn refetch_keys(&self) -> Result<(), IdentityError> {
        let keys = fetch_keys(&self.http, &self.jwks_uri).await?;
        tracing::debug!(keys = keys.keys().len(), "signing keys fetched again");
        *self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) = keys;
        Ok(())
    }

    /// [`Provider::verify_id_token`], fetching the keys again once when the token names a key we do
    /// not have (Azure rotates its keys; the new one appears in the JWKS before it signs).
    pub async fn verify_id_token_refetching(
        &self,
        profile: &Profile,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<Map<String, Value>, IdentityError> {
        match self.verify_id_token(profile, id_token, nonce) {
            Err(VerifyError::UnknownKey(kid)) => {
                tracing::info!(%kid, "ID token signed with a key not seen yet; fetching the provider's keys again");
                self.refetch_keys().await?;
                self.verify_id_token(profile, id_token, nonce)
            }
            other => other,
        }
        .map_err(|e| IdentityError::BadIdToken(e.to_string()))
    }
}

/// Verifies a token response's ID token with the keys fetched so far and turns the response into what
/// the store keeps. `previous_refresh` is kept when the response carries no new refresh token.
/// A token signed with a key not fetched yet fails here; [`verified_tokens`] fetches the keys again.
pub fn stored_tokens(
    provider: &Provider,
    profile: &Profile,
    token: &openidconnect::core::CoreTokenResponse,
    nonce: Option<&Nonce>,
    previous_refresh: Option<String>,
) -> Result<StoredTokens, IdentityError> {
    let id_token = response_id_token(token)?;
    let claims = provider
        .verify_id_token(profile, &id_token, nonce.map(|n| n.secret().as_str()))
        .map_err(|e| IdentityError::BadIdToken(e.to_string()))?;
    Ok(tokens_from(profile, token, id_token, &claims, previous_refresh))
}

/// [`stored_tokens`], fetching the provider's keys again once when the ID token is signed with a key
/// that was not published at discovery.
pub async fn verified_tokens(
    provider: &Provider,
    profile: &Profile,
    token: &openidconnect::core::CoreTokenResponse,
    nonce: Option<&Nonce>,
    previous_refresh: Option<String>,
) -> Result<StoredTokens, IdentityError> {
    let id_token = response_id_token(token)?;
    let claims = provider.verify_id_token_refetching(profile, &id_token, nonce.map(|n| n.secret().as_str())).await?;
    Ok(tokens_from(profile, token, id_token, &claims, previous_refresh))
}

fn response_id_token(token: &openidconnect::core::CoreTokenResponse) -> Result<String, IdentityError> {
    token
        .extra_fields()
        .id_token()
        .map(|t| t.to_string())
        .ok_or_else(|| IdentityError::BadIdToken("no id_token in the token response (is `openid` in scopes?)".into()))
}

fn tokens_from(
    profile: &Profile,
    token: &openidconnect::core::CoreTokenResponse,
    id_token: String,
    claims: &Map<String, Value>,
    previous_refresh: Option<String>,
) -> StoredTokens {
    let access_expires = token.expires_in().map(|d| now_unix() + d.as_secs() as i64);
    let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_string);
    StoredTokens {
        issuer: profile.issuer.clone(),
        client_id: profile.client_id.clone(),
        id_token,
        access_token: token.access_token().secret().clone(),
        access_token_expires_at: access_expires,
        refresh_token: token.refresh_token().map(|r| r.secret().clone()).or(previous_refresh),
        id_token_expires_at: claims.get("exp").and_then(Value::as_i64).unwrap_or(0),
        username: text("preferred_username").or_else(|| text("upn")).or_else(|| text("email")),
    }
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// How the device-code flow polls.
#[derive(Debug, Clone, Default)]
pub struct DevicePolling {
    /// Poll this often instead of the interval the provider asks for, until the provider answers
    /// `slow_down` (then its interval plus 5 s is used). For testing the `slow_down` handling.
    pub interval_override: Option<Duration>,
    /// Print a QR code of the verification URL.
    pub qr: bool,
}

/// Runs the device-code flow, printing the URL and code to `out`, and returns verified tokens.
pub async fn device_code(profile: &Profile, out: &mut dyn Write) -> Result<StoredTokens, IdentityError> {
    let provider = discover(profile).await?;
    device_code_with(&provider, profile, out, &DevicePolling::default()).await
}

/// The device-code flow against an already discovered provider.
pub async fn device_code_with(
    provider: &Provider,
    profile: &Profile,
    out: &mut dyn Write,
    polling: &DevicePolling,
) -> Result<StoredTokens, IdentityError> {
    let mut request = provider.client.exchange_device_code();
    for s in &profile.scopes {
        request = request.add_scope(Scope::new(s.clone()));
    }
    let details: CoreDeviceAuthorizationResponse = request.request_async(&provider.http).await.map_err(refused)?;
    let url = details.verification_uri().as_str();
    writeln!(out, "To sign in, open {url} in a browser and enter the code {}", details.user_code().secret()).ok();
    if polling.qr
        && let Some(qr) = super::qr::render(url)
    {
        writeln!(out, "\nOr scan this QR code to open the page on your phone:\n{qr}").ok();
    }
    writeln!(out, "Waiting for the sign-in (the code expires in {} s)...", details.expires_in().as_secs()).ok();
    out.flush().ok();

    let out = RefCell::new(out);
    let last = Cell::new(None::<Duration>);
    let slowed = Cell::new(false);
    let sleep = |asked: Duration| {
        // openidconnect lengthens the interval only on `slow_down` (+5 s) and on network errors.
        if last.get().is_some_and(|l| asked > l) {
            slowed.set(true);
            let mut o = out.borrow_mut();
            writeln!(o, "The identity provider asked to poll less often; polling every {} s", asked.as_secs()).ok();
            o.flush().ok();
        }
        last.set(Some(asked));
        let wait = match polling.interval_override {
            Some(fast) if !slowed.get() => fast,
            _ => asked,
        };
        tokio::time::sleep(wait)
    };
    let token = provider
        .client
        .exchange_device_access_token(&details)
        .map_err(|e| IdentityError::Config(e.to_string()))?
        .request_async(&provider.http, sleep, None)
        .await
        .map_err(refused)?;
    verified_tokens(provider, profile, &token, None, None).await
}

/// Maps a failed token-endpoint call, keeping Azure's error name and AADSTS code.
pub fn refused<RE, T>(e: RequestTokenError<RE, T>) -> IdentityError
where
    RE: std::error::Error + 'static,
    T: openidconnect::ErrorResponse + 'static,
{
    match e {
        RequestTokenError::ServerResponse(resp) => {
            let json = serde_json::to_value(&resp).unwrap_or_default();
            let error = json.get("error").and_then(|v| v.as_str()).unwrap_or("error").to_string();
            let description = json.get("error_description").and_then(|v| v.as_str()).unwrap_or("");
            let code = aadsts_code(description);
            let advice = azure_advice(&error, code);
            IdentityError::Refused { error, code, advice }
        }
        RequestTokenError::Request(e) => {
            IdentityError::Unreachable { url: "token endpoint".into(), detail: error_chain(&e) }
        }
        other => IdentityError::Refused { error: error_chain(&other), code: None, advice: azure_advice("", None) },
    }
}

pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
