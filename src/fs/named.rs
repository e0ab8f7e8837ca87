//! Buckets the user names (profile key `buckets`, `-o buckets=`, a mount source `s3://bucket/prefix`):
//! servers list only some of the buckets an identity may use (Ceph RGW lists those the federated
//! user owns; many policies grant no `s3:ListAllMyBuckets`), so a bucket, or a prefix of one, can be
//! named and is then shown whatever ListBuckets says.

/// A bucket, or a prefix of one: `bucket` or `bucket/some/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketPath {
    pub bucket: String,
    /// Empty, or the prefix ending in `/`.
    pub prefix: String,
}

impl BucketPath {
    /// Parses `bucket[/prefix]` (a leading `s3://` is accepted).
    pub fn parse(text: &str) -> Result<BucketPath, String> {
        let path = text.strip_prefix("s3://").unwrap_or(text).trim_end_matches('/');
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        let bad = |why: &str| format!("{text:?} is not a bucket or bucket/prefix: {why}");
        if !super::names::usable(bucket) || bucket.contains(['\\', ':']) {
            return Err(bad("the bucket name is empty or not a name"));
        }
        if !prefix.is_empty() && !prefix.split('/').all(super::names::usable) {
            return Err(bad("the prefix has an empty, `.` or `..` segment"));
        }
        let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
        Ok(BucketPath { bucket: bucket.to_string(), prefix })
    }

    /// Parses a list (profile `buckets`, or `-o buckets=a:b/prefix` split on `:`).
    pub fn parse_all<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Vec<BucketPath>, String> {
        items.into_iter().filter(|s| !s.is_empty()).map(BucketPath::parse).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_prefixes_are_parsed_and_nonsense_refused() {
        assert_eq!(BucketPath::parse("data").unwrap(), BucketPath { bucket: "data".into(), prefix: String::new() });
        assert_eq!(
            BucketPath::parse("s3://data/team/a/").unwrap(),
            BucketPath { bucket: "data".into(), prefix: "team/a/".into() }
        );
        for bad in ["", "/x", "..", "data//x", "data/../x", "s3://"] {
            assert!(BucketPath::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(BucketPath::parse_all("a:b/p".split(':')).unwrap().len(), 2);
    }
}
