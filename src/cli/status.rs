//! `ssofs status`: who is signed in for the profile. Never prints a token.

use ssofs::identity::login;
use ssofs::identity::status::Status;

use super::args::StatusArgs;
use super::{CliError, Context};

pub fn run(ctx: &Context, args: &StatusArgs) -> Result<(), CliError> {
    let profile = ctx.profile()?;
    let store = ctx.store()?;
    let mut status = match store.load(&profile.name)? {
        Some(t) => Status::of(&profile.name, &t, login::now_unix()),
        None => Status::not_logged_in(&profile.name),
    };
    if status.logged_in {
        status.login_required = store.login_required(&profile.name).map(|m| m.reason);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", status.text());
    }
    Ok(())
}
