//! `ssofs status`: who is signed in for the profile, and what the caller's mounts are doing (asked
//! through their control sockets: the caller's own, and the public ones of multi-user mounts, which
//! answer with the caller's own figures only). Never prints a token.

use std::time::Duration;

use ssofs::identity::login;
use ssofs::identity::status::Status;
use ssofs::metrics::report::MountReport;
use ssofs::mount::control;

use super::args::StatusArgs;
use super::{CliError, Context};

/// How long one mount may take to answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(15);

/// `--json`: the sign-in's fields as before, and the mounts.
#[derive(serde::Serialize)]
struct Everything<'a> {
    #[serde(flatten)]
    sign_in: &'a Status,
    mounts: &'a [MountReport],
}

pub fn run(ctx: &Context, args: &StatusArgs) -> Result<(), CliError> {
    let mounts = mounts(ctx);
    let status = match sign_in(ctx) {
        Ok(status) => status,
        // No profile to speak of, but mounts to show: show them, then say what is wrong.
        Err(e) if !mounts.is_empty() && !args.json => {
            print_mounts(&mounts);
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&Everything { sign_in: &status, mounts: &mounts })?);
    } else {
        print!("{}", status.text());
        print_mounts(&mounts);
    }
    Ok(())
}

fn sign_in(ctx: &Context) -> Result<Status, CliError> {
    let profile = ctx.profile()?;
    let store = ctx.store()?;
    let mut status = match store.load(&profile.name)? {
        Some(t) => Status::of(&profile.name, &t, login::now_unix()),
        None => Status::not_logged_in(&profile.name),
    };
    if status.logged_in {
        status.login_required = store.login_required(&profile.name).map(|m| m.reason);
    }
    Ok(status)
}

fn print_mounts(mounts: &[MountReport]) {
    if mounts.is_empty() {
        println!("no mounts");
    }
    for m in mounts {
        println!();
        print!("{}", m.text());
    }
}

/// The mounts whose sockets answer `status`; a socket that does not answer (a mount killed, or
/// one that is stopping) is skipped with a note on stderr.
fn mounts(ctx: &Context) -> Vec<MountReport> {
    let Ok(state_dir) = ctx.state_dir() else { return Vec::new() };
    let mut found = Vec::new();
    for socket in control::reachable_sockets(&state_dir) {
        match control::ask(&socket, "status", ASK_TIMEOUT) {
            Ok(answer) => match serde_json::from_str::<MountReport>(answer.trim()) {
                Ok(report) => found.push(report),
                // A mount of an older ssofs knows only `stop`.
                Err(_) if answer.starts_with("error: unknown command") => {
                    eprintln!("ssofs: {}: a mount of an older ssofs, which cannot report", socket.display())
                }
                Err(_) => eprintln!("ssofs: {} answered {:?}", socket.display(), answer.trim()),
            },
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Err(e) => eprintln!("ssofs: {}: {e}", socket.display()),
        }
    }
    found.sort_by(|a, b| a.mountpoint.cmp(&b.mountpoint));
    found
}
