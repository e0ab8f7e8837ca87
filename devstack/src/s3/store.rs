//! The object store behind the MinIO stand-in: an [`s3s::S3`] implementation on a local directory.
//!
//! s3s speaks HTTP, XML and SigV4; this module only stores. Layout under the root:
//!
//! ```text
//! <bucket>/bucket.json          creation date
//! <bucket>/meta/<sha256(key)>.json   object sidecar (key, size, etag, dates, headers, x-amz-meta-*)
//! <bucket>/data/<uuid>          object bytes; a fresh name per write
//! .tmp/                         uploads in flight, renamed into place when complete
//! .uploads/<upload id>/<part>   multipart parts (the upload registry itself lives in memory)
//! ```
//!
//! Keys never become paths (they can be 1024 bytes of anything). The sidecar is the commit point:
//! data is written to a temp file, moved to a new data file, then the sidecar is renamed over the
//! old one and the in-memory index updated under the bucket's lock. Readers open the data file under
//! that same lock, so they always see a complete object matching its metadata, and listings never
//! touch the disk.

mod conditions;
mod disk;
mod list;
mod meta;
mod multipart;
mod objects;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};
use serde::{Deserialize, Serialize};

use self::conditions::WriteConditions;
use self::disk::{TempFile, Written, internal};
use self::meta::{ObjectMeta, StoredHeaders};

/// Decides which buckets a caller sees in ListBuckets (MinIO filters by policy rather than refusing).
pub trait ListBucketsFilter: Send + Sync + 'static {
    /// Given the caller's access key (None = anonymous) and all bucket names, return the names the caller may see, or an error (e.g. AccessDenied).
    fn filter(&self, access_key: Option<&str>, buckets: Vec<String>) -> s3s::S3Result<Vec<String>>;
}

/// Shows every bucket to everyone.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl ListBucketsFilter for AllowAll {
    fn filter(&self, _access_key: Option<&str>, buckets: Vec<String>) -> S3Result<Vec<String>> {
        Ok(buckets)
    }
}

const TMP_DIR: &str = ".tmp";
const UPLOADS_DIR: &str = ".uploads";
const BUCKET_FILE: &str = "bucket.json";
const META_DIR: &str = "meta";
const DATA_DIR: &str = "data";
/// S3's minimum size for every part of a multipart upload but the last.
const DEFAULT_MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// The store. Cheap to clone: clones share the same state.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    /// Temp files live under the root so that renaming them into place is atomic.
    tmp: PathBuf,
    /// Lock order: `buckets` before any `Bucket::state`.
    buckets: RwLock<BTreeMap<String, Arc<Bucket>>>,
    uploads: multipart::Uploads,
    filter: Arc<dyn ListBucketsFilter>,
    min_part_size: AtomicU64,
}

struct Bucket {
    name: String,
    dir: PathBuf,
    created: i64,
    state: RwLock<BucketState>,
}

#[derive(Default)]
struct BucketState {
    objects: BTreeMap<String, ObjectMeta>,
    /// Set by DeleteBucket, so that a PUT racing it fails instead of writing into a removed directory.
    deleted: bool,
}

#[derive(Serialize, Deserialize)]
struct BucketFile {
    created: i64,
}

/// Bytes already on disk, about to become an object.
struct NewObject {
    key: String,
    /// A file, or a directory of part files (`part_sizes`).
    data: TempFile,
    part_sizes: Vec<u64>,
    size: u64,
    etag: String,
    headers: StoredHeaders,
    metadata: BTreeMap<String, String>,
}

impl NewObject {
    /// An object uploaded in one piece: its ETag is the MD5 of its bytes.
    fn single_part(key: String, written: Written, headers: StoredHeaders, metadata: BTreeMap<String, String>) -> Self {
        let Written { temp, md5, size } = written;
        Self { key, data: temp, part_sizes: Vec::new(), size, etag: hex::encode(md5), headers, metadata }
    }
}

impl Store {
    /// Opens (creating if needed) the store under `root` and indexes every bucket found there.
    /// Leftovers of a previous run (temp files, multipart parts, unreferenced data files) are removed.
    pub fn open(root: &Path, filter: Arc<dyn ListBucketsFilter>) -> io::Result<Store> {
        fs::create_dir_all(root)?;
        let tmp = root.join(TMP_DIR);
        recreate_dir(&tmp)?;
        recreate_dir(&root.join(UPLOADS_DIR))?;
        let mut buckets = BTreeMap::new();
        for entry in fs::read_dir(root)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
            if entry.file_type()?.is_dir() && s3s::path::check_bucket_name(&name) {
                let bucket = Bucket::load(entry.path(), name.clone())?;
                buckets.insert(name, Arc::new(bucket));
            }
        }
        let inner = Inner {
            root: root.to_owned(),
            tmp,
            buckets: RwLock::new(buckets),
            uploads: multipart::Uploads::new(root.join(UPLOADS_DIR)),
            filter,
            min_part_size: AtomicU64::new(DEFAULT_MIN_PART_SIZE),
        };
        Ok(Store { inner: Arc::new(inner) })
    }

    /// Creates the bucket unless it exists.
    pub fn ensure_bucket(&self, name: &str) -> io::Result<()> {
        self.create_bucket_dir(name).map(|_| ())
    }

    /// Stores an object (overwriting any), as a PUT without headers would.
    pub fn put_bytes(&self, bucket: &str, key: &str, body: &[u8]) -> io::Result<()> {
        let to_io = |e: s3s::S3Error| io::Error::other(e.to_string());
        if key.is_empty() || !s3s::path::check_key(key) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid object key {key:?}")));
        }
        let bucket = self.bucket(bucket).map_err(to_io)?;
        let written = disk::write_bytes(&self.inner.tmp, body)?;
        let object = NewObject::single_part(key.to_owned(), written, StoredHeaders::default(), BTreeMap::new());
        self.commit(&bucket, object, &WriteConditions::default()).map(|_| ()).map_err(to_io)
    }

    /// All bucket names, sorted.
    pub fn bucket_names(&self) -> Vec<String> {
        read(&self.inner.buckets).keys().cloned().collect()
    }

    /// Minimum size of every part but the last in CompleteMultipartUpload (default 5 MiB, as S3).
    pub fn set_min_part_size(&self, bytes: u64) {
        self.inner.min_part_size.store(bytes, Ordering::Relaxed);
    }

    fn min_part_size(&self) -> u64 {
        self.inner.min_part_size.load(Ordering::Relaxed)
    }

    fn bucket(&self, name: &str) -> S3Result<Arc<Bucket>> {
        read(&self.inner.buckets)
            .get(name)
            .cloned()
            .ok_or_else(|| s3_error!(NoSuchBucket, "The specified bucket does not exist"))
    }

    /// Creates a bucket; `Ok(false)` if it already existed.
    fn create_bucket_dir(&self, name: &str) -> io::Result<bool> {
        if !s3s::path::check_bucket_name(name) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid bucket name {name:?}")));
        }
        let mut buckets = write(&self.inner.buckets);
        if buckets.contains_key(name) {
            return Ok(false);
        }
        let dir = self.inner.root.join(name);
        fs::create_dir_all(dir.join(META_DIR))?;
        fs::create_dir_all(dir.join(DATA_DIR))?;
        let created = meta::now_secs();
        disk::json_temp(&self.inner.tmp, &BucketFile { created })?.rename(dir.join(BUCKET_FILE))?.keep();
        let state = RwLock::new(BucketState::default());
        buckets.insert(name.to_owned(), Arc::new(Bucket { name: name.to_owned(), dir, created, state }));
        Ok(true)
    }

    /// Removes an empty bucket: its directory goes first (moved aside, then deleted), so a failure
    /// leaves the bucket intact.
    fn remove_bucket(&self, name: &str) -> S3Result<()> {
        let mut buckets = write(&self.inner.buckets);
        let bucket = buckets.get(name).cloned().ok_or_else(|| s3_error!(NoSuchBucket))?;
        let mut state = write(&bucket.state);
        if !state.objects.is_empty() {
            return Err(s3_error!(BucketNotEmpty, "The bucket you tried to delete is not empty"));
        }
        let trash = self.inner.tmp.join(uuid::Uuid::new_v4().simple().to_string());
        fs::rename(&bucket.dir, &trash).map_err(internal)?;
        state.deleted = true;
        buckets.remove(name);
        drop((state, buckets));
        let _ = fs::remove_dir_all(trash);
        self.inner.uploads.abort_bucket(name);
        Ok(())
    }

    /// Makes `object` visible, replacing any previous version, if `cond` holds at that instant.
    fn commit(&self, bucket: &Bucket, object: NewObject, cond: &WriteConditions) -> S3Result<ObjectMeta> {
        if read(&bucket.state).deleted {
            return Err(s3_error!(NoSuchBucket));
        }
        let data_file = uuid::Uuid::new_v4().simple().to_string();
        let data = object.data.rename(bucket.data_dir().join(&data_file)).map_err(internal)?;
        let meta = ObjectMeta {
            key: object.key,
            size: object.size,
            etag: object.etag,
            last_modified: meta::now_secs(),
            headers: object.headers,
            metadata: object.metadata,
            data_file,
            part_sizes: object.part_sizes,
        };
        let sidecar = disk::json_temp(&self.inner.tmp, &meta).map_err(internal)?;
        let replaced = {
            let mut state = write(&bucket.state);
            if state.deleted {
                return Err(s3_error!(NoSuchBucket));
            }
            conditions::check_write(state.objects.get(&meta.key), cond)?;
            sidecar.rename(bucket.sidecar_path(&meta.key)).map_err(internal)?.keep();
            data.keep();
            state.objects.insert(meta.key.clone(), meta.clone())
        };
        // Readers open data files under the lock, so the old one is no longer needed by anyone new.
        if let Some(old) = replaced {
            disk::remove_data(&bucket.data_dir().join(old.data_file));
        }
        Ok(meta)
    }

    /// Deletes a key; a missing key is not an error (S3 answers 204 either way).
    fn remove_object(&self, bucket: &Bucket, key: &str, cond: &WriteConditions) -> S3Result<()> {
        let removed = {
            let mut state = write(&bucket.state);
            if cond.if_match.is_some() {
                conditions::check_write(state.objects.get(key), cond)?;
            }
            if !state.objects.contains_key(key) {
                return Ok(());
            }
            match fs::remove_file(bucket.sidecar_path(key)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(internal(e)),
            }
            state.objects.remove(key)
        };
        if let Some(old) = removed {
            disk::remove_data(&bucket.data_dir().join(old.data_file));
        }
        Ok(())
    }
}

impl Bucket {
    /// Indexes a bucket directory from its sidecars, and drops data files no sidecar refers to
    /// (left by a crash between writing the data and committing the sidecar). A sidecar that cannot
    /// be parsed is left alone, and then so are the data files, since one of them may be its data.
    fn load(dir: PathBuf, name: String) -> io::Result<Bucket> {
        fs::create_dir_all(dir.join(META_DIR))?;
        fs::create_dir_all(dir.join(DATA_DIR))?;
        let created = disk::read_small(&dir.join(BUCKET_FILE))
            .ok()
            .and_then(|json| serde_json::from_slice::<BucketFile>(&json).ok())
            .map_or_else(meta::now_secs, |f| f.created);
        let mut objects = BTreeMap::new();
        let mut all_parsed = true;
        for entry in fs::read_dir(dir.join(META_DIR))? {
            let path = entry?.path();
            match disk::read_small(&path).map(|json| serde_json::from_slice::<ObjectMeta>(&json)) {
                Ok(Ok(meta)) if is_file_name(&meta.data_file) && has_data(&dir.join(DATA_DIR), &meta) => {
                    objects.insert(meta.key.clone(), meta);
                }
                Ok(Ok(_)) => {
                    tracing::warn!(path = %path.display(), "dropping object sidecar whose data file is missing");
                    let _ = fs::remove_file(&path);
                }
                Ok(Err(e)) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring unparsable object sidecar");
                    all_parsed = false;
                }
                Err(e) => return Err(e),
            }
        }
        if all_parsed {
            remove_unreferenced(&dir.join(DATA_DIR), &objects)?;
        }
        let state = RwLock::new(BucketState { objects, deleted: false });
        Ok(Bucket { name, dir, created, state })
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join(DATA_DIR)
    }

    fn sidecar_path(&self, key: &str) -> PathBuf {
        self.dir.join(META_DIR).join(meta::sidecar_name(key))
    }

    fn get(&self, key: &str) -> S3Result<ObjectMeta> {
        read(&self.state).objects.get(key).cloned().ok_or_else(no_such_key)
    }

    /// The object's metadata and its data files, opened consistently (see the module docs).
    fn open_object(&self, key: &str) -> S3Result<(ObjectMeta, disk::DataFiles)> {
        let state = read(&self.state);
        let meta = state.objects.get(key).ok_or_else(no_such_key)?;
        let path = self.data_dir().join(&meta.data_file);
        let files = match meta.part_sizes.as_slice() {
            [] => vec![(fs::File::open(&path).map_err(internal)?, meta.size)],
            sizes => (sizes.iter().enumerate())
                .map(|(i, size)| Ok((fs::File::open(path.join(disk::part_file_name(i))).map_err(internal)?, *size)))
                .collect::<S3Result<_>>()?,
        };
        Ok((meta.clone(), files))
    }
}

/// Sidecars are only read from our own state directory, but a data file name must still not lead
/// out of the bucket's data directory.
fn is_file_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Removes data files (and multipart objects' directories) that no object refers to.
fn remove_unreferenced(data_dir: &Path, objects: &BTreeMap<String, ObjectMeta>) -> io::Result<()> {
    let referenced: std::collections::HashSet<&str> = objects.values().map(|m| m.data_file.as_str()).collect();
    for entry in fs::read_dir(data_dir)? {
        let entry = entry?;
        if !entry.file_name().to_str().is_some_and(|n| referenced.contains(n)) {
            disk::remove_data(&entry.path());
        }
    }
    Ok(())
}

/// Whether an object's data is all there: its file, or every part file of a multipart object.
fn has_data(data_dir: &Path, meta: &ObjectMeta) -> bool {
    let path = data_dir.join(&meta.data_file);
    match meta.part_sizes.len() {
        0 => path.is_file(),
        n => {
            meta.part_sizes.iter().sum::<u64>() == meta.size
                && (0..n).all(|i| path.join(disk::part_file_name(i)).is_file())
        }
    }
}

fn no_such_key() -> s3s::S3Error {
    s3_error!(NoSuchKey, "The specified key does not exist.")
}

/// Empties a scratch directory: nothing in flight survives a restart.
fn recreate_dir(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::create_dir_all(dir)
}

/// Lock helpers: a panic elsewhere must not turn every later request into a panic too.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[async_trait::async_trait]
impl S3 for Store {
    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        let access_key = req.credentials.as_ref().map(|c| c.access_key.as_str());
        let visible = self.inner.filter.filter(access_key, self.bucket_names())?;
        let prefix = req.input.prefix.unwrap_or_default();
        let buckets = read(&self.inner.buckets);
        let list = visible
            .iter()
            .filter(|name| name.starts_with(&prefix))
            .filter_map(|name| buckets.get(name))
            .map(|b| s3s::dto::Bucket {
                name: Some(b.name.clone()),
                creation_date: Some(meta::timestamp(b.created)),
                ..Default::default()
            })
            .collect();
        let output = ListBucketsOutput { buckets: Some(list), owner: Some(meta::owner()), ..Default::default() };
        Ok(S3Response::new(output))
    }

    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        let name = req.input.bucket;
        match self.create_bucket_dir(&name) {
            Ok(true) => Ok(S3Response::new(CreateBucketOutput { location: Some(format!("/{name}")) })),
            Ok(false) => Err(s3_error!(BucketAlreadyOwnedByYou)),
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => Err(s3_error!(InvalidBucketName)),
            Err(e) => Err(internal(e)),
        }
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        self.bucket(&req.input.bucket)?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.remove_bucket(&req.input.bucket)?;
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }

    /// Answers the region the request was signed for, so clients keep signing for it;
    /// us-east-1 is the empty constraint, as in S3.
    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.bucket(&req.input.bucket)?;
        let location_constraint = req
            .region
            .as_ref()
            .map(|r| r.as_str())
            .filter(|r| *r != "us-east-1")
            .map(|r| BucketLocationConstraint::from(r.to_owned()));
        Ok(S3Response::new(GetBucketLocationOutput { location_constraint }))
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.list_v2(req.input).map(S3Response::new)
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        self.list_v1(req.input).map(S3Response::new)
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        self.head(&req.input).map(S3Response::new)
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        self.get(&req.input).map(S3Response::new)
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        self.put(req.input).await.map(S3Response::new)
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        self.copy(req.input).await.map(S3Response::new)
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        let bucket = self.bucket(&req.input.bucket)?;
        let cond = WriteConditions { if_match: req.input.if_match, if_none_match: None };
        self.remove_object(&bucket, &req.input.key, &cond)?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.delete_many(req.input).map(S3Response::new)
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.mpu_create(req.input).map(S3Response::new)
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        self.mpu_upload_part(req.input).await.map(S3Response::new)
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        self.mpu_upload_part_copy(req.input).await.map(S3Response::new)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.mpu_complete(req.input).await.map(S3Response::new)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.mpu_abort(&req.input).map(S3Response::new)
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        self.mpu_list_parts(&req.input).map(S3Response::new)
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        self.mpu_list(req.input).map(S3Response::new)
    }
}
