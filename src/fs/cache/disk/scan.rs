//! Taking over a cache directory at mount: lock it, rebuild the index from the block files there,
//! remove what is not a block file (temporary files of a write a crash cut short, files of an older
//! format, anything else) and delete the least recently used blocks beyond the limit, which may have
//! been lowered since the last mount.
//!
//! The index is rebuilt by scanning, not kept in a journal: the directory is the only record, so there
//! is nothing to get out of step after a crash, and one readdir plus an lstat per file is cheap (the
//! README gives the time for 10,000 files). A block's use is its file's mtime, set on each hit, so
//! the LRU order survives remounts too.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use lru::LruCache;

use super::DiskCacheError;
use super::format::{self, Name};

/// The index a scan rebuilds: every block file, least recently used first, and their bytes.
pub struct Scanned {
    pub blocks: LruCache<Name, u64>,
    pub bytes: u64,
}

/// Holds the directory's lock for the life of the cache: two mounts on one cache_dir would each
/// count only their own files against the limit and clean each other's writes as garbage.
pub fn lock(dir: &Path) -> Result<File, DiskCacheError> {
    let path = dir.join(super::LOCK_FILE);
    let file = crate::untrusted::open_or_create(&path, 0o600, crate::untrusted::euid())
        .map_err(|source| DiskCacheError::Io { path: path.clone(), source })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(DiskCacheError::InUse { dir: dir.to_path_buf() }),
        Err(std::fs::TryLockError::Error(source)) => Err(DiskCacheError::Io { path, source }),
    }
}

/// Scans `dir` (already checked private and locked) and brings it within `limit` bytes.
pub fn scan(dir: &Path, limit: u64) -> Result<Scanned, DiskCacheError> {
    let started = Instant::now();
    let io = |source| DiskCacheError::Io { path: dir.to_path_buf(), source };
    let mut found: Vec<((i64, i64), Name, u64)> = Vec::new();
    let mut garbage: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let file = entry.file_name();
        if file == super::LOCK_FILE {
            continue;
        }
        // DirEntry::metadata is an lstat: a symlink is seen as one, never followed.
        let block = entry.metadata().ok().filter(|m| m.file_type().is_file()).and_then(|m| {
            let name = format::parse_file_name(file.to_str()?)?;
            Some(((m.mtime(), m.mtime_nsec()), name, m.len()))
        });
        match block {
            Some(b) => found.push(b),
            None => garbage.push(entry.path()),
        }
    }
    for path in &garbage {
        remove_any(path);
    }
    // Oldest first: each `put` makes its block the most recently used.
    found.sort_unstable_by_key(|(mtime, _, _)| *mtime);
    let mut blocks = LruCache::unbounded();
    let mut bytes = 0;
    for (_, name, len) in found {
        blocks.put(name, len);
        bytes += len;
    }
    let mut evicted = 0;
    while bytes > limit {
        let Some((name, len)) = blocks.pop_lru() else { break };
        bytes -= len;
        evicted += 1;
        let _ = std::fs::remove_file(dir.join(format::file_name(&name, format::SUFFIX)));
    }
    tracing::info!(
        dir = %dir.display(),
        blocks = blocks.len(),
        bytes,
        removed_garbage = garbage.len(),
        evicted_over_limit = evicted,
        ms = started.elapsed().as_millis() as u64,
        "disk cache opened"
    );
    Ok(Scanned { blocks, bytes })
}

/// Removes a file, symlink (the link, not its target) or directory that is no block file.
fn remove_any(path: &Path) {
    let is_dir = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    // remove_dir_all never follows symlinks inside the tree it removes.
    let removed = if is_dir { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
    if let Err(e) = removed
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "cannot remove a stray file from the disk cache");
    }
}
