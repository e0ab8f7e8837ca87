//! The token endpoint: tenant and client checks shared by every grant, then dispatch by `grant_type`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::Idp;
use super::discovery::Tenant;
use super::error::{AzureError, no_store_json};
use super::form::{Form, check_client};
use super::scopes::Scopes;
use super::tokens::{Extras, Grant};

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub(crate) async fn token(State(idp): State<Arc<Idp>>, Path(tenant): Path<String>, body: Bytes) -> Response {
    match idp.token_request(&tenant, &Form::parse(&body)) {
        Ok(body) => no_store_json(StatusCode::OK, &body),
        Err(err) => err.into_json_response(&idp.base_url),
    }
}

impl Idp {
    fn token_request(&self, tenant: &str, form: &Form) -> Result<Value, AzureError> {
        Tenant::parse(tenant).ok_or_else(|| AzureError::tenant_not_found("invalid_request", tenant))?;
        let grant_type = form.require("grant_type")?;
        check_client(form.require("client_id")?)?;
        match grant_type {
            "authorization_code" => {
                refuse_client_secret(form)?;
                self.authorization_code_grant(form)
            }
            "refresh_token" => {
                refuse_client_secret(form)?;
                self.refresh_token_grant(form)
            }
            DEVICE_CODE_GRANT => {
                self.check_device_client(form)?;
                let grant = self.poll_device_code(form.require("device_code")?)?;
                self.token_response(&grant, first_extras(&grant))
            }
            other => Err(AzureError::new(
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{other}'."),
            )),
        }
    }

    fn authorization_code_grant(&self, form: &Form) -> Result<Value, AzureError> {
        let grant = self.redeem_auth_code(form)?;
        self.token_response(&grant, first_extras(&grant))
    }

    /// A refresh may ask for fewer (or other) scopes; the new refresh token keeps the original ones, and an
    /// ID token comes back whenever the original sign-in included `openid`.
    fn refresh_token_grant(&self, form: &Form) -> Result<Value, AzureError> {
        let original = self.redeem_refresh_token(form)?;
        let scopes = match form.get("scope") {
            Some(scope) => Scopes::parse(scope)?,
            None => original.scopes.clone(),
        };
        let extras = Extras { id_token: original.scopes.has("openid"), refresh_scopes: Some(original.scopes.clone()) };
        let grant = Grant { user: original.user, scopes, nonce: None };
        self.token_response(&grant, extras)
    }

    /// Device code needs "Allow public client flows"; without it the app counts as confidential and
    /// must authenticate, which it cannot (it has no secret here).
    fn check_device_client(&self, form: &Form) -> Result<(), AzureError> {
        if self.cfg.public_client_flows {
            return refuse_client_secret(form);
        }
        if form.get("client_secret").is_some() || form.get("client_assertion").is_some() {
            return Err(AzureError::new("invalid_client", 7000215, "Invalid client secret provided."));
        }
        Err(AzureError::new(
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ))
    }
}

/// The first tokens of a sign-in: an ID token for `openid`, a refresh token for `offline_access`.
fn first_extras(grant: &Grant) -> Extras {
    Extras {
        id_token: grant.scopes.has("openid"),
        refresh_scopes: grant.scopes.has("offline_access").then(|| grant.scopes.clone()),
    }
}

/// A public client must not present credentials (AADSTS700025).
fn refuse_client_secret(form: &Form) -> Result<(), AzureError> {
    if form.get("client_secret").is_some() || form.get("client_assertion").is_some() {
        return Err(AzureError::new(
            "invalid_client",
            700025,
            "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
        ));
    }
    Ok(())
}
