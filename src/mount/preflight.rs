//! What is checked before anything else (the mountpoint and the FUSE device), and the mount table
//! lookups that never walk into the mountpoint (an automount trigger may sit on it).

use std::path::{Path, PathBuf};

use super::MountError;

/// What can be checked cheaply before anything else: the mountpoint and the FUSE device.
///
/// The mountpoint is looked up in /proc/self/mountinfo before the path itself is touched, and is
/// then only stat'ed with `AT_NO_AUTOMOUNT`: under `x-systemd.automount` (or autofs) an autofs
/// trigger sits on the mountpoint, and the mount we are part of was started by an access to it. Any
/// path walk into it from outside the automounter's process group (ours, while mount(8) runs us)
/// waits for that very mount and never returns (the blobfuse2/gcsfuse hang); an autofs mount there
/// is also not "already mounted" (the mountpoint-s3 refusal): the FUSE mount goes on top of it.
pub fn preflight(mountpoint: &Path) -> Result<(), MountError> {
    if !Path::new("/dev/fuse").exists() {
        return Err(MountError::NoFuseDevice);
    }
    // An ordinary user's mount opens /dev/fuse itself before mount(2) fails and fusermount3 takes
    // over; a device only root may open (some containers) makes that fail with a bare EACCES.
    // SAFETY: access only reads the NUL-terminated literal path.
    if crate::untrusted::euid() != 0 && unsafe { libc::access(c"/dev/fuse".as_ptr(), libc::R_OK | libc::W_OK) } != 0 {
        return Err(MountError::FuseDeviceDenied(std::io::Error::last_os_error()));
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let absolute = absolute_path(mountpoint);
    match top_mount_type(&mountinfo, &absolute) {
        Some(fstype) if fstype == "autofs" => return Ok(()),
        Some(_) => {
            return Err(MountError::AlreadyMounted(mountpoint.to_path_buf()));
        }
        None => {}
    }
    let is_dir = stat_is_dir_no_automount(mountpoint)
        .map_err(|source| MountError::MountpointMissing { path: mountpoint.to_path_buf(), source })?;
    if !is_dir {
        return Err(MountError::NotADirectory(mountpoint.to_path_buf()));
    }
    // Through symlinks (canonicalize only reads links, it never enters the directory).
    if let Ok(canonical) = std::fs::canonicalize(mountpoint)
        && canonical != absolute
        && top_mount_type(&mountinfo, &canonical).is_some_and(|t| t != "autofs")
    {
        return Err(MountError::AlreadyMounted(mountpoint.to_path_buf()));
    }
    Ok(())
}

/// `path` made absolute against the working directory, `.` and `..` folded, without any lookup.
pub(crate) fn absolute_path(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")).join(path)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// The kernel reads ahead only 128 KiB on a FUSE mount: what it offers at INIT is a ceiling the
/// filesystem can lower but not raise, so `max_readahead` alone does not help. As root, raise the
/// mount's own setting to what one FUSE read may carry: fewer, larger requests (a 256 MiB file read
/// with `cat`: about 1.5 times as fast from the block cache, 15 % from S3). Ordinary users cannot
/// write it; their mounts keep the kernel's default. The device comes from mountinfo, so nothing
/// walks into the mountpoint (an automount trigger may still sit below it).
pub(super) fn raise_read_ahead(mountpoint: &Path) {
    if crate::untrusted::euid() != 0 {
        return;
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let Some(device) = top_mount_line(&mountinfo, &absolute_path(mountpoint)).and_then(|l| l.split(' ').nth(2)) else {
        return;
    };
    let knob = format!("/sys/class/bdi/{device}/read_ahead_kb");
    if let Err(e) = std::fs::write(&knob, (crate::fuse::MAX_REQUEST / 1024).to_string()) {
        tracing::debug!(knob, error = %e, "cannot raise the kernel's read-ahead");
    }
}

/// stat(2) semantics (`AT_NO_AUTOMOUNT`): std's metadata uses statx without it, which fires an
/// automount trigger on the path.
fn stat_is_dir_no_automount(path: &Path) -> std::io::Result<bool> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path contains a NUL byte"))?;
    // SAFETY: an all-zero stat is a valid out-parameter; c is a NUL-terminated path.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: see above; fstatat only writes st.
    if unsafe { libc::fstatat(libc::AT_FDCWD, c.as_ptr(), &mut st, libc::AT_NO_AUTOMOUNT) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// The filesystem type of the topmost mount at `path` in a mountinfo text (later lines are mounted
/// on top of earlier ones), if anything is mounted there.
fn top_mount_type(mountinfo: &str, path: &Path) -> Option<String> {
    let line = top_mount_line(mountinfo, path)?;
    line.split_once(" - ").and_then(|(_, rest)| rest.split(' ').next()).map(str::to_string)
}

/// The mountinfo line of the topmost mount at `path`.
fn top_mount_line<'a>(mountinfo: &'a str, path: &Path) -> Option<&'a str> {
    let want = path.to_string_lossy();
    mountinfo.lines().rfind(|l| l.split(' ').nth(4).is_some_and(|m| unescape_mount(m) == want))
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 0:21 / / rw,relatime - ext4 /dev/root rw
42 22 0:39 / /mnt/s3 rw,relatime - autofs systemd-1 rw,fd=55,pgrp=1,timeout=0,minproto=5,maxproto=5,direct
43 22 0:40 / /mnt/my\\040s3 rw,nosuid,nodev - fuse.ssofs ssofs:corp rw,user_id=0,group_id=0
44 42 0:41 / /mnt/s3 rw,nosuid,nodev - fuse.ssofs ssofs:corp rw,user_id=0,group_id=0
45 22 0:42 / /mnt/auto rw,relatime - autofs systemd-1 rw,fd=56,pgrp=1,direct
";

    #[test]
    fn the_topmost_mount_at_a_path_decides() {
        // An armed x-systemd.automount trigger: mounting on top of it is what is asked.
        assert_eq!(top_mount_type(MOUNTINFO, Path::new("/mnt/auto")).as_deref(), Some("autofs"));
        // The trigger with the FUSE mount already on it: already mounted.
        assert_eq!(top_mount_type(MOUNTINFO, Path::new("/mnt/s3")).as_deref(), Some("fuse.ssofs"));
        assert_eq!(top_mount_type(MOUNTINFO, Path::new("/mnt/my s3")).as_deref(), Some("fuse.ssofs"));
        assert_eq!(top_mount_type(MOUNTINFO, Path::new("/mnt/other")), None);
        assert_eq!(top_mount_type("garbage\n\n1 2 3\n", Path::new("/mnt/other")), None);
        // The device of the FUSE mount on the trigger, for its read-ahead setting.
        let top = top_mount_line(MOUNTINFO, Path::new("/mnt/s3")).unwrap();
        assert_eq!(top.split(' ').nth(2), Some("0:41"));
    }

    #[test]
    fn relative_mountpoints_are_made_absolute_without_lookups() {
        assert_eq!(absolute_path(Path::new("/mnt/./a/../b/")), PathBuf::from("/mnt/b"));
        assert!(absolute_path(Path::new("x")).is_absolute());
        assert_eq!(absolute_path(Path::new("/../..")), PathBuf::from("/"));
    }

    #[test]
    fn preflight_refuses_a_mounted_path_and_a_missing_one() {
        if Path::new("/dev/fuse").exists() {
            let e = preflight(Path::new("/proc")).unwrap_err().to_string();
            assert!(e.contains("already a mountpoint"), "{e}");
            let e = preflight(Path::new("/nonexistent-ssofs-preflight")).unwrap_err().to_string();
            assert!(e.contains("mkdir -p"), "{e}");
            let e = preflight(Path::new("/etc/hostname")).unwrap_err().to_string();
            assert!(e.contains("not a directory") || e.contains("already a mountpoint"), "{e}");
        }
    }
}
