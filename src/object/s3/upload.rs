//! Uploads of staged files: one PutObject up to `SINGLE_PUT_MAX`, multipart beyond, with parts in
//! flight bounded. Bodies carry Content-MD5 (what every S3 server verifies) unless the profile asks
//! for CRC32C or nothing; the ETag the server answers is checked against the MD5 where S3 defines it.

use std::fs::File;
use std::path::Path;
use std::time::SystemTime;

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use md5::Digest;

use super::errors::not_s3;
use super::{S3ObjectClient, SINGLE_PUT_MAX};
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
        let path = &super::fd_path(file);
        if size > SINGLE_PUT_MAX {
            return self.put_multipart(bucket, key, path, size, meta).await;
        }
        let staged_err = |e: std::io::Error| ObjectError::Other(format!("staged file of {key}: {e}"));
        let small = if size <= SMALL_PUT_MAX { Some(read_small(file, size).map_err(staged_err)?) } else { None };
        let md5 = match (self.checksums, &small) {
            (Checksums::Md5, Some(body)) => Some(md5::Md5::digest(body).into()),
            (Checksums::Md5, None) => Some(md5_of(path, 0, size).await.map_err(staged_err)?),
            (Checksums::Crc32c | Checksums::Off, _) => None,
        };
        let out = self
            .provider
            .with_fresh_credentials(|| async {
                let body = match &small {
                    Some(body) => ByteStream::from(body.clone()),
                    None => ByteStream::from_path(path).await.map_err(SdkError::construction_failure)?,
                };
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

/// Files up to this size are read into memory once and sent from there. From the file, each
/// small PUT paid a blocking task for its MD5 (with a 1 MiB buffer) and more for the SDK's reads of
/// the path: the mount's CPU per 4 KiB create-write-close fell from 1.21 to 0.94 ms without them
/// (bench item 5, medians of 5). The body is held only while its PUT is in flight.
const SMALL_PUT_MAX: u64 = 64 << 10;

/// The whole staged file (at most [`SMALL_PUT_MAX`] bytes), read where the writes went: the
/// upload holds the file's lock, so nothing changes it meanwhile.
fn read_small(file: &File, size: u64) -> std::io::Result<bytes::Bytes> {
    use std::os::unix::fs::FileExt;
    let mut body = vec![0u8; size as usize];
    file.read_exact_at(&mut body, 0)?;
    Ok(body.into())
}

/// MD5 of bytes `offset..offset+len` of the file at `path` (a `/proc/self/fd/N` link), read in a
/// blocking task: a second pass over data just written, from the page cache (MD5 runs at about
/// 600 MB/s on one core, so 16 MiB costs some 27 ms, small beside sending it).
pub(super) async fn md5_of(path: &Path, offset: u64, len: u64) -> std::io::Result<[u8; 16]> {
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
}

/// What a successful upload made: the server's ETag, our size, now as LastModified. S3 always
/// answers a stored object with its ETag; an answer without one did not store anything we know of.
pub(super) fn written(key: &str, size: u64, etag: Option<&str>, meta: &FileMeta) -> Result<ObjectInfo, ObjectError> {
    let etag = etag.ok_or_else(|| not_s3(key, "the upload", "without an ETag"))?;
    let meta = FileMeta { known: true, ..*meta };
    Ok(ObjectInfo { key: key.to_string(), size, etag: etag.to_string(), last_modified: SystemTime::now(), meta })
}
