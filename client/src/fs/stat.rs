//! What the metadata cache stores per path: the server's attributes and, when a listing gave
//! it, the link count.

use russh_sftp::protocol::FileAttributes;
use sshfs_cache::Revision;

use crate::remote::sftp::DirEntry;

/// One path's attributes as the server sent them.
#[derive(Debug, Clone)]
pub struct Stat {
    /// SFTP attributes (OpenSSH: those of `lstat`).
    pub attrs: FileAttributes,
    /// Link count from a listing's long name, when known.
    pub nlink: Option<u32>,
}

impl Stat {
    /// Attributes without a link count.
    pub fn new(attrs: FileAttributes) -> Self {
        Self { attrs, nlink: None }
    }

    /// The file type bits (`S_IFMT`) of the mode.
    pub fn file_type(&self) -> u32 {
        self.attrs.permissions.unwrap_or(0) & libc::S_IFMT
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        is_dir(&self.attrs)
    }
}

/// Whether SFTP attributes describe a directory.
pub fn is_dir(attrs: &FileAttributes) -> bool {
    attrs.permissions.unwrap_or(0) & libc::S_IFMT == libc::S_IFDIR
}

/// Whether SFTP attributes describe a symlink.
pub fn is_symlink(attrs: &FileAttributes) -> bool {
    attrs.permissions.unwrap_or(0) & libc::S_IFMT == libc::S_IFLNK
}

impl From<&DirEntry> for Stat {
    /// A listing entry's attributes and link count.
    fn from(e: &DirEntry) -> Self {
        Self {
            attrs: e.attrs.clone(),
            nlink: e.nlink,
        }
    }
}

impl Revision for Stat {
    /// Same type, size and mtime: the content is taken to be unchanged (SFTP v3 has nothing
    /// finer; a same-size rewrite within the same second is not seen, as with NFS).
    fn same_revision(&self, other: &Self) -> bool {
        self.file_type() == other.file_type()
            && self.attrs.size == other.attrs.size
            && self.attrs.mtime == other.attrs.mtime
    }

    /// A STAT carries no link count: the last one known (a listing's, our own link's) stays,
    /// for a file of the same type. Our own unlink forgets it first (`forget_link_counts`), so
    /// it never outlives a name we removed; one removed on the server shows at the next
    /// listing.
    fn keep_from(&mut self, older: &Self) {
        if self.nlink.is_none() && !self.is_dir() && self.file_type() == older.file_type() {
            self.nlink = older.nlink;
        }
    }

    /// A file (not a directory: its count is its subdirectories) with a link count above one.
    fn may_have_other_names(&self) -> bool {
        !self.is_dir() && self.nlink.is_some_and(|n| n > 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(mode: u32, size: u64, mtime: u32) -> Stat {
        Stat::new(FileAttributes {
            permissions: Some(mode),
            size: Some(size),
            mtime: Some(mtime),
            ..FileAttributes::empty()
        })
    }

    #[test]
    fn revision_is_type_size_and_mtime() {
        let a = stat(libc::S_IFREG | 0o644, 10, 5);
        assert!(
            a.same_revision(&stat(libc::S_IFREG | 0o600, 10, 5)),
            "chmod is no new content"
        );
        assert!(!a.same_revision(&stat(libc::S_IFREG | 0o644, 11, 5)));
        assert!(!a.same_revision(&stat(libc::S_IFREG | 0o644, 10, 6)));
        assert!(!a.same_revision(&stat(libc::S_IFDIR | 0o644, 10, 5)));
    }
}
