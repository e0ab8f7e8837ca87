//! POSIX metadata kept in object metadata, in the keys and formats s3fs-fuse and rclone use, so
//! that files written by either show their mode and times here, and ours there:
//! `x-amz-meta-mode` (decimal `st_mode`, file-type bits included: 33188 is a 0644 file, 41471 a
//! symlink), `x-amz-meta-mtime` (seconds since the epoch, `sec` or `sec.nanos`: s3fs writes the
//! first, rclone the second), `x-amz-meta-uid`/`x-amz-meta-gid` (decimal). The SDK names user
//! metadata without the `x-amz-meta-` prefix.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What an object says about the file it holds. `None`: the object does not say (or its metadata
/// has not been read: listings carry none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileMeta {
    /// Full `st_mode`, type bits included.
    pub mode: Option<u32>,
    pub mtime: Option<SystemTime>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// The object's metadata was read (a HEAD), so `None`s above mean "not set".
    pub known: bool,
}

const MODE: &str = "mode";
const MTIME: &str = "mtime";
const UID: &str = "uid";
const GID: &str = "gid";

impl FileMeta {
    /// Parses user metadata as the SDK returns it (keys without `x-amz-meta-`, any case).
    pub fn from_user_metadata(meta: Option<&HashMap<String, String>>) -> FileMeta {
        let get = |name: &str| {
            meta.and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string()))
        };
        FileMeta {
            mode: get(MODE).and_then(|v| parse_mode(&v)),
            mtime: get(MTIME).and_then(|v| parse_time(&v)),
            uid: get(UID).and_then(|v| v.parse().ok()),
            gid: get(GID).and_then(|v| v.parse().ok()),
            known: true,
        }
    }

    /// The user metadata to store (only what is set).
    pub fn to_user_metadata(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        if let Some(mode) = self.mode {
            m.insert(MODE.to_string(), mode.to_string());
        }
        if let Some(t) = self.mtime {
            m.insert(MTIME.to_string(), format_time(t));
        }
        if let Some(uid) = self.uid {
            m.insert(UID.to_string(), uid.to_string());
        }
        if let Some(gid) = self.gid {
            m.insert(GID.to_string(), gid.to_string());
        }
        m
    }

    pub fn is_empty(&self) -> bool {
        self.mode.is_none() && self.mtime.is_none() && self.uid.is_none() && self.gid.is_none()
    }

    /// Whether the object holds a symbolic link (its body is the target), as s3fs stores them.
    pub fn is_symlink(&self) -> bool {
        self.mode.is_some_and(|m| m & libc::S_IFMT == libc::S_IFLNK)
    }

    /// `self` with whatever `newer` sets.
    pub fn updated(self, newer: &FileMeta) -> FileMeta {
        FileMeta {
            mode: newer.mode.or(self.mode),
            mtime: newer.mtime.or(self.mtime),
            uid: newer.uid.or(self.uid),
            gid: newer.gid.or(self.gid),
            known: self.known || newer.known,
        }
    }
}

/// As s3fs reads it (strtoll base 0): decimal, `0`-prefixed octal, `0x` hex.
fn parse_mode(v: &str) -> Option<u32> {
    if let Some(hex) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()
    } else if v.len() > 1 && v.starts_with('0') {
        u32::from_str_radix(&v[1..], 8).ok()
    } else {
        v.parse().ok()
    }
}

/// `sec` or `sec.fraction`, the fraction scaled to nanoseconds (rclone trims trailing zeros; s3fs
/// writes nine digits).
fn parse_time(v: &str) -> Option<SystemTime> {
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: u64 = secs.parse().ok()?;
    let nanos = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(9).collect();
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32)
    };
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// Whole seconds when there is no fraction, else `sec.nanos` with all nine digits: s3fs reads the
/// fraction as a raw count of nanoseconds, so fewer digits would be misread there.
fn format_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    if d.subsec_nanos() == 0 { d.as_secs().to_string() } else { format!("{}.{:09}", d.as_secs(), d.subsec_nanos()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3fs_and_rclone_metadata_read_back() {
        let m: HashMap<String, String> = [("mode", "33261"), ("mtime", "1609459200"), ("uid", "1000"), ("gid", "100")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let meta = FileMeta::from_user_metadata(Some(&m));
        assert_eq!(meta.mode, Some(0o100755));
        assert_eq!(meta.mtime, Some(UNIX_EPOCH + Duration::from_secs(1_609_459_200)));
        assert_eq!((meta.uid, meta.gid), (Some(1000), Some(100)));
        // rclone: fractional seconds.
        let r: HashMap<String, String> = [("Mtime".to_string(), "1609459200.5".to_string())].into();
        assert_eq!(
            FileMeta::from_user_metadata(Some(&r)).mtime,
            Some(UNIX_EPOCH + Duration::from_millis(1_609_459_200_500))
        );
        // Nonsense is ignored, not an error.
        let bad: HashMap<String, String> =
            [("mode".to_string(), "rwx".to_string()), ("mtime".to_string(), "x.y".to_string())].into();
        let meta = FileMeta::from_user_metadata(Some(&bad));
        assert_eq!((meta.mode, meta.mtime), (None, None));
    }

    #[test]
    fn written_metadata_round_trips() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let meta = FileMeta { mode: Some(0o120777), mtime: Some(t), uid: None, gid: Some(5), known: true };
        let stored = meta.to_user_metadata();
        assert_eq!(stored["mtime"], "1700000000.123456789");
        assert_eq!(stored["mode"], "41471");
        assert!(!stored.contains_key("uid"));
        let back = FileMeta::from_user_metadata(Some(&stored));
        assert_eq!(back, FileMeta { uid: None, ..meta });
        assert!(back.is_symlink());
    }
}
