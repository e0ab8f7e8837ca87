//! Mode, times and owner (chmod, utimens, chown) and symbolic links, kept in object metadata under
//! the keys s3fs and rclone use (`object::meta`), so files keep them across mounts and tools.

use std::time::SystemTime;

use bytes::Bytes;

use super::inode::{Attr, Kind};
use super::{Fs, FsError, FsResult, Stat};
use crate::object::meta::FileMeta;

impl Fs {
    /// chmod, utimens, chown: kept in the object's metadata. A file open for writing gets them with
    /// its next upload (now marked pending); any other file's object is copied onto itself with the
    /// new metadata. Directories have no object of their own to keep them: accepted, not kept.
    pub async fn set_meta(&self, ino: u64, newer: FileMeta) -> FsResult<Stat> {
        let inode = self.inode(ino)?;
        if inode.kind.is_dir() || !self.config.metadata || newer.is_empty() {
            return Ok(self.stat(&inode));
        }
        self.check_writable()?;
        let open = self.state.lock().unwrap().files.open.get(&ino).map(|e| e.file.clone());
        if let Some(file) = open {
            let mut f = file.lock().await;
            let unlinked = f.unlinked;
            let pending = f.staged.as_ref().filter(|_| !unlinked).map(|s| s.dirty);
            if let Some(dirty) = pending {
                // Every later upload of this file carries it.
                f.pending_meta = f.pending_meta.updated(&newer);
                drop(f);
                let mut st = self.state.lock().unwrap();
                if let Some(i) = st.meta.inodes.get(ino).cloned() {
                    let meta = FileMeta { known: true, ..i.attr.meta.updated(&newer) };
                    st.meta.inodes.set_attr(ino, Attr { meta, ..i.attr });
                }
                let inode = st.meta.inodes.get(ino).cloned().ok_or(FsError::NotFound)?;
                drop(st);
                if dirty {
                    // Not uploaded yet: the upload at close or fsync stores it.
                    return Ok(self.stat(&inode));
                }
                // Everything written is in S3 already (a tool's chmod between its close and the
                // kernel's release, as rsync and cp -p do): store it now too.
            }
        }
        // Whatever the object holds already is kept: read it first when this mount has not.
        let inode = if inode.attr.meta.known { inode } else { self.refresh_attr(&inode).await? };
        let mut meta = inode.attr.meta.updated(&newer);
        if meta.mode.is_none() {
            meta.mode = Some(libc::S_IFREG | u32::from(self.config.file_mode));
        }
        let info = self.client.set_meta(&inode.bucket, &inode.key, &meta).await?;
        self.uploaded(ino, &inode.key, info);
        let inode = self.inode(ino)?;
        Ok(self.stat(&inode))
    }

    /// A symbolic link, stored as s3fs stores them: an object whose body is the target and whose
    /// mode says S_IFLNK.
    pub async fn symlink(&self, parent: u64, name: &str, target: &str) -> FsResult<Stat> {
        let dir = self.creatable_in(parent, name)?;
        let key = dir.child_key(name);
        let meta =
            FileMeta { mode: Some(libc::S_IFLNK | 0o777), mtime: Some(SystemTime::now()), ..FileMeta::default() };
        let info = self.client.put_bytes(&dir.bucket, &key, Bytes::from(target.to_string()), &meta).await?;
        let attr = Attr { meta: info.meta, ..self.fresh_attr(info.size, info.last_modified, Some(info.etag.clone())) };
        let inode = {
            let mut st = self.state.lock().unwrap();
            let inode = st.meta.inodes.upsert(parent, name, Kind::File, attr);
            st.meta.inodes.add_lookup(inode.ino);
            inode
        };
        self.uploaded(inode.ino, &key, info);
        let inode = self.inode(inode.ino)?;
        Ok(self.stat(&inode))
    }

    /// The target of a symbolic link (its object's body).
    pub async fn readlink(&self, ino: u64) -> FsResult<Vec<u8>> {
        let inode = self.inode(ino)?;
        if !inode.attr.meta.is_symlink() {
            return Err(FsError::BadName("not a symbolic link".into()));
        }
        const MAX_TARGET: u64 = 4096;
        let data = self
            .client
            .get_range(&inode.bucket, &inode.key, 0..inode.attr.size.min(MAX_TARGET), inode.attr.etag.as_deref())
            .await?;
        Ok(data.to_vec())
    }
}
