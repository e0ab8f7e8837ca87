//! `-o` mount options: ssofs's own, plus the ones mount(8) and systemd pass along that only matter
//! to them. An option nobody knows is an error naming it.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MountOptions {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub file_mode: Option<u16>,
    pub dir_mode: Option<u16>,
    pub attr_ttl: Option<Duration>,
    pub dir_ttl: Option<Duration>,
    pub cache_size: Option<usize>,
    pub cache_dir: Option<PathBuf>,
    pub disk_cache_size: Option<u64>,
    /// `staging_quota=SIZE`: bytes of written data one user may have staged (default 1G per user
    /// in a multi-user mount, unbounded otherwise).
    pub staging_quota: Option<u64>,
    pub read_only: bool,
    pub allow_other: bool,
    pub allow_root: bool,
    pub default_permissions: bool,
    pub profile: Option<String>,
    pub duration_seconds: Option<u64>,
    /// `config=FILE`: the config file to read after the standard ones (fstab: mount runs as root
    /// with a minimal environment, so `--config`/`SSOFS_CONFIG` are not at hand).
    pub config: Option<PathBuf>,
    /// `state_dir=DIR`: where the tokens are (default `$SSOFS_STATE_DIR`, else the XDG state dir).
    pub state_dir: Option<PathBuf>,
    /// `log_level=LEVEL`: a tracing filter (`error`, `warn`, `info`, `debug`, `trace`, or directives
    /// such as `ssofs=debug`).
    pub log_level: Option<String>,
    /// `log_file=FILE`: append the log there instead of the default.
    pub log_file: Option<PathBuf>,
    /// `multiuser`: serve each Unix user with their own identity.
    pub multiuser: bool,
    /// `op_timeout=SECONDS`: how long one operation's S3 work may take, retries included, before the
    /// caller gets an error (default 30).
    pub op_timeout: Option<Duration>,
    /// `insecure_tls`: accept any TLS certificate (IdP, STS, S3). Never the default.
    pub insecure_tls: bool,
    /// `metadata=off`: neither store nor read mode, mtime and owner in object metadata (a lookup then
    /// needs no HEAD; every file shows file_mode and its object's time).
    pub no_metadata: bool,
    /// `buckets=a:b/prefix`: buckets (or prefixes) shown at the root besides what ListBuckets
    /// returns; replaces the profile's `buckets`.
    pub buckets: Option<Vec<String>>,
    /// Not an `-o` option: the mount source `s3://bucket[/prefix]`, mounted as the root itself.
    pub root_bucket: Option<String>,
}

impl MountOptions {
    /// The options that override the profile's own keys (`duration_seconds`, `op_timeout`,
    /// `insecure_tls`): for a mount, and for doctor checking what that mount would do.
    pub fn apply_to(&self, profile: &mut crate::config::Profile) {
        if self.duration_seconds.is_some() {
            profile.duration_seconds = self.duration_seconds;
        }
        if self.op_timeout.is_some() {
            profile.op_timeout = self.op_timeout;
        }
        if self.insecure_tls {
            profile.insecure_tls = true;
        }
        if let Some(buckets) = &self.buckets {
            profile.buckets = buckets.clone();
        }
    }
}

/// Options for mount(8), fstab and systemd that ssofs accepts and ignores.
fn ignored(name: &str) -> bool {
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

/// Longest attr_ttl/dir_ttl, in seconds (about 31 years: "forever" for a mount).
const MAX_TTL_SECS: f64 = 1e9;

pub fn parse(groups: &[String]) -> Result<MountOptions, String> {
    let mut o = MountOptions::default();
    for opt in groups.iter().flat_map(|g| g.split(',')).map(str::trim).filter(|s| !s.is_empty()) {
        if ignored(opt) {
            continue;
        }
        let (name, value) = match opt.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (opt, None),
        };
        let bad = |v: &str, what: &str| format!("mount option {name}={v}: {what}");
        const FLAGS: [&str; 6] =
            ["ro", "allow_other", "allow_root", "default_permissions", "multiuser", "insecure_tls"];
        if value.is_some() && FLAGS.contains(&name) {
            return Err(format!("mount option {opt:?}: {name} takes no value (write just {name})"));
        }
        match name {
            "ro" => o.read_only = true,
            "allow_other" => o.allow_other = true,
            "allow_root" => o.allow_root = true,
            "default_permissions" => o.default_permissions = true,
            "uid" => {
                let v = need(value, name)?;
                o.uid = Some(v.parse().map_err(|_| bad(v, "expected a numeric user id"))?);
            }
            "gid" => {
                let v = need(value, name)?;
                o.gid = Some(v.parse().map_err(|_| bad(v, "expected a numeric group id"))?);
            }
            "file_mode" | "dir_mode" => {
                let v = need(value, name)?;
                let mode = u16::from_str_radix(v.trim_start_matches("0o"), 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| bad(v, "expected an octal mode such as 0644"))?;
                if name == "file_mode" {
                    o.file_mode = Some(mode);
                } else {
                    o.dir_mode = Some(mode);
                }
            }
            "attr_ttl" | "dir_ttl" => {
                let v = need(value, name)?;
                // Bounded: from_secs_f64 panics past u64::MAX seconds, and `Instant::now() + ttl` in
                // the filesystem past i64::MAX.
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| (0.0..=MAX_TTL_SECS).contains(s))
                    .ok_or_else(|| bad(v, "expected seconds up to 1000000000, e.g. 1 or 0.5"))?;
                let d = Duration::from_secs_f64(secs);
                if name == "attr_ttl" {
                    o.attr_ttl = Some(d);
                } else {
                    o.dir_ttl = Some(d);
                }
            }
            "cache_size" => {
                let v = need(value, name)?;
                o.cache_size = Some(parse_size(v).ok_or_else(|| bad(v, "expected a size such as 512M or 2G"))?);
            }
            "cache_dir" => o.cache_dir = Some(PathBuf::from(need(value, name)?)),
            "disk_cache_size" => {
                let v = need(value, name)?;
                o.disk_cache_size = Some(parse_size(v).ok_or_else(|| bad(v, "expected a size such as 1G"))? as u64);
            }
            "metadata" => match need(value, name)? {
                "on" => o.no_metadata = false,
                "off" => o.no_metadata = true,
                v => return Err(bad(v, "expected on or off")),
            },
            "buckets" => {
                let v = need(value, name)?;
                crate::fs::named::BucketPath::parse_all(v.split(':')).map_err(|e| bad(v, &e))?;
                o.buckets = Some(v.split(':').filter(|b| !b.is_empty()).map(String::from).collect());
            }
            "staging_quota" => {
                let v = need(value, name)?;
                o.staging_quota = Some(parse_size(v).ok_or_else(|| bad(v, "expected a size such as 1G"))? as u64);
            }
            "profile" => o.profile = Some(need(value, name)?.to_string()),
            "multiuser" => o.multiuser = true,
            "config" => o.config = Some(PathBuf::from(need(value, name)?)),
            "state_dir" => o.state_dir = Some(PathBuf::from(need(value, name)?)),
            "log_file" => o.log_file = Some(PathBuf::from(need(value, name)?)),
            "log_level" => {
                let v = need(value, name)?;
                if !valid_log_level(v) {
                    return Err(bad(v, "expected error, warn, info, debug, trace or off (or target=level directives)"));
                }
                o.log_level = Some(v.to_string());
            }
            "insecure_tls" => o.insecure_tls = true,
            "op_timeout" => {
                let v = need(value, name)?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && (1.0..=3600.0).contains(s))
                    .ok_or_else(|| bad(v, "expected seconds between 1 and 3600, e.g. 30"))?;
                o.op_timeout = Some(Duration::from_secs_f64(secs));
            }
            "duration_seconds" => {
                let v = need(value, name)?;
                o.duration_seconds = Some(v.parse().map_err(|_| bad(v, "expected whole seconds"))?);
            }
            _ => {
                return Err(format!(
                    "unknown mount option {opt:?}; ssofs knows uid, gid, file_mode, dir_mode, attr_ttl, dir_ttl, \
                     cache_size, cache_dir, disk_cache_size, staging_quota, buckets, metadata, ro, allow_other, allow_root, default_permissions, profile, duration_seconds, \
                     config, state_dir, log_level, log_file, multiuser, op_timeout, insecure_tls \
                     (see `ssofs mount --help`)"
                ));
            }
        }
    }
    if o.allow_other && o.allow_root {
        return Err("mount options allow_other and allow_root cannot be combined".into());
    }
    Ok(o)
}

/// `info`, `debug`, ..., or `target=level` directives separated by `:` (a comma would end the
/// mount option).
fn valid_log_level(v: &str) -> bool {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    v.split(':').all(|d| {
        let level = d.rsplit_once('=').map_or(d, |(target, level)| if target.is_empty() { "" } else { level });
        LEVELS.contains(&level.to_ascii_lowercase().as_str())
    })
}

/// The log filter for a `log_level=` value: `:` separates directives in a mount option.
pub fn log_filter(level: &str) -> String {
    level.replace(':', ",")
}

/// The value of `name=value`, which must not be empty.
fn need<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, String> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| format!("mount option {name} needs a value ({name}=...)"))
}

/// `123`, `64K`, `512M`, `2G` (powers of 1024).
fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let (digits, mult) = match s.chars().last()?.to_ascii_uppercase() {
        'K' => (&s[..s.len() - 1], 1usize << 10),
        'M' => (&s[..s.len() - 1], 1 << 20),
        'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    digits.parse::<usize>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<MountOptions, String> {
        parse(&[s.to_string()])
    }

    // Found by the mount_options fuzz target: a finite but huge TTL panicked in from_secs_f64 (and a
    // smaller huge one would panic later, in `Instant::now() + attr_ttl`).
    #[test]
    fn huge_ttls_are_errors_not_panics() {
        for v in ["1e20", "133333733333333333333373333333e-00", "1e19", "1000000001", "-1", "nan", "inf", "-0.5"] {
            assert!(p(&format!("attr_ttl={v}")).is_err(), "attr_ttl={v}");
            assert!(p(&format!("dir_ttl={v}")).is_err(), "dir_ttl={v}");
        }
        assert_eq!(p("dir_ttl=1e9").unwrap().dir_ttl, Some(Duration::from_secs(1_000_000_000)));
        assert_eq!(p("attr_ttl=0").unwrap().attr_ttl, Some(Duration::ZERO));
    }

    #[test]
    fn options_override_the_profile_keys_they_name() {
        let mut profile = crate::config::Profile {
            name: "p".into(),
            issuer: "https://i".into(),
            client_id: "c".into(),
            scopes: vec![],
            endpoint: None,
            role_arn: None,
            duration_seconds: Some(3600),
            token: crate::config::StsToken::IdToken,
            ca_file: None,
            accept_v1_issuer: false,
            insecure_tls: false,
            op_timeout: Some(Duration::from_secs(60)),
            buckets: Vec::new(),
            checksums: Default::default(),
        };
        p("").unwrap().apply_to(&mut profile);
        assert_eq!(
            (profile.duration_seconds, profile.op_timeout, profile.insecure_tls),
            (Some(3600), Some(Duration::from_secs(60)), false)
        );
        p("duration_seconds=900,op_timeout=5,insecure_tls").unwrap().apply_to(&mut profile);
        assert_eq!(
            (profile.duration_seconds, profile.op_timeout, profile.insecure_tls),
            (Some(900), Some(Duration::from_secs(5)), true)
        );
    }

    #[test]
    fn fstab_line_options_parse() {
        let o = p("_netdev,nofail,x-systemd.automount,profile=corp,allow_other,uid=1000,file_mode=0640,cache_size=512M,attr_ttl=0.5").unwrap();
        assert_eq!(o.profile.as_deref(), Some("corp"));
        assert!(o.allow_other);
        assert_eq!(o.uid, Some(1000));
        assert_eq!(o.file_mode, Some(0o640));
        assert_eq!(o.cache_size, Some(512 << 20));
        assert_eq!(o.attr_ttl, Some(Duration::from_millis(500)));
    }

    #[test]
    fn bad_and_unknown_options_name_themselves() {
        assert!(p("colour=blue").unwrap_err().contains("\"colour=blue\""));
        assert!(p("uid=alice").unwrap_err().contains("uid=alice"));
        assert!(p("file_mode=999").unwrap_err().contains("octal"));
        assert!(p("cache_size=lots").unwrap_err().contains("cache_size"));
        assert!(p("attr_ttl=-1").is_err());
        assert!(p("uid").unwrap_err().contains("needs a value"));
        assert!(p("allow_other,allow_root").is_err());
    }

    #[test]
    fn option_table() {
        // (input, Ok(check) or Err(text the error must contain))
        type Case = (&'static str, fn(&MountOptions) -> bool);
        let ok: &[Case] = &[
            ("", |o| *o == MountOptions::default()),
            ("defaults,_netdev,nofail,noauto,auto,user,users,comment=systemd.x,x-systemd.automount", |o| {
                *o == MountOptions::default()
            }),
            ("log_level=debug", |o| o.log_level.as_deref() == Some("debug")),
            ("log_level=ssofs=debug:warn", |o| o.log_level.as_deref() == Some("ssofs=debug:warn")),
            ("log_file=/var/log/ssofs.log", |o| o.log_file == Some(PathBuf::from("/var/log/ssofs.log"))),
            ("multiuser", |o| o.multiuser),
            ("config=/etc/ssofs/corp.toml,state_dir=/var/lib/ssofs", |o| {
                o.config == Some(PathBuf::from("/etc/ssofs/corp.toml"))
                    && o.state_dir == Some(PathBuf::from("/var/lib/ssofs"))
            }),
            ("ro,allow_root,default_permissions,gid=5,dir_mode=0750,dir_ttl=3", |o| {
                o.read_only && o.allow_root && o.default_permissions && o.gid == Some(5) && o.dir_mode == Some(0o750)
            }),
            ("user=alice,users", |o| *o == MountOptions::default()),
            ("op_timeout=5", |o| o.op_timeout == Some(Duration::from_secs(5)) && !o.insecure_tls),
            ("insecure_tls,op_timeout=0.5e1", |o| o.insecure_tls && o.op_timeout == Some(Duration::from_secs(5))),
            ("disk_cache_size=2G,cache_dir=/var/cache/ssofs,duration_seconds=900", |o| {
                o.disk_cache_size == Some(2 << 30) && o.duration_seconds == Some(900)
            }),
        ];
        for (input, check) in ok {
            let o = p(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert!(check(&o), "{input}: {o:?}");
        }
        let bad = [
            ("log_level=loud", "log_level=loud"),
            ("log_level=", "needs a value"),
            ("config", "needs a value"),
            ("state_dir=", "needs a value"),
            ("multi_user", "\"multi_user\""),
            ("profile", "needs a value"),
            ("duration_seconds=1h", "duration_seconds=1h"),
            ("gid=-1", "gid=-1"),
            ("dir_mode=0o8", "octal"),
            ("attr_ttl=NaN", "attr_ttl"),
            ("op_timeout=0", "between 1 and 3600"),
            ("op_timeout=inf", "op_timeout=inf"),
            ("op_timeout", "needs a value"),
            ("insecure_tls=yes", "takes no value"),
            ("ro=1", "takes no value"),
        ];
        for (input, want) in bad {
            let e = p(input).expect_err(input);
            assert!(e.contains(want), "{input}: {e}");
        }
    }
}
