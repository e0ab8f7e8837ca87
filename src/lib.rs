//! ssofs: mount the S3 buckets your Azure AD identity may use, with per-user MinIO STS credentials.
//!
//! Layers, each behind a small interface so the one above can be tested alone: identity (OIDC login,
//! token store) → credentials (STS) → object client → filesystem → FUSE.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod config;
pub mod credentials;
pub mod fs;
pub mod fuse;
/// Entry points for the cargo-fuzz targets (`fuzz/`), which build with `--cfg fuzzing`.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
pub mod metrics;
pub mod mount;
pub mod object;
pub mod recover;
pub mod resolver;
pub mod stack;
pub mod trust;
pub mod untrusted;
