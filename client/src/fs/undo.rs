//! Opens whose result is state the kernel must receive (a server handle, a lookup reference):
//! each runs on a task of its own ([`crate::fs::detached`]) with what undoes it, so that when
//! the reply cannot be delivered (an INTERRUPT dropped the request) the handle is closed and
//! the reference given back.

use std::ffi::OsStr;
use std::sync::Arc;

use fuse3::raw::reply::FileAttr;

use super::kernel::dirs::DirCaching;
use super::{FsResult, SshFs, detached};

impl SshFs {
    /// OPEN ([`SshFs::open`]); a handle that never reaches the kernel is released.
    pub async fn open_or_undo(self: &Arc<Self>, ino: u64, flags: u32) -> FsResult<(u64, bool)> {
        detached::run(
            self,
            move |fs| async move { fs.open(ino, flags).await },
            |fs, (fh, _)| async move { fs.release_quietly(fh).await },
        )
        .await
    }

    /// CREATE ([`SshFs::create`]); a file that never reaches the kernel has its reference
    /// forgotten and its handle released.
    pub async fn create_or_undo(
        self: &Arc<Self>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: u32,
    ) -> FsResult<(FileAttr, u64)> {
        let owned = name.to_owned();
        detached::run(
            self,
            move |fs| async move { fs.create(parent, &owned, mode, flags).await },
            |fs, (attr, fh): (FileAttr, u64)| async move {
                fs.forget(attr.ino, 1);
                fs.release_quietly(fh).await;
            },
        )
        .await
    }

    /// OPENDIR ([`SshFs::opendir_cached`]); a handle that never reaches the kernel is released.
    pub async fn opendir_or_undo(self: &Arc<Self>, ino: u64) -> FsResult<(u64, DirCaching)> {
        detached::run(
            self,
            move |fs| async move { fs.opendir_cached(ino).await },
            |fs, (fh, _)| async move { fs.releasedir_quietly(fh).await },
        )
        .await
    }
}
