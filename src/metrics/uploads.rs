//! Uploads in flight and their progress. The filesystem starts one ([`Uploads::start`]) around
//! each upload and runs the upload inside [`UploadProgress::sending`]; the object layer calls
//! [`sent`] where bytes have actually gone out (per part, per PUT), which counts them to the upload
//! its task is running, if any. So the object layer needs no handle passed down, and a rewrite of
//! the upload path only has to keep calling [`sent`].

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::report::UploadReport;
use super::series;

tokio::task_local! {
    /// The upload the current task is sending.
    static CURRENT: Arc<Progress>;
}

/// Bytes of the upload the current task is running have been sent (no-op outside an upload).
pub fn sent(bytes: u64) {
    let _ = CURRENT.try_with(|p| p.add(bytes));
}

#[derive(Debug)]
struct Progress {
    bucket: String,
    key: String,
    total: u64,
    done: AtomicU64,
    started: SystemTime,
}

impl Progress {
    /// Counted up to `total`: a retried upload sends its bytes again, which is not more progress.
    fn add(&self, bytes: u64) {
        let before = self.done.fetch_add(bytes, Ordering::Relaxed).min(self.total);
        let now = before.saturating_add(bytes).min(self.total);
        series::upload_sent(now - before);
    }

    fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed).min(self.total)
    }
}

/// One identity's uploads in flight.
#[derive(Debug, Clone, Default)]
pub struct Uploads {
    inner: Arc<Mutex<Registry>>,
}

#[derive(Debug, Default)]
struct Registry {
    next: u64,
    running: BTreeMap<u64, Arc<Progress>>,
}

impl Uploads {
    /// An upload of `total` bytes of `bucket/key` starts; it counts as in flight until the
    /// returned guard is dropped.
    pub fn start(&self, bucket: &str, key: &str, total: u64) -> UploadProgress {
        let progress = Arc::new(Progress {
            bucket: bucket.to_string(),
            key: key.to_string(),
            total,
            done: AtomicU64::new(0),
            started: SystemTime::now(),
        });
        let id = {
            let mut reg = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            reg.next += 1;
            let id = reg.next;
            reg.running.insert(id, progress.clone());
            id
        };
        series::upload_started(total);
        UploadProgress { id, progress, uploads: self.clone(), outcome: "failed" }
    }

    /// The uploads in flight now, oldest first.
    pub fn in_flight(&self) -> Vec<UploadReport> {
        let reg = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        reg.running
            .values()
            .map(|p| UploadReport {
                bucket: p.bucket.clone(),
                key: p.key.clone(),
                done: p.done(),
                total: p.total,
                started: super::report::rfc3339(p.started),
            })
            .collect()
    }
}

/// An upload in flight; dropping it ends it (as failed unless [`UploadProgress::finish`] said
/// otherwise).
pub struct UploadProgress {
    id: u64,
    progress: Arc<Progress>,
    uploads: Uploads,
    outcome: &'static str,
}

impl UploadProgress {
    pub fn done(&self) -> u64 {
        self.progress.done()
    }

    pub fn total(&self) -> u64 {
        self.progress.total
    }

    /// Runs `upload` with its sent bytes ([`sent`]) counted to this upload.
    pub async fn sending<F: Future>(&self, upload: F) -> F::Output {
        CURRENT.scope(self.progress.clone(), upload).await
    }

    /// Ends the upload with `outcome` (ok, failed, refused).
    pub fn finish(mut self, outcome: &'static str) {
        self.outcome = outcome;
    }
}

impl Drop for UploadProgress {
    fn drop(&mut self) {
        self.uploads.inner.lock().unwrap_or_else(|p| p.into_inner()).running.remove(&self.id);
        series::upload_ended(self.progress.total - self.progress.done(), self.outcome);
    }
}

/// Runs `work`, calling `log(done, total)` every `every` while it has not finished: a close or
/// fsync waiting for a long upload says how far it got.
pub async fn reporting<F: Future>(
    work: F,
    progress: &UploadProgress,
    every: Duration,
    mut log: impl FnMut(u64, u64),
) -> F::Output {
    tokio::pin!(work);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => log(progress.done(), progress.total()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_long_upload_reports_its_progress_every_period_until_it_ends() {
        let uploads = Uploads::default();
        let progress = uploads.start("b", "big", 100);
        let work = progress.sending(async {
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_secs(7)).await;
                sent(30);
            }
            "uploaded"
        });
        let mut seen = Vec::new();
        let out = reporting(work, &progress, Duration::from_secs(10), |done, total| seen.push((done, total))).await;
        assert_eq!(out, "uploaded");
        // At 10 s two sends of 30 had happened (7 s, 14 s: only the first), at 20 s two.
        assert_eq!(seen, vec![(30, 100), (60, 100)]);
        assert_eq!(progress.done(), 100, "counted up to the total, not past it (120 sent)");
        assert_eq!(uploads.in_flight().len(), 1);
        progress.finish("ok");
        assert!(uploads.in_flight().is_empty(), "a finished upload is no longer in flight");
    }

    #[tokio::test]
    async fn bytes_sent_outside_an_upload_count_nowhere() {
        sent(10);
        let uploads = Uploads::default();
        let a = uploads.start("b", "a", 10);
        let b = uploads.start("b", "b", 10);
        b.sending(async { sent(4) }).await;
        assert_eq!((a.done(), b.done()), (0, 4));
        let listed: Vec<(String, u64)> = uploads.in_flight().into_iter().map(|u| (u.key, u.done)).collect();
        assert_eq!(listed, vec![("a".to_string(), 0), ("b".to_string(), 4)]);
    }
}
