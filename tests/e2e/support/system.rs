//! What the tests of the admin's ways of mounting share: real Unix users signed in with the
//! devstack, lines in the real /etc/fstab, the source mount helper installed under a private type
//! name, and guards that undo all of it even when a test fails.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ssofs::config::{self, Sources};
use ssofs::identity::{TokenStore, login};

use super::{mounted, text};

/// A test's prerequisite. `make test` installs the packages tests need and CI runs as root, so a
/// missing one fails the test (skipping would pass without testing anything), unless
/// `SSOFS_TESTS_MAY_SKIP` is set: for runs as an ordinary user, or on a machine without them.
pub fn require(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    if std::env::var_os("SSOFS_TESTS_MAY_SKIP").is_some() {
        eprintln!("skipped: {what}");
        return false;
    }
    panic!("{what}: run as root after scripts/install-deps (or set SSOFS_TESTS_MAY_SKIP=1 to skip this test)");
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A short tag unique to this test process and moment (user names are at most 32 characters).
/// Under `cargo test` the tests of the e2e binary share one process (nextest runs each in its
/// own), and the clock part repeats about every millisecond: a counter keeps their tags apart.
pub fn tag() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let count = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:x}{:05x}{count:x}", std::process::id() % 0xfff, n % 0xfffff)
}

/// A Unix user created with useradd for the test and removed (with its home) when dropped.
pub struct UnixUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl UnixUser {
    pub fn create(name: &str, homes: &Path) -> UnixUser {
        std::fs::create_dir_all(homes).unwrap();
        std::fs::set_permissions(homes, std::fs::Permissions::from_mode(0o755)).unwrap();
        let home = homes.join(name);
        let out = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", "-d"])
            .arg(&home)
            .arg(name)
            .output()
            .expect("useradd runs (the test needs root)");
        assert!(out.status.success(), "useradd {name}: {}", text(&out));
        let id = |flag: &str| -> u32 {
            String::from_utf8(Command::new("id").arg(flag).arg(name).output().unwrap().stdout)
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        UnixUser { name: name.into(), uid: id("-u"), gid: id("-g"), home }
    }

    /// Runs `sh -c cmd` as this user (runuser: the environment of a su without -l).
    pub fn run(&self, cmd: &str) -> Output {
        Command::new("runuser").args(["-u", &self.name, "--", "sh", "-c", cmd]).output().unwrap()
    }

    pub fn chown(&self, p: &Path) {
        std::os::unix::fs::chown(p, Some(self.uid), Some(self.gid)).unwrap();
    }

    /// Writes `contents` to `rel` below the home, owned by the user, directories included.
    pub fn write_file(&self, rel: &str, contents: &[u8], mode: u32) -> PathBuf {
        let path = self.home.join(rel);
        let mut dir = self.home.clone();
        for part in Path::new(rel).parent().unwrap().components() {
            dir.push(part);
            std::fs::create_dir_all(&dir).unwrap();
            self.chown(&dir);
        }
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        self.chown(&path);
        path
    }

    /// `ssofs login` done by this user: the devstack's profile in ~/.config/ssofs/config.toml and
    /// the tokens of `as_devstack_user` in ~/.local/state/ssofs, both the user's own and private.
    pub async fn sign_in(&self, stack: &ssofs_devstack::Running, as_devstack_user: &str) -> config::Profile {
        let profile =
            config::load_profile(&Sources { extra: Some(stack.profile_file.clone()), ..Default::default() }, None)
                .unwrap();
        self.write_file(".config/ssofs/config.toml", &std::fs::read(&stack.profile_file).unwrap(), 0o600);
        super::control_client(stack)
            .post(format!("{}/auto-approve", stack.control_url))
            .form(&[("user", as_devstack_user)])
            .send()
            .await
            .unwrap();
        let tokens = login::device_code(&profile, &mut Vec::new()).await.unwrap();
        let dir = self.home.join(".local/state/ssofs");
        std::fs::create_dir_all(&dir).unwrap();
        for d in [self.home.join(".local"), self.home.join(".local/state"), dir.clone()] {
            self.chown(&d);
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        TokenStore::open_for_user(&dir, self.uid, self.gid)
            .unwrap()
            .expect("the store was just made")
            .save(&profile.name, &tokens)
            .unwrap();
        profile
    }
}

impl Drop for UnixUser {
    fn drop(&mut self) {
        // A mount's ssofs may still be exiting after the unmount: userdel refuses a user in use.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Command::new("userdel").arg("-r").arg(&self.name).output().is_ok_and(|o| o.status.code() == Some(8))
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        if Command::new("id").arg(&self.name).output().is_ok_and(|o| o.status.success()) {
            let _ = Command::new("userdel").args(["-r", "-f"]).arg(&self.name).output();
        }
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// Lines added to the real /etc/fstab (non-root mount(8) reads no other file), removed when
/// dropped; other lines, added by anyone meanwhile, are kept. A missing /etc/fstab is created and
/// removed again.
pub struct FstabLines {
    marker: String,
    created: bool,
}

pub const FSTAB: &str = "/etc/fstab";

impl FstabLines {
    pub fn add(lines: &[String]) -> FstabLines {
        let marker = format!("# ssofs-test {}", tag());
        let (existing, created) = match std::fs::read_to_string(FSTAB) {
            Ok(s) => (s, false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), true),
            Err(e) => panic!("{FSTAB}: {e}"),
        };
        let mut added = String::new();
        if !existing.is_empty() && !existing.ends_with('\n') {
            added.push('\n');
        }
        for l in lines {
            assert!(!l.contains('\n'), "one line: {l}");
            added.push_str(&format!("{l} {marker}\n"));
        }
        let guard = FstabLines { marker, created };
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(FSTAB).unwrap();
        use std::io::Write;
        f.write_all(added.as_bytes()).unwrap();
        guard
    }
}

impl Drop for FstabLines {
    fn drop(&mut self) {
        let Ok(s) = std::fs::read_to_string(FSTAB) else { return };
        let kept: String = s.lines().filter(|l| !l.ends_with(&self.marker)).map(|l| format!("{l}\n")).collect();
        if self.created && kept.trim().is_empty() {
            let _ = std::fs::remove_file(FSTAB);
        } else {
            // Written to a temporary file and renamed: never a half-written fstab.
            let tmp = PathBuf::from(format!("{FSTAB}.ssofs-test-{}", std::process::id()));
            if std::fs::write(&tmp, kept).is_ok() {
                let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644));
                let _ = std::fs::rename(&tmp, FSTAB);
            }
        }
    }
}

/// The mount helper from packaging/ installed as /sbin/mount.fuse.<name> for a type of its own, so
/// the code under test runs even where a packaged /sbin/mount.fuse.ssofs is installed.
pub struct PrivateHelper {
    pub fstype: String,
    path: PathBuf,
}

impl PrivateHelper {
    pub fn install(name: &str) -> PrivateHelper {
        let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/mount.fuse.ssofs");
        let path = PathBuf::from(format!("/sbin/mount.fuse.{name}"));
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(&ours, &path).unwrap();
        PrivateHelper { fstype: format!("fuse.{name}"), path }
    }
}

impl Drop for PrivateHelper {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whatever is still mounted at the path when dropped is detached (a failed test leaves nothing).
pub struct UnmountOnDrop(pub PathBuf);

impl Drop for UnmountOnDrop {
    fn drop(&mut self) {
        if mounted(&self.0) {
            let _ = Command::new("fusermount3").arg("-uz").arg(&self.0).output();
        }
    }
}

/// Polls `f` until it holds or `secs` pass.
pub fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A private directory tree for one test, removed when dropped.
pub struct TestDir(pub PathBuf);

impl TestDir {
    pub fn new(tag: &str) -> TestDir {
        let d = PathBuf::from(format!("/tmp/ssofs-{tag}-{}", self::tag()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        TestDir(d)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A devstack with a short device-code interval, its state under `dir`.
pub async fn devstack(dir: &Path) -> ssofs_devstack::Running {
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.device_code_interval = Duration::from_secs(1);
    ssofs_devstack::start(cfg).await.unwrap()
}

/// Ordinary users' FUSE mounts need /dev/fuse mode 0666, as udev sets it on a standard system;
/// some containers pass it as 0600. While any test holds one of these, it is 0666; the last one
/// dropped puts the original mode back. Holders are files in a shared directory, under a lock.
pub struct DevFuseForUsers {
    holder: PathBuf,
}

const DEV_FUSE: &str = "/dev/fuse";
const HOLDERS: &str = "/tmp/ssofs-test-dev-fuse";

fn with_holders_lock<T>(f: impl FnOnce() -> T) -> T {
    std::fs::create_dir_all(HOLDERS).unwrap();
    let lock = std::fs::File::create(format!("{HOLDERS}.lock")).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: flock on our own open file; released when it is closed.
    unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    let out = f();
    drop(lock);
    out
}

impl DevFuseForUsers {
    pub fn hold() -> DevFuseForUsers {
        with_holders_lock(|| {
            let mode = std::fs::metadata(DEV_FUSE).unwrap().permissions().mode() & 0o7777;
            let orig = Path::new(HOLDERS).join("original-mode");
            let others =
                std::fs::read_dir(HOLDERS).unwrap().filter_map(Result::ok).any(|e| e.file_name() != "original-mode");
            if !others {
                std::fs::write(&orig, format!("{mode:o}")).unwrap();
            }
            if mode & 0o666 != 0o666 {
                std::fs::set_permissions(DEV_FUSE, std::fs::Permissions::from_mode(0o666)).unwrap();
            }
            let holder = Path::new(HOLDERS).join(format!("{}-{}", std::process::id(), tag()));
            std::fs::write(&holder, b"").unwrap();
            DevFuseForUsers { holder }
        })
    }
}

impl Drop for DevFuseForUsers {
    fn drop(&mut self) {
        with_holders_lock(|| {
            let _ = std::fs::remove_file(&self.holder);
            let orig = Path::new(HOLDERS).join("original-mode");
            let others = std::fs::read_dir(HOLDERS)
                .map(|d| d.filter_map(Result::ok).any(|e| e.file_name() != "original-mode"))
                .unwrap_or(false);
            if !others {
                if let Some(mode) =
                    std::fs::read_to_string(&orig).ok().and_then(|m| u32::from_str_radix(m.trim(), 8).ok())
                {
                    let _ = std::fs::set_permissions(DEV_FUSE, std::fs::Permissions::from_mode(mode));
                }
                let _ = std::fs::remove_dir_all(HOLDERS);
            }
        })
    }
}
