//! Why an SFTP request failed ([`SftpError`]), and the SFTP status codes (`SSH_FX_*`) we act on.

use std::time::Duration;

use russh_sftp::client::error::Error as RawError;

/// Why an SFTP request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SftpError {
    /// The server answered with a status other than OK.
    #[error("{message} (SFTP status {code})")]
    Status {
        /// Raw SFTP status code (`SSH_FX_*`).
        code: u32,
        /// The server's message.
        message: String,
    },
    /// No answer within our deadline.
    #[error("no answer from the server within {0:?}")]
    Timeout(Duration),
    /// The session or connection failed (every pending request fails with this).
    #[error("connection to the server failed: {0}")]
    Transport(String),
    /// The request named a handle that was already closed: nothing was sent.
    #[error("the file handle was closed")]
    HandleClosed,
    /// The server's answer did not make sense (the session may go on).
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// The open file could not be carried over to the new connection (removed or renamed on
    /// the server meanwhile, or unlinked while open).
    #[error("{0}")]
    Lost(String),
}

/// `SSH_FX_EOF`.
pub const FX_EOF: u32 = 1;
/// `SSH_FX_NO_SUCH_FILE`.
pub const FX_NO_SUCH_FILE: u32 = 2;
/// `SSH_FX_PERMISSION_DENIED`.
pub const FX_PERMISSION_DENIED: u32 = 3;
/// `SSH_FX_FAILURE`: OpenSSH's answer for most errnos (EEXIST, ENOTEMPTY, EISDIR...).
pub const FX_FAILURE: u32 = 4;
/// `SSH_FX_BAD_MESSAGE`.
pub const FX_BAD_MESSAGE: u32 = 5;
/// `SSH_FX_NO_CONNECTION`.
pub const FX_NO_CONNECTION: u32 = 6;
/// `SSH_FX_CONNECTION_LOST`.
pub const FX_CONNECTION_LOST: u32 = 7;
/// `SSH_FX_OP_UNSUPPORTED`.
pub const FX_OP_UNSUPPORTED: u32 = 8;
/// `SSH_FX_INVALID_HANDLE` (draft 05 and later; some servers send it for a handle they do not
/// know).
pub const FX_INVALID_HANDLE: u32 = 9;

impl SftpError {
    /// The SFTP status code, if the server answered.
    pub fn status(&self) -> Option<u32> {
        match self {
            SftpError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(super) fn from_raw(err: RawError) -> Self {
        match err {
            RawError::Status(s) => SftpError::Status {
                code: u32::from(s.status_code),
                message: s.error_message,
            },
            RawError::Timeout => SftpError::Transport("request timed out in the SFTP layer".into()),
            // Bad packets, limits: this request failed, the session may go on (if it does not,
            // the next request finds it closed).
            e @ (RawError::Limited(_) | RawError::UnexpectedPacket) => {
                SftpError::Protocol(e.to_string())
            }
            other => SftpError::Transport(other.to_string()),
        }
    }
}

/// Result of an SFTP call.
pub type SftpResult<T> = Result<T, SftpError>;

/// The status codes of the SFTP drafts after version 3 (10..=31). OpenSSH never sends them;
/// servers that speak later drafts too (ProFTPD's mod_sftp, for one) send them to v3 clients
/// as well, so they are decoded and mapped as the draft means them (`fs::errno`).
pub mod later_drafts {
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
}
