//! The mount's own settings from the options: kernel flags and lifetimes, our metadata cache,
//! the content cache on disk, the re-check interval, and what a user's (not root's) mount may
//! ask for.

use std::time::Duration;

use sshfs_cache::CacheConfig;
use sshfs_client::fuse::{KernelTtls, MountConfig, MountFlags};

use crate::options::mount_opts::MountOpts;

/// The least time the kernel keeps attributes and names when our cache decides (the C
/// sshfs's fixed `attr_timeout` and `entry_timeout`).
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

/// `-o data_cache[=DIR]` and `-o data_cache_size`: where the content cache lives and how much
/// disk it may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataCacheConfig {
    /// The base directory (the scopes' directories are under it).
    pub dir: std::path::PathBuf,
    /// The bound on its disk use, in bytes.
    pub limit: u64,
}

/// The content cache's settings, if `-o data_cache` asked for it: the directory given, else
/// `$XDG_CACHE_HOME/sshfs-rs`, else `~/.cache/sshfs-rs`.
pub(super) fn data_cache(o: &MountOpts) -> Option<DataCacheConfig> {
    let dir = o.data_cache.clone()?.unwrap_or_else(|| {
        std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map_or_else(|| super::sources::home_dir().join(".cache"), Into::into)
            .join("sshfs-rs")
    });
    Some(DataCacheConfig {
        dir,
        limit: o
            .data_cache_size
            .unwrap_or(sshfs_cache::content::DEFAULT_LIMIT),
    })
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
        max_bytes: o
            .cache_max_bytes
            .map_or(d.max_bytes, |b| usize::try_from(b).unwrap_or(usize::MAX)),
        dir_cache: o.dir_cache.unwrap_or(d.dir_cache),
    }
}

/// A user's mount may have `allow_other` (and `allow_root`) only when /etc/fuse.conf says
/// `user_allow_other`.
pub(super) fn check_allow_other(o: &MountOpts) -> Result<(), String> {
    for (given, name) in [(o.allow_other, "allow_other"), (o.allow_root, "allow_root")] {
        if given && !user_allow_other() {
            return Err(format!(
                "option '-o {name}' needs 'user_allow_other' in /etc/fuse.conf for a user's mount (ask root to add that line, or mount without it)"
            ));
        }
    }
    Ok(())
}

/// Refuses the kernel flags fusermount3 cannot set on a user's mount.
pub(super) fn check_user_flags(o: &MountOpts) -> Result<(), String> {
    let asked = MountFlags {
        atime: o.atime,
        nodiratime: o.nodiratime,
        ..MountFlags::default()
    };
    match asked.user_mount_lacks() {
        Some(flag) => Err(format!(
            "option '-o {flag}' is only available to root: fusermount3 cannot set it on a user's mount"
        )),
        None => Ok(()),
    }
}

/// The FUSE mount's settings.
pub(super) fn mount_config(o: &MountOpts, fs_name: String, unprivileged: bool) -> MountConfig {
    MountConfig {
        fs_name,
        subtype: o.subtype.clone().unwrap_or_else(|| "sshfs-rs".to_owned()),
        allow_other: o.allow_other,
        allow_root: o.allow_root.then(|| nix::unistd::getuid().as_raw()),
        default_permissions: o.default_permissions,
        read_only: o.read_only,
        // fusermount3 makes a user's mount nosuid,nodev whatever is asked.
        flags: MountFlags {
            nosuid: !o.suid || unprivileged,
            nodev: !o.dev || unprivileged,
            noexec: o.noexec,
            atime: o.atime,
            nodiratime: o.nodiratime,
            sync: o.sync,
            dirsync: o.dirsync,
        },
        max_read: o.max_read,
        sync_read: !o.async_read,
        unprivileged,
        direct_io: o.direct_io,
        max_write: o.max_write,
        max_background: o.max_background,
        // Not given: as long as our cache keeps the answer, at least the old fixed second.
        ttls: KernelTtls {
            attr: o.attr_timeout,
            entry: o.entry_timeout,
            negative: o.negative_timeout.unwrap_or(Duration::ZERO),
            floor: DEFAULT_KERNEL_TTL,
            dir_names_expire: sshfs_client::fuse::kernel_expires_entries(),
        },
    }
}
