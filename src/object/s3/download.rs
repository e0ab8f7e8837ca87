//! Ranged GETs, checked (the object asked for, exactly the bytes asked for) and cut into the
//! block cache's buffers as the body arrives.

use std::ops::Range;

use super::errors::not_s3;
use super::{S3ObjectClient, parse_content_range};
use crate::object::{BlockSink, ObjectError, block_buffers};

impl S3ObjectClient {
    /// `range` of the object in buffers of `block` bytes, filled as the body arrives (one copy,
    /// overlapped with the transfer; no buffer of the whole part besides), each handed to
    /// `deliver` once whole. Checked: the object asked for (ETag), and exactly the bytes asked
    /// for; the last buffer is delivered only once the length is.
    pub(super) async fn fetch_range(
        &self,
        bucket: &str,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
        block: usize,
        deliver: &BlockSink<'_>,
    ) -> Result<(), ObjectError> {
        if range.is_empty() {
            return Ok(());
        }
        let header = format!("bytes={}-{}", range.start, range.end - 1);
        let out = self
            .provider
            .with_fresh_credentials(|| {
                self.client
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .range(header.clone())
                    .set_if_match(etag.map(str::to_string))
                    .send()
            })
            .await
            .map_err(self.failed())?;
        // What came back must be the object asked for and exactly the bytes asked for: a proxy's
        // page, a server ignoring Range or a reply cut short must never be shown as file content.
        match (out.e_tag(), etag) {
            (None, _) => return Err(not_s3(key, "GetObject", "without an ETag")),
            (Some(got), Some(want)) if got.trim_matches('"') != want.trim_matches('"') => {
                return Err(ObjectError::Changed);
            }
            _ => {}
        }
        let expected = match out.content_range() {
            Some(r) => match parse_content_range(r) {
                Some((first, last)) if first == range.start && last < range.end && first <= last => {
                    Some(last - first + 1)
                }
                _ => return Err(not_s3(key, "GetObject", &format!("Content-Range {r:?} for bytes={}-", range.start))),
            },
            None => None, // 200 with the whole object: Range ignored; the part is cut out below
        };
        // A server that ignores Range sends the whole object (no Content-Range): skip to the start.
        let (mut skip, want) = match expected {
            Some(n) => (0, n),
            None => (range.start, range.end - range.start),
        };
        let mut blocks = BlockFiller::new(want, block, deliver);
        let mut body = out.body;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ObjectError::Unavailable(format!("reading {key}: {e}")))?;
            let from = (skip as usize).min(chunk.len());
            skip -= from as u64;
            blocks.push(&chunk[from..]);
            if expected.is_none() && blocks.received() >= want {
                break;
            }
        }
        match expected {
            Some(n) if blocks.received() != n => Err(ObjectError::Unavailable(format!(
                "reading {key}: the reply held {} bytes where its Content-Range promised {n}",
                blocks.received()
            ))),
            _ => {
                blocks.finish();
                Ok(())
            }
        }
    }
}

/// Cuts a body into buffers of `block` bytes as it arrives, keeping at most `want` bytes, and hands
/// each to `deliver` once whole.
pub(super) struct BlockFiller<'a> {
    want: u64,
    block: usize,
    deliver: &'a BlockSink<'a>,
    /// From `block_buffers`: a block the cache dropped is filled again, its pages already there.
    current: Vec<u8>,
    received: u64,
}

impl<'a> BlockFiller<'a> {
    pub(super) fn new(want: u64, block: usize, deliver: &'a BlockSink<'a>) -> Self {
        let block = block.max(1);
        let first = (want as usize).min(block);
        BlockFiller { want, block, deliver, current: block_buffers::take(first), received: 0 }
    }

    pub(super) fn push(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.received < self.want {
            let room = self.block - self.current.len();
            let take = room.min(data.len()).min((self.want - self.received) as usize);
            self.current.extend_from_slice(&data[..take]);
            self.received += take as u64;
            data = &data[take..];
            if self.current.len() == self.block {
                let left = ((self.want - self.received) as usize).min(self.block);
                let full = std::mem::replace(&mut self.current, block_buffers::take(left));
                (self.deliver)(block_buffers::freeze(full));
            }
        }
        // More than asked for (a server ignoring Range past the end): counted, not kept.
        self.received += data.len() as u64;
    }

    pub(super) fn received(&self) -> u64 {
        self.received
    }

    /// Delivers the last, shorter buffer: only once the reply is known whole.
    pub(super) fn finish(self) {
        if !self.current.is_empty() {
            (self.deliver)(block_buffers::freeze(self.current));
        }
    }
}
