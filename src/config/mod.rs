//! Profiles: where ssofs finds its identity provider, client id and S3 endpoint.
//!
//! Files are read in this order, later ones overriding earlier ones key by key:
//! `/etc/ssofs/config.toml` (system), `$XDG_CONFIG_HOME/ssofs/config.toml` (user), then the file named
//! by `--config` or `SSOFS_CONFIG`. Command-line flags override all of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}, line {line}: {message}")]
    Parse { path: PathBuf, line: usize, message: String },
    #[error(
        "no profile named {0:?}; profiles found: {1}. Add [profiles.{0}] to a config file or pick another with --profile"
    )]
    UnknownProfile(String, String),
    #[error("no profile chosen and several exist ({0}); pass --profile or set default_profile")]
    Ambiguous(String),
    #[error(
        "no ssofs configuration found (looked in {0}). Create one, or run `ssofs-devstack up` and use its ssofs.toml with --config"
    )]
    Missing(String),
    #[error("profile {profile:?}: {message}")]
    Invalid { profile: String, message: String },
}

/// Which token is handed to MinIO's STS. Never a Microsoft Graph access token: third parties cannot
/// verify those.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StsToken {
    #[default]
    IdToken,
    AccessToken,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    issuer: Option<String>,
    tenant: Option<String>,
    client_id: Option<String>,
    scopes: Option<Vec<String>>,
    endpoint: Option<String>,
    role_arn: Option<String>,
    duration_seconds: Option<u64>,
    token: Option<StsToken>,
    ca_file: Option<PathBuf>,
    accept_v1_issuer: Option<bool>,
    insecure_tls: Option<bool>,
    op_timeout: Option<f64>,
    buckets: Option<Vec<String>>,
    checksums: Option<Checksums>,
}

/// How uploads carry their integrity check (profile key `checksums`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Checksums {
    /// Content-MD5 on every PutObject and part, which every S3 server verifies (the default).
    #[default]
    Md5,
    /// A CRC32C trailer (aws-chunked), for servers that support flexible checksums (AWS, MinIO,
    /// Ceph 18 and later); servers before them refuse every upload.
    Crc32c,
    /// No checksum beyond TLS and SigV4's.
    Off,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    default_profile: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, ProfileFile>,
}

/// A resolved profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    /// OpenID issuer URL (e.g. `https://login.microsoftonline.com/{tenant}/v2.0`).
    pub issuer: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    /// S3 and STS endpoint.
    pub endpoint: Option<String>,
    pub role_arn: Option<String>,
    pub duration_seconds: Option<u64>,
    pub token: StsToken,
    pub ca_file: Option<PathBuf>,
    /// Also accept ID tokens from Azure's v1 issuer `https://sts.windows.net/{tid}/` (same tenant).
    pub accept_v1_issuer: bool,
    /// Skip TLS certificate verification for the IdP, STS and S3. Only when set explicitly; every
    /// start warns about it.
    pub insecure_tls: bool,
    /// How long one S3 operation may take, retries included, before the caller gets an error.
    pub op_timeout: Option<Duration>,
    /// Buckets (`name` or `name/prefix`) shown at the root besides what ListBuckets returns.
    pub buckets: Vec<String>,
    /// How uploads carry their integrity check.
    pub checksums: Checksums,
}

/// Where configuration comes from; tests point these at temp files.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub system: Option<PathBuf>,
    pub user: Option<PathBuf>,
    pub extra: Option<PathBuf>,
}

impl Sources {
    /// The standard places, plus `--config`/`SSOFS_CONFIG`.
    pub fn standard(extra: Option<PathBuf>) -> Self {
        let user = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .map(|d| d.join("ssofs/config.toml"));
        let extra = extra.or_else(|| std::env::var_os("SSOFS_CONFIG").filter(|v| !v.is_empty()).map(PathBuf::from));
        Sources { system: Some(PathBuf::from("/etc/ssofs/config.toml")), user, extra }
    }
}

const AZURE_AUTHORITY: &str = "https://login.microsoftonline.com";
const DEFAULT_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Values given on the command line; they win over every file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub issuer: Option<String>,
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    pub endpoint: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub accept_v1_issuer: Option<bool>,
}

/// Loads and merges the configuration, then picks a profile (`wanted`, else `default_profile`, else
/// the only one).
pub fn load_profile(sources: &Sources, wanted: Option<&str>) -> Result<Profile, ConfigError> {
    load_profile_with(sources, wanted, &Overrides::default())
}

/// [`load_profile`], then the command line's values on top. A `--tenant` given without `--issuer`
/// replaces the file's issuer too, so the two never contradict each other.
pub fn load_profile_with(
    sources: &Sources,
    wanted: Option<&str>,
    overrides: &Overrides,
) -> Result<Profile, ConfigError> {
    let mut default_profile = None;
    let mut profiles: BTreeMap<String, ProfileFile> = BTreeMap::new();
    let mut found_any = false;
    // The extra file was asked for explicitly: it must exist. The standard places may not.
    let files = [(&sources.system, false), (&sources.user, false), (&sources.extra, true)];
    for (path, required) in files {
        let Some(path) = path else { continue };
        let Some(file) = read_file(path, required)? else { continue };
        found_any = true;
        if file.default_profile.is_some() {
            default_profile = file.default_profile;
        }
        for (name, p) in file.profiles {
            let merged = merge(profiles.remove(&name).unwrap_or_default(), p);
            profiles.insert(name, merged);
        }
    }
    if !found_any {
        let looked: Vec<String> = [&sources.system, &sources.user, &sources.extra]
            .into_iter()
            .flatten()
            .map(|p| p.display().to_string())
            .collect();
        return Err(ConfigError::Missing(looked.join(", ")));
    }
    let names = || profiles.keys().cloned().collect::<Vec<_>>().join(", ");
    let name = match wanted.map(str::to_string).or(default_profile) {
        Some(n) => n,
        None if profiles.len() == 1 => profiles.keys().next().cloned().unwrap_or_default(),
        None => return Err(ConfigError::Ambiguous(names())),
    };
    let Some(mut p) = profiles.get(&name).cloned() else {
        return Err(ConfigError::UnknownProfile(name, names()));
    };
    if overrides.tenant.is_some() && overrides.issuer.is_none() {
        p.issuer = None;
    }
    let cli = ProfileFile {
        issuer: overrides.issuer.clone(),
        tenant: overrides.tenant.clone(),
        client_id: overrides.client_id.clone(),
        endpoint: overrides.endpoint.clone(),
        ca_file: overrides.ca_file.clone(),
        accept_v1_issuer: overrides.accept_v1_issuer,
        ..ProfileFile::default()
    };
    resolve(name, merge(p, cli))
}

fn read_file(path: &Path, required: bool) -> Result<Option<ConfigFile>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(source) => return Err(ConfigError::Read { path: path.to_path_buf(), source }),
    };
    toml::from_str(&text).map(Some).map_err(|e| {
        let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1).unwrap_or(0);
        ConfigError::Parse { path: path.to_path_buf(), line, message: e.message().to_string() }
    })
}

fn merge(base: ProfileFile, over: ProfileFile) -> ProfileFile {
    ProfileFile {
        issuer: over.issuer.or(base.issuer),
        tenant: over.tenant.or(base.tenant),
        client_id: over.client_id.or(base.client_id),
        scopes: over.scopes.or(base.scopes),
        endpoint: over.endpoint.or(base.endpoint),
        role_arn: over.role_arn.or(base.role_arn),
        duration_seconds: over.duration_seconds.or(base.duration_seconds),
        token: over.token.or(base.token),
        ca_file: over.ca_file.or(base.ca_file),
        accept_v1_issuer: over.accept_v1_issuer.or(base.accept_v1_issuer),
        insecure_tls: over.insecure_tls.or(base.insecure_tls),
        op_timeout: over.op_timeout.or(base.op_timeout),
        buckets: over.buckets.or(base.buckets),
        checksums: over.checksums.or(base.checksums),
    }
}

/// An endpoint URL must not carry a user name or password (`https://user:pass@host`): ssofs takes
/// no static keys, and a secret there would reach logs and `ssofs doctor`. The message shows the URL
/// without them.
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let Some((scheme, rest)) = endpoint.split_once("://") else { return Ok(()) };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if let Some((_, host)) = authority.rsplit_once('@') {
        return Err(format!(
            "endpoint {scheme}://{host}/... has a user name or password in it; remove them (`{scheme}://{host}`): ssofs \
             takes no static keys, your S3 credentials come from your sign-in"
        ));
    }
    Ok(())
}

fn resolve(name: String, p: ProfileFile) -> Result<Profile, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid { profile: name.clone(), message };
    let issuer = match (p.issuer, p.tenant) {
        (Some(i), _) => i,
        (None, Some(t)) => format!("{AZURE_AUTHORITY}/{t}/v2.0"),
        (None, None) => {
            return Err(invalid(
                "set `issuer` (the OpenID issuer URL) or `tenant` (an Azure tenant id or domain)".into(),
            ));
        }
    };
    if !(issuer.starts_with("https://")
        || issuer.starts_with("http://127.0.0.1")
        || issuer.starts_with("http://localhost"))
    {
        return Err(invalid(format!("issuer {issuer:?} must be an https:// URL (plain http only on localhost)")));
    }
    let client_id = p
        .client_id
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| invalid("set `client_id` (the application (client) id of the app registration)".into()))?;
    let scopes = p.scopes.unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect());
    if !scopes.iter().any(|s| s == "openid") {
        return Err(invalid("`scopes` must include \"openid\"".into()));
    }
    if let Some(endpoint) = &p.endpoint {
        check_endpoint(endpoint).map_err(invalid)?;
    }
    let buckets = p.buckets.unwrap_or_default();
    crate::fs::named::BucketPath::parse_all(buckets.iter().map(String::as_str))
        .map_err(|e| invalid(format!("buckets: {e}")))?;
    let op_timeout = match p.op_timeout {
        None => None,
        Some(s) if s.is_finite() && (1.0..=3600.0).contains(&s) => Some(Duration::from_secs_f64(s)),
        Some(s) => return Err(invalid(format!("op_timeout = {s}: expected seconds between 1 and 3600"))),
    };
    Ok(Profile {
        name,
        issuer: issuer.trim_end_matches('/').to_string(),
        client_id,
        scopes,
        endpoint: p.endpoint,
        role_arn: p.role_arn,
        duration_seconds: p.duration_seconds,
        token: p.token.unwrap_or_default(),
        ca_file: p.ca_file,
        accept_v1_issuer: p.accept_v1_issuer.unwrap_or(false),
        insecure_tls: p.insecure_tls.unwrap_or(false),
        op_timeout,
        buckets,
        checksums: p.checksums.unwrap_or_default(),
    })
}

pub mod write;

#[cfg(test)]
mod tests;
