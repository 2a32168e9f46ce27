//! The system calls OpenSSH's `sftp-server` makes, on the namespace, with Linux's checks and
//! errnos: open, read, write, (f)truncate, chmod, chown, utimes, mkdir, rmdir, unlink,
//! rename, link, symlink, readlink, opendir.
//!
//! Time stamps follow Linux: a write or truncate sets the file's mtime and ctime, a change of
//! a name sets the directory's, a change of attributes or links sets the inode's ctime, a read
//! sets the atime as `relatime` does.

use super::walk::Last;
use super::{
    Cred, Dir, Errno, Ino, Kind, MAX_FILE_SIZE, MAY_EXEC, MAY_READ, MAY_WRITE, Namespace, ROOT,
    Stat, SysResult,
};
use crate::remote::testing::memory::namespace::content::Content;

/// Most symlinks followed by an `open(O_CREAT)` through dangling links (Linux's
/// `MAXSYMLINKS`).
const MAX_SYMLINKS: u32 = 40;

/// An `open(2)`: the access mode and the flags OpenSSH turns SFTP's pflags into.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct OpenHow {
    /// Open for reading (O_RDONLY or O_RDWR).
    pub(crate) read: bool,
    /// Open for writing (O_WRONLY or O_RDWR).
    pub(crate) write: bool,
    /// O_APPEND.
    pub(crate) append: bool,
    /// O_CREAT.
    pub(crate) creat: bool,
    /// O_TRUNC.
    pub(crate) trunc: bool,
    /// O_EXCL.
    pub(crate) excl: bool,
}

impl Namespace {
    /// `open(path, how, perm)`: the inode opened (its open count taken). A file it creates
    /// gets `perm` (the umask already applied) and is opened without permission checks.
    pub(crate) fn open(
        &mut self,
        cred: &Cred,
        path: &[u8],
        how: OpenHow,
        perm: u32,
    ) -> SysResult<Ino> {
        let (ino, created) = if how.creat {
            self.open_create(cred, path, how, perm)?
        } else {
            (self.resolve(cred, path, true)?, false)
        };
        let inode = self.inode(ino)?;
        if inode.is_dir() && (how.write || how.creat || how.trunc) {
            return Err(Errno(libc::EISDIR));
        }
        if !created {
            let mut mask = 0;
            if how.read {
                mask |= MAY_READ;
            }
            if how.write || how.trunc {
                mask |= MAY_WRITE;
            }
            self.require(cred, ino, mask)?;
            if how.trunc && !inode.is_dir() {
                self.truncate(cred, ino, 0)?;
            }
        }
        self.inode_mut(ino)?.open += 1;
        Ok(ino)
    }

    /// The `O_CREAT` half of [`Namespace::open`]: the existing file (following symlinks, also
    /// dangling ones to where they point), or a new one; `true` when created.
    fn open_create(
        &mut self,
        cred: &Cred,
        path: &[u8],
        how: OpenHow,
        perm: u32,
    ) -> SysResult<(Ino, bool)> {
        let mut parent = self.parent_of(cred, path)?;
        let mut links = 0;
        loop {
            let Last::Name(name) = parent.last.clone() else {
                return Err(Errno(libc::EISDIR));
            };
            // Linux's open_last_lookups: O_CREAT with a trailing slash is EISDIR, whatever is
            // there.
            if parent.trailing_slash {
                return Err(Errno(libc::EISDIR));
            }
            let Some(ino) = self.lookup(parent.dir, &name) else {
                return self
                    .create(
                        cred,
                        parent.dir,
                        &name,
                        Kind::File(Content::default()),
                        perm,
                    )
                    .map(|ino| (ino, true));
            };
            if how.excl {
                return Err(Errno(libc::EEXIST));
            }
            let target = match &self.inode(ino)?.kind {
                Kind::Symlink(t) => t.clone(),
                _ => return Ok((ino, false)),
            };
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(Errno(libc::ELOOP));
            }
            parent = self.parent_at(cred, parent.dir, &target)?;
        }
    }

    /// A new entry `name` in `dir` (checked: live, writable, searchable).
    fn create(
        &mut self,
        cred: &Cred,
        dir: Ino,
        name: &[u8],
        kind: Kind,
        perm: u32,
    ) -> SysResult<Ino> {
        if self.dir(dir)?.dead {
            return Err(Errno(libc::ENOENT));
        }
        self.require(cred, dir, MAY_WRITE | MAY_EXEC)?;
        let is_dir = matches!(kind, Kind::Dir(_));
        let ino = self.alloc(kind, perm & 0o7777, cred, dir);
        let d = self.dir_mut(dir)?;
        d.entries.insert(name.to_vec(), ino);
        if is_dir {
            d.subdirs += 1;
        }
        self.touch_dir(dir);
        Ok(ino)
    }

    /// A handle on `ino` was closed.
    pub(crate) fn close(&mut self, ino: Ino) {
        if let Ok(i) = self.inode_mut(ino) {
            i.open = i.open.saturating_sub(1);
        }
        self.reap(ino);
    }

    /// `opendir(path)`: the directory (its open count taken).
    pub(crate) fn opendir(&mut self, cred: &Cred, path: &[u8]) -> SysResult<Ino> {
        let ino = self.resolve(cred, path, true)?;
        self.dir(ino)?;
        self.require(cred, ino, MAY_READ)?;
        self.inode_mut(ino)?.open += 1;
        Ok(ino)
    }

    /// `read(2)` of up to `len` bytes at `offset` of the open file `ino` (empty at the end).
    pub(crate) fn read(&mut self, ino: Ino, offset: u64, len: usize) -> SysResult<Vec<u8>> {
        let data = match &self.inode(ino)?.kind {
            Kind::File(c) => c.read(offset, len),
            Kind::Dir(_) => return Err(Errno(libc::EISDIR)),
            Kind::Symlink(_) => return Err(Errno(libc::EBADF)),
        };
        if len > 0 {
            self.accessed(ino);
        }
        Ok(data)
    }

    /// A directory was read: its atime, as `relatime` updates it.
    pub(crate) fn accessed(&mut self, ino: Ino) {
        let now = self.now();
        if let Ok(i) = self.inode_mut(ino)
            && (i.atime <= i.mtime || i.atime <= i.ctime || now.saturating_sub(i.atime) >= 86_400)
        {
            i.atime = now;
        }
    }

    /// `pwrite(2)` of `data` at `offset` to the open file `ino`: the bytes written (fewer
    /// than asked when the disk filled up in the middle; ENOSPC when none could be).
    pub(crate) fn write(
        &mut self,
        cred: &Cred,
        ino: Ino,
        offset: u64,
        data: &[u8],
    ) -> SysResult<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        if offset.saturating_add(data.len() as u64) > MAX_FILE_SIZE {
            return Err(Errno(libc::EFBIG));
        }
        let mut budget = self.free_blocks();
        let before = budget;
        let now = self.now();
        let i = self.inode_mut(ino)?;
        let Kind::File(c) = &mut i.kind else {
            return Err(Errno(libc::EBADF));
        };
        let written = c.write(offset, data, &mut budget);
        if written > 0 {
            i.mtime = now;
            i.ctime = now;
            kill_privileges(i, cred);
        }
        self.used_blocks += before - budget;
        if written == 0 {
            return Err(Errno(libc::ENOSPC));
        }
        Ok(written)
    }

    /// The size of the open file `ino` (where an O_APPEND write goes).
    pub(crate) fn size_of(&self, ino: Ino) -> SysResult<u64> {
        Ok(self.inode(ino)?.size())
    }

    /// `ftruncate(2)` (the caller checked the handle is writable; `truncate(2)` also checks
    /// write permission first).
    pub(crate) fn truncate(&mut self, cred: &Cred, ino: Ino, size: u64) -> SysResult<()> {
        if i64::try_from(size).is_err() {
            return Err(Errno(libc::EINVAL));
        }
        if size > MAX_FILE_SIZE {
            return Err(Errno(libc::EFBIG));
        }
        let now = self.now();
        let i = self.inode_mut(ino)?;
        let is_dir = i.is_dir();
        let Kind::File(c) = &mut i.kind else {
            return Err(Errno(if is_dir { libc::EISDIR } else { libc::EINVAL }));
        };
        let freed = c.truncate(size);
        i.mtime = now;
        i.ctime = now;
        kill_privileges(i, cred);
        self.used_blocks -= freed;
        Ok(())
    }

    /// `truncate(path, size)`.
    pub(crate) fn truncate_path(&mut self, cred: &Cred, path: &[u8], size: u64) -> SysResult<()> {
        let ino = self.resolve(cred, path, true)?;
        if self.inode(ino)?.is_dir() {
            return Err(Errno(libc::EISDIR));
        }
        self.require(cred, ino, MAY_WRITE)?;
        self.truncate(cred, ino, size)
    }

    /// `fchmod(2)`: the owner or root only (EPERM); a non-member of the file's group loses its
    /// setgid bit.
    pub(crate) fn chmod(&mut self, cred: &Cred, ino: Ino, perm: u32) -> SysResult<()> {
        if !self.owns(cred, ino) {
            return Err(Errno(libc::EPERM));
        }
        let now = self.now();
        let i = self.inode_mut(ino)?;
        let mut perm = perm & 0o7777;
        if !cred.is_root() && !cred.in_group(i.gid) {
            perm &= !libc::S_ISGID;
        }
        i.perm = perm;
        i.ctime = now;
        Ok(())
    }

    /// `fchown(2)`: root may give any owner; others may only change the group of their own
    /// file to one of theirs (EPERM). A file that is not a directory loses setuid (and setgid
    /// with group execute).
    pub(crate) fn chown(&mut self, cred: &Cred, ino: Ino, uid: u32, gid: u32) -> SysResult<()> {
        let now = self.now();
        let i = self.inode_mut(ino)?;
        if !cred.is_root()
            && (cred.uid != i.uid || uid != i.uid || gid != i.gid && !cred.in_group(gid))
        {
            return Err(Errno(libc::EPERM));
        }
        i.uid = uid;
        i.gid = gid;
        if !i.is_dir() {
            i.perm &= !libc::S_ISUID;
            if i.perm & libc::S_IXGRP != 0 {
                i.perm &= !libc::S_ISGID;
            }
        }
        i.ctime = now;
        Ok(())
    }

    /// `futimes(2)` with explicit times: the owner or root only (EPERM).
    pub(crate) fn utimes(
        &mut self,
        cred: &Cred,
        ino: Ino,
        atime: u64,
        mtime: u64,
    ) -> SysResult<()> {
        if !self.owns(cred, ino) {
            return Err(Errno(libc::EPERM));
        }
        let now = self.now();
        let i = self.inode_mut(ino)?;
        i.atime = atime;
        i.mtime = mtime;
        i.ctime = now;
        Ok(())
    }

    /// `lstat(2)` (`follow`: `stat(2)`).
    pub(crate) fn stat(&self, cred: &Cred, path: &[u8], follow: bool) -> SysResult<Stat> {
        let ino = self.resolve(cred, path, follow)?;
        self.stat_of(ino)
    }

    /// `mkdir(path, perm)` (the umask already applied).
    pub(crate) fn mkdir(&mut self, cred: &Cred, path: &[u8], perm: u32) -> SysResult<Ino> {
        let p = self.parent_of(cred, path)?;
        let name = p.name(|_| libc::EEXIST)?.to_vec();
        if self.lookup(p.dir, &name).is_some() {
            return Err(Errno(libc::EEXIST));
        }
        let dir = Dir {
            entries: Default::default(),
            parent: p.dir,
            subdirs: 0,
            dead: false,
        };
        let perm = perm & (0o777 | libc::S_ISVTX);
        self.create(cred, p.dir, &name, Kind::Dir(dir), perm)
    }

    /// EACCES or EPERM unless `cred` may remove `victim` from `dir` (write and search on the
    /// directory; in a sticky one, only the owner of either, or root).
    fn may_delete(&self, cred: &Cred, dir: Ino, victim: Ino) -> SysResult<()> {
        self.require(cred, dir, MAY_WRITE | MAY_EXEC)?;
        let (d, v) = (self.inode(dir)?, self.inode(victim)?);
        if d.perm & libc::S_ISVTX != 0 && !cred.is_root() && cred.uid != d.uid && cred.uid != v.uid
        {
            return Err(Errno(libc::EPERM));
        }
        Ok(())
    }

    /// `rmdir(path)`.
    pub(crate) fn rmdir(&mut self, cred: &Cred, path: &[u8]) -> SysResult<()> {
        let p = self.parent_of(cred, path)?;
        let name = p
            .name(|last| match last {
                Last::Dot => libc::EINVAL,
                Last::DotDot => libc::ENOTEMPTY,
                _ => libc::EBUSY,
            })?
            .to_vec();
        let victim = self.lookup(p.dir, &name).ok_or(Errno(libc::ENOENT))?;
        let empty = self.dir(victim)?.entries.is_empty();
        self.may_delete(cred, p.dir, victim)?;
        if !empty {
            return Err(Errno(libc::ENOTEMPTY));
        }
        self.unlink_entry(p.dir, &name, victim)
    }

    /// `unlink(path)`.
    pub(crate) fn unlink(&mut self, cred: &Cred, path: &[u8]) -> SysResult<()> {
        let p = self.parent_of(cred, path)?;
        let name = p.name(|_| libc::EISDIR)?.to_vec();
        let victim = self.lookup(p.dir, &name).ok_or(Errno(libc::ENOENT))?;
        let is_dir = self.inode(victim)?.is_dir();
        if is_dir {
            return Err(Errno(libc::EISDIR));
        }
        if p.trailing_slash {
            return Err(Errno(libc::ENOTDIR));
        }
        self.may_delete(cred, p.dir, victim)?;
        self.unlink_entry(p.dir, &name, victim)
    }

    /// Takes the entry `name` (inode `victim`) out of `dir`; a directory goes dead.
    fn unlink_entry(&mut self, dir: Ino, name: &[u8], victim: Ino) -> SysResult<()> {
        let now = self.now();
        let d = self.dir_mut(dir)?;
        d.entries.remove(name);
        let v = self.inode_mut(victim)?;
        v.ctime = now;
        let was_dir = match &mut v.kind {
            Kind::Dir(vd) => {
                vd.dead = true;
                true
            }
            _ => {
                v.links = v.links.saturating_sub(1);
                false
            }
        };
        if was_dir {
            let d = self.dir_mut(dir)?;
            d.subdirs = d.subdirs.saturating_sub(1);
        }
        self.touch_dir(dir);
        self.reap(victim);
        Ok(())
    }

    /// `rename(from, to)` (`renameat2` with RENAME_NOREPLACE when `noreplace`).
    pub(crate) fn rename(
        &mut self,
        cred: &Cred,
        from: &[u8],
        to: &[u8],
        noreplace: bool,
    ) -> SysResult<()> {
        let old = self.parent_of(cred, from)?;
        let new = self.parent_of(cred, to)?;
        let old_name = old.name(|_| libc::EBUSY)?.to_vec();
        let new_name = new
            .name(|_| if noreplace { libc::EEXIST } else { libc::EBUSY })?
            .to_vec();
        let src = self.lookup(old.dir, &old_name).ok_or(Errno(libc::ENOENT))?;
        let src_is_dir = self.inode(src)?.is_dir();
        if (old.trailing_slash || new.trailing_slash) && !src_is_dir {
            return Err(Errno(libc::ENOTDIR));
        }
        let dst = self.lookup(new.dir, &new_name);
        if dst.is_some() && noreplace {
            return Err(Errno(libc::EEXIST));
        }
        // Linux's lock_rename traps: the source an ancestor of the target's directory, the
        // target an ancestor of the source's.
        if self.is_ancestor(src, new.dir) {
            return Err(Errno(libc::EINVAL));
        }
        if let Some(dst) = dst
            && self.is_ancestor(dst, old.dir)
        {
            return Err(Errno(libc::ENOTEMPTY));
        }
        self.may_delete(cred, old.dir, src)?;
        match dst {
            Some(dst) if dst == src => return Ok(()),
            Some(dst) => {
                let dst_is_dir = self.inode(dst)?.is_dir();
                if src_is_dir && !dst_is_dir {
                    return Err(Errno(libc::ENOTDIR));
                }
                if !src_is_dir && dst_is_dir {
                    return Err(Errno(libc::EISDIR));
                }
                self.may_delete(cred, new.dir, dst)?;
                if dst_is_dir && !self.dir(dst)?.entries.is_empty() {
                    return Err(Errno(libc::ENOTEMPTY));
                }
            }
            None => {
                if self.dir(new.dir)?.dead {
                    return Err(Errno(libc::ENOENT));
                }
                self.require(cred, new.dir, MAY_WRITE | MAY_EXEC)?;
            }
        }
        if src_is_dir && old.dir != new.dir {
            // Its ".." changes.
            self.require(cred, src, MAY_WRITE)?;
        }
        if let Some(dst) = dst {
            self.unlink_entry(new.dir, &new_name, dst)?;
        }
        let now = self.now();
        self.dir_mut(old.dir)?.entries.remove(&old_name);
        self.dir_mut(new.dir)?.entries.insert(new_name, src);
        self.inode_mut(src)?.ctime = now;
        if src_is_dir {
            self.dir_mut(src)?.parent = new.dir;
            let od = self.dir_mut(old.dir)?;
            od.subdirs = od.subdirs.saturating_sub(1);
            self.dir_mut(new.dir)?.subdirs += 1;
        }
        self.touch_dir(old.dir);
        self.touch_dir(new.dir);
        Ok(())
    }

    /// Whether `ancestor` is `ino` or one of the directories above it.
    fn is_ancestor(&self, ancestor: Ino, ino: Ino) -> bool {
        let mut cur = ino;
        loop {
            if cur == ancestor {
                return true;
            }
            match self.dir(cur) {
                Ok(d) if cur != ROOT => cur = d.parent,
                _ => return false,
            }
        }
    }

    /// `link(existing, new)` (linkat without AT_SYMLINK_FOLLOW: a symlink is linked itself).
    pub(crate) fn link(&mut self, cred: &Cred, existing: &[u8], new: &[u8]) -> SysResult<()> {
        let src = self.resolve(cred, existing, false)?;
        let p = self.parent_of(cred, new)?;
        let name = p.name(|_| libc::EEXIST)?.to_vec();
        if self.lookup(p.dir, &name).is_some() {
            return Err(Errno(libc::EEXIST));
        }
        if p.trailing_slash {
            return Err(Errno(libc::ENOENT));
        }
        if self.protected_hardlinks && !self.owns(cred, src) {
            let i = self.inode(src)?;
            let setgid_exec =
                i.perm & (libc::S_ISGID | libc::S_IXGRP) == libc::S_ISGID | libc::S_IXGRP;
            let safe = matches!(i.kind, Kind::File(_))
                && i.perm & libc::S_ISUID == 0
                && !setgid_exec
                && self.permits(cred, src, MAY_READ | MAY_WRITE);
            if !safe {
                return Err(Errno(libc::EPERM));
            }
        }
        if self.dir(p.dir)?.dead {
            return Err(Errno(libc::ENOENT));
        }
        self.require(cred, p.dir, MAY_WRITE | MAY_EXEC)?;
        if self.inode(src)?.is_dir() {
            return Err(Errno(libc::EPERM));
        }
        let now = self.now();
        let s = self.inode_mut(src)?;
        s.links += 1;
        s.ctime = now;
        self.dir_mut(p.dir)?.entries.insert(name, src);
        self.touch_dir(p.dir);
        Ok(())
    }

    /// `symlink(target, path)`.
    pub(crate) fn symlink(&mut self, cred: &Cred, target: &[u8], path: &[u8]) -> SysResult<()> {
        if target.is_empty() {
            return Err(Errno(libc::ENOENT));
        }
        let p = self.parent_of(cred, path)?;
        let name = p.name(|_| libc::EEXIST)?.to_vec();
        if self.lookup(p.dir, &name).is_some() {
            return Err(Errno(libc::EEXIST));
        }
        if p.trailing_slash {
            return Err(Errno(libc::ENOENT));
        }
        self.create(cred, p.dir, &name, Kind::Symlink(target.to_vec()), 0o777)
            .map(drop)
    }

    /// `readlink(path)`.
    pub(crate) fn readlink(&self, cred: &Cred, path: &[u8]) -> SysResult<Vec<u8>> {
        match &self.inode(self.resolve(cred, path, false)?)?.kind {
            Kind::Symlink(t) => Ok(t.clone()),
            _ => Err(Errno(libc::EINVAL)),
        }
    }

    /// A name in directory `dir` was made or removed: its mtime and ctime.
    fn touch_dir(&mut self, dir: Ino) {
        let now = self.now();
        if let Ok(d) = self.inode_mut(dir) {
            d.mtime = now;
            d.ctime = now;
        }
    }
}

/// A write or truncate by anyone but root clears the setuid bit (and setgid with group
/// execute), as Linux's `file_remove_privs`.
fn kill_privileges(i: &mut super::Inode, cred: &Cred) {
    if cred.is_root() {
        return;
    }
    i.perm &= !libc::S_ISUID;
    if i.perm & libc::S_IXGRP != 0 {
        i.perm &= !libc::S_ISGID;
    }
}
