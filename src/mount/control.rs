//! The mount's control socket: a Unix socket, private to the user who mounted, through which
//! `ssofs unmount` asks the mount to upload what is pending and stop, and then waits until the
//! process has let go of the mountpoint.
//!
//! Why wait: fuser unmounts its mountpoint again when its session ends. An `unmount` that returned
//! while the old process was still finishing let that late unmount tear down a mount made at once
//! on the same path (3 times out of 3 when tried as a user would). The socket closes only when the
//! serving process has finished with the mountpoint, so its end is the signal.
//!
//! Protocol: one line in, the answer out, then the connection closes:
//! - `stop` → `stopping <pid>`, then nothing until the connection closes with the process;
//! - `status` → one line of JSON, a [`crate::metrics::report::MountReport`];
//! - `metrics` → the Prometheus text exposition of the mount's series;
//! - anything else → a line starting `error:`.
//!
//! A multi-user mount (root's, its socket in /run/ssofs, 0700) also listens on a public socket
//! ([`public_socket_path`], 0666 in a root-owned 0755 directory) so that its users can see their
//! own figures: it knows the caller from SO_PEERCRED, answers `status` with that uid's identity only
//! and refuses everything else (`stop` above all).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// Where multi-user mounts listen for their users (root-owned, 0755).
pub const PUBLIC_DIR: &str = "/run/ssofs-public";

/// What the mount answers besides `stop`.
pub trait Answers: Send + Sync + 'static {
    /// The status report as JSON: every identity (`None`), or only uid's.
    fn status(&self, only_uid: Option<u32>) -> String;
    /// The Prometheus text of the mount's series.
    fn metrics(&self) -> String;
}

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
    socket_dir(state_dir).join(socket_name(mountpoint))
}

/// The public socket of the multi-user mount at `mountpoint`.
pub fn public_socket_path(mountpoint: &Path) -> PathBuf {
    Path::new(PUBLIC_DIR).join(socket_name(mountpoint))
}

fn socket_name(mountpoint: &Path) -> String {
    format!("{}.sock", super::staging::mount_id("mount", mountpoint))
}

/// Binds `path` (a stale socket of a killed mount replaced) with `mode`.
fn bind(rt: &tokio::runtime::Runtime, path: &Path, mode: u32) -> std::io::Result<tokio::net::UnixListener> {
    // A socket left by a mount that was killed: nothing answers on it any more.
    if std::os::unix::net::UnixStream::connect(path).is_err() {
        let _ = std::fs::remove_file(path);
    }
    let listener = {
        let _guard = rt.enter();
        tokio::net::UnixListener::bind(path)?
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(listener)
}

/// Serves the control socket until the process ends; `stop` is notified when asked to stop. The
/// connections of those waiting for the stop are kept open until then (dropped with the runtime).
pub fn serve(
    rt: &tokio::runtime::Runtime,
    path: &Path,
    stop: Arc<Notify>,
    answers: Arc<dyn Answers>,
) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    crate::untrusted::private_dir(dir).map_err(std::io::Error::other)?;
    let listener = bind(rt, path, 0o600)?;
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (stop, answers) = (stop.clone(), answers.clone());
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                let _ = tokio::io::BufReader::new(read.take(64)).read_line(&mut line).await;
                let answer = match line.trim() {
                    "stop" => format!("stopping {}\n", std::process::id()),
                    "status" => answer(move || answers.status(None)).await,
                    "metrics" => answer(move || answers.metrics()).await,
                    _ => "error: unknown command; send `stop`, `status` or `metrics`\n".to_string(),
                };
                let _ = write.write_all(answer.as_bytes()).await;
                if line.trim() == "stop" {
                    stop.notify_one();
                    // `write` stays open until the runtime (and with it this task) goes away at the very end.
                    std::future::pending::<()>().await
                }
            });
        }
    });
    Ok(())
}

/// Serves the public socket of a multi-user mount: `status` with the caller's own identity only.
pub fn serve_public(rt: &tokio::runtime::Runtime, path: &Path, answers: Arc<dyn Answers>) -> std::io::Result<()> {
    public_dir(path.parent().unwrap_or(Path::new(PUBLIC_DIR)))?;
    let listener = bind(rt, path, 0o666)?;
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let answers = answers.clone();
            tokio::spawn(async move {
                // The kernel says who is calling; nothing the caller sends can change it.
                let Ok(uid) = stream.peer_cred().map(|c| c.uid()) else { return };
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                let _ = tokio::io::BufReader::new(read.take(64)).read_line(&mut line).await;
                let answer = match line.trim() {
                    "status" => answer(move || answers.status(Some(uid))).await,
                    _ => "error: this socket only answers `status` (your own figures)\n".to_string(),
                };
                let _ = write.write_all(answer.as_bytes()).await;
            });
        }
    });
    Ok(())
}

/// Runs `make` off the runtime's threads (it may read token stores) and ends its answer with a
/// newline.
async fn answer(make: impl FnOnce() -> String + Send + 'static) -> String {
    let mut text = tokio::task::spawn_blocking(make).await.unwrap_or_else(|e| format!("error: {e}"));
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// The public directory: created 0755 when missing; it must be root's, a real directory and
/// writable by nobody else, or no user could trust what answers there.
fn public_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o755).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(std::io::Error::other(format!(
            "{} must be a directory of root's that nobody else may write to (mode 0755)",
            dir.display()
        )));
    }
    Ok(())
}

/// Asks the socket at `path` one command and returns the whole answer.
pub fn ask(path: &Path, command: &str, timeout: Duration) -> std::io::Result<String> {
    let mut stream = std::os::unix::net::UnixStream::connect(path)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(format!("{command}\n").as_bytes())?;
    let mut answer = String::new();
    stream.take(64 << 20).read_to_string(&mut answer)?;
    Ok(answer)
}

/// The sockets of the mounts the caller may ask: their own, and (for a user other than root) the
/// public sockets of multi-user mounts, when that directory is root's and nobody else's to write.
pub fn reachable_sockets(state_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![socket_dir(state_dir)];
    let public = Path::new(PUBLIC_DIR);
    let trusted = std::fs::symlink_metadata(public).is_ok_and(|m| m.is_dir() && m.uid() == 0 && m.mode() & 0o022 == 0);
    if crate::untrusted::euid() != 0 && trusted {
        dirs.push(public.to_path_buf());
    }
    let mut found: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sock"))
        .collect();
    found.sort();
    found
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
