//! Write staging: a file being written lives in a local file (0600, in the per-user staging
//! directory) until close or fsync uploads it. A failed upload keeps the file and says where it is;
//! one the bucket policy refused goes to `refused/` (kept `REFUSED_KEEP`, then deleted), so that it
//! is neither lost silently nor reported as a crash leftover at every mount.
//!
//! The upload reads the descriptor the writes went to, never the path again. A staging directory
//! holds only what its owner staged: it is private (see `untrusted::private_dir`), and files are
//! created with O_EXCL and never followed through symlinks.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::error::{FsError, FsResult};
use crate::object::ObjectClient;
use crate::untrusted::{self, Expect};

/// How long a refused upload's data is kept in `refused/` for `ssofs recover --export`.
pub const REFUSED_KEEP: Duration = Duration::from_secs(7 * 24 * 3600);
/// A sidecar is a bucket and a key; anything larger is not one.
const MAX_SIDECAR: u64 = 64 << 10;

/// A bound on the bytes one user's staging directory may hold (`-o staging_quota=`): what is being
/// written now, plus what failed uploads left there.
pub struct StagingQuota {
    limit: u64,
    used: AtomicU64,
}

impl StagingQuota {
    /// Starts from what `dir` (and its `refused/`) holds already.
    pub fn new(limit: u64, dir: &Path) -> Self {
        let on_disk: u64 = [dir.to_path_buf(), dir.join("refused")]
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flat_map(|entries| entries.flatten())
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum();
        StagingQuota { limit, used: AtomicU64::new(on_disk) }
    }

    fn reserve(&self, bytes: u64) -> FsResult<()> {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .map(|_| ())
            .map_err(|used| {
                FsError::NoSpace(format!(
                    "staging quota of {} bytes reached ({used} bytes staged or kept from failed uploads)",
                    self.limit
                ))
            })
    }

    fn release(&self, bytes: u64) {
        let _ = self.used.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| Some(used.saturating_sub(bytes)));
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }
}

/// Download chunk when a file opened for writing already has content.
const FILL_CHUNK: u64 = 8 << 20;

pub struct Staged {
    pub path: PathBuf,
    file: File,
    /// Changed since the last successful upload.
    pub dirty: bool,
    /// The last upload was refused by the bucket policy (not a failure that a retry may fix).
    pub refused: bool,
    quota: Option<Arc<StagingQuota>>,
    /// Bytes reserved in `quota` for this file.
    reserved: u64,
}

impl Staged {
    /// A new empty staging file for `bucket`/`key`, with a sidecar naming them, so that what a crash
    /// leaves behind can be recovered (`ssofs recover`).
    pub fn create(dir: &Path, bucket: &str, key: &str, quota: Option<Arc<StagingQuota>>) -> FsResult<Staged> {
        use std::os::unix::fs::DirBuilderExt;
        // Checked once at mount (private_dir); made again only if something removed it since.
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let name: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect();
        let tail: String = name.chars().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect();
        let path = dir.join(format!("{}-{}-{tail}", std::process::id(), unique()));
        let sidecar =
            Sidecar { bucket: bucket.to_string(), key: key.to_string(), pid: std::process::id(), upload_id: None };
        let json = serde_json::to_vec(&sidecar).map_err(std::io::Error::other)?;
        untrusted::create_new(&sidecar_path(&path), 0o600)?.write_all(&json)?;
        let file = untrusted::create_new(&path, 0o600)?;
        Ok(Staged { path, file, dirty: false, refused: false, quota, reserved: 0 })
    }

    /// The descriptor the writes went to: uploads read it, never the path.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Reserves quota for the file growing to `len` bytes.
    fn grow_to(&mut self, len: u64) -> FsResult<()> {
        if len > self.reserved {
            if let Some(q) = &self.quota {
                q.reserve(len - self.reserved)?;
            }
            self.reserved = len;
        }
        Ok(())
    }

    /// A staging file holding the object's current content, for writes into an existing object.
    pub async fn from_object(
        dir: &Path,
        client: &dyn ObjectClient,
        bucket: &str,
        key: &str,
        size: u64,
        etag: Option<&str>,
        quota: Option<Arc<StagingQuota>>,
    ) -> FsResult<Staged> {
        let mut staged = Staged::create(dir, bucket, key, quota)?;
        if let Err(e) = staged.grow_to(size) {
            staged.discard();
            return Err(e);
        }
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
        self.grow_to(offset.saturating_add(data.len() as u64))?;
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
        self.grow_to(size)?;
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
        if let Some(q) = &self.quota {
            q.release(self.reserved);
        }
    }

    /// Moves a file whose upload the bucket policy refused to `refused/`, where `ssofs recover
    /// --export` finds it and `expire_refused` deletes it after `REFUSED_KEEP`. Returns where it is.
    pub fn move_to_refused(self) -> std::io::Result<PathBuf> {
        let dir = self.path.parent().unwrap_or(Path::new("/")).join("refused");
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        let to = dir.join(self.path.file_name().unwrap_or_default());
        // The time of refusal starts the clock of REFUSED_KEEP.
        self.file.set_modified(SystemTime::now())?;
        std::fs::rename(sidecar_path(&self.path), sidecar_path(&to))?;
        std::fs::rename(&self.path, &to)?;
        Ok(to)
    }
}

/// Deletes refused uploads older than `REFUSED_KEEP` (README: Writing).
pub fn expire_refused(dir: &Path) {
    for l in in_dir(&dir.join("refused"), true) {
        let old = std::fs::symlink_metadata(&l.data)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > REFUSED_KEEP));
        if old {
            tracing::info!(file = %l.data.display(), bucket = %l.bucket, key = %l.key, "refused upload expired; deleted");
            forget_leftover(&l);
        }
    }
}

/// What a staged file is for, next to it as `<file>.meta.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Sidecar {
    pub bucket: String,
    pub key: String,
    /// The process that staged it: a live process's files are not leftovers.
    pub pid: u32,
    /// The multipart upload the file is being streamed to, if any: what a crash leaves of it
    /// on the server, for `ssofs recover` to abort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
}

/// Notes in the sidecar of the staged file `data` the multipart upload it is being streamed to
/// (`None`: no longer), so that `ssofs recover` can abort what a crash leaves on the server. The
/// sidecar is replaced whole (a new private file renamed over it), never seen half written.
pub fn note_upload(data: &Path, bucket: &str, key: &str, upload_id: Option<&str>) -> std::io::Result<()> {
    if std::fs::symlink_metadata(sidecar_path(data)).is_err() {
        return Ok(()); // discarded meanwhile: nothing to leave behind
    }
    let sidecar = Sidecar {
        bucket: bucket.to_string(),
        key: key.to_string(),
        pid: std::process::id(),
        upload_id: upload_id.map(str::to_string),
    };
    let json = serde_json::to_vec(&sidecar).map_err(std::io::Error::other)?;
    let mut tmp = sidecar_path(data).into_os_string();
    tmp.push(format!(".{}-{}.tmp", std::process::id(), unique()));
    let tmp = PathBuf::from(tmp);
    let written = untrusted::create_new(&tmp, 0o600).and_then(|mut f| f.write_all(&json));
    match written.and_then(|()| std::fs::rename(&tmp, sidecar_path(data))) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
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
    /// The multipart upload it was being streamed to when its process died.
    pub upload_id: Option<String>,
}

/// Staged files in `dir` that belong to no running process.
pub fn leftovers(dir: &Path) -> Vec<Leftover> {
    in_dir(dir, false)
}

/// Uploads the bucket policy refused, kept in `dir/refused`.
pub fn refused(dir: &Path) -> Vec<Leftover> {
    in_dir(&dir.join("refused"), true)
}

/// The staged files of `dir` with a readable sidecar (regular files only, never through a
/// symlink); unless `any_pid`, only those whose process is gone.
fn in_dir(dir: &Path, any_pid: bool) -> Vec<Leftover> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some(data_name) = name.strip_suffix(".meta.json") else { continue };
        let sidecar = untrusted::read_regular(&path, Expect { owner: None, private: false }, MAX_SIDECAR)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Sidecar>(&b).map_err(|e| e.to_string()));
        let meta = match sidecar {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "unreadable staging sidecar skipped");
                continue;
            }
        };
        if !any_pid && std::path::Path::new(&format!("/proc/{}", meta.pid)).exists() {
            continue;
        }
        let data = dir.join(data_name);
        let Ok(m) = std::fs::symlink_metadata(&data) else { continue };
        if !m.is_file() {
            tracing::warn!(file = %data.display(), "staged data that is not a regular file skipped");
            continue;
        }
        found.push(Leftover { data, bucket: meta.bucket, key: meta.key, size: m.len(), upload_id: meta.upload_id });
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
