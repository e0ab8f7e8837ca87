//! A read that needs no waiting (its blocks cached) completes in its first poll: the FUSE adapter
//! polls each request once on its worker before handing it to the runtime
//! (`fuse::dispatch::poll_here`), so such reads cost no task. A read that waits finishes on the
//! runtime as the same future, and the reader's pattern (read-ahead, its window) goes on.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use super::*;
use crate::fs::read::BLOCK;
use crate::object::failing::{FailingClient, Fault};

const OBJECT_BLOCKS: u64 = 8;

fn body() -> Vec<u8> {
    (0..OBJECT_BLOCKS * BLOCK).map(|i| (i as u32).wrapping_mul(2246822519).to_be_bytes()[2]).collect()
}

/// `data/big.bin` open for reading, behind a client whose GETs hang while the flag returned is set.
async fn open_big(tag: &str) -> (Arc<AtomicBool>, Arc<FailingClient<MockObjectClient>>, Fs, u64) {
    let hang = Arc::new(AtomicBool::new(false));
    let mock = MockObjectClient::new();
    mock.add_bucket("data");
    mock.insert("data", "big.bin", body());
    let hangs = hang.clone();
    let client = Arc::new(
        FailingClient::new(mock, |_, _| None).with_gets(move |_| hangs.load(Ordering::SeqCst).then_some(Fault::Hang)),
    );
    let dir = std::env::temp_dir().join(format!("ssofs-nowait-{tag}-{}", std::process::id()));
    let fs = Fs::new(client.clone(), FsConfig::new(dir));
    let stat = path(&fs, &["data", "big.bin"]).await.unwrap();
    let fh = fs.open(stat.ino, OpenMode::READ).await.unwrap();
    (hang, client, fs, fh)
}

/// Polls `read` once, as the adapter does on a FUSE worker: its bytes if it needed no waiting.
fn first_poll(read: &mut (impl Future<Output = FsResult<bytes::Bytes>> + Unpin)) -> Option<bytes::Bytes> {
    let mut here = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::Pin::new(read).poll(&mut here) {
        Poll::Ready(data) => Some(data.unwrap()),
        Poll::Pending => None,
    }
}

#[tokio::test]
async fn a_cached_read_completes_in_its_first_poll_even_while_every_get_hangs() {
    let (hang, _, fs, fh) = open_big("cached").await;
    // Block 0 is read (and cached); from then on the server answers nothing.
    assert_eq!(fs.read(fh, 0, 4096).await.unwrap().len(), 4096);
    hang.store(true, Ordering::SeqCst);
    let got =
        first_poll(&mut Box::pin(fs.read(fh, 200_000, 64 * 1024))).expect("a read of a cached block needs no waiting");
    assert_eq!(&got[..], &body()[200_000..200_000 + 64 * 1024]);
}

#[tokio::test]
async fn a_read_that_waits_finishes_on_the_runtime_and_read_ahead_goes_on() {
    let (hang, client, fs, fh) = open_big("waits").await;
    // The first read fetches its block and two ahead (the window doubles to 2 MiB).
    assert_eq!(fs.read(fh, 0, 4096).await.unwrap().len(), 4096);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let gets = client.inner().calls_of("GetObject");
    // The next read in order needs block 3, which is not cached: it waits, and is handed on.
    hang.store(true, Ordering::SeqCst);
    let mut waits = Box::pin(fs.read(fh, 4096, 3 * BLOCK as u32));
    assert!(first_poll(&mut waits).is_none(), "block 3 is not cached");
    hang.store(false, Ordering::SeqCst);
    let got = tokio::time::timeout(Duration::from_secs(20), waits).await.expect("finished on the runtime").unwrap();
    assert_eq!(got[..], body()[4096..4096 + 3 * BLOCK as usize]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(client.inner().calls_of("GetObject") > gets, "read-ahead went on past the cached blocks");
    fs.release(fh).await.unwrap();
}

#[tokio::test]
async fn a_file_read_in_order_is_whole_and_fetched_ahead_with_most_reads_needing_no_wait() {
    let (_, client, fs, fh) = open_big("in-order").await;
    let (mut out, mut at_once) = (Vec::new(), 0);
    let step = 128 * 1024;
    while (out.len() as u64) < OBJECT_BLOCKS * BLOCK {
        let mut read = Box::pin(fs.read(fh, out.len() as u64, step));
        let chunk = match first_poll(&mut read) {
            Some(data) => {
                at_once += 1;
                data
            }
            None => read.await.unwrap(),
        };
        out.extend_from_slice(&chunk);
        // The read-ahead the reads started lands meanwhile (the mock answers at once).
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(out, body(), "every byte in order");
    assert!(at_once > 0, "reads of blocks fetched ahead needed no waiting");
    assert!(
        client.inner().calls_of("GetObject") <= 4,
        "the blocks came in parts fetched ahead, not one GET per read: {} GETs",
        client.inner().calls_of("GetObject")
    );
    fs.release(fh).await.unwrap();
}
