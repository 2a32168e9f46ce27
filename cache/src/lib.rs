//! Pure data structures behind the sshfs-rs filesystem: the inode table that maps the kernel's
//! inode numbers to remote paths. Nothing here does I/O, talks to FUSE or knows about SSH, and
//! time comes in through a [`Clock`], so every rule is unit-tested on its own without sleeping.
#![deny(missing_docs)]

pub mod clock;
pub mod inodes;

pub use clock::{Clock, ManualClock, SystemClock};
pub use inodes::{InodeTable, ROOT_INO};
