//! Unlink of a file that is open through the mount, on a server that drops a removed file
//! with its name.
//!
//! On Linux a removed file stays readable and writable through the descriptors still open on
//! it, and programs rely on that (editors' swap files, `tmpfile`-style scratch files, a
//! download moved over an open one). OpenSSH's `sftp-server` on Linux gives it for free: its
//! handles are file descriptors. rclone's server, Windows servers and others drop the file
//! with its name, and every READ or WRITE on it fails afterwards.
//!
//! So on those servers ([`crate::remote::sftp::server::ServerProfile::hide_removed_open`]) we do
//! what libfuse does without `hard_remove` (lib/fuse.c: `hide_node`, `is_open`): the unlink
//! of a file that is open through this mount is a RENAME to a hidden name in the same
//! directory, `.fuse_hidden<inode hex><counter hex>` (libfuse's format), checked free first
//! with an LSTAT; the file is then REMOVEd at its last release. A rename over such a file
//! hides it first the same way. Hidden names are left out of every listing we give
//! ([`is_hidden_name`]); the inode loses its name as after any unlink (`st_nlink` 0) and is
//! reached by its hidden path, also when its handles are reopened after a reconnect. Where the
//! server refuses the RENAME, the file is removed as without hiding: `rm` always works.
//! OpenSSH's path is unchanged: a plain REMOVE, with no extra round trip.
//!
//! A mount that dies with hidden files open leaves them on the server. They are **not**
//! removed at the next mount: another client (another mount of the same directory) may be
//! holding them open, and nothing on the server says whose they are (the name carries an inode
//! number of the mount that made it, not the mount; its age says nothing either: a process
//! may hold a removed log file open for weeks). They stay invisible in our listings; a mount
//! that hides lists those in its root at `-v` ([`SshFs::note_hidden_leftovers`]), and
//! `find DIR -name '.fuse_hidden*'` on the server finds them all (docs/SEMANTICS.md).

use super::open_files::hidden::{TRIES, is_hidden_name};
use super::{FsError, FsResult, SshFs};

impl SshFs {
    /// For an unlink of `name` in `parent`: whether it must be hidden rather than removed,
    /// and the inode to hide. Only where the server drops removed files, only for a file open
    /// through the mount with one name (another name keeps it on any server).
    pub(super) fn to_hide(&self, parent: u64, name: &str, rel: &str) -> Option<u64> {
        if !self.sftp.server().hide_removed_open {
            return None;
        }
        let ino = self.inodes().peek(parent, name)?;
        (self.files.is_open(ino) && !self.namespace.has_several_names(parent, name, rel))
            .then_some(ino)
    }

    /// Renames `name` in `parent` (inode `ino`, at server path `path`) to a free hidden name,
    /// which becomes the inode's path (its handles' reopens after a reconnect find it by it).
    /// If the file was closed meanwhile, it is removed at once.
    pub(super) async fn hide(&self, parent: u64, name: &str, ino: u64, path: &str) -> FsResult<()> {
        // A free name first (libfuse checks with getattr): leftovers of an earlier mount may
        // hold the same inode number and counter.
        let mut free = None;
        for _ in 0..TRIES {
            let hidden = self.files.hidden().next_name(ino);
            let to = self.remote(&self.rel_child(parent, &hidden)?);
            if self.sftp.lstat(&to).await.is_err() {
                free = Some((hidden, to));
                break;
            }
        }
        let Some((hidden, to)) = free else {
            return Err(FsError::new(
                libc::EBUSY,
                format!("{path} is open and no free hidden name was found to keep it"),
            ));
        };
        self.sftp.rename_noreplace(path, &to).await?;
        // The inode loses its name as after any unlink (st_nlink 0); its path is the hidden
        // one from now on ([`SshFs::hidden_rel`]).
        self.files.hidden().insert(ino, parent, hidden);
        self.inodes().unlink(parent, name);
        tracing::debug!(path, to, "unlink of an open file: hidden");
        // Released while we renamed it: nobody will release it again.
        if !self.files.is_open(ino) {
            self.remove_hidden(ino).await;
        }
        Ok(())
    }

    /// The path relative to the mount root of `ino` if it is hidden (it has no name in the
    /// inode table: the kernel was told it is gone).
    pub(super) fn hidden_rel(&self, ino: u64) -> Option<String> {
        let (parent, name) = self.files.hidden().get(ino)?;
        self.inodes().child_path(parent, &name)
    }

    /// At a release: if `ino` is hidden and no longer open through the mount, REMOVE it.
    pub(super) async fn released(&self, ino: u64) {
        if !self.files.hidden().is_empty() && !self.files.is_open(ino) {
            self.remove_hidden(ino).await;
        }
    }

    /// At mount, where removed open files are hidden: lists (at `-v`, in one line) the hidden
    /// files in the mount's root that an earlier mount left, without removing them (see the
    /// module doc), and returns their names. One listing of the root, in the background of the
    /// mount.
    pub async fn note_hidden_leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        if !self.sftp.server().hide_removed_open {
            return found;
        }
        let handle = match self.sftp.opendir(&self.root).await {
            Ok(h) => h,
            Err(e) => {
                tracing::debug!("listing the root for hidden leftovers: {e}");
                return found;
            }
        };
        while let Ok((Some(page), _)) = self.sftp.readdir(&handle).await {
            found.extend(
                page.into_iter()
                    .map(|e| e.name)
                    .filter(|n| is_hidden_name(n)),
            );
        }
        let _ = self.sftp.close(&handle).await;
        if !found.is_empty() {
            found.sort();
            tracing::info!(
                "{} hidden file(s) in {} were left by a mount that ended while they were open \
                 (not removed: another client may hold them open): {}",
                found.len(),
                self.root,
                found.join(" ")
            );
        }
        found
    }

    async fn remove_hidden(&self, ino: u64) {
        let Some((parent, hidden)) = self.files.hidden().take(ino) else {
            return;
        };
        let Ok(rel) = self.rel_child(parent, &hidden) else {
            tracing::warn!("{hidden}: its directory is no longer known; left on the server");
            return;
        };
        let path = self.remote(&rel);
        match self.sftp.remove(&path).await {
            Ok(()) => tracing::debug!(path, "hidden file removed at its last close"),
            Err(e) => tracing::warn!("{path}: removing a hidden removed file failed: {e}"),
        }
        self.cache().removed(&rel);
    }
}
