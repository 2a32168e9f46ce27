//! Server-side copy: the kernel's COPY_FILE_RANGE (what `cp` from coreutils 9 calls first)
//! through OpenSSH's `copy-data` extension (OpenSSH 9.0 and later), so copying a file inside
//! the mount moves no file data over the link.
//!
//! What a copy costs and keeps:
//! * **Ordered after the writes**: every write of either file still in flight is acknowledged
//!   first (a failure is reported here, as by the next write), and so are the writes sent on
//!   other channels ([`super::open_files::stripes`]), which another `sftp-server` process carries out.
//! * **A count that is true**: the extension's answer does not say how many bytes it copied
//!   (it stops at the source's end), so an FSTAT of the source comes first and the range asked
//!   for is cut to the bytes it has. Two round trips, whatever the size.
//! * **Bounded**: at most [`MAX_COPY`] per request, so the server's work stays well inside our
//!   deadline (`-o timeout`); the kernel returns the short count and `cp` asks for the rest.
//! * **Seen at once**: the destination's cached attributes and read-ahead are dropped, as for
//!   a write.
//!
//! When the server cannot copy, the kernel copies instead (its `splice` fallback, through our
//! READ and WRITE), so the program never sees a difference:
//! * no `copy-data` in the server's VERSION packet (OpenSSH before 9.0, or a server whose
//!   admin denies it: `sftp-server -P copy-data` leaves it out): ENOSYS, and the kernel never
//!   asks this mount again;
//! * the server refuses this copy (a copy within one file, which OpenSSH refuses and we do
//!   not even ask for; any error status): EOPNOTSUPP for this call only (ENOSYS for
//!   `SSH_FX_OP_UNSUPPORTED`). The kernel's own copy then meets the real error, if there is
//!   one, and reports it.

use std::sync::Arc;

use super::full::Need;
use super::{FsError, FsResult, SshFs};
use crate::remote::sftp::{FX_FAILURE, FX_OP_UNSUPPORTED, SftpError};

/// The most one COPY_FILE_RANGE asks the server to copy: 64 MiB takes the server well under a
/// second on a disk, and leaves it far inside the request deadline on a slow one.
pub const MAX_COPY: u64 = 64 * 1024 * 1024;

/// The `copy-data` extension's name in the server's VERSION packet.
pub const COPY_DATA: &str = "copy-data";

impl SshFs {
    /// COPY_FILE_RANGE from open file `fh_in` at `off_in` to open file `fh_out` at `off_out`,
    /// at most `len` bytes: FSTAT of the source, then `copy-data`. Returns the bytes copied (0
    /// at or past the source's end).
    pub async fn copy_range(
        self: &Arc<Self>,
        fh_in: u64,
        off_in: u64,
        fh_out: u64,
        off_out: u64,
        len: u64,
    ) -> FsResult<u64> {
        if !self.sftp.has_extension(COPY_DATA) {
            return Err(FsError::new(
                libc::ENOSYS,
                "the server has no copy-data extension: the kernel copies",
            ));
        }
        let (src, dst) = (self.files.get(fh_in)?, self.files.get(fh_out)?);
        if src.ino == dst.ino {
            return Err(FsError::new(
                libc::EOPNOTSUPP,
                "copy-data refuses a copy within one file: the kernel copies",
            ));
        }
        if len == 0 {
            return Ok(0);
        }
        let _changing = self.ahead.open().changing();
        self.files.settle(src.ino).await;
        self.files.settle(dst.ino).await;
        src.writes.drain().await?;
        dst.writes.drain().await?;
        let size = self
            .sftp
            .fstat(&src.handle)
            .await?
            .size
            .ok_or_else(|| FsError::new(libc::EOPNOTSUPP, "the server sent no size"))?;
        let n = len.min(MAX_COPY).min(size.saturating_sub(off_in));
        if n == 0 {
            return Ok(0);
        }
        let copied = self
            .sftp
            .copy_data(&src.handle, off_in, n, &dst.handle, off_out)
            .await;
        // Even a failed copy may have written part of the range.
        if copied.is_ok() {
            self.files.each_of(dst.ino, |f| f.wrote_to(off_out + n));
        }
        let rel = self.rel_of(dst.ino).ok();
        self.changed_content(dst.ino, rel.as_deref());
        match copied {
            Ok(()) => Ok(n),
            // A full disk is ENOSPC ([`super::full`]); any other refusal, the kernel copies.
            Err(
                e @ SftpError::Status {
                    code: FX_FAILURE, ..
                },
            ) => {
                let e = self.full_or_file(dst.ino, Need::Blocks, e.into()).await;
                if e.errno == libc::ENOSPC {
                    return Err(e);
                }
                tracing::debug!("copy-data refused ({}): the kernel copies", e.message);
                Err(FsError::new(libc::EOPNOTSUPP, e.message))
            }
            Err(SftpError::Status { code, message }) => {
                tracing::debug!("copy-data refused ({message}): the kernel copies");
                let errno = match code {
                    FX_OP_UNSUPPORTED => libc::ENOSYS,
                    _ => libc::EOPNOTSUPP,
                };
                Err(FsError::new(errno, format!("copy-data refused: {message}")))
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::ffi::OsStr;
    use std::sync::Arc;

    use sshfs_cache::CacheConfig;

    use super::super::SshFs;
    use crate::remote::fake_server::FakeServer;

    /// A server without the extension (the in-memory one announces none): ENOSYS, with
    /// nothing sent, so the kernel copies through READ and WRITE.
    #[tokio::test]
    async fn without_the_extension_the_kernel_copies() {
        let server = FakeServer::new(1);
        server.put("/r/a", vec![7; 1000]);
        let fs = Arc::new(SshFs::new(
            server.connect().await,
            "/r".into(),
            CacheConfig::default(),
        ));
        let a = fs.lookup(1, OsStr::new("a")).await.unwrap();
        let (fh_in, _) = fs.open(a.ino, libc::O_RDONLY as u32).await.unwrap();
        let wr = (libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL) as u32;
        let (_, fh_out) = fs.create(1, OsStr::new("b"), 0o644, wr).await.unwrap();
        let before = server.requests();
        let e = fs.copy_range(fh_in, 0, fh_out, 0, 1000).await.unwrap_err();
        assert_eq!(e.errno, libc::ENOSYS);
        assert_eq!(server.requests(), before, "nothing is sent");
    }
}
