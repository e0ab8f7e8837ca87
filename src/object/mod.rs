//! Object client layer: the few S3 operations the filesystem needs, behind `ObjectClient`, so the
//! filesystem can be tested against an in-memory model (`mock`) and run against S3 (`s3`).

pub mod block_buffers;
mod complete_xml;
#[cfg(any(test, feature = "mock"))]
pub mod failing;
mod insecure_http;
pub mod meta;
/// Test doubles: compiled for tests, or with the `mock` feature (never into the release binary).
#[cfg(any(test, feature = "mock"))]
pub mod mock;
pub mod retry;
pub mod s3;

use std::fs::File;
use std::ops::Range;
use std::time::SystemTime;

use bytes::Bytes;

/// Where [`ObjectClient::get_blocks`] hands each block as it arrives.
pub type BlockSink<'a> = dyn Fn(Bytes) + Send + Sync + 'a;

/// One object as a listing or HEAD describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub last_modified: SystemTime,
    /// Mode, times and owner the object's metadata holds (unknown from a listing).
    pub meta: meta::FileMeta,
}

/// One page of a delimiter listing.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub objects: Vec<ObjectInfo>,
    /// Common prefixes, each ending in the delimiter.
    pub prefixes: Vec<String>,
    pub continuation: Option<String>,
}

/// Parts of a multipart upload are at least this large, except the last (S3 answers EntityTooSmall).
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// A multipart upload has at most this many parts (S3's limit).
pub const MAX_PARTS: u64 = 10_000;

/// A multipart upload begun with [`ObjectClient::begin_upload`]: what every later call names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub bucket: String,
    pub key: String,
    /// The server's upload id (not a secret: it grants nothing without credentials).
    pub id: String,
}

/// One stored part, as [`ObjectClient::complete_upload`] must name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// From 1.
    pub number: u32,
    pub etag: String,
    /// The part's CRC32C as the server computed it (with `checksums = "crc32c"`): completion must
    /// repeat it.
    pub crc32c: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ObjectError {
    #[error("no such bucket or key")]
    NotFound,
    #[error("access denied")]
    AccessDenied,
    /// The object changed since it was first read (If-Match failed).
    #[error("the object changed while it was being read")]
    Changed,
    /// No valid credentials and none can be had until the user logs in again.
    #[error("{0}")]
    NoCredentials(String),
    /// Still failing after retries (throttling, 5xx, network).
    #[error("S3 unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Other(String),
}

#[async_trait::async_trait]
pub trait ObjectClient: Send + Sync + 'static {
    /// Buckets the caller may list (MinIO filters by policy).
    async fn list_buckets(&self) -> Result<Vec<String>, ObjectError>;

    /// One page of `ListObjectsV2` with delimiter `/`.
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<String>,
    ) -> Result<ListPage, ObjectError>;

    /// Whether anything is below `prefix` (an object or a common prefix): a directory's existence.
    /// S3 clients ask for one entry (max-keys 1), so the server stops at the first key rather than
    /// page through a big directory: a cold lookup of `bench/` over 111,000 keys cost 16-22 ms with
    /// a whole page and ~1 ms with one entry (devstack). Others derive it from a page.
    async fn has_entries(&self, bucket: &str, prefix: &str) -> Result<bool, ObjectError> {
        let page = self.list_page(bucket, prefix, None).await?;
        Ok(!page.objects.is_empty() || !page.prefixes.is_empty())
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, ObjectError>;

    /// Bytes `range` of the object, only if its ETag is still `etag` (when given).
    async fn get_range(
        &self,
        bucket: &str,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<Bytes, ObjectError>;

    /// As [`ObjectClient::get_range`], handed to `deliver` in buffers of `block` bytes each, in
    /// order, each as soon as it is whole: a reader waiting for the first block of an 8 MiB part
    /// gets it without waiting for the rest. The last (maybe shorter) buffer comes only once the
    /// reply is known complete, so a reply cut short never delivers a short block. On an error,
    /// what was delivered is correct: a retry asks only for the rest. Buffers of `block` bytes are
    /// what the block cache keeps, so one cached block never holds a whole part's buffer. Clients
    /// that can fill block buffers as the body arrives override this.
    async fn get_blocks(
        &self,
        bucket: &str,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
        block: usize,
        deliver: &BlockSink<'_>,
    ) -> Result<(), ObjectError> {
        let data = self.get_range(bucket, key, range, etag).await?;
        data.chunks(block.max(1)).for_each(|b| deliver(Bytes::copy_from_slice(b)));
        Ok(())
    }

    /// Uploads an open local file as the object (multipart when large); returns the new object's
    /// info. The data is read through this descriptor (never by opening a path again, which someone
    /// could have swapped for a symlink since it was written).
    async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        file: &File,
        meta: &meta::FileMeta,
    ) -> Result<ObjectInfo, ObjectError>;

    async fn put_bytes(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        meta: &meta::FileMeta,
    ) -> Result<ObjectInfo, ObjectError>;

    /// Begins a multipart upload of `key` whose object will carry `meta` (CreateMultipartUpload):
    /// for a file uploaded in parts while it is still being written. Every upload begun is either
    /// completed or aborted by its caller.
    async fn begin_upload(&self, bucket: &str, key: &str, meta: &meta::FileMeta) -> Result<Upload, ObjectError>;

    /// Uploads bytes `range` of `file` as part `number` (from 1); read through this descriptor, as
    /// [`ObjectClient::put_file`] does. Every part but the last must be at least [`MIN_PART_SIZE`].
    async fn upload_part(
        &self,
        upload: &Upload,
        number: u32,
        file: &File,
        range: Range<u64>,
    ) -> Result<Part, ObjectError>;

    /// Completes the upload from `parts` (in order); the object, `size` bytes with `meta`, is then
    /// stored.
    async fn complete_upload(
        &self,
        upload: &Upload,
        parts: &[Part],
        size: u64,
        meta: &meta::FileMeta,
    ) -> Result<ObjectInfo, ObjectError>;

    /// Abandons the upload: the server drops its parts.
    async fn abort_upload(&self, upload: &Upload) -> Result<(), ObjectError>;

    /// Replaces an object's metadata (CopyObject onto itself, MetadataDirective REPLACE): chmod,
    /// utimens and chown of a file that is not open for writing.
    async fn set_meta(&self, bucket: &str, key: &str, meta: &meta::FileMeta) -> Result<ObjectInfo, ObjectError>;

    /// Server-side copy within a bucket.
    async fn copy(&self, bucket: &str, from: &str, to: &str) -> Result<(), ObjectError>;

    /// Deleting a missing key succeeds, as in S3.
    async fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectError>;

    /// When the S3 credentials in use expire, for `ssofs status` (`None`: none yet, or a client
    /// without credentials).
    fn credentials_expire_at(&self) -> Option<SystemTime> {
        None
    }
}
