//! The kernel operations on open files: OPEN (with the close-to-open LSTAT, or taken from
//! what was opened ahead), CREATE, READ through read-ahead, WRITE behind, FLUSH, FSYNC and
//! RELEASE. Each routes to the open files ([`super::open_files`]) and says what else it
//! changes (the cache, read-ahead, hidden files).

use std::ffi::OsStr;
use std::sync::Arc;

use fuse3::raw::reply::FileAttr;
use russh_sftp::protocol::{FileAttributes, OpenFlags};
use sshfs_cache::Ticket;

use super::full::Need;
use super::names::perm_attrs;
use super::open_files::file::open_flags;
use super::open_files::{Locate, OpenFile, Released, follow_renames};
use super::stat::Stat;
use super::{Child, FsError, FsResult, SshFs, metadata};
use crate::remote::sftp::handle::Handle;
use crate::remote::sftp::{After, SftpResult};

impl SshFs {
    /// OPEN: SFTP OPEN with the matching flags (O_TRUNC included: the kernel leaves it to us),
    /// and, in the same round trip, an LSTAT that revalidates the file (close-to-open
    /// consistency). Returns the handle number and whether the kernel may keep the file's pages:
    /// only when the cache knew the file and it has not changed since.
    pub async fn open(self: &Arc<Self>, ino: u64, flags: u32) -> FsResult<(u64, bool)> {
        self.files.settle(ino).await;
        let rel = self.rel_of(ino)?;
        let path = self.remote(&rel);
        let read_only = flags as i32 & (libc::O_ACCMODE | libc::O_TRUNC) == libc::O_RDONLY;
        let _changing = (!read_only).then(|| self.ahead.open().changing());
        let before = self.cache().last_attr(&rel);
        let ahead = match read_only {
            true => self.ahead.open().take(&rel).await,
            false => None,
        };
        let (handle, now, ticket, first_bytes, content) = match ahead {
            Some(o) => (
                o.handle,
                Ok(o.attrs),
                o.ticket,
                Some((o.asked, o.data, o.since)),
                o.content,
            ),
            None => {
                let (handle, now, ticket) = self.open_with_lstat(&path, open_flags(flags)).await?;
                (handle, now, ticket, None, None)
            }
        };
        if read_only {
            let (dir, name) = metadata::split_rel(&rel);
            self.ahead.open().opened_in_order(self, dir, name);
        }
        let truncated = flags as i32 & libc::O_TRUNC != 0;
        let size = match &now {
            _ if truncated => Some(0),
            Ok(attrs) => attrs.size,
            Err(_) => None,
        };
        if truncated {
            self.files.data_cache().gone(&rel);
            self.files.drop_read_ahead(ino);
            self.files.each_of(ino, |f| f.set_size(0));
        }
        follow_renames(&handle, ino, self);
        let mut file = OpenFile::new(handle, ino, flags, size);
        if let Ok(attrs) = &now
            && !truncated
        {
            // Open-ahead validated the entry with the same attributes, and offered it the
            // first bytes it read.
            file.content = match content {
                Some(entry) => Some(entry),
                None => self.files.data_cache().at_open(&rel, attrs).await,
            };
        }
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
                self.namespace.remember_attr(ticket, &rel, now);
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
        let _changing = self.ahead.open().changing();
        let Child { name, rel, path } = self.child(parent, name)?;
        let name = &*name;
        let pflags = open_flags(flags) | OpenFlags::CREATE;
        let (handle, after) = match self.sftp.open_lstat(&path, pflags, perm_attrs(mode)).await {
            Ok(opened) => opened,
            Err(e) => return Err(self.exists_or(&path, e.into()).await),
        };
        let attrs = match after {
            After::Attrs(a)
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
        follow_renames(&handle, attr.ino, self);
        let file = OpenFile::new(handle, attr.ino, flags, Some(attr.size));
        if flags as i32 & libc::O_EXCL != 0 {
            // Certainly ours, and new: its attributes can answer a chmod, chown or utimens.
            file.set_created(attrs);
        }
        let fh = self.files.insert(file);
        Ok((attr, fh))
    }

    /// READ: from the file's read-ahead when the reader is sequential
    /// ([`super::ahead::readahead`]), else parallel SFTP READs of the server's maximum size
    /// ([`super::open_files::OpenFiles::read`]), within the mount's read-ahead budget.
    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        self.files
            .read(fh, offset, size, self.ahead.readahead_budget())
            .await
    }

    /// WRITE: split into SFTP WRITEs that are queued before this returns; their
    /// acknowledgements are awaited behind (see [`super::open_files::write_behind`]), and a
    /// failure is reported by the next write, flush, fsync or close (ENOSPC when the disk is
    /// full, [`super::full`]). Once the packets are queued the file's content changed for
    /// everyone ([`SshFs::changed_content`]): its cached attributes are dropped, so the next
    /// STAT (answered after them) shows the new size.
    ///
    /// A large file's writes go through several SFTP channels at once
    /// ([`super::open_files::stripes`]).
    pub async fn write(self: &Arc<Self>, fh: u64, offset: u64, data: &[u8]) -> FsResult<u32> {
        let file = self.files.get(fh)?;
        let ino = file.ino;
        let rel = self.rel_of(ino).ok();
        let fs = Arc::clone(self);
        let changed = || self.changed_content(ino, rel.as_deref());
        let refused = move |e| {
            let fs = Arc::clone(&fs);
            async move { fs.full_or_file(ino, Need::Blocks, e).await }
        };
        self.files
            .write(&file, offset, data, self, changed, refused)
            .await?;
        Ok(data.len() as u32)
    }

    /// FLUSH (every close()): waits until the server acknowledged every write of this file.
    /// From now on a change by path is not sent through this handle
    /// ([`OpenFile::note_close`]).
    pub async fn flush(&self, fh: u64) -> FsResult<()> {
        self.files.get(fh)?.flush().await
    }

    /// FSYNC: every write acknowledged, then `fsync@openssh.com`.
    pub async fn fsync(&self, fh: u64) -> FsResult<()> {
        let file = self.files.get(fh)?;
        file.writes.drain().await?;
        match self.sftp.fsync(&file.handle).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.full_or_file(file.ino, Need::Blocks, e.into()).await),
        }
    }

    /// RELEASE: the open file is closed ([`super::open_files::OpenFiles::release`]: its
    /// read-ahead dropped, its writes waited for, its handles CLOSEd); a hidden file that was
    /// open only through it is then removed ([`super::hidden`]). A write error was already
    /// reported at flush; the handle is closed either way.
    pub async fn release(&self, fh: u64) -> FsResult<()> {
        let Some(Released {
            ino,
            written,
            closed,
        }) = self.files.release(fh).await
        else {
            return Ok(());
        };
        let closed = match closed {
            Ok(()) => Ok(()),
            Err(e) => Err(self.full_or_file(ino, Need::Blocks, e.into()).await),
        };
        self.released(ino).await;
        closed?;
        written
    }

    /// RELEASE for a handle the kernel never received (its OPEN was interrupted); a failure is
    /// only logged, there is no caller left to tell.
    pub async fn release_quietly(&self, fh: u64) {
        if let Err(e) = self.release(fh).await {
            tracing::debug!(fh, "closing an abandoned handle failed: {}", e.message);
        }
    }

    /// `e`, or ENOSPC when it is a generic FAILURE and the disk holding the file open as `ino`
    /// (its directory, else the mount's root) is full ([`super::full::FullDisk::or`]).
    pub(super) async fn full_or_file(&self, ino: u64, need: Need, e: FsError) -> FsError {
        if !e.is_generic_failure() {
            return e;
        }
        match self.path_of(ino) {
            Ok(path) => self.full.or(&path, need, e).await,
            Err(_) => self.full.or_in(&self.root, need, e).await,
        }
    }

    /// Our own change to the file `ino` (named `rel`, if it still has a name): what was read
    /// ahead of it and opened ahead anywhere is forgotten, and the cached attributes and
    /// contents (`-o data_cache`) of each of its names go. A file with more links than the names we know of it (links made on the
    /// server, or its other names are kernel inodes of their own) changed under names we
    /// cannot tell: every multi-link file's cached attributes go, in our cache and in the
    /// kernel's.
    pub(super) fn changed_content(&self, ino: u64, rel: Option<&str>) {
        self.files.drop_read_ahead(ino);
        self.ahead.open().forget_all();
        // The link count a listing gave the name may be newer than the inode's (the kernel
        // forgot the inode and looked the name up again with a STAT, which carries none).
        let listed = rel
            .and_then(|rel| self.cache().last_attr(rel))
            .and_then(|s| s.nlink);
        let (paths, unknown_names) = {
            let inodes = self.inodes();
            let names = u32::try_from(inodes.name_count(ino)).unwrap_or(u32::MAX);
            let unknown = inodes.nlink(ino).max(listed).is_some_and(|n| n > names);
            (inodes.paths(ino), unknown)
        };
        {
            let mut cache = self.cache();
            for path in paths.iter().map(String::as_str).chain(rel) {
                cache.invalidate(path);
            }
        }
        for path in paths.iter().map(String::as_str).chain(rel) {
            self.files.data_cache().gone(path);
        }
        if unknown_names {
            self.namespace.other_names_changed(Some(ino), false);
        }
    }
}

/// Open files find where their file is now through the namespace (inode table and root).
impl Locate for SshFs {
    fn server_path(&self, ino: u64) -> Option<String> {
        self.path_of(ino).ok()
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
}
