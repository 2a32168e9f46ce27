//! The server's tree as a plain value a test can compare: every path with what `lstat` and
//! the file's content say, without times and inode numbers (which a model need not predict).

use std::collections::BTreeMap;

use super::namespace::{Kind, Namespace};

/// Every path of the tree (`/` included), in path order.
pub(crate) type Snapshot = BTreeMap<String, Node>;

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum NodeKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symlink.
    Symlink,
}

/// One path of a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// File, directory or symlink.
    pub(crate) kind: NodeKind,
    /// `st_mode` (type and permission bits).
    pub(crate) mode: u32,
    /// Owner.
    pub(crate) uid: u32,
    /// Group.
    pub(crate) gid: u32,
    /// `st_size`.
    pub(crate) size: u64,
    /// `st_nlink`.
    pub(crate) nlink: u32,
    /// A file's content.
    pub(crate) content: Option<Data>,
    /// A symlink's target.
    pub(crate) target: Option<String>,
}

/// File content, compared byte for byte but shown short (length, first bytes, a checksum).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Data(pub(crate) Vec<u8>);

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sum = self.0.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let head = &self.0[..self.0.len().min(16)];
        write!(
            f,
            "Data({} bytes, {head:02x?}.., fnv {sum:016x})",
            self.0.len()
        )
    }
}

/// The snapshot of `ns`.
pub(super) fn take(ns: &Namespace) -> Snapshot {
    ns.walk_tree()
        .into_iter()
        .filter_map(|(path, ino)| {
            let i = ns.inode(ino).ok()?;
            let (kind, content, target) = match &i.kind {
                Kind::File(c) => (NodeKind::File, Some(Data(c.bytes())), None),
                Kind::Dir(_) => (NodeKind::Dir, None, None),
                Kind::Symlink(t) => (
                    NodeKind::Symlink,
                    None,
                    Some(String::from_utf8_lossy(t).into_owned()),
                ),
            };
            let node = Node {
                kind,
                mode: i.mode(),
                uid: i.uid,
                gid: i.gid,
                size: i.size(),
                nlink: i.nlink(),
                content,
                target,
            };
            Some((path, node))
        })
        .collect()
}
