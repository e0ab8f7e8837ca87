//! A failure-injecting client for tests: wraps any [`ObjectClient`] and, per operation, fails it,
//! hangs it or passes it on, as a plan decides (in the spirit of mountpoint-s3's failure client).
//! One reusable double instead of a hand-forwarding wrapper per test.

use std::fs::File;
use std::ops::Range;
use std::sync::Mutex;

use bytes::Bytes;

use super::meta::FileMeta;
use super::{BlockSink, ListPage, ObjectClient, ObjectError, ObjectInfo, Part, Upload};

/// The operations of [`ObjectClient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ListBuckets,
    ListPage,
    Head,
    GetRange,
    PutFile,
    PutBytes,
    BeginUpload,
    UploadPart,
    CompleteUpload,
    AbortUpload,
    SetMeta,
    Copy,
    Delete,
}

/// What happens to one call.
pub enum Fault {
    Fail(ObjectError),
    /// Never answers (a hung connection).
    Hang,
    /// Answers after this long (a slow server).
    Delay(std::time::Duration),
    /// A GET in blocks delivers its first `bytes` (whole blocks), then meets `then`: a body cut or
    /// stalled midway. Other calls meet `then` at once.
    Partial {
        bytes: u64,
        then: Box<Fault>,
    },
}

type Plan = Box<dyn FnMut(Op, &str) -> Option<Fault> + Send>;
type Tamper = Box<dyn Fn(&str, ListPage) -> ListPage + Send + Sync>;
type RangePlan = Box<dyn Fn(&Range<u64>) -> Option<Fault> + Send + Sync>;

pub struct FailingClient<C> {
    inner: C,
    /// Called with each operation and the key (or prefix, or bucket) it is about.
    plan: Mutex<Plan>,
    /// Rewrites listing pages (a server that answers with what it was not asked for).
    tamper: Option<Tamper>,
    /// Decides GETs by the range they ask for, after `plan` let them pass.
    gets: Option<RangePlan>,
}

impl<C: ObjectClient> FailingClient<C> {
    pub fn new(inner: C, plan: impl FnMut(Op, &str) -> Option<Fault> + Send + 'static) -> Self {
        FailingClient { inner, plan: Mutex::new(Box::new(plan)), tamper: None, gets: None }
    }

    /// Fails the first `n` calls of `op` with `error`; everything else passes.
    pub fn fail_first(inner: C, op: Op, n: u32, error: ObjectError) -> Self {
        let mut left = n;
        Self::new(inner, move |o, _| {
            (o == op && left > 0).then(|| {
                left -= 1;
                Fault::Fail(error.clone())
            })
        })
    }

    /// Every listing page goes through `tamper(prefix, page)` first.
    pub fn with_listings(mut self, tamper: impl Fn(&str, ListPage) -> ListPage + Send + Sync + 'static) -> Self {
        self.tamper = Some(Box::new(tamper));
        self
    }

    /// Every GET that `plan` let pass is then decided by its range: `gets(range)` (a whole-block
    /// fetch that hangs beside a small one that does not).
    pub fn with_gets(mut self, gets: impl Fn(&Range<u64>) -> Option<Fault> + Send + Sync + 'static) -> Self {
        self.gets = Some(Box::new(gets));
        self
    }

    pub fn inner(&self) -> &C {
        &self.inner
    }

    async fn check(&self, op: Op, about: &str) -> Result<(), ObjectError> {
        let fault = (self.plan.lock().unwrap())(op, about);
        Self::suffer(fault).await
    }

    async fn check_get(&self, key: &str, range: &Range<u64>) -> Result<(), ObjectError> {
        self.check(Op::GetRange, key).await?;
        Self::suffer(self.gets.as_ref().and_then(|gets| gets(range))).await
    }

    async fn suffer(fault: Option<Fault>) -> Result<(), ObjectError> {
        match fault {
            Some(Fault::Partial { then, .. }) => Box::pin(Self::suffer(Some(*then))).await,
            None => Ok(()),
            Some(Fault::Fail(e)) => Err(e),
            Some(Fault::Hang) => std::future::pending().await,
            Some(Fault::Delay(d)) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
        }
    }
}

#[async_trait::async_trait]
impl<C: ObjectClient> ObjectClient for FailingClient<C> {
    async fn list_buckets(&self) -> Result<Vec<String>, ObjectError> {
        self.check(Op::ListBuckets, "").await?;
        self.inner.list_buckets().await
    }
    async fn list_page(&self, b: &str, p: &str, c: Option<String>) -> Result<ListPage, ObjectError> {
        self.check(Op::ListPage, p).await?;
        let page = self.inner.list_page(b, p, c).await?;
        Ok(match &self.tamper {
            Some(tamper) => tamper(p, page),
            None => page,
        })
    }
    async fn head(&self, b: &str, k: &str) -> Result<ObjectInfo, ObjectError> {
        self.check(Op::Head, k).await?;
        self.inner.head(b, k).await
    }
    async fn get_range(&self, b: &str, k: &str, r: Range<u64>, e: Option<&str>) -> Result<Bytes, ObjectError> {
        self.check_get(k, &r).await?;
        self.inner.get_range(b, k, r, e).await
    }
    async fn get_blocks(
        &self,
        b: &str,
        k: &str,
        r: Range<u64>,
        e: Option<&str>,
        block: usize,
        deliver: &BlockSink<'_>,
    ) -> Result<(), ObjectError> {
        self.check(Op::GetRange, k).await?;
        match self.gets.as_ref().and_then(|gets| gets(&r)) {
            Some(Fault::Partial { bytes, then }) => {
                let cut = r.start.saturating_add(bytes).min(r.end);
                self.inner.get_blocks(b, k, r.start..cut, e, block, deliver).await?;
                Self::suffer(Some(*then)).await?;
                self.inner.get_blocks(b, k, cut..r.end, e, block, deliver).await
            }
            fault => {
                Self::suffer(fault).await?;
                self.inner.get_blocks(b, k, r, e, block, deliver).await
            }
        }
    }
    async fn put_file(&self, b: &str, k: &str, f: &File, m: &FileMeta) -> Result<ObjectInfo, ObjectError> {
        self.check(Op::PutFile, k).await?;
        self.inner.put_file(b, k, f, m).await
    }
    async fn put_bytes(&self, b: &str, k: &str, body: Bytes, m: &FileMeta) -> Result<ObjectInfo, ObjectError> {
        self.check(Op::PutBytes, k).await?;
        self.inner.put_bytes(b, k, body, m).await
    }
    async fn begin_upload(&self, b: &str, k: &str, m: &FileMeta) -> Result<Upload, ObjectError> {
        self.check(Op::BeginUpload, k).await?;
        self.inner.begin_upload(b, k, m).await
    }
    async fn upload_part(&self, u: &Upload, n: u32, f: &File, r: Range<u64>) -> Result<Part, ObjectError> {
        self.check(Op::UploadPart, &u.key).await?;
        self.inner.upload_part(u, n, f, r).await
    }
    async fn complete_upload(
        &self,
        u: &Upload,
        p: &[Part],
        size: u64,
        m: &FileMeta,
    ) -> Result<ObjectInfo, ObjectError> {
        self.check(Op::CompleteUpload, &u.key).await?;
        self.inner.complete_upload(u, p, size, m).await
    }
    async fn abort_upload(&self, u: &Upload) -> Result<(), ObjectError> {
        self.check(Op::AbortUpload, &u.key).await?;
        self.inner.abort_upload(u).await
    }
    async fn set_meta(&self, b: &str, k: &str, m: &FileMeta) -> Result<ObjectInfo, ObjectError> {
        self.check(Op::SetMeta, k).await?;
        self.inner.set_meta(b, k, m).await
    }
    async fn copy(&self, b: &str, f: &str, t: &str) -> Result<(), ObjectError> {
        self.check(Op::Copy, f).await?;
        self.inner.copy(b, f, t).await
    }
    async fn delete(&self, b: &str, k: &str) -> Result<(), ObjectError> {
        self.check(Op::Delete, k).await?;
        self.inner.delete(b, k).await
    }
}
