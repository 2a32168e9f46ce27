//! Who may use the mount: `allow_root` as libfuse 3 has it. The kernel lets every user in
//! (the mount is `allow_other`); a request of a user other than the mount's owner and root is
//! refused with EACCES, except the ones libfuse lets through because they work on a file or
//! directory already open (`fuse_lowlevel.c`: READ, WRITE, FSYNC, RELEASE, READDIR,
//! READDIRPLUS, RELEASEDIR; not FLUSH).

use std::sync::OnceLock;

use super::op::Op;
use crate::fs::errno::{FsError, FsResult};

/// The `allow_root` admission: whom the mount serves.
#[derive(Debug, Default)]
pub struct Admission {
    /// The mount's owner, when only it and root are served.
    owner: OnceLock<u32>,
}

impl Admission {
    /// From now on, serves only `owner` and root (set once: a later call changes nothing).
    pub fn only_owner_and_root(&self, owner: u32) {
        if self.owner.set(owner).is_err() {
            tracing::debug!(owner, "allow_root was set already");
        }
    }

    /// Whether `uid` may make a request of `op` (EACCES if not).
    pub fn admit(&self, uid: u32, op: Op) -> FsResult<()> {
        match self.owner.get() {
            Some(&owner) if uid != owner && uid != 0 && !on_open_handle(op) => Err(FsError::new(
                libc::EACCES,
                format!("uid {uid} is neither the mount's owner nor root (allow_root)"),
            )),
            _ => Ok(()),
        }
    }
}

/// Whether libfuse lets `op` through for anyone under `allow_root`.
fn on_open_handle(op: Op) -> bool {
    match op {
        Op::Read
        | Op::Write
        | Op::Fsync
        | Op::Release
        | Op::Readdir
        | Op::Readdirplus
        | Op::Releasedir => true,
        Op::Lookup
        | Op::Getattr
        | Op::Setattr
        | Op::Readlink
        | Op::Symlink
        | Op::Mknod
        | Op::Mkdir
        | Op::Unlink
        | Op::Rmdir
        | Op::Rename
        | Op::Link
        | Op::Open
        | Op::Create
        | Op::Statfs
        | Op::Flush
        | Op::Opendir
        | Op::CopyFileRange => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everyone_is_served_until_allow_root() {
        let a = Admission::default();
        assert!(a.admit(1000, Op::Lookup).is_ok());
        a.only_owner_and_root(1000);
        assert!(a.admit(1000, Op::Lookup).is_ok());
        assert!(a.admit(0, Op::Unlink).is_ok());
        let refused = a.admit(1001, Op::Lookup).map_err(|e| e.errno);
        assert_eq!(refused, Err(libc::EACCES));
        assert_eq!(
            a.admit(1001, Op::Flush).map_err(|e| e.errno),
            Err(libc::EACCES)
        );
        assert!(a.admit(1001, Op::Read).is_ok());
        assert!(a.admit(1001, Op::Releasedir).is_ok());
        // Set once.
        a.only_owner_and_root(1001);
        assert!(a.admit(1001, Op::Lookup).is_err());
    }
}
