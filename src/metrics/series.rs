//! The series a mount exports, each named once here with its help text. Labels never carry a uid,
//! a bucket or a key: the HTTP endpoint is readable by every local user, and a label per key would
//! grow without bound.

use std::time::Duration;

use ::metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

pub const S3_REQUESTS: &str = "ssofs_s3_requests_total";
pub const S3_LATENCY: &str = "ssofs_s3_request_duration_seconds";
pub const S3_BYTES_SENT: &str = "ssofs_s3_sent_bytes_total";
pub const S3_BYTES_RECEIVED: &str = "ssofs_s3_received_bytes_total";
pub const FUSE_OPS: &str = "ssofs_fuse_operations_total";
pub const CACHE_HITS: &str = "ssofs_block_cache_hits_total";
pub const CACHE_MISSES: &str = "ssofs_block_cache_misses_total";
pub const CACHE_EVICTIONS: &str = "ssofs_block_cache_evictions_total";
pub const CACHE_BYTES: &str = "ssofs_block_cache_bytes";
pub const READ_AHEAD: &str = "ssofs_read_ahead_in_flight_bytes";
pub const STS_RENEWALS: &str = "ssofs_sts_renewals_total";
pub const IDENTITIES: &str = "ssofs_identities";
pub const METADATA_ENTRIES: &str = "ssofs_metadata_entries";
pub const UPLOADS: &str = "ssofs_uploads_total";
pub const UPLOADS_IN_FLIGHT: &str = "ssofs_uploads_in_flight";
pub const UPLOAD_BYTES_PENDING: &str = "ssofs_upload_pending_bytes";

/// Latency buckets of S3 requests, in seconds: a local MinIO answers in milliseconds, a 16 MiB
/// part over a slow link takes tens of seconds.
pub const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Help texts for every series (shown as `# HELP` lines).
pub fn describe() {
    describe_counter!(S3_REQUESTS, "S3 requests (each attempt) by operation and HTTP status (\"error\": no answer)");
    describe_histogram!(
        S3_LATENCY,
        ::metrics::Unit::Seconds,
        "S3 request latency to the answer's headers, by operation"
    );
    describe_counter!(S3_BYTES_SENT, ::metrics::Unit::Bytes, "request body bytes sent to S3, by operation");
    describe_counter!(S3_BYTES_RECEIVED, ::metrics::Unit::Bytes, "response body bytes S3 announced, by operation");
    describe_counter!(FUSE_OPS, "FUSE requests answered, by operation and errno (0: success)");
    describe_counter!(CACHE_HITS, "1 MiB blocks read from the block cache");
    describe_counter!(CACHE_MISSES, "1 MiB blocks a read had to wait for from S3");
    describe_counter!(CACHE_EVICTIONS, "blocks evicted from the memory tier of the block cache");
    describe_gauge!(CACHE_BYTES, ::metrics::Unit::Bytes, "bytes the memory tier of the block cache holds");
    describe_gauge!(READ_AHEAD, ::metrics::Unit::Bytes, "read-ahead bytes being fetched, across all readers");
    describe_counter!(STS_RENEWALS, "STS credential exchanges by outcome (ok, failed)");
    describe_gauge!(IDENTITIES, "identities in memory by sign-in state (signed_in, login_required, no_credentials)");
    describe_gauge!(
        METADATA_ENTRIES,
        "entries of the metadata maps, all identities together (inodes, listings: directories with a cached listing, negative: names known missing)"
    );
    describe_counter!(UPLOADS, "uploads of written files by outcome (ok, failed, refused)");
    describe_gauge!(UPLOADS_IN_FLIGHT, "uploads started and not finished");
    describe_gauge!(UPLOAD_BYTES_PENDING, ::metrics::Unit::Bytes, "bytes of uploads in flight not sent yet");
}

/// One S3 request attempt: its answer's status (`None`: no answer), how long the answer took and
/// the body bytes each way.
pub fn s3_request(operation: &str, status: Option<u16>, latency: Duration, sent: u64, received: u64) {
    let op = operation.to_string();
    let status = status.map_or_else(|| "error".to_string(), |s| s.to_string());
    counter!(S3_REQUESTS, "operation" => op.clone(), "status" => status).increment(1);
    histogram!(S3_LATENCY, "operation" => op.clone()).record(latency.as_secs_f64());
    if sent > 0 {
        counter!(S3_BYTES_SENT, "operation" => op.clone()).increment(sent);
    }
    if received > 0 {
        counter!(S3_BYTES_RECEIVED, "operation" => op).increment(received);
    }
}

/// Handles of the series bumped on the hottest path (a write of a few bytes), looked up once the
/// recorder is installed instead of at each call: the lookup hashes the name and labels.
struct Hot {
    write_ok: ::metrics::Counter,
}

static HOT: std::sync::OnceLock<Hot> = std::sync::OnceLock::new();

/// Looks the hot series up; called once the recorder is installed (before, they would be no-ops).
pub(super) fn resolve_hot() {
    let _ = HOT.set(Hot { write_ok: counter!(FUSE_OPS, "operation" => "write", "errno" => "0") });
}

/// One FUSE reply: `errno` 0 for success.
pub fn fuse_op(op: &'static str, errno: i32) {
    if let (Some(hot), "write", 0) = (HOT.get(), op, errno) {
        return hot.write_ok.increment(1);
    }
    // Success, by far the most common, without an allocation: this runs on every write.
    let errno: ::metrics::SharedString = if errno == 0 { "0".into() } else { errno.to_string().into() };
    counter!(FUSE_OPS, "operation" => op, "errno" => errno).increment(1);
}

pub fn cache_hit() {
    counter!(CACHE_HITS).increment(1);
}

pub fn cache_miss() {
    counter!(CACHE_MISSES).increment(1);
}

pub fn cache_evicted(blocks: u64) {
    counter!(CACHE_EVICTIONS).increment(blocks);
}

pub fn cache_bytes(bytes: u64) {
    gauge!(CACHE_BYTES).set(bytes as f64);
}

/// Read-ahead bytes that started (`delta` > 0) or finished (< 0) being fetched.
pub fn read_ahead(delta: i64) {
    gauge!(READ_AHEAD).increment(delta as f64);
}

pub fn sts_renewal(ok: bool) {
    counter!(STS_RENEWALS, "outcome" => if ok { "ok" } else { "failed" }).increment(1);
}

/// How many identities are in each sign-in state now.
pub fn identities(signed_in: usize, login_required: usize, no_credentials: usize) {
    gauge!(IDENTITIES, "state" => "signed_in").set(signed_in as f64);
    gauge!(IDENTITIES, "state" => "login_required").set(login_required as f64);
    gauge!(IDENTITIES, "state" => "no_credentials").set(no_credentials as f64);
}

/// How many entries the metadata maps hold, all identities together.
pub fn metadata_entries(inodes: usize, listings: usize, negative: usize) {
    gauge!(METADATA_ENTRIES, "map" => "inodes").set(inodes as f64);
    gauge!(METADATA_ENTRIES, "map" => "listings").set(listings as f64);
    gauge!(METADATA_ENTRIES, "map" => "negative").set(negative as f64);
}

/// An upload of `total` bytes started (`started`), or one ended with `outcome`.
pub fn upload_started(total: u64) {
    gauge!(UPLOADS_IN_FLIGHT).increment(1.0);
    gauge!(UPLOAD_BYTES_PENDING).increment(total as f64);
}

/// Bytes of an upload in flight were sent.
pub fn upload_sent(bytes: u64) {
    gauge!(UPLOAD_BYTES_PENDING).decrement(bytes as f64);
}

/// An upload ended: `unsent` bytes of it were never sent; `outcome` is ok, failed or refused.
pub fn upload_ended(unsent: u64, outcome: &'static str) {
    gauge!(UPLOADS_IN_FLIGHT).decrement(1.0);
    gauge!(UPLOAD_BYTES_PENDING).decrement(unsent as f64);
    counter!(UPLOADS, "outcome" => outcome).increment(1);
}
