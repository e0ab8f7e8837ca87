//! Refresh tokens: opaque, issued only with `offline_access`, each valid for the configured inactivity
//! window from its own issue. Using one returns a new one and leaves the old one valid, as Azure does.

use std::time::{Duration, Instant, SystemTime};

use crate::scenario;

use super::error::AzureError;
use super::form::Form;
use super::scopes::Scopes;
use super::tokens::{Grant, random_b64};
use super::{Idp, lock};

/// Expired tokens are forgotten this long after expiry (until then they answer "expired").
const KEEP_AFTER_EXPIRY: Duration = Duration::from_secs(3600);

pub(crate) struct RefreshGrant {
    /// Short name of the user; looked up again on use, so tokens reflect the current scenario.
    user: &'static str,
    scopes: Scopes,
    issued: SystemTime,
    expires: Instant,
    revoked: Option<SystemTime>,
}

impl Idp {
    /// Stores and returns a new refresh token carrying `scopes` (the grant's original scopes).
    pub(crate) fn new_refresh_token(&self, user: &scenario::User, scopes: &Scopes) -> String {
        let token = format!("1.AX{}", random_b64(240));
        let now = Instant::now();
        let grant = RefreshGrant {
            user: user.name,
            scopes: scopes.clone(),
            issued: SystemTime::now(),
            expires: now + self.cfg.refresh_token_lifetime,
            revoked: None,
        };
        let mut tokens = lock(&self.refresh_tokens);
        tokens.retain(|_, t| now < t.expires + KEEP_AFTER_EXPIRY);
        tokens.insert(token.clone(), grant);
        token
    }

    /// Checks the `refresh_token` of a token request; returns the user and the token's original scopes.
    pub(crate) fn redeem_refresh_token(&self, form: &Form) -> Result<Grant, AzureError> {
        let token = form.require("refresh_token")?;
        let tokens = lock(&self.refresh_tokens);
        let grant = tokens.get(token).ok_or_else(AzureError::malformed_grant)?;
        if let Some(revoked) = grant.revoked {
            return Err(revoked_error(grant.issued, revoked));
        }
        if Instant::now() >= grant.expires {
            return Err(expired_error(grant.issued, self.cfg.refresh_token_lifetime));
        }
        let user = scenario::find_user(grant.user).ok_or_else(AzureError::malformed_grant)?;
        Ok(Grant { user, scopes: grant.scopes.clone(), nonce: None })
    }

    /// Revokes the user's refresh tokens; returns how many were still usable.
    pub(crate) fn revoke_refresh_tokens(&self, user: &str) -> usize {
        let now = Instant::now();
        let mut tokens = lock(&self.refresh_tokens);
        let mut count = 0;
        for grant in tokens.values_mut().filter(|t| t.user == user && t.revoked.is_none()) {
            if now < grant.expires {
                count += 1;
            }
            grant.revoked = Some(SystemTime::now());
        }
        tracing::info!(user, count, "refresh tokens revoked");
        count
    }
}

fn azure_date(at: SystemTime) -> String {
    let at = time::OffsetDateTime::from(at);
    let format = time::macros::format_description!("[month]/[day]/[year] [hour]:[minute]:[second]");
    at.format(&format).unwrap_or_default()
}

fn revoked_error(issued: SystemTime, revoked: SystemTime) -> AzureError {
    AzureError::new(
        "invalid_grant",
        50173,
        format!(
            "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user \
             might have changed or reset their password. The grant was issued on '{}' and the TokensValidFrom \
             date (before which tokens are not valid) for this user is '{}'.",
            azure_date(issued),
            azure_date(revoked)
        ),
    )
}

fn expired_error(issued: SystemTime, lifetime: Duration) -> AzureError {
    let days = lifetime.as_secs_f64() / 86_400.0;
    AzureError::new(
        "invalid_grant",
        700082,
        format!(
            "The refresh token has expired due to inactivity. The token was issued on {} and was inactive for \
             {days:.2} days.",
            azure_date(issued)
        ),
    )
}
