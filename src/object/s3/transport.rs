//! How the client reaches its endpoint: the one trust rule (system roots plus `ca_file`, or
//! `insecure_tls` when asked), and how long one request may take.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_s3::config::SharedHttpClient;

use crate::config::{Checksums, Profile};

/// How the client reaches the endpoint: which CAs it trusts and how long one request may take.
#[derive(Debug, Clone)]
pub struct Transport {
    /// Extra CA certificate(s) (PEM) trusted besides the system roots.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate: only on the profile's or mount's explicit `insecure_tls`.
    pub insecure_tls: bool,
    /// Longest time for one request attempt, and for one operation with the SDK's own retries.
    pub op_timeout: Duration,
    /// How uploads carry their integrity check.
    pub checksums: Checksums,
}

impl Transport {
    pub fn for_profile(profile: &Profile) -> Self {
        Transport {
            ca_file: profile.ca_file.clone(),
            insecure_tls: profile.insecure_tls,
            op_timeout: crate::object::retry::deadline(profile),
            checksums: profile.checksums,
        }
    }
}

impl Transport {
    /// The process's SDK HTTP client for this transport's trust rule, shared by every identity
    /// (`PerTrustRule`); the SDK keeps one connector per timeout setting inside a client, so
    /// identities share the connection pool too.
    pub(super) fn http_client(&self, connect_timeout: Duration) -> Result<SharedHttpClient, String> {
        static CLIENTS: crate::trust::PerTrustRule<SharedHttpClient> = crate::trust::PerTrustRule::new();
        CLIENTS.get_or_build(self.ca_file.as_deref(), self.insecure_tls, || match &self.ca_file {
            _ if self.insecure_tls => super::super::insecure_http::client(connect_timeout),
            Some(ca_file) => trusting(ca_file),
            None => Ok(system_trust()),
        })
    }
}

/// The client the SDK would build by default (its TLS provider, the system roots, a proxy from
/// `HTTPS_PROXY`/`NO_PROXY`), built once here instead of once per SDK client.
fn system_trust() -> SharedHttpClient {
    use aws_smithy_http_client::{Builder, ConnectorBuilder, proxy::ProxyConfig, tls};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// The SDK's own HTTP client, with the one trust rule (trust.rs): the system roots plus every
/// certificate of `ca_file`.
fn trusting(ca_file: &Path) -> Result<SharedHttpClient, String> {
    use aws_smithy_http_client::tls;
    let mut trust = tls::TrustStore::default().with_native_roots(true);
    for der in crate::trust::ca_file_certificates(ca_file)? {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
        let pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"));
        trust = trust.with_pem_certificate(pem.into_bytes());
    }
    let context = tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| format!("ca_file {}: {e}", ca_file.display()))?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
        .tls_context(context)
        .build_https())
}
