//! Open files, as the kernel sees them: one state per inode, shared by every handle open on it.
//!
//! - Writers share one staged copy, so two processes writing different ranges, or appending
//!   (`O_APPEND` writes go to the copy's current end, under its lock), all land in one file.
//! - A reader of a file with writes not yet uploaded reads that copy: this mount's own writes are
//!   visible at once, and the size the kernel is told is the copy's.
//! - Every close or fsync of a writer uploads a snapshot of everyone's writes so far (the copy is
//!   locked while it is read); the last close uploads the final state. One fsync uploads all.
//! - A file unlinked while open is never uploaded; its handles keep reading and writing the
//!   staged copy (a file open only for reading is copied down first) until the last one closes.
//! - A file written in order by one writer is uploaded in parts while it is written (`stream`):
//!   close then waits only for the tail.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::Mutex as AsyncMutex;

use super::error::{FsError, FsResult};
use super::inode::Inode;
mod io;
mod stream;
pub use stream::MOUNT_PARTS_IN_FLIGHT;

use super::read::Reader;
use super::staging::Staged;
use super::{Fs, Stat};
use crate::object::meta::FileMeta;
use stream::Streaming;

/// What every handle of one file shares.
#[derive(Default)]
pub(crate) struct OpenFile {
    /// The local copy writes go to (and reads come from while it exists).
    pub(crate) staged: Option<Staged>,
    writers: usize,
    /// Unlinked while open: never uploaded.
    pub(crate) unlinked: bool,
    /// Mode, times or owner set while open (chmod, utimens, chown; a create's mode): stored with
    /// the next upload.
    pub(crate) pending_meta: FileMeta,
    /// Whether the staged copy is being uploaded in parts as it is written.
    streaming: Streaming,
}

/// Every open file and handle of one filesystem (kept in the filesystem's state, under its lock).
#[derive(Default)]
pub(crate) struct OpenFiles {
    pub(crate) handles: HashMap<u64, Arc<Handle>>,
    /// One entry per open file, shared by its handles.
    pub(crate) open: HashMap<u64, OpenEntry>,
    next_fh: u64,
}

impl OpenFiles {
    pub(crate) fn len(&self) -> usize {
        self.handles.len() + self.open.len()
    }
}

/// One open file in the state's map: its handles, counted under the state's lock.
#[derive(Default)]
pub(crate) struct OpenEntry {
    handles: usize,
    pub(crate) file: Arc<AsyncMutex<OpenFile>>,
}

impl OpenEntry {
    /// Whether the file has a staged copy (or is being changed right now).
    pub(crate) fn staged_or_busy(&self) -> bool {
        self.file.try_lock().map_or(true, |f| f.staged.is_some())
    }
}

/// How a file is opened (the kernel's open flags that matter here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenMode {
    /// Open for writing (O_WRONLY or O_RDWR).
    pub write: bool,
    /// O_TRUNC: the file starts empty.
    pub truncate: bool,
    /// O_APPEND: every write goes to the end.
    pub append: bool,
}

impl OpenMode {
    pub const READ: OpenMode = OpenMode { write: false, truncate: false, append: false };
    pub const WRITE: OpenMode = OpenMode { write: true, truncate: false, append: false };
}

pub(crate) struct Handle {
    pub(crate) ino: u64,
    pub(crate) writes: bool,
    /// `O_APPEND`: every write goes to the end of the staged copy.
    append: bool,
    file: Arc<AsyncMutex<OpenFile>>,
    /// Reads of the object itself, for a handle opened for reading.
    reader: Option<AsyncMutex<Reader>>,
}

impl Fs {
    pub(crate) fn handle(&self, fh: u64) -> FsResult<Arc<Handle>> {
        self.state.lock().unwrap().files.handles.get(&fh).cloned().ok_or(FsError::BadHandle)
    }

    /// The open-file state of `ino`, made on first open, with one more handle counted. The count
    /// lives beside the map (under the same lock), so the last close and a new open cannot race
    /// into two states for one file.
    fn open_file(&self, ino: u64) -> Arc<AsyncMutex<OpenFile>> {
        let mut st = self.state.lock().unwrap();
        let entry = st.files.open.entry(ino).or_default();
        entry.handles += 1;
        entry.file.clone()
    }

    /// A handle went away (or never came): the last one takes the open-file state with it and
    /// settles its staged copy.
    async fn close_open_file(&self, ino: u64, file: &Arc<AsyncMutex<OpenFile>>) {
        {
            let mut st = self.state.lock().unwrap();
            let Some(entry) = st.files.open.get_mut(&ino).filter(|e| Arc::ptr_eq(&e.file, file)) else { return };
            entry.handles = entry.handles.saturating_sub(1);
            if entry.handles > 0 {
                return;
            }
            st.files.open.remove(&ino);
            st.meta.local_only.remove(&ino);
        }
        let mut f = file.lock().await;
        let Some(staged) = f.staged.take() else { return };
        if f.unlinked || !staged.dirty {
            staged.discard();
        } else if staged.refused {
            let path = staged.path.clone();
            match staged.move_to_refused() {
                Ok(to) => {
                    self.stats.moved(&path, &to);
                    tracing::warn!(kept = %to.display(),
                    "the bucket policy refused this upload; the data is kept for `ssofs recover --export` until it expires")
                }
                Err(e) => {
                    tracing::warn!(staged = %path.display(), error = %e, "refused upload kept in the staging directory")
                }
            }
        } else {
            tracing::warn!(staged = %staged.path.display(), "staged file kept after a failed upload");
        }
    }

    /// Whether this mount puts the handle's writes at the staged copy's end (`O_APPEND`). With the
    /// kernel's writeback cache the kernel does: it sends each dirty page at its own offset, and
    /// the same page again when more is appended to it, so appending here would write it twice.
    fn appends_at_end(&self, mode: OpenMode) -> bool {
        mode.append && !self.config.writeback_cache
    }

    fn add_handle(&self, handle: Handle) -> u64 {
        let mut st = self.state.lock().unwrap();
        st.files.next_fh += 1;
        let fh = st.files.next_fh;
        st.files.handles.insert(fh, Arc::new(handle));
        fh
    }

    /// Opens a file. Writing opens share the file's staged copy (`truncate` empties it).
    pub async fn open(&self, ino: u64, mode: OpenMode) -> FsResult<u64> {
        let OpenMode { write, truncate, .. } = mode;
        let append = self.appends_at_end(mode);
        let inode = self.inode(ino)?;
        if inode.kind.is_dir() {
            return Err(FsError::IsDir);
        }
        if write {
            self.check_writable()?;
        }
        let file = self.open_file(ino);
        match self.open_on(&inode, &file, write, truncate).await {
            Ok(reader) => {
                let handle = Handle { ino, writes: write, append, file, reader: reader.map(AsyncMutex::new) };
                let fh = self.add_handle(handle);
                if !write {
                    self.note_read_open(fh, ino);
                }
                Ok(fh)
            }
            Err(e) => {
                self.close_open_file(ino, &file).await;
                Err(e)
            }
        }
    }

    /// For a writer: the staged copy made (or emptied). For a reader: its reader of the object.
    async fn open_on(
        &self,
        inode: &Inode,
        file: &Arc<AsyncMutex<OpenFile>>,
        write: bool,
        truncate: bool,
    ) -> FsResult<Option<Reader>> {
        if !write {
            // Read the version we know; a changed object is noticed after the attribute TTL.
            let inode = if inode.attr.etag.is_none() && !self.is_local_only(inode.ino) {
                self.refresh_attr(inode).await?
            } else {
                inode.clone()
            };
            let etag = inode.attr.etag.as_deref().unwrap_or("");
            return Ok(Some(Reader::new(self.read_path.clone(), &inode.bucket, &inode.key, etag, inode.attr.size)));
        }
        self.state.lock().unwrap().page_cache.forget_inode(inode.ino);
        let mut guard = file.lock().await;
        let f = &mut *guard;
        match &mut f.staged {
            Some(staged) if truncate => {
                f.streaming.note_truncate(0);
                staged.set_len(0)?;
                self.set_size_attr(inode.ino, 0);
            }
            Some(_) => {}
            None => {
                let staged = if truncate || inode.attr.size == 0 || self.is_local_only(inode.ino) {
                    let mut s =
                        Staged::create(&self.config.staging_dir, &inode.bucket, &inode.key, self.quota.clone())?;
                    s.dirty = truncate;
                    s
                } else {
                    let inode = self.refresh_attr(inode).await?;
                    self.stage_object(&inode).await?
                };
                f.streaming = staged.len().map_or(Streaming::Off, Streaming::watching);
                f.staged = Some(staged);
            }
        }
        f.writers += 1;
        if f.writers > 1 {
            f.streaming.stop("a second writer");
        }
        Ok(None)
    }

    /// A new file: created here, open for writing, listed at once though not yet uploaded. `perm`
    /// is kept as its mode (when metadata is on).
    pub async fn create(&self, parent: u64, name: &str, open: OpenMode, perm: Option<u32>) -> FsResult<(Stat, u64)> {
        let append = self.appends_at_end(open);
        self.creatable_in(parent, name)?;
        let attr = self.fresh_attr(0, SystemTime::now(), None);
        let inode = {
            let mut st = self.state.lock().unwrap();
            let inode = st.meta.inodes.upsert(parent, name, super::Kind::File, attr);
            st.meta.inodes.add_lookup(inode.ino);
            inode
        };
        let mut staged = Staged::create(&self.config.staging_dir, &inode.bucket, &inode.key, self.quota.clone())?;
        staged.dirty = true;
        let file = self.open_file(inode.ino);
        {
            let mut f = file.lock().await;
            f.writers += 1;
            f.unlinked = false;
            f.pending_meta = FileMeta { mode: perm.map(|m| libc::S_IFREG | (m & 0o7777)), ..FileMeta::default() };
            if let Some(old) = f.staged.replace(staged) {
                old.discard();
            }
            f.streaming = if f.writers == 1 { Streaming::watching(0) } else { Streaming::Off };
        }
        let fh = self.add_handle(Handle { ino: inode.ino, writes: true, append, file, reader: None });
        self.show_local_file(parent, name, inode.ino);
        Ok((self.stat(&inode), fh))
    }

    /// Closes a handle. A writer's close uploads what is pending; the last handle settles the
    /// staged copy (deleted once uploaded, kept after a failure, set aside when refused).
    pub async fn release(&self, fh: u64) -> FsResult<()> {
        let removed = {
            let mut st = self.state.lock().unwrap();
            st.page_cache.handle_closed(fh);
            st.files.handles.remove(&fh)
        };
        let Some(handle) = removed else { return Err(FsError::BadHandle) };
        let result = if handle.writes {
            let mut f = handle.file.lock().await;
            f.writers = f.writers.saturating_sub(1);
            self.upload(handle.ino, &mut f).await
        } else {
            Ok(())
        };
        self.close_open_file(handle.ino, &handle.file).await;
        result
    }

    /// Unlinking a file that is open: its handles keep their data. A file open only for reading is
    /// copied down first (its object is about to go). Returns whether it was open.
    pub(crate) async fn unlink_open(&self, ino: u64) -> FsResult<bool> {
        let Some(file) = self.state.lock().unwrap().files.open.get(&ino).map(|e| e.file.clone()) else {
            return Ok(false);
        };
        let mut f = file.lock().await;
        if f.staged.is_none() {
            let inode = self.inode(ino)?;
            f.staged = Some(self.stage_object(&inode).await?);
        }
        f.unlinked = true;
        f.streaming.stop("unlinked");
        self.state.lock().unwrap().meta.local_only.remove(&ino);
        Ok(true)
    }

    /// A staged copy of the object's current content (the version `inode` knows).
    async fn stage_object(&self, inode: &Inode) -> FsResult<Staged> {
        Staged::from_object(
            &self.config.staging_dir,
            self.client.as_ref(),
            &inode.bucket,
            &inode.key,
            inode.attr.size,
            inode.attr.etag.as_deref(),
            self.quota.clone(),
        )
        .await
    }

    /// Whether `ino` is open with a writer (its attributes are this mount's, not S3's).
    pub(crate) fn open_for_write(&self, ino: u64) -> bool {
        self.state.lock().unwrap().files.handles.values().any(|h| h.ino == ino && h.writes)
    }

    /// Every file handle still open, for flushing before unmount.
    pub fn open_handles(&self) -> Vec<u64> {
        self.state.lock().unwrap().files.handles.keys().copied().collect()
    }
}
