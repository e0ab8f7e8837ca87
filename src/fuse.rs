//! The FUSE adapter: turns kernel requests (fuser, several worker threads) into calls on `fs::Fs`,
//! each run as a task on the tokio runtime so a slow S3 request never blocks a worker thread.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, KernelConfig, LockOwner,
    OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::fs::{DirEntry, Fs, FsError, Stat};

pub struct FuseAdapter {
    fs: Arc<Fs>,
    rt: tokio::runtime::Handle,
    /// Directory snapshots taken at opendir, so paging through readdir is consistent.
    dirs: Arc<Mutex<HashMap<u64, Arc<Vec<DirEntry>>>>>,
    next_dir_fh: Arc<Mutex<u64>>,
}

impl FuseAdapter {
    pub fn new(fs: Arc<Fs>, rt: tokio::runtime::Handle) -> Self {
        FuseAdapter { fs, rt, dirs: Arc::default(), next_dir_fh: Arc::new(Mutex::new(1)) }
    }

    fn ttl(&self) -> Duration {
        self.fs.config().attr_ttl
    }
}

fn errno(e: &FsError) -> Errno {
    Errno::from_i32(e.errno())
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
        kind: if s.is_dir { FileType::Directory } else { FileType::RegularFile },
        perm: s.perm,
        nlink: if s.is_dir { 2 } else { 1 },
        uid: s.uid,
        gid: s.gid,
        rdev: 0,
        blksize: 1 << 20,
        flags: 0,
    }
}

fn name_str(name: &OsStr) -> Result<String, Errno> {
    name.to_str().map(str::to_string).ok_or(Errno::EINVAL)
}

impl Filesystem for FuseAdapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Listings carry attributes: readdirplus lets `ls -l` skip a lookup per entry.
        let _ =
            config.add_capabilities(fuser::InitFlags::FUSE_DO_READDIRPLUS | fuser::InitFlags::FUSE_READDIRPLUS_AUTO);
        let _ = config.set_max_readahead(1 << 20);
        let _ = config.set_max_write(1 << 20);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let (fs, ttl) = (self.fs.clone(), self.ttl());
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
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let (fs, ttl) = (self.fs.clone(), self.ttl());
        self.rt.spawn(async move {
            match fs.getattr(ino.0).await {
                Ok(stat) => reply.attr(&ttl, &to_attr(&stat)),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let (fs, ttl) = (self.fs.clone(), self.ttl());
        self.rt.spawn(async move {
            // Times, modes and owners are accepted and not stored: S3 keeps none of them.
            let result = match size {
                Some(size) => fs.set_size(ino.0, fh.map(|f| f.0), size).await,
                None => fs.getattr(ino.0).await,
            };
            match result {
                Ok(stat) => reply.attr(&ttl, &to_attr(&stat)),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn mkdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, _mode: u32, _umask: u32, reply: ReplyEntry) {
        let (fs, ttl) = (self.fs.clone(), self.ttl());
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
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let fs = self.fs.clone();
        let name = match name_str(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.rt.spawn(async move {
            match fs.unlink(parent.0, &name).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let fs = self.fs.clone();
        let name = match name_str(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.rt.spawn(async move {
            match fs.rmdir(parent.0, &name).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let fs = self.fs.clone();
        let (name, newname) = match (name_str(name), name_str(newname)) {
            (Ok(a), Ok(b)) => (a, b),
            _ => return reply.error(Errno::EINVAL),
        };
        self.rt.spawn(async move {
            match fs.rename(parent.0, &name, newparent.0, &newname).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let fs = self.fs.clone();
        let write = !matches!(flags.acc_mode(), OpenAccMode::O_RDONLY);
        let truncate = flags.0 & libc::O_TRUNC != 0;
        self.rt.spawn(async move {
            match fs.open(ino.0, write, truncate).await {
                Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
                Err(e) => reply.error(errno(&e)),
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
        let fs = self.fs.clone();
        self.rt.spawn(async move {
            match fs.read(fh.0, offset, size).await {
                Ok(data) => reply.data(&data),
                Err(e) => reply.error(errno(&e)),
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
        let fs = self.fs.clone();
        let data = data.to_vec();
        self.rt.spawn(async move {
            match fs.write(fh.0, offset, &data).await {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        let fs = self.fs.clone();
        self.rt.spawn(async move {
            match fs.flush(fh.0).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(&e)),
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
        let fs = self.fs.clone();
        self.rt.spawn(async move {
            match fs.release(fh.0).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let (fs, ttl) = (self.fs.clone(), self.ttl());
        let name = match name_str(name) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.rt.spawn(async move {
            match fs.create(parent.0, &name).await {
                Ok((stat, fh)) => {
                    fs.remember(stat.ino);
                    reply.created(&ttl, &to_attr(&stat), Generation(0), FileHandle(fh), FopenFlags::empty());
                }
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let (fs, dirs, next) = (self.fs.clone(), self.dirs.clone(), self.next_dir_fh.clone());
        self.rt.spawn(async move {
            match fs.readdir(ino.0).await {
                Ok(entries) => {
                    let fh = {
                        let mut n = next.lock().unwrap();
                        *n += 1;
                        *n
                    };
                    dirs.lock().unwrap().insert(fh, Arc::new(entries));
                    reply.opened(FileHandle(fh), FopenFlags::empty());
                }
                Err(e) => reply.error(errno(&e)),
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

    fn readdirplus(&self, _req: &Request, ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectoryPlus) {
        let Some(entries) = self.dirs.lock().unwrap().get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        let ttl = self.ttl();
        let Ok(me) = self.fs.root_stat().map(|mut s| {
            s.ino = ino.0;
            s
        }) else {
            return reply.error(Errno::EIO);
        };
        let dots = [(".".to_string(), me.clone()), ("..".to_string(), me)];
        let all = dots.into_iter().chain(entries.iter().map(|e| (e.name.clone(), e.stat.clone())));
        for (i, (name, stat)) in all.enumerate().skip(offset as usize) {
            if reply.add(INodeNo(stat.ino), (i + 1) as u64, &name, &ttl, &to_attr(&stat), Generation(0)) {
                break;
            }
            if i >= 2 {
                self.fs.remember(stat.ino);
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
