//! A user whose ID token is 16 KB (many groups and optional claims): sign-in stores it, status
//! reads it, STS takes it, and the mount serves the user's buckets. A token store holding 16 KB of
//! garbage instead is a clear error naming the store and what to do, never a panic.

use std::time::Duration;

use crate::support::{self, ssofs_cli, unique_dir};
use ssofs::identity::TokenStore;
use ssofs::mount::MountOptions;

#[tokio::test(flavor = "multi_thread")]
async fn a_16_kb_id_token_signs_in_and_mounts() {
    let dir = unique_dir("big-token");
    let mut cfg = ssofs_devstack::Config::new(dir.join("devstack"));
    cfg.device_code_interval = Duration::from_secs(1);
    cfg.id_token_padding = 16 * 1024;
    let stack = ssofs_devstack::start(cfg).await.unwrap();
    let m = support::mount_as(&stack, "alice", &dir, MountOptions::default()).await;

    let stored = TokenStore::open(&dir.join("state")).unwrap().load("devstack").unwrap().expect("tokens stored");
    let size = stored.id_token.len();
    assert!(size > 16 * 1024, "the ID token is oversized: {size} bytes");
    let text = tokio::task::block_in_place(|| std::fs::read_to_string(m.path("analytics-raw/README.txt")));
    assert!(text.unwrap().starts_with("Raw event exports"), "STS took the 16 KB token");

    let status = ssofs_cli(&stack, &dir, &["status"]);
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{out}{}", String::from_utf8_lossy(&status.stderr));
    assert!(out.contains("alice"), "{out}");
    m.unmount();

    // The token file replaced with 16 KB of garbage: named, with the fix, not a crash.
    std::fs::write(dir.join("state/devstack.tokens.json"), "x".repeat(16 * 1024)).unwrap();
    let status = ssofs_cli(&stack, &dir, &["status"]);
    let all = format!("{}{}", String::from_utf8_lossy(&status.stdout), String::from_utf8_lossy(&status.stderr));
    assert!(!all.contains("panicked"), "{all}");
    assert!(all.contains("ssofs login"), "says what to do: {all}");
    stack.shutdown().await;
}
