//! The identity's object client, with every failure noted as the identity's last error for
//! `ssofs status` ("no such key" is an answer, not an error). One wrapper here, rather than a note
//! at each of the filesystem's many calls.

use std::fs::File;
use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use crate::metrics::IdentityStats;
use crate::object::meta::FileMeta;
use crate::object::{BlockSink, ListPage, ObjectClient, ObjectError, ObjectInfo, Part, Upload};

pub struct Observed {
    inner: Arc<dyn ObjectClient>,
    stats: Arc<IdentityStats>,
}

impl Observed {
    pub fn new(inner: Arc<dyn ObjectClient>, stats: Arc<IdentityStats>) -> Self {
        Observed { inner, stats }
    }

    /// `outcome`, with a failure of `what` on `bucket/key` noted.
    fn seen<T>(&self, what: &str, bucket: &str, key: &str, outcome: Result<T, ObjectError>) -> Result<T, ObjectError> {
        if let Err(e) = &outcome
            && !matches!(e, ObjectError::NotFound)
        {
            self.stats.error(format!("{what} {bucket}/{key}: {e}"));
        }
        outcome
    }
}

#[async_trait::async_trait]
impl ObjectClient for Observed {
    async fn list_buckets(&self) -> Result<Vec<String>, ObjectError> {
        self.seen("ListBuckets", "", "", self.inner.list_buckets().await)
    }

    async fn list_page(&self, bucket: &str, prefix: &str, next: Option<String>) -> Result<ListPage, ObjectError> {
        self.seen("ListObjectsV2", bucket, prefix, self.inner.list_page(bucket, prefix, next).await)
    }

    async fn has_entries(&self, bucket: &str, prefix: &str) -> Result<bool, ObjectError> {
        self.seen("ListObjectsV2", bucket, prefix, self.inner.has_entries(bucket, prefix).await)
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, ObjectError> {
        self.seen("HeadObject", bucket, key, self.inner.head(bucket, key).await)
    }

    async fn get_range(&self, b: &str, k: &str, r: Range<u64>, etag: Option<&str>) -> Result<Bytes, ObjectError> {
        self.seen("GetObject", b, k, self.inner.get_range(b, k, r, etag).await)
    }

    async fn get_blocks(
        &self,
        b: &str,
        k: &str,
        r: Range<u64>,
        etag: Option<&str>,
        block: usize,
        deliver: &BlockSink<'_>,
    ) -> Result<(), ObjectError> {
        self.seen("GetObject", b, k, self.inner.get_blocks(b, k, r, etag, block, deliver).await)
    }

    async fn put_file(&self, b: &str, k: &str, file: &File, meta: &FileMeta) -> Result<ObjectInfo, ObjectError> {
        self.seen("PutObject", b, k, self.inner.put_file(b, k, file, meta).await)
    }

    async fn put_bytes(&self, b: &str, k: &str, body: Bytes, meta: &FileMeta) -> Result<ObjectInfo, ObjectError> {
        self.seen("PutObject", b, k, self.inner.put_bytes(b, k, body, meta).await)
    }

    async fn begin_upload(&self, b: &str, k: &str, meta: &FileMeta) -> Result<Upload, ObjectError> {
        self.seen("CreateMultipartUpload", b, k, self.inner.begin_upload(b, k, meta).await)
    }

    async fn upload_part(&self, up: &Upload, number: u32, file: &File, r: Range<u64>) -> Result<Part, ObjectError> {
        self.seen("UploadPart", &up.bucket, &up.key, self.inner.upload_part(up, number, file, r).await)
    }

    async fn complete_upload(
        &self,
        up: &Upload,
        parts: &[Part],
        size: u64,
        meta: &FileMeta,
    ) -> Result<ObjectInfo, ObjectError> {
        let done = self.inner.complete_upload(up, parts, size, meta).await;
        self.seen("CompleteMultipartUpload", &up.bucket, &up.key, done)
    }

    async fn abort_upload(&self, up: &Upload) -> Result<(), ObjectError> {
        self.seen("AbortMultipartUpload", &up.bucket, &up.key, self.inner.abort_upload(up).await)
    }

    async fn set_meta(&self, b: &str, k: &str, meta: &FileMeta) -> Result<ObjectInfo, ObjectError> {
        self.seen("CopyObject", b, k, self.inner.set_meta(b, k, meta).await)
    }

    async fn copy(&self, bucket: &str, from: &str, to: &str) -> Result<(), ObjectError> {
        self.seen("CopyObject", bucket, to, self.inner.copy(bucket, from, to).await)
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        self.seen("DeleteObject", bucket, key, self.inner.delete(bucket, key).await)
    }

    fn credentials_expire_at(&self) -> Option<SystemTime> {
        self.inner.credentials_expire_at()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::failing::{FailingClient, Op};
    use crate::object::mock::MockObjectClient;

    #[tokio::test]
    async fn failures_become_the_last_error_and_a_missing_key_does_not() {
        let mock = MockObjectClient::new();
        mock.add_bucket("b");
        mock.insert("b", "k", "data");
        let failing = FailingClient::fail_first(mock, Op::GetRange, 1, ObjectError::AccessDenied);
        let stats = Arc::new(IdentityStats::default());
        let c = Observed::new(Arc::new(failing), stats.clone());
        assert!(matches!(c.head("b", "missing").await, Err(ObjectError::NotFound)));
        assert_eq!(stats.report(0).last_error, None, "no such key is an answer");
        assert!(c.get_range("b", "k", 0..4, None).await.is_err());
        let last = stats.report(0).last_error.unwrap();
        assert_eq!(last.message, "GetObject b/k: access denied");
        assert_eq!(c.get_range("b", "k", 0..4, None).await.unwrap().as_ref(), b"data");
    }
}
