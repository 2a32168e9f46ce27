//! The work done ahead of programs: what the mount fetches before it is asked, and what it
//! re-checks while nobody asks.
//!
//! * [`readahead`]: READs kept in flight ahead of a file read in order, within one budget of
//!   bytes for the whole mount.
//! * [`pacing`]: windows sized from the link's round trip and rate (read-ahead, writes).
//! * [`open_ahead`]: the next small files of a directory opened and read before the program
//!   opening them in name order asks.
//! * [`listings`]: directory listings fetched in the background, for a walk or for the names
//!   looked up next.
//! * [`recheck`]: the directories programs use, re-checked for remote changes while the mount
//!   is idle.
//!
//! [`Ahead`] owns their state. The requests themselves are made through a [`Host`]: the
//! filesystem lends what this part needs (the cache, an open as open() does it, a listing into
//! the cache, an LSTAT as lookups see it), so nothing here knows the filesystem type.

pub mod listings;
pub mod open_ahead;
pub mod pacing;
pub mod readahead;
pub mod recheck;

use std::future::Future;
use std::sync::{Arc, MutexGuard};

use russh_sftp::protocol::FileAttributes;
use sshfs_cache::content::Entry;
use sshfs_cache::{MetaCache, Ticket};

use crate::fs::errno::FsResult;
use crate::fs::stat::Stat;
use crate::remote::sftp::handle::Handle;
use crate::remote::sftp::{Sftp, SftpResult};

pub use listings::{Listings, Why};
pub use open_ahead::{Changing, OpenAhead, Opened};
pub use readahead::Budget;
pub use recheck::Recheck;

/// What the work done ahead asks of the filesystem it works for.
pub trait Host: Send + Sync + 'static {
    /// The metadata cache (listings, attributes, tickets).
    fn meta_cache(&self) -> MutexGuard<'_, MetaCache<Stat>>;

    /// OPEN for reading of the relative path `rel` with an LSTAT beside it, as an open() sends
    /// them; the cache ticket taken before either was sent.
    fn open_for_reading(
        &self,
        rel: &str,
    ) -> impl Future<Output = FsResult<(Handle, SftpResult<FileAttributes>, Ticket)>> + Send;

    /// The content cache's entry of the file `rel` just opened with `attrs`, and its first
    /// `len` bytes (fewer: the whole file) when the entry holds them; `(None, None)` when the
    /// cache is off or does not keep the file.
    fn cached_start(
        &self,
        rel: &str,
        attrs: &FileAttributes,
        len: u32,
    ) -> impl Future<Output = (Option<Arc<Entry>>, Option<Vec<u8>>)> + Send;

    /// Offers `data`, the first bytes of the file of `entry` as the server sent them, to the
    /// content cache; gives them back.
    fn cache_offer(
        &self,
        entry: &Arc<Entry>,
        data: Vec<u8>,
    ) -> impl Future<Output = FsResult<Vec<u8>>> + Send;

    /// Fetches the whole listing of the directory `rel` into the cache (OPENDIR, READDIR pages,
    /// CLOSE), sending the kernel invalidations for what changed.
    fn list(&self, rel: &str, why: Why) -> impl Future<Output = FsResult<()>> + Send;

    /// LSTAT of `rel` as a lookup sends it (STAT for the root or with `follow_symlinks`).
    fn lstat_rel(&self, rel: &str) -> impl Future<Output = SftpResult<FileAttributes>> + Send;

    /// The server said `rel` does not exist (for a request sent at `ticket`): the cache and
    /// the kernel forget it.
    fn vanished(&self, ticket: Ticket, rel: &str);
}

/// The state of the work done ahead for one mount.
pub struct Ahead {
    listings: Listings,
    readahead_budget: Budget,
    open: OpenAhead,
    recheck: Arc<Recheck>,
}

impl Ahead {
    /// Nothing fetched ahead yet, over `sftp`.
    pub fn new(sftp: &Arc<Sftp>) -> Self {
        Self {
            listings: Listings::default(),
            readahead_budget: Budget::default(),
            open: OpenAhead::new(Arc::clone(sftp)),
            recheck: Arc::new(Recheck::new(Arc::clone(sftp))),
        }
    }

    /// Listings fetched ahead.
    pub fn listings(&self) -> &Listings {
        &self.listings
    }

    /// The bound on bytes read ahead for all open files.
    pub fn readahead_budget(&self) -> &Budget {
        &self.readahead_budget
    }

    /// Files opened ahead.
    pub fn open(&self) -> &OpenAhead {
        &self.open
    }

    /// Directories re-checked in the background.
    pub fn recheck(&self) -> &Arc<Recheck> {
        &self.recheck
    }
}

impl std::fmt::Debug for Ahead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ahead")
    }
}
