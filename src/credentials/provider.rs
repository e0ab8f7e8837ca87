//! `CredentialProvider`: one per identity. It trades the identity's web-identity token for STS
//! credentials, caches them, renews them in the background before they expire, and is what aws-sdk
//! asks for credentials (`ProvideCredentials`).
//!
//! Renewal is single-flight: however many callers find the credentials expired at once, one STS
//! exchange runs and the others share its outcome. When renewal fails, the current credentials stay
//! in use until they expire; after that every call fails at once with
//! [`CredentialError::NoValidCredentials`] (EACCES for the filesystem) instead of waiting, one warning
//! says what to run, and the background task keeps retrying with backoff so access returns by itself
//! after `ssofs login`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials};
use tokio::sync::Notify;

use super::errors::{CredentialError, rfc3339};
use super::sts::{StsClient, StsCredentials, StsSettings};
use crate::config::Profile;
use crate::identity::TokenSource;

#[path = "renewal.rs"]
mod renewal;

/// Renew when this much (or 20% of the lifetime, if more) remains...
const RENEW_MARGIN: Duration = Duration::from_secs(300);
/// ...but never before half the lifetime has passed, so short credentials are not renewed in a loop.
const MAX_MARGIN_FRACTION: u32 = 2;
/// Credentials count as expired this long before their expiry: requests take time to arrive, and STS
/// states expiry to the second.
const EXPIRY_SAFETY: Duration = Duration::from_secs(2);
/// The background task looks at the state at least this often.
const IDLE_CHECK: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct ProviderOptions {
    /// Renew before expiry from a background task (off only in tests that need the expired state).
    pub background_refresh: bool,
    /// After a failed renewal, wait this long before the next attempt, doubling up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// Upper bound for one renewal (token plus STS), so no caller waits longer.
    pub attempt_timeout: Duration,
}

impl Default for ProviderOptions {
    fn default() -> Self {
        ProviderOptions {
            background_refresh: true,
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(15),
            attempt_timeout: Duration::from_secs(30),
        }
    }
}

/// Counters for tests and `ssofs status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProviderStats {
    /// AssumeRoleWithWebIdentity requests sent.
    pub sts_calls: u64,
    /// Renewals that failed.
    pub failed_renewals: u64,
    /// S3 calls retried after the server rejected the credentials.
    pub reactive_retries: u64,
}

#[derive(Clone)]
pub struct CredentialProvider {
    inner: Arc<Inner>,
}

struct Inner {
    profile: String,
    sts: StsClient,
    tokens: Arc<dyn TokenSource>,
    options: ProviderOptions,
    state: Mutex<State>,
    /// Held for the duration of one exchange: the single flight.
    gate: tokio::sync::Mutex<()>,
    /// Wakes the background task when the schedule changes.
    wake: Arc<Notify>,
    background_started: AtomicBool,
    sts_calls: AtomicU64,
    failed_renewals: AtomicU64,
    reactive_retries: AtomicU64,
}

#[derive(Default)]
struct State {
    current: Option<Current>,
    /// The last renewal failed; cleared by the next success.
    failure: Option<Failure>,
    /// Bumped when an exchange finishes, so waiters can tell one happened while they queued.
    attempts: u64,
    /// The outage warning was logged; logged again only after a recovery.
    warned: bool,
}

struct Current {
    sts: StsCredentials,
    aws: Credentials,
    renew_at: SystemTime,
    /// The server refused them and renewal failed: do not hand them out again.
    rejected: bool,
}

impl Current {
    fn usable(&self, now: SystemTime) -> bool {
        !self.rejected && now + EXPIRY_SAFETY.min(self.sts.lifetime() / 4) < self.sts.expires_at
    }
}

struct Failure {
    error: CredentialError,
    retry_at: SystemTime,
    backoff: Duration,
}

impl State {
    fn usable(&self, now: SystemTime) -> Option<&Current> {
        self.current.as_ref().filter(|c| c.usable(now))
    }
}

impl CredentialProvider {
    pub fn new(sts: StsClient, tokens: Arc<dyn TokenSource>, profile: &str, options: ProviderOptions) -> Self {
        CredentialProvider {
            inner: Arc::new(Inner {
                profile: profile.to_string(),
                sts,
                tokens,
                options,
                state: Mutex::new(State::default()),
                gate: tokio::sync::Mutex::new(()),
                wake: Arc::new(Notify::new()),
                background_started: AtomicBool::new(false),
                sts_calls: AtomicU64::new(0),
                failed_renewals: AtomicU64::new(0),
                reactive_retries: AtomicU64::new(0),
            }),
        }
    }

    /// A provider for a profile's endpoint, role and duration, with default options.
    pub fn for_profile(profile: &Profile, tokens: Arc<dyn TokenSource>) -> Result<Self, CredentialError> {
        let sts = StsClient::new(StsSettings::from_profile(profile)?)?;
        Ok(Self::new(sts, tokens, &profile.name, ProviderOptions::default()))
    }

    pub fn profile(&self) -> &str {
        &self.inner.profile
    }

    pub fn stats(&self) -> ProviderStats {
        ProviderStats {
            sts_calls: self.inner.sts_calls.load(Ordering::Relaxed),
            failed_renewals: self.inner.failed_renewals.load(Ordering::Relaxed),
            reactive_retries: self.inner.reactive_retries.load(Ordering::Relaxed),
        }
    }

    /// When the credentials in use expire (local clock), if there are any.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.state().current.as_ref().map(|c| c.sts.expires_at)
    }

    /// The access key id in use (not a secret), to tell which credentials a failed call used.
    pub fn current_access_key(&self) -> Option<String> {
        self.state().current.as_ref().map(|c| c.sts.access_key_id.clone())
    }

    /// Valid credentials: the cached ones, or freshly exchanged ones when those expired. Fails with
    /// [`CredentialError::NoValidCredentials`] when there are none and renewal fails or is failing.
    pub async fn credentials(&self) -> Result<Credentials, CredentialError> {
        self.start_background();
        let seen = {
            let st = self.state();
            let now = SystemTime::now();
            if let Some(c) = st.usable(now) {
                return Ok(c.aws.clone());
            }
            if let Some(f) = &st.failure {
                // Known to be failing: answer at once rather than wait for a possibly slow attempt.
                // The background task retries; without it, a caller does once the backoff is over.
                let retry_here = !self.inner.options.background_refresh && now >= f.retry_at;
                if !retry_here || self.inner.gate.try_lock().is_err() {
                    return Err(self.denied(&st, f.error.clone()));
                }
            }
            st.attempts
        };
        let outcome = self.exchange_once(seen).await;
        outcome.map_err(|cause| self.denied(&self.state(), cause))
    }

    /// Renews now even though the credentials look valid (the reactive path: the server refused
    /// them). Concurrent callers share one exchange.
    pub async fn force_refresh(&self) -> Result<(), CredentialError> {
        let stale = self.current_access_key();
        self.replace(stale.as_deref()).await
    }

    /// Replaces the credentials whose access key is `stale`, unless someone already has.
    pub(crate) async fn replace(&self, stale: Option<&str>) -> Result<(), CredentialError> {
        let seen = self.state().attempts;
        let _gate = self.inner.gate.lock().await;
        {
            let st = self.state();
            let now = SystemTime::now();
            if let Some(c) = st.usable(now)
                && Some(c.sts.access_key_id.as_str()) != stale
            {
                return Ok(());
            }
            if st.attempts != seen
                && let Some(f) = &st.failure
            {
                return Err(f.error.clone());
            }
        }
        let outcome = self.exchange_and_record().await.map(|_| ());
        if outcome.is_err() {
            self.reject(stale);
        }
        outcome
    }

    /// Marks the credentials with access key `key` as refused by the server.
    fn reject(&self, key: Option<&str>) {
        let mut st = self.state();
        if let Some(c) = st.current.as_mut()
            && Some(c.sts.access_key_id.as_str()) == key
        {
            c.rejected = true;
        }
    }

    pub(crate) fn count_reactive_retry(&self) {
        self.inner.reactive_retries.fetch_add(1, Ordering::Relaxed);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn denied(&self, st: &State, cause: CredentialError) -> CredentialError {
        if cause.is_permission_denied() {
            return cause;
        }
        let now = SystemTime::now();
        CredentialError::NoValidCredentials {
            profile: self.inner.profile.clone(),
            expired_at: st.current.as_ref().map(|c| c.sts.expires_at.min(now)),
            cause: Box::new(cause),
        }
    }

    /// One exchange, unless another caller's finished while this one waited for the gate: then its
    /// outcome is shared.
    async fn exchange_once(&self, seen: u64) -> Result<Credentials, CredentialError> {
        let _gate = self.inner.gate.lock().await;
        {
            let st = self.state();
            if st.attempts != seen {
                if let Some(c) = st.usable(SystemTime::now()) {
                    return Ok(c.aws.clone());
                }
                if let Some(f) = &st.failure {
                    return Err(f.error.clone());
                }
            }
        }
        self.exchange_and_record().await
    }

    /// Runs the exchange (the caller holds the gate) and records its outcome.
    async fn exchange_and_record(&self) -> Result<Credentials, CredentialError> {
        let limit = self.inner.options.attempt_timeout;
        let outcome = tokio::time::timeout(limit, self.exchange()).await.unwrap_or_else(|_| {
            Err(CredentialError::StsUnavailable {
                endpoint: self.inner.sts.settings().endpoint.clone(),
                detail: format!("no credentials within {} s (identity provider and STS)", limit.as_secs()),
            })
        });
        let now = SystemTime::now();
        let mut st = self.state();
        st.attempts += 1;
        crate::metrics::series::sts_renewal(outcome.is_ok());
        let result = match outcome {
            Ok(sts) => {
                tracing::debug!(profile = %self.inner.profile, access_key = %sts.access_key_id,
                    expires = %rfc3339(sts.expires_at), "obtained S3 credentials");
                if st.warned {
                    tracing::info!("S3 credentials for profile {} renewed; access restored", self.inner.profile);
                    st.warned = false;
                }
                let aws = sts.to_aws();
                st.current = Some(Current { renew_at: renew_time(&sts), sts, aws: aws.clone(), rejected: false });
                st.failure = None;
                Ok(aws)
            }
            Err(error) => {
                self.inner.failed_renewals.fetch_add(1, Ordering::Relaxed);
                let opts = &self.inner.options;
                let backoff = st.failure.as_ref().map_or(opts.retry_min, |f| (f.backoff * 2).min(opts.retry_max));
                if !st.warned {
                    tracing::warn!("{}", self.outage_warning(&st, &error, now));
                    st.warned = true;
                }
                st.failure = Some(Failure { error: error.clone(), retry_at: now + backoff, backoff });
                Err(error)
            }
        };
        self.inner.wake.notify_one();
        result
    }

    /// Token, then STS; a refusal a newer token may cure is retried once with a refreshed token.
    async fn exchange(&self) -> Result<StsCredentials, CredentialError> {
        let token = self.inner.tokens.token().await?;
        self.inner.sts_calls.fetch_add(1, Ordering::Relaxed);
        match self.inner.sts.assume_role(&token).await {
            Err(e) if e.newer_token_may_help() => {
                tracing::debug!(profile = %self.inner.profile, "STS refused the token; retrying with a refreshed one");
                let token = self.inner.tokens.refresh().await?;
                self.inner.sts_calls.fetch_add(1, Ordering::Relaxed);
                self.inner.sts.assume_role(&token).await
            }
            other => other,
        }
    }

    /// The one message logged per outage: what is wrong, what happens, what to run.
    fn outage_warning(&self, st: &State, error: &CredentialError, now: SystemTime) -> String {
        let p = &self.inner.profile;
        let until = match st.usable(now) {
            Some(c) => format!("The current credentials stay in use until {}; after that ", rfc3339(c.sts.expires_at)),
            None => "Until then ".to_string(),
        };
        let what = if error.is_transient() {
            format!("ssofs keeps retrying; if this persists, run `ssofs login --profile {p}`")
        } else {
            format!(
                "Run `ssofs login --profile {p}` (after fixing the cause, if it is not the sign-in); access comes back by itself, no remount needed"
            )
        };
        format!("cannot renew S3 credentials for profile {p}: {error}. {until}file access is denied. {what}")
    }
}

/// When 20% of the lifetime or 5 minutes remain, whichever comes first, but not before half the
/// lifetime (short credentials) and not within a second of receipt.
fn renew_time(c: &StsCredentials) -> SystemTime {
    let lifetime = c.lifetime();
    let margin = (lifetime / 5).max(RENEW_MARGIN).min(lifetime / MAX_MARGIN_FRACTION);
    (c.expires_at - margin).max(c.received_at + Duration::from_secs(1))
}

impl ProvideCredentials for CredentialProvider {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            self.credentials().await.map_err(provider::error::CredentialsError::provider_error)
        })
    }
}

impl std::fmt::Debug for CredentialProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialProvider")
            .field("profile", &self.inner.profile)
            .field("expires_at", &self.expires_at().map(rfc3339))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "provider_tests.rs"]
mod tests;
