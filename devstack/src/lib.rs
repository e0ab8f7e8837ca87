//! Embedded stand-ins for Azure AD (an OpenID provider shaped like Entra ID v2) and MinIO (S3 with
//! AssumeRoleWithWebIdentity STS and IAM policies), for the ssofs demo and tests.

pub mod config;
pub mod idp;
pub mod keys;
pub mod s3;
pub mod scenario;

pub use config::Config;
