//! Object data cached in 1 MiB blocks, behind one small trait: the memory tier (`memory`) and the
//! optional disk tier under `cache_dir` (`disk`), which takes the blocks memory evicts.
//! Keys carry the identity, bucket, key and ETag: a changed object never hits blocks of its previous
//! version, and in a multi-user mount nobody is served blocks another identity fetched.

mod disk;
mod memory;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

pub use disk::DiskCache;
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

/// The cache a mount's settings ask for: `memory_bytes` in memory, spilling to `disk` (a private
/// directory and its byte limit) when one is given and usable.
pub fn build(memory_bytes: usize, disk: Option<&(PathBuf, u64)>) -> Arc<dyn BlockCache> {
    let spill = disk.and_then(|(dir, limit)| match DiskCache::open(dir, *limit) {
        Ok(disk) => Some(Arc::new(disk) as Arc<dyn BlockCache>),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "disk cache unavailable; caching in memory only");
            None
        }
    });
    Arc::new(MemoryCache::new(memory_bytes, spill))
}
