//! `ssofs mount`: checks everything that can fail before going to the background (login, STS,
//! mountpoint, /dev/fuse), then serves the filesystem until SIGTERM/SIGINT or an external unmount.
//! Without `--foreground` the command returns once the child reports the mount ready; under systemd
//! (`NOTIFY_SOCKET`) readiness is also sent with sd_notify.

pub mod options;

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Profile;
use crate::credentials::CredentialProvider;
use crate::fs::{Fs, FsConfig};
use crate::fuse::{FsResolver, FuseAdapter, SingleUser};
use crate::identity::{StoreTokenSource, TokenStore, refresh::DEFAULT_MARGIN};
use crate::multiuser::MultiUser;
use crate::object::ObjectClient;
use crate::object::retry::{self, Retrying};
use crate::object::s3::{S3ObjectClient, Transport};
pub use options::MountOptions;

/// Environment variable carrying the readiness pipe from the parent to the background child.
const READY_FD_ENV: &str = "SSOFS_READY_FD";
/// FUSE worker threads (requests are served on the tokio runtime; these only read and dispatch).
const FUSE_THREADS: usize = 4;

pub struct MountRequest {
    pub profile: Profile,
    pub mountpoint: PathBuf,
    pub options: MountOptions,
    pub foreground: bool,
    pub token_dir: PathBuf,
}

/// Mounts, in the background unless `foreground`. Returns when the mount is ready (background) or
/// unmounted (foreground).
pub fn run(req: MountRequest) -> Result<(), String> {
    preflight(&req.mountpoint)?;
    if let Some(message) = crate::recover::report(&staging_dir(&req.options, &req.profile.name, &req.mountpoint)) {
        eprintln!("ssofs: warning: {message}");
        tracing::warn!("{message}");
    }
    if req.foreground || std::env::var_os(READY_FD_ENV).is_some() {
        let ready = std::env::var(READY_FD_ENV).ok().and_then(|v| v.parse::<RawFd>().ok());
        return serve(req, ready);
    }
    spawn_background(&req)
}

/// What can be checked cheaply before anything else: the mountpoint and the FUSE device.
///
/// The mountpoint is looked up in /proc/self/mountinfo before the path itself is touched, and is
/// then only stat'ed with `AT_NO_AUTOMOUNT`: under `x-systemd.automount` (or autofs) an autofs
/// trigger sits on the mountpoint, and the mount we are part of was started by an access to it. Any
/// path walk into it from outside the automounter's process group (ours, while mount(8) runs us)
/// waits for that very mount and never returns (the blobfuse2/gcsfuse hang); an autofs mount there
/// is also not "already mounted" (the mountpoint-s3 refusal): the FUSE mount goes on top of it.
pub fn preflight(mountpoint: &Path) -> Result<(), String> {
    if !Path::new("/dev/fuse").exists() {
        return Err(
            "/dev/fuse is missing: load the fuse kernel module (`modprobe fuse`) or, in a container, pass the device"
                .into(),
        );
    }
    // An ordinary user's mount opens /dev/fuse itself before mount(2) fails and fusermount3 takes
    // over; a device only root may open (some containers) makes that fail with a bare EACCES.
    // SAFETY: geteuid cannot fail; access only reads the NUL-terminated path.
    if unsafe { libc::geteuid() } != 0 && unsafe { libc::access(c"/dev/fuse".as_ptr(), libc::R_OK | libc::W_OK) } != 0 {
        return Err(format!(
            "/dev/fuse: {}; ordinary users' FUSE mounts need it mode 0666 (crw-rw-rw-), as udev and the fuse3 package \
             set it: `chmod 0666 /dev/fuse` (in a container: pass the device with that mode)",
            std::io::Error::last_os_error()
        ));
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let absolute = absolute_path(mountpoint);
    match top_mount_type(&mountinfo, &absolute) {
        Some(fstype) if fstype == "autofs" => return Ok(()),
        Some(_) => {
            return Err(format!(
                "{} is already a mountpoint; unmount it first (`ssofs unmount {}`)",
                mountpoint.display(),
                mountpoint.display()
            ));
        }
        None => {}
    }
    let is_dir = stat_is_dir_no_automount(mountpoint).map_err(|e| {
        format!("mountpoint {}: {e}; create it with `mkdir -p {}`", mountpoint.display(), mountpoint.display())
    })?;
    if !is_dir {
        return Err(format!("mountpoint {} is not a directory", mountpoint.display()));
    }
    // Through symlinks (canonicalize only reads links, it never enters the directory).
    if let Ok(canonical) = std::fs::canonicalize(mountpoint)
        && canonical != absolute
        && top_mount_type(&mountinfo, &canonical).is_some_and(|t| t != "autofs")
    {
        return Err(format!(
            "{} is already a mountpoint; unmount it first (`ssofs unmount {}`)",
            mountpoint.display(),
            mountpoint.display()
        ));
    }
    Ok(())
}

/// `path` made absolute against the working directory, `.` and `..` folded, without any lookup.
fn absolute_path(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")).join(path)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// The kernel reads ahead only 128 KiB on a FUSE mount: what it offers at INIT is a ceiling the
/// filesystem can lower but not raise, so `max_readahead` alone does not help. As root, raise the
/// mount's own setting to what one FUSE read may carry: fewer, larger requests (a 256 MiB file read
/// with `cat`: about 1.5 times as fast from the block cache, 15 % from S3). Ordinary users cannot
/// write it; their mounts keep the kernel's default. The device comes from mountinfo, so nothing
/// walks into the mountpoint (an automount trigger may still sit below it).
fn raise_read_ahead(mountpoint: &Path) {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let Some(device) = top_mount_line(&mountinfo, &absolute_path(mountpoint)).and_then(|l| l.split(' ').nth(2)) else {
        return;
    };
    let knob = format!("/sys/class/bdi/{device}/read_ahead_kb");
    if let Err(e) = std::fs::write(&knob, (crate::fuse::MAX_REQUEST / 1024).to_string()) {
        tracing::debug!(knob, error = %e, "cannot raise the kernel's read-ahead");
    }
}

/// stat(2) semantics (`AT_NO_AUTOMOUNT`): std's metadata uses statx without it, which fires an
/// automount trigger on the path.
fn stat_is_dir_no_automount(path: &Path) -> std::io::Result<bool> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path contains a NUL byte"))?;
    // SAFETY: an all-zero stat is a valid out-parameter; c is a NUL-terminated path.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: see above; fstatat only writes st.
    if unsafe { libc::fstatat(libc::AT_FDCWD, c.as_ptr(), &mut st, libc::AT_NO_AUTOMOUNT) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// The filesystem type of the topmost mount at `path` in a mountinfo text (later lines are mounted
/// on top of earlier ones), if anything is mounted there.
fn top_mount_type(mountinfo: &str, path: &Path) -> Option<String> {
    let line = top_mount_line(mountinfo, path)?;
    line.split_once(" - ").and_then(|(_, rest)| rest.split(' ').next()).map(str::to_string)
}

/// The mountinfo line of the topmost mount at `path`.
fn top_mount_line<'a>(mountinfo: &'a str, path: &Path) -> Option<&'a str> {
    let want = path.to_string_lossy();
    mountinfo.lines().rfind(|l| l.split(' ').nth(4).is_some_and(|m| unescape_mount(m) == want))
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

/// Re-runs this command in the background and waits until the child says the mount is ready, or
/// reports the child's error.
fn spawn_background(req: &MountRequest) -> Result<(), String> {
    let mut fds = [0; 2];
    // SAFETY: pipe fills two descriptors we own from here on.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(format!("cannot create a pipe: {}", std::io::Error::last_os_error()));
    }
    let (read_fd, write_fd) = (fds[0], fds[1]);
    // SAFETY: the read end must not leak into the child.
    unsafe { libc::fcntl(read_fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    let log_path = req.token_dir.join(format!("mount-{}.log", sanitize(&req.mountpoint.to_string_lossy())));
    let log =
        crate::untrusted::open_log(&log_path).map_err(|e| format!("cannot open log {}: {e}", log_path.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the ssofs executable: {e}"))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1))
        .env(READY_FD_ENV, write_fd.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log.try_clone().map_err(|e| e.to_string())?);
    // The child stays in our process group until its FUSE mount is up and only then detaches with
    // setsid (see `serve`): under an automounter (x-systemd.automount, autofs) only its process group
    // may walk into the mountpoint while the access that started this mount is waiting.
    let mut child = cmd.spawn().map_err(|e| format!("cannot start the background mount: {e}"))?;
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
            Err(format!("the mount did not start: {last} (log: {})", log_path.display()))
        }
    }
}

fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// Where root keeps staged writes and cached blocks when it has no cache home of its own (mount(8)
/// at boot runs with no HOME): never the shared, world-writable temporary directory.
pub const ROOT_CACHE_DIR: &str = "/var/cache/ssofs";

/// Where written files are staged for a mount of `profile` at `mountpoint` with these options:
/// one directory per mount, so that a mount reports, and `ssofs recover --mountpoint` picks up,
/// only what that mount left (`ssofs recover` looks there too).
pub fn staging_dir(opts: &MountOptions, profile: &str, mountpoint: &Path) -> PathBuf {
    staging_root(opts).join(mount_id(profile, mountpoint))
}

/// `<profile>@<last component of the mountpoint>-<hash of its absolute path>`: readable, and unique
/// per profile and mountpoint.
pub fn mount_id(profile: &str, mountpoint: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let absolute = absolute_path(mountpoint);
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new_with_keys(0x73746167, 0x696e6721);
    absolute.hash(&mut h);
    let last = absolute.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "root".into());
    format!("{}{}-{:08x}", mount_id_prefix(profile), clean_name(&last), h.finish() as u32)
}

/// What every [`mount_id`] of `profile` starts with.
pub fn mount_id_prefix(profile: &str) -> String {
    format!("{}@", clean_name(profile))
}

fn clean_name(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' }).collect()
}

/// The directory holding every mount's staging directory (and, from ssofs before per-mount
/// staging, staged files directly).
pub fn staging_root(opts: &MountOptions) -> PathBuf {
    let base = opts.cache_dir.clone().unwrap_or_else(|| {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        env("XDG_CACHE_HOME").or_else(|| env("HOME").map(|h| h.join(".cache"))).map(|d| d.join("ssofs")).unwrap_or_else(
            || {
                if crate::untrusted::euid() == 0 {
                    PathBuf::from(ROOT_CACHE_DIR)
                } else {
                    std::env::temp_dir().join(format!("ssofs-{}", crate::untrusted::euid()))
                }
            },
        )
    });
    base.join("staging")
}

fn fs_config(opts: &MountOptions, profile: &Profile, mountpoint: &Path) -> Result<FsConfig, String> {
    use crate::fs::named::BucketPath;
    // Private all the way up, checked once; the canonical path is used from here on.
    let dir = crate::untrusted::private_dir(&staging_dir(opts, &profile.name, mountpoint))
        .map_err(|e| format!("staging directory: {e}"))?;
    let mut c = FsConfig::new(dir);
    c.staging_quota = opts.staging_quota;
    c.metadata = !opts.no_metadata;
    c.named_buckets = BucketPath::parse_all(profile.buckets.iter().map(String::as_str))
        .map_err(|e| format!("profile {}: buckets: {e}", profile.name))?;
    c.root_bucket = opts.root_bucket.as_deref().map(BucketPath::parse).transpose()?;
    c.uid = opts.uid.unwrap_or(c.uid);
    c.gid = opts.gid.unwrap_or(c.gid);
    c.file_mode = opts.file_mode.unwrap_or(c.file_mode);
    c.dir_mode = opts.dir_mode.unwrap_or(c.dir_mode);
    c.attr_ttl = opts.attr_ttl.unwrap_or(c.attr_ttl);
    c.dir_ttl = opts.dir_ttl.unwrap_or(c.dir_ttl);
    c.cache_size = opts.cache_size.unwrap_or(c.cache_size);
    // An explicit cache_dir also turns on the disk tier of the block cache (default 1 GiB).
    if let Some(dir) = &opts.cache_dir {
        c.disk_cache = Some((dir.join("blocks"), opts.disk_cache_size.unwrap_or(1 << 30)));
    }
    c.read_only = opts.read_only;
    Ok(c)
}

fn serve(req: MountRequest, ready: Option<RawFd>) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let mut profile = req.profile.clone();
    req.options.apply_to(&mut profile);
    let endpoint = profile.endpoint.clone().ok_or_else(|| {
        format!("profile {} has no endpoint; add `endpoint = \"https://...\"` or pass ENDPOINT", profile.name)
    })?;
    let multiuser = req.options.multiuser;
    // The filesystems that may hold data being written: one, or one per identity.
    let resolver: Arc<dyn FsResolver> = if multiuser {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err("a multiuser mount reads every user's token store: mount it as root (e.g. from fstab)".into());
        }
        // This process will hold every user's refresh token: no core file, no ptrace or /proc
        // access by anyone but root.
        crate::untrusted::no_core_dumps().map_err(|e| format!("cannot disable core dumps: {e}"))?;
        let users =
            Arc::new(MultiUser::new(profile.clone(), endpoint, fs_config(&req.options, &profile, &req.mountpoint)?));
        let sweeper = users.clone();
        rt.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let dropped = sweeper.drop_idle(crate::multiuser::IDLE_DROP);
                if dropped > 0 {
                    tracing::info!(dropped, "idle identities dropped from memory");
                }
            }
        });
        users
    } else {
        let fs = Arc::new(Fs::new(
            single_user_client(&rt, &profile, &endpoint, &req.token_dir)?,
            fs_config(&req.options, &profile, &req.mountpoint)?,
        ));
        Arc::new(SingleUser(fs))
    };
    let adapter = FuseAdapter::new(resolver.clone(), rt.handle().clone());

    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName(format!("ssofs:{}", profile.name)),
        fuser::MountOption::Subtype("ssofs".into()),
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
    ];
    if req.options.read_only {
        config.mount_options.push(fuser::MountOption::RO);
    }
    // A multi-user mount is for every user, with the kernel checking each one's permissions.
    if req.options.default_permissions || multiuser {
        config.mount_options.push(fuser::MountOption::DefaultPermissions);
    }
    config.acl = if req.options.allow_other || multiuser {
        fuser::SessionACL::All
    } else if req.options.allow_root {
        fuser::SessionACL::RootAndOwner
    } else {
        fuser::SessionACL::Owner
    };
    config.n_threads = Some(FUSE_THREADS);
    let session = fuser::Session::new(adapter, &req.mountpoint, &config)
        .map_err(|e| format!("cannot mount at {}: {e}", req.mountpoint.display()))?;
    let background = session.spawn().map_err(|e| format!("cannot start the FUSE session: {e}"))?;
    raise_read_ahead(&req.mountpoint);
    if ready.is_some() {
        // The background child of `ssofs mount`: mounted, so now leave the terminal's session.
        // SAFETY: setsid has no memory effects; it fails only for a group leader, which we are not.
        unsafe { libc::setsid() };
    }
    tracing::info!(mountpoint = %req.mountpoint.display(), profile = %profile.name, "mounted");
    announce_ready(ready);

    let stop = rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return false;
        };
        loop {
            tokio::select! {
                _ = term.recv() => return true,
                _ = int.recv() => return true,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    if background.guard.is_finished() {
                        return false;
                    }
                }
            }
        }
    });
    if stop {
        // Files still open get their data uploaded before the mount goes away; later writes are
        // refused so nothing is staged that no upload would pick up.
        rt.block_on(async {
            for fs in resolver.all() {
                fs.begin_shutdown();
                for fh in fs.open_handles() {
                    if let Err(e) = fs.flush(fh).await {
                        tracing::error!(error = %e, "upload before unmount failed; the staged file is kept");
                    }
                }
            }
        });
        if let Err(e) = background.umount_and_join() {
            // Still in use (an open file, a shell inside): everything is uploaded, so detach it now
            // and let the kernel finish the unmount when the last user lets go.
            tracing::info!(error = %e, "mount busy; detaching it");
            lazy_unmount(&req.mountpoint)?;
        }
    } else {
        background.join().map_err(|e| format!("FUSE session ended with an error: {e}"))?;
    }
    tracing::info!(mountpoint = %req.mountpoint.display(), "unmounted");
    Ok(())
}

/// The mounting user's own object client, after checking that sign-in, STS and the endpoint work.
pub fn single_user_client(
    rt: &tokio::runtime::Runtime,
    profile: &Profile,
    endpoint: &str,
    token_dir: &Path,
) -> Result<Arc<Retrying<S3ObjectClient>>, String> {
    let store = TokenStore::open(token_dir).map_err(|e| e.to_string())?;
    let tokens = Arc::new(StoreTokenSource::new(profile.clone(), store, DEFAULT_MARGIN));
    let provider = CredentialProvider::for_profile(profile, tokens).map_err(|e| e.to_string())?;
    rt.block_on(provider.credentials()).map_err(|e| format!("cannot get S3 credentials: {e}"))?;
    let client = Arc::new(Retrying::new(s3_client(provider, endpoint, profile)?, retry::deadline(profile)));
    rt.block_on(async {
        match client.list_buckets().await {
            Ok(_) | Err(crate::object::ObjectError::AccessDenied) => Ok(()),
            Err(e) => Err(format!("cannot list buckets at {endpoint}: {e}")),
        }
    })?;
    Ok(client)
}

/// The S3 client for a profile: system roots, plus the profile's `ca_file` when it names one.
pub fn s3_client(provider: CredentialProvider, endpoint: &str, profile: &Profile) -> Result<S3ObjectClient, String> {
    S3ObjectClient::connect(provider, endpoint, &Transport::for_profile(profile))
}

/// Tells whoever waits (the parent's pipe, systemd) that the mount is usable.
fn announce_ready(ready: Option<RawFd>) {
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

fn lazy_unmount(mountpoint: &Path) -> Result<(), String> {
    let status = std::process::Command::new("fusermount3")
        .arg("-uz")
        .arg(mountpoint)
        .status()
        .or_else(|_| std::process::Command::new("umount").arg("-l").arg(mountpoint).status())
        .map_err(|e| format!("cannot run fusermount3: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("detaching {} failed", mountpoint.display())) }
}

/// `ssofs unmount`: the same as `fusermount3 -u`; the serving process flushes and exits.
pub fn unmount(mountpoint: &Path) -> Result<(), String> {
    let status = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg(mountpoint)
        .status()
        .or_else(|_| std::process::Command::new("umount").arg(mountpoint).status())
        .map_err(|e| format!("cannot run fusermount3: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("unmounting {} failed", mountpoint.display())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 0:21 / / rw,relatime - ext4 /dev/root rw
42 22 0:39 / /mnt/s3 rw,relatime - autofs systemd-1 rw,fd=55,pgrp=1,timeout=0,minproto=5,maxproto=5,direct
43 22 0:40 / /mnt/my\\040s3 rw,nosuid,nodev - fuse.ssofs ssofs:corp rw,user_id=0,group_id=0
44 42 0:41 / /mnt/s3 rw,nosuid,nodev - fuse.ssofs ssofs:corp rw,user_id=0,group_id=0
45 22 0:42 / /mnt/auto rw,relatime - autofs systemd-1 rw,fd=56,pgrp=1,direct
";

    #[test]
    fn the_topmost_mount_at_a_path_decides() {
        // An armed x-systemd.automount trigger: mounting on top of it is what is asked.
        assert_eq!(top_mount_type(MOUNTINFO, Path::new("/mnt/auto")).as_deref(), Some("autofs"));
        // The trigger with the FUSE mount already on it: already mounted.
        assert_eq!(top_mount_type(MOUNTINFO, Path::new("/mnt/s3")).as_deref(), Some("fuse.ssofs"));
        assert_eq!(top_mount_type(MOUNTINFO, Path::new("/mnt/my s3")).as_deref(), Some("fuse.ssofs"));
        assert_eq!(top_mount_type(MOUNTINFO, Path::new("/mnt/other")), None);
        assert_eq!(top_mount_type("garbage\n\n1 2 3\n", Path::new("/mnt/other")), None);
        // The device of the FUSE mount on the trigger, for its read-ahead setting.
        let top = top_mount_line(MOUNTINFO, Path::new("/mnt/s3")).unwrap();
        assert_eq!(top.split(' ').nth(2), Some("0:41"));
    }

    #[test]
    fn relative_mountpoints_are_made_absolute_without_lookups() {
        assert_eq!(absolute_path(Path::new("/mnt/./a/../b/")), PathBuf::from("/mnt/b"));
        assert!(absolute_path(Path::new("x")).is_absolute());
        assert_eq!(absolute_path(Path::new("/../..")), PathBuf::from("/"));
    }

    #[test]
    fn preflight_refuses_a_mounted_path_and_a_missing_one() {
        if Path::new("/dev/fuse").exists() {
            let e = preflight(Path::new("/proc")).unwrap_err();
            assert!(e.contains("already a mountpoint"), "{e}");
            let e = preflight(Path::new("/nonexistent-ssofs-preflight")).unwrap_err();
            assert!(e.contains("mkdir -p"), "{e}");
            let e = preflight(Path::new("/etc/hostname")).unwrap_err();
            assert!(e.contains("not a directory") || e.contains("already a mountpoint"), "{e}");
        }
    }
}
