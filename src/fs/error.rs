//! The filesystem's errors and their one mapping to errno.

use std::sync::Arc;

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
    #[error("name longer than 255 bytes")]
    NameTooLong,
    #[error("invalid request: {0}")]
    Invalid(&'static str),
    #[error("not supported: {0}")]
    NotSupported(&'static str),
    /// A rename between buckets: S3 cannot, and EXDEV tells `mv` to copy and delete instead.
    #[error("cannot rename across buckets")]
    CrossBucket,
    /// The object changed since this mount last saw it (a read of the old version failed its
    /// If-Match): the kernel's convention for "the file you had open is gone" is ESTALE.
    #[error("the object changed while it was being read")]
    Stale,
    #[error("bad file handle")]
    BadHandle,
    #[error("local I/O failed")]
    Io(#[source] Arc<std::io::Error>),
    #[error("S3 request failed")]
    Remote(#[source] ObjectError),
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
            FsError::BadName(_) | FsError::Invalid(_) => libc::EINVAL,
            FsError::NameTooLong => libc::ENAMETOOLONG,
            FsError::NotSupported(_) => libc::ENOTSUP,
            FsError::CrossBucket => libc::EXDEV,
            FsError::Stale => libc::ESTALE,
            FsError::BadHandle => libc::EBADF,
            // The local disk under the staging directory full (or the user's quota reached):
            // what a write to a local file would say, so tools report "no space", not an I/O error.
            FsError::Io(e) if matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) => libc::ENOSPC,
            FsError::Io(_) | FsError::Remote(_) => libc::EIO,
            FsError::NoSpace(_) => libc::ENOSPC,
        }
    }

    /// The error with its sources, for logs: "S3 request failed: S3 unavailable: …".
    pub fn chain(&self) -> String {
        crate::identity::login::error_chain(self)
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
            ObjectError::Changed => FsError::Stale,
            e @ (ObjectError::Unavailable(_) | ObjectError::Other(_)) => FsError::Remote(e),
        }
    }
}

impl From<std::io::Error> for FsError {
    fn from(e: std::io::Error) -> Self {
        FsError::Io(Arc::new(e))
    }
}

pub type FsResult<T> = Result<T, FsError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_source_and_map_to_the_conventional_errno() {
        let e = FsError::from(ObjectError::Unavailable("gave up after 3 attempts".into()));
        assert_eq!(e.errno(), libc::EIO);
        assert_eq!(e.chain(), "S3 request failed: S3 unavailable: gave up after 3 attempts");
        assert_eq!(FsError::from(ObjectError::Changed).errno(), libc::ESTALE);
        assert_eq!(FsError::CrossBucket.errno(), libc::EXDEV);
        let io = FsError::from(std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(io.chain().starts_with("local I/O failed: No space left on device"), "{}", io.chain());
        // A full disk under the staging directory is ENOSPC to the writer, not EIO.
        assert_eq!(io.errno(), libc::ENOSPC);
        assert_eq!(FsError::from(std::io::Error::from_raw_os_error(libc::EDQUOT)).errno(), libc::ENOSPC);
        assert_eq!(FsError::from(std::io::Error::from_raw_os_error(libc::EIO)).errno(), libc::EIO);
    }
}
