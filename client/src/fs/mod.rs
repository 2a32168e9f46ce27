//! The filesystem: inode-based operations carried out with SFTP requests.
//!
//! Each method is one kernel operation and says which SFTP requests it sends. Metadata goes
//! through the cache first ([`metadata`]): a fresh answer costs no request, and what a request
//! learns is remembered and compared, so a change made on the server becomes a kernel
//! invalidation. Directory operations are in [`dir`]. Methods return [`FsResult`] with fuse3's
//! plain attribute type; the FUSE wiring (TTLs, replies, interrupts) lives in [`crate::fuse`].
//! Locks (inode table, cache, handle tables) are never held across an await, nor nested.

pub mod attr;
pub mod detached;
pub mod dir;
pub mod errno;
pub mod handles;
pub mod invalidate;
pub mod metadata;
pub mod open_ahead;
pub mod readahead;
pub mod stat;
pub mod write_behind;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::sync::{Arc, Mutex, MutexGuard};

use fuse3::SetAttr;
use fuse3::raw::reply::FileAttr;
use russh_sftp::extensions::Statvfs;
use russh_sftp::protocol::{FileAttributes, OpenFlags};
use sshfs_cache::{CacheConfig, InodeTable, MetaCache, SystemClock, Ticket};
use tokio::sync::Semaphore;

use crate::remote::Handle;
use crate::remote::sftp::{DirEntry, FX_NO_SUCH_FILE, Sftp, SftpError, SftpResult};
pub use errno::{FsError, FsResult};
use handles::{FhNumbers, HandleTable, OpenDir, OpenFile};
use invalidate::{Invalidations, Invalidator};
use stat::Stat;

/// One directory entry for the kernel.
#[derive(Debug, Clone)]
pub struct DirItem {
    /// Entry name.
    pub name: String,
    /// Offset of the next entry (what the kernel passes back to continue after this one).
    pub next_offset: u64,
    /// The server's attributes and link count for the entry.
    pub entry: DirEntry,
}

/// The filesystem state shared by all requests.
pub struct SshFs {
    sftp: Arc<Sftp>,
    root: String,
    inodes: Mutex<InodeTable>,
    cache: Mutex<MetaCache<Stat>>,
    invalidator: Invalidator,
    invalidations: Mutex<Option<Invalidations>>,
    files: HandleTable<OpenFile>,
    dirs: HandleTable<tokio::sync::Mutex<OpenDir>>,
    /// Directories whose listing is being fetched ahead, and the bound on how many at once.
    prefetching: Mutex<HashSet<String>>,
    prefetch_slots: Arc<Semaphore>,
    /// The bound on bytes read ahead for all open files.
    readahead_budget: readahead::Budget,
    /// Files opened and read ahead of a process opening a directory's files in order.
    open_ahead: open_ahead::OpenAhead,
}

fn name_str(name: &OsStr) -> FsResult<&str> {
    name.to_str().ok_or_else(|| {
        FsError::new(
            libc::EINVAL,
            "file names that are not UTF-8 cannot be sent over this SFTP client",
        )
    })
}

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
    /// A filesystem over `sftp` rooted at the absolute remote directory `root`, with a metadata
    /// cache configured by `cache`.
    pub fn new(sftp: Arc<Sftp>, root: String, cache: CacheConfig) -> Self {
        let root = if root.len() > 1 {
            root.trim_end_matches('/').to_owned()
        } else {
            root
        };
        let (invalidator, invalidations) = Invalidator::channel();
        let fh_numbers = FhNumbers::default();
        Self {
            sftp,
            root,
            inodes: Mutex::new(InodeTable::new()),
            cache: Mutex::new(MetaCache::new(cache, Arc::new(SystemClock))),
            invalidator,
            invalidations: Mutex::new(Some(invalidations)),
            files: HandleTable::new(&fh_numbers),
            dirs: HandleTable::new(&fh_numbers),
            prefetching: Mutex::new(HashSet::new()),
            prefetch_slots: Arc::new(Semaphore::new(dir::PREFETCH_CONCURRENCY)),
            readahead_budget: readahead::Budget::default(),
            open_ahead: open_ahead::OpenAhead::default(),
        }
    }

    /// The kernel invalidations this filesystem asks for, to be sent by the FUSE frontend's
    /// notification task. Taken once.
    pub fn take_invalidations(&self) -> Option<Invalidations> {
        self.invalidations.lock().ok()?.take()
    }

    /// The SFTP engine (for counters).
    pub fn sftp(&self) -> &Arc<Sftp> {
        &self.sftp
    }

    fn inodes(&self) -> MutexGuard<'_, InodeTable> {
        // A panic while holding the lock cannot leave the table half-updated in a way that
        // matters more than stopping the mount; keep serving.
        self.inodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remote(&self, rel: &str) -> String {
        match (rel.is_empty(), self.root.as_str()) {
            (true, _) => self.root.clone(),
            (false, "/") => format!("/{rel}"),
            (false, root) => format!("{root}/{rel}"),
        }
    }

    /// Path of `ino` relative to the mount root ("" is the root): the cache's key.
    fn rel_of(&self, ino: u64) -> FsResult<String> {
        self.inodes()
            .path(ino)
            .ok_or_else(|| FsError::new(libc::ENOENT, format!("inode {ino} has no path")))
    }

    /// Relative path of `name` in directory `parent`.
    fn rel_child(&self, parent: u64, name: &str) -> FsResult<String> {
        self.inodes()
            .child_path(parent, name)
            .ok_or_else(|| FsError::new(libc::ENOENT, format!("inode {parent} has no path")))
    }

    /// Remote path of `ino`.
    fn path_of(&self, ino: u64) -> FsResult<String> {
        Ok(self.remote(&self.rel_of(ino)?))
    }

    /// Takes a kernel reference on `name` in `parent` and builds its attributes.
    fn entry(&self, parent: u64, name: &str, stat: &Stat) -> FsResult<FileAttr> {
        let mut inodes = self.inodes();
        let ino = inodes
            .lookup(parent, name)
            .ok_or_else(|| FsError::new(libc::ENOENT, "parent vanished"))?;
        Ok(Self::attr_for(&mut inodes, ino, stat))
    }

    fn attr_for(inodes: &mut InodeTable, ino: u64, stat: &Stat) -> FileAttr {
        if let Some(mode) = stat.attrs.permissions {
            inodes.set_file_type(ino, mode & libc::S_IFMT);
        }
        if let Some(n) = stat.nlink {
            inodes.set_nlink(ino, n);
        }
        // The count that came with these attributes (a listing's, our own link's), else the
        // last one seen: for a directory 2 + subdirectories; for a file, one less for each of
        // its names we removed since, and at least the names we know (0 once all are gone,
        // as for an open file that was unlinked).
        let nlink = match stat.nlink {
            Some(n) => Some(n),
            None if stat.is_dir() => inodes.nlink(ino),
            None => {
                let names = u32::try_from(inodes.name_count(ino)).unwrap_or(u32::MAX);
                let seen = inodes.nlink(ino);
                Some(if names == 0 {
                    seen.unwrap_or(0)
                } else {
                    seen.unwrap_or(1).max(names)
                })
            }
        };
        attr::file_attr(ino, &stat.attrs, nlink)
    }

    fn file(&self, fh: u64) -> FsResult<Arc<OpenFile>> {
        self.files
            .get(fh)
            .ok_or_else(|| FsError::new(libc::EBADF, format!("no open file {fh}")))
    }

    /// LOOKUP: from the cache (a fresh listing of the parent that lacks the name answers
    /// ENOENT), else LSTAT while the parent's listing is fetched ahead for the names looked up
    /// next ([`dir`]); takes a kernel reference.
    pub async fn lookup(self: &Arc<Self>, parent: u64, name: &OsStr) -> FsResult<FileAttr> {
        let name = name
            .to_str()
            .ok_or_else(|| FsError::new(libc::ENOENT, "name is not UTF-8"))?;
        let rel = self.rel_child(parent, name)?;
        let unknown = matches!(self.cache().peek_attr(&rel), sshfs_cache::Lookup::Unknown);
        if unknown && let Ok(dir) = self.rel_of(parent) {
            self.prefetch_listing(dir, dir::Why::LookedUp);
        }
        let known = self.inodes().peek(parent, name);
        let stat = self.stat_rel(&rel, known, true).await?;
        self.entry(parent, name, &stat)
    }

    /// FORGET: drops `n` kernel references.
    pub fn forget(&self, ino: u64, n: u64) {
        self.inodes().forget(ino, n);
    }

    /// GETATTR: FSTAT through the open handle if there is one (works after unlink, sees our
    /// own writes), else the cache, else LSTAT (STAT for the root, which may be a symlink).
    ///
    /// The kernel sends `fstat()` without a handle, so an inode whose name is gone (unlinked or
    /// replaced by a rename while open) is answered through any handle open on it.
    pub async fn getattr(&self, ino: u64, fh: Option<u64>) -> FsResult<FileAttr> {
        let stat = match fh
            .and_then(|fh| self.files.get(fh))
            .filter(|f| f.ino == ino)
        {
            Some(file) => Stat::new(self.sftp.fstat(&file.handle).await?),
            None => match self.rel_of(ino) {
                Ok(rel) => match self.stat_rel(&rel, Some(ino), false).await {
                    Err(e) if e.errno == libc::ENOENT => self.fstat_any(ino, e).await?,
                    other => other?,
                },
                Err(e) => self.fstat_any(ino, e).await?,
            },
        };
        Ok(Self::attr_for(&mut self.inodes(), ino, &stat))
    }

    /// Our own change to the file `ino` (named `rel`, if it still has a name): the cached
    /// attributes of each of its names go. A file with more links than the names we know of it
    /// (links made on the server, or its other names are kernel inodes of their own) changed
    /// under names we cannot tell: every multi-link file's cached attributes go, in our cache
    /// and in the kernel's.
    fn changed_content(&self, ino: u64, rel: Option<&str>) {
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
    fn drop_read_ahead(&self, ino: u64) {
        self.files.for_each(|f| {
            if f.ino == ino {
                f.readahead.clear();
            }
        });
    }

    /// Any open file of `ino` (for operations on an inode whose name is gone) that is not
    /// being closed, and open for writing if `for_writing`.
    fn open_file_of(&self, ino: u64, for_writing: bool) -> Option<Arc<OpenFile>> {
        self.files
            .find(|f| f.ino == ino && !f.handle.is_closed() && (f.writable || !for_writing))
    }

    /// FSTAT through any handle open on `ino`; `otherwise` if there is none.
    async fn fstat_any(&self, ino: u64, otherwise: FsError) -> FsResult<Stat> {
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

    async fn setattr_via(&self, ino: u64, fh: Option<u64>, set: &SetAttr) -> FsResult<FileAttr> {
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

    /// READLINK: from the cache, else READLINK.
    pub async fn readlink(&self, ino: u64) -> FsResult<Vec<u8>> {
        let rel = self.rel_of(ino)?;
        if let Some(target) = self.cache().link(&rel) {
            return Ok(target.into_bytes());
        }
        let ticket = self.cache().ticket();
        let target = self.sftp.readlink(&self.remote(&rel)).await?;
        self.cache().put_link(ticket, &rel, target.clone());
        Ok(target.into_bytes())
    }

    /// SYMLINK, then LSTAT of the new link.
    pub async fn symlink(&self, parent: u64, name: &OsStr, target: &OsStr) -> FsResult<FileAttr> {
        let _changing = self.changing();
        let name = name_str(name)?;
        let rel = self.rel_child(parent, name)?;
        let path = self.remote(&rel);
        let target = name_str(target)?;
        if let Err(e) = self.sftp.symlink(&path, target).await {
            return Err(self.exists_or(&path, e.into()).await);
        }
        self.created(parent, name, &rel, self.sftp.lstat(&path).await?)
    }

    /// MKNOD: regular files (OPEN with CREATE|EXCL, CLOSE); SFTP cannot make FIFOs, sockets or
    /// devices, so those get EPERM.
    pub async fn mknod(&self, parent: u64, name: &OsStr, mode: u32) -> FsResult<FileAttr> {
        let _changing = self.changing();
        if mode & libc::S_IFMT != libc::S_IFREG && mode & libc::S_IFMT != 0 {
            return Err(FsError::new(
                libc::EPERM,
                "SFTP can only create regular files, directories and symlinks",
            ));
        }
        let name = name_str(name)?;
        let rel = self.rel_child(parent, name)?;
        let path = self.remote(&rel);
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

    /// MKDIR, then LSTAT.
    pub async fn mkdir(&self, parent: u64, name: &OsStr, mode: u32) -> FsResult<FileAttr> {
        let _changing = self.changing();
        let name = name_str(name)?;
        let rel = self.rel_child(parent, name)?;
        let path = self.remote(&rel);
        if let Err(e) = self.sftp.mkdir(&path, mode & 0o7777).await {
            return Err(self.exists_or(&path, e.into()).await);
        }
        self.created(parent, name, &rel, self.sftp.lstat(&path).await?)
    }

    /// UNLINK: REMOVE.
    pub async fn unlink(&self, parent: u64, name: &OsStr) -> FsResult<()> {
        let _changing = self.changing();
        let name = name_str(name)?;
        let rel = self.rel_child(parent, name)?;
        let path = self.remote(&rel);
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
        Ok(())
    }

    /// RMDIR.
    pub async fn rmdir(&self, parent: u64, name: &OsStr) -> FsResult<()> {
        let _changing = self.changing();
        let name = name_str(name)?;
        let rel = self.rel_child(parent, name)?;
        let path = self.remote(&rel);
        if let Err(e) = self.sftp.rmdir(&path).await {
            let e: FsError = e.into();
            self.cache().invalidate(&rel);
            if e.is_generic_failure() {
                return Err(match self.is_dir(&path).await {
                    Some(false) => {
                        FsError::new(libc::ENOTDIR, format!("{path} is not a directory"))
                    }
                    Some(true) => FsError::new(libc::ENOTEMPTY, format!("{path} is not empty")),
                    None => e,
                });
            }
            return Err(e);
        }
        self.name_removed(parent, name, &rel);
        self.inodes().unlink(parent, name);
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
        let _changing = self.changing();
        let (name, new_name) = (name_str(name)?, name_str(new_name)?);
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
            if !e.is_generic_failure() {
                return Err(e);
            }
            return Err(self.explain_rename_failure(&from, &to, noreplace, e).await);
        }
        // rename(2) between two names of one file does nothing and leaves both. SFTP cannot
        // say whether they were one file; when the source is known to have several names, look.
        if self.has_several_names(parent, name, &from_rel)
            && let Ok(attrs) = self.sftp.lstat(&from).await
        {
            // Both names stay, and both stay marked as names of a multi-link file: the kernel
            // forgets one of its inodes now (it believes the move), so the inode's count is lost.
            let stat = Stat {
                attrs,
                nlink: Some(self.link_count(parent, name, &from_rel).max(2)),
            };
            let mut cache = self.cache();
            cache.set_attr(&from_rel, stat.clone());
            cache.set_attr(&to_rel, stat);
            return Ok(());
        }
        let replaced_shared = self.has_several_names(new_parent, new_name, &to_rel);
        {
            let mut cache = self.cache();
            cache.renamed(&from_rel, &to_rel);
            if replaced_shared {
                forget_link_counts(&mut cache);
            }
            cache.forget_attr(metadata::split_rel(&from_rel).0);
            cache.forget_attr(metadata::split_rel(&to_rel).0);
        }
        self.inodes().rename(parent, name, new_parent, new_name);
        Ok(())
    }

    async fn explain_rename_failure(
        &self,
        from: &str,
        to: &str,
        noreplace: bool,
        e: FsError,
    ) -> FsError {
        let (src, dst) = tokio::join!(self.is_dir(from), self.is_dir(to));
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
        let _changing = self.changing();
        let new_name = name_str(new_name)?;
        let from = self.path_of(ino)?;
        let to_rel = self.rel_child(new_parent, new_name)?;
        let to = self.remote(&to_rel);
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
        {
            let mut cache = self.cache();
            cache.created(&to_rel, stat.clone());
            cache.set_attr(&from_rel, stat.clone());
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
        Ok(Self::attr_for(&mut inodes, new_ino, &stat))
    }

    /// OPEN: SFTP OPEN with the matching flags (O_TRUNC included: the kernel leaves it to us),
    /// and, in the same round trip, an LSTAT that revalidates the file (close-to-open
    /// consistency). Returns the handle number and whether the kernel may keep the file's pages:
    /// only when the cache knew the file and it has not changed since.
    pub async fn open(self: &Arc<Self>, ino: u64, flags: u32) -> FsResult<(u64, bool)> {
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
    async fn open_with_lstat(
        &self,
        path: &str,
        flags: OpenFlags,
    ) -> FsResult<(Handle, SftpResult<FileAttributes>, Ticket)> {
        let ticket = self.cache().ticket();
        let (opened, attrs) = tokio::join!(
            self.sftp.open(path, flags, FileAttributes::empty()),
            self.sftp.lstat(path)
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

    /// CREATE: OPEN with CREATE (EXCLUDE for O_EXCL), then FSTAT.
    pub async fn create(
        self: &Arc<Self>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: u32,
    ) -> FsResult<(FileAttr, u64)> {
        let _changing = self.changing();
        let name = name_str(name)?;
        let rel = self.rel_child(parent, name)?;
        let path = self.remote(&rel);
        let pflags = open_flags(flags) | OpenFlags::CREATE;
        let handle = match self.sftp.open(&path, pflags, perm_attrs(mode)).await {
            Ok(h) => h,
            Err(e) => return Err(self.exists_or(&path, e.into()).await),
        };
        let attrs = match self.sftp.fstat(&handle).await {
            Ok(a) => a,
            Err(e) => {
                let _ = self.sftp.close(&handle).await;
                return Err(e.into());
            }
        };
        let attr = self.created(parent, name, &rel, attrs)?;
        self.follow_renames(&handle, attr.ino);
        let fh = self
            .files
            .insert(OpenFile::new(handle, attr.ino, flags, Some(attr.size)));
        Ok((attr, fh))
    }

    /// READ: from the file's read-ahead when the reader is sequential ([`readahead`]), else
    /// parallel SFTP READs of the server's maximum size.
    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        let file = self.file(fh)?;
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
            budget: &self.readahead_budget,
        };
        file.readahead.read(offset, size, &source).await
    }

    /// WRITE: split into SFTP WRITEs that are queued before this returns; their
    /// acknowledgements are awaited behind (see [`write_behind`]), and a failure is reported by
    /// the next write, flush, fsync or close. The file's cached attributes are dropped once the
    /// packets are queued, so the next STAT (answered after them) shows the new size.
    pub async fn write(&self, fh: u64, offset: u64, data: &[u8]) -> FsResult<u32> {
        let file = self.file(fh)?;
        let rel = self.rel_of(file.ino).ok();
        file.writes
            .write(data.len(), || async {
                let acked = self.sftp.send_write(&file.handle, offset, data).await?;
                file.wrote_to(offset + data.len() as u64);
                self.changed_content(file.ino, rel.as_deref());
                Ok(async move { acked.await.map_err(FsError::from) })
            })
            .await?;
        Ok(data.len() as u32)
    }

    /// FLUSH (every close()): waits until the server acknowledged every write of this file.
    pub async fn flush(&self, fh: u64) -> FsResult<()> {
        self.file(fh)?.writes.drain().await
    }

    /// FSYNC: every write acknowledged, then `fsync@openssh.com`.
    pub async fn fsync(&self, fh: u64) -> FsResult<()> {
        let file = self.file(fh)?;
        file.writes.drain().await?;
        Ok(self.sftp.fsync(&file.handle).await?)
    }

    /// RELEASE: drops the file's read-ahead (its READs in flight end or are cancelled), waits
    /// for its writes, then CLOSEs the server handle, which waits for any request still using
    /// it. A write error was already reported at flush; the handle is closed either way.
    pub async fn release(&self, fh: u64) -> FsResult<()> {
        match self.files.remove(fh) {
            Some(file) => {
                file.readahead.clear();
                let written = file.writes.drain().await;
                self.sftp.close(&file.handle).await?;
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

    /// Makes a reopen of `handle` after a reconnect use where the file `ino` is then (it may
    /// have been renamed through the mount since it was opened).
    fn follow_renames(self: &Arc<Self>, handle: &Handle, ino: u64) {
        let fs = Arc::downgrade(self);
        handle.follow_path(move || fs.upgrade()?.path_of(ino).ok());
    }

    /// STATFS: `statvfs@openssh.com` on the root.
    pub async fn statfs(&self) -> FsResult<Statvfs> {
        if !self.sftp.has_extension("statvfs@openssh.com") {
            return Err(FsError::new(
                libc::ENOSYS,
                "server has no statvfs@openssh.com",
            ));
        }
        Ok(self.sftp.statvfs(&self.root).await?)
    }

    /// Records a name we just created (its attributes fetched after the fact) in the cache and
    /// takes the kernel's reference on it.
    fn created(
        &self,
        parent: u64,
        name: &str,
        rel: &str,
        attrs: FileAttributes,
    ) -> FsResult<FileAttr> {
        let stat = Stat::new(attrs);
        {
            let mut cache = self.cache();
            cache.created(rel, stat.clone());
            cache.forget_attr(metadata::split_rel(rel).0);
        }
        self.entry(parent, name, &stat)
    }

    /// After our own unlink or rmdir of `name` in `parent` (at `rel`): record it, and forget the
    /// attributes of the directory holding it (its mtime and size changed on the server).
    fn name_removed(&self, parent: u64, name: &str, rel: &str) {
        let shared = self.has_several_names(parent, name, rel);
        let mut cache = self.cache();
        cache.removed(rel);
        cache.forget_attr(metadata::split_rel(rel).0);
        if shared {
            forget_link_counts(&mut cache);
        }
    }

    /// The link count last known for the file `name` in `parent` (at `rel`), 1 if none.
    fn link_count(&self, parent: u64, name: &str, rel: &str) -> u32 {
        let cached = self.cache().last_attr(rel).and_then(|s| s.nlink);
        let seen = {
            let inodes = self.inodes();
            inodes.peek(parent, name).and_then(|ino| inodes.nlink(ino))
        };
        cached.max(seen).unwrap_or(1)
    }

    /// Whether the file `name` in `parent` (at `rel`) is known to have several names: from its
    /// cached link count or the inode's last one.
    /// (A directory's count is 2 + its subdirectories: never "several names".)
    fn has_several_names(&self, parent: u64, name: &str, rel: &str) -> bool {
        let is_dir = self.cache().last_attr(rel).is_some_and(|s| s.is_dir()) || {
            let inodes = self.inodes();
            inodes
                .peek(parent, name)
                .is_some_and(|ino| inodes.file_type(ino) == libc::S_IFDIR)
        };
        !is_dir && self.link_count(parent, name, rel) > 1
    }

    /// Whether `path` is a directory (`None` if it does not exist or cannot be read).
    async fn is_dir(&self, path: &str) -> Option<bool> {
        Some(stat::is_dir(&self.sftp.lstat(path).await.ok()?))
    }

    /// Turns a generic FAILURE into EEXIST when `path` exists (OpenSSH's answer for EEXIST).
    async fn exists_or(&self, path: &str, e: FsError) -> FsError {
        if e.is_generic_failure() && self.sftp.lstat(path).await.is_ok() {
            return FsError::new(libc::EEXIST, format!("{path} exists"));
        }
        e
    }
}

/// What a SETATTR goes through: an open handle of the file, or its path.
enum Target {
    Handle(Arc<OpenFile>),
    Path(String),
}

/// After one name of a file with several links went away, the count cached for its other names
/// is one too high, and SFTP cannot say which names they are: forget every cached count above
/// one (a scan of the cache, so only done when a multi-link name was removed).
fn forget_link_counts(cache: &mut MetaCache<Stat>) {
    cache.forget_attrs_where(|s| !s.is_dir() && s.nlink.is_some_and(|n| n > 1));
}

fn perm_attrs(mode: u32) -> FileAttributes {
    FileAttributes {
        permissions: Some(mode & 0o7777),
        ..FileAttributes::empty()
    }
}

#[cfg(test)]
mod handle_tests;
#[cfg(test)]
mod recovery_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_flag_mapping() {
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
