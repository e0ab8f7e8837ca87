//! The MinIO stand-in: S3 (s3s + our object store), STS, IAM policies, request log.

pub mod auth;
pub mod iam;
pub mod server;
pub mod store;
pub mod sts;
