//! Credentials layer: per-user S3 credentials from MinIO's STS (`AssumeRoleWithWebIdentity`) that
//! never expire under the user.
//!
//! - [`sts`]: the STS client (form POST, MinIO claim and role-policy modes, AWS-style STS, TLS roots).
//! - [`reply`] and [`refusal`]: reading STS replies, and turning refusals into what to fix.
//! - [`provider`]: [`CredentialProvider`], aws-sdk's `ProvideCredentials` for one identity, with
//!   background renewal, single flight, and the permission error when renewal is impossible.
//! - [`reactive`]: one retry after a forced renewal when S3 refuses the credentials anyway.

pub mod errors;
pub mod provider;
pub mod reactive;
mod refusal;
pub(crate) mod reply;
pub mod sts;

#[cfg(test)]
mod fake_sts;

pub use errors::CredentialError;
pub use provider::{CredentialProvider, ProviderOptions, ProviderStats};
pub use reactive::{is_credentials_code, is_credentials_rejection, s3_config};
pub use sts::{StsClient, StsCredentials, StsSettings};
