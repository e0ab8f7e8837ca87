//! Which S3 server answers at the endpoint, and its clock.

use std::time::{Duration, SystemTime};

use ssofs::config::Profile;
use ssofs::identity::{clock, login};

/// Which S3 server answers at the endpoint: advice that only holds for MinIO (policies named by
/// groups, `claim_name`) is worded for MinIO only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerKind {
    MinIO,
    Ceph,
    Other(String),
    Unknown,
}

impl ServerKind {
    /// From the `Server` header (MinIO: `MinIO`; Ceph RGW: `Ceph Object Gateway (...)`) and, for RGW
    /// releases that send none, its `tx...` request ids.
    pub fn from_headers(server: Option<&str>, request_id: Option<&str>) -> ServerKind {
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

    pub fn name(&self) -> String {
        match self {
            ServerKind::MinIO => "MinIO".into(),
            ServerKind::Ceph => "Ceph RGW".into(),
            ServerKind::Other(_) | ServerKind::Unknown => "the S3 server".into(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            ServerKind::MinIO => "MinIO (Server: MinIO)".into(),
            ServerKind::Ceph => "Ceph RADOS Gateway".into(),
            ServerKind::Other(s) => format!("an S3 server that calls itself {s:?}"),
            ServerKind::Unknown => "an S3 server that does not name itself".into(),
        }
    }

    /// What to change so that the identity gets buckets.
    pub fn grant_advice(&self) -> String {
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
pub async fn endpoint_probe(profile: &Profile, endpoint: &str) -> (Option<i64>, ServerKind) {
    let Ok(http) = login::http_client(profile) else { return (None, ServerKind::Unknown) };
    let Ok(Ok(resp)) = tokio::time::timeout(Duration::from_secs(10), http.get(endpoint).send()).await else {
        return (None, ServerKind::Unknown);
    };
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let kind = ServerKind::from_headers(header("server").as_deref(), header("x-amz-request-id").as_deref());
    (clock::skew(header("date").as_deref(), SystemTime::now()), kind)
}
