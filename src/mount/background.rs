//! Going to the background (the parent waits on a pipe until the child's mount is ready), telling
//! systemd, and unmounting.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::path::{Path, PathBuf};

use super::{MountError, MountRequest};

/// Environment variable carrying the readiness pipe from the parent to the background child.
pub(super) const READY_FD_ENV: &str = "SSOFS_READY_FD";

/// Re-runs this command in the background and waits until the child says the mount is ready, or
/// reports the child's error.
pub(super) fn spawn_background(req: &MountRequest) -> Result<(), MountError> {
    let mut fds = [0; 2];
    // SAFETY: pipe fills two descriptors we own from here on.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(MountError::Pipe(std::io::Error::last_os_error()));
    }
    let (read_fd, write_fd) = (fds[0], fds[1]);
    // The read end must not leak into the child.
    // SAFETY: fcntl on a descriptor we own changes only its flags.
    unsafe { libc::fcntl(read_fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    let log_path = req.state_dir.join(format!("mount-{}.log", sanitize(&req.mountpoint.to_string_lossy())));
    let log_error = |source| MountError::Log { path: log_path.clone(), source };
    let log = crate::untrusted::open_log(&log_path).map_err(log_error)?;
    let exe = std::env::current_exe().map_err(MountError::NoExecutable)?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1))
        .env(READY_FD_ENV, write_fd.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log.try_clone().map_err(log_error)?);
    // The child stays in our process group until its FUSE mount is up and only then detaches with
    // setsid (see `serve`): under an automounter (x-systemd.automount, autofs) only its process group
    // may walk into the mountpoint while the access that started this mount is waiting.
    let mut child = cmd.spawn().map_err(MountError::Spawn)?;
    // SAFETY: we own write_fd and no longer need it here.
    unsafe { libc::close(write_fd) };
    // SAFETY: read_fd is ours; File takes ownership and closes it.
    let mut pipe = unsafe { std::fs::File::from_raw_fd(read_fd) };
    let mut byte = [0u8; 1];
    match pipe.read(&mut byte) {
        Ok(1) if byte[0] == b'R' => Ok(()),
        _ => {
            let _ = child.wait();
            let log_text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let last = log_text.lines().rev().find(|l| l.contains("ssofs:")).unwrap_or("see the log").to_string();
            Err(MountError::DidNotStart { last_error: last, log: log_path })
        }
    }
}

fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// Tells whoever waits (the parent's pipe, systemd) that the mount is usable.
pub(super) fn announce_ready(ready: Option<RawFd>) {
    if let Some(fd) = ready {
        // SAFETY: the parent handed us this descriptor; we write one byte and close it.
        let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
        let _ = f.write_all(b"R");
    }
    if let Some(socket) = std::env::var_os("NOTIFY_SOCKET") {
        let path = PathBuf::from(&socket);
        if let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() {
            let _ = sock.send_to(b"READY=1", &path);
        }
    }
}

pub(super) fn lazy_unmount(mountpoint: &Path) -> Result<(), MountError> {
    let status = std::process::Command::new("fusermount3")
        .arg("-uz")
        .arg(mountpoint)
        .status()
        .or_else(|_| std::process::Command::new("umount").arg("-l").arg(mountpoint).status())
        .map_err(MountError::NoFusermount)?;
    if status.success() { Ok(()) } else { Err(MountError::DetachFailed(mountpoint.to_path_buf())) }
}

/// `ssofs unmount`: asks the mount to upload and stop through its control socket, and returns once its
/// process has finished with the mountpoint; `fusermount3 -u` where no socket of ours answers.
pub fn unmount_and_wait(mountpoint: &Path, state_dir: Option<&Path>) -> Result<(), MountError> {
    // The mount's own control socket: it uploads, unmounts and exits, and this returns only then.
    if let Some(state_dir) = state_dir {
        let asked = super::control::request_stop(state_dir, mountpoint, UNMOUNT_WAIT)
            .map_err(|source| MountError::Control { path: mountpoint.to_path_buf(), source })?;
        if let super::control::Stopped::Exited = asked {
            return Ok(());
        }
    }
    // Another user's mount, or one from before control sockets: the kernel's way.
    unmount(mountpoint)
}

/// `fusermount3 -u`: the kernel ends the session; the serving process uploads and exits on its own.
pub fn unmount(mountpoint: &Path) -> Result<(), MountError> {
    let status = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg(mountpoint)
        .status()
        .or_else(|_| std::process::Command::new("umount").arg(mountpoint).status())
        .map_err(MountError::NoFusermount)?;
    if status.success() { Ok(()) } else { Err(MountError::UnmountFailed(mountpoint.to_path_buf())) }
}

/// How long `ssofs unmount` waits for the uploads of files still open before it returns (they go
/// on in the background after that).
const UNMOUNT_WAIT: std::time::Duration = std::time::Duration::from_secs(600);
