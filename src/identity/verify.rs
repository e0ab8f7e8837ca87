//! ID token verification as Azure AD needs it: RS256 signature with a key picked by `kid` from the
//! provider's JWKS (which carries no `alg`), the issuer including the `{tenantid}` template that
//! `/common` and `/organizations` publish, the audience, exp/nbf/iat with a small leeway, and the nonce.
//!
//! Each failure has its own [`VerifyError`] variant and plain message; the caller refetches the JWKS
//! once on [`VerifyError::UnknownKey`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::{JsonWebKey, JsonWebKeySet, JwsSigningAlgorithm};
use serde_json::{Map, Value};

/// Clock leeway for exp, nbf and iat, in seconds.
pub const LEEWAY_SECS: i64 = 60;

/// The issuer an ID token must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedIssuer {
    /// A tenant's issuer, compared as is.
    Exact(String),
    /// Azure's multi-tenant template (`…/{tenantid}/v2.0`), completed with the token's `tid`.
    Template(String),
}

impl ExpectedIssuer {
    /// The issuer published in a discovery document.
    pub fn from_discovered(issuer: &str) -> Self {
        if issuer.contains(TENANT_PLACEHOLDER) {
            ExpectedIssuer::Template(issuer.to_string())
        } else {
            ExpectedIssuer::Exact(issuer.to_string())
        }
    }

    fn describe(&self) -> &str {
        match self {
            ExpectedIssuer::Exact(s) | ExpectedIssuer::Template(s) => s,
        }
    }
}

const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// What a token is checked against.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    pub issuer: &'a ExpectedIssuer,
    pub client_id: &'a str,
    /// Accept Azure's v1 issuer `https://sts.windows.net/{tid}/` for the same tenant.
    pub accept_v1_issuer: bool,
    /// The nonce sent with the authorization request (browser flow); `None` skips the check.
    pub nonce: Option<&'a str>,
    /// Signature algorithms the provider announced; asymmetric ones only are used.
    pub algorithms: &'a [CoreJwsSigningAlgorithm],
    /// Unix seconds, the local clock.
    pub now: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the ID token is not a well-formed JWT ({0})")]
    Malformed(String),
    #[error(
        "the ID token is signed with algorithm {0}, which ssofs does not accept (the provider announced {1}); it was not issued by Azure AD"
    )]
    Algorithm(String, String),
    #[error(
        "the ID token is signed with key {0:?}, which the identity provider does not publish: the token was not issued by this provider, or the profile's issuer is wrong"
    )]
    UnknownKey(String),
    #[error(
        "the ID token's signature does not verify with the identity provider's key {0:?}: the token was altered or forged; nothing was stored"
    )]
    BadSignature(String),
    #[error(
        "the ID token was issued by {found}, but this profile trusts {expected}: check the profile's issuer or tenant{hint}"
    )]
    WrongIssuer { found: String, expected: String, hint: String },
    #[error(
        "the ID token is meant for application {found}, not this profile's client_id {expected}: check client_id in the profile"
    )]
    WrongAudience { found: String, expected: String },
    #[error(
        "the ID token expired at {at} ({ago} s before this machine's clock): if the clock is wrong, fix it (enable NTP), else run `ssofs login` again"
    )]
    Expired { at: String, ago: i64 },
    #[error(
        "the ID token is not valid before {at} ({ahead} s after this machine's clock): this machine's clock is probably behind; enable NTP and try again"
    )]
    NotYetValid { at: String, ahead: i64 },
    #[error(
        "the ID token's nonce does not match this sign-in request (a replayed or mixed-up answer): run `ssofs login` again"
    )]
    WrongNonce,
}

/// A JWT split into its parts, with header and claims decoded but nothing verified.
pub struct Jwt {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

impl Jwt {
    pub fn parse(token: &str) -> Result<Jwt, VerifyError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(VerifyError::Malformed("expected three dot-separated parts".into()));
        };
        let header = decode_object(h, "header")?;
        let claims = decode_object(c, "claims")?;
        let signature =
            URL_SAFE_NO_PAD.decode(s).map_err(|_| VerifyError::Malformed("the signature is not base64url".into()))?;
        Ok(Jwt { header, claims, signing_input: format!("{h}.{c}"), signature })
    }

    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }
}

fn decode_object(part: &str, what: &str) -> Result<Map<String, Value>, VerifyError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| VerifyError::Malformed(format!("the {what} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(VerifyError::Malformed(format!("the {what} is not a JSON object"))),
    }
}

/// The claims of a JWT, without checking anything (for `ssofs status` and `ssofs token --claims`, on
/// tokens that were verified when they were stored).
pub fn unverified_claims(token: &str) -> Result<Map<String, Value>, VerifyError> {
    Jwt::parse(token).map(|j| j.claims)
}

/// Verifies signature and claims; returns the claims.
pub fn verify(
    token: &str,
    keys: &JsonWebKeySet<CoreJsonWebKey>,
    expect: &Expectations<'_>,
) -> Result<Map<String, Value>, VerifyError> {
    let jwt = Jwt::parse(token)?;
    check_signature(&jwt, keys, expect.algorithms)?;
    check_claims(&jwt.claims, expect)?;
    Ok(jwt.claims)
}

fn check_signature(
    jwt: &Jwt,
    keys: &JsonWebKeySet<CoreJsonWebKey>,
    announced: &[CoreJwsSigningAlgorithm],
) -> Result<(), VerifyError> {
    let alg_name = jwt.header.get("alg").and_then(Value::as_str).unwrap_or("(none)").to_string();
    let announced_names = || {
        let names: Vec<String> =
            announced.iter().filter_map(|a| serde_json::to_value(a).ok()?.as_str().map(str::to_string)).collect();
        if names.is_empty() { "RS256".to_string() } else { names.join(", ") }
    };
    let alg: CoreJwsSigningAlgorithm = serde_json::from_value(Value::String(alg_name.clone()))
        .map_err(|_| VerifyError::Algorithm(alg_name.clone(), announced_names()))?;
    // Public client: a shared-secret MAC proves nothing, and `none` proves less.
    let allowed = if announced.is_empty() {
        alg == CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256
    } else {
        announced.contains(&alg)
    };
    if alg.uses_shared_secret() || alg == CoreJwsSigningAlgorithm::None || !allowed {
        return Err(VerifyError::Algorithm(alg_name, announced_names()));
    }
    let candidates: Vec<&CoreJsonWebKey> = match jwt.kid() {
        Some(kid) => keys.keys().iter().filter(|k| k.key_id().map(|id| id.as_str()) == Some(kid)).collect(),
        // Without a kid only a single published key is unambiguous.
        None if keys.keys().len() == 1 => keys.keys().iter().collect(),
        None => vec![],
    };
    let kid = jwt.kid().unwrap_or("(none)").to_string();
    if candidates.is_empty() {
        return Err(VerifyError::UnknownKey(kid));
    }
    if candidates.iter().any(|k| k.verify_signature(&alg, jwt.signing_input.as_bytes(), &jwt.signature).is_ok()) {
        Ok(())
    } else {
        Err(VerifyError::BadSignature(kid))
    }
}

fn check_claims(claims: &Map<String, Value>, expect: &Expectations<'_>) -> Result<(), VerifyError> {
    check_issuer(claims, expect)?;
    check_audience(claims, expect.client_id)?;
    check_times(claims, expect.now)?;
    if let Some(nonce) = expect.nonce
        && claims.get("nonce").and_then(Value::as_str) != Some(nonce)
    {
        return Err(VerifyError::WrongNonce);
    }
    Ok(())
}

fn check_issuer(claims: &Map<String, Value>, expect: &Expectations<'_>) -> Result<(), VerifyError> {
    let found = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    // A tenant id is a GUID; anything with a slash or a brace could forge another issuer.
    let tid = claims
        .get("tid")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    let v2_ok = match (expect.issuer, tid) {
        (ExpectedIssuer::Exact(e), _) => found == e,
        (ExpectedIssuer::Template(t), Some(tid)) => found == t.replace(TENANT_PLACEHOLDER, tid),
        (ExpectedIssuer::Template(_), None) => false,
    };
    if v2_ok {
        return Ok(());
    }
    let is_v1 = tid.is_some_and(|tid| found == format!("https://sts.windows.net/{tid}/"));
    let v1_same_tenant = tid.is_some_and(|tid| match expect.issuer {
        ExpectedIssuer::Exact(e) => e.split('/').any(|seg| seg.eq_ignore_ascii_case(tid)),
        ExpectedIssuer::Template(_) => true,
    });
    if is_v1 && expect.accept_v1_issuer && v1_same_tenant {
        return Ok(());
    }
    let hint = if is_v1 && !expect.accept_v1_issuer {
        " (this is Azure's v1 issuer: set `accept_v1_issuer = true` in the profile to accept it)".to_string()
    } else if matches!(expect.issuer, ExpectedIssuer::Template(_)) && tid.is_none() {
        " (the token carries no tid to complete the {tenantid} template)".to_string()
    } else {
        String::new()
    };
    let expected = match (expect.issuer, tid) {
        (ExpectedIssuer::Template(t), Some(tid)) => t.replace(TENANT_PLACEHOLDER, tid),
        (other, _) => other.describe().to_string(),
    };
    Err(VerifyError::WrongIssuer {
        found: if found.is_empty() { "(no iss)".into() } else { found.into() },
        expected,
        hint,
    })
}

fn check_audience(claims: &Map<String, Value>, client_id: &str) -> Result<(), VerifyError> {
    let auds: Vec<&str> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        // Every entry must be a string (RFC 7519 4.1.3): a malformed list is not read as a shorter one.
        Some(Value::Array(a)) => match a.iter().map(Value::as_str).collect::<Option<Vec<_>>>() {
            Some(list) => list,
            None => return Err(VerifyError::Malformed("the aud claim holds a value that is not a string".into())),
        },
        _ => vec![],
    };
    // Exactly us: a token also meant for others is not ours to hand around.
    if auds.len() == 1 && auds[0] == client_id {
        return Ok(());
    }
    let found = if auds.is_empty() { "(no aud)".to_string() } else { auds.join(", ") };
    Err(VerifyError::WrongAudience { found, expected: client_id.to_string() })
}

fn check_times(claims: &Map<String, Value>, now: i64) -> Result<(), VerifyError> {
    let num = |k: &str| claims.get(k).and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)));
    let Some(exp) = num("exp") else {
        return Err(VerifyError::Malformed("no exp claim".into()));
    };
    if now >= exp.saturating_add(LEEWAY_SECS) {
        return Err(VerifyError::Expired { at: rfc3339(exp), ago: now - exp });
    }
    for claim in ["nbf", "iat"] {
        if let Some(t) = num(claim)
            && t > now.saturating_add(LEEWAY_SECS)
        {
            return Err(VerifyError::NotYetValid { at: rfc3339(t), ahead: t - now });
        }
    }
    Ok(())
}

/// Unix seconds as RFC 3339 (UTC), or the number when out of range.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn expect<'a>(issuer: &'a ExpectedIssuer, v1: bool, nonce: Option<&'a str>) -> Expectations<'a> {
        Expectations { issuer, client_id: "app", accept_v1_issuer: v1, nonce, algorithms: &[], now: 1_000_000 }
    }

    #[test]
    fn template_issuer_takes_the_tokens_tid() {
        let t = ExpectedIssuer::from_discovered("https://login.example/{tenantid}/v2.0");
        assert!(matches!(t, ExpectedIssuer::Template(_)));
        let ok = claims(serde_json::json!({"iss": "https://login.example/t1/v2.0", "tid": "t1"}));
        assert!(check_issuer(&ok, &expect(&t, false, None)).is_ok());
        let other = claims(serde_json::json!({"iss": "https://login.example/t2/v2.0", "tid": "t1"}));
        assert!(matches!(check_issuer(&other, &expect(&t, false, None)), Err(VerifyError::WrongIssuer { .. })));
        let sneaky = claims(serde_json::json!({"iss": "https://login.example/a/b/v2.0", "tid": "a/b"}));
        assert!(check_issuer(&sneaky, &expect(&t, false, None)).is_err());
    }

    #[test]
    fn v1_issuer_only_when_configured_and_same_tenant() {
        let e = ExpectedIssuer::Exact("https://login.example/t1/v2.0".into());
        let v1 = claims(serde_json::json!({"iss": "https://sts.windows.net/t1/", "tid": "t1"}));
        let err = check_issuer(&v1, &expect(&e, false, None)).unwrap_err();
        assert!(err.to_string().contains("accept_v1_issuer"), "{err}");
        assert!(check_issuer(&v1, &expect(&e, true, None)).is_ok());
        let other_tenant = claims(serde_json::json!({"iss": "https://sts.windows.net/t2/", "tid": "t2"}));
        assert!(check_issuer(&other_tenant, &expect(&e, true, None)).is_err());
    }

    #[test]
    fn audience_must_be_exactly_the_client() {
        assert!(check_audience(&claims(serde_json::json!({"aud": "app"})), "app").is_ok());
        assert!(check_audience(&claims(serde_json::json!({"aud": ["app"]})), "app").is_ok());
        assert!(check_audience(&claims(serde_json::json!({"aud": ["app", "other"]})), "app").is_err());
        assert!(check_audience(&claims(serde_json::json!({"aud": "other"})), "app").is_err());
        assert!(check_audience(&claims(serde_json::json!({})), "app").is_err());
        // Found by the claims fuzz target: non-string entries were skipped, not refused.
        assert!(check_audience(&claims(serde_json::json!({"aud": ["app", 5]})), "app").is_err());
    }

    #[test]
    fn times_have_a_small_leeway() {
        let now = 1_000_000;
        let c = |exp: i64, nbf: i64| claims(serde_json::json!({"exp": exp, "nbf": nbf, "iat": nbf}));
        assert!(check_times(&c(now + 10, now - 10), now).is_ok());
        assert!(check_times(&c(now - 30, now - 100), now).is_ok(), "within leeway");
        assert!(matches!(check_times(&c(now - 61, now - 100), now), Err(VerifyError::Expired { .. })));
        assert!(check_times(&c(now + 100, now + 30), now).is_ok(), "within leeway");
        assert!(matches!(check_times(&c(now + 1000, now + 120), now), Err(VerifyError::NotYetValid { .. })));
        assert!(matches!(check_times(&claims(serde_json::json!({})), now), Err(VerifyError::Malformed(_))));
    }

    #[test]
    fn nonce_is_compared_when_expected() {
        let e = ExpectedIssuer::Exact("i".into());
        let c = claims(serde_json::json!({"iss": "i", "aud": "app", "exp": 2_000_000, "nonce": "n1"}));
        assert!(check_claims(&c, &expect(&e, false, Some("n1"))).is_ok());
        assert_eq!(check_claims(&c, &expect(&e, false, Some("n2"))), Err(VerifyError::WrongNonce));
        assert!(check_claims(&c, &expect(&e, false, None)).is_ok());
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for t in ["", "a", "a.b", "a.b.c", "e30.e30", "e30.e30.!!", "W10.e30.AA"] {
            assert!(matches!(Jwt::parse(t), Err(VerifyError::Malformed(_))), "{t}");
        }
        assert!(Jwt::parse("e30.e30.AA").is_ok());
    }

    #[test]
    fn none_and_hmac_are_refused() {
        let keys = JsonWebKeySet::new(vec![]);
        let e = ExpectedIssuer::Exact("i".into());
        for alg in ["none", "HS256", "XX1"] {
            let h = URL_SAFE_NO_PAD.encode(format!("{{\"alg\":\"{alg}\"}}"));
            let t = format!("{h}.e30.AA");
            assert!(matches!(verify(&t, &keys, &expect(&e, false, None)), Err(VerifyError::Algorithm(..))), "{alg}");
        }
    }
}
