//! The content cache's hooks (`-o data_cache`): every place the filesystem meets the cache on
//! local disk ([`sshfs_cache::content`]) goes through [`DataCache`].
//!
//! - **open**: [`DataCache::at_open`] validates the file's entry against the size and mtime
//!   the OPEN's LSTAT just brought (no extra round trip); an entry of another size or mtime is
//!   dropped, a file changed within 2 s is not cached. A truncating open gets none. Open-ahead
//!   ([`crate::fs::ahead::open_ahead`]) asks the entry for a file's first bytes
//!   ([`DataCache::first_bytes`]) and sends a READ only for what it lacks.
//! - **read**: a READ whose blocks are all cached is answered from the disk first
//!   ([`DataCache::answer`]), without read-ahead; otherwise [`DataCache::through`] wraps the
//!   file's fetcher, which read-ahead and plain reads both use: a range whose blocks are all
//!   cached and intact is answered from the disk without a request, else the server's bytes
//!   are offered to the entry on their way.
//! - **write, truncate, copy, unlink, rename, rmdir**: [`DataCache::gone`] and
//!   [`DataCache::gone_under`] drop the path's entry (write-through: the next open caches anew).
//! - **`--flush`**: [`DataCache::clear`]; **`--stats`**: [`DataCache::summary`].
//!
//! Every disk read and write of the cache (entries opened, blocks read and checked, blocks
//! stored) runs on tokio's blocking threads ([`on_disk`]): a slow local disk never holds up
//! the threads that serve other requests. What needs no disk (whether an entry holds a range)
//! is asked inline.

use std::sync::Arc;

use russh_sftp::protocol::FileAttributes;
use sshfs_cache::content::{ContentCache, Entry, now_secs};

use crate::fs::ahead::readahead::Fetcher;
use crate::fs::errno::FsResult;

/// The mount's content cache, if `-o data_cache` turned it on.
#[derive(Default, Clone)]
pub struct DataCache(Option<Arc<ContentCache>>);

/// Runs `f`, disk I/O of the cache, on tokio's blocking threads; `None` if it could not run
/// to its end (it panicked, or the runtime is shutting down).
pub async fn on_disk<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

impl DataCache {
    /// The content cache `cache` (`None`: off).
    pub fn new(cache: Option<ContentCache>) -> Self {
        Self(cache.map(Arc::new))
    }

    /// Whether the cache is on.
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// The entry of the file at `rel` (relative to the mount's root), just opened with
    /// attributes `attrs` from the server; `None` when the cache is off or the file is not
    /// cached. Its table is loaded (or its files made) off the async threads.
    pub async fn at_open(&self, rel: &str, attrs: &FileAttributes) -> Option<Arc<Entry>> {
        let cache = Arc::clone(self.0.as_ref()?);
        let (size, mtime) = (attrs.size?, attrs.mtime?);
        let rel = rel.to_owned();
        on_disk(move || cache.entry(&rel, size, u64::from(mtime), now_secs()))
            .await
            .flatten()
    }

    /// For open-ahead: the entry of `rel` (as [`DataCache::at_open`]) and, when it holds them,
    /// the file's first `len` bytes (fewer: the whole file).
    pub async fn first_bytes(
        &self,
        rel: &str,
        attrs: &FileAttributes,
        len: u32,
    ) -> (Option<Arc<Entry>>, Option<Vec<u8>>) {
        let Some(entry) = self.at_open(rel, attrs).await else {
            return (None, None);
        };
        let bytes = Self::answer(Some(&entry), 0, len).await;
        (Some(entry), bytes)
    }

    /// The `len` bytes at `offset` from `entry` when every block they touch is cached and
    /// intact (read and checked off the async threads); `None` otherwise, counting nothing:
    /// the caller reads them through [`DataCache::through`], which counts the miss.
    pub async fn answer(entry: Option<&Arc<Entry>>, offset: u64, len: u32) -> Option<Vec<u8>> {
        let entry = entry?;
        if !entry.covers(offset, u64::from(len)) {
            return None;
        }
        let entry = Arc::clone(entry);
        on_disk(move || entry.read_cached(offset, u64::from(len)))
            .await
            .flatten()
    }

    /// Offers `bytes`, the file's bytes at `offset` from the server, to `entry` (stored off
    /// the async threads), and gives them back, stored or not: a store that failed, even by
    /// a panic, only leaves the block uncached (the bytes stay ours, not the blocking task's).
    pub async fn offer(entry: &Arc<Entry>, offset: u64, bytes: Vec<u8>) -> FsResult<Vec<u8>> {
        let entry = Arc::clone(entry);
        let bytes = Arc::new(bytes);
        let stored = Arc::clone(&bytes);
        if on_disk(move || entry.offer(offset, &stored))
            .await
            .is_none()
        {
            tracing::debug!(
                offset,
                "data_cache: storing a block failed; it stays uncached"
            );
        }
        // The blocking task has ended (its closure, and its clone, dropped): no copy.
        Ok(Arc::try_unwrap(bytes).unwrap_or_else(|shared| (*shared).clone()))
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
                if let Some(bytes) = Self::answer(Some(&entry), offset, len).await {
                    return Ok(bytes);
                }
                entry.missed();
                let bytes = fetch(offset, len).await?;
                Self::offer(&entry, offset, bytes).await
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
