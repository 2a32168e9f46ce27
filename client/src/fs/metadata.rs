//! The filesystem's side of the metadata cache: answer from it when it is fresh, remember what
//! the server tells us, and turn every change the cache detects into a kernel invalidation.
//!
//! The cache itself (`sshfs_cache::MetaCache`) is pure and keyed by paths relative to the mount
//! root; only this layer knows inode numbers, so only it can say which kernel inode or name a
//! [`Change`] concerns. Invalidations leave through the [`Invalidator`](super::invalidate)
//! channel, never from here directly (see [`super::invalidate`] for why).

use std::sync::MutexGuard;

use russh_sftp::protocol::FileAttributes;
use sshfs_cache::{CacheStats, Change, Lookup, MetaCache, Ticket};

pub(super) use super::rel::split_rel;
use super::stat::Stat;
use super::{FX_NO_SUCH_FILE, FsError, FsResult, SshFs};
use crate::remote::sftp::SftpResult;

impl SshFs {
    pub(super) fn cache(&self) -> MutexGuard<'_, MetaCache<Stat>> {
        self.namespace.cache()
    }

    /// Attributes of the relative path `rel`: from the cache when fresh (a fresh listing of the
    /// parent that lacks the name is a cached ENOENT too), else LSTAT (STAT for the root, which
    /// may be a symlink), remembered.
    ///
    /// `ino` is the path's inode if the kernel knows it. A file known to have several names is
    /// always asked for: SFTP cannot tell which other names share it, so a change through one
    /// of them would leave the others' cached attributes stale. With `follow_symlinks` every
    /// file is, since symlinks make names of it we do not know. `lookup`: the kernel asks for a
    /// name in a directory, so a fresh listing of that directory may answer ENOENT.
    pub(super) async fn stat_rel(
        &self,
        rel: &str,
        ino: Option<u64>,
        lookup: bool,
    ) -> FsResult<Stat> {
        let (dir, name) = split_rel(rel);
        let shared = ino
            .and_then(|ino| self.inodes().nlink(ino))
            .is_some_and(|n| n > 1);
        let ticket = {
            let mut cache = self.cache();
            match cache.attr(rel) {
                // (A directory's link count counts its subdirectories, not other names.)
                // With follow_symlinks any file may be reached through links we cannot see.
                Lookup::Found(stat)
                    if stat.is_dir() || !(shared || several_names(&stat) || self.links.follow) =>
                {
                    return Ok(stat);
                }
                Lookup::Missing => return Err(missing(rel)),
                Lookup::Found(_) | Lookup::Unknown => {}
            }
            if lookup && cache.absent_from_listing(dir, name) {
                return Err(missing(rel));
            }
            cache.ticket()
        };
        match self.lstat_rel(rel).await {
            Ok(attrs) => {
                // STAT carries no link count: keep the last one a listing or our own link gave
                // (dropped whenever a name of a file with several links is removed).
                let nlink = self.cache().last_attr(rel).and_then(|s| s.nlink);
                let stat = Stat { attrs, nlink };
                self.remember_attr(ticket, rel, stat.clone());
                Ok(stat)
            }
            Err(e) if e.status() == Some(FX_NO_SUCH_FILE) => {
                let change = self.cache().put_missing(ticket, rel);
                self.invalidate_changes(change);
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// LSTAT of `rel` (STAT for the mount root, which may be a symlink; STAT for every path
    /// with `follow_symlinks`: [`SshFs::attrs_of`]).
    pub(super) async fn lstat_rel(&self, rel: &str) -> SftpResult<FileAttributes> {
        let path = self.remote(rel);
        if rel.is_empty() {
            self.sftp.stat(&path).await
        } else {
            self.attrs_of(&path).await
        }
    }

    /// Stores attributes the server sent (for a request sent at `ticket`) and invalidates what
    /// the kernel holds if they show the file changed.
    pub(super) fn remember_attr(&self, ticket: Ticket, rel: &str, stat: Stat) {
        self.namespace.remember_attr(ticket, rel, stat);
    }

    /// Queues the kernel invalidations for `changes` (see [`super::invalidate`]).
    pub(super) fn invalidate_changes(&self, changes: impl IntoIterator<Item = Change>) {
        self.namespace.invalidate(changes);
    }

    /// The kernel invalidations queued so far, by kind (`--stats`).
    pub fn invalidation_summary(&self) -> String {
        self.namespace.invalidator().summary()
    }

    /// The kernel was given a negative entry for `name` in `parent` (`negative_timeout`).
    pub fn gave_negative(&self, parent: u64, name: &std::ffi::OsStr) {
        let name = super::name_str(name);
        self.namespace.invalidator().gave_negative(parent, &name);
    }

    /// Drops every cached attribute, name and listing, and asks the kernel to drop what it
    /// holds of every name and inode it knows: the user's "the server changed, look again" (SIGHUP,
    /// `sshfs-rs --flush`).
    pub fn flush_caches(&self) {
        self.namespace.flush();
    }

    /// After each reconnect: the server may have changed while we were away, so everything
    /// cached is dropped, and the kernel told to drop what it holds (as `--flush` does). Runs
    /// until the link is gone.
    pub async fn revalidate_after_reconnects(self: std::sync::Arc<Self>) {
        let mut epoch = 1;
        while let Some((next, handles)) = self.sftp.reconnected(epoch).await {
            epoch = next;
            tracing::info!(
                "connection {epoch} up: caches dropped; {handles} open files and directories are reopened on their next use"
            );
            self.forget_all_ahead();
            self.flush_caches();
        }
    }

    /// Cache hit and miss counts and size.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache().stats()
    }

    /// One line: SFTP requests by kind, then the cache's counts.
    pub fn stats_line(&self) -> String {
        let c = self.cache_stats();
        format!(
            "sftp requests: {}; link: {}; handles: open={} handle-misuse={}; cache: hits={} misses={} entries={} evictions={}; open-ahead: {}; striped-writes: files={}; kernel-invalidations: {}; recheck: {}; server: {}",
            self.sftp.counters().summary(),
            self.sftp.link_summary(),
            self.sftp.handles().len(),
            self.sftp.handles().misuse(),
            c.hits,
            c.misses,
            c.entries,
            c.evictions,
            self.ahead.open().summary(),
            self.striped_files
                .load(std::sync::atomic::Ordering::Relaxed),
            self.invalidation_summary(),
            self.ahead.recheck().summary(),
            self.sftp.server().summary()
        )
    }
}

/// Whether cached attributes say the file has several names.
fn several_names(stat: &Stat) -> bool {
    stat.nlink.is_some_and(|n| n > 1)
}

/// ENOENT for `rel`.
fn missing(rel: &str) -> FsError {
    FsError::new(libc::ENOENT, format!("{rel}: no such file (cached)"))
}
