//! Settings of one devstack instance (the `ssofs-devstack up` flags).

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// Objects, `devstack.env` and `ssofs.toml` live here.
    pub state_dir: PathBuf,
    /// 0 = ephemeral.
    pub idp_port: u16,
    /// 0 = ephemeral. Serves S3 and STS.
    pub s3_port: u16,
    /// User signed in without asking (device codes approved as soon as they are polled, authorize
    /// requests without `login_hint`).
    pub auto_approve: Option<String>,
    pub id_token_lifetime: Duration,
    pub access_token_lifetime: Duration,
    pub refresh_token_lifetime: Duration,
    pub device_code_lifetime: Duration,
    /// Polling interval the device-code endpoint asks for (Azure: 5 s).
    pub device_code_interval: Duration,
    /// Devstack-only floor for STS DurationSeconds (MinIO's own floor is 900 s), so tests can make
    /// credentials expire quickly.
    pub sts_min_duration: Duration,
    /// MinIO `claim_name`: the token claim whose values name IAM policies.
    pub sts_claim_name: String,
    /// Azure's "Allow public client flows" toggle; off makes device code fail with AADSTS7000218.
    pub public_client_flows: bool,
    /// Serve HTTPS with the checked-in test certificate (clients trust `tls::CA_PEM` via `ca_file`).
    pub tls: bool,
    /// With `tls`: the S3/STS endpoint presents a certificate of a second CA (`keys/tls-s3-*`), so
    /// the identity provider and S3 are signed by different CAs and `ca_file` holds both.
    pub tls_two_cas: bool,
    /// Pads every ID token with a claim of this many bytes: tokens as large as those of users in
    /// many groups with many optional claims (tests use 16 KB).
    pub id_token_padding: usize,
}

impl Config {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Config {
            state_dir: state_dir.into(),
            idp_port: 0,
            s3_port: 0,
            auto_approve: None,
            id_token_lifetime: Duration::from_secs(3600),
            access_token_lifetime: Duration::from_secs(3600),
            refresh_token_lifetime: Duration::from_secs(90 * 24 * 3600),
            device_code_lifetime: Duration::from_secs(900),
            device_code_interval: Duration::from_secs(5),
            sts_min_duration: Duration::from_secs(900),
            sts_claim_name: "groups".to_string(),
            id_token_padding: 0,
            public_client_flows: true,
            tls: false,
            tls_two_cas: false,
        }
    }
}
