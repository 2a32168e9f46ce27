//! The filesystem's side of the metadata cache: attributes answered from the cache when it
//! knows them, else asked for and remembered; the cache flushed on request and after each
//! reconnect; the stats line.
//!
//! The cache, the inode table and the invalidations a change becomes are the
//! [`Namespace`](super::namespace::Namespace)'s; this file only routes the filesystem's
//! requests to it and to the server.

use std::sync::MutexGuard;

use russh_sftp::protocol::FileAttributes;
use sshfs_cache::{CacheStats, Change, MetaCache};

use super::namespace::Known;
pub(super) use super::rel::split_rel;
use super::stat::Stat;
use super::{FX_NO_SUCH_FILE, FsError, FsResult, SshFs};
use crate::remote::sftp::SftpResult;

impl SshFs {
    pub(super) fn cache(&self) -> MutexGuard<'_, MetaCache<Stat>> {
        self.namespace.cache()
    }

    /// Attributes of the relative path `rel`: from the cache when it knows them
    /// ([`Namespace::known_attr`](super::namespace::Namespace::known_attr), which says when a
    /// fresh entry is not trusted), else LSTAT (STAT for the root, which may be a symlink),
    /// remembered. `lookup`: the kernel asks for a name in a directory, so a fresh listing of
    /// that directory may answer ENOENT.
    pub(super) async fn stat_rel(
        &self,
        rel: &str,
        ino: Option<u64>,
        lookup: bool,
    ) -> FsResult<Stat> {
        let ticket = match self
            .namespace
            .known_attr(rel, ino, lookup, self.links.follow)
        {
            Known::Fresh(stat) => return Ok(stat),
            Known::Missing => return Err(missing(rel)),
            Known::Ask(ticket) => ticket,
        };
        match self.lstat_rel(rel).await {
            Ok(attrs) => Ok(self.namespace.learned_attr(ticket, rel, attrs)),
            Err(e) if e.status() == Some(FX_NO_SUCH_FILE) => {
                self.namespace.vanished(ticket, rel);
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

    /// Queues the kernel invalidations for `changes` (see [`super::invalidate`]).
    pub(super) fn invalidate_changes(&self, changes: impl IntoIterator<Item = Change>) {
        self.namespace.invalidate(changes);
    }

    /// The kernel invalidations queued so far, by kind (`--stats`).
    pub fn invalidation_summary(&self) -> String {
        self.namespace.invalidator().summary()
    }

    /// Drops every cached attribute, name and listing, and asks the kernel to drop what it
    /// holds of every name and inode it knows: the user's "the server changed, look again" (SIGHUP,
    /// `sshfs-rs --flush`). The content cache on disk (`-o data_cache`) is emptied too, and the
    /// last STATFS answer forgotten.
    pub fn flush_caches(&self) {
        self.namespace.flush(self.kernel.ttls().dir_names_expire);
        self.files.data_cache().clear();
        self.statfs.clear();
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
            self.ahead.open().forget_all();
            // Not the content cache: its entries are checked at each open anyway.
            self.namespace.flush(self.kernel.ttls().dir_names_expire);
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
            "sftp requests: {}; link: {}; handles: open={} handle-misuse={}; cache: hits={} misses={} entries={} evictions={}; open-ahead: {}; striped-writes: files={}; kernel-invalidations: {}; recheck: {}; data-cache: {}; server: {}",
            self.sftp.counters().summary(),
            self.sftp.link_summary(),
            self.sftp.handles().len(),
            self.sftp.handles().misuse(),
            c.hits,
            c.misses,
            c.entries,
            c.evictions,
            self.ahead.open().summary(),
            self.files.striped_files(),
            self.invalidation_summary(),
            self.ahead.recheck().summary(),
            self.files.data_cache().summary(),
            self.sftp.server().summary()
        )
    }
}

/// ENOENT for `rel`.
fn missing(rel: &str) -> FsError {
    FsError::new(libc::ENOENT, format!("{rel}: no such file (cached)"))
}
