//! How option values are read: modes, TTLs, sizes, counts and addresses, each with the words an
//! error shows when the value is wrong.

use std::time::Duration;

use super::table::MAX_TTL_SECS;

/// An octal mode such as `0644` (`0o644` too).
pub(super) fn mode(v: &str) -> Result<u16, String> {
    u16::from_str_radix(v.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| "expected an octal mode such as 0644".into())
}

pub(super) fn ttl(v: &str) -> Result<Duration, String> {
    // Bounded: from_secs_f64 panics past u64::MAX seconds, and `Instant::now() + ttl` in the
    // filesystem past i64::MAX.
    let secs: f64 = v
        .parse()
        .ok()
        .filter(|s: &f64| (0.0..=MAX_TTL_SECS).contains(s))
        .ok_or("expected seconds up to 1000000000, e.g. 1 or 0.5")?;
    Ok(Duration::from_secs_f64(secs))
}

/// A loopback `ADDR:PORT`: any local user may read the metrics, but nobody on the network.
pub(super) fn loopback(v: &str) -> Result<std::net::SocketAddr, String> {
    let addr: std::net::SocketAddr =
        v.parse().map_err(|_| "expected a loopback address and port, e.g. 127.0.0.1:9100 or [::1]:9100")?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{} is not a loopback address; the metrics would be readable from the network: use 127.0.0.1:{} or \
             [::1]:{}",
            addr.ip(),
            addr.port(),
            addr.port()
        ));
    }
    Ok(addr)
}

pub(super) fn size(v: &str, expected: &str) -> Result<u64, String> {
    parse_size(v).map(|s| s as u64).ok_or_else(|| expected.to_string())
}

/// `info`, `debug`, ..., or `target=level` directives separated by `:` (a comma would end the
/// mount option).
pub(super) fn valid_log_level(v: &str) -> bool {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    v.split(':').all(|d| {
        let level = d.rsplit_once('=').map_or(d, |(target, level)| if target.is_empty() { "" } else { level });
        LEVELS.contains(&level.to_ascii_lowercase().as_str())
    })
}

/// `123`, `64K`, `512M`, `2G` (powers of 1024).
pub(super) fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let (digits, mult) = match s.chars().last()?.to_ascii_uppercase() {
        'K' => (&s[..s.len() - 1], 1usize << 10),
        'M' => (&s[..s.len() - 1], 1 << 20),
        'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    digits.parse::<usize>().ok()?.checked_mul(mult)
}

/// A positive count (capacities: a zero one would keep nothing and ask S3 for everything).
/// `dir_prefetch` at most: each is a ListObjectsV2 in flight beside the caller's own requests.
pub(super) const MAX_DIR_PREFETCH: usize = 64;

/// A whole number from 0 to `max`.
pub(super) fn at_most(v: &str, max: usize) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!("expected a whole number from 0 to {max}")),
    }
}

pub(super) fn count(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a whole number above 0".into()),
    }
}
