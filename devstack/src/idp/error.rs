//! Azure AD's OAuth error responses: `error`, an `error_description` starting with the AADSTS code and
//! ending with trace/correlation ids and a timestamp, plus `error_codes`, `timestamp`, `trace_id`,
//! `correlation_id` and `error_uri`. Clients are expected to branch on `error`, never on the codes.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::scenario::TENANT_DOMAIN;

/// One Azure error, before it is rendered (rendering needs the base URL for `error_uri`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AzureError {
    pub error: &'static str,
    pub code: u32,
    pub message: String,
}

impl AzureError {
    pub fn new(error: &'static str, code: u32, message: impl Into<String>) -> Self {
        AzureError { error, code, message: message.into() }
    }

    /// Azure answers client-authentication failures with 401, everything else with 400.
    pub fn status(&self) -> StatusCode {
        match self.error {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// `AADSTSnnnnn: message` — the first line of `error_description`, also used on HTML error pages.
    pub fn headline(&self) -> String {
        format!("AADSTS{}: {}", self.code, self.message)
    }

    /// The JSON body Azure sends from its token and device-code endpoints.
    pub fn body(&self, base_url: &str) -> serde_json::Value {
        let trace_id = uuid::Uuid::new_v4().to_string();
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let timestamp = azure_timestamp();
        serde_json::json!({
            "error": self.error,
            "error_description": format!(
                "{}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
                self.headline()
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("{base_url}/error?code={}", self.code),
        })
    }

    pub fn into_json_response(self, base_url: &str) -> Response {
        let body = self.body(base_url);
        no_store_json(self.status(), &body)
    }

    // Constructors for the errors raised from more than one place.

    /// AADSTS90002, for any tenant segment that is not ours (`consumers` included: a work tenant).
    pub fn tenant_not_found(error: &'static str, tenant: &str) -> Self {
        AzureError::new(
            error,
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into \
                 the correct cloud. Check with your subscription administrator, this may happen if there are no \
                 active subscriptions for the tenant."
            ),
        )
    }

    pub fn missing_parameter(name: &str) -> Self {
        AzureError::new(
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    pub fn unknown_client(client_id: &str) -> Self {
        AzureError::new(
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{TENANT_DOMAIN}'. This can \
                 happen if the application has not been installed by the administrator of the tenant or consented \
                 to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        )
    }

    /// Azure's catch-all for a grant it cannot parse or does not know.
    pub fn malformed_grant() -> Self {
        AzureError::new("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
    }

    pub fn server_error(message: impl Into<String>) -> Self {
        AzureError::new("server_error", 50000, message)
    }
}

/// JSON with the cache headers Azure puts on every token-endpoint answer, so no proxy keeps tokens.
pub(crate) fn no_store_json(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store, no-cache"),
            (header::PRAGMA, "no-cache"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// `2026-11-02 09:14:03Z`, the format of Azure's error timestamps.
pub(crate) fn azure_timestamp() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc().format(&format).unwrap_or_else(|_| "1970-01-01 00:00:00Z".to_string())
}
