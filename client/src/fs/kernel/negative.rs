//! Negative entries: a LOOKUP of a missing name may be answered "no such name" as an entry the
//! kernel keeps for `negative_timeout`, instead of an ENOENT it asks about again. Each one
//! given is remembered ([`crate::fs::invalidate`]), so that it is taken back when the name
//! appears on the server or through the mount.

use std::ffi::OsStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use fuse3::raw::reply::FileAttr;

use crate::fs::{FsResult, SshFs};

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

impl SshFs {
    /// LOOKUP for the kernel: [`SshFs::lookup`], with a missing name answered as a negative
    /// entry when those are given, and remembered.
    pub async fn lookup_entry(self: &Arc<Self>, parent: u64, name: &OsStr) -> FsResult<Entry> {
        match self.lookup(parent, name).await {
            Ok(attr) => Ok(Entry::Found(attr)),
            Err(e) if e.errno == libc::ENOENT && self.kernel.negative.given() => {
                tracing::debug!(errno = e.errno, "{}; a negative entry", e.message);
                self.gave_negative(parent, name);
                Ok(Entry::Negative)
            }
            Err(e) => Err(e),
        }
    }
}
