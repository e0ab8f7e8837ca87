//! `ssofs doctor`: walks the chain a mount depends on — config, identity provider, clocks, token,
//! audience, groups claim, STS, buckets, FUSE — and says for each step whether it works and, when it
//! does not, what to change. It reuses the layers' own checks and errors (discovery, token
//! verification, the STS refusal translation) and the mount's own client stack (`ssofs::stack`)
//! rather than re-implementing them.

mod buckets;
mod clocks;
mod fuse;
mod identity;
mod report;
mod server;
mod sts;

use std::process::ExitCode;
use std::sync::Arc;

use ssofs::config::{Profile, StsToken};
use ssofs::identity::verify::unverified_claims;

use super::args::DoctorArgs;
use super::{CliError, Context};
use report::{Checks, Report};
use server::ServerKind;

/// Prints the report; exits 1 when a check failed (warnings allowed).
pub fn run(ctx: &Context, args: &DoctorArgs) -> Result<ExitCode, CliError> {
    let report = ctx.runtime()?.block_on(diagnose(ctx, args.write_probe));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn diagnose(ctx: &Context, write_probe: bool) -> Report {
    let mut checks = Checks::default();
    let profile = identity::config(ctx, &mut checks);
    if let Some(profile) = profile {
        identity_chain(ctx, profile, write_probe, &mut checks).await;
    }
    fuse::check(&ctx.options, &mut checks);
    checks.report(profile.map(|p| p.name.clone()))
}

/// Discovery → clocks → token → audience → groups → STS → buckets. `None` where a step failed that
/// the later ones need (they are then skipped).
async fn identity_chain(ctx: &Context, profile: &Profile, write_probe: bool, checks: &mut Checks) -> Option<()> {
    let provider = Arc::new(identity::discovery(profile, checks).await?);

    // The S3 server (its `Server` header) and the clocks: the IdP's Date, the endpoint's, this machine's.
    let (s3_skew, server) = match &profile.endpoint {
        Some(endpoint) => server::endpoint_probe(profile, endpoint).await,
        None => (None, ServerKind::Unknown),
    };
    checks.pass("server", server.describe());
    clocks::check(profile, &provider, s3_skew, &server, checks);

    let (source, stored) = identity::signed_in(ctx, profile, checks).await?;
    let id_claims = unverified_claims(&stored.id_token).unwrap_or_default();
    clocks::token_times(&id_claims, s3_skew, checks);
    identity::token_and_audience(profile, &provider, &stored, &id_claims, checks).await;

    // Groups claim of the token STS will get.
    let sts_claims = match profile.token {
        StsToken::IdToken => id_claims.clone(),
        StsToken::AccessToken => unverified_claims(&stored.access_token).unwrap_or_default(),
    };
    if matches!(server, ServerKind::MinIO | ServerKind::Unknown) {
        sts::groups(profile, &sts_claims, checks);
    } else {
        checks.skip(
            "groups",
            &format!("only MinIO maps the groups claim to policies; {} grants access by role", server.name()),
        );
    }

    let provider = sts::credentials(profile, source, checks).await?;
    let endpoint = profile.endpoint.clone().unwrap_or_default();
    let s3 = match ssofs::stack::s3_client(profile, &endpoint, provider) {
        Ok(s3) => s3,
        Err(e) => {
            checks.fail(
                "buckets",
                e.to_string(),
                "fix ca_file in the profile (a PEM file of the CA that signed the S3 endpoint's certificate)",
            );
            return None;
        }
    };
    buckets::check(&s3, write_probe, &server, &profile.buckets, checks).await;
    Some(())
}
