//! mountpoint-peer: one bucket mounted with Mountpoint for Amazon S3's library, wired as the real
//! `mount-s3` wires it (mountpoint-s3/src/run.rs: PagedPool, S3CrtClient, Superblock,
//! MountpointConfig, FuseSession), with what `mount-s3` cannot take from a bench: static keys
//! and a custom endpoint addressed path-style. It runs in the foreground; bench/bench.py starts
//! it, waits for the mount, and ends it with fusermount3 -u.

mod args;

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use clap::Parser as _;
use mountpoint_s3_client::config::{
    AddressingStyle, Allocator, CredentialsProvider, CredentialsProviderStaticOptions, S3ClientAuthConfig, TlsConfig,
};
use mountpoint_s3_client::user_agent::UserAgent;
use mountpoint_s3_fs::data_cache::{CacheLimit, DataCacheConfig, DiskDataCacheConfig, ManagedCacheDir};
use mountpoint_s3_fs::fs::{CacheConfig, TimeToLive, UploadChecksumAlgorithm};
use mountpoint_s3_fs::fuse::config::{FuseOptions, FuseSessionConfig, MountPoint};
use mountpoint_s3_fs::logging::{LoggingConfig, init_logging};
use mountpoint_s3_fs::memory::{CandidateSize, MINIMUM_MEM_LIMIT, PagedPool, effective_total_memory};
use mountpoint_s3_fs::s3::config::{ClientConfig, MemoryLimitSetting, PartConfig, Region, TargetThroughputSetting};
use mountpoint_s3_fs::s3::{Bucket, Prefix, S3Path, S3Personality};
use mountpoint_s3_fs::{MountpointConfig, Runtime, S3FilesystemConfig, Superblock, SuperblockConfig};

use args::Args;

/// The disk cache's block size: mount-s3's default (its --cache-block-size is behind a feature).
const CACHE_BLOCK_SIZE: u64 = 1024 * 1024;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = if args.debug { "debug" } else { "warn,mountpoint_s3_fs=info,awscrt=off" };
    let _logging = init_logging(LoggingConfig {
        log_file: None,
        log_to_stdout: true,
        default_filter: format!("{filter},mountpoint_s3_fs::metrics=off"),
    })
    .context("failed to initialise logging")?;
    let session = mount(&args)?;
    println!("{} is mounted at {}", args.bucket, args.mount_point.display());
    session.join().context("failed to join the FUSE session")
}

/// Builds the client, the file system and the FUSE session, as mount-s3's `run::mount` does.
fn mount(args: &Args) -> anyhow::Result<mountpoint_s3_fs::fuse::session::FuseSession> {
    let memory_limit = memory_limit(args);
    let client_config = client_config(args, memory_limit)?;
    let pool = PagedPool::config()
        .with_candidate_sizes([
            CandidateSize::prunable(CACHE_BLOCK_SIZE as usize),
            CandidateSize::prunable(client_config.part_config.read_size_bytes),
            CandidateSize::new(client_config.part_config.write_size_bytes),
        ])
        .with_memory_limit(memory_limit.bytes())
        .with_maintenance_interval(Duration::from_secs(60))
        .build();
    let s3_path = S3Path::new(
        Bucket::new(args.bucket.clone()).with_context(|| format!("bad bucket name {:?}", args.bucket))?,
        Prefix::empty(),
    );
    // Validates the client with a ListObjectsV2 of the bucket, as mount-s3 does: a wrong key,
    // endpoint or CA fails here, before anything is mounted.
    let client = client_config.create_client(pool.clone(), Some(&s3_path)).context("failed to create the S3 client")?;
    let runtime = Runtime::new(client.event_loop_group());
    let fs_config = filesystem_config(args);
    let mut data_cache = data_cache_config(args);
    let cache_dir = match &mut data_cache.disk_cache_config {
        Some(disk) => {
            let dir = ManagedCacheDir::new_from_parent_with_cache_key(&disk.cache_directory, None, true)
                .context("failed to create the cache directory")?;
            disk.cache_directory = dir.as_path_buf();
            Some(dir)
        }
        None => None,
    };
    let superblock = Superblock::new(
        client.clone(),
        s3_path,
        SuperblockConfig { cache_config: fs_config.cache_config.clone(), s3_personality: fs_config.s3_personality },
    );
    let fuse_options =
        FuseOptions { read_only: false, auto_unmount: false, allow_root: false, allow_other: false, clone_fd: false };
    let mount_point = MountPoint::new(&args.mount_point).context("bad mount point")?;
    let fuse_config = FuseSessionConfig::new(mount_point, fuse_options, args.max_threads)?;
    let mut session = MountpointConfig::new(fuse_config, fs_config, data_cache)?
        .create_fuse_session(superblock, client, runtime, pool)?;
    if let Some(dir) = cache_dir {
        // Removes the cache directory once unmounted, as mount-s3 does.
        session.run_on_close(Box::new(move || drop(dir)));
    }
    Ok(session)
}

fn memory_limit(args: &Args) -> MemoryLimitSetting {
    match args.memory_target {
        Some(mib) => MemoryLimitSetting::User(mib as usize * 1024 * 1024),
        None => {
            let default = (effective_total_memory() as f64 * 0.95) as usize;
            MemoryLimitSetting::Default(default.max(MINIMUM_MEM_LIMIT))
        }
    }
}

/// The CRT client's settings: static keys, path-style addressing of the given endpoint, and the
/// given CA file as the only trust store.
fn client_config(args: &Args, memory_limit: MemoryLimitSetting) -> anyhow::Result<ClientConfig> {
    let keys = CredentialsProviderStaticOptions {
        access_key_id: &args.access_key_id,
        secret_access_key: &args.secret_access_key,
        session_token: args.session_token.as_deref(),
    };
    let credentials = CredentialsProvider::new_static(&Allocator::default(), keys)
        .map_err(|e| anyhow!("the static credentials were refused: {e}"))?;
    Ok(ClientConfig {
        region: Region::new_user_specified(args.region.clone()),
        endpoint_url: Some(args.endpoint_url.clone()),
        addressing_style: AddressingStyle::Path,
        dual_stack: false,
        transfer_acceleration: false,
        auth_config: S3ClientAuthConfig::Provider(credentials),
        requester_pays: false,
        expected_bucket_owner: None,
        throughput_target: TargetThroughputSetting::User { gbps: args.maximum_throughput_gbps },
        bind: None,
        part_config: PartConfig::with_part_size(args.part_size).validate(memory_limit)?,
        user_agent: UserAgent::new(Some(format!("mountpoint-peer/{}", env!("CARGO_PKG_VERSION")))),
        tls_config: args.ca_bundle.as_ref().map(|p| TlsConfig::new().with_trust_store_path(p)),
    })
}

fn filesystem_config(args: &Args) -> S3FilesystemConfig {
    // mount-s3's default: minimal metadata caching, or 60 s with a data cache.
    let ttl = args.metadata_ttl.unwrap_or(match args.cache {
        Some(_) => TimeToLive::Duration(Duration::from_secs(60)),
        None => TimeToLive::Minimal,
    });
    S3FilesystemConfig {
        cache_config: CacheConfig::new(ttl),
        allow_delete: args.allow_delete,
        allow_overwrite: args.allow_overwrite,
        s3_personality: S3Personality::Standard,
        upload_checksum_algorithm: match args.upload_checksums.as_str() {
            "off" => None,
            _ => Some(UploadChecksumAlgorithm::Crc32c),
        },
        ..Default::default()
    }
}

fn data_cache_config(args: &Args) -> DataCacheConfig {
    let disk_cache_config = args.cache.as_ref().map(|dir| DiskDataCacheConfig {
        cache_directory: dir.clone(),
        block_size: CACHE_BLOCK_SIZE,
        limit: match args.max_cache_size {
            Some(mib) => CacheLimit::TotalSize { max_size: (mib * 1024 * 1024) as usize },
            None => CacheLimit::default(),
        },
    });
    DataCacheConfig { disk_cache_config, express_cache_config: None }
}
