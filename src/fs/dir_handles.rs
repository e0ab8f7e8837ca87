//! Directory handles: the listing is taken once, at opendir, so a `readdir` that pages through a
//! large directory in several calls sees one consistent snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use super::{DirEntry, Fs, FsResult};

#[derive(Default)]
pub(crate) struct DirHandles {
    open: HashMap<u64, Arc<Vec<DirEntry>>>,
    next_fh: u64,
}

impl DirHandles {
    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }
}

impl Fs {
    /// Opens directory `ino`: its entries now, kept until [`Fs::releasedir`].
    pub async fn opendir(&self, ino: u64) -> FsResult<u64> {
        let entries = Arc::new(self.readdir(ino).await?);
        let mut st = self.state.lock().unwrap();
        st.dirs.next_fh += 1;
        let fh = st.dirs.next_fh;
        st.dirs.open.insert(fh, entries);
        Ok(fh)
    }

    /// The snapshot taken when `fh` was opened.
    pub fn dir_entries(&self, fh: u64) -> Option<Arc<Vec<DirEntry>>> {
        self.state.lock().unwrap().dirs.open.get(&fh).cloned()
    }

    pub fn releasedir(&self, fh: u64) {
        self.state.lock().unwrap().dirs.open.remove(&fh);
    }
}
