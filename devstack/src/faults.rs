//! Fault injection for tests (control API `/_devstack/faults`): stop and restart the S3 endpoint,
//! add latency, drop connections in the middle of a response, answer 503 SlowDown for a fraction of
//! requests, make STS fail, take the identity provider down, answer an HTML page instead of S3 (a
//! wrong endpoint, a proxy's or captive portal's page), or send replies cut short but complete in
//! themselves (a body shorter than asked for, with a matching Content-Length).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use serde::Serialize;

#[derive(Default)]
pub struct Faults {
    /// S3 and STS connections are cut without an answer, as if the server were down.
    pub s3_down: AtomicBool,
    /// Added before every S3/STS answer.
    pub latency_ms: AtomicU64,
    /// Per mille of S3 requests answered 503 SlowDown.
    pub slowdown_permille: AtomicU32,
    /// Per mille of GET responses whose connection is cut halfway through the body.
    pub drop_permille: AtomicU32,
    /// STS answers 503 to every call.
    pub sts_down: AtomicBool,
    /// The identity provider's Azure endpoints answer 503.
    pub idp_down: AtomicBool,
    /// Every S3 and STS request is answered `200 OK` with an HTML page.
    pub html_replies: AtomicBool,
    /// Every successful S3 answer loses the second half of its body, Content-Length adjusted: a
    /// well-framed reply whose XML or data is truncated.
    pub truncated_replies: AtomicBool,
    /// Uploads sent as aws-chunked with a trailing checksum (`x-amz-content-sha256:
    /// STREAMING-...-TRAILER`, the SDKs' default since 2025) are answered 400
    /// `XAmzContentSHA256Mismatch`, as Ceph RGW before 18 and MinIO before RELEASE.2023-06 do: the
    /// servers in the field that predate trailing checksums.
    pub no_trailing_checksums: AtomicBool,
    /// ListBuckets answers an empty list, as Ceph RGW does for a federated user who owns no bucket
    /// (RGW lists only the caller's own buckets, whatever the role's policy allows).
    pub owned_buckets_only: AtomicBool,
    /// GetObject is refused (403 AccessDenied) while HEAD still answers: a HEAD of a missing key is
    /// 404, as on servers whose policy check for HEAD differs from GET's.
    pub deny_get_object: AtomicBool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FaultSettings {
    pub s3_down: bool,
    pub latency_ms: u64,
    pub slowdown_permille: u32,
    pub drop_permille: u32,
    pub sts_down: bool,
    pub idp_down: bool,
    pub html_replies: bool,
    pub truncated_replies: bool,
    pub no_trailing_checksums: bool,
    pub owned_buckets_only: bool,
    pub deny_get_object: bool,
}

impl Faults {
    pub fn settings(&self) -> FaultSettings {
        FaultSettings {
            s3_down: self.s3_down.load(Ordering::SeqCst),
            latency_ms: self.latency_ms.load(Ordering::SeqCst),
            slowdown_permille: self.slowdown_permille.load(Ordering::SeqCst),
            drop_permille: self.drop_permille.load(Ordering::SeqCst),
            sts_down: self.sts_down.load(Ordering::SeqCst),
            idp_down: self.idp_down.load(Ordering::SeqCst),
            html_replies: self.html_replies.load(Ordering::SeqCst),
            truncated_replies: self.truncated_replies.load(Ordering::SeqCst),
            no_trailing_checksums: self.no_trailing_checksums.load(Ordering::SeqCst),
            owned_buckets_only: self.owned_buckets_only.load(Ordering::SeqCst),
            deny_get_object: self.deny_get_object.load(Ordering::SeqCst),
        }
    }

    /// Applies `name=value` pairs from the control API; unknown names and bad values are errors.
    pub fn apply(&self, pairs: &[(String, String)]) -> Result<(), String> {
        for (name, value) in pairs {
            let flag = || match value.as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                other => Err(format!("{name}: expected 1 or 0, got {other:?}")),
            };
            let number = || value.parse::<u64>().map_err(|_| format!("{name}: expected a whole number, got {value:?}"));
            let permille = || {
                let n = number()?;
                if n > 1000 { Err(format!("{name}: at most 1000 (per mille)")) } else { Ok(n as u32) }
            };
            match name.as_str() {
                "s3_down" => self.s3_down.store(flag()?, Ordering::SeqCst),
                "latency_ms" => self.latency_ms.store(number()?, Ordering::SeqCst),
                "slowdown_permille" => self.slowdown_permille.store(permille()?, Ordering::SeqCst),
                "drop_permille" => self.drop_permille.store(permille()?, Ordering::SeqCst),
                "sts_down" => self.sts_down.store(flag()?, Ordering::SeqCst),
                "idp_down" => self.idp_down.store(flag()?, Ordering::SeqCst),
                "html_replies" => self.html_replies.store(flag()?, Ordering::SeqCst),
                "truncated_replies" => self.truncated_replies.store(flag()?, Ordering::SeqCst),
                "no_trailing_checksums" => self.no_trailing_checksums.store(flag()?, Ordering::SeqCst),
                "owned_buckets_only" => self.owned_buckets_only.store(flag()?, Ordering::SeqCst),
                "deny_get_object" => self.deny_get_object.store(flag()?, Ordering::SeqCst),
                "reset" => {
                    for f in [
                        &self.s3_down,
                        &self.sts_down,
                        &self.idp_down,
                        &self.html_replies,
                        &self.truncated_replies,
                        &self.no_trailing_checksums,
                        &self.owned_buckets_only,
                        &self.deny_get_object,
                    ] {
                        f.store(false, Ordering::SeqCst);
                    }
                    self.latency_ms.store(0, Ordering::SeqCst);
                    self.slowdown_permille.store(0, Ordering::SeqCst);
                    self.drop_permille.store(0, Ordering::SeqCst);
                }
                other => return Err(format!("unknown fault {other:?}")),
            }
        }
        Ok(())
    }

    /// Whether this request draws the short straw for a per-mille fault.
    pub fn roll(permille: &AtomicU32) -> bool {
        let p = permille.load(Ordering::SeqCst);
        p > 0 && rand::random::<u32>() % 1000 < p
    }
}
