//! The data path of open files: reads, writes (to the shared staged copy, followed by the
//! streaming of parts), uploads at flush and close, and truncation.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::stream::{Stream, Streaming, Target};
use super::{Handle, OpenFile, OpenMode};
use crate::fs::inode::{Attr, Inode};
use crate::fs::{Fs, FsError, FsResult, Stat};
use crate::object::meta::FileMeta;
use crate::object::{MIN_PART_SIZE, ObjectError, ObjectInfo};

/// How often a close or fsync waiting for an upload logs its progress.
const UPLOAD_PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl Fs {
    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<bytes::Bytes> {
        let handle = self.handle(fh)?;
        {
            let f = handle.file.lock().await;
            if let Some(staged) = &f.staged {
                return staged
                    .read_at(offset, size)
                    .map(bytes::Bytes::from)
                    .inspect(|data| self.stats.read(data.len() as u64));
            }
        }
        let read = match &handle.reader {
            Some(reader) => reader.lock().await.read(offset, size).await,
            None => Err(FsError::BadHandle),
        };
        // A failure was noted by the object client already (the identity's last error).
        if let Ok(data) = &read {
            self.stats.read(data.len() as u64);
        }
        read
    }

    pub async fn write(&self, fh: u64, offset: u64, data: &[u8]) -> FsResult<u32> {
        let handle = self.writer(fh)?;
        let mut f = handle.file.lock().await;
        self.write_locked(&handle, &mut f, offset, data)
    }

    /// A write done at once on the calling thread, when no other operation holds the file (the
    /// usual case): no task, no copy of the data, no wake-up of another thread. `None` when the
    /// file is busy, or when the write begins a stream of parts (a task on the runtime); then
    /// [`Fs::write`] does it. A write is one pwrite to the staged copy, so it costs the same at any
    /// offset.
    pub fn write_now(&self, fh: u64, offset: u64, data: &[u8]) -> Option<FsResult<u32>> {
        let handle = match self.writer(fh) {
            Ok(handle) => handle,
            Err(e) => return Some(Err(e)),
        };
        let mut f = handle.file.try_lock().ok()?;
        let at = (!handle.append).then_some(offset);
        if f.streaming.begins_with(at, data.len() as u64, self.part_size()) {
            return None;
        }
        Some(self.write_locked(&handle, &mut f, offset, data))
    }

    fn writer(&self, fh: u64) -> FsResult<Arc<Handle>> {
        self.check_writable()?;
        let handle = self.handle(fh)?;
        if !handle.writes {
            return Err(FsError::BadHandle);
        }
        Ok(handle)
    }

    fn write_locked(&self, handle: &Handle, f: &mut OpenFile, offset: u64, data: &[u8]) -> FsResult<u32> {
        let staged = f.staged.as_mut().ok_or(FsError::BadHandle)?;
        let offset = if handle.append { staged.len()? } else { offset };
        // Before the bytes land: a write into a part already handed out stops the stream first.
        f.streaming.note_write(offset, offset.saturating_add(data.len() as u64));
        if let Err(e) = staged.write_at(offset, data) {
            f.streaming.stop("a failed write");
            return Err(e);
        }
        self.stats.written(data.len() as u64);
        let size = staged.len()?;
        self.set_size_attr(handle.ino, size);
        self.begin_stream(handle.ino, f);
        Ok(data.len() as u32)
    }

    fn part_size(&self) -> u64 {
        self.config.stream_part_size.max(MIN_PART_SIZE)
    }

    /// Begins uploading the file in parts once a whole part is written in order. Only on the
    /// runtime (the driver is a task): [`Fs::write_now`] leaves such writes to [`Fs::write`].
    fn begin_stream(&self, ino: u64, f: &mut OpenFile) {
        let Some(frontier) = f.streaming.ready(self.part_size()) else { return };
        let (Ok(_), Ok(inode)) = (tokio::runtime::Handle::try_current(), self.inode(ino)) else { return };
        let Some((file, staged)) = f.staged.as_ref().and_then(|s| Some((s.file().try_clone().ok()?, s.path.clone())))
        else {
            return f.streaming.stop("no second descriptor of the staged file");
        };
        let meta = self.stream_meta(&inode, f);
        let permits = self.read_path.shared.upload_parts.clone();
        let (bucket, key, part_size) = (inode.bucket, inode.key, self.part_size());
        let target = Target { bucket, key, meta, part_size, permits, staged };
        f.streaming = Streaming::Active(Stream::start(self.client.clone(), file, target, frontier));
    }

    /// The metadata of a streamed object, fixed when its upload begins: as for any upload, except
    /// that the time is stored only when set explicitly; otherwise the object's own LastModified
    /// (its completion, at close) is the file's time.
    fn stream_meta(&self, inode: &Inode, f: &OpenFile) -> FileMeta {
        if !self.config.metadata {
            return FileMeta::default();
        }
        FileMeta { mtime: f.pending_meta.mtime, ..inode.attr.meta.updated(&f.pending_meta) }
    }

    /// The object, when the file was streamed and its upload completes; `None` (the stream given up
    /// and aborted) when the staged file must be uploaded whole.
    async fn finish_stream(&self, inode: &Inode, f: &mut OpenFile) -> Option<ObjectInfo> {
        let stream = f.streaming.take_active()?;
        let size = f.staged.as_ref()?.len().ok()?;
        if !stream.makes(&inode.bucket, &inode.key, &self.stream_meta(inode, f), size) {
            tracing::debug!(bucket = %inode.bucket, key = %inode.key,
                "renamed or metadata changed while streamed: uploading the staged file whole");
            return None;
        }
        match stream.finish(size).await {
            Ok(info) => Some(info),
            Err(e) => {
                tracing::warn!(bucket = %inode.bucket, key = %inode.key, error = %e,
                    "the upload in parts failed; uploading the staged file whole");
                None
            }
        }
    }

    /// Uploads the file's staged copy if it holds writes not yet uploaded. On failure the copy is
    /// kept and its path logged, and the error goes back to close()/fsync(): nothing written is
    /// lost silently.
    pub async fn flush(&self, fh: u64) -> FsResult<()> {
        let handle = self.handle(fh)?;
        if !handle.writes {
            return Ok(());
        }
        let mut f = handle.file.lock().await;
        self.upload(handle.ino, &mut f).await
    }

    pub(super) async fn upload(&self, ino: u64, f: &mut OpenFile) -> FsResult<()> {
        if f.unlinked {
            f.streaming.stop("unlinked");
            return Ok(());
        }
        if !f.staged.as_ref().is_some_and(|s| s.dirty) {
            return Ok(());
        }
        let inode = self.inode(ino)?;
        let streamed = self.finish_stream(&inode, f).await;
        let Some(staged) = f.staged.as_mut() else { return Ok(()) };
        // Mode and owner as known or as set; the time is now unless one was set explicitly.
        let mut meta = inode.attr.meta.updated(&f.pending_meta);
        if f.pending_meta.mtime.is_none() {
            meta.mtime = Some(SystemTime::now());
        }
        let meta = if self.config.metadata { meta } else { FileMeta::default() };
        // No fdatasync first: the upload reads the file through the same page cache, and close()
        // returns only once the object is in S3 (an fdatasync cost 6.6 ms per small file).
        let progress = self.stats.uploads.start(&inode.bucket, &inode.key, staged.len()?);
        // A streamed file's parts went out while it was written (its tail at finish_stream above).
        let put = async {
            match streamed {
                Some(info) => Ok(info),
                None => self.client.put_file(&inode.bucket, &inode.key, staged.file(), &meta).await,
            }
        };
        let put = progress.sending(put);
        // Whoever waits in close/fsync for a long upload is told, in the log, how far it got.
        let (bucket, key) = (&inode.bucket, &inode.key);
        let outcome = crate::metrics::uploads::reporting(put, &progress, UPLOAD_PROGRESS_EVERY, |done, total| {
            tracing::info!(bucket = %bucket, key = %key, done, total, "close/fsync still waiting for the upload")
        })
        .await;
        match outcome {
            Ok(info) => {
                progress.finish("ok");
                self.stats.upload_succeeded(&inode.bucket, &inode.key);
                staged.dirty = false;
                staged.refused = false;
                // Writes from here on may stream again (from the first part: the object is new).
                f.streaming = match staged.len() {
                    Ok(len) if f.writers <= 1 => Streaming::watching(len),
                    _ => Streaming::Off,
                };
                f.pending_meta = FileMeta::default();
                self.state.lock().unwrap().meta.local_only.remove(&ino);
                self.uploaded(ino, &inode.key, info);
                Ok(())
            }
            Err(e) => {
                tracing::error!(bucket = %inode.bucket, key = %inode.key, staged = %staged.path.display(), error = %e,
                    "upload failed; the written data is kept in the staged file");
                staged.refused = matches!(e, ObjectError::AccessDenied);
                progress.finish(if staged.refused { "refused" } else { "failed" });
                let (bucket, key) = (&inode.bucket, &inode.key);
                self.stats.upload_failed(bucket, key, &staged.path, &e.to_string(), staged.refused);
                Err(e.into())
            }
        }
    }

    /// Changes the size (truncate): of the staged copy when the file is open for writing, else the
    /// object is staged, cut and uploaded.
    pub async fn set_size(&self, ino: u64, fh: Option<u64>, size: u64) -> FsResult<Stat> {
        self.check_writable()?;
        let inode = self.inode(ino)?;
        if inode.kind.is_dir() {
            return Err(FsError::IsDir);
        }
        let writer = fh.and_then(|fh| self.handle(fh).ok()).filter(|h| h.writes).and(fh);
        let (fh, own) = match writer {
            Some(fh) => (fh, false),
            None => (self.open(ino, OpenMode { truncate: size == 0, ..OpenMode::WRITE }).await?, true),
        };
        {
            let handle = self.handle(fh)?;
            let mut guard = handle.file.lock().await;
            let f = &mut *guard;
            if let Some(staged) = f.staged.as_mut() {
                f.streaming.note_truncate(size);
                staged.set_len(size)?;
            }
        }
        if own {
            self.release(fh).await?;
        }
        self.set_size_attr(ino, size);
        let inode = self.inode(ino)?;
        Ok(self.stat(&inode))
    }

    pub(super) fn set_size_attr(&self, ino: u64, size: u64) {
        let mut st = self.state.lock().unwrap();
        if let Some(i) = st.meta.inodes.get(ino).cloned() {
            let attr = Attr { size, mtime: SystemTime::now(), valid_until: Instant::now(), ..i.attr };
            st.meta.inodes.set_attr(ino, attr);
        }
    }
}
