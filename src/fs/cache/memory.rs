//! The memory tier: least recently used blocks evicted first, bounded by bytes. Evicted blocks
//! spill to the next tier (the disk, when there is one) and come back from it on a hit.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use lru::LruCache;

use super::{BlockCache, BlockKey};

pub struct MemoryCache {
    inner: Mutex<Inner>,
    limit: usize,
    spill: Option<Arc<dyn BlockCache>>,
}

struct Inner {
    blocks: LruCache<BlockKey, Bytes>,
    bytes: usize,
}

impl MemoryCache {
    /// At most `limit_bytes` in memory; what is evicted goes to `spill` when given.
    pub fn new(limit_bytes: usize, spill: Option<Arc<dyn BlockCache>>) -> Self {
        MemoryCache { inner: Mutex::new(Inner { blocks: LruCache::unbounded(), bytes: 0 }), limit: limit_bytes, spill }
    }
}

impl BlockCache for MemoryCache {
    fn get(&self, key: &BlockKey) -> Option<Bytes> {
        if let Some(data) = self.inner.lock().unwrap().blocks.get(key).cloned() {
            return Some(data);
        }
        let data = self.spill.as_ref()?.get(key)?;
        self.insert(key.clone(), data.clone());
        Some(data)
    }

    fn contains(&self, key: &BlockKey) -> bool {
        self.inner.lock().unwrap().blocks.contains(key) || self.spill.as_ref().is_some_and(|d| d.contains(key))
    }

    fn insert(&self, key: BlockKey, data: Bytes) {
        if data.len() > self.limit {
            return;
        }
        let mut evicted = Vec::new();
        {
            let mut inner = self.inner.lock().unwrap();
            inner.bytes += data.len();
            if let Some(old) = inner.blocks.put(key, data) {
                inner.bytes -= old.len();
            }
            while inner.bytes > self.limit {
                match inner.blocks.pop_lru() {
                    Some((k, block)) => {
                        inner.bytes -= block.len();
                        evicted.push((k, block));
                    }
                    None => break,
                }
            }
            crate::metrics::series::cache_bytes(inner.bytes as u64);
        }
        crate::metrics::series::cache_evicted(evicted.len() as u64);
        // Spilling happens outside the lock: other readers need not wait for the disk.
        if let Some(spill) = &self.spill {
            for (k, block) in evicted {
                spill.insert(k, block);
            }
        }
    }

    fn bytes(&self) -> u64 {
        self.inner.lock().unwrap().bytes as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(block: u64) -> BlockKey {
        BlockKey { identity: 0, bucket: "b".into(), key: "k".into(), etag: "e".into(), block }
    }

    #[test]
    fn evicts_least_recently_used_to_stay_within_bytes() {
        let c = MemoryCache::new(3000, None);
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
    fn evicted_blocks_spill_to_disk_and_come_back() {
        let dir = std::env::temp_dir().join(format!("ssofs-disk-cache-{}", std::process::id()));
        let disk = super::super::DiskCache::open(&dir, 2500).unwrap();
        let c = MemoryCache::new(1000, Some(Arc::new(disk)));
        c.insert(key(0), Bytes::from(vec![1u8; 1000]));
        c.insert(key(1), Bytes::from(vec![2u8; 1000])); // evicts 0 to disk
        assert!(c.contains(&key(0)));
        assert_eq!(c.get(&key(0)).unwrap().as_ref(), &[1u8; 1000][..], "read back from disk");
        for b in 2..6 {
            c.insert(key(b), Bytes::from(vec![b as u8; 1000]));
        }
        let on_disk = std::fs::read_dir(&dir).unwrap().count();
        assert!(on_disk <= 2, "the disk tier stays within its bytes: {on_disk} files");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn another_etag_is_another_entry() {
        let c = MemoryCache::new(10_000, None);
        c.insert(key(0), Bytes::from_static(b"old"));
        let newer = BlockKey { etag: "e2".into(), ..key(0) };
        assert!(c.get(&newer).is_none());
        let someone_else = BlockKey { identity: 1000, ..key(0) };
        assert!(c.get(&someone_else).is_none(), "another identity's blocks are not served");
    }
}
