//! `ssofs doctor` against the devstack, with each fault staged: it names each one's cause with its
//! own diagnosis, and `--json` is valid JSON saying the same.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::text;
use serde_json::Value;

struct Env {
    stack: ssofs_devstack::Running,
    dir: PathBuf,
}

impl Env {
    fn ssofs(&self, state: &str, args: &[&str]) -> Output {
        let dir = self.dir.clone();
        let profile = self.stack.profile_file.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let state = state.to_string();
        tokio::task::block_in_place(move || {
            Command::new(env!("CARGO_BIN_EXE_ssofs"))
                .args(&args)
                .env("SSOFS_CONFIG", &profile)
                .env("SSOFS_STATE_DIR", dir.join(state))
                .env("XDG_CONFIG_HOME", dir.join("no-config"))
                .env("XDG_CACHE_HOME", dir.join("cache"))
                .env_remove("BROWSER")
                .env_remove("DISPLAY")
                .env_remove("WAYLAND_DISPLAY")
                .env_remove("SSOFS_LOG")
                .output()
                .unwrap()
        })
    }

    async fn control(&self, path: &str, form: &[(&str, &str)]) {
        let url = format!("{}/{path}", self.stack.control_url);
        let resp = reqwest::Client::new().post(&url).form(form).send().await.unwrap();
        assert!(resp.status().is_success(), "{url}: {}", resp.status());
    }

    /// Signs `user` in, into their own state directory.
    async fn login(&self, user: &str) {
        self.control("auto-approve", &[("user", user)]).await;
        let out = self.ssofs(user, &["login", "--device-code", "--no-qr"]);
        assert!(out.status.success(), "{}", text(&out));
    }

    /// Runs doctor as text and as JSON; prints the text (the closing note quotes it).
    fn doctor(&self, state: &str, extra: &[&str]) -> (Output, Value) {
        let mut args = vec!["doctor"];
        args.extend_from_slice(extra);
        let out = self.ssofs(state, &args);
        eprintln!("--- ssofs {} (as {state}) ---\n{}", args.join(" "), text(&out));
        args.push("--json");
        let json = self.ssofs(state, &args);
        let report: Value = serde_json::from_slice(&json.stdout)
            .unwrap_or_else(|e| panic!("--json is not JSON ({e}): {}", text(&json)));
        assert_eq!(json.status.success(), report["ok"] == true);
        (out, report)
    }
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("{name}: {report}"))
}

async fn env() -> Env {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("ssofs-doctor-{}-{n}", std::process::id()));
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.device_code_interval = Duration::from_secs(1);
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    Env { stack, dir }
}

fn assert_diagnosis(out: &Output, report: &Value, want: &str, words: &[&str]) {
    assert!(!out.status.success(), "doctor fails: {}", text(out));
    assert_eq!(report["diagnosis"], want, "{report:#}");
    let t = text(out);
    assert!(t.contains(&format!("✗ {want}:")) && t.contains(&format!("Diagnosis: {want}")), "{t}");
    for w in words {
        assert!(t.contains(w), "{w:?} in: {t}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_names_each_staged_fault() {
    let e = env().await;
    for user in ["alice", "eve", "bob"] {
        e.login(user).await;
    }

    // Healthy: every check passes; buckets with what alice may do; --write-probe writes and deletes.
    let (out, report) = e.doctor("alice", &["--write-probe"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(report["diagnosis"], Value::Null);
    let t = text(&out);
    assert!(t.contains("✓ sts:") && t.contains("All checks passed"), "{t}");
    assert!(check(&report, "bucket:analytics-raw")["detail"].as_str().unwrap().contains("write ✓"), "{report:#}");
    assert!(!t.contains("finance"), "alice cannot list finance: {t}");

    // Not signed in.
    let (out, report) = e.doctor("nobody", &[]);
    assert_diagnosis(&out, &report, "token", &["ssofs login"]);

    // Wrong client id: the token is for the app registration, the profile names another.
    let (out, report) = e.doctor("alice", &["--client-id", "00000000-1111-2222-3333-444444444444"]);
    assert_diagnosis(&out, &report, "audience", &["00000000-1111-2222-3333-444444444444", "api://"]);

    // eve: no groups claim, so MinIO has no policy for her.
    let (out, report) = e.doctor("eve", &[]);
    assert_diagnosis(&out, &report, "sts", &["no `groups` claim", "emit groups claim"]);
    assert_eq!(check(&report, "groups")["outcome"], "warn");

    // bob: 250 groups, overage.
    let (out, report) = e.doctor("bob", &[]);
    assert_diagnosis(&out, &report, "groups", &["overage", "more than 200 groups"]);
    assert_eq!(check(&report, "sts")["outcome"], "fail");

    // FUSE readiness is part of the walk.
    assert!(check(&report, "fuse")["outcome"] == "pass" || Path::new("/dev/fuse").exists().then_some(()).is_none());

    // The identity provider 45 s ahead of MinIO (within ssofs's 60 s leeway, so login works): tokens say so.
    e.control("clock-offset", &[("seconds", "45")]).await;
    e.login("alice").await;
    let (out, report) = e.doctor("alice", &[]);
    assert_diagnosis(&out, &report, "clock", &["ahead of MinIO", "zero leeway", "NTP"]);
    e.control("clock-offset", &[("seconds", "0")]).await;

    // A config that does not exist.
    let (out, report) = e.doctor("alice", &["--config", "/nonexistent/ssofs.toml"]);
    assert_diagnosis(&out, &report, "config", &["/nonexistent/ssofs.toml"]);
    assert_eq!(check(&report, "sts")["outcome"], "skip");

    e.stack.shutdown().await;
    let _ = std::fs::remove_dir_all(&e.dir);
}

/// doctor's probes tell the truth: the write probe goes through the mount's own upload path (a
/// staged file: one PutObject and a two-part multipart upload) and leaves nothing behind; the read
/// probe reads a real object, so a server that answers HEAD but refuses GetObject is caught; the
/// server is named.
#[tokio::test(flavor = "multi_thread")]
async fn doctor_probes_the_real_upload_path_and_reads_a_real_object() {
    let e = env().await;
    e.login("alice").await;
    let (out, report) = e.doctor("alice", &["--write-probe"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(check(&report, "server")["detail"], "MinIO (Server: MinIO)", "{report:#}");
    let detail = check(&report, "bucket:analytics-raw")["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("read ✓ (") && detail.contains("2-part multipart"), "{detail}");

    let log: Vec<Value> =
        reqwest::get(format!("{}/requests", e.stack.control_url)).await.unwrap().json().await.unwrap();
    let probes = |op: &str| {
        log.iter()
            .filter(|r| r["op"] == op && r["path"].as_str().unwrap_or("").contains(".ssofs-doctor-probe-"))
            .filter(|r| r["status"].as_u64().unwrap_or(0) < 300)
            .count()
    };
    assert!(probes("CreateMultipartUpload") >= 2, "one per bucket: {log:#?}");
    assert!(probes("UploadPart") >= 4, "two parts per bucket");
    assert!(probes("CompleteMultipartUpload") >= 2);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(&e.stack.s3_endpoint)
            .force_path_style(true)
            .credentials_provider(aws_credential_types::Credentials::new(
                ssofs_devstack::scenario::ROOT_ACCESS_KEY,
                ssofs_devstack::scenario::ROOT_SECRET_KEY,
                None,
                None,
                "test",
            ))
            .build(),
    );
    for bucket in ["analytics-raw", "analytics-curated"] {
        let listed = s3.list_objects_v2().bucket(bucket).prefix(".ssofs-doctor-probe-").send().await.unwrap();
        assert_eq!(listed.key_count(), Some(0), "probes are deleted from {bucket}");
    }

    // GetObject refused while HEAD of a missing key still says 404: reading is not allowed.
    e.control("faults", &[("deny_get_object", "1")]).await;
    let (_, report) = e.doctor("alice", &[]);
    let detail = check(&report, "bucket:analytics-raw")["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("read ✗"), "{detail}");
    e.control("faults", &[("deny_get_object", "0")]).await;
    e.stack.shutdown().await;
}
