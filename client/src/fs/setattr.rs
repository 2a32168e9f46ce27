//! Attributes: GETATTR through an open handle when the name is gone, SETATTR (chmod, chown,
//! truncate, utimens) in one SETSTAT, and what our own change to a file makes stale.

use std::sync::Arc;

use fuse3::SetAttr;
use fuse3::raw::reply::FileAttr;
use russh_sftp::protocol::FileAttributes;

use super::handles::OpenFile;
use super::stat::Stat;
use super::{FsError, FsResult, SshFs};
use crate::remote::sftp::SftpError;

impl SshFs {
    /// SETATTR: one SETSTAT (FSETSTAT with a handle, `lsetstat@openssh.com` on a symlink) carrying
    /// every change, then the new attributes. SFTP v3 sets uid with gid and atime with mtime, so
    /// when only one of a pair changes the other is read first (UTIME_OMIT keeps its time).
    pub async fn setattr(&self, ino: u64, fh: Option<u64>, set: &SetAttr) -> FsResult<FileAttr> {
        match self.setattr_via(ino, fh, set).await {
            // The inode had lost its name and the open file we went through was closed
            // meanwhile: the name vanished before the change, as far as the caller can tell.
            Err(e) if fh.is_none() && e.errno == libc::EBADF => Err(FsError::new(
                libc::ENOENT,
                format!("inode {ino} has no path and no open file left"),
            )),
            other => other,
        }
    }

    pub(super) async fn setattr_via(
        &self,
        ino: u64,
        fh: Option<u64>,
        set: &SetAttr,
    ) -> FsResult<FileAttr> {
        let _changing = self.changing();
        // A name that is gone (unlinked or replaced while open) is changed through an open
        // handle of the inode: the kernel sends fchmod without one.
        let rel = self.rel_of(ino).ok();
        let file = fh
            .and_then(|fh| self.files.get(fh))
            .filter(|f| f.ino == ino);
        let target = match (file, &rel) {
            (Some(f), _) => Target::Handle(f),
            (None, Some(rel)) => Target::Path(self.remote(rel)),
            // A truncate needs a handle open for writing (ftruncate of a read-only one fails).
            (None, None) => match self.open_file_of(ino, set.size.is_some()) {
                Some(f) => Target::Handle(f),
                None => {
                    return Err(FsError::new(
                        libc::ENOENT,
                        format!("inode {ino} has no path"),
                    ));
                }
            },
        };
        let is_symlink = self.inodes().file_type(ino) == libc::S_IFLNK;
        let mut a = FileAttributes {
            size: set.size,
            permissions: set.mode.map(|m| m & 0o7777),
            ..FileAttributes::empty()
        };
        let needs_current =
            set.uid.is_some() != set.gid.is_some() || set.atime.is_some() != set.mtime.is_some();
        let current = if needs_current {
            Some(match &target {
                Target::Handle(f) => self.sftp.fstat(&f.handle).await?,
                Target::Path(path) => self.sftp.lstat(path).await?,
            })
        } else {
            None
        };
        if set.uid.is_some() || set.gid.is_some() {
            a.uid = set.uid.or(current.as_ref().and_then(|c| c.uid));
            a.gid = set.gid.or(current.as_ref().and_then(|c| c.gid));
        }
        if set.atime.is_some() || set.mtime.is_some() {
            let secs = |t: fuse3::Timestamp| u32::try_from(t.sec).unwrap_or(0);
            a.atime = set
                .atime
                .map(secs)
                .or(current.as_ref().and_then(|c| c.atime));
            a.mtime = set
                .mtime
                .map(secs)
                .or(current.as_ref().and_then(|c| c.mtime));
        }
        let changes =
            a.size.is_some() || a.permissions.is_some() || a.uid.is_some() || a.atime.is_some();
        if changes {
            let result = match &target {
                Target::Handle(f) => self.sftp.fsetstat(&f.handle, a).await,
                Target::Path(path)
                    if is_symlink && self.sftp.has_extension("lsetstat@openssh.com") =>
                {
                    self.sftp.lsetstat(path, a).await
                }
                Target::Path(_) if is_symlink => {
                    return Err(FsError::new(
                        libc::EOPNOTSUPP,
                        "server cannot change a symlink itself (no lsetstat@openssh.com)",
                    ));
                }
                Target::Path(path) => self.sftp.setstat(path, a).await,
            };
            // Whatever happened on the server, what we had cached may be wrong now.
            self.changed_content(ino, rel.as_deref());
            result?;
            if let (Some(size), Target::Handle(f)) = (set.size, &target) {
                f.set_size(size);
            }
        }
        match &target {
            Target::Handle(f) => {
                let stat = Stat::new(self.sftp.fstat(&f.handle).await?);
                Ok(Self::attr_for(&mut self.inodes(), ino, &stat))
            }
            Target::Path(_) => self.getattr(ino, None).await,
        }
    }

    /// Our own change to the file `ino` (named `rel`, if it still has a name): the cached
    /// attributes of each of its names go. A file with more links than the names we know of it
    /// (links made on the server, or its other names are kernel inodes of their own) changed
    /// under names we cannot tell: every multi-link file's cached attributes go, in our cache
    /// and in the kernel's.
    pub(super) fn changed_content(&self, ino: u64, rel: Option<&str>) {
        self.drop_read_ahead(ino);
        self.forget_all_ahead();
        let (paths, unknown_names, shared) = {
            let inodes = self.inodes();
            let names = u32::try_from(inodes.name_count(ino)).unwrap_or(u32::MAX);
            let unknown = inodes.nlink(ino).is_some_and(|n| n > names);
            let shared = if unknown {
                inodes.multi_link_files()
            } else {
                Vec::new()
            };
            (inodes.paths(ino), unknown, shared)
        };
        let mut cache = self.cache();
        for path in paths.iter().map(String::as_str).chain(rel) {
            cache.invalidate(path);
        }
        if unknown_names {
            cache.forget_attrs_where(|s| !s.is_dir() && s.nlink.is_some_and(|n| n > 1));
            drop(cache);
            for other in shared.into_iter().filter(|o| *o != ino) {
                self.invalidator.inode(other);
            }
        }
    }

    /// Forgets what was read ahead for any open file of `ino` (its content changed).
    pub(super) fn drop_read_ahead(&self, ino: u64) {
        self.files.for_each(|f| {
            if f.ino == ino {
                f.readahead.clear();
            }
        });
    }

    /// Any open file of `ino` (for operations on an inode whose name is gone) that is not
    /// being closed, and open for writing if `for_writing`.
    pub(super) fn open_file_of(&self, ino: u64, for_writing: bool) -> Option<Arc<OpenFile>> {
        self.files
            .find(|f| f.ino == ino && !f.handle.is_closed() && (f.writable || !for_writing))
    }

    /// FSTAT through any handle open on `ino`; `otherwise` if there is none.
    pub(super) async fn fstat_any(&self, ino: u64, otherwise: FsError) -> FsResult<Stat> {
        let Some(file) = self.open_file_of(ino, false) else {
            return Err(otherwise);
        };
        match self.sftp.fstat(&file.handle).await {
            Ok(attrs) => Ok(Stat::new(attrs)),
            // Released meanwhile: as if it had not been open.
            Err(SftpError::HandleClosed) => Err(otherwise),
            Err(e) => Err(e.into()),
        }
    }
}

/// What a SETATTR goes through: an open handle of the file, or its path.
enum Target {
    Handle(Arc<OpenFile>),
    Path(String),
}
