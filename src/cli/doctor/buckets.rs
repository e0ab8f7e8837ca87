//! What the identity can do in each bucket: list, read, and (with --write-probe) write through the
//! mount's own upload path.

use std::time::SystemTime;

use ssofs::fs::named::BucketPath;
use ssofs::object::ObjectClient;
use ssofs::object::s3::S3ObjectClient;

use super::report::{Checks, Outcome};
use super::server::ServerKind;

pub async fn check(s3: &S3ObjectClient, write_probe: bool, server: &ServerKind, named: &[String], checks: &mut Checks) {
    // The profile's `buckets` (and `-o buckets=`) are shown by the mount whatever ListBuckets says
    // (Ceph RGW lists none for a federated user): they are probed too. Invalid ones were refused
    // when the profile was read.
    let named = BucketPath::parse_all(named.iter().map(String::as_str)).unwrap_or_default();
    let (listed, list_error) = match s3.list_buckets().await {
        Ok(n) => (n, None),
        Err(e) if named.is_empty() => {
            checks.fail(
                "buckets",
                format!("ListBuckets failed: {e}"),
                "give the user's policies s3:ListAllMyBuckets, or name the buckets in the profile's `buckets`",
            );
            return;
        }
        Err(e) => (Vec::new(), Some(e)),
    };
    let targets = buckets_to_probe(&listed, &named);
    if targets.is_empty() {
        checks.add(
            "buckets",
            Outcome::Warn,
            "ListBuckets shows no bucket: the mount would be empty",
            Some(server.grant_advice()),
        );
        return;
    }
    let shown: Vec<String> = targets
        .iter()
        .map(|t| {
            let path = match t.prefix.trim_end_matches('/') {
                "" => t.bucket.clone(),
                prefix => format!("{}/{prefix}", t.bucket),
            };
            if named.iter().any(|n| n.bucket == t.bucket) { format!("{path} (named)") } else { path }
        })
        .collect();
    let listing_failed =
        list_error.map(|e| format!("; ListBuckets failed ({e}), the named buckets are shown")).unwrap_or_default();
    checks.pass("buckets", format!("{} bucket(s): {}{listing_failed}", targets.len(), shown.join(", ")));
    for BucketPath { bucket: b, prefix } in targets {
        let (list, first) = match s3.list_page(&b, &prefix, None).await {
            Ok(page) => ("list ✓".to_string(), page.objects.into_iter().next()),
            Err(e) => (format!("list ✗ ({e})"), None),
        };
        let read = read_probe(s3, &b, first.as_ref()).await;
        let write = if write_probe {
            write_probe_of(s3, &b, &prefix).await
        } else {
            "write not probed (--write-probe)".to_string()
        };
        checks.pass(&format!("bucket:{b}"), format!("{list}, {read}, {write}"));
    }
}

/// The buckets the mount's root would show, in the order doctor probes them: the named ones (with
/// their prefixes; a bucket named twice once), then those ListBuckets returned that are not named.
fn buckets_to_probe(listed: &[String], named: &[BucketPath]) -> Vec<BucketPath> {
    let mut targets: Vec<BucketPath> = Vec::new();
    for n in named {
        if !targets.iter().any(|t| t.bucket == n.bucket) {
            targets.push(n.clone());
        }
    }
    for b in listed {
        if !targets.iter().any(|t| &t.bucket == b) {
            targets.push(BucketPath { bucket: b.clone(), prefix: String::new() });
        }
    }
    targets
}

/// Reads a real object (the first of the listing): a HEAD of a missing key answered 404 says
/// nothing about GetObject (some servers answer it whatever the policy says).
async fn read_probe(s3: &S3ObjectClient, bucket: &str, first: Option<&ssofs::object::ObjectInfo>) -> String {
    let Some(object) = first else { return "read unknown (no object to read at the top of the bucket)".into() };
    let result = if object.size == 0 {
        s3.head(bucket, &object.key).await.map(|_| ())
    } else {
        s3.get_range(bucket, &object.key, 0..1, None).await.map(|_| ())
    };
    match result {
        Ok(()) => format!("read ✓ ({})", object.key),
        Err(e) => format!("read ✗ ({}: {e})", object.key),
    }
}

/// Writes through the mount's own upload path, a staged file: one PutObject, and a two-part
/// multipart upload (16 MiB parts, so 16 MiB + 1 byte, sparse here), then deletes both.
/// `prefix` (empty, or ending in `/`): where a named `bucket/prefix` lets the user write.
async fn write_probe_of(s3: &S3ObjectClient, bucket: &str, prefix: &str) -> String {
    let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let key = format!("{prefix}.ssofs-doctor-probe-{}-{stamp}", std::process::id());
    let multipart_key = format!("{key}-multipart");
    let staged = |size: u64| -> std::io::Result<std::fs::File> {
        let dir = ssofs::untrusted::private_dir(
            &std::env::temp_dir().join(format!("ssofs-doctor-{}", ssofs::untrusted::euid())),
        )
        .map_err(std::io::Error::other)?;
        let path = dir.join(format!("probe-{stamp}-{size}"));
        let mut f = ssofs::untrusted::create_new(&path, 0o600)?;
        let _ = std::fs::remove_file(&path);
        std::io::Write::write_all(&mut f, b"ssofs doctor write probe\n")?;
        f.set_len(size.max(25))?;
        Ok(f)
    };
    let (small, large) = match (staged(25), staged((16 << 20) + 1)) {
        (Ok(s), Ok(l)) => (s, l),
        (Err(e), _) | (_, Err(e)) => return format!("write not probed (cannot stage a probe file: {e})"),
    };
    let put = s3.put_file(bucket, &key, &small, &Default::default()).await;
    let multipart = match &put {
        Ok(_) => Some(s3.put_file(bucket, &multipart_key, &large, &Default::default()).await),
        Err(_) => None,
    };
    let mut leftovers = Vec::new();
    for (k, written) in [(&key, put.is_ok()), (&multipart_key, multipart.as_ref().is_some_and(|m| m.is_ok()))] {
        if written && let Err(e) = s3.delete(bucket, k).await {
            leftovers.push(format!("{k} ({e})"));
        }
    }
    let cleanup = if leftovers.is_empty() {
        String::new()
    } else {
        format!("; delete ✗: remove {} by hand", leftovers.join(", "))
    };
    match (put, multipart) {
        (Err(e), _) => format!("write ✗ (PutObject of a staged file: {e})"),
        (Ok(_), Some(Err(e))) => format!("write ✗ (multipart upload: {e}; a single PutObject worked){cleanup}"),
        _ => format!("write ✓ (PutObject and a 2-part multipart upload of staged files){cleanup}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ceph RGW lists no bucket for a federated user: the buckets the profile names are what the
    /// mount shows, so they are what doctor probes (it said "the mount would be empty" and probed
    /// nothing).
    #[test]
    fn named_buckets_are_probed_even_when_listbuckets_shows_none() {
        let named = BucketPath::parse_all(["analytics-raw", "team/projects/a", "analytics-raw/x"]).unwrap();
        let shown =
            |t: Vec<BucketPath>| t.into_iter().map(|b| format!("{}:{}", b.bucket, b.prefix)).collect::<Vec<_>>();
        assert_eq!(shown(buckets_to_probe(&[], &named)), ["analytics-raw:", "team:projects/a/"]);
        let listed = ["team".to_string(), "other".to_string()];
        assert_eq!(shown(buckets_to_probe(&listed, &named)), ["analytics-raw:", "team:projects/a/", "other:"]);
        assert_eq!(shown(buckets_to_probe(&listed, &[])), ["team:", "other:"]);
        assert!(buckets_to_probe(&[], &[]).is_empty());
    }
}
