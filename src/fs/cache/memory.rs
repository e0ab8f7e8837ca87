//! The memory tier: least recently used blocks evicted first, bounded by bytes. With a disk tier,
//! every block is also handed to it as it arrives (written through, off this thread), and a miss
//! here is looked up there; an evicted block not on disk yet stays queued on its own (see `disk`'s
//! orphans), so what was read is on disk for the next mount.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use lru::LruCache;

use super::{BlockCache, BlockKey, DiskCache, Holder};

pub struct MemoryCache {
    inner: Mutex<Inner>,
    limit: usize,
    disk: Option<Arc<DiskCache>>,
}

struct Inner {
    blocks: LruCache<BlockKey, Bytes>,
    bytes: usize,
}

impl MemoryCache {
    /// At most `limit_bytes` in memory; every block also goes to `disk` when given.
    pub fn new(limit_bytes: usize, disk: Option<Arc<DiskCache>>) -> Self {
        MemoryCache { inner: Mutex::new(Inner { blocks: LruCache::unbounded(), bytes: 0 }), limit: limit_bytes, disk }
    }
}

impl BlockCache for MemoryCache {
    fn get(&self, key: &BlockKey) -> Option<Bytes> {
        if let Some(data) = self.inner.lock().unwrap().blocks.get(key).cloned() {
            return Some(data);
        }
        let data = self.disk.as_ref()?.get(key)?;
        self.keep(key.clone(), data.clone());
        Some(data)
    }

    fn contains(&self, key: &BlockKey) -> bool {
        self.inner.lock().unwrap().blocks.contains(key) || self.disk.as_ref().is_some_and(|d| d.contains(key))
    }

    fn insert(&self, key: BlockKey, data: Bytes) {
        if let Some(disk) = &self.disk {
            disk.store(key.clone(), data.clone(), Holder::Memory);
        }
        self.keep(key, data);
    }

    fn bytes(&self) -> u64 {
        self.inner.lock().unwrap().bytes as u64
    }
}

impl MemoryCache {
    /// Keeps a block in memory, evicting the least recently used beyond the limit.
    fn keep(&self, key: BlockKey, data: Bytes) {
        if data.len() > self.limit {
            if let Some(disk) = &self.disk {
                disk.store(key, data, Holder::Nobody);
            }
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
        // Outside the lock: a block still queued for the disk is now the queue's alone.
        if let Some(disk) = &self.disk {
            for (k, block) in evicted {
                disk.store(k, block, Holder::Nobody);
            }
        }
    }
}

impl Drop for MemoryCache {
    /// At unmount, blocks not on disk yet (dropped when the disk was far behind) go to disk now, so
    /// the next mount finds everything this one read (within disk_cache_size).
    fn drop(&mut self) {
        let Some(disk) = &self.disk else { return };
        let started = std::time::Instant::now();
        let blocks: Vec<(BlockKey, Bytes)> =
            self.inner.get_mut().unwrap().blocks.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let missing: Vec<_> = blocks.into_iter().filter(|(k, _)| !disk.contains(k)).collect();
        let n = missing.len();
        let deadline = started + super::disk::FLUSH_WAIT;
        for (k, block) in missing {
            disk.store(k, block, Holder::NobodyUntil(deadline));
        }
        if n > 0 {
            tracing::info!(
                blocks = n,
                ms = started.elapsed().as_millis() as u64,
                "memory blocks handed to the disk cache"
            );
        }
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
    fn blocks_are_written_through_to_disk_and_come_back() {
        let dir = std::env::temp_dir().join(format!("ssofs-disk-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let settings = super::super::DiskSettings { dir: dir.clone(), limit: 1 << 20, scope: "p".into() };
        let disk = Arc::new(super::super::DiskCache::open(&settings).unwrap());
        let c = MemoryCache::new(1000, Some(disk.clone()));
        c.insert(key(0), Bytes::from(vec![1u8; 1000]));
        c.insert(key(1), Bytes::from(vec![2u8; 1000])); // evicts 0 from memory
        assert!(c.contains(&key(0)));
        assert_eq!(c.get(&key(0)).unwrap().as_ref(), &[1u8; 1000][..], "read back from disk");
        drop((c, disk));
        // Both blocks reached the disk, the one still in memory too: the next mount finds them.
        let disk = Arc::new(super::super::DiskCache::open(&settings).unwrap());
        let c = MemoryCache::new(1000, Some(disk));
        assert_eq!(c.get(&key(1)).unwrap().as_ref(), &[2u8; 1000][..]);
        assert_eq!(c.get(&key(0)).unwrap().as_ref(), &[1u8; 1000][..]);
    }

    #[test]
    fn every_block_read_reaches_the_disk_while_the_writer_lags_and_only_evicted_ones_cost_memory() {
        let dir = std::env::temp_dir().join(format!("ssofs-disk-lag-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let settings = super::super::DiskSettings { dir: dir.clone(), limit: 1 << 20, scope: "p".into() };
        // Memory holds 4 blocks, and 4 more may wait for the disk once memory evicted them.
        let disk = Arc::new(DiskCache::open_small(&settings, 4000));
        let c = MemoryCache::new(4000, Some(disk.clone()));
        {
            let _lagging = disk.pause_writer();
            for b in 0..8 {
                c.insert(key(b), Bytes::from(vec![b as u8; 1000]));
            }
            assert_eq!(disk.orphans(), (4000, 0), "blocks 0-3 wait for the disk on their own, none dropped");
            for b in 8..10 {
                c.insert(key(b), Bytes::from(vec![b as u8; 1000]));
            }
            assert_eq!(disk.orphans(), (4000, 2), "beyond the bound, evicted blocks are dropped");
        }
        drop((c, disk));
        let disk = Arc::new(DiskCache::open(&settings).unwrap());
        let on_disk: Vec<u64> = (0..10).filter(|&b| disk.contains(&key(b))).collect();
        assert_eq!(on_disk, [0, 1, 2, 3, 6, 7, 8, 9], "the next mount finds all but the 2 dropped");
        let _ = std::fs::remove_dir_all(&dir);
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
