//! Replies to the kernel: attributes, names, and errors — every failure logged once, here.

use std::ffi::OsStr;

use fuser::{
    Errno, FileAttr, FileType, INodeNo, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite,
};

use crate::fs::{FsError, Stat};

/// A reply that can carry an errno.
pub(super) trait ErrorReply: Send + 'static {
    fn fail(self, errno: Errno);
}

macro_rules! error_replies {
    ($($reply:ty),* $(,)?) => {
        $(impl ErrorReply for $reply {
            fn fail(self, errno: Errno) {
                self.error(errno)
            }
        })*
    };
}

error_replies!(
    ReplyAttr,
    ReplyCreate,
    ReplyData,
    ReplyDirectory,
    ReplyDirectoryPlus,
    ReplyEmpty,
    ReplyEntry,
    ReplyOpen,
    ReplyWrite
);

/// A failed operation's errno, counted and logged once here: at WARN with the error and its sources (the S3
/// error included), or at DEBUG for answers that are routine (a name that does not exist, already
/// exists, a directory not empty, a request the kernel may retry another way).
pub(super) fn failed(op: &'static str, e: &FsError) -> Errno {
    match e {
        FsError::NotFound | FsError::Exists | FsError::NotEmpty | FsError::CrossBucket => {
            tracing::debug!(op, error = %e.chain(), errno = e.errno(), "operation failed")
        }
        _ => tracing::warn!(op, error = %e.chain(), errno = e.errno(), "operation failed"),
    }
    crate::metrics::series::fuse_op(op, e.errno());
    Errno::from_i32(e.errno())
}

/// A name from the kernel as a key segment: longer than NAME_MAX (255 bytes) is ENAMETOOLONG, as
/// on every Linux filesystem (FUSE leaves the check to us), and not UTF-8 is EINVAL.
pub(super) fn name_str(name: &OsStr) -> Result<String, FsError> {
    if name.len() > 255 {
        return Err(FsError::NameTooLong);
    }
    name.to_str().map(str::to_string).ok_or_else(|| FsError::BadName("not UTF-8".into()))
}

pub(super) fn to_attr(s: &Stat) -> FileAttr {
    FileAttr {
        ino: INodeNo(s.ino),
        size: s.size,
        blocks: s.size.div_ceil(512),
        atime: s.mtime,
        mtime: s.mtime,
        ctime: s.mtime,
        crtime: s.mtime,
        kind: file_type(s),
        perm: s.perm,
        nlink: if s.is_dir { 2 } else { 1 },
        uid: s.uid,
        gid: s.gid,
        rdev: 0,
        blksize: 1 << 20,
        flags: 0,
    }
}

pub(super) fn file_type(s: &Stat) -> FileType {
    if s.is_dir {
        FileType::Directory
    } else if s.symlink {
        FileType::Symlink
    } else {
        FileType::RegularFile
    }
}
