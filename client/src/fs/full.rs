//! A full disk is ENOSPC, not EIO.
//!
//! SFTP v3 has no status for a full filesystem: OpenSSH's `sftp-server` answers a WRITE,
//! an OPEN with CREATE, a MKDIR... that meets ENOSPC with the generic FAILURE, which alone is
//! EIO. Where the server has `statvfs@openssh.com`, a FAILURE of a request that takes room
//! (WRITE, CREATE, MKDIR, SYMLINK, LINK, copy-data, CLOSE, fsync) is followed by one statvfs
//! of the directory concerned: no block left for an unprivileged user (`f_bavail` 0), or, for
//! a new name, no inode left either (`f_favail` 0), makes the error ENOSPC. A server that says
//! what it means (`NO_SPACE_ON_FILESYSTEM`, `QUOTA_EXCEEDED` of later drafts) is taken at its
//! word in [`super::errno`] without any of this.
//!
//! Cheap: nothing but a FAILURE costs a statvfs, and one answer serves every failure in the
//! same directory within [`REUSE`] (a window of writes failing together asks once). The
//! server's message is logged once per mount as a warning (then at debug). A user's quota
//! that statvfs does not show stays EIO: nothing in SFTP v3 can tell it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use russh_sftp::extensions::Statvfs;

use super::errno::FsError;
use crate::remote::sftp::Sftp;

/// How long one statvfs answer decides for later failures in the same directory.
pub const REUSE: Duration = Duration::from_secs(1);

/// The extension asked.
const STATVFS: &str = "statvfs@openssh.com";

/// What the failed request needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Blocks (a write, a close or fsync that flushes, copy-data).
    Blocks,
    /// A new name: an inode, or a block for the directory entry.
    Entry,
}

/// The part of a mount that tells a full disk: the last statvfs answer and whether the
/// server's message was logged (one per mount).
pub struct FullDisk {
    sftp: Arc<Sftp>,
    last: tokio::sync::Mutex<Option<Checked>>,
    warned: AtomicBool,
}

struct Checked {
    at: Instant,
    dir: String,
    answer: Option<Room>,
}

/// What a statvfs answer says is used up.
#[derive(Debug, Clone, Copy)]
struct Room {
    no_blocks: bool,
    no_inodes: bool,
}

impl Room {
    /// A filesystem that counts no blocks or no inodes at all (btrfs has no inode count; some
    /// servers send zeros) is never out of them.
    fn of(s: &Statvfs) -> Room {
        Room {
            no_blocks: s.blocks > 0 && s.blocks_avail == 0,
            no_inodes: s.inodes > 0 && s.inodes_avail == 0,
        }
    }

    fn lacks(self, need: Need) -> bool {
        match need {
            Need::Blocks => self.no_blocks,
            Need::Entry => self.no_blocks || self.no_inodes,
        }
    }
}

/// Whether `s` shows no room for what was `need`ed.
pub fn is_full(s: &Statvfs, need: Need) -> bool {
    Room::of(s).lacks(need)
}

/// The directory of the remote `path` (`/` for a name in the root).
fn dir_of(path: &str) -> &str {
    match path.trim_end_matches('/').rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
}

impl FullDisk {
    /// Asks `sftp`'s server, when a request failed.
    pub fn new(sftp: Arc<Sftp>) -> Self {
        Self {
            sftp,
            last: tokio::sync::Mutex::new(None),
            warned: AtomicBool::new(false),
        }
    }

    /// `e`, or ENOSPC when `e` is a generic FAILURE and the filesystem holding `path` (the
    /// file written, or the name made) has no room for what was `need`ed.
    pub async fn or(&self, path: &str, need: Need, e: FsError) -> FsError {
        self.or_in(dir_of(path), need, e).await
    }

    /// [`FullDisk::or`] with the directory to ask about.
    pub async fn or_in(&self, dir: &str, need: Need, e: FsError) -> FsError {
        if !e.is_generic_failure() || !self.sftp.has_extension(STATVFS) {
            return e;
        }
        let full = match self.statvfs_recent(dir).await {
            Some(room) => room.lacks(need),
            None => false,
        };
        if !full {
            return e;
        }
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "the server's disk is full ({dir}): failing with ENOSPC; the server said: {}",
                e.message
            );
        } else {
            tracing::debug!("the server's disk is full ({dir}): {}", e.message);
        }
        FsError::new(
            libc::ENOSPC,
            format!("{dir}: no space left on the server's disk ({})", e.message),
        )
    }

    /// statvfs of `dir`, or the answer for it of less than [`REUSE`] ago (`None`: it failed).
    async fn statvfs_recent(&self, dir: &str) -> Option<Room> {
        let mut last = self.last.lock().await;
        if let Some(c) = last.as_ref()
            && c.dir == dir
            && c.at.elapsed() < REUSE
        {
            return c.answer;
        }
        let answer = match self.sftp.statvfs(dir).await {
            Ok(s) => Some(Room::of(&s)),
            Err(err) => {
                tracing::debug!("statvfs of {dir} after a FAILURE: {err}");
                None
            }
        };
        *last = Some(Checked {
            at: Instant::now(),
            dir: dir.to_owned(),
            answer,
        });
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statvfs(blocks: u64, bavail: u64, inodes: u64, favail: u64) -> Statvfs {
        Statvfs {
            block_size: 4096,
            fragment_size: 4096,
            blocks,
            blocks_free: bavail,
            blocks_avail: bavail,
            inodes,
            inodes_free: favail,
            inodes_avail: favail,
            fs_id: 0,
            flags: 0,
            name_max: 255,
        }
    }

    #[test]
    fn full_means_nothing_available_of_what_was_needed() {
        assert!(is_full(&statvfs(256, 0, 100, 50), Need::Blocks));
        assert!(is_full(&statvfs(256, 0, 100, 50), Need::Entry));
        assert!(!is_full(&statvfs(256, 3, 100, 0), Need::Blocks));
        assert!(is_full(&statvfs(256, 3, 100, 0), Need::Entry));
        assert!(!is_full(&statvfs(256, 3, 100, 50), Need::Entry));
        // Nothing counted is nothing known: btrfs (no inode count), servers sending zeros.
        assert!(!is_full(&statvfs(256, 3, 0, 0), Need::Entry));
        assert!(!is_full(&statvfs(0, 0, 0, 0), Need::Blocks));
    }

    #[test]
    fn the_directory_of_a_path() {
        assert_eq!(dir_of("/srv/data/f"), "/srv/data");
        assert_eq!(dir_of("/f"), "/");
        assert_eq!(dir_of("/srv/data/"), "/srv");
        assert_eq!(dir_of("f"), ".");
    }
}
