//! Block buffers used again: a buffer the cache lets go of fills the next block.
//!
//! Why: buffers of 128 KiB and more get pages of their own from glibc (the mount fixes its mmap
//! threshold so freed blocks go back to the system, see `mount::fixed_mmap_threshold`). Fresh pages
//! are faulted in and zeroed by the kernel on first touch: a cold 1 GiB read spent 48% of the
//! mount's CPU in page faults, half of them filling new 1 MiB blocks. A few buffers kept here (at
//! most `KEEP`, so the idle memory stays bounded) are enough, because a sequential read frees one
//! block for each it fills once the cache is full.

use std::sync::Mutex;

use bytes::Bytes;

/// Buffers of this capacity only (the block cache's block): others come and go as usual.
const SIZE: usize = 1 << 20;
/// Idle buffers kept at most: 8 MiB, one part of read-ahead.
const KEEP: usize = 8;

static IDLE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// An empty buffer with room for `capacity` bytes: a recycled one when it is a block's size.
pub fn take(capacity: usize) -> Vec<u8> {
    if capacity == SIZE
        && let Some(buf) = IDLE.lock().unwrap().pop()
    {
        return buf;
    }
    Vec::with_capacity(capacity)
}

/// The filled buffer as `Bytes`; a block-sized one comes back here when the last reference to it
/// is dropped.
pub fn freeze(buf: Vec<u8>) -> Bytes {
    if buf.capacity() == SIZE { Bytes::from_owner(Recycled(buf)) } else { Bytes::from(buf) }
}

struct Recycled(Vec<u8>);

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.0);
        buf.clear();
        let mut idle = IDLE.lock().unwrap();
        if idle.len() < KEEP {
            idle.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_block_buffer_fills_the_next_block_and_idle_ones_stay_bounded() {
        let mut buf = take(SIZE);
        buf.extend_from_slice(&[7u8; SIZE]);
        let ptr = buf.as_ptr();
        let block = freeze(buf);
        let slice = block.slice(10..20);
        drop(block);
        assert_eq!(&slice[..], &[7u8; 10], "a slice keeps the buffer alive");
        drop(slice);
        let again = take(SIZE);
        assert!(again.is_empty() && again.capacity() == SIZE);
        // Other tests may use the pool at the same time: look for ours among the idle ones.
        let mut taken = vec![again];
        while taken.last().is_some_and(|b| b.as_ptr() != ptr) && taken.len() <= KEEP {
            taken.push(take(SIZE));
        }
        assert_eq!(taken.last().unwrap().as_ptr(), ptr, "the freed buffer was used again");
        let blocks: Vec<Bytes> = (0..KEEP + 4).map(|_| freeze(take(SIZE))).collect();
        drop((blocks, taken));
        assert!(IDLE.lock().unwrap().len() <= KEEP);
        let odd = freeze(vec![1u8; 100]);
        assert_eq!(odd.len(), 100);
    }
}
