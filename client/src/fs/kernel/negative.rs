//! Negative entries: a LOOKUP of a missing name may be answered "no such name" as an entry the
//! kernel keeps for `negative_timeout`, instead of an ENOENT it asks about again. Each one
//! given is remembered ([`crate::fs::invalidate`]), so that it is taken back when the name
//! appears on the server or through the mount.

use std::sync::atomic::{AtomicBool, Ordering};

use fuse3::raw::reply::FileAttr;

/// Whether missing names are answered as negative entries.
#[derive(Debug, Default)]
pub struct NegativeEntries {
    given: AtomicBool,
}

impl NegativeEntries {
    /// Answers missing names as negative entries from now on (or not).
    pub fn set(&self, given: bool) {
        self.given.store(given, Ordering::Relaxed);
    }

    /// Whether missing names are answered as negative entries.
    pub fn given(&self) -> bool {
        self.given.load(Ordering::Relaxed)
    }
}

/// What a LOOKUP answers the kernel.
#[derive(Debug, Clone)]
pub enum Entry {
    /// The name, with a kernel reference taken on its inode.
    Found(FileAttr),
    /// No such name, as a negative entry the kernel keeps (the caller sees ENOENT).
    Negative,
}
