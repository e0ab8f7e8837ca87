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
    /// A new empty staging file for `bucket`/`key`, with a sidecar naming them, so that what a crash
    /// leaves behind can be recovered (`ssofs recover`).
    pub fn create(dir: &Path, bucket: &str, key: &str) -> FsResult<Staged> {
        std::fs::create_dir_all(dir)?;
        let name: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect();
        let tail: String = name.chars().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect();
        let path = dir.join(format!("{}-{}-{tail}", std::process::id(), unique()));
        let sidecar = Sidecar { bucket: bucket.to_string(), key: key.to_string(), pid: std::process::id() };
        let json = serde_json::to_vec(&sidecar).map_err(|e| FsError::Io(e.to_string()))?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(sidecar_path(&path))?
            .write_all(&json)?;
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
        let mut staged = Staged::create(dir, bucket, key)?;
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

    /// Removes the staging file after a successful upload.
    pub fn discard(self) {
        let _ = std::fs::remove_file(sidecar_path(&self.path));
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What a staged file is for, next to it as `<file>.meta.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Sidecar {
    pub bucket: String,
    pub key: String,
    /// The process that staged it: a live process's files are not leftovers.
    pub pid: u32,
}

pub fn sidecar_path(data: &Path) -> PathBuf {
    let mut name = data.file_name().unwrap_or_default().to_os_string();
    name.push(".meta.json");
    data.with_file_name(name)
}

/// A staged file whose process is gone: written before a crash and never uploaded.
#[derive(Debug, Clone)]
pub struct Leftover {
    pub data: PathBuf,
    pub bucket: String,
    pub key: String,
    pub size: u64,
}

/// Staged files in `dir` that belong to no running process.
pub fn leftovers(dir: &Path) -> Vec<Leftover> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some(data_name) = name.strip_suffix(".meta.json") else { continue };
        let Ok(meta) =
            std::fs::read(&path).map_err(|_| ()).and_then(|b| serde_json::from_slice::<Sidecar>(&b).map_err(|_| ()))
        else {
            tracing::warn!(file = %path.display(), "unreadable staging sidecar skipped");
            continue;
        };
        if std::path::Path::new(&format!("/proc/{}", meta.pid)).exists() {
            continue;
        }
        let data = dir.join(data_name);
        let Ok(m) = std::fs::metadata(&data) else { continue };
        found.push(Leftover { data, bucket: meta.bucket, key: meta.key, size: m.len() });
    }
    found.sort_by(|a, b| (&a.bucket, &a.key).cmp(&(&b.bucket, &b.key)));
    found
}

/// Removes a leftover once it is safely elsewhere.
pub fn forget_leftover(l: &Leftover) {
    let _ = std::fs::remove_file(sidecar_path(&l.data));
    let _ = std::fs::remove_file(&l.data);
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
