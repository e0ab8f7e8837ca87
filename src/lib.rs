//! ssofs: mount the S3 buckets your Azure AD identity may use, with per-user MinIO STS credentials.
//!
//! Layers, each behind a small interface so the one above can be tested alone: identity (OIDC login,
//! token store) → credentials (STS) → object client → filesystem → FUSE.

pub mod config;
pub mod credentials;
pub mod fs;
pub mod fuse;
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
pub mod mount;
pub mod multiuser;
pub mod object;
pub mod recover;
pub mod stack;
pub mod trust;
pub mod untrusted;
