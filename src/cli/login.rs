//! `ssofs login`: sign in (browser or device code) and store the tokens.

use std::time::Duration;

use ssofs::identity::browser::{self, BrowserOptions};
use ssofs::identity::login::{self, DevicePolling};

use super::args::LoginArgs;
use super::{CliError, Context};

pub fn run(ctx: &Context, args: &LoginArgs) -> Result<(), CliError> {
    let profile = ctx.profile()?;
    let store = ctx.store()?;
    let use_browser = args.browser || (!args.device_code && browser::available());
    // Who was signed in before, to say so when this sign-in is someone else.
    let previous = store.load(&profile.name).ok().flatten().and_then(|t| t.username);
    let tokens = ctx.runtime()?.block_on(async {
        let provider = login::discover(profile).await?;
        if let Some(warning) = &provider.clock_warning {
            eprintln!("ssofs: warning: {warning}");
        }
        let mut out = std::io::stdout();
        if use_browser {
            let opts = BrowserOptions {
                timeout: Duration::from_secs(args.timeout.max(1)),
                login_hint: args.login_hint.clone(),
            };
            browser::sign_in(&provider, profile, &mut out, &opts).await
        } else {
            let polling =
                DevicePolling { interval_override: args.poll_interval.map(Duration::from_secs), qr: !args.no_qr };
            login::device_code_with(&provider, profile, &mut out, &polling).await
        }
    })?;
    store.save(&profile.name, &tokens)?;
    println!("Signed in as {} (profile {}).", tokens.username.as_deref().unwrap_or("unknown user"), profile.name);
    let account = tokens.username.as_deref().unwrap_or("an unknown account");
    for warning in ssofs::identity::account::account_warnings(account, args.login_hint.as_deref(), previous.as_deref())
    {
        eprintln!("ssofs: WARNING: {warning}");
    }
    Ok(())
}
