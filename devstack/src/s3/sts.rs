//! MinIO's STS `AssumeRoleWithWebIdentity`, following MinIO's source (cmd/sts-handlers.go
//! AssumeRoleWithSSO, internal/config/identity/openid/jwt.go Validate) and `../shared/spec/minio-sts.md`:
//! the token is verified against the IdP's JWKS (fetched at startup, and again whenever a token does
//! not verify with the keys at hand; a failed fetch is the answer, in Go's words), exp/iat/nbf with
//! zero leeway, then DurationSeconds within 900 s..365 d (devstack floor adjustable), then aud (else
//! azp) must contain the client id; `iss` is not checked, `sub` is mandatory; the configured claim
//! names IAM policies.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hyper::StatusCode;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::Value;
use tokio::sync::RwLock;

use super::auth::{Iam, Session};
use super::iam::Policy;

/// MinIO's upper bound for DurationSeconds (365 days; not AWS's 43200).
const MAX_DURATION: u64 = 31_536_000;

pub struct StsConfig {
    /// OpenID discovery document of the IdP (MinIO's `config_url`).
    pub config_url: String,
    pub client_id: String,
    /// MinIO's `claim_name` (Azure setups use `groups`).
    pub claim_name: String,
    /// Lower bound for DurationSeconds: MinIO's is 900 s; the devstack can lower it.
    pub min_duration: Duration,
    /// A role-policy provider: tokens presented with this RoleArn get `role_policy`.
    pub role_arn: String,
    pub role_policy: String,
    /// Extra CA to trust when fetching the IdP's keys (the devstack's own test CA in TLS mode).
    pub ca_pem: Option<&'static str>,
}

pub struct Sts {
    cfg: StsConfig,
    iam: Arc<Iam>,
    http: reqwest::Client,
    /// The JWKS URL from the discovery document (MinIO reads it once, at startup).
    jwks_uri: RwLock<Option<String>>,
    /// Keys by kid. MinIO only ever adds to them (jwt.go publicKeys.parseAndAdd).
    keys: RwLock<HashMap<String, DecodingKey>>,
}

/// An STS answer: status and MinIO-shaped XML.
pub struct StsReply {
    pub status: StatusCode,
    pub body: String,
}

struct StsError {
    code: &'static str,
    status: StatusCode,
    message: String,
}

fn invalid(message: impl Into<String>) -> StsError {
    StsError { code: "InvalidParameterValue", status: StatusCode::BAD_REQUEST, message: message.into() }
}

impl Sts {
    pub fn new(cfg: StsConfig, iam: Arc<Iam>) -> Self {
        let ca_pem = cfg.ca_pem;
        Sts {
            cfg,
            iam,
            http: {
                let mut b = reqwest::Client::builder().timeout(Duration::from_secs(10));
                if let Some(pem) = ca_pem {
                    b = b.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).expect("checked-in CA"));
                }
                b.build().expect("reqwest client")
            },
            jwks_uri: RwLock::new(None),
            keys: RwLock::new(HashMap::new()),
        }
    }

    /// What MinIO does at startup (jwt.go LookupConfig): read the discovery document, then the keys.
    /// On failure the devstack carries on and tries again at the first STS call.
    pub async fn discover(&self) {
        if let Err(e) = self.populate_public_keys().await {
            tracing::warn!(error = %e, "STS could not fetch the identity provider's keys at startup");
        }
    }

    /// Handles one STS call given its form parameters (body first, then query, as Go's r.Form).
    pub async fn handle(&self, params: &[(String, String)]) -> StsReply {
        let request_id = request_id();
        match self.assume_role(params).await {
            Ok(xml) => StsReply { status: StatusCode::OK, body: xml.replace("{request_id}", &request_id) },
            Err(e) => StsReply {
                status: e.status,
                body: format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type></Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
                    e.code,
                    xml_escape(&e.message),
                    request_id
                ),
            },
        }
    }

    async fn assume_role(&self, params: &[(String, String)]) -> Result<String, StsError> {
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if get("Version") != Some("2011-06-15") {
            return Err(StsError {
                code: "MissingParameter",
                status: StatusCode::BAD_REQUEST,
                message: format!("Invalid STS API version {}, expecting 2011-06-15", get("Version").unwrap_or("")),
            });
        }
        let action = get("Action").unwrap_or("");
        if action != "AssumeRoleWithWebIdentity" {
            return Err(invalid(format!("Unsupported action {action}")));
        }
        let token = get("WebIdentityToken").unwrap_or("");
        let (claims, expiration) = self.validate(token, get("DurationSeconds")).await?;

        // With a claim-based provider configured, an unknown RoleArn is ignored rather than refused, so
        // AWS SDKs that insist on sending one still work (minio #21421).
        let role = get("RoleArn") == Some(self.cfg.role_arn.as_str());
        let policies = if role { vec![self.cfg.role_policy.clone()] } else { self.policies_from_claim(&claims)? };

        let session_policy = match get("Policy").filter(|p| !p.is_empty()) {
            Some(p) if p.len() > 2048 => return Err(invalid("Session policy should not exceed 2048 characters")),
            Some(p) => Some(Policy::parse(p).map_err(invalid)?),
            None => None,
        };

        let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
        if sub.is_empty() {
            return Err(invalid("STS JWT Token has `sub` claim missing, `sub` claim is mandatory"));
        }
        let subject = claims.get("preferred_username").and_then(Value::as_str).unwrap_or(sub).to_string();
        let access_key = random_string(20).to_ascii_uppercase();
        // What cmd/sts-handlers.go AssumeRoleWithSSO puts in the session token besides the ID token's
        // claims: the role, or the policies granted in place of the claim that named them, and the
        // session policy (base64).
        let mut token_claims = claims.clone();
        if role {
            token_claims.insert("roleArn".into(), Value::from(self.cfg.role_arn.as_str()));
        } else {
            token_claims.insert(self.cfg.claim_name.clone(), Value::from(policies.join(",")));
        }
        if let Some(p) = get("Policy").filter(|p| !p.is_empty()) {
            token_claims
                .insert("sessionPolicy".into(), Value::from(base64::engine::general_purpose::STANDARD.encode(p)));
        }
        let session_token = session_token(token_claims, &access_key, expiration, self.iam.token_signing_key());
        let session = Session {
            access_key,
            secret_key: random_string(40),
            session_token,
            expiration,
            policies,
            session_policy,
            subject,
        };
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithWebIdentityResult><AssumedRoleUser><Arn></Arn><AssumeRoleId></AssumeRoleId></AssumedRoleUser><Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey><SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials><SubjectFromWebIdentityToken>{}</SubjectFromWebIdentityToken></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>{{request_id}}</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>",
            session.access_key,
            session.secret_key,
            session.session_token,
            httpdate_iso(expiration),
            xml_escape(sub)
        );
        tracing::info!(access_key = %session.access_key, subject = %session.subject, policies = ?session.policies, "STS credentials issued");
        self.iam.add_session(session);
        Ok(xml)
    }

    /// MinIO's Validate (jwt.go), in its order: parse with the keys at hand (signature, time claims
    /// with zero leeway); if that fails for any reason, fetch the JWKS again (the IdP may have rotated
    /// its keys) and parse once more, a failed fetch being the answer; then DurationSeconds
    /// (updateClaimsExpiry); then aud/azp. The claims and the credentials' expiry.
    async fn validate(
        &self,
        token: &str,
        duration_seconds: Option<&str>,
    ) -> Result<(serde_json::Map<String, Value>, SystemTime), StsError> {
        let claims = match self.parse(token).await {
            Ok(claims) => claims,
            Err(_) => {
                self.populate_public_keys().await.map_err(invalid)?;
                self.parse(token).await?
            }
        };
        let expiration = expiry(&claims, duration_seconds, self.cfg.min_duration)?;
        self.check_audience(&claims)?;
        Ok((claims, expiration))
    }

    /// golang-jwt's ParseWithClaims with MinIO's key function: the kid's key from those fetched so far.
    async fn parse(&self, token: &str) -> Result<serde_json::Map<String, Value>, StsError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(format!("token is malformed: {e}")))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512) {
            return Err(invalid(format!("signing method {:?} is invalid", header.alg)));
        }
        // MinIO's key function (jwt.go Validate): a kid that is not a string is Go's %v of it.
        let Some(kid) = header.kid.as_deref() else { return Err(invalid("Invalid kid value <nil>")) };
        let key = self
            .keys
            .read()
            .await
            .get(kid)
            .cloned()
            .ok_or_else(|| invalid(format!("No public key found for kid {kid}")))?;
        let mut v = Validation::new(header.alg);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        v.leeway = 0;
        let data =
            jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &v).map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => invalid("crypto/rsa: verification error"),
                _ => invalid(format!("token is malformed: {e}")),
            })?;
        let claims = data.claims;
        check_times(&claims)?;
        Ok(claims)
    }

    /// MinIO's PopulatePublicKey (jwt.go): GET the JWKS and add its keys. Its errors are Go's texts,
    /// which MinIO hands back as the STS message (400 InvalidParameterValue): `Get "URL": dial tcp
    /// ADDR: connect: connection refused` when the IdP cannot be reached, the status line (`503
    /// Service Unavailable`) when it answers with an error.
    async fn populate_public_keys(&self) -> Result<(), String> {
        let jwks_uri = self.jwks_uri().await?;
        let resp = self.http.get(&jwks_uri).send().await.map_err(|e| go_get_error(&jwks_uri, &e))?;
        if resp.status() != StatusCode::OK {
            return Err(resp.status().to_string());
        }
        let jwks: Value = resp.json().await.map_err(|e| e.to_string())?;
        let mut keys = self.keys.write().await;
        for k in jwks.get("keys").and_then(Value::as_array).into_iter().flatten() {
            let (Some(kid), Some(n), Some(e)) = (
                k.get("kid").and_then(Value::as_str),
                k.get("n").and_then(Value::as_str),
                k.get("e").and_then(Value::as_str),
            ) else {
                continue;
            };
            if let Ok(dk) = DecodingKey::from_rsa_components(n, e) {
                keys.insert(kid.to_string(), dk);
            }
        }
        Ok(())
    }

    /// The discovery document's jwks_uri, read once (MinIO: jwt.go parseDiscoveryDoc at startup; the
    /// devstack reads it at the first STS call if its IdP was not up yet).
    async fn jwks_uri(&self) -> Result<String, String> {
        if let Some(uri) = self.jwks_uri.read().await.clone() {
            return Ok(uri);
        }
        let url = &self.cfg.config_url;
        let resp = self.http.get(url).send().await.map_err(|e| go_get_error(url, &e))?;
        if resp.status() != StatusCode::OK {
            return Err(format!("unexpected error returned by {url} : status({})", resp.status()));
        }
        let disco: Value = resp.json().await.map_err(|e| e.to_string())?;
        let uri = disco.get("jwks_uri").and_then(Value::as_str).ok_or("discovery document has no jwks_uri")?;
        *self.jwks_uri.write().await = Some(uri.to_string());
        Ok(uri.to_string())
    }

    fn check_audience(&self, claims: &serde_json::Map<String, Value>) -> Result<(), StsError> {
        let id = self.cfg.client_id.as_str();
        let Some(aud) = string_values(claims.get("aud")) else {
            return Err(invalid("STS JWT Token has `aud` claim invalid, `aud` must match configured OpenID Client ID"));
        };
        if aud.iter().any(|a| a == id) {
            return Ok(());
        }
        match string_values(claims.get("azp")) {
            Some(azp) if azp.iter().any(|a| a == id) => Ok(()),
            _ => Err(invalid("STS JWT Token has `azp` claim invalid, `azp` must match configured OpenID Client ID")),
        }
    }

    /// MinIO GetPoliciesFromClaims + CurrentPolicies: a comma-separated string or an array; unknown
    /// names are dropped.
    fn policies_from_claim(&self, claims: &serde_json::Map<String, Value>) -> Result<Vec<String>, StsError> {
        let claim = &self.cfg.claim_name;
        let Some(values) = string_values(claims.get(claim)) else {
            return Err(invalid(format!(
                "{claim} claim missing from the JWT token, credentials will not be generated"
            )));
        };
        let mut asked: Vec<String> = values
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        asked.sort();
        asked.dedup();
        let defined: Vec<String> = asked.iter().filter(|p| self.iam.policy_exists(p)).cloned().collect();
        if defined.is_empty() {
            return Err(invalid(format!(
                "None of the given policies (`{}`) are defined, credentials will not be generated",
                asked.join(",")
            )));
        }
        Ok(defined)
    }
}

fn string_values(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => Some(a.iter().filter_map(Value::as_str).map(String::from).collect()),
        _ => None,
    }
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// golang-jwt v4 MapClaims.Valid with zero leeway: exp, then iat, then nbf; the last failure wins.
fn check_times(claims: &serde_json::Map<String, Value>) -> Result<(), StsError> {
    let now = now_secs();
    let num = |k: &str| claims.get(k).and_then(Value::as_f64).map(|f| f as i64);
    let mut err = None;
    if num("exp").is_some_and(|exp| now >= exp) {
        err = Some("token is expired");
    }
    if num("iat").is_some_and(|iat| now < iat) {
        err = Some("token used before issued");
    }
    if num("nbf").is_some_and(|nbf| now < nbf) {
        err = Some("token is not valid yet");
    }
    match err {
        Some(m) => Err(invalid(m)),
        None => Ok(()),
    }
}

/// MinIO updateClaimsExpiry/GetDefaultExpiration: no DurationSeconds → the token's exp; otherwise
/// within bounds or "invalid token expiry".
fn expiry(claims: &serde_json::Map<String, Value>, dsecs: Option<&str>, min: Duration) -> Result<SystemTime, StsError> {
    match dsecs.filter(|d| !d.is_empty()) {
        None => {
            let exp = claims.get("exp").and_then(Value::as_f64).ok_or_else(|| invalid("invalid token expiry"))?;
            Ok(UNIX_EPOCH + Duration::from_secs(exp.max(0.0) as u64))
        }
        Some(d) => {
            let secs: u64 = d.parse().map_err(|_| invalid("invalid token expiry"))?;
            if secs < min.as_secs() || secs > MAX_DURATION {
                return Err(invalid("invalid token expiry"));
            }
            Ok(SystemTime::now() + Duration::from_secs(secs))
        }
    }
}

/// MinIO's session token (internal/auth/credentials.go CreateNewCredentialsWithMetadata and
/// JWTSignWithAccessKey): the claims with `exp` set to the credentials' expiry and `accessKey` added,
/// an HS512 JWT signed with the token signing key, sent in every request's x-amz-security-token. Its
/// size follows the ID token's: about 1.2 KB from the devstack's, 1.5-3 KB from Azure's with more claims.
fn session_token(
    mut claims: serde_json::Map<String, Value>,
    access_key: &str,
    expiration: SystemTime,
    key: &str,
) -> String {
    let exp = expiration.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    claims.insert("exp".into(), Value::from(exp));
    claims.insert("accessKey".into(), Value::from(access_key));
    let header = jsonwebtoken::Header::new(Algorithm::HS512);
    jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()))
        .expect("a JSON map always encodes")
}

fn random_string(len: usize) -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

fn request_id() -> String {
    format!("{:016X}", rand::thread_rng().r#gen::<u64>())
}

fn httpdate_iso(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    dt.format(&time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z")).unwrap_or_default()
}

/// Go's encoding/xml EscapeText, as MinIO's XML encoder writes every value (`"` is `&#34;`).
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

/// Go's text for a failed `http.Client.Get`, a `*url.Error`: `Get "URL": CAUSE`, with net's words for
/// the common causes (a refused connection, a name that does not resolve, a timeout).
fn go_get_error(url: &str, e: &reqwest::Error) -> String {
    let parsed = reqwest::Url::parse(url).ok();
    let host = parsed.as_ref().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
    let port = parsed.as_ref().and_then(reqwest::Url::port_or_known_default).unwrap_or(0);
    let mut chain = vec![e.to_string()];
    let mut refused = false;
    let mut next = std::error::Error::source(e);
    while let Some(cause) = next {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        chain.push(cause.to_string());
        next = cause.source();
    }
    let cause = if e.is_timeout() {
        "context deadline exceeded (Client.Timeout exceeded while awaiting headers)".to_string()
    } else if refused {
        format!("dial tcp {host}:{port}: connect: connection refused")
    } else if chain.iter().any(|c| c.contains("dns error")) {
        format!("dial tcp: lookup {host}: no such host")
    } else {
        chain.join(": ")
    };
    format!("Get \"{url}\": {cause}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An STS whose IdP (`config_url`) is not listening, as when MinIO cannot reach it.
    async fn sts_with_idp_down() -> (Sts, String) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let cfg = StsConfig {
            config_url: format!("http://{addr}/tenant/v2.0/.well-known/openid-configuration"),
            client_id: "client".into(),
            claim_name: "groups".into(),
            min_duration: Duration::from_secs(900),
            role_arn: "arn:minio:iam:::role/x".into(),
            role_policy: "readonly".into(),
            ca_pem: None,
        };
        (Sts::new(cfg, Arc::new(Iam::new("root", "root-secret", HashMap::new()))), addr.to_string())
    }

    fn token() -> String {
        let key = crate::keys::all().remove(0);
        let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        let now = now_secs();
        let claims = serde_json::json!({"sub": "s", "aud": "client", "iat": now, "exp": now + 600});
        jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
    }

    fn form(token: &str) -> Vec<(String, String)> {
        [("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("WebIdentityToken", token)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn an_unreachable_idp_is_a_400_with_gos_dial_error() {
        let (sts, addr) = sts_with_idp_down().await;
        let reply = sts.handle(&form(&token())).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        assert!(reply.body.contains("<Code>InvalidParameterValue</Code>"), "{}", reply.body);
        // Go's url.Error, XML-escaped as Go's encoding/xml does it.
        let expected = format!(
            "<Message>Get &#34;http://{addr}/tenant/v2.0/.well-known/openid-configuration&#34;: dial tcp {addr}: connect: connection refused</Message>"
        );
        assert!(reply.body.contains(&expected), "{}", reply.body);
    }
}
