//! `ssofs unmount`: the same as `fusermount3 -u`; the serving process uploads and exits.

use super::CliError;
use super::args::UnmountArgs;

pub fn run(args: &UnmountArgs) -> Result<(), CliError> {
    Ok(ssofs::mount::unmount(&args.mountpoint)?)
}
