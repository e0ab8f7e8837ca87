//! Single-object operations: HeadObject, GetObject, PutObject, CopyObject, DeleteObjects.

use s3s::S3Result;
use s3s::dto::*;
use s3s::s3_error;

use super::conditions::{self, WriteConditions, read_conditions};
use super::disk::{self, FileBody, internal};
use super::meta::{self, ObjectMeta, stored_headers};
use super::{NewObject, Store};

/// Most keys a DeleteObjects request may name.
const MAX_DELETE_KEYS: usize = 1000;

impl Store {
    pub(super) fn head(&self, input: &HeadObjectInput) -> S3Result<HeadObjectOutput> {
        let meta = self.bucket(&input.bucket)?.get(&input.key)?;
        conditions::check_read(&meta, read_conditions!(input))?;
        Ok(head_output(&meta))
    }

    /// Streams the object (or the requested range) from the data file opened with its metadata.
    pub(super) fn get(&self, input: &GetObjectInput) -> S3Result<GetObjectOutput> {
        let (meta, files) = self.bucket(&input.bucket)?.open_object(&input.key)?;
        conditions::check_read(&meta, read_conditions!(input))?;
        let range = conditions::resolve_range(input.range.as_ref(), meta.size)?;
        let served = range.clone().unwrap_or(0..meta.size);
        let body = FileBody::new(files, served.clone()).map_err(internal)?;
        let head = head_output(&meta);
        Ok(GetObjectOutput {
            body: Some(StreamingBlob::new(body)),
            content_length: Some(length(served.end - served.start)),
            content_range: range.map(|r| conditions::content_range(&r, meta.size)),
            accept_ranges: head.accept_ranges,
            cache_control: head.cache_control,
            content_disposition: head.content_disposition,
            content_encoding: head.content_encoding,
            content_language: head.content_language,
            content_type: head.content_type,
            e_tag: head.e_tag,
            last_modified: head.last_modified,
            metadata: head.metadata,
            parts_count: head.parts_count,
            ..Default::default()
        })
    }

    pub(super) async fn put(&self, input: PutObjectInput) -> S3Result<PutObjectOutput> {
        let bucket = self.bucket(&input.bucket)?;
        let expected_md5 = input.content_md5.as_deref().map(conditions::parse_content_md5).transpose()?;
        let cond = WriteConditions { if_match: input.if_match, if_none_match: input.if_none_match };
        // Fail before receiving a body that could not be stored; checked again when committing.
        conditions::check_write(bucket.get(&input.key).ok().as_ref(), &cond)?;
        let written = disk::write_stream(&self.inner.tmp, input.body).await?;
        conditions::verify_md5(expected_md5, &written.md5)?;
        let headers = stored_headers!(input);
        let object = NewObject::single_part(input.key, written, headers, meta::metadata_from_dto(input.metadata));
        let meta = self.commit(&bucket, object, &cond)?;
        Ok(PutObjectOutput { e_tag: Some(meta.e_tag()), size: Some(length(meta.size)), ..Default::default() })
    }

    /// Server-side copy. With the default COPY directive the source's headers and metadata are kept;
    /// REPLACE takes them from the request, which is how clients change metadata in place.
    pub(super) async fn copy(&self, input: CopyObjectInput) -> S3Result<CopyObjectOutput> {
        let (src_bucket, src_key) = copy_source(&input.copy_source)?;
        let replace = input.metadata_directive.as_ref().is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        if src_bucket == input.bucket && src_key == input.key && !replace {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
            ));
        }
        let (src_meta, files) = self.open_copy_source(&input.copy_source, read_conditions!(copy_source input))?;
        let dest = self.bucket(&input.bucket)?;
        let written = disk::copy_range(&self.inner.tmp, files, 0..src_meta.size).await.map_err(internal)?;
        let (headers, metadata) = if replace {
            let headers = stored_headers!(input);
            (headers, meta::metadata_from_dto(input.metadata))
        } else {
            (src_meta.headers, src_meta.metadata)
        };
        let object = NewObject::single_part(input.key, written, headers, metadata);
        let meta = self.commit(&dest, object, &WriteConditions::default())?;
        let result = CopyObjectResult {
            e_tag: Some(meta.e_tag()),
            last_modified: Some(meta.last_modified_ts()),
            ..Default::default()
        };
        Ok(CopyObjectOutput { copy_object_result: Some(result), ..Default::default() })
    }

    /// DeleteObjects: per-key results; in quiet mode only the failures are reported.
    pub(super) fn delete_many(&self, input: DeleteObjectsInput) -> S3Result<DeleteObjectsOutput> {
        let bucket = self.bucket(&input.bucket)?;
        if input.delete.objects.len() > MAX_DELETE_KEYS {
            return Err(s3_error!(MalformedXML, "A DeleteObjects request can name at most 1000 keys"));
        }
        let quiet = input.delete.quiet.unwrap_or(false);
        let (mut deleted, mut errors) = (Vec::new(), Vec::new());
        for id in input.delete.objects {
            match self.remove_object(&bucket, &id.key, &WriteConditions::default()) {
                Ok(()) if quiet => {}
                Ok(()) => deleted.push(DeletedObject { key: Some(id.key), ..Default::default() }),
                Err(e) => errors.push(s3s::dto::Error {
                    code: Some(e.code().as_str().to_owned()),
                    message: e.message().map(str::to_owned),
                    key: Some(id.key),
                    version_id: None,
                }),
            }
        }
        Ok(DeleteObjectsOutput {
            deleted: (!deleted.is_empty()).then_some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        })
    }

    /// Opens the source of a copy (CopyObject, UploadPartCopy) and checks its
    /// `x-amz-copy-source-if-*` conditions.
    pub(super) fn open_copy_source(
        &self,
        source: &CopySource,
        cond: conditions::ReadConditions<'_>,
    ) -> S3Result<(ObjectMeta, disk::DataFiles)> {
        let (bucket, key) = copy_source(source)?;
        let (meta, files) = self.bucket(bucket)?.open_object(key)?;
        conditions::check_copy_source(&meta, cond)?;
        Ok((meta, files))
    }
}

/// Bucket and key of `x-amz-copy-source` (s3s has already URL-decoded and validated it).
pub(super) fn copy_source(source: &CopySource) -> S3Result<(&str, &str)> {
    match source {
        CopySource::Bucket { bucket, key, .. } => Ok((bucket, key)),
        _ => Err(s3_error!(NotImplemented, "Only bucket/key copy sources are supported")),
    }
}

fn head_output(meta: &ObjectMeta) -> HeadObjectOutput {
    HeadObjectOutput {
        accept_ranges: Some("bytes".to_owned()),
        content_length: Some(length(meta.size)),
        content_type: Some(meta.content_type()),
        cache_control: meta.headers.cache_control.clone(),
        content_disposition: meta.headers.content_disposition.clone(),
        content_encoding: meta.headers.content_encoding.clone(),
        content_language: meta.headers.content_language.clone(),
        e_tag: Some(meta.e_tag()),
        last_modified: Some(meta.last_modified_ts()),
        metadata: meta.metadata_dto(),
        parts_count: meta.parts_count(),
        ..Default::default()
    }
}

/// Sizes are u64 on disk and i64 in the S3 model; objects never come close to the difference.
pub(super) fn length(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}
