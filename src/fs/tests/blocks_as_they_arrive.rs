//! A part of read-ahead (up to 8 blocks, one GET) serves each block as soon as the block's own
//! bytes are in: a sequential reader does not wait for the rest of the part, and a block not
//! arrived yet is waited for, never served short.

use super::*;
use crate::fs::read::BLOCK;
use crate::object::failing::{FailingClient, Fault};

fn body() -> Vec<u8> {
    (0..8 * BLOCK).map(|i| (i as u32).wrapping_mul(2654435761).to_be_bytes()[1]).collect()
}

/// `data/big.bin` (8 blocks) open for reading, behind a server whose GETs of more than one block
/// send their first block and then stall.
async fn open_stalling() -> (Fs, u64) {
    let mock = MockObjectClient::new();
    mock.add_bucket("data");
    mock.insert("data", "big.bin", body());
    let client = FailingClient::new(mock, |_, _| None)
        .with_gets(|r| (r.end - r.start > BLOCK).then(|| Fault::Partial { bytes: BLOCK, then: Box::new(Fault::Hang) }));
    let dir = std::env::temp_dir().join(format!("ssofs-arrive-{}", std::process::id()));
    let fs = Fs::new(Arc::new(client), FsConfig::new(dir));
    let stat = path(&fs, &["data", "big.bin"]).await.unwrap();
    let fh = fs.open(stat.ino, OpenMode::READ).await.unwrap();
    (fs, fh)
}

#[tokio::test]
async fn a_sequential_reader_gets_the_first_block_of_a_part_while_the_rest_is_on_its_way() {
    let (fs, fh) = open_stalling().await;
    let budget = fs.read_path.shared.read_ahead.clone();
    let full = budget.available_permits();
    // Block 0 alone, then read-ahead of blocks 1-2 as one GET, which sends block 1 and stalls.
    assert_eq!(fs.read(fh, 0, 4096).await.unwrap()[..], body()[..4096]);
    // Block 1's share of the read-ahead budget comes back when it arrives; block 2's is held.
    let mut held = full - budget.available_permits();
    for _ in 0..100 {
        if held <= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        held = full - budget.available_permits();
    }
    assert_eq!(held, 1, "only the block still on its way holds read-ahead budget");
    let next = tokio::time::timeout(Duration::from_secs(5), fs.read(fh, 4096, BLOCK as u32))
        .await
        .expect("block 1 arrived: the read does not wait for block 2 of its part")
        .unwrap();
    assert_eq!(next[..], body()[4096..4096 + BLOCK as usize]);
    // Block 2 never came: a read of it waits (for the part's GET), it is not answered short.
    let stalled = tokio::time::timeout(Duration::from_millis(300), fs.read(fh, 4096 + BLOCK, BLOCK as u32)).await;
    assert!(stalled.is_err(), "a block not arrived yet is waited for: {stalled:?}");
}
