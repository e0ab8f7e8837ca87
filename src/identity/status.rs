//! `ssofs status` and `ssofs token --claims`: what the stored ID token says about the user, without
//! ever showing a token. The token was verified when it was stored; these views only decode it.

use serde::Serialize;
use serde_json::{Map, Value};

use super::StoredTokens;
use super::verify::{rfc3339, unverified_claims};

/// Group membership as the ID token carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Groups {
    /// The number of group ids in `groups`.
    Count(usize),
    /// Too many groups for a token: Azure sent `_claim_names` pointing at Graph instead.
    Overage,
}

impl Serialize for Groups {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Groups::Count(n) => s.serialize_u64(*n as u64),
            Groups::Overage => s.serialize_str("overage"),
        }
    }
}

/// One profile's sign-in state. Serialized as `ssofs status --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub profile: String,
    pub logged_in: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Groups>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// ID token expiry, RFC 3339 (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Whether the ID token has expired by the local clock (a refresh renews it when a refresh token
    /// is present).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expired: Option<bool>,
    pub refresh_token_present: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Why a new sign-in is needed: the identity provider refused the stored one (revoked, expired
    /// after 90 days of disuse, password changed, policy). Mounts wait for `ssofs login`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_required: Option<String>,
}

impl Status {
    pub fn not_logged_in(profile: &str) -> Status {
        Status {
            profile: profile.to_string(),
            logged_in: false,
            upn: None,
            name: None,
            tid: None,
            oid: None,
            groups: None,
            roles: None,
            expires_at: None,
            expired: None,
            refresh_token_present: false,
            issuer: None,
            login_required: None,
        }
    }

    pub fn of(profile: &str, tokens: &StoredTokens, now: i64) -> Status {
        // A damaged token still leaves what the store file says.
        let claims = unverified_claims(&tokens.id_token).unwrap_or_default();
        let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_string);
        Status {
            profile: profile.to_string(),
            logged_in: true,
            upn: text("preferred_username").or_else(|| text("upn")).or_else(|| tokens.username.clone()),
            name: text("name"),
            tid: text("tid"),
            oid: text("oid"),
            groups: Some(groups(&claims)),
            roles: claims
                .get("roles")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).map(str::to_string).collect()),
            expires_at: Some(rfc3339(tokens.id_token_expires_at)),
            expired: Some(now >= tokens.id_token_expires_at),
            refresh_token_present: tokens.refresh_token.is_some(),
            issuer: text("iss").or_else(|| Some(tokens.issuer.clone())),
            login_required: None,
        }
    }

    /// The human-readable lines of `ssofs status`.
    pub fn text(&self) -> String {
        if !self.logged_in {
            return format!("profile {}: not signed in; run `ssofs login --profile {}`\n", self.profile, self.profile);
        }
        let unknown = || "unknown".to_string();
        let groups = match &self.groups {
            Some(Groups::Overage) => {
                "overage (more than 200: the token lists none and points at Microsoft Graph instead; MinIO \
                 will see no groups, so ask for app roles or groups assigned to the app)"
                    .to_string()
            }
            Some(Groups::Count(n)) => n.to_string(),
            None => unknown(),
        };
        let expiry = match (self.expires_at.as_deref(), self.expired) {
            (Some(at), Some(true)) => format!("expired at {at}"),
            (Some(at), _) => format!("valid until {at}"),
            _ => unknown(),
        };
        let mut s = format!(
            "profile {}: signed in as {}\n",
            self.profile,
            self.upn.clone().unwrap_or_else(|| "unknown user".into())
        );
        if let Some(reason) = &self.login_required {
            s.push_str(&format!(
                "  NEW SIGN-IN NEEDED: {reason}\n  Run `ssofs login --profile {}`; running mounts recover by themselves.\n",
                self.profile
            ));
        }
        if let Some(name) = &self.name {
            s.push_str(&format!("  name:          {name}\n"));
        }
        s.push_str(&format!("  tenant (tid):  {}\n", self.tid.clone().unwrap_or_else(unknown)));
        s.push_str(&format!("  groups:        {groups}\n"));
        if let Some(roles) = &self.roles {
            s.push_str(&format!("  app roles:     {}\n", roles.join(", ")));
        }
        s.push_str(&format!("  ID token:      {expiry}\n"));
        s.push_str(&format!(
            "  refresh token: {}\n",
            if self.refresh_token_present { "present" } else { "absent (run `ssofs login` when the ID token expires)" }
        ));
        s
    }
}

fn groups(claims: &Map<String, Value>) -> Groups {
    let overage = claims.get("_claim_names").and_then(|n| n.get("groups")).is_some();
    if overage {
        return Groups::Overage;
    }
    Groups::Count(claims.get("groups").and_then(Value::as_array).map_or(0, Vec::len))
}

/// The ID token's claims for `ssofs token --claims`: header and signature are not part of it.
pub fn claims(tokens: &StoredTokens) -> Result<Map<String, Value>, String> {
    unverified_claims(&tokens.id_token).map_err(|e| format!("the stored ID token cannot be decoded: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn tokens(claims: Value) -> StoredTokens {
        let b = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        StoredTokens {
            issuer: "https://i".into(),
            client_id: "c".into(),
            id_token: format!("{}.{}.c2ln", b(&serde_json::json!({"alg": "RS256"})), b(&claims)),
            access_token: "at".into(),
            access_token_expires_at: None,
            refresh_token: Some("rt".into()),
            id_token_expires_at: 2_000_000_000,
            username: None,
        }
    }

    #[test]
    fn counts_groups_or_reports_overage() {
        let s = Status::of("p", &tokens(serde_json::json!({"preferred_username": "a@b", "groups": ["g1", "g2"]})), 0);
        assert_eq!(s.groups, Some(Groups::Count(2)));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["groups"], 2);
        assert_eq!(json["upn"], "a@b");
        assert_eq!(json["expires_at"], "2033-05-18T03:33:20Z");
        let o = Status::of("p", &tokens(serde_json::json!({"_claim_names": {"groups": "src1"}})), 0);
        assert_eq!(serde_json::to_value(&o).unwrap()["groups"], "overage");
        assert!(o.text().contains("overage"));
    }

    #[test]
    fn says_when_a_new_sign_in_is_needed() {
        let mut s = Status::of("p", &tokens(serde_json::json!({"preferred_username": "a@b"})), 0);
        assert!(!s.text().contains("NEW SIGN-IN"));
        assert!(serde_json::to_value(&s).unwrap().get("login_required").is_none());
        s.login_required = Some("refresh token revoked".into());
        assert!(s.text().contains("NEW SIGN-IN NEEDED: refresh token revoked"), "{}", s.text());
        assert!(s.text().contains("ssofs login --profile p"));
        assert_eq!(serde_json::to_value(&s).unwrap()["login_required"], "refresh token revoked");
    }

    #[test]
    fn never_shows_a_token() {
        let t = tokens(serde_json::json!({"preferred_username": "a@b"}));
        let s = Status::of("p", &t, 0);
        let all = format!("{}{}", s.text(), serde_json::to_string(&s).unwrap());
        assert!(!all.contains(&t.id_token) && !all.contains("\"rt\"") && !all.contains("\"at\""), "{all}");
    }
}
