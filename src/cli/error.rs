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
}
