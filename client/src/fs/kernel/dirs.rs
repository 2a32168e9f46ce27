//! Whether the kernel may keep a directory's entries between opens (`FOPEN_CACHE_DIR`), and
//! whether the entries it kept may be shown again (`FOPEN_KEEP_CACHE`).
//!
//! With `FOPEN_CACHE_DIR` the kernel copies what it reads through an open directory into the
//! directory's pages (fs/fuse/readdir.c), and a later open that keeps them is listed from them
//! alone: no READDIR reaches us. Without `FOPEN_KEEP_CACHE` the open drops them
//! (`invalidate_inode_pages2` in `fuse_dir_open`), and the kernel fills them again from us.
//!
//! **When they are kept.** The kernel holds whatever was read through the opens that filled
//! its pages, in the order and at the offsets we gave. So each open is given a **fingerprint**
//! of the entries it serves (every name and its type, in order), and the pages are kept only
//! when the open serves a fresh listing from our cache whose fingerprint is the one the kernel
//! was last filled from, and no other open of that directory serves anything else. Anything
//! that changed a name in our listing (a listing fetched again, the re-check, an invalidation,
//! our own create, remove or rename) changes the fingerprint, so the next open drops the pages
//! and the kernel reads the new entries from us; a listing no longer fresh is read from the
//! server, so its open drops them too. The kernel itself also drops them when the directory's
//! mtime changed, or it changed the directory itself (create, unlink, rename through the mount).
//! No notification is needed: every listing starts with an OPENDIR, which asks us.
//!
//! An open whose entries come from the server is fingerprinted once it has read them all; the
//! kernel's pages count as filled from it only if no other open of that directory was open
//! beside it, and no open dropped the pages since.
//!
//! **In the server's order.** An open from the server serves the entries in the order the
//! server sends them, and one from our cache in name order: the same names would have another
//! fingerprint, and the first listing from our cache after one from the server would fill the
//! kernel's pages again. So the order of the last complete listing from the server that filled
//! them is remembered ([`KernelDirs::order`]), and an open from our cache with the same names
//! serves them in that order. At most [`MOST_ORDERED`] names are remembered in all.
//!
//! What is remembered is one fingerprint per directory inode and the opens in progress; it is
//! bounded by [`MOST_DIRS`] (forgetting a fingerprint only costs one more listing from us).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Directories whose fingerprint is remembered; beyond this, those not open are forgotten.
pub const MOST_DIRS: usize = 65_536;

/// Names of listings from the server whose order is remembered, in all directories together;
/// beyond this, every order is forgotten.
pub const MOST_ORDERED: usize = 100_000;

/// `FOPEN_CACHE_DIR` and `FOPEN_KEEP_CACHE` of one OPENDIR reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirCaching {
    /// The kernel may keep what it reads through this open.
    pub cache: bool,
    /// The kernel may list this open from the entries it kept.
    pub keep: bool,
}

/// The fingerprint of the entries an open serves: `up`, the inode number its ".." shows (a
/// directory moved elsewhere keeps its names, not its ".."), and each name and its file type
/// (`S_IFMT` bits), in order.
pub fn fingerprint<'a>(up: u64, entries: impl IntoIterator<Item = (&'a str, u32)>) -> u64 {
    let mut h = DefaultHasher::new();
    up.hash(&mut h);
    for (name, kind) in entries {
        name.hash(&mut h);
        (kind & libc::S_IFMT).hash(&mut h);
    }
    h.finish()
}

/// One open of a directory, as the kernel may fill its pages from it.
#[derive(Debug, Clone, Copy)]
struct Open {
    /// What it serves; `None` while it reads from the server.
    print: Option<u64>,
    /// No other open of the directory was open when it was opened.
    alone: bool,
    /// The directory's [`Dir::drops`] when it was opened.
    drops: u64,
}

/// What the kernel may hold of one directory.
#[derive(Debug, Default)]
struct Dir {
    /// The fingerprint of the entries in the kernel's pages; `None`: unknown.
    held: Option<u64>,
    /// Opens that dropped the kernel's pages so far.
    drops: u64,
    /// The opens in progress, by `fh`.
    open: HashMap<u64, Open>,
    /// The names of the listing from the server the pages were filled from, in its order.
    order: Option<Arc<Vec<String>>>,
}

/// The kernel's cached directory entries, as far as we can know them (see the module doc).
#[derive(Debug, Default)]
pub struct KernelDirs {
    dirs: Mutex<HashMap<u64, Dir>>,
    /// Names of the orders stored since every order was last forgotten (an upper bound of
    /// those still held: an order dropped alone is not subtracted). Changed under `dirs`' lock.
    ordered: AtomicUsize,
}

impl KernelDirs {
    /// Records the open `fh` of directory `ino`, which serves entries of fingerprint `print`
    /// (`None`: read from the server as the kernel asks), and says whether the kernel may list
    /// it from the entries it kept.
    pub fn opened(&self, ino: u64, fh: u64, print: Option<u64>) -> bool {
        let Ok(mut dirs) = self.dirs.lock() else {
            return false;
        };
        if dirs.len() >= MOST_DIRS && !dirs.contains_key(&ino) {
            dirs.retain(|_, d| !d.open.is_empty());
        }
        let dir = dirs.entry(ino).or_default();
        let agree = print.is_some() && dir.open.values().all(|o| o.print == print);
        let keep = agree && dir.held == print;
        if !keep {
            // The kernel drops its pages at this open and fills them from what is read next.
            dir.drops += 1;
            dir.held = if agree { print } else { None };
            dir.order = None;
        }
        let alone = dir.open.is_empty();
        let drops = dir.drops;
        dir.open.insert(
            fh,
            Open {
                print,
                alone,
                drops,
            },
        );
        keep
    }

    /// The open `fh` of `ino`, which read from the server, has served all its entries, of
    /// fingerprint `print`, named `names` in order.
    pub fn listed(&self, ino: u64, fh: u64, print: u64, names: impl FnOnce() -> Vec<String>) {
        let Ok(mut dirs) = self.dirs.lock() else {
            return;
        };
        let Some(dir) = dirs.get_mut(&ino) else {
            return;
        };
        let drops = dir.drops;
        let Some(open) = dir.open.get_mut(&fh) else {
            return;
        };
        open.print = Some(print);
        // Only it can have filled the pages since its open dropped them.
        if open.alone && open.drops == drops {
            dir.held = Some(print);
            let names = names();
            if self.ordered.load(Ordering::Relaxed) + names.len() > MOST_ORDERED {
                dirs.values_mut().for_each(|d| d.order = None);
                self.ordered.store(0, Ordering::Relaxed);
            }
            if names.len() <= MOST_ORDERED
                && let Some(dir) = dirs.get_mut(&ino)
            {
                self.ordered.fetch_add(names.len(), Ordering::Relaxed);
                dir.order = Some(Arc::new(names));
            }
        }
    }

    /// The order of the listing from the server that the kernel's pages of `ino` were filled
    /// from, if it is known and still what they hold.
    pub fn order(&self, ino: u64) -> Option<Arc<Vec<String>>> {
        let dirs = self.dirs.lock().ok()?;
        dirs.get(&ino)?.order.clone()
    }

    /// The open `fh` of `ino` was released.
    pub fn released(&self, ino: u64, fh: u64) {
        let Ok(mut dirs) = self.dirs.lock() else {
            return;
        };
        if let Some(dir) = dirs.get_mut(&ino) {
            dir.open.remove(&fh);
            if dir.open.is_empty() && dir.held.is_none() {
                dirs.remove(&ino);
            }
        }
    }

    /// How many directories are remembered (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.dirs.lock().map(|d| d.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: u64 = 7;

    fn print(names: &[&str]) -> Option<u64> {
        Some(fingerprint(1, names.iter().map(|n| (*n, libc::S_IFREG))))
    }

    #[test]
    fn the_fingerprint_follows_names_types_and_order() {
        let a = fingerprint(1, [("a", libc::S_IFREG), ("b", libc::S_IFREG)]);
        assert_eq!(
            a,
            fingerprint(1, [("a", libc::S_IFREG | 0o644), ("b", libc::S_IFREG)])
        );
        assert_ne!(
            a,
            fingerprint(1, [("b", libc::S_IFREG), ("a", libc::S_IFREG)])
        );
        assert_ne!(
            a,
            fingerprint(1, [("a", libc::S_IFDIR), ("b", libc::S_IFREG)])
        );
        assert_ne!(a, fingerprint(1, [("a", libc::S_IFREG)]));
        assert_ne!(a, fingerprint(1, [("ab", libc::S_IFREG)]));
        assert_ne!(
            a,
            fingerprint(2, [("a", libc::S_IFREG), ("b", libc::S_IFREG)]),
            "moved: another \"..\""
        );
    }

    #[test]
    fn kept_only_while_the_same_entries_are_served() {
        let k = KernelDirs::default();
        let x = print(&["a", "b"]);
        assert!(!k.opened(D, 1, x), "first open: the kernel has nothing yet");
        k.released(D, 1);
        assert!(k.opened(D, 2, x), "same entries: kept");
        k.released(D, 2);
        let y = print(&["a", "b", "c"]);
        assert!(!k.opened(D, 3, y), "a name appeared: dropped");
        k.released(D, 3);
        assert!(k.opened(D, 4, y));
        k.released(D, 4);
        assert!(!k.opened(D, 5, x), "back to the old entries: dropped again");
        k.released(D, 5);
    }

    #[test]
    fn an_open_from_the_server_drops_and_then_counts_when_alone() {
        let k = KernelDirs::default();
        let x = print(&["a"]);
        assert!(!k.opened(D, 1, x));
        k.released(D, 1);
        assert!(!k.opened(D, 2, None), "read from the server: dropped");
        k.listed(D, 2, fingerprint(1, [("a", libc::S_IFREG)]), || {
            vec!["a".into()]
        });
        assert_eq!(k.order(D).as_deref(), Some(&vec!["a".to_owned()]));
        k.released(D, 2);
        assert!(
            k.opened(D, 3, x),
            "the pages were filled from that open alone"
        );
        k.released(D, 3);

        // Not alone: another open serving other entries was open beside it.
        let y = print(&["b"]);
        assert!(k.opened(D, 4, x));
        assert!(!k.opened(D, 5, None));
        let Some(yp) = y else { unreachable!() };
        k.listed(D, 5, yp, Vec::new);
        assert_eq!(k.order(D), None, "not alone: no order");
        k.released(D, 4);
        k.released(D, 5);
        assert!(!k.opened(D, 6, y), "who filled the pages is unknown");
        k.released(D, 6);
        assert!(k.opened(D, 7, y));
        k.released(D, 7);
    }

    #[test]
    fn an_open_since_a_server_read_makes_it_unknown() {
        let k = KernelDirs::default();
        let x = print(&["a"]);
        assert!(!k.opened(D, 1, None));
        // Dropped again by a later open of other entries, after the first one closed.
        assert!(!k.opened(D, 2, print(&["b"])));
        k.released(D, 2);
        let Some(xp) = x else { unreachable!() };
        k.listed(D, 1, xp, Vec::new);
        assert_eq!(k.order(D), None);
        k.released(D, 1);
        assert!(!k.opened(D, 3, x));
        k.released(D, 3);
    }

    #[test]
    fn different_entries_open_together_are_never_kept() {
        let k = KernelDirs::default();
        let (x, y) = (print(&["a"]), print(&["a", "b"]));
        assert!(!k.opened(D, 1, x));
        k.released(D, 1);
        assert!(k.opened(D, 2, x), "kept while x is what the kernel holds");
        // The listing changed while 2 is still open: 2 may refill the pages with x.
        assert!(!k.opened(D, 3, y));
        k.released(D, 3);
        assert!(!k.opened(D, 4, y), "2 was open with other entries: unknown");
        k.released(D, 2);
        k.released(D, 4);
        assert!(!k.opened(D, 5, y), "4 was opened beside 2: still unknown");
        k.released(D, 5);
        assert!(k.opened(D, 6, y));
        k.released(D, 6);
    }

    #[test]
    fn an_order_lasts_until_the_pages_are_dropped_and_is_bounded() {
        let k = KernelDirs::default();
        let x = print(&["b", "a"]);
        let Some(xp) = x else { unreachable!() };
        assert!(!k.opened(D, 1, None));
        k.listed(D, 1, xp, || vec!["b".into(), "a".into()]);
        k.released(D, 1);
        assert!(k.opened(D, 2, x), "served in the server's order: kept");
        k.released(D, 2);
        assert!(k.order(D).is_some());
        assert!(!k.opened(D, 3, print(&["a", "b"])));
        k.released(D, 3);
        assert_eq!(k.order(D), None, "dropped with the pages");
        // Too many names in all: the orders are forgotten, never the fingerprints.
        let many: Vec<String> = (0..MOST_ORDERED / 2 + 1).map(|i| i.to_string()).collect();
        for ino in [10, 11, 12] {
            assert!(!k.opened(ino, ino, None));
            k.listed(ino, ino, 1, || many.clone());
            k.released(ino, ino);
        }
        let kept: usize = [10, 11, 12]
            .iter()
            .filter(|i| k.order(**i).is_some())
            .count();
        assert_eq!(kept, 1);
        assert!(k.opened(10, 20, Some(1)));
    }

    #[test]
    fn what_is_remembered_is_bounded() {
        let k = KernelDirs::default();
        let x = print(&["a"]);
        for ino in 0..MOST_DIRS as u64 + 10 {
            k.opened(ino, ino, x);
            k.released(ino, ino);
        }
        assert!(k.len() <= MOST_DIRS);
        // A directory not open and not known just starts again.
        assert!(!k.opened(1, 1, x));
    }
}
