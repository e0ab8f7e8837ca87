//! The `ssofs` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use ssofs::config::{self, Sources};
use ssofs::identity::{TokenStore, login};

/// Log in to Azure AD (Entra ID) and use your MinIO buckets with short-lived per-user credentials.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Extra config file, read after /etc/ssofs/config.toml and ~/.config/ssofs/config.toml (env: SSOFS_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Profile to use (default: `default_profile` from the config, or the only profile).
    #[arg(long, global = true, value_name = "P")]
    profile: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign in with the device-code flow and store the tokens (state dir: $SSOFS_STATE_DIR or ~/.local/state/ssofs).
    Login,
    /// Show who is signed in for the profile and until when.
    Status,
    /// Forget the stored tokens of the profile.
    Logout,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("SSOFS_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ssofs: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let profile =
        config::load_profile(&Sources::standard(cli.config), cli.profile.as_deref()).map_err(|e| e.to_string())?;
    let store_dir = TokenStore::default_dir().map_err(|e| e.to_string())?;
    let store = TokenStore::open(&store_dir).map_err(|e| e.to_string())?;
    match cli.command {
        Command::Login => {
            let rt = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the async runtime: {e}"))?;
            let tokens =
                rt.block_on(login::device_code(&profile, &mut std::io::stdout())).map_err(|e| e.to_string())?;
            store.save(&profile.name, &tokens).map_err(|e| e.to_string())?;
            println!(
                "Signed in as {} (profile {}).",
                tokens.username.as_deref().unwrap_or("unknown user"),
                profile.name
            );
            Ok(())
        }
        Command::Status => {
            match store.load(&profile.name).map_err(|e| e.to_string())? {
                Some(t) => println!(
                    "profile {}: signed in as {}; ID token valid until {}; refresh token {}",
                    profile.name,
                    t.username.as_deref().unwrap_or("unknown user"),
                    time::OffsetDateTime::from_unix_timestamp(t.id_token_expires_at)
                        .ok()
                        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
                        .unwrap_or_else(|| t.id_token_expires_at.to_string()),
                    if t.refresh_token.is_some() { "present" } else { "absent" }
                ),
                None => {
                    println!("profile {}: not signed in; run `ssofs login --profile {}`", profile.name, profile.name)
                }
            }
            Ok(())
        }
        Command::Logout => {
            let removed = store.remove(&profile.name).map_err(|e| e.to_string())?;
            println!("profile {}: {}", profile.name, if removed { "signed out" } else { "was not signed in" });
            Ok(())
        }
    }
}
