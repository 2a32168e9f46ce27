//! Filesystem errors and how SFTP status codes become the errno a local filesystem would give.
//!
//! The table (also in docs/errno.md):
//!
//! | SFTP status           | errno        | note |
//! |-----------------------|--------------|------|
//! | NO_SUCH_FILE          | ENOENT       | OpenSSH also sends it for ENOTDIR and ELOOP |
//! | PERMISSION_DENIED     | EACCES       | |
//! | FAILURE               | EIO, refined | refined per operation by looking at the paths: EEXIST, ENOTEMPTY, EISDIR, ENOTDIR; ENOSPC where statvfs shows a full disk ([`super::full`]) |
//! | BAD_MESSAGE           | EINVAL       | OpenSSH: EINVAL, ENAMETOOLONG (a name too long for the server: ENAMETOOLONG, see `Runner::too_long_or` in fuse/request.rs) |
//! | NO_CONNECTION         | ENOTCONN     | |
//! | CONNECTION_LOST       | ECONNABORTED | |
//! | OP_UNSUPPORTED        | EOPNOTSUPP   | |
//! | EOF (where not expected) | EIO       | |
//! | later drafts' codes (9..=31), sent by servers that are not OpenSSH | see [`errno_for_status`] | e.g. NO_SPACE_ON_FILESYSTEM: ENOSPC |
//! | any other code        | EIO          | the code and message are logged |
//! | transport failure, deadline passed | EIO | the connection is gone or the server did not answer in time |
//!
//! SFTP v3 defines nine codes, but servers that speak later drafts too (ProFTPD's mod_sftp, for
//! one) send theirs to v3 clients as well: a full disk is `NO_SPACE_ON_FILESYSTEM` (14) there,
//! not FAILURE. Every code is kept as the server sent it, so those are mapped as the draft means
//! them instead of ending the session (russh-sftp upstream cannot decode a code above 8).

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

/// `SSH_FX_INVALID_HANDLE` (draft 05 and later; the codes below are from the drafts up to 13).
pub const FX_INVALID_HANDLE: u32 = 9;
/// `SSH_FX_NO_SUCH_PATH`.
pub const FX_NO_SUCH_PATH: u32 = 10;
/// `SSH_FX_FILE_ALREADY_EXISTS`.
pub const FX_FILE_ALREADY_EXISTS: u32 = 11;
/// `SSH_FX_WRITE_PROTECT`.
pub const FX_WRITE_PROTECT: u32 = 12;
/// `SSH_FX_NO_MEDIA`.
pub const FX_NO_MEDIA: u32 = 13;
/// `SSH_FX_NO_SPACE_ON_FILESYSTEM`.
pub const FX_NO_SPACE_ON_FILESYSTEM: u32 = 14;
/// `SSH_FX_QUOTA_EXCEEDED`.
pub const FX_QUOTA_EXCEEDED: u32 = 15;
/// `SSH_FX_UNKNOWN_PRINCIPAL`.
pub const FX_UNKNOWN_PRINCIPAL: u32 = 16;
/// `SSH_FX_LOCK_CONFLICT`.
pub const FX_LOCK_CONFLICT: u32 = 17;
/// `SSH_FX_DIR_NOT_EMPTY`.
pub const FX_DIR_NOT_EMPTY: u32 = 18;
/// `SSH_FX_NOT_A_DIRECTORY`.
pub const FX_NOT_A_DIRECTORY: u32 = 19;
/// `SSH_FX_INVALID_FILENAME`.
pub const FX_INVALID_FILENAME: u32 = 20;
/// `SSH_FX_LINK_LOOP`.
pub const FX_LINK_LOOP: u32 = 21;
/// `SSH_FX_CANNOT_DELETE`.
pub const FX_CANNOT_DELETE: u32 = 22;
/// `SSH_FX_INVALID_PARAMETER`.
pub const FX_INVALID_PARAMETER: u32 = 23;
/// `SSH_FX_FILE_IS_A_DIRECTORY`.
pub const FX_FILE_IS_A_DIRECTORY: u32 = 24;
/// `SSH_FX_BYTE_RANGE_LOCK_CONFLICT`.
pub const FX_BYTE_RANGE_LOCK_CONFLICT: u32 = 25;
/// `SSH_FX_BYTE_RANGE_LOCK_REFUSED`.
pub const FX_BYTE_RANGE_LOCK_REFUSED: u32 = 26;
/// `SSH_FX_DELETE_PENDING`.
pub const FX_DELETE_PENDING: u32 = 27;
/// `SSH_FX_FILE_CORRUPT`.
pub const FX_FILE_CORRUPT: u32 = 28;
/// `SSH_FX_OWNER_INVALID`.
pub const FX_OWNER_INVALID: u32 = 29;
/// `SSH_FX_GROUP_INVALID`.
pub const FX_GROUP_INVALID: u32 = 30;
/// `SSH_FX_NO_MATCHING_BYTE_RANGE_LOCK`.
pub const FX_NO_MATCHING_BYTE_RANGE_LOCK: u32 = 31;

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
