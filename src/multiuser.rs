//! Multi-user mounts (`-o multiuser`), on the model of CIFS's `multiuser` with per-user `cifscreds`:
//! one mount, made by root, serves every Unix user with that user's own identity.
//!
//! Trust model: the mount runs as root and, for a request from uid U, reads U's own token store
//! (`~U/.local/state/ssofs`, which must belong to U and be private), gets U's own STS credentials and
//! serves the request from U's own filesystem state — listings, attributes, data blocks and staged
//! writes are never shared between identities. The kernel is told not to cache entries, attributes or
//! pages (TTL 0, direct I/O), so it asks again for every user. A user with no login sees an empty root
//! and gets EACCES below it; the same mount serves them as soon as they run `ssofs login`.
//! Identities idle for `IDLE_DROP` are dropped from memory (and rebuilt from the store on next use).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::config::Profile;
use crate::credentials::CredentialProvider;
use crate::fs::inode::ROOT;
use crate::fs::{Fs, FsConfig, FsError, Stat};
use crate::fuse::FsResolver;
use crate::identity::{StoreTokenSource, TokenStore, refresh::DEFAULT_MARGIN};
use crate::object::retry::Retrying;

/// How long a user without a login is remembered as such before the store is looked at again.
const NO_LOGIN_RECHECK: Duration = Duration::from_secs(2);
/// Identities unused this long (and with no open files) are dropped from memory.
pub const IDLE_DROP: Duration = Duration::from_secs(600);

enum Identity {
    Ready { slot: u16, fs: Arc<Fs>, last_used: Instant },
    NoLogin { checked: Instant, reason: String },
}

pub struct MultiUser {
    profile: Profile,
    endpoint: String,
    /// Settings every identity's filesystem starts from (uid, gid and staging are per user).
    template: FsConfig,
    identities: Mutex<HashMap<u32, Identity>>,
    slots: Mutex<HashMap<u16, Arc<Fs>>>,
    next_slot: Mutex<u16>,
}

impl MultiUser {
    pub fn new(profile: Profile, endpoint: String, mut template: FsConfig) -> Self {
        template.attr_ttl = Duration::ZERO;
        MultiUser {
            profile,
            endpoint,
            template,
            identities: Mutex::new(HashMap::new()),
            slots: Mutex::new(HashMap::new()),
            next_slot: Mutex::new(1),
        }
    }

    /// Builds the filesystem of `uid` from that user's token store.
    fn open_identity(&self, uid: u32, gid: u32) -> Result<Arc<Fs>, String> {
        let home = home_of(uid).ok_or_else(|| format!("uid {uid} has no home directory in the user database"))?;
        let dir = home.join(".local/state/ssofs");
        if !dir.exists() {
            return Err(format!("uid {uid} has not signed in; run `ssofs login --profile {}`", self.profile.name));
        }
        let store = TokenStore::open_for_user(&dir, uid, gid).map_err(|e| e.to_string())?;
        if store.load(&self.profile.name).map_err(|e| e.to_string())?.is_none() {
            return Err(format!("uid {uid} has not signed in; run `ssofs login --profile {}`", self.profile.name));
        }
        let tokens = Arc::new(StoreTokenSource::new(self.profile.clone(), store, DEFAULT_MARGIN));
        let provider = CredentialProvider::for_profile(&self.profile, tokens).map_err(|e| e.to_string())?;
        let client = Arc::new(Retrying::new(
            crate::mount::s3_client(provider, &self.endpoint, &self.profile)?,
            crate::object::retry::deadline(&self.profile),
        ));
        let mut config = self.template.clone();
        config.uid = uid;
        config.gid = gid;
        // Root-only directories per user: no user can read another's staged writes.
        config.staging_dir = self.template.staging_dir.join(format!("uid-{uid}"));
        if let Some((dir, limit)) = &self.template.disk_cache {
            config.disk_cache = Some((dir.join(format!("uid-{uid}")), *limit));
        }
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.staging_dir)
            .map_err(|e| format!("cannot create {}: {e}", config.staging_dir.display()))?;
        Ok(Arc::new(Fs::new(client, config)))
    }

    /// Drops identities idle for `idle` that have no open files.
    pub fn drop_idle(&self, idle: Duration) -> usize {
        let mut identities = self.identities.lock().unwrap();
        let mut slots = self.slots.lock().unwrap();
        let before = identities.len();
        identities.retain(|_, id| match id {
            Identity::Ready { slot, fs, last_used } => {
                let keep = last_used.elapsed() < idle || !fs.open_handles().is_empty();
                if !keep {
                    slots.remove(slot);
                }
                keep
            }
            Identity::NoLogin { checked, .. } => checked.elapsed() < idle,
        });
        before - identities.len()
    }

    /// Identities held in memory now.
    pub fn active(&self) -> usize {
        self.identities.lock().unwrap().values().filter(|i| matches!(i, Identity::Ready { .. })).count()
    }
}

impl FsResolver for MultiUser {
    fn for_uid(&self, uid: u32, gid: u32) -> Result<(u16, Arc<Fs>), FsError> {
        let mut identities = self.identities.lock().unwrap();
        match identities.get_mut(&uid) {
            Some(Identity::Ready { slot, fs, last_used }) => {
                *last_used = Instant::now();
                return Ok((*slot, fs.clone()));
            }
            Some(Identity::NoLogin { checked, reason }) if checked.elapsed() < NO_LOGIN_RECHECK => {
                return Err(FsError::Access(reason.clone()));
            }
            _ => {}
        }
        match self.open_identity(uid, gid) {
            Ok(fs) => {
                let slot = {
                    let mut next = self.next_slot.lock().unwrap();
                    let s = *next;
                    *next = next.wrapping_add(1).max(1);
                    s
                };
                self.slots.lock().unwrap().insert(slot, fs.clone());
                identities.insert(uid, Identity::Ready { slot, fs: fs.clone(), last_used: Instant::now() });
                tracing::info!(uid, "serving this user with their own identity");
                Ok((slot, fs))
            }
            Err(reason) => {
                // One log line per uid, not one per request.
                if !matches!(identities.get(&uid), Some(Identity::NoLogin { .. })) {
                    tracing::warn!(uid, reason = %reason, "request refused: no usable login for this user");
                }
                identities.insert(uid, Identity::NoLogin { checked: Instant::now(), reason: reason.clone() });
                Err(FsError::Access(reason))
            }
        }
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
        Stat { ino: ROOT, is_dir: true, size: 0, mtime: SystemTime::now(), perm: self.template.dir_mode, uid, gid }
    }
}

/// The home directory of `uid` from the user database.
fn home_of(uid: u32) -> Option<PathBuf> {
    let mut buf = vec![0u8; 16 * 1024];
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
