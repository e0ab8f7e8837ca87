//! `ssofs mount [ENDPOINT|s3://BUCKET[/PREFIX]] MOUNTPOINT`.

use std::path::PathBuf;

use ssofs::mount::MountRequest;

use super::args::MountArgs;
use super::{CliError, Context};

pub fn run(ctx: &Context, args: MountArgs) -> Result<(), CliError> {
    let mut profile = ctx.profile()?.clone();
    // Opened (and created) here: the background mount writes its log next to the tokens.
    let state_dir = ctx.store()?.dir().to_path_buf();
    let mut targets = args.targets;
    let mountpoint = PathBuf::from(targets.pop().unwrap_or_default());
    let mut options = ctx.options.clone();
    match targets.pop() {
        // One bucket, or a prefix of one, as the mount's root (the profile's endpoint).
        Some(source) if source.starts_with("s3://") => {
            ssofs::fs::named::BucketPath::parse(&source).map_err(CliError::BadTarget)?;
            options.root_bucket = Some(source);
        }
        Some(endpoint) => {
            ssofs::config::check_endpoint(&endpoint).map_err(CliError::BadTarget)?;
            profile.endpoint = Some(endpoint);
        }
        None => {}
    }
    let foreground = args.foreground;
    Ok(ssofs::mount::run(MountRequest { profile, mountpoint, options, foreground, state_dir })?)
}
