//! `follow_symlinks` ([`super::symlinks`]): the kernel never sees a symlink it could follow
//! itself. Attributes by path are STAT's (LSTAT's for a dangling link), and the symlinks of a
//! listing page get the attributes of what they point to. Without the option, LSTAT as always.

use futures_util::future::join_all;
use russh_sftp::protocol::FileAttributes;

use super::{FX_NO_SUCH_FILE, SshFs, stat};
use crate::remote::sftp::{DirEntry, SftpResult};

impl SshFs {
    /// The attributes the kernel is shown for `path`: LSTAT, or with `follow_symlinks` STAT
    /// (LSTAT again when the target does not exist, so a dangling link shows as a link).
    pub(super) async fn attrs_of(&self, path: &str) -> SftpResult<FileAttributes> {
        if !self.links.follow {
            return self.sftp.lstat(path).await;
        }
        match self.sftp.stat(path).await {
            Err(e) if e.status() == Some(FX_NO_SUCH_FILE) => self.sftp.lstat(path).await,
            other => other,
        }
    }

    /// With `follow_symlinks`: each symlink of a listing page of the directory `dir_rel` gets
    /// the attributes of what it points to (STATs sent together). Without it, nothing.
    pub(super) async fn follow_page(&self, dir_rel: &str, page: &mut [DirEntry]) {
        if !self.links.follow {
            return;
        }
        let links: Vec<usize> = (0..page.len())
            .filter(|&i| stat::is_symlink(&page[i].attrs))
            .collect();
        if links.is_empty() {
            return;
        }
        let paths: Vec<String> = links
            .iter()
            .map(|&i| self.remote(&super::rel::join_rel(dir_rel, &page[i].name)))
            .collect();
        let followed = join_all(paths.iter().map(|p| self.sftp.stat(p))).await;
        for (i, attrs) in links.into_iter().zip(followed) {
            if let Ok(attrs) = attrs {
                page[i].attrs = attrs;
                // The long name's link count was the symlink's.
                page[i].nlink = None;
            }
        }
    }
}
