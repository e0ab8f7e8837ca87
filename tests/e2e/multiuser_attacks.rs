//! Attacks on a multiuser mount by its unprivileged users, each run as a real Unix user against a
//! mount made by root, each asserting the safe outcome: a user's token store cannot lend them
//! another user's identity (symlink), make root chown or overwrite root's files (symlinks), or hang
//! the mount for everyone (FIFO); and staged writes cannot be swapped for root's files where the
//! user can prepare or write the staging directory (`$TMPDIR` of a mount without HOME, a shared
//! `cache_dir`).

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::system::{TestDir, UnixUser, tag};
use crate::support::{control_client, is_mounted, root_s3, text};
use ssofs::mount::{self, MountOptions, MountRequest};

/// A devstack; `id_token_lifetime` below the refresh margin (300 s) makes every use refresh.
async fn devstack(dir: &Path, id_token_lifetime: Duration) -> ssofs_devstack::Running {
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.device_code_interval = Duration::from_secs(1);
    cfg.id_token_lifetime = id_token_lifetime;
    ssofs_devstack::start(cfg).await.unwrap()
}

async fn control(stack: &ssofs_devstack::Running, path: &str, form: &[(&str, &str)]) {
    let resp = control_client(stack).post(format!("{}/{path}", stack.control_url)).form(form).send().await.unwrap();
    assert!(resp.status().is_success(), "{path}");
}

/// Blocking work (users' commands, polling) off the async workers the devstack runs on.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// `-o multiuser` made by root, served by a thread of this process; unmounted when dropped.
struct MultiMount {
    mnt: PathBuf,
    server: Option<std::thread::JoinHandle<Result<(), mount::MountError>>>,
}

impl MultiMount {
    fn new(dir: &Path, profile: &ssofs::config::Profile) -> MultiMount {
        let mnt = dir.join("mnt");
        std::fs::create_dir_all(&mnt).unwrap();
        let options = MountOptions { multiuser: true, cache_dir: Some(dir.join("cache")), ..Default::default() };
        let req = MountRequest {
            profile: profile.clone(),
            mountpoint: mnt.clone(),
            options,
            foreground: true,
            state_dir: dir.join("root-state"),
        };
        let mut mount = MultiMount { mnt, server: Some(std::thread::spawn(move || mount::run(req))) };
        blocking(|| {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !is_mounted(&mount.mnt) {
                if mount.server.as_ref().is_some_and(|s| s.is_finished()) {
                    panic!("mount ended: {:?}", mount.server.take().map(|s| s.join()));
                }
                assert!(Instant::now() < deadline, "mount never became ready");
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        mount
    }

    fn m(&self) -> String {
        self.mnt.display().to_string()
    }
}

impl Drop for MultiMount {
    fn drop(&mut self) {
        if is_mounted(&self.mnt) {
            let _ = mount::unmount(&self.mnt);
        }
        if is_mounted(&self.mnt) {
            let _ = Command::new("fusermount3").arg("-uz").arg(&self.mnt).status();
        }
        // A server stuck in a request (the FIFO attack) is left behind rather than waited for.
        let deadline = Instant::now() + Duration::from_secs(20);
        if let Some(server) = self.server.take() {
            while !server.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if server.is_finished() {
                let result = server.join();
                if !std::thread::panicking() {
                    assert!(matches!(result, Ok(Ok(()))), "mount server: {result:?}");
                }
            }
        }
    }
}

fn run_as(user: &UnixUser, cmd: &str) -> Output {
    blocking(|| user.run(cmd))
}

/// `sh -c cmd` as `user` in a process group of its own, not waited for.
fn spawn_as(user: &UnixUser, cmd: &str) -> Child {
    Command::new("runuser")
        .args(["-u", &user.name, "--", "sh", "-c", cmd])
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child` until `deadline`; its output and when it ended, or None if it still runs.
fn finish_by(child: &mut Option<Child>, deadline: Instant) -> Option<(Output, Instant)> {
    blocking(|| {
        loop {
            if child.as_mut()?.try_wait().unwrap().is_some() {
                return Some((child.take()?.wait_with_output().unwrap(), Instant::now()));
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

fn kill_group(child: &Option<Child>) {
    if let Some(c) = child {
        // SAFETY: kill has no memory effects; the group is the one this test started.
        unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
    }
}

fn tokens_file(user: &UnixUser, profile: &str) -> PathBuf {
    user.home.join(format!(".local/state/ssofs/{profile}.tokens.json"))
}

fn refresh_token_in(path: &Path) -> String {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    json["refresh_token"].as_str().expect("a refresh token is stored").to_string()
}

/// Everything below `dir`, symlinks not followed.
fn walk(dir: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { continue };
        if meta.is_dir() {
            out.extend(walk(&entry.path()));
        }
        out.push((entry.path(), meta));
    }
    out
}

/// A root-only file (root:root 0600) with known content, in a root-only directory.
fn root_file(dir: &Path, name: &str) -> (PathBuf, String) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = dir.join(name);
    let content = format!("root-only {name} {}\n", tag());
    std::fs::write(&path, &content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (path, content)
}

/// What is wrong with a root file after an attack: owner, mode or content changed.
fn root_file_damage(path: &Path, content: &str) -> Option<String> {
    let meta = std::fs::symlink_metadata(path).unwrap();
    let now = std::fs::read_to_string(path).unwrap_or_default();
    let (uid, gid, mode) = (meta.uid(), meta.gid(), meta.mode() & 0o7777);
    (uid != 0 || gid != 0 || mode != 0o600 || now != content).then(|| {
        let now: String = now.chars().take(40).collect();
        format!("{} is now {uid}:{gid} mode {mode:o} starting {now:?} (was 0:0 0600 {content:?})", path.display())
    })
}

/// S3 requests refused because their credentials expired: MinIO, and the devstack with it, looks an
/// expired temporary key up as unknown and answers 403 InvalidAccessKeyId.
async fn rejections(stack: &ssofs_devstack::Running) -> usize {
    let log: Vec<serde_json::Value> =
        reqwest::get(format!("{}/requests", stack.control_url)).await.unwrap().json().await.unwrap();
    log.iter().filter(|r| r["code"] == "InvalidAccessKeyId" && r["access_key"] != "").count()
}

fn expect_safe(wrong: &[String]) {
    assert!(wrong.is_empty(), "the attack worked:\n- {}", wrong.join("\n- "));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_symlinked_token_file_does_not_give_another_users_identity() {
    let dir = TestDir::new("mua-link");
    // A short ID token lifetime: a mount using the tokens refreshes them and stores the result.
    let stack = devstack(&dir.0, Duration::from_secs(120)).await;
    let homes = dir.0.join("homes");
    let alice = UnixUser::create(&format!("mua-a{}", tag()), &homes);
    let carol = UnixUser::create(&format!("mua-c{}", tag()), &homes);
    let profile = alice.sign_in(&stack, "alice").await;
    let alices_tokens = tokens_file(&alice, &profile.name);
    let alices_refresh_token = refresh_token_in(&alices_tokens);
    let mnt = MultiMount::new(&dir.0, &profile);
    let m = mnt.m();

    // Carol has no login: she makes her store's token file a symlink to alice's, which she cannot read.
    let store = carol.home.join(".local/state/ssofs");
    let plant = run_as(
        &carol,
        &format!(
            "mkdir -p -m 700 {s} && ln -s {t} {s}/{p}.tokens.json && ! cat {t}",
            s = store.display(),
            t = alices_tokens.display(),
            p = profile.name
        ),
    );
    assert!(plant.status.success() && text(&plant).contains("Permission denied"), "{}", text(&plant));

    let mut wrong = Vec::new();
    let root = run_as(&carol, &format!("timeout 30 ls -A {m}"));
    if !root.status.success() || !text(&root).trim().is_empty() {
        wrong.push(format!("carol (no login) sees this in the root, not an empty root: {}", text(&root)));
    }
    let below = run_as(&carol, &format!("timeout 30 ls {m}/analytics-raw"));
    if below.status.success() || !text(&below).contains("Permission denied") {
        wrong.push(format!("carol (no login) is not refused below the root: {}", text(&below)));
    }
    drop(mnt);
    for (path, meta) in walk(&carol.home) {
        if meta.is_file() && meta.uid() == carol.uid {
            let content = String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()).to_string();
            if content.contains(&alices_refresh_token) || content.contains("\"refresh_token\"") {
                wrong.push(format!("{} is carol's own file now and holds alice's tokens", path.display()));
            }
        }
    }
    expect_safe(&wrong);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn symlinks_in_a_users_token_store_do_not_make_the_mount_chown_or_overwrite_root_files() {
    let dir = TestDir::new("mua-chown");
    let stack = devstack(&dir.0, Duration::from_secs(120)).await;
    let homes = dir.0.join("homes");
    // Alice attacks through the refresh (lock, temporary file), bob through a refused sign-in (marker).
    let alice = UnixUser::create(&format!("mua-a{}", tag()), &homes);
    let bob = UnixUser::create(&format!("mua-b{}", tag()), &homes);
    let profile = alice.sign_in(&stack, "alice").await;
    bob.sign_in(&stack, "oscar").await;
    let p = profile.name.clone();
    let signed_in_with = refresh_token_in(&tokens_file(&alice, &p));
    let root_only = dir.0.join("root-only");
    let targets = [root_file(&root_only, "lock"), root_file(&root_only, "tmp"), root_file(&root_only, "marker")];
    let mnt = MultiMount::new(&dir.0, &profile);
    let m = mnt.m();
    let link = |user: &UnixUser, name: &str, target: &Path| {
        let plant =
            run_as(user, &format!("ln -sf {} {}/.local/state/ssofs/{p}.{name}", target.display(), user.home.display()));
        assert!(plant.status.success(), "{}", text(&plant));
    };

    // The mount refreshes alice's tokens when she uses it (the path the attack rides on).
    let ls = run_as(&alice, &format!("timeout 30 ls {m}"));
    assert!(text(&ls).contains("analytics-raw"), "{}", text(&ls));
    assert_ne!(refresh_token_in(&tokens_file(&alice, &p)), signed_in_with, "test setup: the mount refreshed");

    // Lock and temporary file become symlinks to root's files; expired credentials make the
    // mount refresh again.
    link(&alice, "lock", &targets[0].0);
    link(&alice, "tokens.json.tmp", &targets[1].0);
    let before = rejections(&stack).await;
    control(&stack, "expire-sessions", &[]).await;
    let used = run_as(&alice, &format!("timeout 30 ls {m}/analytics-raw"));
    assert!(rejections(&stack).await > before, "test setup: S3 refused the expired credentials: {}", text(&used));

    // Bob's login-required marker becomes a symlink to a root file; his sign-in is revoked, and
    // expired credentials make the mount find out.
    let ls = run_as(&bob, &format!("timeout 30 ls {m}"));
    assert!(text(&ls).contains("analytics-raw"), "{}", text(&ls));
    link(&bob, "login-required", &targets[2].0);
    control(&stack, "revoke", &[("user", "oscar")]).await;
    let before = rejections(&stack).await;
    control(&stack, "expire-sessions", &[]).await;
    let refused = run_as(&bob, &format!("timeout 30 ls {m}/analytics-raw"));
    assert!(rejections(&stack).await > before, "test setup: S3 refused the expired credentials: {}", text(&refused));
    eprintln!("after the revocation bob got: {}", text(&refused));

    drop(mnt);
    let wrong: Vec<String> = targets.iter().filter_map(|(path, content)| root_file_damage(path, content)).collect();
    expect_safe(&wrong);
    stack.shutdown().await;
}

/// Opens the FIFO for writing (never blocking), unlinks it and closes: whoever waits to read it
/// (the mount) gets garbage and EOF, and nobody can open it again.
fn unblock_fifo(fifo: &Path) {
    if !std::fs::symlink_metadata(fifo).is_ok_and(|m| m.file_type().is_fifo()) {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    let writer = loop {
        match std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(fifo) {
            Ok(f) => break Some(f),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let _ = std::fs::remove_file(fifo);
    if let Some(mut w) = writer {
        let _ = w.write_all(b"not json");
    }
}

/// Unblocks the FIFO when dropped, even after a failed assertion.
struct FifoGuard(PathBuf);

impl Drop for FifoGuard {
    fn drop(&mut self) {
        unblock_fifo(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fifo_as_token_file_does_not_hang_the_mount_for_other_users() {
    let dir = TestDir::new("mua-fifo");
    let stack = devstack(&dir.0, Duration::from_secs(3600)).await;
    let homes = dir.0.join("homes");
    let alice = UnixUser::create(&format!("mua-a{}", tag()), &homes);
    let carol = UnixUser::create(&format!("mua-c{}", tag()), &homes);
    let profile = alice.sign_in(&stack, "alice").await;
    let mnt = MultiMount::new(&dir.0, &profile);
    let m = mnt.m();
    let served = run_as(&alice, &format!("timeout 30 ls {m}"));
    assert!(text(&served).contains("analytics-raw"), "{}", text(&served));

    let store = carol.home.join(".local/state/ssofs");
    let fifo = store.join(format!("{}.tokens.json", profile.name));
    let plant = run_as(&carol, &format!("mkdir -p -m 700 {} && mkfifo -m 600 {}", store.display(), fifo.display()));
    assert!(plant.status.success(), "{}", text(&plant));
    let _unblock = FifoGuard(fifo.clone());

    let carol_started = Instant::now();
    let mut carols = Some(spawn_as(&carol, &format!("timeout 60 ls {m}")));
    blocking(|| std::thread::sleep(Duration::from_millis(500)));
    let alice_started = Instant::now();
    let mut alices = Some(spawn_as(&alice, &format!("timeout 20 ls {m}")));
    let mut wrong = Vec::new();
    match finish_by(&mut alices, alice_started + Duration::from_secs(20)) {
        Some((out, ended)) => {
            let took = ended - alice_started;
            if !out.status.success() || !text(&out).contains("analytics-raw") || took > Duration::from_secs(2) {
                wrong.push(format!("alice's ls took {took:?} and gave {:?}: {}", out.status, text(&out)));
            }
        }
        None => wrong.push("alice's ls still hangs after 20 s".into()),
    }
    match finish_by(&mut carols, carol_started + Duration::from_secs(10)) {
        Some((out, _)) if out.status.code() == Some(124) => wrong.push("carol's ls timed out".into()),
        Some((out, _)) if text(&out).contains("analytics") => {
            wrong.push(format!("carol (no login) sees alice's buckets: {}", text(&out)))
        }
        Some(_) => {}
        None => wrong.push("carol's ls still hangs after 10 s".into()),
    }

    blocking(|| {
        unblock_fifo(&fifo);
        let deadline = Instant::now() + Duration::from_secs(10);
        finish_by(&mut alices, deadline);
        finish_by(&mut carols, deadline);
    });
    kill_group(&alices);
    kill_group(&carols);
    blocking(|| drop(mnt));
    expect_safe(&wrong);
    stack.shutdown().await;
}

/// `ssofs mount --foreground` as mount(8) at boot runs it: root, no HOME, PATH and TMPDIR only.
/// Unmounted (or killed) when dropped.
struct BootMount {
    mnt: PathBuf,
    child: Child,
}

impl Drop for BootMount {
    fn drop(&mut self) {
        let _ = Command::new("fusermount3").arg("-u").arg(&self.mnt).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if is_mounted(&self.mnt) {
            let _ = Command::new("fusermount3").arg("-uz").arg(&self.mnt).status();
        }
    }
}

/// Root's staging directory when it has no cache home (after the fix); only what this test's user
/// got there is removed afterwards.
struct VarCacheEntries(Vec<PathBuf>);

impl VarCacheEntries {
    fn new(uid: u32) -> Self {
        let ours = ["staging", "blocks"].map(|d| PathBuf::from(format!("/var/cache/ssofs/{d}/uid-{uid}")));
        VarCacheEntries(ours.into_iter().filter(|p| std::fs::symlink_metadata(p).is_err()).collect())
    }
}

impl Drop for VarCacheEntries {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// Alice (who may write analytics-raw) prepares the staging directory of her uid, world-writable
/// and her own, before root mounts; while a file she writes is open she swaps its staged data for
/// a symlink to a root-only secret, then closes it and reads it back.
async fn staged_file_swap(tag_: &str, shared_cache_dir: bool) {
    let dir = TestDir::new(tag_);
    let stack = devstack(&dir.0, Duration::from_secs(3600)).await;
    let alice = UnixUser::create(&format!("mua-a{}", tag()), &dir.0.join("homes"));
    alice.sign_in(&stack, "alice").await;
    let _var_cache = VarCacheEntries::new(alice.uid);
    let (secret_path, secret) = root_file(&dir.0.join("root-only"), "secret");

    let tmpdir = dir.0.join("tmp");
    let shared = dir.0.join("shared-cache");
    for d in [&tmpdir, &shared] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o1777)).unwrap();
    }
    // What alice creates: $TMPDIR/ssofs/staging/uid-N, or staging/uid-N in the shared cache_dir.
    let (hers, base) = if shared_cache_dir {
        (shared.join("staging"), shared.clone())
    } else {
        (tmpdir.join("ssofs"), tmpdir.join("ssofs"))
    };
    let uid_dir = base.join(format!("staging/uid-{}", alice.uid));
    let prep = run_as(&alice, &format!("umask 0 && mkdir -p {}", uid_dir.display()));
    assert!(prep.status.success(), "{}", text(&prep));

    let mnt = dir.0.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mut options =
        format!("multiuser,config={},state_dir={}", stack.profile_file.display(), dir.0.join("root-state").display());
    if shared_cache_dir {
        options.push_str(&format!(",cache_dir={}", shared.display()));
    }
    let log_path = dir.0.join("mount.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ssofs"))
        .args(["mount", "--foreground"])
        .arg(&mnt)
        .args(["-o", &options])
        .env_clear()
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .env("TMPDIR", &tmpdir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut mount = BootMount { mnt: mnt.clone(), child };
    let started = blocking(|| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if is_mounted(&mnt) {
                return true;
            }
            if mount.child.try_wait().unwrap().is_some() {
                return false;
            }
            assert!(Instant::now() < deadline, "mount never became ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let mut wrong = Vec::new();
    let key = format!("swap-{}.txt", tag());
    let file = mnt.join("analytics-raw").join(&key);
    if started {
        // Every close of a copy of fd 3 (a forked command's too) uploads what was written: the data
        // is written, by the shell itself, only after the swap.
        let attack = run_as(
            &alice,
            &format!(
                "exec 3>{file}; find {u} -mindepth 1 -uid 0 -printf 'ROOT-OWNED %p\\n'; \
                 for f in {u}/*; do case $f in *.meta.json) ;; *) [ -f \"$f\" ] && ln -sf {s} \"$f\" && echo \"swapped $f\";; esac; done; \
                 echo mine >&3; exec 3>&-",
                file = file.display(),
                u = uid_dir.display(),
                s = secret_path.display()
            ),
        );
        eprintln!("attack: {}", text(&attack));
        if text(&attack).contains("ROOT-OWNED") {
            wrong.push(format!("root created files in alice's directory: {}", text(&attack)));
        }
        let read = run_as(&alice, &format!("timeout 30 cat {}", file.display()));
        if text(&read).contains(secret.trim()) {
            wrong.push(format!("alice read root's secret back through the mount: {}", text(&read)));
        }
        if let Ok(obj) = root_s3(&stack).get_object().bucket("analytics-raw").key(&key).send().await {
            let body = obj.body.collect().await.unwrap().into_bytes();
            if String::from_utf8_lossy(&body).contains(secret.trim()) {
                wrong.push(format!("root's secret was uploaded to analytics-raw/{key}"));
            }
        }
    } else {
        // Refusing to mount at all on a directory alice controls is safe, if that is what it said.
        let said = log_text();
        eprintln!("the mount did not start: {said}");
        assert!(said.contains(&base.display().to_string()), "the mount failed for another reason: {said}");
    }
    blocking(|| drop(mount));
    if let Some(damage) = root_file_damage(&secret_path, &secret) {
        wrong.push(damage);
    }
    for (path, meta) in walk(&hers) {
        if meta.uid() == 0 {
            wrong.push(format!("root left {} in alice's directory", path.display()));
        }
    }
    eprintln!("mount log:\n{}", log_text());
    expect_safe(&wrong);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_cannot_swap_a_staged_file_for_a_root_file_when_root_mounts_without_a_home() {
    staged_file_swap("mua-tmp", false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_cannot_swap_a_staged_file_for_a_root_file_in_a_shared_cache_dir() {
    staged_file_swap("mua-shared", true).await;
}
