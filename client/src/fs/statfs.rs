//! STATFS answers kept for a moment: `find` asks for one at every start (to know whether it may
//! trust the kinds of directory entries), `df` and file managers ask often, and each answer
//! from the server is a round trip. What the server said is answered again for [`KEEP`], so a
//! `df` shows free space at most that old; `--flush` drops it. The ENOSPC check after a
//! failed write asks the server itself ([`super::full`]).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use russh_sftp::extensions::Statvfs;

/// How long a STATFS answer is given again.
pub const KEEP: Duration = Duration::from_secs(3);

/// The last STATFS answer and when the server gave it.
#[derive(Debug, Default)]
pub struct Recent(Mutex<Option<(Instant, Statvfs)>>);

impl Recent {
    /// The last answer, if it is younger than [`KEEP`].
    pub fn get(&self) -> Option<Statvfs> {
        let last = self.0.lock().ok()?;
        let (at, st) = last.as_ref()?;
        (at.elapsed() < KEEP).then(|| copy(st))
    }

    /// Keeps `st`, the server's answer now.
    pub fn put(&self, st: &Statvfs) {
        if let Ok(mut last) = self.0.lock() {
            *last = Some((Instant::now(), copy(st)));
        }
    }

    /// Forgets it (`--flush`).
    pub fn clear(&self) {
        if let Ok(mut last) = self.0.lock() {
            *last = None;
        }
    }
}

/// A copy of `st` (the crate's type is not `Clone`).
fn copy(st: &Statvfs) -> Statvfs {
    Statvfs {
        block_size: st.block_size,
        fragment_size: st.fragment_size,
        blocks: st.blocks,
        blocks_free: st.blocks_free,
        blocks_avail: st.blocks_avail,
        inodes: st.inodes,
        inodes_free: st.inodes_free,
        inodes_avail: st.inodes_avail,
        fs_id: st.fs_id,
        flags: st.flags,
        name_max: st.name_max,
    }
}

/// A STATFS answer with these block sizes and nothing else, for tests.
#[cfg(test)]
pub(crate) fn test_statvfs(block_size: u64, fragment_size: u64) -> Statvfs {
    Statvfs {
        block_size,
        fragment_size,
        blocks: 0,
        blocks_free: 0,
        blocks_avail: 0,
        inodes: 0,
        inodes_free: 0,
        inodes_avail: 0,
        fs_id: 0,
        flags: 0,
        name_max: 255,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_kept_until_cleared() {
        let recent = Recent::default();
        assert!(recent.get().is_none());
        let st = test_statvfs(4096, 4096);
        recent.put(&st);
        assert_eq!(recent.get().map(|s| s.block_size), Some(4096));
        recent.clear();
        assert!(recent.get().is_none());
    }
}
