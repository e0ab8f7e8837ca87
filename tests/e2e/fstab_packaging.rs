//! What the packages ship: the mount helper turns mount(8)'s arguments into `ssofs mount`, the
//! user unit is valid for systemd, man pages and completions are generated, and every file the
//! package metadata names exists.

use crate::support::{self, temp_dir};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the helper with a stand-in ssofs that prints its arguments, one a line.
fn helper(args: &[&str]) -> (bool, String) {
    let dir = temp_dir("pkg-helper");
    let fake = dir.join("ssofs");
    std::fs::write(&fake, "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out =
        Command::new(root().join("packaging/mount.fuse.ssofs")).args(args).env("SSOFS_BIN", &fake).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn mount_helper_translates_mount_arguments() {
    let (ok, out) =
        helper(&["https://minio.example.com", "/mnt/minio", "-n", "-o", "_netdev,profile=corp", "-t", "fuse.ssofs"]);
    assert!(ok, "{out}");
    assert_eq!(out, "mount\nhttps://minio.example.com\n/mnt/minio\n-o\n_netdev,profile=corp\n");
    // A source that is not a URL means the profile's endpoint.
    let (ok, out) = helper(&["ssofs", "/mnt/my s3", "-oro", "-o", "profile=corp"]);
    assert!(ok, "{out}");
    assert_eq!(out, "mount\n/mnt/my s3\n-o\nro,profile=corp\n");
    let (ok, out) = helper(&["none", "/mnt/minio"]);
    assert!(ok && out == "mount\n/mnt/minio\n", "{out}");
    // mount -f: nothing runs.
    let (ok, out) = helper(&["https://e", "/m", "-f", "-o", "x"]);
    assert!(ok && out.is_empty(), "{out}");
    let (ok, out) = helper(&["only-one"]);
    assert!(!ok && out.contains("usage"), "{out}");
}

#[test]
fn generate_docs_writes_man_pages_and_completions() {
    let dir = temp_dir("pkg-docs");
    let out = Command::new(env!("CARGO_BIN_EXE_ssofs")).arg("generate-docs").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for page in ["ssofs", "ssofs-login", "ssofs-mount", "ssofs-doctor", "ssofs-status", "ssofs-unmount"] {
        let text = std::fs::read_to_string(dir.join(format!("man1/{page}.1"))).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
    assert!(!dir.join("man1/ssofs-generate-docs.1").exists(), "the hidden command has no page");
    let bash = std::fs::read_to_string(dir.join("completions/ssofs.bash")).unwrap();
    assert!(bash.contains("doctor") && bash.contains("--write-probe"));
    assert!(dir.join("completions/_ssofs").exists() && dir.join("completions/ssofs.fish").exists());

    // Every asset the deb and rpm metadata name exists (generated ones under target/docs).
    let manifest: toml::Value = toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap()).unwrap();
    let meta = &manifest["package"]["metadata"];
    let mut sources: Vec<String> =
        meta["deb"]["assets"].as_array().unwrap().iter().map(|a| a[0].as_str().unwrap().to_string()).collect();
    sources.extend(
        meta["generate-rpm"]["assets"].as_array().unwrap().iter().map(|a| a["source"].as_str().unwrap().to_string()),
    );
    for s in sources {
        let path = match s.strip_prefix("target/docs/") {
            Some(rest) => dir.join(rest),
            None if s == "target/release/ssofs" => continue,
            None => root().join(&s),
        };
        let exists = match path.to_str().unwrap().strip_suffix("*.1") {
            Some(d) => std::fs::read_dir(d).unwrap().count() > 0,
            None => path.exists(),
        };
        assert!(exists, "asset {s} ({})", path.display());
    }
}

#[test]
fn user_unit_is_valid_for_systemd() {
    let unit = std::fs::read_to_string(root().join("packaging/systemd/ssofs@.service")).unwrap();
    for line in ["Type=notify", "Restart=on-failure", "After=network-online.target", "--foreground %h/s3/%i"] {
        assert!(unit.contains(line), "{line}");
    }
    let installed = Command::new("systemd-analyze").arg("--version").output().is_ok();
    if !support::system::require(installed, "systemd-analyze (package systemd) must be installed") {
        return;
    }
    let dir = temp_dir("pkg-unit");
    std::fs::copy(root().join("packaging/systemd/ssofs@.service"), dir.join("ssofs@.service")).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.join("ssofs@corp.service"))
        .env("SYSTEMD_UNIT_PATH", format!("{}:", dir.display()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    // /usr/bin/ssofs is only there once the package is installed.
    let complaints: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !(l.contains("/usr/bin/ssofs") && l.contains("not executable")))
        .filter(|l| !Path::new("/run/systemd/system").exists() || !l.contains("Failed to"))
        .collect();
    assert!(complaints.is_empty(), "{text}");
}
