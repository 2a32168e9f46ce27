//! The server's tree as a plain value a test can compare: every path with what `lstat` and
//! the file's content say, without times and inode numbers (which a model need not predict).

use std::collections::BTreeMap;

use super::namespace::content::{BLOCK, Content};
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

/// File content, held sparse as the server holds it (a snapshot of a file with a terabyte hole
/// costs what its data costs), compared byte for byte (a hole equals written zeros), shown
/// short: its size, first bytes and a checksum of its non-zero blocks.
#[derive(Clone)]
pub(crate) struct Data(Content);

impl Data {
    /// Content holding `bytes`.
    pub(crate) fn new(bytes: &[u8]) -> Self {
        let mut c = Content::default();
        let mut unlimited = u64::MAX;
        c.write(0, bytes, &mut unlimited);
        Self(c)
    }

    /// The size.
    pub(crate) fn len(&self) -> u64 {
        self.0.size()
    }

    /// Whether it is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.size() == 0
    }

    /// All the bytes (holes as zeros).
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        self.0.bytes()
    }
}

impl From<Vec<u8>> for Data {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(&bytes)
    }
}

impl PartialEq for Data {
    fn eq(&self, other: &Self) -> bool {
        const ZEROS: [u8; BLOCK as usize] = [0; BLOCK as usize];
        let (a, b) = (&self.0, &other.0);
        let same = |i: u64| a.block(i).unwrap_or(&ZEROS) == b.block(i).unwrap_or(&ZEROS);
        a.size() == b.size()
            && a.allocated().all(|(i, _)| same(i))
            && b.allocated().all(|(i, _)| same(i))
    }
}

impl Eq for Data {}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut sum = 0xcbf2_9ce4_8422_2325u64;
        for (i, block) in self
            .0
            .allocated()
            .filter(|(_, b)| b.iter().any(|&x| x != 0))
        {
            for &x in i.to_be_bytes().iter().chain(block) {
                sum = (sum ^ u64::from(x)).wrapping_mul(0x100_0000_01b3);
            }
        }
        let head = self.0.read(0, 16);
        write!(
            f,
            "Data({} bytes, {head:02x?}.., fnv {sum:016x})",
            self.0.size()
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
                Kind::File(c) => (NodeKind::File, Some(Data(c.clone())), None),
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
