//! The filesystem: inode-based operations carried out with SFTP requests.
//!
//! Each method is one kernel operation and says which SFTP requests it sends. Metadata goes
//! through the cache first ([`metadata`]): a fresh answer costs no request, and what a request
//! learns is remembered and compared, so a change made on the server becomes a kernel
//! invalidation. Directory operations are in [`dir`]. Methods return [`FsResult`] with fuse3's
//! plain attribute type; the FUSE wiring (TTLs, replies, interrupts) lives in [`crate::fuse`].
//! Locks (inode table, cache, handle tables) are never held across an await, nor nested.

pub mod ahead;
mod ahead_host;
pub mod attr;
pub mod blocks;
pub mod copy;
pub mod detached;
pub mod dir;
pub mod errno;
pub mod files;
pub mod follow;
pub mod full;
pub mod handles;
pub mod hidden;
pub mod idmap;
pub mod invalidate;
pub mod kernel;
pub mod lifetimes;
pub mod metadata;
pub mod names;
pub mod namespace;
pub mod open_files;
pub mod plus;
pub mod rel;
pub mod setattr;
pub mod stat;
pub mod statfs;
pub mod symlinks;
pub mod undo;

use std::borrow::Cow;
use std::ffi::OsStr;
use std::sync::{Arc, MutexGuard};

use fuse3::raw::reply::FileAttr;
use russh_sftp::extensions::Statvfs;
use sshfs_cache::{CacheConfig, InodeTable};

use crate::remote::sftp::{DirEntry, FX_NO_SUCH_FILE, Sftp};
pub use errno::{FsError, FsResult};
use handles::{FhNumbers, HandleTable, OpenDir};
use invalidate::Invalidations;
use namespace::Namespace;
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

/// A name in a directory, resolved for a request about it.
struct Child<'a> {
    /// The name, in the escape the process keeps names in ([`crate::kernel_names`]).
    name: Cow<'a, str>,
    /// Its path relative to the mount root: the cache's key.
    rel: String,
    /// Its path on the server.
    path: String,
}

/// The filesystem state shared by all requests.
pub struct SshFs {
    sftp: Arc<Sftp>,
    root: String,
    /// The inode table, the metadata cache and the kernel invalidations ([`namespace`]).
    namespace: Namespace,
    /// The open files, their writes in flight and their stripes ([`open_files`]).
    files: open_files::OpenFiles,
    dirs: HandleTable<tokio::sync::Mutex<OpenDir>>,
    /// The work done ahead: listings, read-ahead, open-ahead, re-check ([`ahead`]).
    ahead: ahead::Ahead,
    /// How symlinks and hard links are shown and made ([`symlinks`]).
    links: symlinks::LinkOptions,
    /// How owners and modes are shown ([`idmap`]).
    owners: idmap::Owners,
    /// The allocation unit `st_blocks` is estimated in ([`blocks`]).
    block_unit: blocks::BlockUnit,
    /// What the last statvfs after a FAILURE said ([`full`]).
    full: full::FullDisk,
    /// What the mount set about the kernel it serves ([`kernel`]).
    kernel: kernel::Kernel,
    /// The last STATFS answer, given again for a moment ([`statfs`]).
    statfs: statfs::Recent,
}

/// Linux's `NAME_MAX`: the longest name (in bytes) a directory entry may have.
pub(super) const NAME_MAX: usize = 255;

/// ENAMETOOLONG for a name longer than [`NAME_MAX`] bytes (as the kernel gave it), as a local
/// filesystem answers before it looks (the server would answer with a status that means
/// something else: FAILURE, or BAD_MESSAGE where OpenSSH sees ENAMETOOLONG).
pub(super) fn check_name_len(name: &OsStr) -> FsResult<()> {
    if name.len() > NAME_MAX {
        return Err(FsError::new(
            libc::ENAMETOOLONG,
            format!("a name of {} bytes (at most {NAME_MAX})", name.len()),
        ));
    }
    Ok(())
}

/// `name` as one path component: [`check_name_len`], then [`name_str`].
pub(super) fn component(name: &OsStr) -> FsResult<Cow<'_, str>> {
    check_name_len(name)?;
    Ok(name_str(name))
}

/// A name the kernel gave, as the process keeps it ([`crate::kernel_names`]).
pub(super) fn name_str(name: &OsStr) -> Cow<'_, str> {
    crate::kernel_names::name_from_kernel(name)
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
        let fh_numbers = FhNumbers::default();
        let ahead = ahead::Ahead::new(&sftp);
        Self {
            files: open_files::OpenFiles::new(Arc::clone(&sftp), &fh_numbers),
            full: full::FullDisk::new(Arc::clone(&sftp)),
            statfs: statfs::Recent::default(),
            sftp,
            root,
            namespace: Namespace::new(cache),
            dirs: HandleTable::new(&fh_numbers),
            ahead,
            links: symlinks::LinkOptions::default(),
            owners: idmap::Owners::default(),
            block_unit: blocks::BlockUnit::default(),
            kernel: kernel::Kernel::default(),
        }
    }

    /// Sets how links are shown and made ([`symlinks`]; the defaults: as the server has them).
    pub fn with_link_options(mut self, links: symlinks::LinkOptions) -> Self {
        self.links = links;
        self
    }

    /// Keeps file contents on local disk in `cache` (`-o data_cache`, [`open_files::content`]).
    pub fn with_data_cache(mut self, cache: Option<sshfs_cache::content::ContentCache>) -> Self {
        self.files
            .set_data_cache(open_files::content::DataCache::new(cache));
        self
    }

    /// Shows owners and modes through `owners` (`-o idmap`, `uid`, `gid`, `umask`) instead of
    /// as the server has them.
    pub fn with_owners(mut self, owners: idmap::Owners) -> Self {
        self.owners = owners;
        self
    }

    /// Takes the mount's terms ([`kernel::KernelTerms`]); before this, everyone is served and
    /// a missing name is an error.
    pub fn set_kernel_terms(&self, terms: kernel::KernelTerms) {
        self.kernel.set_terms(terms);
    }

    /// Whether the user `uid` may make a request of `op` ([`kernel::admission`]).
    pub fn admit(&self, uid: u32, op: kernel::Op) -> FsResult<()> {
        self.kernel.admit(uid, op)
    }

    /// The kernel invalidations this filesystem asks for, to be sent by the FUSE frontend's
    /// notification task. Taken once.
    pub fn take_invalidations(&self) -> Option<Invalidations> {
        self.namespace.take_invalidations()
    }

    /// The SFTP engine (for counters).
    pub fn sftp(&self) -> &Arc<Sftp> {
        &self.sftp
    }

    /// The allocation unit `st_blocks` is estimated with ([`blocks`]).
    pub fn block_unit(&self) -> u32 {
        self.block_unit.get()
    }

    /// Asks the server for the block size of the mounted directory's filesystem and estimates
    /// `st_blocks` with it from now on ([`blocks::BlockUnit::learn`]). Called once, before the
    /// mount is served, so every `stat` shows the same estimate.
    pub async fn learn_block_unit(&self) {
        self.block_unit.learn(&self.sftp, &self.root).await;
    }

    fn inodes(&self) -> MutexGuard<'_, InodeTable> {
        self.namespace.inodes()
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
        let path = self.inodes().path(ino);
        path.or_else(|| self.hidden_rel(ino))
            .ok_or_else(|| FsError::new(libc::ENOENT, format!("inode {ino} has no path")))
    }

    /// Relative path of `name` in directory `parent`.
    fn rel_child(&self, parent: u64, name: &str) -> FsResult<String> {
        self.inodes()
            .child_path(parent, name)
            .ok_or_else(|| FsError::new(libc::ENOENT, format!("inode {parent} has no path")))
    }

    /// `name` in directory `parent`, resolved (see [`Child`]).
    fn child<'a>(&self, parent: u64, name: &'a OsStr) -> FsResult<Child<'a>> {
        let name = component(name)?;
        let rel = self.rel_child(parent, &name)?;
        let path = self.remote(&rel);
        Ok(Child { name, rel, path })
    }

    /// Remote path of `ino`.
    fn path_of(&self, ino: u64) -> FsResult<String> {
        Ok(self.remote(&self.rel_of(ino)?))
    }

    /// Takes a kernel reference on `name` in `parent` and builds its attributes.
    fn entry(&self, parent: u64, name: &str, stat: &Stat) -> FsResult<FileAttr> {
        // Refused owners (nomap=error) before the reference: a failed LOOKUP takes none.
        self.check_owners(stat)?;
        let mut inodes = self.inodes();
        let ino = inodes
            .lookup(parent, name)
            .ok_or_else(|| FsError::new(libc::ENOENT, "parent vanished"))?;
        self.attr_for(&mut inodes, ino, stat)
    }

    /// Whether the owners in `stat` can be shown (`idmap=file` with `nomap=error` refuses the
    /// ones its files do not list: EPERM, as sshfs).
    fn check_owners(&self, stat: &Stat) -> FsResult<()> {
        let a = &stat.attrs;
        self.owners.check(a.uid.unwrap_or(0), a.gid.unwrap_or(0))
    }

    /// The kernel's attributes for `ino` from the server's: link count from what we know,
    /// owners and modes as [`idmap`] shows them (which may refuse them: EPERM).
    fn attr_for(&self, inodes: &mut InodeTable, ino: u64, stat: &Stat) -> FsResult<FileAttr> {
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
        let mut attr = attr::file_attr(ino, &stat.attrs, nlink, self.block_unit());
        self.owners.show(&mut attr)?;
        Ok(attr)
    }

    /// LOOKUP: from the cache (a fresh listing of the parent that lacks the name answers
    /// ENOENT), else LSTAT while the parent's listing is fetched ahead for the names looked up
    /// next ([`dir`]); takes a kernel reference.
    pub async fn lookup(self: &Arc<Self>, parent: u64, name: &OsStr) -> FsResult<FileAttr> {
        let name = component(name)?;
        let name = &*name;
        let rel = self.rel_child(parent, name)?;
        let unknown = matches!(self.cache().peek_attr(&rel), sshfs_cache::Lookup::Unknown);
        if unknown && let Ok(dir) = self.rel_of(parent) {
            // Not when the directory's names are known (a fresh listing, or one we made): a name
            // not among them is answered at once, one whose attributes went stale (our own
            // write) costs one LSTAT, not a listing of the whole directory.
            if !self.cache().knows_names(&dir) {
                self.ahead.listings().start(self, dir, ahead::Why::LookedUp);
            }
        }
        let known = self.inodes().peek(parent, name);
        if let Some(ino) = known {
            self.files.settle(ino).await;
        }
        let stat = self.stat_rel(&rel, known, true).await?;
        self.entry(parent, name, &stat)
    }

    /// LOOKUP for the kernel: [`SshFs::lookup`], with a missing name answered as a negative
    /// entry when those are given ([`kernel::negative`]), and remembered.
    pub async fn lookup_entry(
        self: &Arc<Self>,
        parent: u64,
        name: &OsStr,
    ) -> FsResult<kernel::Entry> {
        match self.lookup(parent, name).await {
            Ok(attr) => Ok(kernel::Entry::Found(attr)),
            Err(e) if e.errno == libc::ENOENT && self.kernel.negative_entries() => {
                tracing::debug!(errno = e.errno, "{}; a negative entry", e.message);
                self.namespace
                    .invalidator()
                    .gave_negative(parent, &name_str(name));
                Ok(kernel::Entry::Negative)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the server path of `name` in `parent` is longer than a POSIX server takes
    /// ([`crate::kernel_names::too_long_for_the_server`]): a refusal of it that reads EINVAL
    /// was ENAMETOOLONG.
    pub fn too_long_for_the_server(&self, parent: u64, name: &OsStr) -> bool {
        self.rel_child(parent, &name_str(name))
            .is_ok_and(|rel| crate::kernel_names::too_long_for_the_server(&self.remote(&rel)))
    }

    /// `ino` as a path in the mount (`/` is its root), or `inode N` when it has none: for the
    /// request log.
    pub fn shown_path(&self, ino: u64) -> String {
        match self.inodes().path(ino) {
            Some(rel) => format!("/{rel}"),
            None => format!("inode {ino}"),
        }
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
        self.files.settle(ino).await;
        let stat = match self.files.on(fh, ino) {
            Some(file) => Stat::new(self.sftp.fstat(&file.handle).await?),
            None => match self.rel_of(ino) {
                Ok(rel) => match self.stat_rel(&rel, Some(ino), false).await {
                    Err(e) if e.errno == libc::ENOENT => self.files.fstat_any(ino, e).await?,
                    other => other?,
                },
                Err(e) => self.files.fstat_any(ino, e).await?,
            },
        };
        self.attr_for(&mut self.inodes(), ino, &stat)
    }

    /// READLINK: from the cache, else READLINK; shown as the link options say
    /// ([`symlinks`]).
    pub async fn readlink(&self, ino: u64) -> FsResult<Vec<u8>> {
        let rel = self.rel_of(ino)?;
        let cached = self.cache().link(&rel);
        let target = match cached {
            Some(target) => target,
            None => {
                let ticket = self.cache().ticket();
                let target = self.sftp.readlink(&self.remote(&rel)).await?;
                self.cache().put_link(ticket, &rel, target.clone());
                target
            }
        };
        Ok(crate::kernel_names::bytes_to_kernel(
            &self.links.shown_target(&self.root, &rel, target)?,
        ))
    }

    /// STATFS: `statvfs@openssh.com` on the root, or its answer of less than
    /// [`statfs::KEEP`] ago.
    pub async fn statfs(&self) -> FsResult<Statvfs> {
        if !self.sftp.has_extension("statvfs@openssh.com") {
            return Err(FsError::new(
                libc::ENOSYS,
                "server has no statvfs@openssh.com",
            ));
        }
        if let Some(st) = self.statfs.get() {
            return Ok(st);
        }
        let st = self.sftp.statvfs(&self.root).await?;
        self.statfs.put(&st);
        Ok(st)
    }
}

#[cfg(test)]
mod handle_tests;
#[cfg(test)]
mod memory_tests;
#[cfg(test)]
mod model;
#[cfg(test)]
mod recovery_tests;
#[cfg(test)]
mod status_tests;
