//! Directory listings fetched ahead, in the background.
//!
//! **For a walk.** A recursive walk (`ls -lR`, `find`, `git status`) lists one directory after
//! the other, a round trip or more each. As soon as a directory's listing (from the cache, or a
//! page of it from the server) shows subdirectories, the listings of those the cache lacks are
//! fetched in the background, at most [`PREFETCH_PER_DIR`] per page and
//! [`PREFETCH_CONCURRENCY`] at once for the whole mount, so when the walk gets there the answer
//! is already cached. Only one level ahead of what is actually opened: a `ls` of a large home
//! directory does not walk the whole tree.
//!
//! **For the names looked up next.** A name looked up in a directory whose listing is not
//! cached (git's `lstat` of every tracked file, a build checking its inputs) also starts that
//! directory's listing in the background, so the lookups that follow in it are answered from
//! the cache instead of one LSTAT round trip each. Such a listing does not answer "no such
//! file" (a file created on the server is found by name at once, as without it). A directory
//! larger than a quarter of the cache is not listed ahead.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use super::Host;
use crate::fs::rel::join_rel;

/// Subdirectory listings fetched ahead per listing page (or cached listing).
pub const PREFETCH_PER_DIR: usize = 64;
/// Listings fetched ahead at once, for the whole mount.
pub const PREFETCH_CONCURRENCY: usize = 8;

/// Why a listing is fetched ahead.
#[derive(Debug, Clone, Copy)]
pub enum Why {
    /// A walk listed the parent directory: the listing answers "no such file" too.
    Walk,
    /// A name in the directory was looked up: the listing answers the names in it only.
    LookedUp,
}

/// The directories whose listing is being fetched ahead, and the bound on how many at once.
#[derive(Debug)]
pub struct Listings {
    fetching: Arc<Mutex<HashSet<String>>>,
    slots: Arc<Semaphore>,
}

impl Default for Listings {
    fn default() -> Self {
        Self {
            fetching: Arc::default(),
            slots: Arc::new(Semaphore::new(PREFETCH_CONCURRENCY)),
        }
    }
}

impl Listings {
    /// Starts fetching the listings of `rel`'s subdirectories (`children`: name, is a
    /// directory) that the cache lacks (bounded).
    pub fn subdirs<'a, H: Host>(
        &self,
        host: &Arc<H>,
        rel: &str,
        children: impl Iterator<Item = (&'a str, bool)>,
    ) {
        if !host.meta_cache().config().dir_cache {
            return;
        }
        let subdirs: Vec<String> = children
            .filter(|(name, dir)| *dir && *name != "." && *name != "..")
            .map(|(name, _)| join_rel(rel, name))
            .take(PREFETCH_PER_DIR)
            .collect();
        for sub in subdirs {
            self.start(host, sub, Why::Walk);
        }
    }

    /// Starts fetching the listing of `rel` in the background unless it is fresh in the cache
    /// or already being fetched (at most [`PREFETCH_CONCURRENCY`] at once).
    pub fn start<H: Host>(&self, host: &Arc<H>, rel: String, why: Why) {
        let wanted = {
            let cache = host.meta_cache();
            cache.config().dir_cache && !cache.listing_is_fresh(&rel)
        };
        if !wanted {
            return;
        }
        let started = self
            .fetching
            .lock()
            .map(|mut set| set.insert(rel.clone()))
            .unwrap_or(false);
        if !started {
            return;
        }
        let host = Arc::clone(host);
        let (fetching, slots) = (Arc::clone(&self.fetching), Arc::clone(&self.slots));
        tokio::spawn(async move {
            if let Ok(_slot) = slots.acquire_owned().await
                && let Err(e) = host.list(&rel, why).await
            {
                tracing::debug!(dir = rel, "listing ahead failed: {}", e.message);
            }
            if let Ok(mut set) = fetching.lock() {
                set.remove(&rel);
            }
        });
    }
}
