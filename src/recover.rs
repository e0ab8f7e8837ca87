//! `ssofs recover`: files that were being written when ssofs was killed (SIGKILL, power loss) stay in
//! the staging directory with a sidecar naming their bucket and key. The next mount reports them;
//! `recover` uploads them with the user's credentials, or exports them to a folder the user names.
//! Uploads the bucket policy refused wait in `refused/`: `--export` copies them out too, `--discard`
//! deletes everything.
//!
//! Root may run this on a tree other users could have put files in, so the tree must belong to the
//! caller and be private, a bucket name must be one path segment, data files are read only as
//! regular files (never through a symlink), and export files are created new, never through a
//! symlink on the way (`untrusted`).

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::fs::staging::{Leftover, forget_leftover, leftovers, refused};
use crate::object::ObjectClient;
use crate::untrusted::{self, Expect};

/// A one-line report of leftovers, for the mount to print before it starts. Refused uploads are not
/// leftovers: they were reported when they were refused.
pub fn report(staging_dir: &Path) -> Option<String> {
    let found = leftovers(staging_dir);
    if found.is_empty() {
        return None;
    }
    let bytes: u64 = found.iter().map(|l| l.size).sum();
    Some(format!(
        "{} file(s), {bytes} bytes, written before ssofs stopped were never uploaded (kept in {}); run `ssofs recover` \
         to upload them, or `ssofs recover --export DIR` to copy them out",
        found.len(),
        staging_dir.display()
    ))
}

/// What an export or upload did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Exported paths, or `bucket/key` uploaded.
    pub done: Vec<String>,
    /// One line per file left where it is, saying why.
    pub failed: Vec<String>,
}

/// What recover tells its caller as it goes (the CLI draws a bar on a terminal, a line per file
/// otherwise), so a long recovery is not silent until its end.
pub trait Progress {
    /// `files` files of `bytes` bytes in all are about to be handled.
    fn start(&self, files: usize, bytes: u64);
    /// One file is done: `what` is the `bucket/key` uploaded or the path exported to.
    fn done(&self, what: &str, bytes: u64);
    /// One file is left where it is; `why` says why.
    fn failed(&self, why: &str, bytes: u64);
}

/// Reports `outcome`'s newest entry, done or failed, to `progress`.
fn record(outcome: &mut Outcome, progress: &dyn Progress, result: Result<String, String>, bytes: u64) {
    match result {
        Ok(done) => {
            progress.done(&done, bytes);
            outcome.done.push(done);
        }
        Err(why) => {
            progress.failed(&why, bytes);
            outcome.failed.push(why);
        }
    }
}

/// The staging tree must be the caller's and private before anything in it is believed.
fn check_tree(staging_dir: &Path) -> Result<bool, String> {
    match std::fs::symlink_metadata(staging_dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("{}: {e}", staging_dir.display())),
        Ok(_) => {}
    }
    untrusted::check_private_dir(staging_dir).map_err(|e| {
        format!("refusing to recover from {}: {e}. Run `ssofs recover` as the user who owns it", staging_dir.display())
    })?;
    Ok(true)
}

/// A bucket name is one path segment (S3 names have no `/`); anything else is a forged sidecar.
fn check_bucket(l: &Leftover) -> Result<(), String> {
    let b = l.bucket.as_str();
    if b.is_empty() || b == "." || b == ".." || b.contains('/') || b.contains('\0') {
        return Err(format!("{}: bucket name {b:?} in its sidecar is not a bucket; skipped", l.data.display()));
    }
    Ok(())
}

/// Opens a leftover's data: a regular file of the caller's, never through a symlink.
fn open_data(l: &Leftover) -> Result<File, String> {
    check_bucket(l)?;
    untrusted::open_regular(&l.data, Expect { owner: Some(untrusted::euid()), private: false })
        .map_err(|e| format!("{}: {e}; skipped", l.data.display()))
}

fn safe_segment(s: &str) -> String {
    match s {
        "" | "." | ".." => "_".into(),
        other => other.replace('\0', "_"),
    }
}

/// Copies every leftover and refused upload out to `dir/<bucket>/<key>`, then forgets it.
pub fn export(staging_dir: &Path, dir: &Path, progress: &dyn Progress) -> Result<Outcome, String> {
    let mut outcome = Outcome::default();
    if !check_tree(staging_dir)? {
        return Ok(outcome);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let all: Vec<Leftover> = leftovers(staging_dir).into_iter().chain(refused(staging_dir)).collect();
    progress.start(all.len(), all.iter().map(|l| l.size).sum());
    for l in all {
        let result = open_data(&l).and_then(|mut data| {
            let segments: Vec<String> =
                std::iter::once(l.bucket.clone()).chain(l.key.split('/').map(safe_segment)).collect();
            let to = segments.iter().fold(dir.to_path_buf(), |p, s| p.join(s));
            let copied = create_below(dir, &segments).and_then(|mut out| io::copy(&mut data, &mut out));
            match copied {
                Ok(_) => {
                    forget_leftover(&l);
                    Ok(to.display().to_string())
                }
                Err(e) => Err(format!("{} to {}: {e}; kept", l.data.display(), to.display())),
            }
        });
        record(&mut outcome, progress, result, l.size);
    }
    Ok(outcome)
}

/// Creates `dir/segments...` as a new file: directories on the way are made or entered without
/// following symlinks, and the file is created with O_EXCL (an existing file is never overwritten).
fn create_below(dir: &Path, segments: &[String]) -> io::Result<File> {
    let cstr = |s: &str| CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"));
    let open_at = |at: i32, name: &CString, flags: i32, mode: u32| -> io::Result<OwnedFd> {
        // SAFETY: openat reads the NUL-terminated name; the descriptor is owned by the OwnedFd.
        let fd = unsafe { libc::openat(at, name.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOFOLLOW, mode) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just opened and is owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let root = CString::new(std::os::unix::ffi::OsStrExt::as_bytes(dir.as_os_str()))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    // The export folder itself is the caller's choice and may be reached through symlinks.
    // SAFETY: as above.
    let fd = unsafe { libc::open(root.as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by open.
    let mut at = unsafe { OwnedFd::from_raw_fd(fd) };
    let (last, parents) = segments.split_last().ok_or_else(|| io::Error::other("empty path"))?;
    for seg in parents {
        let name = cstr(seg)?;
        // SAFETY: mkdirat reads the NUL-terminated name.
        if unsafe { libc::mkdirat(at.as_raw_fd(), name.as_ptr(), 0o700) } != 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(e);
            }
        }
        at = open_at(at.as_raw_fd(), &name, libc::O_DIRECTORY | libc::O_RDONLY, 0)?;
    }
    let fd = open_at(at.as_raw_fd(), &cstr(last)?, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o600)?;
    Ok(File::from(fd))
}

/// Uploads every leftover; a failed one stays for the next attempt. Refused uploads are not tried
/// again (the policy said no): export or discard them.
pub async fn upload(staging_dir: &Path, client: &dyn ObjectClient, progress: &dyn Progress) -> Result<Outcome, String> {
    let mut outcome = Outcome::default();
    if !check_tree(staging_dir)? {
        return Ok(outcome);
    }
    let all = leftovers(staging_dir);
    progress.start(all.len(), all.iter().map(|l| l.size).sum());
    for l in all {
        let name = format!("{}/{}", l.bucket, l.key);
        let result = match open_data(&l) {
            Err(e) => Err(e),
            Ok(file) => match client.put_file(&l.bucket, &l.key, &file, &Default::default()).await {
                Ok(_) => {
                    abort_streamed(client, &l).await;
                    forget_leftover(&l);
                    Ok(name)
                }
                Err(e) => Err(format!("{name}: {e} (kept in {})", l.data.display())),
            },
        };
        record(&mut outcome, progress, result, l.size);
    }
    Ok(outcome)
}

/// A file being uploaded in parts when its mount died left those parts on the server: abort that
/// upload (already over when the crash came after its end: the refusal is expected).
async fn abort_streamed(client: &dyn ObjectClient, l: &Leftover) {
    let Some(id) = &l.upload_id else { return };
    let upload = crate::object::Upload { bucket: l.bucket.clone(), key: l.key.clone(), id: id.clone() };
    match client.abort_upload(&upload).await {
        Ok(()) => tracing::info!(bucket = %l.bucket, key = %l.key, "aborted the upload in parts the crash interrupted"),
        Err(e) => {
            tracing::debug!(bucket = %l.bucket, key = %l.key, error = %e, "the interrupted upload in parts is gone")
        }
    }
}

/// Deletes every leftover and refused upload. Returns how many.
pub fn discard(staging_dir: &Path) -> Result<usize, String> {
    if !check_tree(staging_dir)? {
        return Ok(0);
    }
    let all: Vec<Leftover> = leftovers(staging_dir).into_iter().chain(refused(staging_dir)).collect();
    all.iter().for_each(forget_leftover);
    Ok(all.len())
}

/// How many leftovers and refused uploads `staging_dir` holds.
pub fn count(staging_dir: &Path) -> usize {
    leftovers(staging_dir).len() + refused(staging_dir).len()
}

/// Whether `staging_dir` holds refused uploads (for `recover` to mention them).
pub fn refused_count(staging_dir: &Path) -> usize {
    refused(staging_dir).len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::staging::Staged;
    use crate::object::mock::MockObjectClient;

    /// Records what recover reported, in order.
    #[derive(Default)]
    struct Seen(std::cell::RefCell<Vec<String>>);

    impl Progress for Seen {
        fn start(&self, files: usize, bytes: u64) {
            self.0.borrow_mut().push(format!("start {files} {bytes}"));
        }
        fn done(&self, what: &str, bytes: u64) {
            self.0.borrow_mut().push(format!("done {what} {bytes}"));
        }
        fn failed(&self, _why: &str, bytes: u64) {
            self.0.borrow_mut().push(format!("failed {bytes}"));
        }
    }

    /// A staged file whose writer is gone (its sidecar names a pid that does not exist).
    fn orphan(dir: &Path, bucket: &str, key: &str, body: &[u8]) -> Staged {
        let mut s = Staged::create(dir, bucket, key, None).unwrap();
        s.write_at(0, body).unwrap();
        writer_gone(&s.path);
        s
    }

    fn writer_gone(data: &Path) {
        let meta = crate::fs::staging::sidecar_path(data);
        let text = std::fs::read_to_string(&meta)
            .unwrap()
            .replace(&format!("\"pid\":{}", std::process::id()), "\"pid\":999999999");
        std::fs::write(&meta, text).unwrap();
    }

    /// A file being streamed when its mount was killed: recover uploads it whole, then aborts the
    /// multipart upload the crash left on the server.
    #[tokio::test]
    async fn the_upload_in_parts_a_crash_interrupted_is_aborted_once_recovered() {
        let dir = std::env::temp_dir().join(format!("ssofs-recover-streamed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let client = MockObjectClient::new();
        client.add_bucket("data");
        let left = client.begin_upload("data", "big.bin", &Default::default()).await.unwrap();
        let s = orphan(&dir, "data", "big.bin", b"streamed");
        crate::fs::staging::note_upload(&s.path, "data", "big.bin", Some(&left.id)).unwrap();
        writer_gone(&s.path);
        let Outcome { done, failed } = upload(&dir, &client, &Seen::default()).await.unwrap();
        assert_eq!((done, failed), (vec!["data/big.bin".to_string()], vec![]));
        assert_eq!(client.object("data", "big.bin").unwrap().as_ref(), b"streamed");
        assert_eq!(client.open_uploads(), 0, "no parts left on the server");
    }

    #[tokio::test]
    async fn leftovers_are_reported_and_uploaded() {
        let dir = std::env::temp_dir().join(format!("ssofs-recover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        orphan(&dir, "data", "notes/today.txt", b"unsaved work");
        let live = Staged::create(&dir, "data", "in-progress", None).unwrap(); // a running mount's file
        assert!(report(&dir).unwrap().contains("1 file(s), 12 bytes"));
        let client = MockObjectClient::new();
        client.add_bucket("data");
        let seen = Seen::default();
        let Outcome { done, failed } = upload(&dir, &client, &seen).await.unwrap();
        assert_eq!(done, ["data/notes/today.txt"]);
        assert_eq!(*seen.0.borrow(), ["start 1 12", "done data/notes/today.txt 12"]);
        assert!(failed.is_empty());
        assert_eq!(client.object("data", "notes/today.txt").unwrap().as_ref(), b"unsaved work");
        assert!(report(&dir).is_none());
        live.discard();
    }

    #[test]
    fn leftovers_are_exported_without_escaping_the_folder() {
        let dir = std::env::temp_dir().join(format!("ssofs-recover-export-{}", std::process::id()));
        let out = dir.join("out");
        let _ = std::fs::remove_dir_all(&dir);
        orphan(&dir.join("staging"), "data", "../../etc/passwd", b"x");
        orphan(&dir.join("staging"), "../..", "k", b"y");
        let seen = Seen::default();
        let Outcome { done, failed } = export(&dir.join("staging"), &out, &seen).unwrap();
        assert_eq!(seen.0.borrow().len(), 3, "start, then one report per file: {:?}", seen.0.borrow());
        assert_eq!(done.len(), 1);
        assert!(Path::new(&done[0]).starts_with(&out), "{:?}", done[0]);
        assert_eq!(std::fs::read(&done[0]).unwrap(), b"x");
        assert!(failed.len() == 1 && failed[0].contains("is not a bucket"), "{failed:?}");
    }
}
