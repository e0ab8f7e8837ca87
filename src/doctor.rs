//! `ssofs doctor`: walks the chain a mount depends on — config, identity provider, clocks, token,
//! audience, groups claim, STS, buckets, FUSE — and says for each step whether it works and, when it
//! does not, what to change. It reuses the layers' own checks and errors (discovery, token
//! verification, the STS refusal translation) rather than re-implementing them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::{Map, Value};

use ssofs::config::{self, Overrides, Profile, Sources, StsToken};
use ssofs::credentials::{CredentialError, CredentialProvider};
use ssofs::fs::named::BucketPath;
use ssofs::identity::login::{self, Provider};
use ssofs::identity::verify::unverified_claims;
use ssofs::identity::{StoreTokenSource, TokenSource, TokenStore, clock, refresh::DEFAULT_MARGIN};
use ssofs::mount::MountOptions;
use ssofs::object::ObjectClient;
use ssofs::object::s3::{S3ObjectClient, Transport};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Warn,
    Fail,
    Skip,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable name: config, discovery, clock, token, audience, groups, sts, buckets, bucket:NAME, fuse.
    pub check: String,
    pub outcome: Outcome,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub profile: Option<String>,
    pub ok: bool,
    /// The first failed check's name, the cause in one word for scripts: e.g. `clock`, `audience`.
    pub diagnosis: Option<String>,
    pub checks: Vec<Check>,
}

pub struct Request {
    pub sources: Sources,
    pub profile: Option<String>,
    pub overrides: Overrides,
    pub duration_seconds: Option<u64>,
    /// Where the tokens are; `None`: the default.
    pub state_dir: Option<PathBuf>,
    pub write_probe: bool,
    /// The mount options the mount would use (allow_other is checked against /etc/fuse.conf).
    pub options: MountOptions,
}

/// Most seconds the identity provider's and MinIO's `Date` may differ (the header has 1 s
/// resolution); MinIO checks token times with zero leeway.
const IDP_MINIO_TOLERANCE: i64 = 2;

struct Walk {
    checks: Vec<Check>,
}

impl Walk {
    fn add(&mut self, check: impl Into<String>, outcome: Outcome, detail: impl Into<String>, fix: Option<String>) {
        self.checks.push(Check { check: check.into(), outcome, detail: detail.into(), fix });
    }
    fn pass(&mut self, check: &str, detail: impl Into<String>) {
        self.add(check, Outcome::Pass, detail, None);
    }
    fn fail(&mut self, check: &str, detail: impl Into<String>, fix: impl Into<String>) {
        self.add(check, Outcome::Fail, detail, Some(fix.into()));
    }
    fn skip(&mut self, check: &str, why: &str) {
        self.add(check, Outcome::Skip, why, None);
    }
}

pub async fn run(req: Request) -> Report {
    let mut w = Walk { checks: Vec::new() };
    let profile = identity_chain(&req, &mut w).await;
    fuse_ready(&req.options, &mut w);
    let first_fail = w.checks.iter().find(|c| c.outcome == Outcome::Fail);
    Report {
        profile: profile.map(|p| p.name),
        ok: first_fail.is_none(),
        diagnosis: first_fail.map(|c| c.check.split(':').next().unwrap_or_default().to_string()),
        checks: w.checks,
    }
}

const LATER: [&str; 8] = ["discovery", "clock", "token", "audience", "groups", "sts", "buckets", ""];

fn skip_rest(w: &mut Walk, from: &str, why: &str) {
    let start = LATER.iter().position(|c| *c == from).unwrap_or(LATER.len());
    for c in LATER[start..].iter().filter(|c| !c.is_empty()) {
        w.skip(c, why);
    }
}

/// Config → discovery → clocks → token → audience → groups → STS → buckets. Returns the profile
/// when the config loaded.
async fn identity_chain(req: &Request, w: &mut Walk) -> Option<Profile> {
    // Config.
    let mut profile = match config::load_profile_with(&req.sources, req.profile.as_deref(), &req.overrides) {
        Ok(p) => p,
        Err(e) => {
            let looked: Vec<String> = [&req.sources.system, &req.sources.user, &req.sources.extra]
                .into_iter()
                .flatten()
                .map(|p| p.display().to_string())
                .collect();
            w.fail(
                "config",
                e.to_string(),
                format!(
                    "write a profile (issuer or tenant, client_id, endpoint) to one of {}; `-o config=FILE` or \
                     --config FILE names another file",
                    looked.join(", ")
                ),
            );
            skip_rest(w, "discovery", "needs a valid config");
            return None;
        }
    };
    req.options.apply_to(&mut profile);
    if req.duration_seconds.is_some() {
        profile.duration_seconds = req.duration_seconds;
    }
    let files: Vec<String> = [&req.sources.system, &req.sources.user, &req.sources.extra]
        .into_iter()
        .flatten()
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    w.pass(
        "config",
        format!(
            "profile {} from {}: issuer {}, client_id {}, endpoint {}",
            profile.name,
            files.join(", "),
            profile.issuer,
            profile.client_id,
            profile.endpoint.as_deref().unwrap_or("(none)")
        ),
    );
    if profile.insecure_tls {
        w.add(
            "config",
            Outcome::Warn,
            "insecure_tls is set: TLS certificates of the identity provider, STS and S3 are NOT checked",
            Some("remove insecure_tls from the profile; for a private CA set ca_file to its PEM file instead".into()),
        );
    }

    // Discovery.
    let provider = match login::discover(&profile).await {
        Ok(p) => Arc::new(p),
        Err(e) => {
            w.fail(
                "discovery",
                e.to_string(),
                "check the profile's issuer/tenant, the network and proxy, and ca_file for a private CA",
            );
            skip_rest(w, "clock", "needs the identity provider");
            return Some(profile);
        }
    };
    w.pass("discovery", format!("{}/.well-known/openid-configuration answers", profile.issuer));

    // The S3 server (its `Server` header) and the clocks: the IdP's Date, the endpoint's, this machine's.
    let (s3_skew, server) = match &profile.endpoint {
        Some(endpoint) => endpoint_probe(&profile, endpoint).await,
        None => (None, ServerKind::Unknown),
    };
    w.pass("server", server.describe());
    clocks(&profile, &provider, s3_skew, &server, w);

    // Token: present, refreshed when due, verified.
    let store_dir = match req.state_dir.clone().map(Ok).unwrap_or_else(TokenStore::default_dir) {
        Ok(d) => d,
        Err(e) => {
            w.fail("token", e.to_string(), "set SSOFS_STATE_DIR, HOME, or `-o state_dir=DIR`");
            skip_rest(w, "audience", "needs a token");
            return Some(profile);
        }
    };
    let store = match TokenStore::open(&store_dir) {
        Ok(s) => s,
        Err(e) => {
            w.fail("token", e.to_string(), format!("check the permissions of {}", store_dir.display()));
            skip_rest(w, "audience", "needs a token");
            return Some(profile);
        }
    };
    let source = Arc::new(StoreTokenSource::new(profile.clone(), store.clone(), DEFAULT_MARGIN));
    if let Err(e) = source.token().await {
        w.fail(
            "token",
            e.to_string(),
            format!("run `ssofs login --profile {}` as the user the mount runs as", profile.name),
        );
        skip_rest(w, "audience", "needs a token");
        return Some(profile);
    }
    let stored = match store.load(&profile.name) {
        Ok(Some(t)) => t,
        other => {
            let detail = other.err().map(|e| e.to_string()).unwrap_or_else(|| "not signed in".into());
            w.fail("token", detail, format!("run `ssofs login --profile {}`", profile.name));
            skip_rest(w, "audience", "needs a token");
            return Some(profile);
        }
    };
    let id_claims = unverified_claims(&stored.id_token).unwrap_or_default();
    token_times(&id_claims, s3_skew, w);
    let who = claim_str(&id_claims, "preferred_username").or_else(|| claim_str(&id_claims, "upn")).unwrap_or("?");
    let expires = ssofs::identity::verify::rfc3339(stored.id_token_expires_at);
    let refresh_note = if stored.refresh_token.is_some() {
        "a refresh token keeps it renewed"
    } else {
        "no refresh token: a new login is needed when it expires (add offline_access to scopes)"
    };

    // Audience before the full verification: its explanation is the most specific.
    let aud = audiences(&id_claims);
    if !aud.iter().any(|a| a == &profile.client_id) {
        w.pass("token", format!("signed in as {who}, ID token valid until {expires}; {refresh_note}"));
        w.fail(
            "audience",
            format!(
                "the stored ID token is for {} but the profile's client_id is {}",
                aud.join(", "),
                profile.client_id
            ),
            "MinIO's identity_openid client_id (MINIO_IDENTITY_OPENID_CLIENT_ID) must be the application (client) id \
             the token is issued for — the GUID of the app registration, not its Application ID URI (api://...), \
             which is what access tokens for your own API carry as `aud`. Fix the profile's client_id, or MinIO's, so \
             that both name the same app registration, then run `ssofs login`",
        );
    } else {
        match provider.verify_id_token_refetching(&profile, &stored.id_token, None).await {
            Ok(_) => w.pass("token", format!("signed in as {who}, ID token valid until {expires}; {refresh_note}")),
            Err(e) => w.fail("token", e.to_string(), format!("run `ssofs login --profile {}`", profile.name)),
        }
        if profile.token == StsToken::AccessToken {
            let at = unverified_claims(&stored.access_token).unwrap_or_default();
            let at_aud = audiences(&at);
            if at_aud.iter().any(|a| a == &profile.client_id) {
                w.pass("audience", format!("the access token's aud is the client_id {}", profile.client_id));
            } else {
                w.fail(
                    "audience",
                    format!(
                        "token = \"access_token\", and the access token is for {}, not client_id {}",
                        if at_aud.is_empty() { "(not a JWT)".to_string() } else { at_aud.join(", ") },
                        profile.client_id
                    ),
                    "MinIO compares aud with its client_id. Ask for a scope of your own API (api://<client id>/name) \
                     and configure MinIO with the client id the token's aud names (Azure puts the application id GUID \
                     in v2 access tokens, the Application ID URI in v1 ones: set accessTokenAcceptedVersion = 2 in \
                     the manifest), or use token = \"id_token\"",
                );
            }
        } else {
            w.pass(
                "audience",
                format!("the ID token is for client_id {}, which MinIO must be configured with", profile.client_id),
            );
        }
    }

    // Groups claim of the token STS will get.
    let sts_claims = match profile.token {
        StsToken::IdToken => id_claims.clone(),
        StsToken::AccessToken => unverified_claims(&stored.access_token).unwrap_or_default(),
    };
    if matches!(server, ServerKind::MinIO | ServerKind::Unknown) {
        groups(&profile, &sts_claims, w);
    } else {
        w.skip(
            "groups",
            &format!("only MinIO maps the groups claim to policies; {} grants access by role", server.name()),
        );
    }

    // STS.
    let provider = match CredentialProvider::for_profile(&profile, source) {
        Ok(p) => p,
        Err(e) => {
            w.fail("sts", e.to_string(), "set the profile's endpoint (or pass --endpoint URL)");
            skip_rest(w, "buckets", "needs S3 credentials");
            return Some(profile);
        }
    };
    match provider.credentials().await {
        Ok(_) => {
            let until = provider.expires_at().map(rfc3339_system).unwrap_or_else(|| "?".into());
            let key = provider.current_access_key().unwrap_or_default();
            w.pass("sts", format!("AssumeRoleWithWebIdentity gave access key {key}, valid until {until}"));
        }
        Err(e) => {
            let cause = match &e {
                CredentialError::NoValidCredentials { cause, .. } => cause.as_ref().clone(),
                other => other.clone(),
            };
            w.fail("sts", cause.to_string(), sts_fix(&cause, &profile.name));
            skip_rest(w, "buckets", "needs S3 credentials");
            return Some(profile);
        }
    }

    // Buckets.
    let endpoint = profile.endpoint.clone().unwrap_or_default();
    let s3 = match S3ObjectClient::connect(provider, &endpoint, &Transport::for_profile(&profile)) {
        Ok(s3) => s3,
        Err(e) => {
            w.fail(
                "buckets",
                e,
                "fix ca_file in the profile (a PEM file of the CA that signed the S3 endpoint's certificate)",
            );
            return Some(profile);
        }
    };
    buckets(&s3, req.write_probe, &server, &profile.buckets, w).await;
    Some(profile)
}

fn claim_str<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

fn audiences(claims: &Map<String, Value>) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

fn rfc3339_system(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    ssofs::identity::verify::rfc3339(secs)
}

/// The token's own times against MinIO's clock (its `Date`, else this machine's): a token issued
/// "in the future" means the identity provider's clock is ahead, which MinIO refuses with zero
/// leeway. Replaces a passing clock check.
fn token_times(claims: &Map<String, Value>, s3_skew: Option<i64>, w: &mut Walk) {
    let Some(iat) = claims.get("iat").and_then(Value::as_i64) else { return };
    let minio_now = login::now_unix() + s3_skew.unwrap_or(0);
    let ahead = iat - minio_now;
    if ahead < IDP_MINIO_TOLERANCE {
        return;
    }
    let Some(slot) = w.checks.iter_mut().find(|c| c.check == "clock") else { return };
    if slot.outcome == Outcome::Fail {
        return;
    }
    *slot = Check {
        check: "clock".into(),
        outcome: Outcome::Fail,
        detail: format!(
            "the ID token was issued at {} ({ahead} s ahead of MinIO's clock{}): the identity provider's clock is {ahead} s \
             ahead of MinIO, and MinIO checks token times (iat, nbf, exp) with zero leeway",
            ssofs::identity::verify::rfc3339(iat),
            if s3_skew.is_some() { "" } else { ", taken as this machine's" }
        ),
        fix: Some(
            "synchronise the clocks of the identity provider, MinIO and this machine with NTP (timedatectl set-ntp \
             true; chrony/ntpd on the MinIO hosts), then `ssofs login` again"
                .into(),
        ),
    };
}

fn clocks(profile: &Profile, provider: &Provider, s3: Option<i64>, server: &ServerKind, w: &mut Walk) -> Option<i64> {
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
            w.fail(
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
        w.fail("clock", format!("{detail}: {warning}"), "enable NTP on this machine: timedatectl set-ntp true");
        return s3;
    }
    if let Some(s) = s3.filter(|s| s.abs() > clock::MAX_SKEW_SECS) {
        w.fail(
            "clock",
            format!("{detail}: this machine is {} s off {name}'s clock; credentials would be renewed too late", -s),
            "enable NTP on this machine: timedatectl set-ntp true",
        );
        return s3;
    }
    w.pass("clock", detail);
    s3
}

/// Which S3 server answers at the endpoint: advice that only holds for MinIO (policies named by
/// groups, `claim_name`) is worded for MinIO only.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ServerKind {
    MinIO,
    Ceph,
    Other(String),
    Unknown,
}

impl ServerKind {
    /// From the `Server` header (MinIO: `MinIO`; Ceph RGW: `Ceph Object Gateway (...)`) and, for RGW
    /// releases that send none, its `tx...` request ids.
    fn from_headers(server: Option<&str>, request_id: Option<&str>) -> ServerKind {
        match server.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) if s.to_ascii_lowercase().contains("minio") => ServerKind::MinIO,
            Some(s) if s.to_ascii_lowercase().contains("ceph") || s.to_ascii_lowercase().contains("rgw") => {
                ServerKind::Ceph
            }
            Some(s) => ServerKind::Other(s.to_string()),
            None if request_id.is_some_and(|id| id.starts_with("tx0")) => ServerKind::Ceph,
            None => ServerKind::Unknown,
        }
    }

    fn name(&self) -> String {
        match self {
            ServerKind::MinIO => "MinIO".into(),
            ServerKind::Ceph => "Ceph RGW".into(),
            ServerKind::Other(_) | ServerKind::Unknown => "the S3 server".into(),
        }
    }

    fn describe(&self) -> String {
        match self {
            ServerKind::MinIO => "MinIO (Server: MinIO)".into(),
            ServerKind::Ceph => "Ceph RADOS Gateway".into(),
            ServerKind::Other(s) => format!("an S3 server that calls itself {s:?}"),
            ServerKind::Unknown => "an S3 server that does not name itself".into(),
        }
    }

    /// What to change so that the identity gets buckets.
    fn grant_advice(&self) -> String {
        match self {
            ServerKind::MinIO => "grant the user's groups a MinIO policy on the buckets they need".into(),
            _ => format!(
                "grant the role (role_arn) or the user's policy access to the buckets they need on {}, and name \
                 buckets the server does not list with the profile's `buckets`",
                self.name()
            ),
        }
    }
}

/// Seconds the S3 endpoint's `Date` is ahead of this machine, and which server it is.
async fn endpoint_probe(profile: &Profile, endpoint: &str) -> (Option<i64>, ServerKind) {
    let Ok(http) = login::http_client(profile) else { return (None, ServerKind::Unknown) };
    let Ok(Ok(resp)) = tokio::time::timeout(Duration::from_secs(10), http.get(endpoint).send()).await else {
        return (None, ServerKind::Unknown);
    };
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let kind = ServerKind::from_headers(header("server").as_deref(), header("x-amz-request-id").as_deref());
    (clock::skew(header("date").as_deref(), SystemTime::now()), kind)
}

fn groups(profile: &Profile, claims: &Map<String, Value>, w: &mut Walk) {
    let overage = claims.get("_claim_names").and_then(|n| n.get("groups")).is_some();
    let groups = claims.get("groups").and_then(Value::as_array).map(Vec::len);
    let roles = claims.get("roles").and_then(Value::as_array).map(Vec::len).unwrap_or(0);
    if overage {
        w.fail(
            "groups",
            "groups overage: the user is in more than 200 groups, so Azure AD left the groups claim out of the token \
             and put a reference (_claim_names) in its place; MinIO cannot map it to policies",
            "in the app registration, emit only the groups assigned to the application (Token configuration → groups \
             claim → \"Groups assigned to the application\"), or use app roles and MinIO's claim_name=roles",
        );
    } else if let Some(n) = groups {
        w.pass("groups", format!("the token names {n} group(s) and {roles} app role(s)"));
    } else if profile.role_arn.is_some() {
        w.pass("groups", "no groups claim; the profile uses role_arn (MinIO role policy), which does not need it");
    } else {
        w.add(
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

async fn buckets(s3: &S3ObjectClient, write_probe: bool, server: &ServerKind, named: &[String], w: &mut Walk) {
    // The profile's `buckets` (and `-o buckets=`) are shown by the mount whatever ListBuckets says
    // (Ceph RGW lists none for a federated user): they are probed too. Invalid ones were refused
    // when the profile was read.
    let named = BucketPath::parse_all(named.iter().map(String::as_str)).unwrap_or_default();
    let (listed, list_error) = match s3.list_buckets().await {
        Ok(n) => (n, None),
        Err(e) if named.is_empty() => {
            w.fail(
                "buckets",
                format!("ListBuckets failed: {e}"),
                "give the user's policies s3:ListAllMyBuckets, or name the buckets in the profile's `buckets`",
            );
            return;
        }
        Err(e) => (Vec::new(), Some(e)),
    };
    let targets = buckets_to_probe(&listed, &named);
    if targets.is_empty() {
        w.add(
            "buckets",
            Outcome::Warn,
            "ListBuckets shows no bucket: the mount would be empty",
            Some(server.grant_advice()),
        );
        return;
    }
    let shown: Vec<String> = targets
        .iter()
        .map(|t| {
            let path = match t.prefix.trim_end_matches('/') {
                "" => t.bucket.clone(),
                prefix => format!("{}/{prefix}", t.bucket),
            };
            if named.iter().any(|n| n.bucket == t.bucket) { format!("{path} (named)") } else { path }
        })
        .collect();
    let listing_failed =
        list_error.map(|e| format!("; ListBuckets failed ({e}), the named buckets are shown")).unwrap_or_default();
    w.pass("buckets", format!("{} bucket(s): {}{listing_failed}", targets.len(), shown.join(", ")));
    for BucketPath { bucket: b, prefix } in targets {
        let (list, first) = match s3.list_page(&b, &prefix, None).await {
            Ok(page) => ("list ✓".to_string(), page.objects.into_iter().next()),
            Err(e) => (format!("list ✗ ({e})"), None),
        };
        let read = read_probe(s3, &b, first.as_ref()).await;
        let write = if write_probe {
            write_probe_of(s3, &b, &prefix).await
        } else {
            "write not probed (--write-probe)".to_string()
        };
        w.pass(&format!("bucket:{b}"), format!("{list}, {read}, {write}"));
    }
}

/// The buckets the mount's root would show, in the order doctor probes them: the named ones (with
/// their prefixes; a bucket named twice once), then those ListBuckets returned that are not named.
fn buckets_to_probe(listed: &[String], named: &[BucketPath]) -> Vec<BucketPath> {
    let mut targets: Vec<BucketPath> = Vec::new();
    for n in named {
        if !targets.iter().any(|t| t.bucket == n.bucket) {
            targets.push(n.clone());
        }
    }
    for b in listed {
        if !targets.iter().any(|t| &t.bucket == b) {
            targets.push(BucketPath { bucket: b.clone(), prefix: String::new() });
        }
    }
    targets
}

/// Reads a real object (the first of the listing): a HEAD of a missing key answered 404 says
/// nothing about GetObject (some servers answer it whatever the policy says).
async fn read_probe(s3: &S3ObjectClient, bucket: &str, first: Option<&ssofs::object::ObjectInfo>) -> String {
    let Some(object) = first else { return "read unknown (no object to read at the top of the bucket)".into() };
    let result = if object.size == 0 {
        s3.head(bucket, &object.key).await.map(|_| ())
    } else {
        s3.get_range(bucket, &object.key, 0..1, None).await.map(|_| ())
    };
    match result {
        Ok(()) => format!("read ✓ ({})", object.key),
        Err(e) => format!("read ✗ ({}: {e})", object.key),
    }
}

/// Writes through the mount's own upload path, a staged file: one PutObject, and a two-part
/// multipart upload (16 MiB parts, so 16 MiB + 1 byte, sparse here), then deletes both.
/// `prefix` (empty, or ending in `/`): where a named `bucket/prefix` lets the user write.
async fn write_probe_of(s3: &S3ObjectClient, bucket: &str, prefix: &str) -> String {
    let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let key = format!("{prefix}.ssofs-doctor-probe-{}-{stamp}", std::process::id());
    let multipart_key = format!("{key}-multipart");
    let staged = |size: u64| -> std::io::Result<std::fs::File> {
        let dir = ssofs::untrusted::private_dir(
            &std::env::temp_dir().join(format!("ssofs-doctor-{}", ssofs::untrusted::euid())),
        )
        .map_err(std::io::Error::other)?;
        let path = dir.join(format!("probe-{stamp}-{size}"));
        let mut f = ssofs::untrusted::create_new(&path, 0o600)?;
        let _ = std::fs::remove_file(&path);
        std::io::Write::write_all(&mut f, b"ssofs doctor write probe\n")?;
        f.set_len(size.max(25))?;
        Ok(f)
    };
    let (small, large) = match (staged(25), staged((16 << 20) + 1)) {
        (Ok(s), Ok(l)) => (s, l),
        (Err(e), _) | (_, Err(e)) => return format!("write not probed (cannot stage a probe file: {e})"),
    };
    let put = s3.put_file(bucket, &key, &small, &Default::default()).await;
    let multipart = match &put {
        Ok(_) => Some(s3.put_file(bucket, &multipart_key, &large, &Default::default()).await),
        Err(_) => None,
    };
    let mut leftovers = Vec::new();
    for (k, written) in [(&key, put.is_ok()), (&multipart_key, multipart.as_ref().is_some_and(|m| m.is_ok()))] {
        if written && let Err(e) = s3.delete(bucket, k).await {
            leftovers.push(format!("{k} ({e})"));
        }
    }
    let cleanup = if leftovers.is_empty() {
        String::new()
    } else {
        format!("; delete ✗: remove {} by hand", leftovers.join(", "))
    };
    match (put, multipart) {
        (Err(e), _) => format!("write ✗ (PutObject of a staged file: {e})"),
        (Ok(_), Some(Err(e))) => format!("write ✗ (multipart upload: {e}; a single PutObject worked){cleanup}"),
        _ => format!("write ✓ (PutObject and a 2-part multipart upload of staged files){cleanup}"),
    }
}

fn fuse_ready(options: &MountOptions, w: &mut Walk) {
    let root = unsafe { libc::geteuid() } == 0;
    let mut problems: Vec<(String, String)> = Vec::new();
    let dev = Path::new("/dev/fuse");
    if !dev.exists() {
        problems.push((
            "/dev/fuse is missing".into(),
            "load the fuse module (`modprobe fuse`); in a container pass --device /dev/fuse".into(),
        ));
    } else if !accessible(dev, libc::R_OK | libc::W_OK) && !root {
        problems.push((
            "/dev/fuse is not readable and writable for this user".into(),
            "fusermount3 opens it for you when it is setuid root; check `ls -l /usr/bin/fusermount3`".into(),
        ));
    }
    let fusermount = which("fusermount3");
    match &fusermount {
        None => problems.push((
            "fusermount3 is not installed".into(),
            "install fuse3 (apt install fuse3 / dnf install fuse3)".into(),
        )),
        Some(p) if !root => {
            use std::os::unix::fs::PermissionsExt;
            let setuid = std::fs::metadata(p).map(|m| m.permissions().mode() & 0o4000 != 0).unwrap_or(false);
            if !setuid {
                problems.push((
                    format!("{} is not setuid root, so users cannot mount", p.display()),
                    format!("chmod u+s {}", p.display()),
                ));
            }
        }
        Some(_) => {}
    }
    if (options.allow_other || options.allow_root) && !root {
        let conf = std::fs::read_to_string("/etc/fuse.conf").unwrap_or_default();
        let allowed = conf.lines().map(str::trim).any(|l| l == "user_allow_other");
        if !allowed {
            problems.push((
                "allow_other/allow_root is asked for, but /etc/fuse.conf does not say user_allow_other".into(),
                "add the line user_allow_other to /etc/fuse.conf (or mount as root)".into(),
            ));
        }
    }
    if problems.is_empty() {
        w.pass(
            "fuse",
            format!(
                "/dev/fuse present, {}",
                fusermount.map(|p| format!("{} installed", p.display())).unwrap_or_default()
            ),
        );
    } else {
        let (detail, fix): (Vec<String>, Vec<String>) = problems.into_iter().unzip();
        w.fail("fuse", detail.join("; "), fix.join("; "));
    }
}

fn accessible(path: &Path, mode: libc::c_int) -> bool {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else { return false };
    // SAFETY: access reads a NUL-terminated path we own.
    unsafe { libc::access(c.as_ptr(), mode) == 0 }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into());
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

impl Report {
    pub fn text(&self) -> String {
        let mut out = format!("ssofs doctor: profile {}\n", self.profile.as_deref().unwrap_or("(none)"));
        for c in &self.checks {
            let mark = match c.outcome {
                Outcome::Pass => "✓",
                Outcome::Warn => "!",
                Outcome::Fail => "✗",
                Outcome::Skip => "-",
            };
            out.push_str(&format!("{mark} {}: {}\n", c.check, c.detail));
            if let Some(fix) = &c.fix {
                out.push_str(&format!("    fix: {fix}\n"));
            }
        }
        match &self.diagnosis {
            None => out.push_str("All checks passed.\n"),
            Some(d) => out.push_str(&format!("Diagnosis: {d} (the first ✗ above).\n")),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let mut w = Walk { checks: Vec::new() };
            groups(&profile, claims.as_object().unwrap(), &mut w);
            w.checks.remove(0)
        };
        assert_eq!(run(serde_json::json!({"groups": ["a"]})).outcome, Outcome::Pass);
        let over = run(serde_json::json!({"_claim_names": {"groups": "src1"}}));
        assert_eq!(over.outcome, Outcome::Fail);
        assert!(over.detail.contains("overage"));
        let none = run(serde_json::json!({}));
        assert_eq!(none.outcome, Outcome::Warn);
        assert!(none.fix.unwrap().contains("emit groups claim"));
    }

    /// Ceph RGW lists no bucket for a federated user: the buckets the profile names are what the
    /// mount shows, so they are what doctor probes (it said "the mount would be empty" and probed
    /// nothing).
    #[test]
    fn named_buckets_are_probed_even_when_listbuckets_shows_none() {
        let named = BucketPath::parse_all(["analytics-raw", "team/projects/a", "analytics-raw/x"]).unwrap();
        let shown =
            |t: Vec<BucketPath>| t.into_iter().map(|b| format!("{}:{}", b.bucket, b.prefix)).collect::<Vec<_>>();
        assert_eq!(shown(buckets_to_probe(&[], &named)), ["analytics-raw:", "team:projects/a/"]);
        let listed = ["team".to_string(), "other".to_string()];
        assert_eq!(shown(buckets_to_probe(&listed, &named)), ["analytics-raw:", "team:projects/a/", "other:"]);
        assert_eq!(shown(buckets_to_probe(&listed, &[])), ["team:", "other:"]);
        assert!(buckets_to_probe(&[], &[]).is_empty());
    }

    #[test]
    fn report_text_marks_and_diagnosis() {
        let r = Report {
            profile: Some("p".into()),
            ok: false,
            diagnosis: Some("clock".into()),
            checks: vec![
                Check { check: "config".into(), outcome: Outcome::Pass, detail: "fine".into(), fix: None },
                Check { check: "clock".into(), outcome: Outcome::Fail, detail: "off".into(), fix: Some("ntp".into()) },
            ],
        };
        let t = r.text();
        assert!(t.contains("✓ config: fine") && t.contains("✗ clock: off") && t.contains("fix: ntp"), "{t}");
        assert!(t.contains("Diagnosis: clock"), "{t}");
    }
}
