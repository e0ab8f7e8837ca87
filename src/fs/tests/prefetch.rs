//! Listings fetched ahead of a walker (`superblock::prefetch`): each directory of a walk is listed
//! once, the ones ahead before the walker gets there; a listing under way is waited for, not asked
//! again; a failed one is listed by the walker; none ahead when turned off or after unmount.

use std::collections::HashMap;
use std::sync::Mutex;

use super::*;
use crate::object::ObjectError;
use crate::object::failing::{FailingClient, Fault, Op};

const DIRS: usize = 12;

/// ListObjectsV2 calls by prefix, as the client was asked (before any delay or failure).
type Asked = Arc<Mutex<HashMap<String, u64>>>;

/// `tree/d00` … `tree/d11` of 3 files each, behind a client that counts listings by prefix and
/// delays or fails those `fault` says.
fn setup(tag: &str, dir_prefetch: usize, mut fault: impl FnMut(&str) -> Option<Fault> + Send + 'static) -> (Asked, Fs) {
    let mock = MockObjectClient::with_page_size(100);
    mock.add_bucket("data");
    for d in 0..DIRS {
        for f in 0..3 {
            mock.insert("data", &format!("tree/d{d:02}/f{f}"), "x");
        }
    }
    let asked = Asked::default();
    let counts = asked.clone();
    let client = FailingClient::new(mock, move |op, prefix| {
        if op != Op::ListPage {
            return None;
        }
        *counts.lock().unwrap().entry(prefix.to_string()).or_default() += 1;
        fault(prefix)
    });
    let dir = std::env::temp_dir().join(format!("ssofs-prefetch-{tag}-{}", std::process::id()));
    let mut config = FsConfig::new(dir);
    config.dir_prefetch = dir_prefetch;
    (asked, Fs::new(Arc::new(client), config))
}

fn listed(asked: &Asked, dir: usize) -> u64 {
    asked.lock().unwrap().get(&format!("tree/d{dir:02}/")).copied().unwrap_or(0)
}

fn lists(asked: &Asked) -> u64 {
    asked.lock().unwrap().values().sum()
}

/// A walker's step into `tree/dNN`: the kernel looks it up, then reads it. Returns its inode.
async fn step(fs: &Fs, tree: u64, dir: usize) -> u64 {
    let d = fs.lookup(tree, &format!("d{dir:02}")).await.unwrap();
    assert_eq!(fs.readdir(d.ino).await.unwrap().len(), 3);
    d.ino
}

/// Waits on the runtime (so the prefetch workers run) until `done` holds; false after 5 s.
async fn settles(done: impl Fn() -> bool) -> bool {
    for _ in 0..500 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

/// The walk's start: `tree` looked up and read, then its first two directories.
async fn start_walk(fs: &Fs) -> u64 {
    let tree = path(fs, &["data", "tree"]).await.unwrap();
    assert_eq!(fs.readdir(tree.ino).await.unwrap().len(), DIRS);
    step(fs, tree.ino, 0).await;
    step(fs, tree.ino, 1).await;
    tree.ino
}

#[tokio::test]
async fn a_walk_lists_each_directory_once_and_the_next_ones_before_the_walker_reads_them() {
    let (asked, fs) = setup("walk", 4, |_| None);
    let tree = start_walk(&fs).await;
    // Two directories read in order make a walk: the other ten are listed ahead.
    assert!(settles(|| (2..DIRS).all(|d| listed(&asked, d) == 1)).await, "not prefetched: {asked:?}");
    let before = lists(&asked);
    for d in 2..DIRS {
        step(&fs, tree, d).await;
        assert_eq!(lists(&asked), before, "d{d:02} was read from its prefetched listing");
    }
    assert!((0..DIRS).all(|d| listed(&asked, d) == 1), "every directory listed once: {asked:?}");
}

#[tokio::test]
async fn a_directory_being_prefetched_is_waited_for_not_listed_again() {
    // d03's listing answers after 300 ms: the walker gets there first.
    let (asked, fs) =
        setup("inflight", 4, |prefix| (prefix == "tree/d03/").then_some(Fault::Delay(Duration::from_millis(300))));
    let tree = start_walk(&fs).await;
    assert!(settles(|| (2..DIRS).all(|d| listed(&asked, d) == 1)).await, "not prefetched: {asked:?}");
    step(&fs, tree, 2).await;
    // A lookup in it waits for the listing too, rather than asking S3 about the name.
    let d03 = fs.lookup(tree, "d03").await.unwrap();
    let started = std::time::Instant::now();
    assert!(fs.lookup(d03.ino, "f1").await.is_ok());
    assert!(started.elapsed() >= Duration::from_millis(100), "the lookup did not wait for the listing");
    assert_eq!(fs.readdir(d03.ino).await.unwrap().len(), 3);
    for d in 4..DIRS {
        step(&fs, tree, d).await;
    }
    assert!((0..DIRS).all(|d| listed(&asked, d) == 1), "every directory listed once: {asked:?}");
    assert_eq!(lists(&asked), DIRS as u64 + 2, "and nothing else but the tree's two: {asked:?}");
}

#[tokio::test]
async fn a_failed_prefetch_leaves_nothing_and_the_walker_lists_the_directory_itself() {
    let mut failed = false;
    let (asked, fs) = setup("failed", 4, move |prefix| {
        (prefix == "tree/d04/" && !std::mem::replace(&mut failed, true))
            .then(|| Fault::Fail(ObjectError::Unavailable("connection reset".into())))
    });
    let tree = start_walk(&fs).await;
    assert!(settles(|| (2..DIRS).all(|d| listed(&asked, d) == 1)).await, "not prefetched: {asked:?}");
    for d in 2..DIRS {
        step(&fs, tree, d).await;
    }
    assert_eq!(listed(&asked, 4), 2, "the failed prefetch, then the walker's own listing");
}

#[tokio::test]
async fn nothing_is_listed_ahead_when_turned_off_or_after_unmount() {
    let (asked, fs) = setup("off", 0, |_| None);
    let tree = start_walk(&fs).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(lists(&asked), 4, "the tree's two (lookup, listing), d00 and d01: {asked:?}");
    step(&fs, tree, 2).await;
    assert_eq!(listed(&asked, 2), 1, "d02 listed when read");

    // Unmount while listings ahead are under way: they stop, and nothing more is asked.
    let (asked, fs) =
        setup("unmount", 4, |p| p.starts_with("tree/d").then_some(Fault::Delay(Duration::from_millis(200))));
    let tree = start_walk(&fs).await;
    assert!(settles(|| lists(&asked) > 4).await, "prefetch started: {asked:?}");
    fs.begin_shutdown();
    let at_unmount = lists(&asked);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(lists(&asked), at_unmount, "no prefetch after unmount: {asked:?}");
    assert!(at_unmount <= 4 + 4, "at most dir_prefetch under way: {asked:?}");
    step(&fs, tree, 2).await;
    assert_eq!(fs.map_sizes().listings, 5, "root, tree, d00, d01 and d02: nothing prefetched was kept");
}
