//! `ssofs mount`: checks everything that can fail before going to the background (login, STS,
//! mountpoint, /dev/fuse), then serves the filesystem until SIGTERM/SIGINT or an external unmount.
//! Without `--foreground` the command returns once the child reports the mount ready; under systemd
//! (`NOTIFY_SOCKET`) readiness is also sent with sd_notify.
//!
//! The object clients come from a [`ClientBuilder`]: [`run`] uses the real S3 stack, [`run_with`]
//! any other (a mock, for a mount with no server behind it).

mod background;
pub mod control;
mod error;
pub mod options;
mod preflight;
mod report;
mod staging;

use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Profile;
use crate::fs::{Fs, FsConfig};
use crate::fuse::FuseAdapter;
use crate::identity::TokenStore;
use crate::resolver::{FsResolver, MultiUser, SingleUser};
use crate::stack::{ClientBuilder, S3Stack};
pub use background::{unmount, unmount_and_wait};
pub use error::MountError;
pub use options::MountOptions;
pub use preflight::preflight;
pub use staging::{ROOT_CACHE_DIR, mount_id, mount_id_prefix, staging_dir, staging_root};

/// FUSE worker threads (requests are served on the tokio runtime; these only read and dispatch).
const FUSE_THREADS: usize = 4;

pub struct MountRequest {
    pub profile: Profile,
    pub mountpoint: PathBuf,
    pub options: MountOptions,
    pub foreground: bool,
    /// The mounting user's token store (`-o state_dir=`, `$SSOFS_STATE_DIR`, the XDG state dir);
    /// the background mount's log goes there too.
    pub state_dir: PathBuf,
}

/// Mounts with the real S3 stack, in the background unless `foreground`. Returns when the mount is
/// ready (background) or unmounted (foreground).
pub fn run(req: MountRequest) -> Result<(), MountError> {
    run_with(req, Arc::new(S3Stack))
}

/// [`run`] with the object clients `clients` builds.
pub fn run_with(req: MountRequest, clients: Arc<dyn ClientBuilder>) -> Result<(), MountError> {
    preflight(&req.mountpoint)?;
    if let Some(message) = crate::recover::report(&staging_dir(&req.options, &req.profile.name, &req.mountpoint)) {
        eprintln!("ssofs: warning: {message}");
        tracing::warn!("{message}");
    }
    if req.foreground || std::env::var_os(background::READY_FD_ENV).is_some() {
        let ready = std::env::var(background::READY_FD_ENV).ok().and_then(|v| v.parse::<RawFd>().ok());
        return serve(req, clients, ready);
    }
    background::spawn_background(&req)
}

fn fs_config(opts: &MountOptions, profile: &Profile, mountpoint: &std::path::Path) -> Result<FsConfig, MountError> {
    use crate::fs::named::BucketPath;
    // Private all the way up, checked once; the canonical path is used from here on.
    let dir =
        crate::untrusted::private_dir(&staging_dir(opts, &profile.name, mountpoint)).map_err(MountError::Staging)?;
    let mut c = FsConfig::new(dir);
    c.staging_quota = opts.staging_quota;
    c.metadata = !opts.no_metadata;
    c.named_buckets = BucketPath::parse_all(profile.buckets.iter().map(String::as_str))
        .map_err(|message| MountError::BadBuckets { profile: profile.name.clone(), message })?;
    c.root_bucket = opts.root_bucket.as_deref().map(BucketPath::parse).transpose().map_err(MountError::BadSource)?;
    c.uid = opts.uid.unwrap_or(c.uid);
    c.gid = opts.gid.unwrap_or(c.gid);
    c.file_mode = opts.file_mode.unwrap_or(c.file_mode);
    c.dir_mode = opts.dir_mode.unwrap_or(c.dir_mode);
    c.attr_ttl = opts.attr_ttl.unwrap_or(c.attr_ttl);
    c.dir_ttl = opts.dir_ttl.unwrap_or(c.dir_ttl);
    c.cache_size = opts.cache_size.unwrap_or(c.cache_size);
    let limits = &mut c.metadata_limits;
    limits.listed_entries = opts.listing_entries.unwrap_or(limits.listed_entries);
    limits.negative = opts.negative_entries.unwrap_or(limits.negative);
    limits.readdirplus_inodes = opts.readdirplus_inodes.unwrap_or(limits.readdirplus_inodes);
    c.dir_prefetch = opts.dir_prefetch.unwrap_or(c.dir_prefetch);
    // An explicit cache_dir also turns on the disk tier of the block cache (default 1 GiB), whose
    // blocks belong to this profile and endpoint.
    if let Some(dir) = &opts.cache_dir {
        c.disk_cache = Some(crate::fs::cache::DiskSettings {
            dir: dir.join("blocks"),
            limit: opts.disk_cache_size.unwrap_or(1 << 30),
            scope: format!("{}\n{}", profile.name, profile.endpoint.as_deref().unwrap_or_default()),
        });
    }
    c.read_only = opts.read_only;
    c.writeback_cache = opts.writeback_cache;
    Ok(c)
}

fn serve(req: MountRequest, clients: Arc<dyn ClientBuilder>, ready: Option<RawFd>) -> Result<(), MountError> {
    fixed_mmap_threshold(req.options.multiuser);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(MountError::Runtime)?;
    // First, so that the sign-in checks below are counted too.
    let exporter = crate::metrics::exporter::Exporter::install(&rt, req.options.metrics)?;
    let since = std::time::SystemTime::now();
    let mut profile = req.profile.clone();
    req.options.apply_to(&mut profile);
    let endpoint = profile.endpoint.clone().ok_or_else(|| MountError::NoEndpoint(profile.name.clone()))?;
    let resolver = if req.options.multiuser {
        multi_user(&rt, &req, profile.clone(), endpoint, clients)?
    } else {
        let store = TokenStore::open(&req.state_dir).map_err(crate::stack::StackError::from)?;
        let client = rt.block_on(clients.build_checked(&profile, &endpoint, store.clone()))?;
        let fs = Arc::new(Fs::new(client, fs_config(&req.options, &profile, &req.mountpoint)?));
        fs.set_identity(&profile.name, store);
        Arc::new(SingleUser(fs)) as Arc<dyn FsResolver>
    };
    let adapter = FuseAdapter::new(resolver.clone(), rt.handle().clone());
    let config = fuse_config(&req.options, &profile);
    let session = fuser::Session::new(adapter, &req.mountpoint, &config)
        .map_err(|source| MountError::Mount { path: req.mountpoint.clone(), source })?;
    let background = session.spawn().map_err(MountError::Session)?;
    preflight::raise_read_ahead(&req.mountpoint);
    if ready.is_some() {
        // The background child of `ssofs mount`: mounted, so now leave the terminal's session.
        // SAFETY: setsid has no memory effects; it fails only for a group leader, which we are not.
        unsafe { libc::setsid() };
    }
    tracing::info!(mountpoint = %req.mountpoint.display(), profile = %profile.name, "mounted");
    let stop = Arc::new(tokio::sync::Notify::new());
    let view = Arc::new(report::MountView {
        resolver: resolver.clone(),
        profile: profile.name.clone(),
        mountpoint: req.mountpoint.clone(),
        multiuser: req.options.multiuser,
        since,
        metrics_addr: req.options.metrics,
        exporter,
    });
    let sockets = control_sockets(&rt, &req, stop.clone(), view);
    background::announce_ready(ready);

    if rt.block_on(stop_signal(&background, &stop)) {
        // Files still open get their data uploaded before the mount goes away; later writes are
        // refused so nothing is staged that no upload would pick up.
        rt.block_on(flush_all(resolver.as_ref()));
        if let Err(e) = background.umount_and_join() {
            // Still in use (an open file, a shell inside): everything is uploaded, so detach it now
            // and let the kernel finish the unmount when the last user lets go.
            tracing::info!(error = %e, "mount busy; detaching it");
            background::lazy_unmount(&req.mountpoint)?;
        }
    } else {
        background.join().map_err(MountError::SessionEnded)?;
    }
    tracing::info!(mountpoint = %req.mountpoint.display(), "unmounted");
    for socket in sockets {
        let _ = std::fs::remove_file(&socket);
    }
    Ok(())
}

/// The control socket (and, for a multi-user mount, the public one for its users), and the task
/// that keeps the sign-in gauges current for the HTTP listener. Returns the sockets made.
fn control_sockets(
    rt: &tokio::runtime::Runtime,
    req: &MountRequest,
    stop: Arc<tokio::sync::Notify>,
    view: Arc<report::MountView>,
) -> Vec<PathBuf> {
    let mut made = Vec::new();
    let socket = control::socket_path(&req.state_dir, &req.mountpoint);
    match control::serve(rt, &socket, stop, view.clone()) {
        Ok(()) => made.push(socket),
        Err(e) => tracing::warn!(socket = %socket.display(), error = %e,
            "no control socket; `ssofs unmount` falls back to fusermount3 and `ssofs status` cannot see this mount"),
    }
    if req.options.multiuser {
        let public = control::public_socket_path(&req.mountpoint);
        match control::serve_public(rt, &public, view.clone()) {
            Ok(()) => made.push(public),
            Err(e) => tracing::warn!(socket = %public.display(), error = %e,
                "no public status socket; users of this mount cannot see their figures with `ssofs status`"),
        }
    }
    rt.spawn(async move {
        loop {
            let view = view.clone();
            let _ = tokio::task::spawn_blocking(move || view.refresh_gauges()).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    made
}

/// Buffers from `threshold` up get pages of their own that go back to the system when freed. glibc
/// otherwise raises the threshold each time such a buffer is freed, after which 1 MiB blocks come
/// from per-thread arenas that keep what was freed: ten users reading through a 32 MiB cache peaked
/// at 629 MiB, 141 MiB with the threshold fixed at 128 KiB.
/// - A mount for one user fixes it at 512 KiB: hyper's read buffers (up to about 400 KiB) then come
///   from the arenas too. At 128 KiB each got fresh pages, faulted in, zeroed and unmapped again
///   (with TLB shootdowns on every CPU): a cold 1 GiB read cost the mount 1.47-1.80 CPU-s and 205k
///   page faults at 128 KiB, 1.03 CPU-s and 105k at 512 KiB (627-677 vs 799-861 MiB/s).
/// - A multi-user mount keeps 128 KiB: there the arenas kept about 1 MiB more per reading identity
///   (ten users: 105-106 MiB peak at 128 KiB, 114-124 at 512 KiB, over the bound of 116).
///
/// Freed 1 MiB blocks are used again either way (`object::block_buffers`).
fn fixed_mmap_threshold(multiuser: bool) {
    let threshold = if multiuser { 128 * 1024 } else { 512 * 1024 };
    // SAFETY: mallopt only changes the allocator's tuning; a fixed threshold is always valid.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, threshold) };
}

/// The resolver of a multi-user mount, with the sweeper that drops idle identities.
fn multi_user(
    rt: &tokio::runtime::Runtime,
    req: &MountRequest,
    profile: Profile,
    endpoint: String,
    clients: Arc<dyn ClientBuilder>,
) -> Result<Arc<dyn FsResolver>, MountError> {
    if crate::untrusted::euid() != 0 {
        return Err(MountError::MultiuserNeedsRoot);
    }
    // This process will hold every user's refresh token: no core file, no ptrace or /proc
    // access by anyone but root.
    crate::untrusted::no_core_dumps().map_err(MountError::CoreDumps)?;
    let template = fs_config(&req.options, &profile, &req.mountpoint)?;
    let users = Arc::new(MultiUser::new(profile, endpoint, template, clients));
    let sweeper = users.clone();
    rt.spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            let dropped = sweeper.drop_idle(crate::resolver::IDLE_DROP);
            if dropped > 0 {
                tracing::info!(dropped, "idle identities dropped from memory");
            }
        }
    });
    Ok(users)
}

/// The FUSE mount options and access rule the `-o` options ask for.
fn fuse_config(options: &MountOptions, profile: &Profile) -> fuser::Config {
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName(format!("ssofs:{}", profile.name)),
        fuser::MountOption::Subtype("ssofs".into()),
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
    ];
    if options.read_only {
        config.mount_options.push(fuser::MountOption::RO);
    }
    // A multi-user mount is for every user, with the kernel checking each one's permissions.
    if options.default_permissions || options.multiuser {
        config.mount_options.push(fuser::MountOption::DefaultPermissions);
    }
    config.acl = if options.allow_other || options.multiuser {
        fuser::SessionACL::All
    } else if options.allow_root {
        fuser::SessionACL::RootAndOwner
    } else {
        fuser::SessionACL::Owner
    };
    config.n_threads = Some(FUSE_THREADS);
    config
}

/// Waits for SIGTERM/SIGINT or `ssofs unmount` (true), or for the session to end by an external
/// unmount (false).
async fn stop_signal(background: &fuser::BackgroundSession, stop: &tokio::sync::Notify) -> bool {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return false;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return true,
            _ = int.recv() => return true,
            _ = stop.notified() => return true,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if background.guard.is_finished() {
                    return false;
                }
            }
        }
    }
}

/// Refuses new writes and uploads what every open file holds.
async fn flush_all(resolver: &dyn FsResolver) {
    for fs in resolver.all() {
        fs.begin_shutdown();
        for fh in fs.open_handles() {
            if let Err(e) = fs.flush(fh).await {
                tracing::error!(error = %e, "upload before unmount failed; the staged file is kept");
            }
        }
    }
}
