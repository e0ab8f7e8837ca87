//! The real `ObjectClient`: aws-sdk-s3 with the user's own STS credentials. Every call goes through
//! `CredentialProvider::with_fresh_credentials` (one retry after renewal when S3 refuses the
//! credentials); throttling and 5xx are retried by the SDK's standard retry with backoff; every
//! attempt is bounded in time.

use std::fs::File;
use std::ops::Range;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use md5::Digest;

mod download;
mod errors;
mod list;
mod metered;
mod multipart;
mod transport;
mod upload;

pub use self::transport::Transport;

use self::errors::{map_err, not_s3};
use self::upload::{base64_md5, written};
use super::meta::FileMeta;
use super::{BlockSink, ListPage, ObjectClient, ObjectError, ObjectInfo, Part, Upload};
use crate::config::Checksums;
use crate::credentials::{CredentialProvider, s3_config};

/// Files up to this size go up in one PutObject; larger ones as multipart uploads.
const SINGLE_PUT_MAX: u64 = 16 << 20;
const PART_SIZE: u64 = 16 << 20;
/// Parts uploaded at once.
const PART_CONCURRENCY: usize = 4;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct S3ObjectClient {
    client: Client,
    provider: CredentialProvider,
    checksums: Checksums,
}

impl S3ObjectClient {
    /// A client for `endpoint` with the user's credentials from `provider`.
    pub fn connect(provider: CredentialProvider, endpoint: &str, transport: &Transport) -> Result<Self, String> {
        if transport.insecure_tls {
            tracing::warn!(endpoint, "TLS certificate verification is OFF for S3 (insecure_tls)");
        }
        let http = transport.http_client(CONNECT_TIMEOUT)?;
        // The operation bound covers the SDK's own retries of one request (a whole single PutObject
        // of up to 16 MiB, or one part): nothing waits longer than op_timeout on one answer.
        let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(transport.op_timeout))
            .operation_attempt_timeout(transport.op_timeout)
            .operation_timeout(transport.op_timeout)
            .build();
        let retry = aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(5);
        let conf = s3_config(&provider, endpoint)
            .timeout_config(timeouts)
            .retry_config(retry)
            .interceptor(super::complete_xml::CompleteXml)
            .interceptor(metered::Metered)
            .http_client(http)
            .build();
        Ok(S3ObjectClient { client: Client::from_conf(conf), provider, checksums: transport.checksums })
    }

    pub fn provider(&self) -> &CredentialProvider {
        &self.provider
    }

    /// [`map_err`] for this client's sign-in.
    fn failed<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
    ) -> impl Fn(SdkError<E, HttpResponse>) -> ObjectError + '_ {
        move |e| map_err(e, self.provider.profile())
    }
}

/// `bytes FIRST-LAST/TOTAL` (TOTAL may be `*`).
fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let (span, _total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    Some((first.trim().parse().ok()?, last.trim().parse().ok()?))
}

fn mtime(t: Option<&aws_sdk_s3::primitives::DateTime>) -> SystemTime {
    t.and_then(|d| SystemTime::try_from(*d).ok()).unwrap_or(SystemTime::UNIX_EPOCH)
}

#[async_trait::async_trait]
impl ObjectClient for S3ObjectClient {
    async fn list_buckets(&self) -> Result<Vec<String>, ObjectError> {
        let out =
            self.provider.with_fresh_credentials(|| self.client.list_buckets().send()).await.map_err(self.failed())?;
        Ok(out.buckets().iter().filter_map(|b| b.name().map(str::to_string)).collect())
    }

    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<String>,
    ) -> Result<ListPage, ObjectError> {
        self.page(bucket, prefix, continuation).await
    }

    async fn has_entries(&self, bucket: &str, prefix: &str) -> Result<bool, ObjectError> {
        self.any_below(bucket, prefix).await
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, ObjectError> {
        let out = self
            .provider
            .with_fresh_credentials(|| self.client.head_object().bucket(bucket).key(key).send())
            .await
            .map_err(self.failed())?;
        let etag = out.e_tag().ok_or_else(|| not_s3(key, "HeadObject", "without an ETag"))?;
        Ok(ObjectInfo {
            key: key.to_string(),
            size: out.content_length().unwrap_or(0).max(0) as u64,
            etag: etag.to_string(),
            last_modified: mtime(out.last_modified()),
            meta: FileMeta::from_user_metadata(out.metadata()),
        })
    }

    async fn get_range(
        &self,
        bucket: &str,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<Bytes, ObjectError> {
        let len = (range.end.saturating_sub(range.start)).max(1) as usize;
        // One block of the whole range: delivered once, when complete.
        let whole = std::sync::Mutex::new(Bytes::new());
        self.fetch_range(bucket, key, range, etag, len, &|data| *whole.lock().unwrap() = data).await?;
        Ok(whole.into_inner().unwrap())
    }

    async fn get_blocks(
        &self,
        bucket: &str,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
        block: usize,
        deliver: &BlockSink<'_>,
    ) -> Result<(), ObjectError> {
        self.fetch_range(bucket, key, range, etag, block, deliver).await
    }

    async fn put_file(&self, bucket: &str, key: &str, file: &File, meta: &FileMeta) -> Result<ObjectInfo, ObjectError> {
        self.upload_file(bucket, key, file, meta).await
    }

    async fn put_bytes(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        meta: &FileMeta,
    ) -> Result<ObjectInfo, ObjectError> {
        let size = body.len() as u64;
        let user_meta = (!meta.is_empty()).then(|| meta.to_user_metadata());
        let out = self
            .provider
            .with_fresh_credentials(|| {
                let md5 = (self.checksums == Checksums::Md5).then(|| base64_md5(&md5::Md5::digest(&body).into()));
                self.client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(ByteStream::from(body.clone()))
                    .set_content_md5(md5)
                    .set_checksum_algorithm(self.flexible_checksum())
                    .set_metadata(user_meta.clone())
                    .send()
            })
            .await
            .map_err(self.failed())?;
        written(key, size, out.e_tag(), meta)
    }

    async fn begin_upload(&self, bucket: &str, key: &str, meta: &FileMeta) -> Result<Upload, ObjectError> {
        self.create_upload(bucket, key, meta).await
    }

    async fn upload_part(
        &self,
        upload: &Upload,
        number: u32,
        file: &File,
        range: Range<u64>,
    ) -> Result<Part, ObjectError> {
        self.send_part(upload, number, &fd_path(file), range).await
    }

    async fn complete_upload(
        &self,
        upload: &Upload,
        parts: &[Part],
        size: u64,
        meta: &FileMeta,
    ) -> Result<ObjectInfo, ObjectError> {
        self.complete(upload, parts, size, meta).await
    }

    async fn abort_upload(&self, upload: &Upload) -> Result<(), ObjectError> {
        self.abort(upload).await
    }

    async fn set_meta(&self, bucket: &str, key: &str, meta: &FileMeta) -> Result<ObjectInfo, ObjectError> {
        // REPLACE drops every header not sent again: keep the object's other user metadata (s3fs's
        // xattr, rclone's md5chksum, ...) and its Content-Type, as s3fs and rclone do.
        let current = self
            .provider
            .with_fresh_credentials(|| self.client.head_object().bucket(bucket).key(key).send())
            .await
            .map_err(self.failed())?;
        let mut user_meta = current.metadata().cloned().unwrap_or_default();
        for (k, v) in meta.to_user_metadata() {
            user_meta.retain(|existing, _| !existing.eq_ignore_ascii_case(&k));
            user_meta.insert(k, v);
        }
        let content_type = current.content_type().map(str::to_string);
        let source = format!("{bucket}/{}", urlencode_key(key));
        self.provider
            .with_fresh_credentials(|| {
                self.client
                    .copy_object()
                    .bucket(bucket)
                    .key(key)
                    .copy_source(source.clone())
                    .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
                    .set_metadata(Some(user_meta.clone()))
                    .set_content_type(content_type.clone())
                    .send()
            })
            .await
            .map_err(self.failed())?;
        // The new ETag, size and metadata as the server now has them.
        self.head(bucket, key).await
    }

    async fn copy(&self, bucket: &str, from: &str, to: &str) -> Result<(), ObjectError> {
        let source = format!("{bucket}/{}", urlencode_key(from));
        self.provider
            .with_fresh_credentials(|| {
                self.client.copy_object().bucket(bucket).key(to).copy_source(source.clone()).send()
            })
            .await
            .map_err(self.failed())?;
        Ok(())
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        self.provider
            .with_fresh_credentials(|| self.client.delete_object().bucket(bucket).key(key).send())
            .await
            .map_err(self.failed())?;
        Ok(())
    }

    fn credentials_expire_at(&self) -> Option<SystemTime> {
        self.provider.expires_at()
    }
}

/// The path through which the SDK opens `file` again, for each attempt and each part:
/// `/proc/self/fd/N` is the very file behind this descriptor, with an offset of its own, whatever
/// any path names now.
fn fd_path(file: &File) -> std::path::PathBuf {
    use std::os::fd::AsRawFd;
    std::path::PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// CopySource is `bucket/key` with the key URL-encoded (slashes kept).
fn urlencode_key(key: &str) -> String {
    key.split('/').map(percent_encode).collect::<Vec<_>>().join("/")
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn bodies_are_cut_into_blocks_as_they_arrive_and_never_past_what_was_asked() {
        let got = std::sync::Mutex::new(Vec::new());
        let deliver = |b: bytes::Bytes| got.lock().unwrap().push(b.to_vec());
        let mut f = super::download::BlockFiller::new(10, 4, &deliver);
        f.push(b"ab");
        f.push(b"cdefg");
        assert_eq!(*got.lock().unwrap(), [b"abcd".to_vec()], "a whole block is delivered at once");
        for chunk in [&b"h"[..], b"ijXX"] {
            f.push(chunk);
        }
        assert_eq!(f.received(), 12, "the extra bytes are counted");
        assert_eq!(got.lock().unwrap().len(), 2, "the short last block waits for the end of the reply");
        f.finish();
        assert_eq!(*got.lock().unwrap(), [b"abcd".to_vec(), b"efgh".to_vec(), b"ij".to_vec()]);
    }

    use aws_sdk_s3::config::http::HttpResponse;
    use aws_sdk_s3::error::{ErrorMetadata, SdkError};
    use aws_sdk_s3::operation::get_object::GetObjectError;

    use super::{ObjectError, map_err, parse_content_range};

    /// A service error as aws-sdk reports it: HTTP status, the code from the body (if any), and
    /// MinIO's `x-minio-error-code` header (if any).
    fn refused(
        status: u16,
        code: Option<&str>,
        header: Option<&'static str>,
    ) -> SdkError<GetObjectError, HttpResponse> {
        let status = aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap();
        let mut raw = HttpResponse::new(status, aws_smithy_types::body::SdkBody::empty());
        if let Some(h) = header {
            raw.headers_mut().insert("x-minio-error-code", h);
        }
        let mut meta = ErrorMetadata::builder();
        if let Some(c) = code {
            meta = meta.code(c);
        }
        SdkError::service_error(GetObjectError::generic(meta.build()), raw)
    }

    /// What reaches `map_err` with a credentials code has been retried once after renewal already:
    /// the renewed credentials were refused too. MinIO says so with 403 InvalidAccessKeyId (an
    /// expired key is an unknown key to it), which must not read as a policy refusal.
    #[test]
    fn credentials_refused_after_renewal_ask_for_a_login_not_access_denied() {
        for (status, code, header) in [
            (403, Some("InvalidAccessKeyId"), None),
            (400, Some("ExpiredToken"), None),
            (403, Some("InvalidTokenId"), None),
            (400, Some("InvalidToken"), None),
            (403, None, Some("InvalidAccessKeyId")),
            (403, Some("Forbidden"), Some("InvalidAccessKeyId")),
        ] {
            match map_err(refused(status, code, header), "corp") {
                ObjectError::NoCredentials(m) => assert!(m.contains("run `ssofs login --profile corp`"), "{m}"),
                other => panic!("HTTP {status}, code {code:?}, header {header:?}: {other:?}"),
            }
        }
        assert!(matches!(map_err(refused(403, Some("AccessDenied"), None), "corp"), ObjectError::AccessDenied));
        assert!(matches!(map_err(refused(403, None, None), "corp"), ObjectError::AccessDenied));
    }

    #[test]
    fn content_ranges_parse_or_are_refused() {
        assert_eq!(parse_content_range("bytes 0-99/200"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes 5-5/*"), Some((5, 5)));
        assert_eq!(parse_content_range("bytes */200"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range("bytes 9-x/2"), None);
    }
}
