//! One place builds a user's client stack: token store → token source (refreshing) → STS credentials
//! → S3 client (with the one TLS policy, [`Transport::for_profile`] over `crate::trust`) → retries.
//! The mount (single- and multi-user), `ssofs recover` and `ssofs doctor` all build it here, so a
//! change to the stack (once: doctor ignoring `ca_file`) is made once.
//!
//! [`ClientBuilder`] is the seam between a mount and S3: a mount gets one and asks it for each
//! identity's client, so a whole mount can run against a mock client (as mountpoint-s3's
//! `run.rs` with `bin/mock-mount-s3.rs`).

use std::sync::Arc;

use crate::config::Profile;
use crate::credentials::{CredentialError, CredentialProvider};
use crate::identity::{IdentityError, StoreTokenSource, TokenSource, TokenStore, refresh::DEFAULT_MARGIN};
use crate::object::retry::{self, Retrying};
use crate::object::s3::{S3ObjectClient, Transport};
use crate::object::{ObjectClient, ObjectError};

/// What went wrong building or checking a client stack.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The token store could not be opened or read.
    #[error(transparent)]
    Store(#[from] IdentityError),
    /// The profile cannot reach STS (e.g. it has no endpoint).
    #[error(transparent)]
    Sts(#[from] CredentialError),
    /// The S3 client could not be set up (e.g. an unreadable `ca_file`).
    #[error("{0}")]
    Transport(String),
    /// STS refused to give credentials for the stored token.
    #[error("cannot get S3 credentials: {0}")]
    NoCredentials(#[source] CredentialError),
    /// The endpoint did not answer ListBuckets (other than with AccessDenied).
    #[error("cannot list buckets at {endpoint}: {source}")]
    ListBuckets {
        endpoint: String,
        #[source]
        source: ObjectError,
    },
    /// A user of a multi-user mount has no usable login.
    #[error("{0}")]
    NoLogin(String),
}

/// Builds the object client of one identity, given by its token store. A mount holds one and asks
/// it for the mounting user's client (checked before the mount goes up), or for each user's on
/// their first request (multi-user).
#[async_trait::async_trait]
pub trait ClientBuilder: Send + Sync {
    /// The client for the identity whose tokens are in `store`; nothing is sent yet.
    fn build(&self, profile: &Profile, endpoint: &str, store: TokenStore) -> Result<Arc<dyn ObjectClient>, StackError>;

    /// [`ClientBuilder::build`], then a check that sign-in, STS and the endpoint work, so that a
    /// mount fails at once with the reason rather than on the first access.
    async fn build_checked(
        &self,
        profile: &Profile,
        endpoint: &str,
        store: TokenStore,
    ) -> Result<Arc<dyn ObjectClient>, StackError> {
        self.build(profile, endpoint, store)
    }
}

/// The real stack: MinIO (or any S3) through STS with the user's stored tokens.
pub struct S3Stack;

#[async_trait::async_trait]
impl ClientBuilder for S3Stack {
    fn build(&self, profile: &Profile, endpoint: &str, store: TokenStore) -> Result<Arc<dyn ObjectClient>, StackError> {
        Ok(user_client(profile, endpoint, store)?)
    }

    async fn build_checked(
        &self,
        profile: &Profile,
        endpoint: &str,
        store: TokenStore,
    ) -> Result<Arc<dyn ObjectClient>, StackError> {
        let client = user_client(profile, endpoint, store)?;
        client.inner().provider().credentials().await.map_err(StackError::NoCredentials)?;
        match client.list_buckets().await {
            Ok(_) | Err(ObjectError::AccessDenied) => Ok(client),
            Err(source) => Err(StackError::ListBuckets { endpoint: endpoint.to_string(), source }),
        }
    }
}

/// The user's token source: the stored tokens, refreshed ahead of expiry.
pub fn token_source(profile: &Profile, store: TokenStore) -> Arc<StoreTokenSource> {
    Arc::new(StoreTokenSource::new(profile.clone(), store, DEFAULT_MARGIN))
}

/// STS credentials for the tokens `tokens` gives.
pub fn credentials(profile: &Profile, tokens: Arc<dyn TokenSource>) -> Result<CredentialProvider, CredentialError> {
    CredentialProvider::for_profile(profile, tokens)
}

/// The S3 client for a profile: system roots plus the profile's `ca_file` (or `insecure_tls`), its
/// `op_timeout` and checksums.
pub fn s3_client(
    profile: &Profile,
    endpoint: &str,
    provider: CredentialProvider,
) -> Result<S3ObjectClient, StackError> {
    S3ObjectClient::connect(provider, endpoint, &Transport::for_profile(profile)).map_err(StackError::Transport)
}

/// The whole stack for the identity whose tokens are in `store`, with retries bounded by the
/// profile's `op_timeout`.
pub fn user_client(
    profile: &Profile,
    endpoint: &str,
    store: TokenStore,
) -> Result<Arc<Retrying<S3ObjectClient>>, StackError> {
    let provider = credentials(profile, token_source(profile, store))?;
    Ok(Arc::new(Retrying::new(s3_client(profile, endpoint, provider)?, retry::deadline(profile))))
}
