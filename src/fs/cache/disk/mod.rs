//! The optional second tier of the block cache (`-o cache_dir=`): blocks in files of a private
//! directory, bounded by `disk_cache_size` (least recently used deleted first), kept across
//! remounts and reboots.
//!
//! - Every block is written through to disk as it arrives, by a writer thread of its own: reads never
//!   wait for the disk, and a remount finds what was read before even if the mount was killed.
//! - A block the memory tier still holds is queued whatever the queue's length: the queue shares its
//!   buffer, so it costs nothing extra. Only blocks memory has evicted before they reached the disk
//!   (orphans) cost memory of their own; those are bounded by `ORPHAN_BYTES`, beyond which an
//!   evicted block is dropped (counted in `dropped`). The bench once lost 10 of 1,024 blocks of a
//!   1 GiB read when blocks arriving at a full 16 MiB queue were dropped outright: read-ahead
//!   delivers several parts at once, faster than any disk in bursts.
//! - Blocks are used only for the version they were fetched for: the file name is a hash of the
//!   mount's scope (profile and endpoint), the identity, bucket, key, ETag and block number, and the
//!   header repeats them all (see `format`). A block of an object whose ETag was not known is never
//!   stored.
//! - A crash never serves a torn block: files are written under a temporary name and renamed, and
//!   read back only if their checksum and header match. No fsync: a block lost in a crash is only
//!   fetched again, and the checksum catches one whose data did not reach the disk.

mod format;
mod scan;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use lru::LruCache;

use super::{BlockCache, BlockKey, DiskSettings};
use format::Name;

/// Held while a mount uses the directory; the one file in it that is not a block.
const LOCK_FILE: &str = "lock";
/// Blocks waiting for the writer that memory no longer holds, at most: memory beyond the memory
/// tier's limit while the disk is behind.
const ORPHAN_BYTES: u64 = 16 << 20;
/// How long unmount waits for the disk at most (a hung disk must not hang the unmount): blocks not
/// written by then are only fetched again by the next mount.
pub const FLUSH_WAIT: Duration = Duration::from_secs(30);

/// Why the disk tier could not start (the mount then caches in memory only).
#[derive(Debug, thiserror::Error)]
pub enum DiskCacheError {
    #[error("{0}")]
    Unsafe(String),
    #[error("{dir} is in use by another ssofs mount; give each mount its own cache_dir to have a disk cache on both")]
    InUse { dir: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub struct DiskCache {
    shared: Arc<Shared>,
    queue: Option<mpsc::Sender<writer::Job>>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// Keeps the directory's lock until the cache is dropped.
    _lock: File,
}

/// What the cache and its writer thread share.
struct Shared {
    dir: PathBuf,
    limit: u64,
    scope: String,
    index: Mutex<Index>,
    /// Signalled whenever a block leaves the queue (written or given up).
    dequeued: Condvar,
    /// `ORPHAN_BYTES`, smaller in tests.
    orphan_limit: u64,
    /// Held by a test to make the writer lag behind.
    #[cfg(test)]
    writer_gate: Mutex<()>,
}

struct Index {
    /// Block files on disk, by name, with their sizes (header included).
    blocks: LruCache<Name, u64>,
    bytes: u64,
    /// Blocks queued for the writer; served from here until they are on disk.
    queued: HashMap<Name, Queued>,
    /// Bytes of queued blocks that memory no longer holds.
    orphan_bytes: u64,
    /// Blocks not written because there were `orphan_limit` bytes of orphans already.
    dropped: u64,
}

struct Queued {
    data: Bytes,
    /// Memory no longer holds it: the queue's copy is the only one.
    orphan: bool,
}

/// Who else holds a block handed to the disk tier, and so what queueing it costs.
#[derive(Clone, Copy)]
pub enum Holder {
    /// The memory tier keeps it: queued at no cost, never dropped.
    Memory,
    /// Nobody (evicted from memory, or the disk tier used alone): dropped when the orphans are at
    /// their limit.
    Nobody,
    /// Nobody, and the mount is going away: waits until the deadline for room.
    NobodyUntil(Instant),
}

impl DiskCache {
    /// Opens (creating it private when missing) the directory of `settings` and takes over the
    /// blocks a previous mount left there. Blocks are read back by path, so the directory must be
    /// private all the way up (see `untrusted::private_dir`): nobody else may swap a block file or
    /// the directory itself.
    pub fn open(settings: &DiskSettings) -> Result<DiskCache, DiskCacheError> {
        Self::open_with(settings, ORPHAN_BYTES)
    }

    fn open_with(settings: &DiskSettings, orphan_limit: u64) -> Result<DiskCache, DiskCacheError> {
        let dir = crate::untrusted::private_dir(&settings.dir).map_err(DiskCacheError::Unsafe)?;
        let lock = scan::lock(&dir)?;
        let scanned = scan::scan(&dir, settings.limit)?;
        let index =
            Index { blocks: scanned.blocks, bytes: scanned.bytes, queued: HashMap::new(), orphan_bytes: 0, dropped: 0 };
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            limit: settings.limit,
            scope: settings.scope.clone(),
            index: Mutex::new(index),
            dequeued: Condvar::new(),
            orphan_limit,
            #[cfg(test)]
            writer_gate: Mutex::new(()),
        });
        let (tx, rx) = mpsc::channel();
        let for_writer = shared.clone();
        let writer = std::thread::Builder::new()
            .name("disk-cache".into())
            .spawn(move || writer::run(&for_writer, rx))
            .map_err(|source| DiskCacheError::Io { path: dir, source })?;
        Ok(DiskCache { shared, queue: Some(tx), writer: Some(writer), _lock: lock })
    }

    /// Queues `data` for the writer unless it is on disk or queued already; what that costs and
    /// whether it may be dropped depends on who else holds it (`Holder`). Reads never wait here.
    pub fn store(&self, key: BlockKey, data: Bytes, holder: Holder) {
        if !self.shared.storable(&key, data.len()) {
            return;
        }
        let name = format::name(&self.shared.scope, &key);
        let len = data.len() as u64;
        let orphan = !matches!(holder, Holder::Memory);
        let mut index = self.shared.lock();
        if let Holder::NobodyUntil(deadline) = holder {
            while !index.blocks.contains(&name)
                && !index.queued.contains_key(&name)
                && index.orphan_bytes + len > self.shared.orphan_limit
                && Instant::now() < deadline
            {
                index = self.shared.dequeued.wait_timeout(index, Duration::from_millis(100)).unwrap().0;
            }
        }
        if index.blocks.contains(&name) {
            return;
        }
        if let Some(queued) = index.queued.get(&name) {
            // Evicted from memory before the writer got to it: now it costs memory of its own, or
            // leaves the queue (the writer skips a job no longer queued) when there is no room.
            if orphan && !queued.orphan {
                if index.orphan_bytes + len > self.shared.orphan_limit {
                    index.queued.remove(&name);
                    index.dropped += 1;
                } else {
                    index.queued.get_mut(&name).expect("looked up above").orphan = true;
                    index.orphan_bytes += len;
                }
            }
            return;
        }
        if orphan && index.orphan_bytes + len > self.shared.orphan_limit {
            index.dropped += 1;
            return;
        }
        index.queued.insert(name, Queued { data, orphan });
        if orphan {
            index.orphan_bytes += len;
        }
        drop(index);
        let sent = self.queue.as_ref().is_some_and(|q| q.send(writer::Job { name, key }).is_ok());
        if !sent {
            self.shared.dequeue(&name);
        }
    }

    /// A cache whose orphans are bounded by `orphan_limit` bytes, for tests of small blocks.
    #[cfg(test)]
    pub fn open_small(settings: &DiskSettings, orphan_limit: u64) -> DiskCache {
        Self::open_with(settings, orphan_limit).unwrap()
    }

    /// The writer writes nothing while the guard lives.
    #[cfg(test)]
    pub fn pause_writer(&self) -> MutexGuard<'_, ()> {
        self.shared.writer_gate.lock().unwrap()
    }

    /// Bytes queued that only the queue holds, and blocks dropped.
    #[cfg(test)]
    pub fn orphans(&self) -> (u64, u64) {
        let index = self.shared.lock();
        (index.orphan_bytes, index.dropped)
    }

    fn path(&self, name: &Name) -> PathBuf {
        self.shared.dir.join(format::file_name(name, format::SUFFIX))
    }

    /// Reads a block file, checks it is `key`'s and whole, and marks it used (its mtime). `Ok(None)`:
    /// the file is gone (evicted by the writer since the index was looked at).
    fn read(&self, name: &Name, key: &BlockKey) -> Result<Option<Bytes>, String> {
        let path = self.path(name);
        let expect = crate::untrusted::Expect { owner: Some(crate::untrusted::euid()), private: true };
        let file = match crate::untrusted::open_regular(&path, expect) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let max = format::MAX_HEADER + format::MAX_DATA;
        // Sized from the start: grown by doubling, a 1 MiB block would hold 2 MiB in the memory tier.
        let size = file.metadata().map_err(|e| e.to_string())?.len().min(max);
        let mut bytes = Vec::with_capacity(size as usize);
        (&file).take(max).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        let data = format::decode(bytes, &self.shared.scope, key).map_err(|bad| format!("{bad:?}"))?;
        // The LRU order of the next mount; a failure only makes this block look older.
        let _ = file.set_modified(SystemTime::now());
        Ok(Some(data))
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap()
    }

    /// Only blocks of a known version (an ETag) that fit are kept: without an ETag nothing would
    /// tell a later mount that the object changed.
    fn storable(&self, key: &BlockKey, len: usize) -> bool {
        !key.etag.is_empty() && (len as u64) <= format::MAX_DATA && (len as u64) + format::MAX_HEADER <= self.limit
    }

    fn dequeue(&self, name: &Name) {
        let mut index = self.lock();
        if let Some(queued) = index.queued.remove(name)
            && queued.orphan
        {
            index.orphan_bytes -= queued.data.len() as u64;
        }
        self.dequeued.notify_all();
    }

    fn forget(&self, name: &Name) {
        let mut index = self.lock();
        if let Some(size) = index.blocks.pop(name) {
            index.bytes -= size;
        }
    }
}

impl BlockCache for DiskCache {
    fn contains(&self, key: &BlockKey) -> bool {
        let name = format::name(&self.shared.scope, key);
        let index = self.shared.lock();
        index.blocks.contains(&name) || index.queued.contains_key(&name)
    }

    fn get(&self, key: &BlockKey) -> Option<Bytes> {
        if !self.shared.storable(key, 0) {
            return None;
        }
        let name = format::name(&self.shared.scope, key);
        {
            let mut index = self.shared.lock();
            if let Some(queued) = index.queued.get(&name) {
                return Some(queued.data.clone());
            }
            index.blocks.get(&name)?;
        }
        match self.read(&name, key) {
            Ok(Some(data)) => Some(data),
            Ok(None) => {
                self.shared.forget(&name);
                None
            }
            Err(why) => {
                tracing::warn!(path = %self.path(&name).display(), why, "disk cache block unusable; removed");
                let _ = std::fs::remove_file(self.path(&name));
                self.shared.forget(&name);
                None
            }
        }
    }

    /// Stores a block nobody else keeps; failures only mean the block is not cached.
    fn insert(&self, key: BlockKey, data: Bytes) {
        self.store(key, data, Holder::Nobody);
    }

    fn bytes(&self) -> u64 {
        self.shared.lock().bytes
    }
}

impl Drop for DiskCache {
    /// Writes what is queued before the mount goes away: closing the queue ends the writer once it
    /// has written everything sent. A disk that does not take it within `FLUSH_WAIT` is left behind.
    fn drop(&mut self) {
        drop(self.queue.take());
        let deadline = Instant::now() + FLUSH_WAIT;
        let mut index = self.shared.lock();
        while !index.queued.is_empty() && Instant::now() < deadline {
            index = self.shared.dequeued.wait_timeout(index, Duration::from_millis(100)).unwrap().0;
        }
        if index.queued.is_empty()
            && let Some(writer) = self.writer.take()
        {
            drop(index);
            let _ = writer.join();
            index = self.shared.lock();
        }
        tracing::info!(blocks = index.blocks.len(), bytes = index.bytes, dropped = index.dropped, "disk cache closed");
    }
}
