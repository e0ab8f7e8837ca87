//! A site using pam_mount: the sample packaging/examples/pam_mount.conf.xml, merged into the
//! distribution's /etc/security/pam_mount.conf.xml as its comment says (only the helper path, the
//! endpoint, the profile and the group substituted), mounts a signed-in user's buckets on ~/s3 when
//! their session opens (`pamtester SERVICE USER open_session`, through a test PAM service that
//! uses pam_mount) and unmounts them when it closes.
//!
//! Needs root, pamtester and libpam-mount (scripts/install-deps installs them). The PAM service,
//! the pam_mount config change, the user and the mount are undone by guards.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::system::{
    DevFuseForUsers, PrivateHelper, TestDir, UnixUser, UnmountOnDrop, devstack, is_root, require, tag,
};
use crate::support::{self, mountinfo_line, text};

const PAM_MOUNT_CONF: &str = "/etc/security/pam_mount.conf.xml";

/// A file replaced for the test and put back as it was (or removed, if it was not there).
struct Replaced {
    path: PathBuf,
    before: Option<Vec<u8>>,
}

impl Replaced {
    fn with(path: &str, contents: &str) -> Replaced {
        let before = std::fs::read(path).ok();
        std::fs::write(path, contents).unwrap();
        Replaced { path: path.into(), before }
    }
}

impl Drop for Replaced {
    fn drop(&mut self) {
        match &self.before {
            Some(b) => {
                let _ = std::fs::write(&self.path, b);
            }
            None => {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Ends the held session when the test fails half-way.
struct Logout(PathBuf);

impl Drop for Logout {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, b"");
    }
}

/// The sample's elements, merged before the end of the distribution's config.
fn merged_config(sample: &str, distro: &str) -> String {
    let body = sample.split_once("<pam_mount>").unwrap().1.rsplit_once("</pam_mount>").unwrap().0;
    match distro.rsplit_once("</pam_mount>") {
        Some((head, tail)) => format!("{head}{body}</pam_mount>{tail}"),
        None => sample.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pam_mount_sample_mounts_the_users_buckets_at_login_and_unmounts_at_logout() {
    if !require(is_root(), "needs root") {
        return;
    }
    let pam_mount_so =
        ["/lib/x86_64-linux-gnu/security/pam_mount.so", "/usr/lib/x86_64-linux-gnu/security/pam_mount.so"];
    let installed = Command::new("pamtester").arg("--version").output().is_ok()
        && pam_mount_so.iter().any(|p| Path::new(p).exists());
    if !require(installed, "pamtester and libpam-mount must be installed") {
        return;
    }
    let _dev_fuse = DevFuseForUsers::hold();
    let t = tag();
    let dir = TestDir::new("pam");
    let stack = devstack(&dir.0).await;
    let user = UnixUser::create(&format!("spm{t}"), &dir.0.join("homes"));
    user.sign_in(&stack, "alice").await;
    let s3 = user.home.join("s3");
    let _unmount = UnmountOnDrop(s3.clone());

    let helper = PrivateHelper::install(&format!("ssofsp{t}"));
    let sample =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/examples/pam_mount.conf.xml"))
            .unwrap()
            .replace("/usr/sbin/mount.fuse.ssofs", &format!("/sbin/mount.{}", helper.fstype))
            .replace("https://minio.example.com", &stack.s3_endpoint)
            .replace("profile=corp", "profile=devstack")
            .replace("sgrp=\"s3-users\"", &format!("sgrp=\"{}\"", user.name));
    assert!(
        sample.contains(&stack.s3_endpoint) && sample.contains(&user.name),
        "the sample's placeholders moved:\n{sample}"
    );
    let distro = std::fs::read_to_string(PAM_MOUNT_CONF).unwrap_or_default();
    let _conf = Replaced::with(PAM_MOUNT_CONF, &merged_config(&sample, &distro));
    // One login session, as login(1) or sshd hold it: pamtester opens it, then waits in a
    // pam_exec step of the session stack (the user is "logged in") until the test has looked,
    // then closes it with the same PAM handle (pam_mount only unmounts from the handle that
    // mounted).
    let logged_in = dir.0.join("logged-in");
    let logout = dir.0.join("logout");
    let hold = dir.0.join("hold-session");
    std::fs::write(
        &hold,
        format!(
            "#!/bin/sh\n[ \"$PAM_TYPE\" = open_session ] || exit 0\ntouch {}\ni=0\nwhile [ ! -e {} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n",
            logged_in.display(),
            logout.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hold, std::fs::Permissions::from_mode(0o755)).unwrap();
    let service = format!("ssofs-test-{t}");
    let _pam = Replaced::with(
        &format!("/etc/pam.d/{service}"),
        &format!(
            "auth required pam_permit.so\naccount required pam_permit.so\nsession required pam_mount.so debug\nsession required pam_exec.so {}\n",
            hold.display()
        ),
    );
    let mut session = Command::new("pamtester")
        .args(["-v", &service, &user.name, "open_session", "close_session"])
        .env("SSOFS_BIN", env!("CARGO_BIN_EXE_ssofs"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _logout_on_failure = Logout(logout.clone());
    // pam_mount's login count for the user (removed by pam_mount when the session closes).
    let _count = Replaced { path: PathBuf::from(format!("/run/pam_mount/{}", user.name)), before: None };

    // Login: ~/s3 is created and mounted as the user, with their identity.
    tokio::task::block_in_place(|| {
        support::system::wait_for(40, "the session to open", || {
            logged_in.exists() || session.try_wait().unwrap().is_some()
        })
    });
    let line = mountinfo_line(&s3);
    if line.is_none() || !logged_in.exists() {
        std::fs::write(&logout, b"").unwrap();
        let o = session.wait_with_output().unwrap();
        panic!("~/s3 not mounted at login: {}", text(&o));
    }
    let line = line.unwrap();
    assert!(line.contains(&format!("user_id={}", user.uid)) && line.contains("nosuid"), "{line}");
    let ls = tokio::task::block_in_place(|| {
        user.run(&format!("ls {m} && cat {m}/analytics-raw/README.txt", m = s3.display()))
    });
    assert!(ls.status.success() && text(&ls).contains("analytics-curated"), "{}", text(&ls));

    // Logout: pam_mount's <fuseumount> (fusermount3) unmounts as the session closes.
    std::fs::write(&logout, b"").unwrap();
    let o = tokio::task::block_in_place(|| session.wait_with_output().unwrap());
    assert!(o.status.success(), "{}", text(&o));
    tokio::task::block_in_place(|| {
        support::system::wait_for(10, "the unmount at logout", || mountinfo_line(&s3).is_none())
    });
    stack.shutdown().await;
}
