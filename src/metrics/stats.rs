//! One identity's figures for `ssofs status`: bytes read and written through the mount, block
//! cache hits, uploads in flight, uploads that failed (with where their data is kept) and the last
//! error. Atomics and short locks only: these are bumped on every read and write.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::report::{FailedUpload, IdentityReport, LastError, rfc3339};
use super::{Uploads, series};

/// Failed uploads remembered per identity (the oldest are forgotten first; the log has them all).
const FAILURES_KEPT: usize = 20;

#[derive(Debug, Default)]
pub struct IdentityStats {
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    pub uploads: Uploads,
    failed: Mutex<VecDeque<FailedUpload>>,
    last_error: Mutex<Option<LastError>>,
}

impl IdentityStats {
    /// Bytes an application read through the mount.
    pub fn read(&self, bytes: u64) {
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Bytes an application wrote through the mount.
    pub fn written(&self, bytes: u64) {
        self.bytes_written.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn cache_hit(&self) {
        self.cache_hits.fetch_add(1, Ordering::Relaxed);
        series::cache_hit();
    }

    pub fn cache_miss(&self) {
        self.cache_misses.fetch_add(1, Ordering::Relaxed);
        series::cache_miss();
    }

    /// An upload failed (`refused`: the bucket policy said no); its data stays in `staged`.
    pub fn upload_failed(&self, bucket: &str, key: &str, staged: &std::path::Path, error: &str, refused: bool) {
        let at = rfc3339(SystemTime::now());
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        failed.retain(|f| f.bucket != bucket || f.key != key);
        if failed.len() == FAILURES_KEPT {
            failed.pop_front();
        }
        let staged = staged.display().to_string();
        failed.push_back(FailedUpload {
            bucket: bucket.into(),
            key: key.into(),
            staged,
            error: error.into(),
            refused,
            at,
        });
        drop(failed);
        self.error(format!("upload of {bucket}/{key} failed: {error}"));
    }

    /// The data of a failed upload moved from `from` to `to` (a refused one, set aside at close).
    pub fn moved(&self, from: &std::path::Path, to: &std::path::Path) {
        let from = from.display().to_string();
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        for f in failed.iter_mut().filter(|f| f.staged == from) {
            f.staged = to.display().to_string();
        }
    }

    /// `bucket/key` was uploaded: an earlier failure of it is over.
    pub fn upload_succeeded(&self, bucket: &str, key: &str) {
        self.failed.lock().unwrap_or_else(|p| p.into_inner()).retain(|f| f.bucket != bucket || f.key != key);
    }

    /// The latest error this identity met (what went wrong, never a secret).
    pub fn error(&self, message: String) {
        let at = rfc3339(SystemTime::now());
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(LastError { at, message });
    }

    /// The figures of this identity, for uid `uid` (who it is signed in as is filled in by the
    /// caller, which knows the token store).
    pub fn report(&self, uid: u32) -> IdentityReport {
        let (hits, misses) = (self.cache_hits.load(Ordering::Relaxed), self.cache_misses.load(Ordering::Relaxed));
        IdentityReport {
            uid,
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            cache_hits: hits,
            cache_misses: misses,
            cache_hit_ratio: (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64),
            uploads_in_flight: self.uploads.in_flight(),
            uploads_failed: self.failed.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect(),
            last_error: self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            ..IdentityReport::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_add_up_and_a_later_success_clears_the_failure() {
        let s = IdentityStats::default();
        s.read(10);
        s.read(5);
        s.written(7);
        s.cache_hit();
        s.cache_hit();
        s.cache_hit();
        s.cache_miss();
        s.upload_failed("b", "k", std::path::Path::new("/staging/x"), "access denied", true);
        let r = s.report(1000);
        assert_eq!((r.uid, r.bytes_read, r.bytes_written), (1000, 15, 7));
        assert_eq!(r.cache_hit_ratio, Some(0.75));
        assert_eq!(r.uploads_failed.len(), 1);
        assert!(r.uploads_failed[0].refused && r.uploads_failed[0].staged == "/staging/x");
        assert!(r.last_error.unwrap().message.contains("upload of b/k failed: access denied"));
        s.moved(std::path::Path::new("/staging/x"), std::path::Path::new("/staging/refused/x"));
        assert_eq!(s.report(1000).uploads_failed[0].staged, "/staging/refused/x", "where the data is now");
        s.upload_succeeded("b", "k");
        assert!(s.report(1000).uploads_failed.is_empty());
        assert_eq!(IdentityStats::default().report(0).cache_hit_ratio, None, "no reads: no ratio, not 0 or NaN");
    }

    #[test]
    fn only_the_latest_failures_are_kept() {
        let s = IdentityStats::default();
        for i in 0..FAILURES_KEPT + 5 {
            s.upload_failed("b", &format!("k{i}"), std::path::Path::new("/s"), "unavailable", false);
        }
        let failed = s.report(0).uploads_failed;
        assert_eq!(failed.len(), FAILURES_KEPT);
        assert_eq!(failed[0].key, "k5");
    }
}
