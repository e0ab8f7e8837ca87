//! The metadata maps stay bounded on a mount that runs for weeks: entries leave when the kernel
//! forgets an inode, when their TTL passes, and beyond the limits, least recently used first.

use super::*;

fn setup_with_limits(tag: &str, limits: MetadataLimits) -> (Arc<MockObjectClient>, Fs) {
    let client = Arc::new(MockObjectClient::with_page_size(1000));
    client.add_bucket("data");
    let dir = std::env::temp_dir().join(format!("ssofs-fs-{tag}-{}", std::process::id()));
    let mut config = FsConfig::new(dir);
    config.metadata_limits = limits;
    config.dir_ttl = Duration::from_millis(200);
    (client.clone(), Fs::new(client, config))
}

/// `find` over a big tree: a plain readdir hands the kernel numbers, not references, so it makes
/// no inodes (a walk of 1,000,000 objects made 1,000,000, about 600 bytes each); what the kernel
/// looked up stays until it forgets it.
#[tokio::test]
async fn a_plain_readdir_makes_no_inodes_and_what_the_kernel_holds_stays() {
    let (c, fs) = setup("sweep");
    for d in 0..20 {
        for f in 0..50 {
            c.insert("data", &format!("d{d}/f{f}"), "x");
        }
    }
    let data = fs.lookup(inode::ROOT, "data").await.unwrap();
    for d in 0..20 {
        let dir = fs.lookup(data.ino, &format!("d{d}")).await.unwrap();
        fs.readdir(dir.ino).await.unwrap();
    }
    let held = fs.lookup(data.ino, "d3").await.unwrap();
    let walked = fs.map_sizes();
    // Root, the bucket and its 20 directories: none of the 1,000 files.
    assert_eq!(walked.inodes, 22, "{walked:?}");
    // The kernel lets go of the directories it looked up, all but one.
    for d in (0..20).filter(|d| *d != 3) {
        let dir = fs.lookup(data.ino, &format!("d{d}")).await.unwrap();
        fs.forget(dir.ino, 2);
    }
    fs.sweep_metadata(Duration::ZERO);
    let swept = fs.map_sizes();
    // Root, the bucket, the directory still held, and nothing else.
    assert_eq!(swept.inodes, 3, "{walked:?} → {swept:?}");
    assert!(fs.getattr(held.ino).await.is_ok(), "a held inode still answers");
    // The number readdir reports is the one a lookup then makes (numbers are hashes of the path).
    let listed = fs.readdir(held.ino).await.unwrap().into_iter().find(|e| e.name == "f7").unwrap();
    assert_eq!(fs.lookup(held.ino, "f7").await.unwrap().ino, listed.stat.ino);
}

/// readdirplus hands each entry out with a reference, as a lookup does: its inode is made and
/// counted together, so no sweep can come between.
#[tokio::test]
async fn entries_handed_out_by_readdirplus_are_inodes_the_kernel_holds() {
    let (c, fs) = setup("hand-out");
    c.insert("data", "f", "x");
    let data = fs.lookup(inode::ROOT, "data").await.unwrap();
    let entries = fs.readdir(data.ino).await.unwrap();
    let stat = fs.hand_out(data.ino, &entries[0]);
    assert_eq!(stat.ino, entries[0].stat.ino);
    fs.sweep_metadata(Duration::ZERO);
    assert!(fs.getattr(stat.ino).await.is_ok(), "still there after a sweep with no grace");
    fs.forget(stat.ino, 1);
    fs.forget(data.ino, 1);
    fs.sweep_metadata(Duration::ZERO);
    assert!(fs.getattr(stat.ino).await.is_err(), "gone once the kernel forgot it");
}

#[tokio::test]
async fn listings_are_bounded_by_entries_and_missing_names_by_count() {
    let limits = MetadataLimits { listed_entries: 120, negative: 10, ..Default::default() };
    let (c, fs) = setup_with_limits("bounds", limits);
    for d in 0..10 {
        for f in 0..50 {
            c.insert("data", &format!("d{d}/f{f}"), "x");
        }
    }
    let data = fs.lookup(inode::ROOT, "data").await.unwrap();
    // Names looked up before any listing of their directory: asked of S3, remembered as missing.
    for n in 0..15 {
        assert!(fs.lookup(data.ino, &format!("missing{n}")).await.is_err());
    }
    for d in 0..10 {
        let dir = fs.lookup(data.ino, &format!("d{d}")).await.unwrap();
        fs.readdir(dir.ino).await.unwrap();
    }
    let sizes = fs.map_sizes();
    // 120 entries hold two listings of 50 (plus the bucket's own of 10 names).
    assert!(sizes.listings <= 3, "{sizes:?}");
    assert_eq!(sizes.negative, 10, "{sizes:?}");
}

#[tokio::test]
async fn missing_names_and_listings_leave_when_their_ttl_passes() {
    let (c, fs) = setup_with_limits("ttl", MetadataLimits::default());
    c.insert("data", "d/f", "x");
    let data = fs.lookup(inode::ROOT, "data").await.unwrap();
    let d = fs.lookup(data.ino, "d").await.unwrap();
    assert!(fs.lookup(d.ino, "nothing").await.is_err());
    fs.readdir(d.ino).await.unwrap();
    let before = fs.map_sizes();
    assert!(before.listings >= 2 && before.negative >= 1, "{before:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    fs.sweep_metadata(Duration::from_secs(30));
    let after = fs.map_sizes();
    assert_eq!((after.listings, after.negative), (1, 0), "only the root's listing stays: {after:?}");
}
