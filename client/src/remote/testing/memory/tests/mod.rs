//! Tests of the in-memory server itself, driven through russh-sftp's `RawSftpSession` over
//! [`ServeSftp::open_session`], as our engine drives a real server.

mod extensions;
mod files;
mod handles;
mod namespace;
mod openssh;
mod personalities;

use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as RawError;
use russh_sftp::protocol::{FileAttributes, OpenFlags};

use super::MemoryServer;
use crate::remote::testing::ServeSftp;

/// A new initialised session of connection 1 to `server`.
pub(super) async fn session(server: &MemoryServer) -> RawSftpSession {
    let raw = RawSftpSession::new(server.open_session(1, 0));
    raw.init().await.expect("INIT");
    raw
}

/// The status code of a failed request (panics on anything but a status answer).
pub(super) fn code<T: std::fmt::Debug>(result: Result<T, RawError>) -> u32 {
    match result {
        Err(RawError::Status(s)) => u32::from(s.status_code),
        other => panic!("expected a status answer, got {other:?}"),
    }
}

/// No attributes.
pub(super) fn no_attrs() -> FileAttributes {
    FileAttributes::empty()
}

/// Attributes with only permissions.
pub(super) fn perm(mode: u32) -> FileAttributes {
    FileAttributes {
        permissions: Some(mode),
        ..FileAttributes::empty()
    }
}

/// Flags: READ | WRITE | CREATE | TRUNCATE.
pub(super) fn create_flags() -> OpenFlags {
    OpenFlags::READ | OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE
}
