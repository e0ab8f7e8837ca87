//! Where a mount stages written files: one directory per profile and mountpoint, which `ssofs
//! recover` looks through.

use std::path::{Path, PathBuf};

use super::MountOptions;
use super::preflight::absolute_path;

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
