//! The switches that make the in-memory server behave like a server other than OpenSSH's
//! `sftp-server`, where servers differ, and the errno -> status table that goes with them.
//!
//! The default is OpenSSH 9.2's `sftp-server` run by root (what Debian 12's sshd runs): every
//! extension it announces, its reversed SYMLINK arguments, status codes 0..=8 only (its
//! `errno_to_portable`), and Linux's semantics underneath (an unlinked open file stays
//! readable and writable through its handles, writes at any offset). Each other field is one
//! way another server (rclone's `serve sftp`, servers speaking newer drafts) differs.

/// `SSH_FX_OK`.
pub(crate) const FX_OK: u32 = 0;
/// `SSH_FX_EOF`.
pub(crate) const FX_EOF: u32 = 1;
/// `SSH_FX_NO_SUCH_FILE`.
pub(crate) const FX_NO_SUCH_FILE: u32 = 2;
/// `SSH_FX_PERMISSION_DENIED`.
pub(crate) const FX_PERMISSION_DENIED: u32 = 3;
/// `SSH_FX_FAILURE`.
pub(crate) const FX_FAILURE: u32 = 4;
/// `SSH_FX_BAD_MESSAGE`.
pub(crate) const FX_BAD_MESSAGE: u32 = 5;
/// `SSH_FX_OP_UNSUPPORTED`.
pub(crate) const FX_OP_UNSUPPORTED: u32 = 8;
/// `SSH_FX_INVALID_HANDLE` (draft 05 and later).
pub(crate) const FX_INVALID_HANDLE: u32 = 9;
/// `SSH_FX_FILE_ALREADY_EXISTS` (draft 05 and later).
pub(crate) const FX_FILE_ALREADY_EXISTS: u32 = 11;
/// `SSH_FX_NO_SPACE_ON_FILESYSTEM` (draft 05 and later).
pub(crate) const FX_NO_SPACE_ON_FILESYSTEM: u32 = 14;
/// `SSH_FX_DIR_NOT_EMPTY` (draft 06 and later).
pub(crate) const FX_DIR_NOT_EMPTY: u32 = 18;
/// `SSH_FX_NOT_A_DIRECTORY` (draft 06 and later).
pub(crate) const FX_NOT_A_DIRECTORY: u32 = 19;
/// `SSH_FX_LINK_LOOP` (draft 06 and later).
pub(crate) const FX_LINK_LOOP: u32 = 21;
/// `SSH_FX_FILE_IS_A_DIRECTORY` (draft 06 and later).
pub(crate) const FX_FILE_IS_A_DIRECTORY: u32 = 24;

/// How the server behaves where SFTP servers differ. `Personality::default()` is OpenSSH's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Personality {
    /// The SSH version banner of the server imitated (what the client's SSH layer would see;
    /// there is no SSH here, so a test mount hands it to `ServerProfile::decide` as the real
    /// mount does). `None`: unknown, as when the SFTP session runs over an external ssh.
    pub banner: Option<String>,
    /// Announce and answer OpenSSH's extensions (posix-rename, statvfs, fstatvfs, hardlink,
    /// fsync, lsetstat, limits, expand-path, copy-data, home-directory, users-groups-by-id).
    /// Off: VERSION names none, and every EXTENDED request is OP_UNSUPPORTED.
    pub extensions: bool,
    /// SYMLINK's arguments in the draft's order (link path, then target), as servers other
    /// than OpenSSH read them. Off: OpenSSH's order (target, then link path).
    pub symlink_draft_order: bool,
    /// A file removed while open is gone with its name: READ, WRITE, FSTAT, FSETSTAT, fsync and
    /// copy-data on its handles fail with NO_SUCH_FILE (as rclone's server). Off: Linux's
    /// semantics, the content stays usable through the handles until the last CLOSE.
    pub unlinked_files_vanish: bool,
    /// Each handle's WRITEs must follow one another from offset 0 (rclone's server streams
    /// an upload per handle): a WRITE anywhere else fails with FAILURE and writes nothing.
    /// O_APPEND handles are not concerned.
    pub writes_in_order: bool,
    /// Status codes of newer drafts where they are more precise than OpenSSH's 0..=8:
    /// FILE_ALREADY_EXISTS (11), NO_SPACE_ON_FILESYSTEM (14), DIR_NOT_EMPTY (18),
    /// NOT_A_DIRECTORY (19), LINK_LOOP (21), FILE_IS_A_DIRECTORY (24), INVALID_HANDLE (9).
    pub status_codes_above_8: bool,
    /// Bytes the filesystem holds (allocated 4 KiB blocks of file contents): a write that needs
    /// more fails as on a full disk (ENOSPC: FAILURE, or NO_SPACE_ON_FILESYSTEM with
    /// `status_codes_above_8`). `None`: no limit.
    pub quota: Option<u64>,
    /// Answer each READ with at most half the bytes asked for (rounded up), as a server may.
    pub short_reads: bool,
    /// Names one READDIR answers at most (OpenSSH's `sftp-server`: 100; values below 1 count
    /// as 1).
    pub names_per_page: usize,
    /// The `sftp-server` process's umask, applied to the modes of new files and directories.
    pub umask: u32,
    /// The user the server runs as: its uid, gid, supplementary groups and name.
    pub uid: u32,
    /// The server user's primary group.
    pub gid: u32,
    /// The server user's supplementary groups.
    pub groups: Vec<u32>,
    /// The server user's name (for `ls -l` long names, `~user` and home-directory).
    pub user_name: String,
    /// The server's working directory (the user's home), where relative paths start.
    pub home: String,
    /// Open handles one session may hold (OpenSSH: its RLIMIT_NOFILE less 5); one more OPEN
    /// fails with FAILURE (EMFILE). Also what `limits@openssh.com` announces.
    pub max_open_handles: u64,
    /// Linux's `fs.protected_hardlinks` (on in Debian): a non-root user may only hard link a
    /// file it owns or may read and write.
    pub protected_hardlinks: bool,
}

impl Default for Personality {
    fn default() -> Self {
        Self::openssh()
    }
}

impl Personality {
    /// OpenSSH 9.2's `sftp-server` run by root, home `/`, umask 022.
    pub(crate) fn openssh() -> Self {
        Self {
            banner: Some("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3".into()),
            extensions: true,
            symlink_draft_order: false,
            unlinked_files_vanish: false,
            writes_in_order: false,
            status_codes_above_8: false,
            quota: None,
            short_reads: false,
            names_per_page: 100,
            umask: 0o022,
            uid: 0,
            gid: 0,
            groups: Vec::new(),
            user_name: "root".into(),
            home: "/".into(),
            max_open_handles: 1019,
            protected_hardlinks: true,
        }
    }

    /// OpenSSH's server run by an ordinary user (`uid` = `gid`, named "user"), whose
    /// permissions are checked as Linux checks them.
    pub(crate) fn openssh_as_user(uid: u32) -> Self {
        Self {
            uid,
            gid: uid,
            user_name: "user".into(),
            ..Self::openssh()
        }
    }

    /// rclone's `serve sftp` as far as it differs where our client cares: Go's SSH banner, a
    /// removed open file is gone, uploads are written in order only, none of OpenSSH's
    /// extensions that matter here. SYMLINK in OpenSSH's order, as Go's pkg/sftp reads it.
    pub(crate) fn rclone() -> Self {
        Self {
            banner: Some("SSH-2.0-Go".into()),
            extensions: false,
            unlinked_files_vanish: true,
            writes_in_order: true,
            ..Self::openssh()
        }
    }

    /// asyncssh's SFTP server: its banner, and SYMLINK's arguments in the draft's order (it
    /// reads OpenSSH's order only from clients whose banner is OpenSSH's or paramiko's).
    pub(crate) fn asyncssh() -> Self {
        Self {
            banner: Some("SSH-2.0-AsyncSSH_2.10.1".into()),
            extensions: false,
            symlink_draft_order: true,
            ..Self::openssh()
        }
    }

    /// A server nobody here knows (an appliance's, a managed service's): a banner that is not
    /// OpenSSH's and none of OpenSSH's extensions; otherwise as OpenSSH's.
    pub(crate) fn unknown() -> Self {
        Self {
            banner: Some("SSH-2.0-SomeNAS_1.0".into()),
            extensions: false,
            ..Self::openssh()
        }
    }

    /// The status for a failed system call's `errno`: OpenSSH's `errno_to_portable`, or with
    /// [`Personality::status_codes_above_8`] the newer drafts' code where there is one.
    pub(crate) fn status_for(&self, errno: i32) -> u32 {
        if self.status_codes_above_8 {
            let precise = match errno {
                libc::EEXIST => Some(FX_FILE_ALREADY_EXISTS),
                libc::ENOSPC | libc::EDQUOT => Some(FX_NO_SPACE_ON_FILESYSTEM),
                libc::ENOTEMPTY => Some(FX_DIR_NOT_EMPTY),
                libc::ENOTDIR => Some(FX_NOT_A_DIRECTORY),
                libc::ELOOP => Some(FX_LINK_LOOP),
                libc::EISDIR => Some(FX_FILE_IS_A_DIRECTORY),
                _ => None,
            };
            if let Some(code) = precise {
                return code;
            }
        }
        errno_to_portable(errno)
    }

    /// The status for a request naming a handle the server does not hold, where OpenSSH
    /// answers `openssh` (FAILURE for most requests, NO_SUCH_FILE for CLOSE and fsync).
    pub(crate) fn bad_handle(&self, openssh: u32) -> u32 {
        if self.status_codes_above_8 {
            FX_INVALID_HANDLE
        } else {
            openssh
        }
    }
}

/// OpenSSH's `errno_to_portable` (sftp-server.c), exactly.
pub(crate) fn errno_to_portable(errno: i32) -> u32 {
    match errno {
        0 => FX_OK,
        libc::ENOENT | libc::ENOTDIR | libc::EBADF | libc::ELOOP => FX_NO_SUCH_FILE,
        libc::EPERM | libc::EACCES | libc::EFAULT => FX_PERMISSION_DENIED,
        libc::ENAMETOOLONG | libc::EINVAL => FX_BAD_MESSAGE,
        libc::ENOSYS => FX_OP_UNSUPPORTED,
        _ => FX_FAILURE,
    }
}

/// OpenSSH's `status_to_message`: the text sent with each status code.
pub(crate) fn status_message(code: u32) -> &'static str {
    match code {
        0 => "Success",
        1 => "End of file",
        2 => "No such file",
        3 => "Permission denied",
        4 => "Failure",
        5 => "Bad message",
        6 => "No connection",
        7 => "Connection lost",
        8 => "Operation unsupported",
        _ => "Unknown error",
    }
}
