//! `ssofs mount` as a user runs it: fails early with the reason when it cannot work, otherwise returns
//! once the mount is ready; SIGTERM uploads what is being written, then unmounts.

use std::path::PathBuf;

use crate::support::{self, is_mounted, text};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

struct Env {
    stack: ssofs_devstack::Running,
    dir: PathBuf,
}

impl Env {
    fn ssofs(&self, args: &[&str]) -> Output {
        support::ssofs_cli(&self.stack, &self.dir, args)
    }
}

async fn env(tag: &str) -> Env {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("ssofs-cmd-{tag}-{}-{n}", std::process::id()));
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.auto_approve = Some("alice".into());
    cfg.device_code_interval = Duration::from_secs(1);
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    Env { stack, dir }
}

/// The state letter of a process (`R`, `S`, `Z`…), if it exists.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next())
}

/// Gone, or a zombie (exited, not yet reaped by whoever adopted it).
fn finished(pid: u32) -> bool {
    matches!(process_state(pid), None | Some('Z') | Some('X'))
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn mount_fails_early_with_the_reason() {
    let e = env("early").await;
    let mnt = e.dir.join("mnt");
    let missing = tokio::task::block_in_place(|| e.ssofs(&["mount", mnt.to_str().unwrap()]));
    assert!(!missing.status.success());
    assert!(text(&missing).contains("mkdir -p"), "{}", text(&missing));
    std::fs::create_dir_all(&mnt).unwrap();
    let no_login = tokio::task::block_in_place(|| e.ssofs(&["mount", mnt.to_str().unwrap()]));
    assert!(!no_login.status.success());
    assert!(text(&no_login).contains("ssofs login"), "{}", text(&no_login));
    let bad_option = tokio::task::block_in_place(|| e.ssofs(&["mount", mnt.to_str().unwrap(), "-o", "colour=blue"]));
    assert!(text(&bad_option).contains("colour=blue"), "{}", text(&bad_option));
    assert!(!is_mounted(&mnt));
    e.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mount_returns_when_ready_and_sigterm_uploads_pending_writes() {
    let e = env("ready").await;
    let mnt = e.dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let login = tokio::task::block_in_place(|| e.ssofs(&["login", "--device-code", "--no-qr"]));
    assert!(login.status.success(), "{}", text(&login));
    let m = mnt.clone();
    let started = Instant::now();
    let out = tokio::task::block_in_place(|| e.ssofs(&["mount", m.to_str().unwrap()]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(is_mounted(&mnt), "mounted when the command returns");
    let line = support::mount_line(&mnt).unwrap();
    assert!(!line.contains("allow_other"), "a default mount is for its owner only: {line}");
    eprintln!("ssofs mount returned after {} ms", started.elapsed().as_millis());
    let pid = support::server_pid(&mnt).expect("the background server runs");

    // Peak memory of the serving process while reading a 100 MiB object.
    let body: Vec<u8> = (0..100u32 << 20).map(|i| (i % 249) as u8).collect();
    let big = mnt.join("analytics-raw/hundred.bin");
    let b = body.clone();
    tokio::task::block_in_place(|| std::fs::write(&big, &b).unwrap());
    let before = vm_hwm_kib(pid);
    let read = tokio::task::block_in_place(|| std::fs::read(&big).unwrap());
    assert!(read == body);
    eprintln!(
        "peak RSS of the mount: {} MiB before reading 100 MiB, {} MiB after",
        before / 1024,
        vm_hwm_kib(pid) / 1024
    );

    // A file still open for writing when SIGTERM arrives is uploaded before the unmount.
    let pending = mnt.join("analytics-raw/pending.txt");
    let mut f = std::fs::File::create(&pending).unwrap();
    use std::io::Write;
    f.write_all(b"written, not yet closed").unwrap();
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "the mount did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(f);
    assert!(!is_mounted(&mnt), "unmounted");
    let s3 = support::root_s3(&e.stack);
    let got = s3.get_object().bucket("analytics-raw").key("pending.txt").send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"written, not yet closed");
    e.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_staged_when_ssofs_is_killed_are_reported_and_recovered() {
    let e = env("crash").await;
    let mnt = e.dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let login = tokio::task::block_in_place(|| e.ssofs(&["login", "--device-code", "--no-qr"]));
    assert!(login.status.success(), "{}", text(&login));
    let m = mnt.to_str().unwrap().to_string();
    assert!(tokio::task::block_in_place(|| e.ssofs(&["mount", &m])).status.success());
    let pid = support::server_pid(&mnt).unwrap();
    let mut f = std::fs::File::create(mnt.join("analytics-raw/unsaved.txt")).unwrap();
    use std::io::Write;
    f.write_all(b"typed just before the crash").unwrap();
    // Killed with the file still open: nothing was uploaded.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(f);
    let _ = Command::new("fusermount3").arg("-uz").arg(&mnt).status();

    let again = tokio::task::block_in_place(|| e.ssofs(&["mount", &m]));
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("ssofs recover"), "the next mount reports the leftover: {}", text(&again));
    let recover = tokio::task::block_in_place(|| e.ssofs(&["recover"]));
    assert!(recover.status.success(), "{}", text(&recover));
    assert!(text(&recover).contains("uploaded analytics-raw/unsaved.txt"), "{}", text(&recover));
    let read = tokio::task::block_in_place(|| std::fs::read_to_string(mnt.join("analytics-raw/unsaved.txt")));
    assert_eq!(read.unwrap(), "typed just before the crash");
    let nothing = tokio::task::block_in_place(|| e.ssofs(&["recover"]));
    assert!(text(&nothing).contains("nothing to recover"), "{}", text(&nothing));
    assert!(tokio::task::block_in_place(|| e.ssofs(&["unmount", &m])).status.success());
    e.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mount_logging_at_trace_level_never_logs_a_secret() {
    let e = env("trace").await;
    let mnt = e.dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    assert!(tokio::task::block_in_place(|| e.ssofs(&["login", "--device-code", "--no-qr"])).status.success());
    let m = mnt.to_str().unwrap().to_string();
    let mount = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_ssofs"))
            .args(["mount", &m])
            .env("SSOFS_LOG", "trace")
            .env("SSOFS_CONFIG", &e.stack.profile_file)
            .env("SSOFS_STATE_DIR", e.dir.join("state"))
            .env("XDG_CONFIG_HOME", e.dir.join("no-config"))
            .env("XDG_CACHE_HOME", e.dir.join("cache"))
            .output()
            .unwrap()
    });
    assert!(mount.status.success(), "{}", text(&mount));
    tokio::task::block_in_place(|| {
        std::fs::write(mnt.join("analytics-raw/traced.txt"), b"traced").unwrap();
        assert_eq!(std::fs::read(mnt.join("analytics-raw/traced.txt")).unwrap(), b"traced");
        assert!(std::fs::read_dir(mnt.join("analytics-raw")).unwrap().count() > 0);
    });
    assert!(tokio::task::block_in_place(|| e.ssofs(&["unmount", &m])).status.success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let state = e.dir.join("state");
    let mut log = String::new();
    for entry in std::fs::read_dir(&state).unwrap().flatten() {
        if entry.path().extension().is_some_and(|x| x == "log") {
            log.push_str(&std::fs::read_to_string(entry.path()).unwrap());
        }
    }
    assert!(log.len() > 10_000, "trace logging was on ({} bytes)", log.len());
    let tokens: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("devstack.tokens.json")).unwrap()).unwrap();
    for field in ["id_token", "access_token", "refresh_token"] {
        let secret = tokens[field].as_str().unwrap();
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!log.contains(signature), "{field} appears in the trace log");
    }
    // STS session tokens are long runs of letters and digits; secret keys are only ever shown redacted.
    let longest_run = log.split(|c: char| !c.is_ascii_alphanumeric()).map(str::len).max().unwrap_or(0);
    assert!(longest_run < 200, "a {longest_run}-character token-like run in the log");
    assert!(!log.contains("<SecretAccessKey>") && !log.contains("<SessionToken>"));
    for line in log.lines().filter(|l| l.contains("secret_access_key") || l.contains("x-amz-security-token:")) {
        assert!(line.contains("redacted"), "unredacted credential in: {line}");
    }
    e.stack.shutdown().await;
}

/// An unmount by the user (`fusermount3 -u`, `umount`) is a normal end: the mount's log says
/// nothing about a failure (fuser warned "Unmount failed: Invalid argument" every time).
#[tokio::test(flavor = "multi_thread")]
async fn an_unmount_by_the_user_logs_no_failure() {
    let e = env("clean-unmount").await;
    let mnt = e.dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    assert!(tokio::task::block_in_place(|| e.ssofs(&["login", "--device-code", "--no-qr"])).status.success());
    let log = e.dir.join("mount.log");
    let (m, l) = (mnt.to_str().unwrap().to_string(), log.to_str().unwrap().to_string());
    let out = tokio::task::block_in_place(|| e.ssofs(&["mount", &m, "-o", &format!("log_file={l}")]));
    assert!(out.status.success(), "{}", text(&out));
    let pid = support::server_pid(&mnt).expect("the background server runs");
    let unmounted = tokio::task::block_in_place(|| Command::new("fusermount3").arg("-u").arg(&mnt).status().unwrap());
    assert!(unmounted.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "the mount process did not end after the unmount");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!text.contains("WARN") && !text.contains("ERROR"), "a clean unmount logged: {text}");
    e.stack.shutdown().await;
}

/// Each mount stages on its own: another mount of the same user does not warn about a crashed
/// mount's leftovers, and `ssofs recover --mountpoint` acts only on the mount it names, saying what
/// it found first.
#[tokio::test(flavor = "multi_thread")]
async fn leftovers_belong_to_their_own_mount() {
    let e = env("per-mount").await;
    let (crashed, other) = (e.dir.join("crashed"), e.dir.join("other"));
    for d in [&crashed, &other] {
        std::fs::create_dir_all(d).unwrap();
    }
    assert!(tokio::task::block_in_place(|| e.ssofs(&["login", "--device-code", "--no-qr"])).status.success());
    let (c, o) = (crashed.to_str().unwrap().to_string(), other.to_str().unwrap().to_string());
    assert!(tokio::task::block_in_place(|| e.ssofs(&["mount", &c])).status.success());
    let pid = support::server_pid(&crashed).unwrap();
    let mut f = std::fs::File::create(crashed.join("analytics-raw/orphan.txt")).unwrap();
    use std::io::Write;
    f.write_all(b"left by the crashed mount").unwrap();
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(f);
    let _ = Command::new("fusermount3").arg("-uz").arg(&crashed).status();

    let mounted = tokio::task::block_in_place(|| e.ssofs(&["mount", &o]));
    assert!(mounted.status.success(), "{}", text(&mounted));
    assert!(!text(&mounted).contains("ssofs recover"), "another mount does not warn about it: {}", text(&mounted));
    let nothing = tokio::task::block_in_place(|| e.ssofs(&["recover", "--mountpoint", &o]));
    assert!(text(&nothing).contains("nothing to recover"), "{}", text(&nothing));
    let recover = tokio::task::block_in_place(|| e.ssofs(&["recover", "--mountpoint", &c]));
    assert!(recover.status.success(), "{}", text(&recover));
    let said = text(&recover);
    let (found, uploaded) = (said.find("found 1 file(s)"), said.find("uploaded analytics-raw/orphan.txt"));
    assert!(found.is_some() && uploaded.is_some() && found < uploaded, "lists what it found, then acts: {said}");
    assert!(tokio::task::block_in_place(|| e.ssofs(&["unmount", &o])).status.success());
    e.stack.shutdown().await;
}

/// `ssofs unmount` returns only once the mount has uploaded what is open and its process is gone,
/// so a mount made at once on the same path stays. Before, the old process, still finishing, tore
/// the new mount down within a second (3 times out of 3).
#[tokio::test(flavor = "multi_thread")]
async fn ssofs_unmount_waits_for_the_mount_to_end_so_a_remount_at_once_stays() {
    let e = env("remount").await;
    let mnt = e.dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    assert!(tokio::task::block_in_place(|| e.ssofs(&["login", "--device-code", "--no-qr"])).status.success());
    let m = mnt.to_str().unwrap().to_string();
    let s3 = support::root_s3(&e.stack);
    for round in 0..3 {
        let out = tokio::task::block_in_place(|| e.ssofs(&["mount", &m]));
        assert!(out.status.success(), "round {round}: {}", text(&out));
        let pid = support::server_pid(&mnt).expect("the background server runs");
        // A file still open when the unmount is asked for is uploaded before it returns.
        let key = format!("open-at-unmount-{round}.txt");
        let mut open = std::fs::File::create(mnt.join("analytics-raw").join(&key)).unwrap();
        use std::io::Write;
        open.write_all(b"still open").unwrap();
        let out = tokio::task::block_in_place(|| e.ssofs(&["unmount", &m]));
        assert!(out.status.success(), "round {round}: {}", text(&out));
        assert!(finished(pid), "round {round}: the old mount process still runs: {:?}", process_state(pid));
        drop(open);
        let got =
            s3.get_object().bucket("analytics-raw").key(&key).send().await.expect("uploaded before unmount returned");
        assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"still open");
    }
    let out = tokio::task::block_in_place(|| e.ssofs(&["mount", &m]));
    assert!(out.status.success(), "{}", text(&out));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(is_mounted(&mnt), "the new mount is still there");
    assert!(tokio::task::block_in_place(|| std::fs::read_dir(&mnt).unwrap().count()) > 0);
    let out = tokio::task::block_in_place(|| e.ssofs(&["unmount", &m]));
    assert!(out.status.success(), "{}", text(&out));
    e.stack.shutdown().await;
}
