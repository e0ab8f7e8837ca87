//! The systemd user unit packaging/systemd/ssofs@.service, run the way a user manager runs it
//! (there is no systemd here): its ExecStartPre= and ExecStart= with the specifiers (%h, %i, ...)
//! substituted for a signed-in test user, as that user, with NOTIFY_SOCKET pointing to a datagram
//! socket the test listens on. READY=1 must arrive only once the mount serves the user's buckets,
//! and SIGTERM (systemctl stop, KillMode=mixed) must unmount and exit 0.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::system::{DevFuseForUsers, TestDir, UnixUser, UnmountOnDrop, devstack, is_root, require, tag};
use crate::support::{self, mountinfo_line, text};

/// systemd's specifier expansion for a user unit instance (systemd.unit(5) "Specifiers").
fn expand(s: &str, instance: &str, user: &UnixUser, runtime_dir: &Path) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('i') | Some('I') => out.push_str(instance),
            Some('h') => out.push_str(&user.home.to_string_lossy()),
            Some('u') => out.push_str(&user.name),
            Some('U') => out.push_str(&user.uid.to_string()),
            Some('t') => out.push_str(&runtime_dir.to_string_lossy()),
            Some('n') => out.push_str(&format!("ssofs@{instance}.service")),
            Some('p') | Some('P') => out.push_str("ssofs"),
            other => return Err(format!("specifier %{other:?} not handled by the test")),
        }
    }
    Ok(out)
}

/// One datagram and the pid of its sender (SCM_CREDENTIALS), or None on timeout.
fn recv_with_pid(sock: &UnixDatagram, buf: &mut [u8]) -> Option<(usize, i32)> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let mut control = [0u64; 16];
    // SAFETY: an all-zero msghdr is valid; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: msg describes buffers we own.
    let n = unsafe { libc::recvmsg(std::os::fd::AsRawFd::as_raw_fd(sock), &mut msg, 0) };
    if n < 0 {
        return None;
    }
    let mut pid = -1;
    // SAFETY: walking the control messages the kernel wrote into our buffer.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_CREDENTIALS {
                pid = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::ucred>()).pid;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Some((n as usize, pid))
}

fn directive(unit: &str, key: &str) -> String {
    unit.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_else(|| panic!("no {key}=")).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn user_unit_reports_ready_once_the_buckets_are_served_and_stops_cleanly_on_sigterm() {
    if !require(is_root(), "needs root (a test user)") {
        return;
    }
    let unit = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/systemd/ssofs@.service"))
        .unwrap();
    assert_eq!(directive(&unit, "Type"), "notify");
    assert_eq!(directive(&unit, "KillMode"), "mixed", "SIGTERM goes to ssofs itself");

    let _dev_fuse = DevFuseForUsers::hold();
    let dir = TestDir::new("unit");
    let stack = devstack(&dir.0).await;
    let user = UnixUser::create(&format!("suu{}", tag()), &dir.0.join("homes"));
    user.sign_in(&stack, "alice").await;
    let runtime_dir = dir.0.join(format!("run-{}", user.uid));
    std::fs::create_dir_all(&runtime_dir).unwrap();
    user.chown(&runtime_dir);
    let mnt = user.home.join("s3/devstack");
    let _unmount = UnmountOnDrop(mnt.clone());

    // The user manager's notify socket: the service may send to it.
    let sock_path = dir.0.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    std::fs::set_permissions(&sock_path, std::fs::Permissions::from_mode(0o777)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    // As systemd does: the kernel attaches each sender's pid (NotifyAccess=main checks it).
    let on: libc::c_int = 1;
    // SAFETY: setsockopt on our own socket with a c_int option value.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            libc::SOL_SOCKET,
            libc::SO_PASSCRED,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);

    let installed_bin = env!("CARGO_BIN_EXE_ssofs");
    let command_line = |key: &str| -> Vec<String> {
        let line = expand(&directive(&unit, key), "devstack", &user, &runtime_dir).unwrap();
        let mut argv: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        if argv[0] == "/usr/bin/ssofs" {
            argv[0] = installed_bin.to_string(); // what the package installs there
        }
        argv
    };
    let as_service = |argv: &[String]| {
        let mut c = Command::new("setpriv");
        c.args([&format!("--reuid={}", user.uid), &format!("--regid={}", user.gid), "--init-groups", "--"])
            .args(argv)
            .env_clear()
            .env("HOME", &user.home)
            .env("USER", &user.name)
            .env("LOGNAME", &user.name)
            .env("XDG_RUNTIME_DIR", &runtime_dir)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("NOTIFY_SOCKET", &sock_path)
            .env("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
            .current_dir("/");
        c
    };

    let pre = command_line("ExecStartPre");
    let o = tokio::task::block_in_place(|| as_service(&pre).output().unwrap());
    assert!(o.status.success(), "ExecStartPre: {}", text(&o));

    let start = command_line("ExecStart");
    assert!(start.contains(&"--foreground".to_string()), "Type=notify needs the main process to stay: {start:?}");
    let started = Instant::now();
    let mut service = as_service(&start).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();

    // READY=1, and at that moment the mount is there and serves the buckets.
    let ready_after = tokio::task::block_in_place(|| {
        let mut buf = [0u8; 4096];
        loop {
            assert!(started.elapsed() < Duration::from_secs(40), "no READY=1 within 40 s");
            if let Some(status) = service.try_wait().unwrap() {
                panic!("ssofs exited before READY=1: {status}");
            }
            let Some((n, pid)) = recv_with_pid(&sock, &mut buf) else { continue };
            let msg = String::from_utf8_lossy(&buf[..n]).to_string();
            if msg.lines().any(|l| l == "READY=1") {
                assert_eq!(pid, service.id() as i32, "NotifyAccess=main: READY=1 must come from the main process");
                assert!(mountinfo_line(&mnt).is_some(), "READY=1 before the mount exists");
                return started.elapsed();
            }
        }
    });
    eprintln!("READY=1 after {} ms", ready_after.as_millis());
    let ls = tokio::task::block_in_place(|| user.run(&format!("ls {}", mnt.display())));
    assert_eq!(
        text(&ls).split_whitespace().collect::<Vec<_>>(),
        ["analytics-curated", "analytics-raw"],
        "{}",
        text(&ls)
    );
    let line = mountinfo_line(&mnt).unwrap();
    assert!(line.contains(&format!("user_id={}", user.uid)), "the user's own mount: {line}");

    // A file being written when the unit stops is uploaded first.
    let w = tokio::task::block_in_place(|| user.run(&format!("echo unit > {}/analytics-raw/unit.txt", mnt.display())));
    assert!(w.status.success(), "{}", text(&w));

    // systemctl --user stop: SIGTERM to the main process.
    // SAFETY: kill(2) to the child we started.
    assert_eq!(unsafe { libc::kill(service.id() as i32, libc::SIGTERM) }, 0);
    let status = tokio::task::block_in_place(|| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = service.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "ssofs did not exit within 30 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let out = service.wait_with_output().unwrap();
    assert!(status.success(), "exit status {status}: {}", text(&out));
    assert!(mountinfo_line(&mnt).is_none(), "unmounted when the service stops");
    assert_eq!(support::s3_get(&stack, "analytics-raw", "unit.txt").await, b"unit\n");
    stack.shutdown().await;
}
