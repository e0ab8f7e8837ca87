//! Clock check: MinIO's STS checks token times with zero leeway, so a workstation clock that is off by
//! more than a few seconds makes fresh tokens look expired or not yet valid. The identity provider's
//! HTTP `Date` header tells us how far off we are.

use std::time::SystemTime;

/// Skew beyond which ssofs warns.
pub const MAX_SKEW_SECS: i64 = 30;

/// Seconds the server's clock (from an HTTP `Date` value) is ahead of `local` (negative: behind).
/// `None` when the header is missing or not an HTTP date.
pub fn skew(date_header: Option<&str>, local: SystemTime) -> Option<i64> {
    let server = httpdate::parse_http_date(date_header?.trim()).ok()?;
    Some(match server.duration_since(local) {
        Ok(ahead) => ahead.as_secs() as i64,
        Err(behind) => -(behind.duration().as_secs() as i64),
    })
}

/// The warning for a skew, or `None` when the clocks agree well enough.
pub fn warning(skew_secs: i64, idp: &str) -> Option<String> {
    if skew_secs.abs() <= MAX_SKEW_SECS {
        return None;
    }
    let (n, way) = if skew_secs > 0 { (skew_secs, "behind") } else { (-skew_secs, "ahead of") };
    Some(format!(
        "this machine's clock is {n} s {way} the identity provider's ({idp}). MinIO checks token times with zero \
         leeway and will refuse tokens (\"token is expired\" / \"not valid yet\"); sync the clock (e.g. \
         `timedatectl set-ntp true`)"
    ))
}

/// Logs the warning (target `ssofs::identity::clock`) and returns it for the command line to print.
pub fn check(skew_secs: Option<i64>, idp: &str) -> Option<String> {
    let message = warning(skew_secs?, idp)?;
    tracing::warn!(skew_secs, "{message}");
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn compares_the_date_header_with_the_local_clock() {
        let server = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let header = httpdate::fmt_http_date(server);
        assert_eq!(skew(Some(&header), server), Some(0));
        assert_eq!(skew(Some(&header), server - Duration::from_secs(45)), Some(45));
        assert_eq!(skew(Some(&header), server + Duration::from_secs(120)), Some(-120));
        assert_eq!(skew(None, server), None);
        assert_eq!(skew(Some("yesterday-ish"), server), None);
    }

    #[test]
    fn warns_only_beyond_thirty_seconds() {
        assert!(warning(0, "idp").is_none());
        assert!(warning(30, "idp").is_none());
        assert!(warning(-30, "idp").is_none());
        let ahead = warning(31, "idp").unwrap();
        assert!(ahead.contains("31 s behind") && ahead.contains("zero leeway"), "{ahead}");
        let behind = warning(-90, "idp").unwrap();
        assert!(behind.contains("90 s ahead of"), "{behind}");
    }
}
