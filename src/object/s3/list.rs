//! ListObjectsV2: one page of a directory, and whether a prefix has anything below it.

use super::{S3ObjectClient, mtime};
use crate::object::{ListPage, ObjectError, ObjectInfo};

impl S3ObjectClient {
    /// One page of ListObjectsV2 with delimiter `/`.
    pub(super) async fn page(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<String>,
    ) -> Result<ListPage, ObjectError> {
        let out = self
            .provider
            .with_fresh_credentials(|| {
                self.client
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(prefix)
                    .delimiter("/")
                    .set_continuation_token(continuation.clone())
                    .send()
            })
            .await
            .map_err(self.failed())?;
        Ok(ListPage {
            objects: out
                .contents()
                .iter()
                .filter_map(|o| {
                    Some(ObjectInfo {
                        key: o.key()?.to_string(),
                        size: o.size().unwrap_or(0).max(0) as u64,
                        etag: o.e_tag().unwrap_or_default().to_string(),
                        last_modified: mtime(o.last_modified()),
                        meta: Default::default(),
                    })
                })
                .collect(),
            prefixes: out.common_prefixes().iter().filter_map(|p| p.prefix().map(str::to_string)).collect(),
            continuation: out
                .next_continuation_token()
                .filter(|_| out.is_truncated() == Some(true))
                .map(str::to_string),
        })
    }

    /// Whether anything is below `prefix`: one entry asked for (max-keys 1), see
    /// `ObjectClient::has_entries`.
    pub(super) async fn any_below(&self, bucket: &str, prefix: &str) -> Result<bool, ObjectError> {
        let out = self
            .provider
            .with_fresh_credentials(|| {
                self.client.list_objects_v2().bucket(bucket).prefix(prefix).delimiter("/").max_keys(1).send()
            })
            .await
            .map_err(self.failed())?;
        Ok(!out.contents().is_empty() || !out.common_prefixes().is_empty())
    }
}
