//! Request parameters (form bodies and query strings), parsed leniently so that a malformed request ends
//! in Azure's "missing parameter" error rather than a framework rejection.

use std::collections::HashMap;

use super::error::AzureError;
use crate::scenario::CLIENT_ID;

#[derive(Debug, Default, Clone)]
pub(crate) struct Form {
    /// In request order, to rebuild a query string (the authorize page links back to itself).
    pub pairs: Vec<(String, String)>,
    values: HashMap<String, String>,
}

impl Form {
    /// Parses `application/x-www-form-urlencoded` bytes; undecodable input yields an empty form.
    pub fn parse(bytes: &[u8]) -> Form {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes).unwrap_or_default();
        let mut values = HashMap::new();
        for (k, v) in &pairs {
            // The first occurrence wins, as with most OAuth servers.
            values.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Form { pairs, values }
    }

    /// The value of `name`, treating an empty value as absent (as Azure does).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str).filter(|v| !v.trim().is_empty())
    }

    pub fn require(&self, name: &str) -> Result<&str, AzureError> {
        self.get(name).ok_or_else(|| AzureError::missing_parameter(name))
    }

    /// The query string without `name`, for links that replace one parameter.
    pub fn query_without(&self, name: &str) -> String {
        let kept: Vec<&(String, String)> = self.pairs.iter().filter(|(k, _)| k != name).collect();
        serde_urlencoded::to_string(kept).unwrap_or_default()
    }
}

/// The tenant knows one application: the ssofs registration.
pub(crate) fn check_client(client_id: &str) -> Result<(), AzureError> {
    if client_id.eq_ignore_ascii_case(CLIENT_ID) { Ok(()) } else { Err(AzureError::unknown_client(client_id)) }
}
