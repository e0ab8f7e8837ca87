//! Files written in order are uploaded in parts while they are written; anything else (a write
//! out of order, a truncation into sent parts, a second writer, an unlink, a failed part) aborts
//! the multipart upload and close uploads the staged file whole, losing nothing.

use std::sync::Arc;
use std::time::Duration;

use super::{path, read_all};
use crate::fs::handles::OpenMode;
use crate::fs::{Fs, FsConfig};
use crate::object::ObjectError;
use crate::object::failing::{FailingClient, Fault, Op};
use crate::object::mock::MockObjectClient;

const PART: u64 = 5 << 20;
const MIB: usize = 1 << 20;

type Client = FailingClient<MockObjectClient>;

/// A filesystem streaming 5 MiB parts, over a mock that fails what `plan` says.
fn setup(tag: &str, plan: impl FnMut(Op, &str) -> Option<Fault> + Send + 'static) -> (Arc<Client>, Fs) {
    let mock = MockObjectClient::new();
    mock.add_bucket("data");
    let client = Arc::new(FailingClient::new(mock, plan));
    let dir = std::env::temp_dir().join(format!("ssofs-stream-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = FsConfig::new(dir);
    config.stream_part_size = PART;
    (client.clone(), Fs::new(client, config))
}

fn body(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2654435761).to_be_bytes()[0] ^ seed).collect()
}

/// Waits (on the runtime, so the upload tasks run) until `done` holds; fails after 20 s.
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..2000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("still not true after 20 s: {what}");
}

/// Creates `name` in the bucket and writes `data` in order, 1 MiB at a time; returns the handle.
async fn create_and_write(fs: &Fs, name: &str, data: &[u8]) -> (u64, u64) {
    let bucket = path(fs, &["data"]).await.unwrap();
    let (stat, fh) = fs.create(bucket.ino, name, OpenMode::WRITE, None).await.unwrap();
    for (i, chunk) in data.chunks(MIB).enumerate() {
        fs.write(fh, (i * MIB) as u64, chunk).await.unwrap();
    }
    (stat.ino, fh)
}

#[tokio::test]
async fn a_file_written_in_order_is_uploaded_in_parts_before_it_is_closed() {
    let (c, fs) = setup("in-order", |_, _| None);
    let data = body(12 * MIB + 321, 1);
    let (ino, fh) = create_and_write(&fs, "seq.bin", &data).await;
    let mock = c.inner();
    until("both whole parts uploaded before close", || mock.calls_of("UploadPart") == 2).await;
    assert!(mock.object("data", "seq.bin").is_none(), "not stored before close");
    fs.release(fh).await.unwrap();
    assert_eq!(mock.object("data", "seq.bin").unwrap().as_ref(), &data[..], "byte-exact after close");
    assert_eq!(mock.calls_of("CreateMultipartUpload"), 1);
    assert_eq!(mock.calls_of("UploadPart"), 3, "two whole parts while writing, the tail at close");
    assert_eq!(mock.calls_of("CompleteMultipartUpload"), 1);
    assert_eq!(mock.calls_of("PutObject"), 0, "the staged file was not uploaded again");
    assert_eq!(mock.open_uploads(), 0);
    assert_eq!(read_all(&fs, ino).await, data, "read back through the filesystem");
}

/// A write served on a FUSE thread (no runtime there) that would begin a stream is handed to the
/// runtime; the writes before and after it are served where they arrive.
#[tokio::test(flavor = "multi_thread")]
async fn the_write_that_begins_a_stream_is_served_on_the_runtime() {
    let (c, fs) = setup("fuse-thread", |_, _| None);
    let fs = Arc::new(fs);
    let bucket = path(&fs, &["data"]).await.unwrap();
    let (_, fh) = fs.create(bucket.ino, "threads.bin", OpenMode::WRITE, None).await.unwrap();
    let chunk = vec![9u8; MIB];
    let on_thread = {
        let (fs, chunk) = (fs.clone(), chunk.clone());
        std::thread::spawn(move || (0..5u64).map(|i| fs.write_now(fh, i * MIB as u64, &chunk).is_some()).collect())
    };
    let served: Vec<bool> = tokio::task::block_in_place(|| on_thread.join().unwrap());
    assert_eq!(served, [true, true, true, true, false], "the 5th MiB fills the first part: left to the runtime");
    fs.write(fh, 4 * MIB as u64, &chunk).await.unwrap();
    fs.write(fh, 5 * MIB as u64, &chunk).await.unwrap();
    until("the first part uploaded before close", || c.inner().calls_of("UploadPart") == 1).await;
    fs.release(fh).await.unwrap();
    assert_eq!(c.inner().object("data", "threads.bin").unwrap().len(), 6 * MIB);
}

/// Each way of breaking the order aborts the multipart upload at once (no parts left on the
/// server) and close uploads the staged file whole, with every write in it.
#[tokio::test]
async fn writes_out_of_order_truncation_a_second_writer_or_unlink_abort_the_stream() {
    for case in ["rewrite", "hole", "truncate", "second writer", "unlink"] {
        let (c, fs) = setup(&case.replace(' ', "-"), |_, _| None);
        let mut data = body(11 * MIB, 2);
        let (ino, fh) = create_and_write(&fs, "broken.bin", &data).await;
        let mock = c.inner();
        until("a part uploaded", || mock.calls_of("UploadPart") >= 1).await;
        match case {
            "rewrite" => {
                fs.write(fh, 100, b"patched").await.unwrap();
                data[100..107].copy_from_slice(b"patched");
            }
            "hole" => {
                fs.write(fh, data.len() as u64 + 10, b"x").await.unwrap();
                data.extend_from_slice(&[0; 10]);
                data.push(b'x');
            }
            "truncate" => {
                fs.set_size(ino, Some(fh), 3 * MIB as u64).await.unwrap();
                data.truncate(3 * MIB);
            }
            "second writer" => {
                let other = fs.open(ino, OpenMode::WRITE).await.unwrap();
                fs.release(other).await.unwrap();
            }
            _ => {
                let bucket = path(&fs, &["data"]).await.unwrap();
                fs.unlink(bucket.ino, "broken.bin").await.unwrap();
            }
        }
        until("the upload aborted", || mock.calls_of("AbortMultipartUpload") == 1).await;
        assert_eq!(mock.open_uploads(), 0, "{case}: no parts left on the server");
        fs.release(fh).await.unwrap();
        assert_eq!(mock.calls_of("CompleteMultipartUpload"), 0, "{case}");
        match case {
            "unlink" => assert!(mock.object("data", "broken.bin").is_none(), "an unlinked file is never uploaded"),
            _ => {
                assert!(mock.object("data", "broken.bin").unwrap() == data, "{case}: uploaded whole, every write in it")
            }
        }
    }
}

/// A part that fails (S3 down, after the client's retries) gives the stream up; close uploads the
/// staged file whole and the object is complete.
#[tokio::test]
async fn a_failed_part_falls_back_to_uploading_the_staged_file() {
    let mut parts = 0;
    let (c, fs) = setup("part-fails", move |op, _| {
        parts += (op == Op::UploadPart) as u32;
        (op == Op::UploadPart && parts == 2).then(|| Fault::Fail(ObjectError::Unavailable("connection refused".into())))
    });
    let data = body(16 * MIB, 3);
    let (_, fh) = create_and_write(&fs, "flaky.bin", &data).await;
    let mock = c.inner();
    until("the upload aborted after the failed part", || mock.calls_of("AbortMultipartUpload") == 1).await;
    fs.release(fh).await.unwrap();
    assert!(mock.object("data", "flaky.bin").unwrap() == data, "the whole file, from the staged copy");
    assert_eq!(mock.calls_of("PutObject"), 1, "uploaded whole at close");
    assert_eq!(mock.open_uploads(), 0);
}

/// When S3 stays down for the upload at close as well, close fails and the staged file keeps
/// every byte written, for the next close, fsync or `ssofs recover`.
#[tokio::test]
async fn a_failed_part_and_a_failed_close_keep_every_byte_staged() {
    let (c, fs) = setup("all-fail", |op, _| {
        matches!(op, Op::UploadPart | Op::PutFile).then(|| Fault::Fail(ObjectError::Unavailable("down".into())))
    });
    let data = body(11 * MIB, 4);
    let (_, fh) = create_and_write(&fs, "kept.bin", &data).await;
    until("the upload aborted", || c.inner().calls_of("AbortMultipartUpload") == 1).await;
    let err = fs.release(fh).await.unwrap_err();
    assert_eq!(err.errno(), libc::EIO, "{err}");
    assert!(c.inner().object("data", "kept.bin").is_none());
    let staged: Vec<_> = std::fs::read_dir(&fs.config().staging_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.to_string_lossy().ends_with(".meta.json"))
        .collect();
    assert_eq!(staged.len(), 1, "{staged:?}");
    assert!(std::fs::read(&staged[0]).unwrap() == data, "the staged file holds every byte written");
    assert_eq!(c.inner().open_uploads(), 0);
}

/// fsync completes the upload with what is written so far; writing on streams again, and close
/// stores the whole file.
#[tokio::test]
async fn fsync_completes_the_stream_and_later_writes_stream_again() {
    let (c, fs) = setup("fsync", |_, _| None);
    let data = body(22 * MIB, 5);
    let (_, fh) = create_and_write(&fs, "synced.bin", &data[..11 * MIB]).await;
    fs.flush(fh).await.unwrap();
    let mock = c.inner();
    assert!(mock.object("data", "synced.bin").unwrap() == data[..11 * MIB], "fsync stored what was written");
    for (i, chunk) in data[11 * MIB..].chunks(MIB).enumerate() {
        fs.write(fh, (11 * MIB + i * MIB) as u64, chunk).await.unwrap();
    }
    fs.release(fh).await.unwrap();
    assert!(mock.object("data", "synced.bin").unwrap() == data);
    assert_eq!(mock.calls_of("CompleteMultipartUpload"), 2, "both uploads streamed");
    assert_eq!((mock.calls_of("PutObject"), mock.open_uploads()), (0, 0));
    assert!(path(&fs, &["data", "synced.bin"]).await.unwrap().size == data.len() as u64);
}

/// Parts in flight are bounded per file (4) and per mount (8), whatever the number of files: with
/// every part hanging, three streamed files start 8 parts, no more. Unlinking them ends the streams
/// and aborts their uploads.
#[tokio::test]
async fn parts_in_flight_are_bounded_per_file_and_per_mount() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let started = Arc::new(AtomicUsize::new(0));
    let seen = started.clone();
    let (c, fs) = setup("bounded", move |op, _| {
        (op == Op::UploadPart).then(|| {
            seen.fetch_add(1, Ordering::SeqCst);
            Fault::Hang
        })
    });
    let mut handles = Vec::new();
    for name in ["a.bin", "b.bin", "c.bin"] {
        handles.push(create_and_write(&fs, name, &body(26 * MIB, 6)).await.1);
    }
    until("8 parts in flight", || started.load(Ordering::SeqCst) == 8).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(started.load(Ordering::SeqCst), 8, "15 parts are whole; 8 may be in flight");
    let bucket = path(&fs, &["data"]).await.unwrap();
    for name in ["a.bin", "b.bin", "c.bin"] {
        fs.unlink(bucket.ino, name).await.unwrap();
    }
    until("every upload aborted", || c.inner().open_uploads() == 0).await;
    for fh in handles {
        fs.release(fh).await.unwrap();
    }
}
