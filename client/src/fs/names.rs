//! The namespace: symlink, mknod, mkdir, unlink, rmdir, rename and link, each one SFTP request
//! (plus what it takes to give the errno a local filesystem would), and how the inode table and
//! the cache learn about our own changes.

use std::ffi::OsStr;

use fuse3::raw::reply::FileAttr;
use russh_sftp::protocol::{FileAttributes, OpenFlags};

use super::full::Need;
use super::stat::{self, Stat};
use super::{Child, FsError, FsResult, SshFs, component, metadata, name_str};
use crate::remote::sftp::After;

impl SshFs {
    /// SYMLINK, then LSTAT of the new link.
    pub async fn symlink(&self, parent: u64, name: &OsStr, target: &OsStr) -> FsResult<FileAttr> {
        let _changing = self.ahead.open().changing();
        let Child { name, rel, path } = self.child(parent, name)?;
        let name = &*name;
        let target = name_str(target);
        let target = &*target;
        if let Err(e) = self.sftp.symlink(&path, target).await {
            return Err(self.exists_or(&path, e.into()).await);
        }
        let attrs = symlink_attrs(self.sftp.lstat(&path).await?, target);
        self.created(parent, name, &rel, attrs)
    }

    /// MKNOD: regular files (OPEN with CREATE|EXCL, CLOSE); SFTP cannot make FIFOs, sockets or
    /// devices, so those get EPERM.
    pub async fn mknod(&self, parent: u64, name: &OsStr, mode: u32) -> FsResult<FileAttr> {
        let _changing = self.ahead.open().changing();
        if mode & libc::S_IFMT != libc::S_IFREG && mode & libc::S_IFMT != 0 {
            return Err(FsError::new(
                libc::EPERM,
                "SFTP can only create regular files, directories and symlinks",
            ));
        }
        let Child { name, rel, path } = self.child(parent, name)?;
        let name = &*name;
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUDE;
        let handle = match self.sftp.open(&path, flags, perm_attrs(mode)).await {
            Ok(h) => h,
            Err(e) => return Err(self.exists_or(&path, e.into()).await),
        };
        let attrs = self.sftp.fstat(&handle).await;
        let closed = self.sftp.close(&handle).await;
        let attrs = attrs?;
        closed?;
        self.created(parent, name, &rel, attrs)
    }

    /// MKDIR and LSTAT of the new directory, in one round trip.
    pub async fn mkdir(&self, parent: u64, name: &OsStr, mode: u32) -> FsResult<FileAttr> {
        let _changing = self.ahead.open().changing();
        let Child { name, rel, path } = self.child(parent, name)?;
        let name = &*name;
        let attrs = match self.sftp.mkdir_lstat(&path, mode & 0o7777).await {
            Ok(After::Attrs(attrs)) => attrs,
            Ok(After::Failed(e)) => return Err(e.into()),
            // Not sent: mkdir_lstat always asks.
            Ok(After::NotAsked) => self.sftp.lstat(&path).await?,
            Err(e) => return Err(self.exists_or(&path, e.into()).await),
        };
        self.created(parent, name, &rel, attrs)
    }

    /// UNLINK: REMOVE; on a server that drops a removed file, a file open through the mount is
    /// hidden instead until its last release ([`super::hidden`]).
    pub async fn unlink(&self, parent: u64, name: &OsStr) -> FsResult<()> {
        let _changing = self.ahead.open().changing();
        let Child { name, rel, path } = self.child(parent, name)?;
        let name = &*name;
        if let Some(ino) = self.to_hide(parent, name, &rel) {
            match self.hide(parent, name, ino, &path).await {
                Ok(()) => {
                    self.name_removed(parent, name, &rel);
                    self.files.data_cache().gone(&rel);
                    return Ok(());
                }
                // rm must still work: removed at once, as on a server that keeps the file.
                Err(e) => tracing::info!("{path}: open file not hidden ({}); removed", e.message),
            }
        }
        if let Err(e) = self.sftp.remove(&path).await {
            let e: FsError = e.into();
            self.cache().invalidate(&rel);
            if e.is_generic_failure() && self.is_dir(&path).await == Some(true) {
                return Err(FsError::new(libc::EISDIR, format!("{path} is a directory")));
            }
            return Err(e);
        }
        self.name_removed(parent, name, &rel);
        self.inodes().unlink(parent, name);
        self.files.data_cache().gone(&rel);
        Ok(())
    }

    /// RMDIR.
    pub async fn rmdir(&self, parent: u64, name: &OsStr) -> FsResult<()> {
        let _changing = self.ahead.open().changing();
        let Child { name, rel, path } = self.child(parent, name)?;
        let name = &*name;
        if let Err(e) = self.sftp.rmdir(&path).await {
            let e: FsError = e.into();
            // What we cached of it is wrong somewhere; its listing stays only as a baseline.
            self.cache().doubt(&rel);
            // OpenSSH sends rmdir(2)'s ENOTDIR as NO_SUCH_FILE: a name that is there but is
            // not a directory is ENOTDIR, as a local filesystem says.
            let missing = e.errno == libc::ENOENT;
            if e.is_generic_failure() || missing {
                return Err(match self.is_dir(&path).await {
                    Some(false) => {
                        FsError::new(libc::ENOTDIR, format!("{path} is not a directory"))
                    }
                    Some(true) if !missing => {
                        // Our listing of it may have said empty (a directory we made, filled
                        // on the server): it is read again before the caller hears "not empty".
                        self.relist_refused(&rel).await;
                        FsError::new(libc::ENOTEMPTY, format!("{path} is not empty"))
                    }
                    Some(true) | None => e,
                });
            }
            return Err(e);
        }
        self.name_removed(parent, name, &rel);
        self.inodes().unlink(parent, name);
        self.files.data_cache().gone_under(&rel);
        Ok(())
    }

    /// RENAME: `posix-rename@openssh.com` (replaces the target); with RENAME_NOREPLACE plain
    /// RENAME (which never replaces). RENAME_EXCHANGE is not possible over SFTP.
    pub async fn rename(
        &self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: u32,
    ) -> FsResult<()> {
        let _changing = self.ahead.open().changing();
        let (name, new_name) = (component(name)?, component(new_name)?);
        let (name, new_name) = (&*name, &*new_name);
        let (from_rel, to_rel) = (
            self.rel_child(parent, name)?,
            self.rel_child(new_parent, new_name)?,
        );
        let (from, to) = (self.remote(&from_rel), self.remote(&to_rel));
        let noreplace = flags & libc::RENAME_NOREPLACE != 0;
        if flags & !libc::RENAME_NOREPLACE != 0 {
            return Err(FsError::new(
                libc::EINVAL,
                "rename flags not supported over SFTP",
            ));
        }
        // A target open through the mount, on a server that would drop it: hidden first, as
        // libfuse does (the name is then free for a moment; SFTP has no atomic way).
        if !noreplace
            && let Some(ino) = self.to_hide(new_parent, new_name, &to_rel)
            && let Err(e) = self.hide(new_parent, new_name, ino, &to).await
        {
            // The rename must still work: the open file is replaced, as without hiding.
            tracing::info!("{to}: open file not hidden ({}); replaced", e.message);
        }
        let result = if noreplace {
            self.sftp.rename_noreplace(&from, &to).await
        } else {
            self.sftp.posix_rename(&from, &to).await
        };
        if let Err(e) = result {
            let e: FsError = e.into();
            {
                let mut cache = self.cache();
                cache.invalidate(&from_rel);
                cache.invalidate(&to_rel);
            }
            // OpenSSH sends rename(2)'s ENOTDIR (a directory onto a file) as NO_SUCH_FILE.
            if !e.is_generic_failure() && e.errno != libc::ENOENT {
                return Err(e);
            }
            return Err(self.explain_rename_failure(&from, &to, noreplace, e).await);
        }
        // rename(2) between two names of one file does nothing and leaves both. SFTP cannot
        // say whether they were one file; when the source is known to have several names, look.
        if self.namespace.has_several_names(parent, name, &from_rel)
            && let Ok(attrs) = self.sftp.lstat(&from).await
        {
            // Both names stay, and both stay marked as names of a multi-link file: the kernel
            // forgets one of its inodes now (it believes the move), so the inode's count is lost.
            let stat = Stat {
                attrs,
                nlink: Some(self.namespace.link_count(parent, name, &from_rel).max(2)),
            };
            let mut cache = self.cache();
            cache.set_attr(&from_rel, stat.clone());
            cache.set_attr(&to_rel, stat);
            return Ok(());
        }
        for rel in [&from_rel, &to_rel] {
            self.files.data_cache().gone_under(rel);
        }
        let replaced_shared = self
            .namespace
            .has_several_names(new_parent, new_name, &to_rel);
        let replaced = self.inodes().peek(new_parent, new_name);
        {
            let mut cache = self.cache();
            cache.renamed(&from_rel, &to_rel);
            cache.forget_attr(metadata::split_rel(&from_rel).0);
            cache.forget_attr(metadata::split_rel(&to_rel).0);
        }
        if replaced_shared {
            self.namespace.other_names_changed(replaced, true);
        }
        self.inodes().rename(parent, name, new_parent, new_name);
        Ok(())
    }

    pub(super) async fn explain_rename_failure(
        &self,
        from: &str,
        to: &str,
        noreplace: bool,
        e: FsError,
    ) -> FsError {
        let (src, dst) = tokio::join!(self.is_dir(from), self.is_dir(to));
        if e.errno == libc::ENOENT {
            // NO_SUCH_FILE: only a directory moved onto a file is something else (ENOTDIR).
            return match (src, dst) {
                (Some(true), Some(false)) => {
                    FsError::new(libc::ENOTDIR, format!("{to} is not a directory"))
                }
                _ => e,
            };
        }
        match (src, dst) {
            (_, Some(_)) if noreplace => FsError::new(libc::EEXIST, format!("{to} exists")),
            (Some(true), Some(false)) => {
                FsError::new(libc::ENOTDIR, format!("{to} is not a directory"))
            }
            (Some(false), Some(true)) => FsError::new(libc::EISDIR, format!("{to} is a directory")),
            (Some(true), Some(true)) => FsError::new(libc::ENOTEMPTY, format!("{to} is not empty")),
            (Some(true), None) if to.starts_with(&format!("{from}/")) => {
                FsError::new(libc::EINVAL, "cannot move a directory into itself")
            }
            _ => e,
        }
    }

    /// LINK: `hardlink@openssh.com`, then LSTAT. Both names then count one more link.
    pub async fn link(&self, ino: u64, new_parent: u64, new_name: &OsStr) -> FsResult<FileAttr> {
        let _changing = self.ahead.open().changing();
        let new_name = component(new_name)?;
        let new_name = &*new_name;
        let from = self.path_of(ino)?;
        let to_rel = self.rel_child(new_parent, new_name)?;
        let to = self.remote(&to_rel);
        if self.links.no_hardlinks {
            return Err(FsError::new(
                libc::ENOSYS,
                "hard links are off (disable_hardlink)",
            ));
        }
        if !self.sftp.has_extension("hardlink@openssh.com") {
            return Err(FsError::new(
                libc::EPERM,
                "server has no hardlink@openssh.com",
            ));
        }
        if let Err(e) = self.sftp.hardlink(&from, &to).await {
            return Err(self.exists_or(&to, e.into()).await);
        }
        let attrs = self.sftp.lstat(&to).await?;
        let from_rel = self.rel_of(ino)?;
        let before = {
            let cached = self.cache().last_attr(&from_rel).and_then(|s| s.nlink);
            let inodes = self.inodes();
            let names = u32::try_from(inodes.name_count(ino)).unwrap_or(u32::MAX);
            cached.or(inodes.nlink(ino)).unwrap_or(1).max(names)
        };
        let stat = Stat {
            attrs,
            nlink: Some(before + 1),
        };
        // Every name of the file counts the new link, not only the one linked from (a LOOKUP
        // of another name would take the count from its cached attributes).
        let names = self.inodes().paths(ino);
        {
            let mut cache = self.cache();
            cache.created(&to_rel, stat.clone());
            cache.set_attr(&from_rel, stat.clone());
            for rel in names.iter().filter(|rel| **rel != from_rel) {
                cache.set_attr(rel, stat.clone());
            }
            cache.forget_attr(metadata::split_rel(&to_rel).0);
        }
        // The new name is one more name of the same inode: the kernel then keeps one set of
        // attributes (and pages) for both, as for a local hard link.
        let mut inodes = self.inodes();
        inodes.set_nlink(ino, before + 1);
        let new_ino = inodes
            .add_link(ino, new_parent, new_name)
            .or_else(|| inodes.lookup(new_parent, new_name))
            .ok_or_else(|| FsError::new(libc::ENOENT, "parent vanished"))?;
        self.attr_for(&mut inodes, new_ino, &stat)
    }

    /// Records a name we just created (its attributes fetched after the fact) in the cache and
    /// takes the kernel's reference on it.
    pub(super) fn created(
        &self,
        parent: u64,
        name: &str,
        rel: &str,
        attrs: FileAttributes,
    ) -> FsResult<FileAttr> {
        let stat = Stat::new(attrs);
        {
            let mut cache = self.cache();
            if stat.is_dir() {
                cache.created_dir(rel, stat.clone());
            } else {
                cache.created(rel, stat.clone());
            }
            cache.forget_attr(metadata::split_rel(rel).0);
        }
        if stat.is_dir() {
            // Known empty, so a LOOKUP of a new name in it costs nothing; re-checked like a
            // listed directory, so what the server puts in it shows all the same.
            self.ahead.recheck().used(rel, false);
        }
        self.entry(parent, name, &stat)
    }

    /// After our own unlink or rmdir of `name` in `parent` (at `rel`): record it, and forget the
    /// attributes of the directory holding it (its mtime and size changed on the server).
    pub(super) fn name_removed(&self, parent: u64, name: &str, rel: &str) {
        let shared = self.namespace.has_several_names(parent, name, rel);
        let removed = self.inodes().peek(parent, name);
        {
            let mut cache = self.cache();
            cache.removed(rel);
            cache.forget_attr(metadata::split_rel(rel).0);
        }
        if shared {
            self.namespace.other_names_changed(removed, true);
        }
    }

    /// Whether `path` is a directory (`None` if it does not exist or cannot be read).
    pub(super) async fn is_dir(&self, path: &str) -> Option<bool> {
        Some(stat::is_dir(&self.sftp.lstat(path).await.ok()?))
    }

    /// Turns a generic FAILURE into EEXIST when `path` exists (OpenSSH's answer for EEXIST),
    /// else into ENOSPC when its filesystem is full ([`super::full`]).
    pub(super) async fn exists_or(&self, path: &str, e: FsError) -> FsError {
        if e.is_generic_failure() && self.sftp.lstat(path).await.is_ok() {
            return FsError::new(libc::EEXIST, format!("{path} exists"));
        }
        self.full.or(path, Need::Entry, e).await
    }
}

pub(super) fn perm_attrs(mode: u32) -> FileAttributes {
    FileAttributes {
        permissions: Some(mode & 0o7777),
        ..FileAttributes::empty()
    }
}

/// The attributes of a symlink just made. ProFTPD answers the LSTAT that follows its SYMLINK
/// with the target's attributes; the kernel refuses a new symlink of another type (EIO).
fn symlink_attrs(mut attrs: FileAttributes, target: &str) -> FileAttributes {
    let link = libc::S_IFLNK;
    if attrs.permissions.is_none_or(|p| p & libc::S_IFMT != link) {
        attrs.permissions = Some(link | 0o777);
        attrs.size = Some(target.len() as u64);
    }
    attrs
}
