//! What the kernel must forget because the server changed it: an inode's attributes, or a name
//! in a directory (a positive or a negative dentry).
//!
//! The fs layer only queues [`Invalidation`]s on a channel; the FUSE frontend sends the
//! notifications from one dedicated task, never from a request handler (a handler the kernel
//! waits for must not wait for a notification the kernel handles under a lock that request
//! holds).
//!
//! * **Attributes** (`FUSE_NOTIFY_INVAL_INODE`, offset -1: no page locks). With fresh
//!   attributes the kernel sees a new size or mtime and drops the file's pages itself
//!   (`FUSE_AUTO_INVAL_DATA`); `open()` of a changed file drops them too (no
//!   `FOPEN_KEEP_CACHE`).
//! * **Contents** of a regular file the server changed (`FUSE_NOTIFY_INVAL_INODE`, the whole
//!   file): its pages go at once, so a mapping of it (mmap) shows the new bytes too. The kernel
//!   locks each page to drop it, and a page under readahead stays locked until our READ reply:
//!   safe since notifications no longer hold up replies (below).
//! * **Names** (`FUSE_NOTIFY_INVAL_ENTRY`): a name that vanished, appeared or changed type on
//!   the server, so the kernel asks us again instead of trusting its dentry (and a negative
//!   one) for `entry_timeout` (`negative_timeout`). The kernel handles this notification under
//!   the parent directory's lock, which a LOOKUP in that directory holds until we answer it.
//!   The vendored fuse3 therefore writes notifications with a write(2) of their own, outside the
//!   lock its replies are written under and off the runtime's threads (vendor/README.md):
//!   the notification waits for the lookup's answer, and the answer is never held up by it.
//!   (Unpatched, both went through one mutex, and a name invalidation racing a lookup hung
//!   the mount.)
//!
//! `--flush` invalidates every inode's attributes, every regular file's pages, every name of a
//! file the kernel holds through us, and every negative entry we gave it (those are remembered
//! here, at most [`NEGATIVES_KEPT`]). The names of directories only expire
//! ([`Invalidation::Expire`], Linux 6.2+): the kernel unmounts whatever is mounted on a name it
//! drops.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sshfs_cache::{Change, InodeTable, MetaCache};
use tokio::sync::mpsc;

use super::rel::split_rel;
use super::stat::Stat;

/// Negative entries given to the kernel that `--flush` can take back; more are not
/// remembered (they expire after `negative_timeout`, as without this).
pub const NEGATIVES_KEPT: usize = 16_384;

/// One thing for the kernel to forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// The attributes of this inode (`FUSE_NOTIFY_INVAL_INODE`, offset -1).
    Attrs(u64),
    /// The attributes and every cached page of this file (`FUSE_NOTIFY_INVAL_INODE`, offset 0,
    /// length 0: the whole file; SFTP does not say which range changed).
    Contents(u64),
    /// The name `name` in directory `parent` (`FUSE_NOTIFY_INVAL_ENTRY`).
    Entry {
        /// The directory's inode.
        parent: u64,
        /// The name in it.
        name: String,
    },
    /// The name `name` in directory `parent` expires (`FUSE_NOTIFY_INVAL_ENTRY` with
    /// `FUSE_EXPIRE_ONLY`): the kernel asks again at its next use but keeps the dentry, and
    /// whatever is mounted on it, unless the answer differs. For a directory's name.
    Expire {
        /// The directory's inode.
        parent: u64,
        /// The name in it.
        name: String,
    },
}

/// The sending side, held by the filesystem.
#[derive(Debug, Clone)]
pub struct Invalidator {
    tx: mpsc::UnboundedSender<Invalidation>,
    /// Negative entries the kernel holds from us (see [`NEGATIVES_KEPT`]).
    negatives: Arc<Mutex<HashSet<(u64, String)>>>,
    /// Invalidations queued so far: attributes, pages, names.
    sent: Arc<[AtomicU64; 3]>,
}

/// The receiving side, drained by the FUSE frontend's notification task.
pub type Invalidations = mpsc::UnboundedReceiver<Invalidation>;

impl Invalidator {
    /// A new channel.
    pub fn channel() -> (Self, Invalidations) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (negatives, sent) = (Arc::default(), Arc::default());
        (
            Self {
                tx,
                negatives,
                sent,
            },
            rx,
        )
    }

    /// Queues an attribute invalidation of inode `ino`; dropped once the mount is gone.
    pub fn inode(&self, ino: u64) {
        let _ = self.tx.send(Invalidation::Attrs(ino));
    }

    /// Queues `inv`; a name's invalidation also takes back a negative entry we gave for it.
    pub fn send(&self, inv: Invalidation) {
        if let Invalidation::Entry { parent, name } = &inv
            && let Ok(mut n) = self.negatives.lock()
        {
            n.remove(&(*parent, name.clone()));
        }
        let kind = match inv {
            Invalidation::Attrs(_) => 0,
            Invalidation::Contents(_) => 1,
            Invalidation::Entry { .. } | Invalidation::Expire { .. } => 2,
        };
        self.sent[kind].fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.send(inv);
    }

    /// `attrs=N pages=N names=N`: the invalidations queued so far, by kind (`--stats`).
    pub fn summary(&self) -> String {
        let [attrs, pages, names] = &*self.sent;
        format!(
            "attrs={} pages={} names={}",
            attrs.load(Ordering::Relaxed),
            pages.load(Ordering::Relaxed),
            names.load(Ordering::Relaxed)
        )
    }

    /// Queues the invalidation of the name `name` in directory `parent`.
    pub fn entry(&self, parent: u64, name: &str) {
        self.send(Invalidation::Entry {
            parent,
            name: name.to_owned(),
        });
    }

    /// Remembers that the kernel was given a negative entry for `name` in `parent`.
    pub fn gave_negative(&self, parent: u64, name: &str) {
        if let Ok(mut n) = self.negatives.lock()
            && n.len() < NEGATIVES_KEPT
        {
            n.insert((parent, name.to_owned()));
        }
    }

    /// Queues the invalidation of the negative entries remembered for names in the directory
    /// `parent`, and forgets them.
    pub fn negatives_in(&self, parent: u64) {
        let names: Vec<String> = match self.negatives.lock() {
            Ok(mut n) => {
                let names = n
                    .iter()
                    .filter(|(p, _)| *p == parent)
                    .map(|(_, name)| name.clone())
                    .collect();
                n.retain(|(p, _)| *p != parent);
                names
            }
            Err(_) => return,
        };
        for name in names {
            self.send(Invalidation::Entry { parent, name });
        }
    }

    /// Queues the invalidation of every negative entry remembered, and forgets them.
    pub fn negatives_dropped(&self) {
        let all: Vec<(u64, String)> = match self.negatives.lock() {
            Ok(mut n) => n.drain().collect(),
            Err(_) => return,
        };
        for (parent, name) in all {
            self.send(Invalidation::Entry { parent, name });
        }
    }
}

/// The type each modified path of `changes` has now, as `cache` knows it (before the inode
/// table learns it); `None` for the other changes.
pub fn types_now(cache: &MetaCache<Stat>, changes: &[Change]) -> Vec<Option<u32>> {
    changes
        .iter()
        .map(|c| match c {
            Change::Modified { path } => cache.last_attr(path).map(|s| s.file_type()),
            _ => None,
        })
        .collect()
}

/// The kernel invalidations for `changes` (`types`: from [`types_now`]): a modified file's
/// attributes (and its name, when its type changed); a vanished name, its inode's and its
/// directory's attributes; a name that appeared (the kernel may hold a negative entry for it)
/// and its directory's attributes.
pub fn for_changes(
    inodes: &InodeTable,
    changes: &[Change],
    types: Vec<Option<u32>>,
) -> Vec<Invalidation> {
    let mut out = Vec::new();
    for (change, now) in changes.iter().zip(types) {
        match change {
            Change::Modified { path } => {
                let Some(ino) = inodes.find(path) else {
                    continue;
                };
                // A regular file's pages too: a mapping of it (mmap) is not refreshed by new
                // attributes, and reads are spared a round trip to find out.
                out.push(match now {
                    Some(libc::S_IFREG) => Invalidation::Contents(ino),
                    _ => Invalidation::Attrs(ino),
                });
                let was = inodes.file_type(ino);
                if now.is_some_and(|now| was != 0 && now != 0 && now != was) {
                    let (dir, name) = split_rel(path);
                    if let Some(dir) = inodes.find(dir) {
                        out.push(Invalidation::Entry {
                            parent: dir,
                            name: name.to_owned(),
                        });
                    }
                }
            }
            Change::Removed { parent, name } => {
                let Some(dir) = inodes.find(parent) else {
                    continue;
                };
                if let Some(ino) = inodes.peek(dir, name) {
                    out.push(Invalidation::Attrs(ino));
                }
                out.push(Invalidation::Entry {
                    parent: dir,
                    name: name.clone(),
                });
                out.push(Invalidation::Attrs(dir));
            }
            Change::Added { parent, name } => {
                let Some(dir) = inodes.find(parent) else {
                    continue;
                };
                out.push(Invalidation::Entry {
                    parent: dir,
                    name: name.clone(),
                });
                out.push(Invalidation::Attrs(dir));
            }
        }
    }
    out
}

/// What the kernel must forget of everything it holds through us (`--flush`, SIGHUP, a
/// reconnect): every inode's attributes and every file's pages, the names of files, and, with
/// `expire_dirs`, the names of directories as [`Invalidation::Expire`]. The negative entries
/// are the [`Invalidator`]'s to drop.
///
/// A directory's name is never dropped outright: the kernel detaches whatever is mounted on a
/// name it drops. Without `expire_dirs` (a kernel before Linux 6.2) it is left alone, and the
/// kernel keeps it only the floor ([`crate::fs::kernel::ttl`]); a directory's vanishing shows
/// anyway (its attributes are dropped, so the next stat or opendir asks us and gets ENOENT).
pub fn everything(table: &InodeTable, expire_dirs: bool) -> Vec<Invalidation> {
    let mut out = Vec::new();
    let mut names = Vec::new();
    for ino in table.inodes() {
        let kind = table.file_type(ino);
        out.push(match kind {
            libc::S_IFREG => Invalidation::Contents(ino),
            _ => Invalidation::Attrs(ino),
        });
        let dir = kind == libc::S_IFDIR;
        if dir && !expire_dirs {
            continue;
        }
        for path in table.paths(ino) {
            if path.is_empty() {
                continue;
            }
            let (parent, name) = split_rel(&path);
            if let Some(parent) = table.find(parent) {
                let name = name.to_owned();
                names.push(match dir {
                    true => Invalidation::Expire { parent, name },
                    false => Invalidation::Entry { parent, name },
                });
            }
        }
    }
    names.extend(out);
    names
}
