//! Namespace changes: mkdir, unlink, rmdir, rename. S3 has no directories and no rename: a
//! directory is a prefix (with an empty `dir/` marker when made here), and a rename is a copy of
//! every object followed by deletes — never atomic.

use std::time::Instant;

use bytes::Bytes;

use super::inode::{Inode, Kind};
use super::names;
use super::superblock::{Entry, Listing};
use super::{Fs, FsError, FsResult, Stat};

/// What a rename may do to an existing target (the flags of renameat2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenameMode {
    /// rename(2): an existing target is replaced.
    Replace,
    /// RENAME_NOREPLACE (`mv -n`, `mv --no-clobber`): an existing target is an error (EEXIST).
    NoReplace,
    /// RENAME_EXCHANGE: both names swapped atomically, which S3 cannot do (EINVAL).
    Exchange,
}

impl Fs {
    /// A directory this mount may create in or remove from.
    fn writable_dir(&self, parent: u64) -> FsResult<Inode> {
        self.check_writable()?;
        let dir = self.inode(parent)?;
        match dir.kind {
            Kind::Bucket | Kind::Dir => Ok(dir),
            Kind::Root if !dir.bucket.is_empty() => Ok(dir),
            Kind::Root => Err(FsError::Access("buckets cannot be created or removed through the mount".into())),
            Kind::File => Err(FsError::NotDir),
        }
    }

    /// A directory where a file may be created, with `name` checked as an S3 key segment.
    pub(crate) fn creatable_in(&self, parent: u64, name: &str) -> FsResult<Inode> {
        let dir = self.writable_dir(parent)?;
        names::creatable(name).map_err(FsError::BadName)?;
        Ok(dir)
    }

    /// Makes a directory: an empty `name/` marker object, so it exists before anything is in it.
    /// Like every call that answers with an entry, it counts the kernel's reference to it.
    pub async fn mkdir(&self, parent: u64, name: &str) -> FsResult<Stat> {
        let dir = self.creatable_in(parent, name)?;
        let key = format!("{}{name}/", dir.key);
        self.client.put_bytes(&dir.bucket, &key, Bytes::new(), &Default::default()).await?;
        let mut st = self.state.lock().unwrap();
        st.meta.list(parent, Entry::dir(name));
        let inode = st.meta.inodes.upsert(parent, name, Kind::Dir, self.dir_attr());
        // Nothing was under the name a moment ago (the kernel's lookup said so): the new directory
        // is listed as empty, as a listing fetched now would be, so the lookups of the files then
        // created in it need no request (3 requests per created file before, 1 now).
        st.meta.store_listing(inode.ino, Listing { entries: Vec::new(), fetched: Instant::now() });
        // The kernel is handed the new entry.
        st.meta.inodes.add_lookup(inode.ino);
        Ok(self.stat(&inode))
    }

    pub async fn unlink(&self, parent: u64, name: &str) -> FsResult<()> {
        let dir = self.writable_dir(parent)?;
        let stat = self.find(parent, name).await?;
        if stat.is_dir {
            return Err(FsError::IsDir);
        }
        let key = self.inode(stat.ino)?.key;
        // Created here and never uploaded: there is nothing in S3 to delete.
        let local_only = self.is_local_only(stat.ino);
        // Its open handles keep their data; it is not uploaded at their close.
        self.unlink_open(stat.ino).await?;
        if !local_only {
            self.client.delete(&dir.bucket, &key).await?;
        }
        let mut st = self.state.lock().unwrap();
        st.meta.unlist(parent, name);
        st.meta.inodes.unlink(parent, name);
        Ok(())
    }

    pub async fn rmdir(&self, parent: u64, name: &str) -> FsResult<()> {
        let dir = self.writable_dir(parent)?;
        let stat = self.find(parent, name).await?;
        if !stat.is_dir {
            return Err(FsError::NotDir);
        }
        let prefix = format!("{}{name}/", dir.key);
        let page = self.client.list_page(&dir.bucket, &prefix, None).await?;
        if !page.prefixes.is_empty() || page.objects.iter().any(|o| o.key != prefix) {
            return Err(FsError::NotEmpty);
        }
        self.client.delete(&dir.bucket, &prefix).await?;
        let mut st = self.state.lock().unwrap();
        st.meta.unlist(parent, name);
        st.meta.drop_listing(stat.ino);
        st.meta.inodes.unlink(parent, name);
        Ok(())
    }

    /// Renames a file by copy + delete; a directory by copying and deleting every object below it.
    /// Neither is atomic: S3 has no rename. Across buckets it is EXDEV, so `mv` copies instead.
    pub async fn rename(
        &self,
        parent: u64,
        name: &str,
        new_parent: u64,
        new_name: &str,
        mode: RenameMode,
    ) -> FsResult<()> {
        if mode == RenameMode::Exchange {
            return Err(FsError::Invalid("RENAME_EXCHANGE: S3 cannot swap two names atomically"));
        }
        let from_dir = self.writable_dir(parent)?;
        let to_dir = self.creatable_in(new_parent, new_name)?;
        if from_dir.bucket != to_dir.bucket {
            return Err(FsError::CrossBucket);
        }
        let stat = self.find(parent, name).await?;
        if mode == RenameMode::NoReplace {
            match self.find(new_parent, new_name).await {
                Ok(_) => return Err(FsError::Exists),
                Err(FsError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        let bucket = from_dir.bucket.clone();
        if stat.is_dir {
            let from = format!("{}{name}/", from_dir.key);
            let to = format!("{}{new_name}/", to_dir.key);
            self.copy_tree(&bucket, &from, &to).await?;
            for key in self.all_keys(&bucket, &from).await? {
                self.client.delete(&bucket, &key).await?;
            }
        } else {
            let key = self.inode(stat.ino)?.key;
            let dest = to_dir.child_key(new_name);
            self.client.copy(&bucket, &key, &dest).await?;
            self.client.delete(&bucket, &key).await?;
        }
        let mut st = self.state.lock().unwrap();
        st.meta.listings_changed();
        st.meta.drop_listing(parent);
        st.meta.drop_listing(new_parent);
        st.meta.forget_missing(new_parent, new_name);
        for ino in st.meta.inodes.rename(parent, name, new_parent, new_name) {
            st.meta.drop_listing(ino);
        }
        Ok(())
    }

    /// Copies every object below the prefix `from` to the same place below `to`.
    async fn copy_tree(&self, bucket: &str, from: &str, to: &str) -> FsResult<()> {
        for key in self.all_keys(bucket, from).await? {
            let Some(rest) = key.strip_prefix(from) else { continue };
            let dest = format!("{to}{rest}");
            if key.ends_with('/') {
                // A directory marker (mkdir's empty `dir/`) is made again, not copied: some servers
                // refuse CopyObject of such keys, which would fail the whole `mv`.
                self.client.put_bytes(bucket, &dest, Bytes::new(), &Default::default()).await?;
            } else {
                self.client.copy(bucket, &key, &dest).await?;
            }
        }
        Ok(())
    }

    /// Every key below `prefix`, walking common prefixes. The server chose these keys: one not
    /// below the prefix asked for (a server that ignores it) is skipped, never copied, sliced or
    /// deleted.
    async fn all_keys(&self, bucket: &str, prefix: &str) -> FsResult<Vec<String>> {
        let mut keys = Vec::new();
        let mut pending = vec![prefix.to_string()];
        while let Some(p) = pending.pop() {
            let mut token = None;
            loop {
                let page = self.client.list_page(bucket, &p, token).await?;
                for key in page.objects.into_iter().map(|o| o.key) {
                    if key.starts_with(&p) {
                        keys.push(key);
                    } else {
                        tracing::warn!(
                            bucket,
                            key,
                            prefix = p,
                            "the listing returned a key outside its prefix; skipped"
                        );
                    }
                }
                pending.extend(page.prefixes.into_iter().filter(|q| q.starts_with(&p) && q.len() > p.len()));
                match page.continuation {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
        }
        Ok(keys)
    }
}
