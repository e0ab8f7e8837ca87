//! The benchmark's direct baseline: aws-sdk-s3 against the devstack's S3 endpoint with the root keys
//! (from `DEVSTACK_S3_ENDPOINT`, `DEVSTACK_ROOT_ACCESS_KEY`, `DEVSTACK_ROOT_SECRET_KEY`), no
//! filesystem in between. Also seeds the objects the benchmark reads. Each measuring command prints
//! one JSON object on stdout. Run by `bench/run`; not part of the test suite.
//!
//! ```text
//! bench-direct put-random BUCKET KEY BYTES        # seed: multipart upload of pseudo-random bytes
//! bench-direct put-many BUCKET PREFIX N BYTES CONC # N objects PREFIXi of BYTES each, CONC at a time
//! bench-direct get BUCKET KEY                     # one GetObject streamed to nowhere
//! bench-direct list BUCKET PREFIX                 # ListObjectsV2 paging with delimiter "/"
//! bench-direct list-flat BUCKET PREFIX            # ListObjectsV2 paging of every key, no delimiter
//! bench-direct ttfb BUCKET KEY                    # fresh client: time to the first body byte
//! bench-direct presign BUCKET KEY SECS            # a presigned GetObject URL (for curl), as {"url": ...}
//! ```

use std::time::Instant;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use futures::StreamExt;

const PART: usize = 16 << 20;

fn client() -> Client {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set (source devstack.env)"));
    let creds = aws_credential_types::Credentials::new(
        var("DEVSTACK_ROOT_ACCESS_KEY"),
        var("DEVSTACK_ROOT_SECRET_KEY"),
        None,
        None,
        "bench",
    );
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(var("DEVSTACK_S3_ENDPOINT"))
        .force_path_style(true)
        .credentials_provider(creds)
        .build();
    Client::from_conf(conf)
}

/// Deterministic incompressible bytes (xorshift), so every run reads the same content.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

async fn put_random(c: &Client, bucket: &str, key: &str, size: usize) -> f64 {
    let t = Instant::now();
    if size <= PART {
        let body = ByteStream::from(pseudo_random(size, 7));
        c.put_object().bucket(bucket).key(key).body(body).send().await.expect("PutObject");
        return t.elapsed().as_secs_f64();
    }
    let up = c.create_multipart_upload().bucket(bucket).key(key).send().await.expect("CreateMultipartUpload");
    let id = up.upload_id().unwrap_or_default().to_string();
    let parts = size.div_ceil(PART);
    let done: Vec<CompletedPart> = futures::stream::iter(0..parts)
        .map(|i| {
            let (c, id) = (c.clone(), id.clone());
            async move {
                let len = PART.min(size - i * PART);
                let body = ByteStream::from(pseudo_random(len, i as u64 + 7));
                let out = c
                    .upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&id)
                    .part_number(i as i32 + 1)
                    .body(body)
                    .send()
                    .await
                    .expect("UploadPart");
                CompletedPart::builder().part_number(i as i32 + 1).set_e_tag(out.e_tag().map(str::to_string)).build()
            }
        })
        .buffered(4)
        .collect()
        .await;
    c.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
        .send()
        .await
        .expect("CompleteMultipartUpload");
    t.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = |i: usize| args.get(i).map(String::as_str).unwrap_or_else(|| panic!("missing argument {i}; see --help"));
    let n = |i: usize| a(i).parse::<usize>().unwrap_or_else(|_| panic!("argument {i} must be a number"));
    match args.first().map(String::as_str) {
        Some("put-random") => {
            let secs = put_random(&client(), a(1), a(2), n(3)).await;
            println!("{{\"secs\":{secs}}}");
        }
        Some("put-many") => {
            let c = client();
            let (bucket, prefix, count, size, conc) = (a(1), a(2), n(3), n(4), n(5));
            let body = bytes::Bytes::from(pseudo_random(size, 3));
            let t = Instant::now();
            futures::stream::iter(0..count)
                .map(|i| {
                    let (c, body) = (c.clone(), body.clone());
                    async move {
                        let key = format!("{prefix}{i:05}");
                        c.put_object()
                            .bucket(bucket)
                            .key(key)
                            .body(ByteStream::from(body))
                            .send()
                            .await
                            .expect("PutObject");
                    }
                })
                .buffer_unordered(conc.max(1))
                .collect::<Vec<_>>()
                .await;
            let secs = t.elapsed().as_secs_f64();
            println!("{{\"secs\":{secs},\"count\":{count}}}");
        }
        Some("get") => {
            let c = client();
            let t = Instant::now();
            let mut out = c.get_object().bucket(a(1)).key(a(2)).send().await.expect("GetObject");
            let mut bytes = 0u64;
            while let Some(chunk) = out.body.next().await {
                bytes += chunk.expect("reading the body").len() as u64;
            }
            let secs = t.elapsed().as_secs_f64();
            println!("{{\"secs\":{secs},\"bytes\":{bytes}}}");
        }
        Some("list") => {
            let c = client();
            let t = Instant::now();
            let mut count = 0usize;
            let mut pages = c.list_objects_v2().bucket(a(1)).prefix(a(2)).delimiter("/").into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.expect("ListObjectsV2");
                count += page.contents().len() + page.common_prefixes().len();
            }
            let secs = t.elapsed().as_secs_f64();
            println!("{{\"secs\":{secs},\"count\":{count}}}");
        }
        // Every key under a prefix, 1,000 per page, no delimiter: the cheapest way to enumerate a tree.
        Some("list-flat") => {
            let c = client();
            let t = Instant::now();
            let mut count = 0usize;
            let mut pages = c.list_objects_v2().bucket(a(1)).prefix(a(2)).into_paginator().send();
            while let Some(page) = pages.next().await {
                count += page.expect("ListObjectsV2").contents().len();
            }
            let secs = t.elapsed().as_secs_f64();
            println!("{{\"secs\":{secs},\"count\":{count}}}");
        }
        Some("ttfb") => {
            let c = client();
            let t = Instant::now();
            let mut out = c.get_object().bucket(a(1)).key(a(2)).send().await.expect("GetObject");
            let _ = out.body.next().await;
            let secs = t.elapsed().as_secs_f64();
            println!("{{\"secs\":{secs}}}");
        }
        Some("presign") => {
            let expires = std::time::Duration::from_secs(n(3) as u64);
            let conf = aws_sdk_s3::presigning::PresigningConfig::expires_in(expires).expect("expiry");
            let req = client().get_object().bucket(a(1)).key(a(2)).presigned(conf).await.expect("presigning");
            println!("{}", serde_json::json!({ "url": req.uri() }));
        }
        _ => {
            eprintln!("usage: see the top of bench/direct.rs");
            std::process::exit(2);
        }
    }
}
