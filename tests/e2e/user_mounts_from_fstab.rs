//! An ordinary user mounts their own buckets from an fstab line the admin marked `user` or `users`:
//! `mount /their/mountpoint` (setuid mount(8) reads the real /etc/fstab, then runs the helper as
//! that user with a sanitised environment: no HOME, no PATH), ssofs mounts through fusermount3 with
//! the user's own sign-in from their home, and `umount` / `fusermount3 -u` by the user unmounts.
//! `allow_other` in such a line needs `user_allow_other` in /etc/fuse.conf, and says so.
//!
//! Needs root (useradd, /etc/fstab, /sbin). Everything it adds is removed by guards.

use std::path::Path;
use std::process::Command;

use crate::support::system::{
    DevFuseForUsers, FstabLines, PrivateHelper, TestDir, UnixUser, UnmountOnDrop, devstack, is_root, require, tag,
    wait_for,
};
use crate::support::{self, mounted, mountinfo_line, text};

fn listing(u: &UnixUser, mnt: &Path) -> Vec<String> {
    let o = u.run(&format!("ls {}", mnt.display()));
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).split_whitespace().map(str::to_string).collect()
}

#[test]
fn mount_helper_drops_user_name_options_and_restores_path_and_home() {
    // mount(8) runs the helper for a user line without HOME and PATH, with `user` (or user=NAME).
    let dir = TestDir::new("uh");
    let fake = dir.0.join("ssofs");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho \"HOME=$HOME\"\necho \"PATH=$PATH\"\nfor a in \"$@\"; do echo \"$a\"; done\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/mount.fuse.ssofs");
    let out = Command::new(&helper)
        .args(["http://127.0.0.1:9", "/mnt/x", "-o", "rw,noexec,nosuid,nodev,profile=p,user=alice,users,user,_netdev"])
        .env_clear()
        .env("SSOFS_BIN", &fake)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let home = String::from_utf8(
        Command::new("sh").args(["-c", "getent passwd $(id -u) | cut -d: -f6"]).output().unwrap().stdout,
    )
    .unwrap();
    let t = text(&out);
    assert!(t.starts_with(&format!("HOME={}\nPATH=/usr/local/sbin:", home.trim())), "{t}");
    assert!(
        t.ends_with("mount\nhttp://127.0.0.1:9\n/mnt/x\n-o\nrw,noexec,nosuid,nodev,profile=p,users,user,_netdev\n"),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ordinary_users_mount_and_unmount_their_buckets_from_user_and_users_fstab_lines() {
    if !require(is_root(), "needs root (useradd, /etc/fstab)") {
        return;
    }
    let _dev_fuse = DevFuseForUsers::hold();
    let t = tag();
    let dir = TestDir::new("um");
    let stack = devstack(&dir.0).await;
    let homes = dir.0.join("homes");
    let alice = UnixUser::create(&format!("sua{t}"), &homes);
    let oscar = UnixUser::create(&format!("suo{t}"), &homes);
    alice.sign_in(&stack, "alice").await;
    oscar.sign_in(&stack, "oscar").await;

    let helper = PrivateHelper::install(&format!("ssofsu{t}"));
    let a_mnt = dir.0.join("alice-s3");
    let o_mnt = dir.0.join("oscar-s3");
    let other_mnt = dir.0.join("alice-shared");
    for (m, u) in [(&a_mnt, &alice), (&o_mnt, &oscar), (&other_mnt, &alice)] {
        std::fs::create_dir_all(m).unwrap();
        u.chown(m);
    }
    let _guards = [UnmountOnDrop(a_mnt.clone()), UnmountOnDrop(o_mnt.clone()), UnmountOnDrop(other_mnt.clone())];
    // As an admin writes them: the users' own profile and sign-in, no state_dir, no config.
    let line = |mnt: &Path, opts: &str| {
        format!(
            "{} {} {} {opts},_netdev,nofail,profile=devstack,log_level=info 0 0",
            stack.s3_endpoint,
            mnt.display(),
            helper.fstype
        )
    };
    let _fstab = FstabLines::add(&[
        line(&a_mnt, "user,noauto"),
        line(&o_mnt, "users,noauto"),
        line(&other_mnt, "user,noauto,allow_other"),
    ]);
    // The test binary's ssofs: kept through mount(8)'s sanitised environment.
    let bin = env!("CARGO_BIN_EXE_ssofs");

    // `user`: alice mounts, sees her buckets, writes; the mount is hers (fusermount3's user_id).
    let started = std::time::Instant::now();
    let o = tokio::task::block_in_place(|| alice.run(&format!("SSOFS_BIN={bin} mount {}", a_mnt.display())));
    assert!(o.status.success(), "mount as alice: {}", text(&o));
    eprintln!("user mount returned after {} ms", started.elapsed().as_millis());
    let info = mountinfo_line(&a_mnt).expect("mounted when mount(8) returns");
    assert!(info.contains(&format!("user_id={}", alice.uid)) && info.contains("nosuid"), "{info}");
    assert_eq!(tokio::task::block_in_place(|| listing(&alice, &a_mnt)), ["analytics-curated", "analytics-raw"]);
    let w = tokio::task::block_in_place(|| {
        alice.run(&format!(
            "echo hi > {m}/analytics-raw/user-mount.txt && cat {m}/analytics-raw/user-mount.txt",
            m = a_mnt.display()
        ))
    });
    assert!(w.status.success() && text(&w).contains("hi"), "{}", text(&w));
    assert_eq!(support::s3_get(&stack, "analytics-raw", "user-mount.txt").await, b"hi\n");
    // Only alice reads it: no allow_other in her line.
    let peek = tokio::task::block_in_place(|| oscar.run(&format!("ls {}", a_mnt.display())));
    assert!(!peek.status.success(), "oscar reads alice's mount: {}", text(&peek));
    // Mounted twice: refused, said so.
    let again = tokio::task::block_in_place(|| alice.run(&format!("SSOFS_BIN={bin} mount {}", a_mnt.display())));
    assert!(!again.status.success(), "{}", text(&again));
    // umount(8) by the user who mounted it.
    let u = tokio::task::block_in_place(|| alice.run(&format!("umount {}", a_mnt.display())));
    assert!(u.status.success(), "umount as alice: {}", text(&u));
    tokio::task::block_in_place(|| wait_for(10, "alice's unmount", || !mounted(&a_mnt)));

    // `users`: oscar mounts with his own identity (read-only buckets), fusermount3 -u unmounts.
    let o = tokio::task::block_in_place(|| oscar.run(&format!("SSOFS_BIN={bin} mount {}", o_mnt.display())));
    assert!(o.status.success(), "mount as oscar: {}", text(&o));
    let info = mountinfo_line(&o_mnt).expect("oscar's mount");
    assert!(info.contains(&format!("user_id={}", oscar.uid)), "{info}");
    let r = tokio::task::block_in_place(|| {
        oscar.run(&format!(
            "cat {m}/analytics-raw/user-mount.txt; cp /etc/hostname {m}/analytics-raw/oscar.txt",
            m = o_mnt.display()
        ))
    });
    assert!(
        text(&r).contains("hi") && text(&r).contains("Permission denied"),
        "oscar reads, may not write: {}",
        text(&r)
    );
    let u = tokio::task::block_in_place(|| oscar.run(&format!("fusermount3 -u {}", o_mnt.display())));
    assert!(u.status.success(), "fusermount3 -u as oscar: {}", text(&u));
    tokio::task::block_in_place(|| wait_for(10, "oscar's unmount", || !mounted(&o_mnt)));

    // allow_other in a user line: fusermount3 allows it only with user_allow_other.
    let fuse_conf = std::fs::read_to_string("/etc/fuse.conf").unwrap_or_default();
    let allowed = fuse_conf.lines().any(|l| l.trim() == "user_allow_other");
    let o = tokio::task::block_in_place(|| alice.run(&format!("SSOFS_BIN={bin} mount {}", other_mnt.display())));
    if allowed {
        assert!(o.status.success(), "{}", text(&o));
        let u = tokio::task::block_in_place(|| alice.run(&format!("umount {}", other_mnt.display())));
        assert!(u.status.success(), "{}", text(&u));
    } else {
        assert!(!o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("user_allow_other"), "the error names the fix: {}", text(&o));
        assert!(!mounted(&other_mnt));
    }
    tokio::task::block_in_place(|| wait_for(10, "no mount left", || !mounted(&other_mnt)));
    stack.shutdown().await;
}
