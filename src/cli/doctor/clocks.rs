//! The clocks: this machine's, the identity provider's and the S3 server's (their `Date`), and the
//! token's own times against MinIO's, which checks them with zero leeway.

use serde_json::{Map, Value};

use ssofs::config::Profile;
use ssofs::identity::login::{self, Provider};
use ssofs::identity::{clock, verify::rfc3339};

use super::report::{Check, Checks, Outcome};
use super::server::ServerKind;

/// Most seconds the identity provider's and MinIO's `Date` may differ (the header has 1 s
/// resolution); MinIO checks token times with zero leeway.
const IDP_MINIO_TOLERANCE: i64 = 2;

/// The token's own times against MinIO's clock (its `Date`, else this machine's): a token issued
/// "in the future" means the identity provider's clock is ahead, which MinIO refuses with zero
/// leeway. Replaces a passing clock check.
pub fn token_times(claims: &Map<String, Value>, s3_skew: Option<i64>, checks: &mut Checks) {
    let Some(iat) = claims.get("iat").and_then(Value::as_i64) else { return };
    let minio_now = login::now_unix() + s3_skew.unwrap_or(0);
    let ahead = iat - minio_now;
    if ahead < IDP_MINIO_TOLERANCE {
        return;
    }
    let Some(slot) = checks.list.iter_mut().find(|c| c.check == "clock") else { return };
    if slot.outcome == Outcome::Fail {
        return;
    }
    *slot = Check {
        check: "clock".into(),
        outcome: Outcome::Fail,
        detail: format!(
            "the ID token was issued at {} ({ahead} s ahead of MinIO's clock{}): the identity provider's clock is {ahead} s \
             ahead of MinIO, and MinIO checks token times (iat, nbf, exp) with zero leeway",
            rfc3339(iat),
            if s3_skew.is_some() { "" } else { ", taken as this machine's" }
        ),
        fix: Some(
            "synchronise the clocks of the identity provider, MinIO and this machine with NTP (timedatectl set-ntp \
             true; chrony/ntpd on the MinIO hosts), then `ssofs login` again"
                .into(),
        ),
    };
}

pub fn check(
    profile: &Profile,
    provider: &Provider,
    s3: Option<i64>,
    server: &ServerKind,
    checks: &mut Checks,
) -> Option<i64> {
    let idp = provider.clock_skew;
    let name = server.name();
    let words = |s: i64| match s {
        0 => "in step with this machine".to_string(),
        s if s > 0 => format!("{s} s ahead of this machine"),
        s => format!("{} s behind this machine", -s),
    };
    let mut detail = format!(
        "identity provider {}; S3 endpoint {}",
        idp.map(words).unwrap_or_else(|| "sent no Date".into()),
        s3.map(words).unwrap_or_else(|| "sent no Date".into())
    );
    if let (Some(i), Some(s)) = (idp, s3) {
        let apart = i - s;
        if apart.abs() >= IDP_MINIO_TOLERANCE {
            detail.push_str(&format!(
                ": the identity provider is {} s {} {name}, which checks token times (iat, nbf, exp){}",
                apart.abs(),
                if apart > 0 { "ahead of" } else { "behind" },
                if *server == ServerKind::MinIO { " with zero leeway" } else { "" }
            ));
            checks.fail(
                "clock",
                detail,
                format!(
                    "synchronise the clocks of the identity provider, {name} and this machine with NTP (timedatectl \
                     set-ntp true; chrony/ntpd on the server hosts)"
                ),
            );
            return s3;
        }
    }
    if let Some(warning) = clock::check(idp, &profile.issuer) {
        checks.fail("clock", format!("{detail}: {warning}"), "enable NTP on this machine: timedatectl set-ntp true");
        return s3;
    }
    if let Some(s) = s3.filter(|s| s.abs() > clock::MAX_SKEW_SECS) {
        checks.fail(
            "clock",
            format!("{detail}: this machine is {} s off {name}'s clock; credentials would be renewed too late", -s),
            "enable NTP on this machine: timedatectl set-ntp true",
        );
        return s3;
    }
    checks.pass("clock", detail);
    s3
}
