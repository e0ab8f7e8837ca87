//! Servers list only some of the buckets an identity may use (Ceph RGW: those the federated user
//! owns; MinIO: none without ListBucket). Buckets named in the profile or with `-o buckets=` are
//! shown anyway, a prefix lists only below it, `s3://bucket/prefix` mounts one bucket at the root,
//! and a named bucket the identity may not use says EACCES, not ENOENT.

use crate::support::{self, mount_as, unique_dir};
use ssofs::mount::MountOptions;

async fn stack_listing_no_buckets(dir: &std::path::Path) -> ssofs_devstack::Running {
    let stack = ssofs_devstack::start(ssofs_devstack::Config::new(dir.join("devstack"))).await.unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{}/faults", stack.control_url))
        .form(&[("owned_buckets_only", "1")])
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    stack
}

fn names(dir: std::path::PathBuf) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn buckets_a_server_does_not_list_can_be_named_and_used() {
    let dir = unique_dir("named-buckets");
    let stack = stack_listing_no_buckets(&dir).await;
    let options = MountOptions { buckets: Some(vec!["analytics-raw".into()]), ..Default::default() };
    let m = mount_as(&stack, "alice", &dir, options).await;
    let (root, raw) = (m.path(""), m.path("analytics-raw"));
    let (root_names, raw_names) = tokio::task::spawn_blocking(move || (names(root), names(raw))).await.unwrap();
    assert_eq!(root_names, ["analytics-raw"], "only the named bucket: the server lists none");
    assert!(raw_names.contains(&"README.txt".to_string()), "{raw_names:?}");
    let readme = m.path("analytics-raw/README.txt");
    let text = tokio::task::spawn_blocking(move || std::fs::read_to_string(readme)).await.unwrap().unwrap();
    assert!(!text.is_empty());
    m.unmount();
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_named_bucket_the_identity_may_not_use_says_permission_denied() {
    let dir = unique_dir("named-denied");
    let stack = ssofs_devstack::start(ssofs_devstack::Config::new(dir.join("devstack"))).await.unwrap();
    // alice's policy does not cover finance-reports: it is shown because it is named, and using it
    // is EACCES (the policy said no), not ENOENT.
    let options = MountOptions { buckets: Some(vec!["finance-reports".into()]), ..Default::default() };
    let m = mount_as(&stack, "alice", &dir, options).await;
    let (root, denied) = (m.path(""), m.path("finance-reports"));
    let (root_names, listed) =
        tokio::task::spawn_blocking(move || (names(root), std::fs::read_dir(denied).map(|_| ()))).await.unwrap();
    assert_eq!(root_names, ["analytics-curated", "analytics-raw", "finance-reports"]);
    assert_eq!(listed.unwrap_err().kind(), std::io::ErrorKind::PermissionDenied);
    m.unmount();
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_bucket_or_a_prefix_is_mounted_at_the_mountpoint_itself() {
    let dir = unique_dir("s3-source");
    let stack = stack_listing_no_buckets(&dir).await;
    let options = MountOptions { root_bucket: Some("s3://analytics-raw/".into()), ..Default::default() };
    let m = mount_as(&stack, "alice", &dir, options).await;
    let root = m.path("");
    let listed = tokio::task::spawn_blocking(move || names(root)).await.unwrap();
    assert!(listed.contains(&"README.txt".to_string()), "the bucket's own listing at the root: {listed:?}");
    // Writes at the root land in the bucket.
    let f = m.path("at-root.txt");
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut file = std::fs::File::create(f).unwrap();
        file.write_all(b"root of a bucket mount").unwrap();
        file.sync_all().unwrap();
    })
    .await
    .unwrap();
    assert_eq!(support::s3_get(&stack, "analytics-raw", "at-root.txt").await, b"root of a bucket mount");
    m.unmount();

    // A prefix: only what is below it.
    let sub = dir.join("prefix");
    let options = MountOptions { buckets: Some(vec!["analytics-raw/events".into()]), ..Default::default() };
    let m = mount_as(&stack, "alice", &sub, options).await;
    let raw = m.path("analytics-raw");
    let listed = tokio::task::spawn_blocking(move || names(raw)).await.unwrap();
    assert!(!listed.contains(&"README.txt".to_string()) && !listed.is_empty(), "below events/ only: {listed:?}");
    m.unmount();
    stack.shutdown().await;
}
