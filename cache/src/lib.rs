//! Pure data structures behind the sshfs-rs filesystem: the inode table that maps the kernel's
//! inode numbers to remote paths. Nothing here does I/O, talks to FUSE or knows about SSH, so
//! every rule is unit-tested on its own.
#![deny(missing_docs)]

pub mod inodes;

pub use inodes::{InodeTable, ROOT_INO};
