//! Retries for passing failures. The SDK already retries throttling and 5xx answers a few times; this
//! layer also covers what the SDK cannot retry — a connection cut in the middle of a body — and
//! outages longer than the SDK's few attempts, with backoff, until a deadline (`op_timeout`, default
//! 30 s after the first attempt). Every operation here is idempotent (reads, whole-object puts, copies, deletes,
//! parts of a multipart upload), so repeating one is safe; the exceptions are noted where they are. Past the deadline the caller gets the error: nothing hangs.

use std::fs::File;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::meta::FileMeta;
use super::{BlockSink, ListPage, ObjectClient, ObjectError, ObjectInfo, Part, Upload};

pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// How long one operation's S3 work may take for this profile, retries included.
pub fn deadline(profile: &crate::config::Profile) -> Duration {
    profile.op_timeout.unwrap_or(DEFAULT_DEADLINE)
}

pub struct Retrying<C> {
    inner: C,
    deadline: Duration,
}

impl<C: ObjectClient> Retrying<C> {
    pub fn new(inner: C, deadline: Duration) -> Self {
        Retrying { inner, deadline }
    }

    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// One operation, retried through passing failures; the whole of it, retries included, ends by
    /// the deadline.
    async fn run<T, F, Fut>(&self, what: &str, op: F) -> Result<T, ObjectError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ObjectError>>,
    {
        self.retry(what, true, op).await
    }

    /// `bounded`: also cut an attempt still running at the deadline. Uploads of whole files are not
    /// cut (a large multipart upload takes as long as it takes); each of their requests is bounded
    /// by the S3 client's own operation timeout instead.
    async fn retry<T, F, Fut>(&self, what: &str, bounded: bool, mut op: F) -> Result<T, ObjectError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ObjectError>>,
    {
        let start = Instant::now();
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1u32;
        loop {
            let outcome = if bounded {
                let left = self.deadline.saturating_sub(start.elapsed());
                tokio::time::timeout(left, op()).await.unwrap_or_else(|_| {
                    Err(ObjectError::Unavailable(format!("no answer within {:.1} s", self.deadline.as_secs_f64())))
                })
            } else {
                op().await
            };
            match outcome {
                Err(ObjectError::Unavailable(why)) if start.elapsed() + delay < self.deadline => {
                    tracing::debug!(what, attempt, reason = %why, "S3 unavailable; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(4));
                    attempt += 1;
                }
                Err(ObjectError::Unavailable(why)) => {
                    return Err(ObjectError::Unavailable(format!(
                        "{what}: {why} (gave up after {attempt} attempts in {:.1} s; the limit is the op_timeout \
                         mount option)",
                        start.elapsed().as_secs_f64()
                    )));
                }
                other => return other,
            }
        }
    }
}

#[async_trait::async_trait]
impl<C: ObjectClient> ObjectClient for Retrying<C> {
    async fn list_buckets(&self) -> Result<Vec<String>, ObjectError> {
        self.run("ListBuckets", || self.inner.list_buckets()).await
    }

    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<String>,
    ) -> Result<ListPage, ObjectError> {
        self.run("ListObjectsV2", || self.inner.list_page(bucket, prefix, continuation.clone())).await
    }

    async fn has_entries(&self, bucket: &str, prefix: &str) -> Result<bool, ObjectError> {
        self.run("ListObjectsV2", || self.inner.has_entries(bucket, prefix)).await
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, ObjectError> {
        self.run("HeadObject", || self.inner.head(bucket, key)).await
    }

    async fn get_range(
        &self,
        bucket: &str,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<Bytes, ObjectError> {
        self.run("GetObject", || self.inner.get_range(bucket, key, range.clone(), etag)).await
    }

    /// A retry asks only for the blocks not delivered yet: each is delivered once, in order.
    async fn get_blocks(
        &self,
        bucket: &str,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
        block: usize,
        deliver: &BlockSink<'_>,
    ) -> Result<(), ObjectError> {
        let delivered = AtomicU64::new(0);
        let counting = |data: Bytes| {
            delivered.fetch_add(data.len() as u64, Ordering::Relaxed);
            deliver(data)
        };
        self.run("GetObject", || {
            let from = range.start.saturating_add(delivered.load(Ordering::Relaxed)).min(range.end);
            self.inner.get_blocks(bucket, key, from..range.end, etag, block, &counting)
        })
        .await
    }

    async fn put_file(&self, bucket: &str, key: &str, file: &File, meta: &FileMeta) -> Result<ObjectInfo, ObjectError> {
        self.retry("PutObject", false, || self.inner.put_file(bucket, key, file, meta)).await
    }

    async fn put_bytes(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        meta: &FileMeta,
    ) -> Result<ObjectInfo, ObjectError> {
        self.run("PutObject", || self.inner.put_bytes(bucket, key, body.clone(), meta)).await
    }

    /// A retry after a lost answer begins a second upload; the first is left to the server's
    /// lifecycle rules (rare, and holding no parts).
    async fn begin_upload(&self, bucket: &str, key: &str, meta: &FileMeta) -> Result<Upload, ObjectError> {
        self.run("CreateMultipartUpload", || self.inner.begin_upload(bucket, key, meta)).await
    }

    /// Sending a part again replaces it: safe to repeat.
    async fn upload_part(
        &self,
        upload: &Upload,
        number: u32,
        file: &File,
        range: Range<u64>,
    ) -> Result<Part, ObjectError> {
        self.run("UploadPart", || self.inner.upload_part(upload, number, file, range.clone())).await
    }

    /// A completion whose answer was lost is NoSuchUpload when repeated: the caller then uploads the
    /// file again rather than taking it as stored.
    async fn complete_upload(
        &self,
        upload: &Upload,
        parts: &[Part],
        size: u64,
        meta: &FileMeta,
    ) -> Result<ObjectInfo, ObjectError> {
        self.run("CompleteMultipartUpload", || self.inner.complete_upload(upload, parts, size, meta)).await
    }

    async fn abort_upload(&self, upload: &Upload) -> Result<(), ObjectError> {
        self.run("AbortMultipartUpload", || self.inner.abort_upload(upload)).await
    }

    async fn set_meta(&self, bucket: &str, key: &str, meta: &FileMeta) -> Result<ObjectInfo, ObjectError> {
        self.run("CopyObject", || self.inner.set_meta(bucket, key, meta)).await
    }

    async fn copy(&self, bucket: &str, from: &str, to: &str) -> Result<(), ObjectError> {
        self.run("CopyObject", || self.inner.copy(bucket, from, to)).await
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        self.run("DeleteObject", || self.inner.delete(bucket, key)).await
    }

    fn credentials_expire_at(&self) -> Option<std::time::SystemTime> {
        self.inner.credentials_expire_at()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::failing::{FailingClient, Fault, Op};
    use crate::object::mock::MockObjectClient;

    /// Fails the first `failures` reads as a cut connection would.
    fn flaky(failures: u32) -> FailingClient<MockObjectClient> {
        let inner = MockObjectClient::new();
        inner.add_bucket("b");
        inner.insert("b", "k", "hello");
        FailingClient::fail_first(inner, Op::GetRange, failures, ObjectError::Unavailable("connection reset".into()))
    }

    /// Reads never answer.
    fn hung() -> FailingClient<MockObjectClient> {
        let inner = MockObjectClient::new();
        inner.add_bucket("b");
        FailingClient::new(inner, |op, _| (op == Op::GetRange).then_some(Fault::Hang))
    }

    #[tokio::test]
    async fn passing_failures_are_retried_until_success() {
        let c = Retrying::new(flaky(3), Duration::from_secs(10));
        assert_eq!(c.get_range("b", "k", 0..5, None).await.unwrap().as_ref(), b"hello");
    }

    #[tokio::test]
    async fn retries_stop_at_the_deadline_with_the_cause() {
        let c = Retrying::new(flaky(1000), Duration::from_millis(700));
        let started = Instant::now();
        let err = c.get_range("b", "k", 0..5, None).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2), "bounded: {:?}", started.elapsed());
        assert!(err.to_string().contains("gave up"), "{err}");
    }

    /// An answer that never comes is cut at the deadline, not waited for.
    #[tokio::test]
    async fn a_hung_attempt_ends_at_the_deadline() {
        let c = Retrying::new(hung(), Duration::from_millis(500));
        let started = Instant::now();
        let err = c.get_range("b", "k", 0..5, None).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2), "bounded: {:?}", started.elapsed());
        assert!(err.to_string().contains("no answer within 0.5 s"), "{err}");
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried() {
        let c = Retrying::new(flaky(0), Duration::from_secs(10));
        assert!(matches!(c.head("b", "missing").await, Err(ObjectError::NotFound)));
        assert_eq!(c.inner().inner().calls_of("HeadObject"), 1);
    }

    /// A body cut after two of its four blocks: the retry asks for the other two only, and every
    /// byte is delivered once, in order.
    #[tokio::test]
    async fn a_get_cut_midway_resumes_after_the_blocks_it_delivered() {
        let inner = MockObjectClient::new();
        inner.add_bucket("b");
        let body: Vec<u8> = (0..40u8).collect();
        inner.insert("b", "k", body.clone());
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = asked.clone();
        let cut = FailingClient::new(inner, |_, _| None).with_gets(move |r| {
            let mut seen = seen.lock().unwrap();
            seen.push(r.clone());
            (seen.len() == 1).then(|| Fault::Partial {
                bytes: 20,
                then: Box::new(Fault::Fail(ObjectError::Unavailable("connection reset".into()))),
            })
        });
        let c = Retrying::new(cut, Duration::from_secs(10));
        let got = std::sync::Mutex::new(Vec::new());
        c.get_blocks("b", "k", 0..40, None, 10, &|b| got.lock().unwrap().push(b)).await.unwrap();
        let got = got.into_inner().unwrap();
        assert_eq!(got.iter().map(|b| b.len()).collect::<Vec<_>>(), [10, 10, 10, 10]);
        assert_eq!(got.concat(), body);
        assert_eq!(*asked.lock().unwrap(), [0..40, 20..40], "the retry asked for the rest only");
    }
}
