//! `ssofs init`: writes a profile from flags (asking on a terminal for what is missing), checks it
//! at once (the identity provider's discovery document, the S3 endpoint answering), then, if the
//! user agrees or passed `--login`, signs in and runs `ssofs doctor`; and prints how to mount it:
//! the systemd user unit and an fstab line.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use ssofs::config::write::{self, NewProfile};
use ssofs::config::{Profile, Sources, check_endpoint};
use ssofs::identity::login;

use super::args::InitArgs;
use super::{CliError, Context};

const DEFAULT_NAME: &str = "default";

pub fn run(ctx: &Context, args: &InitArgs) -> Result<ExitCode, CliError> {
    let name = ctx.options.profile.clone().unwrap_or_else(|| DEFAULT_NAME.into());
    check_name(&name)?;
    let path = config_path(ctx)?;
    if write::has_profile(&path, &name)? && !args.force {
        return Err(CliError::Init(format!(
            "profile {name} already exists in {}; pass --force to replace it, or --profile NAME for another one",
            path.display()
        )));
    }
    let new = answers(ctx, args)?;
    let (profile, text) = write::with_profile(&path, &name, &new)?;
    ctx.runtime()?.block_on(check(&profile))?;
    write::write(&path, &text)?;
    println!("Wrote profile {name} to {} (identity provider and S3 endpoint answer).", path.display());
    let mut code = ExitCode::SUCCESS;
    if args.login || (terminal() && agrees("Sign in now and check everything with `ssofs doctor`?")?) {
        code = sign_in_and_doctor(&name, &path)?;
    } else {
        println!("Next: `ssofs login --profile {name}`, then `ssofs doctor --profile {name}`.");
    }
    print!("{}", how_to_mount(&profile, &path));
    Ok(code)
}

/// Profile names go into file names, unit names (`ssofs@NAME`) and fstab options.
fn check_name(name: &str) -> Result<(), CliError> {
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        return Ok(());
    }
    Err(CliError::Init(format!(
        "profile name {name:?} cannot be used: take letters, digits, '-', '_' and '.' only (it becomes part of file \
         names, the unit ssofs@NAME and fstab options)"
    )))
}

/// `--config FILE` (or `$SSOFS_CONFIG`) when given, else the user's config file.
fn config_path(ctx: &Context) -> Result<PathBuf, CliError> {
    if let Some(path) = &ctx.options.config {
        return Ok(path.clone());
    }
    Sources::standard(None).user.ok_or_else(|| {
        CliError::Init("neither XDG_CONFIG_HOME nor HOME is set: name the file to write with --config FILE".into())
    })
}

fn terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// The flags, with what is missing asked on a terminal; without one, an error naming the flags.
fn answers(ctx: &Context, args: &InitArgs) -> Result<NewProfile, CliError> {
    let flags = ctx.overrides();
    let mut tenant = flags.tenant.clone();
    let issuer = flags.issuer.clone();
    let mut client_id = flags.client_id.clone();
    let mut endpoint = flags.endpoint.clone();
    let missing: Vec<&str> = [
        (tenant.is_none() && issuer.is_none(), "--tenant (or --issuer)"),
        (client_id.is_none(), "--client-id"),
        (endpoint.is_none(), "--endpoint"),
    ]
    .into_iter()
    .filter_map(|(missing, flag)| missing.then_some(flag))
    .collect();
    if !missing.is_empty() && !terminal() {
        return Err(CliError::Init(format!(
            "missing {}: ssofs init asks for them only on a terminal; pass them as flags",
            missing.join(", ")
        )));
    }
    if tenant.is_none() && issuer.is_none() {
        tenant = Some(ask("Azure tenant (directory id, or a domain such as contoso.onmicrosoft.com)")?);
    }
    if client_id.is_none() {
        client_id = Some(ask("Application (client) id of the app registration")?);
    }
    if endpoint.is_none() {
        endpoint = Some(ask("S3 endpoint URL (MinIO's S3 API, e.g. https://minio.example.com)")?);
    }
    let endpoint = endpoint.unwrap_or_default();
    check_endpoint_url(&endpoint)?;
    Ok(NewProfile {
        issuer,
        tenant,
        client_id: client_id.unwrap_or_default(),
        endpoint,
        role_arn: args.role_arn.clone(),
        buckets: args.buckets.clone(),
        ca_file: flags.ca_file.clone(),
    })
}

fn ask(prompt: &str) -> Result<String, CliError> {
    dialoguer::Input::<String>::new()
        .with_prompt(prompt)
        .interact_text()
        .map(|s| s.trim().to_string())
        .map_err(|e| CliError::Init(format!("no answer read from the terminal: {e}")))
}

fn agrees(question: &str) -> Result<bool, CliError> {
    dialoguer::Confirm::new()
        .with_prompt(question)
        .default(true)
        .interact()
        .map_err(|e| CliError::Init(format!("no answer read from the terminal: {e}")))
}

/// An http(s) URL without a user name or password.
fn check_endpoint_url(endpoint: &str) -> Result<(), CliError> {
    let bad = |why: String| {
        CliError::Init(format!(
            "--endpoint {endpoint:?} {why}: give the URL of the S3 API, e.g. https://minio.example.com"
        ))
    };
    // Keys in the URL first: the other messages show it.
    check_endpoint(endpoint).map_err(CliError::Init)?;
    let url = reqwest::Url::parse(endpoint).map_err(|e| bad(format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad("is not an http:// or https:// URL with a host".into()));
    }
    Ok(())
}

/// Discovery of the identity provider, then the S3 endpoint answering HTTP at all (any status).
async fn check(profile: &Profile) -> Result<(), CliError> {
    login::discover(profile).await.map_err(|source| CliError::InitDiscovery {
        issuer: profile.issuer.clone(),
        fix: "check --tenant (or --issuer) and your network, then run `ssofs init` again",
        source,
    })?;
    let endpoint = profile.endpoint.clone().unwrap_or_default();
    let http = login::http_client(profile)?;
    let answered = tokio::time::timeout(Duration::from_secs(15), http.get(&endpoint).send()).await;
    let detail = match answered {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => login::error_chain(&e),
        Err(_) => "no answer within 15 s".into(),
    };
    Err(CliError::Init(format!(
        "cannot reach the S3 endpoint {endpoint}: {detail}. Nothing was written: check --endpoint (the URL of MinIO's \
         S3 API) and run `ssofs init` again"
    )))
}

/// Whether `path` is among the files every command reads anyway (for this user; root at boot
/// reads only the system one).
fn read_by_default(path: &Path) -> (bool, bool) {
    let standard = Sources::standard(None);
    let system = standard.system.as_deref() == Some(path);
    (system || standard.user.as_deref() == Some(path), system)
}

/// Runs `ssofs login` then `ssofs doctor` for the new profile, as the user would; doctor's verdict
/// is the exit code.
fn sign_in_and_doctor(name: &str, path: &Path) -> Result<ExitCode, CliError> {
    let me = std::env::current_exe().map_err(|e| CliError::Init(format!("cannot find the ssofs binary: {e}")))?;
    let run = |command: &str| {
        let mut c = std::process::Command::new(&me);
        c.args([command, "--profile", name]);
        if !read_by_default(path).0 {
            c.arg("--config").arg(path);
        }
        c.status().map_err(|e| CliError::Init(format!("cannot run `ssofs {command}`: {e}")))
    };
    if !run("login")?.success() {
        return Err(CliError::Init(format!(
            "the sign-in failed (above); the profile is written: run `ssofs login --profile {name}` to try again"
        )));
    }
    Ok(if run("doctor")?.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The systemd user unit and an fstab line for the profile.
fn how_to_mount(profile: &Profile, path: &Path) -> String {
    let name = &profile.name;
    let endpoint = profile.endpoint.as_deref().unwrap_or("ssofs");
    let (for_user, for_root) = read_by_default(path);
    let mut out = format!(
        "\nMount it in your home at every login (~/s3/{name}, systemd user unit):\n    \
         systemctl --user enable --now ssofs@{name}\n"
    );
    if !for_user {
        out.push_str(&format!(
            "    (the unit reads only the standard config files: copy [profiles.{name}] from {} to \
             ~/.config/ssofs/config.toml first)\n",
            path.display()
        ));
    }
    // Root mounts fstab lines, at boot without HOME: it reads /etc/ssofs/config.toml, else the
    // file the line names.
    let (option, flag) = match for_root {
        true => (String::new(), String::new()),
        false => (format!(",config={}", path.display()), format!(" --config {}", path.display())),
    };
    out.push_str(&format!(
        "Or mount it from /etc/fstab (root mounts it; sign in for it once with \
         `SSOFS_STATE_DIR=/var/lib/ssofs ssofs login --profile {name}{flag}`):\n    \
         {endpoint}  /mnt/{name}  fuse.ssofs  _netdev,nofail,x-systemd.automount,profile={name}{option},state_dir=/var/lib/ssofs  0 0\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_that_would_break_units_or_fstab_are_refused() {
        assert!(check_name("corp-2.eu_west").is_ok());
        for bad in ["", "a b", "a,b", "a/b", "ä"] {
            assert!(check_name(bad).unwrap_err().to_string().contains("letters, digits"), "{bad:?}");
        }
    }

    #[test]
    fn endpoints_must_be_http_urls_without_credentials() {
        assert!(check_endpoint_url("https://minio.example.com:9000").is_ok());
        for bad in ["minio.example.com", "ftp://minio.example.com", "https://k:s@minio.example.com"] {
            let err = check_endpoint_url(bad).unwrap_err().to_string();
            assert!(err.contains("--endpoint") || err.contains("user name or password"), "{bad}: {err}");
        }
    }
}
