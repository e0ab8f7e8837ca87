//! `StoreTokenSource`: the `TokenSource` backed by the token store. It refreshes with the stored
//! refresh token when less than `margin` of validity remains, single-flight within the process (a
//! mutex) and across processes (the store's file lock), retrying transient failures with backoff.

use std::time::{Duration, UNIX_EPOCH};

use openidconnect::{RefreshToken, RequestTokenError, Scope};
use tokio::sync::Mutex;

use super::login::{self, Provider};
use super::source::{TokenError, TokenSource, WebIdentityToken};
use super::{IdentityError, StoredTokens, TokenStore};
use crate::config::{Profile, StsToken};

/// Refresh when less than this remains, unless configured otherwise.
pub const DEFAULT_MARGIN: Duration = Duration::from_secs(300);
/// Attempts for one refresh when the IdP is unreachable or answers 5xx.
const ATTEMPTS: u32 = 3;

pub struct StoreTokenSource {
    profile: Profile,
    store: TokenStore,
    margin: Duration,
    provider: Mutex<Option<std::sync::Arc<Provider>>>,
    /// Serializes refreshes inside this process; the store lock does it across processes.
    gate: Mutex<()>,
}

impl StoreTokenSource {
    pub fn new(profile: Profile, store: TokenStore, margin: Duration) -> Self {
        StoreTokenSource { profile, store, margin, provider: Mutex::new(None), gate: Mutex::new(()) }
    }

    fn login_required(&self, reason: impl Into<String>) -> TokenError {
        TokenError::LoginRequired { profile: self.profile.name.clone(), reason: reason.into() }
    }

    fn load(&self) -> Result<StoredTokens, TokenError> {
        self.store
            .load(&self.profile.name)
            .map_err(|e| TokenError::Other(e.to_string()))?
            .ok_or_else(|| self.login_required("not signed in"))
    }

    /// The token STS gets, per the profile's `token` setting.
    fn pick(&self, t: &StoredTokens) -> WebIdentityToken {
        let (jwt, exp) = match self.profile.token {
            StsToken::IdToken => (&t.id_token, t.id_token_expires_at),
            StsToken::AccessToken => (&t.access_token, t.access_token_expires_at.unwrap_or(0)),
        };
        WebIdentityToken::new(jwt.clone(), UNIX_EPOCH + Duration::from_secs(exp.max(0) as u64))
    }

    fn fresh_enough(&self, t: &WebIdentityToken) -> bool {
        t.remaining() > self.margin
    }

    /// The provider, discovered on first use and kept (its keys are refetched when a token needs it).
    async fn provider(&self) -> Result<std::sync::Arc<Provider>, TokenError> {
        let mut slot = self.provider.lock().await;
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let p = std::sync::Arc::new(login::discover(&self.profile).await.map_err(|e| match e {
            IdentityError::Unreachable { .. } => TokenError::Unavailable(e.to_string()),
            other => TokenError::Other(other.to_string()),
        })?);
        *slot = Some(p.clone());
        Ok(p)
    }

    /// Returns a token, refreshing when `force` or when it is too close to expiry. If another process
    /// replaced the token while we waited for the lock, that one is used instead of refreshing again.
    async fn get(&self, force: bool) -> Result<WebIdentityToken, TokenError> {
        let _gate = self.gate.lock().await;
        let before = self.pick(&self.load()?);
        if !force && self.fresh_enough(&before) {
            return Ok(before);
        }
        let store = self.store.clone();
        let name = self.profile.name.clone();
        let lock = tokio::task::spawn_blocking(move || store.lock(&name))
            .await
            .map_err(|e| TokenError::Other(format!("lock task failed: {e}")))?
            .map_err(|e| TokenError::Other(e.to_string()))?;
        // Another process may have refreshed while we waited for the lock.
        let current = self.load()?;
        let now = self.pick(&current);
        let replaced = now.secret() != before.secret();
        if (replaced || !force) && self.fresh_enough(&now) {
            return Ok(now);
        }
        let refreshed = match self.refresh_stored(current).await {
            Ok(t) => t,
            Err(TokenError::LoginRequired { profile, reason }) => {
                // For `ssofs status`: the mount that finds this out is not where the user looks.
                // The marker also makes the desktop notification once per event: only the first
                // refusal after a sign-in (`save` clears it) notifies, whichever process finds it,
                // as all of them hold the store's lock here.
                let first = self.store.login_required(&profile).is_none();
                if let Err(e) = self.store.mark_login_required(&profile, &reason) {
                    tracing::debug!(error = %e, "cannot record that a new sign-in is needed");
                }
                if first {
                    super::notify::sign_in_needed(&self.store, &profile, &reason);
                } else {
                    tracing::debug!(profile, "a new sign-in is still needed (already notified)");
                }
                return Err(TokenError::LoginRequired { profile, reason });
            }
            Err(e) => return Err(e),
        };
        self.store.save(&self.profile.name, &refreshed).map_err(|e| TokenError::Other(e.to_string()))?;
        drop(lock);
        tracing::info!(profile = %self.profile.name, "tokens refreshed");
        Ok(self.pick(&refreshed))
    }

    async fn refresh_stored(&self, current: StoredTokens) -> Result<StoredTokens, TokenError> {
        let rt = current
            .refresh_token
            .clone()
            .ok_or_else(|| self.login_required("no refresh token stored (is `offline_access` in scopes?)"))?;
        let mut delay = Duration::from_millis(500);
        let mut attempt = 1;
        loop {
            match self.refresh_once(&rt).await {
                Err(TokenError::Unavailable(why)) if attempt < ATTEMPTS => {
                    tracing::debug!(attempt, reason = %why, "refresh failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn refresh_once(&self, rt: &str) -> Result<StoredTokens, TokenError> {
        let provider = self.provider().await?;
        let refresh_token = RefreshToken::new(rt.to_string());
        let mut req = provider
            .client
            .exchange_refresh_token(&refresh_token)
            .map_err(|e| TokenError::Other(format!("the identity provider has no token endpoint: {e}")))?;
        for s in self.profile.scopes.iter().filter(|s| *s != "offline_access") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        let resp = req.request_async(&provider.http).await.map_err(|e| self.classify(e))?;
        // Keys the IdP rotated in since discovery are fetched once, only for a token naming an unknown kid.
        login::verified_tokens(&provider, &self.profile, &resp, None, Some(rt.to_string()))
            .await
            .map_err(|e| TokenError::Other(e.to_string()))
    }

    fn classify<RE, T>(&self, e: RequestTokenError<RE, T>) -> TokenError
    where
        RE: std::error::Error + 'static,
        T: openidconnect::ErrorResponse + 'static,
    {
        let transient = matches!(&e, RequestTokenError::Request(_))
            || matches!(&e, RequestTokenError::Parse(..) | RequestTokenError::Other(_));
        match login::refused(e) {
            IdentityError::Refused { error, code, advice }
                if matches!(error.as_str(), "invalid_grant" | "interaction_required") =>
            {
                let code = code.map(|c| format!(" (AADSTS{c})")).unwrap_or_default();
                self.login_required(format!("the identity provider refused the refresh token: {error}{code}. {advice}"))
            }
            other if transient => TokenError::Unavailable(other.to_string()),
            other => TokenError::Other(other.to_string()),
        }
    }
}

#[async_trait::async_trait]
impl TokenSource for StoreTokenSource {
    async fn token(&self) -> Result<WebIdentityToken, TokenError> {
        self.get(false).await
    }

    async fn refresh(&self) -> Result<WebIdentityToken, TokenError> {
        self.get(true).await
    }
}
