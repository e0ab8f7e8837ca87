//! What the control socket tells about the mount: the status report of its identities (built
//! from each filesystem's figures, its token store and its credentials) and the metrics text, with
//! the sign-in gauges brought up to date first.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use crate::fs::Fs;
use crate::identity::status::Status;
use crate::metrics::exporter::Exporter;
use crate::metrics::report::{IdentityReport, MountReport, rfc3339};
use crate::resolver::FsResolver;

/// The mount as the control socket shows it.
pub struct MountView {
    pub resolver: Arc<dyn FsResolver>,
    pub profile: String,
    pub mountpoint: PathBuf,
    pub multiuser: bool,
    pub since: SystemTime,
    pub metrics_addr: Option<SocketAddr>,
    pub exporter: Exporter,
}

impl MountView {
    /// The report of every identity in memory (`None`), or only of `uid`'s.
    pub fn report(&self, only_uid: Option<u32>) -> MountReport {
        let identities = self
            .resolver
            .all()
            .iter()
            .map(|fs| (self.uid_of(fs), fs))
            .filter(|(uid, _)| only_uid.is_none_or(|only| only == *uid))
            .map(|(uid, fs)| identity_report(uid, fs))
            .collect();
        MountReport {
            mountpoint: self.mountpoint.display().to_string(),
            profile: self.profile.clone(),
            pid: std::process::id(),
            multiuser: self.multiuser,
            mounted_since: rfc3339(self.since),
            metrics: self.metrics_addr.map(|a| a.to_string()),
            identities,
        }
    }

    /// Whose identity `fs` is: the Unix user it serves in a multi-user mount, else the user who
    /// mounted (`-o uid=` only changes the owner files show).
    fn uid_of(&self, fs: &Fs) -> u32 {
        if self.multiuser { fs.config().uid } else { crate::untrusted::euid() }
    }

    /// Sets the sign-in gauges from the identities in memory: signed in while their credentials
    /// are valid, else waiting for a login when the store says so.
    pub fn refresh_gauges(&self) {
        let now = SystemTime::now();
        let (mut signed_in, mut login_required, mut none) = (0, 0, 0);
        let (mut inodes, mut listings, mut negative) = (0, 0, 0);
        for fs in self.resolver.all() {
            let sizes = fs.map_sizes();
            (inodes, listings, negative) =
                (inodes + sizes.inodes, listings + sizes.listings, negative + sizes.negative);
            if fs.credentials_expire_at().is_some_and(|at| at > now) {
                signed_in += 1;
            } else if fs.identity().is_some_and(|(profile, store)| store.login_required(profile).is_some()) {
                login_required += 1;
            } else {
                none += 1;
            }
        }
        crate::metrics::series::identities(signed_in, login_required, none);
        crate::metrics::series::metadata_entries(inodes, listings, negative);
    }
}

/// One identity's figures, with who it is signed in as (from its store: never a token).
fn identity_report(uid: u32, fs: &Fs) -> IdentityReport {
    let mut report = fs.stats().report(uid);
    report.credentials_expire_at = fs.credentials_expire_at().map(rfc3339);
    if let Some((profile, store)) = fs.identity() {
        if let Ok(Some(tokens)) = store.load(profile) {
            let status = Status::of(profile, &tokens, crate::identity::login::now_unix());
            report.user = status.upn;
            report.sign_in_expires_at = status.expires_at;
        }
        report.login_required = store.login_required(profile).map(|m| m.reason);
    }
    report
}

impl super::control::Answers for MountView {
    fn status(&self, only_uid: Option<u32>) -> String {
        serde_json::to_string(&self.report(only_uid)).unwrap_or_else(|e| format!("error: {e}"))
    }

    fn metrics(&self) -> String {
        self.refresh_gauges();
        self.exporter.render()
    }
}
