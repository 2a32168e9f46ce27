//! `st_blocks`: SFTP v3 carries a file's size but not the space it takes, so `du` through the
//! mount sees an estimate. It is the size rounded up to whole allocation units of the server's
//! filesystem, counted in 512-byte blocks, as the C sshfs does with its 4096-byte unit: a
//! 1-byte file takes 8 blocks (4 KiB), as it does on the ext4, XFS or btrfs disk behind most
//! servers. An empty file takes none.
//!
//! **The unit.** 4096 bytes, unless the server's `statvfs@openssh.com` for the mounted
//! directory (asked once, at mount) names a smaller fundamental block size (`f_frsize`): a
//! filesystem of 1 KiB or 512-byte blocks is estimated in those. A larger one is not taken: ZFS
//! reports its record size there (128 KiB), while its small files take a few sectors; 4096 stays
//! the better guess. What the estimate cannot see: sparse files (counted whole), files packed
//! inline (small ext4 symlinks, btrfs inline extents: counted as one unit), compression.

use std::sync::atomic::{AtomicU32, Ordering};

use russh_sftp::extensions::Statvfs;

use crate::remote::sftp::Sftp;

/// The allocation unit assumed when the server says nothing better: the C sshfs's.
pub const DEFAULT_UNIT: u32 = 4096;
/// The smallest unit taken from the server (a disk sector).
const SMALLEST_UNIT: u64 = 512;

/// 512-byte blocks taken by a file of `size` bytes on a filesystem allocating `unit` bytes at a
/// time (`unit` a power of two, at least 512).
pub fn blocks_for(size: u64, unit: u32) -> u64 {
    let unit = u64::from(unit.max(512));
    size.div_ceil(unit) * (unit / 512)
}

/// The allocation unit to estimate with, from the server's statvfs answer: its fundamental
/// block size (else its block size) when that is a power of two from 512 to 4096 bytes, else
/// [`DEFAULT_UNIT`] (see the module doc).
pub fn unit_from_statvfs(s: &Statvfs) -> u32 {
    let reported = match s.fragment_size {
        0 => s.block_size,
        f => f,
    };
    if reported.is_power_of_two() && (SMALLEST_UNIT..=u64::from(DEFAULT_UNIT)).contains(&reported) {
        u32::try_from(reported).unwrap_or(DEFAULT_UNIT)
    } else {
        DEFAULT_UNIT
    }
}

/// The allocation unit a mount estimates `st_blocks` with: [`DEFAULT_UNIT`] until the server
/// names a better one ([`BlockUnit::learn`]).
#[derive(Debug)]
pub struct BlockUnit(AtomicU32);

impl Default for BlockUnit {
    fn default() -> Self {
        Self(AtomicU32::new(DEFAULT_UNIT))
    }
}

impl BlockUnit {
    /// The allocation unit `st_blocks` is estimated with (see the module doc).
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    /// Asks the server for the block size of the filesystem holding `root` (the mounted
    /// directory; `statvfs@openssh.com`, when it has it) and estimates with it from now on. A
    /// server without the extension, or a failed request, leaves [`DEFAULT_UNIT`].
    pub async fn learn(&self, sftp: &Sftp, root: &str) {
        if !sftp.has_extension("statvfs@openssh.com") {
            return;
        }
        match sftp.statvfs(root).await {
            Ok(s) => {
                let unit = unit_from_statvfs(&s);
                tracing::debug!(
                    fragment_size = s.fragment_size,
                    block_size = s.block_size,
                    unit,
                    "st_blocks estimated in units of the server's blocks"
                );
                self.0.store(unit, Ordering::Relaxed);
            }
            Err(e) => tracing::debug!("statvfs of the mounted directory failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statvfs(block_size: u64, fragment_size: u64) -> Statvfs {
        crate::fs::statfs::test_statvfs(block_size, fragment_size)
    }

    #[test]
    fn a_file_takes_whole_units() {
        assert_eq!(blocks_for(0, 4096), 0);
        assert_eq!(blocks_for(1, 4096), 8, "as the C sshfs and ext4 say");
        assert_eq!(blocks_for(4096, 4096), 8);
        assert_eq!(blocks_for(4097, 4096), 16);
        assert_eq!(blocks_for(1, 1024), 2);
        assert_eq!(blocks_for(513, 512), 2);
        assert_eq!(
            blocks_for(u64::MAX / 2, 4096),
            (u64::MAX / 2).div_ceil(4096) * 8
        );
    }

    #[test]
    fn the_server_s_block_size_is_taken_up_to_4096() {
        assert_eq!(unit_from_statvfs(&statvfs(4096, 4096)), 4096, "ext4");
        assert_eq!(
            unit_from_statvfs(&statvfs(1024, 1024)),
            1024,
            "1 KiB blocks"
        );
        assert_eq!(unit_from_statvfs(&statvfs(1024, 0)), 1024, "no f_frsize");
        assert_eq!(
            unit_from_statvfs(&statvfs(131_072, 131_072)),
            DEFAULT_UNIT,
            "ZFS's record size is not what a small file takes"
        );
        assert_eq!(
            unit_from_statvfs(&statvfs(1_048_576, 4096)),
            4096,
            "f_frsize, not the I/O size"
        );
        assert_eq!(unit_from_statvfs(&statvfs(0, 0)), DEFAULT_UNIT);
        assert_eq!(unit_from_statvfs(&statvfs(3000, 3000)), DEFAULT_UNIT);
        assert_eq!(unit_from_statvfs(&statvfs(256, 256)), DEFAULT_UNIT);
    }
}
