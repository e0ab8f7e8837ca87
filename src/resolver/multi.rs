//! Multi-user mounts (`-o multiuser`), on the model of CIFS's `multiuser` with per-user `cifscreds`:
//! one mount, made by root, serves every Unix user with that user's own identity.
//!
//! Trust model: the mount runs as root and, for a request from uid U, reads U's own token store
//! (`~U/.local/state/ssofs`, which must belong to U and be private) with U's own filesystem identity
//! (`untrusted::as_user`: whatever U could not read, root will not read for them), gets U's own STS credentials and
//! serves the request from U's own filesystem state — listings, attributes, data blocks and staged
//! writes are never shared between identities. The kernel is told not to cache entries, attributes or
//! pages (TTL 0, direct I/O), so it asks again for every user. A user with no login sees an empty root
//! and gets EACCES below it; the same mount serves them as soon as they run `ssofs login`.
//! Identities idle for `IDLE_DROP` are dropped from memory (and rebuilt from the store on next use).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::FsResolver;
use crate::config::Profile;
use crate::fs::inode::ROOT;
use crate::fs::{Fs, FsConfig, FsError, MountShared, Stat};
use crate::identity::TokenStore;
use crate::stack::ClientBuilder;

/// How long a user without a login is remembered as such before the store is looked at again.
const NO_LOGIN_RECHECK: Duration = Duration::from_secs(2);
/// Identities unused this long (and with no open files) are dropped from memory.
pub const IDLE_DROP: Duration = Duration::from_secs(600);
/// How long a request waits for another request of the same user that is reading their store.
const OPEN_WAIT: Duration = Duration::from_secs(5);

enum Identity {
    /// Not looked at yet, or dropped.
    Unknown,
    /// One request is reading the user's store; the others of that user wait (at most `OPEN_WAIT`).
    Opening,
    Ready {
        slot: u16,
        fs: Arc<Fs>,
        last_used: Instant,
    },
    NoLogin {
        checked: Instant,
        reason: String,
    },
}

impl Identity {
    /// The answer for a request when it needs no I/O: the open filesystem (marked used), or the
    /// refusal of a user found without a login a moment ago. `None`: opening it (or waiting for
    /// the request that is) comes first.
    fn settled(&mut self) -> Option<Result<(u16, Arc<Fs>), FsError>> {
        match self {
            Identity::Ready { slot, fs, last_used } => {
                *last_used = Instant::now();
                Some(Ok((*slot, fs.clone())))
            }
            Identity::NoLogin { checked, reason } if checked.elapsed() < NO_LOGIN_RECHECK => {
                Some(Err(FsError::Access(reason.clone())))
            }
            _ => None,
        }
    }
}

/// One user's identity, locked on its own: a user whose store is slow (or hostile: a FIFO, a hung
/// NFS home) stalls only their own requests, never the mount's other users.
struct Entry {
    identity: Mutex<Identity>,
    settled: Condvar,
}

pub struct MultiUser {
    profile: Profile,
    endpoint: String,
    /// Builds each user's client stack from their token store.
    clients: Arc<dyn ClientBuilder>,
    /// Settings every identity's filesystem starts from (uid, gid and staging are per user).
    template: FsConfig,
    /// One block cache and read-ahead budget for the whole mount (blocks keyed by identity):
    /// with one `cache_size` per identity, 100 users could hold 100 × 256 MiB.
    shared: MountShared,
    /// Held only to find or insert an entry, never across any I/O.
    identities: Mutex<HashMap<u32, Arc<Entry>>>,
    slots: Mutex<HashMap<u16, Arc<Fs>>>,
    next_slot: Mutex<u16>,
}

impl MultiUser {
    pub fn new(profile: Profile, endpoint: String, mut template: FsConfig, clients: Arc<dyn ClientBuilder>) -> Self {
        template.attr_ttl = Duration::ZERO;
        template.staging_quota = template.staging_quota.or(Some(crate::fs::DEFAULT_MULTIUSER_STAGING_QUOTA));
        // Blocks spill to one private directory of root's, keyed by identity like the memory tier.
        let shared = MountShared::new(&template);
        MultiUser {
            profile,
            endpoint,
            clients,
            template,
            shared,
            identities: Mutex::new(HashMap::new()),
            slots: Mutex::new(HashMap::new()),
            next_slot: Mutex::new(1),
        }
    }

    /// Builds the filesystem of `uid` from that user's token store, read with the user's own
    /// filesystem identity (see `untrusted`).
    fn open_identity(&self, uid: u32, gid: u32) -> Result<Arc<Fs>, String> {
        let home = home_of(uid).ok_or_else(|| format!("uid {uid} has no home directory in the user database"))?;
        let dir = home.join(".local/state/ssofs");
        let not_signed_in =
            || format!("uid {uid} has not signed in; run `ssofs login --profile {}`", self.profile.name);
        let store = TokenStore::open_for_user(&dir, uid, gid).map_err(|e| e.to_string())?.ok_or_else(not_signed_in)?;
        if store.load(&self.profile.name).map_err(|e| e.to_string())?.is_none() {
            return Err(not_signed_in());
        }
        let client = self.clients.build(&self.profile, &self.endpoint, store.clone()).map_err(|e| e.to_string())?;
        let mut config = self.template.clone();
        config.uid = uid;
        config.gid = gid;
        // Root's own private directories per user: no user can read, replace or swap another's
        // (or their own) staged writes and cached blocks.
        config.staging_dir = crate::untrusted::private_dir(&self.template.staging_dir.join(format!("uid-{uid}")))?;
        crate::fs::staging::expire_refused(&config.staging_dir);
        let fs = Arc::new(Fs::with_shared(client, config, &self.shared));
        fs.set_identity(&self.profile.name, store);
        Ok(fs)
    }

    fn entry(&self, uid: u32) -> Arc<Entry> {
        self.identities
            .lock()
            .unwrap()
            .entry(uid)
            .or_insert_with(|| Arc::new(Entry { identity: Mutex::new(Identity::Unknown), settled: Condvar::new() }))
            .clone()
    }

    fn new_slot(&self, fs: &Arc<Fs>) -> u16 {
        let slot = {
            let mut next = self.next_slot.lock().unwrap();
            let s = *next;
            *next = next.wrapping_add(1).max(1);
            s
        };
        self.slots.lock().unwrap().insert(slot, fs.clone());
        slot
    }

    /// Drops identities idle for `idle` that have no open files.
    pub fn drop_idle(&self, idle: Duration) -> usize {
        let mut identities = self.identities.lock().unwrap();
        let mut slots = self.slots.lock().unwrap();
        let before = identities.len();
        identities.retain(|_, entry| {
            // An identity being opened (or in use this instant) is kept; the next sweep looks again.
            let Ok(mut id) = entry.identity.try_lock() else { return true };
            let keep = match &*id {
                Identity::Ready { slot, fs, last_used } => {
                    let keep = last_used.elapsed() < idle || !fs.open_handles().is_empty();
                    if !keep {
                        slots.remove(slot);
                    }
                    keep
                }
                Identity::NoLogin { checked, .. } => checked.elapsed() < idle,
                Identity::Opening => true,
                Identity::Unknown => false,
            };
            if !keep {
                *id = Identity::Unknown;
            }
            keep
        });
        before - identities.len()
    }

    /// Identities held in memory now.
    pub fn active(&self) -> usize {
        let entries: Vec<Arc<Entry>> = self.identities.lock().unwrap().values().cloned().collect();
        entries.iter().filter(|e| matches!(*e.identity.lock().unwrap(), Identity::Ready { .. })).count()
    }
}

impl FsResolver for MultiUser {
    fn for_uid(&self, uid: u32, gid: u32) -> Result<(u16, Arc<Fs>), FsError> {
        let entry = self.entry(uid);
        let waited_since = Instant::now();
        let mut id = entry.identity.lock().unwrap();
        loop {
            if let Some(answer) = id.settled() {
                return answer;
            }
            match &*id {
                Identity::Opening => {
                    let left = OPEN_WAIT.saturating_sub(waited_since.elapsed());
                    if left.is_zero() {
                        return Err(FsError::Access(format!("uid {uid}'s token store is still being read; try again")));
                    }
                    id = entry.settled.wait_timeout(id, left).unwrap().0;
                }
                _ => break,
            }
        }
        let was_refused = matches!(*id, Identity::NoLogin { .. });
        *id = Identity::Opening;
        drop(id);
        let opened = self.open_identity(uid, gid);
        let mut id = entry.identity.lock().unwrap();
        let result = match opened {
            Ok(fs) => {
                let slot = self.new_slot(&fs);
                *id = Identity::Ready { slot, fs: fs.clone(), last_used: Instant::now() };
                tracing::info!(uid, "serving this user with their own identity");
                Ok((slot, fs))
            }
            Err(reason) => {
                // One log line per uid, not one per request.
                if !was_refused {
                    tracing::warn!(uid, reason = %reason, "request refused: no usable login for this user");
                }
                *id = Identity::NoLogin { checked: Instant::now(), reason: reason.clone() };
                Err(FsError::Access(reason))
            }
        };
        entry.settled.notify_all();
        result
    }

    fn for_uid_now(&self, uid: u32, _gid: u32) -> Option<Result<(u16, Arc<Fs>), FsError>> {
        let entry = self.identities.lock().unwrap().get(&uid).cloned()?;
        entry.identity.lock().unwrap().settled()
    }

    fn for_slot(&self, slot: u16) -> Option<Arc<Fs>> {
        self.slots.lock().unwrap().get(&slot).cloned()
    }

    fn ttl(&self) -> Duration {
        Duration::ZERO
    }

    fn direct_io(&self) -> bool {
        true
    }

    /// Each identity keeps the inodes it has seen until it is dropped: the kernel's counts are for
    /// the mount as a whole, not per identity.
    fn forget(&self, _ino: u64, _n: u64) {}

    fn all(&self) -> Vec<Arc<Fs>> {
        self.slots.lock().unwrap().values().cloned().collect()
    }

    fn bare_root(&self, uid: u32, gid: u32) -> Stat {
        Stat {
            ino: ROOT,
            is_dir: true,
            symlink: false,
            size: 0,
            mtime: SystemTime::now(),
            perm: self.template.dir_mode,
            uid,
            gid,
        }
    }
}

/// The home directory of `uid` from the user database.
fn home_of(uid: u32) -> Option<PathBuf> {
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: passwd is plain old data; all-zero is a valid value for getpwuid_r to overwrite.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes into pwd and buf, which outlive the call; result is checked.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() || pwd.pw_dir.is_null() {
        return None;
    }
    // SAFETY: pw_dir points into buf and is NUL-terminated.
    let dir = unsafe { std::ffi::CStr::from_ptr(pwd.pw_dir) };
    use std::os::unix::ffi::OsStrExt;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(dir.to_bytes())))
}
