//! `ssofs recover`: upload (or export, or discard) what was staged for upload when a mount was
//! killed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ssofs::mount::MountOptions;
use ssofs::object::ObjectClient;
use ssofs::recover::{self, Outcome};
use ssofs::stack::{ClientBuilder, S3Stack};

use super::args::RecoverArgs;
use super::progress::Shown;
use super::{CliError, Context};

pub fn run(ctx: &Context, args: &RecoverArgs) -> Result<(), CliError> {
    let profile = ctx.profile()?;
    ctx.store()?;
    let options = MountOptions { cache_dir: args.cache_dir.clone(), ..Default::default() };
    let dirs = recover_dirs(&options, &profile.name, args.mountpoint.as_deref(), args.uid);
    // What was found, before anything is touched.
    let found: Vec<(PathBuf, usize)> =
        dirs.into_iter().map(|d| (d.clone(), recover::count(&d))).filter(|(_, n)| *n > 0).collect();
    if found.is_empty() {
        println!(
            "nothing to recover for profile {}{}",
            profile.name,
            args.mountpoint.as_ref().map(|m| format!(" at {}", m.display())).unwrap_or_default()
        );
        return Ok(());
    }
    for (dir, n) in &found {
        println!("found {n} file(s) in {}", dir.display());
    }
    let mut outcome = Outcome::default();
    // Built on the first upload: exporting and discarding need no sign-in.
    let mut client: Option<Arc<dyn ObjectClient>> = None;
    for (staging, _) in &found {
        if args.discard {
            let n = recover::discard(staging).map_err(CliError::Recover)?;
            println!("discarded {n} file(s) from {}", staging.display());
            continue;
        }
        let one = if let Some(dir) = &args.export {
            let shown = Shown::new("exported");
            let one = recover::export(staging, dir, &shown).map_err(CliError::Recover);
            shown.finish();
            let one = one?;
            println!("exported {} file(s) to {}", one.done.len(), dir.display());
            one
        } else if recover::report(staging).is_none() {
            let refused = recover::refused_count(staging);
            println!(
                "{refused} upload(s) the bucket policy refused are kept in {}/refused: `--export DIR` copies them \
                 out, `--discard` deletes them",
                staging.display()
            );
            continue;
        } else {
            let client = match &client {
                Some(c) => c.clone(),
                None => client.insert(user_client(ctx)?).clone(),
            };
            let shown = Shown::new("uploaded");
            let one = ctx.runtime()?.block_on(recover::upload(staging, client.as_ref(), &shown));
            shown.finish();
            one.map_err(CliError::Recover)?
        };
        outcome.done.extend(one.done);
        outcome.failed.extend(one.failed);
    }
    for f in &outcome.failed {
        eprintln!("ssofs: not recovered: {f}");
    }
    if outcome.failed.is_empty() { Ok(()) } else { Err(CliError::NotRecovered(outcome.failed.len())) }
}

/// The user's own client, checked as a mount checks it.
fn user_client(ctx: &Context) -> Result<Arc<dyn ObjectClient>, CliError> {
    let profile = ctx.profile()?;
    let endpoint = profile.endpoint.clone().ok_or_else(|| CliError::NoEndpoint(profile.name.clone()))?;
    let store = ctx.store()?.clone();
    Ok(ctx.runtime()?.block_on(S3Stack.build_checked(profile, &endpoint, store))?)
}

/// The staging directories `ssofs recover` looks at: the mount `mountpoint` names, else every mount
/// of `profile` plus the staging root itself (where ssofs staged before it had one directory per
/// mount); with `uid`, that user's part of each (multi-user mounts).
fn recover_dirs(options: &MountOptions, profile: &str, mountpoint: Option<&Path>, uid: Option<u32>) -> Vec<PathBuf> {
    let root = ssofs::mount::staging_root(options);
    let dirs = match mountpoint {
        Some(m) => vec![ssofs::mount::staging_dir(options, profile, m)],
        None => {
            let prefix = ssofs::mount::mount_id_prefix(profile);
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect();
            dirs.sort();
            dirs.push(root);
            dirs
        }
    };
    match uid {
        Some(uid) => dirs.into_iter().map(|d| d.join(format!("uid-{uid}"))).collect(),
        None => dirs,
    }
}
