//! The mount process's Prometheus recorder (metrics-exporter-prometheus): installed once, at the
//! start of a mount, so every [`super::series`] call from then on is counted; rendered for the
//! control socket's `metrics` command and, with `-o metrics=ADDR`, served over HTTP by the crate's
//! own listener (any GET path, `/metrics` included).

use std::net::SocketAddr;
use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

use super::series;

/// How often histograms are compacted when nothing scrapes them.
const UPKEEP: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    #[error("-o metrics={addr}: cannot serve metrics there ({source}); choose a free port on 127.0.0.1 or [::1]")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: BuildError,
    },
    #[error("cannot set up the metrics recorder: {0}")]
    Recorder(#[source] BuildError),
    #[error("-o metrics={0}: this process already counts for another mount, which has no metrics listener")]
    AlreadyInstalled(SocketAddr),
}

/// The one recorder of this process (a process serves one mount; tests may run several in one).
static INSTALLED: std::sync::OnceLock<Exporter> = std::sync::OnceLock::new();

/// The installed recorder: renders the Prometheus text of everything counted so far.
#[derive(Clone)]
pub struct Exporter {
    handle: PrometheusHandle,
}

impl Exporter {
    /// Installs the process's recorder (once per process) and, when `http` is given, serves the
    /// metrics there from `rt`. Latency series get buckets (a histogram), not quantiles.
    pub fn install(rt: &tokio::runtime::Runtime, http: Option<SocketAddr>) -> Result<Exporter, ExporterError> {
        if let Some(installed) = INSTALLED.get() {
            return match http {
                Some(addr) => Err(ExporterError::AlreadyInstalled(addr)),
                None => Ok(installed.clone()),
            };
        }
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(series::S3_LATENCY.into()), series::LATENCY_BUCKETS)
            .map_err(ExporterError::Recorder)?;
        let _guard = rt.enter();
        let handle = match http {
            Some(addr) => {
                let (recorder, serving) = builder
                    .with_http_listener(addr)
                    .build()
                    .map_err(|source| ExporterError::Listen { addr, source })?;
                let handle = recorder.handle();
                ::metrics::set_global_recorder(recorder)
                    .map_err(|e| ExporterError::Recorder(BuildError::FailedToSetGlobalRecorder(e)))?;
                rt.spawn(async move {
                    if let Err(e) = serving.await {
                        tracing::warn!(error = ?e, "the metrics listener stopped");
                    }
                });
                handle
            }
            None => {
                let handle = builder.install_recorder().map_err(ExporterError::Recorder)?;
                let upkeep = handle.clone();
                rt.spawn(async move {
                    loop {
                        tokio::time::sleep(UPKEEP).await;
                        upkeep.run_upkeep();
                    }
                });
                handle
            }
        };
        series::describe();
        series::resolve_hot();
        Ok(INSTALLED.get_or_init(|| Exporter { handle }).clone())
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}
