//! What the mount knows of the server's names, and how it keeps the kernel honest about them:
//! the inode table (names the kernel holds, their inode numbers and link counts), the metadata
//! cache (attributes, symlink targets, listings, keyed by paths relative to the mount root),
//! and the channel of kernel invalidations ([`super::invalidate`]).
//!
//! Only this part holds both the cache and the inode table, so only it turns a [`Change`] the
//! cache detects into the kernel inode or name it concerns. The two locks are never nested and
//! never held across an await: every method takes one, lets it go, then the other.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use russh_sftp::protocol::FileAttributes;
use sshfs_cache::{CacheConfig, Change, InodeTable, Lookup, MetaCache, SystemClock, Ticket};

use super::invalidate::{self, Invalidations, Invalidator};
use super::rel::{join_rel, split_rel};
use super::stat::Stat;
use crate::remote::sftp::DirEntry;

/// What the cache answers for a path's attributes ([`Namespace::known_attr`]).
#[derive(Debug)]
pub enum Known {
    /// Fresh attributes: no request.
    Fresh(Stat),
    /// Known not to exist: ENOENT, no request.
    Missing,
    /// Ask the server; what it answers is remembered with this ticket.
    Ask(Ticket),
}

/// The inode table, the metadata cache and the kernel invalidations of one mount.
pub struct Namespace {
    inodes: Mutex<InodeTable>,
    cache: Mutex<MetaCache<Stat>>,
    invalidator: Invalidator,
    invalidations: Mutex<Option<Invalidations>>,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Namespace")
    }
}

impl Namespace {
    /// Only the root known, with a metadata cache configured by `cache`.
    pub fn new(cache: CacheConfig) -> Self {
        let (invalidator, invalidations) = Invalidator::channel();
        Self {
            inodes: Mutex::new(InodeTable::new()),
            cache: Mutex::new(MetaCache::new(cache, Arc::new(SystemClock))),
            invalidator,
            invalidations: Mutex::new(Some(invalidations)),
        }
    }

    /// The inode table.
    pub fn inodes(&self) -> MutexGuard<'_, InodeTable> {
        // A panic while holding the lock cannot leave the table half-updated in a way that
        // matters more than stopping the mount; keep serving.
        self.inodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The metadata cache.
    pub fn cache(&self) -> MutexGuard<'_, MetaCache<Stat>> {
        // A panic while holding the lock leaves at worst a stale entry: keep serving.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where kernel invalidations are queued.
    pub fn invalidator(&self) -> &Invalidator {
        &self.invalidator
    }

    /// The receiving end of the kernel invalidations, for the FUSE frontend. Taken once.
    pub fn take_invalidations(&self) -> Option<Invalidations> {
        self.invalidations.lock().ok()?.take()
    }

    /// Queues the kernel invalidations for `changes` ([`invalidate::for_changes`]).
    pub fn invalidate(&self, changes: impl IntoIterator<Item = Change>) {
        let changes: Vec<Change> = changes.into_iter().collect();
        if changes.is_empty() {
            return;
        }
        let types = invalidate::types_now(&self.cache(), &changes);
        let out = invalidate::for_changes(&self.inodes(), &changes, types);
        for inv in out {
            tracing::debug!(?inv, "the server changed: invalidating");
            self.invalidator.send(inv);
        }
    }

    /// What the cache answers for the attributes of `rel`: fresh ones, a cached ENOENT (with
    /// `lookup`, also a fresh listing of the parent that lacks the name), or nothing (ask).
    ///
    /// `ino` is the path's inode if the kernel knows it. A file known to have several names is
    /// always asked for: SFTP cannot tell which other names share it, so a change through one
    /// of them would leave the others' cached attributes stale. With `follow` (the
    /// `follow_symlinks` option) every file is, since symlinks make names of it we do not know.
    /// `lookup`: the kernel asks for a name in a directory, so a fresh listing of that
    /// directory may answer ENOENT.
    pub fn known_attr(&self, rel: &str, ino: Option<u64>, lookup: bool, follow: bool) -> Known {
        let (dir, name) = split_rel(rel);
        let shared = self.is_shared(ino);
        let mut cache = self.cache();
        match cache.attr(rel) {
            Lookup::Found(stat) if trusted(&stat, shared, follow) => {
                return Known::Fresh(stat);
            }
            Lookup::Missing => return Known::Missing,
            Lookup::Found(_) | Lookup::Unknown => {}
        }
        if lookup && cache.absent_from_listing(dir, name) {
            return Known::Missing;
        }
        Known::Ask(cache.ticket())
    }

    /// How much longer [`known_attr`](Self::known_attr) answers the attributes of `rel`
    /// (inode `ino`) from the cache: the remaining life of a fresh entry it trusts, else zero.
    /// Counts nothing.
    pub fn answer_life(&self, rel: &str, ino: Option<u64>, follow: bool) -> Duration {
        let shared = self.is_shared(ino);
        match self.cache().peek_attr_life(rel) {
            (Lookup::Found(stat), life) if trusted(&stat, shared, follow) => life,
            _ => Duration::ZERO,
        }
    }

    /// Whether the inode `ino` is known to have several names.
    fn is_shared(&self, ino: Option<u64>) -> bool {
        ino.and_then(|ino| self.inodes().nlink(ino))
            .is_some_and(|n| n > 1)
    }

    /// Remembers the attributes an LSTAT or STAT of `rel` (sent at `ticket`) answered, with
    /// the last link count known (STAT carries none: the one a listing or our own link gave,
    /// dropped whenever a name of a file with several links is removed); invalidates what the
    /// kernel holds if they show the file changed.
    pub fn learned_attr(&self, ticket: Ticket, rel: &str, attrs: FileAttributes) -> Stat {
        let nlink = self.cache().last_attr(rel).and_then(|s| s.nlink);
        let stat = Stat { attrs, nlink };
        self.remember_attr(ticket, rel, stat.clone());
        stat
    }

    /// Stores attributes the server sent (for a request sent at `ticket`) and invalidates what
    /// the kernel holds if they show the file changed.
    pub fn remember_attr(&self, ticket: Ticket, rel: &str, stat: Stat) {
        let change = self.cache().put_attr(ticket, rel, stat);
        self.invalidate(change);
    }

    /// The server said `rel` does not exist (for a request sent at `ticket`): the cache
    /// remembers it, and the kernel forgets what it held of it.
    pub fn vanished(&self, ticket: Ticket, rel: &str) {
        let change = self.cache().put_missing(ticket, rel);
        self.invalidate(change);
    }

    /// Stores the attributes one page of the listing of `rel` (OPENDIR sent at `ticket`)
    /// carried, before the listing is read to its end: READDIRPLUS hands them to the kernel
    /// at once, for as long as our cache answers them ([`crate::fs::lifetimes`]); not yet
    /// remembered, they would get the floor, and a walk reading the directory while it is
    /// fetched would look up each of its names again a second later. Invalidates what the
    /// kernel holds of an entry that shows a change.
    pub fn remember_entries(&self, ticket: Ticket, rel: &str, page: &[DirEntry]) {
        let changes: Vec<Change> = {
            let mut cache = self.cache();
            page.iter()
                .filter(|e| e.name != "." && e.name != "..")
                .filter_map(|e| cache.put_attr(ticket, &join_rel(rel, &e.name), Stat::from(e)))
                .collect()
        };
        self.invalidate(changes);
    }

    /// Stores a complete listing of `rel` (OPENDIR sent at `ticket`), sends the invalidations
    /// for what changed since the last one.
    pub fn remember_listing(&self, ticket: Ticket, rel: &str, all: &[DirEntry]) {
        let children: Vec<(String, Stat)> = all
            .iter()
            .filter(|e| e.name != "." && e.name != "..")
            .map(|e| (e.name.clone(), Stat::from(e)))
            .collect();
        let changes = self.cache().put_listing(ticket, rel, children);
        self.invalidate(changes);
    }

    /// Drops every cached attribute, name and listing, and asks the kernel to drop what it
    /// holds of every name and inode it knows ([`invalidate::everything`]).
    /// `expire_dirs`: the names of directories expire too (see [`invalidate::everything`]).
    pub fn flush(&self, expire_dirs: bool) {
        self.cache().clear();
        let all = invalidate::everything(&self.inodes(), expire_dirs);
        for inv in all {
            self.invalidator.send(inv);
        }
        self.invalidator.negatives_dropped();
    }

    /// The negative entries we gave the kernel for names in the directory `rel` go (its
    /// listing was doubted: those names may exist).
    pub fn negatives_doubted(&self, rel: &str) {
        let dir = self.inodes().find(rel);
        if let Some(ino) = dir {
            self.invalidator.negatives_in(ino);
        }
    }

    /// The kernel is told to drop the attributes of the inode at `rel`, if it knows one.
    pub fn attrs_doubted(&self, rel: &str) {
        let ino = self.inodes().find(rel);
        if let Some(ino) = ino {
            self.invalidator.inode(ino);
        }
    }

    /// A file with several names changed through one of them (inode `except`, if the kernel
    /// knows it), and SFTP cannot say which names are its others: every name cached with a
    /// link count above one forgets its attributes, and the kernel is told to drop what it
    /// holds of each inode known to have several links. `counts`: a name of it went, so the
    /// link counts those inodes remember may be one too high; they are forgotten too (a count
    /// then reads as the names we know until a listing gives it again: never more links than
    /// exist). A scan of the cache: only done for files with several links.
    pub fn other_names_changed(&self, except: Option<u64>, counts: bool) {
        let paths = self
            .cache()
            .forget_attrs_where(|s| !s.is_dir() && s.nlink.is_some_and(|n| n > 1));
        let others: BTreeSet<u64> = {
            let mut inodes = self.inodes();
            let others: BTreeSet<u64> = inodes
                .multi_link_files()
                .into_iter()
                .chain(paths.iter().filter_map(|p| inodes.find(p)))
                .filter(|o| Some(*o) != except)
                .collect();
            if counts {
                for other in &others {
                    inodes.forget_nlink(*other);
                }
            }
            others
        };
        for other in others {
            self.invalidator.inode(other);
        }
    }

    /// The link count last known for the file `name` in `parent` (at `rel`), 1 if none.
    pub fn link_count(&self, parent: u64, name: &str, rel: &str) -> u32 {
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
    pub fn has_several_names(&self, parent: u64, name: &str, rel: &str) -> bool {
        let is_dir = self.cache().last_attr(rel).is_some_and(|s| s.is_dir()) || {
            let inodes = self.inodes();
            inodes
                .peek(parent, name)
                .is_some_and(|ino| inodes.file_type(ino) == libc::S_IFDIR)
        };
        !is_dir && self.link_count(parent, name, rel) > 1
    }
}

/// Whether fresh cached attributes may be answered: not for a file with several names
/// (`shared`: the inode is known to have them), whose change through another name we cannot
/// see; with `follow` (follow_symlinks) not for any file, which symlinks we cannot see may
/// name. (A directory's link count counts its subdirectories, not other names.)
fn trusted(stat: &Stat, shared: bool, follow: bool) -> bool {
    stat.is_dir() || !(shared || several_names(stat) || follow)
}

/// Whether cached attributes say the file has several names.
fn several_names(stat: &Stat) -> bool {
    stat.nlink.is_some_and(|n| n > 1)
}
