//! Embedded stand-ins for Azure AD (an OpenID provider shaped like Entra ID v2) and MinIO (S3 with
//! AssumeRoleWithWebIdentity STS and IAM policies), for the ssofs demo and tests.
//!
//! [`start`] binds both servers on 127.0.0.1, seeds the brief's scenario, writes `devstack.env` and
//! `ssofs.toml` into the state directory and returns a [`Running`] handle.

pub mod config;
pub mod control;
pub mod faults;
pub mod idp;
pub mod keys;
pub mod s3;
pub mod scenario;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::response::IntoResponse;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::Config;

use s3::auth::{Iam, MinioAuth};
use s3::iam::Policy;
use s3::server::{Front, RequestLog};
use s3::store::Store;
use s3::sts::{Sts, StsConfig};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot use state directory {path}: {source}")]
    StateDir { path: PathBuf, source: std::io::Error },
    #[error("cannot listen on 127.0.0.1:{port}: {source} (is another devstack running? pass another port or 0)")]
    Bind { port: u16, source: std::io::Error },
}

/// A running devstack. Dropping it does not stop the servers; call [`Running::shutdown`].
pub struct Running {
    /// `http://127.0.0.1:PORT` of the identity provider.
    pub idp_url: String,
    /// Issuer of tokens for the tenant: `{idp_url}/{TENANT_ID}/v2.0`.
    pub issuer: String,
    /// S3 and STS endpoint.
    pub s3_endpoint: String,
    /// Base URL of the `/_devstack` control API.
    pub control_url: String,
    pub env_file: PathBuf,
    pub profile_file: PathBuf,
    /// In TLS mode, the test CA's certificate, for clients' `ca_file`.
    pub ca_file: Option<PathBuf>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting connections, lets in-flight requests finish, and waits for both servers.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }

    /// The one-line summary printed by `ssofs-devstack up`.
    pub fn summary(&self) -> String {
        format!(
            "devstack ready: issuer {} | S3/STS {} | control {} | env {}",
            self.issuer,
            self.s3_endpoint,
            self.control_url,
            self.env_file.display()
        )
    }
}

pub async fn start(cfg: Config) -> Result<Running, StartError> {
    let state_dir = cfg.state_dir.clone();
    let state_err = |source| StartError::StateDir { path: state_dir.clone(), source };
    std::fs::create_dir_all(&state_dir).map_err(state_err)?;

    let idp_listener = bind(cfg.idp_port).await?;
    let s3_listener = bind(cfg.s3_port).await?;
    let scheme = if cfg.tls { "https" } else { "http" };
    let idp_url = format!("{scheme}://{}", idp_listener.local_addr().map_err(state_err)?);
    let s3_endpoint = format!("{scheme}://{}", s3_listener.local_addr().map_err(state_err)?);
    let control_url = format!("{idp_url}/_devstack");

    let idp = idp::Idp::new(&cfg, &idp_url);
    let issuer = idp.issuer();

    let policies: HashMap<String, Policy> = scenario::policies()
        .into_iter()
        .map(|(name, doc)| (name, Policy::parse(&doc.to_string()).expect("seeded policies are valid")))
        .collect();
    let iam = Arc::new(Iam::new(scenario::ROOT_ACCESS_KEY, scenario::ROOT_SECRET_KEY, policies));
    let sts = Arc::new(Sts::new(
        StsConfig {
            config_url: format!("{issuer}/.well-known/openid-configuration"),
            client_id: scenario::CLIENT_ID.to_string(),
            claim_name: cfg.sts_claim_name.clone(),
            min_duration: cfg.sts_min_duration,
            role_arn: scenario::ROLE_ARN.to_string(),
            role_policy: scenario::ROLE_POLICY.to_string(),
            ca_pem: cfg.tls.then_some(tls::CA_PEM),
        },
        iam.clone(),
    ));
    let store = Store::open(&state_dir.join("s3"), Arc::new(MinioAuth(iam.clone()))).map_err(state_err)?;
    seed(&store).map_err(state_err)?;
    let mut builder = s3s::service::S3ServiceBuilder::new(store.clone());
    builder.set_auth(MinioAuth(iam.clone()));
    builder.set_access(MinioAuth(iam.clone()));
    let log = Arc::new(RequestLog::default());
    let faults = Arc::new(faults::Faults::default());
    let front = Arc::new(Front { s3: builder.build(), sts: sts.clone(), log: log.clone(), faults: faults.clone() });

    // The IdP "goes down" (503) on request; the control API below stays reachable.
    let idp_faults = faults.clone();
    let azure = idp.router().layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let down = idp_faults.idp_down.load(std::sync::atomic::Ordering::SeqCst);
            async move {
                if down {
                    return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "identity provider down (devstack fault)")
                        .into_response();
                }
                next.run(req).await
            }
        },
    ));
    let app = azure.nest("/_devstack", control::router(control::Control { idp: idp.clone(), iam, log, faults, store }));

    let (shutdown, rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let tls = cfg.tls.then(tls::acceptor);
    tasks.push(tokio::spawn(tls::serve(idp_listener, tls.clone(), rx.clone(), move || {
        hyper_util::service::TowerToHyperService::new(app.clone())
    })));
    let s3_tls = if cfg.tls && cfg.tls_two_cas { Some(tls::s3_acceptor()) } else { tls };
    tasks.push(tokio::spawn(tls::serve(s3_listener, s3_tls, rx, move || {
        let front = front.clone();
        hyper::service::service_fn(move |req| front.clone().handle(req))
    })));

    // Like MinIO at startup, STS reads the IdP's discovery document and keys once both are serving.
    sts.discover().await;

    let running = Running {
        idp_url,
        issuer,
        s3_endpoint,
        control_url,
        env_file: state_dir.join("devstack.env"),
        profile_file: state_dir.join("ssofs.toml"),
        ca_file: cfg.tls.then(|| state_dir.join("ca.pem")),
        shutdown,
        tasks,
    };
    if let Some(ca) = &running.ca_file {
        // With two CAs, S3's comes first: a client that reads only the first certificate of a
        // ca_file cannot reach the identity provider.
        let pem = if cfg.tls_two_cas { format!("{}{}", tls::S3_CA_PEM, tls::CA_PEM) } else { tls::CA_PEM.to_string() };
        std::fs::write(ca, pem).map_err(state_err)?;
    }
    write_files(&running).map_err(state_err)?;
    Ok(running)
}

async fn bind(port: u16) -> Result<TcpListener, StartError> {
    TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|source| StartError::Bind { port, source })
}

/// Seeds buckets that do not exist yet, so objects users changed survive a restart.
fn seed(store: &Store) -> std::io::Result<()> {
    let existing = store.bucket_names();
    for (bucket, objects) in scenario::seed_objects() {
        if existing.iter().any(|b| b == bucket) {
            continue;
        }
        store.ensure_bucket(bucket)?;
        for (key, body) in objects {
            store.put_bytes(bucket, &key, &body)?;
        }
    }
    Ok(())
}

/// `devstack.env` (shell KEY=value) and `ssofs.toml` (a profile named `devstack`). Both hold only test
/// values; the env file carries the root keys, so it is written 0600.
fn write_files(r: &Running) -> std::io::Result<()> {
    let env = format!(
        "DEVSTACK_ISSUER={issuer}\nDEVSTACK_TENANT={tenant}\nDEVSTACK_CLIENT_ID={client}\nDEVSTACK_S3_ENDPOINT={s3}\n\
         DEVSTACK_ROOT_ACCESS_KEY={ak}\nDEVSTACK_ROOT_SECRET_KEY={sk}\nDEVSTACK_CONTROL_URL={control}\nDEVSTACK_IDP_URL={idp}\n\
         DEVSTACK_ROLE_ARN={role}\nDEVSTACK_PROFILE_FILE={profile}\n{ca}",
        issuer = r.issuer,
        tenant = scenario::TENANT_ID,
        client = scenario::CLIENT_ID,
        s3 = r.s3_endpoint,
        ak = scenario::ROOT_ACCESS_KEY,
        sk = scenario::ROOT_SECRET_KEY,
        control = r.control_url,
        idp = r.idp_url,
        role = scenario::ROLE_ARN,
        profile = r.profile_file.display(),
        ca = r.ca_file.as_ref().map(|p| format!("DEVSTACK_CA_FILE={}\n", p.display())).unwrap_or_default(),
    );
    write_private(&r.env_file, &env)?;
    let profile = format!(
        "# ssofs profile for the embedded devstack (written by ssofs-devstack up)\n\
         default_profile = \"devstack\"\n\n\
         [profiles.devstack]\n\
         issuer = \"{issuer}\"\n\
         client_id = \"{client}\"\n\
         scopes = [\"openid\", \"profile\", \"email\", \"offline_access\"]\n\
         endpoint = \"{s3}\"\n\
         token = \"id_token\"\n{ca}",
        issuer = r.issuer,
        client = scenario::CLIENT_ID,
        s3 = r.s3_endpoint,
        ca = r.ca_file.as_ref().map(|p| format!("ca_file = \"{}\"\n", p.display())).unwrap_or_default(),
    );
    write_private(&r.profile_file, &profile)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
