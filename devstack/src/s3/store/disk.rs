//! File plumbing: temp files that vanish unless kept, streaming writes that hash as they go, and the
//! chunked file stream GET responses are served from. Nothing here holds a whole object in memory.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};
use s3s::dto::StreamingBlob;
use s3s::stream::{ByteStream, RemainingLength};
use s3s::{S3Error, S3Result, StdError, s3_error};
use serde::Serialize;
use tokio::io::{AsyncWriteExt, BufWriter};

/// Read size for copies and GET bodies: large enough for throughput, small enough for many clients.
const CHUNK: usize = 128 * 1024;
/// Write buffer for request bodies.
const WRITE_BUFFER: usize = 1024 * 1024;

/// A file that is deleted when dropped, unless [`TempFile::keep`] is called: every error path cleans up.
#[derive(Debug)]
pub(super) struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    /// A fresh unique path in `dir` (nothing is created yet).
    pub fn new_in(dir: &Path) -> Self {
        Self { path: dir.join(uuid::Uuid::new_v4().simple().to_string()), armed: true }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Atomically moves the file to `dest`, still guarded: it is removed there if dropped un-kept.
    pub fn rename(mut self, dest: PathBuf) -> io::Result<Self> {
        fs::rename(&self.path, &dest)?;
        self.armed = false;
        Ok(Self { path: dest, armed: true })
    }

    pub fn keep(mut self) -> PathBuf {
        self.armed = false;
        std::mem::take(&mut self.path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            remove_data(&self.path);
        }
    }
}

/// Removes an object's data: a file, or the directory of a multipart object's parts.
pub(super) fn remove_data(path: &Path) {
    if fs::remove_file(path).is_err() {
        let _ = fs::remove_dir_all(path);
    }
}

/// An object's data files, opened, each with its size, in order: one for an object uploaded whole,
/// one per part for a completed multipart upload.
pub(super) type DataFiles = Vec<(fs::File, u64)>;

/// Bytes `range` of an object, read in order across its data files.
pub(super) struct ObjectReader {
    pieces: std::vec::IntoIter<io::Take<fs::File>>,
    current: Option<io::Take<fs::File>>,
}

impl ObjectReader {
    pub fn new(files: DataFiles, range: Range<u64>) -> io::Result<Self> {
        let (mut pieces, mut at) = (Vec::new(), 0u64);
        for (mut file, size) in files {
            let (from, to) = (range.start.max(at), range.end.min(at + size));
            if from < to {
                file.seek(SeekFrom::Start(from - at))?;
                pieces.push(file.take(to - from));
            }
            at += size;
        }
        Ok(Self { pieces: pieces.into_iter(), current: None })
    }

    /// The data file being read, or the next one.
    fn piece(&mut self) -> Option<&mut io::Take<fs::File>> {
        if self.current.is_none() {
            self.current = self.pieces.next();
        }
        self.current.as_mut()
    }

    /// The current data file gave no more bytes: on to the next, unless it ended short of its size
    /// (the rest would be read at the wrong offsets).
    fn next_piece(&mut self) -> io::Result<()> {
        match self.current.take() {
            Some(piece) if piece.limit() > 0 => Err(io::ErrorKind::UnexpectedEof.into()),
            _ => Ok(()),
        }
    }

    /// Up to `max` bytes, fewer only at the end: read into spare capacity (a zeroed buffer cost a
    /// memset of every chunk, 11% of the devstack's CPU serving a cold read).
    fn read_chunk(&mut self, max: u64) -> io::Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(max as usize);
        while (buf.len() as u64) < max {
            let Some(piece) = self.piece() else { break };
            if piece.take(max - buf.len() as u64).read_to_end(&mut buf)? == 0 {
                self.next_piece()?;
            }
        }
        Ok(buf)
    }
}

/// Hard-links the parts of a completed upload, in order, into a new directory in `dir` (as
/// `00001`, …): the object's data without copying a byte. The upload keeps its own links until the
/// object is committed, so a failed commit leaves it whole.
pub(super) async fn link_parts(dir: &Path, parts: Vec<PathBuf>) -> io::Result<TempFile> {
    let temp = TempFile::new_in(dir);
    blocking(move || {
        fs::create_dir(temp.path())?;
        for (i, part) in parts.iter().enumerate() {
            fs::hard_link(part, temp.path().join(part_file_name(i)))?;
        }
        Ok(temp)
    })
    .await
}

/// The file of the `i`-th part (from 0) in a multipart object's data directory.
pub(super) fn part_file_name(i: usize) -> String {
    format!("{:05}", i + 1)
}

/// Serialises `value` into a new temp file in `dir`, ready to be renamed into place.
pub(super) fn json_temp(dir: &Path, value: &impl Serialize) -> io::Result<TempFile> {
    let temp = TempFile::new_in(dir);
    let json = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    fs::write(temp.path(), json)?;
    Ok(temp)
}

/// A finished write: the temp file holding the bytes, their MD5 and their length.
#[derive(Debug)]
pub(super) struct Written {
    pub temp: TempFile,
    pub md5: [u8; 16],
    pub size: u64,
}

/// Writes bytes to a temp file while hashing them. Buffered, since every tokio file write is a
/// trip to the blocking pool and request bodies arrive in small chunks.
struct HashingWriter {
    file: BufWriter<tokio::fs::File>,
    md5: Md5,
    size: u64,
    temp: TempFile,
}

impl HashingWriter {
    async fn create(dir: &Path) -> io::Result<Self> {
        let temp = TempFile::new_in(dir);
        let file = BufWriter::with_capacity(WRITE_BUFFER, tokio::fs::File::create(temp.path()).await?);
        Ok(Self { file, md5: Md5::new(), size: 0, temp })
    }

    async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.md5.update(chunk);
        self.size += chunk.len() as u64;
        self.file.write_all(chunk).await
    }

    async fn finish(mut self) -> io::Result<Written> {
        // tokio writes in the background: without flush, the rename could race the last chunk.
        self.file.flush().await?;
        Ok(Written { temp: self.temp, md5: self.md5.finalize().into(), size: self.size })
    }
}

/// Streams a request body to a temp file in `dir`. A missing body is an empty object.
pub(super) async fn write_stream(dir: &Path, body: Option<StreamingBlob>) -> S3Result<Written> {
    let mut writer = HashingWriter::create(dir).await.map_err(internal)?;
    if let Some(mut body) = body {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(body_error)?;
            writer.write(&chunk).await.map_err(internal)?;
        }
    }
    writer.finish().await.map_err(internal)
}

/// Copies `range` of an object's data to a temp file in `dir`, hashing it (CopyObject, UploadPartCopy).
pub(super) async fn copy_range(dir: &Path, src: DataFiles, range: Range<u64>) -> io::Result<Written> {
    let temp = TempFile::new_in(dir);
    // The guard moves into the task: if the request is dropped meanwhile, the task still cleans up.
    blocking(move || {
        let mut src = ObjectReader::new(src, range.clone())?;
        let mut out = fs::File::create(temp.path())?;
        let (mut md5, mut size) = (Md5::new(), 0u64);
        loop {
            let buf = src.read_chunk(CHUNK as u64)?;
            if buf.is_empty() {
                break;
            }
            md5.update(&buf);
            out.write_all(&buf)?;
            size += buf.len() as u64;
        }
        if size != range.end - range.start {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "source data file is shorter than its metadata"));
        }
        Ok(Written { temp, md5: md5.finalize().into(), size })
    })
    .await
}

/// Concatenates `parts` into a temp file in `dir` (CompleteMultipartUpload, where the parts cannot be
/// linked). Done with std I/O on the blocking pool, where `io::copy` can use the kernel's
/// file-to-file copy.
pub(super) async fn concat(dir: &Path, parts: Vec<PathBuf>) -> io::Result<TempFile> {
    let temp = TempFile::new_in(dir);
    blocking(move || {
        let mut out = fs::File::create(temp.path())?;
        for part in &parts {
            io::copy(&mut fs::File::open(part)?, &mut out)?;
        }
        Ok(temp)
    })
    .await
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(io::Error::other)?
}

/// Synchronous write of an in-memory body, for seeding without a runtime.
pub(super) fn write_bytes(dir: &Path, body: &[u8]) -> io::Result<Written> {
    let temp = TempFile::new_in(dir);
    fs::write(temp.path(), body)?;
    Ok(Written { temp, md5: Md5::digest(body).into(), size: body.len() as u64 })
}

/// Reads a whole small file (used for sidecars only).
pub(super) fn read_small(path: &Path) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    fs::File::open(path)?.read_to_end(&mut buf)?;
    Ok(buf)
}

/// GET bodies are read in chunks of this size, each by a blocking thread straight into the buffer that
/// is sent, the next one while this one goes out. Through `tokio::fs::File` in 128 KiB chunks, each
/// chunk cost a blocking-thread hop and two copies more: serving a cold 1 GiB read took the devstack
/// 1.2-1.5 CPU-s on the bench's 2 cores, CPU the client under test then lacked.
const BODY_CHUNK: u64 = 1 << 20;

/// A GET body: `len` bytes of an object's already-opened data files, read in chunks as the client
/// consumes them (one read at a time).
pub(super) struct FileBody {
    /// The reader between reads; during one, the blocking thread doing it has it.
    reader: Option<ObjectReader>,
    /// Bytes not handed out yet (all unread whenever no read is under way).
    remaining: u64,
    reading: Option<tokio::task::JoinHandle<(ObjectReader, io::Result<Vec<u8>>)>>,
}

impl FileBody {
    /// `files` were opened while the index lock was held, so they are the version the metadata
    /// describes, even if the object is overwritten or deleted while the body streams.
    pub fn new(files: DataFiles, range: Range<u64>) -> io::Result<Self> {
        let remaining = range.end - range.start;
        Ok(Self { reader: Some(ObjectReader::new(files, range)?), remaining, reading: None })
    }

    /// Starts reading the next chunk, if any is left.
    fn read_next(&mut self) {
        let Some(mut reader) = self.reader.take().filter(|_| self.remaining > 0) else { return };
        let len = self.remaining.min(BODY_CHUNK);
        self.reading = Some(tokio::task::spawn_blocking(move || {
            let read = reader.read_chunk(len).and_then(|buf| match buf.len() as u64 == len {
                true => Ok(buf),
                false => Err(io::ErrorKind::UnexpectedEof.into()),
            });
            (reader, read)
        }));
    }
}

impl Stream for FileBody {
    type Item = Result<Bytes, StdError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        if this.reading.is_none() {
            this.read_next();
        }
        let Some(reading) = this.reading.as_mut() else { return Poll::Ready(None) };
        let joined = ready!(Pin::new(reading).poll(cx));
        this.reading = None;
        let read = match joined {
            Ok((reader, read)) => {
                this.reader = Some(reader);
                read
            }
            Err(e) => Err(io::Error::other(e)),
        };
        match read {
            Ok(buf) => {
                this.remaining -= buf.len() as u64;
                this.read_next();
                Poll::Ready(Some(Ok(Bytes::from(buf))))
            }
            Err(e) => {
                this.remaining = 0;
                // The data file was truncated behind our back: end the body with an error, not garbage.
                let e = match e.kind() {
                    io::ErrorKind::UnexpectedEof => {
                        io::Error::new(io::ErrorKind::UnexpectedEof, "object data file is shorter than its metadata")
                    }
                    _ => e,
                };
                Poll::Ready(Some(Err(Box::new(e))))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, None)
    }
}

impl ByteStream for FileBody {
    fn remaining_length(&self) -> RemainingLength {
        usize::try_from(self.remaining).map_or_else(|_| RemainingLength::unknown(), RemainingLength::new_exact)
    }
}

pub(super) fn internal(e: io::Error) -> S3Error {
    s3_error!(e, InternalError)
}

/// Body errors from s3s (bad chunk signatures, ...) are already S3 errors; anything else means the
/// client went away or sent less than it announced.
fn body_error(e: StdError) -> S3Error {
    match e.downcast::<S3Error>() {
        Ok(e) => *e,
        Err(e) => S3Error::with_source(s3s::S3ErrorCode::IncompleteBody, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("devstack-disk-{}", uuid::Uuid::new_v4().simple()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn temp_file_is_removed_unless_kept() {
        let dir = scratch();
        let dropped = TempFile::new_in(&dir);
        fs::write(dropped.path(), b"x").unwrap();
        let dropped_path = dropped.path().to_owned();
        drop(dropped);
        assert!(!dropped_path.exists());

        let kept = TempFile::new_in(&dir);
        fs::write(kept.path(), b"x").unwrap();
        let moved = kept.rename(dir.join("final")).unwrap().keep();
        assert_eq!(fs::read(moved).unwrap(), b"x");
        fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn file_body_streams_exactly_the_range() {
        let dir = scratch();
        let chunk = BODY_CHUNK as usize;
        let data: Vec<u8> = (0..(chunk * 2 + 10)).map(|i| (i % 251) as u8).collect();
        fs::write(dir.join("f"), &data).unwrap();
        let range = 5..(chunk as u64 * 2 + 3);
        let file = fs::File::open(dir.join("f")).unwrap();
        let body = FileBody::new(vec![(file, data.len() as u64)], range.clone()).unwrap();
        assert_eq!(body.remaining_length().exact(), Some((range.end - range.start) as usize));
        let chunks: Vec<Bytes> = body.map(|c| c.unwrap()).collect().await;
        assert_eq!(chunks.len(), 2, "a whole chunk, then the rest");
        assert_eq!(chunks.concat(), &data[5..chunk * 2 + 3]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn file_body_of_a_data_file_cut_short_ends_with_an_error_not_garbage() {
        let dir = scratch();
        fs::write(dir.join("f"), vec![7u8; 1000]).unwrap();
        let file = fs::File::open(dir.join("f")).unwrap();
        let body = FileBody::new(vec![(file, BODY_CHUNK + 10)], 0..BODY_CHUNK + 10).unwrap();
        let items: Vec<_> = body.collect().await;
        assert_eq!(items.len(), 1, "no bytes before the error: the first chunk is short");
        let err = items[0].as_ref().unwrap_err().to_string();
        assert!(err.contains("shorter than its metadata"), "{err}");
        fs::remove_dir_all(dir).unwrap();
    }

    /// A part file shorter than its size would shift every later byte: an error instead.
    #[tokio::test]
    async fn file_body_across_parts_reads_them_in_order_and_stops_at_a_short_one() {
        let dir = scratch();
        fs::write(dir.join("1"), b"hello").unwrap();
        fs::write(dir.join("2"), b" world").unwrap();
        let open = |name: &str, size| (fs::File::open(dir.join(name)).unwrap(), size);
        let body = FileBody::new(vec![open("1", 5), open("2", 6)], 2..9).unwrap();
        let chunks: Vec<Bytes> = body.map(|c| c.unwrap()).collect().await;
        assert_eq!(chunks.concat(), b"llo wor");
        let short = FileBody::new(vec![open("1", 7), open("2", 6)], 0..13).unwrap();
        let items: Vec<_> = short.collect().await;
        assert!(items.iter().any(|i| i.is_err()), "a short part ends the body with an error");
        assert!(items.iter().filter_map(|i| i.as_ref().ok()).all(|c| c.is_empty()), "and no shifted bytes");
        fs::remove_dir_all(dir).unwrap();
    }
}
