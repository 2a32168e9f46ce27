//! The mount's settings: what the kernel is asked for at mount ([`MountConfig`],
//! [`MountFlags`]) and how long it may keep what it is told ([`KernelTtls`], which the fs
//! layer applies: [`crate::fs::kernel::ttl`]).

pub use crate::fs::kernel::KernelTtls;

/// Mount settings.
#[derive(Debug, Clone)]
pub struct MountConfig {
    /// Shown as the mount's source in /proc/mounts (`user@host:/path`).
    pub fs_name: String,
    /// The mount's type in /proc/mounts is `fuse.SUBTYPE` (empty: plain `fuse`).
    pub subtype: String,
    /// Let other users access the mount.
    pub allow_other: bool,
    /// `allow_root`, with the uid of the mount's owner: only it and root may use the mount
    /// (as libfuse does it: the kernel lets everyone in, other users are refused with EACCES).
    pub allow_root: Option<u32>,
    /// Let the kernel check permissions from the mode bits.
    pub default_permissions: bool,
    /// Read-only mount.
    pub read_only: bool,
    /// Kernel mount flags (`nosuid`, `nodev`, `noexec`, atime, `sync`, `dirsync`).
    pub flags: MountFlags,
    /// Largest READ the kernel may send (`max_read=`); `None`: the kernel's own limit.
    pub max_read: Option<u32>,
    /// Decline FUSE_ASYNC_READ: the kernel sends READs from the reading process, so any signal
    /// (not only a fatal one) interrupts a read() blocked on the network.
    pub sync_read: bool,
    /// Mount through fusermount3 (needed when not root).
    pub unprivileged: bool,
    /// Open every file with `FOPEN_DIRECT_IO` (`-o direct_io`): each read(2) and write(2) goes
    /// to the server, none is served from or kept in the page cache.
    pub direct_io: bool,
    /// Largest WRITE the kernel sends (`-o max_write`; at most 1 MiB, the default).
    pub max_write: Option<u32>,
    /// Background requests (readahead, async writes) the kernel keeps in flight
    /// (`-o max_background`; the kernel's default is 12).
    pub max_background: Option<u16>,
    /// Kernel cache lifetimes.
    pub ttls: KernelTtls,
}

/// When the kernel updates access times (mount(8)'s `relatime`, `noatime`, `strictatime`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Atime {
    /// `relatime`: only when older than the modification time (the kernel's default).
    #[default]
    Relative,
    /// `noatime`.
    Never,
    /// `strictatime` (`atime`): on every access.
    Always,
}

/// Kernel mount flags. A user's mount (through fusermount3) is always `nosuid,nodev`. For root's
/// mounts [`super::mount`] applies only `sync` and `dirsync`; the caller applies the rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountFlags {
    /// Ignore set-user-ID and set-group-ID bits.
    pub nosuid: bool,
    /// Do not open device files.
    pub nodev: bool,
    /// Do not run programs.
    pub noexec: bool,
    /// Access time updates.
    pub atime: Atime,
    /// No access time updates on directories.
    pub nodiratime: bool,
    /// Synchronous writes (`sync`).
    pub sync: bool,
    /// Synchronous directory changes (`dirsync`).
    pub dirsync: bool,
}

impl MountFlags {
    /// The flags as fusermount3 takes them in `-o`. It knows only `rw ro suid nosuid dev nodev
    /// exec noexec async sync atime noatime dirsync` (3.14; any other word makes it fail), and
    /// without `noatime` the kernel's default, `relatime`, applies; so a user's mount cannot
    /// have `strictatime` or `nodiratime` (refused before this: [`MountFlags::user_mount_lacks`]).
    pub(super) fn words(&self) -> Vec<&'static str> {
        let mut w = Vec::new();
        for (on, word) in [
            (self.nosuid, "nosuid"),
            (self.nodev, "nodev"),
            (self.noexec, "noexec"),
            (self.sync, "sync"),
            (self.dirsync, "dirsync"),
            (self.atime == Atime::Never, "noatime"),
        ] {
            if on {
                w.push(word);
            }
        }
        // relatime is what a new mount gets anyway; strictatime only for root's mounts
        // (refused before for a user's: [`MountFlags::user_mount_lacks`]).
        if self.atime == Atime::Always {
            w.push("strictatime");
        }
        w
    }

    /// The flag asked for that fusermount3 cannot set on a user's mount, if any (its name).
    pub fn user_mount_lacks(&self) -> Option<&'static str> {
        if self.atime == Atime::Always {
            Some("atime/strictatime")
        } else if self.nodiratime {
            Some("nodiratime")
        } else {
            None
        }
    }
}

/// Whether the running kernel takes `FUSE_EXPIRE_ONLY` (Linux 6.2 and later, from
/// `/proc/sys/kernel/osrelease`): a name can then be made to expire without being dropped, so
/// directories' names may live as long as our cache ([`KernelTtls::dir_names_expire`]). An
/// unreadable or unparsable release counts as an older kernel (the floor, as before).
pub fn kernel_expires_entries() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .and_then(|release| release_at_least(&release, (6, 2)))
        .unwrap_or(false)
}

/// Whether a kernel release string (`6.18.44-generic`) is at least `(major, minor)`.
fn release_at_least(release: &str, want: (u32, u32)) -> Option<bool> {
    let mut parts = release.trim().split(['.', '-']);
    let major = parts.next()?.parse::<u32>().ok()?;
    let minor = parts.next()?.parse::<u32>().ok()?;
    Some((major, minor) >= want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_releases_compare_by_major_then_minor() {
        assert_eq!(release_at_least("6.18.44-fc-v1300\n", (6, 2)), Some(true));
        assert_eq!(release_at_least("6.2.0", (6, 2)), Some(true));
        assert_eq!(release_at_least("6.1.90-rt", (6, 2)), Some(false));
        assert_eq!(release_at_least("5.15.0-105-generic", (6, 2)), Some(false));
        assert_eq!(release_at_least("7.0-rc1", (6, 2)), Some(true));
        assert_eq!(release_at_least("garbage", (6, 2)), None);
    }

    #[test]
    fn words_for_fusermount() {
        assert!(MountFlags::default().words().is_empty());
        let flags = MountFlags {
            nosuid: true,
            noexec: true,
            dirsync: true,
            atime: Atime::Never,
            ..Default::default()
        };
        assert_eq!(flags.words(), ["nosuid", "noexec", "dirsync", "noatime"]);
        assert_eq!(flags.user_mount_lacks(), None);
        let strict = MountFlags {
            atime: Atime::Always,
            ..Default::default()
        };
        assert_eq!(strict.words(), ["strictatime"]);
        assert_eq!(strict.user_mount_lacks(), Some("atime/strictatime"));
        let nodiratime = MountFlags {
            nodiratime: true,
            ..Default::default()
        };
        assert_eq!(nodiratime.user_mount_lacks(), Some("nodiratime"));
    }
}
