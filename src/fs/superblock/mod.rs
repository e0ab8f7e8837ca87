//! What the mount knows about names, with one owner: the inode table, directory listings, and
//! names known not to exist (negative entries), each trusted for its TTL; and the lookups,
//! listings and attribute reads (HEAD) that fill them. Listings are fetched in `listings`, and ahead
//! of a walker (`find`) in `prefetch`.

use std::time::Instant;

use super::inode::{Attr, Inode, Kind};
use super::names::{self, SHADOWED_OBJECT_SUFFIX};
use super::{DirEntry, Fs, FsError, FsResult, Stat, State};
use crate::object::{ObjectError, ObjectInfo};

mod listings;
mod maps;
mod prefetch;

pub(crate) use self::maps::{Entry, Listing, Metadata};
pub use self::maps::{Limits, MapSizes};
pub(crate) use self::prefetch::Prefetch;

impl Fs {
    pub async fn readdir(&self, ino: u64) -> FsResult<Vec<DirEntry>> {
        let dir = self.inode(ino)?;
        if !dir.kind.is_dir() {
            return Err(FsError::NotDir);
        }
        let listing = self.listing(&dir).await?;
        self.walk_ahead(&dir, listing.entries.len());
        let mut st = self.state.lock().unwrap();
        Ok(listing
            .entries
            .iter()
            .map(|e| {
                let attr = self.entry_attr(e);
                // Names the kernel already holds get the listing's news; the others stay numbers
                // until a lookup or a readdirplus hands them out (`hand_out`): a `find` over a
                // million objects made a million inodes (about 600 bytes each) and kept the last
                // 30 s of them, 64 MiB per 100,000 entries walked.
                let stat = match st.meta.inodes.child(ino, &e.name).filter(|i| i.kind == e.kind) {
                    Some(_) => self.stat(&upsert_seen(&mut st, ino, &e.name, e.kind, attr, e.key.clone())),
                    None => {
                        let number = st.meta.inodes.number_of_new(ino, &e.name, e.kind, e.key.clone());
                        self.stat_of(number, e.kind, &attr)
                    }
                };
                DirEntry { name: e.name.clone(), stat, listed: e.clone() }
            })
            .collect())
    }

    /// Whether the mount holds `readdirplus_inodes` inodes already. A READDIRPLUS reply then carries
    /// only a few entries with attributes: the kernel asks for the rest with a plain READDIR (it
    /// only comes back to READDIRPLUS once something looks up an entry), which makes no inode here
    /// or in the kernel. Why: an entry handed out with attributes is an inode the kernel holds until
    /// it forgets it, about 0.7 KiB here each, and the kernel answers a whole directory of 1,000 with
    /// one READDIRPLUS: a `find` of 1,000,000 objects made 1,000,000 of them (about 700 MiB).
    pub fn listings_give_names_only(&self) -> bool {
        let st = self.state.lock().unwrap();
        st.meta.inodes.len() >= st.meta.limits.readdirplus_inodes
    }

    /// A directory entry handed to the kernel with a reference (readdirplus): its inode, made now
    /// if need be, with the reference counted. Returns its attributes (the number may differ from
    /// the entry's in the rare case of a collision).
    pub fn hand_out(&self, parent: u64, entry: &DirEntry) -> Stat {
        let e = &entry.listed;
        let attr = self.entry_attr(e);
        let mut st = self.state.lock().unwrap();
        let inode = upsert_seen(&mut st, parent, &e.name, e.kind, attr, e.key.clone());
        st.meta.inodes.add_lookup(inode.ino);
        self.stat(&inode)
    }

    // ---- lookup and attributes ---------------------------------------------------------------

    /// A kernel lookup: `name` in `parent`, with the kernel's reference to it counted (see
    /// [`Fs::forget`]).
    pub async fn lookup(&self, parent: u64, name: &str) -> FsResult<Stat> {
        let stat = self.find(parent, name).await?;
        self.count_kernel_lookup(stat.ino);
        Ok(stat)
    }

    /// What `name` in `parent` is, from what the mount knows or from S3.
    pub(crate) async fn find(&self, parent: u64, name: &str) -> FsResult<Stat> {
        let dir = self.inode(parent)?;
        if !dir.kind.is_dir() {
            return Err(FsError::NotDir);
        }
        if !names::usable(name) {
            return Err(FsError::NotFound);
        }
        // A fresh listing answers without asking S3: `ls -l` after `ls` costs nothing.
        let cached = self.state.lock().unwrap().meta.fresh_entry(parent, name, self.config.dir_ttl);
        let listed = match cached {
            Some(entry) => Some(entry),
            None if dir.kind == Kind::Root && dir.bucket.is_empty() => {
                Some(self.listing(&dir).await?.entries.into_iter().find(|e| e.name == name))
            }
            None => self.prefetched_entry(parent, name).await,
        };
        if let Some(entry) = listed {
            let Some(e) = entry else {
                return Err(FsError::NotFound);
            };
            let attr = self.entry_attr(&e);
            let inode = upsert_seen(&mut self.state.lock().unwrap(), parent, &e.name, e.kind, attr, e.key.clone());
            return self.with_meta(inode).await;
        }
        // A file this mount holds (created and not uploaded yet, or being written): its own inode,
        // whatever S3 says now.
        {
            let st = self.state.lock().unwrap();
            if let Some(child) = st.meta.inodes.child(parent, name)
                && (st.meta.local_only.contains(&child.ino) || held_locally(&st, child.ino))
            {
                return Ok(self.stat(&child.clone()));
            }
        }
        if self.state.lock().unwrap().meta.known_missing(parent, name) {
            return Err(FsError::NotFound);
        }
        let (kind, attr, key) = self.probe(&dir, name).await?;
        let inode = upsert_seen(&mut self.state.lock().unwrap(), parent, name, kind, attr, key);
        Ok(self.stat(&inode))
    }

    /// A file known only from a listing: one HEAD reads its metadata (mode, mtime, owner; whether it
    /// is a symlink), once per version. Skipped when metadata is off or the file is this mount's own.
    async fn with_meta(&self, inode: Inode) -> FsResult<Stat> {
        if inode.kind.is_dir() || inode.attr.meta.known || !self.config.metadata || self.is_local_only(inode.ino) {
            return Ok(self.stat(&inode));
        }
        match self.refresh_attr(&inode).await {
            Ok(fresh) => Ok(self.stat(&fresh)),
            // Gone since the listing: as a lookup of a missing name.
            Err(FsError::NotFound) => Err(FsError::NotFound),
            Err(e) => {
                tracing::debug!(key = %inode.key, error = %e, "metadata not read; listing attributes used");
                Ok(self.stat(&inode))
            }
        }
    }

    fn entry_attr(&self, e: &Entry) -> Attr {
        if e.kind.is_dir() { self.dir_attr() } else { self.fresh_attr(e.size, e.mtime, e.etag.clone()) }
    }

    /// Asks S3 what `name` in `dir` is: a prefix (directory) wins over an object of the same name.
    async fn probe(&self, dir: &Inode, name: &str) -> FsResult<(Kind, Attr, Option<String>)> {
        let (object_key, shadowed) = match name.strip_suffix(SHADOWED_OBJECT_SUFFIX) {
            Some(base) if !base.is_empty() => (dir.child_key(base), true),
            _ => (dir.child_key(name), false),
        };
        let prefix = format!("{}{name}/", dir.key);
        let plain_key = dir.child_key(name);
        let (head, listed) =
            tokio::join!(self.client.head(&dir.bucket, &plain_key), self.client.has_entries(&dir.bucket, &prefix));
        let is_dir = match listed {
            Ok(any) => any,
            Err(ObjectError::NotFound) => false,
            Err(e) => return Err(e.into()),
        };
        if is_dir && !shadowed {
            return Ok((Kind::Dir, self.dir_attr(), None));
        }
        let head = if shadowed { self.client.head(&dir.bucket, &object_key).await } else { head };
        match head {
            Ok(o) => Ok((Kind::File, self.head_attr(o), shadowed.then_some(object_key))),
            Err(ObjectError::NotFound) => {
                let until = Instant::now() + self.config.negative_ttl;
                self.state.lock().unwrap().meta.note_missing(dir.ino, name, until);
                Err(FsError::NotFound)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn getattr(&self, ino: u64) -> FsResult<Stat> {
        let inode = self.inode(ino)?;
        if inode.kind.is_dir() || inode.attr.valid_until > Instant::now() || self.open_for_write(ino) {
            return Ok(self.stat(&inode));
        }
        let o = self.client.head(&inode.bucket, &inode.key).await?;
        let attr = self.head_attr(o);
        let mut st = self.state.lock().unwrap();
        st.meta.inodes.set_attr(ino, attr);
        let inode = st.meta.inodes.get(ino).cloned().ok_or(FsError::NotFound)?;
        Ok(self.stat(&inode))
    }

    pub(crate) async fn refresh_attr(&self, inode: &Inode) -> FsResult<Inode> {
        let o = self.client.head(&inode.bucket, &inode.key).await?;
        let attr = self.head_attr(o);
        let mut st = self.state.lock().unwrap();
        if !held_locally(&st, inode.ino) {
            st.meta.inodes.set_attr(inode.ino, attr);
        }
        st.meta.inodes.get(inode.ino).cloned().ok_or(FsError::NotFound)
    }

    /// This mount's own change is visible at once: attributes and the parent's listing are updated.
    pub(crate) fn uploaded(&self, ino: u64, key: &str, info: ObjectInfo) {
        let mut st = self.state.lock().unwrap();
        let attr = Attr {
            size: info.size,
            mtime: info.last_modified,
            etag: Some(info.etag.clone()),
            valid_until: Instant::now() + self.config.attr_ttl,
            meta: info.meta,
        };
        st.meta.inodes.set_attr(ino, attr);
        if let Some(parent) = st.meta.inodes.get(ino).map(|i| i.parent) {
            let name = key.rsplit('/').next().unwrap_or(key);
            st.meta.list(parent, Entry::file(name, &info));
        }
    }

    /// Created here and not uploaded yet.
    pub(crate) fn is_local_only(&self, ino: u64) -> bool {
        self.state.lock().unwrap().meta.local_only.contains(&ino)
    }

    /// A file created here is listed, looked up and unlinked like any other before its upload.
    pub(crate) fn show_local_file(&self, parent: u64, name: &str, ino: u64) {
        let mut st = self.state.lock().unwrap();
        st.meta.local_only.insert(ino);
        st.meta.list_if_missing(parent, Entry { kind: Kind::File, size: 0, etag: None, ..Entry::dir(name) });
    }

    /// The kernel took a reference to `ino` (an entry reply: lookup, create, mkdir, readdirplus).
    pub fn count_kernel_lookup(&self, ino: u64) {
        self.state.lock().unwrap().meta.inodes.add_lookup(ino);
    }

    /// How many entries each of the filesystem's maps holds (for tests and status: all of them must
    /// stay bounded on a mount that runs for weeks).
    pub fn map_sizes(&self) -> MapSizes {
        let st = self.state.lock().unwrap();
        MapSizes {
            inodes: st.meta.inodes.len(),
            listings: st.meta.listing_count(),
            negative: st.meta.negative_count(),
            open_files: st.files.len(),
            dir_handles: st.dirs.len(),
            page_cache: st.page_cache.len(),
        }
    }

    /// Sweeps the metadata maps now, dropping inodes nobody holds that were not described within
    /// `grace` (for tests and status).
    pub fn sweep_metadata(&self, grace: std::time::Duration) {
        self.state.lock().unwrap().sweep(Some(grace));
    }

    /// The kernel dropped `n` references to `ino`: at zero, the inode and what hangs on it go.
    pub fn forget(&self, ino: u64, n: u64) {
        let mut st = self.state.lock().unwrap();
        if st.meta.inodes.forget(ino, n) {
            st.meta.drop_listing(ino);
            st.page_cache.forget_inode(ino);
        }
    }
}

/// Whether this mount holds a staged copy of `ino`: then its own size and times are the file's,
/// newer than anything a listing or a HEAD says.
pub(crate) fn held_locally(st: &State, ino: u64) -> bool {
    st.files.open.get(&ino).is_some_and(|e| e.staged_or_busy())
}

/// Records what S3 says about `parent/name` (a listing, a HEAD), unless this mount holds a staged
/// copy of that file (a lookup while it is being written used to put the listing's older size
/// back, and the kernel then cut the file to it: found by the fsx-style test).
pub(crate) fn upsert_seen(
    st: &mut State,
    parent: u64,
    name: &str,
    kind: Kind,
    attr: Attr,
    key: Option<String>,
) -> Inode {
    if let Some(existing) = st.meta.inodes.child(parent, name)
        && existing.kind == kind
        && held_locally(st, existing.ino)
    {
        return existing.clone();
    }
    // Where the table grows, under the lock already held: cheap unless a sweep is due.
    st.sweep(None);
    st.meta.inodes.upsert_with_key(parent, name, kind, attr, key)
}

impl State {
    /// Drops what is due to go from the metadata maps (see `maps`), and the page-cache notes of the
    /// inodes that went. With `grace`, now; without, only when a sweep is due.
    pub(crate) fn sweep(&mut self, grace: Option<std::time::Duration>) {
        let State { meta, files, page_cache, prefetch, .. } = self;
        let in_use = |ino| files.open.contains_key(&ino);
        let dir_ttl = meta.dir_ttl;
        let walked = |ino| prefetch.walking(ino, dir_ttl);
        let removed = match grace {
            Some(grace) => meta.sweep(grace, in_use, walked),
            None => meta.sweep_if_due(in_use, walked),
        };
        for ino in removed {
            page_cache.forget_inode(ino);
        }
    }
}
