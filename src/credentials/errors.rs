//! The credentials layer's one error type. STS refusals are translated into what went wrong and what
//! to change (MinIO's own texts are terse and name no fix); every variant says whether it is
//! transient (retrying may help) or permanent (only a new login or a configuration change helps).

use std::time::SystemTime;

use crate::identity::TokenError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialError {
    /// The identity layer could not hand out a token (login required, IdP down, ...).
    #[error("{0}")]
    Token(#[from] TokenError),

    #[error(
        "STS refused the token's audience: the token is for {token_audience}, the application (client) id of the app \
         registration{profile_note}, but MinIO's identity_openid client_id is a different one. Set MinIO's client_id \
         (MINIO_IDENTITY_OPENID_CLIENT_ID) to the app registration's client id, or set the profile's client_id to the \
         app registration MinIO is configured with (MinIO: {server_message})"
    )]
    AudienceMismatch { token_audience: String, profile_note: String, server_message: String },

    #[error(
        "STS refused the token: the `{claim}` claim is missing because the user is in more than 200 groups, so Azure \
         AD put a groups overage reference (`_claim_names`) in the token instead of the groups. Use app roles \
         (MinIO claim_name=roles), or emit only the groups assigned to the application (MinIO: {server_message})"
    )]
    GroupsOverage { claim: String, server_message: String },

    #[error(
        "STS refused the token: it has no `{claim}` claim, which MinIO maps to policies: enable the groups claim in \
         the app registration, or use app roles (Token configuration → Add groups claim; or MinIO claim_name=roles). \
         MinIO: {server_message}"
    )]
    ClaimMissing { claim: String, server_message: String },

    #[error(
        "STS refused the token: none of the policies it names are defined in MinIO ({}). Create MinIO policies with \
         these names (for Azure groups: the group object ids) or check MinIO's claim_name (MinIO: {server_message})",
        policies.join(", ")
    )]
    NoPoliciesDefined { policies: Vec<String>, server_message: String },

    #[error(
        "STS refused the token: {server_message}. MinIO checks the token's times (iat, nbf, exp) with zero leeway, so \
         the clocks disagree: {measured}. Synchronise the clocks (NTP) of MinIO, the identity provider and this machine"
    )]
    ClockSkew {
        server_message: String,
        /// The measured offsets, in words.
        measured: String,
        /// Seconds the token's issuer is ahead of MinIO (from `iat`/`nbf`/`exp` and MinIO's HTTP Date).
        issuer_ahead_of_minio: Option<i64>,
        /// Seconds this machine's clock is ahead of MinIO's HTTP Date.
        local_ahead_of_minio: Option<i64>,
    },

    #[error(
        "STS refused the token: its signature does not verify ({server_message}). Either the identity provider \
         rotated its signing keys and MinIO has not fetched the new ones yet (token key id {kid}), or MinIO's \
         config_url names a different tenant than the token's issuer {issuer}"
    )]
    InvalidSignature { kid: String, issuer: String, server_message: String },

    /// The token's kid is not among the keys MinIO fetched from its config_url, even after fetching
    /// them again: MinIO trusts another tenant or identity provider, or the app signs with its own key.
    #[error(
        "STS refused the token: MinIO has no key with the token's key id {kid} among the identity provider's \
         signing keys (JWKS) it fetched ({server_message}). MinIO's config_url names another tenant or identity \
         provider than the token's issuer {issuer}: set it to the issuer's discovery document \
         ({issuer}/.well-known/openid-configuration). If the app registration signs its tokens with a key of its \
         own (claims mapping), add ?appid=<client id> to that URL"
    )]
    UnknownSigningKey { kid: String, issuer: String, server_message: String },

    /// MinIO could not fetch the IdP's keys to verify the token: it does when a token is signed with
    /// a key it has not seen (the IdP rotated keys), and answers 400 InvalidParameterValue with Go's
    /// error text when the IdP does not answer. An outage between MinIO and the IdP, not a verdict on
    /// the token.
    #[error(
        "STS (MinIO) cannot fetch the identity provider's signing keys (JWKS{}) to verify the token: {}. MinIO fetches \
         them when a token is signed with a key it has not seen yet, as after the identity provider rotates its keys. \
         Check that MinIO reaches the identity provider (DNS, proxy, firewall, an outage of the identity provider)",
        url.as_deref().map(|u| format!(" at {u}")).unwrap_or_default(),
        if url.is_some() { server_message.clone() } else { format!("the identity provider answered {server_message}") }
    )]
    IdpKeysUnreachable {
        /// The URL MinIO fetched, when its message names it.
        url: Option<String>,
        server_message: String,
        /// Whether waiting may help: a network failure or an IdP answering 5xx/429, rather than
        /// answering that there is no such document.
        transient: bool,
    },

    /// STS refused the lifetime asked for (DurationSeconds): MinIO says "invalid token expiry", AWS a
    /// ValidationError naming DurationSeconds, Ceph InvalidArgument without a message.
    #[error(
        "STS refused the requested credential lifetime, duration_seconds = {sent} ({refusal}). {bounds}. Set \
         duration_seconds within them in the profile (or -o duration_seconds=N for one mount, --duration-seconds \
         for one command), or remove it to let the server choose"
    )]
    DurationRefused {
        /// Seconds asked for.
        sent: u64,
        /// The server's code and message, in words.
        refusal: String,
        /// The bounds the server stated, else the usual ones.
        bounds: String,
    },

    /// Any other refusal (4xx) by STS, with MinIO's/AWS's code and message.
    #[error("STS refused the request: {code}: {message}{hint}")]
    StsRefused { code: String, message: String, hint: String },

    /// Network failure, timeout, 5xx or throttling: worth retrying.
    #[error("STS at {endpoint} is unavailable: {detail}")]
    StsUnavailable { endpoint: String, detail: String },

    /// The STS answer could not be read (not XML, missing fields). Probably not an STS at all.
    #[error(
        "STS at {endpoint} answered HTTP {status} with a reply ssofs cannot read: {detail}. Check the profile's endpoint"
    )]
    BadStsReply { endpoint: String, status: u16, detail: String },

    /// Bad settings: no endpoint, unreadable ca_file, invalid URL.
    #[error("{0}")]
    Config(String),

    /// The permission error: there are no valid credentials and they cannot be renewed. The
    /// filesystem maps this to EACCES.
    #[error("permission denied: no valid S3 credentials for profile {profile}{}: {cause}{}",
        expired_at.map(|t| format!(" (the last ones expired at {})", rfc3339(t))).unwrap_or_default(),
        login_advice(profile, cause))]
    NoValidCredentials { profile: String, expired_at: Option<SystemTime>, cause: Box<CredentialError> },
}

impl CredentialError {
    /// Retrying later may help without the user doing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            CredentialError::Token(TokenError::Unavailable(_)) | CredentialError::StsUnavailable { .. } => true,
            CredentialError::BadStsReply { status, .. } => *status >= 500,
            CredentialError::IdpKeysUnreachable { transient, .. } => *transient,
            CredentialError::NoValidCredentials { cause, .. } => cause.is_transient(),
            _ => false,
        }
    }

    /// Only a new `ssofs login` fixes this.
    pub fn needs_login(&self) -> bool {
        match self {
            CredentialError::Token(TokenError::LoginRequired { .. }) => true,
            CredentialError::NoValidCredentials { cause, .. } => cause.needs_login(),
            _ => false,
        }
    }

    /// The typed "permission" error the filesystem turns into EACCES.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, CredentialError::NoValidCredentials { .. })
    }

    /// A refusal that a newer token may cure (an expired or re-signed token), as opposed to one about
    /// the identity or MinIO's configuration.
    pub(crate) fn newer_token_may_help(&self) -> bool {
        match self {
            CredentialError::InvalidSignature { .. } => true,
            CredentialError::ClockSkew { server_message, .. } => server_message.contains("expired"),
            _ => false,
        }
    }

    /// Finds a `CredentialError` in an error's source chain, e.g. inside an aws-sdk `SdkError` whose
    /// identity resolution failed.
    pub fn find_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a CredentialError> {
        let mut next = Some(err);
        while let Some(e) = next {
            if let Some(found) = e.downcast_ref::<CredentialError>() {
                return Some(found);
            }
            next = e.source();
        }
        None
    }
}

/// "Run `ssofs login`" unless the cause already says it, or a login cannot help (configuration).
fn login_advice(profile: &str, cause: &CredentialError) -> String {
    if cause.to_string().contains("ssofs login") {
        return String::new();
    }
    if let CredentialError::IdpKeysUnreachable { transient: true, .. } = cause {
        return ". ssofs keeps retrying; access comes back by itself once MinIO reaches the identity provider again"
            .into();
    }
    if cause.is_transient() {
        return format!(". ssofs keeps retrying; if this persists, run `ssofs login --profile {profile}`");
    }
    match cause {
        CredentialError::Token(_) | CredentialError::ClockSkew { .. } | CredentialError::InvalidSignature { .. } => {
            format!(". Run `ssofs login --profile {profile}` once this is fixed")
        }
        _ => format!(". Once fixed, run `ssofs login --profile {profile}` if access does not come back"),
    }
}

pub(crate) fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| format!("{t:?}"))
}
