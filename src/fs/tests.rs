//! The filesystem against the in-memory object client.

use std::sync::Arc;
use std::time::Duration;

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

/// The filesystem against a reference model (files and explicit directories in a map), over random
/// operation sequences, as mountpoint-s3 does: after every step the listings and contents agree.
mod model {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;

    const FILES: [&str; 5] = ["a", "b", "d/a", "d/b", "e/c"];
    const DIRS: [&str; 2] = ["d", "e"];

    #[derive(Debug, Clone)]
    enum Op {
        Write(usize, Vec<u8>),
        Truncate(usize, u64),
        Unlink(usize),
        Rename(usize, usize),
        Mkdir(usize),
        Rmdir(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..FILES.len(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(f, d)| Op::Write(f, d)),
            (0..FILES.len(), 0u64..80).prop_map(|(f, n)| Op::Truncate(f, n)),
            (0..FILES.len()).prop_map(Op::Unlink),
            (0..FILES.len(), 0..FILES.len()).prop_map(|(a, b)| Op::Rename(a, b)),
            (0..DIRS.len()).prop_map(Op::Mkdir),
            (0..DIRS.len()).prop_map(Op::Rmdir),
        ]
    }

    #[derive(Default, Debug)]
    struct Model {
        files: BTreeMap<String, Vec<u8>>,
        markers: BTreeSet<String>,
    }

    impl Model {
        fn dir_exists(&self, d: &str) -> bool {
            self.markers.contains(d) || self.files.keys().any(|f| f.starts_with(&format!("{d}/")))
        }

        fn parent_ok(&self, path: &str) -> bool {
            match path.rsplit_once('/') {
                Some((d, _)) => self.dir_exists(d),
                None => true,
            }
        }

        /// Applies an op; false when the filesystem must refuse it.
        fn apply(&mut self, op: &Op) -> bool {
            match op {
                Op::Write(f, data) => {
                    let p = FILES[*f];
                    if !self.parent_ok(p) {
                        return false;
                    }
                    self.files.insert(p.into(), data.clone());
                    true
                }
                Op::Truncate(f, n) => match self.files.get_mut(FILES[*f]) {
                    Some(body) => {
                        body.resize(*n as usize, 0);
                        true
                    }
                    None => false,
                },
                Op::Unlink(f) => self.files.remove(FILES[*f]).is_some(),
                Op::Rename(a, b) => {
                    let (from, to) = (FILES[*a], FILES[*b]);
                    if from == to || !self.files.contains_key(from) || !self.parent_ok(to) {
                        return false;
                    }
                    let body = self.files.remove(from).expect("checked");
                    self.files.insert(to.into(), body);
                    true
                }
                Op::Mkdir(d) => {
                    let d = DIRS[*d];
                    if self.dir_exists(d) {
                        return false;
                    }
                    self.markers.insert(d.into());
                    true
                }
                Op::Rmdir(d) => {
                    let d = DIRS[*d];
                    if !self.dir_exists(d) || self.files.keys().any(|f| f.starts_with(&format!("{d}/"))) {
                        return false;
                    }
                    self.markers.remove(d);
                    true
                }
            }
        }

        fn listing(&self, dir: &str) -> BTreeSet<String> {
            let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
            let mut out = BTreeSet::new();
            for f in self.files.keys().filter(|f| f.starts_with(&prefix)) {
                out.insert(f[prefix.len()..].split('/').next().unwrap_or_default().to_string());
            }
            if dir.is_empty() {
                out.extend(self.markers.iter().cloned());
            }
            out
        }
    }

    async fn dir_ino(fs: &Fs, dir: &str) -> FsResult<u64> {
        let mut parts = vec!["data"];
        parts.extend(dir.split('/').filter(|p| !p.is_empty()));
        Ok(path(fs, &parts).await?.ino)
    }

    async fn run(fs: &Fs, op: &Op) -> FsResult<()> {
        let split = |p: &str| match p.rsplit_once('/') {
            Some((d, n)) => (d.to_string(), n.to_string()),
            None => (String::new(), p.to_string()),
        };
        match op {
            Op::Write(f, data) => {
                let (d, n) = split(FILES[*f]);
                let parent = dir_ino(fs, &d).await?;
                let (_, fh) = fs.create(parent, &n, OpenMode::WRITE, None).await?;
                fs.write(fh, 0, data).await?;
                fs.release(fh).await
            }
            Op::Truncate(f, len) => {
                let (d, n) = split(FILES[*f]);
                let parent = dir_ino(fs, &d).await?;
                let st = fs.lookup(parent, &n).await?;
                fs.set_size(st.ino, None, *len).await.map(|_| ())
            }
            Op::Unlink(f) => {
                let (d, n) = split(FILES[*f]);
                fs.unlink(dir_ino(fs, &d).await?, &n).await
            }
            Op::Rename(a, b) => {
                if a == b {
                    return Err(FsError::Exists);
                }
                let ((da, na), (db, nb)) = (split(FILES[*a]), split(FILES[*b]));
                let (pa, pb) = (dir_ino(fs, &da).await?, dir_ino(fs, &db).await?);
                fs.rename(pa, &na, pb, &nb, RenameMode::Replace).await
            }
            Op::Mkdir(d) => {
                let parent = dir_ino(fs, "").await?;
                if fs.lookup(parent, DIRS[*d]).await.is_ok() {
                    return Err(FsError::Exists);
                }
                fs.mkdir(parent, DIRS[*d]).await.map(|_| ())
            }
            Op::Rmdir(d) => fs.rmdir(dir_ino(fs, "").await?, DIRS[*d]).await,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn filesystem_matches_the_model(ops in proptest::collection::vec(op(), 1..25)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let (_, fs) = setup("model");
                let mut model = Model::default();
                for op in &ops {
                    let expected = model.apply(op);
                    let got = run(&fs, op).await;
                    prop_assert_eq!(got.is_ok(), expected, "{:?} gave {:?}; model {:?}", op, got, model);
                    for dir in ["", "d", "e"] {
                        let want = model.listing(dir);
                        let have: BTreeSet<String> = match dir_ino(&fs, dir).await {
                            Ok(ino) => fs.readdir(ino).await.unwrap().into_iter().map(|e| e.name).collect(),
                            Err(_) => BTreeSet::new(),
                        };
                        prop_assert_eq!(&have, &want, "listing of {:?} after {:?}", dir, op);
                    }
                    for (p, body) in &model.files {
                        let mut parts = vec!["data"];
                        parts.extend(p.split('/'));
                        let st = path(&fs, &parts).await.unwrap();
                        prop_assert_eq!(&read_all(&fs, st.ino).await, body, "content of {}", p);
                    }
                }
                Ok(())
            })?;
        }
    }
}

/// Servers that refuse CopyObject of a `dir/` marker must not fail the `mv` of a directory made by
/// mkdir: markers are made again with an empty PUT.
#[tokio::test]
async fn a_directory_made_by_mkdir_is_renamed_where_marker_copies_are_refused() {
    let (c, fs) = setup("marker-mv");
    c.refuse_marker_copies();
    let data = path(&fs, &["data"]).await.unwrap();
    let d = fs.mkdir(data.ino, "made").await.unwrap();
    fs.mkdir(d.ino, "inner").await.unwrap();
    let (_, fh) = fs.create(d.ino, "f.txt", OpenMode::WRITE, None).await.unwrap();
    fs.write(fh, 0, b"x").await.unwrap();
    fs.release(fh).await.unwrap();
    fs.rename(data.ino, "made", data.ino, "moved", RenameMode::Replace).await.unwrap();
    let keys = c.keys("data");
    assert!(keys.contains(&"moved/".to_string()) && keys.contains(&"moved/inner/".to_string()), "{keys:?}");
    assert_eq!(c.object("data", "moved/f.txt").unwrap().as_ref(), b"x");
    assert!(!keys.iter().any(|k| k.starts_with("made/")), "{keys:?}");
}

/// The reference model for several handles on one file (what the kernel does on a local disk):
/// writers and appenders share one content, a reader by name sees it at once, a file unlinked while
/// open keeps serving its handles and is never uploaded, changes behind the mount's back show when
/// no handle holds the file. Each case fails on one-staged-copy-per-handle (the old design).
mod handles_model {
    use proptest::prelude::*;

    use super::*;

    const SLOTS: usize = 3;

    #[derive(Debug, Clone)]
    enum Op {
        Open(usize, bool),
        Write(usize, u64, Vec<u8>),
        ReadByName,
        ReadHandle(usize),
        Close(usize),
        Unlink,
        Remote(Vec<u8>),
    }

    fn op() -> impl Strategy<Value = Op> {
        let data = || proptest::collection::vec(any::<u8>(), 1..24);
        prop_oneof![
            (0..SLOTS, any::<bool>()).prop_map(|(s, a)| Op::Open(s, a)),
            (0..SLOTS, 0u64..48, data()).prop_map(|(s, o, d)| Op::Write(s, o, d)),
            Just(Op::ReadByName),
            (0..SLOTS).prop_map(Op::ReadHandle),
            (0..SLOTS).prop_map(Op::Close),
            Just(Op::Unlink),
            data().prop_map(Op::Remote),
        ]
    }

    #[derive(Debug, Default)]
    struct Model {
        /// What the name `f` shows (None: no such file).
        named: Option<Vec<u8>>,
        /// The content every open handle shares.
        open: Option<Vec<u8>>,
        unlinked: bool,
        slots: [Option<bool>; SLOTS],
    }

    impl Model {
        fn handles(&self) -> usize {
            self.slots.iter().filter(|s| s.is_some()).count()
        }
    }

    fn fs_without_ttls() -> (Arc<MockObjectClient>, Fs) {
        let client = Arc::new(MockObjectClient::new());
        client.add_bucket("data");
        let dir = std::env::temp_dir().join(format!("ssofs-fs-handles-model-{}", std::process::id()));
        let mut cfg = FsConfig::new(dir);
        (cfg.attr_ttl, cfg.dir_ttl, cfg.negative_ttl) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        (client.clone(), Fs::new(client, cfg))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
        #[test]
        fn several_handles_on_one_file_match_the_model(ops in proptest::collection::vec(op(), 1..30)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let (c, fs) = fs_without_ttls();
                let data = path(&fs, &["data"]).await.unwrap().ino;
                let mut m = Model::default();
                let mut fhs: [Option<u64>; SLOTS] = [None; SLOTS];
                for op in &ops {
                    match op {
                        Op::Open(s, append) => {
                            if m.slots[*s].is_some() || (m.unlinked && m.handles() > 0) {
                                continue;
                            }
                            let fh = match fs.lookup(data, "f").await {
                                Ok(st) => fs.open(st.ino, OpenMode { append: *append, ..OpenMode::WRITE }).await.unwrap(),
                                Err(_) => fs.create(data, "f", OpenMode { append: *append, ..OpenMode::WRITE }, None).await.unwrap().1,
                            };
                            fhs[*s] = Some(fh);
                            if m.handles() == 0 {
                                m.open = Some(m.named.clone().unwrap_or_default());
                                m.named = m.open.clone();
                            }
                            m.slots[*s] = Some(*append);
                        }
                        Op::Write(s, off, bytes) => {
                            let (Some(append), Some(fh)) = (m.slots[*s], fhs[*s]) else { continue };
                            fs.write(fh, *off, bytes).await.unwrap();
                            let content = m.open.as_mut().unwrap();
                            let at = if append { content.len() } else { *off as usize };
                            if content.len() < at + bytes.len() {
                                content.resize(at + bytes.len(), 0);
                            }
                            content[at..at + bytes.len()].copy_from_slice(bytes);
                            if !m.unlinked {
                                m.named = m.open.clone();
                            }
                        }
                        Op::ReadByName => match (&m.named, fs.lookup(data, "f").await) {
                            (None, got) => prop_assert!(got.is_err(), "{:?}: f should not exist", op),
                            (Some(want), Ok(st)) => {
                                prop_assert_eq!(&read_all(&fs, st.ino).await, want, "read by name after {:?}", ops);
                            }
                            (Some(_), Err(e)) => prop_assert!(false, "f should exist: {:?}", e),
                        },
                        Op::ReadHandle(s) => {
                            let Some(fh) = fhs[*s] else { continue };
                            let got = fs.read(fh, 0, 1 << 16).await.unwrap();
                            prop_assert_eq!(&got, m.open.as_ref().unwrap(), "read through handle {}", s);
                        }
                        Op::Close(s) => {
                            let Some(fh) = fhs[*s].take() else { continue };
                            fs.release(fh).await.unwrap();
                            m.slots[*s] = None;
                            if m.handles() == 0 {
                                if !m.unlinked {
                                    m.named = m.open.take();
                                }
                                m.open = None;
                                m.unlinked = false;
                            }
                        }
                        Op::Unlink => {
                            let got = fs.unlink(data, "f").await;
                            prop_assert_eq!(got.is_ok(), m.named.is_some(), "unlink of {:?}", m.named);
                            if m.named.take().is_some() && m.handles() > 0 {
                                m.unlinked = true;
                            }
                        }
                        Op::Remote(bytes) => {
                            if m.handles() > 0 {
                                continue;
                            }
                            c.insert("data", "f", bytes.clone());
                            m.named = Some(bytes.clone());
                        }
                    }
                    if m.handles() == 0 {
                        let stored = c.object("data", "f").map(|b| b.to_vec());
                        prop_assert_eq!(&stored, &m.named, "what S3 holds after {:?}", op);
                    }
                }
                Ok(())
            })?;
        }
    }
}
