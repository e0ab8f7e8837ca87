//! Per-user, per-profile token store: `$SSOFS_STATE_DIR` or `$XDG_STATE_HOME/ssofs` (default
//! `~/.local/state/ssofs`), directory 0700, files 0600, written atomically. Files are opened without
//! following symlinks or blocking, and only as regular files of the store's owner (see `untrusted`).

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::IdentityError;
use crate::untrusted::{self, Expect, UserIds};

/// What a login leaves behind. Debug never prints the tokens.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredTokens {
    pub issuer: String,
    pub client_id: String,
    pub id_token: String,
    pub access_token: String,
    /// Unix seconds when the access token expires (from `expires_in`).
    #[serde(default)]
    pub access_token_expires_at: Option<i64>,
    pub refresh_token: Option<String>,
    /// Unix seconds when the ID token expires.
    pub id_token_expires_at: i64,
    /// `preferred_username` of the signed-in user, for status lines.
    pub username: Option<String>,
}

impl std::fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTokens")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("id_token_expires_at", &self.id_token_expires_at)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

/// The identity provider refused the stored sign-in (`<profile>.login-required` in the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequired {
    pub reason: String,
    /// Unix seconds when it was found.
    pub since: i64,
}

#[derive(Clone)]
pub struct TokenStore {
    dir: PathBuf,
    /// The user whose store this is, when root opened it for them (a multi-user mount): every
    /// access then runs with that user's filesystem identity (`untrusted::as_user`), so the store
    /// can only reach what its owner could, and files written are the owner's without any chown.
    owner: Option<UserIds>,
}

/// A token file is a few KiB (16 KB ID tokens included); anything far larger is not one.
const MAX_TOKEN_FILE: u64 = 1 << 20;
/// How long a refresh waits for another process holding the profile's lock.
const LOCK_WAIT: Duration = Duration::from_secs(60);

impl TokenStore {
    /// `$SSOFS_STATE_DIR`, else `$XDG_STATE_HOME/ssofs`, else `~/.local/state/ssofs`.
    pub fn default_dir() -> Result<PathBuf, IdentityError> {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        env("SSOFS_STATE_DIR")
            .or_else(|| env("XDG_STATE_HOME").map(|d| d.join("ssofs")))
            .or_else(|| env("HOME").map(|h| h.join(".local/state/ssofs")))
            .ok_or_else(|| IdentityError::Store("neither SSOFS_STATE_DIR, XDG_STATE_HOME nor HOME is set".into()))
    }

    /// Opens the store, creating it 0700 if needed. A store that other users can read is refused
    /// rather than silently fixed: tokens may already have leaked, and the user should know.
    pub fn open(dir: &Path) -> Result<Self, IdentityError> {
        let io = |e: std::io::Error| IdentityError::Store(format!("{}: {e}", dir.display()));
        if !dir.exists() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
        }
        refuse_if_shared(dir, 0o700)?;
        Ok(TokenStore { dir: dir.to_path_buf(), owner: None })
    }

    /// Opens another user's existing store (as root, for a multi-user mount), looking at it as that
    /// user: the directory must be theirs, private and not a symlink. `None` when there is none.
    pub fn open_for_user(dir: &Path, uid: u32, gid: u32) -> Result<Option<Self>, IdentityError> {
        let owner = UserIds { uid, gid };
        let path = dir.to_path_buf();
        let found = untrusted::as_user(owner, move || -> Result<bool, IdentityError> {
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(IdentityError::Store(format!("{}: {e}", path.display()))),
            };
            if !meta.is_dir() {
                return Err(IdentityError::Store(format!("{} is not a directory; refusing to use it", path.display())));
            }
            if meta.uid() != uid {
                return Err(IdentityError::Store(format!(
                    "{} belongs to uid {}, not to uid {uid}; refusing to use it",
                    path.display(),
                    meta.uid()
                )));
            }
            refuse_if_shared(&path, 0o700)?;
            Ok(true)
        })
        .map_err(|e| IdentityError::Store(format!("{}: {e}", dir.display())))??;
        Ok(found.then(|| TokenStore { dir: dir.to_path_buf(), owner: Some(owner) }))
    }

    /// Runs a file operation on the store with its owner's identity (or as is, for our own store).
    fn access<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Path, u32) -> Result<T, IdentityError> + Send + 'static,
    ) -> Result<T, IdentityError> {
        let dir = self.dir.clone();
        match self.owner {
            Some(ids) => untrusted::as_user(ids, move || f(&dir, ids.uid))
                .map_err(|e| IdentityError::Store(format!("{}: {e}", self.dir.display())))?,
            None => f(&dir, untrusted::euid()),
        }
    }

    /// Takes the store's lock for `profile`, waiting up to a minute for other processes to release
    /// it. Held while refreshing, so two processes never both spend the refresh token and lose the
    /// newer one.
    pub fn lock(&self, profile: &str) -> Result<StoreLock, IdentityError> {
        let name = format!("{}.lock", sanitize(profile));
        let file = self.access(move |dir, owner| {
            let path = dir.join(&name);
            untrusted::open_or_create(&path, 0o600, owner)
                .map_err(|e| IdentityError::Store(format!("{}: {e}", path.display())))
        })?;
        // The lock file is the user's: they may hold it as long as they like, which must stall
        // nobody else (a bounded wait on the caller's own identity).
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            // SAFETY: flock on a descriptor we own; the lock is released when `file` is closed.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(StoreLock { _file: file });
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(IdentityError::Store(format!("cannot lock {}: {e}", self.dir.join(profile).display())));
            }
            if std::time::Instant::now() > deadline {
                return Err(IdentityError::Store(format!(
                    "another process has held the lock of profile {profile} in {} for more than {} s",
                    self.dir.display(),
                    LOCK_WAIT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The user this store belongs to when root opened it for them (a multi-user mount).
    pub fn owner(&self) -> Option<UserIds> {
        self.owner
    }

    fn file_name(profile: &str) -> String {
        format!("{}.tokens.json", sanitize(profile))
    }

    pub fn save(&self, profile: &str, tokens: &StoredTokens) -> Result<(), IdentityError> {
        let json = serde_json::to_vec_pretty(tokens).map_err(|e| IdentityError::Store(e.to_string()))?;
        let (name, marker) = (Self::file_name(profile), marker_name(profile));
        self.access(move |dir, _| {
            write_atomically(&dir.join(name), &json)?;
            // New tokens (a login, or a refresh another process made): no new sign-in is needed now.
            let _ = std::fs::remove_file(dir.join(marker));
            Ok(())
        })
    }

    /// Records that the identity provider refused the stored sign-in, with the reason, so that
    /// `ssofs status` can say so (the mount that found out runs elsewhere). Cleared by `save`.
    pub fn mark_login_required(&self, profile: &str, reason: &str) -> Result<(), IdentityError> {
        let marker = LoginRequired { reason: reason.to_string(), since: crate::identity::login::now_unix() };
        let json = serde_json::to_vec(&marker).map_err(|e| IdentityError::Store(e.to_string()))?;
        let name = marker_name(profile);
        self.access(move |dir, _| write_atomically(&dir.join(name), &json))
    }

    /// Why a new sign-in is needed, when a mount or command found the stored one refused.
    pub fn login_required(&self, profile: &str) -> Option<LoginRequired> {
        let name = marker_name(profile);
        let bytes = self
            .access(move |dir, owner| {
                let expect = Expect { owner: Some(owner), private: false };
                untrusted::read_regular(&dir.join(name), expect, 64 << 10)
                    .map_err(|e| IdentityError::Store(e.to_string()))
            })
            .ok()?;
        Some(
            serde_json::from_slice(&bytes).unwrap_or(LoginRequired {
                reason: "the identity provider refused the stored sign-in".into(),
                since: 0,
            }),
        )
    }

    pub fn load(&self, profile: &str) -> Result<Option<StoredTokens>, IdentityError> {
        let name = Self::file_name(profile);
        let profile = profile.to_string();
        self.access(move |dir, owner| {
            let path = dir.join(name);
            let expect = Expect { owner: Some(owner), private: true };
            let bytes = match untrusted::read_regular(&path, expect, MAX_TOKEN_FILE) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) if e.to_string().contains("accessible to other users") => {
                    return Err(IdentityError::Store(format!(
                        "{e}; run `chmod 600 {}` and, if others may have read it, `ssofs logout` then `ssofs login`",
                        path.display()
                    )));
                }
                Err(e) => return Err(IdentityError::Store(format!("{}: {e}", path.display()))),
            };
            serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                IdentityError::Store(format!(
                    "{} is damaged ({e}); run `ssofs login --profile {profile}` again",
                    path.display()
                ))
            })
        })
    }

    pub fn remove(&self, profile: &str) -> Result<bool, IdentityError> {
        let name = Self::file_name(profile);
        self.access(move |dir, _| match std::fs::remove_file(dir.join(name)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(IdentityError::Store(e.to_string())),
        })
    }
}

fn marker_name(profile: &str) -> String {
    format!("{}.login-required", sanitize(profile))
}

/// Writes `path` through a new private file (O_EXCL, never through a symlink) renamed over it.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), IdentityError> {
    let io = |e: std::io::Error| IdentityError::Store(format!("{}: {e}", path.display()));
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // A crash may have left one behind; whatever is there (a symlink included) is only unlinked.
    let _ = std::fs::remove_file(&tmp);
    let mut f = untrusted::create_new(&tmp, 0o600).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Held while a profile's tokens are being refreshed; dropping it releases the lock.
pub struct StoreLock {
    _file: std::fs::File,
}

fn refuse_if_shared(path: &Path, wanted: u32) -> Result<(), IdentityError> {
    let mode = std::fs::metadata(path)
        .map_err(|e| IdentityError::Store(format!("{}: {e}", path.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(IdentityError::Store(format!(
            "{} is accessible to other users (mode {:o}); run `chmod {wanted:o} {}` and, if others may have read it, `ssofs logout` then `ssofs login`",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    Ok(())
}

/// Profile names become file names: keep them to a safe alphabet.
fn sanitize(profile: &str) -> String {
    profile.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_private_files_and_reads_them_back() {
        let dir = std::env::temp_dir().join(format!("ssofs-store-{}", std::process::id()));
        let store = TokenStore::open(&dir).unwrap();
        let t = StoredTokens {
            issuer: "https://i".into(),
            client_id: "c".into(),
            id_token: "secret-id-token".into(),
            access_token: "secret-access".into(),
            access_token_expires_at: None,
            refresh_token: Some("secret-refresh".into()),
            id_token_expires_at: 1,
            username: Some("alice".into()),
        };
        store.save("dev/stack", &t).unwrap();
        let path = dir.join("dev_stack.tokens.json");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(store.load("dev/stack").unwrap().unwrap().refresh_token.as_deref(), Some("secret-refresh"));
        assert!(!format!("{t:?}").contains("secret"));
        // A refused sign-in is recorded privately until new tokens are saved.
        assert_eq!(store.login_required("dev/stack"), None);
        store.mark_login_required("dev/stack", "revoked").unwrap();
        let marker = dir.join("dev_stack.login-required");
        assert_eq!(std::fs::metadata(&marker).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(store.login_required("dev/stack").map(|m| m.reason).as_deref(), Some("revoked"));
        store.save("dev/stack", &t).unwrap();
        assert_eq!(store.login_required("dev/stack"), None);
        assert!(store.remove("dev/stack").unwrap());
        assert!(store.load("dev/stack").unwrap().is_none());
    }

    #[test]
    fn refuses_a_store_others_can_read() {
        let dir = std::env::temp_dir().join(format!("ssofs-store-shared-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = TokenStore::open(&dir).err().expect("a 0755 store is refused").to_string();
        assert!(err.contains("chmod 700"), "{err}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let store = TokenStore::open(&dir).unwrap();
        std::fs::write(dir.join("p.tokens.json"), "{}").unwrap();
        std::fs::set_permissions(dir.join("p.tokens.json"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = store.load("p").unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn the_lock_excludes_a_second_holder() {
        let dir = std::env::temp_dir().join(format!("ssofs-store-lock-{}", std::process::id()));
        let store = TokenStore::open(&dir).unwrap();
        let held = store.lock("p").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let dir2 = dir.clone();
        let t = std::thread::spawn(move || {
            let store = TokenStore::open(&dir2).unwrap();
            let _second = store.lock("p").unwrap();
            tx.send(()).unwrap();
        });
        assert!(rx.recv_timeout(std::time::Duration::from_millis(200)).is_err(), "second lock waits");
        drop(held);
        rx.recv_timeout(std::time::Duration::from_secs(5)).expect("second lock granted after release");
        t.join().unwrap();
    }
}
