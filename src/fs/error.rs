//! The filesystem's errors and their one mapping to errno.

use crate::object::ObjectError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum FsError {
    #[error("no such file or directory")]
    NotFound,
    #[error("permission denied: {0}")]
    Access(String),
    #[error("directory not empty")]
    NotEmpty,
    #[error("read-only mount")]
    ReadOnly,
    #[error("already exists")]
    Exists,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("name cannot be used in S3: {0}")]
    BadName(String),
    #[error("not supported: {0}")]
    NotSupported(&'static str),
    #[error("bad file handle")]
    BadHandle,
    #[error("I/O error: {0}")]
    Io(String),
    #[error("no space left: {0}")]
    NoSpace(String),
}

impl FsError {
    /// The one place filesystem errors become errno values.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::Access(_) => libc::EACCES,
            FsError::NotEmpty => libc::ENOTEMPTY,
            FsError::ReadOnly => libc::EROFS,
            FsError::Exists => libc::EEXIST,
            FsError::NotDir => libc::ENOTDIR,
            FsError::IsDir => libc::EISDIR,
            FsError::BadName(_) => libc::EINVAL,
            FsError::NotSupported(_) => libc::ENOTSUP,
            FsError::BadHandle => libc::EBADF,
            FsError::Io(_) => libc::EIO,
            FsError::NoSpace(_) => libc::ENOSPC,
        }
    }
}

impl From<ObjectError> for FsError {
    fn from(e: ObjectError) -> Self {
        match e {
            ObjectError::NotFound => FsError::NotFound,
            ObjectError::AccessDenied => FsError::Access("the bucket policy does not allow this".into()),
            // Expired credentials that cannot be renewed are a permission problem the user can fix by
            // logging in again, not an I/O error.
            ObjectError::NoCredentials(why) => FsError::Access(why),
            ObjectError::Changed => FsError::Io("the object changed while it was being read".into()),
            ObjectError::Unavailable(why) | ObjectError::Other(why) => FsError::Io(why),
        }
    }
}

impl From<std::io::Error> for FsError {
    fn from(e: std::io::Error) -> Self {
        FsError::Io(e.to_string())
    }
}

pub type FsResult<T> = Result<T, FsError>;
