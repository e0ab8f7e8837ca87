//! Multipart uploads. The registry of uploads in progress lives in memory (a restart aborts them,
//! which S3 clients handle: they retry or start over); parts are files under `.uploads/<id>/`.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::{S3Result, s3_error};

use super::conditions::{self, WriteConditions, read_conditions};
use super::disk::{self, Written, internal};
use super::list::{self, Entry};
use super::meta::{self, StoredHeaders, stored_headers};
use super::{NewObject, Store};

/// S3's part number range.
const PART_NUMBERS: std::ops::RangeInclusive<i32> = 1..=10_000;

pub(super) struct Uploads {
    dir: PathBuf,
    state: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    uploads: HashMap<String, Upload>,
    /// Creation order, to list several uploads of one key oldest first.
    next_seq: u64,
}

struct Upload {
    id: String,
    bucket: String,
    key: String,
    initiated: i64,
    seq: u64,
    headers: StoredHeaders,
    metadata: BTreeMap<String, String>,
    parts: BTreeMap<i32, Part>,
}

#[derive(Clone)]
struct Part {
    etag: String,
    md5: [u8; 16],
    size: u64,
    last_modified: i64,
}

fn no_such_upload() -> s3s::S3Error {
    s3_error!(
        NoSuchUpload,
        "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )
}

impl Uploads {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, state: Mutex::new(Registry::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Only ids found in the registry (our own UUIDs) ever reach this, never raw client input.
    fn upload_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn part_path(&self, id: &str, number: i32) -> PathBuf {
        self.upload_dir(id).join(number.to_string())
    }

    fn remove_dir(&self, id: &str) {
        let _ = fs::remove_dir_all(self.upload_dir(id));
    }

    /// Drops every upload into a deleted bucket.
    pub fn abort_bucket(&self, bucket: &str) {
        let mut registry = self.lock();
        let ids: Vec<String> = registry.uploads.values().filter(|u| u.bucket == bucket).map(|u| u.id.clone()).collect();
        for id in ids {
            registry.uploads.remove(&id);
            self.remove_dir(&id);
        }
    }

    /// Fails with NoSuchUpload unless `id` is in progress for this bucket and key.
    fn ensure(&self, id: &str, bucket: &str, key: &str) -> S3Result<()> {
        find(&mut self.lock(), id, bucket, key).map(|_| ())
    }

    /// Stores a received part, replacing any earlier part with the same number.
    fn add_part(&self, id: &str, bucket: &str, key: &str, number: i32, written: Written) -> S3Result<Part> {
        let mut registry = self.lock();
        let upload = find(&mut registry, id, bucket, key)?;
        written.temp.rename(self.part_path(id, number)).map_err(internal)?.keep();
        let part = Part {
            etag: hex::encode(written.md5),
            md5: written.md5,
            size: written.size,
            last_modified: meta::now_secs(),
        };
        upload.parts.insert(number, part.clone());
        Ok(part)
    }

    /// Validates the client's part list and takes the upload out of the registry, so no part can be
    /// added or the upload aborted while it is being assembled. Invalid lists leave it in place.
    fn take_for_completion(
        &self,
        id: &str,
        bucket: &str,
        key: &str,
        requested: &[CompletedPart],
        min_part_size: u64,
    ) -> S3Result<(Upload, Vec<(i32, Part)>)> {
        let mut registry = self.lock();
        let upload = find(&mut registry, id, bucket, key)?;
        let parts = select_parts(upload, requested, min_part_size)?;
        let upload = registry.uploads.remove(id).ok_or_else(no_such_upload)?;
        Ok((upload, parts))
    }

    /// Puts back an upload whose completion failed, so the client can retry or abort it.
    fn restore(&self, upload: Upload) {
        self.lock().uploads.insert(upload.id.clone(), upload);
    }
}

fn find<'r>(registry: &'r mut Registry, id: &str, bucket: &str, key: &str) -> S3Result<&'r mut Upload> {
    registry.uploads.get_mut(id).filter(|u| u.bucket == bucket && u.key == key).ok_or_else(no_such_upload)
}

/// The parts named by CompleteMultipartUpload, checked as S3 does: ascending part numbers, known
/// parts with matching ETags, and every part but the last at least `min_part_size` bytes.
fn select_parts(upload: &Upload, requested: &[CompletedPart], min_part_size: u64) -> S3Result<Vec<(i32, Part)>> {
    if requested.is_empty() {
        return Err(s3_error!(MalformedXML, "You must specify at least one part"));
    }
    let mut selected: Vec<(i32, Part)> = Vec::with_capacity(requested.len());
    for wanted in requested {
        let invalid_part = || {
            s3_error!(
                InvalidPart,
                "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
            )
        };
        let number = wanted.part_number.ok_or_else(invalid_part)?;
        if selected.last().is_some_and(|(previous, _)| number <= *previous) {
            return Err(s3_error!(InvalidPartOrder, "The list of parts was not in ascending order."));
        }
        let part = upload.parts.get(&number).ok_or_else(invalid_part)?;
        if wanted.e_tag.as_ref().is_none_or(|e| e.value() != part.etag) {
            return Err(invalid_part());
        }
        selected.push((number, part.clone()));
    }
    if let Some((_, init)) = selected.split_last()
        && init.iter().any(|(_, p)| p.size < min_part_size)
    {
        return Err(s3_error!(EntityTooSmall, "Your proposed upload is smaller than the minimum allowed object size."));
    }
    Ok(selected)
}

/// S3's multipart ETag: MD5 of the concatenated binary part MD5s, then `-<number of parts>`.
fn multipart_etag(parts: &[(i32, Part)]) -> String {
    let mut md5 = Md5::new();
    for (_, part) in parts {
        md5.update(part.md5);
    }
    format!("{}-{}", hex::encode(md5.finalize()), parts.len())
}

fn check_part_number(number: i32) -> S3Result<()> {
    if PART_NUMBERS.contains(&number) {
        Ok(())
    } else {
        Err(s3_error!(InvalidArgument, "Part number must be an integer between 1 and 10000, inclusive"))
    }
}

impl Store {
    pub(super) fn mpu_create(&self, input: CreateMultipartUploadInput) -> S3Result<CreateMultipartUploadOutput> {
        self.bucket(&input.bucket)?;
        let uploads = &self.inner.uploads;
        let id = uuid::Uuid::new_v4().simple().to_string();
        fs::create_dir_all(uploads.upload_dir(&id)).map_err(internal)?;
        let mut registry = uploads.lock();
        let seq = registry.next_seq;
        registry.next_seq += 1;
        let upload = Upload {
            id: id.clone(),
            bucket: input.bucket.clone(),
            key: input.key.clone(),
            initiated: meta::now_secs(),
            seq,
            headers: stored_headers!(input),
            metadata: meta::metadata_from_dto(input.metadata),
            parts: BTreeMap::new(),
        };
        registry.uploads.insert(id.clone(), upload);
        Ok(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(id),
            ..Default::default()
        })
    }

    pub(super) async fn mpu_upload_part(&self, input: UploadPartInput) -> S3Result<UploadPartOutput> {
        check_part_number(input.part_number)?;
        let uploads = &self.inner.uploads;
        // Refuse before receiving the body; checked again when the part is stored.
        uploads.ensure(&input.upload_id, &input.bucket, &input.key)?;
        let expected_md5 = input.content_md5.as_deref().map(conditions::parse_content_md5).transpose()?;
        let written = disk::write_stream(&self.inner.tmp, input.body).await?;
        conditions::verify_md5(expected_md5, &written.md5)?;
        let part = uploads.add_part(&input.upload_id, &input.bucket, &input.key, input.part_number, written)?;
        Ok(UploadPartOutput { e_tag: Some(meta::etag(&part.etag)), ..Default::default() })
    }

    pub(super) async fn mpu_upload_part_copy(&self, input: UploadPartCopyInput) -> S3Result<UploadPartCopyOutput> {
        check_part_number(input.part_number)?;
        let uploads = &self.inner.uploads;
        uploads.ensure(&input.upload_id, &input.bucket, &input.key)?;
        let (src_meta, files) = self.open_copy_source(&input.copy_source, read_conditions!(copy_source input))?;
        let range = conditions::copy_source_range(input.copy_source_range.as_deref(), src_meta.size)?;
        let written = disk::copy_range(&self.inner.tmp, files, range).await.map_err(internal)?;
        let part = uploads.add_part(&input.upload_id, &input.bucket, &input.key, input.part_number, written)?;
        let result = CopyPartResult {
            e_tag: Some(meta::etag(&part.etag)),
            last_modified: Some(meta::timestamp(part.last_modified)),
            ..Default::default()
        };
        Ok(UploadPartCopyOutput { copy_part_result: Some(result), ..Default::default() })
    }

    pub(super) async fn mpu_complete(
        &self,
        input: CompleteMultipartUploadInput,
    ) -> S3Result<CompleteMultipartUploadOutput> {
        let bucket = self.bucket(&input.bucket)?;
        let requested = input.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
        let uploads = &self.inner.uploads;
        let (upload, parts) = uploads.take_for_completion(
            &input.upload_id,
            &input.bucket,
            &input.key,
            &requested,
            self.min_part_size(),
        )?;
        let paths: Vec<PathBuf> = parts.iter().map(|(n, _)| uploads.part_path(&upload.id, *n)).collect();
        // The parts become the object's data as they are (linked, not copied), as MinIO does; a
        // filesystem without hard links gets them copied into one file.
        let assembled = match disk::link_parts(&self.inner.tmp, paths.clone()).await {
            Ok(linked) => Ok((linked, parts.iter().map(|(_, p)| p.size).collect())),
            Err(e) => {
                tracing::debug!(error = %e, "cannot link the parts; copying them into one file");
                disk::concat(&self.inner.tmp, paths).await.map(|file| (file, Vec::new()))
            }
        };
        let (assembled, part_sizes) = match assembled {
            Ok(done) => done,
            Err(e) => {
                uploads.restore(upload);
                return Err(internal(e));
            }
        };
        let object = NewObject {
            key: upload.key.clone(),
            data: assembled,
            part_sizes,
            size: parts.iter().map(|(_, p)| p.size).sum(),
            etag: multipart_etag(&parts),
            headers: upload.headers.clone(),
            metadata: upload.metadata.clone(),
        };
        let cond = WriteConditions { if_match: input.if_match, if_none_match: input.if_none_match };
        match self.commit(&bucket, object, &cond) {
            Ok(meta) => {
                uploads.remove_dir(&upload.id);
                Ok(CompleteMultipartUploadOutput {
                    location: Some(format!("/{}/{}", input.bucket, input.key)),
                    bucket: Some(input.bucket),
                    key: Some(input.key),
                    e_tag: Some(meta.e_tag()),
                    ..Default::default()
                })
            }
            Err(e) => {
                uploads.restore(upload);
                Err(e)
            }
        }
    }

    pub(super) fn mpu_abort(&self, input: &AbortMultipartUploadInput) -> S3Result<AbortMultipartUploadOutput> {
        let uploads = &self.inner.uploads;
        {
            let mut registry = uploads.lock();
            find(&mut registry, &input.upload_id, &input.bucket, &input.key)?;
            registry.uploads.remove(&input.upload_id);
        }
        uploads.remove_dir(&input.upload_id);
        Ok(AbortMultipartUploadOutput::default())
    }

    pub(super) fn mpu_list_parts(&self, input: &ListPartsInput) -> S3Result<ListPartsOutput> {
        let max = list::max_keys(input.max_parts)?;
        let after = input.part_number_marker.unwrap_or(0);
        let mut registry = self.inner.uploads.lock();
        let upload = find(&mut registry, &input.upload_id, &input.bucket, &input.key)?;
        let mut remaining = upload.parts.range(after.saturating_add(1)..).peekable();
        let parts: Vec<s3s::dto::Part> = remaining
            .by_ref()
            .take(max)
            .map(|(n, p)| s3s::dto::Part {
                part_number: Some(*n),
                e_tag: Some(meta::etag(&p.etag)),
                size: Some(super::objects::length(p.size)),
                last_modified: Some(meta::timestamp(p.last_modified)),
                ..Default::default()
            })
            .collect();
        // With max-parts=0 nothing is returned and nothing is "truncated", so clients cannot loop.
        let truncated = max > 0 && remaining.peek().is_some();
        Ok(ListPartsOutput {
            bucket: Some(input.bucket.clone()),
            key: Some(input.key.clone()),
            upload_id: Some(input.upload_id.clone()),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: parts.last().and_then(|p| p.part_number).filter(|_| truncated),
            max_parts: Some(i32::try_from(max).unwrap_or(i32::MAX)),
            is_truncated: Some(truncated),
            parts: Some(parts),
            initiator: Some(initiator()),
            owner: Some(meta::owner()),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            ..Default::default()
        })
    }

    /// Uploads in progress in a bucket, by key then age, with S3's key/upload-id markers and
    /// prefix/delimiter grouping.
    pub(super) fn mpu_list(&self, input: ListMultipartUploadsInput) -> S3Result<ListMultipartUploadsOutput> {
        self.bucket(&input.bucket)?;
        let max = list::max_keys(input.max_uploads)?;
        let url = list::url_encoding(input.encoding_type.as_ref())?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let registry = self.inner.uploads.lock();
        let mut matching: Vec<&Upload> =
            registry.uploads.values().filter(|u| u.bucket == input.bucket && u.key.starts_with(&prefix)).collect();
        matching.sort_by(|a, b| (&a.key, a.seq).cmp(&(&b.key, b.seq)));
        let start = start_after_markers(&matching, input.key_marker.as_deref(), input.upload_id_marker.as_deref());
        let items = matching[start..].iter().map(|u| (u.key.as_str(), *u));
        let page = list::paginate(items, &prefix, input.delimiter.as_deref(), input.key_marker.as_deref(), max);

        let (mut uploads, mut prefixes) = (Vec::new(), Vec::new());
        let (mut next_key, mut next_id) = (None, None);
        for entry in page.entries {
            match entry {
                Entry::Item(u) => {
                    uploads.push(MultipartUpload {
                        key: Some(list::encode(&u.key, url)),
                        upload_id: Some(u.id.clone()),
                        initiated: Some(meta::timestamp(u.initiated)),
                        initiator: Some(initiator()),
                        owner: Some(meta::owner()),
                        storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                        ..Default::default()
                    });
                    (next_key, next_id) = (Some(u.key.clone()), Some(u.id.clone()));
                }
                Entry::Prefix(p) => {
                    prefixes.push(CommonPrefix { prefix: Some(list::encode(&p, url)) });
                    (next_key, next_id) = (Some(p), None);
                }
            }
        }
        let truncated = page.truncated;
        Ok(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: Some(list::encode(&prefix, url)),
            delimiter: input.delimiter.as_deref().map(|d| list::encode(d, url)),
            key_marker: input.key_marker.as_deref().map(|k| list::encode(k, url)),
            upload_id_marker: input.upload_id_marker,
            next_key_marker: next_key.filter(|_| truncated).map(|k| list::encode(&k, url)),
            next_upload_id_marker: next_id.filter(|_| truncated),
            max_uploads: Some(i32::try_from(max).unwrap_or(i32::MAX)),
            is_truncated: Some(truncated),
            uploads: Some(uploads),
            common_prefixes: Some(prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        })
    }
}

/// Index of the first upload after the markers in `sorted` (by key, then age): after the marked
/// upload if both markers name one, else after every upload of keys up to `key_marker`.
fn start_after_markers(sorted: &[&Upload], key_marker: Option<&str>, upload_id_marker: Option<&str>) -> usize {
    let Some(key_marker) = key_marker.filter(|k| !k.is_empty()) else { return 0 };
    upload_id_marker
        .and_then(|id| sorted.iter().position(|u| u.key == key_marker && u.id == id))
        .map_or_else(|| sorted.partition_point(|u| u.key.as_str() <= key_marker), |i| i + 1)
}

fn initiator() -> Initiator {
    let owner = meta::owner();
    Initiator { display_name: owner.display_name, id: owner.id }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(parts: &[(i32, &str, u64)]) -> Upload {
        Upload {
            id: "u".into(),
            bucket: "b".into(),
            key: "k".into(),
            initiated: 0,
            seq: 0,
            headers: StoredHeaders::default(),
            metadata: BTreeMap::new(),
            parts: parts
                .iter()
                .map(|(n, etag, size)| {
                    (*n, Part { etag: (*etag).into(), md5: [*n as u8; 16], size: *size, last_modified: 0 })
                })
                .collect(),
        }
    }

    fn wanted(n: i32, etag: &str) -> CompletedPart {
        CompletedPart { part_number: Some(n), e_tag: Some(ETag::Strong(etag.into())), ..Default::default() }
    }

    fn code(r: S3Result<Vec<(i32, Part)>>) -> String {
        r.err().map(|e| e.code().as_str().to_owned()).unwrap_or_default()
    }

    #[test]
    fn part_list_validation() {
        let u = upload(&[(1, "a", 10), (2, "b", 10), (3, "c", 1)]);
        assert_eq!(select_parts(&u, &[wanted(1, "a"), wanted(3, "c")], 10).unwrap().len(), 2);
        assert_eq!(code(select_parts(&u, &[wanted(2, "b"), wanted(1, "a")], 10)), "InvalidPartOrder");
        assert_eq!(code(select_parts(&u, &[wanted(1, "a"), wanted(1, "a")], 10)), "InvalidPartOrder");
        assert_eq!(code(select_parts(&u, &[wanted(1, "x")], 10)), "InvalidPart");
        assert_eq!(code(select_parts(&u, &[wanted(4, "d")], 10)), "InvalidPart");
        assert_eq!(code(select_parts(&u, &[], 10)), "MalformedXML");
        assert_eq!(code(select_parts(&u, &[wanted(3, "c"), wanted(4, "d")], 10)), "InvalidPart");
        assert_eq!(code(select_parts(&u, &[wanted(1, "a"), wanted(2, "b")], 11)), "EntityTooSmall");
        // The last part may be small.
        assert!(select_parts(&u, &[wanted(2, "b"), wanted(3, "c")], 10).is_ok());
    }

    #[test]
    fn multipart_etag_shape() {
        let u = upload(&[(1, "a", 1), (2, "b", 1)]);
        let parts: Vec<(i32, Part)> = u.parts.into_iter().collect();
        let mut md5 = Md5::new();
        md5.update([1u8; 16]);
        md5.update([2u8; 16]);
        assert_eq!(multipart_etag(&parts), format!("{}-2", hex::encode(md5.finalize())));
    }
}
