//! What the end-to-end tests share: signing a devstack user in, mounting in this process,
//! checking mounts, and a root S3 client to look behind the mount's back; `system` for the tests
//! of the admin's ways of mounting (Unix users, fstab, the mount helper), `identity` for the tests
//! that run `ssofs login` and friends against a devstack.

pub mod identity;
pub mod prometheus;
pub mod system;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ssofs::config::{self, Profile, Sources};
use ssofs::identity::{TokenStore, login};
use ssofs::mount::{self, MountOptions, MountRequest};

/// A mount served by a thread of this test process; a failed test still unmounts it.
pub struct Mounted {
    pub mountpoint: PathBuf,
    thread: Option<std::thread::JoinHandle<Result<(), mount::MountError>>>,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = std::process::Command::new("fusermount3").arg("-uz").arg(&self.mountpoint).status();
        }
    }
}

impl Mounted {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.mountpoint.join(rel)
    }

    /// Unmounts as a user would and checks the server stopped cleanly.
    pub fn unmount(mut self) {
        mount::unmount(&self.mountpoint).expect("unmount");
        let result = self.thread.take().expect("mounted").join().expect("mount thread");
        assert!(result.is_ok(), "{result:?}");
    }
}

/// Runs the ssofs binary as a user at a terminal would, with the devstack's profile, tokens under
/// `dir/state`, no other config, no browser.
pub fn ssofs_cli(stack: &ssofs_devstack::Running, dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ssofs"))
        .args(args)
        .env("SSOFS_CONFIG", &stack.profile_file)
        .env("SSOFS_STATE_DIR", dir.join("state"))
        .env("XDG_CONFIG_HOME", dir.join("no-config"))
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env_remove("BROWSER")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap()
}

/// The pid of the background `ssofs mount` serving `mountpoint`.
pub fn server_pid(mountpoint: &Path) -> Option<u32> {
    let want = mountpoint.to_string_lossy().to_string();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<String> = cmd.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).to_string()).collect();
        (args.iter().any(|a| a == "mount") && args.contains(&want)).then_some(pid)
    })
}

/// A path for a test's files in the temporary directory, unique to this process and moment (not
/// created).
pub fn unique_dir(tag: &str) -> PathBuf {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    std::env::temp_dir().join(format!("ssofs-{tag}-{}-{n}", std::process::id()))
}

/// A TCP port on 127.0.0.1 free a moment ago (for `-o metrics=`).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// [`unique_dir`], created.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = unique_dir(tag);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn profile_of(stack: &ssofs_devstack::Running) -> Profile {
    config::load_profile(&Sources { extra: Some(stack.profile_file.clone()), ..Default::default() }, None).unwrap()
}

/// Signs `user` in (device code, approved by the devstack) and stores the tokens in `token_dir`.
pub async fn sign_in(stack: &ssofs_devstack::Running, user: &str, token_dir: &Path) -> Profile {
    control_client(stack)
        .post(format!("{}/auto-approve", stack.control_url))
        .form(&[("user", user)])
        .send()
        .await
        .unwrap();
    let profile = profile_of(stack);
    let tokens = login::device_code(&profile, &mut Vec::new()).await.unwrap();
    TokenStore::open(token_dir).unwrap().save(&profile.name, &tokens).unwrap();
    profile
}

/// Signs `user` in and mounts their buckets under `dir/mnt`, in the foreground of a thread.
pub async fn mount_as(stack: &ssofs_devstack::Running, user: &str, dir: &Path, options: MountOptions) -> Mounted {
    let token_dir = dir.join("state");
    let profile = sign_in(stack, user, &token_dir).await;
    let mountpoint = dir.join("mnt");
    std::fs::create_dir_all(&mountpoint).unwrap();
    let options = MountOptions { cache_dir: Some(dir.join("cache")), ..options };
    let req = MountRequest { profile, mountpoint: mountpoint.clone(), options, foreground: true, state_dir: token_dir };
    let thread = std::thread::spawn(move || mount::run(req));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !is_mounted(&mountpoint) {
        assert!(!thread.is_finished(), "mount ended: {:?}", thread.join());
        assert!(Instant::now() < deadline, "mount never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    Mounted { mountpoint, thread: Some(thread) }
}

/// An HTTP client for the devstack's control API (trusting its test CA in TLS mode).
pub fn control_client(stack: &ssofs_devstack::Running) -> reqwest::Client {
    let mut b = reqwest::Client::builder();
    if let Some(ca) = &stack.ca_file {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap());
    }
    b.build().unwrap()
}

/// The /proc/self/mountinfo line of the topmost mount at `p` (later lines are mounted on top of
/// earlier ones; its options say who may use it), `p` as the kernel names it: absolute, no
/// symlinks. Read from mountinfo only: `p` itself is never touched (an automount trigger may sit
/// there). The one mountinfo parser of the tests; the others below resolve the path first or only
/// ask whether there is a line.
pub fn mountinfo_line(p: &Path) -> Option<String> {
    let want = p.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .rfind(|l| l.split(' ').nth(4).is_some_and(|m| unescape_mountinfo(m) == want))
        .map(str::to_string)
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

/// Whether something is mounted at `p` (as the kernel names it), never touching `p`.
pub fn mounted(p: &Path) -> bool {
    mountinfo_line(p).is_some()
}

/// [`mountinfo_line`] of `p` with its symlinks resolved first (`p` must exist).
pub fn mount_line(p: &Path) -> Option<String> {
    mountinfo_line(&std::fs::canonicalize(p).unwrap())
}

/// Whether something is mounted at `p`, its symlinks resolved first (`p` must exist).
pub fn is_mounted(p: &Path) -> bool {
    mount_line(p).is_some()
}

/// An S3 client with the devstack's root keys.
pub fn root_s3(stack: &ssofs_devstack::Running) -> aws_sdk_s3::Client {
    let creds = aws_credential_types::Credentials::new(
        ssofs_devstack::scenario::ROOT_ACCESS_KEY,
        ssofs_devstack::scenario::ROOT_SECRET_KEY,
        None,
        None,
        "test",
    );
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(&stack.s3_endpoint)
            .force_path_style(true)
            .credentials_provider(creds)
            .build(),
    )
}

pub async fn s3_get(stack: &ssofs_devstack::Running, bucket: &str, key: &str) -> Vec<u8> {
    let out = root_s3(stack).get_object().bucket(bucket).key(key).send().await.unwrap();
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

pub async fn s3_put(stack: &ssofs_devstack::Running, bucket: &str, key: &str, body: Vec<u8>) {
    root_s3(stack)
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from(body))
        .send()
        .await
        .unwrap();
}

pub fn sha(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// A command's stdout and stderr, for assertion messages.
pub fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Peak resident memory (VmHWM) of process `pid`, in MiB.
pub fn vm_hwm_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    kib / 1024
}

/// STS exchanges the devstack has served so far.
pub async fn sts_calls(stack: &ssofs_devstack::Running) -> usize {
    let log: Vec<serde_json::Value> =
        reqwest::get(format!("{}/requests", stack.control_url)).await.unwrap().json().await.unwrap();
    log.iter().filter(|r| r["op"] == "AssumeRoleWithWebIdentity").count()
}

/// A multi-user mount by root at `dir/mnt` (`dir` opened to everyone), with `cache_mib` of block
/// cache and root's tokens under `dir/root-state`; its mountpoint and the pid serving it.
pub fn mount_multiuser(stack: &ssofs_devstack::Running, dir: &Path, cache_mib: u64) -> (PathBuf, u32) {
    use std::os::unix::fs::PermissionsExt;
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let m = mnt.to_str().unwrap().to_string();
    let options = format!("multiuser,cache_size={cache_mib}M,state_dir={}", dir.join("root-state").display());
    let out = tokio::task::block_in_place(|| ssofs_cli(stack, dir, &["mount", &m, "-o", &options]));
    assert!(out.status.success(), "{}", text(&out));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !is_mounted(&mnt) {
        assert!(std::time::Instant::now() < deadline, "not mounted");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pid = server_pid(&mnt).expect("the mount process");
    (mnt, pid)
}

/// A multi-user mount served by this process (root) at `dir/mnt` (`dir` opened to everyone), with
/// blocks under `dir/cache` and root's state under `state_dir`; returns once it is mounted, with
/// the thread serving it (its result is the mount's).
pub fn serve_multiuser_here(
    profile: Profile,
    dir: &Path,
    state_dir: PathBuf,
) -> (PathBuf, std::thread::JoinHandle<Result<(), ssofs::mount::MountError>>) {
    serve_multiuser_with(profile, dir, state_dir, std::sync::Arc::new(ssofs::stack::S3Stack))
}

/// [`serve_multiuser_here`] with each user's clients built by `clients`.
pub fn serve_multiuser_with(
    profile: Profile,
    dir: &Path,
    state_dir: PathBuf,
    clients: std::sync::Arc<dyn ssofs::stack::ClientBuilder>,
) -> (PathBuf, std::thread::JoinHandle<Result<(), ssofs::mount::MountError>>) {
    use std::os::unix::fs::PermissionsExt;
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let options =
        ssofs::mount::MountOptions { multiuser: true, cache_dir: Some(dir.join("cache")), ..Default::default() };
    let req = ssofs::mount::MountRequest { profile, mountpoint: mnt.clone(), options, foreground: true, state_dir };
    let server = std::thread::spawn(move || ssofs::mount::run_with(req, clients));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !is_mounted(&mnt) {
        assert!(!server.is_finished(), "mount ended: {:?}", server.join());
        assert!(std::time::Instant::now() < deadline, "not mounted within 30 s");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (mnt, server)
}
