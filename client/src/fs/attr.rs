//! SFTP attributes -> kernel attributes.
//!
//! SFTP v3 carries size, uid/gid, mode and whole-second atime/mtime. There is no ctime (we report
//! mtime), no link count (taken from directory listings when known, else 1), no block count
//! (estimated: [`super::blocks`]), no device numbers and no sub-second times.

use fuse3::raw::reply::FileAttr;
use fuse3::{FileType, Timestamp};
use russh_sftp::protocol::FileAttributes;

use super::blocks::blocks_for;

/// Block size reported in `st_blksize`: a hint for the I/O size programs choose.
const BLKSIZE: u32 = 128 * 1024;

/// The file type in an SFTP mode.
pub fn kind_of(mode: u32) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFSOCK => FileType::Socket,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}

/// Kernel attributes for inode `ino` from SFTP attributes; `st_blocks` estimated in
/// allocation units of `block_unit` bytes ([`super::blocks`]).
pub fn file_attr(ino: u64, a: &FileAttributes, nlink: Option<u32>, block_unit: u32) -> FileAttr {
    let mode = a.permissions.unwrap_or(0o644 | libc::S_IFREG);
    let size = a.size.unwrap_or(0);
    let mtime = Timestamp::new(i64::from(a.mtime.unwrap_or(0)), 0);
    let atime = Timestamp::new(i64::from(a.atime.unwrap_or(a.mtime.unwrap_or(0))), 0);
    FileAttr {
        ino,
        size,
        blocks: blocks_for(size, block_unit),
        atime,
        mtime,
        ctime: mtime,
        kind: kind_of(mode),
        perm: (mode & 0o7777) as u16,
        nlink: nlink.unwrap_or(1),
        uid: a.uid.unwrap_or(0),
        gid: a.gid.unwrap_or(0),
        rdev: 0,
        blksize: BLKSIZE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_file() {
        let a = FileAttributes {
            size: Some(1000),
            permissions: Some(libc::S_IFREG | 0o4755),
            mtime: Some(7),
            atime: Some(5),
            uid: Some(10),
            gid: Some(20),
            ..FileAttributes::empty()
        };
        let f = file_attr(9, &a, Some(2), 4096);
        assert_eq!(f.kind, FileType::RegularFile);
        assert_eq!(f.perm, 0o4755);
        assert_eq!(f.blocks, 8, "1000 bytes take a 4 KiB block");
        assert_eq!(file_attr(9, &a, Some(2), 512).blocks, 2);
        assert_eq!(f.nlink, 2);
        assert_eq!(f.ctime.sec, 7);
        assert_eq!((f.uid, f.gid), (10, 20));
    }

    #[test]
    fn kinds() {
        assert_eq!(kind_of(libc::S_IFDIR | 0o755), FileType::Directory);
        assert_eq!(kind_of(libc::S_IFLNK | 0o777), FileType::Symlink);
        assert_eq!(kind_of(libc::S_IFIFO), FileType::NamedPipe);
    }
}
