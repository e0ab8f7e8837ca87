//! Inode numbers for paths in the mount. A number is a hash of what the path is (bucket, key, kind),
//! so every identity of a multi-user mount gives the same path the same inode — the kernel keeps one
//! inode namespace per mount — while each identity keeps its own table of what it was allowed to see.

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

pub const ROOT: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Root,
    Bucket,
    /// A common prefix (or directory marker).
    Dir,
    File,
}

impl Kind {
    pub fn is_dir(self) -> bool {
        !matches!(self, Kind::File)
    }
}

/// What S3 told us about an object, and until when we trust it.
#[derive(Debug, Clone)]
pub struct Attr {
    pub size: u64,
    pub mtime: SystemTime,
    pub etag: Option<String>,
    pub valid_until: Instant,
    /// Mode, time and owner from the object's metadata (`known` once read with a HEAD).
    pub meta: crate::object::meta::FileMeta,
}

#[derive(Debug, Clone)]
pub struct Inode {
    pub ino: u64,
    pub parent: u64,
    pub name: String,
    pub kind: Kind,
    pub bucket: String,
    /// For a file, its key; for a directory, its prefix ending in `/` (empty for a bucket).
    pub key: String,
    pub attr: Attr,
    /// References the kernel holds (each entry reply adds one; forget takes some away).
    pub lookups: u64,
    /// When a listing, lookup or HEAD last described it: an inode just handed out may be about to
    /// get its kernel reference counted, so sweeps leave recent ones alone.
    pub touched: Instant,
}

impl Inode {
    /// The prefix of this directory's children.
    pub fn child_key(&self, name: &str) -> String {
        format!("{}{name}", self.key)
    }
}

pub struct InodeTable {
    by_ino: HashMap<u64, Inode>,
    by_name: HashMap<(u64, String), u64>,
}

/// The inode number of a path: stable across identities and remounts. Numbers 0 and 1 are reserved;
/// a collision inside one table (2^-64 per pair) moves to the next free number.
fn number_for(kind: Kind, bucket: &str, key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same number in every process.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new_with_keys(0x5350_4653, 0x494e_4f44);
    (kind as u8).hash(&mut h);
    bucket.hash(&mut h);
    key.hash(&mut h);
    h.finish().max(2)
}

impl InodeTable {
    pub fn new() -> Self {
        let root = Inode {
            ino: ROOT,
            parent: ROOT,
            name: String::new(),
            kind: Kind::Root,
            bucket: String::new(),
            key: String::new(),
            attr: Attr {
                size: 0,
                mtime: SystemTime::now(),
                etag: None,
                valid_until: Instant::now(),
                meta: Default::default(),
            },
            lookups: 1,
            touched: Instant::now(),
        };
        InodeTable { by_ino: HashMap::from([(ROOT, root)]), by_name: HashMap::new() }
    }

    /// A table whose root is one bucket (or a prefix of it) rather than the list of buckets.
    pub fn with_root_bucket(bucket: &str, prefix: &str) -> Self {
        let mut t = InodeTable::new();
        if let Some(root) = t.by_ino.get_mut(&ROOT) {
            root.bucket = bucket.to_string();
            root.key = prefix.to_string();
        }
        t
    }

    pub fn get(&self, ino: u64) -> Option<&Inode> {
        self.by_ino.get(&ino)
    }

    pub fn child(&self, parent: u64, name: &str) -> Option<&Inode> {
        self.by_name.get(&(parent, name.to_string())).and_then(|i| self.by_ino.get(i))
    }

    /// The inode for `parent/name`, created or updated. A kind change (file became directory) keeps
    /// the number but replaces what it describes.
    pub fn upsert(&mut self, parent: u64, name: &str, kind: Kind, attr: Attr) -> Inode {
        self.upsert_with_key(parent, name, kind, attr, None)
    }

    /// As `upsert`, for a file whose key is not `parent prefix + name` (a shadowed object).
    pub fn upsert_with_key(&mut self, parent: u64, name: &str, kind: Kind, attr: Attr, key: Option<String>) -> Inode {
        let Some((bucket, key)) = self.placement(parent, name, kind, key) else {
            // The parent was forgotten concurrently; still hand out a usable inode.
            return self.insert_new(parent, name, kind, String::new(), String::new(), attr);
        };
        if let Some(&ino) = self.by_name.get(&(parent, name.to_string()))
            && let Some(existing) = self.by_ino.get_mut(&ino)
            && existing.kind == kind
        {
            existing.key = key;
            existing.bucket = bucket;
            // A listing says nothing of metadata: what a HEAD read of the same version stays.
            let meta = if !attr.meta.known && existing.attr.etag == attr.etag { existing.attr.meta } else { attr.meta };
            existing.attr = Attr { meta, ..attr };
            existing.touched = Instant::now();
            return existing.clone();
        }
        self.insert_new(parent, name, kind, bucket, key, attr)
    }

    /// The bucket and key of `parent/name` (None when the parent is not in the table).
    fn placement(&self, parent: u64, name: &str, kind: Kind, key: Option<String>) -> Option<(String, String)> {
        let p = self.by_ino.get(&parent)?;
        // Below a root that lists buckets, a child names its bucket; below a root that is one bucket
        // (or anything else), children are in the parent's bucket.
        let bucket = if p.kind == Kind::Root && p.bucket.is_empty() { name.to_string() } else { p.bucket.clone() };
        let key = match kind {
            Kind::Root => String::new(),
            // A named prefix of a bucket lists only below it.
            Kind::Bucket => key.unwrap_or_default(),
            Kind::Dir => format!("{}{name}/", p.key),
            Kind::File => key.unwrap_or_else(|| p.child_key(name)),
        };
        Some((bucket, key))
    }

    /// The number `parent/name` would get, without adding it to the table: a plain `readdir`
    /// (`find`, `ls` without `-l`) hands the kernel numbers, not references, so the entries of a
    /// million-object walk need not all become inodes. For a name not in the table (the caller
    /// looked); the rare number taken by a collision is only reported, in a `d_ino`, and a lookup
    /// then settles the inode's real number.
    pub fn number_of_new(&self, parent: u64, name: &str, kind: Kind, key: Option<String>) -> u64 {
        let (bucket, key) = self.placement(parent, name, kind, key).unwrap_or_default();
        number_for(kind, &bucket, &key)
    }

    fn insert_new(&mut self, parent: u64, name: &str, kind: Kind, bucket: String, key: String, attr: Attr) -> Inode {
        let mut ino = number_for(kind, &bucket, &key);
        while self.by_ino.contains_key(&ino) {
            ino = ino.wrapping_add(1).max(2);
        }
        let inode =
            Inode { ino, parent, name: name.to_string(), kind, bucket, key, attr, lookups: 0, touched: Instant::now() };
        self.by_ino.insert(ino, inode.clone());
        self.by_name.insert((parent, name.to_string()), ino);
        inode
    }

    pub fn set_attr(&mut self, ino: u64, attr: Attr) {
        if let Some(i) = self.by_ino.get_mut(&ino) {
            i.attr = attr;
        }
    }

    /// Drops the name → inode link (unlink, rename away). The inode itself lives on until forgotten,
    /// so open handles keep working.
    pub fn unlink(&mut self, parent: u64, name: &str) {
        self.by_name.remove(&(parent, name.to_string()));
    }

    /// After a rename in S3: the kernel keeps using the same inode under its new name, so the inode
    /// (and, for a directory, every known inode below it) must now describe the new keys.
    /// Returns the inodes whose keys changed.
    pub fn rename(&mut self, parent: u64, name: &str, new_parent: u64, new_name: &str) -> Vec<u64> {
        let Some(ino) = self.by_name.remove(&(parent, name.to_string())) else { return Vec::new() };
        // Whatever the new name pointed to is replaced.
        self.by_name.insert((new_parent, new_name.to_string()), ino);
        let new_prefix = self.by_ino.get(&new_parent).map(|p| p.key.clone()).unwrap_or_default();
        let Some(inode) = self.by_ino.get_mut(&ino) else { return Vec::new() };
        let old_key = inode.key.clone();
        let bucket = inode.bucket.clone();
        inode.parent = new_parent;
        inode.name = new_name.to_string();
        inode.key = match inode.kind {
            Kind::Dir => format!("{new_prefix}{new_name}/"),
            _ => format!("{new_prefix}{new_name}"),
        };
        let new_key = inode.key.clone();
        let mut changed = vec![ino];
        if inode.kind == Kind::Dir {
            for other in self.by_ino.values_mut() {
                if other.ino != ino && other.bucket == bucket && other.key.starts_with(&old_key) {
                    other.key = format!("{new_key}{}", &other.key[old_key.len()..]);
                    changed.push(other.ino);
                }
            }
        }
        changed
    }

    /// The kernel was handed `ino` in an entry reply.
    pub fn add_lookup(&mut self, ino: u64) {
        if let Some(i) = self.by_ino.get_mut(&ino) {
            i.lookups += 1;
        }
    }

    /// The kernel dropped `n` references; at zero the inode is gone. Returns whether it went.
    pub fn forget(&mut self, ino: u64, n: u64) -> bool {
        if ino == ROOT {
            return false;
        }
        let Some(i) = self.by_ino.get_mut(&ino) else { return false };
        i.lookups = i.lookups.saturating_sub(n);
        if i.lookups > 0 {
            return false;
        }
        let key = (i.parent, i.name.clone());
        self.by_ino.remove(&ino);
        if self.by_name.get(&key) == Some(&ino) {
            self.by_name.remove(&key);
        }
        true
    }

    /// Removes every inode the kernel holds no reference to and nothing described since `before`,
    /// except those `keep` names and the directories above any inode that stays. Returns the
    /// numbers removed.
    pub fn sweep(&mut self, before: Instant, keep: impl Fn(u64) -> bool) -> Vec<u64> {
        let stays = |i: &Inode| i.ino == ROOT || i.lookups > 0 || i.touched > before || keep(i.ino);
        let mut needed: std::collections::HashSet<u64> = std::collections::HashSet::new();
        for i in self.by_ino.values().filter(|i| stays(i)) {
            let mut parent = i.parent;
            while parent != ROOT && needed.insert(parent) {
                match self.by_ino.get(&parent) {
                    Some(p) => parent = p.parent,
                    None => break,
                }
            }
        }
        let removed: Vec<u64> =
            self.by_ino.values().filter(|i| !stays(i) && !needed.contains(&i.ino)).map(|i| i.ino).collect();
        for ino in &removed {
            if let Some(i) = self.by_ino.remove(ino) {
                let key = (i.parent, i.name);
                if self.by_name.get(&key) == Some(ino) {
                    self.by_name.remove(&key);
                }
            }
        }
        removed
    }

    pub fn len(&self) -> usize {
        self.by_ino.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ino.is_empty()
    }
}

impl Default for InodeTable {
    fn default() -> Self {
        Self::new()
    }
}
