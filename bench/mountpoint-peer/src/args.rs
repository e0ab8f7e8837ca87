//! Command-line arguments: a subset of `mount-s3`'s, named as it names them, plus static keys.

use std::path::PathBuf;

use clap::Parser;
use mountpoint_s3_fs::fs::TimeToLive;

/// Mounts one S3 bucket with Mountpoint for Amazon S3's library (mountpoint-s3-fs), in the
/// foreground, until it is unmounted (fusermount3 -u) or interrupted.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Args {
    /// The bucket to mount.
    pub bucket: String,

    /// The directory to mount it on.
    pub mount_point: PathBuf,

    /// S3 endpoint, e.g. http://127.0.0.1:9000 (addressed path-style: ENDPOINT/BUCKET/KEY).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: String,

    /// Signing region.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,

    /// Access key id; from the environment rather than the command line, which others can read.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub access_key_id: String,

    /// Secret access key; from the environment rather than the command line.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_access_key: String,

    /// Session token, for temporary (STS) credentials.
    #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true)]
    pub session_token: Option<String>,

    /// PEM file of CA certificates to trust instead of the system's (an https endpoint with a
    /// private CA).
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,

    /// Cache object content on local disk in this directory (mount-s3 --cache); also sets the
    /// metadata TTL to 60 s unless --metadata-ttl says otherwise.
    #[arg(long, value_name = "DIRECTORY")]
    pub cache: Option<PathBuf>,

    /// Largest size of the disk cache in MiB [default: keep 5% of the disk free].
    #[arg(long, value_name = "MiB", requires = "cache")]
    pub max_cache_size: Option<u64>,

    /// How long metadata is cached: seconds, "indefinite" or "minimal".
    #[arg(long, value_name = "SECONDS|indefinite|minimal")]
    pub metadata_ttl: Option<TimeToLive>,

    /// Allow removing files and directories.
    #[arg(long)]
    pub allow_delete: bool,

    /// Allow overwriting existing files (opened with O_TRUNC).
    #[arg(long)]
    pub allow_overwrite: bool,

    /// Upload checksums (crc32c) on PUT; off for an endpoint that does not take them.
    #[arg(long, default_value = "crc32c", value_parser = ["crc32c", "off"])]
    pub upload_checksums: String,

    /// Part size of multipart GET and PUT in bytes (mount-s3's default, 8 MiB).
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub part_size: usize,

    /// Target for the memory of prefetch and upload buffers in MiB [default: 95% of the
    /// machine's memory, as mount-s3].
    #[arg(long, value_name = "MiB")]
    pub memory_target: Option<u64>,

    /// Throughput the S3 client aims for, in Gbit/s (off EC2 mount-s3 assumes 10).
    #[arg(long, default_value_t = 10.0)]
    pub maximum_throughput_gbps: f64,

    /// FUSE worker threads (mount-s3's default).
    #[arg(long, default_value_t = 16)]
    pub max_threads: usize,

    /// Log at debug level (CRT included) to stdout.
    #[arg(long)]
    pub debug: bool,
}
