//! Why a command failed, in the words `ssofs: ...` prints (tests look for them); the layer's own
//! error is kept as the source.

use std::path::PathBuf;

use ssofs::config::ConfigError;
use ssofs::identity::IdentityError;
use ssofs::mount::MountError;
use ssofs::mount::options::OptionError;
use ssofs::stack::StackError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Options(#[from] OptionError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("profile {0}: not signed in; run `ssofs login --profile {0}`")]
    NotSignedIn(String),
    #[error("profile {0} has no endpoint")]
    NoEndpoint(String),
    /// The mount source is neither an endpoint URL nor `s3://BUCKET[/PREFIX]` that parses.
    #[error("{0}")]
    BadTarget(String),
    /// The stored ID token cannot be decoded.
    #[error("{0}")]
    Claims(String),
    /// A staged file could not be read, copied or deleted.
    #[error("{0}")]
    Recover(String),
    #[error("{0} file(s) could not be recovered; they are kept")]
    NotRecovered(usize),
    #[error("{}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// `ssofs init` was given something it cannot write, or cannot ask for what is missing.
    #[error("{0}")]
    Init(String),
    /// `ssofs init`: the new profile's identity provider does not answer; nothing was written.
    #[error("the identity provider at {issuer} does not answer as one should: {source}. Nothing was written: {fix}")]
    InitDiscovery {
        issuer: String,
        fix: &'static str,
        #[source]
        source: IdentityError,
    },
}
