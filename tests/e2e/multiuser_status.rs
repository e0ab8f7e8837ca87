//! A user of root's multi-user mount runs `ssofs status` and sees the mount with their own figures,
//! never another user's; the public socket that answers them refuses `stop` (and anything but
//! `status`), and root's own control socket stays out of their reach.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use ssofs::mount::{self, control};

use crate::support::system::{UnixUser, devstack, tag};
use crate::support::{self, is_mounted, text};

/// Sends `command` to the socket at `path` from a thread whose real and effective uid are `uid`
/// (only this thread: the raw syscall changes no other thread's credentials), as that user's own
/// process would; the kernel's SO_PEERCRED then names that user.
fn ask_as(uid: u32, gid: u32, path: &Path, command: &str) -> std::io::Result<String> {
    let (path, command) = (path.to_path_buf(), command.to_string());
    std::thread::spawn(move || {
        // SAFETY: setresgid/setresuid on this thread only (raw syscalls, not glibc's process-wide
        // wrappers); the thread ends right after.
        let rc = unsafe {
            libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>());
            libc::syscall(libc::SYS_setresgid, gid, gid, gid);
            libc::syscall(libc::SYS_setresuid, uid, uid, uid)
        };
        assert_eq!(rc, 0, "drop to uid {uid}");
        let mut s = std::os::unix::net::UnixStream::connect(&path)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(format!("{command}\n").as_bytes())?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer)
    })
    .join()
    .unwrap()
}

/// `ssofs status --json` run by `user`: the report of the mount at `mnt`.
fn status_of(user: &UnixUser, mnt: &str) -> Value {
    let bin = env!("CARGO_BIN_EXE_ssofs");
    let out = user.run(&format!("env -u XDG_RUNTIME_DIR {bin} status --json"));
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let mounts = v["mounts"].as_array().cloned().unwrap_or_default();
    mounts.into_iter().find(|m| m["mountpoint"] == mnt).unwrap_or_else(|| panic!("{mnt} not listed: {v:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn each_user_of_a_multiuser_mount_sees_only_their_own_figures_and_cannot_stop_it() {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = PathBuf::from(format!("/tmp/ssofs-mus-{}-{n}", std::process::id()));
    let homes = PathBuf::from("/tmp/ssofs-mus-homes");
    let tag = tag();
    let alice = UnixUser::create(&format!("sms-a{tag}"), &homes);
    let oscar = UnixUser::create(&format!("sms-o{tag}"), &homes);
    let stack = devstack(&dir).await;
    let profile = alice.sign_in(&stack, "alice").await;
    oscar.sign_in(&stack, "oscar").await;

    let (mnt, server) = support::serve_multiuser_here(profile, &dir, dir.join("root"));
    let m = mnt.display().to_string();
    let work = tokio::task::block_in_place(|| {
        alice.run(&format!("printf 12345 > {m}/analytics-raw/alice-status.txt && cat {m}/analytics-raw/README.txt"))
    });
    assert!(work.status.success(), "{}", text(&work));
    let readme_len = text(&work).len() as u64;
    let oscar_read = tokio::task::block_in_place(|| oscar.run(&format!("cat {m}/analytics-raw/alice-status.txt")));
    assert_eq!(text(&oscar_read), "12345");

    let mine = tokio::task::block_in_place(|| status_of(&alice, &m));
    assert_eq!(mine["multiuser"], true);
    let ids = mine["identities"].as_array().unwrap();
    assert_eq!(ids.len(), 1, "alice sees her identity only: {mine:#}");
    assert_eq!(ids[0]["uid"], alice.uid);
    assert_eq!(ids[0]["user"], "alice@contoso.onmicrosoft.com");
    assert_eq!((ids[0]["bytes_written"].as_u64(), ids[0]["bytes_read"].as_u64()), (Some(5), Some(readme_len)));
    let his = tokio::task::block_in_place(|| status_of(&oscar, &m));
    let ids = his["identities"].as_array().unwrap();
    assert_eq!(ids.len(), 1, "{his:#}");
    assert_eq!((ids[0]["uid"].as_u64(), ids[0]["bytes_read"].as_u64()), (Some(oscar.uid as u64), Some(5)));
    assert!(!his.to_string().contains("alice"), "nothing of alice's reaches oscar: {his:#}");

    // Root, through the mount's own socket, sees both.
    let root_view = control::ask(&control::socket_path(&dir.join("root"), &mnt), "status", Duration::from_secs(10));
    let root_view: Value = serde_json::from_str(&root_view.unwrap()).unwrap();
    assert_eq!(root_view["identities"].as_array().unwrap().len(), 2, "{root_view:#}");

    // The public socket answers its users `status` only; root's socket is not theirs to reach.
    let public = control::public_socket_path(&mnt);
    let mode = std::fs::metadata(&public).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666, "any local user may ask");
    for command in ["stop", "metrics"] {
        let answer = tokio::task::block_in_place(|| ask_as(alice.uid, alice.gid, &public, command)).unwrap();
        assert!(answer.starts_with("error: this socket only answers `status`"), "{command}: {answer}");
    }
    let private = control::socket_path(&dir.join("root"), &mnt);
    let refused = tokio::task::block_in_place(|| ask_as(alice.uid, alice.gid, &private, "stop")).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::PermissionDenied, "{refused}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(is_mounted(&mnt) && !server.is_finished(), "root's mount still serves");

    mount::unmount(&mnt).unwrap();
    assert!(server.join().unwrap().is_ok());
    assert!(!public.exists(), "the public socket goes with the mount");
    stack.shutdown().await;
}
