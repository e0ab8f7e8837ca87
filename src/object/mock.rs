//! An in-memory `ObjectClient` for unit and property tests: S3's listing semantics (lexicographic,
//! delimiter `/`, paging), ETags that change on every write, per-bucket write denial, and multipart
//! uploads checked as S3 checks them (part sizes, ETags, unknown upload ids).

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use md5::Digest;

use super::meta::FileMeta;
use super::{ListPage, MIN_PART_SIZE, ObjectClient, ObjectError, ObjectInfo, Part, Upload};

/// Objects of one bucket: key → (body, info).
type Objects = BTreeMap<String, (Bytes, ObjectInfo)>;

/// A multipart upload in progress: its target, metadata and parts by number.
struct OpenUpload {
    bucket: String,
    key: String,
    meta: FileMeta,
    parts: BTreeMap<u32, Bytes>,
}

#[derive(Default)]
pub struct MockObjectClient {
    buckets: Mutex<BTreeMap<String, Objects>>,
    read_only: Mutex<HashSet<String>>,
    /// CopyObject of a `dir/` marker answers NotFound, as some servers do for such keys.
    refuse_marker_copies: std::sync::atomic::AtomicBool,
    page_size: usize,
    version: AtomicU64,
    /// Multipart uploads begun and neither completed nor aborted, by upload id.
    uploads: Mutex<BTreeMap<String, OpenUpload>>,
    /// Requests served, by operation name, for tests that count them.
    pub calls: Mutex<BTreeMap<&'static str, u64>>,
}

impl MockObjectClient {
    pub fn new() -> Self {
        MockObjectClient { page_size: 1000, ..Default::default() }
    }

    pub fn with_page_size(page_size: usize) -> Self {
        MockObjectClient { page_size: page_size.max(1), ..Default::default() }
    }

    pub fn add_bucket(&self, name: &str) {
        self.buckets.lock().unwrap().entry(name.to_string()).or_default();
    }

    /// Writes to this bucket fail with AccessDenied, as for a read-only policy.
    pub fn deny_writes(&self, bucket: &str) {
        self.read_only.lock().unwrap().insert(bucket.to_string());
    }

    /// CopyObject of keys ending in `/` fails with NotFound from now on.
    pub fn refuse_marker_copies(&self) {
        self.refuse_marker_copies.store(true, Ordering::SeqCst);
    }

    pub fn object(&self, bucket: &str, key: &str) -> Option<Bytes> {
        self.buckets.lock().unwrap().get(bucket)?.get(key).map(|(b, _)| b.clone())
    }

    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.buckets.lock().unwrap().get(bucket).map(|b| b.keys().cloned().collect()).unwrap_or_default()
    }

    pub fn calls_of(&self, op: &'static str) -> u64 {
        self.calls.lock().unwrap().get(op).copied().unwrap_or(0)
    }

    fn count(&self, op: &'static str) {
        *self.calls.lock().unwrap().entry(op).or_default() += 1;
    }

    /// Stores an object directly (a change "behind the mount's back" in tests).
    pub fn insert(&self, bucket: &str, key: &str, body: impl Into<Bytes>) -> ObjectInfo {
        self.insert_with(bucket, key, body, &FileMeta::default())
    }

    /// Stores an object with metadata.
    pub fn insert_with(&self, bucket: &str, key: &str, body: impl Into<Bytes>, meta: &FileMeta) -> ObjectInfo {
        let body = body.into();
        let info = ObjectInfo {
            key: key.to_string(),
            size: body.len() as u64,
            etag: format!("\"v{}\"", self.version.fetch_add(1, Ordering::Relaxed) + 1),
            last_modified: SystemTime::now(),
            meta: FileMeta { known: true, ..*meta },
        };
        self.buckets
            .lock()
            .unwrap()
            .entry(bucket.to_string())
            .or_default()
            .insert(key.to_string(), (body, info.clone()));
        info
    }

    /// Multipart uploads begun and neither completed nor aborted (S3 would keep their parts).
    pub fn open_uploads(&self) -> usize {
        self.uploads.lock().unwrap().len()
    }

    fn check_write(&self, bucket: &str) -> Result<(), ObjectError> {
        if !self.buckets.lock().unwrap().contains_key(bucket) {
            return Err(ObjectError::NotFound);
        }
        if self.read_only.lock().unwrap().contains(bucket) {
            return Err(ObjectError::AccessDenied);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ObjectClient for MockObjectClient {
    async fn list_buckets(&self) -> Result<Vec<String>, ObjectError> {
        self.count("ListBuckets");
        Ok(self.buckets.lock().unwrap().keys().cloned().collect())
    }

    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<String>,
    ) -> Result<ListPage, ObjectError> {
        self.count("ListObjectsV2");
        let buckets = self.buckets.lock().unwrap();
        let objects = buckets.get(bucket).ok_or(ObjectError::NotFound)?;
        // Every entry of the listing in order: objects by key, common prefixes by prefix.
        let mut entries: Vec<(String, Option<ObjectInfo>)> = Vec::new();
        for (key, (_, info)) in objects.range(prefix.to_string()..) {
            if !key.starts_with(prefix) {
                break;
            }
            match key[prefix.len()..].find('/') {
                Some(i) => {
                    let common = key[..prefix.len() + i + 1].to_string();
                    if entries.last().map(|e| &e.0) != Some(&common) {
                        entries.push((common, None));
                    }
                }
                None => entries.push((key.clone(), Some(info.clone()))),
            }
        }
        let start = continuation.unwrap_or_default();
        let mut rest = entries.into_iter().filter(|(name, _)| start.is_empty() || *name > start).peekable();
        let mut page = ListPage::default();
        for (name, info) in rest.by_ref().take(self.page_size) {
            match info {
                Some(info) => page.objects.push(info),
                None => page.prefixes.push(name.clone()),
            }
            page.continuation = Some(name);
        }
        if rest.peek().is_none() {
            page.continuation = None;
        }
        Ok(page)
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, ObjectError> {
        self.count("HeadObject");
        let buckets = self.buckets.lock().unwrap();
        buckets.get(bucket).and_then(|b| b.get(key)).map(|(_, i)| i.clone()).ok_or(ObjectError::NotFound)
    }

    async fn get_range(
        &self,
        bucket: &str,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<Bytes, ObjectError> {
        self.count("GetObject");
        let buckets = self.buckets.lock().unwrap();
        let (body, info) = buckets.get(bucket).and_then(|b| b.get(key)).ok_or(ObjectError::NotFound)?;
        if etag.is_some_and(|e| e != info.etag) {
            return Err(ObjectError::Changed);
        }
        let end = range.end.min(body.len() as u64) as usize;
        let start = (range.start as usize).min(end);
        Ok(body.slice(start..end))
    }

    async fn put_file(&self, bucket: &str, key: &str, file: &File, meta: &FileMeta) -> Result<ObjectInfo, ObjectError> {
        self.count("PutObject");
        self.check_write(bucket)?;
        let len = file.metadata().map_err(|e| ObjectError::Other(e.to_string()))?.len();
        let mut body = vec![0u8; len as usize];
        std::os::unix::fs::FileExt::read_exact_at(file, &mut body, 0).map_err(|e| ObjectError::Other(e.to_string()))?;
        Ok(self.insert_with(bucket, key, body, meta))
    }

    async fn put_bytes(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        meta: &FileMeta,
    ) -> Result<ObjectInfo, ObjectError> {
        self.count("PutObject");
        self.check_write(bucket)?;
        Ok(self.insert_with(bucket, key, body, meta))
    }

    async fn begin_upload(&self, bucket: &str, key: &str, meta: &FileMeta) -> Result<Upload, ObjectError> {
        self.count("CreateMultipartUpload");
        self.check_write(bucket)?;
        let id = format!("upload-{}", self.version.fetch_add(1, Ordering::Relaxed) + 1);
        let open = OpenUpload { bucket: bucket.to_string(), key: key.to_string(), meta: *meta, parts: BTreeMap::new() };
        self.uploads.lock().unwrap().insert(id.clone(), open);
        Ok(Upload { bucket: bucket.to_string(), key: key.to_string(), id })
    }

    async fn upload_part(
        &self,
        upload: &Upload,
        number: u32,
        file: &File,
        range: Range<u64>,
    ) -> Result<Part, ObjectError> {
        self.count("UploadPart");
        let mut body = vec![0u8; range.end.saturating_sub(range.start) as usize];
        std::os::unix::fs::FileExt::read_exact_at(file, &mut body, range.start)
            .map_err(|e| ObjectError::Other(e.to_string()))?;
        let mut uploads = self.uploads.lock().unwrap();
        let open = uploads.get_mut(&upload.id).ok_or(ObjectError::NotFound)?;
        let etag = format!("\"{}\"", hex::encode(md5::Md5::digest(&body)));
        open.parts.insert(number, body.into());
        Ok(Part { number, etag, crc32c: None })
    }

    /// As S3: every part named must be stored with that ETag, in ascending order, and all but the
    /// last at least `MIN_PART_SIZE` (EntityTooSmall).
    async fn complete_upload(
        &self,
        upload: &Upload,
        parts: &[Part],
        _size: u64,
        _meta: &FileMeta,
    ) -> Result<ObjectInfo, ObjectError> {
        self.count("CompleteMultipartUpload");
        let open = self.uploads.lock().unwrap().remove(&upload.id).ok_or(ObjectError::NotFound)?;
        let mut body = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let stored = open.parts.get(&part.number).ok_or_else(|| ObjectError::Other("InvalidPart".into()))?;
            let etag = format!("\"{}\"", hex::encode(md5::Md5::digest(stored)));
            let in_order = i == 0 || parts[i - 1].number < part.number;
            let too_small = i + 1 < parts.len() && (stored.len() as u64) < MIN_PART_SIZE;
            if etag != part.etag || !in_order || too_small {
                return Err(ObjectError::Other(format!("part {} refused", part.number)));
            }
            body.extend_from_slice(stored);
        }
        Ok(self.insert_with(&open.bucket, &open.key, body, &open.meta))
    }

    async fn abort_upload(&self, upload: &Upload) -> Result<(), ObjectError> {
        self.count("AbortMultipartUpload");
        self.uploads.lock().unwrap().remove(&upload.id).map(|_| ()).ok_or(ObjectError::NotFound)
    }

    async fn set_meta(&self, bucket: &str, key: &str, meta: &FileMeta) -> Result<ObjectInfo, ObjectError> {
        self.count("CopyObject");
        self.check_write(bucket)?;
        let body = self.object(bucket, key).ok_or(ObjectError::NotFound)?;
        Ok(self.insert_with(bucket, key, body, meta))
    }

    async fn copy(&self, bucket: &str, from: &str, to: &str) -> Result<(), ObjectError> {
        self.count("CopyObject");
        self.check_write(bucket)?;
        if from.ends_with('/') && self.refuse_marker_copies.load(Ordering::SeqCst) {
            return Err(ObjectError::NotFound);
        }
        let (body, info) = {
            let buckets = self.buckets.lock().unwrap();
            buckets.get(bucket).and_then(|b| b.get(from)).cloned().ok_or(ObjectError::NotFound)?
        };
        self.insert_with(bucket, to, body, &info.meta);
        Ok(())
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        self.count("DeleteObject");
        self.check_write(bucket)?;
        if let Some(b) = self.buckets.lock().unwrap().get_mut(bucket) {
            b.remove(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delimiter_listing_pages_like_s3() {
        let c = MockObjectClient::with_page_size(2);
        c.add_bucket("b");
        for k in ["a.txt", "d/1", "d/2", "d/3", "e/", "f.txt", "g/x/y"] {
            c.insert("b", k, "x");
        }
        let mut objects = Vec::new();
        let mut prefixes = Vec::new();
        let mut token = None;
        loop {
            let page = c.list_page("b", "", token).await.unwrap();
            objects.extend(page.objects.into_iter().map(|o| o.key));
            prefixes.extend(page.prefixes);
            match page.continuation {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(objects, ["a.txt", "f.txt"]);
        assert_eq!(prefixes, ["d/", "e/", "g/"]);
        let inside = c.list_page("b", "d/", None).await.unwrap();
        assert_eq!(inside.objects.len(), 2);
    }
}
