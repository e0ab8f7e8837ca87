//! The block cache: object bytes in 1 MiB blocks, least recently used evicted first, bounded by bytes.
//! Keys carry bucket, key and ETag, so a changed object never hits blocks of its previous version.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use lru::LruCache;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlockKey {
    pub bucket: Arc<str>,
    pub key: Arc<str>,
    pub etag: Arc<str>,
    pub block: u64,
}

pub struct BlockCache {
    inner: Mutex<Inner>,
    limit: usize,
}

struct Inner {
    blocks: LruCache<BlockKey, Bytes>,
    bytes: usize,
}

impl BlockCache {
    pub fn new(limit_bytes: usize) -> Self {
        BlockCache { inner: Mutex::new(Inner { blocks: LruCache::unbounded(), bytes: 0 }), limit: limit_bytes }
    }

    pub fn get(&self, key: &BlockKey) -> Option<Bytes> {
        self.inner.lock().unwrap().blocks.get(key).cloned()
    }

    pub fn contains(&self, key: &BlockKey) -> bool {
        self.inner.lock().unwrap().blocks.contains(key)
    }

    pub fn insert(&self, key: BlockKey, data: Bytes) {
        if data.len() > self.limit {
            return;
        }
        let mut inner = self.inner.lock().unwrap();
        inner.bytes += data.len();
        if let Some(old) = inner.blocks.put(key, data) {
            inner.bytes -= old.len();
        }
        while inner.bytes > self.limit {
            match inner.blocks.pop_lru() {
                Some((_, evicted)) => inner.bytes -= evicted.len(),
                None => break,
            }
        }
    }

    /// Bytes held now (for tests and status).
    pub fn bytes(&self) -> usize {
        self.inner.lock().unwrap().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(block: u64) -> BlockKey {
        BlockKey { bucket: "b".into(), key: "k".into(), etag: "e".into(), block }
    }

    #[test]
    fn evicts_least_recently_used_to_stay_within_bytes() {
        let c = BlockCache::new(3000);
        for b in 0..3 {
            c.insert(key(b), Bytes::from(vec![0u8; 1000]));
        }
        assert!(c.get(&key(0)).is_some()); // 0 is now most recent
        c.insert(key(3), Bytes::from(vec![0u8; 1000]));
        assert!(c.bytes() <= 3000);
        assert!(c.get(&key(1)).is_none(), "1 was least recently used");
        assert!(c.get(&key(0)).is_some() && c.get(&key(3)).is_some());
        c.insert(key(9), Bytes::from(vec![0u8; 5000]));
        assert!(c.get(&key(9)).is_none(), "larger than the whole cache: not cached");
    }

    #[test]
    fn another_etag_is_another_entry() {
        let c = BlockCache::new(10_000);
        c.insert(key(0), Bytes::from_static(b"old"));
        let newer = BlockKey { etag: "e2".into(), ..key(0) };
        assert!(c.get(&newer).is_none());
    }
}
