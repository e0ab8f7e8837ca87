//! Entry points for the fuzz targets in `fuzz/` (not an API): crate-internal parsers called on
//! arbitrary input, with the invariants each must keep. A broken invariant panics, which is what the
//! fuzzer reports. Public parsers (`config::load_profile`, `mount::options::parse`,
//! `identity::verify`) are called by the targets directly.

use openidconnect::JsonWebKeySet;
use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use serde_json::Value;

use crate::credentials::reply;
use crate::fs::inode::Kind;
use crate::fs::{listing, names};
use crate::identity::verify::{self, Expectations, ExpectedIssuer, Jwt};
use crate::object::ObjectInfo;

/// The STS reply readers on one reply body: whatever they accept is complete and trimmed.
pub fn sts_reply(xml: &str) {
    if let Ok(issued) = reply::parse_success(xml) {
        for field in [&issued.access_key_id, &issued.secret_access_key, &issued.session_token] {
            assert!(!field.is_empty() && field.trim() == field, "credential field {field:?}");
        }
    }
    if let Ok(refusal) = reply::parse_error(xml) {
        assert!(!refusal.code.is_empty() && refusal.code.trim() == refusal.code, "code {:?}", refusal.code);
        assert_eq!(refusal.message.trim(), refusal.message);
    }
}

/// A directory's entries from a hostile listing of `prefix`: every name a usable single segment,
/// sorted, each once; every entry reachable through a key or common prefix the server returned.
pub fn listing(prefix: &str, keys: &[String], prefixes: &[String]) {
    let files: Vec<ObjectInfo> = keys
        .iter()
        .map(|k| ObjectInfo {
            key: k.clone(),
            size: 0,
            etag: "\"fuzz\"".into(),
            last_modified: std::time::SystemTime::UNIX_EPOCH,
            meta: Default::default(),
        })
        .collect();
    let entries = listing::entries("fuzz", prefix, &files, prefixes);
    for e in &entries {
        assert!(names::usable(&e.name), "unusable name {:?}", e.name);
        assert!(!e.name.contains('/'), "name with '/': {:?}", e.name);
        match (e.kind, &e.key) {
            (Kind::Dir, None) => {
                let p = format!("{prefix}{}/", e.name);
                assert!(prefixes.contains(&p), "directory {:?} without common prefix {p:?}", e.name);
            }
            (Kind::File, None) => {
                let k = format!("{prefix}{}", e.name);
                assert!(keys.contains(&k), "file {:?} without key {k:?}", e.name);
            }
            (Kind::File, Some(k)) => {
                assert!(keys.contains(k), "file {:?} with unlisted key {k:?}", e.name);
                assert!(k.starts_with(prefix), "file {:?} with key {k:?} outside {prefix:?}", e.name);
            }
            other => panic!("unexpected entry {:?}: {other:?}", e.name),
        }
    }
    for pair in entries.windows(2) {
        assert!(pair[0].name < pair[1].name, "not sorted or repeated: {:?}, {:?}", pair[0].name, pair[1].name);
    }
}

/// Issuer template, client id and nonce that [`claims`] checks tokens against.
pub const CLAIMS_ISSUER: &str = "https://login.example/{tenantid}/v2.0";
pub const CLAIMS_CLIENT_ID: &str = "app";
pub const CLAIMS_NONCE: &str = "nonce-1";
/// The clock [`claims`] checks exp/nbf/iat against (2023-11-14T22:13:20Z).
pub const CLAIMS_NOW: i64 = 1_700_000_000;

/// Token handling on one token string: parsing, the unverified claims and full verification against
/// the key set `jwks` (a JWKS document; an unreadable one is an empty set). What verifies must be the
/// claims parsing reads, and meet the expectations.
pub fn claims(token: &str, jwks: &str, accept_v1_issuer: bool) {
    let parsed = Jwt::parse(token);
    let unverified = verify::unverified_claims(token);
    assert_eq!(parsed.is_ok(), unverified.is_ok());
    if let Ok(jwt) = &parsed {
        let _ = jwt.kid();
    }
    let keys: JsonWebKeySet<CoreJsonWebKey> = serde_json::from_str(jwks).unwrap_or_else(|_| JsonWebKeySet::new(vec![]));
    let issuer = ExpectedIssuer::from_discovered(CLAIMS_ISSUER);
    let expect = Expectations {
        issuer: &issuer,
        client_id: CLAIMS_CLIENT_ID,
        accept_v1_issuer,
        nonce: Some(CLAIMS_NONCE),
        algorithms: &[CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256],
        now: CLAIMS_NOW,
    };
    match verify::verify(token, &keys, &expect) {
        Ok(claims) => {
            assert_eq!(Some(&claims), unverified.as_ref().ok(), "verified claims differ from the parsed ones");
            assert_eq!(claims.get("nonce").and_then(Value::as_str), Some(CLAIMS_NONCE));
            let aud_ok = match claims.get("aud") {
                Some(Value::String(a)) => a == CLAIMS_CLIENT_ID,
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).eq([CLAIMS_CLIENT_ID]),
                _ => false,
            };
            assert!(aud_ok, "accepted audience {:?}", claims.get("aud"));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}
