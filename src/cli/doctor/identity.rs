//! The identity steps: the config, the identity provider's discovery document, the stored token
//! (present, refreshed when due, verified) and its audience.

use std::sync::Arc;

use serde_json::{Map, Value};

use ssofs::config::{Profile, StsToken};
use ssofs::identity::login::{self, Provider};
use ssofs::identity::verify::{rfc3339, unverified_claims};
use ssofs::identity::{StoreTokenSource, StoredTokens, TokenSource, TokenStore};

use super::report::{Checks, Outcome};
use crate::cli::Context;

/// The profile, with the mount options doctor was given applied, as the mount would use it.
pub fn config<'a>(ctx: &'a Context, checks: &mut Checks) -> Option<&'a Profile> {
    let sources = ctx.sources();
    let files = |only_existing: bool| -> Vec<String> {
        [&sources.system, &sources.user, &sources.extra]
            .into_iter()
            .flatten()
            .filter(|p| !only_existing || p.exists())
            .map(|p| p.display().to_string())
            .collect()
    };
    let profile = match ctx.profile() {
        Ok(p) => p,
        Err(e) => {
            checks.fail(
                "config",
                e.to_string(),
                format!(
                    "write a profile (issuer or tenant, client_id, endpoint) to one of {}; `-o config=FILE` or \
                     --config FILE names another file",
                    files(false).join(", ")
                ),
            );
            checks.skip_rest("discovery", "needs a valid config");
            return None;
        }
    };
    checks.pass(
        "config",
        format!(
            "profile {} from {}: issuer {}, client_id {}, endpoint {}",
            profile.name,
            files(true).join(", "),
            profile.issuer,
            profile.client_id,
            profile.endpoint.as_deref().unwrap_or("(none)")
        ),
    );
    if profile.insecure_tls {
        checks.add(
            "config",
            Outcome::Warn,
            "insecure_tls is set: TLS certificates of the identity provider, STS and S3 are NOT checked",
            Some("remove insecure_tls from the profile; for a private CA set ca_file to its PEM file instead".into()),
        );
    }
    Some(profile)
}

pub async fn discovery(profile: &Profile, checks: &mut Checks) -> Option<Provider> {
    match login::discover(profile).await {
        Ok(p) => {
            checks.pass("discovery", format!("{}/.well-known/openid-configuration answers", profile.issuer));
            Some(p)
        }
        Err(e) => {
            checks.fail(
                "discovery",
                e.to_string(),
                "check the profile's issuer/tenant, the network and proxy, and ca_file for a private CA",
            );
            checks.skip_rest("clock", "needs the identity provider");
            None
        }
    }
}

/// The token source (refreshing the token when due) and the stored tokens, when the user is
/// signed in.
pub async fn signed_in(
    ctx: &Context,
    profile: &Profile,
    checks: &mut Checks,
) -> Option<(Arc<StoreTokenSource>, StoredTokens)> {
    let mut failed = |detail: String, fix: String| {
        checks.fail("token", detail, fix);
        checks.skip_rest("audience", "needs a token");
        None
    };
    let store_dir = match ctx.state_dir() {
        Ok(d) => d,
        Err(e) => return failed(e.to_string(), "set SSOFS_STATE_DIR, HOME, or `-o state_dir=DIR`".into()),
    };
    let store = match TokenStore::open(&store_dir) {
        Ok(s) => s,
        Err(e) => return failed(e.to_string(), format!("check the permissions of {}", store_dir.display())),
    };
    let source = ssofs::stack::token_source(profile, store.clone());
    if let Err(e) = source.token().await {
        let fix = format!("run `ssofs login --profile {}` as the user the mount runs as", profile.name);
        return failed(e.to_string(), fix);
    }
    match store.load(&profile.name) {
        Ok(Some(t)) => Some((source, t)),
        other => {
            let detail = other.err().map(|e| e.to_string()).unwrap_or_else(|| "not signed in".into());
            failed(detail, format!("run `ssofs login --profile {}`", profile.name))
        }
    }
}

/// The token check (verified with the provider's keys) and the audience check. The audience goes
/// first: its explanation is the most specific.
pub async fn token_and_audience(
    profile: &Profile,
    provider: &Provider,
    stored: &StoredTokens,
    id_claims: &Map<String, Value>,
    checks: &mut Checks,
) {
    let who = claim_str(id_claims, "preferred_username").or_else(|| claim_str(id_claims, "upn")).unwrap_or("?");
    let expires = rfc3339(stored.id_token_expires_at);
    let refresh_note = if stored.refresh_token.is_some() {
        "a refresh token keeps it renewed"
    } else {
        "no refresh token: a new login is needed when it expires (add offline_access to scopes)"
    };
    let signed_in_as = format!("signed in as {who}, ID token valid until {expires}; {refresh_note}");
    let aud = audiences(id_claims);
    if !aud.iter().any(|a| a == &profile.client_id) {
        checks.pass("token", signed_in_as);
        checks.fail(
            "audience",
            format!(
                "the stored ID token is for {} but the profile's client_id is {}",
                aud.join(", "),
                profile.client_id
            ),
            "MinIO's identity_openid client_id (MINIO_IDENTITY_OPENID_CLIENT_ID) must be the application (client) id \
             the token is issued for — the GUID of the app registration, not its Application ID URI (api://...), \
             which is what access tokens for your own API carry as `aud`. Fix the profile's client_id, or MinIO's, so \
             that both name the same app registration, then run `ssofs login`",
        );
        return;
    }
    match provider.verify_id_token_refetching(profile, &stored.id_token, None).await {
        Ok(_) => checks.pass("token", signed_in_as),
        Err(e) => checks.fail("token", e.to_string(), format!("run `ssofs login --profile {}`", profile.name)),
    }
    if profile.token == StsToken::AccessToken {
        access_token_audience(profile, stored, checks);
    } else {
        checks.pass(
            "audience",
            format!("the ID token is for client_id {}, which MinIO must be configured with", profile.client_id),
        );
    }
}

/// `token = "access_token"`: MinIO compares the access token's aud with its client_id.
fn access_token_audience(profile: &Profile, stored: &StoredTokens, checks: &mut Checks) {
    let at = unverified_claims(&stored.access_token).unwrap_or_default();
    let at_aud = audiences(&at);
    if at_aud.iter().any(|a| a == &profile.client_id) {
        checks.pass("audience", format!("the access token's aud is the client_id {}", profile.client_id));
        return;
    }
    checks.fail(
        "audience",
        format!(
            "token = \"access_token\", and the access token is for {}, not client_id {}",
            if at_aud.is_empty() { "(not a JWT)".to_string() } else { at_aud.join(", ") },
            profile.client_id
        ),
        "MinIO compares aud with its client_id. Ask for a scope of your own API (api://<client id>/name) and \
         configure MinIO with the client id the token's aud names (Azure puts the application id GUID in v2 access \
         tokens, the Application ID URI in v1 ones: set accessTokenAcceptedVersion = 2 in the manifest), or use \
         token = \"id_token\"",
    );
}

fn claim_str<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

fn audiences(claims: &Map<String, Value>) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}
