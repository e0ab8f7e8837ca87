//! An admin puts an ssofs line with `_netdev,nofail,x-systemd.automount` in /etc/fstab.
//!
//! 1. systemd-fstab-generator (run on a test fstab into a temporary directory, as systemd does at
//!    boot) makes a .mount unit hooked into remote-fs.target (which orders it after
//!    network-online.target; without `_netdev` it would be a local mount, tried before the network
//!    is up: s3fs-fuse #1646) plus an .automount unit, and `systemd-analyze verify` accepts both.
//! 2. The first access to the mountpoint starts the mount, and that access waits in the kernel's
//!    autofs trigger until the mount is done. This machine has no systemd PID 1, so the test plays
//!    systemd's part with the real kernel mechanism: it mounts an autofs direct trigger on the
//!    mountpoint (as systemd does for an .automount), lets a process access it, receives the
//!    kernel's request, runs the .mount unit's command (`mount WHAT WHERE -t TYPE -o OPTIONS`, the
//!    options as systemd passes them) in the automounter's process group like systemd's mount
//!    jobs, and answers the kernel once that returns. ssofs must neither refuse the autofs mount as
//!    "already mounted" (mountpoint-s3 #44/#1567) nor walk into the pending trigger from a
//!    process outside that group (its background child used to setsid first, then open the
//!    mountpoint: the blobfuse2/gcsfuse hang). The waiting access then lists the buckets.
//!
//! Needs root (autofs, /sbin) and the systemd package (generator, systemd-analyze).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::system::{PrivateHelper, TestDir, is_root, require, tag};
use crate::support::{self, mounted, mountinfo_line, text};

const GENERATOR: &str = "/lib/systemd/system-generators/systemd-fstab-generator";

/// Runs systemd-fstab-generator on `fstab`; returns its output directory.
fn generate(fstab: &Path, out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    let o = Command::new(GENERATOR).args([out, out, out]).env("SYSTEMD_FSTAB", fstab).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

fn unit_name(where_: &Path, suffix: &str) -> String {
    let o = Command::new("systemd-escape").args(["--path", "--suffix", suffix]).arg(where_).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in\n{unit}"))
        .to_string()
}

fn have_systemd_tools() -> bool {
    Path::new(GENERATOR).exists() && Command::new("systemd-analyze").arg("--version").output().is_ok()
}

#[test]
fn fstab_generator_makes_a_remote_mount_and_an_automount_that_verify() {
    if !require(have_systemd_tools(), "systemd (systemd-fstab-generator, systemd-analyze) must be installed") {
        return;
    }
    let dir = TestDir::new("gen");
    let (auto, local) = (dir.0.join("auto"), dir.0.join("local"));
    let fstab = dir.0.join("fstab");
    std::fs::write(
        &fstab,
        format!(
            "http://127.0.0.1:9000 {} fuse.ssofs _netdev,nofail,x-systemd.automount,profile=corp,config=/etc/ssofs/config.toml,state_dir=/var/lib/ssofs 0 0\n\
             http://127.0.0.1:9000 {} fuse.ssofs nofail,profile=corp 0 0\n",
            auto.display(),
            local.display()
        ),
    )
    .unwrap();
    let out = dir.0.join("generated");
    generate(&fstab, &out);
    let (mount, automount) = (unit_name(&auto, "mount"), unit_name(&auto, "automount"));
    let unit = std::fs::read_to_string(out.join(&mount)).unwrap();
    assert_eq!(unit_value(&unit, "Type"), "fuse.ssofs");
    assert_eq!(unit_value(&unit, "What"), "http://127.0.0.1:9000");
    // _netdev in Options= is what makes systemd order the mount after network-online.target
    // (systemd.mount(5): network mounts get After=network-online.target remote-fs-pre.target).
    assert!(unit_value(&unit, "Options").split(',').any(|o| o == "_netdev"), "{unit}");
    // The automount, not the mount, is what boot pulls in, under remote-fs.target.
    assert!(
        out.join("remote-fs.target.wants").join(&automount).exists()
            || out.join("remote-fs.target.requires").join(&automount).exists()
    );
    assert!(!out.join("remote-fs.target.wants").join(&mount).exists(), "mounted on first access only");
    assert_eq!(unit_value(&std::fs::read_to_string(out.join(&automount)).unwrap(), "Where"), auto.to_string_lossy());
    // Without _netdev, fuse.ssofs is not a network filesystem to systemd: a local mount at boot.
    assert!(out.join("local-fs.target.wants").join(unit_name(&local, "mount")).exists());
    assert!(!out.join("remote-fs.target.wants").join(unit_name(&local, "mount")).exists());

    let o = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(out.join(&mount))
        .arg(out.join(&automount))
        .env("SYSTEMD_UNIT_PATH", format!("{}:", out.display()))
        .output()
        .unwrap();
    assert!(o.status.success() && text(&o).trim().is_empty(), "{}", text(&o));
}

// The kernel's autofs interface (linux/auto_dev-ioctl.h), used as systemd uses it.
const AUTOFS_DEV_IOCTL_SIZE: usize = 24;
const AUTOFS_DEV_IOCTL_OPENMOUNT: libc::c_ulong = 0xC018_9374;
const AUTOFS_DEV_IOCTL_READY: libc::c_ulong = 0xC018_9376;
const AUTOFS_DEV_IOCTL_CATATONIC: libc::c_ulong = 0xC018_9379;

/// An autofs_dev_ioctl: version 1.0 header, the mount's ioctl fd, one argument, an optional path.
fn autofs_param(ioctlfd: i32, arg: u32, path: Option<&Path>) -> Vec<u8> {
    let path_bytes = path.map(|p| p.to_string_lossy().into_owned().into_bytes()).unwrap_or_default();
    let size = AUTOFS_DEV_IOCTL_SIZE + if path.is_some() { path_bytes.len() + 1 } else { 0 };
    let mut buf = vec![0u8; size.next_multiple_of(8)];
    buf[0..4].copy_from_slice(&1u32.to_ne_bytes());
    buf[4..8].copy_from_slice(&0u32.to_ne_bytes());
    buf[8..12].copy_from_slice(&(size as u32).to_ne_bytes());
    buf[12..16].copy_from_slice(&ioctlfd.to_ne_bytes());
    buf[16..20].copy_from_slice(&arg.to_ne_bytes());
    buf[AUTOFS_DEV_IOCTL_SIZE..AUTOFS_DEV_IOCTL_SIZE + path_bytes.len()].copy_from_slice(&path_bytes);
    buf
}

/// One /dev/autofs ioctl from this process; returns the ioctlfd field afterwards.
fn autofs_ioctl(cmd: libc::c_ulong, ioctlfd: i32, arg: u32, path: Option<&Path>) -> std::io::Result<i32> {
    let mut buf = autofs_param(ioctlfd, arg, path);
    let dev = std::fs::File::open("/dev/autofs")?;
    // SAFETY: buf is a valid, large enough autofs_dev_ioctl for the kernel to read and update.
    if unsafe { libc::ioctl(dev.as_raw_fd(), cmd, buf.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(i32::from_ne_bytes(buf[12..16].try_into().unwrap()))
}

/// systemd's side of an .automount: an autofs direct trigger on `where_` whose requests arrive on
/// a pipe, served by the process group of a dedicated leader. Dropping it releases any waiter
/// (catatonic), unmounts whatever is on top and the trigger itself.
struct Automount {
    where_: PathBuf,
    leader: Child,
    requests: OwnedFd,
    ioctlfd: OwnedFd,
}

impl Automount {
    fn arm(where_: &Path) -> Automount {
        let leader = Command::new("sleep").arg("600").process_group(0).spawn().unwrap();
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two descriptors we own.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both are ours, open, and owned once each.
        let (requests, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let opts = format!("fd={},pgrp={},minproto=5,maxproto=5,direct", write.as_raw_fd(), leader.id());
        let c = |s: &str| std::ffi::CString::new(s).unwrap();
        let (src, target, fstype, data) = (c("ssofs-test"), c(&where_.to_string_lossy()), c("autofs"), c(&opts));
        // SAFETY: all pointers are NUL-terminated strings alive for the call.
        let rc = unsafe { libc::mount(src.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, data.as_ptr().cast()) };
        assert_eq!(rc, 0, "mount autofs: {}", std::io::Error::last_os_error());
        drop(write); // the kernel holds its own reference
        // SAFETY: F_SETFL on our own descriptor.
        unsafe { libc::fcntl(requests.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        let line = mountinfo_line(where_).unwrap();
        let (major, minor) = line.split(' ').nth(2).unwrap().split_once(':').unwrap();
        let devid = libc::makedev(major.parse().unwrap(), minor.parse().unwrap()) as u32;
        let fd = autofs_ioctl(AUTOFS_DEV_IOCTL_OPENMOUNT, -1, devid, Some(where_)).expect("open the autofs mount");
        // SAFETY: the kernel just gave us this descriptor.
        let ioctlfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Automount { where_: where_.to_path_buf(), leader, requests, ioctlfd }
    }

    /// The next request the kernel sends (its wait queue token), if one comes within `wait`.
    fn request(&self, wait: Duration) -> Option<u32> {
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 512];
        loop {
            // SAFETY: reading into our own buffer.
            let n = unsafe { libc::read(self.requests.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 12 {
                // autofs_packet_hdr {proto_version, type}, then the token.
                return Some(u32::from_ne_bytes(buf[8..12].try_into().unwrap()));
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Tells the kernel the mount for request `token` is done. Only the automounter's process
    /// group may (the kernel refuses others with EACCES), so a child joins it and does the ioctl.
    fn ready(&self, token: u32) {
        let mut buf = autofs_param(self.ioctlfd.as_raw_fd(), token, None);
        let dev = std::fs::File::open("/dev/autofs").unwrap();
        let (devfd, param, group) = (dev.as_raw_fd(), buf.as_mut_ptr() as usize, self.leader.id() as i32);
        let mut cmd = Command::new("true");
        // SAFETY: only async-signal-safe calls (setpgid, ioctl) on memory and descriptors the
        // forked child inherited.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setpgid(0, group) != 0 || libc::ioctl(devfd, AUTOFS_DEV_IOCTL_READY, param as *mut u8) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let status = cmd.status().expect("AUTOFS READY from the automounter's process group");
        assert!(status.success());
    }

    /// Runs `cmd` in the automounter's process group, as systemd runs a mount unit's command.
    fn run_as_daemon(&self, cmd: &mut Command) -> Child {
        cmd.process_group(self.leader.id() as i32).spawn().unwrap()
    }
}

impl Drop for Automount {
    fn drop(&mut self) {
        let _ = autofs_ioctl(AUTOFS_DEV_IOCTL_CATATONIC, self.ioctlfd.as_raw_fd(), 0, None);
        if mountinfo_line(&self.where_).is_some_and(|l| !l.contains(" - autofs ")) {
            let _ = Command::new("fusermount3").arg("-uz").arg(&self.where_).output();
        }
        let target = std::ffi::CString::new(self.where_.to_string_lossy().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        let _ = self.leader.kill();
        let _ = self.leader.wait();
    }
}

fn wait_child(child: &mut Child, secs: u64) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn first_access_to_an_automount_mounts_through_the_generated_unit_without_deadlock() {
    if !require(is_root() && have_systemd_tools(), "needs root and the systemd package") {
        return;
    }
    // A kernel without autofs cannot play this part: nothing to install.
    if !Path::new("/dev/autofs").exists() {
        eprintln!("skipped: this kernel has no /dev/autofs");
        return;
    }
    let dir = TestDir::new("automount");
    let mut cfg = ssofs_devstack::Config::new(dir.0.join("devstack"));
    cfg.auto_approve = Some("alice".into());
    cfg.device_code_interval = Duration::from_secs(1);
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    let state = dir.0.join("state");
    let login = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_ssofs"))
            .args(["login", "--device-code", "--no-qr"])
            .env("SSOFS_CONFIG", &stack.profile_file)
            .env("SSOFS_STATE_DIR", &state)
            .env("XDG_CONFIG_HOME", dir.0.join("no-config"))
            .env_remove("BROWSER")
            .env_remove("DISPLAY")
            .output()
            .unwrap()
    });
    assert!(login.status.success(), "{}", text(&login));

    // The admin's line, through the generator, with the helper from packaging/ under a type of its own.
    let helper = PrivateHelper::install(&format!("ssofsa{}", tag()));
    let mnt = dir.0.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let fstab = dir.0.join("fstab");
    std::fs::write(
        &fstab,
        format!(
            "{} {} {} _netdev,nofail,x-systemd.automount,x-systemd.mount-timeout=30,comment=ssofs-test,profile=devstack,config={},state_dir={},cache_dir={} 0 0\n",
            stack.s3_endpoint,
            mnt.display(),
            helper.fstype,
            stack.profile_file.display(),
            state.display(),
            dir.0.join("cache").display()
        ),
    )
    .unwrap();
    let out = dir.0.join("generated");
    generate(&fstab, &out);
    let unit = std::fs::read_to_string(out.join(unit_name(&mnt, "mount"))).unwrap();
    let (what, where_, fstype, options) = (
        unit_value(&unit, "What"),
        unit_value(&unit, "Where"),
        unit_value(&unit, "Type"),
        unit_value(&unit, "Options"),
    );
    assert_eq!(where_, mnt.to_string_lossy());
    // systemd's mount job drops these three and passes the rest (x-systemd.*, _netdev, comment=).
    let passed: Vec<&str> = options.split(',').filter(|o| !matches!(*o, "nofail" | "noauto" | "auto")).collect();
    assert!(passed.iter().any(|o| o.starts_with("x-systemd.")) && passed.contains(&"_netdev"), "{options}");

    let automount = Automount::arm(&mnt);
    // A user's first access: it waits in the trigger, the kernel asks the automounter.
    let mut access =
        Command::new("ls").arg(&mnt).process_group(0).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let token =
        tokio::task::block_in_place(|| automount.request(Duration::from_secs(10))).expect("the access triggers");

    // systemd starts the .mount unit: /usr/bin/mount WHAT WHERE -t TYPE -o OPTIONS, minimal env.
    let started = Instant::now();
    let mut mount = automount.run_as_daemon(
        Command::new("mount")
            .args([what.as_str(), where_.as_str(), "-t", fstype.as_str(), "-o", &passed.join(",")])
            .env_clear()
            .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .env("SSOFS_BIN", env!("CARGO_BIN_EXE_ssofs"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let status = tokio::task::block_in_place(|| wait_child(&mut mount, 40));
    let Some(status) = status else {
        let _ = mount.kill();
        drop(automount); // releases the stuck walks
        let o = mount.wait_with_output().unwrap();
        panic!("mount hung on its own automount trigger (deadlock): {}", text(&o));
    };
    let o = mount.wait_with_output().unwrap();
    assert!(status.success(), "mount as systemd runs it: {}", text(&o));
    eprintln!("mount under a pending automount returned after {} ms", started.elapsed().as_millis());
    let top = mountinfo_line(&mnt).unwrap();
    assert!(top.contains(" - fuse") && top.contains("ssofs:devstack"), "ssofs on top of the trigger: {top}");
    // ssofs never fired the trigger itself.
    assert_eq!(automount.request(Duration::from_millis(300)), None, "ssofs walked into its own trigger");

    // systemd sees the mount and answers the kernel; the waiting access goes on, into ssofs.
    automount.ready(token);
    let status = tokio::task::block_in_place(|| wait_child(&mut access, 20)).expect("the access completes");
    let o = access.wait_with_output().unwrap();
    assert!(status.success(), "{}", text(&o));
    let mut names: Vec<String> = String::from_utf8_lossy(&o.stdout).split_whitespace().map(str::to_string).collect();
    names.sort();
    assert_eq!(names, ["analytics-curated", "analytics-raw"]);

    // Stopping the .mount unit: umount WHERE; the trigger stays armed below.
    let o = tokio::task::block_in_place(|| Command::new("umount").arg(&mnt).output().unwrap());
    assert!(o.status.success(), "{}", text(&o));
    tokio::task::block_in_place(|| {
        support::system::wait_for(10, "the FUSE mount to go", || {
            mountinfo_line(&mnt).is_some_and(|l| l.contains(" - autofs "))
        })
    });
    drop(automount);
    assert!(!mounted(&mnt));
    stack.shutdown().await;
}
