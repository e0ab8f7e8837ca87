//! What a mount's control socket answers to `status`: one JSON line, a [`MountReport`]. `ssofs
//! status` prints it as text ([`MountReport::text`]) or passes it on (`--json`).

use std::fmt::Write;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// One mount, as its owner (or, in a multi-user mount, one of its users) may see it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MountReport {
    pub mountpoint: String,
    pub profile: String,
    pub pid: u32,
    pub multiuser: bool,
    /// RFC 3339 (UTC).
    pub mounted_since: String,
    /// Where `-o metrics=` serves the Prometheus text, if anywhere.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub metrics: Option<String>,
    /// The identities the asker may see: all of them for the mount's owner (root for a multi-user
    /// mount), only their own for a user of a multi-user mount.
    pub identities: Vec<IdentityReport>,
}

/// One identity's figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct IdentityReport {
    pub uid: u32,
    /// Who is signed in (the ID token's preferred_username or upn).
    pub user: Option<String>,
    /// When the stored sign-in (ID token) expires; refreshed before then while a refresh token lasts.
    pub sign_in_expires_at: Option<String>,
    /// Why a new `ssofs login` is needed, when the identity provider refused the stored sign-in.
    pub login_required: Option<String>,
    /// When the S3 credentials in use expire (renewed before then).
    pub credentials_expire_at: Option<String>,
    /// Bytes applications read and wrote through the mount.
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// hits / (hits + misses), when there was a read.
    pub cache_hit_ratio: Option<f64>,
    pub uploads_in_flight: Vec<UploadReport>,
    pub uploads_failed: Vec<FailedUpload>,
    pub last_error: Option<LastError>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct UploadReport {
    pub bucket: String,
    pub key: String,
    /// Bytes sent so far, of `total`.
    pub done: u64,
    pub total: u64,
    pub started: String,
}

/// An upload that failed; its data is kept in `staged` (`ssofs recover` uploads it later).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FailedUpload {
    pub bucket: String,
    pub key: String,
    pub staged: String,
    pub error: String,
    /// The bucket policy refused it (retrying will not help; the file is kept under `refused/`).
    pub refused: bool,
    pub at: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LastError {
    pub at: String,
    pub message: String,
}

/// `t` as RFC 3339 (UTC, whole seconds).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// Bytes for people: `512 B`, `1.5 KiB`, `3.0 MiB`, `2.25 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

impl MountReport {
    /// The lines `ssofs status` prints for this mount.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let kind = if self.multiuser { ", multi-user" } else { "" };
        let _ = writeln!(
            out,
            "mount {} (profile {}{kind}, pid {}, mounted since {})",
            self.mountpoint, self.profile, self.pid, self.mounted_since
        );
        if let Some(addr) = &self.metrics {
            let _ = writeln!(out, "  metrics: http://{addr}/metrics");
        }
        if self.identities.is_empty() {
            let _ = writeln!(out, "  no identity in use yet");
        }
        for id in &self.identities {
            out.push_str(&id.text());
        }
        out
    }
}

impl IdentityReport {
    fn text(&self) -> String {
        let mut out = String::new();
        let who = self.user.as_deref().unwrap_or("(not signed in)");
        let _ = writeln!(out, "  {who} (uid {})", self.uid);
        if let Some(reason) = &self.login_required {
            let _ = writeln!(out, "    sign-in: needed again ({reason})");
        } else if let Some(at) = &self.sign_in_expires_at {
            let _ = writeln!(out, "    sign-in: until {at} (refreshed automatically)");
        }
        let creds = self.credentials_expire_at.as_deref().unwrap_or("none yet");
        let _ = writeln!(out, "    S3 credentials: expire {creds} (renewed automatically)");
        let ratio = match self.cache_hit_ratio {
            Some(r) => format!("{:.0} % ({} hits, {} misses)", r * 100.0, self.cache_hits, self.cache_misses),
            None => "no reads yet".to_string(),
        };
        let (read, written) = (human_bytes(self.bytes_read), human_bytes(self.bytes_written));
        let _ = writeln!(out, "    read {read}, written {written}; block cache hit ratio {ratio}");
        for u in &self.uploads_in_flight {
            let (done, total) = (human_bytes(u.done), human_bytes(u.total));
            let _ = writeln!(out, "    uploading {}/{}: {done} of {total} (since {})", u.bucket, u.key, u.started);
        }
        for f in &self.uploads_failed {
            let what = if f.refused { "refused" } else { "failed" };
            let _ = writeln!(out, "    upload {what} at {}: {}/{}: {}", f.at, f.bucket, f.key, f.error);
            let _ = writeln!(out, "      data kept in {} (`ssofs recover` uploads it)", f.staged);
        }
        if let Some(e) = &self.last_error {
            let _ = writeln!(out, "    last error at {}: {}", e.at, e.message);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_people_write_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
        assert_eq!(human_bytes(5 << 40), "5.0 TiB");
        assert_eq!(human_bytes(u64::MAX), "16777216.0 TiB");
    }

    #[test]
    fn the_text_names_every_figure_and_json_reads_back() {
        let report = MountReport {
            mountpoint: "/mnt/s3".into(),
            profile: "corp".into(),
            pid: 42,
            multiuser: false,
            mounted_since: rfc3339(SystemTime::UNIX_EPOCH),
            metrics: Some("127.0.0.1:9100".into()),
            identities: vec![IdentityReport {
                uid: 1000,
                user: Some("alice@contoso.test".into()),
                sign_in_expires_at: Some("2026-12-02T12:00:00Z".into()),
                credentials_expire_at: Some("2026-12-02T12:30:00Z".into()),
                bytes_read: 3 << 20,
                bytes_written: 512,
                cache_hits: 3,
                cache_misses: 1,
                cache_hit_ratio: Some(0.75),
                uploads_in_flight: vec![UploadReport {
                    bucket: "b".into(),
                    key: "big".into(),
                    done: 16 << 20,
                    total: 64 << 20,
                    started: "2026-12-02T11:00:00Z".into(),
                }],
                uploads_failed: vec![FailedUpload {
                    bucket: "b".into(),
                    key: "denied".into(),
                    staged: "/staging/refused/x".into(),
                    error: "access denied".into(),
                    refused: true,
                    at: "2026-12-02T11:01:00Z".into(),
                }],
                last_error: Some(LastError { at: "2026-12-02T11:01:00Z".into(), message: "boom".into() }),
                ..IdentityReport::default()
            }],
        };
        let text = report.text();
        for needle in [
            "mount /mnt/s3 (profile corp, pid 42, mounted since 1970-01-01T00:00:00Z)",
            "metrics: http://127.0.0.1:9100/metrics",
            "alice@contoso.test (uid 1000)",
            "S3 credentials: expire 2026-12-02T12:30:00Z",
            "read 3.0 MiB, written 512 B; block cache hit ratio 75 % (3 hits, 1 misses)",
            "uploading b/big: 16.0 MiB of 64.0 MiB",
            "upload refused at 2026-12-02T11:01:00Z: b/denied: access denied",
            "data kept in /staging/refused/x",
            "last error at 2026-12-02T11:01:00Z: boom",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<MountReport>(&json).unwrap(), report);
    }
}
