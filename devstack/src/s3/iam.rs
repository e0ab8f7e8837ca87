//! MinIO IAM policy documents and their evaluation (the subset an S3 filesystem exercises): Allow and
//! Deny statements, `Action`/`NotAction`, `Resource` with `*`/`?` wildcards, and string conditions on
//! request keys such as `s3:prefix`. Explicit Deny wins over Allow; no matching Allow means deny
//! (MinIO docs, "Policy Management"; minio/pkg policy.IsAllowed).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Policy {
    #[serde(default)]
    pub version: String,
    #[serde(deserialize_with = "one_or_many")]
    pub statement: Vec<Statement>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    pub effect: Effect,
    #[serde(default, deserialize_with = "one_or_many")]
    pub action: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub not_action: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub resource: Vec<String>,
    /// operator → condition key → allowed values
    #[serde(default)]
    pub condition: HashMap<String, HashMap<String, OneOrMany>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn values(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let v = Value::deserialize(d)?;
    match v {
        Value::Array(_) => serde_json::from_value(v).map_err(serde::de::Error::custom),
        other => Ok(vec![serde_json::from_value(other).map_err(serde::de::Error::custom)?]),
    }
}

/// What a request asks for: an action on a resource ARN, with condition values (`s3:prefix`, ...).
#[derive(Debug, Clone)]
pub struct Request {
    pub action: String,
    pub resource: String,
    pub conditions: HashMap<&'static str, String>,
}

impl Request {
    pub fn new(action: &str, bucket: &str, key: Option<&str>) -> Self {
        let resource = match key {
            Some(key) => format!("arn:aws:s3:::{bucket}/{key}"),
            None => format!("arn:aws:s3:::{bucket}"),
        };
        Request { action: action.to_string(), resource, conditions: HashMap::new() }
    }

    /// ListAllMyBuckets and other account-level actions.
    pub fn account(action: &str) -> Self {
        Request { action: action.to_string(), resource: "arn:aws:s3:::*".to_string(), conditions: HashMap::new() }
    }

    pub fn with_condition(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.conditions.insert(key, value.into());
        self
    }
}

impl Policy {
    pub fn parse(text: &str) -> Result<Policy, String> {
        let p: Policy = serde_json::from_str(text).map_err(|e| format!("malformed policy document: {e}"))?;
        if p.version.is_empty() {
            return Err("Version needs to be specified in the policy".into());
        }
        Ok(p)
    }
}

/// MinIO evaluates the union of all mapped policies: any explicit Deny denies, else any Allow allows.
pub fn is_allowed(policies: &[&Policy], req: &Request) -> bool {
    let mut allowed = false;
    for st in policies.iter().flat_map(|p| p.statement.iter()) {
        if !st.matches(req) {
            continue;
        }
        match st.effect {
            Effect::Deny => return false,
            Effect::Allow => allowed = true,
        }
    }
    allowed
}

impl Statement {
    fn matches(&self, req: &Request) -> bool {
        let action_hit = if !self.not_action.is_empty() {
            !self.not_action.iter().any(|a| wildcard(&a.to_ascii_lowercase(), &req.action.to_ascii_lowercase()))
        } else {
            self.action.iter().any(|a| wildcard(&a.to_ascii_lowercase(), &req.action.to_ascii_lowercase()))
        };
        action_hit
            && self.resource.iter().any(|r| wildcard(r, &req.resource))
            && self.condition.iter().all(|(op, kv)| condition_holds(op, kv, &req.conditions))
    }
}

fn condition_holds(op: &str, kv: &HashMap<String, OneOrMany>, ctx: &HashMap<&'static str, String>) -> bool {
    kv.iter().all(|(key, allowed)| {
        let actual = ctx.get(key.to_ascii_lowercase().as_str()).map(String::as_str);
        let values = allowed.values();
        match op {
            "StringEquals" => actual.is_some_and(|a| values.contains(&a)),
            "StringNotEquals" => actual.is_none_or(|a| !values.contains(&a)),
            "StringLike" => actual.is_some_and(|a| values.iter().any(|v| wildcard(v, a))),
            "StringNotLike" => actual.is_none_or(|a| !values.iter().any(|v| wildcard(v, a))),
            // An operator we do not model never grants (and never blocks a Deny) silently: treat as
            // not holding, which makes an Allow with it inert and a Deny with it inert, and say so.
            other => {
                tracing::warn!(operator = other, "unsupported IAM condition operator; statement ignored");
                false
            }
        }
    })
}

/// `*` matches any run of characters (including `/`), `?` exactly one, as in IAM.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(v: serde_json::Value) -> Policy {
        Policy::parse(&v.to_string()).unwrap()
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("arn:aws:s3:::b/*", "arn:aws:s3:::b/x/y"));
        assert!(!wildcard("arn:aws:s3:::b/*", "arn:aws:s3:::b"));
        assert!(wildcard("s3:Get*", "s3:GetObject"));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("a?c", "ac"));
    }

    #[test]
    fn deny_wins_and_no_allow_denies() {
        let p = policy(serde_json::json!({"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/*"},
            {"Effect":"Deny","Action":["s3:PutObject"],"Resource":["arn:aws:s3:::b/locked/*"]}]}));
        assert!(is_allowed(&[&p], &Request::new("s3:GetObject", "b", Some("locked/x"))));
        assert!(!is_allowed(&[&p], &Request::new("s3:PutObject", "b", Some("locked/x"))));
        assert!(is_allowed(&[&p], &Request::new("s3:PutObject", "b", Some("open/x"))));
        assert!(!is_allowed(&[&p], &Request::new("s3:GetObject", "other", Some("x"))));
    }

    #[test]
    fn prefix_condition() {
        let p = policy(serde_json::json!({"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b",
             "Condition":{"StringLike":{"s3:prefix":["home/alice/*","home/alice"]}}}]}));
        let list = |prefix: &str| Request::new("s3:ListBucket", "b", None).with_condition("s3:prefix", prefix);
        assert!(is_allowed(&[&p], &list("home/alice/docs/")));
        assert!(!is_allowed(&[&p], &list("home/bob/")));
        assert!(!is_allowed(&[&p], &list("")));
    }

    #[test]
    fn malformed_policy_is_an_error() {
        assert!(Policy::parse("{").is_err());
        assert!(Policy::parse(r#"{"Statement":[]}"#).is_err());
    }
}
