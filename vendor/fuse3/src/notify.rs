//! notify kernel.

// sshfs-rs patch: OsStr, OsStrExt (names of notifications, `with_name`).
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use zerocopy::IntoBytes;

use crate::raw::abi::FUSE_EXPIRE_ONLY; // sshfs-rs patch
use crate::raw::abi::{
    FUSE_NOTIFY_DELETE_OUT_SIZE, FUSE_NOTIFY_INVAL_ENTRY_OUT_SIZE,
    FUSE_NOTIFY_INVAL_INODE_OUT_SIZE, FUSE_NOTIFY_POLL_WAKEUP_OUT_SIZE,
    FUSE_NOTIFY_RETRIEVE_OUT_SIZE, FUSE_NOTIFY_STORE_OUT_SIZE, FUSE_OUT_HEADER_SIZE,
    fuse_notify_code, fuse_notify_delete_out, fuse_notify_inval_entry_out,
    fuse_notify_inval_inode_out, fuse_notify_poll_wakeup_out, fuse_notify_retrieve_out,
    fuse_notify_store_out, fuse_out_header,
};
use crate::raw::session::ResponseSender;

#[derive(Debug, Clone)]
/// notify kernel there are something need to handle.
pub struct Notify {
    sender: Arc<ResponseSender>,
}

impl Notify {
    pub(crate) fn new(sender: Arc<ResponseSender>) -> Self {
        Self { sender }
    }

    /// notify kernel there are something need to handle.
    ///
    /// sshfs-rs patch: each notification is built as one whole message (a name ends with the NUL
    /// the kernel expects, stored data follows its header; both were missing, and the kernel
    /// refused those messages with EINVAL, which ended the session) and sent by
    /// [`ResponseSender::notify`]: its own write(2), outside the reply lock.
    async fn notify(&mut self, kind: NotifyKind) {
        let (code, body): (fuse_notify_code, Vec<u8>) = match kind {
            NotifyKind::Wakeup { kh } => (
                fuse_notify_code::FUSE_POLL,
                fuse_notify_poll_wakeup_out { kh }.as_bytes().to_vec(),
            ),

            NotifyKind::InvalidInode { inode, offset, len } => (
                fuse_notify_code::FUSE_NOTIFY_INVAL_INODE,
                fuse_notify_inval_inode_out {
                    ino: inode,
                    off: offset,
                    len,
                }
                .as_bytes()
                .to_vec(),
            ),

            // sshfs-rs patch: `flags` (the former padding) carries FUSE_EXPIRE_ONLY.
            NotifyKind::InvalidEntry {
                parent,
                name,
                expire_only,
            } => {
                let out = fuse_notify_inval_entry_out {
                    parent,
                    namelen: name.len() as _,
                    flags: if expire_only { FUSE_EXPIRE_ONLY } else { 0 },
                };
                (
                    fuse_notify_code::FUSE_NOTIFY_INVAL_ENTRY,
                    with_name(out.as_bytes(), &name),
                )
            }

            NotifyKind::Delete {
                parent,
                child,
                name,
            } => {
                let out = fuse_notify_delete_out {
                    parent,
                    child,
                    namelen: name.len() as _,
                    _padding: 0,
                };
                // sshfs-rs patch: the name and its NUL follow the fixed part.
                (
                    fuse_notify_code::FUSE_NOTIFY_DELETE,
                    with_name(out.as_bytes(), &name),
                )
            }

            NotifyKind::Store {
                inode,
                offset,
                data,
            } => {
                let out = fuse_notify_store_out {
                    nodeid: inode,
                    offset,
                    size: data.len() as _,
                    _padding: 0,
                };
                // sshfs-rs patch: the data follows the fixed part.
                let mut body = out.as_bytes().to_vec();
                body.extend_from_slice(&data);
                (fuse_notify_code::FUSE_NOTIFY_STORE, body)
            }

            NotifyKind::Retrieve {
                notify_unique,
                inode,
                offset,
                size,
            } => (
                // sshfs-rs patch: built like the others, sent below.
                fuse_notify_code::FUSE_NOTIFY_RETRIEVE,
                fuse_notify_retrieve_out {
                    notify_unique,
                    nodeid: inode,
                    offset,
                    size,
                    _padding: 0,
                }
                .as_bytes()
                .to_vec(),
            ),
        };

        let fixed = match code {
            fuse_notify_code::FUSE_POLL => FUSE_NOTIFY_POLL_WAKEUP_OUT_SIZE,
            fuse_notify_code::FUSE_NOTIFY_INVAL_INODE => FUSE_NOTIFY_INVAL_INODE_OUT_SIZE,
            fuse_notify_code::FUSE_NOTIFY_INVAL_ENTRY => FUSE_NOTIFY_INVAL_ENTRY_OUT_SIZE,
            fuse_notify_code::FUSE_NOTIFY_DELETE => FUSE_NOTIFY_DELETE_OUT_SIZE,
            fuse_notify_code::FUSE_NOTIFY_STORE => FUSE_NOTIFY_STORE_OUT_SIZE,
            fuse_notify_code::FUSE_NOTIFY_RETRIEVE => FUSE_NOTIFY_RETRIEVE_OUT_SIZE,
        };
        debug_assert!(body.len() >= fixed, "notification shorter than its header");
        let out_header = fuse_out_header {
            len: (FUSE_OUT_HEADER_SIZE + body.len()) as u32,
            error: code as i32,
            unique: 0,
        };
        let mut message = out_header.as_bytes().to_vec();
        message.extend_from_slice(&body);
        self.sender.notify(message).await;
    }

    /// try to notify kernel the IO is ready, kernel can wakeup the waiting program.
    pub async fn wakeup(mut self, kh: u64) {
        self.notify(NotifyKind::Wakeup { kh }).await;
    }

    /// try to notify the cache invalidation about an inode.
    pub async fn invalid_inode(mut self, inode: u64, offset: i64, len: i64) {
        self.notify(NotifyKind::InvalidInode { inode, offset, len })
            .await;
    }

    /// try to notify the invalidation about a directory entry.
    pub async fn invalid_entry(mut self, parent: u64, name: OsString) {
        // sshfs-rs patch: the kind carries whether the entry only expires.
        self.notify(NotifyKind::InvalidEntry {
            parent,
            name,
            expire_only: false,
        })
        .await;
    }

    /// sshfs-rs patch: makes a directory entry expire (`FUSE_EXPIRE_ONLY`, Linux 6.2+): the
    /// kernel asks again at its next use, but keeps the dentry, and so whatever is mounted on
    /// it, until the answer differs. An older kernel refuses it (EINVAL, logged).
    pub async fn expire_entry(mut self, parent: u64, name: OsString) {
        self.notify(NotifyKind::InvalidEntry {
            parent,
            name,
            expire_only: true,
        })
        .await;
    }

    /// try to notify a directory entry has been deleted.
    pub async fn delete(mut self, parent: u64, child: u64, name: OsString) {
        self.notify(NotifyKind::Delete {
            parent,
            child,
            name,
        })
        .await;
    }

    /// try to push the data in an inode for updating the kernel cache.
    pub async fn store(mut self, inode: u64, offset: u64, mut data: impl Buf) {
        self.notify(NotifyKind::Store {
            inode,
            offset,
            data: data.copy_to_bytes(data.remaining()),
        })
        .await;
    }

    /// try to retrieve data in an inode from the kernel cache.
    pub async fn retrieve(mut self, notify_unique: u64, inode: u64, offset: u64, size: u32) {
        self.notify(NotifyKind::Retrieve {
            notify_unique,
            inode,
            offset,
            size,
        })
        .await;
    }
}

/// sshfs-rs patch: `out` followed by `name` and the NUL the kernel expects after it.
fn with_name(out: &[u8], name: &OsStr) -> Vec<u8> {
    let mut body = Vec::with_capacity(out.len() + name.len() + 1);
    body.extend_from_slice(out);
    body.extend_from_slice(name.as_bytes());
    body.push(0);
    body
}

#[derive(Debug)]
/// the kind of notify.
enum NotifyKind {
    /// notify the IO is ready.
    Wakeup { kh: u64 },

    // TODO need check is right or not
    /// notify the cache invalidation about an inode.
    InvalidInode { inode: u64, offset: i64, len: i64 },

    /// notify the invalidation about a directory entry.
    // sshfs-rs patch: `expire_only` (FUSE_EXPIRE_ONLY).
    InvalidEntry {
        parent: u64,
        name: OsString,
        expire_only: bool,
    },

    /// notify a directory entry has been deleted.
    Delete {
        parent: u64,
        child: u64,
        name: OsString,
    },

    /// push the data in an inode for updating the kernel cache.
    Store {
        inode: u64,
        offset: u64,
        data: Bytes,
    },

    /// retrieve data in an inode from the kernel cache.
    Retrieve {
        notify_unique: u64,
        inode: u64,
        offset: u64,
        size: u32,
    },
}
