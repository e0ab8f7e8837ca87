//! Multipart uploads: the four requests (create, part, complete, abort), used both for a staged
//! file uploaded whole at close (`put_multipart`, parts in flight bounded) and, through the
//! `ObjectClient` trait, for a file streamed in parts while it is being written. Parts are read
//! from the staged file's descriptor, carry Content-MD5 (or CRC32C, or nothing, as the profile
//! says), and completion repeats each part's ETag (and CRC32C) as the server answered it.

use std::ops::Range;
use std::path::Path;

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use super::errors::not_s3;
use super::upload::{base64_md5, md5_of, written};
use super::{PART_CONCURRENCY, PART_SIZE, S3ObjectClient};
use crate::config::Checksums;
use crate::object::meta::FileMeta;
use crate::object::{MAX_PARTS, ObjectError, ObjectInfo, Part, Upload};

/// The SDK reads a part's body from the file in chunks of this size: a few reads per MiB (its
/// default of 64 KiB costs a blocking-pool hop per 64 KiB), while memory per part in flight stays
/// at one chunk.
const READ_CHUNK: usize = 1 << 20;

impl S3ObjectClient {
    /// Multipart upload of the whole file at `path` with `PART_CONCURRENCY` parts in flight;
    /// aborted on failure so no orphaned parts are left behind.
    pub(super) async fn put_multipart(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        size: u64,
        meta: &FileMeta,
    ) -> Result<ObjectInfo, ObjectError> {
        let part_size = PART_SIZE.max(size.div_ceil(MAX_PARTS));
        let upload = self.create_upload(bucket, key, meta).await?;
        let parts = size.div_ceil(part_size);
        let sent = async {
            use futures::StreamExt;
            let results: Vec<Result<Part, ObjectError>> = futures::stream::iter(0..parts)
                .map(|i| {
                    let range = i * part_size..(size.min((i + 1) * part_size));
                    self.send_part(&upload, i as u32 + 1, path, range)
                })
                .buffered(PART_CONCURRENCY)
                .collect()
                .await;
            let parts: Vec<Part> = results.into_iter().collect::<Result<_, _>>()?;
            self.complete(&upload, &parts, size, meta).await
        };
        match sent.await {
            Ok(info) => Ok(info),
            Err(e) => {
                let _ = self.abort(&upload).await;
                Err(e)
            }
        }
    }

    /// CreateMultipartUpload, with the object's metadata (and the checksum algorithm its parts use).
    pub(super) async fn create_upload(&self, bucket: &str, key: &str, meta: &FileMeta) -> Result<Upload, ObjectError> {
        let user_meta = (!meta.is_empty()).then(|| meta.to_user_metadata());
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
        let id = created.upload_id().filter(|id| !id.is_empty());
        let id = id.ok_or_else(|| not_s3(key, "CreateMultipartUpload", "without an upload id"))?;
        Ok(Upload { bucket: bucket.to_string(), key: key.to_string(), id: id.to_string() })
    }

    /// UploadPart of bytes `range` of the file at `path` (a `/proc/self/fd/N` link).
    pub(super) async fn send_part(
        &self,
        upload: &Upload,
        number: u32,
        path: &Path,
        range: Range<u64>,
    ) -> Result<Part, ObjectError> {
        let Upload { bucket, key, id } = upload;
        let (offset, len) = (range.start, range.end.saturating_sub(range.start));
        let md5 = match self.checksums {
            Checksums::Md5 => Some(
                md5_of(path, offset, len)
                    .await
                    .map_err(|e| ObjectError::Other(format!("staged file of {key}: {e}")))?,
            ),
            Checksums::Crc32c | Checksums::Off => None,
        };
        let out = self
            .provider
            .with_fresh_credentials(|| async {
                let body = ByteStream::read_from()
                    .path(path)
                    .offset(offset)
                    .length(Length::Exact(len))
                    .buffer_size(READ_CHUNK)
                    .build()
                    .await
                    .map_err(SdkError::construction_failure)?;
                self.client
                    .upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(id)
                    .part_number(number as i32)
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
        Ok(Part { number, etag: etag.to_string(), crc32c: out.checksum_crc32_c().map(str::to_string) })
    }

    /// CompleteMultipartUpload from `parts`; the object's info as for any upload.
    pub(super) async fn complete(
        &self,
        upload: &Upload,
        parts: &[Part],
        size: u64,
        meta: &FileMeta,
    ) -> Result<ObjectInfo, ObjectError> {
        let completed: Vec<CompletedPart> = parts
            .iter()
            .map(|p| {
                CompletedPart::builder()
                    .part_number(p.number as i32)
                    .e_tag(&p.etag)
                    .set_checksum_crc32_c(p.crc32c.clone())
                    .build()
            })
            .collect();
        let done = CompletedMultipartUpload::builder().set_parts(Some(completed)).build();
        let out = self
            .provider
            .with_fresh_credentials(|| {
                self.client
                    .complete_multipart_upload()
                    .bucket(&upload.bucket)
                    .key(&upload.key)
                    .upload_id(&upload.id)
                    .multipart_upload(done.clone())
                    .send()
            })
            .await
            .map_err(self.failed())?;
        written(&upload.key, size, out.e_tag(), meta)
    }

    /// AbortMultipartUpload: the server drops the parts it holds.
    pub(super) async fn abort(&self, upload: &Upload) -> Result<(), ObjectError> {
        self.provider
            .with_fresh_credentials(|| {
                self.client
                    .abort_multipart_upload()
                    .bucket(&upload.bucket)
                    .key(&upload.key)
                    .upload_id(&upload.id)
                    .send()
            })
            .await
            .map_err(self.failed())?;
        Ok(())
    }
}
