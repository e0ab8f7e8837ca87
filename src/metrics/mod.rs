//! What a mount is doing, counted in one place.
//!
//! - [`series`]: every Prometheus series the mount exports, named and described once; the layers
//!   call its functions where the work happens (S3 requests, FUSE replies, the block cache,
//!   read-ahead, STS renewals, uploads). Without a recorder installed (every command but a mount)
//!   they cost next to nothing and go nowhere.
//! - [`stats`]: one identity's figures for `ssofs status` (bytes, cache hits, failed uploads, the
//!   last error). Kept apart from the series because these are per identity, and series carry no
//!   uid: the HTTP endpoint is readable by every local user.
//! - [`uploads`]: uploads in flight with their progress, fed where bytes are sent.
//! - [`report`]: what the control socket answers to `status` (JSON), and its text form.
//! - [`exporter`]: the Prometheus recorder of the mount process and its optional HTTP listener.
//!
//! This module imports nothing else of the crate: every layer may count here.

pub mod exporter;
pub mod report;
pub mod series;
pub mod stats;
pub mod uploads;

pub use stats::IdentityStats;
pub use uploads::{UploadProgress, Uploads};
