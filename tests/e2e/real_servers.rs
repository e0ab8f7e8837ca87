//! One conformance battery, run through a real ssofs FUSE mount against two servers: the devstack
//! (the project's MinIO stand-in, in this process) and a real Ceph RADOS Gateway 16 with STS
//! (`scripts/ceph-rgw`), whose OpenID provider is the devstack's identity provider.
//!
//! The same checks run against both: sign-in, `ssofs doctor --write-probe`, listings, reads, large
//! (multipart) writes, ranged reads, append, truncate, mkdir/rmdir, renames, rm, `cp -r` + `diff -r`,
//! a bucket the identity may not use, and credentials at the server's minimum lifetime (900 s). Every
//! result is checked with an independent S3 client holding the server's own admin keys, never with
//! ssofs. Each check prints a table line with its duration:
//!
//! `real-servers | <server> | <check> | pass | <seconds>`

use std::collections::BTreeSet;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime};

use crate::support::system::require;
use crate::support::{self, text};
use serde_json::Value;
use ssofs::config::{self, Sources};
use ssofs::mount::{self, MountOptions, MountRequest};

const USER: &str = "alice";
const MIB: usize = 1 << 20;
/// Every test object lives under this prefix of the writable bucket.
const AREA: &str = "conformance";

/// What the battery needs to know about one server.
struct Server {
    /// Names the server in every table line and failure message.
    name: &'static str,
    /// What `ssofs doctor` must call the server (its `server` check).
    doctor_calls_it: &'static str,
    /// The ssofs config file with this server's profile (the only profile in it).
    profile_file: PathBuf,
    /// The devstack's control API: it approves the device-code sign-in.
    control_url: String,
    /// Work directory: tokens, cache, mountpoint, local trees.
    dir: PathBuf,
    /// The bucket the user may write.
    writable: String,
    /// A bucket the user may not use (named in the profile, so it is shown).
    denied: String,
    /// The root of the mount: what ListBuckets returns plus the profile's `buckets`.
    root: Vec<String>,
    /// The profile's `duration_seconds`: the server's minimum.
    duration_seconds: u64,
    /// An S3 client with the server's own admin keys, to check results without ssofs.
    s3: aws_sdk_s3::Client,
}

/// Writes `dir/ssofs.toml` with one profile.
fn write_profile(
    dir: &Path,
    name: &str,
    issuer: &str,
    endpoint: &str,
    role_arn: Option<&str>,
    buckets: &[String],
    duration_seconds: u64,
) -> PathBuf {
    let mut toml = format!(
        "default_profile = \"{name}\"\n\n[profiles.{name}]\nissuer = \"{issuer}\"\nclient_id = \"{client}\"\n\
         endpoint = \"{endpoint}\"\ntoken = \"id_token\"\nduration_seconds = {duration_seconds}\nbuckets = {buckets:?}\n",
        client = ssofs_devstack::scenario::CLIENT_ID,
    );
    if let Some(arn) = role_arn {
        toml.push_str(&format!("role_arn = \"{arn}\"\n"));
    }
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("ssofs.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// An S3 client with static keys, path-style, no checksum trailers (RGW 16 refuses them).
fn static_s3(endpoint: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    let creds = aws_credential_types::Credentials::new(access_key, secret_key, None, None, "conformance");
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .force_path_style(true)
            .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
            .credentials_provider(creds)
            .build(),
    )
}

async fn start_devstack(dir: &Path) -> ssofs_devstack::Running {
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.device_code_interval = Duration::from_secs(1);
    ssofs_devstack::start(cfg).await.unwrap()
}

// ---------------------------------------------------------------------------------------------
// The table.

/// One check: prints its table line when it passes, and a FAIL line when the test panics in it.
struct Step<'a> {
    server: &'a str,
    check: &'static str,
    started: Instant,
    done: bool,
}

impl<'a> Step<'a> {
    fn start(server: &'a Server, check: &'static str) -> Step<'a> {
        Step { server: server.name, check, started: Instant::now(), done: false }
    }

    fn pass(mut self, rows: &mut Vec<(String, Duration)>) {
        self.done = true;
        let took = self.started.elapsed();
        print_row(self.server, self.check, took);
        rows.push((self.check.to_string(), took));
    }
}

fn print_row(server: &str, check: &str, took: Duration) {
    eprintln!("real-servers | {server:<16} | {check:<44} | pass | {:>6.2} s", took.as_secs_f64());
}

impl Drop for Step<'_> {
    fn drop(&mut self) {
        if !self.done {
            eprintln!(
                "real-servers | {:<16} | {:<44} | FAIL | {:>6.2} s",
                self.server,
                self.check,
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers: blocking work, the CLI, the mount, the independent client.

/// Runs blocking work (file system calls into the mount, child processes) without starving the
/// runtime the devstack serves on.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// The ssofs binary with this server's profile and tokens, as a user at a terminal runs it.
fn ssofs_cli(server: &Server, args: &[&str]) -> Output {
    blocking(|| {
        Command::new(env!("CARGO_BIN_EXE_ssofs"))
            .args(args)
            .env("SSOFS_CONFIG", &server.profile_file)
            .env("SSOFS_STATE_DIR", server.dir.join("state"))
            .env("XDG_CONFIG_HOME", server.dir.join("no-config"))
            .env("XDG_CACHE_HOME", server.dir.join("xdg-cache"))
            .env_remove("BROWSER")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("SSOFS_LOG")
            .output()
            .unwrap()
    })
}

/// A mount served by a thread of this process; dropped (a failed test), it is unmounted lazily.
struct Mount {
    mountpoint: PathBuf,
    thread: Option<std::thread::JoinHandle<Result<(), mount::MountError>>>,
}

impl Mount {
    /// Mounts the server's profile at `dir/<name>`, with a cache of its own.
    fn start(server: &Server, name: &str) -> Mount {
        let profile =
            config::load_profile(&Sources { extra: Some(server.profile_file.clone()), ..Default::default() }, None)
                .unwrap_or_else(|e| panic!("{}: profile: {e}", server.name));
        let mountpoint = server.dir.join(name);
        std::fs::create_dir_all(&mountpoint).unwrap();
        let options = MountOptions { cache_dir: Some(server.dir.join(format!("cache-{name}"))), ..Default::default() };
        let req = MountRequest {
            profile,
            mountpoint: mountpoint.clone(),
            options,
            foreground: true,
            state_dir: server.dir.join("state"),
        };
        let thread = std::thread::spawn(move || mount::run(req));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !support::is_mounted(&mountpoint) {
            assert!(!thread.is_finished(), "{}: mount ended: {:?}", server.name, thread.join());
            assert!(Instant::now() < deadline, "{}: the mount never became ready", server.name);
            std::thread::sleep(Duration::from_millis(50));
        }
        Mount { mountpoint, thread: Some(thread) }
    }

    fn unmount(mut self) -> Result<(), String> {
        mount::unmount(&self.mountpoint).map_err(|e| e.to_string())?;
        let served =
            self.thread.take().expect("mounted").join().map_err(|_| "the mount thread panicked".to_string())?;
        served.map_err(|e| e.to_string())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = Command::new("fusermount3").arg("-uz").arg(&self.mountpoint).status();
        }
    }
}

async fn get(server: &Server, key: &str) -> Vec<u8> {
    let out = server
        .s3
        .get_object()
        .bucket(&server.writable)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}: independent GET {}/{key}: {e:?}", server.name, server.writable));
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

async fn get_range(server: &Server, bucket: &str, key: &str, offset: u64, len: u64) -> Vec<u8> {
    let range = format!("bytes={}-{}", offset, offset + len - 1);
    let out = server
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .range(&range)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}: independent ranged GET {bucket}/{key} {range}: {e:?}", server.name));
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

/// Whether the independent client finds `key` in the writable bucket (HEAD).
async fn exists(server: &Server, key: &str) -> bool {
    match server.s3.head_object().bucket(&server.writable).key(key).send().await {
        Ok(_) => true,
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => false,
        Err(e) => panic!("{}: independent HEAD {}/{key}: {e:?}", server.name, server.writable),
    }
}

/// Every key below `prefix` in `bucket`, by the independent client.
async fn keys_below(server: &Server, bucket: &str, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = server
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: independent ListObjectsV2 {bucket}/{prefix}: {e:?}", server.name));
        keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    keys
}

/// The md5 of `data`, by `md5sum` (this test's own dependencies are built without optimisation).
fn md5_hex(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let out = std::thread::scope(|s| {
        s.spawn(move || stdin.write_all(data).unwrap());
        child.wait_with_output().unwrap()
    });
    assert!(out.status.success(), "md5sum: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string()
}

/// `md5sum FILE`: reads the whole file through the mount as an ordinary program does.
fn md5sum(path: &Path) -> String {
    let out = Command::new("md5sum").arg(path).output().unwrap();
    assert!(out.status.success(), "md5sum {}: {}", path.display(), text(&out));
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string()
}

/// xorshift64*: the same pseudo-random bytes and offsets on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(len);
        v
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"].as_array().and_then(|c| c.iter().find(|c| c["check"] == name)).unwrap_or(&Value::Null)
}

/// A small tree of directories and files of assorted sizes (0 B to 300 KiB) for `cp -r`.
fn make_tree(root: &Path) -> usize {
    let mut rng = Rng(0x7ee5_eed5);
    let mut files = 0;
    for top in ["alpha", "beta", "gamma"] {
        for sub in ["one", "two", "three"] {
            let dir = root.join(top).join(sub);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..4 {
                let len = match (files + i) % 5 {
                    0 => 0,
                    1 => 1,
                    2 => 4096,
                    _ => rng.below(300 * 1024) as usize,
                };
                std::fs::write(dir.join(format!("file-{i}.bin")), rng.bytes(len)).unwrap();
            }
            files += 4;
        }
        std::fs::write(root.join(top).join("notes.txt"), format!("top-level notes of {top}\n")).unwrap();
        files += 1;
    }
    std::fs::write(root.join("README"), b"a tree for cp -r\n").unwrap();
    files + 1
}

// ---------------------------------------------------------------------------------------------
// The battery.

async fn battery(server: &Server) -> Vec<(String, Duration)> {
    let name = server.name;
    let mut rows = Vec::new();
    let w = server.writable.as_str();
    let at = |rel: &str| format!("{AREA}/{rel}");

    // Sign-in: the device code, approved by the devstack's identity provider.
    let step = Step::start(server, "sign-in (ssofs login --device-code)");
    let resp = reqwest::Client::new()
        .post(format!("{}/auto-approve", server.control_url))
        .form(&[("user", USER)])
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{name}: sign-in: auto-approve: {}", resp.status());
    let out = ssofs_cli(server, &["login", "--device-code", "--no-qr"]);
    assert!(out.status.success(), "{name}: sign-in: ssofs login failed: {}", text(&out));
    assert!(text(&out).contains("Signed in as alice@"), "{name}: sign-in: {}", text(&out));
    step.pass(&mut rows);

    // doctor --write-probe: exit 0, names the server, probes writing where the user may write.
    let step = Step::start(server, "ssofs doctor --write-probe");
    let out = ssofs_cli(server, &["doctor", "--write-probe", "--json"]);
    let doctor_done = SystemTime::now();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{name}: doctor: --json is not JSON ({e}): {}", text(&out)));
    assert!(out.status.success() && report["ok"] == true, "{name}: doctor fails: {report:#}\n{}", text(&out));
    let server_detail = check(&report, "server")["detail"].as_str().unwrap_or_default().to_string();
    assert!(
        server_detail.contains(server.doctor_calls_it),
        "{name}: doctor: the server check should name {:?}: {server_detail:?}",
        server.doctor_calls_it
    );
    let probe = check(&report, &format!("bucket:{w}"))["detail"].as_str().unwrap_or_default().to_string();
    assert!(probe.contains("write ✓"), "{name}: doctor: no successful write probe of {w}: {report:#}");
    let refused =
        check(&report, &format!("bucket:{}", server.denied))["detail"].as_str().unwrap_or_default().to_string();
    assert!(refused.contains("list ✗"), "{name}: doctor: {} should not be listable: {report:#}", server.denied);
    step.pass(&mut rows);

    // The mount, with the profile's duration_seconds (the server's minimum).
    let step = Step::start(server, "mount");
    let m = blocking(|| Mount::start(server, "mnt"));
    let mnt = |rel: &str| m.mountpoint.join(rel);
    step.pass(&mut rows);

    let step = Step::start(server, "ls of the root shows the buckets");
    let root = blocking(|| names(&m.mountpoint));
    assert_eq!(root, server.root, "{name}: ls of the root");
    step.pass(&mut rows);

    let step = Step::start(server, "nested listing (events/2026/11)");
    let (days, files) =
        blocking(|| (names(&mnt(&format!("{w}/events/2026/11"))), names(&mnt(&format!("{w}/events/2026/11/01")))));
    let listed = server
        .s3
        .list_objects_v2()
        .bucket(w)
        .prefix("events/2026/11/")
        .delimiter("/")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{name}: nested listing: independent ListObjectsV2: {e:?}"));
    let independent: Vec<String> = listed
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .map(|p| p.trim_start_matches("events/2026/11/").trim_end_matches('/').to_string())
        .collect();
    assert_eq!(days, independent, "{name}: nested listing: mount vs independent ListObjectsV2");
    assert_eq!(days, ["01", "02"], "{name}: nested listing");
    assert_eq!(files, ["part-0000.csv", "part-0001.csv"], "{name}: nested listing two levels down");
    step.pass(&mut rows);

    let step = Step::start(server, "small read");
    let through_mount = blocking(|| std::fs::read(mnt(&format!("{w}/README.txt")))).unwrap();
    let direct = get(server, "README.txt").await;
    assert!(!direct.is_empty(), "{name}: small read: the seeded README.txt is empty");
    assert_eq!(through_mount, direct, "{name}: small read: README.txt through the mount vs independent GET");
    step.pass(&mut rows);

    // 64 MiB: written through the mount, checked by md5 of an independent GET and of a read back.
    let step = Step::start(server, "64 MiB write + read back (md5)");
    let big = Rng(0x64).bytes(64 * MIB);
    let big_md5 = blocking(|| md5_hex(&big));
    blocking(|| std::fs::create_dir(mnt(&format!("{w}/{AREA}")))).unwrap();
    let big_path = mnt(&format!("{w}/{}", at("big-64m.bin")));
    blocking(|| std::fs::write(&big_path, &big)).unwrap_or_else(|e| panic!("{name}: 64 MiB write: {e}"));
    let direct = get(server, &at("big-64m.bin")).await;
    assert_eq!(direct.len(), big.len(), "{name}: 64 MiB write: size in S3");
    assert_eq!(blocking(|| md5_hex(&direct)), big_md5, "{name}: 64 MiB write: md5 of the independent GET");
    drop(direct);
    assert_eq!(blocking(|| md5sum(&big_path)), big_md5, "{name}: 64 MiB write: md5 read back through the mount");
    step.pass(&mut rows);

    // On a second mount, whose caches have none of the file: every pread is fetched from the server.
    let step = Step::start(server, "20 ranged reads (pread vs ranged GET)");
    let fresh = blocking(|| Mount::start(server, "mnt-fresh"));
    let fresh_path = fresh.mountpoint.join(format!("{w}/{}", at("big-64m.bin")));
    let mut rng = Rng(0x5eed);
    let ranges: Vec<(u64, u64)> = (0..20)
        .map(|_| {
            let offset = rng.below(big.len() as u64);
            let len = (1 + rng.below(3 * MIB as u64)).min(big.len() as u64 - offset);
            (offset, len)
        })
        .collect();
    let preads: Vec<Vec<u8>> = blocking(|| {
        let f = std::fs::File::open(&fresh_path).unwrap();
        ranges
            .iter()
            .map(|&(offset, len)| {
                let mut buf = vec![0u8; len as usize];
                f.read_exact_at(&mut buf, offset).unwrap_or_else(|e| panic!("{name}: pread {len} at {offset}: {e}"));
                buf
            })
            .collect()
    });
    for (&(offset, len), pread) in ranges.iter().zip(&preads) {
        let ranged = get_range(server, w, &at("big-64m.bin"), offset, len).await;
        let want = &big[offset as usize..(offset + len) as usize];
        assert!(ranged == want, "{name}: ranged read: independent GET of {len} bytes at {offset} differs");
        assert!(pread == want, "{name}: ranged read: pread of {len} bytes at {offset} through the mount differs");
    }
    drop(big);
    blocking(|| fresh.unmount()).unwrap_or_else(|e| panic!("{name}: ranged reads: unmount of the second mount: {e}"));
    step.pass(&mut rows);

    let step = Step::start(server, "100 MiB write (multipart), md5");
    let huge = Rng(0x100).bytes(100 * MIB);
    let huge_md5 = blocking(|| md5_hex(&huge));
    let huge_path = mnt(&format!("{w}/{}", at("big-100m.bin")));
    blocking(|| std::fs::write(&huge_path, &huge)).unwrap_or_else(|e| panic!("{name}: 100 MiB write: {e}"));
    drop(huge);
    let head = server.s3.head_object().bucket(w).key(at("big-100m.bin")).send().await.unwrap();
    let etag = head.e_tag().unwrap_or_default().trim_matches('"').to_string();
    assert!(etag.contains('-'), "{name}: 100 MiB write: not a multipart upload (ETag {etag})");
    let direct = get(server, &at("big-100m.bin")).await;
    assert_eq!(direct.len(), 100 * MIB, "{name}: 100 MiB write: size in S3");
    assert_eq!(blocking(|| md5_hex(&direct)), huge_md5, "{name}: 100 MiB write: md5 of the independent GET");
    drop(direct);
    step.pass(&mut rows);

    let step = Step::start(server, "append (O_APPEND)");
    let notes = mnt(&format!("{w}/{}", at("notes.txt")));
    blocking(|| {
        use std::io::Write;
        std::fs::write(&notes, b"hello").unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(&notes).unwrap();
        f.write_all(b" world").unwrap();
        drop(f);
        assert_eq!(std::fs::read(&notes).unwrap(), b"hello world", "{name}: append: through the mount");
    });
    assert_eq!(get(server, &at("notes.txt")).await, b"hello world", "{name}: append: independent GET");
    step.pass(&mut rows);

    let step = Step::start(server, "truncate (shrink, grow)");
    blocking(|| std::fs::OpenOptions::new().write(true).open(&notes).unwrap().set_len(5)).unwrap();
    assert_eq!(get(server, &at("notes.txt")).await, b"hello", "{name}: truncate: shrunk to 5, independent GET");
    blocking(|| std::fs::OpenOptions::new().write(true).open(&notes).unwrap().set_len(12)).unwrap();
    let grown = b"hello\0\0\0\0\0\0\0".to_vec();
    assert_eq!(get(server, &at("notes.txt")).await, grown, "{name}: truncate: grown to 12, independent GET");
    assert_eq!(blocking(|| std::fs::read(&notes)).unwrap(), grown, "{name}: truncate: grown, through the mount");
    step.pass(&mut rows);

    let step = Step::start(server, "mkdir, rmdir (empty ok, non-empty ENOTEMPTY)");
    let (empty, full) = (mnt(&format!("{w}/{}", at("empty-dir"))), mnt(&format!("{w}/{}", at("full-dir"))));
    blocking(|| {
        std::fs::create_dir(&empty).unwrap();
        std::fs::create_dir(&full).unwrap();
        std::fs::write(full.join("inside.txt"), b"keeps the directory").unwrap();
    });
    assert!(exists(server, &at("empty-dir/")).await, "{name}: mkdir: no directory marker in S3");
    blocking(|| std::fs::remove_dir(&empty)).unwrap_or_else(|e| panic!("{name}: rmdir of an empty directory: {e}"));
    assert!(!blocking(|| empty.exists()), "{name}: rmdir: still there through the mount");
    assert!(keys_below(server, w, &at("empty-dir/")).await.is_empty(), "{name}: rmdir: objects left in S3");
    let err = blocking(|| std::fs::remove_dir(&full)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTEMPTY), "{name}: rmdir of a non-empty directory: {err}");
    assert!(exists(server, &at("full-dir/inside.txt")).await, "{name}: rmdir: the refused rmdir removed a file");
    step.pass(&mut rows);

    let step = Step::start(server, "mv of a file");
    let (from, to) = (mnt(&format!("{w}/{}", at("notes.txt"))), mnt(&format!("{w}/{}", at("renamed.txt"))));
    blocking(|| std::fs::rename(&from, &to)).unwrap_or_else(|e| panic!("{name}: mv of a file: {e}"));
    assert!(!exists(server, &at("notes.txt")).await, "{name}: mv of a file: the old key is still in S3");
    assert_eq!(get(server, &at("renamed.txt")).await, grown, "{name}: mv of a file: the new key in S3");
    assert!(!blocking(|| from.exists()), "{name}: mv of a file: the old name is still in the mount");
    step.pass(&mut rows);

    let step = Step::start(server, "mv of a directory made by mkdir");
    let (from, to) = (mnt(&format!("{w}/{}", at("full-dir"))), mnt(&format!("{w}/{}", at("moved-dir"))));
    blocking(|| std::fs::rename(&from, &to)).unwrap_or_else(|e| panic!("{name}: mv of a directory: {e}"));
    assert!(keys_below(server, w, &at("full-dir/")).await.is_empty(), "{name}: mv of a directory: old keys left");
    assert_eq!(
        get(server, &at("moved-dir/inside.txt")).await,
        b"keeps the directory",
        "{name}: mv of a directory: the file below the new name in S3"
    );
    assert_eq!(blocking(|| names(&to)), ["inside.txt"], "{name}: mv of a directory: listing of the new name");
    step.pass(&mut rows);

    let step = Step::start(server, "rm");
    let victim = mnt(&format!("{w}/{}", at("moved-dir/inside.txt")));
    blocking(|| std::fs::remove_file(&victim)).unwrap_or_else(|e| panic!("{name}: rm: {e}"));
    assert!(!exists(server, &at("moved-dir/inside.txt")).await, "{name}: rm: the key is still in S3");
    assert!(!blocking(|| victim.exists()), "{name}: rm: still there through the mount");
    step.pass(&mut rows);

    let step = Step::start(server, "cp -r of a small tree, diff -r");
    let local = server.dir.join("tree");
    let file_count = make_tree(&local);
    let target = mnt(&format!("{w}/{}", at("tree")));
    let cp = blocking(|| Command::new("cp").arg("-r").arg(&local).arg(&target).output().unwrap());
    assert!(cp.status.success(), "{name}: cp -r: {}", text(&cp));
    let diff = blocking(|| Command::new("diff").arg("-r").arg(&local).arg(&target).output().unwrap());
    assert!(diff.status.success(), "{name}: diff -r after cp -r: {}", text(&diff));
    let objects: BTreeSet<String> = keys_below(server, w, &at("tree/"))
        .await
        .into_iter()
        .filter(|k| !k.ends_with('/'))
        .map(|k| k.trim_start_matches(&at("tree/")).to_string())
        .collect();
    assert_eq!(objects.len(), file_count, "{name}: cp -r: objects in S3: {objects:?}");
    let sample = "beta/two/file-3.bin";
    assert_eq!(
        get(server, &at(&format!("tree/{sample}"))).await,
        std::fs::read(local.join(sample)).unwrap(),
        "{name}: cp -r: {sample} by independent GET"
    );
    step.pass(&mut rows);

    let step = Step::start(server, "denied bucket: EACCES");
    let denied = mnt(&server.denied);
    let (listing, read) = blocking(|| {
        (std::fs::read_dir(&denied).map(|_| ()), std::fs::read(denied.join("ledger/2026-q3.csv")).map(|_| ()))
    });
    let listing = listing.expect_err("listing a denied bucket succeeded");
    assert_eq!(listing.raw_os_error(), Some(libc::EACCES), "{name}: ls of {}: {listing}", server.denied);
    let read = read.expect_err("reading from a denied bucket succeeded");
    assert_eq!(read.raw_os_error(), Some(libc::EACCES), "{name}: read from {}: {read}", server.denied);
    step.pass(&mut rows);

    // The STS credentials doctor got with this profile lasted the minimum, and the mount, with the
    // same profile, did everything above with them.
    let step = Step::start(server, "credentials at the minimum lifetime (900 s)");
    let sts = check(&report, "sts")["detail"].as_str().unwrap_or_default().to_string();
    let until = sts.rsplit(' ').next().unwrap_or_default();
    let until = time::OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{name}: doctor's sts check names no expiry ({e}): {sts:?}"));
    let lifetime = SystemTime::from(until).duration_since(doctor_done).unwrap_or_default().as_secs();
    let minimum = server.duration_seconds;
    assert!(
        lifetime <= minimum + 5 && lifetime + 60 >= minimum,
        "{name}: credentials last {lifetime} s, not the {minimum} s asked for: {sts:?}"
    );
    let again = blocking(|| std::fs::read(mnt(&format!("{w}/README.txt")))).unwrap();
    assert_eq!(again, get(server, "README.txt").await, "{name}: the mount with {minimum} s credentials");
    step.pass(&mut rows);

    let step = Step::start(server, "unmount");
    blocking(|| m.unmount()).unwrap_or_else(|e| panic!("{name}: unmount: {e}"));
    step.pass(&mut rows);
    rows
}

/// The whole table once more, in one piece (tests running side by side interleave their lines).
fn summary(server: &Server, rows: &[(String, Duration)], total: Duration) {
    let mut table = String::from(
        "real-servers | server           | check                                        | result | time\n",
    );
    for (check, took) in rows {
        table.push_str(&format!(
            "real-servers | {:<16} | {check:<44} | pass | {:>6.2} s\n",
            server.name,
            took.as_secs_f64()
        ));
    }
    table.push_str(&format!(
        "real-servers | {:<16} | all {} steps passed; the whole test took {:.1} s",
        server.name,
        rows.len(),
        total.as_secs_f64()
    ));
    eprintln!("{table}");
}

#[tokio::test(flavor = "multi_thread")]
async fn battery_against_the_devstack() {
    let started = Instant::now();
    let dir = support::unique_dir("real-devstack");
    let stack = start_devstack(&dir).await;
    let mut rows = vec![("start the devstack".to_string(), started.elapsed())];
    print_row("devstack (MinIO)", "start the devstack", started.elapsed());
    let writable = "analytics-raw".to_string();
    let denied = "finance".to_string();
    let server = Server {
        name: "devstack (MinIO)",
        doctor_calls_it: "MinIO",
        profile_file: write_profile(
            &dir.join("profile"),
            "devstack-conformance",
            &stack.issuer,
            &stack.s3_endpoint,
            None,
            std::slice::from_ref(&denied),
            900,
        ),
        control_url: stack.control_url.clone(),
        dir: dir.clone(),
        writable,
        denied,
        root: vec!["analytics-curated".into(), "analytics-raw".into(), "finance".into()],
        duration_seconds: 900,
        s3: static_s3(
            &stack.s3_endpoint,
            ssofs_devstack::scenario::ROOT_ACCESS_KEY,
            ssofs_devstack::scenario::ROOT_SECRET_KEY,
        ),
    };
    rows.extend(battery(&server).await);
    stack.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    summary(&server, &rows, started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// Ceph RGW.

const CEPH_RGW: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/ceph-rgw");

/// A gateway started by `scripts/ceph-rgw start DIR`; stopped (and DIR removed) when dropped.
struct Rgw {
    dir: PathBuf,
    env: std::collections::HashMap<String, String>,
}

impl Rgw {
    fn run(args: &[&str]) -> Output {
        Command::new(CEPH_RGW).args(args).output().unwrap()
    }

    fn start(dir: &Path) -> Rgw {
        let rgw = Rgw { dir: dir.to_path_buf(), env: Default::default() };
        let out = Rgw::run(&["start", &dir.to_string_lossy()]);
        assert!(out.status.success(), "Ceph RGW: scripts/ceph-rgw start: {}", text(&out));
        rgw
    }

    fn read_env(&mut self) {
        let env = std::fs::read_to_string(self.dir.join("rgw.env")).unwrap();
        self.env = env.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    }

    fn var(&self, name: &str) -> &str {
        self.env.get(name).unwrap_or_else(|| panic!("Ceph RGW: no {name} in rgw.env: {:?}", self.env.keys()))
    }

    /// `radosgw-admin` on this gateway's cluster.
    fn admin(&self, args: &[&str]) -> Output {
        Command::new("timeout")
            .args(["60", "radosgw-admin", "-c", self.var("RGW_CEPH_CONF"), "-n", "client.rgw"])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Rgw {
    fn drop(&mut self) {
        // A failed test: what the gateway said, before `stop` removes its logs.
        if std::thread::panicking() {
            let wanted = ["http status=4", "http status=5", "denied", "error", "failed", "signature", "notice"];
            for (file, what, keep) in
                [("setup.log", "scripts/ceph-rgw's setup log", 15), ("client.rgw.log", "the RGW log's errors", 40)]
            {
                let Ok(log) = std::fs::read_to_string(self.dir.join("log").join(file)) else { continue };
                let lines: Vec<&str> = log
                    .lines()
                    .filter(|l| file == "setup.log" || wanted.iter().any(|w| l.to_ascii_lowercase().contains(w)))
                    .collect();
                eprintln!("--- the end of {what} ---");
                for l in &lines[lines.len().saturating_sub(keep)..] {
                    eprintln!("{l}");
                }
            }
        }
        let out = Rgw::run(&["stop", &self.dir.to_string_lossy()]);
        if !out.status.success() {
            eprintln!("scripts/ceph-rgw stop {}: {}", self.dir.display(), text(&out));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn battery_against_ceph_radosgw() {
    let started = Instant::now();
    let install = blocking(|| Rgw::run(&["install"]));
    if !require(install.status.success(), &format!("Ceph RGW: scripts/ceph-rgw install: {}", text(&install))) {
        return;
    }
    let mut rows = vec![("scripts/ceph-rgw install (when missing)".to_string(), started.elapsed())];
    print_row("Ceph RGW 16", &rows[0].0, rows[0].1);

    // Unix sockets under DIR: keep the path short.
    let n = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000;
    let rgw_dir = std::env::temp_dir().join(format!("ssofs-rgw-{}-{n}", std::process::id()));
    let t = Instant::now();
    let mut rgw = blocking(|| Rgw::start(&rgw_dir));
    let dir = support::unique_dir("real-rgw");
    let stack = start_devstack(&dir).await;
    let out = blocking(|| {
        Rgw::run(&["register-idp", &rgw_dir.to_string_lossy(), &stack.issuer, ssofs_devstack::scenario::CLIENT_ID])
    });
    assert!(out.status.success(), "Ceph RGW: scripts/ceph-rgw register-idp: {}", text(&out));
    rgw.read_env();
    // The gateway's admin user owns the buckets, but the objects the federated user writes are
    // that user's: S3 ACLs keep even the bucket owner from reading them. The admin flag lets the
    // independent client read everything.
    let info = blocking(|| rgw.admin(&["user", "info", &format!("--access-key={}", rgw.var("RGW_ADMIN_ACCESS_KEY"))]));
    let info: Value = serde_json::from_slice(&info.stdout)
        .unwrap_or_else(|e| panic!("Ceph RGW: radosgw-admin user info ({e}): {}", text(&info)));
    let uid = info["user_id"].as_str().expect("user_id").to_string();
    let out = blocking(|| rgw.admin(&["user", "modify", &format!("--uid={uid}"), "--admin"]));
    assert!(out.status.success(), "Ceph RGW: radosgw-admin user modify --admin: {}", text(&out));
    rows.push(("start RGW + devstack, register-idp".to_string(), t.elapsed()));
    print_row("Ceph RGW 16", &rows[1].0, rows[1].1);

    let mut buckets: Vec<String> = rgw.var("RGW_BUCKETS").split(',').map(str::to_string).collect();
    let writable = buckets.iter().find(|b| *b == "analytics-raw").cloned().expect("analytics-raw in RGW_BUCKETS");
    // Seeded by register-idp outside the role's policy.
    let denied = "finance".to_string();
    buckets.push(denied.clone());
    let mut root = buckets.clone();
    root.sort();
    let server = Server {
        name: "Ceph RGW 16",
        doctor_calls_it: "Ceph",
        profile_file: write_profile(
            &dir.join("profile"),
            "ceph-rgw",
            &stack.issuer,
            rgw.var("RGW_ENDPOINT"),
            Some(rgw.var("RGW_ROLE_ARN")),
            &buckets,
            900,
        ),
        control_url: stack.control_url.clone(),
        dir: dir.clone(),
        writable,
        denied,
        root,
        duration_seconds: 900,
        s3: static_s3(rgw.var("RGW_ENDPOINT"), rgw.var("RGW_ADMIN_ACCESS_KEY"), rgw.var("RGW_ADMIN_SECRET_KEY")),
    };
    rows.extend(battery(&server).await);
    stack.shutdown().await;
    let t = Instant::now();
    drop(rgw);
    rows.push(("scripts/ceph-rgw stop".to_string(), t.elapsed()));
    print_row("Ceph RGW 16", "scripts/ceph-rgw stop", t.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
    summary(&server, &rows, started.elapsed());
}
