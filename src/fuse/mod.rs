//! The FUSE adapter, kept thin: every kernel request (fuser, several worker threads) picks the
//! filesystem that serves it, runs on its worker until it would wait and then as a task on the
//! tokio runtime (so a slow S3 request never blocks a worker thread, and an answer from memory
//! costs no task), and is answered through one helper ([`FuseAdapter::serve`]) that logs every
//! failure with its errno. The filesystem (`crate::fs`) does the work and the bookkeeping.
//!
//! File handles carry the identity's slot in their high bits, so a handle is always served by the
//! identity that opened it (multi-user mounts: see [`FsResolver`]).

mod dispatch;
mod readdirplus;
mod reply;

pub use self::dispatch::FuseAdapter;
use self::dispatch::handle;

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::SystemTime;

use fuser::{
    Errno, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, KernelConfig, LockOwner, OpenAccMode,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use self::reply::{ErrorReply, failed, file_type, name_str, to_attr};
use crate::fs::handles::OpenMode;
use crate::fs::inode::ROOT;
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::fs::{Fs, FsError, FsResult, RenameMode};
use crate::object::meta::FileMeta;

/// Bits of a file handle that belong to the identity's own `Fs`; the rest is the identity's slot.
pub(crate) const LOCAL_BITS: u32 = 48;

/// The directory handle of a user without a filesystem (no login): an empty root.
pub(crate) const EMPTY_DIR: u64 = 0;

/// The most one FUSE read or write carries (the kernel's limit is 256 pages).
pub const MAX_REQUEST: u32 = 1 << 20;

impl Filesystem for FuseAdapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Listings carry attributes: readdirplus lets `ls -l` skip a lookup per entry.
        let _ =
            config.add_capabilities(fuser::InitFlags::FUSE_DO_READDIRPLUS | fuser::InitFlags::FUSE_READDIRPLUS_AUTO);
        // Small writes then cost a page-cache copy each, not a round trip to this process: 150-byte
        // rows cost 23.6-30.4 µs a write() without it, 1.0-1.2 µs on ext4 (bench item 9).
        if self.resolver.writeback_cache() && config.add_capabilities(fuser::InitFlags::FUSE_WRITEBACK_CACHE).is_err() {
            tracing::warn!("this kernel has no FUSE writeback cache: writeback_cache is ignored");
        }
        let _ = config.set_max_readahead(MAX_REQUEST);
        let _ = config.set_max_write(MAX_REQUEST);
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let work =
            self.fs_and_name(req, name).map(|(fs, name)| async move { fs.await?.1.lookup(parent.0, &name).await });
        self.serve_entry("lookup", reply, work);
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.resolver.forget(ino.0, nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let ttl = self.ttl();
        let (fs, bare_root) = (self.fs(req), self.resolver.bare_root(req.uid(), req.gid()));
        let work = Ok(async move {
            match fs.await {
                Ok((_, fs)) => fs.getattr(ino.0).await,
                // A user with no filesystem (no login) still sees the root.
                Err(_) if ino.0 == ROOT => Ok(bare_root),
                Err(e) => Err(e),
            }
        });
        self.serve("getattr", reply, work, move |r, stat| r.attr(&ttl, &to_attr(&stat)));
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let ttl = self.ttl();
        let fs: BoxFuture<'static, FsResult<(Arc<Fs>, Option<u64>)>> = match fh {
            Some(fh) => futures::future::ready(self.fs_of_handle(fh).map(|(fs, local)| (fs, Some(local)))).boxed(),
            None => self.fs(req).map(|fs| fs.map(|(_, fs)| (fs, None))).boxed(),
        };
        // Mode, mtime and owner go to the object's metadata (atime is not kept).
        let newer = FileMeta {
            mode: mode.map(|m| if m & libc::S_IFMT == 0 { libc::S_IFREG | m } else { m }),
            mtime: mtime.map(|t| match t {
                TimeOrNow::SpecificTime(t) => t,
                TimeOrNow::Now => SystemTime::now(),
            }),
            uid,
            gid,
            known: false,
        };
        let work = Ok(async move {
            let (fs, fh) = fs.await?;
            if let Some(size) = size {
                fs.set_size(ino.0, fh, size).await?;
            }
            if !newer.is_empty() {
                return fs.set_meta(ino.0, newer).await;
            }
            fs.getattr(ino.0).await
        });
        self.serve("setattr", reply, work, move |r, stat| r.attr(&ttl, &to_attr(&stat)));
    }

    /// A symbolic link, stored as s3fs stores them (see `Fs::symlink`).
    fn symlink(&self, req: &Request, parent: INodeNo, link_name: &OsStr, target: &std::path::Path, reply: ReplyEntry) {
        let target = target.to_str().map(str::to_string).ok_or_else(|| FsError::BadName("target not UTF-8".into()));
        let work = self
            .fs_and_name(req, link_name)
            .and_then(|(fs, name)| Ok((fs, name, target?)))
            .map(|(fs, name, target)| async move { fs.await?.1.symlink(parent.0, &name, &target).await });
        self.serve_entry("symlink", reply, work);
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        let fs = self.fs(req);
        let work = Ok(async move { fs.await?.1.readlink(ino.0).await });
        self.serve("readlink", reply, work, |r, target: Vec<u8>| r.data(&target));
    }

    /// A regular file (`mknod` with S_IFREG, as some tools create empty files) is created and
    /// uploaded empty; FIFOs, sockets and devices cannot be objects: EPERM, as on other S3
    /// filesystems (ENOSYS made `mkfifo` say "Function not implemented").
    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            crate::metrics::series::fuse_op("mknod", libc::EPERM);
            return reply.error(Errno::EPERM);
        }
        let work = self.fs_and_name(req, name).map(|(fs, name)| async move {
            let fs = fs.await?.1;
            let (stat, fh) = fs.create(parent.0, &name, OpenMode::WRITE, Some(mode & !umask)).await?;
            fs.release(fh).await?;
            Ok(stat)
        });
        self.serve_entry("mknod", reply, work);
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, _mode: u32, _umask: u32, reply: ReplyEntry) {
        let work =
            self.fs_and_name(req, name).map(|(fs, name)| async move { fs.await?.1.mkdir(parent.0, &name).await });
        self.serve_entry("mkdir", reply, work);
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let work =
            self.fs_and_name(req, name).map(|(fs, name)| async move { fs.await?.1.unlink(parent.0, &name).await });
        self.serve("unlink", reply, work, |r, ()| r.ok());
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let work =
            self.fs_and_name(req, name).map(|(fs, name)| async move { fs.await?.1.rmdir(parent.0, &name).await });
        self.serve("rmdir", reply, work, |r, ()| r.ok());
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mode = if flags.contains(RenameFlags::RENAME_EXCHANGE) {
            RenameMode::Exchange
        } else if flags.contains(RenameFlags::RENAME_NOREPLACE) {
            RenameMode::NoReplace
        } else {
            RenameMode::Replace
        };
        let work = self.fs_and_name(req, name).and_then(|(fs, name)| Ok((fs, name, name_str(newname)?))).map(
            |(fs, name, newname)| async move { fs.await?.1.rename(parent.0, &name, newparent.0, &newname, mode).await },
        );
        self.serve("rename", reply, work, |r, ()| r.ok());
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let open_flags = self.open_flags();
        let mode = OpenMode {
            write: !matches!(flags.acc_mode(), OpenAccMode::O_RDONLY),
            truncate: flags.0 & libc::O_TRUNC != 0,
            append: flags.0 & libc::O_APPEND != 0,
        };
        let fs = self.fs(req);
        let work = Ok(async move {
            let (slot, fs) = fs.await?;
            let fh = fs.open(ino.0, mode).await?;
            // Unchanged since the last open: the kernel's cached pages are still right.
            let keep = fs.keep_cache(fh);
            Ok((handle(slot, fh), keep))
        });
        self.serve("open", reply, work, move |r, (fh, keep)| {
            r.opened(fh, if keep { open_flags | FopenFlags::FOPEN_KEEP_CACHE } else { open_flags })
        });
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let work = self.fs_of_handle(fh).map(|(fs, fh)| async move { fs.read(fh, offset, size).await });
        self.serve("read", reply, work, |r, data: bytes::Bytes| r.data(&data));
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        // Served on this thread when the file is free (a write is one local pwrite): a task per
        // write cost a copy and two thread wake-ups, about 30 µs of a 150-byte write's 35.
        let (fs, fh) = match self.fs_of_handle(fh) {
            Ok(found) => found,
            Err(e) => return reply.fail(failed("write", &e)),
        };
        match fs.write_now(fh, offset, data) {
            Some(Ok(n)) => {
                crate::metrics::series::fuse_op("write", 0);
                reply.written(n)
            }
            Some(Err(e)) => reply.fail(failed("write", &e)),
            None => {
                let data = data.to_vec();
                let work = Ok(async move { fs.write(fh, offset, &data).await });
                self.serve("write", reply, work, |r, n| r.written(n));
            }
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        let work = self.fs_of_handle(fh).map(|(fs, fh)| async move { fs.flush(fh).await });
        self.serve("flush", reply, work, |r, ()| r.ok());
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let work = self.fs_of_handle(fh).map(|(fs, fh)| async move { fs.flush(fh).await });
        self.serve("fsync", reply, work, |r, ()| r.ok());
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let work = self.fs_of_handle(fh).map(|(fs, fh)| async move { fs.release(fh).await });
        self.serve("release", reply, work, |r, ()| r.ok());
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let (ttl, open_flags) = (self.ttl(), self.open_flags());
        let open = OpenMode { append: flags & libc::O_APPEND != 0, ..OpenMode::WRITE };
        let work = self.fs_and_name(req, name).map(|(fs, name)| async move {
            let (slot, fs) = fs.await?;
            let (stat, fh) = fs.create(parent.0, &name, open, Some(mode & !umask)).await?;
            Ok((stat, handle(slot, fh)))
        });
        self.serve("create", reply, work, move |r, (stat, fh)| {
            r.created(&ttl, &to_attr(&stat), Generation(0), fh, open_flags)
        });
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let fs = self.fs(req);
        let work = Ok(async move {
            match fs.await {
                Ok((slot, fs)) => Ok(handle(slot, fs.opendir(ino.0).await?)),
                // A user without a filesystem (no login) sees an empty root and nothing else.
                Err(_) if ino.0 == ROOT => Ok(FileHandle(EMPTY_DIR)),
                Err(e) => Err(e),
            }
        });
        self.serve("opendir", reply, work, |r, fh| r.opened(fh, FopenFlags::empty()));
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let entries = match self.dir_snapshot(fh) {
            Ok(entries) => entries,
            Err(e) => return reply.fail(failed("readdir", &e)),
        };
        let dots = [(ino.0, ".".to_string(), FileType::Directory), (ino.0, "..".to_string(), FileType::Directory)];
        let all = dots.into_iter().chain(entries.iter().map(|e| (e.stat.ino, e.name.clone(), file_type(&e.stat))));
        for (i, (ino, name, kind)) in all.enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        crate::metrics::series::fuse_op("readdir", 0);
        reply.ok();
    }

    fn readdirplus(&self, req: &Request, ino: INodeNo, fh: FileHandle, offset: u64, reply: ReplyDirectoryPlus) {
        self.serve_readdirplus(req, ino, fh, offset, reply);
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        if fh.0 != EMPTY_DIR
            && let Ok((fs, local)) = self.fs_of_handle(fh)
        {
            fs.releasedir(local);
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // S3 has no capacity to report: large, sane numbers keep df and file managers happy.
        const BLOCKS: u64 = 1 << 40;
        reply.statfs(BLOCKS, BLOCKS, BLOCKS, 1 << 32, 1 << 32, 1 << 20, 255, 1 << 20);
    }
}
