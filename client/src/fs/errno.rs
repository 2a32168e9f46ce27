//! Filesystem errors and how SFTP status codes become the errno a local filesystem would give.
//!
//! The table (also in docs/errno.md):
//!
//! | SFTP status           | errno        | note |
//! |-----------------------|--------------|------|
//! | NO_SUCH_FILE          | ENOENT       | OpenSSH also sends it for ENOTDIR and ELOOP |
//! | PERMISSION_DENIED     | EACCES       | |
//! | FAILURE               | EIO, refined | refined per operation by looking at the paths: EEXIST, ENOTEMPTY, EISDIR, ENOTDIR |
//! | BAD_MESSAGE           | EINVAL       | OpenSSH: EINVAL, ENAMETOOLONG |
//! | NO_CONNECTION         | ENOTCONN     | |
//! | CONNECTION_LOST       | ECONNABORTED | |
//! | OP_UNSUPPORTED        | EOPNOTSUPP   | |
//! | EOF (where not expected) | EIO       | |
//! | transport failure, deadline passed | EIO | the connection is gone or the server did not answer in time |

use crate::remote::sftp::{
    FX_BAD_MESSAGE, FX_CONNECTION_LOST, FX_EOF, FX_FAILURE, FX_NO_CONNECTION, FX_NO_SUCH_FILE,
    FX_OP_UNSUPPORTED, FX_PERMISSION_DENIED, SftpError,
};

/// An error of a filesystem operation: the errno for the kernel and a message for the log.
#[derive(Debug, Clone)]
pub struct FsError {
    /// Positive errno value (libc::ENOENT...).
    pub errno: i32,
    /// What failed, for the debug log.
    pub message: String,
    /// The SFTP status the server answered, if this came from one.
    pub sftp_status: Option<u32>,
}

/// Result of a filesystem operation.
pub type FsResult<T> = Result<T, FsError>;

impl FsError {
    /// An error with an explicit errno.
    pub fn new(errno: i32, message: impl Into<String>) -> Self {
        Self {
            errno,
            message: message.into(),
            sftp_status: None,
        }
    }

    /// Whether the server answered the generic FAILURE (which callers may refine).
    pub fn is_generic_failure(&self) -> bool {
        self.sftp_status == Some(FX_FAILURE)
    }
}

/// The errno for an SFTP status code, before any refinement.
pub fn errno_for_status(code: u32) -> i32 {
    match code {
        FX_NO_SUCH_FILE => libc::ENOENT,
        FX_PERMISSION_DENIED => libc::EACCES,
        FX_FAILURE | FX_EOF => libc::EIO,
        FX_BAD_MESSAGE => libc::EINVAL,
        FX_NO_CONNECTION => libc::ENOTCONN,
        FX_CONNECTION_LOST => libc::ECONNABORTED,
        FX_OP_UNSUPPORTED => libc::EOPNOTSUPP,
        _ => libc::EIO,
    }
}

impl From<SftpError> for FsError {
    fn from(e: SftpError) -> Self {
        let errno = match &e {
            SftpError::Status { code, .. } => errno_for_status(*code),
            SftpError::Timeout(_) | SftpError::Transport(_) => libc::EIO,
            // The file was closed (released) while this request waited: as for a closed fd.
            SftpError::HandleClosed => libc::EBADF,
            SftpError::Protocol(_) | SftpError::Lost(_) => libc::EIO,
        };
        FsError {
            errno,
            message: e.to_string(),
            sftp_status: e.status(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table() {
        assert_eq!(errno_for_status(FX_NO_SUCH_FILE), libc::ENOENT);
        assert_eq!(errno_for_status(FX_PERMISSION_DENIED), libc::EACCES);
        assert_eq!(errno_for_status(FX_FAILURE), libc::EIO);
        assert_eq!(errno_for_status(FX_OP_UNSUPPORTED), libc::EOPNOTSUPP);
        assert_eq!(errno_for_status(99), libc::EIO);
    }

    #[test]
    fn generic_failure_is_recognised() {
        let e = FsError::from(SftpError::Status {
            code: FX_FAILURE,
            message: "Failure".into(),
        });
        assert!(e.is_generic_failure());
        let e = FsError::from(SftpError::Status {
            code: FX_NO_SUCH_FILE,
            message: "No such file".into(),
        });
        assert!(!e.is_generic_failure());
        assert_eq!(e.errno, libc::ENOENT);
    }
}
