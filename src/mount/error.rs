//! What can stop a mount, with the words the user sees (tests look for them) and the cause kept as
//! the error's source.

use std::path::PathBuf;

use crate::stack::StackError;

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("/dev/fuse is missing: load the fuse kernel module (`modprobe fuse`) or, in a container, pass the device")]
    NoFuseDevice,
    #[error(
        "/dev/fuse: {0}; ordinary users' FUSE mounts need it mode 0666 (crw-rw-rw-), as udev and the fuse3 package \
         set it: `chmod 0666 /dev/fuse` (in a container: pass the device with that mode)"
    )]
    FuseDeviceDenied(#[source] std::io::Error),
    #[error("{} is already a mountpoint; unmount it first (`ssofs unmount {}`)", .0.display(), .0.display())]
    AlreadyMounted(PathBuf),
    #[error("mountpoint {}: {source}; create it with `mkdir -p {}`", .path.display(), .path.display())]
    MountpointMissing {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mountpoint {} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("{0}")]
    BadSource(String),
    #[error("profile {profile}: buckets: {message}")]
    BadBuckets { profile: String, message: String },
    #[error("profile {0} has no endpoint; add `endpoint = \"https://...\"` or pass ENDPOINT")]
    NoEndpoint(String),
    #[error("staging directory: {0}")]
    Staging(String),
    #[error("a multiuser mount reads every user's token store: mount it as root (e.g. from fstab)")]
    MultiuserNeedsRoot,
    #[error("cannot disable core dumps: {0}")]
    CoreDumps(#[source] std::io::Error),
    #[error(transparent)]
    Client(#[from] StackError),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::exporter::ExporterError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("cannot create a pipe: {0}")]
    Pipe(#[source] std::io::Error),
    #[error("cannot open log {}: {source}", .path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot find the ssofs executable: {0}")]
    NoExecutable(#[source] std::io::Error),
    #[error("cannot start the background mount: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("the mount did not start: {last_error} (log: {})", .log.display())]
    DidNotStart { last_error: String, log: PathBuf },
    #[error("cannot mount at {}: {source}", .path.display())]
    Mount {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the FUSE session: {0}")]
    Session(#[source] std::io::Error),
    #[error("FUSE session ended with an error: {0}")]
    SessionEnded(#[source] std::io::Error),
    #[error("cannot run fusermount3: {0}")]
    NoFusermount(#[source] std::io::Error),
    #[error("detaching {} failed", .0.display())]
    DetachFailed(PathBuf),
    #[error("unmounting {} failed", .0.display())]
    UnmountFailed(PathBuf),
    #[error("asking the mount at {} to stop: {source}", path.display())]
    Control {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
