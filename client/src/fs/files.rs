//! Open files: OPEN (with the close-to-open LSTAT, or taken from what was opened ahead),
//! CREATE, READ through read-ahead, WRITE behind, FLUSH, FSYNC and RELEASE.

use std::ffi::OsStr;
use std::sync::Arc;

use fuse3::raw::reply::FileAttr;
use russh_sftp::protocol::{FileAttributes, OpenFlags};
use sshfs_cache::Ticket;

use super::ahead::readahead;
use super::full::Need;
use super::handles::OpenFile;
use super::names::perm_attrs;
use super::stat::Stat;
use super::{Child, FsError, FsResult, SshFs, metadata};
use crate::remote::Handle;
use crate::remote::sftp::SftpResult;

/// SFTP open flags for POSIX `open(2)` flags.
pub fn open_flags(flags: u32) -> OpenFlags {
    let flags = flags as i32;
    let mut f = match flags & libc::O_ACCMODE {
        libc::O_WRONLY => OpenFlags::WRITE,
        libc::O_RDWR => OpenFlags::READ | OpenFlags::WRITE,
        _ => OpenFlags::READ,
    };
    if flags & libc::O_APPEND != 0 {
        f |= OpenFlags::APPEND;
    }
    if flags & libc::O_CREAT != 0 {
        f |= OpenFlags::CREATE;
    }
    if flags & libc::O_EXCL != 0 {
        f |= OpenFlags::EXCLUDE;
    }
    if flags & libc::O_TRUNC != 0 {
        f |= OpenFlags::TRUNCATE;
    }
    f
}

impl SshFs {
    /// OPEN: SFTP OPEN with the matching flags (O_TRUNC included: the kernel leaves it to us),
    /// and, in the same round trip, an LSTAT that revalidates the file (close-to-open
    /// consistency). Returns the handle number and whether the kernel may keep the file's pages:
    /// only when the cache knew the file and it has not changed since.
    pub async fn open(self: &Arc<Self>, ino: u64, flags: u32) -> FsResult<(u64, bool)> {
        self.settle_stripes(ino).await;
        let rel = self.rel_of(ino)?;
        let path = self.remote(&rel);
        let read_only = flags as i32 & (libc::O_ACCMODE | libc::O_TRUNC) == libc::O_RDONLY;
        let _changing = (!read_only).then(|| self.changing());
        let before = self.cache().last_attr(&rel);
        let ahead = match read_only {
            true => self.take_opened_ahead(&rel).await,
            false => None,
        };
        let (handle, now, ticket, first_bytes) = match ahead {
            Some(o) => (
                o.handle,
                Ok(o.attrs),
                o.ticket,
                Some((o.asked, o.data, o.since)),
            ),
            None => {
                let (handle, now, ticket) = self.open_with_lstat(&path, open_flags(flags)).await?;
                (handle, now, ticket, None)
            }
        };
        if read_only {
            let (dir, name) = metadata::split_rel(&rel);
            self.opened_in_order(dir, name);
        }
        let truncated = flags as i32 & libc::O_TRUNC != 0;
        let size = match &now {
            _ if truncated => Some(0),
            Ok(attrs) => attrs.size,
            Err(_) => None,
        };
        if truncated {
            self.drop_read_ahead(ino);
            self.files_of(ino, |f| f.set_size(0));
        }
        self.follow_renames(&handle, ino);
        let file = OpenFile::new(handle, ino, flags, size);
        if let Some((asked, data, since)) = first_bytes {
            file.readahead.seed(asked, data, since);
        }
        let fh = self.files.insert(file);
        let keep_cache = match now {
            Ok(attrs) if !truncated => {
                let now = Stat::new(attrs);
                // Another name of a hard-linked file is another kernel inode: a write through
                // it does not update this inode's pages, so they are never kept.
                let shared = self.inodes().nlink(ino).is_some_and(|n| n > 1);
                let unchanged = !shared
                    && before.is_some_and(|b| sshfs_cache::Revision::same_revision(&b, &now));
                self.remember_attr(ticket, &rel, now);
                unchanged
            }
            _ => {
                self.cache().invalidate(&rel);
                false
            }
        };
        Ok((fh, keep_cache))
    }

    /// OPEN and, in the same round trip, LSTAT of `path` (close-to-open: the attributes
    /// revalidate the file), with the cache ticket taken before either was sent. An OPEN that
    /// fails on a directory is EISDIR.
    pub(super) async fn open_with_lstat(
        &self,
        path: &str,
        flags: OpenFlags,
    ) -> FsResult<(Handle, SftpResult<FileAttributes>, Ticket)> {
        let ticket = self.cache().ticket();
        let (opened, attrs) = tokio::join!(
            self.sftp.open(path, flags, FileAttributes::empty()),
            self.attrs_of(path)
        );
        match opened {
            Ok(handle) => Ok((handle, attrs, ticket)),
            Err(e) => {
                let e: FsError = e.into();
                if e.is_generic_failure() && self.is_dir(path).await == Some(true) {
                    return Err(FsError::new(libc::EISDIR, format!("{path} is a directory")));
                }
                Err(e)
            }
        }
    }

    /// CREATE: OPEN with CREATE (EXCLUDE for O_EXCL) and, in the same round trip, LSTAT of the
    /// new file; FSTAT only when that LSTAT does not show a regular file (the name is a
    /// symlink, or it changed in between).
    pub async fn create(
        self: &Arc<Self>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: u32,
    ) -> FsResult<(FileAttr, u64)> {
        let _changing = self.changing();
        let Child { name, rel, path } = self.child(parent, name)?;
        let name = &*name;
        let pflags = open_flags(flags) | OpenFlags::CREATE;
        let (handle, after) = match self.sftp.open_lstat(&path, pflags, perm_attrs(mode)).await {
            Ok(opened) => opened,
            Err(e) => return Err(self.exists_or(&path, e.into()).await),
        };
        let attrs = match after {
            Ok(a)
                if a.permissions
                    .is_some_and(|m| m & libc::S_IFMT == libc::S_IFREG) =>
            {
                a
            }
            _ => match self.sftp.fstat(&handle).await {
                Ok(a) => a,
                Err(e) => {
                    let _ = self.sftp.close(&handle).await;
                    return Err(e.into());
                }
            },
        };
        let attr = self.created(parent, name, &rel, attrs.clone())?;
        self.follow_renames(&handle, attr.ino);
        let file = OpenFile::new(handle, attr.ino, flags, Some(attr.size));
        if flags as i32 & libc::O_EXCL != 0 {
            // Certainly ours, and new: its attributes can answer a chmod, chown or utimens.
            file.set_created(attrs);
        }
        let fh = self.files.insert(file);
        Ok((attr, fh))
    }

    /// READ: from the file's read-ahead when the reader is sequential ([`readahead`]), else
    /// parallel SFTP READs of the server's maximum size.
    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        let file = self.file(fh)?;
        self.settle_stripes(file.ino).await;
        let eof_at = file.known_size();
        let (sftp, handle) = (Arc::clone(&self.sftp), file.handle.clone());
        let fetch: readahead::Fetcher = Arc::new(move |offset, len| {
            let (sftp, handle) = (Arc::clone(&sftp), handle.clone());
            Box::pin(async move { Ok(sftp.read_at(&handle, offset, len, eof_at).await?) })
        });
        let source = readahead::Source {
            fetch: &fetch,
            piece_len: self.sftp.read_len(),
            eof_hint: eof_at,
            budget: self.ahead.readahead_budget(),
        };
        file.readahead.read(offset, size, &source).await
    }

    /// WRITE: split into SFTP WRITEs that are queued before this returns; their
    /// acknowledgements are awaited behind (see [`write_behind`]), and a failure is reported by
    /// the next write, flush, fsync or close. The file's cached attributes are dropped once the
    /// packets are queued, so the next STAT (answered after them) shows the new size.
    ///
    /// A large file's writes go through several SFTP channels at once ([`super::stripes`]).
    pub async fn write(self: &Arc<Self>, fh: u64, offset: u64, data: &[u8]) -> FsResult<u32> {
        let file = self.file(fh)?;
        let rel = self.rel_of(file.ino).ok();
        for (at, piece, handle) in self.striped_pieces(&file, offset, data).await {
            file.writes
                .write(piece.len(), || async {
                    let acked = self.sftp.send_write(&handle, at, piece).await?;
                    self.files_of(file.ino, |f| f.wrote_to(at + piece.len() as u64));
                    self.changed_content(file.ino, rel.as_deref());
                    let (fs, ino) = (Arc::clone(self), file.ino);
                    Ok(async move {
                        match acked.await {
                            Ok(()) => Ok(()),
                            Err(e) => Err(fs.full_or_file(ino, Need::Blocks, e.into()).await),
                        }
                    })
                })
                .await?;
        }
        Ok(data.len() as u32)
    }

    /// FLUSH (every close()): waits until the server acknowledged every write of this file.
    /// From now on a change by path is not sent through this handle
    /// ([`OpenFile::note_close`]).
    pub async fn flush(&self, fh: u64) -> FsResult<()> {
        let file = self.file(fh)?;
        file.note_close();
        file.writes.drain().await
    }

    /// FSYNC: every write acknowledged, then `fsync@openssh.com`.
    pub async fn fsync(&self, fh: u64) -> FsResult<()> {
        let file = self.file(fh)?;
        file.writes.drain().await?;
        match self.sftp.fsync(&file.handle).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.full_or_file(file.ino, Need::Blocks, e.into()).await),
        }
    }

    /// RELEASE: drops the file's read-ahead (its READs in flight end or are cancelled), waits
    /// for its writes, then CLOSEs the server handle, which waits for any request still using
    /// it. A write error was already reported at flush; the handle is closed either way.
    pub async fn release(&self, fh: u64) -> FsResult<()> {
        match self.files.remove(fh) {
            Some(file) => {
                file.readahead.clear();
                let written = file.writes.drain().await;
                self.close_stripes(&file).await;
                let closed = match self.sftp.close(&file.handle).await {
                    Ok(()) => Ok(()),
                    Err(e) => Err(self.full_or_file(file.ino, Need::Blocks, e.into()).await),
                };
                self.released(file.ino).await;
                closed?;
                written
            }
            None => Ok(()),
        }
    }

    /// RELEASE for a handle the kernel never received (its OPEN was interrupted); a failure is
    /// only logged, there is no caller left to tell.
    pub async fn release_quietly(&self, fh: u64) {
        if let Err(e) = self.release(fh).await {
            tracing::debug!(fh, "closing an abandoned handle failed: {}", e.message);
        }
    }

    /// Calls `f` on every open file of `ino` (quick: the table is locked meanwhile).
    pub(super) fn files_of(&self, ino: u64, f: impl Fn(&OpenFile)) {
        self.files.for_each(|file| {
            if file.ino == ino {
                f(file)
            }
        });
    }

    /// Makes a reopen of `handle` after a reconnect use where the file `ino` is then (it may
    /// have been renamed through the mount since it was opened).
    pub(super) fn follow_renames(self: &Arc<Self>, handle: &Handle, ino: u64) {
        let fs = Arc::downgrade(self);
        handle.follow_path(move || fs.upgrade()?.path_of(ino).ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CREATE's LSTAT is queued behind its OPEN on the same session and answered after it: it
    /// shows the new file, so no FSTAT is needed (one round trip).
    #[tokio::test]
    async fn create_gets_the_new_file_s_attributes_in_one_round_trip() {
        #![allow(clippy::unwrap_used)]
        let server = crate::remote::fake_server::FakeServer::new(1);
        let fs = Arc::new(SshFs::new(
            server.connect().await,
            "/r".into(),
            sshfs_cache::CacheConfig::default(),
        ));
        let excl = (libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL) as u32;
        let (attr, fh) = fs.create(1, OsStr::new("new"), 0o644, excl).await.unwrap();
        assert_eq!(attr.size, 0);
        assert_eq!(server.count("lstat"), 1, "{:?}", server.seen());
        assert_eq!(server.count("fstat"), 0, "{:?}", server.seen());
        fs.release(fh).await.unwrap();
    }

    #[test]
    pub(super) fn open_flag_mapping() {
        let f = |x: i32| open_flags(x as u32);
        assert_eq!(f(libc::O_RDONLY).bits(), OpenFlags::READ.bits());
        assert_eq!(f(libc::O_WRONLY).bits(), OpenFlags::WRITE.bits());
        assert_eq!(
            f(libc::O_RDWR | libc::O_APPEND).bits(),
            (OpenFlags::READ | OpenFlags::WRITE | OpenFlags::APPEND).bits()
        );
        assert_eq!(
            f(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC).bits(),
            (OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::TRUNCATE)
                .bits()
        );
    }
}
