//! `ssofs logout`: forget the profile's stored tokens.

use super::{CliError, Context};

pub fn run(ctx: &Context) -> Result<(), CliError> {
    let profile = ctx.profile()?;
    let removed = ctx.store()?.remove(&profile.name)?;
    println!("profile {}: {}", profile.name, if removed { "signed out" } else { "was not signed in" });
    Ok(())
}
