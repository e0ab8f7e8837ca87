//! The STS client: `AssumeRoleWithWebIdentity` as a form POST (Azure tokens with many groups run to
//! several KB, too long for a query string). It works with MinIO's claim mode (no RoleArn), MinIO's
//! role-policy mode (RoleArn) and AWS-style STS (RoleArn plus the RoleSessionName AWS requires).
//! TLS trusts the system's roots plus every certificate of the profile's `ca_file` (trust.rs).

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::errors::CredentialError;
use super::refusal::{Context, diagnose};
use super::reply::{parse_error, parse_success};
use crate::config::Profile;
use crate::identity::WebIdentityToken;

/// Whole-request timeout: an STS call is one small round trip.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Larger replies are not STS replies.
const MAX_REPLY: usize = 256 * 1024;

/// What to ask STS for, besides the token.
#[derive(Debug, Clone)]
pub struct StsSettings {
    /// S3/STS endpoint, e.g. `https://minio.example.com`.
    pub endpoint: String,
    /// The profile's client id, only to explain audience mismatches.
    pub client_id: String,
    pub role_arn: Option<String>,
    /// Sent with RoleArn (AWS requires it; MinIO ignores it).
    pub role_session_name: String,
    /// None: let the server decide (MinIO then uses the token's expiry).
    pub duration_seconds: Option<u64>,
    /// An inline session policy (IAM JSON) narrowing the credentials.
    pub policy: Option<String>,
    pub ca_file: Option<std::path::PathBuf>,
    /// Skip certificate verification (the profile's explicit `insecure_tls`).
    pub insecure_tls: bool,
}

impl StsSettings {
    pub fn from_profile(profile: &Profile) -> Result<Self, CredentialError> {
        let endpoint = profile.endpoint.clone().ok_or_else(|| {
            CredentialError::Config(format!(
                "profile {:?} has no `endpoint` (the S3/STS URL): add endpoint = \"https://minio.example.com\"",
                profile.name
            ))
        })?;
        Ok(StsSettings {
            endpoint,
            client_id: profile.client_id.clone(),
            role_arn: profile.role_arn.clone(),
            role_session_name: session_name(&profile.name),
            duration_seconds: profile.duration_seconds,
            policy: None,
            ca_file: profile.ca_file.clone(),
            insecure_tls: profile.insecure_tls,
        })
    }
}

/// AWS allows `[\w+=,.@-]{2,64}`.
fn session_name(profile: &str) -> String {
    let clean: String =
        profile.chars().map(|c| if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) { c } else { '-' }).collect();
    format!("ssofs-{clean}").chars().take(64).collect()
}

/// Credentials as STS issued them. Debug never shows the secret key or session token.
#[derive(Clone)]
pub struct StsCredentials {
    pub access_key_id: String,
    secret_access_key: String,
    session_token: String,
    /// As STS stated it (STS's clock).
    pub expiration: SystemTime,
    /// When they expire by this machine's clock: the lifetime STS granted (Expiration minus its
    /// HTTP Date) counted from when the reply arrived, so a skewed local clock does not matter.
    pub expires_at: SystemTime,
    pub received_at: SystemTime,
}

impl StsCredentials {
    pub fn lifetime(&self) -> Duration {
        self.expires_at.duration_since(self.received_at).unwrap_or_default()
    }

    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    pub fn session_token(&self) -> &str {
        &self.session_token
    }

    #[cfg(test)]
    pub(crate) fn for_tests(received_at: SystemTime, lifetime: Duration) -> Self {
        StsCredentials {
            access_key_id: "AK".into(),
            secret_access_key: "SK".into(),
            session_token: "ST".into(),
            expiration: received_at + lifetime,
            expires_at: received_at + lifetime,
            received_at,
        }
    }

    /// For aws-sdk; the expiry is the local one.
    pub fn to_aws(&self) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            Some(self.session_token.clone()),
            Some(self.expires_at),
            "ssofs-sts",
        )
    }
}

impl std::fmt::Debug for StsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires_at", &super::errors::rfc3339(self.expires_at))
            .finish_non_exhaustive()
    }
}

pub struct StsClient {
    http: reqwest::Client,
    settings: StsSettings,
}

impl StsClient {
    pub fn new(settings: StsSettings) -> Result<Self, CredentialError> {
        reqwest::Url::parse(&settings.endpoint)
            .map_err(|e| CredentialError::Config(format!("STS endpoint {:?} is not a URL: {e}", settings.endpoint)))?;
        let http = http_client(settings.ca_file.as_deref(), settings.insecure_tls)?;
        Ok(StsClient { http, settings })
    }

    pub fn settings(&self) -> &StsSettings {
        &self.settings
    }

    /// One AssumeRoleWithWebIdentity exchange.
    pub async fn assume_role(&self, token: &WebIdentityToken) -> Result<StsCredentials, CredentialError> {
        let s = &self.settings;
        let duration = s.duration_seconds.map(|d| d.to_string());
        let mut form: Vec<(&str, &str)> = vec![
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("WebIdentityToken", token.secret()),
        ];
        if let Some(d) = &duration {
            form.push(("DurationSeconds", d));
        }
        // Always, RoleArn or not: AWS-style STS requires it on every call (MissingParameter
        // otherwise), and MinIO's claim mode ignores it.
        form.push(("RoleSessionName", &s.role_session_name));
        if let Some(arn) = &s.role_arn {
            form.push(("RoleArn", arn));
        }
        if let Some(p) = &s.policy {
            form.push(("Policy", p));
        }
        let unavailable = |detail: String| CredentialError::StsUnavailable { endpoint: s.endpoint.clone(), detail };
        let resp = self.http.post(&s.endpoint).form(&form).send().await.map_err(|e| unavailable(error_chain(&e)))?;
        let received_at = SystemTime::now();
        let status = resp.status().as_u16();
        let server_date = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        let body = read_limited(resp).await.map_err(unavailable)?;
        let bad_reply = |detail: String| CredentialError::BadStsReply { endpoint: s.endpoint.clone(), status, detail };

        if status == 200 {
            let issued = parse_success(&body).map_err(bad_reply)?;
            // Lifetime by STS's own clock when it sent a Date, else by ours.
            let lifetime = match server_date {
                Some(date) => issued.expiration.duration_since(date),
                None => issued.expiration.duration_since(received_at),
            }
            .unwrap_or_default();
            return Ok(StsCredentials {
                access_key_id: issued.access_key_id,
                secret_access_key: issued.secret_access_key,
                session_token: issued.session_token,
                expiration: issued.expiration,
                expires_at: received_at + lifetime,
                received_at,
            });
        }
        let refusal = parse_error(&body);
        if status >= 500 || status == 429 || status == 408 {
            let detail = match refusal {
                Ok(r) => format!("HTTP {status}: {}: {}", r.code, r.message),
                Err(_) => format!("HTTP {status}"),
            };
            return Err(unavailable(detail));
        }
        let refusal = refusal.map_err(bad_reply)?;
        let cx = Context {
            token: token.secret(),
            profile_client_id: &s.client_id,
            duration_seconds: s.duration_seconds,
            server_date,
            local_now: received_at,
        };
        Err(diagnose(&refusal.code, &refusal.message, &cx))
    }
}

async fn read_limited(mut resp: reqwest::Response) -> Result<String, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("reading the reply: {}", error_chain(&e)))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_REPLY {
            return Err(format!("reply larger than {MAX_REPLY} bytes"));
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// reqwest's top-level message ("error sending request") hides the cause; show the whole chain.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut next = e.source();
    while let Some(s) = next {
        parts.push(s.to_string());
        next = s.source();
    }
    parts.join(": ")
}

/// The process's STS client for one trust rule, shared by every identity (see `PerTrustRule`).
fn http_client(ca_file: Option<&Path>, insecure_tls: bool) -> Result<reqwest::Client, CredentialError> {
    static CLIENTS: crate::trust::PerTrustRule<reqwest::Client> = crate::trust::PerTrustRule::new();
    CLIENTS.get_or_build(ca_file, insecure_tls, || new_http_client(ca_file, insecure_tls))
}

fn new_http_client(ca_file: Option<&Path>, insecure_tls: bool) -> Result<reqwest::Client, CredentialError> {
    if insecure_tls {
        tracing::warn!("TLS certificate verification is OFF for STS (insecure_tls)");
    }
    let builder = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(insecure_tls)
        .user_agent(concat!("ssofs/", env!("CARGO_PKG_VERSION")));
    // System roots plus every certificate of ca_file, as for the IdP and S3 (trust.rs).
    let builder = crate::trust::reqwest_trust(builder, ca_file).map_err(CredentialError::Config)?;
    builder.build().map_err(|e| CredentialError::Config(format!("cannot set up HTTPS for STS: {}", error_chain(&e))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_valid_for_aws() {
        assert_eq!(session_name("corp"), "ssofs-corp");
        assert_eq!(session_name("my profile/ü"), "ssofs-my-profile--");
        assert_eq!(session_name(&"x".repeat(100)).len(), 64);
    }

    #[test]
    fn debug_hides_secrets() {
        let now = SystemTime::now();
        let c = StsCredentials {
            access_key_id: "AKID".into(),
            secret_access_key: "very-secret".into(),
            session_token: "session-token-value".into(),
            expiration: now,
            expires_at: now,
            received_at: now,
        };
        let text = format!("{c:?}");
        assert!(text.contains("AKID") && !text.contains("very-secret") && !text.contains("session-token-value"));
    }

    #[test]
    fn unreadable_ca_file_is_a_config_error() {
        let err = http_client(Some(Path::new("/nonexistent/ca.pem")), false).unwrap_err();
        assert!(matches!(err, CredentialError::Config(ref m) if m.contains("/nonexistent/ca.pem")), "{err}");
    }
}
