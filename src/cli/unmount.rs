//! `ssofs unmount`: asks the mount (its control socket) to upload and stop, and waits for it;
//! `fusermount3 -u` where no control socket answers.

use super::CliError;
use super::args::UnmountArgs;
use super::context::Context;

/// Returns once the mount's process has finished with the mountpoint (uploads included), so a
/// new mount on the same path can follow at once.
pub fn run(ctx: &Context, args: &UnmountArgs) -> Result<(), CliError> {
    // Without a state directory (no HOME) only root's sockets can be found; then fusermount3.
    let state_dir = ctx.state_dir().ok();
    Ok(ssofs::mount::unmount_and_wait(&args.mountpoint, state_dir.as_deref())?)
}
