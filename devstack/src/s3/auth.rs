//! Who is calling and what they may do: root credentials, STS sessions, and the IAM policies mapped to
//! them. Plugs into s3s as `S3Auth` (signature keys, expiry) and `S3Access` (per-request policy check),
//! and filters ListBuckets the way MinIO does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::DeleteObjectsInput;
use s3s::path::S3Path;
use s3s::{S3Request, S3Result, s3_error};

use super::iam::{self, Policy, Request};
use super::store::ListBucketsFilter;

/// Temporary credentials handed out by AssumeRoleWithWebIdentity.
#[derive(Clone)]
pub struct Session {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: String,
    pub expiration: SystemTime,
    /// Names of the IAM policies mapped from the token's claim (or the role policy).
    pub policies: Vec<String>,
    /// Inline session policy (`Policy` parameter): effective rights are the intersection.
    pub session_policy: Option<Policy>,
    /// `preferred_username` (or `sub`) of the token, for the request log.
    pub subject: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_key", &self.access_key)
            .field("expiration", &self.expiration)
            .field("policies", &self.policies)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// MinIO's IAM state: root credentials, named policies, live STS sessions.
pub struct Iam {
    root_access_key: String,
    root_secret_key: String,
    policies: HashMap<String, Policy>,
    sessions: RwLock<HashMap<String, Session>>,
}

/// Filled in by the access check so the request log can name the operation and caller.
#[derive(Default)]
pub struct RequestNote {
    pub op: Mutex<Option<String>>,
    pub access_key: Mutex<Option<String>>,
}

impl Iam {
    pub fn new(root_access_key: &str, root_secret_key: &str, policies: HashMap<String, Policy>) -> Self {
        Iam {
            root_access_key: root_access_key.to_string(),
            root_secret_key: root_secret_key.to_string(),
            policies,
            sessions: RwLock::new(HashMap::new()),
        }
    }

    /// What STS signs session tokens with: the root secret key (cmd/sts-handlers.go
    /// getTokenSigningKey, without site replication).
    pub fn token_signing_key(&self) -> &str {
        &self.root_secret_key
    }

    pub fn policy_exists(&self, name: &str) -> bool {
        self.policies.contains_key(name)
    }

    pub fn add_session(&self, session: Session) {
        self.sessions.write().unwrap().insert(session.access_key.clone(), session);
    }

    pub fn session(&self, access_key: &str) -> Option<Session> {
        self.sessions.read().unwrap().get(access_key).cloned()
    }

    /// Makes every STS credential issued so far expire now (control API).
    pub fn expire_sessions(&self) -> usize {
        let mut sessions = self.sessions.write().unwrap();
        let past = SystemTime::now() - std::time::Duration::from_secs(1);
        for s in sessions.values_mut() {
            s.expiration = past;
        }
        sessions.len()
    }

    fn is_root(&self, access_key: &str) -> bool {
        access_key == self.root_access_key
    }

    /// Whether the caller may do `req`. Root may do anything; unknown callers nothing.
    pub fn allows(&self, access_key: &str, req: &Request) -> bool {
        if self.is_root(access_key) {
            return true;
        }
        let Some(session) = self.session(access_key) else {
            return false;
        };
        let mapped: Vec<&Policy> = session.policies.iter().filter_map(|n| self.policies.get(n)).collect();
        iam::is_allowed(&mapped, req) && session.session_policy.as_ref().is_none_or(|p| iam::is_allowed(&[p], req))
    }
}

/// The s3s plug-in: signature keys, session-token and expiry checks, per-request authorization.
#[derive(Clone)]
pub struct MinioAuth(pub Arc<Iam>);

#[async_trait::async_trait]
impl S3Auth for MinioAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        let iam = &self.0;
        if iam.is_root(access_key) {
            return Ok(SecretKey::from(iam.root_secret_key.clone()));
        }
        // MinIO looks temporary credentials past their expiry up as unknown: cmd/iam.go CheckKey
        // reports them not ok (Credentials.IsValid is false once expired), and
        // cmd/signature-v4-utils.go checkKeyValid turns that into ErrInvalidAccessKeyID, a 403
        // InvalidAccessKeyId, never ExpiredToken (minio#14794).
        match iam.session(access_key) {
            Some(s) if s.expiration > SystemTime::now() => Ok(SecretKey::from(s.secret_key)),
            _ => Err(s3_error!(InvalidAccessKeyId, "The Access Key Id you provided does not exist in our records.")),
        }
    }
}

#[async_trait::async_trait]
impl S3Access for MinioAuth {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let op = cx.s3_op().name().to_string();
        let access_key = cx.credentials().map(|c| c.access_key.clone());
        if let Some(note) = cx.extensions_mut().get::<Arc<RequestNote>>() {
            *note.op.lock().unwrap() = Some(op.clone());
            *note.access_key.lock().unwrap() = access_key.clone();
        }
        let Some(access_key) = access_key else {
            return Err(s3_error!(AccessDenied, "Access Denied."));
        };
        let iam = &self.0;
        if let Some(session) = iam.session(&access_key) {
            check_session_token(cx, &session)?;
        }
        // ListBuckets is filtered per bucket rather than refused (see `ListBucketsFilter`).
        if op == "ListBuckets" {
            return Ok(());
        }
        for req in requests_for(&op, cx) {
            if !iam.allows(&access_key, &req) {
                return Err(s3_error!(AccessDenied, "Access Denied."));
            }
        }
        Ok(())
    }

    async fn delete_objects(&self, req: &mut S3Request<DeleteObjectsInput>) -> S3Result<()> {
        // Each key needs s3:DeleteObject. MinIO reports refusals per key in the result; refusing the
        // whole batch is stricter and never deletes what the caller may not delete.
        let Some(cred) = &req.credentials else {
            return Err(s3_error!(AccessDenied, "Access Denied."));
        };
        let bucket = &req.input.bucket;
        for obj in &req.input.delete.objects {
            let r = Request::new("s3:DeleteObject", bucket, Some(&obj.key));
            if !self.0.allows(&cred.access_key, &r) {
                return Err(s3_error!(AccessDenied, "Access Denied."));
            }
        }
        Ok(())
    }
}

/// Temporary credentials must come with their session token (MinIO: ErrInvalidToken, "InvalidTokenId").
fn check_session_token(cx: &S3AccessContext<'_>, session: &Session) -> S3Result<()> {
    let from_header = cx.headers().get("x-amz-security-token").and_then(|v| v.to_str().ok()).map(str::to_string);
    let from_query = cx.uri().query().and_then(|q| query_param(q, "X-Amz-Security-Token"));
    match from_header.or(from_query) {
        Some(t) if t == session.session_token => Ok(()),
        _ => {
            let mut e = s3s::S3Error::with_message(
                s3s::S3ErrorCode::Custom("InvalidTokenId".into()),
                "The security token included in the request is invalid",
            );
            e.set_status_code(hyper::StatusCode::FORBIDDEN);
            Err(e)
        }
    }
}

pub fn query_param(query: &str, name: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The IAM requests an S3 operation amounts to (MinIO's handler-to-action mapping, cmd/*-handlers.go).
fn requests_for(op: &str, cx: &S3AccessContext<'_>) -> Vec<Request> {
    let (bucket, key) = match cx.s3_path() {
        S3Path::Root => return vec![Request::account(account_action(op))],
        S3Path::Bucket { bucket } => (bucket.to_string(), None),
        S3Path::Object { bucket, key } => (bucket.to_string(), Some(key.to_string())),
    };
    let query = cx.uri().query().unwrap_or("");
    let obj = |action: &str| Request::new(action, &bucket, key.as_deref());
    match op {
        "ListObjects" | "ListObjectsV2" => {
            let mut r = Request::new("s3:ListBucket", &bucket, None)
                .with_condition("s3:prefix", query_param(query, "prefix").unwrap_or_default());
            if let Some(d) = query_param(query, "delimiter") {
                r = r.with_condition("s3:delimiter", d);
            }
            vec![r]
        }
        "HeadBucket" => vec![Request::new("s3:ListBucket", &bucket, None)],
        "ListObjectVersions" => vec![Request::new("s3:ListBucketVersions", &bucket, None)],
        "ListMultipartUploads" => vec![Request::new("s3:ListBucketMultipartUploads", &bucket, None)],
        "GetBucketLocation" => vec![Request::new("s3:GetBucketLocation", &bucket, None)],
        "CreateBucket" => vec![Request::new("s3:CreateBucket", &bucket, None)],
        "DeleteBucket" => vec![Request::new("s3:DeleteBucket", &bucket, None)],
        "GetObject" | "HeadObject" | "GetObjectAttributes" => vec![obj("s3:GetObject")],
        "PutObject" | "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload" => vec![obj("s3:PutObject")],
        "CopyObject" | "UploadPartCopy" => {
            let mut v = vec![obj("s3:PutObject")];
            if let Some((sb, sk)) = copy_source(cx) {
                v.push(Request::new("s3:GetObject", &sb, Some(&sk)));
            }
            v
        }
        "AbortMultipartUpload" => vec![obj("s3:AbortMultipartUpload")],
        "ListParts" => vec![obj("s3:ListMultipartUploadParts")],
        "DeleteObject" => vec![obj("s3:DeleteObject")],
        // Checked per key in `delete_objects`.
        "DeleteObjects" => vec![],
        other => {
            let action = format!("s3:{other}");
            vec![if key.is_some() { obj(&action) } else { Request::new(&action, &bucket, None) }]
        }
    }
}

fn account_action(op: &str) -> &'static str {
    match op {
        "ListBuckets" => "s3:ListAllMyBuckets",
        _ => "s3:*Account*",
    }
}

/// `x-amz-copy-source: [/]bucket/key[?versionId=..]`, URL-encoded.
fn copy_source(cx: &S3AccessContext<'_>) -> Option<(String, String)> {
    let raw = cx.headers().get("x-amz-copy-source")?.to_str().ok()?;
    let raw = raw.split('?').next()?;
    let decoded = urlencoding::decode(raw).ok()?;
    let (b, k) = decoded.trim_start_matches('/').split_once('/')?;
    Some((b.to_string(), k.to_string()))
}

impl ListBucketsFilter for MinioAuth {
    /// MinIO's ListBucketsHandler (PR #8037): with s3:ListAllMyBuckets every bucket is listed; otherwise
    /// only buckets on which s3:ListBucket or s3:GetBucketLocation is allowed; if none remain, AccessDenied.
    fn filter(&self, access_key: Option<&str>, buckets: Vec<String>) -> S3Result<Vec<String>> {
        let Some(ak) = access_key else {
            return Err(s3_error!(AccessDenied, "Access Denied."));
        };
        let iam = &self.0;
        if iam.allows(ak, &Request::account("s3:ListAllMyBuckets")) {
            return Ok(buckets);
        }
        let visible: Vec<String> = buckets
            .into_iter()
            .filter(|b| {
                iam.allows(ak, &Request::new("s3:ListBucket", b, None))
                    || iam.allows(ak, &Request::new("s3:GetBucketLocation", b, None))
            })
            .collect();
        if visible.is_empty() {
            return Err(s3_error!(AccessDenied, "Access Denied."));
        }
        Ok(visible)
    }
}
