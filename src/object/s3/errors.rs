//! One mapping from the SDK's failures to the object layer's errors.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::credentials::{CredentialError, is_credentials_code};
use crate::object::ObjectError;

/// One mapping from SDK failures to the object layer's errors. `profile` names the sign-in to renew
/// when S3 refuses the credentials.
pub(super) fn map_err<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: SdkError<E, HttpResponse>,
    profile: &str,
) -> ObjectError {
    if let Some(c) = CredentialError::find_in(&e) {
        return if c.is_permission_denied() || c.needs_login() {
            ObjectError::NoCredentials(c.to_string())
        } else {
            ObjectError::Unavailable(c.to_string())
        };
    }
    if let Some(status) = html_answer(e.raw_response()) {
        return ObjectError::Other(format!(
            "the S3 endpoint answered an HTML page (HTTP {status}), not S3 XML. Check the endpoint URL, and any \
             proxy or captive portal between this machine and it"
        ));
    }
    let status = e.raw_response().map(|r| r.status().as_u16());
    let header = e.raw_response().and_then(|r| r.headers().get("x-minio-error-code")).map(str::trim);
    // The call was retried once after renewing the credentials already (with_fresh_credentials), so
    // a credentials code here means the renewed ones were refused too. Checked before the 403 arm:
    // MinIO refuses an expired key with 403 InvalidAccessKeyId, which is no policy's verdict, and
    // on a HEAD the code is only in MinIO's header.
    if let Some(refused) = [e.code(), header].into_iter().flatten().find(|c| is_credentials_code(c)) {
        return ObjectError::NoCredentials(format!(
            "S3 refused the credentials even after renewing them ({refused}): run `ssofs login --profile {profile}` \
             to sign in again"
        ));
    }
    let code = e.code().or(header).map(str::to_string);
    match (code.as_deref(), status) {
        (Some("NoSuchKey" | "NoSuchBucket" | "NotFound"), _) | (_, Some(404)) => ObjectError::NotFound,
        (Some("AccessDenied"), _) | (_, Some(403)) => ObjectError::AccessDenied,
        (Some("PreconditionFailed"), _) | (_, Some(412)) => ObjectError::Changed,
        (_, Some(s)) if s >= 500 => ObjectError::Unavailable(format!("S3 answered HTTP {s}")),
        (Some(c), _) => ObjectError::Other(format!("S3 error {c}: {}", e.message().unwrap_or(""))),
        (None, _) => ObjectError::Unavailable(crate::identity::login::error_chain(&e)),
    }
}

/// An answer that is not S3's: named as such, not retried (a wrong endpoint or a proxy's page does
/// not go away by asking again soon).
pub(super) fn not_s3(key: &str, operation: &str, what: &str) -> ObjectError {
    ObjectError::Other(format!(
        "the S3 endpoint answered {operation} of {key:?} {what}: that is not an S3 reply. Check the endpoint URL, \
         and any proxy or captive portal between this machine and it"
    ))
}

/// The content type of an answer that failed to parse, when it says HTML.
fn html_answer(response: Option<&HttpResponse>) -> Option<u16> {
    let r = response?;
    let ct = r.headers().get("content-type")?;
    ct.to_ascii_lowercase().contains("html").then(|| r.status().as_u16())
}
