//! fuse3 replies from the fs layer's results: the lifetimes it decides for entries and
//! attributes ([`crate::fs::kernel::ttl`]), the FOPEN_* flags of an open, names in the
//! kernel's bytes.

use std::time::Duration;

use fuse3::raw::prelude::*;
use russh_sftp::extensions::Statvfs;

use crate::fs::kernel::Lifetimes;
use crate::fs::kernel::dirs::DirCaching;
use crate::fs::setattr::SetAttrReply;
use crate::fs::{DirItem, attr};
use crate::kernel_names::name_to_kernel;

/// `FOPEN_DIRECT_IO` (fuse_kernel.h): reads and writes of this open bypass the page cache.
const FOPEN_DIRECT_IO: u32 = 1 << 0;
/// `FOPEN_KEEP_CACHE` (fuse_kernel.h): the kernel keeps the file's pages across this open.
const FOPEN_KEEP_CACHE: u32 = 1 << 1;
/// `FOPEN_CACHE_DIR` (fuse_kernel.h, protocol 7.28): the kernel keeps the directory's entries it
/// reads through this open in the directory's pages.
const FOPEN_CACHE_DIR: u32 = 1 << 3;

/// Builds replies with the lifetimes the fs layer decides, and the mount's page-cache setting.
pub(super) struct Replies {
    /// How long the kernel keeps "no such name" (a LOOKUP's negative entry).
    pub(super) negative: Duration,
    /// Every open is `FOPEN_DIRECT_IO` (`-o direct_io`).
    pub(super) direct_io: bool,
}

impl Replies {
    /// An entry for `attr` (a kernel reference was taken on it), kept for `life`.
    pub(super) fn entry(&self, attr: FileAttr, life: Lifetimes) -> ReplyEntry {
        ReplyEntry {
            ttl: life.entry,
            attr,
            generation: 0,
        }
    }

    /// A LOOKUP's answer that is a negative entry: inode 0, kept by the kernel for
    /// `negative_timeout`; `block_unit` is the fs layer's `st_blocks` unit.
    pub(super) fn negative(&self, block_unit: u32) -> ReplyEntry {
        ReplyEntry {
            ttl: self.negative,
            attr: attr::file_attr(0, &Default::default(), None, block_unit),
            generation: 0,
        }
    }

    /// A GETATTR's answer, kept for `life`.
    pub(super) fn attr(&self, attr: FileAttr, life: Lifetimes) -> ReplyAttr {
        ReplyAttr {
            ttl: life.attr,
            attr,
        }
    }

    /// A SETATTR's answer: attributes the server did not confirm are not kept (TTL 0).
    pub(super) fn setattr(&self, reply: SetAttrReply, life: Lifetimes) -> ReplyAttr {
        ReplyAttr {
            ttl: match reply.confirmed {
                true => life.attr,
                false => Duration::ZERO,
            },
            attr: reply.attr,
        }
    }

    /// An OPEN's answer: the handle, and whether the kernel keeps the file's pages.
    pub(super) fn open(&self, (fh, keep_cache): (u64, bool)) -> ReplyOpen {
        ReplyOpen {
            fh,
            flags: self.open_flags(keep_cache),
        }
    }

    /// A CREATE's answer: the new file's entry (kept for `life`) and its handle.
    pub(super) fn created(&self, (attr, fh): (FileAttr, u64), life: Lifetimes) -> ReplyCreated {
        ReplyCreated {
            ttl: life.entry,
            attr,
            generation: 0,
            fh,
            flags: self.open_flags(false),
        }
    }

    /// A READDIRPLUS entry with its attributes (referenced by the fs layer), kept for `life`.
    pub(super) fn plus_entry(
        &self,
        (item, attr): (DirItem, FileAttr),
        life: Lifetimes,
    ) -> DirectoryEntryPlus {
        DirectoryEntryPlus {
            inode: attr.ino,
            generation: 0,
            kind: attr.kind,
            name: name_to_kernel(&item.name),
            offset: next_offset(&item),
            attr,
            entry_ttl: life.entry,
            attr_ttl: life.attr,
        }
    }

    /// The FOPEN_* flags of an open or create reply.
    fn open_flags(&self, keep_cache: bool) -> u32 {
        match (self.direct_io, keep_cache) {
            (true, _) => FOPEN_DIRECT_IO,
            (false, true) => FOPEN_KEEP_CACHE,
            (false, false) => 0,
        }
    }
}

/// An OPENDIR's answer: the handle, and whether the kernel keeps the directory's entries
/// (`FOPEN_CACHE_DIR`) and lists this open from those it kept (`FOPEN_KEEP_CACHE`).
pub(super) fn opendir((fh, caching): (u64, DirCaching)) -> ReplyOpen {
    ReplyOpen {
        fh,
        flags: dir_open_flags(caching),
    }
}

/// The FOPEN_* flags of an OPENDIR reply (`FOPEN_DIRECT_IO` means nothing to a directory).
fn dir_open_flags(caching: DirCaching) -> u32 {
    let mut flags = 0;
    if caching.cache {
        flags |= FOPEN_CACHE_DIR;
        if caching.keep {
            flags |= FOPEN_KEEP_CACHE;
        }
    }
    flags
}

/// Data read, or a symlink's target.
pub(super) fn data(bytes: Vec<u8>) -> ReplyData {
    ReplyData::from(bytes::Bytes::from(bytes))
}

/// A STATFS's answer (sizes beyond 32 bits clamped).
pub(super) fn statfs(s: Statvfs) -> ReplyStatFs {
    let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    ReplyStatFs {
        blocks: s.blocks,
        bfree: s.blocks_free,
        bavail: s.blocks_avail,
        files: s.inodes,
        ffree: s.inodes_free,
        bsize: clamp(s.block_size),
        namelen: clamp(s.name_max),
        frsize: clamp(s.fragment_size),
    }
}

/// A READDIR entry; `inode` is a hint (no kernel reference).
pub(super) fn dir_entry(inode: u64, item: &DirItem) -> DirectoryEntry {
    DirectoryEntry {
        inode,
        kind: attr::kind_of(item.entry.attrs.permissions.unwrap_or(0)),
        offset: next_offset(item),
        name: name_to_kernel(&item.name),
    }
}

/// The offset the kernel passes back to continue after `item`.
fn next_offset(item: &DirItem) -> i64 {
    i64::try_from(item.next_offset).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_kept_by_the_kernel_has_both_flags() {
        let off = DirCaching::default();
        assert_eq!(dir_open_flags(off), 0);
        // `keep` means nothing without `cache`.
        let keep_only = DirCaching {
            cache: false,
            keep: true,
        };
        assert_eq!(dir_open_flags(keep_only), 0);
        let fill = DirCaching {
            cache: true,
            keep: false,
        };
        assert_eq!(dir_open_flags(fill), 1 << 3);
        let keep = DirCaching {
            cache: true,
            keep: true,
        };
        assert_eq!(dir_open_flags(keep), (1 << 3) | (1 << 1));
    }
}
