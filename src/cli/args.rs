//! The command line: flags and subcommands (clap derive). The `-o` options' help comes from
//! the option table at run time (see `cli::command`), so it is written once.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use ssofs::config::Overrides;
use ssofs::identity::browser;

/// Log in to Azure AD (Entra ID) and use your MinIO buckets with short-lived per-user credentials.
///
/// Configuration comes from /etc/ssofs/config.toml, then $XDG_CONFIG_HOME/ssofs/config.toml
/// (~/.config/ssofs/config.toml), then --config FILE or $SSOFS_CONFIG, later files winning key by key;
/// the profile flags below win over all of them. Tokens are kept under $SSOFS_STATE_DIR, else
/// $XDG_STATE_HOME/ssofs (~/.local/state/ssofs), in 0600 files. Set SSOFS_LOG (or RUST_LOG), e.g. `debug`,
/// for logs; they never contain tokens.
#[derive(Parser)]
#[command(version, about, long_about)]
pub struct Cli {
    /// Extra config file, read after /etc/ssofs/config.toml and ~/.config/ssofs/config.toml.
    #[arg(long, global = true, value_name = "FILE", env = "SSOFS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Profile to use (default: `default_profile` from the config, or the only profile).
    #[arg(long, global = true, value_name = "P")]
    pub profile: Option<String>,
    #[command(flatten)]
    pub overrides: ProfileFlags,
    /// Append the log to FILE instead of stderr (or the journal, when run by systemd).
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// Values that override the profile's.
#[derive(Args)]
pub struct ProfileFlags {
    /// OpenID issuer URL, overriding the profile's `issuer`/`tenant`
    /// (e.g. https://login.microsoftonline.com/<tenant>/v2.0).
    #[arg(long, global = true, value_name = "URL")]
    pub issuer: Option<String>,
    /// Azure tenant (GUID, domain, `organizations` or `common`), overriding the profile's issuer.
    #[arg(long, global = true, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Application (client) id of the app registration, overriding the profile's `client_id`.
    #[arg(long, global = true, value_name = "ID")]
    pub client_id: Option<String>,
    /// S3/STS endpoint URL, overriding the profile's `endpoint`.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Extra CA certificate (PEM) to trust for the identity provider, overriding `ca_file`.
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Also accept ID tokens from Azure's v1 issuer https://sts.windows.net/<tid>/ (same tenant);
    /// same as `accept_v1_issuer = true` in the profile.
    #[arg(long, global = true)]
    accept_v1_issuer: bool,
    /// Lifetime to ask STS for, in seconds (MinIO: 900 to 31536000), overriding `duration_seconds`.
    /// Without it MinIO gives credentials that expire with the token.
    #[arg(long, global = true, value_name = "SECS")]
    pub duration_seconds: Option<u64>,
}

impl ProfileFlags {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            issuer: self.issuer.clone(),
            tenant: self.tenant.clone(),
            client_id: self.client_id.clone(),
            endpoint: self.endpoint.clone(),
            ca_file: self.ca_file.clone(),
            accept_v1_issuer: self.accept_v1_issuer.then_some(true),
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Sign in and store the tokens.
    ///
    /// Without --device-code or --browser, ssofs opens a browser when one can be opened ($BROWSER is
    /// set, or DISPLAY/WAYLAND_DISPLAY is) and uses the device code otherwise. The browser flow
    /// listens on a free loopback port (redirect URI http://localhost:PORT/; register http://localhost
    /// under "Mobile and desktop applications" in the app registration). The device-code flow needs
    /// "Allow public client flows" enabled in the app registration.
    Login(LoginArgs),
    /// Show who is signed in for the profile (user, tenant, groups, expiry) and what your mounts are
    /// doing. Never prints a token.
    ///
    /// Each mount is asked through its control socket: mountpoint, profile, signed-in user, sign-in
    /// and credential expiry, mounted since, bytes read and written, block-cache hit ratio, uploads in
    /// flight (bytes done of total), uploads that failed or were refused (with where their data is
    /// kept) and the last error. A multi-user mount shows each user their own figures only (root sees
    /// every identity).
    Status(StatusArgs),
    /// Show what the stored ID token says about you.
    Token(TokenArgs),
    /// Forget the stored tokens of the profile.
    Logout,
    /// Mount every bucket you may list as a directory of MOUNTPOINT.
    ///
    /// Returns once the mount is ready (the filesystem keeps running in the background; with
    /// --foreground it runs in this process). Sign in first with `ssofs login`. Unmount with
    /// `ssofs unmount MOUNTPOINT`, `fusermount3 -u MOUNTPOINT` or SIGTERM; data being written is
    /// uploaded first.
    Mount(MountArgs),
    /// Upload files that were being written when ssofs was killed, or copy them out.
    ///
    /// A file written through a mount is staged locally until it is uploaded at close/fsync. If ssofs
    /// is killed first (SIGKILL, power loss), the staged file stays; the next mount warns about it.
    /// `recover` uploads each to its bucket and key with your credentials; `--export DIR` copies them
    /// to DIR/<bucket>/<key> instead. Files of running mounts are left alone. Each mount stages in a
    /// directory of its own (per profile and mountpoint): recover looks at the mounts of the profile
    /// (`--profile`), or only at the one `--mountpoint` names, and lists what it found first. Uploads the bucket
    /// policy refused are kept in <staging>/refused for 7 days: `--export` copies them out too,
    /// `--discard` deletes everything. Only a staging directory you own and nobody else can open is
    /// used.
    Recover(RecoverArgs),
    /// Unmount a ssofs mount (same as `fusermount3 -u`).
    Unmount(UnmountArgs),
    /// Check everything a mount needs and say what to fix: config, identity provider, clocks, token,
    /// audience, groups claim, STS, buckets (what you can do in each), FUSE.
    ///
    /// Exits 0 when every check passes (warnings allowed), 1 otherwise.
    Doctor(DoctorArgs),
    /// Write a profile and check it: identity provider, S3 endpoint, then (if you agree, or with
    /// --login) a sign-in and `ssofs doctor`.
    ///
    /// Takes --tenant (or --issuer), --client-id and --endpoint, and optionally --role-arn and
    /// --buckets; on a terminal it asks for what is missing, otherwise it fails naming the missing
    /// flags. The profile (--profile NAME, default "default") goes into --config FILE or
    /// $SSOFS_CONFIG when given, else ~/.config/ssofs/config.toml (other profiles and comments there
    /// are kept); nothing is written when the identity provider or the endpoint does not answer. An
    /// existing profile of the same name is replaced only with --force. Prints the
    /// `systemctl --user enable --now ssofs@NAME` command and an /etc/fstab line for the profile.
    Init(InitArgs),
    /// Write man pages (DIR/man1) and shell completions (DIR/completions) for packaging.
    #[command(hide = true)]
    GenerateDocs(GenerateDocsArgs),
}

#[derive(Args)]
pub struct MountArgs {
    /// What to mount (optional): an S3 endpoint URL overriding the profile's, or `s3://BUCKET[/PREFIX]`
    /// to mount one bucket or prefix at the mountpoint itself; then the directory to mount on.
    #[arg(value_name = "[ENDPOINT|s3://BUCKET[/PREFIX]] MOUNTPOINT", num_args = 1..=2, required = true)]
    pub targets: Vec<String>,
    /// Mount options, comma-separated; may be repeated.
    #[arg(short = 'o', value_name = "OPT[,OPT...]")]
    pub options: Vec<String>,
    /// Stay in the foreground instead of returning once the mount is ready.
    #[arg(short = 'f', long)]
    pub foreground: bool,
}

#[derive(Args)]
pub struct LoginArgs {
    /// Use the device-code flow: print a URL, a code and a QR code, to sign in from any device.
    #[arg(long, conflicts_with = "browser")]
    pub device_code: bool,
    /// Use the browser flow (authorization code + PKCE on a loopback redirect), e.g. when
    /// Conditional Access or MFA requires a sign-in from this device.
    #[arg(long)]
    pub browser: bool,
    /// Account to pre-fill on the sign-in page (browser flow; Azure's login_hint).
    #[arg(long, value_name = "USER")]
    pub login_hint: Option<String>,
    /// How long the browser flow waits for the sign-in to come back, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = browser::DEFAULT_TIMEOUT.as_secs())]
    pub timeout: u64,
    /// Do not print a QR code with the device code.
    #[arg(long)]
    pub no_qr: bool,
    /// Poll the device-code endpoint this often instead of the interval the provider asks for, until
    /// it answers slow_down. For testing.
    #[arg(long, value_name = "SECS", hide = true)]
    pub poll_interval: Option<u64>,
}

#[derive(Args)]
pub struct StatusArgs {
    /// Print JSON: profile, logged_in, upn, name, tid, oid, groups (a count or "overage"), roles,
    /// expires_at (RFC 3339), expired, refresh_token_present, issuer; and mounts: a list of
    /// {mountpoint, profile, pid, multiuser, mounted_since, metrics, identities: [{uid, user,
    /// sign_in_expires_at, login_required, credentials_expire_at, bytes_read, bytes_written,
    /// cache_hits, cache_misses, cache_hit_ratio, uploads_in_flight: [{bucket, key, done, total,
    /// started}], uploads_failed: [{bucket, key, staged, error, refused, at}], last_error: {at,
    /// message}}]}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct TokenArgs {
    /// Print the decoded claims of the current ID token as JSON (no header, no signature, never
    /// the token itself). Required: ssofs does not print tokens.
    #[arg(long, required = true)]
    pub claims: bool,
}

#[derive(Args)]
pub struct RecoverArgs {
    /// Copy the files to this folder instead of uploading them.
    #[arg(long, value_name = "DIR")]
    pub export: Option<PathBuf>,
    /// The cache_dir the mount used (-o cache_dir=), if any.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The files of this user of a multi-user mount (`<staging>/uid-N`; run as root).
    #[arg(long, value_name = "UID")]
    pub uid: Option<u32>,
    /// Delete the leftovers and the refused uploads instead of recovering them.
    #[arg(long, conflicts_with = "export")]
    pub discard: bool,
    /// Only the files of the mount at this mountpoint (default: every mount of the profile).
    #[arg(long, value_name = "DIR")]
    pub mountpoint: Option<PathBuf>,
}

#[derive(Args)]
pub struct UnmountArgs {
    /// The mounted directory.
    pub mountpoint: PathBuf,
}

#[derive(Args)]
pub struct DoctorArgs {
    /// Print the report as JSON: profile, ok, diagnosis (the first failed check), checks (check,
    /// outcome pass/warn/fail/skip, detail, fix).
    #[arg(long)]
    pub json: bool,
    /// Also check that each bucket can be written, by writing and deleting an empty object
    /// `.ssofs-doctor-probe-*`.
    #[arg(long)]
    pub write_probe: bool,
    /// The mount options to check (as for `ssofs mount -o`), e.g. allow_other, config=, state_dir=.
    #[arg(short = 'o', value_name = "OPT[,OPT...]")]
    pub options: Vec<String>,
}

#[derive(Args)]
pub struct InitArgs {
    /// Role ARN to ask STS for (MinIO: an OpenID provider configured with a role policy).
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
    /// Buckets (BUCKET or BUCKET/PREFIX, comma-separated) to show besides those ListBuckets returns.
    #[arg(long, value_name = "BUCKET[/PREFIX],...", value_delimiter = ',')]
    pub buckets: Vec<String>,
    /// Replace an existing profile of the same name.
    #[arg(long)]
    pub force: bool,
    /// Sign in and run `ssofs doctor` right after writing the profile, without asking.
    #[arg(long)]
    pub login: bool,
}

#[derive(Args)]
pub struct GenerateDocsArgs {
    /// Output directory.
    pub dir: PathBuf,
}
