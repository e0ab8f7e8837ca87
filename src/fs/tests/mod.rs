//! The filesystem against the in-memory object client: data path and metadata here; namespace
//! changes in `namespace`; reference-model property tests in `model` and `handles_model`.

use std::sync::Arc;
use std::time::Duration;

use super::MountShared;
use super::handles::OpenMode;
use super::*;
use crate::object::mock::MockObjectClient;

fn setup(tag: &str) -> (Arc<MockObjectClient>, Fs) {
    let client = Arc::new(MockObjectClient::with_page_size(100));
    client.add_bucket("data");
    client.add_bucket("other");
    let dir = std::env::temp_dir().join(format!("ssofs-fs-{tag}-{}", std::process::id()));
    let fs = Fs::new(client.clone(), FsConfig::new(dir));
    (client, fs)
}

/// A filesystem that trusts nothing it saw: every lookup and listing asks the client again.
fn setup_without_ttls(tag: &str) -> (Arc<MockObjectClient>, Fs) {
    let client = Arc::new(MockObjectClient::with_page_size(100));
    client.add_bucket("data");
    let dir = std::env::temp_dir().join(format!("ssofs-fs-{tag}-{}", std::process::id()));
    let mut config = FsConfig::new(dir);
    (config.attr_ttl, config.dir_ttl, config.negative_ttl) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    (client.clone(), Fs::new(client, config))
}

async fn path(fs: &Fs, parts: &[&str]) -> FsResult<Stat> {
    let mut ino = inode::ROOT;
    let mut stat = fs.root_stat()?;
    for p in parts {
        stat = fs.lookup(ino, p).await?;
        ino = stat.ino;
    }
    Ok(stat)
}

async fn read_all(fs: &Fs, ino: u64) -> Vec<u8> {
    let fh = fs.open(ino, OpenMode::READ).await.unwrap();
    let mut out = Vec::new();
    loop {
        let chunk = fs.read(fh, out.len() as u64, 128 * 1024).await.unwrap();
        if chunk.is_empty() {
            break;
        }
        out.extend(chunk);
    }
    fs.release(fh).await.unwrap();
    out
}

async fn write_file(fs: &Fs, parent: u64, name: &str, body: &[u8]) -> u64 {
    let (stat, fh) = fs.create(parent, name, OpenMode::WRITE, None).await.unwrap();
    if !body.is_empty() {
        fs.write(fh, 0, body).await.unwrap();
    }
    fs.release(fh).await.unwrap();
    stat.ino
}

#[tokio::test]
async fn buckets_prefixes_objects_and_markers() {
    let (c, fs) = setup("tree");
    for k in ["a.txt", "d/1.txt", "d/sub/2.txt", "empty/", "x", "x/inner", "bad//name", "./dot", "ok"] {
        c.insert("data", k, "body");
    }
    let names = |v: Vec<DirEntry>| v.into_iter().map(|e| (e.name, e.stat.is_dir)).collect::<Vec<_>>();
    let root = names(fs.readdir(inode::ROOT).await.unwrap());
    assert_eq!(root, [("data".to_string(), true), ("other".to_string(), true)]);
    let data = path(&fs, &["data"]).await.unwrap();
    let listing = names(fs.readdir(data.ino).await.unwrap());
    assert!(listing.contains(&("d".into(), true)));
    assert!(listing.contains(&("empty".into(), true)), "directory marker shows as a directory");
    assert!(listing.contains(&("x".into(), true)), "a key that is also a prefix is a directory");
    assert!(listing.contains(&(format!("x{}", names::SHADOWED_OBJECT_SUFFIX), false)), "...with the object reachable");
    assert!(!listing.iter().any(|(n, _)| n.is_empty() || n == "." || n == ".."));
    let empty = path(&fs, &["data", "empty"]).await.unwrap();
    assert!(fs.readdir(empty.ino).await.unwrap().is_empty(), "the marker itself is not an entry");
    let shadowed = path(&fs, &["data", &format!("x{}", names::SHADOWED_OBJECT_SUFFIX)]).await.unwrap();
    assert_eq!(read_all(&fs, shadowed.ino).await, b"body");
    let deep = path(&fs, &["data", "d", "sub", "2.txt"]).await.unwrap();
    assert_eq!(deep.size, 4);
    assert!(matches!(path(&fs, &["data", "nope"]).await, Err(FsError::NotFound)));
    assert!(matches!(path(&fs, &["finance"]).await, Err(FsError::NotFound)));
}

#[tokio::test]
async fn lookups_after_a_listing_read_each_files_metadata_once() {
    let (c, fs) = setup("cost");
    for i in 0..1000 {
        c.insert("data", &format!("many/f{i:04}"), "x");
    }
    let many = path(&fs, &["data", "many"]).await.unwrap();
    let before = c.calls_of("ListObjectsV2");
    let heads = c.calls_of("HeadObject");
    let entries = fs.readdir(many.ino).await.unwrap();
    assert_eq!(entries.len(), 1000);
    // The first lookup of each file reads its metadata (mode, mtime: a listing has none), once.
    for round in 0..2 {
        for e in &entries {
            fs.lookup(many.ino, &e.name).await.unwrap();
            fs.getattr(e.stat.ino).await.unwrap();
        }
        assert_eq!(c.calls_of("HeadObject") - heads, 1000, "one HEAD per file, in round {round} as in the first");
    }
    assert_eq!(c.calls_of("ListObjectsV2") - before, 10, "1000 entries at 100 per page");

    // With metadata off (-o metadata=off), a listing is all a lookup needs.
    let dir = std::env::temp_dir().join(format!("ssofs-fs-nometa-{}", std::process::id()));
    let mut cfg = FsConfig::new(dir);
    cfg.metadata = false;
    let fs = Fs::new(c.clone(), cfg);
    let many = path(&fs, &["data", "many"]).await.unwrap();
    let heads = c.calls_of("HeadObject");
    for e in &fs.readdir(many.ino).await.unwrap() {
        fs.lookup(many.ino, &e.name).await.unwrap();
        fs.getattr(e.stat.ino).await.unwrap();
    }
    assert_eq!(c.calls_of("HeadObject"), heads, "no request per entry");
}

#[tokio::test]
async fn reads_ranges_through_the_cache_with_read_ahead() {
    let (c, fs) = setup("read");
    let body: Vec<u8> = (0..5 * read::BLOCK as usize + 123).map(|i| (i % 251) as u8).collect();
    c.insert("data", "big.bin", body.clone());
    let f = path(&fs, &["data", "big.bin"]).await.unwrap();
    assert_eq!(read_all(&fs, f.ino).await, body);
    let gets = c.calls_of("GetObject");
    assert!(gets < 6, "read-ahead fetched parts, not one GET per read: {gets}");
    // A second read is served from the block cache.
    assert_eq!(read_all(&fs, f.ino).await, body);
    assert_eq!(c.calls_of("GetObject"), gets);
    // Random access inside the object.
    let fh = fs.open(f.ino, OpenMode::READ).await.unwrap();
    let at = 3 * read::BLOCK + 17;
    assert_eq!(fs.read(fh, at, 100).await.unwrap(), &body[at as usize..at as usize + 100]);
    assert!(fs.read(fh, body.len() as u64 + 10, 100).await.unwrap().is_empty());
    fs.release(fh).await.unwrap();
}

#[tokio::test]
async fn writes_are_uploaded_on_close_and_visible_at_once() {
    let (c, fs) = setup("write");
    let data = path(&fs, &["data"]).await.unwrap();
    fs.readdir(data.ino).await.unwrap(); // a cached listing that must learn about the new file
    for (name, body) in [("zero", vec![]), ("one", vec![7u8]), ("many", vec![3u8; 3 << 20])] {
        let ino = write_file(&fs, data.ino, name, &body).await;
        assert_eq!(c.object("data", name).unwrap().as_ref(), body.as_slice(), "{name} uploaded");
        assert_eq!(read_all(&fs, ino).await, body);
    }
    let listed: Vec<String> = fs.readdir(data.ino).await.unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(listed, ["many", "one", "zero"]);
}

#[tokio::test]
async fn random_write_append_and_truncate_an_existing_object() {
    let (c, fs) = setup("modify");
    c.insert("data", "f", "hello world");
    let f = path(&fs, &["data", "f"]).await.unwrap();
    let fh = fs.open(f.ino, OpenMode::WRITE).await.unwrap();
    fs.write(fh, 6, b"WORLD").await.unwrap();
    fs.write(fh, 11, b"!!").await.unwrap();
    fs.release(fh).await.unwrap();
    assert_eq!(c.object("data", "f").unwrap().as_ref(), b"hello WORLD!!");
    let stat = fs.set_size(f.ino, None, 5).await.unwrap();
    assert_eq!(stat.size, 5);
    assert_eq!(c.object("data", "f").unwrap().as_ref(), b"hello");
    fs.set_size(f.ino, None, 0).await.unwrap();
    assert_eq!(c.object("data", "f").unwrap().len(), 0);
}

#[tokio::test]
async fn directories_unlink_and_rename() {
    let (c, fs) = setup("ns");
    let data = path(&fs, &["data"]).await.unwrap();
    let d = fs.mkdir(data.ino, "new").await.unwrap();
    assert!(c.object("data", "new/").is_some(), "marker object");
    write_file(&fs, d.ino, "inside.txt", b"in").await;
    assert!(matches!(fs.rmdir(data.ino, "new").await, Err(FsError::NotEmpty)));
    fs.rename(d.ino, "inside.txt", d.ino, "renamed.txt", RenameMode::Replace).await.unwrap();
    assert_eq!(c.keys("data"), ["new/", "new/renamed.txt"]);
    fs.rename(data.ino, "new", data.ino, "moved", RenameMode::Replace).await.unwrap();
    assert_eq!(c.keys("data"), ["moved/", "moved/renamed.txt"]);
    let moved = path(&fs, &["data", "moved"]).await.unwrap();
    fs.unlink(moved.ino, "renamed.txt").await.unwrap();
    fs.rmdir(data.ino, "moved").await.unwrap();
    assert!(c.keys("data").is_empty());
    assert!(matches!(path(&fs, &["data", "moved"]).await, Err(FsError::NotFound)));
}

#[tokio::test]
async fn denied_writes_keep_the_staged_file_and_say_so() {
    let (c, fs) = setup("denied");
    c.deny_writes("data");
    let data = path(&fs, &["data"]).await.unwrap();
    let (_, fh) = fs.create(data.ino, "nope.txt", OpenMode::WRITE, None).await.unwrap();
    fs.write(fh, 0, b"precious").await.unwrap();
    let err = fs.release(fh).await.unwrap_err();
    assert_eq!(err.errno(), libc::EACCES);
    // Refused by the policy: kept in refused/ for `recover --export`, not a crash leftover.
    let refused_dir = fs.config().staging_dir.join("refused");
    let staged: Vec<_> =
        std::fs::read_dir(&refused_dir).unwrap().filter_map(|e| std::fs::read(e.unwrap().path()).ok()).collect();
    assert!(staged.iter().any(|b| b == b"precious"), "the written bytes are still on disk");
    assert_eq!(crate::fs::staging::refused(&fs.config().staging_dir).len(), 1);
    assert!(crate::recover::report(&fs.config().staging_dir).is_none(), "not reported at every mount");
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(&refused_dir).unwrap() {
        let mode = entry.unwrap().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "staged files are readable by their owner only");
    }
    assert!(matches!(fs.mkdir(data.ino, "d").await, Err(FsError::Access(_))));
}

#[tokio::test]
async fn writes_beyond_the_staging_quota_fail_with_enospc_and_free_it_when_uploaded() {
    let client = Arc::new(MockObjectClient::new());
    client.add_bucket("data");
    let dir = std::env::temp_dir().join(format!("ssofs-fs-quota-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = FsConfig::new(dir);
    cfg.staging_quota = Some(1000);
    let fs = Fs::new(client.clone(), cfg);
    let data = path(&fs, &["data"]).await.unwrap();
    let (_, a) = fs.create(data.ino, "a", OpenMode::WRITE, None).await.unwrap();
    fs.write(a, 0, &[1u8; 600]).await.unwrap();
    let (b_stat, b) = fs.create(data.ino, "b", OpenMode::WRITE, None).await.unwrap();
    let err = fs.write(b, 0, &[2u8; 600]).await.unwrap_err();
    assert_eq!(err.errno(), libc::ENOSPC, "{err}");
    // Rewriting what is already reserved costs nothing more.
    fs.write(a, 0, &[3u8; 600]).await.unwrap();
    let err = fs.set_size(b_stat.ino, Some(b), 2000).await.unwrap_err();
    assert_eq!(err.errno(), libc::ENOSPC, "{err}");
    fs.release(a).await.unwrap();
    fs.write(b, 0, &[2u8; 600]).await.unwrap();
    fs.release(b).await.unwrap();
    assert_eq!(client.object("data", "b").unwrap().len(), 600);
}

#[tokio::test]
async fn changes_behind_the_mounts_back_show_after_the_ttl() {
    let client = Arc::new(MockObjectClient::new());
    client.add_bucket("data");
    client.insert("data", "f", "v1");
    let mut cfg = FsConfig::new(std::env::temp_dir().join(format!("ssofs-fs-ttl-{}", std::process::id())));
    cfg.attr_ttl = Duration::from_millis(100);
    cfg.dir_ttl = Duration::from_millis(100);
    let fs = Fs::new(client.clone(), cfg);
    let f = path(&fs, &["data", "f"]).await.unwrap();
    assert_eq!(read_all(&fs, f.ino).await, b"v1");
    client.insert("data", "f", "version 2");
    tokio::time::sleep(Duration::from_millis(150)).await;
    let f = path(&fs, &["data", "f"]).await.unwrap();
    assert_eq!(f.size, 9);
    assert_eq!(read_all(&fs, f.ino).await, b"version 2", "new ETag, no stale blocks");
}

#[tokio::test]
async fn read_only_mount_refuses_writes() {
    let client = Arc::new(MockObjectClient::new());
    client.add_bucket("data");
    let mut cfg = FsConfig::new(std::env::temp_dir().join("ssofs-fs-ro"));
    cfg.read_only = true;
    let fs = Fs::new(client, cfg);
    let data = path(&fs, &["data"]).await.unwrap();
    assert_eq!(fs.create(data.ino, "x", OpenMode::WRITE, None).await.unwrap_err().errno(), libc::EROFS);
    assert_eq!(fs.mkdir(data.ino, "x").await.unwrap_err().errno(), libc::EROFS);
}

mod blocks_as_they_arrive;
mod handles_model;
mod metadata_bounds;
mod model;
mod namespace;
mod prefetch;
mod random_reads;
mod reads_without_waiting;
mod streaming;

/// A multi-user mount's identities share one block cache (one `cache_size` for the mount), and
/// each is only ever served blocks its own credentials fetched.
#[tokio::test]
async fn identities_share_one_cache_budget_and_never_each_others_blocks() {
    let client = Arc::new(MockObjectClient::new());
    client.add_bucket("data");
    client.insert("data", "big", vec![7u8; 6 << 20]);
    client.insert("data", "small", vec![1u8; 100_000]);
    let mut config = FsConfig::new(std::env::temp_dir().join(format!("ssofs-fs-shared-{}", std::process::id())));
    config.cache_size = 4 << 20;
    let shared = MountShared::new(&config);
    let users: Vec<Fs> =
        (1000..1003).map(|uid| Fs::with_shared(client.clone(), FsConfig { uid, ..config.clone() }, &shared)).collect();
    let gets = || client.calls_of("GetObject");
    let small = path(&users[0], &["data", "small"]).await.unwrap();
    read_all(&users[0], small.ino).await;
    let after_a = gets();
    read_all(&users[0], small.ino).await;
    assert_eq!(gets(), after_a, "A's own blocks are cached for A");
    let b = path(&users[1], &["data", "small"]).await.unwrap();
    read_all(&users[1], b.ino).await;
    assert!(gets() > after_a, "another identity fetches with its own credentials, never gets A's blocks");
    // The others read 12 MiB through the mount's one 4 MiB budget: A's blocks were evicted too
    // (with a cache per identity they would still be there, and the mount would hold 12 MiB).
    for fs in &users[1..] {
        let f = path(fs, &["data", "big"]).await.unwrap();
        assert_eq!(read_all(fs, f.ino).await.len(), 6 << 20);
        assert!(fs.block_cache_bytes() <= 4 << 20, "one budget for all: {}", fs.block_cache_bytes());
    }
    let before = gets();
    read_all(&users[0], small.ino).await;
    assert!(gets() > before, "A's blocks left the shared budget");
}
