//! Over TLS: the devstack serves HTTPS with a test CA; ssofs verifies certificates by default, trusts
//! the CA named by `ca_file`, and then signs in and mounts as usual. Without the CA a mount is
//! refused, unless `-o insecure_tls` asks for no verification explicitly.

use std::time::Duration;

use crate::support::{self, is_mounted, profile_of, unique_dir};
use ssofs::identity::login;
use ssofs::mount::{self, MountOptions, MountRequest};

#[tokio::test(flavor = "multi_thread")]
async fn certificates_are_verified_and_ca_file_is_trusted() {
    let dir = unique_dir("tls");
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.tls = true;
    cfg.device_code_interval = Duration::from_secs(1);
    cfg.auto_approve = Some("alice".into());
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    assert!(stack.s3_endpoint.starts_with("https://") && stack.issuer.starts_with("https://"));
    let env = std::fs::read_to_string(&stack.env_file).unwrap();
    assert!(env.contains("DEVSTACK_CA_FILE="), "{env}");

    // Without the CA, the certificate is refused: verification is on by default.
    let mut untrusting = profile_of(&stack);
    assert!(untrusting.ca_file.is_some(), "the devstack's profile names its CA");
    untrusting.ca_file = None;
    let err = login::device_code(&untrusting, &mut Vec::new()).await.unwrap_err().to_string();
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("unknown issuer") || err.contains("tls"),
        "{err}"
    );

    // With the CA: sign in, get STS credentials and mount over HTTPS.
    let m = support::mount_as(&stack, "alice", &dir, MountOptions::default()).await;
    let readme = m.path("analytics-raw/README.txt");
    let text = tokio::task::block_in_place(|| std::fs::read_to_string(readme).unwrap());
    assert!(text.starts_with("Raw event exports"));
    m.unmount();

    // The same sign-in, a profile without the CA: the mount is refused with the reason...
    let request = |options: MountOptions, tag: &str| {
        let mountpoint = dir.join(tag);
        std::fs::create_dir_all(&mountpoint).unwrap();
        let options = MountOptions { cache_dir: Some(dir.join(format!("cache-{tag}"))), ..options };
        MountRequest {
            profile: untrusting.clone(),
            mountpoint,
            options,
            foreground: true,
            state_dir: dir.join("state"),
        }
    };
    let refused = std::thread::spawn({
        let req = request(MountOptions::default(), "mnt-verified");
        move || mount::run(req)
    });
    let err = tokio::task::block_in_place(|| refused.join().unwrap()).expect_err("an untrusted certificate");
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");

    // ...unless verification is turned off explicitly.
    let req = request(MountOptions { insecure_tls: true, ..MountOptions::default() }, "mnt-insecure");
    let mountpoint = req.mountpoint.clone();
    let serving = std::thread::spawn(move || mount::run(req));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !is_mounted(&mountpoint) {
        assert!(!serving.is_finished(), "insecure_tls mount ended: {:?}", serving.join());
        assert!(std::time::Instant::now() < deadline, "insecure_tls mount never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = tokio::task::block_in_place(|| std::fs::read_to_string(mountpoint.join("analytics-raw/README.txt")));
    mount::unmount(&mountpoint).unwrap();
    assert!(text.unwrap().starts_with("Raw event exports"));
    assert!(tokio::task::block_in_place(|| serving.join().unwrap()).is_ok());

    // doctor walks the whole chain with insecure_tls, from the profile or from -o as a mount would
    // get it, and warns about it.
    let profile_text = std::fs::read_to_string(&stack.profile_file).unwrap();
    // The devstack's profile with its ca_file line replaced (or dropped).
    let without_ca = |replacement: Option<&'static str>| {
        let lines = profile_text
            .lines()
            .filter_map(|l| if l.trim_start().starts_with("ca_file") { replacement } else { Some(l) });
        lines.collect::<Vec<_>>().join("\n")
    };
    for (name, text, extra) in [
        ("insecure.toml", without_ca(Some("insecure_tls = true")), None),
        ("no-ca.toml", without_ca(None), Some("insecure_tls")),
    ] {
        assert!(!text.contains("ca_file"), "{text}");
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        let mut doctor = std::process::Command::new(env!("CARGO_BIN_EXE_ssofs"));
        doctor.args(["doctor", "--config"]).arg(&file);
        if let Some(option) = extra {
            doctor.args(["-o", option]);
        }
        let doctor =
            doctor.env("SSOFS_STATE_DIR", dir.join("state")).env("XDG_CONFIG_HOME", dir.join("no-config")).output();
        let doctor = doctor.unwrap();
        let out = format!("{}{}", String::from_utf8_lossy(&doctor.stdout), String::from_utf8_lossy(&doctor.stderr));
        assert!(out.contains("NOT checked"), "{name} {extra:?}: {out}");
        assert!(out.contains("analytics-raw"), "{name} {extra:?}: buckets listed over unverified TLS: {out}");
    }
    stack.shutdown().await;
}

/// The identity provider and S3 signed by two different CAs, both in one `ca_file` (S3's first):
/// every client — IdP, STS and S3 — trusts the system roots plus every certificate in the file.
#[tokio::test(flavor = "multi_thread")]
async fn one_ca_file_with_two_cas_is_trusted_by_every_client() {
    let dir = unique_dir("tls-two-cas");
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.tls = true;
    cfg.tls_two_cas = true;
    cfg.device_code_interval = Duration::from_secs(1);
    cfg.auto_approve = Some("alice".into());
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    let ca = std::fs::read_to_string(stack.ca_file.as_ref().unwrap()).unwrap();
    assert_eq!(ca.matches("BEGIN CERTIFICATE").count(), 2, "{ca}");
    let m = support::mount_as(&stack, "alice", &dir, MountOptions::default()).await;
    let readme = m.path("analytics-raw/README.txt");
    let text = tokio::task::block_in_place(|| std::fs::read_to_string(readme).unwrap());
    assert!(text.starts_with("Raw event exports"));
    m.unmount();

    // The same rule when one CA is the system's (here through SSL_CERT_FILE, which the system-root
    // loader honours, as an enterprise CA installed with update-ca-certificates would be) and the
    // other is ca_file's: the IdP client once used only bundled roots, STS only the file.
    let (s3_ca, idp_ca) =
        ca.split_at(ca.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----\n".len());
    let (system, file) = (dir.join("system-roots.pem"), dir.join("idp-ca.pem"));
    std::fs::write(&system, s3_ca).unwrap();
    std::fs::write(&file, idp_ca).unwrap();
    let profile_text = std::fs::read_to_string(&stack.profile_file).unwrap();
    let profile: Vec<String> = profile_text
        .lines()
        .map(|l| if l.trim_start().starts_with("ca_file") { format!("ca_file = {:?}", file) } else { l.to_string() })
        .collect();
    let profile_file = dir.join("split-trust.toml");
    std::fs::write(&profile_file, profile.join("\n")).unwrap();
    let run = |args: &[&str], ssl_cert_file: &std::path::Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ssofs"))
            .args(args)
            .env("SSOFS_CONFIG", &profile_file)
            .env("SSOFS_STATE_DIR", dir.join("split-state"))
            .env("XDG_CONFIG_HOME", dir.join("no-config"))
            .env("SSL_CERT_FILE", ssl_cert_file)
            .env_remove("BROWSER")
            .env_remove("DISPLAY")
            .output()
            .unwrap();
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let (ok, out) = tokio::task::block_in_place(|| run(&["login", "--device-code", "--no-qr"], &system));
    assert!(ok, "sign-in with the IdP's CA in ca_file: {out}");
    let (ok, out) = tokio::task::block_in_place(|| run(&["doctor"], &system));
    assert!(
        ok && out.contains("✓ sts") && out.contains("analytics-raw"),
        "STS and S3 trust the system's CA too: {out}"
    );
    stack.shutdown().await;
}
