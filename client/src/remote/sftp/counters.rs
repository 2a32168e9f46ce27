//! Counters of SFTP requests by kind, so tests and users can see what an operation cost.

use std::sync::atomic::{AtomicU64, Ordering};

/// The kinds of SFTP request we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Op {
    /// LSTAT
    Lstat,
    /// STAT
    Stat,
    /// FSTAT
    Fstat,
    /// SETSTAT
    Setstat,
    /// FSETSTAT
    Fsetstat,
    /// lsetstat@openssh.com
    Lsetstat,
    /// OPEN
    Open,
    /// CLOSE
    Close,
    /// OPENDIR
    Opendir,
    /// READDIR
    Readdir,
    /// READ
    Read,
    /// WRITE
    Write,
    /// REMOVE
    Remove,
    /// MKDIR
    Mkdir,
    /// RMDIR
    Rmdir,
    /// RENAME or posix-rename@openssh.com
    Rename,
    /// READLINK
    Readlink,
    /// SYMLINK
    Symlink,
    /// hardlink@openssh.com
    Link,
    /// fsync@openssh.com
    Fsync,
    /// statvfs@openssh.com
    Statfs,
    /// REALPATH
    Realpath,
    /// copy-data (a server-side copy between two open handles)
    CopyData,
}

impl Op {
    /// Every kind, in counter order.
    pub const ALL: [Op; 23] = [
        Op::Lstat,
        Op::Stat,
        Op::Fstat,
        Op::Setstat,
        Op::Fsetstat,
        Op::Lsetstat,
        Op::Open,
        Op::Close,
        Op::Opendir,
        Op::Readdir,
        Op::Read,
        Op::Write,
        Op::Remove,
        Op::Mkdir,
        Op::Rmdir,
        Op::Rename,
        Op::Readlink,
        Op::Symlink,
        Op::Link,
        Op::Fsync,
        Op::Statfs,
        Op::Realpath,
        Op::CopyData,
    ];

    /// Lower-case name used in logs and counter dumps.
    pub fn name(self) -> &'static str {
        match self {
            Op::Lstat => "lstat",
            Op::Stat => "stat",
            Op::Fstat => "fstat",
            Op::Setstat => "setstat",
            Op::Fsetstat => "fsetstat",
            Op::Lsetstat => "lsetstat",
            Op::Open => "open",
            Op::Close => "close",
            Op::Opendir => "opendir",
            Op::Readdir => "readdir",
            Op::Read => "read",
            Op::Write => "write",
            Op::Remove => "remove",
            Op::Mkdir => "mkdir",
            Op::Rmdir => "rmdir",
            Op::Rename => "rename",
            Op::Readlink => "readlink",
            Op::Symlink => "symlink",
            Op::Link => "link",
            Op::Fsync => "fsync",
            Op::Statfs => "statfs",
            Op::Realpath => "realpath",
            Op::CopyData => "copy-data",
        }
    }

    /// What a reconnect does with this request when its session died before the answer:
    /// reads, stats, SETSTATs, OPENDIR and positional writes are sent again as they are;
    /// requests that change the namespace (OPEN, which may create exclusively, REMOVE, MKDIR,
    /// RMDIR, RENAME, SYMLINK, link) are checked first on the new session, and sent again only
    /// if they did not happen; a CLOSE is not sent again (the server closed the handle with
    /// its session).
    pub fn retry(self) -> Retry {
        match self {
            Op::Open | Op::Remove | Op::Mkdir | Op::Rmdir | Op::Rename | Op::Symlink | Op::Link => {
                Retry::CheckFirst
            }
            Op::Close => Retry::Never,
            Op::Lstat
            | Op::Stat
            | Op::Fstat
            | Op::Setstat
            | Op::Fsetstat
            | Op::Lsetstat
            | Op::Opendir
            | Op::Readdir
            | Op::Read
            | Op::Write
            | Op::Readlink
            | Op::Fsync
            | Op::Statfs
            | Op::Realpath
            | Op::CopyData => Retry::Repeat,
        }
    }
}

/// What a reconnect does with a request whose session died before its answer ([`Op::retry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Send it again on the new session: doing it twice is doing it once.
    Repeat,
    /// Look on the new session whether it happened; send it again only if not.
    CheckFirst,
    /// Never send it again.
    Never,
}

/// Request counters, one per [`Op`].
#[derive(Debug, Default)]
pub struct Counters {
    counts: [AtomicU64; Op::ALL.len()],
}

impl Counters {
    /// Counts one request of kind `op`.
    pub fn count(&self, op: Op) {
        self.counts[op as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests of kind `op` so far.
    pub fn get(&self, op: Op) -> u64 {
        self.counts[op as usize].load(Ordering::Relaxed)
    }

    /// All requests so far.
    pub fn total(&self) -> u64 {
        Op::ALL.iter().map(|op| self.get(*op)).sum()
    }

    /// One line: `total=N lstat=N ...` (kinds with zero omitted).
    pub fn summary(&self) -> String {
        let mut s = format!("total={}", self.total());
        for op in Op::ALL {
            let n = self.get(op);
            if n > 0 {
                s.push_str(&format!(" {}={n}", op.name()));
            }
        }
        s
    }
}
