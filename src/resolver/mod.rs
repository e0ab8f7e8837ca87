//! Which filesystem serves a kernel request: the mount's one identity ([`SingleUser`]), or, in a
//! multi-user mount, the calling Unix user's own ([`MultiUser`]). The FUSE adapter asks a resolver
//! and never knows which kind it has.

mod multi;
mod single;

use std::sync::Arc;
use std::time::Duration;

pub use self::multi::{IDLE_DROP, MultiUser};
pub use self::single::SingleUser;
use crate::fs::{Fs, FsError, Stat};

/// Picks the filesystem for each request.
pub trait FsResolver: Send + Sync + 'static {
    /// The filesystem of the user making the request, and its slot.
    fn for_uid(&self, uid: u32, gid: u32) -> Result<(u16, Arc<Fs>), FsError>;
    /// [`FsResolver::for_uid`] when it needs no I/O (the identity is open, or known to have no
    /// login); `None` when answering means opening the identity (reading the user's token store and
    /// building their client), which the FUSE adapter then does off its worker threads.
    fn for_uid_now(&self, uid: u32, gid: u32) -> Option<Result<(u16, Arc<Fs>), FsError>> {
        Some(self.for_uid(uid, gid))
    }
    /// The filesystem that handed out handles of `slot`.
    fn for_slot(&self, slot: u16) -> Option<Arc<Fs>>;
    /// How long the kernel may keep entries and attributes (0 when users must not share them).
    fn ttl(&self) -> Duration;
    /// Bypass the kernel's page cache, so no user is ever served another user's pages.
    fn direct_io(&self) -> bool;
    /// Let the kernel keep written pages and send them in large writes (`-o writeback_cache`).
    fn writeback_cache(&self) -> bool {
        false
    }
    /// The kernel dropped references to `ino`.
    fn forget(&self, ino: u64, n: u64);
    /// The root directory as shown to a user who has no filesystem (no login).
    fn bare_root(&self, uid: u32, gid: u32) -> Stat;
    /// Every filesystem in memory, for flushing data being written before unmount.
    fn all(&self) -> Vec<Arc<Fs>>;
}
