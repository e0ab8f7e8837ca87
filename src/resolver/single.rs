//! A mount with one identity: the user who mounted it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::FsResolver;
use crate::fs::inode::ROOT;
use crate::fs::{Fs, FsError, Stat};

/// A mount with one identity: every request is served by the same filesystem.
pub struct SingleUser(pub Arc<Fs>);

impl FsResolver for SingleUser {
    fn for_uid(&self, _uid: u32, _gid: u32) -> Result<(u16, Arc<Fs>), FsError> {
        Ok((0, self.0.clone()))
    }
    fn for_slot(&self, slot: u16) -> Option<Arc<Fs>> {
        (slot == 0).then(|| self.0.clone())
    }
    fn ttl(&self) -> Duration {
        self.0.config().attr_ttl
    }
    fn direct_io(&self) -> bool {
        false
    }
    fn writeback_cache(&self) -> bool {
        self.0.config().writeback_cache
    }
    fn forget(&self, ino: u64, n: u64) {
        self.0.forget(ino, n);
    }
    fn all(&self) -> Vec<Arc<Fs>> {
        vec![self.0.clone()]
    }
    fn bare_root(&self, _uid: u32, _gid: u32) -> Stat {
        self.0.root_stat().unwrap_or_else(|_| Stat {
            symlink: false,
            ino: ROOT,
            is_dir: true,
            size: 0,
            mtime: SystemTime::now(),
            perm: 0o755,
            uid: 0,
            gid: 0,
        })
    }
}
