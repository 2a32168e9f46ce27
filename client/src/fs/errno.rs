//! Filesystem errors and how SFTP status codes become the errno a local filesystem would give.
//!
//! The table of what each status and each other failure becomes is docs/errno.md's first
//! table, which `client/tests/docs/main.rs` holds to [`errno_for_status`] and `From<SftpError>`
//! here; where FAILURE is refined per operation is in that file too.
//!
//! SFTP v3 defines nine codes, but servers that speak later drafts too (ProFTPD's mod_sftp, for
//! one) send theirs to v3 clients as well: a full disk is `NO_SPACE_ON_FILESYSTEM` (14) there,
//! not FAILURE. Every code is kept as the server sent it, so those are mapped as the draft means
//! them instead of ending the session (russh-sftp upstream cannot decode a code above 8).

// The 22 status codes of the drafts after version 3 (10..=31).
use crate::remote::sftp::later_drafts::*;
use crate::remote::sftp::{
    FX_BAD_MESSAGE, FX_CONNECTION_LOST, FX_EOF, FX_FAILURE, FX_INVALID_HANDLE, FX_NO_CONNECTION,
    FX_NO_SUCH_FILE, FX_OP_UNSUPPORTED, FX_PERMISSION_DENIED, SftpError,
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

/// The errno for an SFTP status code, before any refinement; `None` for a code no draft
/// defines (the caller answers EIO and logs it).
fn known_errno_for_status(code: u32) -> Option<i32> {
    Some(match code {
        FX_NO_SUCH_FILE | FX_NO_SUCH_PATH => libc::ENOENT,
        FX_PERMISSION_DENIED => libc::EACCES,
        FX_FAILURE | FX_EOF | FX_FILE_CORRUPT => libc::EIO,
        FX_BAD_MESSAGE | FX_INVALID_FILENAME | FX_INVALID_PARAMETER => libc::EINVAL,
        FX_UNKNOWN_PRINCIPAL | FX_OWNER_INVALID | FX_GROUP_INVALID => libc::EINVAL,
        FX_NO_CONNECTION => libc::ENOTCONN,
        FX_CONNECTION_LOST => libc::ECONNABORTED,
        FX_OP_UNSUPPORTED => libc::EOPNOTSUPP,
        FX_INVALID_HANDLE => libc::EBADF,
        FX_FILE_ALREADY_EXISTS => libc::EEXIST,
        FX_WRITE_PROTECT => libc::EROFS,
        FX_NO_MEDIA => libc::ENOMEDIUM,
        FX_NO_SPACE_ON_FILESYSTEM => libc::ENOSPC,
        FX_QUOTA_EXCEEDED => libc::EDQUOT,
        FX_LOCK_CONFLICT | FX_DELETE_PENDING => libc::EBUSY,
        FX_DIR_NOT_EMPTY => libc::ENOTEMPTY,
        FX_NOT_A_DIRECTORY => libc::ENOTDIR,
        FX_LINK_LOOP => libc::ELOOP,
        FX_CANNOT_DELETE => libc::EPERM,
        FX_FILE_IS_A_DIRECTORY => libc::EISDIR,
        FX_BYTE_RANGE_LOCK_CONFLICT => libc::EAGAIN,
        FX_BYTE_RANGE_LOCK_REFUSED | FX_NO_MATCHING_BYTE_RANGE_LOCK => libc::ENOLCK,
        _ => return None,
    })
}

/// The errno for an SFTP status code, before any refinement (EIO for a code no draft defines).
pub fn errno_for_status(code: u32) -> i32 {
    known_errno_for_status(code).unwrap_or(libc::EIO)
}

impl From<SftpError> for FsError {
    fn from(e: SftpError) -> Self {
        let errno = match &e {
            SftpError::Status { code, message } => {
                known_errno_for_status(*code).unwrap_or_else(|| {
                    tracing::warn!(
                        code,
                        "the server answered an unknown SFTP status: {message}"
                    );
                    libc::EIO
                })
            }
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
    fn later_drafts_codes_map_to_what_they_mean() {
        assert_eq!(errno_for_status(FX_INVALID_HANDLE), libc::EBADF);
        assert_eq!(errno_for_status(FX_NO_SUCH_PATH), libc::ENOENT);
        assert_eq!(errno_for_status(FX_FILE_ALREADY_EXISTS), libc::EEXIST);
        assert_eq!(errno_for_status(FX_WRITE_PROTECT), libc::EROFS);
        assert_eq!(errno_for_status(FX_NO_SPACE_ON_FILESYSTEM), libc::ENOSPC);
        assert_eq!(errno_for_status(FX_QUOTA_EXCEEDED), libc::EDQUOT);
        assert_eq!(errno_for_status(FX_DIR_NOT_EMPTY), libc::ENOTEMPTY);
        assert_eq!(errno_for_status(FX_NOT_A_DIRECTORY), libc::ENOTDIR);
        assert_eq!(errno_for_status(FX_FILE_IS_A_DIRECTORY), libc::EISDIR);
        assert_eq!(errno_for_status(FX_LINK_LOOP), libc::ELOOP);
        assert_eq!(errno_for_status(32), libc::EIO);
        assert_eq!(errno_for_status(u32::MAX), libc::EIO);
        // Only v3's FAILURE is refined by looking at the paths: a precise code stays as it is.
        let e = FsError::from(SftpError::Status {
            code: FX_NO_SPACE_ON_FILESYSTEM,
            message: "No space left on device".into(),
        });
        assert_eq!(e.errno, libc::ENOSPC);
        assert!(!e.is_generic_failure());
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
