//! `-o` mount options: ssofs's own (defined once, in [`table::OPTIONS`]), plus the ones mount(8) and
//! systemd pass along that only matter to them. An option nobody knows is an error naming it.

mod table;
mod values;

use std::path::PathBuf;
use std::time::Duration;

pub use table::{MountOption, OPTIONS, Takes};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MountOptions {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub file_mode: Option<u16>,
    pub dir_mode: Option<u16>,
    pub attr_ttl: Option<Duration>,
    pub dir_ttl: Option<Duration>,
    pub cache_size: Option<usize>,
    /// `listing_entries=N`, `negative_entries=N`: the metadata maps' capacities.
    pub listing_entries: Option<usize>,
    pub negative_entries: Option<usize>,
    /// `readdirplus_inodes=N`: inodes beyond which listings give the kernel names only.
    pub readdirplus_inodes: Option<usize>,
    /// `dir_prefetch=N`: directory listings fetched ahead of a walker at once (0: none).
    pub dir_prefetch: Option<usize>,
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
    /// `writeback_cache`: the kernel keeps written pages and sends them in large writes.
    pub writeback_cache: bool,
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
    /// `metrics=127.0.0.1:PORT`: serve the Prometheus metrics over HTTP there (loopback only).
    pub metrics: Option<std::net::SocketAddr>,
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

/// A `-o` option that cannot be used, in words that name it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptionError {
    #[error("mount option {option:?}: {name} takes no value (write just {name})")]
    TakesNoValue { option: String, name: &'static str },
    #[error("mount option {0} needs a value ({0}=...)")]
    NeedsValue(&'static str),
    #[error("mount option {name}={value}: {expected}")]
    BadValue { name: &'static str, value: String, expected: String },
    #[error("unknown mount option {option:?}; ssofs knows {} (see `ssofs mount --help`)", known())]
    Unknown { option: String },
    #[error("mount options allow_other and allow_root cannot be combined")]
    AllowOtherWithAllowRoot,
    #[error(
        "mount options multiuser and writeback_cache cannot be combined: the writes the kernel sends from its \
         cache carry no user, so a multi-user mount could not tell whose they are; drop writeback_cache"
    )]
    WritebackCacheWithMultiuser,
}

/// The names of every option, for the unknown-option error.
fn known() -> String {
    OPTIONS.iter().map(|o| o.name).collect::<Vec<_>>().join(", ")
}

/// Parses `-o` groups (each comma-separated; `-o` may be repeated), later options winning.
pub fn parse(groups: &[String]) -> Result<MountOptions, OptionError> {
    let mut o = MountOptions::default();
    for opt in groups.iter().flat_map(|g| g.split(',')).map(str::trim).filter(|s| !s.is_empty()) {
        if table::ignored(opt) {
            continue;
        }
        let (name, value) = match opt.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (opt, None),
        };
        let Some(option) = OPTIONS.iter().find(|o| o.name == name) else {
            return Err(OptionError::Unknown { option: opt.to_string() });
        };
        match (&option.takes, value) {
            (Takes::Nothing(set), None) => set(&mut o),
            (Takes::Nothing(_), Some(_)) => {
                return Err(OptionError::TakesNoValue { option: opt.to_string(), name: option.name });
            }
            (Takes::Value(..), None | Some("")) => return Err(OptionError::NeedsValue(option.name)),
            (Takes::Value(_, set), Some(v)) => set(&mut o, v).map_err(|expected| OptionError::BadValue {
                name: option.name,
                value: v.to_string(),
                expected,
            })?,
        }
    }
    if o.allow_other && o.allow_root {
        return Err(OptionError::AllowOtherWithAllowRoot);
    }
    if o.multiuser && o.writeback_cache {
        return Err(OptionError::WritebackCacheWithMultiuser);
    }
    Ok(o)
}

/// The options part of `ssofs mount --help` (and so of ssofs-mount(1)), from [`OPTIONS`].
pub fn help() -> String {
    let mut out = String::from("Options (-o, comma-separated; may be repeated):\n");
    for option in OPTIONS {
        let usage = match &option.takes {
            Takes::Nothing(_) => option.name.to_string(),
            Takes::Value(placeholder, _) => format!("{}={placeholder}", option.name),
        };
        out.push_str(&format!("  {usage}\n          {}\n", option.help));
    }
    out.push_str(
        "mount(8) options such as _netdev, nofail, noauto, user, users, defaults, x-* and comment=* are accepted \
         and ignored. An unknown option is an error.",
    );
    out
}

/// The log filter for a `log_level=` value: `:` separates directives in a mount option.
pub fn log_filter(level: &str) -> String {
    level.replace(':', ",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<MountOptions, String> {
        parse(&[s.to_string()]).map_err(|e| e.to_string())
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
        assert!(p("listing_entries=0").unwrap_err().contains("listing_entries"));
        assert!(p("negative_entries=many").unwrap_err().contains("above 0"));
    }

    #[test]
    fn metadata_capacities_are_options() {
        let o = p("listing_entries=1000000,negative_entries=500").unwrap();
        assert_eq!((o.listing_entries, o.negative_entries), (Some(1_000_000), Some(500)));
    }

    /// README's Options paragraph names every option of the table.
    #[test]
    fn readme_mentions_every_option() {
        let readme = include_str!("../../../README.md");
        let start = readme.find("Options (`-o`, comma-separated)").expect("README has an Options paragraph");
        let paragraph = readme[start..].split("\n\n").next().unwrap_or_default();
        for option in OPTIONS {
            let named = [format!("`{}`", option.name), format!("`{}=", option.name)];
            assert!(named.iter().any(|n| paragraph.contains(n)), "README's Options paragraph lacks `{}`", option.name);
        }
    }

    #[test]
    fn help_and_the_unknown_option_error_name_every_option() {
        let (help, unknown) = (help(), p("colour=blue").unwrap_err());
        for option in OPTIONS {
            assert!(help.contains(&format!("  {}", option.name)), "{}", option.name);
            assert!(unknown.contains(option.name), "{}", option.name);
        }
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
            ("writeback_cache", |o| o.writeback_cache && !o.multiuser),
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
            ("metrics=127.0.0.1:9100", |o| o.metrics == Some("127.0.0.1:9100".parse().unwrap())),
            ("metrics=[::1]:9100", |o| o.metrics == Some("[::1]:9100".parse().unwrap())),
            ("dir_prefetch=0", |o| o.dir_prefetch == Some(0)),
            ("dir_prefetch=16", |o| o.dir_prefetch == Some(16)),
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
            ("multiuser,writeback_cache", "multiuser and writeback_cache cannot be combined"),
            ("writeback_cache=on", "takes no value"),
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
            ("metrics=0.0.0.0:1", "mount option metrics=0.0.0.0:1: 0.0.0.0 is not a loopback address"),
            ("metrics=192.168.1.5:9100", "use 127.0.0.1:9100 or [::1]:9100"),
            ("metrics=localhost:9100", "expected a loopback address and port"),
            ("metrics=127.0.0.1", "expected a loopback address and port"),
            ("dir_prefetch=65", "from 0 to 64"),
            ("dir_prefetch=-1", "dir_prefetch=-1"),
        ];
        for (input, want) in bad {
            let e = p(input).expect_err(input);
            assert!(e.contains(want), "{input}: {e}");
        }
    }
}
