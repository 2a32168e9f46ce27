//! The mount's own settings from the options: kernel flags and lifetimes, our metadata cache,
//! the re-check interval, and what a user's (not root's) mount may ask for.

use std::time::Duration;

use sshfs_cache::CacheConfig;

use crate::options::mount_opts::MountOpts;

/// Default kernel attribute and name cache lifetime.
pub(super) const DEFAULT_KERNEL_TTL: Duration = Duration::from_secs(1);

/// Whether /etc/fuse.conf lets users mount with allow_other (as fusermount3 reads it).
pub(super) fn user_allow_other() -> bool {
    std::fs::read_to_string("/etc/fuse.conf").is_ok_and(|conf| {
        conf.lines()
            .any(|l| l.split('#').next().unwrap_or("").trim() == "user_allow_other")
    })
}

/// Default of `-o recheck`.
pub(super) const DEFAULT_RECHECK: Duration = Duration::from_secs(2);

/// `-o recheck` (default 2 s); zero without a cache (nothing to re-check).
pub(super) fn recheck_interval(o: &MountOpts) -> Duration {
    if o.cache == Some(false) || o.dir_cache == Some(false) {
        return Duration::ZERO;
    }
    o.recheck.unwrap_or(DEFAULT_RECHECK)
}

/// The metadata cache settings: sshfs's option names and defaults (20 s, 10 000 entries).
pub(super) fn cache_config(o: &MountOpts) -> CacheConfig {
    let d = CacheConfig::default();
    if o.cache == Some(false) {
        return CacheConfig {
            stat_ttl: Duration::ZERO,
            dir_ttl: Duration::ZERO,
            link_ttl: Duration::ZERO,
            negative_ttl: Duration::ZERO,
            dir_cache: false,
            ..d
        };
    }
    let stat_ttl = o.cache_stat_timeout.unwrap_or(d.stat_ttl);
    CacheConfig {
        stat_ttl,
        dir_ttl: o.cache_dir_timeout.unwrap_or(d.dir_ttl),
        link_ttl: o.cache_link_timeout.unwrap_or(d.link_ttl),
        negative_ttl: stat_ttl,
        max_entries: o.cache_max_size.unwrap_or(d.max_entries),
        dir_cache: o.dir_cache.unwrap_or(d.dir_cache),
    }
}
