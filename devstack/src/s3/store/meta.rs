//! What the store knows about an object besides its bytes: the in-memory index entry, which is also
//! the JSON sidecar written next to the data file, and its conversions to s3s DTOs.

use std::collections::BTreeMap;

use s3s::dto::{ETag, Metadata, ObjectStorageClass, Owner, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Canonical user id and display name reported as the owner of every bucket and object: the devstack
/// has a single account, like a MinIO deployment.
const OWNER_ID: &str = "02d6176db174dc93cb1b899f7c6078f08654445fe8cf1b6ce98d8855f66bdbf4";
const OWNER_NAME: &str = "minio";

/// S3 returns this when an object was stored without a Content-Type.
const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";

/// Standard HTTP headers S3 stores with an object and returns on GET/HEAD.
/// The headers PutObject, CopyObject (REPLACE) and CreateMultipartUpload inputs all carry, as stored.
macro_rules! stored_headers {
    ($input:expr) => {
        $crate::s3::store::meta::StoredHeaders {
            content_type: $input.content_type,
            cache_control: $input.cache_control,
            content_disposition: $input.content_disposition,
            content_encoding: $input.content_encoding,
            content_language: $input.content_language,
        }
    };
}
pub(super) use stored_headers;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct StoredHeaders {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
}

/// One object of a bucket. Serialised as the object's sidecar, which is the source of truth on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// Unquoted: hex MD5, or `hex-N` for a completed multipart upload.
    pub etag: String,
    /// Unix seconds; S3 clients only see second precision anyway (HTTP dates).
    pub last_modified: i64,
    #[serde(flatten)]
    pub headers: StoredHeaders,
    /// User metadata (`x-amz-meta-*`), keys without the prefix.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Name of the data file in the bucket's data directory. A fresh name per write, so a reader that
    /// opened the previous version keeps reading consistent bytes while it is replaced.
    pub data_file: String,
    /// A completed multipart upload: `data_file` is a directory of its parts' files (`00001`, …, in
    /// order), of these sizes. MinIO keeps a completed upload's parts as they were stored rather
    /// than copying them into one file (cmd/erasure-multipart.go, CompleteMultipartUpload, which
    /// renames the upload's data into place); a copy cost 2.3-5.0 s per GiB at every close here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub part_sizes: Vec<u64>,
}

/// Sidecar file name for a key. Keys may be 1024 bytes of anything, so they never become paths.
pub(super) fn sidecar_name(key: &str) -> String {
    format!("{}.json", hex::encode(Sha256::digest(key.as_bytes())))
}

pub(super) fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

pub(super) fn timestamp(secs: i64) -> Timestamp {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH).into()
}

pub(super) fn unix_secs(ts: &Timestamp) -> i64 {
    OffsetDateTime::from(ts.clone()).unix_timestamp()
}

pub(super) fn etag(value: &str) -> ETag {
    ETag::Strong(value.to_owned())
}

pub(super) fn owner() -> Owner {
    Owner { display_name: Some(OWNER_NAME.to_owned()), id: Some(OWNER_ID.to_owned()) }
}

pub(super) fn standard_class() -> ObjectStorageClass {
    ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)
}

/// User metadata as received from s3s, ordered for a stable sidecar.
pub(super) fn metadata_from_dto(metadata: Option<Metadata>) -> BTreeMap<String, String> {
    metadata.map(|m| m.into_iter().collect()).unwrap_or_default()
}

impl ObjectMeta {
    pub fn last_modified_ts(&self) -> Timestamp {
        timestamp(self.last_modified)
    }

    pub fn e_tag(&self) -> ETag {
        etag(&self.etag)
    }

    pub fn content_type(&self) -> String {
        self.headers.content_type.clone().unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned())
    }

    /// `None` when empty, so no stray header block is serialised.
    pub fn metadata_dto(&self) -> Option<Metadata> {
        (!self.metadata.is_empty()).then(|| self.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    /// Number of parts for a multipart object (its ETag ends in `-N`), as `x-amz-mp-parts-count`.
    pub fn parts_count(&self) -> Option<i32> {
        self.etag.rsplit_once('-').and_then(|(_, n)| n.parse().ok())
    }

    /// The listing entry for this object.
    pub fn to_listed(&self, with_owner: bool, key: String) -> s3s::dto::Object {
        s3s::dto::Object {
            key: Some(key),
            size: Some(i64::try_from(self.size).unwrap_or(i64::MAX)),
            e_tag: Some(self.e_tag()),
            last_modified: Some(self.last_modified_ts()),
            storage_class: Some(standard_class()),
            owner: with_owner.then(owner),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_is_flat_and_round_trips() {
        let meta = ObjectMeta {
            key: "a/b c".into(),
            size: 3,
            etag: "abc".into(),
            last_modified: 1_700_000_000,
            headers: StoredHeaders { content_type: Some("text/plain".into()), ..Default::default() },
            metadata: [("mtime".to_owned(), "1".to_owned())].into(),
            data_file: "f".into(),
            part_sizes: Vec::new(),
        };
        let json = serde_json::to_value(&meta).unwrap();
        assert_eq!(json["content_type"], "text/plain");
        assert!(json.get("cache_control").is_none());
        let back: ObjectMeta = serde_json::from_value(json).unwrap();
        assert_eq!(back, meta);
    }

    #[test]
    fn parts_count_only_for_multipart_etags() {
        let mut meta = ObjectMeta {
            key: String::new(),
            size: 0,
            etag: "d41d8cd98f00b204e9800998ecf8427e".into(),
            last_modified: 0,
            headers: StoredHeaders::default(),
            metadata: BTreeMap::new(),
            data_file: String::new(),
            part_sizes: Vec::new(),
        };
        assert_eq!(meta.parts_count(), None);
        meta.etag.push_str("-3");
        assert_eq!(meta.parts_count(), Some(3));
    }
}
