//! Write staging: a file being written lives in a local file (0600, in the per-user staging
//! directory) until close or fsync uploads it. A failed upload keeps the file and says where it is.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::error::{FsError, FsResult};
use crate::object::ObjectClient;

/// Download chunk when a file opened for writing already has content.
const FILL_CHUNK: u64 = 8 << 20;

pub struct Staged {
    pub path: PathBuf,
    file: File,
    /// Changed since the last successful upload.
    pub dirty: bool,
}

impl Staged {
    /// A new empty staging file for `key`.
    pub fn create(dir: &Path, key: &str) -> FsResult<Staged> {
        std::fs::create_dir_all(dir)?;
        let name: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect();
        let tail: String = name.chars().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect();
        let path = dir.join(format!("{}-{}-{tail}", std::process::id(), unique()));
        let file = std::fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&path)?;
        Ok(Staged { path, file, dirty: false })
    }

    /// A staging file holding the object's current content, for writes into an existing object.
    pub async fn from_object(
        dir: &Path,
        client: &dyn ObjectClient,
        bucket: &str,
        key: &str,
        size: u64,
        etag: Option<&str>,
    ) -> FsResult<Staged> {
        let mut staged = Staged::create(dir, key)?;
        let mut offset = 0;
        while offset < size {
            let end = (offset + FILL_CHUNK).min(size);
            let data = client.get_range(bucket, key, offset..end, etag).await?;
            staged.file.write_all(&data)?;
            offset = end;
        }
        Ok(staged)
    }

    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> FsResult<()> {
        self.file.write_all_at(data, offset)?;
        self.dirty = true;
        Ok(())
    }

    pub fn read_at(&self, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        let len = self.len()?;
        if offset >= len {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; (len - offset).min(size as u64) as usize];
        self.file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    pub fn set_len(&mut self, size: u64) -> FsResult<()> {
        self.file.set_len(size)?;
        self.dirty = true;
        Ok(())
    }

    pub fn len(&self) -> FsResult<u64> {
        Ok(self.file.metadata()?.len())
    }

    pub fn is_empty(&self) -> FsResult<bool> {
        Ok(self.len()? == 0)
    }

    /// Flushes to disk before an upload reads the file by path.
    pub fn sync(&self) -> FsResult<()> {
        self.file.sync_data().map_err(FsError::from)
    }

    /// Removes the staging file after a successful upload.
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
