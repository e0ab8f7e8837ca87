//! Uploads of staged files: one PutObject up to `SINGLE_PUT_MAX`, multipart beyond, with parts in
//! flight bounded. Bodies carry Content-MD5 (what every S3 server verifies) unless the profile asks
//! for CRC32C or nothing; the ETag the server answers is checked against the MD5 where S3 defines it.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use md5::Digest;

use super::errors::not_s3;
use super::{MAX_PARTS, PART_CONCURRENCY, PART_SIZE, S3ObjectClient, SINGLE_PUT_MAX};
use crate::config::Checksums;
use crate::object::meta::FileMeta;
use crate::object::{ObjectError, ObjectInfo};

impl S3ObjectClient {
    /// Uploads the file behind `file`: one PutObject up to `SINGLE_PUT_MAX`, multipart beyond.
    pub(super) async fn upload_file(
        &self,
        bucket: &str,
        key: &str,
        file: &File,
        meta: &FileMeta,
    ) -> Result<ObjectInfo, ObjectError> {
        let user_meta = (!meta.is_empty()).then(|| meta.to_user_metadata());
        let size = file.metadata().map_err(|e| ObjectError::Other(format!("staged file of {key}: {e}")))?.len();
        // The SDK opens a body again for each attempt and each part: through /proc/self/fd/N that is
        // the very file behind this descriptor, with an offset of its own, whatever any path names now.
        let path = &PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        if size > SINGLE_PUT_MAX {
            return self.put_multipart(bucket, key, path, size, meta).await;
        }
        let md5 = match self.checksums {
            Checksums::Md5 => Some(
                md5_of(path, 0, size).await.map_err(|e| ObjectError::Other(format!("staged file of {key}: {e}")))?,
            ),
            Checksums::Crc32c | Checksums::Off => None,
        };
        let out = self
            .provider
            .with_fresh_credentials(|| async {
                let body = ByteStream::from_path(path).await.map_err(SdkError::construction_failure)?;
                self.client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(body)
                    .set_content_md5(md5.as_ref().map(base64_md5))
                    .set_checksum_algorithm(self.flexible_checksum())
                    .set_metadata(user_meta.clone())
                    .send()
                    .await
            })
            .await
            .map_err(self.failed())?;
        crate::metrics::uploads::sent(size); // progress hook (status, close/fsync log): the PUT is sent
        if let Some(md5) = &md5 {
            check_etag(key, md5, out.e_tag());
        }
        written(key, size, out.e_tag(), meta)
    }
}

async fn md5_of(path: &Path, offset: u64, len: u64) -> std::io::Result<[u8; 16]> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        let file = File::open(&path)?;
        let mut hash = md5::Md5::new();
        let mut buf = vec![0u8; 1 << 20];
        let (mut pos, end) = (offset, offset + len);
        while pos < end {
            let want = buf.len().min((end - pos) as usize);
            let n = file.read_at(&mut buf[..want], pos)?;
            if n == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the staged file shrank"));
            }
            hash.update(&buf[..n]);
            pos += n as u64;
        }
        Ok(hash.finalize().into())
    })
    .await
    .map_err(std::io::Error::other)?
}

pub(super) fn base64_md5(md5: &[u8; 16]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(md5)
}

/// The server verified Content-MD5 already; a single-part ETag that is an MD5 of other bytes is
/// still worth a warning (with SSE-KMS or SSE-C the ETag is not the MD5, so it is not an error).
fn check_etag(key: &str, md5: &[u8; 16], etag: Option<&str>) {
    let Some(etag) = etag.map(|e| e.trim_matches('"')) else { return };
    if etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit()) && !etag.eq_ignore_ascii_case(&hex::encode(md5))
    {
        tracing::warn!(key, etag, md5 = %hex::encode(md5), "the server's ETag is not the MD5 of what was sent");
    }
}

impl S3ObjectClient {
    /// The flexible checksum to ask the SDK for (sent as an aws-chunked trailer), if any.
    pub(super) fn flexible_checksum(&self) -> Option<aws_sdk_s3::types::ChecksumAlgorithm> {
        (self.checksums == Checksums::Crc32c).then_some(aws_sdk_s3::types::ChecksumAlgorithm::Crc32C)
    }

    /// Multipart upload with `PART_CONCURRENCY` parts in flight; aborted on failure so no orphaned
    /// parts are left behind.
    async fn put_multipart(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        size: u64,
        meta: &FileMeta,
    ) -> Result<ObjectInfo, ObjectError> {
        let user_meta = (!meta.is_empty()).then(|| meta.to_user_metadata());
        let part_size = PART_SIZE.max(size.div_ceil(MAX_PARTS));
        let created = self
            .provider
            .with_fresh_credentials(|| {
                self.client
                    .create_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .set_checksum_algorithm(self.flexible_checksum())
                    .set_metadata(user_meta.clone())
                    .send()
            })
            .await
            .map_err(self.failed())?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let parts = size.div_ceil(part_size);
        let upload = async {
            use futures::StreamExt;
            let results: Vec<Result<CompletedPart, ObjectError>> = futures::stream::iter(0..parts)
                .map(|i| {
                    self.upload_part(bucket, key, &upload_id, path, i, part_size.min(size - i * part_size), part_size)
                })
                .buffered(PART_CONCURRENCY)
                .collect()
                .await;
            let parts: Vec<CompletedPart> = results.into_iter().collect::<Result<_, _>>()?;
            let done = CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
            self.provider
                .with_fresh_credentials(|| {
                    self.client
                        .complete_multipart_upload()
                        .bucket(bucket)
                        .key(key)
                        .upload_id(&upload_id)
                        .multipart_upload(done.clone())
                        .send()
                })
                .await
                .map_err(self.failed())
        };
        match upload.await {
            Ok(out) => written(key, size, out.e_tag(), meta),
            Err(e) => {
                let _ = self.client.abort_multipart_upload().bucket(bucket).key(key).upload_id(&upload_id).send().await;
                Err(e)
            }
        }
    }
}

/// What a successful upload made: the server's ETag, our size, now as LastModified. S3 always
/// answers a stored object with its ETag; an answer without one did not store anything we know of.
pub(super) fn written(key: &str, size: u64, etag: Option<&str>, meta: &FileMeta) -> Result<ObjectInfo, ObjectError> {
    let etag = etag.ok_or_else(|| not_s3(key, "the upload", "without an ETag"))?;
    let meta = FileMeta { known: true, ..*meta };
    Ok(ObjectInfo { key: key.to_string(), size, etag: etag.to_string(), last_modified: SystemTime::now(), meta })
}

impl S3ObjectClient {
    /// Part `index` (from 0) of a multipart upload: `len` bytes of the file at `index * part_size`.
    #[allow(clippy::too_many_arguments)] // one part is named by all of these; a struct would only rename them
    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        path: &Path,
        index: u64,
        len: u64,
        part_size: u64,
    ) -> Result<CompletedPart, ObjectError> {
        let offset = index * part_size;
        let md5 = match self.checksums {
            Checksums::Md5 => Some(
                md5_of(path, offset, len)
                    .await
                    .map_err(|e| ObjectError::Other(format!("staged file of {key}: {e}")))?,
            ),
            Checksums::Crc32c | Checksums::Off => None,
        };
        let number = index as i32 + 1;
        let out = self
            .provider
            .with_fresh_credentials(|| async {
                let body = ByteStream::read_from()
                    .path(path)
                    .offset(offset)
                    .length(Length::Exact(len))
                    .build()
                    .await
                    .map_err(SdkError::construction_failure)?;
                self.client
                    .upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .body(body)
                    .set_content_md5(md5.as_ref().map(base64_md5))
                    .set_checksum_algorithm(self.flexible_checksum())
                    .send()
                    .await
            })
            .await
            .map_err(self.failed())?;
        crate::metrics::uploads::sent(len); // progress hook (status, close/fsync log): this part is sent
        let etag = out.e_tag().ok_or_else(|| not_s3(key, "UploadPart", "without an ETag"))?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .e_tag(etag)
            .set_checksum_crc32_c(out.checksum_crc32_c().map(str::to_string))
            .build())
    }
}
