//! A multi-user mount stages every user's writes on root's disk (`<cache_dir>/staging/<mount>/uid-N`). So
//! one user cannot fill that disk for everyone: `-o staging_quota=SIZE` (default 1G per user in a
//! multi-user mount) bounds what a user may have staged, and a write beyond it fails with ENOSPC.
//! And a write the bucket policy refuses (403) is not a crash leftover: it fails at close with
//! EACCES, its staged copy is set aside in `uid-N/refused/` (never reported by the next mount as
//! "never uploaded"), and root can export it for the user (`ssofs recover --uid N --export DIR`) or
//! discard it (`--discard`).
//!
//! The mounts run as the `ssofs` binary (`mount --foreground`, as root), so that their staged files
//! outlive them as they would after a real mount and their warnings can be read.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::system::{TestDir, UnixUser, devstack, is_root, require, tag};
use crate::support::{self, mounted, text};

/// A `ssofs mount --foreground` child; unmounted and reaped when dropped (a failed test too).
struct MountChild {
    child: Option<Child>,
    mountpoint: PathBuf,
    log: PathBuf,
}

impl MountChild {
    /// Mounts `-o multiuser,cache_dir=CACHE<extra>` on `dir/mnt` with the devstack's profile; returns
    /// once mounted, or the mount's own words when it ends first.
    fn start(
        stack: &ssofs_devstack::Running,
        dir: &Path,
        cache: &Path,
        extra: &str,
        log_name: &str,
    ) -> Result<Self, String> {
        let mountpoint = dir.join("mnt");
        std::fs::create_dir_all(&mountpoint).unwrap();
        let log = dir.join(log_name);
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ssofs"))
            .args(["mount", "--foreground", "-o", &format!("multiuser,cache_dir={}{extra}", cache.display())])
            .arg(&mountpoint)
            .env("SSOFS_CONFIG", &stack.profile_file)
            .env("SSOFS_STATE_DIR", dir.join("root-state"))
            .env("XDG_CONFIG_HOME", dir.join("no-config"))
            .env_remove("SSOFS_LOG")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        let mut m = MountChild { child: Some(child), mountpoint, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !mounted(&m.mountpoint) {
            if m.child.as_mut().unwrap().try_wait().unwrap().is_some() || Instant::now() > deadline {
                m.stop();
                return Err(m.output());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(m)
    }

    fn path(&self, rel: &str) -> String {
        self.mountpoint.join(rel).display().to_string()
    }

    /// What the mount printed.
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Unmounts and waits for the mount to end (killing it after 30 s).
    fn stop(&mut self) {
        if mounted(&self.mountpoint) {
            let _ = Command::new("fusermount3").arg("-u").arg(&self.mountpoint).output();
        }
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if mounted(&self.mountpoint) {
            let _ = Command::new("fusermount3").arg("-uz").arg(&self.mountpoint).output();
        }
    }
}

impl Drop for MountChild {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `ssofs recover ARGS` as root, with the devstack's profile.
fn recover(stack: &ssofs_devstack::Running, dir: &Path, args: &[&str]) -> Output {
    Command::new("timeout")
        .args(["60", env!("CARGO_BIN_EXE_ssofs"), "recover"])
        .args(args)
        .env("SSOFS_CONFIG", &stack.profile_file)
        .env("SSOFS_STATE_DIR", dir.join("root-state"))
        .env("XDG_CONFIG_HOME", dir.join("no-config"))
        .env_remove("SSOFS_LOG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// Regular files below `dir` (none when it does not exist) other than sidecars, with their content.
fn staged_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                todo.push(e.path());
            } else if m.is_file() && !e.path().to_string_lossy().ends_with(".meta.json") {
                out.push((e.path(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out
}

fn listing(dir: &Path) -> Vec<String> {
    staged_files(dir).iter().map(|(p, _)| p.display().to_string()).collect()
}

/// Alice, on a multi-user mount with `staging_quota=1M`, writes 2 MiB into one file: the write
/// fails with "No space left on device" instead of filling root's disk. A 512 KiB file still fits
/// and is uploaded.
#[tokio::test(flavor = "multi_thread")]
async fn a_user_cannot_stage_more_than_their_quota_on_a_multiuser_mount() {
    if !require(is_root(), "a multi-user mount needs root") {
        return;
    }
    let t = TestDir::new("mu-quota");
    let stack = devstack(&t.0).await;
    let homes = PathBuf::from("/tmp/ssofs-quota-homes");
    let alice = UnixUser::create(&format!("sq-a{}", tag()), &homes);
    alice.sign_in(&stack, "alice").await;
    let cache = t.0.join("cache");

    let mut mount =
        tokio::task::block_in_place(|| MountChild::start(&stack, &t.0, &cache, ",staging_quota=1M", "mount.log"))
            .unwrap_or_else(|out| panic!("a multi-user mount with -o staging_quota=1M: {out}"));
    let n = tag();
    let big = mount.path(&format!("analytics-raw/quota-big-{n}.bin"));
    let dd = tokio::task::block_in_place(|| {
        alice.run(&format!("timeout 60 dd if=/dev/zero of={big} bs=64k count=32 conv=fsync 2>&1"))
    });
    assert!(!dd.status.success(), "2 MiB staged past a 1 MiB quota: {}", text(&dd));
    assert!(text(&dd).contains("No space left on device"), "{}", text(&dd));

    let small: Vec<u8> = (0..512 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let src = alice.write_file("small.bin", &small, 0o644);
    let key = format!("quota-small-{n}.bin");
    let cp = tokio::task::block_in_place(|| {
        alice.run(&format!("timeout 60 cp {} {}", src.display(), mount.path(&format!("analytics-raw/{key}"))))
    });
    assert!(cp.status.success(), "512 KiB fits in the quota: {}", text(&cp));
    let uploaded = support::s3_get(&stack, "analytics-raw", &key).await;
    assert_eq!(support::sha(&uploaded), support::sha(&small), "the 512 KiB file is uploaded whole");

    tokio::task::block_in_place(|| mount.stop());
    stack.shutdown().await;
}

/// Oscar (read-only on analytics-raw) and another read-only user write files the policy refuses:
/// close fails with "Permission denied" and each staged copy goes to `uid-N/refused/`. The next
/// mount of the same cache_dir does not call them "never uploaded"; root exports one user's with
/// `ssofs recover --uid N --export DIR` (DIR/<bucket>/<key>) and discards the other's with
/// `--discard`.
#[tokio::test(flavor = "multi_thread")]
async fn a_write_the_bucket_refuses_is_set_aside_for_root_to_export_or_discard() {
    if !require(is_root(), "a multi-user mount needs root") {
        return;
    }
    let t = TestDir::new("mu-refused");
    let stack = devstack(&t.0).await;
    let homes = PathBuf::from("/tmp/ssofs-quota-homes");
    let oscar = UnixUser::create(&format!("sq-o{}", tag()), &homes);
    let other = UnixUser::create(&format!("sq-r{}", tag()), &homes);
    oscar.sign_in(&stack, "oscar").await;
    other.sign_in(&stack, "oscar").await;
    let cache = t.0.join("cache");
    // One staging directory per mount (profile and mountpoint), uid-N below it for each user.
    let staging = cache.join("staging").join(ssofs::mount::mount_id("devstack", &t.0.join("mnt")));
    let n = tag();
    let (key_a, body_a) = (format!("refused-a-{n}.txt"), format!("oscar's words {n}\n"));
    let (key_b, body_b) = (format!("refused-b-{n}.txt"), format!("the other's words {n}\n"));

    let mut mount = tokio::task::block_in_place(|| MountChild::start(&stack, &t.0, &cache, "", "mount-1.log"))
        .unwrap_or_else(|out| panic!("multi-user mount: {out}"));
    for (user, key, body) in [(&oscar, &key_a, &body_a), (&other, &key_b, &body_b)] {
        let src = user.write_file("words.txt", body.as_bytes(), 0o644);
        let cp = tokio::task::block_in_place(|| {
            user.run(&format!("timeout 60 cp {} {}", src.display(), mount.path(&format!("analytics-raw/{key}"))))
        });
        assert!(!cp.status.success(), "the policy refuses {key}: {}", text(&cp));
        assert!(text(&cp).contains("Permission denied"), "{}", text(&cp));
    }
    tokio::task::block_in_place(|| mount.stop());

    let uid_dir = |u: &UnixUser| staging.join(format!("uid-{}", u.uid));
    for (user, body) in [(&oscar, &body_a), (&other, &body_b)] {
        let refused = uid_dir(user).join("refused");
        assert!(
            staged_files(&refused).iter().any(|(_, c)| c == body.as_bytes()),
            "the refused write is kept in {}; the uid's staging holds {:?}",
            refused.display(),
            listing(&uid_dir(user))
        );
        assert_eq!(
            ssofs::recover::report(&uid_dir(user)),
            None,
            "a refused write is not a leftover of a crash ({})",
            uid_dir(user).display()
        );
    }

    // The next mount of the same cache_dir has nothing to warn about.
    let mut again = tokio::task::block_in_place(|| MountChild::start(&stack, &t.0, &cache, "", "mount-2.log"))
        .unwrap_or_else(|out| panic!("second multi-user mount: {out}"));
    tokio::task::block_in_place(|| again.stop());
    let warned = again.output();
    assert!(!warned.contains("were never uploaded"), "refused writes reported as crash leftovers: {warned}");

    // Root exports oscar's, for him.
    let export = t.0.join("export");
    let c = cache.display().to_string();
    let uid = oscar.uid.to_string();
    let out = recover(&stack, &t.0, &["--cache-dir", &c, "--uid", &uid, "--export", export.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(export.join("analytics-raw").join(&key_a)).ok().as_deref(),
        Some(body_a.as_str()),
        "exported to DIR/<bucket>/<key>: {}",
        text(&out)
    );
    assert!(!export.join("analytics-raw").join(&key_b).exists(), "--uid exports only that user's files");

    // Root discards the other user's.
    let uid = other.uid.to_string();
    let out = recover(&stack, &t.0, &["--cache-dir", &c, "--uid", &uid, "--discard"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !staged_files(&uid_dir(&other)).iter().any(|(_, c)| c == body_b.as_bytes()),
        "--discard removes the refused write: {:?}",
        listing(&uid_dir(&other))
    );
    stack.shutdown().await;
}
