//! The `ssofs` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use ssofs::config::{self, Overrides, Sources};
use ssofs::identity::TokenStore;
use ssofs::identity::browser::{self, BrowserOptions};
use ssofs::identity::login::{self, DevicePolling};
use ssofs::identity::status::{self, Status};

mod doctor;
mod logging;

/// Log in to Azure AD (Entra ID) and use your MinIO buckets with short-lived per-user credentials.
///
/// Configuration comes from /etc/ssofs/config.toml, then $XDG_CONFIG_HOME/ssofs/config.toml
/// (~/.config/ssofs/config.toml), then --config FILE or $SSOFS_CONFIG, later files winning key by key;
/// the profile flags below win over all of them. Tokens are kept under $SSOFS_STATE_DIR, else
/// $XDG_STATE_HOME/ssofs (~/.local/state/ssofs), in 0600 files. Set SSOFS_LOG (or RUST_LOG), e.g. `debug`,
/// for logs; they never contain tokens.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// Extra config file, read after /etc/ssofs/config.toml and ~/.config/ssofs/config.toml.
    #[arg(long, global = true, value_name = "FILE", env = "SSOFS_CONFIG")]
    config: Option<PathBuf>,
    /// Profile to use (default: `default_profile` from the config, or the only profile).
    #[arg(long, global = true, value_name = "P")]
    profile: Option<String>,
    #[command(flatten)]
    overrides: ProfileFlags,
    /// Append the log to FILE instead of stderr (or the journal, when run by systemd).
    #[arg(long, global = true, value_name = "FILE")]
    log_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Values that override the profile's.
#[derive(Args)]
struct ProfileFlags {
    /// OpenID issuer URL, overriding the profile's `issuer`/`tenant`
    /// (e.g. https://login.microsoftonline.com/<tenant>/v2.0).
    #[arg(long, global = true, value_name = "URL")]
    issuer: Option<String>,
    /// Azure tenant (GUID, domain, `organizations` or `common`), overriding the profile's issuer.
    #[arg(long, global = true, value_name = "TENANT")]
    tenant: Option<String>,
    /// Application (client) id of the app registration, overriding the profile's `client_id`.
    #[arg(long, global = true, value_name = "ID")]
    client_id: Option<String>,
    /// S3/STS endpoint URL, overriding the profile's `endpoint`.
    #[arg(long, global = true, value_name = "URL")]
    endpoint: Option<String>,
    /// Extra CA certificate (PEM) to trust for the identity provider, overriding `ca_file`.
    #[arg(long, global = true, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Also accept ID tokens from Azure's v1 issuer https://sts.windows.net/<tid>/ (same tenant);
    /// same as `accept_v1_issuer = true` in the profile.
    #[arg(long, global = true)]
    accept_v1_issuer: bool,
    /// Lifetime to ask STS for, in seconds (MinIO: 900 to 31536000), overriding `duration_seconds`.
    /// Without it MinIO gives credentials that expire with the token.
    #[arg(long, global = true, value_name = "SECS")]
    duration_seconds: Option<u64>,
}

impl ProfileFlags {
    fn overrides(&self) -> Overrides {
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
enum Command {
    /// Sign in and store the tokens.
    ///
    /// Without --device-code or --browser, ssofs opens a browser when one can be opened ($BROWSER is
    /// set, or DISPLAY/WAYLAND_DISPLAY is) and uses the device code otherwise. The browser flow
    /// listens on a free loopback port (redirect URI http://localhost:PORT/; register http://localhost
    /// under "Mobile and desktop applications" in the app registration). The device-code flow needs
    /// "Allow public client flows" enabled in the app registration.
    Login(LoginArgs),
    /// Show who is signed in for the profile: user, tenant, groups, expiry. Never prints a token.
    Status {
        /// Print JSON: profile, logged_in, upn, name, tid, oid, groups (a count or "overage"), roles,
        /// expires_at (RFC 3339), expired, refresh_token_present, issuer.
        #[arg(long)]
        json: bool,
    },
    /// Show what the stored ID token says about you.
    Token {
        /// Print the decoded claims of the current ID token as JSON (no header, no signature, never
        /// the token itself). Required: ssofs does not print tokens.
        #[arg(long, required = true)]
        claims: bool,
    },
    /// Forget the stored tokens of the profile.
    Logout,
    /// Mount every bucket you may list as a directory of MOUNTPOINT.
    ///
    /// Returns once the mount is ready (the filesystem keeps running in the background; with
    /// --foreground it runs in this process). Sign in first with `ssofs login`. Unmount with
    /// `ssofs unmount MOUNTPOINT`, `fusermount3 -u MOUNTPOINT` or SIGTERM; data being written is
    /// uploaded first.
    ///
    /// Options (-o, comma-separated): uid=N, gid=N, file_mode=0644, dir_mode=0755 (what files show);
    /// attr_ttl=SECS (default 1), dir_ttl=SECS (default 5) (how long metadata and listings are
    /// trusted); cache_size=256M (memory for object data); cache_dir=DIR (written files are
    /// staged in DIR/staging, default ~/.cache/ssofs; an explicit cache_dir also spills evicted blocks
    /// to DIR/blocks, up to disk_cache_size=1G); ro; allow_other, allow_root, default_permissions (FUSE);
    /// profile=P; duration_seconds=N (STS); op_timeout=SECS (default 30: how long one operation's S3
    /// work may take, retries through outages included, before it fails with EIO); insecure_tls (skip
    /// TLS certificate checks of the IdP, STS and S3 — for a test endpoint only, warned about at every
    /// start; prefer ca_file in the profile); config=FILE, state_dir=DIR, log_level=LEVEL,
    /// log_file=FILE (for fstab); multiuser (root only: one mount serves every Unix user with their
    /// own login, read from ~USER/.local/state/ssofs; see README, "Multi-user mounts");
    /// metadata=on|off (keep mode, mtime and owner in object metadata as s3fs and rclone do; on by
    /// default); staging_quota=SIZE (bytes of written data staged per user, beyond which writes fail with
    /// ENOSPC; default 1G per user with multiuser, unbounded otherwise). mount(8)
    /// options such as _netdev, nofail, noauto, user, users, defaults, x-* and comment=* are accepted
    /// and ignored. An unknown option is an error.
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
    Recover {
        /// Copy the files to this folder instead of uploading them.
        #[arg(long, value_name = "DIR")]
        export: Option<PathBuf>,
        /// The cache_dir the mount used (-o cache_dir=), if any.
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// The files of this user of a multi-user mount (`<staging>/uid-N`; run as root).
        #[arg(long, value_name = "UID")]
        uid: Option<u32>,
        /// Delete the leftovers and the refused uploads instead of recovering them.
        #[arg(long, conflicts_with = "export")]
        discard: bool,
        /// Only the files of the mount at this mountpoint (default: every mount of the profile).
        #[arg(long, value_name = "DIR")]
        mountpoint: Option<PathBuf>,
    },
    /// Unmount a ssofs mount (same as `fusermount3 -u`).
    Unmount {
        /// The mounted directory.
        mountpoint: PathBuf,
    },
    /// Check everything a mount needs and say what to fix: config, identity provider, clocks, token,
    /// audience, groups claim, STS, buckets (what you can do in each), FUSE.
    ///
    /// Exits 0 when every check passes (warnings allowed), 1 otherwise.
    Doctor {
        /// Print the report as JSON: profile, ok, diagnosis (the first failed check), checks (check,
        /// outcome pass/warn/fail/skip, detail, fix).
        #[arg(long)]
        json: bool,
        /// Also check that each bucket can be written, by writing and deleting an empty object
        /// `.ssofs-doctor-probe-*`.
        #[arg(long)]
        write_probe: bool,
        /// The mount options to check (as for `ssofs mount -o`), e.g. allow_other, config=, state_dir=.
        #[arg(short = 'o', value_name = "OPT[,OPT...]")]
        options: Vec<String>,
    },
    /// Write man pages (DIR/man1) and shell completions (DIR/completions) for packaging.
    #[command(hide = true)]
    GenerateDocs {
        /// Output directory.
        dir: PathBuf,
    },
}

#[derive(Args)]
struct MountArgs {
    /// What to mount (optional): an S3 endpoint URL overriding the profile's, or `s3://BUCKET[/PREFIX]`
    /// to mount one bucket or prefix at the mountpoint itself; then the directory to mount on.
    #[arg(value_name = "[ENDPOINT|s3://BUCKET[/PREFIX]] MOUNTPOINT", num_args = 1..=2, required = true)]
    targets: Vec<String>,
    /// Mount options, comma-separated; may be repeated.
    #[arg(short = 'o', value_name = "OPT[,OPT...]")]
    options: Vec<String>,
    /// Stay in the foreground instead of returning once the mount is ready.
    #[arg(short = 'f', long)]
    foreground: bool,
}

#[derive(Args)]
struct LoginArgs {
    /// Use the device-code flow: print a URL, a code and a QR code, to sign in from any device.
    #[arg(long, conflicts_with = "browser")]
    device_code: bool,
    /// Use the browser flow (authorization code + PKCE on a loopback redirect), e.g. when
    /// Conditional Access or MFA requires a sign-in from this device.
    #[arg(long)]
    browser: bool,
    /// Account to pre-fill on the sign-in page (browser flow; Azure's login_hint).
    #[arg(long, value_name = "USER")]
    login_hint: Option<String>,
    /// How long the browser flow waits for the sign-in to come back, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = browser::DEFAULT_TIMEOUT.as_secs())]
    timeout: u64,
    /// Do not print a QR code with the device code.
    #[arg(long)]
    no_qr: bool,
    /// Poll the device-code endpoint this often instead of the interval the provider asks for, until
    /// it answers slow_down. For testing.
    #[arg(long, value_name = "SECS", hide = true)]
    poll_interval: Option<u64>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `-o log_level=`/`log_file=` (mount, doctor) and --log-file pick the log; see logging.rs.
    let mount_opts = match &cli.command {
        Command::Mount(a) => ssofs::mount::options::parse(&a.options).ok(),
        Command::Doctor { options, .. } => ssofs::mount::options::parse(options).ok(),
        _ => None,
    };
    let mut level = mount_opts.as_ref().and_then(|o| o.log_level.as_deref()).map(ssofs::mount::options::log_filter);
    // doctor reports failures itself; the layers' warnings about them would only repeat it.
    let log_env_set = std::env::var_os("SSOFS_LOG").is_some() || std::env::var_os("RUST_LOG").is_some();
    if level.is_none() && !log_env_set && matches!(cli.command, Command::Doctor { .. }) {
        level = Some("error".into());
    }
    let log_file = cli.log_file.clone().or_else(|| mount_opts.and_then(|o| o.log_file));
    if let Err(message) = logging::init(level.as_deref(), log_file.as_deref()) {
        eprintln!("ssofs: {message}");
        return ExitCode::FAILURE;
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ssofs: {message}");
            ExitCode::FAILURE
        }
    }
}

fn doctor_command(cli: Cli, json: bool, write_probe: bool, options: &[String]) -> Result<(), String> {
    let options = ssofs::mount::options::parse(options)?;
    let f = cli.overrides;
    let req = doctor::Request {
        sources: Sources::standard(cli.config.or_else(|| options.config.clone())),
        profile: cli.profile.or_else(|| options.profile.clone()),
        overrides: f.overrides(),
        duration_seconds: f.duration_seconds.or(options.duration_seconds),
        state_dir: options.state_dir.clone(),
        write_probe,
        options,
    };
    let rt = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let report = rt.block_on(doctor::run(req));
    if json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
    } else {
        print!("{}", report.text());
    }
    if report.ok { Ok(()) } else { std::process::exit(1) }
}

/// Man pages for `ssofs` and each visible subcommand, and bash/zsh/fish completions.
fn generate_docs(dir: &std::path::Path) -> Result<(), String> {
    use clap::CommandFactory;
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    let man = dir.join("man1");
    let completions = dir.join("completions");
    std::fs::create_dir_all(&man).map_err(io)?;
    std::fs::create_dir_all(&completions).map_err(io)?;
    let cmd = Cli::command();
    let mut pages = vec![("ssofs".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("ssofs-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().display_name(name.clone()).bin_name(name)));
    }
    for (name, page) in pages {
        let mut out = Vec::new();
        clap_mangen::Man::new(page).render(&mut out).map_err(io)?;
        std::fs::write(man.join(format!("{name}.1")), out).map_err(io)?;
    }
    for (shell, file) in [
        (clap_complete::Shell::Bash, "ssofs.bash"),
        (clap_complete::Shell::Zsh, "_ssofs"),
        (clap_complete::Shell::Fish, "ssofs.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "ssofs", &mut out);
        std::fs::write(completions.join(file), out).map_err(io)?;
    }
    Ok(())
}

fn run(cli: Cli) -> Result<(), String> {
    if let Command::Unmount { mountpoint } = &cli.command {
        return ssofs::mount::unmount(mountpoint);
    }
    if let Command::GenerateDocs { dir } = &cli.command {
        return generate_docs(dir);
    }
    if let Command::Doctor { json, write_probe, options } = &cli.command {
        let (json, write_probe, options) = (*json, *write_probe, options.clone());
        return doctor_command(cli, json, write_probe, &options);
    }
    let mount_options = match &cli.command {
        Command::Mount(args) => Some(ssofs::mount::options::parse(&args.options)?),
        _ => None,
    };
    // `-o profile=P` (fstab) picks the profile when --profile does not.
    let profile_name = cli.profile.clone().or_else(|| mount_options.as_ref().and_then(|o| o.profile.clone()));
    let f = cli.overrides;
    let overrides = f.overrides();
    // `-o config=FILE` (fstab, where mount's environment has no SSOFS_CONFIG) when --config is not given.
    let config_file = cli.config.or_else(|| mount_options.as_ref().and_then(|o| o.config.clone()));
    let mut profile = config::load_profile_with(&Sources::standard(config_file), profile_name.as_deref(), &overrides)
        .map_err(|e| e.to_string())?;
    if f.duration_seconds.is_some() {
        profile.duration_seconds = f.duration_seconds;
    }
    // `-o state_dir=DIR` names the token store (fstab: root's mount may have no HOME).
    let store_dir = match mount_options.as_ref().and_then(|o| o.state_dir.clone()) {
        Some(dir) => dir,
        None => TokenStore::default_dir().map_err(|e| e.to_string())?,
    };
    let store = TokenStore::open(&store_dir).map_err(|e| e.to_string())?;
    match cli.command {
        Command::Login(args) => {
            let rt = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the async runtime: {e}"))?;
            let use_browser = args.browser || (!args.device_code && browser::available());
            // Who was signed in before, to say so when this sign-in is someone else.
            let previous = store.load(&profile.name).ok().flatten().and_then(|t| t.username);
            let tokens = rt
                .block_on(async {
                    let provider = login::discover(&profile).await?;
                    if let Some(warning) = &provider.clock_warning {
                        eprintln!("ssofs: warning: {warning}");
                    }
                    let mut out = std::io::stdout();
                    if use_browser {
                        let opts = BrowserOptions {
                            timeout: Duration::from_secs(args.timeout.max(1)),
                            login_hint: args.login_hint.clone(),
                        };
                        browser::sign_in(&provider, &profile, &mut out, &opts).await
                    } else {
                        let polling = DevicePolling {
                            interval_override: args.poll_interval.map(Duration::from_secs),
                            qr: !args.no_qr,
                        };
                        login::device_code_with(&provider, &profile, &mut out, &polling).await
                    }
                })
                .map_err(|e| e.to_string())?;
            store.save(&profile.name, &tokens).map_err(|e| e.to_string())?;
            println!(
                "Signed in as {} (profile {}).",
                tokens.username.as_deref().unwrap_or("unknown user"),
                profile.name
            );
            let account = tokens.username.as_deref().unwrap_or("an unknown account");
            for warning in login::account_warnings(account, args.login_hint.as_deref(), previous.as_deref()) {
                eprintln!("ssofs: WARNING: {warning}");
            }
            Ok(())
        }
        Command::Status { json } => {
            let mut status = match store.load(&profile.name).map_err(|e| e.to_string())? {
                Some(t) => Status::of(&profile.name, &t, login::now_unix()),
                None => Status::not_logged_in(&profile.name),
            };
            if status.logged_in {
                status.login_required = store.login_required(&profile.name).map(|m| m.reason);
            }
            if json {
                let text = serde_json::to_string_pretty(&status).map_err(|e| e.to_string())?;
                println!("{text}");
            } else {
                print!("{}", status.text());
            }
            Ok(())
        }
        Command::Token { claims: _ } => {
            let tokens = store.load(&profile.name).map_err(|e| e.to_string())?.ok_or_else(|| {
                format!("profile {}: not signed in; run `ssofs login --profile {}`", profile.name, profile.name)
            })?;
            let claims = status::claims(&tokens)?;
            let text = serde_json::to_string_pretty(&claims).map_err(|e| e.to_string())?;
            println!("{text}");
            Ok(())
        }
        Command::Logout => {
            let removed = store.remove(&profile.name).map_err(|e| e.to_string())?;
            println!("profile {}: {}", profile.name, if removed { "signed out" } else { "was not signed in" });
            Ok(())
        }
        Command::Mount(args) => {
            let mut targets = args.targets;
            let mountpoint = PathBuf::from(targets.pop().unwrap_or_default());
            let mut options = mount_options.unwrap_or_default();
            match targets.pop() {
                // One bucket, or a prefix of one, as the mount's root (the profile's endpoint).
                Some(source) if source.starts_with("s3://") => {
                    ssofs::fs::named::BucketPath::parse(&source)?;
                    options.root_bucket = Some(source);
                }
                Some(endpoint) => {
                    ssofs::config::check_endpoint(&endpoint)?;
                    profile.endpoint = Some(endpoint);
                }
                None => {}
            }
            ssofs::mount::run(ssofs::mount::MountRequest {
                profile,
                mountpoint,
                options,
                foreground: args.foreground,
                token_dir: store_dir,
            })
        }
        Command::Recover { export, cache_dir, uid, discard, mountpoint } => {
            let options = ssofs::mount::MountOptions { cache_dir, ..Default::default() };
            let dirs = recover_dirs(&options, &profile.name, mountpoint.as_deref(), uid);
            // What was found, before anything is touched.
            let found: Vec<(PathBuf, usize)> =
                dirs.into_iter().map(|d| (d.clone(), ssofs::recover::count(&d))).filter(|(_, n)| *n > 0).collect();
            if found.is_empty() {
                println!(
                    "nothing to recover for profile {}{}",
                    profile.name,
                    mountpoint.as_ref().map(|m| format!(" at {}", m.display())).unwrap_or_default()
                );
                return Ok(());
            }
            for (dir, n) in &found {
                println!("found {n} file(s) in {}", dir.display());
            }
            let mut outcome = ssofs::recover::Outcome::default();
            let mut client = None;
            let rt = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the async runtime: {e}"))?;
            for (staging, _) in &found {
                if discard {
                    let n = ssofs::recover::discard(staging)?;
                    println!("discarded {n} file(s) from {}", staging.display());
                    continue;
                }
                let one = if let Some(dir) = &export {
                    let one = ssofs::recover::export(staging, dir)?;
                    println!("exported {} file(s) to {}", one.done.len(), dir.display());
                    one
                } else {
                    if ssofs::recover::report(staging).is_none() {
                        let refused = ssofs::recover::refused_count(staging);
                        println!(
                            "{refused} upload(s) the bucket policy refused are kept in {}/refused: `--export DIR` copies \
                             them out, `--discard` deletes them",
                            staging.display()
                        );
                        continue;
                    }
                    if client.is_none() {
                        let endpoint = profile
                            .endpoint
                            .clone()
                            .ok_or_else(|| format!("profile {} has no endpoint", profile.name))?;
                        client = Some(ssofs::mount::single_user_client(&rt, &profile, &endpoint, &store_dir)?);
                    }
                    let one = rt.block_on(ssofs::recover::upload(staging, client.as_deref().expect("made above")))?;
                    for d in &one.done {
                        println!("uploaded {d}");
                    }
                    one
                };
                outcome.done.extend(one.done);
                outcome.failed.extend(one.failed);
            }
            for f in &outcome.failed {
                eprintln!("ssofs: not recovered: {f}");
            }
            if outcome.failed.is_empty() {
                Ok(())
            } else {
                Err(format!("{} file(s) could not be recovered; they are kept", outcome.failed.len()))
            }
        }
        Command::Unmount { .. } | Command::Doctor { .. } | Command::GenerateDocs { .. } => {
            unreachable!("handled before the profile is loaded")
        }
    }
}

/// The staging directories `ssofs recover` looks at: the mount `mountpoint` names, else every mount
/// of `profile` plus the staging root itself (where ssofs staged before it had one directory per
/// mount); with `uid`, that user's part of each (multi-user mounts).
fn recover_dirs(
    options: &ssofs::mount::MountOptions,
    profile: &str,
    mountpoint: Option<&std::path::Path>,
    uid: Option<u32>,
) -> Vec<PathBuf> {
    let root = ssofs::mount::staging_root(options);
    let dirs = match mountpoint {
        Some(m) => vec![ssofs::mount::staging_dir(options, profile, m)],
        None => {
            let prefix = ssofs::mount::mount_id_prefix(profile);
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect();
            dirs.sort();
            dirs.push(root);
            dirs
        }
    };
    match uid {
        Some(uid) => dirs.into_iter().map(|d| d.join(format!("uid-{uid}"))).collect(),
        None => dirs,
    }
}
