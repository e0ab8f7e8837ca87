//! The disk tier's writer thread: writes queued blocks (temporary file, then rename, so a block file
//! is either whole or absent under its name) and keeps the directory within its limit.

use std::io::Write;
use std::sync::mpsc;

use bytes::Bytes;

use super::super::BlockKey;
use super::Shared;
use super::format::{self, Name};

/// A block to write; its data is in the index's queue (the channel holds no copy, so a block
/// dropped from the queue frees its memory at once and is skipped here).
pub struct Job {
    pub name: Name,
    pub key: BlockKey,
}

/// Runs until the queue is closed and empty.
pub fn run(shared: &Shared, jobs: mpsc::Receiver<Job>) {
    for job in jobs {
        #[cfg(test)]
        drop(shared.writer_gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        let Some(data) = shared.lock().queued.get(&job.name).map(|q| q.data.clone()) else { continue };
        let written = write(shared, &job, &data);
        if let Err(e) = &written {
            tracing::debug!(error = %e, "disk cache write failed; block not cached");
        }
        let mut evicted = Vec::new();
        {
            let mut index = shared.lock();
            if let Ok(size) = written {
                index.blocks.put(job.name, size);
                index.bytes += size;
                while index.bytes > shared.limit {
                    let Some((name, size)) = index.blocks.pop_lru() else { break };
                    index.bytes -= size;
                    evicted.push(name);
                }
            }
        }
        // Off the queue only once indexed: until then `get` serves it from the queue.
        shared.dequeue(&job.name);
        for name in evicted {
            let _ = std::fs::remove_file(shared.dir.join(format::file_name(&name, format::SUFFIX)));
        }
    }
}

/// Writes one block file; its size on disk.
fn write(shared: &Shared, job: &Job, data: &Bytes) -> std::io::Result<u64> {
    let header = format::header(&shared.scope, &job.key, data);
    let path = shared.dir.join(format::file_name(&job.name, format::SUFFIX));
    let tmp = shared.dir.join(format::file_name(&job.name, format::TMP_SUFFIX));
    let _ = std::fs::remove_file(&tmp);
    let written = crate::untrusted::create_new(&tmp, 0o600)
        .and_then(|mut f| f.write_all(&header).and_then(|()| f.write_all(data)))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map(|()| (header.len() + data.len()) as u64)
}
