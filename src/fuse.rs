//! The FUSE adapter: turns kernel requests (fuser, several worker threads) into calls on `fs::Fs`,
//! each run as a task on the tokio runtime so a slow S3 request never blocks a worker thread.
//! A [`FsResolver`] picks the `Fs` that serves a request: the mount's one identity, or, in a
//! multi-user mount, the calling user's own. File handles carry the identity's slot in their high
//! bits, so a handle is always served by the identity that opened it.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, KernelConfig, LockOwner,
    OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::fs::inode::ROOT;
use crate::fs::{DirEntry, Fs, FsError, Stat};

/// Bits of a file handle that belong to the identity's own `Fs`; the rest is the identity's slot.
const LOCAL_BITS: u32 = 48;

/// Which filesystem serves a request.
pub trait FsResolver: Send + Sync + 'static {
    /// The filesystem of the user making the request, and its slot.
    fn for_uid(&self, uid: u32, gid: u32) -> Result<(u16, Arc<Fs>), FsError>;
    /// The filesystem that handed out handles of `slot`.
    fn for_slot(&self, slot: u16) -> Option<Arc<Fs>>;
    /// How long the kernel may keep entries and attributes (0 when users must not share them).
    fn ttl(&self) -> Duration;
    /// Bypass the kernel's page cache, so no user is ever served another user's pages.
    fn direct_io(&self) -> bool;
    /// The kernel dropped references to `ino`.
    fn forget(&self, ino: u64, n: u64);
    /// The root directory as shown to a user who has no filesystem (no login).
    fn bare_root(&self, uid: u32, gid: u32) -> Stat;
    /// Every filesystem in memory, for flushing data being written before unmount.
    fn all(&self) -> Vec<Arc<Fs>>;
}

/// A mount with one identity: every request is served by the same filesystem.
pub struct SingleUser(pub Arc<Fs>);

impl FsResolver for SingleUser {
    fn for_uid(&self, _uid: u32, _gid: u32) -> Result<(u16, Arc<Fs>), FsError> {
        Ok((0, self.0.clone()))
    }
    fn for_slot(&self, slot: u16) -> Option<Arc<Fs>> {
        (slot == 0).then(|| self.0.clone())
    }
    fn ttl(&self) -> Duration {
        self.0.config().attr_ttl
    }
    fn direct_io(&self) -> bool {
        false
    }
    fn forget(&self, ino: u64, n: u64) {
        self.0.forget(ino, n);
    }
    fn all(&self) -> Vec<Arc<Fs>> {
        vec![self.0.clone()]
    }
    fn bare_root(&self, _uid: u32, _gid: u32) -> Stat {
        self.0.root_stat().unwrap_or_else(|_| Stat {
            symlink: false,
            ino: ROOT,
            is_dir: true,
            size: 0,
            mtime: SystemTime::now(),
            perm: 0o755,
            uid: 0,
            gid: 0,
        })
    }
}

pub struct FuseAdapter {
    resolver: Arc<dyn FsResolver>,
    rt: tokio::runtime::Handle,
    /// Directory snapshots taken at opendir, so paging through readdir is consistent.
    dirs: Arc<Mutex<HashMap<u64, Arc<Vec<DirEntry>>>>>,
    next_dir_fh: Arc<Mutex<u64>>,
}

impl FuseAdapter {
    pub fn new(resolver: Arc<dyn FsResolver>, rt: tokio::runtime::Handle) -> Self {
        FuseAdapter { resolver, rt, dirs: Arc::default(), next_dir_fh: Arc::new(Mutex::new(1)) }
    }

    fn ttl(&self) -> Duration {
        self.resolver.ttl()
    }

    fn fs(&self, req: &Request) -> Result<(u16, Arc<Fs>), Errno> {
        self.resolver.for_uid(req.uid(), req.gid()).map_err(|e| errno(&e))
    }

    /// The filesystem that issued `fh`, and the handle as that filesystem knows it.
    fn fs_of_handle(&self, fh: FileHandle) -> Result<(Arc<Fs>, u64), Errno> {
        let slot = (fh.0 >> LOCAL_BITS) as u16;
        let fs = self.resolver.for_slot(slot).ok_or(Errno::EBADF)?;
        Ok((fs, fh.0 & ((1 << LOCAL_BITS) - 1)))
    }

    fn open_flags(&self) -> FopenFlags {
        if self.resolver.direct_io() { FopenFlags::FOPEN_DIRECT_IO } else { FopenFlags::empty() }
    }
}

fn handle(slot: u16, local: u64) -> FileHandle {
    FileHandle(((slot as u64) << LOCAL_BITS) | local)
}

fn errno(e: &FsError) -> Errno {
    Errno::from_i32(e.errno())
}

/// A failed operation's errno, logged once here: at WARN with the error (the S3 error included), or
/// at DEBUG for answers that are routine (a name that does not exist, already exists, a directory
/// not empty).
fn failed(op: &'static str, e: &FsError) -> Errno {
    match e {
        FsError::NotFound | FsError::Exists | FsError::NotEmpty => tracing::debug!(op, error = %e, "operation failed"),
        _ => tracing::warn!(op, error = %e, errno = e.errno(), "operation failed"),
    }
    errno(e)
}

fn to_attr(s: &Stat) -> FileAttr {
    FileAttr {
        ino: INodeNo(s.ino),
        size: s.size,
        blocks: s.size.div_ceil(512),
        atime: s.mtime,
        mtime: s.mtime,
        ctime: s.mtime,
        crtime: s.mtime,
        kind: if s.is_dir {
            FileType::Directory
        } else if s.symlink {
            FileType::Symlink
        } else {
            FileType::RegularFile
        },
        perm: s.perm,
        nlink: if s.is_dir { 2 } else { 1 },
        uid: s.uid,
        gid: s.gid,
        rdev: 0,
        blksize: 1 << 20,
        flags: 0,
    }
}

/// A name from the kernel as a key segment: longer than NAME_MAX (255 bytes) is ENAMETOOLONG, as
/// on every Linux filesystem (FUSE leaves the check to us), and not UTF-8 is EINVAL.
fn name_str(name: &OsStr) -> Result<String, Errno> {
    if name.len() > 255 {
        return Err(Errno::ENAMETOOLONG);
    }
    name.to_str().map(str::to_string).ok_or(Errno::EINVAL)
}

/// The most one FUSE read or write carries (the kernel's limit is 256 pages).
pub const MAX_REQUEST: u32 = 1 << 20;

impl Filesystem for FuseAdapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Listings carry attributes: readdirplus lets `ls -l` skip a lookup per entry.
        let _ =
            config.add_capabilities(fuser::InitFlags::FUSE_DO_READDIRPLUS | fuser::InitFlags::FUSE_READDIRPLUS_AUTO);
        let _ = config.set_max_readahead(MAX_REQUEST);
        let _ = config.set_max_write(MAX_REQUEST);
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let ttl = self.ttl();
        let fs = match self.fs(req) {
            Ok((_, fs)) => fs,
            Err(e) => return reply.error(e),
        };
        let name = match name_str(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.rt.spawn(async move {
            match fs.lookup(parent.0, &name).await {
                Ok(stat) => {
                    fs.remember(stat.ino);
                    reply.entry(&ttl, &to_attr(&stat), Generation(0));
                }
                Err(e) => reply.error(failed("lookup", &e)),
            }
        });
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.resolver.forget(ino.0, nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let ttl = self.ttl();
        let fs = match self.fs(req) {
            Ok((_, fs)) => fs,
            Err(_) if ino.0 == ROOT => {
                return reply.attr(&ttl, &to_attr(&self.resolver.bare_root(req.uid(), req.gid())));
            }
            Err(e) => return reply.error(e),
        };
        self.rt.spawn(async move {
            match fs.getattr(ino.0).await {
                Ok(stat) => reply.attr(&ttl, &to_attr(&stat)),
                Err(e) => reply.error(failed("getattr", &e)),
            }
        });
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
        let (fs, fh) = match fh {
            Some(fh) => match self.fs_of_handle(fh) {
                Ok((fs, local)) => (fs, Some(local)),
                Err(e) => return reply.error(e),
            },
            None => match self.fs(req) {
                Ok((_, fs)) => (fs, None),
                Err(e) => return reply.error(e),
            },
        };
        self.rt.spawn(async move {
            // Mode, mtime and owner go to the object's metadata (atime is not kept).
            let newer = crate::object::meta::FileMeta {
                mode: mode.map(|m| if m & libc::S_IFMT == 0 { libc::S_IFREG | m } else { m }),
                mtime: mtime.map(|t| match t {
                    TimeOrNow::SpecificTime(t) => t,
                    TimeOrNow::Now => SystemTime::now(),
                }),
                uid,
                gid,
                known: false,
            };
            let result = async {
                if let Some(size) = size {
                    fs.set_size(ino.0, fh, size).await?;
                }
                if !newer.is_empty() {
                    return fs.set_meta(ino.0, newer).await;
                }
                fs.getattr(ino.0).await
            };
            let result = result.await;
            match result {
                Ok(stat) => reply.attr(&ttl, &to_attr(&stat)),
                Err(e) => reply.error(failed("setattr", &e)),
            }
        });
    }

    /// A symbolic link, stored as s3fs stores them (see `Fs::symlink`).
    fn symlink(&self, req: &Request, parent: INodeNo, link_name: &OsStr, target: &std::path::Path, reply: ReplyEntry) {
        let ttl = self.ttl();
        let fs = match self.fs(req) {
            Ok((_, fs)) => fs,
            Err(e) => return reply.error(e),
        };
        let name = match name_str(link_name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let Some(target) = target.to_str().map(str::to_string) else { return reply.error(Errno::EINVAL) };
        self.rt.spawn(async move {
            match fs.symlink(parent.0, &name, &target).await {
                Ok(stat) => {
                    fs.remember(stat.ino);
                    reply.entry(&ttl, &to_attr(&stat), Generation(0));
                }
                Err(e) => reply.error(failed("symlink", &e)),
            }
        });
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        let fs = match self.fs(req) {
            Ok((_, fs)) => fs,
            Err(e) => return reply.error(e),
        };
        self.rt.spawn(async move {
            match fs.readlink(ino.0).await {
                Ok(target) => reply.data(&target),
                Err(e) => reply.error(failed("readlink", &e)),
            }
        });
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
            return reply.error(Errno::EPERM);
        }
        let ttl = self.ttl();
        let fs = match self.fs(req) {
            Ok((_, fs)) => fs,
            Err(e) => return reply.error(e),
        };
        let name = match name_str(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.rt.spawn(async move {
            let made = async {
                let (stat, fh) = fs.create(parent.0, &name, false, Some(mode & !umask)).await?;
                fs.release(fh).await?;
                Ok::<_, crate::fs::FsError>(stat)
            };
            match made.await {
                Ok(stat) => {
                    fs.remember(stat.ino);
                    reply.entry(&ttl, &to_attr(&stat), Generation(0));
                }
                Err(e) => reply.error(failed("mknod", &e)),
            }
        });
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, _mode: u32, _umask: u32, reply: ReplyEntry) {
        let ttl = self.ttl();
        let fs = match self.fs(req) {
            Ok((_, fs)) => fs,
            Err(e) => return reply.error(e),
        };
        let name = match name_str(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.rt.spawn(async move {
            match fs.mkdir(parent.0, &name).await {
                Ok(stat) => {
                    fs.remember(stat.ino);
                    reply.entry(&ttl, &to_attr(&stat), Generation(0));
                }
                Err(e) => reply.error(failed("mkdir", &e)),
            }
        });
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let fs = match self.fs(req) {
            Ok((_, fs)) => fs,
            Err(e) => return reply.error(e),
        };
        let name = match name_str(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.rt.spawn(async move {
            match fs.unlink(parent.0, &name).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(failed("unlink", &e)),
            }
        });
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let fs = match self.fs(req) {
            Ok((_, fs)) => fs,
            Err(e) => return reply.error(e),
        };
        let name = match name_str(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.rt.spawn(async move {
            match fs.rmdir(parent.0, &name).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(failed("rmdir", &e)),
            }
        });
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let fs = match self.fs(req) {
            Ok((_, fs)) => fs,
            Err(e) => return reply.error(e),
        };
        let (name, newname) = match (name_str(name), name_str(newname)) {
            (Ok(a), Ok(b)) => (a, b),
            _ => return reply.error(Errno::EINVAL),
        };
        self.rt.spawn(async move {
            match fs.rename(parent.0, &name, newparent.0, &newname).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(failed("rename", &e)),
            }
        });
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let (slot, fs) = match self.fs(req) {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        let open_flags = self.open_flags();
        let write = !matches!(flags.acc_mode(), OpenAccMode::O_RDONLY);
        let truncate = flags.0 & libc::O_TRUNC != 0;
        let append = flags.0 & libc::O_APPEND != 0;
        self.rt.spawn(async move {
            match fs.open(ino.0, write, truncate, append).await {
                Ok(fh) => {
                    // Unchanged since the last open: the kernel's cached pages are still right.
                    let flags = if fs.keep_cache(fh) { open_flags | FopenFlags::FOPEN_KEEP_CACHE } else { open_flags };
                    reply.opened(handle(slot, fh), flags)
                }
                Err(e) => reply.error(failed("open", &e)),
            }
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
        let (fs, fh) = match self.fs_of_handle(fh) {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        self.rt.spawn(async move {
            match fs.read(fh, offset, size).await {
                Ok(data) => reply.data(&data),
                Err(e) => reply.error(failed("read", &e)),
            }
        });
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
        let (fs, fh) = match self.fs_of_handle(fh) {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        let data = data.to_vec();
        self.rt.spawn(async move {
            match fs.write(fh, offset, &data).await {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(failed("write", &e)),
            }
        });
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        let (fs, fh) = match self.fs_of_handle(fh) {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        self.rt.spawn(async move {
            match fs.flush(fh).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(failed("flush", &e)),
            }
        });
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        self.flush(_req, _ino, fh, LockOwner(0), reply);
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
        let (fs, fh) = match self.fs_of_handle(fh) {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        self.rt.spawn(async move {
            match fs.release(fh).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(failed("release", &e)),
            }
        });
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
        let ttl = self.ttl();
        let (slot, fs) = match self.fs(req) {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        let open_flags = self.open_flags();
        let name = match name_str(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.rt.spawn(async move {
            match fs.create(parent.0, &name, flags & libc::O_APPEND != 0, Some(mode & !umask)).await {
                Ok((stat, fh)) => {
                    fs.remember(stat.ino);
                    reply.created(&ttl, &to_attr(&stat), Generation(0), handle(slot, fh), open_flags);
                }
                Err(e) => reply.error(failed("create", &e)),
            }
        });
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let (dirs, next) = (self.dirs.clone(), self.next_dir_fh.clone());
        // A user without a filesystem (no login) sees an empty root and nothing else.
        let fs = match self.fs(req) {
            Ok((_, fs)) => Some(fs),
            Err(_) if ino.0 == ROOT => None,
            Err(e) => return reply.error(e),
        };
        self.rt.spawn(async move {
            let entries = match fs {
                Some(fs) => fs.readdir(ino.0).await,
                None => Ok(Vec::new()),
            };
            match entries {
                Ok(entries) => {
                    let fh = {
                        let mut n = next.lock().unwrap();
                        *n += 1;
                        *n
                    };
                    dirs.lock().unwrap().insert(fh, Arc::new(entries));
                    reply.opened(FileHandle(fh), FopenFlags::empty());
                }
                Err(e) => reply.error(failed("opendir", &e)),
            }
        });
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let Some(entries) = self.dirs.lock().unwrap().get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        let dots = [(ino.0, ".".to_string(), true), (ino.0, "..".to_string(), true)];
        let all = dots.into_iter().chain(entries.iter().map(|e| (e.stat.ino, e.name.clone(), e.stat.is_dir)));
        for (i, (ino, name, is_dir)) in all.enumerate().skip(offset as usize) {
            let kind = if is_dir { FileType::Directory } else { FileType::RegularFile };
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn readdirplus(&self, req: &Request, ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectoryPlus) {
        let Some(entries) = self.dirs.lock().unwrap().get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        let ttl = self.ttl();
        let fs = self.fs(req).ok().map(|(_, fs)| fs);
        let mut me = match &fs {
            Some(fs) => fs.root_stat().unwrap_or_else(|_| self.resolver.bare_root(req.uid(), req.gid())),
            None => self.resolver.bare_root(req.uid(), req.gid()),
        };
        me.ino = ino.0;
        let dots = [(".".to_string(), me.clone()), ("..".to_string(), me)];
        let all = dots.into_iter().chain(entries.iter().map(|e| (e.name.clone(), e.stat.clone())));
        for (i, (name, stat)) in all.enumerate().skip(offset as usize) {
            if reply.add(INodeNo(stat.ino), (i + 1) as u64, &name, &ttl, &to_attr(&stat), Generation(0)) {
                break;
            }
            if i >= 2
                && let Some(fs) = &fs
            {
                fs.remember(stat.ino);
            }
        }
        reply.ok();
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        self.dirs.lock().unwrap().remove(&fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // S3 has no capacity to report: large, sane numbers keep df and file managers happy.
        const BLOCKS: u64 = 1 << 40;
        reply.statfs(BLOCKS, BLOCKS, BLOCKS, 1 << 32, 1 << 32, 1 << 20, 255, 1 << 20);
    }
}
