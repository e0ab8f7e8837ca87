//! Uploading a file in parts while it is being written, so that close waits only for the tail.
//!
//! A file written in order (each write at or before the end written so far, never into a part
//! already handed out) begins a multipart upload once its first part is whole; from then on every
//! part is sent as soon as the writes have filled it, at most [`PARTS_IN_FLIGHT`] at a time, read
//! back from the staged file. The staged file still receives every write, so what a crash leaves
//! is recovered as before (`ssofs recover`), and whenever streaming stops (a write into a part
//! already sent, a hole, a second writer, a failed part, a rename) the upload is aborted and close
//! uploads the staged file whole, as it does for any file: nothing written depends on the stream.
//!
//! One task per stream (the driver) owns the upload: it begins it, sends the parts, completes it
//! when asked to finish, and aborts it on every other way out, including its handle being dropped.
//! Writes never wait for the network: a part not yet sent is only an offset range of the staged
//! file. Memory: a part in flight is read from the staged file in 1 MiB chunks (and hashed in a
//! 1 MiB buffer first), about 2 MiB each; [`PARTS_IN_FLIGHT`] per file and
//! [`MOUNT_PARTS_IN_FLIGHT`] per mount bound that to 16 MiB, whatever the files' sizes and number.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::fs::staging;
use crate::object::meta::FileMeta;
use crate::object::{MAX_PARTS, ObjectClient, ObjectError, ObjectInfo, Part, Upload};

/// Parts of one stream uploaded at once.
pub(crate) const PARTS_IN_FLIGHT: usize = 4;
/// Parts of all streams of a mount (every identity's) uploaded at once.
pub const MOUNT_PARTS_IN_FLIGHT: usize = 8;

/// Where a file open for writing stands with streaming.
#[derive(Default)]
pub(crate) enum Streaming {
    /// Written in order so far, up to `frontier`: a stream begins once a whole part is written.
    Watching { frontier: u64 },
    /// Parts are being uploaded as they fill.
    Active(Stream),
    /// Written out of order, by two writers, or a stream was given up: uploaded whole at close.
    #[default]
    Off,
}

impl Streaming {
    /// A file whose first `len` bytes are what it holds now (its staged copy's length).
    pub(crate) fn watching(len: u64) -> Self {
        Streaming::Watching { frontier: len }
    }

    /// Whether a write of `len` bytes at `offset` (`None`: at the end, O_APPEND) would begin a
    /// stream, which must be done on the runtime.
    pub(crate) fn begins_with(&self, offset: Option<u64>, len: u64, part_size: u64) -> bool {
        let Streaming::Watching { frontier } = *self else { return false };
        let offset = offset.unwrap_or(frontier);
        offset <= frontier && offset.saturating_add(len).max(frontier) >= part_size
    }

    /// A write of `offset..end` is about to land: followed, or streaming stops when it reaches into
    /// a part already handed out or leaves a hole.
    pub(crate) fn note_write(&mut self, offset: u64, end: u64) {
        let in_order = match self {
            Streaming::Watching { frontier } if offset <= *frontier => {
                *frontier = end.max(*frontier);
                true
            }
            Streaming::Active(stream) => stream.follow(offset, end),
            Streaming::Watching { .. } => false,
            Streaming::Off => true,
        };
        if !in_order {
            self.stop("a write out of order");
        }
    }

    /// The file is cut (or extended) to `size`: streaming stops if that changes a part already
    /// handed out.
    pub(crate) fn note_truncate(&mut self, size: u64) {
        match self {
            Streaming::Watching { frontier } => *frontier = size.min(*frontier),
            Streaming::Active(stream) if size >= stream.claimed() => stream.frontier = size.min(stream.frontier),
            Streaming::Active(_) => self.stop("a truncation into parts already sent"),
            Streaming::Off => {}
        }
    }

    /// No streaming for this file until its next upload; a stream under way is aborted (its driver
    /// sees its handle go).
    pub(crate) fn stop(&mut self, why: &str) {
        if let Streaming::Active(stream) = self {
            tracing::debug!(bucket = %stream.bucket, key = %stream.key, why, "upload in parts given up; the file is uploaded whole at close");
        }
        *self = Streaming::Off;
    }

    /// The written length, when a stream should begin now.
    pub(crate) fn ready(&self, part_size: u64) -> Option<u64> {
        match self {
            Streaming::Watching { frontier } if *frontier >= part_size => Some(*frontier),
            _ => None,
        }
    }

    /// The stream under way, if any; streaming is off until the next upload resets it.
    pub(crate) fn take_active(&mut self) -> Option<Stream> {
        match std::mem::take(self) {
            Streaming::Active(stream) => Some(stream),
            _ => None,
        }
    }
}

/// What a stream uploads to, and with which object metadata (fixed when the upload begins).
pub(crate) struct Target {
    pub bucket: String,
    pub key: String,
    pub meta: FileMeta,
    pub part_size: u64,
    /// The mount's permits for parts in flight.
    pub permits: Arc<Semaphore>,
    /// The staged file, whose sidecar notes the upload for `ssofs recover` after a crash.
    pub staged: PathBuf,
}

/// What the driver is told: how many parts are whole, and, once close asks, the final size.
#[derive(Debug, Clone, Copy)]
struct Progress {
    whole_parts: u64,
    finish: Option<u64>,
}

/// A multipart upload fed by the writes of one file.
pub(crate) struct Stream {
    bucket: String,
    key: String,
    meta: FileMeta,
    part_size: u64,
    /// How far the file has been written in order.
    frontier: u64,
    progress: watch::Sender<Progress>,
    driver: JoinHandle<Result<ObjectInfo, ObjectError>>,
}

impl Stream {
    /// Begins streaming `file` (a descriptor of the staged copy) with `frontier` bytes written:
    /// the driver task begins the upload and sends the parts already whole. Must run on the runtime.
    pub(crate) fn start(client: Arc<dyn ObjectClient>, file: File, target: Target, frontier: u64) -> Stream {
        let progress = Progress { whole_parts: frontier / target.part_size, finish: None };
        let (tx, rx) = watch::channel(progress);
        let Target { bucket, key, meta, part_size, .. } = &target;
        let (bucket, key, meta, part_size) = (bucket.clone(), key.clone(), *meta, *part_size);
        let driver = tokio::spawn(drive(client, file, target, rx));
        Stream { bucket, key, meta, part_size, frontier, progress: tx, driver }
    }

    /// The bytes handed out to parts: the writes may no longer change them.
    fn claimed(&self) -> u64 {
        self.frontier / self.part_size * self.part_size
    }

    /// A write of `offset..end`; false when it breaks the order (or the parts would run out: the
    /// whole-file upload then picks larger parts).
    fn follow(&mut self, offset: u64, end: u64) -> bool {
        if offset < self.claimed() || offset > self.frontier {
            return false;
        }
        self.frontier = end.max(self.frontier);
        let whole = self.frontier / self.part_size;
        if whole >= MAX_PARTS {
            return false;
        }
        self.progress.send_if_modified(|p| {
            let more = whole > p.whole_parts;
            p.whole_parts = whole;
            more
        });
        true
    }

    /// Whether this stream makes the object close would upload now: same bucket and key (not
    /// renamed since), same metadata (no chmod, chown or utimens since it began), and a size its
    /// parts can hold.
    pub(crate) fn makes(&self, bucket: &str, key: &str, meta: &FileMeta, size: u64) -> bool {
        let same = |a: &FileMeta| (a.mode, a.mtime, a.uid, a.gid);
        self.bucket == bucket
            && self.key == key
            && same(&self.meta) == same(meta)
            && size >= self.claimed()
            && size.div_ceil(self.part_size) <= MAX_PARTS
    }

    /// Sends the tail (`size` is the file's final length), waits for every part and completes the
    /// upload. On failure the driver has aborted the upload already.
    pub(crate) async fn finish(self, size: u64) -> Result<ObjectInfo, ObjectError> {
        self.progress.send_modify(|p| p.finish = Some(size));
        match self.driver.await {
            Ok(done) => done,
            Err(e) => Err(ObjectError::Other(format!("the upload in parts stopped: {e}"))),
        }
    }
}

/// The driver: begins the upload, sends the parts, completes it when asked, aborts it otherwise.
async fn drive(
    client: Arc<dyn ObjectClient>,
    file: File,
    target: Target,
    mut progress: watch::Receiver<Progress>,
) -> Result<ObjectInfo, ObjectError> {
    let upload = client.begin_upload(&target.bucket, &target.key, &target.meta).await?;
    // Left there when done: aborting an upload that is over is refused, and recover ignores that.
    if let Err(e) = staging::note_upload(&target.staged, &upload.bucket, &upload.key, Some(&upload.id)) {
        tracing::warn!(staged = %target.staged.display(), error = %e, "could not note the multipart upload for recover");
    }
    let sent = send_parts(client.as_ref(), &file, &upload, &target, &mut progress).await;
    let done = match sent {
        Ok((parts, size)) => client.complete_upload(&upload, &parts, size, &target.meta).await,
        Err(e) => Err(e),
    };
    if let Err(e) = &done {
        tracing::debug!(bucket = %upload.bucket, key = %upload.key, reason = %e, "aborting the upload in parts");
        if let Err(e) = client.abort_upload(&upload).await {
            tracing::warn!(bucket = %upload.bucket, key = %upload.key, upload_id = %upload.id, error = %e,
                "could not abort an abandoned multipart upload: the server keeps its parts until a lifecycle rule removes them");
        }
    }
    done
}

/// Sends each part once it is whole (and, once finishing, the tail), at most `PARTS_IN_FLIGHT` at
/// once. Returns the parts in order and the object's size once every part is stored; an error
/// when a part fails (after the client's retries) or the stream's handle is dropped.
async fn send_parts(
    client: &dyn ObjectClient,
    file: &File,
    upload: &Upload,
    target: &Target,
    progress: &mut watch::Receiver<Progress>,
) -> Result<(Vec<Part>, u64), ObjectError> {
    let part_size = target.part_size;
    let send = |number: u32, range| async move {
        let _permit = target.permits.acquire().await.map_err(|e| ObjectError::Other(e.to_string()))?;
        client.upload_part(upload, number, file, range).await
    };
    let mut in_flight = FuturesUnordered::new();
    let mut parts: Vec<Part> = Vec::new();
    let mut next = 0u64;
    loop {
        let now = *progress.borrow_and_update();
        let (ready, end) = match now.finish {
            Some(size) => (size.div_ceil(part_size), size),
            None => (now.whole_parts, u64::MAX),
        };
        while in_flight.len() < PARTS_IN_FLIGHT && next < ready {
            let range = next * part_size..end.min((next + 1) * part_size);
            in_flight.push(send(next as u32 + 1, range));
            next += 1;
        }
        if now.finish.is_some() && next == ready && in_flight.is_empty() {
            parts.sort_by_key(|p| p.number);
            return Ok((parts, end));
        }
        tokio::select! {
            Some(part) = in_flight.next() => {
                // The one place a part is known stored.
                parts.push(part?);
            }
            changed = progress.changed(), if now.finish.is_none() => {
                if changed.is_err() {
                    return Err(ObjectError::Other("the file stopped being written in order".into()));
                }
            }
            else => return Err(ObjectError::Other("a finished stream with parts missing".into())),
        }
    }
}
