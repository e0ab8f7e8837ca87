//! Whether this user can mount at all: /dev/fuse, fusermount3, and /etc/fuse.conf when
//! allow_other is asked for.

use std::path::{Path, PathBuf};

use ssofs::mount::MountOptions;

use super::report::Checks;

pub fn check(options: &MountOptions, checks: &mut Checks) {
    let root = ssofs::untrusted::euid() == 0;
    let mut problems: Vec<(String, String)> = Vec::new();
    let dev = Path::new("/dev/fuse");
    if !dev.exists() {
        problems.push((
            "/dev/fuse is missing".into(),
            "load the fuse module (`modprobe fuse`); in a container pass --device /dev/fuse".into(),
        ));
    } else if !accessible(dev, libc::R_OK | libc::W_OK) && !root {
        problems.push((
            "/dev/fuse is not readable and writable for this user".into(),
            "fusermount3 opens it for you when it is setuid root; check `ls -l /usr/bin/fusermount3`".into(),
        ));
    }
    let fusermount = which("fusermount3");
    match &fusermount {
        None => problems.push((
            "fusermount3 is not installed".into(),
            "install fuse3 (apt install fuse3 / dnf install fuse3)".into(),
        )),
        Some(p) if !root => {
            use std::os::unix::fs::PermissionsExt;
            let setuid = std::fs::metadata(p).map(|m| m.permissions().mode() & 0o4000 != 0).unwrap_or(false);
            if !setuid {
                problems.push((
                    format!("{} is not setuid root, so users cannot mount", p.display()),
                    format!("chmod u+s {}", p.display()),
                ));
            }
        }
        Some(_) => {}
    }
    if (options.allow_other || options.allow_root) && !root {
        let conf = std::fs::read_to_string("/etc/fuse.conf").unwrap_or_default();
        let allowed = conf.lines().map(str::trim).any(|l| l == "user_allow_other");
        if !allowed {
            problems.push((
                "allow_other/allow_root is asked for, but /etc/fuse.conf does not say user_allow_other".into(),
                "add the line user_allow_other to /etc/fuse.conf (or mount as root)".into(),
            ));
        }
    }
    if problems.is_empty() {
        checks.pass(
            "fuse",
            format!(
                "/dev/fuse present, {}",
                fusermount.map(|p| format!("{} installed", p.display())).unwrap_or_default()
            ),
        );
    } else {
        let (detail, fix): (Vec<String>, Vec<String>) = problems.into_iter().unzip();
        checks.fail("fuse", detail.join("; "), fix.join("; "));
    }
}

fn accessible(path: &Path, mode: libc::c_int) -> bool {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else { return false };
    // SAFETY: access reads a NUL-terminated path we own.
    unsafe { libc::access(c.as_ptr(), mode) == 0 }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into());
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}
