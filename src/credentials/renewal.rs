//! Background renewal of a provider's credentials: before they expire, and with backoff after a
//! failure, for as long as the provider exists.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::SystemTime;

use tokio::sync::Notify;

use super::{CredentialProvider, IDLE_CHECK, Inner};

impl CredentialProvider {
    pub(super) fn start_background(&self) {
        if !self.inner.options.background_refresh || self.inner.background_started.swap(true, Ordering::AcqRel) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(background(Arc::downgrade(&self.inner), self.inner.wake.clone()));
            }
            Err(_) => self.inner.background_started.store(false, Ordering::Release),
        }
    }

    /// When the background task should act next: retry after a failure, or renew.
    fn next_due(&self) -> Option<SystemTime> {
        let st = self.state();
        match (&st.failure, &st.current) {
            (Some(f), _) => Some(f.retry_at),
            (None, Some(c)) if c.rejected => Some(SystemTime::now()),
            (None, Some(c)) => Some(c.renew_at),
            (None, None) => None,
        }
    }
}

/// Renews credentials before they expire and retries after failures, for as long as the provider
/// exists (it holds only a weak reference).
async fn background(provider: Weak<Inner>, wake: Arc<Notify>) {
    loop {
        let Some(inner) = provider.upgrade() else { return };
        let p = CredentialProvider { inner };
        let wait = match p.next_due() {
            Some(due) => due.duration_since(SystemTime::now()).unwrap_or_default().min(IDLE_CHECK),
            None => IDLE_CHECK,
        };
        if !wait.is_zero() {
            drop(p);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = wake.notified() => {}
            }
            continue;
        }
        let seen = p.state().attempts;
        // The outcome is recorded in the state; failures were logged there.
        let _ = p.exchange_once(seen).await;
    }
}
