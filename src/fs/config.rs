//! The settings one filesystem runs with, resolved from the mount's options and profile.

use std::path::PathBuf;
use std::time::Duration;

use super::named;
pub use super::superblock::Limits as MetadataLimits;

/// Mount options that shape what the filesystem shows and how long it trusts what it saw.
#[derive(Debug, Clone)]
pub struct FsConfig {
    pub uid: u32,
    pub gid: u32,
    pub file_mode: u16,
    pub dir_mode: u16,
    pub attr_ttl: Duration,
    pub dir_ttl: Duration,
    /// How long "no such file" is remembered.
    pub negative_ttl: Duration,
    pub cache_size: usize,
    /// The disk tier of the block cache (off when `None`).
    pub disk_cache: Option<super::cache::DiskSettings>,
    pub read_only: bool,
    /// Where files being written are staged (per user, 0700).
    pub staging_dir: PathBuf,
    /// Keep mode, mtime and owner in object metadata, and read them back (s3fs's and rclone's keys).
    pub metadata: bool,
    /// At most this many bytes staged (writes in progress plus files kept from failed uploads);
    /// beyond it writes fail with ENOSPC. Unbounded when `None`.
    pub staging_quota: Option<u64>,
    /// Buckets (or prefixes) shown at the root besides what ListBuckets returns.
    pub named_buckets: Vec<named::BucketPath>,
    /// One bucket (or prefix) mounted as the root itself (`s3://bucket/prefix` as the source).
    pub root_bucket: Option<named::BucketPath>,
    /// How many listing entries and missing names are kept at most.
    pub metadata_limits: MetadataLimits,
    /// Part size of a file uploaded in parts while it is written in order (at least S3's 5 MiB).
    pub stream_part_size: u64,
    /// The kernel caches written pages (FUSE writeback cache): writes arrive late, in large pieces,
    /// at the offsets the kernel chose, `O_APPEND` ones included.
    pub writeback_cache: bool,
    /// Directory listings fetched ahead of a walker (`find`, `du`) at once at most; 0 turns it off.
    pub dir_prefetch: usize,
}

/// [`FsConfig::dir_prefetch`] unless set.
pub const DIR_PREFETCH: usize = 4;

/// [`FsConfig::stream_part_size`] unless set: the part size of whole-file multipart uploads too.
pub const STREAM_PART_SIZE: u64 = 16 << 20;

/// A multi-user mount stages every user's writes on root's filesystem: each user gets this much
/// unless `-o staging_quota=` says otherwise.
pub const DEFAULT_MULTIUSER_STAGING_QUOTA: u64 = 1 << 30;

impl FsConfig {
    pub fn new(staging_dir: PathBuf) -> Self {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        FsConfig {
            uid,
            gid,
            file_mode: 0o644,
            dir_mode: 0o755,
            attr_ttl: Duration::from_secs(1),
            dir_ttl: Duration::from_secs(5),
            negative_ttl: Duration::from_secs(1),
            cache_size: 256 << 20,
            disk_cache: None,
            read_only: false,
            staging_dir,
            staging_quota: None,
            metadata: true,
            named_buckets: Vec::new(),
            root_bucket: None,
            metadata_limits: MetadataLimits::default(),
            stream_part_size: STREAM_PART_SIZE,
            writeback_cache: false,
            dir_prefetch: DIR_PREFETCH,
        }
    }
}
