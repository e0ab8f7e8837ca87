//! The `ssofs` command: parse, start logging, run the command (one module each under `cli/`).

#![deny(clippy::undocumented_unsafe_blocks)]

use std::process::ExitCode;

mod cli;
mod logging;

fn main() -> ExitCode {
    let cli = cli::parse();
    let options = match ssofs::mount::options::parse(cli.command.mount_options()) {
        Ok(options) => options,
        Err(e) => return fail(e),
    };
    // `-o log_level=`/`log_file=` (mount, doctor) and --log-file pick the log; see logging.rs.
    let mut level = options.log_level.as_deref().map(ssofs::mount::options::log_filter);
    // doctor reports failures itself; the layers' warnings about them would only repeat it.
    let log_env_set = std::env::var_os("SSOFS_LOG").is_some() || std::env::var_os("RUST_LOG").is_some();
    if level.is_none() && !log_env_set && matches!(cli.command, cli::Command::Doctor(_)) {
        level = Some("error".into());
    }
    let log_file = cli.log_file.clone().or_else(|| options.log_file.clone());
    if let Err(message) = logging::init(level.as_deref(), log_file.as_deref()) {
        return fail(message);
    }
    let ctx = cli::Context::new(&cli, options);
    cli::run(&ctx, cli.command).unwrap_or_else(fail)
}

fn fail(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("ssofs: {error}");
    ExitCode::FAILURE
}
