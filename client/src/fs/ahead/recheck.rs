//! Remote changes seen before the cache's TTL: the directories programs are using are re-checked
//! in the background while the mount is otherwise idle.
//!
//! **Which directories.** One a program opened (`opendir`) is tracked while it holds it open and
//! for [`TRACK_FOR`] after its last use; at most [`MAX_TRACKED`] at once (the least recently used
//! one goes first). So is one made through the mount (`mkdir`), from then on: it is known to be
//! empty, which spares a tree being unpacked a LOOKUP per new name, and that knowledge must not
//! hide what the server puts in it. Listings fetched ahead by the mount itself are not
//! tracked: nobody looks at them yet.
//!
//! A listing too large to be fetched in the background (more than a quarter of the cache's
//! entries) is not stored; what was cached of the directory is then no longer answered (the
//! next `opendir` reads it from the server).
//!
//! **What a check costs.** One LSTAT of the directory, every `interval` (`-o recheck`, default
//! 2 s) per directory. Only when its mtime or size differs from the last check is the listing
//! fetched again (OPENDIR, READDIR pages, CLOSE, as a listing fetched ahead); the cache compares
//! it with the one it had, and what appeared, vanished or changed becomes kernel invalidations
//! ([`crate::fs::invalidate`]). SFTP v3 carries mtimes in whole seconds, so a change in the same
//! second as the one before it would not move the mtime: after a listing, the next check lists
//! once more whatever the mtime says. The first check of a newly tracked directory lists it too
//! (nothing before it tells which second its last listing saw).
//!
//! **Bounds.** At most one check every [`STEP`] (10 LSTATs a second for the whole mount), only
//! when no request of the mount is in flight and none was sent for [`IDLE`], and never while the
//! connection is down: the re-check never competes with programs for the link.
//!
//! So a file created, removed or rewritten on the server shows in such a directory within about
//! `interval` (plus a STEP per other directory due at the same moment), with the kernel told.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::{Host, Why};
use crate::fs::stat;
use crate::remote::sftp::{FX_NO_SUCH_FILE, Sftp};

/// Most directories tracked at once.
pub const MAX_TRACKED: usize = 64;
/// How long a directory stays tracked after a program last opened or read it.
pub const TRACK_FOR: Duration = Duration::from_secs(180);
/// Least time between two checks, for the whole mount (10 a second).
pub const STEP: Duration = Duration::from_millis(100);
/// How long the mount must have sent no other request before a check.
pub const IDLE: Duration = Duration::from_millis(500);

/// What the mount knows of one tracked directory.
#[derive(Debug)]
struct Tracked {
    /// Last opened or read by a program.
    used: Instant,
    /// Handles programs hold open on it.
    open: usize,
    /// When it is next checked.
    due: Instant,
    /// (mtime, size) at the last check; `None` before the first.
    seen: Option<(Option<u32>, Option<u64>)>,
    /// List at the next check whatever the mtime says (see the module doc).
    settle: bool,
}

/// The set of directories to re-check and the counters; off until [`Recheck::start`].
pub struct Recheck {
    /// Whose requests the re-check waits to be idle, and whether the link is up.
    sftp: Arc<Sftp>,
    interval: OnceLock<Duration>,
    dirs: Mutex<HashMap<String, Tracked>>,
    lstats: AtomicU64,
    relisted: AtomicU64,
}

impl std::fmt::Debug for Recheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recheck")
    }
}

impl Recheck {
    /// Off, over `sftp`.
    pub fn new(sftp: Arc<Sftp>) -> Self {
        Self {
            sftp,
            interval: OnceLock::new(),
            dirs: Mutex::default(),
            lstats: AtomicU64::default(),
            relisted: AtomicU64::default(),
        }
    }

    fn dirs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tracked>> {
        self.dirs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A program opened (`opened`: +1 handle) or read the directory `rel`.
    pub fn used(&self, rel: &str, opened: bool) {
        let Some(interval) = self.interval.get().copied() else {
            return;
        };
        let now = Instant::now();
        let mut dirs = self.dirs();
        if !dirs.contains_key(rel) {
            if dirs.len() >= MAX_TRACKED {
                let oldest = dirs
                    .iter()
                    .min_by_key(|(_, t)| (t.open > 0, t.used))
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    dirs.remove(&k);
                }
            }
            dirs.insert(
                rel.to_owned(),
                Tracked {
                    used: now,
                    open: 0,
                    due: now + interval,
                    seen: None,
                    settle: true,
                },
            );
        }
        if let Some(t) = dirs.get_mut(rel) {
            t.used = now;
            if opened {
                t.open += 1;
            }
        }
    }

    /// A program closed a handle on the directory `rel`.
    pub fn closed(&self, rel: &str) {
        if let Some(t) = self.dirs().get_mut(rel) {
            t.open = t.open.saturating_sub(1);
            t.used = Instant::now();
        }
    }

    /// The directory due first, if one is due at `now` (it is then scheduled again); drops
    /// those no longer used.
    fn next_due(&self, now: Instant, interval: Duration) -> Option<String> {
        let mut dirs = self.dirs();
        dirs.retain(|_, t| t.open > 0 || now.duration_since(t.used) < TRACK_FOR);
        let (rel, t) = dirs
            .iter_mut()
            .filter(|(_, t)| t.due <= now)
            .min_by_key(|(_, t)| t.due)?;
        t.due = now + interval;
        Some(rel.clone())
    }

    /// Records the directory's (mtime, size) and says whether to list it again.
    fn observed(&self, rel: &str, key: (Option<u32>, Option<u64>)) -> bool {
        let mut dirs = self.dirs();
        let Some(t) = dirs.get_mut(rel) else {
            return false;
        };
        let changed = t.seen != Some(key);
        let relist = changed || t.settle;
        t.settle = changed;
        t.seen = Some(key);
        relist
    }

    /// "dirs=N lstat=N relisted=N", for the stats line.
    pub fn summary(&self) -> String {
        format!(
            "dirs={} lstat={} relisted={}",
            self.dirs().len(),
            self.lstats.load(Ordering::Relaxed),
            self.relisted.load(Ordering::Relaxed)
        )
    }
}

impl Recheck {
    /// Starts re-checking the directories programs use every `interval` (see the module doc),
    /// through `host`; `Duration::ZERO`, or a mount without a listing cache, does nothing.
    /// Runs until the connection is lost for good.
    pub fn start<H: Host>(self: &Arc<Self>, host: &Arc<H>, interval: Duration) {
        if interval.is_zero() || !host.meta_cache().config().dir_cache {
            return;
        }
        if self.interval.set(interval).is_err() {
            return;
        }
        tokio::spawn(Arc::clone(self).run(Arc::clone(host), interval));
    }

    async fn run<H: Host>(self: Arc<Self>, host: Arc<H>, interval: Duration) {
        let counters = || self.sftp.counters().total();
        // Requests sent by others than this loop, and when that number last moved.
        let mut own = 0;
        let mut others = counters();
        let mut active = Instant::now();
        loop {
            tokio::time::sleep(STEP).await;
            if self.sftp.gave_up() {
                return;
            }
            let now = Instant::now();
            let seen = counters().saturating_sub(own);
            if seen != others || self.sftp.in_flight() > 0 || !self.sftp.is_up() {
                others = seen;
                active = now;
                continue;
            }
            if now.duration_since(active) < IDLE {
                continue;
            }
            let Some(rel) = self.next_due(now, interval) else {
                continue;
            };
            let before = counters();
            self.check(&*host, &rel).await;
            // (A program's request sent meanwhile is counted as ours: it is seen as activity
            // through `in_flight` while it runs, and at worst one check comes early.)
            own += counters().saturating_sub(before);
        }
    }

    /// One check of the directory `rel`: LSTAT, and the listing again if it changed.
    async fn check<H: Host>(&self, host: &H, rel: &str) {
        let ticket = host.meta_cache().ticket();
        self.lstats.fetch_add(1, Ordering::Relaxed);
        let looked = host.lstat_rel(rel).await;
        match looked {
            Ok(attrs) => {
                if !stat::is_dir(&attrs) {
                    return;
                }
                if !self.observed(rel, (attrs.mtime, attrs.size)) {
                    return;
                }
                self.relisted.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = host.list(rel, Why::Walk).await {
                    tracing::debug!(dir = rel, "re-check listing failed: {}", e.message);
                }
            }
            Err(e) if e.status() == Some(FX_NO_SUCH_FILE) => {
                self.dirs().remove(rel);
                host.vanished(ticket, rel);
            }
            Err(e) => tracing::debug!(dir = rel, "re-check failed: {e}"),
        }
    }
}
