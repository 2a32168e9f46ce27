//! Which kernel inodes must forget their attributes because the server changed them.
//!
//! The fs layer only queues inode numbers on a channel; the FUSE frontend sends the
//! notifications from one dedicated task, never from a request handler. Only attribute
//! invalidations are sent (`FUSE_NOTIFY_INVAL_INODE` with offset -1), because they are the only
//! notification the kernel handles without taking a lock that a pending request may hold:
//!
//! * `FUSE_NOTIFY_INVAL_ENTRY` takes the parent directory's lock exclusively. A LOOKUP in that
//!   directory holds it (shared) until we reply, and fuse3 writes replies and notifications
//!   through one mutex: the notification would wait for the lookup, the lookup's reply for the
//!   notification, and the mount would hang.
//! * Invalidating page ranges locks each page, and pages under readahead stay locked until our
//!   READ reply is written: the same cycle.
//!
//! What the kernel then does is enough: with fresh attributes it sees a new size or mtime and
//! drops the file's pages itself (`FUSE_AUTO_INVAL_DATA`); a vanished name's inode answers
//! ENOENT to the next stat, and its name expires after `entry_timeout`; `open()` of a changed
//! file drops its pages (no `FOPEN_KEEP_CACHE`).

use tokio::sync::mpsc;

/// The sending side, held by the filesystem.
#[derive(Debug, Clone)]
pub struct Invalidator {
    tx: mpsc::UnboundedSender<u64>,
}

/// The receiving side: inode numbers, drained by the FUSE frontend's notification task.
pub type Invalidations = mpsc::UnboundedReceiver<u64>;

impl Invalidator {
    /// A new channel.
    pub fn channel() -> (Self, Invalidations) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, rx)
    }

    /// Queues an attribute invalidation of inode `ino`; dropped once the mount is gone.
    pub fn inode(&self, ino: u64) {
        let _ = self.tx.send(ino);
    }
}
