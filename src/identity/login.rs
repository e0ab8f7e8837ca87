//! `ssofs login`: the OAuth 2.0 device authorization grant (RFC 8628) against the profile's issuer,
//! with the ID token verified against the provider's JWKS before anything is stored.

use std::io::Write;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod, CoreDeviceAuthorizationResponse,
    CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode,
    CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, ClientId, DeviceAuthorizationUrl, IssuerUrl, Nonce, OAuth2TokenResponse,
    ProviderMetadata, RequestTokenError, Scope,
};
use serde::{Deserialize, Serialize};

use super::{IdentityError, StoredTokens, aadsts_code, azure_advice};
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

/// An HTTP client for the identity provider: no redirects (SSRF), bounded time, optional extra CA.
pub fn http_client(profile: &Profile) -> Result<openidconnect::reqwest::Client, IdentityError> {
    let mut b = openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30));
    if let Some(ca) = &profile.ca_file {
        let pem = std::fs::read(ca).map_err(|e| IdentityError::Config(format!("ca_file {}: {e}", ca.display())))?;
        let cert = openidconnect::reqwest::Certificate::from_pem(&pem)
            .map_err(|e| IdentityError::Config(format!("ca_file {} is not a PEM certificate: {e}", ca.display())))?;
        b = b.add_root_certificate(cert);
    }
    b.build().map_err(|e| IdentityError::Config(format!("cannot build HTTP client: {e}")))
}

/// The identity provider as discovered from the profile's issuer: an OpenID client plus the HTTP
/// client used to talk to it. Discovery happens once per process and is reused for refreshes.
pub struct Provider {
    pub client: OidcClient,
    pub http: openidconnect::reqwest::Client,
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

/// Fetches the discovery document and JWKS and builds the client.
pub async fn discover(profile: &Profile) -> Result<Provider, IdentityError> {
    let http = http_client(profile)?;
    let issuer = IssuerUrl::new(profile.issuer.clone())
        .map_err(|e| IdentityError::Config(format!("issuer {:?} is not a URL: {e}", profile.issuer)))?;
    let disco_url = format!("{}/.well-known/openid-configuration", profile.issuer);
    let metadata = DeviceProviderMetadata::discover_async(issuer, &http).await.map_err(|e| match e {
        openidconnect::DiscoveryError::Request(e) => {
            IdentityError::Unreachable { url: disco_url.clone(), detail: error_chain(&e) }
        }
        other => IdentityError::Discovery { url: disco_url.clone(), detail: error_chain(&other) },
    })?;
    let device_url = metadata.additional_metadata().device_authorization_endpoint.clone();
    let client = CoreClient::from_provider_metadata(metadata, ClientId::new(profile.client_id.clone()), None)
        .set_device_authorization_url(device_url);
    Ok(Provider { client, http })
}

/// Verifies a token response's ID token and turns the response into what the store keeps.
/// `previous_refresh` is kept when the response carries no new refresh token.
pub fn stored_tokens(
    provider: &Provider,
    profile: &Profile,
    token: &openidconnect::core::CoreTokenResponse,
    nonce: Option<&Nonce>,
    previous_refresh: Option<String>,
) -> Result<StoredTokens, IdentityError> {
    let id_token = token.extra_fields().id_token().ok_or_else(|| {
        IdentityError::BadIdToken("no id_token in the token response (is `openid` in scopes?)".into())
    })?;
    let verifier = provider.client.id_token_verifier();
    let claims = match nonce {
        Some(n) => id_token.claims(&verifier, n),
        // Device-code sign-ins and refreshes carry no nonce to compare.
        None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
    }
    .map_err(|e| IdentityError::BadIdToken(error_chain(&e)))?;
    let access_expires = token.expires_in().map(|d| now_unix() + d.as_secs() as i64);
    Ok(StoredTokens {
        issuer: profile.issuer.clone(),
        client_id: profile.client_id.clone(),
        id_token: id_token.to_string(),
        access_token: token.access_token().secret().clone(),
        access_token_expires_at: access_expires,
        refresh_token: token.refresh_token().map(|r| r.secret().clone()).or(previous_refresh),
        id_token_expires_at: claims.expiration().timestamp(),
        username: claims.preferred_username().map(|u| u.as_str().to_string()),
    })
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Runs the device-code flow, printing the URL and code to `out`, and returns verified tokens.
pub async fn device_code(profile: &Profile, out: &mut dyn Write) -> Result<StoredTokens, IdentityError> {
    let provider = discover(profile).await?;
    let mut request = provider.client.exchange_device_code();
    for s in &profile.scopes {
        request = request.add_scope(Scope::new(s.clone()));
    }
    let details: CoreDeviceAuthorizationResponse = request.request_async(&provider.http).await.map_err(refused)?;
    writeln!(
        out,
        "To sign in, open {} in a browser and enter the code {}",
        details.verification_uri().as_str(),
        details.user_code().secret()
    )
    .ok();
    out.flush().ok();

    let token = provider
        .client
        .exchange_device_access_token(&details)
        .map_err(|e| IdentityError::Config(e.to_string()))?
        .request_async(&provider.http, tokio::time::sleep, None)
        .await
        .map_err(refused)?;
    stored_tokens(&provider, profile, &token, None, None)
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
