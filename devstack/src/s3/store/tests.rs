//! The store driven through s3s's HTTP service, as clients see it (path-style, anonymous).

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{HeaderMap, Request, StatusCode};
use md5::{Digest, Md5};
use s3s::service::{S3Service, S3ServiceBuilder};

use super::*;

struct Env {
    root: PathBuf,
    store: Store,
    svc: S3Service,
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Env {
    fn new() -> Self {
        Self::with_filter(Arc::new(AllowAll))
    }

    fn with_filter(filter: Arc<dyn ListBucketsFilter>) -> Self {
        let root = std::env::temp_dir().join(format!("devstack-store-{}", uuid::Uuid::new_v4().simple()));
        let store = Store::open(&root, filter).unwrap();
        let svc = S3ServiceBuilder::new(store.clone()).build();
        Self { root, store, svc }
    }

    async fn send(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Resp {
        let body: Bytes = body.into();
        let mut req =
            Request::builder().method(method).uri(format!("http://localhost{uri}")).header("host", "localhost");
        if !body.is_empty() {
            req = req.header("content-length", body.len().to_string());
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = self.svc.call(req.body(s3s::Body::from(body)).unwrap()).await.unwrap();
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Resp { status: parts.status, headers: parts.headers, body }
    }

    async fn get(&self, uri: &str) -> Resp {
        self.send("GET", uri, &[], Bytes::new()).await
    }

    async fn put(&self, uri: &str, body: &'static str) -> Resp {
        let resp = self.send("PUT", uri, &[], body).await;
        assert_eq!(resp.status, StatusCode::OK, "PUT {uri}: {}", resp.text());
        resp
    }

    async fn bucket(&self, name: &str) {
        self.put(&format!("/{name}"), "").await;
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Resp {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// Text of every `<tag>` element, in document order.
    fn tags(&self, tag: &str) -> Vec<String> {
        let text = self.text();
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        text.split(&open).skip(1).filter_map(|s| s.split_once(&close).map(|(v, _)| v.to_owned())).collect()
    }

    /// The `<Prefix>` of every `<CommonPrefixes>` (the element order varies between responses).
    fn common_prefixes(&self) -> Vec<String> {
        let text = self.text();
        text.split("<CommonPrefixes><Prefix>")
            .skip(1)
            .filter_map(|s| s.split_once("</Prefix>").map(|(v, _)| v.to_owned()))
            .collect()
    }

    fn tag(&self, tag: &str) -> String {
        self.tags(tag).into_iter().next().unwrap_or_default()
    }

    fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.tag("Code"), code, "{}", self.text());
    }
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

#[tokio::test]
async fn dir_markers_are_listed_like_any_key() {
    let env = Env::new();
    env.bucket("bkt").await;
    env.put("/bkt/dir/", "").await;
    env.put("/bkt/dir/file.txt", "x").await;
    env.put("/bkt/top.txt", "y").await;

    let root = env.get("/bkt?list-type=2&delimiter=%2F").await;
    assert_eq!(root.tags("Key"), ["top.txt"]);
    assert_eq!(root.common_prefixes(), ["dir/"]);
    let inside = env.get("/bkt?list-type=2&delimiter=%2F&prefix=dir%2F").await;
    assert_eq!(inside.tags("Key"), ["dir/", "dir/file.txt"]);
    assert_eq!(inside.tag("KeyCount"), "2");
    let v1 = env.get("/bkt?prefix=dir%2F").await;
    assert_eq!(v1.tags("Key"), ["dir/", "dir/file.txt"]);
    assert_eq!(env.send("HEAD", "/bkt/dir/", &[], "").await.status, StatusCode::OK);
    assert_eq!(env.send("HEAD", "/bkt/dir", &[], "").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn delimiter_listing_pages_without_duplicates() {
    let env = Env::new();
    env.bucket("bkt").await;
    for key in ["a/1", "a/2", "b/1", "c", "d/x/y", "e"] {
        env.put(&format!("/bkt/{key}"), "data").await;
    }

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let mut uri = "/bkt?list-type=2&delimiter=%2F&max-keys=2".to_owned();
        if let Some(t) = &token {
            uri.push_str(&format!("&continuation-token={t}"));
        }
        let page = env.get(&uri).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let entries = page.tags("Key").len() + page.common_prefixes().len();
        assert_eq!(page.tag("KeyCount"), entries.to_string());
        seen.extend(page.common_prefixes());
        seen.extend(page.tags("Key"));
        if page.tag("IsTruncated") == "false" {
            assert!(page.tags("NextContinuationToken").is_empty());
            break;
        }
        token = Some(page.tag("NextContinuationToken"));
    }
    seen.sort();
    assert_eq!(seen, ["a/", "b/", "c", "d/", "e"]);

    // V1: NextMarker is the last common prefix or key; resuming from it continues the listing.
    let first = env.get("/bkt?delimiter=%2F&max-keys=2").await;
    assert_eq!(first.tag("IsTruncated"), "true");
    assert_eq!(first.tag("NextMarker"), "b/");
    let second = env.get("/bkt?delimiter=%2F&max-keys=2&marker=b%2F").await;
    assert_eq!(second.tags("Key"), ["c"]);
    assert_eq!(second.common_prefixes(), ["d/"]);
    // Without a delimiter, v1 sends no NextMarker (clients resume from the last key).
    let plain = env.get("/bkt?max-keys=2").await;
    assert_eq!(plain.tags("Key"), ["a/1", "a/2"]);
    assert!(plain.tags("NextMarker").is_empty());

    let bad = env.get("/bkt?list-type=2&continuation-token=%21%21").await;
    bad.assert_error(StatusCode::BAD_REQUEST, "InvalidArgument");
}

#[tokio::test]
async fn start_after_and_url_encoding() {
    let env = Env::new();
    env.bucket("bkt").await;
    env.put("/bkt/a%20b%2Bc", "1").await;
    env.put("/bkt/z", "2").await;
    let page = env.get("/bkt?list-type=2&encoding-type=url").await;
    assert_eq!(page.tags("Key"), ["a%20b%2Bc", "z"]);
    assert_eq!(page.tag("EncodingType"), "url");
    let after = env.get("/bkt?list-type=2&start-after=a").await;
    assert_eq!(after.tags("Key"), ["a b+c", "z"]);
    let owner = env.get("/bkt?list-type=2&fetch-owner=true").await;
    assert_eq!(owner.tags("Owner").len(), 2);
    assert!(env.get("/bkt?list-type=2").await.tags("Owner").is_empty());
}

#[tokio::test]
async fn ranged_get() {
    let env = Env::new();
    env.bucket("bkt").await;
    env.put("/bkt/k", "0123456789").await;
    let cases = [
        ("bytes=2-5", "2345", "bytes 2-5/10"),
        ("bytes=7-", "789", "bytes 7-9/10"),
        ("bytes=-3", "789", "bytes 7-9/10"),
    ];
    for (range, body, content_range) in cases {
        let resp = env.send("GET", "/bkt/k", &[("range", range)], "").await;
        assert_eq!(resp.status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(resp.body, body, "{range}");
        assert_eq!(resp.header("content-range"), content_range);
        assert_eq!(resp.header("content-length"), body.len().to_string());
    }
    let whole = env.get("/bkt/k").await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.body, "0123456789");
    assert_eq!(whole.header("accept-ranges"), "bytes");
    let past_end = env.send("GET", "/bkt/k", &[("range", "bytes=10-20")], "").await;
    past_end.assert_error(StatusCode::RANGE_NOT_SATISFIABLE, "InvalidRange");
    assert_eq!(past_end.header("content-range"), "bytes */10");
    env.get("/bkt/missing").await.assert_error(StatusCode::NOT_FOUND, "NoSuchKey");
    env.get("/nobucket/k").await.assert_error(StatusCode::NOT_FOUND, "NoSuchBucket");
}

#[tokio::test]
async fn conditional_requests() {
    let env = Env::new();
    env.bucket("bkt").await;
    let etag = env.put("/bkt/k", "hello").await.header("etag").to_owned();
    assert_eq!(etag, format!("\"{}\"", md5_hex(b"hello")));

    let mismatch = env.send("GET", "/bkt/k", &[("if-match", "\"0000\"")], "").await;
    mismatch.assert_error(StatusCode::PRECONDITION_FAILED, "PreconditionFailed");
    assert_eq!(env.send("GET", "/bkt/k", &[("if-match", &etag)], "").await.status, StatusCode::OK);
    let cached = env.send("GET", "/bkt/k", &[("if-none-match", &etag)], "").await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    assert_eq!(cached.header("etag"), etag);
    let future = "Fri, 01 Jan 2100 00:00:00 GMT";
    let past = "Thu, 01 Jan 1970 00:00:00 GMT";
    assert_eq!(env.send("GET", "/bkt/k", &[("if-modified-since", future)], "").await.status, StatusCode::NOT_MODIFIED);
    assert_eq!(
        env.send("HEAD", "/bkt/k", &[("if-unmodified-since", past)], "").await.status,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(env.send("GET", "/bkt/k", &[("if-modified-since", past)], "").await.status, StatusCode::OK);

    // Conditional writes.
    let create_only = env.send("PUT", "/bkt/k", &[("if-none-match", "*")], "again").await;
    create_only.assert_error(StatusCode::PRECONDITION_FAILED, "PreconditionFailed");
    assert_eq!(env.send("PUT", "/bkt/new", &[("if-none-match", "*")], "x").await.status, StatusCode::OK);
    let stale = env.send("PUT", "/bkt/k", &[("if-match", "\"0000\"")], "again").await;
    stale.assert_error(StatusCode::PRECONDITION_FAILED, "PreconditionFailed");
    assert_eq!(env.send("PUT", "/bkt/k", &[("if-match", &etag)], "again").await.status, StatusCode::OK);
    assert_eq!(env.get("/bkt/k").await.body, "again");
}

#[tokio::test]
async fn bucket_lifecycle() {
    let env = Env::new();
    env.bucket("bkt").await;
    env.send("PUT", "/bkt", &[], "").await.assert_error(StatusCode::CONFLICT, "BucketAlreadyOwnedByYou");
    assert_eq!(env.send("HEAD", "/bkt", &[], "").await.status, StatusCode::OK);
    env.put("/bkt/k", "x").await;
    env.send("DELETE", "/bkt", &[], "").await.assert_error(StatusCode::CONFLICT, "BucketNotEmpty");
    assert_eq!(env.send("DELETE", "/bkt/k", &[], "").await.status, StatusCode::NO_CONTENT);
    assert_eq!(env.send("DELETE", "/bkt/k", &[], "").await.status, StatusCode::NO_CONTENT);
    assert_eq!(env.send("DELETE", "/bkt", &[], "").await.status, StatusCode::NO_CONTENT);
    assert_eq!(env.send("HEAD", "/bkt", &[], "").await.status, StatusCode::NOT_FOUND);
    env.send("DELETE", "/bkt", &[], "").await.assert_error(StatusCode::NOT_FOUND, "NoSuchBucket");
    assert!(env.store.bucket_names().is_empty());
    // The name is free again.
    env.bucket("bkt").await;
    assert!(env.get("/bkt?list-type=2").await.tags("Key").is_empty());
}

#[tokio::test]
async fn list_buckets_is_filtered_and_located() {
    struct HideSecret;
    impl ListBucketsFilter for HideSecret {
        fn filter(&self, access_key: Option<&str>, buckets: Vec<String>) -> S3Result<Vec<String>> {
            assert_eq!(access_key, None);
            Ok(buckets.into_iter().filter(|b| b != "secret").collect())
        }
    }
    let env = Env::with_filter(Arc::new(HideSecret));
    env.bucket("public").await;
    env.bucket("secret").await;
    let list = env.get("/").await;
    assert_eq!(list.tags("Name"), ["public"]);
    assert_eq!(env.get("/public?location").await.status, StatusCode::OK);
    env.get("/nope?location").await.assert_error(StatusCode::NOT_FOUND, "NoSuchBucket");
}

#[tokio::test]
async fn metadata_and_content_md5() {
    let env = Env::new();
    env.bucket("bkt").await;
    let headers = [("content-type", "text/plain"), ("x-amz-meta-color", "blue"), ("cache-control", "no-cache")];
    assert_eq!(env.send("PUT", "/bkt/k", &headers, "hi").await.status, StatusCode::OK);
    let head = env.send("HEAD", "/bkt/k", &[], "").await;
    assert_eq!(head.header("content-type"), "text/plain");
    assert_eq!(head.header("x-amz-meta-color"), "blue");
    assert_eq!(head.header("cache-control"), "no-cache");
    assert_eq!(head.header("content-length"), "2");
    assert!(!head.header("last-modified").is_empty());
    assert_eq!(env.get("/bkt/k").await.header("x-amz-meta-color"), "blue");

    // Content-MD5 of "hello" against other bodies.
    let md5 = ("content-md5", "XUFAKrxLKna5cZ2REBfFkg==");
    assert_eq!(env.send("PUT", "/bkt/h", &[md5], "hello").await.status, StatusCode::OK);
    env.send("PUT", "/bkt/h", &[md5], "other").await.assert_error(StatusCode::BAD_REQUEST, "BadDigest");
    env.send("PUT", "/bkt/h", &[("content-md5", "bm9wZQ==")], "x")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "InvalidDigest");
    assert_eq!(env.get("/bkt/h").await.body, "hello");
    // No temp files are left behind by the failures.
    assert_eq!(std::fs::read_dir(env.root.join(TMP_DIR)).unwrap().count(), 0);
}

#[tokio::test]
async fn copy_object() {
    let env = Env::new();
    env.bucket("bkt").await;
    env.bucket("dst").await;
    let headers = [("content-type", "text/plain"), ("x-amz-meta-mode", "644")];
    assert_eq!(env.send("PUT", "/bkt/dir/a%20b%2Bc.txt", &headers, "content").await.status, StatusCode::OK);

    let copy = env.send("PUT", "/dst/copy", &[("x-amz-copy-source", "/bkt/dir/a%20b%2Bc.txt")], "").await;
    assert_eq!(copy.status, StatusCode::OK, "{}", copy.text());
    assert_eq!(copy.tag("ETag"), format!("\"{}\"", md5_hex(b"content")));
    let copied = env.get("/dst/copy").await;
    assert_eq!(copied.body, "content");
    assert_eq!(copied.header("x-amz-meta-mode"), "644");
    assert_eq!(copied.header("content-type"), "text/plain");

    let same = [("x-amz-copy-source", "bkt/dir/a%20b%2Bc.txt")];
    env.send("PUT", "/bkt/dir/a%20b%2Bc.txt", &same, "").await.assert_error(StatusCode::BAD_REQUEST, "InvalidRequest");
    let replace = [same[0], ("x-amz-metadata-directive", "REPLACE"), ("x-amz-meta-mode", "600")];
    assert_eq!(env.send("PUT", "/bkt/dir/a%20b%2Bc.txt", &replace, "").await.status, StatusCode::OK);
    let head = env.send("HEAD", "/bkt/dir/a%20b%2Bc.txt", &[], "").await;
    assert_eq!(head.header("x-amz-meta-mode"), "600");
    assert_eq!(env.get("/bkt/dir/a%20b%2Bc.txt").await.body, "content");

    let cond = [("x-amz-copy-source", "/bkt/dir/a%20b%2Bc.txt"), ("x-amz-copy-source-if-match", "\"nope\"")];
    env.send("PUT", "/dst/x", &cond, "").await.assert_error(StatusCode::PRECONDITION_FAILED, "PreconditionFailed");
    let missing = [("x-amz-copy-source", "/bkt/missing")];
    env.send("PUT", "/dst/x", &missing, "").await.assert_error(StatusCode::NOT_FOUND, "NoSuchKey");
}

#[tokio::test]
async fn delete_objects_reports_per_key() {
    let env = Env::new();
    env.bucket("bkt").await;
    env.put("/bkt/one", "1").await;
    env.put("/bkt/two", "2").await;
    let body = "<Delete><Object><Key>one</Key></Object><Object><Key>absent</Key></Object></Delete>";
    let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(body));
    let loud = env.send("POST", "/bkt?delete", &[("content-md5", &md5)], body).await;
    assert_eq!(loud.status, StatusCode::OK, "{}", loud.text());
    assert_eq!(loud.tags("Key"), ["one", "absent"]);
    let quiet_body = "<Delete><Quiet>true</Quiet><Object><Key>two</Key></Object></Delete>";
    let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(quiet_body));
    let quiet = env.send("POST", "/bkt?delete", &[("content-md5", &md5)], quiet_body).await;
    assert_eq!(quiet.status, StatusCode::OK, "{}", quiet.text());
    assert!(quiet.tags("Key").is_empty());
    assert!(env.get("/bkt?list-type=2").await.tags("Key").is_empty());
}

/// Starts a multipart upload and returns its id.
async fn start_upload(env: &Env, uri: &str) -> String {
    let resp = env.send("POST", &format!("{uri}?uploads"), &[("content-type", "text/csv")], "").await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    resp.tag("UploadId")
}

async fn upload_part(env: &Env, uri: &str, id: &str, n: u32, body: &'static str) -> String {
    let resp = env.send("PUT", &format!("{uri}?partNumber={n}&uploadId={id}"), &[], body).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    resp.header("etag").to_owned()
}

fn complete_body(parts: &[(u32, &str)]) -> String {
    let parts: String =
        parts.iter().map(|(n, etag)| format!("<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>")).collect();
    format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>")
}

#[tokio::test]
async fn multipart_upload_completes_with_s3_etag() {
    let env = Env::new();
    env.store.set_min_part_size(5);
    env.bucket("bkt").await;
    let id = start_upload(&env, "/bkt/big").await;
    let e1 = upload_part(&env, "/bkt/big", &id, 1, "hello").await;
    let e2 = upload_part(&env, "/bkt/big", &id, 2, " world").await;
    assert_eq!(e1, format!("\"{}\"", md5_hex(b"hello")));

    let parts = env.get(&format!("/bkt/big?uploadId={id}")).await;
    assert_eq!(parts.tags("PartNumber"), ["1", "2"]);
    assert_eq!(parts.tags("Size"), ["5", "6"]);

    let complete = |body: String| {
        let uri = format!("/bkt/big?uploadId={id}");
        let env = &env;
        async move { env.send("POST", &uri, &[], body).await }
    };
    complete(complete_body(&[(2, &e2), (1, &e1)])).await.assert_error(StatusCode::BAD_REQUEST, "InvalidPartOrder");
    complete(complete_body(&[(1, &e1), (2, "\"0000\"")])).await.assert_error(StatusCode::BAD_REQUEST, "InvalidPart");
    complete(complete_body(&[(1, &e1), (3, &e2)])).await.assert_error(StatusCode::BAD_REQUEST, "InvalidPart");

    let done = complete(complete_body(&[(1, &e1), (2, &e2)])).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    let mut md5 = Md5::new();
    md5.update(Md5::digest(b"hello"));
    md5.update(Md5::digest(b" world"));
    let expected = format!("\"{}-2\"", hex::encode(md5.finalize()));
    assert_eq!(done.tag("ETag"), expected);

    let object = env.get("/bkt/big").await;
    assert_eq!(object.body, "hello world");
    assert_eq!(object.header("etag"), expected);
    assert_eq!(object.header("content-type"), "text/csv");
    assert_eq!(object.header("x-amz-mp-parts-count"), "2");
    // The upload is gone once completed.
    complete(complete_body(&[(1, &e1), (2, &e2)])).await.assert_error(StatusCode::NOT_FOUND, "NoSuchUpload");
    assert_eq!(std::fs::read_dir(env.root.join(UPLOADS_DIR)).unwrap().count(), 0);
}

/// What the bucket's data directory holds: each entry's name, and the sizes of the files in it (one
/// for a file, one per part for a directory).
fn data_dir_entries(env: &Env, bucket: &str) -> Vec<Vec<u64>> {
    let dir = env.root.join(bucket).join(DATA_DIR);
    let mut entries: Vec<Vec<u64>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            match path.is_dir() {
                true => {
                    let mut parts: Vec<_> = std::fs::read_dir(&path).unwrap().map(|p| p.unwrap().path()).collect();
                    parts.sort();
                    parts.iter().map(|p| p.metadata().unwrap().len()).collect()
                }
                false => vec![path.metadata().unwrap().len()],
            }
        })
        .collect();
    entries.sort();
    entries
}

/// A completed upload keeps its parts' files as they were stored (as MinIO does), not a copy of
/// them in one file: reads, ranges across parts, copies and a reopened store see one object.
#[tokio::test]
async fn a_completed_upload_keeps_its_parts_and_reads_across_them() {
    let env = Env::new();
    env.store.set_min_part_size(5);
    env.bucket("bkt").await;
    let id = start_upload(&env, "/bkt/big").await;
    let e1 = upload_part(&env, "/bkt/big", &id, 1, "hello").await;
    let e2 = upload_part(&env, "/bkt/big", &id, 2, " big ").await;
    let e3 = upload_part(&env, "/bkt/big", &id, 3, "world").await;
    let done =
        env.send("POST", &format!("/bkt/big?uploadId={id}"), &[], complete_body(&[(1, &e1), (2, &e2), (3, &e3)])).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert_eq!(data_dir_entries(&env, "bkt"), [vec![5, 5, 5]], "the parts, not a copy of them");

    assert_eq!(env.get("/bkt/big").await.body, "hello big world");
    let across = env.send("GET", "/bkt/big", &[("range", "bytes=3-11")], "").await;
    assert_eq!(across.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(across.body, "lo big wo");
    assert_eq!(env.send("GET", "/bkt/big", &[("range", "bytes=-3")], "").await.body, "rld");
    let copy = env.send("PUT", "/bkt/copy", &[("x-amz-copy-source", "/bkt/big")], "").await;
    assert_eq!(copy.status, StatusCode::OK, "{}", copy.text());
    assert_eq!(env.get("/bkt/copy").await.body, "hello big world");

    let reopened = Store::open(&env.root, Arc::new(AllowAll)).unwrap();
    let env2 = Env { root: env.root.clone(), store: env.store.clone(), svc: S3ServiceBuilder::new(reopened).build() };
    assert_eq!(env2.get("/bkt/big").await.body, "hello big world", "read back after a reopen");
    assert_eq!(env2.send("PUT", "/bkt/big", &[], "small").await.status, StatusCode::OK);
    assert_eq!(env2.send("DELETE", "/bkt/copy", &[], "").await.status, StatusCode::NO_CONTENT);
    assert_eq!(data_dir_entries(&env, "bkt"), [vec![5]], "the replaced parts are gone with the object");
}

#[tokio::test]
async fn multipart_parts_must_meet_minimum_size() {
    let env = Env::new();
    env.bucket("bkt").await;
    let id = start_upload(&env, "/bkt/k").await;
    let e1 = upload_part(&env, "/bkt/k", &id, 1, "small").await;
    let e2 = upload_part(&env, "/bkt/k", &id, 2, "tail").await;
    let resp = env.send("POST", &format!("/bkt/k?uploadId={id}"), &[], complete_body(&[(1, &e1), (2, &e2)])).await;
    resp.assert_error(StatusCode::BAD_REQUEST, "EntityTooSmall");
    // A single small part is fine (it is the last one).
    let resp = env.send("POST", &format!("/bkt/k?uploadId={id}"), &[], complete_body(&[(2, &e2)])).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert_eq!(env.get("/bkt/k").await.body, "tail");
}

#[tokio::test]
async fn upload_part_copy_takes_a_range() {
    let env = Env::new();
    env.store.set_min_part_size(1);
    env.bucket("bkt").await;
    env.put("/bkt/src", "0123456789").await;
    let id = start_upload(&env, "/bkt/dst").await;
    let headers = [("x-amz-copy-source", "/bkt/src"), ("x-amz-copy-source-range", "bytes=2-4")];
    let part = env.send("PUT", &format!("/bkt/dst?partNumber=1&uploadId={id}"), &headers, "").await;
    assert_eq!(part.status, StatusCode::OK, "{}", part.text());
    let etag = part.tag("ETag");
    assert_eq!(etag, format!("\"{}\"", md5_hex(b"234")));
    let done = env.send("POST", &format!("/bkt/dst?uploadId={id}"), &[], complete_body(&[(1, &etag)])).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert_eq!(env.get("/bkt/dst").await.body, "234");
}

#[tokio::test]
async fn list_and_abort_multipart_uploads() {
    let env = Env::new();
    env.bucket("bkt").await;
    env.bucket("other").await;
    let a = start_upload(&env, "/bkt/a.bin").await;
    let nested = start_upload(&env, "/bkt/logs/x.bin").await;
    let again = start_upload(&env, "/bkt/a.bin").await;
    start_upload(&env, "/other/a.bin").await;

    let all = env.get("/bkt?uploads").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text());
    assert_eq!(all.tags("UploadId"), [a.clone(), again.clone(), nested.clone()]);
    assert_eq!(all.tags("Key"), ["a.bin", "a.bin", "logs/x.bin"]);

    let grouped = env.get("/bkt?uploads&delimiter=%2F").await;
    assert_eq!(grouped.tags("Key"), ["a.bin", "a.bin"]);
    assert_eq!(grouped.common_prefixes(), ["logs/"]);

    let first = env.get("/bkt?uploads&max-uploads=1").await;
    assert_eq!(first.tag("IsTruncated"), "true");
    assert_eq!(first.tag("NextKeyMarker"), "a.bin");
    assert_eq!(first.tag("NextUploadIdMarker"), a);
    let rest = env.get(&format!("/bkt?uploads&key-marker=a.bin&upload-id-marker={a}")).await;
    assert_eq!(rest.tags("UploadId"), [again.clone(), nested.clone()]);

    assert_eq!(env.send("DELETE", &format!("/bkt/a.bin?uploadId={a}"), &[], "").await.status, StatusCode::NO_CONTENT);
    let abort_again = env.send("DELETE", &format!("/bkt/a.bin?uploadId={a}"), &[], "").await;
    abort_again.assert_error(StatusCode::NOT_FOUND, "NoSuchUpload");
    // An upload id only works with its own key.
    let wrong_key = env.send("PUT", &format!("/bkt/other?partNumber=1&uploadId={nested}"), &[], "x").await;
    wrong_key.assert_error(StatusCode::NOT_FOUND, "NoSuchUpload");
    let bad_part = env.send("PUT", &format!("/bkt/logs/x.bin?partNumber=0&uploadId={nested}"), &[], "x").await;
    bad_part.assert_error(StatusCode::BAD_REQUEST, "InvalidArgument");
    assert_eq!(env.get("/bkt?uploads").await.tags("UploadId"), [again, nested]);
}

#[tokio::test]
async fn index_survives_reopen() {
    let env = Env::new();
    env.store.ensure_bucket("seeded").unwrap();
    env.store.ensure_bucket("seeded").unwrap();
    assert!(env.store.ensure_bucket("Not_Valid").is_err());
    env.store.put_bytes("seeded", "greeting.txt", b"hi").unwrap();
    env.store.put_bytes("seeded", "greeting.txt", b"hello").unwrap();
    assert!(env.store.put_bytes("missing", "k", b"x").is_err());
    let headers = [("x-amz-meta-owner", "alice"), ("content-type", "text/plain")];
    assert_eq!(env.send("PUT", "/seeded/dir/", &headers, "").await.status, StatusCode::OK);
    // A stray data file from an interrupted write is cleaned up on open.
    std::fs::write(env.root.join("seeded").join(DATA_DIR).join("orphan"), b"junk").unwrap();

    let reopened = Store::open(&env.root, Arc::new(AllowAll)).unwrap();
    assert_eq!(reopened.bucket_names(), ["seeded"]);
    let svc = S3ServiceBuilder::new(reopened).build();
    let env2 = Env { root: env.root.clone(), store: env.store.clone(), svc };
    let list = env2.get("/seeded?list-type=2").await;
    assert_eq!(list.tags("Key"), ["dir/", "greeting.txt"]);
    assert_eq!(env2.get("/seeded/greeting.txt").await.body, "hello");
    let head = env2.send("HEAD", "/seeded/dir/", &[], "").await;
    assert_eq!(head.header("x-amz-meta-owner"), "alice");
    assert_eq!(head.header("content-type"), "text/plain");
    let data_files = std::fs::read_dir(env.root.join("seeded").join(DATA_DIR)).unwrap().count();
    assert_eq!(data_files, 2);
}

#[tokio::test]
async fn reopen_keeps_data_of_unparsable_sidecars() {
    let env = Env::new();
    env.store.ensure_bucket("seeded").unwrap();
    env.store.put_bytes("seeded", "good", b"1").unwrap();
    assert!(env.store.put_bytes("seeded", "", b"x").is_err());
    let bucket = env.root.join("seeded");
    std::fs::write(bucket.join(META_DIR).join("broken.json"), b"{not json").unwrap();
    std::fs::write(bucket.join(DATA_DIR).join("maybe-its-data"), b"?").unwrap();

    let reopened = Store::open(&env.root, Arc::new(AllowAll)).unwrap();
    let svc = S3ServiceBuilder::new(reopened).build();
    let env2 = Env { root: env.root.clone(), store: env.store.clone(), svc };
    assert_eq!(env2.get("/seeded?list-type=2").await.tags("Key"), ["good"]);
    assert!(bucket.join(DATA_DIR).join("maybe-its-data").exists());
    assert!(bucket.join(META_DIR).join("broken.json").exists());
}

#[tokio::test]
async fn large_objects_stream_in_chunks() {
    let env = Env::new();
    env.bucket("bkt").await;
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i: u32| (i % 251) as u8).collect();
    let put = env.send("PUT", "/bkt/large", &[], data.clone()).await;
    assert_eq!(put.header("etag"), format!("\"{}\"", md5_hex(&data)));
    let whole = env.get("/bkt/large").await;
    assert_eq!(whole.header("content-length"), data.len().to_string());
    assert!(whole.body == data);
    let range = env.send("GET", "/bkt/large", &[("range", "bytes=131000-1048600")], "").await;
    assert_eq!(range.status, StatusCode::PARTIAL_CONTENT);
    assert!(range.body == data[131_000..=1_048_600]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_see_partial_objects() {
    let env = Arc::new(Env::new());
    env.bucket("bkt").await;
    let (a, b) = (Bytes::from(vec![b'a'; 300_000]), Bytes::from(vec![b'b'; 200_000]));
    env.send("PUT", "/bkt/k", &[], a.clone()).await;
    let writer = {
        let (env, a, b) = (env.clone(), a.clone(), b.clone());
        tokio::spawn(async move {
            for i in 0..20 {
                let body = if i % 2 == 0 { b.clone() } else { a.clone() };
                assert_eq!(env.send("PUT", "/bkt/k", &[], body).await.status, StatusCode::OK);
            }
        })
    };
    for _ in 0..40 {
        let got = env.get("/bkt/k").await;
        assert!(got.body == a || got.body == b, "torn read of {} bytes", got.body.len());
        assert_eq!(got.header("etag"), format!("\"{}\"", md5_hex(&got.body)));
    }
    writer.await.unwrap();
    // Every replaced version's data file is gone.
    assert_eq!(std::fs::read_dir(env.root.join("bkt").join(DATA_DIR)).unwrap().count(), 1);
}
