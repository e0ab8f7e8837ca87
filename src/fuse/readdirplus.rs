//! READDIRPLUS: directory entries with their attributes, each one an inode the kernel then holds.

use fuser::{FileHandle, Generation, INodeNo, ReplyDirectoryPlus, Request};

use super::EMPTY_DIR;
use super::dispatch::FuseAdapter;
use super::reply::{ErrorReply, failed, to_attr};

/// Entries (the dots included) of a READDIRPLUS reply once the mount is past `readdirplus_inodes`.
/// Not 1: a kernel that does not grant READDIRPLUS_AUTO asks with READDIRPLUS every time, and 64
/// entries per request keeps a listing workable there.
const PLUS_ENTRIES_WHEN_FULL: usize = 64;

impl FuseAdapter {
    /// A READDIRPLUS: each entry goes out with its attributes and a counted reference to its inode.
    pub(super) fn serve_readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let entries = match self.dir_snapshot(fh) {
            Ok(entries) => entries,
            Err(e) => return reply.fail(failed("readdirplus", &e)),
        };
        let ttl = self.ttl();
        // The filesystem that opened the directory (the caller's, open by now).
        let fs = if fh.0 == EMPTY_DIR { None } else { self.fs_of_handle(fh).ok().map(|(fs, _)| fs) };
        let mut me = fs
            .as_ref()
            .and_then(|fs| fs.root_stat().ok())
            .unwrap_or_else(|| self.resolver.bare_root(req.uid(), req.gid()));
        me.ino = ino.0;
        let dots = [(".".to_string(), me.clone()), ("..".to_string(), me)];
        // Past the mount's inode budget, a few entries with attributes and the rest by READDIR.
        let plus = match &fs {
            Some(fs) if fs.listings_give_names_only() => PLUS_ENTRIES_WHEN_FULL,
            _ => usize::MAX,
        };
        let all = dots.into_iter().map(|(name, stat)| (name, stat, None)).chain(entries.iter().map(|e| {
            // Entries (not the dots) hand the kernel a reference, as a lookup does: their inodes
            // are made and counted as they go out.
            (e.name.clone(), e.stat.clone(), Some(e))
        }));
        for (i, (name, stat, entry)) in all.enumerate().skip(offset as usize).take(plus) {
            let (stat, counted) = match (entry, &fs) {
                (Some(e), Some(fs)) => (fs.hand_out(ino.0, e), true),
                _ => (stat, false),
            };
            if reply.add(INodeNo(stat.ino), (i + 1) as u64, &name, &ttl, &to_attr(&stat), Generation(0)) {
                // The reply is full: this one was not sent after all.
                if let (true, Some(fs)) = (counted, &fs) {
                    fs.forget(stat.ino, 1);
                }
                break;
            }
        }
        crate::metrics::series::fuse_op("readdirplus", 0);
        reply.ok();
    }
}
