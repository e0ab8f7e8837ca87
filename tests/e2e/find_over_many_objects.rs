//! `find` over a tree of many objects through a real mount finds every file, and the mount's inodes
//! stay bounded: an entry a listing hands the kernel with attributes (READDIRPLUS) is an inode both
//! hold until the kernel forgets it, so past `readdirplus_inodes` listings give names only. The
//! walk lists each directory once, though the listings ahead of it are fetched before it gets there.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ssofs::mount::MountOptions;

use crate::support;

const DIRS: usize = 20;
const PER_DIR: usize = 300;
const BUDGET: usize = 1000;

/// `ssofs_metadata_entries` by map, from the mount's metrics (refreshed every 5 s).
async fn metadata_entries(port: u16) -> BTreeMap<String, f64> {
    let body = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap();
    body.lines()
        .filter_map(|l| l.strip_prefix("ssofs_metadata_entries{map=\""))
        .filter_map(|l| l.split_once("\"} "))
        .map(|(map, v)| (map.to_string(), v.trim().parse().unwrap()))
        .collect()
}

/// ListObjectsV2 requests the devstack logged from index `since` on, and the log's length.
async fn lists_since(stack: &ssofs_devstack::Running, since: usize) -> (usize, usize) {
    let url = format!("{}/requests?since={since}", stack.control_url);
    let log: Vec<serde_json::Value> = reqwest::get(url).await.unwrap().json().await.unwrap();
    (log.iter().filter(|r| r["op"] == "ListObjectsV2").count(), since + log.len())
}

fn find_files(dir: &Path) -> usize {
    let out = std::process::Command::new("find").arg(dir).args(["-type", "f"]).output().unwrap();
    assert!(out.status.success(), "find: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[tokio::test(flavor = "multi_thread")]
async fn find_over_many_objects_finds_them_all_and_keeps_the_mounts_inodes_bounded() {
    let dir = support::temp_dir("find-many");
    let stack = support::system::devstack(&dir).await;
    let http = reqwest::Client::new();
    for d in 0..DIRS {
        let prefix = format!("tree/d{d:02}/");
        let form = [("bucket", "analytics-raw"), ("prefix", &prefix), ("count", &PER_DIR.to_string())];
        let r = http.post(format!("{}/seed-objects", stack.control_url)).form(&form).send().await.unwrap();
        assert!(r.status().is_success(), "seeding {prefix}: {}", r.status());
    }
    let port = support::free_port();
    let options = MountOptions {
        metrics: Some(format!("127.0.0.1:{port}").parse().unwrap()),
        readdirplus_inodes: Some(BUDGET),
        ..Default::default()
    };
    let m = support::mount_as(&stack, "alice", &dir, options).await;

    let tree = m.path("analytics-raw/tree");
    let (_, mut since) = lists_since(&stack, 0).await;
    for walk in ["first", "second"] {
        let tree = tree.clone();
        let found = tokio::task::block_in_place(|| find_files(&tree));
        assert_eq!(found, DIRS * PER_DIR, "the {walk} walk finds every object");
        // Prefetches that were not awaited would show up late: let them land.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (lists, next) = lists_since(&stack, since).await;
        since = next;
        eprintln!("the {walk} walk: {lists} ListObjectsV2 requests for {DIRS} directories");
        // The tree's lookup (one entry) and listing, then each directory once: a listing fetched
        // ahead of the walk is not fetched again when the walk gets there. (The second walk may
        // look directories up again once the tree's listing is older than its TTL.)
        if walk == "first" {
            assert!(lists <= DIRS + 2, "the first walk made {lists} ListObjectsV2 requests for {DIRS} directories");
        }
    }
    // Past the budget a reply carries 64 entries with attributes (the dots included), so each
    // directory walked after it adds 62 at most; without the budget every entry would be one.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let inodes = metadata_entries(port).await.get("inodes").copied().unwrap_or(f64::NAN);
    let bound = (BUDGET + DIRS * 64 + DIRS + 2) as f64;
    eprintln!("inodes after two walks of {} objects: {inodes} (bound {bound})", DIRS * PER_DIR);
    assert!(inodes <= bound, "inodes after two walks: {inodes} > {bound}");

    // Past the budget, `ls -l` still shows every entry with its size (looked up from the listing).
    let d05 = m.path("analytics-raw/tree/d05");
    let out = tokio::task::block_in_place(|| std::process::Command::new("ls").arg("-ln").arg(&d05).output().unwrap());
    let listed = String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with('-')).count();
    assert_eq!(listed, PER_DIR, "ls -l past the budget: {}", String::from_utf8_lossy(&out.stderr));
    m.unmount();
    stack.shutdown().await;
}
