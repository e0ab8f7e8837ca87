//! An admin mounts from fstab: `mount -T FSTAB MOUNTPOINT` runs /sbin/mount.fuse.ssofs (the
//! helper in packaging/), which runs `ssofs mount`, with mount's minimal root environment: the
//! config and tokens are named by `-o config=` and `-o state_dir=`. An unknown option in the fstab
//! line is refused with its name.
//!
//! Needs root (mount(8) and /sbin). The helper is linked into /sbin for the test and removed after,
//! unless a packaged one is installed there, which is then used as is.

use crate::support::{self, is_mounted, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const HELPER: &str = "/sbin/mount.fuse.ssofs";

/// Links the helper into /sbin while alive, when no packaged helper is there.
struct Helper {
    installed: bool,
}

impl Helper {
    fn install() -> Helper {
        let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/mount.fuse.ssofs");
        match std::fs::symlink_metadata(HELPER) {
            Ok(m) if !m.file_type().is_symlink() => return Helper { installed: false },
            Ok(_) => std::fs::remove_file(HELPER).unwrap(),
            Err(_) => {}
        }
        std::os::unix::fs::symlink(&ours, HELPER).unwrap();
        Helper { installed: true }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if self.installed {
            let _ = std::fs::remove_file(HELPER);
        }
    }
}

/// `mount -T fstab mountpoint` as an init system runs it: only PATH, and SSOFS_BIN for the binary
/// under test.
fn mount_from(fstab: &Path, mountpoint: &Path, home: &Path) -> Output {
    Command::new("mount")
        .arg("-T")
        .arg(fstab)
        .arg(mountpoint)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", home)
        .env("SSOFS_BIN", env!("CARGO_BIN_EXE_ssofs"))
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn fstab_line_mounts_through_mount_t_and_unknown_options_are_named() {
    if !support::system::require(support::system::is_root(), "mount(8) from fstab needs root") {
        return;
    }
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir: PathBuf = std::env::temp_dir().join(format!("ssofs-fstab-{}-{n}", std::process::id()));
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.auto_approve = Some("alice".into());
    cfg.device_code_interval = Duration::from_secs(1);
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    let state = dir.join("state");
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();

    // The admin signs in once, into the state directory the fstab line names.
    let login = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_ssofs"))
            .args(["login", "--device-code", "--no-qr"])
            .env("SSOFS_CONFIG", &stack.profile_file)
            .env("SSOFS_STATE_DIR", &state)
            .env("XDG_CONFIG_HOME", dir.join("no-config"))
            .env_remove("BROWSER")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .output()
            .unwrap()
    });
    assert!(login.status.success(), "{}", text(&login));

    let _helper = Helper::install();
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let line = |extra: &str| {
        format!(
            "# ssofs test\n{} {} fuse.ssofs _netdev,nofail,x-systemd.automount,profile=devstack,config={},state_dir={},allow_other,log_level=info,cache_dir={}{extra} 0 0\n",
            stack.s3_endpoint,
            mnt.display(),
            stack.profile_file.display(),
            state.display(),
            dir.join("cache").display(),
        )
    };

    // An unknown option: refused, with its name, nothing mounted.
    let bad = dir.join("fstab.bad");
    std::fs::write(&bad, line(",colour=blue")).unwrap();
    let out = tokio::task::block_in_place(|| mount_from(&bad, &mnt, &home));
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("colour=blue"), "{}", text(&out));
    assert!(!is_mounted(&mnt));

    // The line as an admin writes it.
    let fstab = dir.join("fstab");
    std::fs::write(&fstab, line("")).unwrap();
    let started = Instant::now();
    let out = tokio::task::block_in_place(|| mount_from(&fstab, &mnt, &home));
    assert!(out.status.success(), "{}", text(&out));
    eprintln!("mount -T returned after {} ms", started.elapsed().as_millis());
    assert!(is_mounted(&mnt), "mounted when mount(8) returns");
    let entry = support::mount_line(&mnt).unwrap();
    assert!(entry.contains("fuse"), "{entry}");
    let m = mnt.clone();
    let listing = tokio::task::block_in_place(move || {
        let mut names: Vec<String> =
            std::fs::read_dir(&m).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
        names.sort();
        names
    });
    assert_eq!(listing, ["analytics-curated", "analytics-raw"]);
    let m = mnt.clone();
    tokio::task::block_in_place(move || {
        std::fs::write(m.join("analytics-raw/from-fstab.txt"), b"hello").unwrap();
        assert_eq!(std::fs::read(m.join("analytics-raw/from-fstab.txt")).unwrap(), b"hello");
    });
    // The second `mount -T` of the same line: already mounted, said so.
    let again = tokio::task::block_in_place(|| mount_from(&fstab, &mnt, &home));
    assert!(!again.status.success());

    // umount(8), as at shutdown.
    let m = mnt.clone();
    let out = tokio::task::block_in_place(move || Command::new("umount").arg(&m).output().unwrap());
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_mounted(&mnt) {
        assert!(Instant::now() < deadline, "still mounted after umount");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stack.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
