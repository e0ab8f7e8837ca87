//! Turns an STS refusal (code + message, as MinIO words them in cmd/sts-handlers.go and
//! internal/config/identity/openid) into a [`CredentialError`] that says what to fix. The token's own
//! claims (read without verification: STS already judged them) and MinIO's HTTP `Date` add the facts
//! MinIO leaves out: the audience, the overage marker, the clock offsets.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{Map, Value};

use super::errors::CredentialError;

/// What is known about the exchange besides MinIO's answer.
pub(crate) struct Context<'a> {
    /// The web identity token sent (only its claims and header are read; never logged).
    pub token: &'a str,
    pub profile_client_id: &'a str,
    /// The DurationSeconds sent, if any.
    pub duration_seconds: Option<u64>,
    /// MinIO's clock, from the reply's HTTP `Date` header.
    pub server_date: Option<SystemTime>,
    /// This machine's clock when the reply arrived.
    pub local_now: SystemTime,
}

pub(crate) fn diagnose(code: &str, message: &str, cx: &Context<'_>) -> CredentialError {
    let lower = message.to_ascii_lowercase();
    let claims = jwt_part(cx.token, 1).unwrap_or_default();
    let server_message = message.to_string();
    if let Some(e) = idp_keys_unreachable(code, message) {
        return e;
    }
    if let Some(e) = duration_refused(code, message, cx.duration_seconds) {
        return e;
    }
    if lower.contains("`aud` claim invalid") || lower.contains("`azp` claim invalid") || lower.contains("audience") {
        let token_audience = strings(claims.get("aud")).join(", ");
        let token_audience = if token_audience.is_empty() { "no audience".into() } else { token_audience };
        let profile_note = if strings(claims.get("aud")).iter().any(|a| a == cx.profile_client_id) {
            String::new()
        } else {
            format!(" (the profile's client_id is {})", cx.profile_client_id)
        };
        return CredentialError::AudienceMismatch { token_audience, profile_note, server_message };
    }
    if let Some(pos) = lower.find(" claim missing") {
        let claim = message[..pos].rsplit(' ').next().unwrap_or("groups").trim_matches('`').to_string();
        let overage = claims
            .get("_claim_names")
            .and_then(Value::as_object)
            .is_some_and(|names| names.contains_key(&claim) || names.contains_key("groups"));
        return if overage {
            CredentialError::GroupsOverage { claim, server_message }
        } else {
            CredentialError::ClaimMissing { claim, server_message }
        };
    }
    if lower.contains("none of the given policies") {
        return CredentialError::NoPoliciesDefined { policies: policies_named(message), server_message };
    }
    if lower.contains("used before issued") || lower.contains("not valid yet") || lower.contains("is expired") {
        return clock_skew(&claims, cx, server_message);
    }
    let header = jwt_part(cx.token, 0).unwrap_or_default();
    let text = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).unwrap_or("(none)").to_string();
    // MinIO's key function (internal/config/identity/openid/jwt.go Validate): "No public key found
    // for kid X" after it fetched the JWKS again, "Invalid kid value <nil>" for a token without one.
    if lower.contains("no public key found for kid") || lower.contains("invalid kid value") {
        let from_message = message.rsplit(' ').next().filter(|k| !k.is_empty() && *k != "<nil>");
        let kid = header.get("kid").and_then(Value::as_str).or(from_message).unwrap_or("(none)").to_string();
        return CredentialError::UnknownSigningKey { kid, issuer: text(&claims, "iss"), server_message };
    }
    if lower.contains("verification error") || lower.contains("signature") {
        return CredentialError::InvalidSignature {
            kid: text(&header, "kid"),
            issuer: text(&claims, "iss"),
            server_message,
        };
    }
    let hint = if lower.contains("invalid token expiry") {
        ". No duration_seconds was sent, so MinIO took the credentials' lifetime from the token's exp, and could not \
         use it"
    } else {
        ""
    };
    CredentialError::StsRefused { code: code.to_string(), message: server_message, hint: hint.to_string() }
}

/// A refusal of the DurationSeconds sent: MinIO's "invalid token expiry" (internal/auth
/// ErrInvalidDuration, from jwt.go GetDefaultExpiration), AWS's ValidationError naming
/// DurationSeconds, or, with DurationSeconds sent, a bare InvalidArgument/ValidationError/
/// InvalidParameterValue without a message (Ceph's -EINVAL).
fn duration_refused(code: &str, message: &str, sent: Option<u64>) -> Option<CredentialError> {
    let sent = sent?;
    let lower = message.to_ascii_lowercase();
    let about_duration = lower.contains("token expiry") || lower.contains("duration");
    let bare =
        message.trim().is_empty() && matches!(code, "InvalidArgument" | "ValidationError" | "InvalidParameterValue");
    if !about_duration && !bare {
        return None;
    }
    let refusal = if bare {
        format!("{code} without a message, as Ceph answers a DurationSeconds out of its bounds")
    } else {
        format!("{code}: {message}")
    };
    let bounds = match stated_bounds(message, sent) {
        Some(b) => format!("The server's bound: {b}"),
        None => "The usual bounds: MinIO 900 to 31536000 s (365 days), AWS 900 to 43200 s (12 hours, less if the \
                 role's MaxSessionDuration is lower), Ceph 900 s to the role's maximum session duration"
            .to_string(),
    };
    Some(CredentialError::DurationRefused { sent, refusal, bounds })
}

/// The bound a refusal states, if its message has numbers besides the value sent (AWS: "Member must
/// have value greater than or equal to 900"). Numbers below a minute are counts ("1 validation
/// error"), not durations.
fn stated_bounds(message: &str, sent: u64) -> Option<String> {
    let mut numbers: Vec<u64> = message
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .filter(|&n| n >= 60 && n != sent)
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    let lower = message.to_ascii_lowercase();
    let says = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    match numbers.as_slice() {
        [] => None,
        [n] if says(&["greater", "at least", "minimum"]) => Some(format!("at least {n} s")),
        [n] if says(&["less", "at most", "maximum", "exceed"]) => Some(format!("at most {n} s")),
        [n] => Some(format!("{n} s")),
        [low, .., high] => Some(format!("{low} to {high} s")),
    }
}

/// MinIO's words when it cannot fetch the IdP's keys (internal/config/identity/openid/jwt.go
/// PopulatePublicKey returns Go's errors as they come, cmd/sts-handlers.go sends them as a 400
/// InvalidParameterValue): a `*url.Error`, `Get "URL": dial tcp ...`, when the IdP cannot be reached,
/// or the bare status line, `503 Service Unavailable`, when it answers with an error.
fn idp_keys_unreachable(code: &str, message: &str) -> Option<CredentialError> {
    let server_message = message.to_string();
    if let Some(rest) = message.strip_prefix("Get \"")
        && let Some((url, _)) = rest.split_once("\": ")
    {
        return Some(CredentialError::IdpKeysUnreachable {
            url: Some(url.to_string()),
            server_message,
            transient: true,
        });
    }
    // Only MinIO's code for its token checks, and only a whole status line ("NNN Reason Phrase").
    let status: u16 = message.get(..3)?.parse().ok()?;
    let reason = message.get(3..)?.strip_prefix(' ')?;
    let status_line = (100..600).contains(&status)
        && reason.starts_with(|c: char| c.is_ascii_uppercase())
        && reason.chars().all(|c| c.is_ascii_alphanumeric() || " -'".contains(c));
    if code != "InvalidParameterValue" || !status_line {
        return None;
    }
    let transient = status >= 500 || status == 429 || status == 408;
    Some(CredentialError::IdpKeysUnreachable { url: None, server_message, transient })
}

/// The policy names between backticks in "None of the given policies (`a,b`) are defined".
fn policies_named(message: &str) -> Vec<String> {
    let inner = message.split('`').nth(1).unwrap_or("");
    inner.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

fn clock_skew(claims: &Map<String, Value>, cx: &Context<'_>, server_message: String) -> CredentialError {
    let secs = |t: SystemTime| match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let claim = |k: &str| claims.get(k).and_then(Value::as_f64).map(|f| f as i64);
    let server = cx.server_date.map(secs);
    let local_ahead_of_minio = server.map(|s| secs(cx.local_now) - s);
    // How far the issuer's clock runs ahead of MinIO's: a token "from the future" (iat/nbf after
    // MinIO's now) shows the gap directly; an expired one only shows a lower bound.
    let issuer_ahead_of_minio = match (server, claim("nbf").or(claim("iat")), claim("exp")) {
        (Some(s), Some(issued), _) if issued > s => Some(issued - s),
        (Some(s), _, Some(exp)) if exp <= s => Some(exp - s),
        (Some(s), Some(issued), _) => Some(issued - s),
        _ => None,
    };
    let mut parts = Vec::new();
    if let (Some(s), Some(issued)) = (server, claim("iat")) {
        parts.push(format!(
            "the token was issued (iat) {} MinIO's clock (HTTP Date)",
            relation(issued - s, "after", "before")
        ));
    }
    if let (Some(s), Some(exp)) = (server, claim("exp"))
        && exp <= s
    {
        parts.push(format!("it expired (exp) {} ago by MinIO's clock", human(s - exp)));
    }
    match local_ahead_of_minio {
        Some(off) => parts.push(format!("this machine's clock is {} MinIO's", relation(off, "ahead of", "behind"))),
        None => parts.push("MinIO sent no Date header, so its clock could not be measured".into()),
    }
    CredentialError::ClockSkew {
        server_message,
        measured: parts.join("; "),
        issuer_ahead_of_minio,
        local_ahead_of_minio,
    }
}

/// "42 s after", "3 s before", "in step with".
fn relation(secs: i64, positive: &str, negative: &str) -> String {
    match secs {
        0 => format!("0 s {positive} (in step with)"),
        s if s > 0 => format!("{} {positive}", human(s)),
        s => format!("{} {negative}", human(-s)),
    }
}

fn human(secs: i64) -> String {
    if secs >= 120 { format!("{secs} s ({} min)", secs / 60) } else { format!("{secs} s") }
}

/// One JWT part (0 header, 1 claims) as JSON, without verifying anything.
pub(crate) fn jwt_part(jwt: &str, index: usize) -> Option<Map<String, Value>> {
    let part = jwt.split('.').nth(index)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(String::from).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn jwt(header: Value, claims: Value) -> String {
        let enc = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.sig", enc(&header), enc(&claims))
    }

    fn cx(token: &str, server: Option<u64>, local: u64) -> Context<'_> {
        Context {
            token,
            profile_client_id: "client-a",
            duration_seconds: None,
            server_date: server.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
            local_now: UNIX_EPOCH + Duration::from_secs(local),
        }
    }

    #[test]
    fn audience_names_both_client_ids() {
        let t = jwt(serde_json::json!({}), serde_json::json!({"aud": "client-b"}));
        let msg = "STS JWT Token has `azp` claim invalid, `azp` must match configured OpenID Client ID";
        let e = diagnose("InvalidParameterValue", msg, &cx(&t, None, 0));
        let text = e.to_string();
        assert!(matches!(e, CredentialError::AudienceMismatch { .. }), "{e:?}");
        assert!(text.contains("client-b") && text.contains("profile's client_id is client-a"), "{text}");
    }

    #[test]
    fn claim_missing_and_overage_are_told_apart() {
        let msg = "groups claim missing from the JWT token, credentials will not be generated";
        let plain = jwt(serde_json::json!({}), serde_json::json!({"sub": "x"}));
        let e = diagnose("InvalidParameterValue", msg, &cx(&plain, None, 0));
        assert!(e.to_string().contains("enable the groups claim in the app registration, or use app roles"), "{e}");
        assert!(matches!(e, CredentialError::ClaimMissing { ref claim, .. } if claim == "groups"), "{e:?}");
        let over = jwt(serde_json::json!({}), serde_json::json!({"_claim_names": {"groups": "src1"}}));
        let e = diagnose("InvalidParameterValue", msg, &cx(&over, None, 0));
        assert!(e.to_string().contains("more than 200 groups"), "{e}");
    }

    #[test]
    fn undefined_policies_are_named() {
        let msg = "None of the given policies (`p1,p2`) are defined, credentials will not be generated";
        let e = diagnose("InvalidParameterValue", msg, &cx("x", None, 0));
        assert!(matches!(&e, CredentialError::NoPoliciesDefined { policies, .. } if policies == &["p1", "p2"]));
        assert!(e.to_string().contains("p1, p2"), "{e}");
    }

    #[test]
    fn clock_skew_reports_measured_offsets() {
        let t = jwt(serde_json::json!({}), serde_json::json!({"iat": 1120, "nbf": 1120, "exp": 4000}));
        let e = diagnose("InvalidParameterValue", "token used before issued", &cx(&t, Some(1000), 1003));
        let CredentialError::ClockSkew { issuer_ahead_of_minio, local_ahead_of_minio, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(*issuer_ahead_of_minio, Some(120));
        assert_eq!(*local_ahead_of_minio, Some(3));
        let text = e.to_string();
        assert!(text.contains("120 s (2 min) after MinIO's clock") && text.contains("3 s ahead of MinIO's"), "{text}");
        let expired = jwt(serde_json::json!({}), serde_json::json!({"iat": 100, "exp": 900}));
        let e = diagnose("InvalidParameterValue", "token is expired", &cx(&expired, Some(1000), 700));
        assert!(
            e.to_string().contains("expired (exp) 100 s ago") && e.to_string().contains("300 s (5 min) behind"),
            "{e}"
        );
        assert!(e.newer_token_may_help());
    }

    #[test]
    fn signature_names_kid_and_issuer() {
        let t = jwt(serde_json::json!({"kid": "k1"}), serde_json::json!({"iss": "https://issuer"}));
        let e = diagnose("InvalidParameterValue", "crypto/rsa: verification error", &cx(&t, None, 0));
        let text = e.to_string();
        assert!(text.contains("k1") && text.contains("https://issuer") && text.contains("rotated"), "{text}");
    }

    /// MinIO answers 400 InvalidParameterValue with Go's error text when it cannot fetch the IdP's
    /// keys (internal/config/identity/openid/jwt.go PopulatePublicKey): an outage, not a refusal.
    #[test]
    fn unreachable_idp_keys_are_an_outage_naming_the_url() {
        let url = "https://login.microsoftonline.com/tenant/discovery/v2.0/keys";
        for detail in [
            "dial tcp 20.190.160.1:443: connect: connection refused",
            "dial tcp: lookup login.microsoftonline.com: no such host",
        ] {
            let msg = format!("Get \"{url}\": {detail}");
            let e = diagnose("InvalidParameterValue", &msg, &cx("", None, 0));
            assert!(e.is_transient(), "{e:?}");
            let text = e.to_string();
            assert!(
                text.contains("cannot fetch the identity provider's signing keys (JWKS") && text.contains(url),
                "{text}"
            );
            assert!(text.contains(detail), "{text}");
        }
        // A JWKS endpoint answering an error: Go's status line, no URL.
        let e = diagnose("InvalidParameterValue", "503 Service Unavailable", &cx("", None, 0));
        assert!(e.is_transient(), "{e:?}");
        assert!(e.to_string().contains("cannot fetch the identity provider's signing keys (JWKS"), "{e}");
        assert!(e.to_string().contains("503 Service Unavailable"), "{e}");
    }

    /// MinIO's words for a kid missing from the keys it fetched from config_url (jwt.go Validate).
    #[test]
    fn an_unknown_kid_is_named_with_the_issuer() {
        let t = jwt(serde_json::json!({"kid": "k9"}), serde_json::json!({"iss": "https://issuer"}));
        let e = diagnose("InvalidParameterValue", "No public key found for kid k9", &cx(&t, None, 0));
        let text = e.to_string();
        assert!(text.contains("k9") && text.contains("https://issuer") && text.contains("config_url"), "{text}");
        assert!(!e.is_transient(), "{e:?}");
    }

    #[test]
    fn garbage_tokens_and_unknown_refusals_do_not_panic() {
        for token in ["", "a", "a.b", "...", "a.%%%.c", "e30.e30"] {
            let e = diagnose("AccessDenied", "who knows", &cx(token, Some(5), 5));
            assert!(matches!(e, CredentialError::StsRefused { .. }));
            let _ = diagnose("X", "token is expired", &cx(token, None, 5)).to_string();
            let _ = diagnose("X", "groups claim missing", &cx(token, None, 5)).to_string();
        }
        let e = diagnose("InvalidParameterValue", "invalid token expiry", &cx("", None, 0));
        assert!(e.to_string().contains("duration_seconds"), "{e}");
        // A bare refusal with no DurationSeconds sent is not blamed on it.
        assert!(matches!(diagnose("InvalidArgument", "", &cx("", None, 0)), CredentialError::StsRefused { .. }));
    }

    /// Every server's way of refusing a DurationSeconds names duration_seconds, the value sent and
    /// the bounds: stated ones when the message has them, else the usual ones.
    #[test]
    fn refused_durations_name_the_value_and_the_bounds() {
        let sent = |d| Context { duration_seconds: Some(d), ..cx("", None, 0) };
        let minio = diagnose("InvalidParameterValue", "invalid token expiry", &sent(100)).to_string();
        assert!(minio.contains("duration_seconds = 100") && minio.contains("invalid token expiry"), "{minio}");
        assert!(minio.contains("31536000") && minio.contains("43200"), "{minio}");
        let aws = "1 validation error detected: Value '100' at 'durationSeconds' failed to satisfy constraint: Member \
                   must have value greater than or equal to 900";
        let text = diagnose("ValidationError", aws, &sent(100)).to_string();
        assert!(text.contains("The server's bound: at least 900 s") && !text.contains("31536000"), "{text}");
        let aws = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.";
        let text = diagnose("ValidationError", aws, &sent(86400)).to_string();
        assert!(text.contains("duration_seconds = 86400") && text.contains("43200"), "{text}");
        let ceph = diagnose("InvalidArgument", "", &sent(100));
        assert!(matches!(ceph, CredentialError::DurationRefused { sent: 100, .. }), "{ceph:?}");
        assert!(ceph.to_string().contains("-o duration_seconds=N"), "{ceph}");
    }
}
