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

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::Host;
use crate::fs::rel::join_rel;

/// Subdirectory listings fetched ahead per listing page (or cached listing).
pub const PREFETCH_PER_DIR: usize = 64;
/// Listings fetched ahead at once, for the whole mount.
pub const PREFETCH_CONCURRENCY: usize = 8;
/// How long a listing found fresh in the cache is not looked at again: a `find` over a warm
/// tree opens a directory of 50 subdirectories of 100 files each time, and checking every
/// child's attributes for each (5,000 cache lookups) was a tenth of the mount's CPU. A listing
/// that expires meanwhile is read when it is opened, as without fetching ahead.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// Most listings remembered as fresh (forgotten all at once beyond).
const MAX_FRESH: usize = 4096;

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
    /// Listings found fresh in the cache, and when (see [`FRESH_FOR`]).
    fresh: Mutex<HashMap<String, Instant>>,
}

impl Default for Listings {
    fn default() -> Self {
        Self {
            fetching: Arc::default(),
            slots: Arc::new(Semaphore::new(PREFETCH_CONCURRENCY)),
            fresh: Mutex::default(),
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
        let now = Instant::now();
        if self.fresh_lately(&rel, now) {
            return;
        }
        let (dir_cache, fresh) = {
            let cache = host.meta_cache();
            let dir_cache = cache.config().dir_cache;
            (dir_cache, dir_cache && cache.listing_is_fresh(&rel))
        };
        if fresh {
            self.found_fresh(rel, now);
            return;
        }
        if !dir_cache {
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

    /// Whether `rel`'s listing was found fresh less than [`FRESH_FOR`] before `now`.
    fn fresh_lately(&self, rel: &str, now: Instant) -> bool {
        self.fresh.lock().is_ok_and(|fresh| {
            fresh
                .get(rel)
                .is_some_and(|at| now.saturating_duration_since(*at) < FRESH_FOR)
        })
    }

    /// Notes that `rel`'s listing was fresh at `now`.
    fn found_fresh(&self, rel: String, now: Instant) {
        if let Ok(mut fresh) = self.fresh.lock() {
            if fresh.len() >= MAX_FRESH {
                fresh.clear();
            }
            fresh.insert(rel, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_found_fresh_is_not_looked_at_again_for_a_moment() {
        let l = Listings::default();
        let now = Instant::now();
        assert!(!l.fresh_lately("d", now));
        l.found_fresh("d".to_owned(), now);
        assert!(l.fresh_lately("d", now + FRESH_FOR / 2));
        assert!(!l.fresh_lately("d", now + FRESH_FOR), "looked at again");
        assert!(!l.fresh_lately("e", now));
    }

    #[test]
    fn the_memo_stays_bounded() {
        let l = Listings::default();
        let now = Instant::now();
        for i in 0..MAX_FRESH + 10 {
            l.found_fresh(format!("d{i}"), now);
        }
        assert!(l.fresh.lock().expect("not poisoned").len() <= MAX_FRESH);
    }
}
