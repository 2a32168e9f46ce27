//! The kernel's operations by name: what a request is, for [`super::admission`], its tracing
//! span and the `-d` log line.

/// One kernel operation the FUSE layer serves through the fs layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// LOOKUP.
    Lookup,
    /// GETATTR.
    Getattr,
    /// SETATTR.
    Setattr,
    /// READLINK.
    Readlink,
    /// SYMLINK.
    Symlink,
    /// MKNOD.
    Mknod,
    /// MKDIR.
    Mkdir,
    /// UNLINK.
    Unlink,
    /// RMDIR.
    Rmdir,
    /// RENAME and RENAME2.
    Rename,
    /// LINK.
    Link,
    /// OPEN.
    Open,
    /// CREATE.
    Create,
    /// READ.
    Read,
    /// WRITE.
    Write,
    /// STATFS.
    Statfs,
    /// RELEASE.
    Release,
    /// FSYNC.
    Fsync,
    /// FLUSH.
    Flush,
    /// OPENDIR.
    Opendir,
    /// READDIR.
    Readdir,
    /// READDIRPLUS.
    Readdirplus,
    /// RELEASEDIR.
    Releasedir,
    /// COPY_FILE_RANGE.
    CopyFileRange,
}

impl Op {
    /// The operation's name in spans and log lines (`lookup`, `copy_file_range`).
    pub fn name(self) -> &'static str {
        match self {
            Op::Lookup => "lookup",
            Op::Getattr => "getattr",
            Op::Setattr => "setattr",
            Op::Readlink => "readlink",
            Op::Symlink => "symlink",
            Op::Mknod => "mknod",
            Op::Mkdir => "mkdir",
            Op::Unlink => "unlink",
            Op::Rmdir => "rmdir",
            Op::Rename => "rename",
            Op::Link => "link",
            Op::Open => "open",
            Op::Create => "create",
            Op::Read => "read",
            Op::Write => "write",
            Op::Statfs => "statfs",
            Op::Release => "release",
            Op::Fsync => "fsync",
            Op::Flush => "flush",
            Op::Opendir => "opendir",
            Op::Readdir => "readdir",
            Op::Readdirplus => "readdirplus",
            Op::Releasedir => "releasedir",
            Op::CopyFileRange => "copy_file_range",
        }
    }
}
