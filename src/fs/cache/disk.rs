//! The optional second tier of the block cache (`-o cache_dir=`): blocks evicted from memory spill to
//! files in a private directory, bounded by `disk_cache_size`, least recently used deleted first.
//! File names are hashes of bucket, key, ETag and block, so a changed object never hits old blocks.
//! The directory is emptied at start: what a previous run left has no index to trust.

use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use lru::LruCache;
use sha2::Digest;

use super::{BlockCache, BlockKey};

pub struct DiskCache {
    dir: PathBuf,
    limit: u64,
    index: Mutex<Index>,
}

struct Index {
    blocks: LruCache<BlockKey, u64>,
    bytes: u64,
}

impl DiskCache {
    /// Blocks are read back by path, so the directory must be private all the way up (see
    /// `untrusted::private_dir`): nobody else may swap a block file or the directory itself.
    pub fn open(dir: &Path, limit: u64) -> std::io::Result<DiskCache> {
        let dir = crate::untrusted::private_dir(dir).map_err(std::io::Error::other)?;
        std::fs::remove_dir_all(&dir)?;
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(DiskCache { dir, limit, index: Mutex::new(Index { blocks: LruCache::unbounded(), bytes: 0 }) })
    }

    fn path(&self, key: &BlockKey) -> PathBuf {
        let mut h = sha2::Sha256::new();
        h.update(key.identity.to_le_bytes());
        for part in [key.bucket.as_bytes(), key.key.as_bytes(), key.etag.as_bytes()] {
            h.update(part);
            h.update([0u8]);
        }
        h.update(key.block.to_le_bytes());
        self.dir.join(hex::encode(h.finalize()))
    }

    fn forget(&self, key: &BlockKey) {
        let mut index = self.index.lock().unwrap();
        if let Some(size) = index.blocks.pop(key) {
            index.bytes -= size;
        }
    }
}

impl BlockCache for DiskCache {
    fn contains(&self, key: &BlockKey) -> bool {
        self.index.lock().unwrap().blocks.contains(key)
    }

    fn get(&self, key: &BlockKey) -> Option<Bytes> {
        self.index.lock().unwrap().blocks.get(key)?;
        let expect = crate::untrusted::Expect { owner: None, private: true };
        match crate::untrusted::read_regular(&self.path(key), expect, self.limit) {
            Ok(data) => Some(Bytes::from(data)),
            Err(_) => {
                self.forget(key);
                None
            }
        }
    }

    /// Stores a block; failures only mean the block is not cached.
    fn insert(&self, key: BlockKey, data: Bytes) {
        let size = data.len() as u64;
        if size > self.limit || self.contains(&key) {
            return;
        }
        let path = self.path(&key);
        let tmp = path.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let written = crate::untrusted::create_new(&tmp, 0o600)
            .and_then(|mut f| f.write_all(&data))
            .and_then(|_| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            tracing::debug!(error = %e, "disk cache write failed; block not cached");
            let _ = std::fs::remove_file(&tmp);
            return;
        }
        let mut evicted = Vec::new();
        {
            let mut index = self.index.lock().unwrap();
            index.bytes += size;
            index.blocks.put(key, size);
            while index.bytes > self.limit {
                match index.blocks.pop_lru() {
                    Some((k, s)) => {
                        index.bytes -= s;
                        evicted.push(k);
                    }
                    None => break,
                }
            }
        }
        for k in evicted {
            let _ = std::fs::remove_file(self.path(&k));
        }
    }

    fn bytes(&self) -> u64 {
        self.index.lock().unwrap().bytes
    }
}
