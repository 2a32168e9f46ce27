//! The one task that tells the kernel what the fs layer invalidates ([`Invalidation`]): never
//! a request handler. The vendored fuse3 writes each notification outside its reply lock, so
//! one the kernel handles under a lock a pending request holds waits for that request's
//! reply, which still goes out (see [`crate::fs::invalidate`]).

use fuse3::raw::prelude::Notify;

use crate::fs::SshFs;
use crate::fs::invalidate::Invalidation;
use crate::kernel_names::name_to_kernel;

/// Starts the task that sends `fs`'s invalidations through `notify` (once: the queue is taken).
pub(super) fn spawn_invalidations(fs: &SshFs, notify: Notify) {
    let Some(mut queue) = fs.take_invalidations() else {
        return;
    };
    tokio::spawn(async move {
        while let Some(what) = queue.recv().await {
            match what {
                // Offset -1: attributes only, the pages are left alone.
                Invalidation::Attrs(ino) => notify.clone().invalid_inode(ino, -1, 0).await,
                // Offset 0, length 0: every page of the file.
                Invalidation::Contents(ino) => notify.clone().invalid_inode(ino, 0, 0).await,
                Invalidation::Entry { parent, name } => {
                    notify
                        .clone()
                        .invalid_entry(parent, name_to_kernel(&name))
                        .await
                }
                Invalidation::Expire { parent, name } => {
                    notify
                        .clone()
                        .expire_entry(parent, name_to_kernel(&name))
                        .await
                }
            }
        }
    });
}
