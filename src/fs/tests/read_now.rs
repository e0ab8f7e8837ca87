//! Reads that need no waiting are answered on the calling thread (`Fs::read_now`, what a FUSE
//! worker calls first): cached blocks and the staged copy. A read that would wait is left to the
//! runtime untouched, so the reader's pattern (read-ahead, its window) is the same either way.

use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::fs::read::BLOCK;
use crate::object::failing::{FailingClient, Fault};

const OBJECT_BLOCKS: u64 = 8;

fn body() -> Vec<u8> {
    (0..OBJECT_BLOCKS * BLOCK).map(|i| (i as u32).wrapping_mul(2246822519).to_be_bytes()[2]).collect()
}

/// `data/big.bin` behind a client whose GETs hang once `hang` is set.
fn setup(tag: &str, hang: Arc<AtomicBool>) -> (Arc<FailingClient<MockObjectClient>>, Fs) {
    let mock = MockObjectClient::new();
    mock.add_bucket("data");
    mock.insert("data", "big.bin", body());
    let client = Arc::new(
        FailingClient::new(mock, |_, _| None).with_gets(move |_| hang.load(Ordering::SeqCst).then_some(Fault::Hang)),
    );
    let dir = std::env::temp_dir().join(format!("ssofs-readnow-{tag}-{}", std::process::id()));
    (client.clone(), Fs::new(client, FsConfig::new(dir)))
}

async fn open_big(fs: &Fs) -> u64 {
    let stat = path(fs, &["data", "big.bin"]).await.unwrap();
    fs.open(stat.ino, OpenMode::READ).await.unwrap()
}

#[tokio::test]
async fn a_cached_read_is_answered_at_once_even_while_every_get_hangs() {
    let hang = Arc::new(AtomicBool::new(false));
    let (_, fs) = setup("cached", hang.clone());
    let fh = open_big(&fs).await;
    // Block 0 is read (and cached); from then on the server answers nothing.
    assert_eq!(fs.read(fh, 0, 4096).await.unwrap().len(), 4096);
    hang.store(true, Ordering::SeqCst);
    let got = fs.read_now(fh, 200_000, 64 * 1024).expect("a read of a cached block needs no waiting").unwrap();
    assert_eq!(&got[..], &body()[200_000..200_000 + 64 * 1024]);
}

#[tokio::test]
async fn a_read_that_would_wait_is_left_to_the_runtime_and_changes_nothing() {
    let hang = Arc::new(AtomicBool::new(false));
    let (client, fs) = setup("waits", hang.clone());
    let fh = open_big(&fs).await;
    // The first read fetches its block and two ahead (the window doubles to 2 MiB).
    assert_eq!(fs.read(fh, 0, 4096).await.unwrap().len(), 4096);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let gets = client.inner().calls_of("GetObject");
    hang.store(true, Ordering::SeqCst);
    assert!(fs.read_now(fh, (OBJECT_BLOCKS - 1) * BLOCK, 4096).is_none(), "the last block is not cached");
    assert_eq!(client.inner().calls_of("GetObject"), gets, "declining the read asked nothing of the server");
    // The reader still sees the next read as sequential: it fetches further ahead. Had the declined
    // read counted, this one would be a random read of a cached block and fetch nothing.
    hang.store(false, Ordering::SeqCst);
    assert_eq!(fs.read(fh, 4096, 4096).await.unwrap()[..], body()[4096..8192]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(client.inner().calls_of("GetObject") > gets, "read-ahead went on past the cached blocks");
    fs.release(fh).await.unwrap();
}

#[tokio::test]
async fn a_file_read_in_order_through_both_paths_is_whole_and_fetched_ahead() {
    let hang = Arc::new(AtomicBool::new(false));
    let (client, fs) = setup("both", hang);
    let fh = open_big(&fs).await;
    let (mut out, mut now) = (Vec::new(), 0);
    let step = 128 * 1024;
    while (out.len() as u64) < OBJECT_BLOCKS * BLOCK {
        let offset = out.len() as u64;
        let chunk = match fs.read_now(fh, offset, step) {
            Some(read) => {
                now += 1;
                read.unwrap()
            }
            None => fs.read(fh, offset, step).await.unwrap(),
        };
        out.extend_from_slice(&chunk);
        // The read-ahead the reads started lands meanwhile (the mock answers at once).
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(out, body(), "every byte in order");
    assert!(now > 0, "reads of blocks fetched ahead were answered at once");
    assert!(
        client.inner().calls_of("GetObject") <= 4,
        "the blocks came in parts fetched ahead, not one GET per read: {} GETs",
        client.inner().calls_of("GetObject")
    );
    fs.release(fh).await.unwrap();
}
