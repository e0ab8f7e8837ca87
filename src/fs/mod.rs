//! The filesystem, independent of FUSE: buckets at the root, prefixes as directories, objects as
//! files. One room per job:
//! - `superblock`: what the mount knows about names (inodes, listings, negative entries) and the
//!   lookups, listings and attribute reads that fill it;
//! - `handles`: open files and the data path (open, read, write, flush, release);
//! - `dir_handles`: directory snapshots taken at opendir;
//! - `namespace`: mkdir, unlink, rmdir, rename (S3 has no rename: copy and delete);
//! - `attributes`: mode, times, owner and symlinks, kept in object metadata;
//! - `page_cache`: when the kernel may keep its cached pages of a file;
//! - `observed`: the object client as the filesystem uses it, failures noted for `ssofs status`;
//! - `cache`, `read`, `staging`: the block cache, reads with read-ahead, staged writes.
//!
//! `crate::fuse` adapts it to the kernel.

mod attributes;
pub mod cache;
mod config;
pub mod dir_handles;
pub mod error;
pub mod handles;
pub mod inode;
pub(crate) mod listing;
pub mod named;
pub mod names;
mod namespace;
mod observed;
mod page_cache;
pub mod read;
pub mod staging;
pub mod superblock;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

pub use self::config::{DEFAULT_MULTIUSER_STAGING_QUOTA, FsConfig, MetadataLimits};
pub use self::error::{FsError, FsResult};
use self::inode::{Attr, Inode, Kind, ROOT};
pub use self::namespace::RenameMode;
pub use self::superblock::MapSizes;
use crate::object::{ObjectClient, ObjectInfo};

/// What the kernel is told about an inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub ino: u64,
    pub is_dir: bool,
    /// A symbolic link (an object whose metadata says so; its body is the target).
    pub symlink: bool,
    pub size: u64,
    pub mtime: SystemTime,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
}

/// One directory entry, with its attributes (readdirplus).
#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: String,
    pub stat: Stat,
    /// What the listing said: enough to make the inode when the kernel is handed a reference to
    /// it (readdirplus, see [`Fs::hand_out`]); a plain readdir makes none.
    pub(crate) listed: superblock::Entry,
}

/// Everything the filesystem keeps under its one lock, by owner. The lock is never held across
/// I/O: each room takes it to look or record, then lets go.
#[derive(Default)]
pub(crate) struct State {
    meta: superblock::Metadata,
    files: handles::OpenFiles,
    dirs: dir_handles::DirHandles,
    page_cache: page_cache::PageCachePolicy,
    prefetch: superblock::Prefetch,
}

/// What every filesystem of one mount shares: the block cache (`cache_size` in memory, and the
/// disk tier), the read-ahead budget and the parts of streamed uploads in flight.
#[derive(Clone)]
pub struct MountShared {
    pub cache: Arc<dyn cache::BlockCache>,
    pub read_ahead: read::ReadAheadBudget,
    /// Parts of files streamed while written, in flight across the mount (`handles::stream`).
    pub upload_parts: Arc<tokio::sync::Semaphore>,
    /// Directory listings prefetched at once across the mount (`dir_prefetch`; see
    /// `superblock::prefetch`).
    pub dir_prefetch: Arc<tokio::sync::Semaphore>,
}

impl MountShared {
    pub fn new(config: &FsConfig) -> Self {
        MountShared {
            cache: cache::build(config.cache_size, config.disk_cache.as_ref()),
            read_ahead: read::read_ahead_budget(read::MAX_WINDOW),
            upload_parts: Arc::new(tokio::sync::Semaphore::new(handles::MOUNT_PARTS_IN_FLIGHT)),
            dir_prefetch: Arc::new(tokio::sync::Semaphore::new(config.dir_prefetch)),
        }
    }
}

pub struct Fs {
    client: Arc<dyn ObjectClient>,
    read_path: read::ReadPath,
    config: FsConfig,
    /// Shared with this filesystem's prefetch workers (`superblock::prefetch`), which outlive no
    /// call but may outlive the call that started them.
    state: Arc<Mutex<State>>,
    /// Set at unmount: pending data has been flushed, so later writes are refused, not lost.
    closing: AtomicBool,
    /// `config.staging_quota`, shared by this filesystem's staged files.
    quota: Option<Arc<staging::StagingQuota>>,
    /// When this filesystem started: a directory's time until a listing says otherwise.
    mounted_at: SystemTime,
    /// This identity's figures for `ssofs status`.
    stats: Arc<crate::metrics::IdentityStats>,
    /// The profile and token store this identity signs in with (`ssofs status` shows who).
    identity: std::sync::OnceLock<(String, crate::identity::TokenStore)>,
}

impl Fs {
    /// A filesystem with a block cache and read-ahead budget of its own, as `config` asks.
    pub fn new(client: Arc<dyn ObjectClient>, config: FsConfig) -> Self {
        let shared = MountShared::new(&config);
        Self::with_shared(client, config, &shared)
    }

    /// A filesystem that shares the mount's block cache and read-ahead budget with others (each
    /// identity of a multi-user mount): one memory budget for the mount, not one per user. Blocks
    /// are keyed by `config.uid`, so nobody is served another identity's.
    pub fn with_shared(client: Arc<dyn ObjectClient>, config: FsConfig, shared: &MountShared) -> Self {
        let quota = config.staging_quota.map(|limit| Arc::new(staging::StagingQuota::new(limit, &config.staging_dir)));
        let stats = Arc::new(crate::metrics::IdentityStats::default());
        let client: Arc<dyn ObjectClient> = Arc::new(observed::Observed::new(client, stats.clone()));
        let read_path = read::ReadPath {
            client: client.clone(),
            shared: shared.clone(),
            identity: config.uid,
            stats: stats.clone(),
        };
        let mut meta = match &config.root_bucket {
            Some(root) => superblock::Metadata::with_root_bucket(&root.bucket, &root.prefix),
            None => superblock::Metadata::default(),
        };
        meta.limits = config.metadata_limits;
        meta.dir_ttl = config.dir_ttl;
        Fs {
            mounted_at: SystemTime::now(),
            quota,
            client,
            read_path,
            state: Arc::new(Mutex::new(State { meta, ..State::default() })),
            config,
            closing: AtomicBool::new(false),
            stats,
            identity: std::sync::OnceLock::new(),
        }
    }

    /// This identity's figures (bytes, cache hits, uploads, errors).
    pub fn stats(&self) -> &Arc<crate::metrics::IdentityStats> {
        &self.stats
    }

    /// Records whose sign-in this filesystem uses (set once, by whoever built its client).
    pub fn set_identity(&self, profile: &str, store: crate::identity::TokenStore) {
        let _ = self.identity.set((profile.to_string(), store));
    }

    /// The profile and token store this filesystem signs in with, when known.
    pub fn identity(&self) -> Option<&(String, crate::identity::TokenStore)> {
        self.identity.get()
    }

    /// When the S3 credentials this filesystem uses expire.
    pub fn credentials_expire_at(&self) -> Option<SystemTime> {
        self.client.credentials_expire_at()
    }

    /// The mount is going away: from now on writes fail (EROFS) instead of being staged where no
    /// upload will pick them up.
    pub fn begin_shutdown(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.state.lock().unwrap().prefetch.close();
    }

    pub fn config(&self) -> &FsConfig {
        &self.config
    }

    fn stat(&self, i: &Inode) -> Stat {
        self.stat_of(i.ino, i.kind, &i.attr)
    }

    fn stat_of(&self, ino: u64, kind: Kind, attr: &Attr) -> Stat {
        let is_dir = kind.is_dir();
        let meta = &attr.meta;
        let default_perm = if is_dir { self.config.dir_mode } else { self.config.file_mode };
        Stat {
            ino,
            is_dir,
            symlink: !is_dir && meta.is_symlink(),
            size: if is_dir { 0 } else { attr.size },
            mtime: meta.mtime.unwrap_or(attr.mtime),
            perm: meta.mode.map(|m| (m & 0o7777) as u16).unwrap_or(default_perm),
            uid: meta.uid.unwrap_or(self.config.uid),
            gid: meta.gid.unwrap_or(self.config.gid),
        }
    }

    fn inode(&self, ino: u64) -> FsResult<Inode> {
        self.state.lock().unwrap().meta.inodes.get(ino).cloned().ok_or(FsError::NotFound)
    }

    fn fresh_attr(&self, size: u64, mtime: SystemTime, etag: Option<String>) -> Attr {
        Attr { size, mtime, etag, valid_until: Instant::now() + self.config.attr_ttl, meta: Default::default() }
    }

    /// Attributes from a HEAD: with the object's metadata (mode, mtime, owner), unless turned off.
    fn head_attr(&self, o: ObjectInfo) -> Attr {
        let meta = if self.config.metadata { o.meta } else { Default::default() };
        Attr { meta, ..self.fresh_attr(o.size, o.last_modified, Some(o.etag)) }
    }

    /// A directory's time is stable: the mount's start (a listing moves it to its newest entry's).
    fn dir_attr(&self) -> Attr {
        self.fresh_attr(0, self.mounted_at, None)
    }

    fn check_writable(&self) -> FsResult<()> {
        if self.config.read_only || self.closing.load(Ordering::SeqCst) { Err(FsError::ReadOnly) } else { Ok(()) }
    }

    pub fn root_stat(&self) -> FsResult<Stat> {
        let i = self.inode(ROOT)?;
        Ok(self.stat(&i))
    }

    /// Bytes the block cache holds (shared by every filesystem that shares the cache).
    pub fn block_cache_bytes(&self) -> u64 {
        self.read_path.shared.cache.bytes()
    }
}

/// The prefetch workers hold the state, not the filesystem: they are stopped with it.
impl Drop for Fs {
    fn drop(&mut self) {
        if let Ok(mut st) = self.state.lock() {
            st.prefetch.close();
        }
    }
}

#[cfg(test)]
mod tests;
