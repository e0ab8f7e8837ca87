//! Over TLS: the devstack serves HTTPS with a test CA; ssofs verifies certificates by default, trusts
//! the CA named by `ca_file`, and then signs in and mounts as usual.

mod mount_support;

use std::time::Duration;

use mount_support::{profile_of, unique_dir};
use ssofs::identity::login;
use ssofs::mount::MountOptions;

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
    let m = mount_support::mount_as(&stack, "alice", &dir, MountOptions::default()).await;
    let readme = m.path("analytics-raw/README.txt");
    let text = tokio::task::block_in_place(|| std::fs::read_to_string(readme).unwrap());
    assert!(text.starts_with("Raw event exports"));
    m.unmount();
    stack.shutdown().await;
}
