//! One module per command (uv's `commands/<name>.rs`); this file parses the command line and
//! dispatches. Each command gets a [`Context`] that loads the profile, the token store and the
//! async runtime only when the command asks for them.

mod args;
mod context;
mod doctor;
mod error;
mod generate_docs;
mod init;
mod login;
mod logout;
mod mount;
mod progress;
mod recover;
mod status;
mod token;
mod unmount;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

pub use args::{Cli, Command};
pub use context::Context;
pub use error::CliError;

/// The clap command with the parts written at run time: `ssofs mount --help` lists the `-o`
/// options from their table. Parsing, the man pages and the completions all use this one.
pub fn command() -> clap::Command {
    Cli::command().mut_subcommand("mount", |c| c.after_long_help(ssofs::mount::options::help()))
}

/// Parses the command line (exits with clap's message on an error, as `Cli::parse` does).
pub fn parse() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

impl Command {
    /// The `-o` options given to the command (mount and doctor take them).
    pub fn mount_options(&self) -> &[String] {
        match self {
            Command::Mount(a) => &a.options,
            Command::Doctor(a) => &a.options,
            _ => &[],
        }
    }
}

/// Runs the command; the exit code is failure only when the command reported its failure itself
/// (doctor).
pub fn run(ctx: &Context, command: Command) -> Result<ExitCode, CliError> {
    let done = |r: Result<(), CliError>| r.map(|()| ExitCode::SUCCESS);
    match command {
        Command::Login(a) => done(login::run(ctx, &a)),
        Command::Status(a) => done(status::run(ctx, &a)),
        Command::Token(a) => done(token::run(ctx, &a)),
        Command::Logout => done(logout::run(ctx)),
        Command::Mount(a) => done(mount::run(ctx, a)),
        Command::Recover(a) => done(recover::run(ctx, &a)),
        Command::Unmount(a) => done(unmount::run(ctx, &a)),
        Command::Doctor(a) => doctor::run(ctx, &a),
        Command::Init(a) => init::run(ctx, &a),
        Command::GenerateDocs(a) => done(generate_docs::run(&a)),
    }
}
