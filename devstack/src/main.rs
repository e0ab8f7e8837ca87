//! `ssofs-devstack`: run the embedded Azure AD and MinIO stand-ins.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Embedded stand-ins for Azure AD (OpenID provider) and MinIO (S3 + STS) for the ssofs demo and tests.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start both servers on 127.0.0.1, write DIR/devstack.env and DIR/ssofs.toml, run until SIGINT/SIGTERM.
    Up(UpArgs),
}

#[derive(clap::Args)]
struct UpArgs {
    /// Where objects, devstack.env and ssofs.toml live.
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
    /// Sign this user in without asking (alice, oscar, eve, bob).
    #[arg(long, value_name = "USER")]
    auto_approve: Option<String>,
    /// Identity provider port (0 = any free port).
    #[arg(long, default_value_t = 0)]
    idp_port: u16,
    /// S3/STS port (0 = any free port).
    #[arg(long, default_value_t = 0)]
    s3_port: u16,
    /// ID token lifetime (e.g. 3600, 90s, 1h).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    id_token_lifetime: Duration,
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    access_token_lifetime: Duration,
    #[arg(long, default_value = "90d", value_parser = parse_duration)]
    refresh_token_lifetime: Duration,
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    device_code_lifetime: Duration,
    /// Polling interval the device-code endpoint asks clients for.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    device_code_interval: Duration,
    /// Lowest STS DurationSeconds accepted (MinIO: 900 s). Lower it to make credentials expire quickly in tests.
    #[arg(long, default_value = "900s", value_parser = parse_duration)]
    sts_min_duration: Duration,
    /// Token claim whose values name MinIO policies (MinIO's claim_name).
    #[arg(long, default_value = "groups")]
    sts_claim_name: String,
    /// Turn Azure's "Allow public client flows" off (device code then fails with AADSTS7000218).
    #[arg(long)]
    no_public_client_flows: bool,
    /// Serve HTTPS with a test certificate; the test CA is written to DIR/ca.pem and named as
    /// `ca_file` in DIR/ssofs.toml.
    #[arg(long)]
    tls: bool,
    /// With --tls: the S3/STS endpoint's certificate is issued by a second test CA (ca.pem holds both).
    #[arg(long, requires = "tls")]
    tls_two_cas: bool,
}

/// Seconds as a bare number, or a humantime duration such as `90s`, `15m`, `1h`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s).map_err(|e| format!("{e} (use seconds, or a duration like 90s, 15m, 1h)"))
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DEVSTACK_LOG").unwrap_or_else(|_| "info,s3s=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let Command::Up(args) = cli.command;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ssofs-devstack: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(up(args))
}

async fn up(args: UpArgs) -> std::process::ExitCode {
    if let Some(user) = &args.auto_approve
        && ssofs_devstack::scenario::find_user(user).is_none()
    {
        eprintln!("ssofs-devstack: unknown user {user:?} for --auto-approve (known: alice, oscar, eve, bob)");
        return std::process::ExitCode::from(2);
    }
    let cfg = ssofs_devstack::Config {
        idp_port: args.idp_port,
        s3_port: args.s3_port,
        auto_approve: args.auto_approve,
        id_token_lifetime: args.id_token_lifetime,
        access_token_lifetime: args.access_token_lifetime,
        refresh_token_lifetime: args.refresh_token_lifetime,
        device_code_lifetime: args.device_code_lifetime,
        device_code_interval: args.device_code_interval,
        sts_min_duration: args.sts_min_duration,
        sts_claim_name: args.sts_claim_name,
        public_client_flows: !args.no_public_client_flows,
        tls: args.tls,
        tls_two_cas: args.tls_two_cas,
        ..ssofs_devstack::Config::new(args.state_dir)
    };
    let running = match ssofs_devstack::start(cfg).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ssofs-devstack: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("{}", running.summary());
    wait_for_signal().await;
    eprintln!("ssofs-devstack: shutting down");
    running.shutdown().await;
    std::process::ExitCode::SUCCESS
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        // Without signal handlers, Ctrl-C still ends the process; just park.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
