//! One TLS trust rule for every client ssofs runs (identity provider, STS, S3): the system's roots
//! plus every certificate in the profile's `ca_file`. Companies often sign their IdP and their S3
//! with different private CAs; a `ca_file` holding both must work for all three (it once did not:
//! the IdP client read only the first certificate, STS trusted only the file).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

/// The DER certificates of a PEM bundle; an unreadable file or one without certificates is an
/// error naming it.
pub fn ca_file_certificates(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let pem = std::fs::read(path).map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
    let certs: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("ca_file {} is not a PEM bundle: {e}", path.display()))?
        .into_iter()
        .map(|c| c.as_ref().to_vec())
        .collect();
    if certs.is_empty() {
        return Err(format!("ca_file {} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// The system's root certificates (empty when none are found: then the bundled Mozilla roots),
/// read once per process: reading and decoding the store was among a multi-user mount's top
/// symbols while 49 users made their first access at once (as the SDK, which caches them too).
pub fn system_roots() -> &'static [Vec<u8>] {
    static ROOTS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
        rustls_native_certs::load_native_certs().certs.into_iter().map(|c| c.as_ref().to_vec()).collect()
    });
    &ROOTS
}

/// One client per trust rule (`ca_file`, `insecure_tls`) for the whole process. Every identity of
/// a multi-user mount shares it: a connection carries no identity (each request is signed or
/// authorised by its user's own credentials), and a client built per identity set up TLS from the
/// CA store again for each: 10-12 ms of CPU per user's first access while 49 users signed in at
/// once, and the reader already active waited for a core (its p99 8-19x its idle p99).
pub struct PerTrustRule<T> {
    clients: LazyLock<Mutex<HashMap<TrustRule, T>>>,
}

/// `ca_file` and `insecure_tls`: what a client's TLS setup depends on.
type TrustRule = (Option<PathBuf>, bool);

impl<T: Clone> PerTrustRule<T> {
    pub const fn new() -> Self {
        PerTrustRule { clients: LazyLock::new(Default::default) }
    }

    /// The client for this rule, built by `build` the first time it is asked for.
    pub fn get_or_build<E>(
        &self,
        ca_file: Option<&Path>,
        insecure_tls: bool,
        build: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let key = (ca_file.map(Path::to_path_buf), insecure_tls);
        let mut clients = self.clients.lock().unwrap();
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = build()?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}

impl<T: Clone> Default for PerTrustRule<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Applies the rule to a reqwest client: system roots (else reqwest's bundled ones) plus every
/// certificate of `ca_file`.
pub fn reqwest_trust(
    mut builder: reqwest::ClientBuilder,
    ca_file: Option<&Path>,
) -> Result<reqwest::ClientBuilder, String> {
    let system = system_roots();
    if system.is_empty() {
        tracing::warn!("no system CA certificates found; using the bundled Mozilla roots");
    } else {
        builder = builder.tls_built_in_root_certs(false);
    }
    let extra = match ca_file {
        Some(path) => ca_file_certificates(path)?,
        None => Vec::new(),
    };
    for der in system.iter().chain(&extra) {
        match reqwest::Certificate::from_der(der) {
            Ok(cert) => builder = builder.add_root_certificate(cert),
            Err(e) => tracing::debug!(error = %e, "a root certificate was skipped"),
        }
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_certificate_of_a_bundle_is_read() {
        let dir = std::env::temp_dir().join(format!("ssofs-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bundle = dir.join("two.pem");
        let one = include_str!("../devstack/keys/tls-ca.pem");
        let two = include_str!("../devstack/keys/tls-s3-ca.pem");
        std::fs::write(&bundle, format!("{two}{one}")).unwrap();
        assert_eq!(ca_file_certificates(&bundle).unwrap().len(), 2);
        std::fs::write(&bundle, "not a certificate").unwrap();
        assert!(ca_file_certificates(&bundle).unwrap_err().contains("no PEM certificate"));
        assert!(ca_file_certificates(&dir.join("missing.pem")).unwrap_err().contains("cannot read ca_file"));
    }
}
