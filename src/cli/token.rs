//! `ssofs token --claims`: what the stored ID token says, never the token itself.

use ssofs::identity::status;

use super::args::TokenArgs;
use super::{CliError, Context};

pub fn run(ctx: &Context, args: &TokenArgs) -> Result<(), CliError> {
    let profile = ctx.profile()?;
    let tokens = ctx.store()?.load(&profile.name)?.ok_or_else(|| CliError::NotSignedIn(profile.name.clone()))?;
    // clap requires --claims: ssofs does not print tokens, only what they say.
    if args.claims {
        let claims = status::claims(&tokens).map_err(CliError::Claims)?;
        println!("{}", serde_json::to_string_pretty(&claims)?);
    }
    Ok(())
}
