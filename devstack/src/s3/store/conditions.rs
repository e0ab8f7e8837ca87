//! Request preconditions and byte ranges, evaluated the way S3 does (RFC 7232 precedence).

use std::ops::Range as ByteRange;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hyper::HeaderMap;
use hyper::header::{CONTENT_RANGE, ETAG, HeaderValue, LAST_MODIFIED};
use s3s::dto::{ETagCondition, Range, Timestamp};
use s3s::{S3Result, s3_error};

use super::meta::{ObjectMeta, unix_secs};

/// The conditional headers of a GET or HEAD (or the `x-amz-copy-source-if-*` ones of a copy).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct ReadConditions<'a> {
    pub if_match: Option<&'a ETagCondition>,
    pub if_none_match: Option<&'a ETagCondition>,
    pub if_modified_since: Option<&'a Timestamp>,
    pub if_unmodified_since: Option<&'a Timestamp>,
}

/// [`ReadConditions`] borrowed from an input with the usual `if_*` fields, or with the named ones
/// (`x-amz-copy-source-if-*`).
macro_rules! read_conditions {
    ($input:expr) => {
        read_conditions!($input, if_match, if_none_match, if_modified_since, if_unmodified_since)
    };
    (copy_source $input:expr) => {
        read_conditions!(
            $input,
            copy_source_if_match,
            copy_source_if_none_match,
            copy_source_if_modified_since,
            copy_source_if_unmodified_since
        )
    };
    ($input:expr, $m:ident, $nm:ident, $ms:ident, $us:ident) => {
        $crate::s3::store::conditions::ReadConditions {
            if_match: $input.$m.as_ref(),
            if_none_match: $input.$nm.as_ref(),
            if_modified_since: $input.$ms.as_ref(),
            if_unmodified_since: $input.$us.as_ref(),
        }
    };
}
pub(super) use read_conditions;

/// The conditional headers of a write (PutObject, CompleteMultipartUpload, DeleteObject).
#[derive(Debug, Default, Clone)]
pub(super) struct WriteConditions {
    pub if_match: Option<ETagCondition>,
    pub if_none_match: Option<ETagCondition>,
}

fn matches(cond: &ETagCondition, etag: &str) -> bool {
    cond.as_etag().is_none_or(|e| e.value() == etag)
}

/// GET/HEAD: a failed If-Match/If-Unmodified-Since is 412; a failed If-None-Match/If-Modified-Since
/// is 304. A header that passes makes its date-based sibling irrelevant, as in S3.
pub(super) fn check_read(meta: &ObjectMeta, c: ReadConditions<'_>) -> S3Result<()> {
    match (c.if_match, c.if_unmodified_since) {
        (Some(cond), _) if !matches(cond, &meta.etag) => return Err(s3_error!(PreconditionFailed)),
        (None, Some(since)) if meta.last_modified > unix_secs(since) => return Err(s3_error!(PreconditionFailed)),
        _ => {}
    }
    let not_modified = match (c.if_none_match, c.if_modified_since) {
        (Some(cond), _) => matches(cond, &meta.etag),
        (None, Some(since)) => meta.last_modified <= unix_secs(since),
        (None, None) => false,
    };
    if not_modified {
        let mut err = s3_error!(NotModified);
        err.set_headers(validator_headers(meta));
        return Err(err);
    }
    Ok(())
}

/// CopyObject / UploadPartCopy source conditions: every failure is 412, never 304.
pub(super) fn check_copy_source(meta: &ObjectMeta, c: ReadConditions<'_>) -> S3Result<()> {
    check_read(meta, c).map_err(|e| match e.code() {
        s3s::S3ErrorCode::NotModified => s3_error!(PreconditionFailed),
        _ => e,
    })
}

/// Conditional writes: If-Match needs an existing object with that ETag (404 if there is none),
/// If-None-Match (`*`) needs no object.
pub(super) fn check_write(existing: Option<&ObjectMeta>, c: &WriteConditions) -> S3Result<()> {
    if let Some(cond) = &c.if_match {
        let Some(meta) = existing else {
            return Err(s3_error!(NoSuchKey, "The specified key does not exist."));
        };
        if !matches(cond, &meta.etag) {
            return Err(s3_error!(PreconditionFailed));
        }
    }
    if let (Some(cond), Some(meta)) = (&c.if_none_match, existing)
        && matches(cond, &meta.etag)
    {
        return Err(s3_error!(PreconditionFailed));
    }
    Ok(())
}

/// The byte range to serve: `None` for the whole object. Unsatisfiable ranges are 416 with
/// `Content-Range: bytes */size`, as S3 answers.
pub(super) fn resolve_range(range: Option<&Range>, size: u64) -> S3Result<Option<ByteRange<u64>>> {
    let Some(range) = range else { return Ok(None) };
    range.check(size).map(Some).map_err(|_| {
        let mut err = s3_error!(InvalidRange, "The requested range is not satisfiable");
        if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_RANGE, value);
            err.set_headers(headers);
        }
        err
    })
}

/// `x-amz-copy-source-range: bytes=first-last` (both required, inclusive) of UploadPartCopy.
pub(super) fn copy_source_range(header: Option<&str>, size: u64) -> S3Result<ByteRange<u64>> {
    let Some(header) = header else { return Ok(0..size) };
    let invalid =
        || s3_error!(InvalidArgument, "The x-amz-copy-source-range value must be of the form bytes=first-last");
    let (first, last) = header.strip_prefix("bytes=").and_then(|r| r.split_once('-')).ok_or_else(invalid)?;
    let first: u64 = first.parse().map_err(|_| invalid())?;
    let last: u64 = last.parse().map_err(|_| invalid())?;
    if first > last || last >= size {
        return Err(s3_error!(InvalidRange, "The requested range is not satisfiable"));
    }
    Ok(first..last + 1)
}

/// `Content-Range` header value for a served range.
pub(super) fn content_range(range: &ByteRange<u64>, size: u64) -> String {
    format!("bytes {}-{}/{size}", range.start, range.end.saturating_sub(1))
}

/// Decodes a `Content-MD5` header: base64 of the 16 digest bytes.
pub(super) fn parse_content_md5(value: &str) -> S3Result<[u8; 16]> {
    BASE64
        .decode(value.trim())
        .ok()
        .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
        .ok_or_else(|| s3_error!(InvalidDigest, "The Content-MD5 you specified was invalid."))
}

/// Checks a received body against its `Content-MD5`, if one was sent.
pub(super) fn verify_md5(expected: Option<[u8; 16]>, actual: &[u8; 16]) -> S3Result<()> {
    match expected {
        Some(expected) if &expected != actual => {
            Err(s3_error!(BadDigest, "The Content-MD5 you specified did not match what we received."))
        }
        _ => Ok(()),
    }
}

/// ETag and Last-Modified on a 304, so caches can revalidate.
fn validator_headers(meta: &ObjectMeta) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", meta.etag)) {
        headers.insert(ETAG, v);
    }
    let secs = u64::try_from(meta.last_modified).unwrap_or(0);
    let date = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs));
    if let Ok(v) = HeaderValue::from_str(&date) {
        headers.insert(LAST_MODIFIED, v);
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::super::meta::{StoredHeaders, timestamp};
    use super::*;
    use s3s::S3ErrorCode;
    use s3s::dto::ETag;

    fn meta() -> ObjectMeta {
        ObjectMeta {
            key: "k".into(),
            size: 10,
            etag: "abc".into(),
            last_modified: 1000,
            headers: StoredHeaders::default(),
            metadata: Default::default(),
            data_file: "f".into(),
            part_sizes: Vec::new(),
        }
    }

    fn code(r: S3Result<()>) -> Option<S3ErrorCode> {
        r.err().map(|e| e.code().clone())
    }

    #[test]
    fn read_preconditions_follow_s3_precedence() {
        let m = meta();
        let same = ETagCondition::ETag(ETag::Strong("abc".into()));
        let other = ETagCondition::ETag(ETag::Strong("zzz".into()));
        let (before, after) = (timestamp(999), timestamp(1000));
        let c = |if_match, if_none_match, if_modified_since, if_unmodified_since| ReadConditions {
            if_match,
            if_none_match,
            if_modified_since,
            if_unmodified_since,
        };
        assert_eq!(code(check_read(&m, c(Some(&other), None, None, None))), Some(S3ErrorCode::PreconditionFailed));
        assert_eq!(code(check_read(&m, c(Some(&same), None, None, Some(&before)))), None);
        assert_eq!(code(check_read(&m, c(None, None, None, Some(&before)))), Some(S3ErrorCode::PreconditionFailed));
        assert_eq!(code(check_read(&m, c(None, Some(&same), None, None))), Some(S3ErrorCode::NotModified));
        assert_eq!(code(check_read(&m, c(None, Some(&other), Some(&after), None))), None);
        assert_eq!(code(check_read(&m, c(None, None, Some(&after), None))), Some(S3ErrorCode::NotModified));
        assert_eq!(code(check_read(&m, c(None, None, Some(&before), None))), None);
        assert_eq!(
            code(check_copy_source(&m, c(None, Some(&ETagCondition::Any), None, None))),
            Some(S3ErrorCode::PreconditionFailed)
        );
    }

    #[test]
    fn write_preconditions() {
        let m = meta();
        let any = WriteConditions { if_none_match: Some(ETagCondition::Any), ..Default::default() };
        assert_eq!(code(check_write(Some(&m), &any)), Some(S3ErrorCode::PreconditionFailed));
        assert_eq!(code(check_write(None, &any)), None);
        let if_match = WriteConditions { if_match: Some(ETagCondition::Any), ..Default::default() };
        assert_eq!(code(check_write(None, &if_match)), Some(S3ErrorCode::NoSuchKey));
    }

    #[test]
    fn ranges_and_digests() {
        assert_eq!(resolve_range(Some(&Range::Suffix { length: 3 }), 10).unwrap(), Some(7..10));
        let err = resolve_range(Some(&Range::Int { first: 10, last: None }), 10).unwrap_err();
        assert_eq!(err.code(), &S3ErrorCode::InvalidRange);
        assert_eq!(err.headers().unwrap()[CONTENT_RANGE], "bytes */10");
        assert_eq!(copy_source_range(Some("bytes=2-4"), 10).unwrap(), 2..5);
        assert!(copy_source_range(Some("bytes=2-"), 10).is_err());
        assert!(copy_source_range(Some("bytes=5-10"), 10).is_err());
        assert_eq!(content_range(&(2..5), 10), "bytes 2-4/10");
        assert!(parse_content_md5("not base64!").is_err());
        assert_eq!(parse_content_md5("1B2M2Y8AsgTpgAmY7PhCfg==").unwrap()[0], 0xd4);
    }
}
