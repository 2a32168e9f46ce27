//! The inode table: kernel inode numbers <-> remote paths.
//!
//! SFTP names files by path, the kernel by inode number. Each node records its parent and its
//! name, so a path is rebuilt by walking up to the root and a rename of a directory moves its
//! whole subtree by changing one node.
//!
//! Inode numbers are a hash of the path (FNV-1a), so the same path gets the same number for the
//! life of the mount even after the kernel has forgotten it, and on the next mount too (git, tar
//! and rsync compare `st_ino` across calls and runs). A number already held by another live node is skipped (probing), so two live nodes never
//! share one. Nodes live while the kernel holds a lookup reference (the FUSE `nlookup` protocol):
//! `FORGET` drops them, so memory follows what the kernel caches, not the size of the tree.
//!
//! A file may have several names: a hard link made through this mount adds a name to the
//! existing node ([`InodeTable::add_link`]), so every name shows one inode number, and the kernel
//! keeps one set of attributes for all of them, as on a local filesystem. SFTP v3 has no inode
//! numbers, so links made elsewhere, or names looked up again after the kernel forgot the node,
//! get a node (and number) of their own.
//!
//! **Memory.** A listing given to the kernel with READDIRPLUS leaves one node per entry for as
//! long as the kernel keeps the entry (200,000 nodes after `ls -l` of a directory that size), so
//! a node is kept small: its name is stored once, in the node (a [`Links`] holds the usual one
//! name without an allocation of its own), and the index from `(parent, name)` to the node is a
//! table of bare inode numbers, each with the hash of the name it stands for
//! ([`hashbrown::HashTable`]): about 100 bytes a node in all, not 240.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use hashbrown::HashTable;

/// The inode number of the mount's root directory (fixed by the FUSE protocol).
pub const ROOT_INO: u64 = 1;

/// The names of a node: parent inode and name, the first being the node's path. Almost every
/// node has exactly one, held inline.
#[derive(Debug, Default)]
enum Links {
    /// Every name was unlinked or replaced.
    #[default]
    None,
    /// The usual case.
    One(u64, Box<str>),
    /// A file hard-linked through this mount (never empty).
    Many(Vec<(u64, Box<str>)>),
}

impl Links {
    fn first(&self) -> Option<(u64, &str)> {
        match self {
            Links::None => None,
            Links::One(p, n) => Some((*p, n)),
            Links::Many(v) => v.first().map(|(p, n)| (*p, &**n)),
        }
    }

    fn iter(&self) -> impl Iterator<Item = (u64, &str)> {
        let (one, many) = match self {
            Links::None => (None, &[][..]),
            Links::One(p, n) => (Some((*p, &**n)), &[][..]),
            Links::Many(v) => (None, v.as_slice()),
        };
        one.into_iter().chain(many.iter().map(|(p, n)| (*p, &**n)))
    }

    fn len(&self) -> usize {
        match self {
            Links::None => 0,
            Links::One(..) => 1,
            Links::Many(v) => v.len(),
        }
    }

    fn contains(&self, parent: u64, name: &str) -> bool {
        self.iter().any(|(p, n)| p == parent && n == name)
    }

    fn push(&mut self, parent: u64, name: &str) {
        let name: Box<str> = name.into();
        *self = match std::mem::take(self) {
            Links::None => Links::One(parent, name),
            Links::One(p, n) => Links::Many(vec![(p, n), (parent, name)]),
            Links::Many(mut v) => {
                v.push((parent, name));
                Links::Many(v)
            }
        };
    }

    /// Drops the name `name` in `parent`.
    fn remove(&mut self, parent: u64, name: &str) {
        *self = match std::mem::take(self) {
            Links::One(p, n) if p == parent && *n == *name => Links::None,
            Links::Many(mut v) => {
                v.retain(|(p, n)| !(*p == parent && **n == *name));
                match v.len() {
                    0 => Links::None,
                    1 => match v.pop() {
                        Some((p, n)) => Links::One(p, n),
                        None => Links::None,
                    },
                    _ => Links::Many(v),
                }
            }
            other => other,
        };
    }

    /// Renames the name `name` in `parent` to `new_name` in `new_parent`.
    fn rename(&mut self, parent: u64, name: &str, new_parent: u64, new_name: &str) {
        let matches = |p: &u64, n: &str| *p == parent && n == name;
        match self {
            Links::None => {}
            Links::One(p, n) => {
                if matches(p, n) {
                    *p = new_parent;
                    *n = new_name.into();
                }
            }
            Links::Many(v) => {
                for (p, n) in v.iter_mut().filter(|(p, n)| matches(p, n)) {
                    *p = new_parent;
                    *n = new_name.into();
                }
            }
        }
    }
}

#[derive(Debug)]
struct Node {
    /// Parent inodes and names; the first is the node's path. Empty once every name was unlinked
    /// or replaced (the node lives on while the kernel still references it, e.g. an open file
    /// that was deleted). Several only for a file hard-linked through this mount.
    links: Links,
    /// Lookup references held by the kernel.
    lookups: u64,
    /// The link count last seen (a listing, our own `link`), one less for each name of it we
    /// unlinked or replaced since.
    nlink: Option<u32>,
    /// File type bits (`S_IFMT` part of the mode) last seen, 0 if unknown.
    file_type: u32,
}

/// Maps inode numbers to paths relative to the mount's root, with kernel lookup counting.
#[derive(Debug)]
pub struct InodeTable {
    nodes: HashMap<u64, Node>,
    /// The inode of each `(parent, name)` of every node's links, with the hash of that
    /// `(parent, name)`: the names themselves are only in the nodes.
    children: HashTable<(u64, u64)>,
    hasher: RandomState,
}

impl Default for InodeTable {
    fn default() -> Self {
        Self::new()
    }
}

impl InodeTable {
    /// A table holding only the root.
    pub fn new() -> Self {
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT_INO,
            Node {
                links: Links::None,
                lookups: 1,
                nlink: None,
                file_type: 0,
            },
        );
        Self {
            nodes,
            children: HashTable::new(),
            hasher: RandomState::new(),
        }
    }

    /// Number of live nodes, the root included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether only the root is left (never true of a table in use: the root never goes).
    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }

    /// The path of `ino` relative to the root ("" for the root), or `None` if the inode is
    /// unknown or its name has been unlinked.
    pub fn path(&self, ino: u64) -> Option<String> {
        let mut parts = Vec::new();
        let mut cur = ino;
        while cur != ROOT_INO {
            let (parent, name) = self.nodes.get(&cur)?.links.first()?;
            parts.push(name);
            cur = parent;
        }
        parts.reverse();
        Some(parts.join("/"))
    }

    /// The path of `name` inside directory `parent`, relative to the root.
    pub fn child_path(&self, parent: u64, name: &str) -> Option<String> {
        let dir = self.path(parent)?;
        Some(if dir.is_empty() {
            name.to_owned()
        } else {
            format!("{dir}/{name}")
        })
    }

    /// The inode currently named `name` in `parent`, without taking a reference.
    pub fn peek(&self, parent: u64, name: &str) -> Option<u64> {
        let hash = self.hash(parent, name);
        self.children
            .find(hash, |(h, ino)| {
                *h == hash
                    && self
                        .nodes
                        .get(ino)
                        .is_some_and(|n| n.links.contains(parent, name))
            })
            .map(|(_, ino)| *ino)
    }

    /// The live inode of the relative path `path` ("" is the root), if the kernel knows it.
    pub fn find(&self, path: &str) -> Option<u64> {
        if path.is_empty() {
            return Some(ROOT_INO);
        }
        path.split('/')
            .try_fold(ROOT_INO, |parent, name| self.peek(parent, name))
    }

    /// Every live inode, the root included.
    pub fn inodes(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// Whether `ino` is live (known to the kernel or the root).
    pub fn contains(&self, ino: u64) -> bool {
        self.nodes.contains_key(&ino)
    }

    /// Returns the inode for `name` in `parent`, creating it if needed, and counts one kernel
    /// lookup reference. Call exactly once per entry replied to the kernel. `None` if the parent
    /// is not live.
    pub fn lookup(&mut self, parent: u64, name: &str) -> Option<u64> {
        if let Some(ino) = self.peek(parent, name)
            && let Some(node) = self.nodes.get_mut(&ino)
        {
            node.lookups += 1;
            return Some(ino);
        }
        let path = self.child_path(parent, name)?;
        let ino = self.free_ino_for(&path);
        self.nodes.insert(
            ino,
            Node {
                links: Links::One(parent, name.into()),
                lookups: 1,
                nlink: None,
                file_type: 0,
            },
        );
        self.index(parent, name, ino);
        Some(ino)
    }

    /// Gives the live node `ino` one more name, `name` in `parent` (a hard link we made), and
    /// counts one kernel lookup reference on it, as [`InodeTable::lookup`] does. Whatever had
    /// that name loses it. `None` if `ino` or `parent` is not live.
    pub fn add_link(&mut self, ino: u64, parent: u64, name: &str) -> Option<u64> {
        if !self.nodes.contains_key(&parent) {
            return None;
        }
        self.unlink(parent, name);
        let node = self.nodes.get_mut(&ino)?;
        node.links.push(parent, name);
        node.lookups += 1;
        self.index(parent, name, ino);
        Some(ino)
    }

    /// Every path of `ino` that this table knows (none once its names are gone).
    pub fn paths(&self, ino: u64) -> Vec<String> {
        let Some(node) = self.nodes.get(&ino) else {
            return Vec::new();
        };
        node.links
            .iter()
            .filter_map(|(parent, name)| self.child_path(parent, name))
            .collect()
    }

    /// Live files (not directories) last seen with more than one link.
    pub fn multi_link_files(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.file_type != libc_dir() && n.nlink.is_some_and(|c| c > 1))
            .map(|(ino, _)| *ino)
            .collect()
    }

    /// How many names of `ino` this table knows.
    pub fn name_count(&self, ino: u64) -> usize {
        self.nodes.get(&ino).map_or(0, |n| n.links.len())
    }

    /// Drops `n` kernel references to `ino`; the node goes when none are left.
    pub fn forget(&mut self, ino: u64, n: u64) {
        if ino == ROOT_INO {
            return;
        }
        let Some(node) = self.nodes.get_mut(&ino) else {
            return;
        };
        node.lookups = node.lookups.saturating_sub(n);
        if node.lookups > 0 {
            return;
        }
        if let Some(node) = self.nodes.remove(&ino) {
            for (parent, name) in node.links.iter() {
                self.unindex(parent, name, ino);
            }
        }
    }

    /// Forgets the name `name` in `parent` (after unlink or rmdir, or replaced by a rename): the
    /// node counts one link less. It lives on until the kernel forgets it, with its other names
    /// if it has any, else without a path.
    pub fn unlink(&mut self, parent: u64, name: &str) {
        let Some(ino) = self.peek(parent, name) else {
            return;
        };
        self.unindex(parent, name, ino);
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.links.remove(parent, name);
            node.nlink = node.nlink.map(|n| n.saturating_sub(1));
        }
    }

    /// The directory holding `ino` (the root for the root and for nodes that lost their name).
    pub fn parent(&self, ino: u64) -> u64 {
        self.nodes
            .get(&ino)
            .and_then(|n| n.links.first())
            .map_or(ROOT_INO, |(parent, _)| parent)
    }

    /// Moves `name` in `parent` to `new_name` in `new_parent`, replacing (unlinking) whatever was
    /// there, as POSIX rename does. The moved node keeps its inode number; its subtree follows.
    pub fn rename(&mut self, parent: u64, name: &str, new_parent: u64, new_name: &str) {
        if parent == new_parent && name == new_name {
            return;
        }
        let moved = self.peek(parent, name);
        if moved.is_some_and(|ino| self.peek(new_parent, new_name) == Some(ino)) {
            // Two names of one file: rename(2) leaves both.
            return;
        }
        self.unlink(new_parent, new_name);
        if let Some(ino) = moved {
            self.unindex(parent, name, ino);
            if let Some(node) = self.nodes.get_mut(&ino) {
                node.links.rename(parent, name, new_parent, new_name);
            }
            self.index(new_parent, new_name, ino);
        }
    }

    /// The link count last seen for `ino`, if any.
    pub fn nlink(&self, ino: u64) -> Option<u32> {
        self.nodes.get(&ino).and_then(|n| n.nlink)
    }

    /// Forgets the link count last seen for `ino` (it may be too high now).
    pub fn forget_nlink(&mut self, ino: u64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.nlink = None;
        }
    }

    /// Records the link count last seen for `ino` (from a listing or our own `link`).
    pub fn set_nlink(&mut self, ino: u64, nlink: u32) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.nlink = Some(nlink);
        }
    }

    /// The file type bits (`S_IFMT` part of the mode) last recorded for `ino`, 0 if unknown.
    pub fn file_type(&self, ino: u64) -> u32 {
        self.nodes.get(&ino).map_or(0, |n| n.file_type)
    }

    /// Records the file type bits of `ino`.
    pub fn set_file_type(&mut self, ino: u64, file_type: u32) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.file_type = file_type;
        }
    }

    /// The number `lookup` would give `name` in `parent` now, without creating a node (for
    /// plain READDIR answers, whose entries the kernel does not reference).
    pub fn ino_hint(&self, parent: u64, name: &str) -> u64 {
        if let Some(ino) = self.peek(parent, name) {
            return ino;
        }
        self.child_path(parent, name)
            .map_or(0, |p| self.free_ino_for(&p))
    }

    fn hash(&self, parent: u64, name: &str) -> u64 {
        self.hasher.hash_one((parent, name))
    }

    /// Records that `name` in `parent` is `ino` (the node already holds the name).
    fn index(&mut self, parent: u64, name: &str, ino: u64) {
        let hash = self.hash(parent, name);
        self.children.insert_unique(hash, (hash, ino), |(h, _)| *h);
    }

    /// Drops the entry saying that `name` in `parent` is `ino`.
    fn unindex(&mut self, parent: u64, name: &str, ino: u64) {
        let hash = self.hash(parent, name);
        if let Ok(entry) = self.children.find_entry(hash, |e| *e == (hash, ino)) {
            entry.remove();
        }
    }

    /// The hash of `path`, moved past the root and past numbers live nodes hold.
    fn free_ino_for(&self, path: &str) -> u64 {
        let mut ino = fnv1a(path.as_bytes());
        while ino <= ROOT_INO || self.nodes.contains_key(&ino) {
            ino = ino.wrapping_add(1);
        }
        ino
    }
}

/// `S_IFDIR` (this crate does no I/O and has no libc).
const fn libc_dir() -> u32 {
    0o040000
}

/// FNV-1a, 64 bits: the same number for the same path on every mount and every build, so
/// tools that remember `st_ino` (git's index, rsync, backup tools) see the same file after a
/// remount. Collisions are probed past ([`InodeTable::lookup`]).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_stable_and_counts() {
        let mut t = InodeTable::new();
        let a = t.lookup(ROOT_INO, "a").unwrap_or_default();
        assert_eq!(t.lookup(ROOT_INO, "a"), Some(a));
        assert_eq!(t.path(a).as_deref(), Some("a"));
        t.forget(a, 1);
        assert!(t.contains(a));
        t.forget(a, 1);
        assert!(!t.contains(a));
        assert_eq!(t.peek(ROOT_INO, "a"), None);
    }

    #[test]
    fn same_path_same_number_after_forget() {
        let mut t = InodeTable::new();
        let a = t.lookup(ROOT_INO, "dir").unwrap_or_default();
        t.forget(a, 1);
        assert_eq!(t.lookup(ROOT_INO, "dir"), Some(a));
    }

    #[test]
    fn nested_paths_and_rename_moves_subtree() {
        let mut t = InodeTable::new();
        let d = t.lookup(ROOT_INO, "d").unwrap_or_default();
        let f = t.lookup(d, "f").unwrap_or_default();
        assert_eq!(t.path(f).as_deref(), Some("d/f"));
        t.rename(ROOT_INO, "d", ROOT_INO, "e");
        assert_eq!(t.path(f).as_deref(), Some("e/f"));
        assert_eq!(t.peek(ROOT_INO, "e"), Some(d));
        assert_eq!(t.peek(ROOT_INO, "d"), None);
    }

    #[test]
    fn rename_over_existing_detaches_target() {
        let mut t = InodeTable::new();
        let a = t.lookup(ROOT_INO, "a").unwrap_or_default();
        let b = t.lookup(ROOT_INO, "b").unwrap_or_default();
        t.rename(ROOT_INO, "a", ROOT_INO, "b");
        assert_eq!(t.peek(ROOT_INO, "b"), Some(a));
        assert_eq!(t.path(b), None);
        assert!(t.contains(b));
        // The replaced node's forget must not remove the new name.
        t.forget(b, 1);
        assert_eq!(t.peek(ROOT_INO, "b"), Some(a));
    }

    #[test]
    fn unlinked_node_lives_until_forgotten_and_name_gets_new_number() {
        let mut t = InodeTable::new();
        let a = t.lookup(ROOT_INO, "a").unwrap_or_default();
        t.unlink(ROOT_INO, "a");
        assert_eq!(t.path(a), None);
        let a2 = t.lookup(ROOT_INO, "a").unwrap_or_default();
        assert_ne!(a, a2, "two live nodes never share a number");
        t.forget(a, 1);
        assert_eq!(t.peek(ROOT_INO, "a"), Some(a2));
    }

    #[test]
    fn memory_follows_forget() {
        let mut t = InodeTable::new();
        for i in 0..1000 {
            let ino = t.lookup(ROOT_INO, &format!("f{i}")).unwrap_or_default();
            t.forget(ino, 1);
        }
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn root_is_never_forgotten() {
        let mut t = InodeTable::new();
        t.forget(ROOT_INO, 100);
        assert_eq!(t.path(ROOT_INO).as_deref(), Some(""));
    }

    #[test]
    fn find_walks_the_path() {
        let mut t = InodeTable::new();
        let a = t.lookup(ROOT_INO, "a").unwrap();
        let b = t.lookup(a, "b").unwrap();
        assert_eq!(t.find(""), Some(ROOT_INO));
        assert_eq!(t.find("a"), Some(a));
        assert_eq!(t.find("a/b"), Some(b));
        assert_eq!(t.find("a/c"), None);
        t.forget(b, 1);
        assert_eq!(t.find("a/b"), None);
    }

    #[test]
    fn parent_of_a_node() {
        let mut t = InodeTable::new();
        let a = t.lookup(ROOT_INO, "a").unwrap();
        let b = t.lookup(a, "b").unwrap();
        assert_eq!(t.parent(b), a);
        assert_eq!(t.parent(a), ROOT_INO);
        assert_eq!(t.parent(ROOT_INO), ROOT_INO);
    }

    #[test]
    fn hard_links_are_found_by_every_name_while_the_table_grows() {
        let mut t = InodeTable::new();
        let d = t.lookup(ROOT_INO, "d").unwrap();
        let f = t.lookup(d, "f").unwrap();
        t.add_link(f, ROOT_INO, "g").unwrap();
        t.add_link(f, d, "h").unwrap();
        // Enough nodes for the index to grow several times.
        let many: Vec<u64> = (0..5000)
            .map(|i| t.lookup(d, &format!("x{i}")).unwrap())
            .collect();
        assert_eq!(t.peek(d, "f"), Some(f));
        assert_eq!(t.peek(ROOT_INO, "g"), Some(f));
        assert_eq!(t.peek(d, "h"), Some(f));
        assert_eq!(t.name_count(f), 3);
        for (i, ino) in many.iter().enumerate() {
            assert_eq!(t.peek(d, &format!("x{i}")), Some(*ino));
        }
        t.rename(d, "h", ROOT_INO, "h2");
        assert_eq!(t.peek(d, "h"), None);
        assert_eq!(t.peek(ROOT_INO, "h2"), Some(f));
        t.unlink(d, "f");
        assert_eq!(t.peek(d, "f"), None);
        assert_eq!(t.path(f).as_deref(), Some("g"));
        assert_eq!(t.paths(f), vec!["g".to_owned(), "h2".to_owned()]);
        // Forgetting the node drops every name it still has.
        t.forget(f, 3);
        assert_eq!(t.peek(ROOT_INO, "g"), None);
        assert_eq!(t.peek(ROOT_INO, "h2"), None);
        for ino in many {
            t.forget(ino, 1);
        }
        assert_eq!(t.len(), 2, "the root and d");
        assert!(t.children.len() == 1, "only d's name is indexed");
    }

    #[test]
    fn numbers_are_the_same_on_every_mount() {
        let mut a = InodeTable::new();
        let mut b = InodeTable::new();
        let x = a.lookup(ROOT_INO, "src").unwrap();
        let y = b.lookup(ROOT_INO, "src").unwrap();
        assert_eq!(x, y);
        assert_eq!(x, fnv1a(b"src").max(2), "a plain function of the path");
    }
}
