//! The sshfs-rs engine: an SSH + SFTP client ([`remote`]), the filesystem logic that turns
//! inode-based operations into SFTP requests ([`fs`]), and the FUSE frontend ([`fuse`]).
#![deny(missing_docs)]

pub mod fs;
pub mod fuse;
pub mod kernel_names;
pub mod os_message;
pub mod remote;
pub mod request_log;
