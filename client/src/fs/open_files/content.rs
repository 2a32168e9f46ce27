//! The content cache's hooks (`-o data_cache`): every place the filesystem meets the cache on
//! local disk ([`sshfs_cache::content`]) goes through [`DataCache`].
//!
//! - **open**: [`DataCache::at_open`] validates the file's entry against the size and mtime
//!   the OPEN's LSTAT just brought (no extra round trip); an entry of another size or mtime is
//!   dropped, a file changed within 2 s is not cached. A truncating open gets none.
//! - **read**: [`DataCache::through`] wraps the file's fetcher, which read-ahead and plain
//!   reads both use: a range whose blocks are all cached and intact is answered from the disk
//!   without a request; otherwise the server's bytes are offered to the entry on their way.
//! - **write, truncate, copy, unlink, rename, rmdir**: [`DataCache::gone`] and
//!   [`DataCache::gone_under`] drop the path's entry (write-through: the next open caches anew).
//! - **`--flush`**: [`DataCache::clear`]; **`--stats`**: [`DataCache::summary`].
//!
//! Disk reads and writes of the cache are short (page cache, at most a block) and done on the
//! task that needs them.

use std::sync::Arc;

use russh_sftp::protocol::FileAttributes;
use sshfs_cache::content::{ContentCache, Entry, now_secs};

use crate::fs::ahead::readahead::Fetcher;

/// The mount's content cache, if `-o data_cache` turned it on.
#[derive(Default)]
pub struct DataCache(Option<ContentCache>);

impl DataCache {
    /// The content cache `cache` (`None`: off).
    pub fn new(cache: Option<ContentCache>) -> Self {
        Self(cache)
    }

    /// The entry of the file at `rel` (relative to the mount's root), just opened with
    /// attributes `attrs` from the server; `None` when the cache is off or the file is not
    /// cached.
    pub fn at_open(&self, rel: &str, attrs: &FileAttributes) -> Option<Arc<Entry>> {
        let cache = self.0.as_ref()?;
        let (size, mtime) = (attrs.size?, attrs.mtime?);
        cache.entry(rel, size, u64::from(mtime), now_secs())
    }

    /// `fetch` answered from `entry` when all it asks is cached, else from the server with
    /// what it brings offered to `entry`.
    pub fn through(entry: Option<&Arc<Entry>>, fetch: Fetcher) -> Fetcher {
        let Some(entry) = entry else {
            return fetch;
        };
        let entry = Arc::clone(entry);
        Arc::new(move |offset, len| {
            let (entry, fetch) = (Arc::clone(&entry), Arc::clone(&fetch));
            Box::pin(async move {
                if let Some(bytes) = entry.read(offset, u64::from(len)) {
                    return Ok(bytes);
                }
                let bytes = fetch(offset, len).await?;
                entry.offer(offset, &bytes);
                Ok(bytes)
            })
        })
    }

    /// The file at `rel` changed or went through the mount: what is cached of it is dropped.
    pub fn gone(&self, rel: &str) {
        if let Some(cache) = &self.0 {
            cache.forget(rel);
        }
    }

    /// The name `rel` went, and whatever was under it if it was a directory.
    pub fn gone_under(&self, rel: &str) {
        if let Some(cache) = &self.0 {
            cache.forget(rel);
            cache.forget_under(rel);
        }
    }

    /// Drops everything (`--flush`, SIGHUP).
    pub fn clear(&self) {
        if let Some(cache) = &self.0 {
            cache.clear();
        }
    }

    /// The counters for the stats line (`off` when the cache is off).
    pub fn summary(&self) -> String {
        let Some(cache) = &self.0 else {
            return "off".to_owned();
        };
        let s = cache.stats();
        format!(
            "hits={} misses={} bytes-hit={} bytes-stored={} used={} evictions={} corrupt={}",
            s.hits, s.misses, s.bytes_hit, s.bytes_stored, s.used, s.evictions, s.corrupt
        )
    }
}
