//! When the kernel may keep its cached pages of a file across opens: only when the object is the
//! same version (ETag) as at its previous open, and this mount holds no newer copy of it. Every
//! other open starts with the pages dropped, so a change behind the mount's back is read anew.

use std::collections::{HashMap, HashSet};

use super::{Fs, superblock};

#[derive(Default)]
pub(crate) struct PageCachePolicy {
    /// The ETag of each file when it was last opened for reading (entries leave with the inode).
    opened_etag: HashMap<u64, String>,
    /// Read handles whose file is unchanged since its previous open.
    keep: HashSet<u64>,
}

impl PageCachePolicy {
    /// The next read open of `ino` must not keep pages from before: a writer opened it, or the
    /// kernel forgot it.
    pub(crate) fn forget_inode(&mut self, ino: u64) {
        self.opened_etag.remove(&ino);
    }

    pub(crate) fn handle_closed(&mut self, fh: u64) {
        self.keep.remove(&fh);
    }

    pub(crate) fn len(&self) -> usize {
        self.opened_etag.len() + self.keep.len()
    }
}

impl Fs {
    /// Whether the kernel may keep its cached pages for this (read) handle: the object has the same
    /// ETag as when it was last opened.
    pub fn keep_cache(&self, fh: u64) -> bool {
        self.state.lock().unwrap().page_cache.keep.remove(&fh)
    }

    /// A read handle was opened on `ino`: when the object is unchanged since its previous open, the
    /// kernel may keep its cached pages.
    pub(crate) fn note_read_open(&self, fh: u64, ino: u64) {
        let mut st = self.state.lock().unwrap();
        let Some(etag) = st.meta.inodes.get(ino).and_then(|i| i.attr.etag.clone()) else { return };
        if st.meta.local_only.contains(&ino) || superblock::held_locally(&st, ino) {
            return;
        }
        let policy = &mut st.page_cache;
        if policy.opened_etag.insert(ino, etag.clone()).as_ref() == Some(&etag) {
            policy.keep.insert(fh);
        }
    }
}
