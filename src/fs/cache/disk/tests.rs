use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::super::{BlockCache, BlockKey, DiskSettings};
use super::{DiskCache, DiskCacheError, format};

const SCOPE: &str = "work\nhttp://127.0.0.1:9000";

fn scratch(tag: &str) -> PathBuf {
    let n = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
    std::env::temp_dir().join(format!("ssofs-disk-{tag}-{}-{n}", std::process::id())).join("blocks")
}

fn settings(dir: &std::path::Path, limit: u64) -> DiskSettings {
    DiskSettings { dir: dir.to_path_buf(), limit, scope: SCOPE.into() }
}

fn key(block: u64) -> BlockKey {
    BlockKey { identity: 1000, bucket: "b".into(), key: "data/k".into(), etag: "\"e1\"".into(), block }
}

fn block(b: u64) -> Bytes {
    Bytes::from(vec![b as u8; 20_000])
}

/// A cache with `blocks` written and closed (dropping it waits for the writer).
fn written(dir: &std::path::Path, blocks: u64) {
    let c = DiskCache::open(&settings(dir, 1 << 20)).unwrap();
    for b in 0..blocks {
        c.insert(key(b), block(b));
    }
}

fn file_of(dir: &std::path::Path, key: &BlockKey) -> PathBuf {
    dir.join(format::file_name(&format::name(SCOPE, key), format::SUFFIX))
}

#[test]
fn blocks_survive_a_remount_and_only_for_the_same_version_identity_and_scope() {
    let dir = scratch("persist");
    written(&dir, 3);
    let c = DiskCache::open(&settings(&dir, 1 << 20)).unwrap();
    assert!(c.contains(&key(1)));
    assert_eq!(c.get(&key(1)).unwrap(), block(1), "read back after a reopen");
    assert!(c.bytes() > 60_000 && c.bytes() < 3 * (20_000 + format::MAX_HEADER), "{}", c.bytes());
    assert!(c.get(&BlockKey { etag: "\"e2\"".into(), ..key(1) }).is_none(), "a new version");
    assert!(c.get(&BlockKey { identity: 1001, ..key(1) }).is_none(), "another identity");
    drop(c);
    let other_profile =
        DiskCache::open(&DiskSettings { scope: "home\nhttp://127.0.0.1:9000".into(), ..settings(&dir, 1 << 20) })
            .unwrap();
    assert!(other_profile.get(&key(1)).is_none(), "another profile on the same cache_dir");
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    let mode = std::fs::metadata(file_of(&dir, &key(1))).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_block_without_an_etag_is_never_stored() {
    let dir = scratch("noetag");
    let c = DiskCache::open(&settings(&dir, 1 << 20)).unwrap();
    let unknown = BlockKey { etag: "".into(), ..key(0) };
    c.insert(unknown.clone(), block(0));
    drop(c);
    let c = DiskCache::open(&settings(&dir, 1 << 20)).unwrap();
    assert!(c.get(&unknown).is_none());
    assert_eq!(c.bytes(), 0);
}

#[test]
fn a_torn_block_is_never_served_and_is_removed() {
    let dir = scratch("torn");
    written(&dir, 2);
    // A crash after part of the data reached the disk, then a rename that did (or a full disk).
    let path = file_of(&dir, &key(0));
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 300).unwrap();
    let c = DiskCache::open(&settings(&dir, 1 << 20)).unwrap();
    assert!(c.get(&key(0)).is_none(), "a short block file is not served");
    assert!(!path.exists(), "and is removed");
    assert!(!c.contains(&key(0)));
    assert_eq!(c.get(&key(1)).unwrap(), block(1), "the whole one still is");
}

#[test]
fn a_block_whose_checksum_does_not_match_is_dropped() {
    let dir = scratch("crc");
    written(&dir, 1);
    let path = file_of(&dir, &key(0));
    let mut bytes = std::fs::read(&path).unwrap();
    *bytes.last_mut().unwrap() ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let c = DiskCache::open(&settings(&dir, 1 << 20)).unwrap();
    assert!(c.get(&key(0)).is_none());
    assert!(!path.exists());
    // The next read fetches it again and stores it anew.
    c.insert(key(0), block(0));
    drop(c);
    assert_eq!(DiskCache::open(&settings(&dir, 1 << 20)).unwrap().get(&key(0)).unwrap(), block(0));
}

#[test]
fn a_lowered_limit_is_enforced_at_open_least_recently_used_first() {
    let dir = scratch("limit");
    written(&dir, 5);
    // Blocks 0..5 used in that order, then 0 again: 1 and 2 are the least recently used.
    let base = SystemTime::now() - Duration::from_secs(600);
    for (i, b) in [1, 2, 3, 4, 0].into_iter().enumerate() {
        let f = std::fs::File::options().write(true).open(file_of(&dir, &key(b))).unwrap();
        f.set_modified(base + Duration::from_secs(i as u64)).unwrap();
    }
    let one = std::fs::metadata(file_of(&dir, &key(0))).unwrap().len();
    let c = DiskCache::open(&settings(&dir, 3 * one + one / 2)).unwrap();
    assert_eq!(c.bytes(), 3 * one);
    let on_disk = std::fs::read_dir(&dir).unwrap().count() - 1; // the lock file
    assert_eq!(on_disk, 3);
    assert!(!file_of(&dir, &key(1)).exists() && !file_of(&dir, &key(2)).exists());
    for b in [3, 4, 0] {
        assert_eq!(c.get(&key(b)).unwrap(), block(b));
    }
    let used = std::fs::metadata(file_of(&dir, &key(0))).unwrap().modified().unwrap();
    assert!(used > base + Duration::from_secs(60), "a hit marks the block used for the next mount's order");
    // And while running: a new block pushes out the least recently used (3 now).
    c.insert(key(7), block(7));
    drop(c);
    assert!(!file_of(&dir, &key(3)).exists());
    assert!(file_of(&dir, &key(7)).exists());
}

#[test]
fn garbage_left_in_the_directory_is_removed_at_open() {
    let dir = scratch("garbage");
    written(&dir, 1);
    let tmp = dir.join(format::file_name(&format::name(SCOPE, &key(5)), format::TMP_SUFFIX));
    std::fs::write(&tmp, b"half a block").unwrap();
    std::fs::write(dir.join("0123abcd"), b"unknown").unwrap();
    std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
    let outside = dir.parent().unwrap().join("precious");
    std::fs::write(&outside, b"keep me").unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
    std::os::unix::fs::symlink(dir.parent().unwrap(), dir.join("sub/up")).unwrap();
    let c = DiskCache::open(&settings(&dir, 1 << 20)).unwrap();
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 2, "only the block and the lock: {left:?}");
    assert_eq!(c.get(&key(0)).unwrap(), block(0));
    assert_eq!(std::fs::read(&outside).unwrap(), b"keep me", "links removed, never followed");
}

#[test]
fn a_symlink_in_place_of_a_block_is_refused() {
    let dir = scratch("symlink");
    written(&dir, 1);
    let c = DiskCache::open(&settings(&dir, 1 << 20)).unwrap();
    // Someone with access swaps the block for a link to a valid copy elsewhere.
    let path = file_of(&dir, &key(0));
    let copy = dir.parent().unwrap().join("copy");
    std::fs::copy(&path, &copy).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&copy, &path).unwrap();
    assert!(c.get(&key(0)).is_none(), "not followed");
    assert!(copy.exists(), "its target is left alone");
    // Nor is a cache directory others may enter used at all.
    drop(c);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = DiskCache::open(&settings(&dir, 1 << 20)).err().expect("refused");
    assert!(err.to_string().contains("chmod 700"), "{err}");
}

#[test]
fn a_second_mount_on_the_same_directory_gets_no_disk_cache() {
    let dir = scratch("lock");
    let first = DiskCache::open(&settings(&dir, 1 << 20)).unwrap();
    let err = DiskCache::open(&settings(&dir, 1 << 20)).err().expect("locked");
    assert!(matches!(err, DiskCacheError::InUse { .. }), "{err}");
    assert!(err.to_string().contains("own cache_dir"), "{err}");
    drop(first);
    DiskCache::open(&settings(&dir, 1 << 20)).unwrap();
}
