//! Tenant resolution, the OpenID discovery document and the JWKS, as Azure serves them per tenant path.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::scenario::{TENANT_DOMAIN, TENANT_ID};

use super::Idp;
use super::error::AzureError;

/// `tenant_region_scope` of the emulated tenant.
pub(crate) const REGION: &str = "NA";

/// The `{tenant}` path segment, once accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tenant {
    /// Our tenant, named by GUID or verified domain.
    Ours,
    /// `common` or `organizations`: any work tenant, so documents carry the `{tenantid}` template.
    Multi(&'static str),
}

impl Tenant {
    /// `consumers` is refused like an unknown tenant: the app lives in a work tenant only.
    pub fn parse(segment: &str) -> Option<Tenant> {
        let lower = segment.to_ascii_lowercase();
        match lower.as_str() {
            "common" => Some(Tenant::Multi("common")),
            "organizations" => Some(Tenant::Multi("organizations")),
            _ if lower == TENANT_ID || lower == TENANT_DOMAIN => Some(Tenant::Ours),
            _ => None,
        }
    }

    /// The segment used in endpoint URLs; Azure rewrites a domain to the tenant GUID.
    fn segment(self) -> &'static str {
        match self {
            Tenant::Ours => TENANT_ID,
            Tenant::Multi(name) => name,
        }
    }

    /// The issuer as published for this path: concrete for our tenant, the template for multi-tenant
    /// paths (validators substitute the token's `tid`).
    fn issuer(self, base_url: &str) -> String {
        match self {
            Tenant::Ours => format!("{base_url}/{TENANT_ID}/v2.0"),
            Tenant::Multi(_) => format!("{base_url}/{{tenantid}}/v2.0"),
        }
    }
}

pub(crate) async fn openid_configuration(State(idp): State<Arc<Idp>>, Path(tenant): Path<String>) -> Response {
    match Tenant::parse(&tenant) {
        Some(t) => discovery_json(&idp.openid_configuration_for(t)),
        None => AzureError::tenant_not_found("invalid_tenant", &tenant).into_json_response(&idp.base_url),
    }
}

pub(crate) async fn jwks(State(idp): State<Arc<Idp>>, Path(tenant): Path<String>) -> Response {
    match Tenant::parse(&tenant) {
        Some(t) => discovery_json(&idp.jwks_for(t)),
        None => AzureError::tenant_not_found("invalid_tenant", &tenant).into_json_response(&idp.base_url),
    }
}

/// Discovery documents may be cached (Azure says a day); key rotation is handled by refetching on an
/// unknown kid, not by expiry.
fn discovery_json(body: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8"), (header::CACHE_CONTROL, "max-age=86400, private")],
        body.to_string(),
    )
        .into_response()
}

impl Idp {
    /// The fields and values of Azure's v2 document; no `code_challenge_methods_supported`, as Azure.
    fn openid_configuration_for(&self, tenant: Tenant) -> Value {
        let base = &self.base_url;
        let endpoints = format!("{base}/{}/oauth2/v2.0", tenant.segment());
        let region = match tenant {
            Tenant::Ours => json!(REGION),
            Tenant::Multi(_) => Value::Null,
        };
        json!({
            "token_endpoint": format!("{endpoints}/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base}/{}/discovery/v2.0/keys", tenant.segment()),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": tenant.issuer(base),
            "request_uri_parameter_supported": false,
            "userinfo_endpoint": format!("{base}/oidc/userinfo"),
            "authorization_endpoint": format!("{endpoints}/authorize"),
            "device_authorization_endpoint": format!("{endpoints}/devicecode"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{endpoints}/logout"),
            "claims_supported": [
                "sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
                "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name",
                "tid", "ver", "at_hash", "c_hash", "email"
            ],
            "kerberos_endpoint": format!("{base}/{}/kerberos", tenant.segment()),
            "tenant_region_scope": region,
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        })
    }

    /// The published keys, each naming the issuer it signs for on this path (no `alg`, as Azure).
    fn jwks_for(&self, tenant: Tenant) -> Value {
        let issuer = tenant.issuer(&self.base_url);
        let keys: Vec<Value> = self.published_keys().iter().map(|k| k.jwk(&issuer)).collect();
        json!({ "keys": keys })
    }
}
