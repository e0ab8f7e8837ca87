//! The block cache: object bytes in 1 MiB blocks, least recently used evicted first, bounded by bytes.
//! Keys carry bucket, key and ETag, so a changed object never hits blocks of its previous version.
//! With a disk tier, blocks evicted from memory spill to disk and come back on a hit.

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
    disk: Option<super::disk_cache::DiskCache>,
}

struct Inner {
    blocks: LruCache<BlockKey, Bytes>,
    bytes: usize,
}

impl BlockCache {
    pub fn new(limit_bytes: usize) -> Self {
        BlockCache {
            inner: Mutex::new(Inner { blocks: LruCache::unbounded(), bytes: 0 }),
            limit: limit_bytes,
            disk: None,
        }
    }

    /// A cache whose evicted blocks spill to `disk`.
    pub fn with_disk(limit_bytes: usize, disk: super::disk_cache::DiskCache) -> Self {
        BlockCache { disk: Some(disk), ..Self::new(limit_bytes) }
    }

    pub fn get(&self, key: &BlockKey) -> Option<Bytes> {
        if let Some(data) = self.inner.lock().unwrap().blocks.get(key).cloned() {
            return Some(data);
        }
        let data = self.disk.as_ref()?.get(key)?;
        self.insert(key.clone(), data.clone());
        Some(data)
    }

    pub fn contains(&self, key: &BlockKey) -> bool {
        self.inner.lock().unwrap().blocks.contains(key) || self.disk.as_ref().is_some_and(|d| d.contains(key))
    }

    pub fn insert(&self, key: BlockKey, data: Bytes) {
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
        }
        // Spilling happens outside the lock: other readers need not wait for the disk.
        if let Some(disk) = &self.disk {
            for (k, block) in evicted {
                disk.put(k, &block);
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
    fn evicted_blocks_spill_to_disk_and_come_back() {
        let dir = std::env::temp_dir().join(format!("ssofs-disk-cache-{}", std::process::id()));
        let disk = super::super::disk_cache::DiskCache::open(&dir, 2500).unwrap();
        let c = BlockCache::with_disk(1000, disk);
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
        let c = BlockCache::new(10_000);
        c.insert(key(0), Bytes::from_static(b"old"));
        let newer = BlockKey { etag: "e2".into(), ..key(0) };
        assert!(c.get(&newer).is_none());
    }
}
