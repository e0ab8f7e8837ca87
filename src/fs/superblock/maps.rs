//! The metadata maps, bounded so that a mount that runs for weeks over millions of names stays
//! within a fixed memory:
//! - listings: least recently used dropped first beyond `Limits::listed_entries` entries in all;
//! - negative entries: least recently used dropped first beyond `Limits::negative`, and each
//!   dropped when its TTL has passed;
//! - inodes: an inode lives while the kernel holds a reference (lookup count), a handle is open
//!   on it, or it has children; the rest (made by plain `readdir`, or forgotten by the kernel) go
//!   at the next sweep. Numbers are hashes of the path, so an inode made again is the same inode.
//!
//! Sweeps are amortized: one runs when the inode table has doubled since the last, or a minute has
//! passed, and costs one pass over the table.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use lru::LruCache;

use crate::fs::inode::{InodeTable, Kind, ROOT};
use crate::object::ObjectInfo;

/// One entry of a directory listing, with the attributes the listing gave.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) size: u64,
    pub(crate) mtime: SystemTime,
    pub(crate) etag: Option<String>,
    /// Set when the key is not `prefix + name` (an object shadowed by a prefix of the same name).
    pub(crate) key: Option<String>,
}

impl Entry {
    pub(crate) fn dir(name: &str) -> Entry {
        Entry { name: name.to_string(), kind: Kind::Dir, size: 0, mtime: SystemTime::now(), etag: None, key: None }
    }

    pub(crate) fn file(name: &str, o: &ObjectInfo) -> Entry {
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
pub(crate) struct Listing {
    pub(crate) entries: Vec<Entry>,
    pub(crate) fetched: Instant,
}

impl Listing {
    /// Where `name` is among the entries (kept sorted by name), or where it would go.
    pub(crate) fn position(&self, name: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|e| e.name.as_str().cmp(name))
    }

    /// The entry named `name`, if listed.
    pub(crate) fn entry(&self, name: &str) -> Option<Entry> {
        self.position(name).ok().map(|i| self.entries[i].clone())
    }
}

/// How much metadata one filesystem keeps at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Directory entries kept in cached listings, all directories together (about 200 bytes each).
    pub listed_entries: usize,
    /// Names remembered as missing.
    pub negative: usize,
    /// Inodes beyond which listings hand the kernel names only (see `Fs::listings_give_names_only`).
    pub readdirplus_inodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { listed_entries: 100_000, negative: 10_000, readdirplus_inodes: 100_000 }
    }
}

/// Entries in each of the filesystem's maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapSizes {
    pub inodes: usize,
    pub listings: usize,
    pub negative: usize,
    pub open_files: usize,
    pub dir_handles: usize,
    pub page_cache: usize,
}

/// Sweep at least this often, whatever the table's growth.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// No sweep while the table is this small.
const SWEEP_FLOOR: usize = 1024;
/// Inodes described this recently stay: the reply that hands them to the kernel (and counts its
/// reference) may not have been sent yet.
const SWEEP_GRACE: Duration = Duration::from_secs(30);

/// The metadata the filesystem holds.
pub(crate) struct Metadata {
    pub(crate) inodes: InodeTable,
    listings: LruCache<u64, Listing>,
    /// Entries in `listings`, all together.
    listed: usize,
    /// `(parent, name)` known not to exist, until the instant stored.
    negative: LruCache<(u64, String), Instant>,
    /// Files created here and not yet uploaded: listed though S3 does not have them yet.
    pub(crate) local_only: HashSet<u64>,
    pub(crate) limits: Limits,
    /// How long a listing is trusted (the mount's `dir_ttl`): older ones go at a sweep.
    pub(crate) dir_ttl: Duration,
    last_sweep: (Instant, usize),
    /// Changes made here to cached listings (entries added or removed), counted: a listing fetched
    /// across one may be out of date.
    changes: u64,
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata {
            inodes: InodeTable::new(),
            listings: LruCache::unbounded(),
            listed: 0,
            negative: LruCache::unbounded(),
            local_only: HashSet::new(),
            limits: Limits::default(),
            dir_ttl: Duration::from_secs(5),
            last_sweep: (Instant::now(), 0),
            changes: 0,
        }
    }
}

impl Metadata {
    /// One bucket (or a prefix of one) mounted as the root.
    pub(crate) fn with_root_bucket(bucket: &str, prefix: &str) -> Self {
        Metadata { inodes: InodeTable::with_root_bucket(bucket, prefix), ..Metadata::default() }
    }

    /// `dir`'s cached listing while younger than `ttl`.
    pub(crate) fn fresh_listing(&mut self, dir: u64, ttl: Duration) -> Option<Listing> {
        self.listings.get(&dir).filter(|l| l.fetched.elapsed() < ttl).cloned()
    }

    /// What `dir`'s fresh cached listing says of `name`: `Some(None)` when it lists no such name,
    /// `None` when there is no fresh listing. One binary search (listings are sorted by name) and no
    /// copy of the listing: a lookup used to clone the whole listing, so an `ls -l` that looks up
    /// each of n entries cost n copies of n entries.
    pub(crate) fn fresh_entry(&mut self, dir: u64, name: &str, ttl: Duration) -> Option<Option<Entry>> {
        let listing = self.listings.get(&dir).filter(|l| l.fetched.elapsed() < ttl)?;
        Some(listing.entry(name))
    }

    /// Whether `dir` has a listing younger than `ttl` (without making it the most recently used).
    pub(crate) fn has_fresh_listing(&self, dir: u64, ttl: Duration) -> bool {
        self.listings.peek(&dir).is_some_and(|l| l.fetched.elapsed() < ttl)
    }

    /// Up to `n` subdirectories that `dir`'s listing, however old, names after `name`, in order:
    /// where a walker goes next.
    pub(crate) fn dirs_after(&mut self, dir: u64, name: &str, n: usize) -> Vec<String> {
        let Some(listing) = self.listings.get(&dir) else { return Vec::new() };
        let from = match listing.position(name) {
            Ok(at) => at + 1,
            Err(at) => at,
        };
        let after = listing.entries.get(from..).unwrap_or_default();
        after.iter().filter(|e| e.kind == Kind::Dir).take(n).map(|e| e.name.clone()).collect()
    }

    /// How many changes were made here to listings so far (see `changes`).
    pub(crate) fn changes(&self) -> u64 {
        self.changes
    }

    /// A change made here that cached listings do not show (a rename drops them instead).
    pub(crate) fn listings_changed(&mut self) {
        self.changes += 1;
    }

    /// `dir`'s cached listing however old (what to show while S3 cannot be asked).
    pub(crate) fn last_listing(&mut self, dir: u64) -> Option<Listing> {
        self.listings.get(&dir).cloned()
    }

    pub(crate) fn store_listing(&mut self, dir: u64, listing: Listing) {
        self.listed += listing.entries.len();
        if let Some(old) = self.listings.put(dir, listing) {
            self.listed -= old.entries.len();
        }
        // The newest listing stays even when it alone is over the limit: it is being used.
        while self.listed > self.limits.listed_entries && self.listings.len() > 1 {
            match self.listings.pop_lru() {
                Some((_, old)) => self.listed -= old.entries.len(),
                None => break,
            }
        }
    }

    pub(crate) fn drop_listing(&mut self, dir: u64) {
        if let Some(old) = self.listings.pop(&dir) {
            self.listed -= old.entries.len();
        }
    }

    pub(crate) fn listing_count(&self) -> usize {
        self.listings.len()
    }

    /// Drops `name` from `dir`'s cached listing (it was removed or renamed here).
    pub(crate) fn unlist(&mut self, dir: u64, name: &str) {
        self.changes += 1;
        if let Some(l) = self.listings.peek_mut(&dir) {
            let before = l.entries.len();
            l.entries.retain(|e| e.name != name);
            self.listed -= before - l.entries.len();
        }
    }

    /// Puts `entry` into `dir`'s cached listing, replacing one of the same name; and forgets that
    /// the name did not exist.
    pub(crate) fn list(&mut self, dir: u64, entry: Entry) {
        self.unlist(dir, &entry.name);
        self.list_if_missing(dir, entry);
    }

    /// Puts `entry` into `dir`'s cached listing unless one of that name is there.
    pub(crate) fn list_if_missing(&mut self, dir: u64, entry: Entry) {
        self.changes += 1;
        self.forget_missing(dir, &entry.name);
        // Listings are kept sorted by name: one binary search, not a scan and a sort per created
        // file (a directory of 100k files being filled).
        if let Some(l) = self.listings.peek_mut(&dir)
            && let Err(at) = l.position(&entry.name)
        {
            l.entries.insert(at, entry);
            self.listed += 1;
        }
    }

    /// Whether `parent/name` is known not to exist (an expired entry is dropped).
    pub(crate) fn known_missing(&mut self, parent: u64, name: &str) -> bool {
        let key = (parent, name.to_string());
        match self.negative.get(&key) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                self.negative.pop(&key);
                false
            }
            None => false,
        }
    }

    pub(crate) fn note_missing(&mut self, parent: u64, name: &str, until: Instant) {
        self.negative.put((parent, name.to_string()), until);
        while self.negative.len() > self.limits.negative {
            self.negative.pop_lru();
        }
    }

    pub(crate) fn forget_missing(&mut self, parent: u64, name: &str) {
        self.negative.pop(&(parent, name.to_string()));
    }

    pub(crate) fn negative_count(&self) -> usize {
        self.negative.len()
    }

    /// Sweeps when due (see the module's comment). `in_use` says which inodes must stay whatever
    /// their lookup count (open files), `walked` which listings stay however old (a walk is going
    /// through their subdirectories). Returns the inodes removed.
    pub(crate) fn sweep_if_due(&mut self, in_use: impl Fn(u64) -> bool, walked: impl Fn(u64) -> bool) -> Vec<u64> {
        let (at, size) = self.last_sweep;
        let due = self.inodes.len() >= SWEEP_FLOOR.max(2 * size) || at.elapsed() >= SWEEP_EVERY;
        if !due {
            return Vec::new();
        }
        self.sweep(SWEEP_GRACE, in_use, walked)
    }

    /// Drops expired negative entries and listings (the root's stays: it is shown while S3 cannot
    /// be asked), and inodes nobody holds.
    pub(crate) fn sweep(
        &mut self,
        grace: Duration,
        in_use: impl Fn(u64) -> bool,
        walked: impl Fn(u64) -> bool,
    ) -> Vec<u64> {
        let dir_ttl = self.dir_ttl;
        let now = Instant::now();
        let expired: Vec<_> =
            self.negative.iter().filter(|(_, until)| **until <= now).map(|(k, _)| k.clone()).collect();
        for k in expired {
            self.negative.pop(&k);
        }
        let stale: Vec<u64> = self
            .listings
            .iter()
            .filter(|(ino, l)| **ino != ROOT && l.fetched.elapsed() >= dir_ttl && !walked(**ino))
            .map(|(i, _)| *i)
            .collect();
        for ino in stale {
            self.drop_listing(ino);
        }
        let local_only = &self.local_only;
        let before = now.checked_sub(grace).unwrap_or(now);
        let removed = self.inodes.sweep(before, |ino| in_use(ino) || local_only.contains(&ino));
        for ino in &removed {
            self.drop_listing(*ino);
        }
        self.last_sweep = (now, self.inodes.len());
        removed
    }
}
