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
