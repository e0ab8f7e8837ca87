//! `TokenSource`: hands the credentials layer a valid web-identity token for STS, refreshing it with
//! the stored refresh token before it expires.

use std::time::SystemTime;

/// A JWT to hand to STS and when it stops being valid. Debug never prints the token.
#[derive(Clone)]
pub struct WebIdentityToken {
    jwt: String,
    pub expires_at: SystemTime,
}

impl WebIdentityToken {
    pub fn new(jwt: String, expires_at: SystemTime) -> Self {
        WebIdentityToken { jwt, expires_at }
    }

    /// The token itself. Only for the STS request body; never log it.
    pub fn secret(&self) -> &str {
        &self.jwt
    }

    /// Time left before expiry (zero once expired).
    pub fn remaining(&self) -> std::time::Duration {
        self.expires_at.duration_since(SystemTime::now()).unwrap_or_default()
    }
}

impl std::fmt::Debug for WebIdentityToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebIdentityToken").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// Nothing stored, or the IdP refused the refresh token (invalid_grant, interaction_required): only
    /// the user can fix this, by logging in again.
    #[error("login required for profile {profile}: {reason}. Run `ssofs login --profile {profile}`")]
    LoginRequired { profile: String, reason: String },
    /// The IdP could not be reached or answered with a server error; retrying later may work.
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
    /// Anything else (bad configuration, damaged store, unverifiable token).
    #[error("{0}")]
    Other(String),
}

#[async_trait::async_trait]
pub trait TokenSource: Send + Sync + 'static {
    /// A token with at least the configured margin of validity left, refreshing first if needed.
    async fn token(&self) -> Result<WebIdentityToken, TokenError>;

    /// A fresh token even if the current one looks valid (STS refused it, e.g. after key rotation).
    async fn refresh(&self) -> Result<WebIdentityToken, TokenError>;
}
