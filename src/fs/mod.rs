//! The filesystem, independent of FUSE: buckets at the root, prefixes as directories, objects as
//! files; metadata and listings cached with TTLs; reads through the block cache with read-ahead;
//! writes staged locally and uploaded on flush. `crate::fuse` adapts it to the kernel.

pub mod cache;
pub mod disk_cache;
pub mod error;
pub mod handles;
pub mod inode;
pub(crate) mod listing;
pub mod named;
pub mod names;
pub mod read;
pub mod staging;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use self::cache::BlockCache;
pub use self::error::{FsError, FsResult};
use self::inode::{Attr, Inode, InodeTable, Kind, ROOT};
use self::names::SHADOWED_OBJECT_SUFFIX;
use crate::object::{ObjectClient, ObjectError, ObjectInfo};

/// Mount options that shape what the filesystem shows and how long it trusts what it saw.
#[derive(Debug, Clone)]
pub struct FsConfig {
    pub uid: u32,
    pub gid: u32,
    pub file_mode: u16,
    pub dir_mode: u16,
    pub attr_ttl: Duration,
    pub dir_ttl: Duration,
    /// How long "no such file" is remembered.
    pub negative_ttl: Duration,
    pub cache_size: usize,
    /// Where evicted blocks spill, and how many bytes they may take there (off when `None`).
    pub disk_cache: Option<(PathBuf, u64)>,
    pub read_only: bool,
    /// Where files being written are staged (per user, 0700).
    pub staging_dir: PathBuf,
    /// Keep mode, mtime and owner in object metadata, and read them back (s3fs's and rclone's keys).
    pub metadata: bool,
    /// At most this many bytes staged (writes in progress plus files kept from failed uploads);
    /// beyond it writes fail with ENOSPC. Unbounded when `None`.
    pub staging_quota: Option<u64>,
    /// Buckets (or prefixes) shown at the root besides what ListBuckets returns.
    pub named_buckets: Vec<named::BucketPath>,
    /// One bucket (or prefix) mounted as the root itself (`s3://bucket/prefix` as the source).
    pub root_bucket: Option<named::BucketPath>,
}

/// A multi-user mount stages every user's writes on root's filesystem: each user gets this much
/// unless `-o staging_quota=` says otherwise.
pub const DEFAULT_MULTIUSER_STAGING_QUOTA: u64 = 1 << 30;

impl FsConfig {
    pub fn new(staging_dir: PathBuf) -> Self {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        FsConfig {
            uid,
            gid,
            file_mode: 0o644,
            dir_mode: 0o755,
            attr_ttl: Duration::from_secs(1),
            dir_ttl: Duration::from_secs(5),
            negative_ttl: Duration::from_secs(1),
            cache_size: 256 << 20,
            disk_cache: None,
            read_only: false,
            staging_dir,
            staging_quota: None,
            metadata: true,
            named_buckets: Vec::new(),
            root_bucket: None,
        }
    }
}

/// What the kernel is told about an inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub ino: u64,
    pub is_dir: bool,
    /// A symbolic link (an object whose metadata says so; its body is the target).
    pub symlink: bool,
    pub size: u64,
    pub mtime: SystemTime,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
}

/// One directory entry, with its attributes (readdirplus).
#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: String,
    pub stat: Stat,
}

/// One entry of a directory listing, with the attributes the listing gave.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    size: u64,
    mtime: SystemTime,
    etag: Option<String>,
    /// Set when the key is not `prefix + name` (an object shadowed by a prefix of the same name).
    pub(crate) key: Option<String>,
}

impl Entry {
    fn dir(name: &str) -> Entry {
        Entry { name: name.to_string(), kind: Kind::Dir, size: 0, mtime: SystemTime::now(), etag: None, key: None }
    }

    fn file(name: &str, o: &ObjectInfo) -> Entry {
        Entry {
            name: name.to_string(),
            kind: Kind::File,
            size: o.size,
            mtime: o.last_modified,
            etag: Some(o.etag.clone()),
            key: None,
        }
    }
}

#[derive(Clone)]
struct Listing {
    entries: Vec<Entry>,
    fetched: Instant,
}

struct State {
    inodes: InodeTable,
    listings: HashMap<u64, Listing>,
    negative: HashMap<(u64, String), Instant>,
    handles: HashMap<u64, Arc<handles::Handle>>,
    /// One state per open file, shared by its handles (handles.rs).
    open_files: HashMap<u64, handles::OpenEntry>,
    /// Files created here and not yet uploaded: listed though S3 does not have them yet.
    local_only: std::collections::HashSet<u64>,
    next_fh: u64,
    /// ETag of each file when it was last opened for reading: unchanged, the kernel may keep its
    /// page cache across opens.
    opened_etag: HashMap<u64, String>,
    /// Read handles whose file is unchanged since its previous open.
    keep_cache: std::collections::HashSet<u64>,
}

pub struct Fs {
    client: Arc<dyn ObjectClient>,
    cache: Arc<BlockCache>,
    read_ahead: read::ReadAheadBudget,
    config: FsConfig,
    state: Mutex<State>,
    /// Set at unmount: pending data has been flushed, so later writes are refused, not lost.
    closing: std::sync::atomic::AtomicBool,
    /// `config.staging_quota`, shared by this filesystem's staged files.
    quota: Option<Arc<staging::StagingQuota>>,
    /// When this filesystem started: a directory's time until a listing says otherwise.
    mounted_at: SystemTime,
}

impl Fs {
    pub fn new(client: Arc<dyn ObjectClient>, config: FsConfig) -> Self {
        let cache = match &config.disk_cache {
            Some((dir, limit)) => match disk_cache::DiskCache::open(dir, *limit) {
                Ok(disk) => BlockCache::with_disk(config.cache_size, disk),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "disk cache unavailable; caching in memory only");
                    BlockCache::new(config.cache_size)
                }
            },
            None => BlockCache::new(config.cache_size),
        };
        let quota = config.staging_quota.map(|limit| Arc::new(staging::StagingQuota::new(limit, &config.staging_dir)));
        Fs {
            mounted_at: SystemTime::now(),
            quota,
            client,
            cache: Arc::new(cache),
            read_ahead: read::read_ahead_budget(read::MAX_WINDOW),
            state: Mutex::new(State {
                inodes: match &config.root_bucket {
                    Some(root) => InodeTable::with_root_bucket(&root.bucket, &root.prefix),
                    None => InodeTable::new(),
                },
                listings: HashMap::new(),
                negative: HashMap::new(),
                handles: HashMap::new(),
                open_files: HashMap::new(),
                local_only: Default::default(),
                next_fh: 1,
                opened_etag: HashMap::new(),
                keep_cache: Default::default(),
            }),
            config,
            closing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The mount is going away: from now on writes fail (EROFS) instead of being staged where no
    /// upload will pick them up.
    pub fn begin_shutdown(&self) {
        self.closing.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn config(&self) -> &FsConfig {
        &self.config
    }

    fn stat(&self, i: &Inode) -> Stat {
        let is_dir = i.kind.is_dir();
        let meta = &i.attr.meta;
        let default_perm = if is_dir { self.config.dir_mode } else { self.config.file_mode };
        Stat {
            ino: i.ino,
            is_dir,
            symlink: !is_dir && meta.is_symlink(),
            size: if is_dir { 0 } else { i.attr.size },
            mtime: meta.mtime.unwrap_or(i.attr.mtime),
            perm: meta.mode.map(|m| (m & 0o7777) as u16).unwrap_or(default_perm),
            uid: meta.uid.unwrap_or(self.config.uid),
            gid: meta.gid.unwrap_or(self.config.gid),
        }
    }

    fn inode(&self, ino: u64) -> FsResult<Inode> {
        self.state.lock().unwrap().inodes.get(ino).cloned().ok_or(FsError::NotFound)
    }

    fn fresh_attr(&self, size: u64, mtime: SystemTime, etag: Option<String>) -> Attr {
        Attr { size, mtime, etag, valid_until: Instant::now() + self.config.attr_ttl, meta: Default::default() }
    }

    /// Attributes from a HEAD: with the object's metadata (mode, mtime, owner), unless turned off.
    fn head_attr(&self, o: ObjectInfo) -> Attr {
        let meta = if self.config.metadata { o.meta } else { Default::default() };
        Attr { meta, ..self.fresh_attr(o.size, o.last_modified, Some(o.etag)) }
    }

    /// A directory's time is stable: the mount's start (a listing moves it to its newest entry's).
    fn dir_attr(&self) -> Attr {
        self.fresh_attr(0, self.mounted_at, None)
    }

    /// The kernel took a reference to `ino` (entry replies).
    pub fn remember(&self, ino: u64) {
        self.state.lock().unwrap().inodes.remember(ino);
    }

    pub fn forget(&self, ino: u64, n: u64) {
        self.state.lock().unwrap().inodes.forget(ino, n);
    }

    fn check_writable(&self) -> FsResult<()> {
        if self.config.read_only || self.closing.load(std::sync::atomic::Ordering::SeqCst) {
            Err(FsError::ReadOnly)
        } else {
            Ok(())
        }
    }

    // ---- directories -------------------------------------------------------------------------

    /// The entries of a directory, from the cache when fresh.
    async fn listing(&self, dir: &Inode) -> FsResult<Listing> {
        if let Some(l) = self.state.lock().unwrap().listings.get(&dir.ino)
            && l.fetched.elapsed() < self.config.dir_ttl
        {
            return Ok(l.clone());
        }
        let entries = match dir.kind {
            // One bucket mounted as the root: its listing.
            Kind::Root if !dir.bucket.is_empty() => self.list_dir(&dir.bucket, &dir.key).await?,
            Kind::Root => match self.client.list_buckets().await {
                Ok(buckets) => self.with_named_buckets(
                    buckets
                        .into_iter()
                        .filter(|b| names::usable(b))
                        .map(|b| Entry { kind: Kind::Bucket, ..Entry::dir(&b) }),
                ),
                // MinIO answers AccessDenied when no bucket is visible: an empty root, or the named ones.
                Err(ObjectError::AccessDenied) => self.with_named_buckets(std::iter::empty()),
                // A server that does not list buckets for this identity at all: the named ones are enough.
                Err(e) if !self.config.named_buckets.is_empty() && !matches!(e, ObjectError::NoCredentials(_)) => {
                    tracing::debug!(error = %e, "ListBuckets failed; showing the named buckets");
                    self.with_named_buckets(std::iter::empty())
                }
                // Without credentials (renewal failing, or none to be had): the buckets seen last stay
                // listed, so operations below them say EACCES rather than "no such file"; an identity
                // that never had credentials (no policy, no login) sees an empty root. The credentials
                // layer logs why.
                Err(ObjectError::NoCredentials(_)) => {
                    let last = self.state.lock().unwrap().listings.get(&dir.ino).cloned();
                    return Ok(last.unwrap_or(Listing { entries: Vec::new(), fetched: Instant::now() }));
                }
                Err(e) => return Err(e.into()),
            },
            Kind::Bucket | Kind::Dir => self.list_dir(&dir.bucket, &dir.key).await?,
            Kind::File => return Err(FsError::NotDir),
        };
        let entries = self.with_local_files(dir.ino, entries);
        let listing = Listing { entries, fetched: Instant::now() };
        self.state.lock().unwrap().listings.insert(dir.ino, listing.clone());
        Ok(listing)
    }

    /// The root's entries: the named buckets (a prefix shows as its bucket's name and lists only
    /// below it), then the listed buckets not named.
    fn with_named_buckets(&self, listed: impl Iterator<Item = Entry>) -> Vec<Entry> {
        let named = &self.config.named_buckets;
        let mut entries: Vec<Entry> = named
            .iter()
            .map(|n| Entry {
                kind: Kind::Bucket,
                key: (!n.prefix.is_empty()).then(|| n.prefix.clone()),
                ..Entry::dir(&n.bucket)
            })
            .collect();
        entries.extend(listed.filter(|e| !named.iter().any(|n| n.bucket == e.name)));
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries.dedup_by(|a, b| a.name == b.name);
        entries
    }

    /// A listing plus the files created here that S3 does not have yet.
    fn with_local_files(&self, dir: u64, mut entries: Vec<Entry>) -> Vec<Entry> {
        let st = self.state.lock().unwrap();
        for inode in st.local_only.iter().filter_map(|ino| st.inodes.get(*ino)) {
            if inode.parent == dir && !entries.iter().any(|e| e.name == inode.name) {
                let mut e = Entry { kind: Kind::File, etag: None, ..Entry::dir(&inode.name) };
                e.size = inode.attr.size;
                entries.push(e);
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries
    }

    /// Lists one prefix completely (all pages) into directory entries.
    async fn list_dir(&self, bucket: &str, prefix: &str) -> FsResult<Vec<Entry>> {
        let mut files: Vec<ObjectInfo> = Vec::new();
        let mut dirs: Vec<String> = Vec::new();
        let mut token = None;
        loop {
            let page = self.client.list_page(bucket, prefix, token).await?;
            files.extend(page.objects);
            dirs.extend(page.prefixes);
            match page.continuation {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(listing::entries(bucket, prefix, &files, &dirs))
    }

    pub async fn readdir(&self, ino: u64) -> FsResult<Vec<DirEntry>> {
        let dir = self.inode(ino)?;
        if !dir.kind.is_dir() {
            return Err(FsError::NotDir);
        }
        let listing = self.listing(&dir).await?;
        let mut st = self.state.lock().unwrap();
        Ok(listing
            .entries
            .iter()
            .map(|e| {
                let inode = upsert_seen(&mut st, ino, &e.name, e.kind, self.entry_attr(e), e.key.clone());
                DirEntry { name: e.name.clone(), stat: self.stat(&inode) }
            })
            .collect())
    }

    // ---- lookup and attributes ---------------------------------------------------------------

    pub async fn lookup(&self, parent: u64, name: &str) -> FsResult<Stat> {
        let dir = self.inode(parent)?;
        if !dir.kind.is_dir() {
            return Err(FsError::NotDir);
        }
        if !names::usable(name) {
            return Err(FsError::NotFound);
        }
        // A fresh listing answers without asking S3: `ls -l` after `ls` costs nothing.
        let cached = {
            let st = self.state.lock().unwrap();
            st.listings.get(&parent).filter(|l| l.fetched.elapsed() < self.config.dir_ttl).cloned()
        };
        let lists_buckets = dir.kind == Kind::Root && dir.bucket.is_empty();
        if let Some(listing) = cached.or(if lists_buckets { Some(self.listing(&dir).await?) } else { None }) {
            let Some(e) = listing.entries.iter().find(|e| e.name == name) else {
                return Err(FsError::NotFound);
            };
            let attr = self.entry_attr(e);
            let inode = upsert_seen(&mut self.state.lock().unwrap(), parent, &e.name, e.kind, attr, e.key.clone());
            return self.with_meta(inode).await;
        }
        // A file this mount holds (created and not uploaded yet, or being written): its own inode,
        // whatever S3 says now.
        {
            let st = self.state.lock().unwrap();
            if let Some(child) = st.inodes.child(parent, name)
                && (st.local_only.contains(&child.ino) || held_locally(&st, child.ino))
            {
                return Ok(self.stat(&child.clone()));
            }
        }
        if let Some(until) = self.state.lock().unwrap().negative.get(&(parent, name.to_string()))
            && *until > Instant::now()
        {
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
            tokio::join!(self.client.head(&dir.bucket, &plain_key), self.client.list_page(&dir.bucket, &prefix, None));
        let is_dir = match listed {
            Ok(page) => !page.objects.is_empty() || !page.prefixes.is_empty(),
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
                self.state.lock().unwrap().negative.insert((dir.ino, name.to_string()), until);
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
        st.inodes.set_attr(ino, attr);
        let inode = st.inodes.get(ino).cloned().ok_or(FsError::NotFound)?;
        Ok(self.stat(&inode))
    }

    async fn refresh_attr(&self, inode: &Inode) -> FsResult<Inode> {
        let o = self.client.head(&inode.bucket, &inode.key).await?;
        let attr = self.head_attr(o);
        let mut st = self.state.lock().unwrap();
        if !held_locally(&st, inode.ino) {
            st.inodes.set_attr(inode.ino, attr);
        }
        st.inodes.get(inode.ino).cloned().ok_or(FsError::NotFound)
    }

    /// This mount's own change is visible at once: attributes and the parent's listing are updated.
    fn uploaded(&self, ino: u64, bucket: &str, key: &str, info: ObjectInfo) {
        let mut st = self.state.lock().unwrap();
        let attr = Attr {
            size: info.size,
            mtime: info.last_modified,
            etag: Some(info.etag.clone()),
            valid_until: Instant::now() + self.config.attr_ttl,
            meta: info.meta,
        };
        st.inodes.set_attr(ino, attr);
        if let Some(parent) = st.inodes.get(ino).map(|i| i.parent) {
            let name = key.rsplit('/').next().unwrap_or(key).to_string();
            st.negative.remove(&(parent, name.clone()));
            if let Some(l) = st.listings.get_mut(&parent) {
                l.entries.retain(|e| e.name != name);
                l.entries.push(Entry::file(&name, &info));
                l.entries.sort_by(|a, b| a.name.cmp(&b.name));
            }
        }
        let _ = bucket;
    }

    // ---- namespace changes --------------------------------------------------------------------

    fn writable_dir(&self, parent: u64) -> FsResult<Inode> {
        self.check_writable()?;
        let dir = self.inode(parent)?;
        match dir.kind {
            Kind::Bucket | Kind::Dir => Ok(dir),
            Kind::Root if !dir.bucket.is_empty() => Ok(dir),
            Kind::Root => Err(FsError::Access("buckets cannot be created or removed through the mount".into())),
            Kind::File => Err(FsError::NotDir),
        }
    }

    fn forget_listing(&self, dir: u64, name: &str) {
        let mut st = self.state.lock().unwrap();
        if let Some(l) = st.listings.get_mut(&dir) {
            l.entries.retain(|e| e.name != name);
        }
    }

    /// Creates an empty file, open for writing; it is uploaded on close even if nothing is written.
    pub async fn mkdir(&self, parent: u64, name: &str) -> FsResult<Stat> {
        let dir = self.writable_dir(parent)?;
        names::creatable(name).map_err(FsError::BadName)?;
        let key = format!("{}{name}/", dir.key);
        self.client.put_bytes(&dir.bucket, &key, Bytes::new(), &Default::default()).await?;
        let mut st = self.state.lock().unwrap();
        st.negative.remove(&(parent, name.to_string()));
        if let Some(l) = st.listings.get_mut(&parent) {
            l.entries.retain(|e| e.name != name);
            l.entries.push(Entry::dir(name));
            l.entries.sort_by(|a, b| a.name.cmp(&b.name));
        }
        let inode = st.inodes.upsert(parent, name, Kind::Dir, self.dir_attr());
        Ok(self.stat(&inode))
    }

    pub async fn unlink(&self, parent: u64, name: &str) -> FsResult<()> {
        let dir = self.writable_dir(parent)?;
        let stat = self.lookup(parent, name).await?;
        if stat.is_dir {
            return Err(FsError::IsDir);
        }
        let key = self.inode(stat.ino)?.key;
        // Created here and never uploaded: there is nothing in S3 to delete.
        let local_only = self.is_local_only(stat.ino);
        // Its open handles keep their data; it is not uploaded at their close.
        self.unlink_open(stat.ino).await?;
        if !local_only {
            self.client.delete(&dir.bucket, &key).await?;
        }
        self.forget_listing(parent, name);
        self.state.lock().unwrap().inodes.unlink(parent, name);
        Ok(())
    }

    pub async fn rmdir(&self, parent: u64, name: &str) -> FsResult<()> {
        let dir = self.writable_dir(parent)?;
        let stat = self.lookup(parent, name).await?;
        if !stat.is_dir {
            return Err(FsError::NotDir);
        }
        let prefix = format!("{}{name}/", dir.key);
        let page = self.client.list_page(&dir.bucket, &prefix, None).await?;
        if !page.prefixes.is_empty() || page.objects.iter().any(|o| o.key != prefix) {
            return Err(FsError::NotEmpty);
        }
        self.client.delete(&dir.bucket, &prefix).await?;
        self.forget_listing(parent, name);
        let mut st = self.state.lock().unwrap();
        st.listings.remove(&stat.ino);
        st.inodes.unlink(parent, name);
        Ok(())
    }

    /// Renames a file by copy + delete; a directory by copying and deleting every object below it.
    /// Neither is atomic: S3 has no rename.
    pub async fn rename(&self, parent: u64, name: &str, new_parent: u64, new_name: &str) -> FsResult<()> {
        let from_dir = self.writable_dir(parent)?;
        let to_dir = self.writable_dir(new_parent)?;
        names::creatable(new_name).map_err(FsError::BadName)?;
        if from_dir.bucket != to_dir.bucket {
            return Err(FsError::NotSupported("rename across buckets"));
        }
        let stat = self.lookup(parent, name).await?;
        let bucket = from_dir.bucket.clone();
        if stat.is_dir {
            let from = format!("{}{name}/", from_dir.key);
            let to = format!("{}{new_name}/", to_dir.key);
            for key in self.all_keys(&bucket, &from).await? {
                let dest = format!("{to}{}", &key[from.len()..]);
                if key.ends_with('/') {
                    // A directory marker (mkdir's empty `dir/`) is made again, not copied: some servers
                    // refuse CopyObject of such keys, which would fail the whole `mv`.
                    self.client.put_bytes(&bucket, &dest, Bytes::new(), &Default::default()).await?;
                } else {
                    self.client.copy(&bucket, &key, &dest).await?;
                }
            }
            for key in self.all_keys(&bucket, &from).await? {
                self.client.delete(&bucket, &key).await?;
            }
        } else {
            let key = self.inode(stat.ino)?.key;
            let dest = to_dir.child_key(new_name);
            self.client.copy(&bucket, &key, &dest).await?;
            self.client.delete(&bucket, &key).await?;
        }
        let mut st = self.state.lock().unwrap();
        st.listings.remove(&parent);
        st.listings.remove(&new_parent);
        st.negative.remove(&(new_parent, new_name.to_string()));
        for ino in st.inodes.rename(parent, name, new_parent, new_name) {
            st.listings.remove(&ino);
        }
        Ok(())
    }

    /// Every key below `prefix`, walking common prefixes.
    async fn all_keys(&self, bucket: &str, prefix: &str) -> FsResult<Vec<String>> {
        let mut keys = Vec::new();
        let mut pending = vec![prefix.to_string()];
        while let Some(p) = pending.pop() {
            let mut token = None;
            loop {
                let page = self.client.list_page(bucket, &p, token).await?;
                keys.extend(page.objects.into_iter().map(|o| o.key));
                pending.extend(page.prefixes);
                match page.continuation {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
        }
        Ok(keys)
    }

    /// Whether the kernel may keep its cached pages for this (read) handle: the object has the same
    /// ETag as when it was last opened.
    pub fn keep_cache(&self, fh: u64) -> bool {
        self.state.lock().unwrap().keep_cache.remove(&fh)
    }

    /// A read handle was opened on `ino`: when the object is unchanged since its previous open, the
    /// kernel may keep its cached pages.
    fn note_read_open(&self, fh: u64, ino: u64) {
        let mut st = self.state.lock().unwrap();
        let Some(etag) = st.inodes.get(ino).and_then(|i| i.attr.etag.clone()) else { return };
        if st.local_only.contains(&ino) || st.open_files.get(&ino).is_some_and(|e| e.staged_or_busy()) {
            return;
        }
        if st.opened_etag.insert(ino, etag.clone()).as_ref() == Some(&etag) {
            st.keep_cache.insert(fh);
        }
    }

    /// Created here and not uploaded yet.
    fn is_local_only(&self, ino: u64) -> bool {
        self.state.lock().unwrap().local_only.contains(&ino)
    }

    /// A file created here is listed, looked up and unlinked like any other before its upload.
    fn show_local_file(&self, parent: u64, name: &str, ino: u64) {
        let mut st = self.state.lock().unwrap();
        st.local_only.insert(ino);
        st.negative.remove(&(parent, name.to_string()));
        let entry = Entry { kind: Kind::File, size: 0, etag: None, ..Entry::dir(name) };
        if let Some(l) = st.listings.get_mut(&parent)
            && !l.entries.iter().any(|e| e.name == name)
        {
            l.entries.push(entry);
            l.entries.sort_by(|a, b| a.name.cmp(&b.name));
        }
    }

    pub fn root_stat(&self) -> FsResult<Stat> {
        let i = self.inode(ROOT)?;
        Ok(self.stat(&i))
    }

    pub fn block_cache_bytes(&self) -> usize {
        self.cache.bytes()
    }
}

/// Whether this mount holds a staged copy of `ino`: then its own size and times are the file's,
/// newer than anything a listing or a HEAD says.
fn held_locally(st: &State, ino: u64) -> bool {
    st.open_files.get(&ino).is_some_and(|e| e.staged_or_busy())
}

/// Records what S3 says about `parent/name` (a listing, a HEAD), unless this mount holds a staged
/// copy of that file (a lookup while it is being written used to put the listing's older size
/// back, and the kernel then cut the file to it: found by the fsx-style test).
fn upsert_seen(st: &mut State, parent: u64, name: &str, kind: Kind, attr: Attr, key: Option<String>) -> Inode {
    if let Some(existing) = st.inodes.child(parent, name)
        && existing.kind == kind
        && held_locally(st, existing.ino)
    {
        return existing.clone();
    }
    st.inodes.upsert_with_key(parent, name, kind, attr, key)
}

#[cfg(test)]
mod tests;
