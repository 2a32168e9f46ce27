//! The lookup references of READDIRPLUS entries. Each entry given to the kernel with its
//! attributes takes a kernel lookup reference, but fuse3 pulls one entry more than fits in the
//! kernel's buffer and drops it: an entry counts as delivered only when the next one is pulled
//! (or the entries end), and the reference of one pulled but never delivered is given back
//! when [`PlusEntries`] is dropped. "." and ".." are never referenced (the kernel skips them).

use fuse3::raw::reply::FileAttr;

use super::{DirItem, FsResult, SshFs, attr};

/// A READDIRPLUS listing's entries with their attributes, each referenced as it is pulled.
pub struct PlusEntries<'a> {
    fs: &'a SshFs,
    parent: u64,
    items: std::vec::IntoIter<DirItem>,
    /// The inode of the entry last pulled, referenced and not yet known to be delivered.
    uncommitted: Option<u64>,
}

impl SshFs {
    /// The entries `items` of directory `parent` for a READDIRPLUS reply ([`PlusEntries`]).
    pub fn plus_entries(&self, parent: u64, items: Vec<DirItem>) -> PlusEntries<'_> {
        PlusEntries {
            fs: self,
            parent,
            items: items.into_iter(),
            uncommitted: None,
        }
    }
}

impl Iterator for PlusEntries<'_> {
    type Item = FsResult<(DirItem, FileAttr)>;

    /// The next entry, referenced; the one before it counts as delivered.
    fn next(&mut self) -> Option<Self::Item> {
        self.uncommitted = None;
        let item = self.items.next()?;
        let dot = item.name == "." || item.name == "..";
        let attr = if dot {
            let ino = self.fs.ino_hint(self.parent, &item.name);
            Ok(attr::file_attr(
                ino,
                &item.entry.attrs,
                item.entry.nlink,
                self.fs.block_unit(),
            ))
        } else {
            self.fs.dir_entry(self.parent, &item)
        };
        let attr = match attr {
            Ok(a) => a,
            Err(e) => return Some(Err(e)),
        };
        if !dot {
            self.uncommitted = Some(attr.ino);
        }
        Some(Ok((item, attr)))
    }
}

impl Drop for PlusEntries<'_> {
    fn drop(&mut self) {
        if let Some(ino) = self.uncommitted.take() {
            self.fs.forget(ino, 1);
        }
    }
}
