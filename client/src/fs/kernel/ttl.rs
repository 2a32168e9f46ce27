//! How long the kernel may keep what we answer: the entry and attribute timeouts of each
//! LOOKUP, GETATTR, SETATTR, READDIRPLUS entry, CREATE, MKDIR, MKNOD, SYMLINK and LINK reply.
//!
//! Unless the user fixed them (`-o attr_timeout`, `-o entry_timeout`, kept as given, as sshfs
//! does), the kernel keeps an answer exactly as long as our own cache would answer it without
//! asking the server: the **remaining life** of the cache entry. Whatever we learn before that
//! moment that contradicts it (a listing, the re-check, an open's LSTAT, our own change through
//! another name) is sent to the kernel as an invalidation ([`crate::fs::invalidate`]), so the
//! kernel is never staler than our cache, and a `stat` of a file our cache knows costs no FUSE
//! request at all until then. The cache only forgets without telling the kernel when an entry
//! is evicted or dropped for our own change; the kernel then keeps it at most to the end of the
//! life it was given, which is within `cache_stat_timeout` of when the server said it.
//!
//! Never below [`KernelTtls::floor`] (1 s, the fixed value the C sshfs gives and sshfs-rs gave
//! before): an answer the cache does not keep gets that, as before. That covers:
//! * `-o cache=no` (nothing is kept: every answer gets the floor, as the C sshfs does);
//! * a file with several names, or any file with `follow_symlinks`: our cache does not answer
//!   those ([`Namespace::known_attr`](crate::fs::namespace::Namespace::known_attr)), so neither
//!   may the kernel for longer;
//! * a file open for writing through the mount: its size and mtime move with every write (the
//!   kernel drops its own attributes after each WRITE, and our cache forgets them too);
//! * an answer through an open handle (FSTAT) for an inode whose name is gone;
//! * a SETATTR whose result the server did not confirm gets zero instead (the kernel asks again).
//!
//! A **directory's name** lives as long as ours only where `--flush` and a reconnect can make
//! it expire without dropping it ([`KernelTtls::dir_names_expire`]: `FUSE_EXPIRE_ONLY`, Linux
//! 6.2+); dropped, the kernel would detach whatever is mounted on it. On an older kernel it gets
//! the floor, so that it expires on its own soon after. Its attributes live as long as ours.

use std::time::Duration;

/// The floor, and the default of `attr_timeout` and `entry_timeout` in sshfs.
pub const FLOOR: Duration = Duration::from_secs(1);

/// How long the kernel may keep what we tell it, as the mount was set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelTtls {
    /// `-o attr_timeout`: attributes are kept this long. `None`: as long as our cache keeps
    /// them, at least [`floor`](Self::floor).
    pub attr: Option<Duration>,
    /// `-o entry_timeout`: names are kept this long. `None`: as long as our cache keeps the
    /// attributes behind them, at least [`floor`](Self::floor) (a directory's: the floor).
    pub entry: Option<Duration>,
    /// Validity of "no such name" (zero: the kernel asks again every time; our cache answers).
    pub negative: Duration,
    /// The least time given when our cache decides.
    pub floor: Duration,
    /// Whether the kernel can be told to let a name expire without dropping it
    /// (`FUSE_EXPIRE_ONLY`, Linux 6.2+): then a directory's name lives as long as ours too,
    /// and `--flush` makes it expire; else it gets the floor.
    pub dir_names_expire: bool,
}

impl Default for KernelTtls {
    /// From our cache, at least 1 s; no negative entries.
    fn default() -> Self {
        Self {
            attr: None,
            entry: None,
            negative: Duration::ZERO,
            floor: FLOOR,
            dir_names_expire: false,
        }
    }
}

/// How long the kernel may keep one answer's name and attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// The name (dentry).
    pub entry: Duration,
    /// The attributes.
    pub attr: Duration,
}

impl KernelTtls {
    /// Whether both timeouts are fixed by the user (our cache is not asked).
    pub fn fixed(&self) -> Option<Lifetimes> {
        Some(Lifetimes {
            entry: self.entry?,
            attr: self.attr?,
        })
    }

    /// The lifetimes of an answer our cache keeps `life` longer (zero: it does not keep it);
    /// `dir`: the answer is a directory's.
    pub fn lifetimes(&self, life: Duration, dir: bool) -> Lifetimes {
        let ours = life.max(self.floor);
        Lifetimes {
            attr: self.attr.unwrap_or(ours),
            entry: self.entry.unwrap_or(match dir && !self.dir_names_expire {
                true => self.floor,
                false => ours,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn our_cache_decides_above_the_floor() {
        let ttls = KernelTtls::default();
        let both = |t| Lifetimes { entry: t, attr: t };
        assert_eq!(ttls.lifetimes(17 * SEC, false), both(17 * SEC));
        // Not kept by our cache (cache=no, several names, a writer): the floor, as before.
        assert_eq!(ttls.lifetimes(Duration::ZERO, false), both(SEC));
        assert_eq!(ttls.lifetimes(SEC / 3, false), both(SEC));
        assert_eq!(ttls.fixed(), None);
    }

    #[test]
    fn a_directory_name_gets_the_floor_unless_it_can_be_made_to_expire() {
        let got = KernelTtls::default().lifetimes(17 * SEC, true);
        assert_eq!(
            got,
            Lifetimes {
                entry: SEC,
                attr: 17 * SEC
            }
        );
        let expiring = KernelTtls {
            dir_names_expire: true,
            ..KernelTtls::default()
        };
        let both = Lifetimes {
            entry: 17 * SEC,
            attr: 17 * SEC,
        };
        assert_eq!(expiring.lifetimes(17 * SEC, true), both);
    }

    #[test]
    fn what_the_user_gives_is_kept() {
        let ttls = KernelTtls {
            attr: Some(5 * SEC),
            entry: Some(Duration::ZERO),
            ..KernelTtls::default()
        };
        let fixed = Lifetimes {
            entry: Duration::ZERO,
            attr: 5 * SEC,
        };
        assert_eq!(ttls.fixed(), Some(fixed));
        assert_eq!(ttls.lifetimes(17 * SEC, false), fixed);
        assert_eq!(ttls.lifetimes(Duration::ZERO, true), fixed);
        // Only one given: the other from our cache.
        let attr_only = KernelTtls {
            attr: Some(600 * SEC),
            ..KernelTtls::default()
        };
        assert_eq!(
            attr_only.lifetimes(17 * SEC, false),
            Lifetimes {
                entry: 17 * SEC,
                attr: 600 * SEC
            }
        );
    }
}
