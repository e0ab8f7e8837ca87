//! Requested scopes, split the way Azure treats them: the OpenID scopes, plus the scopes of exactly one
//! resource — the app's own API (`api://{client}/...`, giving an app access token MinIO can verify) or
//! Microsoft Graph (bare names like `User.Read`, giving a Graph token nobody else can verify).

use crate::scenario::{CLIENT_ID, TENANT_DOMAIN};

use super::error::AzureError;

pub(crate) const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
const GRAPH_URL: &str = "https://graph.microsoft.com";
/// The one scope the ssofs app registration exposes under "Expose an API".
pub(crate) const APP_SCOPE: &str = "access_as_user";
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resource {
    /// Short scope names of Microsoft Graph (`User.Read`, `.default`).
    Graph(Vec<String>),
    /// Short scope names of the app's own API (`access_as_user`).
    App(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scopes {
    /// Lower-cased OpenID scopes that were asked for.
    oidc: Vec<&'static str>,
    pub resource: Resource,
}

/// Which resource one scope string belongs to, and its short name there.
enum Parsed {
    Oidc(&'static str),
    Graph(String),
    App(String),
}

impl Scopes {
    /// Parses a space-separated `scope` parameter; an empty one is Azure's missing-parameter error.
    pub fn parse(scope: &str) -> Result<Scopes, AzureError> {
        let mut oidc = Vec::new();
        let mut graph = Vec::new();
        let mut app = Vec::new();
        for item in scope.split_whitespace() {
            match parse_one(item)? {
                Parsed::Oidc(s) if !oidc.contains(&s) => oidc.push(s),
                Parsed::Oidc(_) => {}
                Parsed::Graph(s) => push_unique(&mut graph, s),
                Parsed::App(s) => push_unique(&mut app, s),
            }
        }
        if oidc.is_empty() && graph.is_empty() && app.is_empty() {
            return Err(AzureError::missing_parameter("scope"));
        }
        let resource = match (graph.is_empty(), app.is_empty()) {
            (_, true) => Resource::Graph(graph),
            (true, false) => Resource::App(app),
            (false, false) => return Err(multiple_resources()),
        };
        Ok(Scopes { oidc, resource })
    }

    pub fn has(&self, oidc_scope: &str) -> bool {
        self.oidc.contains(&oidc_scope)
    }

    /// The access token's `scp`: resource scopes by short name; Graph tokens also list the OpenID
    /// scopes, which Azure counts as Graph permissions. Graph's `User.Read` is granted by default.
    pub fn scp(&self) -> String {
        match &self.resource {
            Resource::App(names) => names.join(" "),
            Resource::Graph(names) => self.graph_scopes(names).join(" "),
        }
    }

    /// The token response's `scope`: what the access token is good for. `offline_access` is never
    /// echoed, as Azure does not.
    pub fn granted(&self) -> String {
        match &self.resource {
            Resource::App(names) => {
                names.iter().map(|n| format!("api://{CLIENT_ID}/{n}")).collect::<Vec<_>>().join(" ")
            }
            Resource::Graph(names) => self.graph_scopes(names).join(" "),
        }
    }

    fn graph_scopes(&self, names: &[String]) -> Vec<String> {
        let mut out: Vec<String> = names.iter().filter(|n| *n != ".default").cloned().collect();
        if out.is_empty() {
            out.push("User.Read".to_string());
        }
        out.extend(self.oidc.iter().filter(|s| **s != "offline_access").map(|s| s.to_string()));
        out
    }
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

fn parse_one(item: &str) -> Result<Parsed, AzureError> {
    let lower = item.to_ascii_lowercase();
    if let Some(oidc) = OIDC_SCOPES.iter().find(|s| **s == lower) {
        return Ok(Parsed::Oidc(oidc));
    }
    if let Some((resource, name)) = split_resource(item) {
        if name.is_empty() {
            return Err(invalid_scope(item));
        }
        let resource_lower = resource.to_ascii_lowercase();
        let app_ids = [format!("api://{CLIENT_ID}"), CLIENT_ID.to_string()];
        if app_ids.contains(&resource_lower) {
            return app_scope(item, name);
        }
        if resource_lower == GRAPH_URL || resource_lower == GRAPH_APP_ID {
            return Ok(Parsed::Graph(name.to_string()));
        }
        return Err(unknown_resource(resource));
    }
    // A bare permission name is a Graph permission, as in Azure.
    Ok(Parsed::Graph(item.to_string()))
}

/// The app registration exposes one scope; `.default` means "everything consented", i.e. that one.
fn app_scope(item: &str, name: &str) -> Result<Parsed, AzureError> {
    if name == APP_SCOPE || name == ".default" {
        Ok(Parsed::App(APP_SCOPE.to_string()))
    } else {
        Err(invalid_scope(item))
    }
}

/// Splits `api://x/name`, `https://host/name` or `guid/name` at the last slash.
fn split_resource(item: &str) -> Option<(&str, &str)> {
    let (resource, name) = item.rsplit_once('/')?;
    // `https://graph.microsoft.com//.default` style double slashes name the same resource.
    Some((resource.trim_end_matches('/'), name))
}

fn invalid_scope(item: &str) -> AzureError {
    AzureError::new(
        "invalid_scope",
        70011,
        format!("The provided value for the input parameter 'scope' is not valid. The scope '{item}' does not exist."),
    )
}

fn unknown_resource(resource: &str) -> AzureError {
    AzureError::new(
        "invalid_resource",
        500011,
        format!(
            "The resource principal named {resource} was not found in the tenant named {TENANT_DOMAIN}. This can \
             happen if the application has not been installed by the administrator of the tenant or consented to \
             by any user in the tenant. You might have sent your authentication request to the wrong tenant."
        ),
    )
}

fn multiple_resources() -> AzureError {
    AzureError::new(
        "invalid_request",
        28000,
        "Provided value for the input parameter scope is not valid because it contains more than one resource. \
         Scope openid profile offline_access is not valid.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oidc_only_means_graph_user_read() {
        let s = Scopes::parse("openid profile offline_access").unwrap();
        assert_eq!(s.resource, Resource::Graph(vec![]));
        assert!(s.has("offline_access"));
        assert_eq!(s.granted(), "User.Read openid profile");
    }

    #[test]
    fn app_scope_in_both_spellings() {
        let s = Scopes::parse(&format!("openid api://{CLIENT_ID}/access_as_user {CLIENT_ID}/access_as_user")).unwrap();
        assert_eq!(s.resource, Resource::App(vec!["access_as_user".into()]));
        assert_eq!(s.scp(), "access_as_user");
    }

    #[test]
    fn mixing_resources_and_unknown_resources_are_refused() {
        let mixed = Scopes::parse(&format!("User.Read api://{CLIENT_ID}/access_as_user")).unwrap_err();
        assert_eq!(mixed.code, 28000);
        let unknown = Scopes::parse("api://someone-else/x").unwrap_err();
        assert_eq!(Scopes::parse(&format!("api://{CLIENT_ID}/nope")).unwrap_err().code, 70011);
        assert_eq!(unknown.code, 500011);
        assert_eq!(Scopes::parse("  ").unwrap_err().code, 900144);
    }
}
