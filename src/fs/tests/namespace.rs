//! mkdir, unlink, rmdir and rename: what S3 can and cannot do, and the errno each refusal gets.

use super::*;
use std::collections::BTreeMap;

use crate::object::ListPage;
use crate::object::failing::FailingClient;

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

#[tokio::test]
async fn rename_noreplace_refuses_an_existing_target_and_keeps_both() {
    let (c, fs) = setup("noreplace");
    c.insert("data", "a", "A");
    c.insert("data", "b", "B");
    let data = path(&fs, &["data"]).await.unwrap();
    let e = fs.rename(data.ino, "a", data.ino, "b", RenameMode::NoReplace).await.unwrap_err();
    assert_eq!(e.errno(), libc::EEXIST);
    assert_eq!(
        (c.object("data", "a").unwrap().as_ref(), c.object("data", "b").unwrap().as_ref()),
        (&b"A"[..], &b"B"[..])
    );
    // A free target is renamed as usual.
    fs.rename(data.ino, "a", data.ino, "c", RenameMode::NoReplace).await.unwrap();
    assert_eq!(c.object("data", "c").unwrap().as_ref(), b"A");
    assert!(c.object("data", "a").is_none());
}

#[tokio::test]
async fn rename_exchange_is_refused_with_einval_and_changes_nothing() {
    let (c, fs) = setup("exchange");
    c.insert("data", "a", "A");
    c.insert("data", "b", "B");
    let data = path(&fs, &["data"]).await.unwrap();
    let e = fs.rename(data.ino, "a", data.ino, "b", RenameMode::Exchange).await.unwrap_err();
    assert_eq!(e.errno(), libc::EINVAL);
    assert_eq!(c.object("data", "b").unwrap().as_ref(), b"B");
    assert_eq!(c.calls_of("CopyObject"), 0);
}

#[tokio::test]
async fn rename_across_buckets_is_exdev_so_mv_copies_instead() {
    let (c, fs) = setup("exdev");
    c.insert("data", "a", "A");
    let data = path(&fs, &["data"]).await.unwrap();
    let other = path(&fs, &["other"]).await.unwrap();
    let e = fs.rename(data.ino, "a", other.ino, "a", RenameMode::Replace).await.unwrap_err();
    assert_eq!(e.errno(), libc::EXDEV);
    assert!(c.object("data", "a").is_some());
}

#[tokio::test]
async fn a_read_of_an_object_changed_since_open_is_estale() {
    let (c, fs) = setup("estale");
    c.insert("data", "f", vec![1u8; 4 << 20]);
    let f = path(&fs, &["data", "f"]).await.unwrap();
    let fh = fs.open(f.ino, OpenMode::READ).await.unwrap();
    c.insert("data", "f", vec![2u8; 4 << 20]);
    // Past the first read-ahead window, so the read goes to S3 with the old ETag.
    let e = fs.read(fh, 3 << 20, 4096).await.unwrap_err();
    assert_eq!(e.errno(), libc::ESTALE, "{e:?}");
}

/// A server that answers a listing with keys outside the prefix asked for (it ignores `prefix`)
/// must not panic the directory rename, nor get those keys copied or deleted.
#[tokio::test]
async fn a_directory_rename_ignores_keys_outside_the_prefix_the_server_returns() {
    let mock = MockObjectClient::with_page_size(100);
    mock.add_bucket("data");
    mock.insert("data", "d/1", "one");
    mock.insert("data", "elsewhere", "keep me");
    let client = Arc::new(FailingClient::new(mock, |_, _| None).with_listings(|prefix, mut page: ListPage| {
        if prefix == "d/" {
            page.objects.push(ObjectInfo { key: "elsewhere".into(), ..page.objects[0].clone() });
            page.objects.push(ObjectInfo { key: "x".into(), ..page.objects[0].clone() });
        }
        page
    }));
    let dir = std::env::temp_dir().join(format!("ssofs-fs-hostile-list-{}", std::process::id()));
    let fs = Fs::new(client.clone(), FsConfig::new(dir));
    let data = path(&fs, &["data"]).await.unwrap();
    fs.rename(data.ino, "d", data.ino, "e", RenameMode::Replace).await.unwrap();
    let keys = client.inner().keys("data");
    assert!(keys.contains(&"e/1".to_string()) && keys.contains(&"elsewhere".to_string()), "{keys:?}");
    assert!(!keys.iter().any(|k| k.starts_with("d/")), "{keys:?}");
}

/// `mkdir d && for f in …; do echo > d/$f; done`: the kernel looks up each new name before creating
/// it. A directory this mount just made is known to be empty, so those lookups need no request:
/// each file costs its PUT and nothing else (the bench measured 3 requests per file: a LIST and a
/// HEAD for the lookup, then the PUT).
#[tokio::test]
async fn files_created_in_a_directory_just_made_cost_one_put_each() {
    let (c, fs) = setup("mkdir-then-create");
    let data = path(&fs, &["data"]).await.unwrap();
    let d = fs.mkdir(data.ino, "fresh").await.unwrap();
    let before = c.calls.lock().unwrap().clone();
    for i in 0..20 {
        let name = format!("f{i}");
        assert!(matches!(fs.lookup(d.ino, &name).await, Err(FsError::NotFound)));
        write_file(&fs, d.ino, &name, b"x").await;
        assert_eq!(fs.lookup(d.ino, &name).await.unwrap().size, 1, "{name} is there after its upload");
    }
    let after = c.calls.lock().unwrap().clone();
    let made: BTreeMap<_, _> =
        after.iter().map(|(op, n)| (*op, n - before.get(op).unwrap_or(&0))).filter(|(_, n)| *n > 0).collect();
    assert_eq!(made, BTreeMap::from([("PutObject", 20)]), "requests for 20 created files");
    let names: Vec<String> = fs.readdir(d.ino).await.unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(names.len(), 20, "{names:?}");
}
