//! `ssofs login --browser` keeps the sign-in to the user signing in. The authorize URL carries the
//! sign-in's state and PKCE challenge: handed to `$BROWSER` on its command line, every user of the
//! machine could read it in `ps` (/proc/PID/cmdline) and race the user to the loopback port with a
//! code of their own (login CSRF: the victim's mount then works as the attacker's account). So ssofs
//! hands the browser a private page instead (a 0600 file of the user's, in a 0700 directory) that
//! redirects to the URL; a request to the loopback port with another state is answered 400 and the
//! sign-in goes on; and a sign-in that ends up as another account than asked for says so loudly.
//!
//! The fake browsers here take either form (the URL, or a page redirecting to it), so the tests run
//! against old and new ssofs alike; a real headless Chromium checks that real browsers follow the page.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::identity::{self, AUTH_URL_SH, Stack, browser_script, curl_browser};
use crate::support::system::{UnixUser, is_root, require, tag};
use crate::support::text;

/// The ssofs process of one user's sign-in, run as that user (runuser, under `timeout`). When
/// dropped (a failed assertion too) it lets the fake browser go on and waits for everything to end,
/// killing what it started when that takes too long.
struct UserLogin {
    child: Option<Child>,
    go: PathBuf,
}

impl UserLogin {
    /// Waits for the sign-in to end (at most `secs`); returns its exit status and output.
    fn finish(mut self, secs: u64) -> (bool, String) {
        let _ = std::fs::write(&self.go, b"");
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(secs);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut out = String::new();
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        child.stderr.take().unwrap().read_to_string(&mut out).unwrap();
        match status {
            Some(s) => (s.success(), out),
            None => (false, format!("{out}\n(sign-in still running after {secs} s: killed)")),
        }
    }

    fn ended(&mut self) -> bool {
        self.child.as_mut().unwrap().try_wait().unwrap().is_some()
    }
}

impl Drop for UserLogin {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.go, b"");
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A directory of `user`'s, mode 0700, below their home.
fn private_dir(user: &UnixUser, rel: &str) -> PathBuf {
    let d = user.home.join(rel);
    std::fs::create_dir_all(&d).unwrap();
    user.chown(&d);
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

/// The user's victim signs in with the browser while another user watches every process of theirs
/// and tries the file the browser was handed: the watcher learns neither the state nor the PKCE
/// challenge, and the page is the victim's alone.
#[tokio::test(flavor = "multi_thread")]
async fn another_user_cannot_read_the_sign_in_url_while_the_browser_opens_it() {
    if !require(is_root(), "creating Unix users needs root") {
        return;
    }
    let stack = Stack::start("url-private", |c| c.auto_approve = Some("alice".into())).await;
    let homes = PathBuf::from("/tmp/ssofs-urlp-homes");
    let t = tag();
    let victim = UnixUser::create(&format!("sup-v{t}"), &homes);
    let watcher = UnixUser::create(&format!("sup-x{t}"), &homes);
    victim.write_file(".config/ssofs/config.toml", &std::fs::read(&stack.running.profile_file).unwrap(), 0o600);
    let state = private_dir(&victim, ".local/state/ssofs");
    for d in [victim.home.join(".local"), victim.home.join(".local/state")] {
        victim.chown(&d);
    }
    let run = private_dir(&victim, "run");
    // The browser notes what it was handed, then waits (for the watcher to look) before it signs in.
    let browser = victim.write_file(
        "bin/browser.sh",
        format!(
            "#!/bin/sh\n{AUTH_URL_SH}run={run}\nprintf '%s\\n' \"$@\" > \"$run/argv.tmp\" && mv \"$run/argv.tmp\" \"$run/argv\"\n\
             i=0; while [ ! -e \"$run/go\" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n\
             url=$(auth_url \"$1\")\n[ -n \"$url\" ] || exit 1\n\
             loc=$(curl -s --max-time 20 -o /dev/null -w '%{{redirect_url}}' \"$url\")\n[ -n \"$loc\" ] || exit 1\n\
             curl -s --max-time 20 \"$loc\" > \"$run/loopback-page.html\"\n",
            run = run.display()
        )
        .as_bytes(),
        0o755,
    );
    let go = run.join("go");
    let child = Command::new("runuser")
        .args(["-u", &victim.name, "--", "timeout", "120", "env", "-i"])
        .arg(format!("HOME={}", victim.home.display()))
        .arg("PATH=/usr/local/bin:/usr/bin:/bin")
        .arg(format!("SSOFS_CONFIG={}", victim.home.join(".config/ssofs/config.toml").display()))
        .arg(format!("SSOFS_STATE_DIR={}", state.display()))
        .arg(format!("XDG_CONFIG_HOME={}", victim.home.join("no-config").display()))
        .arg(format!("BROWSER={}", browser.display()))
        .args([env!("CARGO_BIN_EXE_ssofs"), "login", "--browser", "--timeout", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut login = UserLogin { child: Some(child), go };

    let argv_file = run.join("argv");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !argv_file.exists() {
        if login.ended() || Instant::now() > deadline {
            let (_, out) = login.finish(5);
            panic!("the browser was never started: {out}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let argv = std::fs::read_to_string(&argv_file).unwrap();
    let handed = argv.lines().next().unwrap_or_default().to_string();

    // Every command line of the victim's processes, as the watcher reads them.
    let scan = format!(
        "timeout 20 sh -c 'for p in /proc/[0-9]*; do [ \"$(stat -c %u $p 2>/dev/null)\" = {uid} ] && \
         {{ cat $p/cmdline 2>/dev/null | tr \"\\0\" \" \"; echo; }}; done'",
        uid = victim.uid
    );
    let seen = tokio::task::block_in_place(|| watcher.run(&scan));
    let seen = text(&seen);
    assert!(
        seen.contains("login --browser") && seen.contains(&browser.display().to_string()),
        "the watcher reads the victim's command lines (the check is not vacuous): {seen}"
    );
    assert!(
        !seen.contains("state=") && !seen.contains("code_challenge="),
        "another user reads the sign-in URL on the victim's command line (ps): {seen}"
    );
    assert!(!handed.starts_with("http"), "the browser was handed the URL itself: {handed}");

    // The page the browser was handed: the victim's, private, and only theirs to read.
    let page = PathBuf::from(handed.strip_prefix("file://").unwrap_or(&handed));
    let meta = std::fs::metadata(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
    assert_eq!(meta.uid(), victim.uid, "{} belongs to the user signing in", page.display());
    assert_eq!(meta.mode() & 0o777, 0o600, "{} is 0600", page.display());
    let parent = std::fs::metadata(page.parent().unwrap()).unwrap();
    assert_eq!(parent.uid(), victim.uid, "{} is in a directory of the user's", page.display());
    assert_eq!(parent.mode() & 0o777, 0o700, "{} is in a 0700 directory", page.display());
    let peek = tokio::task::block_in_place(|| watcher.run(&format!("timeout 20 cat '{}'", page.display())));
    assert!(!peek.status.success(), "{}", text(&peek));
    assert!(text(&peek).contains("Permission denied"), "{}", text(&peek));
    assert!(!text(&peek).contains("state="), "{}", text(&peek));

    let (ok, out) = tokio::task::block_in_place(|| login.finish(90));
    assert!(ok, "the sign-in through the page works: {out}");
    assert!(out.contains("Signed in as alice"), "{out}");
    stack.running.shutdown().await;
}

/// A page elsewhere (or another user racing the victim) sends the loopback port a redirect with a
/// state of its own, or none: it gets 400, and the sign-in waits on and takes the victim's own.
#[tokio::test(flavor = "multi_thread")]
async fn a_forged_redirect_gets_400_and_the_sign_in_still_completes() {
    let stack = Stack::start("url-forged", |c| c.auto_approve = Some("alice".into())).await;
    let d = stack.dir.display().to_string();
    let browser = browser_script(
        &stack.dir,
        "forger.sh",
        &format!(
            "url=$(auth_url \"$1\")\n[ -n \"$url\" ] || exit 1\n\
             port=$(printf '%s' \"$url\" | sed -n 's/.*redirect_uri=http%3A%2F%2Flocalhost%3A\\([0-9]*\\).*/\\1/p')\n\
             curl -s --max-time 10 -o /dev/null -w '%{{http_code}}' \"http://127.0.0.1:$port/?code=forged&state=wrong\" > {d}/wrong-state\n\
             curl -s --max-time 10 -o /dev/null -w '%{{http_code}}' \"http://127.0.0.1:$port/?code=forged\" > {d}/no-state\n\
             loc=$(curl -s --max-time 10 -o /dev/null -w '%{{redirect_url}}' \"$url\")\n[ -n \"$loc\" ] || exit 1\n\
             curl -s --max-time 10 \"$loc\" > {d}/loopback-page.html\n"
        ),
    );
    let out = stack.run(&["login", "--browser", "--timeout", "30"], &[("BROWSER", browser.to_str().unwrap())]).await;
    assert!(out.status.success(), "a forged redirect must not end the sign-in: {}", text(&out));
    assert!(text(&out).contains("Signed in as alice"), "{}", text(&out));
    let status = |name: &str| std::fs::read_to_string(stack.dir.join(name)).unwrap_or_default();
    assert_eq!(status("wrong-state"), "400", "a redirect with another state");
    assert_eq!(status("no-state"), "400", "a redirect without a state");
    assert!(stack.token_file("devstack").exists());
    stack.running.shutdown().await;
}

/// Kills (by id) the `timeout` that runs Chromium, which passes the signal on, when dropped.
struct KillPidFile(PathBuf);

impl Drop for KillPidFile {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(&self.0).ok().and_then(|p| p.trim().parse::<i32>().ok()) {
            // SAFETY: a signal to the process our wrapper script recorded.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().map(PathBuf::from).find(|p| p.exists())
}

/// A real browser (headless Chromium from Debian's `chromium`) as `$BROWSER`: whatever ssofs hands
/// it, it ends at the loopback redirect and the user is signed in.
#[tokio::test(flavor = "multi_thread")]
async fn a_real_headless_browser_completes_the_sign_in() {
    let Some(chromium) = chromium() else {
        require(false, "chromium (scripts/install-deps installs it)");
        return;
    };
    let stack = Stack::start("url-chromium", |c| c.auto_approve = Some("alice".into())).await;
    let d = stack.dir.display().to_string();
    let pid_file = stack.dir.join("chromium.pid");
    let _kill = KillPidFile(pid_file.clone());
    let browser = identity::script(
        &stack.dir,
        "chromium.sh",
        &format!(
            "#!/bin/sh\necho $$ > {pid}\nexec timeout -k 5 90 {chromium} --headless=new --no-sandbox --disable-gpu \
             --disable-quic --no-first-run --disable-background-networking --disable-component-update --disable-sync \
             --user-data-dir={d}/chromium-profile \"$@\" > {d}/chromium.log 2>&1\n",
            pid = pid_file.display(),
            chromium = chromium.display()
        ),
    );
    let start = Instant::now();
    let out = stack.run(&["login", "--browser", "--timeout", "60"], &[("BROWSER", browser.to_str().unwrap())]).await;
    let took = start.elapsed();
    eprintln!("headless Chromium sign-in took {:.1} s", took.as_secs_f64());
    let log = std::fs::read_to_string(stack.dir.join("chromium.log")).unwrap_or_default();
    assert!(out.status.success(), "{}\nchromium log:\n{log}", text(&out));
    assert!(text(&out).contains("Signed in as alice"), "{}", text(&out));
    stack.running.shutdown().await;
}

/// A line of the output says WARNING and names both accounts.
fn warns_about(out: &str, a: &str, b: &str) -> bool {
    out.lines().any(|l| l.contains("WARNING") && l.contains(a) && l.contains(b))
}

/// The account signed in is not the one asked for (`--login-hint`) or the one this profile had: the
/// user picked another account in the browser, or someone else's sign-in came back. ssofs says so.
#[tokio::test(flavor = "multi_thread")]
async fn signing_in_as_another_account_than_before_or_than_hinted_is_warned_about() {
    let stack = Stack::start("url-account", |c| c.auto_approve = Some("alice".into())).await;
    let browser = curl_browser(&stack.dir);
    let b = browser.to_str().unwrap();
    let first = stack.run(&["login", "--browser", "--timeout", "60"], &[("BROWSER", b)]).await;
    assert!(first.status.success(), "{}", text(&first));
    assert!(text(&first).contains("Signed in as alice"), "{}", text(&first));
    assert!(!text(&first).contains("WARNING"), "a first sign-in is nothing to warn about: {}", text(&first));

    // The profile was alice's; bob's sign-in comes back.
    stack.control("auto-approve", &[("user", "bob")]).await;
    let second = stack.run(&["login", "--browser", "--timeout", "60"], &[("BROWSER", b)]).await;
    assert!(second.status.success(), "{}", text(&second));
    let o = text(&second);
    assert!(o.contains("Signed in as bob"), "{o}");
    assert!(warns_about(&o, "alice", "bob"), "account changed, not said: {o}");

    // Asked for alice; in the browser another account (bob) was picked: the hint never reaches the IdP.
    let picker = browser_script(
        &stack.dir,
        "pick-another.sh",
        "url=$(auth_url \"$1\" | sed 's/&login_hint=[^&]*//')\n[ -n \"$url\" ] || exit 1\n\
         loc=$(curl -s --max-time 20 -o /dev/null -w '%{redirect_url}' \"$url\")\n[ -n \"$loc\" ] || exit 1\n\
         curl -s --max-time 20 \"$loc\" > /dev/null\n",
    );
    let third = stack
        .run(
            &["login", "--browser", "--timeout", "60", "--login-hint", "alice@contoso.onmicrosoft.com"],
            &[("BROWSER", picker.to_str().unwrap())],
        )
        .await;
    assert!(third.status.success(), "{}", text(&third));
    let o = text(&third);
    assert!(o.contains("Signed in as bob"), "{o}");
    assert!(warns_about(&o, "alice", "bob"), "not the hinted account, not said: {o}");
    stack.running.shutdown().await;
}
