//! A small random read of a block the cache does not hold is answered by a GET of its own bytes,
//! also while the block is on its way; the block follows into the cache and serves the next reads
//! in it. A reader that comes back to blocks it fetched gets larger fills. Reads in order keep
//! fetching whole blocks ahead.

use super::*;
use crate::fs::read::BLOCK;
use crate::object::failing::{FailingClient, Fault};

const OBJECT_BLOCKS: u64 = 8;

fn body() -> Vec<u8> {
    (0..OBJECT_BLOCKS * BLOCK).map(|i| (i as u32).wrapping_mul(2654435761).to_be_bytes()[1]).collect()
}

/// `data/big.bin` of four blocks, behind a client that decides each GET by its range with `gets`.
fn setup(
    tag: &str,
    gets: impl Fn(&std::ops::Range<u64>) -> Option<Fault> + Send + Sync + 'static,
) -> (Arc<FailingClient<MockObjectClient>>, Fs) {
    let mock = MockObjectClient::new();
    mock.add_bucket("data");
    mock.insert("data", "big.bin", body());
    let client = Arc::new(FailingClient::new(mock, |_, _| None).with_gets(gets));
    let dir = std::env::temp_dir().join(format!("ssofs-random-{tag}-{}", std::process::id()));
    (client.clone(), Fs::new(client, FsConfig::new(dir)))
}

async fn open_big(fs: &Fs) -> u64 {
    let stat = path(fs, &["data", "big.bin"]).await.unwrap();
    fs.open(stat.ino, OpenMode::READ).await.unwrap()
}

fn bytes_at(data: &[u8], offset: u64, len: usize) -> &[u8] {
    &data[offset as usize..offset as usize + len]
}

/// Reads 4 KiB at `offset` and checks them, then lets the fills the read spawned arrive (the mock
/// answers at once; the test runtime is one thread).
async fn read_4k(fs: &Fs, fh: u64, offset: u64) {
    assert_eq!(&fs.read(fh, offset, 4096).await.unwrap()[..], bytes_at(&body(), offset, 4096));
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn a_small_random_read_is_answered_while_its_whole_block_is_still_arriving() {
    // Every GET of a whole block hangs: the read must not wait for one.
    let (_, fs) = setup("answered", |range| (range.end - range.start >= BLOCK).then_some(Fault::Hang));
    let fh = open_big(&fs).await;
    // The first read's block is not cached; by the second it is on its way (hanging).
    for (offset, then) in [(2 * BLOCK + 12_288, "not cached"), (2 * BLOCK + 500_000, "on its way")] {
        let got = tokio::time::timeout(Duration::from_secs(20), fs.read(fh, offset, 4096))
            .await
            .unwrap_or_else(|_| panic!("a 4 KiB read waited for its 1 MiB block ({then})"))
            .unwrap();
        assert_eq!(&got[..], bytes_at(&body(), offset, 4096), "block {then}");
    }
}

#[tokio::test]
async fn the_block_of_a_small_random_read_serves_the_next_reads_in_it() {
    let (client, fs) = setup("block-follows", |_| None);
    let fh = open_big(&fs).await;
    // The first is a miss; the others are elsewhere in the same block: no further GET.
    for offset in [3 * BLOCK + 40_960, 3 * BLOCK, 3 * BLOCK + 8192, 4 * BLOCK - 4096] {
        read_4k(&fs, fh, offset).await;
    }
    assert_eq!(
        client.inner().calls_of("GetObject"),
        2,
        "the 4 KiB asked for and its whole block for the cache; the block's other reads hit it"
    );
    fs.release(fh).await.unwrap();
}

#[tokio::test]
async fn a_reader_that_comes_back_to_what_it_fetched_gets_larger_fills() {
    let (client, fs) = setup("fills-grow", |_| None);
    let fh = open_big(&fs).await;
    let mock = client.inner();
    let read = async |offset: u64| read_4k(&fs, fh, offset).await;
    read(BLOCK + 8192).await; // a miss: 4 KiB, then block 1
    read(BLOCK + 65_536).await; // back in block 1: a hit, the next fill is two blocks
    assert_eq!(mock.calls_of("GetObject"), 2);
    read(5 * BLOCK + 4096).await; // a miss: 4 KiB, then blocks 4 and 5 in one GET
    assert_eq!(mock.calls_of("GetObject"), 4);
    read(4 * BLOCK + 12_288).await; // block 4 came with block 5
    assert_eq!(mock.calls_of("GetObject"), 4, "block 4 was fetched with block 5");
    fs.release(fh).await.unwrap();
}

#[tokio::test]
async fn reads_in_order_fetch_whole_blocks_and_no_small_ranges() {
    let (client, fs) = setup("in-order", |_| None);
    let ino = path(&fs, &["data", "big.bin"]).await.unwrap().ino;
    assert_eq!(read_all(&fs, ino).await, body());
    // read_all reads 128 KiB at a time from 0: read-ahead parts only, never a GET per read.
    assert!(client.inner().calls_of("GetObject") <= OBJECT_BLOCKS, "{} GETs", client.inner().calls_of("GetObject"));
}
