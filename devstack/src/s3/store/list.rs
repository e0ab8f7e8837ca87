//! ListObjects v1 and v2 over the in-memory index, and the prefix/delimiter pagination they share
//! with ListMultipartUploads.

use std::ops::Bound;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use s3s::S3Result;
use s3s::dto::*;
use s3s::s3_error;

use super::{Store, read};

/// S3's default and maximum page size.
const MAX_KEYS: usize = 1000;

/// One listing entry: an item, or a common prefix standing for every key that shares it.
#[derive(Debug, PartialEq)]
pub(super) enum Entry<T> {
    Item(T),
    Prefix(String),
}

#[derive(Debug)]
pub(super) struct Page<T> {
    pub entries: Vec<Entry<T>>,
    pub truncated: bool,
}

/// Groups keys into a page of at most `max` entries. `items` must be sorted by key and should start
/// at or after `prefix`. Keys containing `delimiter` after the prefix collapse into one common
/// prefix; common prefixes not after `after` (the marker) were returned by an earlier page.
/// With `max == 0` the page is empty and not truncated, so clients paging on IsTruncated stop.
pub(super) fn paginate<'k, T>(
    items: impl IntoIterator<Item = (&'k str, T)>,
    prefix: &str,
    delimiter: Option<&str>,
    after: Option<&str>,
    max: usize,
) -> Page<T> {
    let delimiter = delimiter.filter(|d| !d.is_empty());
    let mut page = Page { entries: Vec::new(), truncated: false };
    if max == 0 {
        return page;
    }
    let mut last_prefix: Option<String> = None;
    for (key, item) in items {
        let Some(rest) = key.strip_prefix(prefix) else {
            if key < prefix {
                continue;
            }
            break; // keys sharing the prefix are contiguous: we are past them
        };
        let common = delimiter.and_then(|d| rest.find(d).map(|i| &key[..prefix.len() + i + d.len()]));
        if let Some(common) = common
            && (last_prefix.as_deref() == Some(common) || after.is_some_and(|a| common <= a))
        {
            continue;
        }
        if page.entries.len() == max {
            page.truncated = true;
            break;
        }
        match common {
            Some(common) => {
                last_prefix = Some(common.to_owned());
                page.entries.push(Entry::Prefix(common.to_owned()));
            }
            None => page.entries.push(Entry::Item(item)),
        }
    }
    page
}

/// A listing page converted to S3's shapes.
struct Listing {
    contents: Vec<Object>,
    prefixes: Vec<CommonPrefix>,
    truncated: bool,
    /// Key or common prefix of the last entry (not encoded): where the next page starts.
    last: Option<String>,
}

/// The parameters ListObjects v1 and v2 have in common, validated.
struct Query {
    bucket: String,
    prefix: String,
    delimiter: Option<String>,
    /// Exclusive start: marker, start-after or continuation token.
    after: Option<String>,
    max: usize,
    url: bool,
    owner: bool,
}

impl Store {
    pub(super) fn list_v2(&self, input: ListObjectsV2Input) -> S3Result<ListObjectsV2Output> {
        let after = match &input.continuation_token {
            Some(token) => Some(decode_token(token)?),
            None => input.start_after.clone(),
        };
        let query = Query {
            bucket: input.bucket,
            prefix: input.prefix.unwrap_or_default(),
            delimiter: input.delimiter,
            after,
            max: max_keys(input.max_keys)?,
            url: url_encoding(input.encoding_type.as_ref())?,
            owner: input.fetch_owner.unwrap_or(false),
        };
        let listing = self.list(&query)?;
        let enc = |s: &str| encode(s, query.url);
        Ok(ListObjectsV2Output {
            key_count: Some(i32::try_from(listing.contents.len() + listing.prefixes.len()).unwrap_or(i32::MAX)),
            is_truncated: Some(listing.truncated),
            next_continuation_token: listing.last.filter(|_| listing.truncated).map(|l| encode_token(&l)),
            contents: Some(listing.contents),
            common_prefixes: Some(listing.prefixes),
            prefix: Some(enc(&query.prefix)),
            delimiter: query.delimiter.as_deref().map(enc),
            start_after: input.start_after.as_deref().map(enc),
            max_keys: Some(i32::try_from(query.max).unwrap_or(i32::MAX)),
            continuation_token: input.continuation_token,
            encoding_type: input.encoding_type,
            name: Some(query.bucket),
            ..Default::default()
        })
    }

    /// V1: NextMarker is only sent with a delimiter (otherwise clients use the last key), as in S3.
    pub(super) fn list_v1(&self, input: ListObjectsInput) -> S3Result<ListObjectsOutput> {
        let query = Query {
            bucket: input.bucket,
            prefix: input.prefix.unwrap_or_default(),
            delimiter: input.delimiter,
            after: input.marker.clone().filter(|m| !m.is_empty()),
            max: max_keys(input.max_keys)?,
            url: url_encoding(input.encoding_type.as_ref())?,
            owner: true,
        };
        let listing = self.list(&query)?;
        let enc = |s: &str| encode(s, query.url);
        let next_marker = listing.last.filter(|_| listing.truncated && query.delimiter.is_some());
        Ok(ListObjectsOutput {
            is_truncated: Some(listing.truncated),
            next_marker: next_marker.as_deref().map(enc),
            contents: Some(listing.contents),
            common_prefixes: Some(listing.prefixes),
            prefix: Some(enc(&query.prefix)),
            delimiter: query.delimiter.as_deref().map(enc),
            marker: Some(input.marker.as_deref().map(enc).unwrap_or_default()),
            max_keys: Some(i32::try_from(query.max).unwrap_or(i32::MAX)),
            encoding_type: input.encoding_type,
            name: Some(query.bucket),
            ..Default::default()
        })
    }

    fn list(&self, q: &Query) -> S3Result<Listing> {
        let bucket = self.bucket(&q.bucket)?;
        let state = read(&bucket.state);
        let start = match q.after.as_deref() {
            Some(after) if after >= q.prefix.as_str() => Bound::Excluded(after),
            _ => Bound::Included(q.prefix.as_str()),
        };
        let items = state.objects.range::<str, _>((start, Bound::Unbounded)).map(|(k, m)| (k.as_str(), m));
        let page = paginate(items, &q.prefix, q.delimiter.as_deref(), q.after.as_deref(), q.max);
        let mut listing = Listing { contents: Vec::new(), prefixes: Vec::new(), truncated: page.truncated, last: None };
        for entry in page.entries {
            match entry {
                Entry::Item(meta) => {
                    listing.contents.push(meta.to_listed(q.owner, encode(&meta.key, q.url)));
                    listing.last = Some(meta.key.clone());
                }
                Entry::Prefix(p) => {
                    listing.prefixes.push(CommonPrefix { prefix: Some(encode(&p, q.url)) });
                    listing.last = Some(p);
                }
            }
        }
        Ok(listing)
    }
}

pub(super) fn max_keys(requested: Option<i32>) -> S3Result<usize> {
    match requested {
        None => Ok(MAX_KEYS),
        Some(n) => usize::try_from(n)
            .map(|n| n.min(MAX_KEYS))
            .map_err(|_| s3_error!(InvalidArgument, "max-keys must be a non-negative integer")),
    }
}

pub(super) fn url_encoding(encoding: Option<&EncodingType>) -> S3Result<bool> {
    match encoding.map(EncodingType::as_str) {
        None => Ok(false),
        Some(EncodingType::URL) => Ok(true),
        Some(_) => Err(s3_error!(InvalidArgument, "Invalid Encoding Method specified in Request")),
    }
}

/// `encoding-type=url`: percent-encodes everything but unreserved characters and `/`, as S3 does;
/// decodable by both `QueryUnescape`-style and `unquote_plus`-style clients (`+` is encoded).
pub(super) fn encode(s: &str, url: bool) -> String {
    if !url {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Continuation tokens are opaque to clients: the last key returned, base64url-encoded.
fn encode_token(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(last)
}

fn decode_token(token: &str) -> S3Result<String> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| s3_error!(InvalidArgument, "The continuation token provided is incorrect"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(keys: &[&str], prefix: &str, delimiter: Option<&str>, after: Option<&str>, max: usize) -> Vec<String> {
        let items = keys.iter().map(|k| (*k, *k));
        let p = paginate(items, prefix, delimiter, after, max);
        let mut out: Vec<String> = p
            .entries
            .into_iter()
            .map(|e| match e {
                Entry::Item(k) => k.to_owned(),
                Entry::Prefix(p) => format!("[{p}]"),
            })
            .collect();
        if p.truncated {
            out.push("...".into());
        }
        out
    }

    #[test]
    fn paginate_groups_and_resumes_after_common_prefixes() {
        let keys = ["a/1", "a/2", "b", "c/", "c/x", "d/e/f"];
        assert_eq!(page(&keys, "", Some("/"), None, 10), ["[a/]", "b", "[c/]", "[d/]"]);
        assert_eq!(page(&keys, "", Some("/"), None, 2), ["[a/]", "b", "..."]);
        // Resuming after a common prefix must not return it (or its keys) again.
        assert_eq!(page(&keys[1..], "", Some("/"), Some("a/"), 2), ["b", "[c/]", "..."]);
        assert_eq!(page(&keys, "c/", Some("/"), None, 10), ["c/", "c/x"]);
        assert_eq!(page(&keys, "d/", Some("/"), None, 10), ["[d/e/]"]);
        assert_eq!(page(&keys, "", None, None, 10), keys);
        assert_eq!(page(&keys, "", Some("/"), None, 0), Vec::<String>::new());
        assert_eq!(page(&keys, "a", Some("/"), None, 1), ["[a/]"]);
    }

    #[test]
    fn url_encoding_keeps_slashes() {
        assert_eq!(encode("dir/a b+c%é", true), "dir/a%20b%2Bc%25%C3%A9");
        assert_eq!(encode("a b", false), "a b");
        assert!(url_encoding(Some(&EncodingType::from("gzip".to_owned()))).is_err());
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let token = encode_token("dir/ü?&=");
        assert_eq!(decode_token(&token).unwrap(), "dir/ü?&=");
        assert!(decode_token("!!!").is_err());
        assert!(decode_token(&URL_SAFE_NO_PAD.encode([0xff, 0xfe])).is_err());
    }

    #[test]
    fn max_keys_defaults_and_caps() {
        assert_eq!(max_keys(None).unwrap(), 1000);
        assert_eq!(max_keys(Some(5000)).unwrap(), 1000);
        assert_eq!(max_keys(Some(0)).unwrap(), 0);
        assert!(max_keys(Some(-1)).is_err());
    }
}
