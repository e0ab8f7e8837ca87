//! What STS will see (the groups claim) and what it says: credentials, or a refusal explained.

use serde_json::{Map, Value};

use std::sync::Arc;
use std::time::SystemTime;

use ssofs::config::Profile;
use ssofs::credentials::{CredentialError, CredentialProvider};
use ssofs::identity::TokenSource;

use super::report::{Checks, Outcome};

/// AssumeRoleWithWebIdentity with the stored token: the provider when STS gave credentials.
pub async fn credentials(
    profile: &Profile,
    tokens: Arc<dyn TokenSource>,
    checks: &mut Checks,
) -> Option<CredentialProvider> {
    let provider = match ssofs::stack::credentials(profile, tokens) {
        Ok(p) => p,
        Err(e) => {
            checks.fail("sts", e.to_string(), "set the profile's endpoint (or pass --endpoint URL)");
            checks.skip_rest("buckets", "needs S3 credentials");
            return None;
        }
    };
    match provider.credentials().await {
        Ok(_) => {
            let until = provider.expires_at().map(rfc3339_system).unwrap_or_else(|| "?".into());
            let key = provider.current_access_key().unwrap_or_default();
            checks.pass("sts", format!("AssumeRoleWithWebIdentity gave access key {key}, valid until {until}"));
            Some(provider)
        }
        Err(e) => {
            let cause = match &e {
                CredentialError::NoValidCredentials { cause, .. } => cause.as_ref().clone(),
                other => other.clone(),
            };
            checks.fail("sts", cause.to_string(), sts_fix(&cause, &profile.name));
            checks.skip_rest("buckets", "needs S3 credentials");
            None
        }
    }
}

fn rfc3339_system(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    ssofs::identity::verify::rfc3339(secs)
}

pub fn groups(profile: &Profile, claims: &Map<String, Value>, checks: &mut Checks) {
    let overage = claims.get("_claim_names").and_then(|n| n.get("groups")).is_some();
    let groups = claims.get("groups").and_then(Value::as_array).map(Vec::len);
    let roles = claims.get("roles").and_then(Value::as_array).map(Vec::len).unwrap_or(0);
    if overage {
        checks.fail(
            "groups",
            "groups overage: the user is in more than 200 groups, so Azure AD left the groups claim out of the token \
             and put a reference (_claim_names) in its place; MinIO cannot map it to policies",
            "in the app registration, emit only the groups assigned to the application (Token configuration → groups \
             claim → \"Groups assigned to the application\"), or use app roles and MinIO's claim_name=roles",
        );
    } else if let Some(n) = groups {
        checks.pass("groups", format!("the token names {n} group(s) and {roles} app role(s)"));
    } else if profile.role_arn.is_some() {
        checks.pass("groups", "no groups claim; the profile uses role_arn (MinIO role policy), which does not need it");
    } else {
        checks.add(
            "groups",
            Outcome::Warn,
            format!("the token has no groups claim ({roles} app role(s)); MinIO maps the groups claim to policies"),
            Some(
                "enable \"emit groups claim\" in the app registration (Token configuration → Add groups claim), or use \
                 app roles with MinIO's claim_name=roles, or a role_arn"
                    .into(),
            ),
        );
    }
}

fn sts_fix(e: &CredentialError, profile: &str) -> String {
    match e {
        CredentialError::AudienceMismatch { .. } => {
            "make MinIO's client_id and the profile's client_id the same app registration".into()
        }
        CredentialError::GroupsOverage { .. } => {
            "emit only groups assigned to the application, or use app roles".into()
        }
        CredentialError::ClaimMissing { .. } => {
            "add the groups claim to the token (or app roles), and give the user's groups MinIO policies".into()
        }
        CredentialError::NoPoliciesDefined { .. } => {
            "create MinIO policies named after the user's groups, or add the user to a group that has one".into()
        }
        CredentialError::ClockSkew { .. } => "synchronise the clocks with NTP".into(),
        CredentialError::InvalidSignature { .. } => "check MinIO's config_url; run `ssofs login` again".into(),
        CredentialError::DurationRefused { .. } => {
            "set duration_seconds within the bounds the server accepts, or remove it".into()
        }
        CredentialError::UnknownSigningKey { .. } => {
            "point MinIO's config_url at the token issuer's discovery document".into()
        }
        CredentialError::IdpKeysUnreachable { .. } => {
            "let MinIO reach the identity provider's keys (its jwks_uri); ssofs retries by itself".into()
        }
        CredentialError::Token(_) => format!("run `ssofs login --profile {profile}`"),
        e if e.is_transient() => "check that the endpoint is up and reachable; ssofs retries by itself".into(),
        _ => "check the profile's endpoint, role_arn and duration_seconds".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssofs::config::StsToken;

    #[test]
    fn groups_claim_outcomes() {
        let profile = Profile {
            name: "p".into(),
            issuer: "https://i".into(),
            client_id: "c".into(),
            scopes: vec![],
            endpoint: None,
            role_arn: None,
            duration_seconds: None,
            token: StsToken::IdToken,
            ca_file: None,
            accept_v1_issuer: false,
            insecure_tls: false,
            op_timeout: None,
            buckets: Vec::new(),
            checksums: Default::default(),
        };
        let run = |claims: Value| {
            let mut checks = Checks::default();
            groups(&profile, claims.as_object().unwrap(), &mut checks);
            checks.list.remove(0)
        };
        assert_eq!(run(serde_json::json!({"groups": ["a"]})).outcome, Outcome::Pass);
        let over = run(serde_json::json!({"_claim_names": {"groups": "src1"}}));
        assert_eq!(over.outcome, Outcome::Fail);
        assert!(over.detail.contains("overage"));
        let none = run(serde_json::json!({}));
        assert_eq!(none.outcome, Outcome::Warn);
        assert!(none.fix.unwrap().contains("emit groups claim"));
    }
}
