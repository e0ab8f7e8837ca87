//! A directory's listing: from the cache while fresh, from a prefetch already under way (see
//! `prefetch`), or from S3 (all pages of a delimiter listing; ListBuckets for the root).

use std::time::Instant;

use super::maps::{Entry, Listing, Metadata};
use crate::fs::inode::{Inode, Kind};
use crate::fs::{Fs, FsError, FsResult, listing, names};
use crate::object::{ObjectClient, ObjectError, ObjectInfo};

impl Fs {
    /// The entries of a directory, from the cache when fresh.
    pub(super) async fn listing(&self, dir: &Inode) -> FsResult<Listing> {
        let under_way = {
            let mut st = self.state.lock().unwrap();
            if let Some(l) = st.meta.fresh_listing(dir.ino, self.config.dir_ttl) {
                return Ok(l);
            }
            // Queued for a prefetch: listed here instead, now. Being fetched: that answer, not a
            // second request for the same listing.
            st.prefetch.claim(dir.ino)
        };
        if let Some(done) = under_way
            && let Some(listing) = done.await
        {
            return Ok(listing);
        }
        let entries = match dir.kind {
            // One bucket mounted as the root: its listing.
            Kind::Root if !dir.bucket.is_empty() => list_prefix(&*self.client, &dir.bucket, &dir.key).await?,
            Kind::Root => match self.client.list_buckets().await {
                Ok(buckets) => self.with_named_buckets(
                    buckets
                        .into_iter()
                        .filter(|b| names::usable(b))
                        .map(|b| Entry { kind: Kind::Bucket, ..Entry::dir(&b) }),
                ),
                // MinIO answers AccessDenied when no bucket is visible: an empty root, or the named ones.
                Err(ObjectError::AccessDenied) => self.with_named_buckets(std::iter::empty()),
                // A server that does not list buckets for this identity at all: the named ones are enough.
                Err(e) if !self.config.named_buckets.is_empty() && !matches!(e, ObjectError::NoCredentials(_)) => {
                    tracing::debug!(error = %e, "ListBuckets failed; showing the named buckets");
                    self.with_named_buckets(std::iter::empty())
                }
                // Without credentials (renewal failing, or none to be had): the buckets seen last stay
                // listed, so operations below them say EACCES rather than "no such file"; an identity
                // that never had credentials (no policy, no login) sees an empty root. The credentials
                // layer logs why.
                Err(ObjectError::NoCredentials(_)) => {
                    let last = self.state.lock().unwrap().meta.last_listing(dir.ino);
                    return Ok(last.unwrap_or(Listing { entries: Vec::new(), fetched: Instant::now() }));
                }
                Err(e) => return Err(e.into()),
            },
            Kind::Bucket | Kind::Dir => list_prefix(&*self.client, &dir.bucket, &dir.key).await?,
            Kind::File => return Err(FsError::NotDir),
        };
        let mut st = self.state.lock().unwrap();
        let listing = Listing { entries: with_local_files(&st.meta, dir.ino, entries), fetched: Instant::now() };
        st.meta.store_listing(dir.ino, listing.clone());
        Ok(listing)
    }

    /// The root's entries: the named buckets (a prefix shows as its bucket's name and lists only
    /// below it), then the listed buckets not named.
    fn with_named_buckets(&self, listed: impl Iterator<Item = Entry>) -> Vec<Entry> {
        let named = &self.config.named_buckets;
        let mut entries: Vec<Entry> = named
            .iter()
            .map(|n| Entry {
                kind: Kind::Bucket,
                key: (!n.prefix.is_empty()).then(|| n.prefix.clone()),
                ..Entry::dir(&n.bucket)
            })
            .collect();
        entries.extend(listed.filter(|e| !named.iter().any(|n| n.bucket == e.name)));
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries.dedup_by(|a, b| a.name == b.name);
        entries
    }
}

/// A listing plus the files created here that S3 does not have yet.
pub(super) fn with_local_files(meta: &Metadata, dir: u64, mut entries: Vec<Entry>) -> Vec<Entry> {
    for inode in meta.local_only.iter().filter_map(|ino| meta.inodes.get(*ino)) {
        if inode.parent == dir && !entries.iter().any(|e| e.name == inode.name) {
            let mut e = Entry { kind: Kind::File, etag: None, ..Entry::dir(&inode.name) };
            e.size = inode.attr.size;
            entries.push(e);
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// Lists one prefix completely (all pages) into directory entries.
pub(super) async fn list_prefix(client: &dyn ObjectClient, bucket: &str, prefix: &str) -> FsResult<Vec<Entry>> {
    let mut files: Vec<ObjectInfo> = Vec::new();
    let mut dirs: Vec<String> = Vec::new();
    let mut token = None;
    loop {
        let page = client.list_page(bucket, prefix, token).await?;
        files.extend(page.objects);
        dirs.extend(page.prefixes);
        match page.continuation {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    Ok(listing::entries(bucket, prefix, &files, &dirs))
}
