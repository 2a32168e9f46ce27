//! The filesystem's side of the work done ahead ([`super::ahead`]): what it lends that part
//! ([`Host`]), and the routes from kernel operations to it.

use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use russh_sftp::protocol::{FileAttributes, OpenFlags};
use sshfs_cache::content::Entry;
use sshfs_cache::{MetaCache, Ticket};

use super::ahead::{Host, Why};
use super::open_files::content::DataCache;
use super::stat::Stat;
use super::{FsResult, SshFs};
use crate::remote::sftp::SftpResult;
use crate::remote::sftp::handle::Handle;

impl Host for SshFs {
    fn meta_cache(&self) -> MutexGuard<'_, MetaCache<Stat>> {
        self.cache()
    }

    async fn open_for_reading(
        &self,
        rel: &str,
    ) -> FsResult<(Handle, SftpResult<FileAttributes>, Ticket)> {
        self.open_with_lstat(&self.remote(rel), OpenFlags::READ)
            .await
    }

    async fn cached_start(
        &self,
        rel: &str,
        attrs: &FileAttributes,
        len: u32,
    ) -> (Option<Arc<Entry>>, Option<Vec<u8>>) {
        self.files.data_cache().first_bytes(rel, attrs, len).await
    }

    async fn cache_offer(&self, entry: &Arc<Entry>, data: Vec<u8>) -> FsResult<Vec<u8>> {
        DataCache::offer(entry, 0, data).await
    }

    async fn list(&self, rel: &str, why: Why) -> FsResult<()> {
        self.fetch_listing(rel, why).await
    }

    async fn lstat_rel(&self, rel: &str) -> SftpResult<FileAttributes> {
        SshFs::lstat_rel(self, rel).await
    }

    fn vanished(&self, ticket: Ticket, rel: &str) {
        self.namespace.vanished(ticket, rel);
    }
}

impl SshFs {
    /// Starts re-checking the directories programs use every `interval`
    /// ([`super::ahead::recheck`]); `Duration::ZERO`, or a mount without a listing cache, does
    /// nothing. Runs until the connection is lost for good.
    pub fn start_recheck(self: &Arc<Self>, interval: Duration) {
        self.ahead.recheck().start(self, interval);
    }

    /// Starts fetching the listings of `rel`'s subdirectories the cache lacks.
    pub(super) fn prefetch_subdirs<'a>(
        self: &Arc<Self>,
        rel: &str,
        children: impl Iterator<Item = (&'a str, bool)>,
    ) {
        self.ahead.listings().subdirs(self, rel, children);
    }
}
