//! `ssofs recover` run from a script or with its output in a log (not a terminal): one plain line
//! per file as it is handled, with its place in the count and its size, and no progress-bar
//! control characters (a terminal gets a bar instead).

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{self, text, unique_dir};

/// Mounts, writes `files` without closing them, kills the mount: they stay staged.
async fn crash_with_open_files(stack: &ssofs_devstack::Running, dir: &Path, files: &[(&str, &[u8])]) {
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let m = mnt.to_str().unwrap();
    let mounted = tokio::task::block_in_place(|| support::ssofs_cli(stack, dir, &["mount", m]));
    assert!(mounted.status.success(), "{}", text(&mounted));
    let pid = support::server_pid(&mnt).unwrap();
    let open: Vec<std::fs::File> = files
        .iter()
        .map(|(name, body)| {
            let mut f = std::fs::File::create(mnt.join("analytics-raw").join(name)).unwrap();
            f.write_all(body).unwrap();
            f
        })
        .collect();
    // SAFETY: kill with a pid and a signal number.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    while Path::new(&format!("/proc/{pid}")).exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(open);
    let _ = Command::new("fusermount3").arg("-uz").arg(&mnt).status();
}

/// The lines of `out` that report a file, in order.
fn file_lines(out: &std::process::Output) -> Vec<String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout.lines().filter(|l| l.starts_with('[')).map(str::to_string).collect()
}

fn no_control_characters(out: &std::process::Output) {
    let all = text(out);
    assert!(!all.contains('\r') && !all.contains('\u{1b}'), "plain lines only: {all:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn recover_without_a_terminal_prints_one_line_per_file() {
    let dir = unique_dir("recover-lines");
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.auto_approve = Some("alice".into());
    cfg.device_code_interval = Duration::from_secs(1);
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    let run = |args: &[&str]| tokio::task::block_in_place(|| support::ssofs_cli(&stack, &dir, args));
    let login = run(&["login", "--device-code", "--no-qr"]);
    assert!(login.status.success(), "{}", text(&login));

    crash_with_open_files(&stack, &dir, &[("a.txt", b"first file"), ("b.txt", b"the second file")]).await;
    let recover = run(&["recover"]);
    assert!(recover.status.success(), "{}", text(&recover));
    no_control_characters(&recover);
    let lines = file_lines(&recover);
    assert!(
        lines.len() == 2 && lines[0].starts_with("[1/2] uploaded ") && lines[1].starts_with("[2/2] uploaded "),
        "{}",
        text(&recover)
    );
    let mut files: Vec<&str> = lines.iter().filter_map(|l| l.split_once("] uploaded ")).map(|(_, f)| f).collect();
    files.sort();
    assert_eq!(files, ["analytics-raw/a.txt (10 bytes)", "analytics-raw/b.txt (15 bytes)"]);
    assert_eq!(support::s3_get(&stack, "analytics-raw", "b.txt").await, b"the second file");

    crash_with_open_files(&stack, &dir, &[("c.txt", b"exported")]).await;
    let out = dir.join("exported");
    let export = run(&["recover", "--export", out.to_str().unwrap()]);
    assert!(export.status.success(), "{}", text(&export));
    no_control_characters(&export);
    let expected = format!("[1/1] exported {} (8 bytes)", out.join("analytics-raw/c.txt").display());
    assert_eq!(file_lines(&export), [expected], "{}", text(&export));
    stack.shutdown().await;
}

/// On a terminal (script(1) gives recover one) the files are listed above a progress bar instead.
#[tokio::test(flavor = "multi_thread")]
async fn recover_on_a_terminal_lists_the_files_above_a_progress_bar() {
    let dir = unique_dir("recover-bar");
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.auto_approve = Some("alice".into());
    cfg.device_code_interval = Duration::from_secs(1);
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    let login =
        tokio::task::block_in_place(|| support::ssofs_cli(&stack, &dir, &["login", "--device-code", "--no-qr"]));
    assert!(login.status.success(), "{}", text(&login));
    crash_with_open_files(&stack, &dir, &[("bar.txt", b"behind a bar")]).await;

    let command = format!("{} recover", env!("CARGO_BIN_EXE_ssofs"));
    let recover = tokio::task::block_in_place(|| {
        Command::new("script")
            .args(["-q", "-e", "-c", &command, "/dev/null"])
            .env("SSOFS_CONFIG", &stack.profile_file)
            .env("SSOFS_STATE_DIR", dir.join("state"))
            .env("XDG_CONFIG_HOME", dir.join("no-config"))
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .env("TERM", "xterm")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("script(1) from util-linux")
    });
    let said = text(&recover);
    assert!(recover.status.success(), "{said}");
    assert!(said.contains("uploaded analytics-raw/bar.txt (12 bytes)"), "the file is listed: {said:?}");
    assert!(!said.contains("[1/1]"), "a bar, not the lines for logs: {said:?}");
    assert_eq!(support::s3_get(&stack, "analytics-raw", "bar.txt").await, b"behind a bar");
    stack.shutdown().await;
}
