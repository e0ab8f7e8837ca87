//! The reactive path: an S3 call the server refuses because of the credentials (ExpiredToken,
//! InvalidAccessKeyId, InvalidToken/InvalidTokenId; on a HEAD, which has no body, MinIO's
//! `x-minio-error-code` header) is retried once after a forced renewal, invisibly to the caller.
//!
//! Why a wrapper around the call ([`CredentialProvider::with_fresh_credentials`]) and not an SDK
//! interceptor or retry classifier: a classifier can mark the error retryable but cannot renew the
//! credentials before the next attempt, and the SDK's retry would resend the same request under its
//! own retry budget and backoff. The wrapper re-runs the caller's closure, which rebuilds the request
//! (including a fresh body stream, so uploads from non-rewindable streams retry correctly), after
//! exactly one single-flight renewal. The object-client layer routes every S3 call through it.
//!
//! When there are no valid credentials, aws-sdk reports the provider's error as a dispatch failure;
//! [`super::CredentialError::find_in`] digs the typed [`super::CredentialError::NoValidCredentials`]
//! out of it, which the filesystem maps to EACCES.
//!
//! The SDK's own identity cache must be off ([`s3_config`] does this): the provider already caches,
//! and the SDK's cache would keep serving the refused credentials until their stated expiry.

use std::future::Future;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use super::provider::CredentialProvider;

/// Error codes that mean "these credentials are no good", as MinIO and AWS send them. MinIO answers
/// an expired temporary key with InvalidAccessKeyId (it looks it up as unknown), AWS and Ceph with
/// ExpiredToken.
const REJECTION_CODES: [&str; 4] = ["ExpiredToken", "InvalidAccessKeyId", "InvalidToken", "InvalidTokenId"];

/// Whether an S3 error code says the credentials are no good.
pub fn is_credentials_code(code: &str) -> bool {
    REJECTION_CODES.contains(&code)
}

/// Whether the server refused the call because of the credentials.
pub fn is_credentials_rejection<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    let from_body = err.as_service_error().and_then(ProvideErrorMetadata::code);
    let from_header = err.raw_response().and_then(|r| r.headers().get("x-minio-error-code")).map(|v| v.trim());
    [from_body, from_header].into_iter().flatten().any(is_credentials_code)
}

impl CredentialProvider {
    /// Runs an S3 call; if the server refuses the credentials, renews them and runs it once more.
    /// If renewal fails, the second run fails in credential resolution with
    /// [`super::CredentialError::NoValidCredentials`] (find it with `CredentialError::find_in`).
    pub async fn with_fresh_credentials<T, E, F, Fut>(&self, mut call: F) -> Result<T, SdkError<E, HttpResponse>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata,
    {
        let used = self.current_access_key();
        match call().await {
            Err(e) if is_credentials_rejection(&e) => {
                tracing::debug!(profile = %self.profile(), code = ?e.code(), "S3 refused the credentials; renewing and retrying once");
                self.count_reactive_retry();
                // A failed renewal marks the refused credentials unusable, so the retry below fails
                // promptly with the typed permission error instead of being refused again.
                let _ = self.replace(used.as_deref()).await;
                call().await
            }
            other => other,
        }
    }
}

/// An aws-sdk-s3 configuration using `provider` against a MinIO-style endpoint (path-style
/// addressing, region us-east-1, the SDK's identity cache off). Callers may adjust it further.
pub fn s3_config(provider: &CredentialProvider, endpoint: &str) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .identity_cache(aws_sdk_s3::config::IdentityCache::no_cache())
        .credentials_provider(provider.clone())
        // Flexible checksums only where an operation requires them: by default the SDK sends every
        // body as aws-chunked with a CRC32 trailer, which servers from before trailing checksums
        // refuse (Ceph RGW 16: 400 XAmzContentSHA256Mismatch on every upload). Uploads carry
        // Content-MD5 instead (object::s3), which every S3 server verifies.
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
}
