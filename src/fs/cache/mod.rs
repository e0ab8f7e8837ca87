//! Object data cached in 1 MiB blocks, behind one small trait: the memory tier (`memory`) and the
//! optional disk tier under `cache_dir` (`disk`), which every block is written through to and which
//! outlives the mount.
//! Keys carry the identity, bucket, key and ETag (and on disk the mount's profile and endpoint): a
//! changed object never hits blocks of its previous version, and in a multi-user mount nobody is
//! served blocks another identity fetched, in this mount or an earlier one.

mod disk;
mod memory;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

pub use disk::{DiskCache, DiskCacheError, Holder};
pub use memory::MemoryCache;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlockKey {
    /// Whose credentials fetched it (the Unix uid the filesystem serves).
    pub identity: u32,
    pub bucket: Arc<str>,
    pub key: Arc<str>,
    pub etag: Arc<str>,
    pub block: u64,
}

/// One tier of the block cache. Failures only mean a block is not cached.
pub trait BlockCache: Send + Sync {
    fn get(&self, key: &BlockKey) -> Option<Bytes>;
    fn contains(&self, key: &BlockKey) -> bool;
    fn insert(&self, key: BlockKey, data: Bytes);
    /// Bytes held now (for tests, status and metrics).
    fn bytes(&self) -> u64;
}

/// Where the disk tier lives and what its blocks belong to.
#[derive(Debug, Clone)]
pub struct DiskSettings {
    /// A private directory (created 0700 when missing).
    pub dir: PathBuf,
    /// Bytes of block files at most (headers included).
    pub limit: u64,
    /// The mount's profile and endpoint: part of every block's name and header, so one cache_dir
    /// used by two profiles (or one profile pointed at another endpoint) never serves one's blocks
    /// to the other.
    pub scope: String,
}

/// The cache a mount's settings ask for: `memory_bytes` in memory, written through to `disk` when
/// one is given and usable.
pub fn build(memory_bytes: usize, disk: Option<&DiskSettings>) -> Arc<dyn BlockCache> {
    let disk = disk.and_then(|settings| match DiskCache::open(settings) {
        Ok(disk) => Some(Arc::new(disk)),
        Err(e) => {
            tracing::warn!(dir = %settings.dir.display(), error = %e, "disk cache unavailable; caching in memory only");
            None
        }
    });
    Arc::new(MemoryCache::new(memory_bytes, disk))
}
