//! Files and directories that someone else may control. A multi-user mount runs as root on behalf
//! of untrusted local users, and `ssofs recover` may run as root: every path a user can touch is
//! hostile input (symlinks to root's files, FIFOs, huge files, swaps between check and use).
//!
//! Two rules, used together:
//! - [`as_user`]: a root process touches a user's files only with that user's filesystem identity
//!   (fsuid/fsgid, no supplementary groups), on a thread of its own. The kernel then refuses
//!   whatever the user could not do themselves: a symlink to another user's token file or to
//!   /etc/shadow fails with EACCES, and files created are the user's without any chown.
//! - [`open_regular`] / [`create_new`]: never follow a symlink in the last component, never block
//!   on a FIFO or device (O_NONBLOCK), require a regular file with the expected owner, cap sizes,
//!   and create with O_EXCL. Directories root writes into are checked by [`private_dir`].

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::FromRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A Unix user's filesystem identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserIds {
    pub uid: u32,
    pub gid: u32,
}

/// How long one access to a user's files may take before the caller gives up on it (a hung NFS
/// home, say). The thread doing it is left to finish on its own; nothing waits for it.
pub const USER_IO_TIMEOUT: Duration = Duration::from_secs(10);

pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// Runs `f` on a new thread whose filesystem identity is `ids` (fsuid, fsgid, no supplementary
/// groups). Credentials are per thread in Linux and die with it, so nothing else in the process
/// changes. When the caller is not root, `f` runs with the caller's own identity, which is then
/// already no more than the user's (a caller that is neither root nor `ids.uid` is refused).
pub fn as_user<T: Send + 'static>(ids: UserIds, f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
    let me = euid();
    if me != 0 {
        if me != ids.uid {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "only root may act as another user"));
        }
        return Ok(f());
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new().name(format!("as-uid-{}", ids.uid)).spawn(move || {
        let _ = tx.send(become_user(ids).map(|()| f()));
    })?;
    match rx.recv_timeout(USER_IO_TIMEOUT) {
        Ok(result) => result,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("uid {}'s files did not answer within {} s", ids.uid, USER_IO_TIMEOUT.as_secs()),
        )),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            Err(io::Error::other(format!("the thread acting as uid {} failed", ids.uid)))
        }
    }
}

/// Drops this thread's supplementary groups and sets its fsgid and fsuid. Leaving fsuid 0 also
/// clears the thread's CAP_DAC_OVERRIDE, CAP_FOWNER and CAP_CHOWN (capabilities(7)).
fn become_user(ids: UserIds) -> io::Result<()> {
    // The raw syscall changes this thread only; glibc's setgroups() would change every thread.
    // SAFETY: setgroups with an empty list reads no memory.
    if unsafe { libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // setfsuid/setfsgid report no errors: read the value back (an invalid id only queries it).
    // SAFETY: these calls change only this thread's filesystem ids.
    unsafe {
        libc::setfsgid(ids.gid);
        libc::setfsuid(ids.uid);
        if libc::setfsgid(u32::MAX) as u32 != ids.gid || libc::setfsuid(u32::MAX) as u32 != ids.uid {
            return Err(io::Error::other(format!("cannot take the filesystem identity of uid {}", ids.uid)));
        }
    }
    Ok(())
}

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

fn open_raw(path: &Path, flags: i32, mode: u32) -> io::Result<File> {
    let c = cpath(path)?;
    // SAFETY: open reads the NUL-terminated path; the descriptor is owned by the File.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOFOLLOW, mode) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ELOOP) {
            return Err(io::Error::new(
                e.kind(),
                format!("{} is a symbolic link; refusing to follow it", path.display()),
            ));
        }
        return Err(e);
    }
    // SAFETY: fd was just returned by open and is owned by nothing else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// What an opened file must be.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    /// Required owner (`None`: any).
    pub owner: Option<u32>,
    /// Refuse files whose mode gives group or others any access.
    pub private: bool,
}

fn check_opened(file: &File, path: &Path, expect: Expect) -> io::Result<std::fs::Metadata> {
    let meta = file.metadata()?;
    let refuse = |why: String| io::Error::new(io::ErrorKind::PermissionDenied, format!("{}: {why}", path.display()));
    if !meta.file_type().is_file() {
        return Err(refuse("not a regular file; refusing to use it".into()));
    }
    if let Some(owner) = expect.owner
        && meta.uid() != owner
    {
        return Err(refuse(format!("belongs to uid {}, not uid {owner}; refusing to use it", meta.uid())));
    }
    if expect.private && meta.mode() & 0o077 != 0 {
        return Err(refuse(format!("is accessible to other users (mode {:o})", meta.mode() & 0o777)));
    }
    Ok(meta)
}

/// Opens an existing regular file for reading without following a symlink or blocking on a FIFO,
/// and checks what it is.
pub fn open_regular(path: &Path, expect: Expect) -> io::Result<File> {
    let file = open_raw(path, libc::O_RDONLY | libc::O_NONBLOCK, 0)?;
    check_opened(&file, path, expect)?;
    Ok(file)
}

/// Reads a whole regular file of at most `max` bytes (see [`open_regular`]).
pub fn read_regular(path: &Path, expect: Expect, max: u64) -> io::Result<Vec<u8>> {
    let file = open_regular(path, expect)?;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is larger than {max} bytes; refusing to read it", path.display()),
        ));
    }
    Ok(bytes)
}

/// Opens a regular file for writing, creating it when missing, without following a symlink or
/// blocking, and checks its owner. Not truncated (a lock file, say).
pub fn open_or_create(path: &Path, mode: u32, owner: u32) -> io::Result<File> {
    let file = open_raw(path, libc::O_WRONLY | libc::O_CREAT | libc::O_NONBLOCK, mode)?;
    check_opened(&file, path, Expect { owner: Some(owner), private: false })?;
    Ok(file)
}

/// Creates a new file (O_EXCL: never an existing file, never through a symlink).
pub fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    open_raw(path, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, mode)
}

/// A directory root (or anyone) may keep private data in: created 0700 when missing, then checked
/// all the way up. Returns its canonical path, which callers use from then on, so a symlink on the
/// way that someone else could change is resolved once, here.
///
/// The directory itself must belong to the caller and be private (mode 0700 or stricter); every
/// directory above it must belong to root or to the caller and be writable by no one else unless it
/// is sticky (/tmp): otherwise another user could rename it away and put their own in its place.
pub fn private_dir(dir: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::DirBuilderExt;
    // Nothing is created inside a directory someone else controls: the deepest existing ancestor
    // (and everything above it) must pass the parents' rule first.
    if let Some(existing) = dir.ancestors().find(|a| a.exists()) {
        let canonical = std::fs::canonicalize(existing).map_err(|e| format!("{}: {e}", existing.display()))?;
        for parent in canonical.ancestors() {
            trusted_parent(&canonical, parent)?;
        }
    }
    if let Err(e) = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        return Err(format!("cannot create {}: {e}", dir.display()));
    }
    check_private_dir(dir)
}

/// [`private_dir`] without creating anything.
pub fn check_private_dir(dir: &Path) -> Result<PathBuf, String> {
    let me = euid();
    let canonical = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let meta = std::fs::symlink_metadata(&canonical).map_err(|e| format!("{}: {e}", canonical.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", canonical.display()));
    }
    if meta.uid() != me {
        return Err(format!(
            "{} belongs to uid {}, not to uid {me} that uses it; ssofs keeps written data there and will not share \
             it: remove it or choose another cache_dir",
            canonical.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{} is accessible to other users (mode {:o}); run `chmod 700 {}` (check first that nobody put files there)",
            canonical.display(),
            meta.mode() & 0o777,
            canonical.display()
        ));
    }
    for parent in canonical.ancestors().skip(1) {
        trusted_parent(&canonical, parent)?;
    }
    Ok(canonical)
}

/// A directory above a private one: owned by root or the caller, writable by no one else unless
/// sticky.
fn trusted_parent(dir: &Path, parent: &Path) -> Result<(), String> {
    let me = euid();
    let m = std::fs::symlink_metadata(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let sticky = m.mode() & libc::S_ISVTX != 0;
    if (m.uid() != 0 && m.uid() != me) || (m.mode() & 0o022 != 0 && !sticky) {
        return Err(format!(
            "{} is inside {}, which {} (owner uid {}, mode {:o}) could replace; choose a cache_dir whose parents \
             only root{} can change",
            dir.display(),
            parent.display(),
            if m.uid() != 0 && m.uid() != me { "another user owns" } else { "others may write to" },
            m.uid(),
            m.mode() & 0o7777,
            if me == 0 { "" } else { " and you" }
        ));
    }
    Ok(())
}

/// Opens a log file for appending: created 0600 (a log names buckets, keys and accounts), never
/// through a symlink; an existing one of ours that others could read is made private.
pub fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.mode() & 0o077 != 0 && meta.uid() == euid() {
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
}

/// Makes the process undumpable and its core size zero: it holds other users' refresh tokens (a
/// multi-user mount), which a core file or ptrace/proc access must not reveal.
pub fn no_core_dumps() -> io::Result<()> {
    let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: setrlimit reads the struct we pass; prctl takes plain integers.
    unsafe {
        if libc::setrlimit(libc::RLIMIT_CORE, &zero) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ssofs-untrusted-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn symlinks_fifos_and_big_files_are_refused() {
        let d = scratch("open");
        std::fs::write(d.join("real"), b"{}").unwrap();
        std::os::unix::fs::symlink(d.join("real"), d.join("link")).unwrap();
        let any = Expect { owner: None, private: false };
        let err = open_regular(&d.join("link"), any).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let fifo = cpath(&d.join("fifo")).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        // Returns at once (O_NONBLOCK), refused as not a regular file.
        let err = open_regular(&d.join("fifo"), any).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        std::fs::write(d.join("big"), vec![b'x'; 100]).unwrap();
        let err = read_regular(&d.join("big"), any, 99).unwrap_err().to_string();
        assert!(err.contains("larger than 99 bytes"), "{err}");
        assert_eq!(read_regular(&d.join("big"), any, 100).unwrap().len(), 100);
        let err =
            open_regular(&d.join("real"), Expect { owner: Some(euid() + 1), private: false }).unwrap_err().to_string();
        assert!(err.contains("belongs to uid"), "{err}");
        assert!(create_new(&d.join("real"), 0o600).is_err(), "O_EXCL");
        assert!(create_new(&d.join("link"), 0o600).is_err(), "never through a symlink");
    }

    #[test]
    fn log_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("ssofs-log-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        open_log(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        open_log(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "made private again");
        let link = path.with_extension("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(open_log(&link).is_err(), "never through a symlink");
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&link);
    }

    #[test]
    fn a_private_dir_must_be_ours_and_closed() {
        let d = scratch("dir");
        let p = private_dir(&d.join("a/b")).unwrap();
        assert!(p.ends_with("a/b"));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = check_private_dir(&p).unwrap_err();
        assert!(err.contains("chmod 700"), "{err}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
        // A parent others may write to (not sticky): they could swap the directory.
        std::fs::set_permissions(d.join("a"), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_private_dir(&p).unwrap_err();
        assert!(err.contains("others may write to"), "{err}");
        std::fs::set_permissions(d.join("a"), std::fs::Permissions::from_mode(0o1777)).unwrap();
        check_private_dir(&p).unwrap();
    }

    #[test]
    fn acting_as_another_user_needs_root_and_changes_only_that_thread() {
        if euid() != 0 {
            let err = as_user(UserIds { uid: euid() + 1, gid: 0 }, || ()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
            return;
        }
        let d = scratch("asuser");
        let ids = UserIds { uid: 65534, gid: 65534 };
        let path = d.join("made-by-nobody");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        let p = path.clone();
        as_user(ids, move || create_new(&p, 0o600).map(|_| ())).unwrap().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().uid(), 65534, "created as the user, no chown");
        // A root-only file is out of reach for the user's thread, and still readable by this one.
        std::fs::write(d.join("root-only"), b"secret").unwrap();
        std::fs::set_permissions(d.join("root-only"), std::fs::Permissions::from_mode(0o600)).unwrap();
        let p = d.join("root-only");
        let denied = as_user(ids, move || std::fs::read(&p)).unwrap();
        assert_eq!(denied.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(std::fs::read(d.join("root-only")).unwrap(), b"secret");
    }
}
