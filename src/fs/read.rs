//! Reading an object through the block cache, with sequential read-ahead: the window starts at one
//! block and doubles with each sequential read up to `MAX_WINDOW`, fetched as concurrent ranged GETs
//! of up to `PART_BLOCKS` blocks; a random access resets it. Read-ahead in flight is bounded per
//! reader by the window and across all readers by a shared budget, so memory does not grow with file
//! size or reader count: beyond the budget, readers fetch only what they read.
//!
//! A small random read of a block the cache does not hold yet is answered by a GET of just its
//! bytes while the block is fetched into the cache behind it: waiting for the block made every miss
//! of a random 4 KiB reader cost a 1 MiB GET and its page faults (3.3-4.4 ms each, one after
//! another, against 0.5 ms for a 4 KiB GET), where the reader's next read can now overlap the fill.
//! The fill around a random miss starts at one block and doubles, up to 16, each time a random
//! read lands on a block already fetched: a reader that comes back near where it read gets larger
//! fills (fewer, larger GETs, as s3fs makes), one that never does costs one block per miss.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use super::cache::BlockKey;
use super::error::{FsError, FsResult};
use crate::object::{ObjectClient, ObjectError};

pub const BLOCK: u64 = 1 << 20;
const PART_BLOCKS: u64 = 8;
/// Random reads up to this size (the kernel sends 4 KiB to 128 KiB) are answered from a GET of
/// their own bytes when their block is not cached yet.
const SMALL_READ: u64 = BLOCK / 8;
/// The largest fill around a random miss, in blocks (two parts' GETs at once). Bench item 3 (2,000
/// random 4 KiB reads over 256 MiB, quiet 2-core host, medians of 3 beside s3fs): 8 blocks gave
/// 6,247 reads/s (0.98x s3fs), 16 gave 7,026 (1.30x); each within the read-ahead budget.
const RANDOM_FILL_MAX: u64 = 2 * PART_BLOCKS;
/// Read-ahead of one reader at most, and of all readers of a mount together (the budget): within
/// the 64 MiB a mount may use beyond its cache_size, with room for the process itself (24 MiB
/// mounted, debug build) and each reader's current block. Three 8 MiB parts in flight keep one
/// reader busy on a local endpoint.
pub const MAX_WINDOW: u64 = 24 << 20;

/// A block being fetched, by the GET of its part: ready as soon as its own bytes are in, not when
/// the whole part is (a reader waiting for the first block of an 8 MiB part does not wait for the
/// other seven).
type Fetch = Shared<BoxFuture<'static, Result<Bytes, ObjectError>>>;

/// Read-ahead bytes in flight across all readers, in blocks.
pub type ReadAheadBudget = Arc<tokio::sync::Semaphore>;

pub fn read_ahead_budget(bytes: u64) -> ReadAheadBudget {
    Arc::new(tokio::sync::Semaphore::new((bytes / BLOCK).max(PART_BLOCKS) as usize))
}

/// What every reader of one filesystem shares: where objects come from, the mount's block cache
/// and read-ahead budget, and the identity its blocks are keyed by.
#[derive(Clone)]
pub struct ReadPath {
    pub client: Arc<dyn ObjectClient>,
    pub shared: super::MountShared,
    pub identity: u32,
    /// Where this identity's cache hits and misses are counted.
    pub stats: Arc<crate::metrics::IdentityStats>,
}

pub struct Reader {
    path: ReadPath,
    /// The key of the object's block 0 (identity, bucket, key, ETag); other blocks differ by number.
    block0: BlockKey,
    size: u64,
    next_offset: u64,
    window: u64,
    /// Blocks on their way, each with its fetch.
    inflight: HashMap<u64, Fetch>,
    /// Blocks fetched around a small random miss (see the module's comment).
    random_fill: u64,
}

impl Reader {
    /// Reads of one version (`etag`; empty when unknown) of `bucket/key`, `size` bytes long.
    pub fn new(path: ReadPath, bucket: &str, key: &str, etag: &str, size: u64) -> Self {
        let block0 =
            BlockKey { identity: path.identity, bucket: bucket.into(), key: key.into(), etag: etag.into(), block: 0 };
        Reader { path, block0, size, next_offset: 0, window: BLOCK, inflight: HashMap::new(), random_fill: 1 }
    }

    fn block_key(&self, block: u64) -> BlockKey {
        BlockKey { block, ..self.block0.clone() }
    }

    pub async fn read(&mut self, offset: u64, size: u32) -> FsResult<Bytes> {
        let end = (offset + size as u64).min(self.size);
        if offset >= end {
            return Ok(Bytes::new());
        }
        let sequential = offset == self.next_offset;
        self.window = if sequential { (self.window * 2).min(MAX_WINDOW) } else { BLOCK };
        self.next_offset = end;
        let first = offset / BLOCK;
        let last = (end - 1) / BLOCK;
        let ahead = if sequential { (end + self.window).div_ceil(BLOCK) } else { last + 1 };
        if !sequential && first == last && end - offset <= SMALL_READ {
            let cached = self.path.shared.cache.contains(&self.block_key(first));
            let on_the_way = self.inflight.contains_key(&first);
            if cached || on_the_way {
                self.random_fill = (self.random_fill * 2).min(RANDOM_FILL_MAX);
            }
            // Not cached yet, whether or not its block is on the way: the small GET answers sooner.
            if !cached {
                let small = self.fetch_exact(offset..end);
                if !on_the_way {
                    self.fill_around(first);
                }
                match small.await {
                    Ok(data) if data.len() as u64 == end - offset => {
                        self.path.stats.cache_miss();
                        return Ok(data);
                    }
                    // A short or failed answer: the block fetch says what is there, or what went wrong.
                    _ => {}
                }
            }
        }
        self.schedule(first, last + 1, false);
        self.schedule(last + 1, ahead.min(self.blocks()), true);

        // Within one block (the kernel's reads of a sequential reader are), the reply is a slice of
        // the cached block, not a copy: a fresh 1 MiB buffer per read cost a copy and its page
        // faults, a quarter of the mount's CPU in a cold read.
        let mut pieces = Vec::with_capacity((last - first + 1) as usize);
        for block in first..=last {
            let data = self.block(block).await?;
            let block_start = block * BLOCK;
            let from = offset.saturating_sub(block_start) as usize;
            let to = ((end - block_start) as usize).min(data.len());
            if from < to {
                pieces.push(data.slice(from..to));
            }
        }
        let out = match pieces.len() {
            0 => Bytes::new(),
            1 => pieces.pop().expect("one piece"),
            _ => pieces.concat().into(),
        };
        // Blocks already delivered stay reachable through the cache. A block served from the cache
        // is never awaited, so `peek` alone would keep its fetch (and its buffer) for the life of
        // the handle: poll each finished one once.
        self.inflight.retain(|_, f| f.peek().is_none() && f.clone().now_or_never().is_none());
        Ok(out)
    }

    /// How many blocks the object has.
    fn blocks(&self) -> u64 {
        self.size.div_ceil(BLOCK)
    }

    /// The ETag a GET must match, if known.
    fn etag_arg(block0: &BlockKey) -> Option<&str> {
        Some(block0.etag.as_ref()).filter(|e: &&str| !e.is_empty())
    }

    /// Whether `block` is neither cached nor being fetched.
    fn lacks(&self, block: u64) -> bool {
        !self.inflight.contains_key(&block) && !self.path.shared.cache.contains(&self.block_key(block))
    }

    /// Fetches the aligned `random_fill` blocks around `block` into the cache; beyond one block
    /// within the read-ahead budget, else the block alone.
    fn fill_around(&mut self, block: u64) {
        let start = block - block % self.random_fill;
        let end = (start + self.random_fill).min(self.blocks());
        if end - start > 1 {
            self.schedule(start, end, true);
        }
        if self.lacks(block) {
            self.schedule(block, block + 1, false);
        }
    }

    /// A GET of exactly `range`, for this read only (not cached).
    fn fetch_exact(&self, range: std::ops::Range<u64>) -> impl Future<Output = Result<Bytes, ObjectError>> + use<> {
        let (client, block0) = (self.path.client.clone(), self.block0.clone());
        async move { client.get_range(&block0.bucket, &block0.key, range, Self::etag_arg(&block0)).await }
    }

    /// Starts fetches for blocks in `from..to` that are neither cached nor in flight, grouped into
    /// parts of up to `PART_BLOCKS` contiguous blocks. Read-ahead parts need room in the shared
    /// budget; without it they are left for later.
    fn schedule(&mut self, from: u64, to: u64, ahead: bool) {
        let mut block = from;
        while block < to {
            if !self.lacks(block) {
                block += 1;
                continue;
            }
            let start = block;
            while block < to && block - start < PART_BLOCKS && self.lacks(block) {
                block += 1;
            }
            let permit = if ahead {
                match self.path.shared.read_ahead.clone().try_acquire_many_owned((block - start) as u32) {
                    Ok(p) => Some(p),
                    Err(_) => return,
                }
            } else {
                None
            };
            for (b, fetch) in (start..block).zip(self.fetch(start, block, permit)) {
                self.inflight.insert(b, fetch);
            }
        }
    }

    /// One GET of blocks `first..end_block`, each block ready (and cached) as it arrives; a block
    /// of read-ahead gives its share of the budget back then.
    fn fetch(&self, first: u64, end_block: u64, permit: Option<tokio::sync::OwnedSemaphorePermit>) -> Vec<Fetch> {
        let (client, cache) = (self.path.client.clone(), self.path.shared.cache.clone());
        let block0 = self.block0.clone();
        let range = first * BLOCK..(end_block * BLOCK).min(self.size);
        // Read-ahead in flight is what holds permits of the budget.
        crate::metrics::series::read_ahead(permit.as_ref().map_or(0, |p| p.num_permits() as i64 * BLOCK as i64));
        let (senders, fetches): (Vec<_>, Vec<_>) = (first..end_block)
            .map(|block| {
                let (tx, rx) = tokio::sync::oneshot::channel::<Result<Bytes, ObjectError>>();
                let fetch =
                    async move { rx.await.unwrap_or_else(|_| Err(ObjectError::Other("the read task failed".into()))) };
                ((block, tx), fetch.boxed().shared())
            })
            .unzip();
        tokio::spawn(async move {
            let waiting = std::sync::Mutex::new(Arrival { senders: senders.into_iter(), permit });
            let deliver = |data: Bytes| {
                let mut waiting = waiting.lock().unwrap();
                let Some((block, tx)) = waiting.senders.next() else { return };
                // The bytes now count against the block cache, not the read-ahead budget.
                waiting.release(1);
                cache.insert(BlockKey { block, ..block0.clone() }, data.clone());
                let _ = tx.send(Ok(data));
            };
            let done = client
                .get_blocks(&block0.bucket, &block0.key, range, Self::etag_arg(&block0), BLOCK as usize, &deliver)
                .await;
            let mut rest = waiting.into_inner().unwrap();
            rest.release(rest.senders.len());
            // Blocks not delivered: the error, or (an object shorter than its size said) no bytes.
            for (_, tx) in rest.senders {
                let _ = tx.send(done.clone().map(|()| Bytes::new()));
            }
        });
        fetches
    }

    async fn block(&mut self, block: u64) -> FsResult<Bytes> {
        if let Some(data) = self.path.shared.cache.get(&self.block_key(block)) {
            self.path.stats.cache_hit();
            return Ok(data);
        }
        self.path.stats.cache_miss();
        let fetch = match self.inflight.get(&block) {
            Some(f) => f.clone(),
            None => {
                self.schedule(block, block + 1, false);
                self.inflight
                    .get(&block)
                    .cloned()
                    .ok_or(FsError::Invalid("a read of a block that was not scheduled"))?
            }
        };
        fetch.await.map_err(FsError::from)
    }
}

/// Where a part's GET stands: who waits for each block not arrived yet (in order), and the
/// read-ahead budget those blocks hold.
struct Arrival {
    senders: std::vec::IntoIter<(u64, tokio::sync::oneshot::Sender<Result<Bytes, ObjectError>>)>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Arrival {
    /// `blocks` of read-ahead arrived (or will not): their permits go back to the budget.
    fn release(&mut self, blocks: usize) {
        let Some(permit) = self.permit.as_mut() else { return };
        let blocks = blocks.min(permit.num_permits());
        match permit.split(blocks) {
            Some(_) if permit.num_permits() > 0 => {}
            _ => self.permit = None,
        }
        crate::metrics::series::read_ahead(-(blocks as i64 * BLOCK as i64));
    }
}
