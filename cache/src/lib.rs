//! Pure data structures behind the sshfs-rs filesystem: the inode table that maps the kernel's
//! inode numbers to remote paths, and the metadata cache that answers `stat`, `readlink` and
//! `readdir` without a round trip while telling the filesystem what it must invalidate in the
//! kernel. Nothing here talks to FUSE or knows about SSH, and time comes in through a [`Clock`],
//! so every rule is unit-tested on its own without sleeping. Only [`content`], the content
//! cache (`-o data_cache`), does I/O: on the local disk.
#![deny(missing_docs)]

pub mod clock;
pub mod content;
pub mod inodes;
pub mod meta;

pub use clock::{Clock, ManualClock, SystemClock};
pub use inodes::{InodeTable, ROOT_INO};
pub use meta::{CacheConfig, CacheStats, Change, Lookup, MetaCache, Revision, Ticket};
