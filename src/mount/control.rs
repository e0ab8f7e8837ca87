//! The mount's control socket: a Unix socket, private to the user who mounted, through which
//! `ssofs unmount` asks the mount to upload what is pending and stop, and then waits until the
//! process has let go of the mountpoint.
//!
//! Why wait: fuser unmounts its mountpoint again when its session ends. An `unmount` that returned
//! while the old process was still finishing let that late unmount tear down a mount made at once
//! on the same path (3 times out of 3 when tried as a user would). The socket closes only when the
//! serving process has finished with the mountpoint, so its end is the signal.
//!
//! Protocol: one line in (`stop`), one line out (`stopping <pid>`), then nothing until the
//! connection closes.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// Where the control sockets of this user's mounts live: root's under /run, others' in their
/// runtime directory, else under their state directory. Private (0700) all the way.
pub fn socket_dir(state_dir: &Path) -> PathBuf {
    if crate::untrusted::euid() == 0 {
        return PathBuf::from("/run/ssofs");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("ssofs"),
        None => state_dir.join("mounts"),
    }
}

/// The socket of the mount at `mountpoint`: named after the mountpoint (its last component and a
/// hash of its absolute path), whatever profile it serves.
pub fn socket_path(state_dir: &Path, mountpoint: &Path) -> PathBuf {
    socket_dir(state_dir).join(format!("{}.sock", super::staging::mount_id("mount", mountpoint)))
}

/// Serves the control socket until the process ends; `stop` is notified when asked to stop. The
/// connections of those waiting for the stop are kept open until then (dropped with the runtime).
pub fn serve(rt: &tokio::runtime::Runtime, path: &Path, stop: Arc<Notify>) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    crate::untrusted::private_dir(dir).map_err(std::io::Error::other)?;
    // A socket left by a mount that was killed: nothing answers on it any more.
    if std::os::unix::net::UnixStream::connect(path).is_err() {
        let _ = std::fs::remove_file(path);
    }
    let listener = {
        let _guard = rt.enter();
        tokio::net::UnixListener::bind(path)?
    };
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let stop = stop.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                if tokio::io::BufReader::new(read).read_line(&mut line).await.is_err() || line.trim() != "stop" {
                    let _ = write.write_all(b"error: unknown command; send `stop`\n").await;
                    return;
                }
                let _ = write.write_all(format!("stopping {}\n", std::process::id()).as_bytes()).await;
                stop.notify_one();
                // `write` stays open until the runtime (and with it this task) goes away at the very end.
                std::future::pending::<()>().await
            });
        }
    });
    Ok(())
}

/// What asking a mount to stop found.
pub enum Stopped {
    /// The process answered and has now finished with the mountpoint.
    Exited,
    /// No mount of this user answers for that mountpoint.
    NoSocket,
}

/// Asks the mount at `mountpoint` to stop and waits (at most `timeout`) until its process is done.
pub fn request_stop(state_dir: &Path, mountpoint: &Path, timeout: Duration) -> std::io::Result<Stopped> {
    let path = socket_path(state_dir, mountpoint);
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(&path) else { return Ok(Stopped::NoSocket) };
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(b"stop\n")?;
    let mut reader = BufReader::new(stream);
    let mut answer = String::new();
    reader.read_line(&mut answer)?;
    let Some(pid) = answer.strip_prefix("stopping ").and_then(|p| p.trim().parse::<i32>().ok()) else {
        return Err(std::io::Error::other(format!("the mount answered {:?}", answer.trim())));
    };
    // Uploads of open files run first; then the connection closes, as the process ends.
    let mut rest = String::new();
    match reader.read_line(&mut rest) {
        Ok(_) => {
            wait_for_exit(pid, Duration::from_secs(10));
            Ok(Stopped::Exited)
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
            Err(std::io::Error::other(format!(
                "the mount is still uploading after {} s; it goes on in the background",
                timeout.as_secs()
            )))
        }
        Err(e) => Err(e),
    }
}

/// Waits until process `pid` has exited (gone, or a zombie not yet reaped), at most `limit`: the
/// socket closes as its runtime goes, a moment before the process itself.
fn wait_for_exit(pid: i32, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
        if matches!(state, None | Some('Z') | Some('X')) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
