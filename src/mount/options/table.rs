//! Every `-o` option ssofs knows, once: its name, what it takes, its help line and how it is set.
//! Parsing, the unknown-option error, `ssofs mount --help` (and so the man page) and the README
//! check all read this table.

use std::path::PathBuf;
use std::time::Duration;

use super::MountOptions;
use super::values::{MAX_DIR_PREFETCH, at_most, count, loopback, mode, parse_size, size, ttl, valid_log_level};

/// What an option takes, and how it sets [`MountOptions`].
pub enum Takes {
    /// A flag: the name alone (`ro`).
    Nothing(fn(&mut MountOptions)),
    /// `name=VALUE` (the placeholder shown in help); the setter says what was expected when the
    /// value is wrong.
    Value(&'static str, fn(&mut MountOptions, &str) -> Result<(), String>),
}

pub struct MountOption {
    pub name: &'static str,
    pub takes: Takes,
    pub help: &'static str,
}

/// Longest attr_ttl/dir_ttl, in seconds (about 31 years: "forever" for a mount).
pub(super) const MAX_TTL_SECS: f64 = 1e9;

/// In the order `ssofs mount --help` shows them.
pub const OPTIONS: &[MountOption] = &[
    MountOption {
        name: "uid",
        takes: Takes::Value("N", |o, v| {
            o.uid = Some(v.parse().map_err(|_| "expected a numeric user id")?);
            Ok(())
        }),
        help: "owner every file and directory shows (default: the mounting user)",
    },
    MountOption {
        name: "gid",
        takes: Takes::Value("N", |o, v| {
            o.gid = Some(v.parse().map_err(|_| "expected a numeric group id")?);
            Ok(())
        }),
        help: "group every file and directory shows (default: the mounting user's)",
    },
    MountOption {
        name: "file_mode",
        takes: Takes::Value("0644", |o, v| {
            o.file_mode = Some(mode(v)?);
            Ok(())
        }),
        help: "permission bits files show",
    },
    MountOption {
        name: "dir_mode",
        takes: Takes::Value("0755", |o, v| {
            o.dir_mode = Some(mode(v)?);
            Ok(())
        }),
        help: "permission bits directories show",
    },
    MountOption {
        name: "attr_ttl",
        takes: Takes::Value("SECS", |o, v| {
            o.attr_ttl = Some(ttl(v)?);
            Ok(())
        }),
        help: "how long metadata is trusted (default 1)",
    },
    MountOption {
        name: "dir_ttl",
        takes: Takes::Value("SECS", |o, v| {
            o.dir_ttl = Some(ttl(v)?);
            Ok(())
        }),
        help: "how long listings are trusted (default 5)",
    },
    MountOption {
        name: "listing_entries",
        takes: Takes::Value("N", |o, v| {
            o.listing_entries = Some(count(v)?);
            Ok(())
        }),
        help: "directory entries kept in cached listings, all directories together, least recently used \
               dropped first (about 200 bytes each; default 100000)",
    },
    MountOption {
        name: "readdirplus_inodes",
        takes: Takes::Value("N", |o, v| {
            o.readdirplus_inodes = Some(count(v)?);
            Ok(())
        }),
        help: "inodes the mount may hold (about 0.7 KiB each, and one in the kernel each) before directory \
               listings hand out attributes 64 entries at a time and names only for the rest: `find` over \
               millions of objects stays bounded, and `ls -l` (whose stats make the kernel ask for \
               attributes again) is not slowed (default 100000)",
    },
    MountOption {
        name: "dir_prefetch",
        takes: Takes::Value("N", |o, v| {
            o.dir_prefetch = Some(at_most(v, MAX_DIR_PREFETCH)?);
            Ok(())
        }),
        help: "directory listings fetched at once ahead of a walker such as find or du, once it reads \
               a directory's subdirectories in order; 0 turns it off (default 4)",
    },
    MountOption {
        name: "negative_entries",
        takes: Takes::Value("N", |o, v| {
            o.negative_entries = Some(count(v)?);
            Ok(())
        }),
        help: "names remembered as missing, each for its TTL (default 10000)",
    },
    MountOption {
        name: "cache_size",
        takes: Takes::Value("256M", |o, v| {
            o.cache_size = Some(parse_size(v).ok_or("expected a size such as 512M or 2G")?);
            Ok(())
        }),
        help: "memory for object data",
    },
    MountOption {
        name: "cache_dir",
        takes: Takes::Value("DIR", |o, v| {
            o.cache_dir = Some(PathBuf::from(v));
            Ok(())
        }),
        help: "written files are staged in DIR/staging (default ~/.cache/ssofs); an explicit cache_dir also \
               keeps every block read in DIR/blocks, up to disk_cache_size, for this and later mounts (reused \
               only while the object's ETag is unchanged; checksummed, a torn block is never served)",
    },
    MountOption {
        name: "disk_cache_size",
        takes: Takes::Value("1G", |o, v| {
            o.disk_cache_size = Some(size(v, "expected a size such as 1G")?);
            Ok(())
        }),
        help: "disk for blocks under cache_dir (default 1G), least recently used deleted first, also at mount",
    },
    MountOption {
        name: "staging_quota",
        takes: Takes::Value("SIZE", |o, v| {
            o.staging_quota = Some(size(v, "expected a size such as 1G")?);
            Ok(())
        }),
        help: "bytes of written data staged per user, beyond which writes fail with ENOSPC (default 1G per user \
               with multiuser, unbounded otherwise)",
    },
    MountOption {
        name: "buckets",
        takes: Takes::Value("a:b/prefix", |o, v| {
            crate::fs::named::BucketPath::parse_all(v.split(':'))?;
            {
                o.buckets = Some(v.split(':').filter(|b| !b.is_empty()).map(String::from).collect());
                Ok(())
            }
        }),
        help: "buckets (or bucket/prefix) shown at the root besides what ListBuckets returns; replaces the \
               profile's `buckets`",
    },
    MountOption {
        name: "metadata",
        takes: Takes::Value("on|off", |o, v| match v {
            "on" => {
                o.no_metadata = false;
                Ok(())
            }
            "off" => {
                o.no_metadata = true;
                Ok(())
            }
            _ => Err("expected on or off".into()),
        }),
        help: "keep mode, mtime and owner in object metadata as s3fs and rclone do (default on)",
    },
    MountOption { name: "ro", takes: Takes::Nothing(|o| o.read_only = true), help: "mount read-only" },
    MountOption {
        name: "allow_other",
        takes: Takes::Nothing(|o| o.allow_other = true),
        help: "let every user use the mount (FUSE; ordinary users need user_allow_other in /etc/fuse.conf)",
    },
    MountOption {
        name: "allow_root",
        takes: Takes::Nothing(|o| o.allow_root = true),
        help: "let root use the mount too (FUSE)",
    },
    MountOption {
        name: "default_permissions",
        takes: Takes::Nothing(|o| o.default_permissions = true),
        help: "let the kernel check permissions against the modes shown (FUSE)",
    },
    MountOption {
        name: "profile",
        takes: Takes::Value("P", |o, v| {
            o.profile = Some(v.to_string());
            Ok(())
        }),
        help: "the profile to use (for fstab; --profile wins)",
    },
    MountOption {
        name: "duration_seconds",
        takes: Takes::Value("N", |o, v| {
            o.duration_seconds = Some(v.parse().map_err(|_| "expected whole seconds")?);
            Ok(())
        }),
        help: "lifetime to ask STS for, overriding the profile's (--duration-seconds wins)",
    },
    MountOption {
        name: "config",
        takes: Takes::Value("FILE", |o, v| {
            o.config = Some(PathBuf::from(v));
            Ok(())
        }),
        help: "config file read after the standard ones (for fstab, where mount's environment has no \
               SSOFS_CONFIG; --config wins)",
    },
    MountOption {
        name: "state_dir",
        takes: Takes::Value("DIR", |o, v| {
            o.state_dir = Some(PathBuf::from(v));
            Ok(())
        }),
        help: "where the tokens are (for fstab, where root may have no HOME; default $SSOFS_STATE_DIR, else \
               ~/.local/state/ssofs)",
    },
    MountOption {
        name: "log_level",
        takes: Takes::Value("LEVEL", |o, v| {
            if !valid_log_level(v) {
                return Err("expected error, warn, info, debug, trace or off (or target=level directives)".into());
            }
            {
                o.log_level = Some(v.to_string());
                Ok(())
            }
        }),
        help: "error, warn, info, debug, trace or off, or target=level directives separated by `:`",
    },
    MountOption {
        name: "log_file",
        takes: Takes::Value("FILE", |o, v| {
            o.log_file = Some(PathBuf::from(v));
            Ok(())
        }),
        help: "append the log to FILE (for fstab)",
    },
    MountOption {
        name: "multiuser",
        takes: Takes::Nothing(|o| o.multiuser = true),
        help: "root only: one mount serves every Unix user with their own login, read from \
               ~USER/.local/state/ssofs (see README, \"Multi-user mounts\")",
    },
    MountOption {
        name: "writeback_cache",
        takes: Takes::Nothing(|o| o.writeback_cache = true),
        help: "the kernel keeps written pages and sends them in large writes: many small write()s (a CSV \
               row each) cost what a local disk's do, not a round trip to ssofs each. What was written but \
               not yet closed or fsync'd is then in the kernel's memory, not in the staging file, and is \
               lost if ssofs is killed; the size of a file changed elsewhere shows only once the kernel \
               forgets it. Not with multiuser (see README, \"Writes\")",
    },
    MountOption {
        name: "metrics",
        takes: Takes::Value("127.0.0.1:PORT", |o, v| {
            o.metrics = Some(loopback(v)?);
            Ok(())
        }),
        help: "serve Prometheus metrics over HTTP at this loopback address (GET /metrics); any local user can \
               read them, so they carry no user names, buckets or keys",
    },
    MountOption {
        name: "op_timeout",
        takes: Takes::Value("SECS", |o, v| {
            let secs: f64 = v
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && (1.0..=3600.0).contains(s))
                .ok_or("expected seconds between 1 and 3600, e.g. 30")?;
            {
                o.op_timeout = Some(Duration::from_secs_f64(secs));
                Ok(())
            }
        }),
        help: "how long one operation's S3 work may take, retries through outages included, before it fails \
               with EIO (default 30)",
    },
    MountOption {
        name: "insecure_tls",
        takes: Takes::Nothing(|o| o.insecure_tls = true),
        help: "skip TLS certificate checks of the IdP, STS and S3 — for a test endpoint only, warned about at \
               every start; prefer ca_file in the profile",
    },
];

/// Options for mount(8), fstab and systemd that ssofs accepts and ignores.
pub fn ignored(name: &str) -> bool {
    matches!(
        name,
        "_netdev"
            | "nofail"
            | "auto"
            | "noauto"
            | "user"
            | "users"
            | "nouser"
            | "defaults"
            | "rw"
            | "dev"
            | "nodev"
            | "suid"
            | "nosuid"
            | "exec"
            | "noexec"
            | "atime"
            | "noatime"
            | "relatime"
            | "async"
            | "owner"
            | "group"
    ) || name.starts_with("x-")
        || name.starts_with("comment=")
        // mount(8) names the mounting user of a `user` fstab entry this way
        || name.starts_with("user=")
}
