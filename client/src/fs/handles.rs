//! Tables of records keyed by the `fh` number we give the kernel (open files,
//! [`super::open_files`]; open directories, [`OpenDir`]).
//!
//! The kernel's `fh` names our record, never the server's handle directly, so a reconnect can
//! later reopen the server handle underneath without the kernel noticing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sshfs_cache::Ticket;

use crate::remote::sftp::handle::Handle;
use crate::remote::sftp::{DirEntry, DirPages};

/// An open directory: the entries read so far, so the kernel can page through (and rewind) by
/// offset. Either the whole listing came from the cache (no server handle), or pages are fetched
/// through the server handle only as far as the kernel reads, and the complete listing is
/// remembered in the cache at the end.
///
/// A listing too large for the cache ([`sshfs_cache::MetaCache::listing_fits`]) is not
/// remembered, so it is not kept whole either: the entries the kernel has read are dropped
/// (`base` counts them), and a seek back before them reads the directory again from the start.
#[derive(Debug)]
pub struct OpenDir {
    /// The directory's inode.
    pub ino: u64,
    /// The directory's path relative to the mount root.
    pub rel: String,
    /// The kernel may keep what it reads through this open ([`crate::fs::kernel::dirs`]):
    /// once the entries read from the server are complete, their fingerprint is recorded.
    pub kernel_caches: bool,
    /// The server's handle; `None` when the listing came from the cache.
    pub handle: Option<Handle>,
    /// Its pages, several READDIRs in flight; `None` when the listing came from the cache.
    pub pages: Option<DirPages>,
    /// A page taken from the server whose symlinks were not followed yet (the kernel
    /// interrupted the READDIR meanwhile): it is the next one, not lost.
    pub received: Option<Vec<DirEntry>>,
    /// When OPENDIR was sent (for storing the listing in the cache).
    pub ticket: Option<Ticket>,
    /// Entries fetched so far, "." and ".." included when the server sends them, from offset
    /// `base` on.
    pub entries: Vec<DirEntry>,
    /// The offset of `entries[0]`: how many entries were dropped before it.
    pub base: usize,
    /// Whether `entries` hold the whole listing from its start (false once it grew too large
    /// for the cache: then `ticket` is `None` and what the kernel read is dropped).
    pub whole: bool,
    /// Names (without "." and "..") and their bytes fetched so far on this handle.
    pub names: usize,
    /// The bytes of those names.
    pub name_bytes: usize,
    /// Whether the end of the directory was reached.
    pub eof: bool,
    /// Entries still to drop from the pages of a listing started again after a reconnect
    /// (they were fetched before it).
    pub skip: usize,
}

impl OpenDir {
    /// A record for the listing `rel` (inode `ino`) served whole from `entries` (from the
    /// cache); `kernel_caches`: see [`OpenDir::kernel_caches`].
    pub fn whole(ino: u64, rel: String, kernel_caches: bool, entries: Vec<DirEntry>) -> Self {
        OpenDir {
            ino,
            rel,
            kernel_caches,
            handle: None,
            pages: None,
            received: None,
            ticket: None,
            entries,
            base: 0,
            whole: true,
            names: 0,
            name_bytes: 0,
            eof: true,
            skip: 0,
        }
    }

    /// A record for the listing `rel` (inode `ino`) read from the server through `handle`,
    /// opened at `ticket`; `kernel_caches`: see [`OpenDir::kernel_caches`].
    pub fn from_server(
        ino: u64,
        rel: String,
        kernel_caches: bool,
        handle: Handle,
        pages: DirPages,
        ticket: Ticket,
    ) -> Self {
        OpenDir {
            ino,
            rel,
            kernel_caches,
            handle: Some(handle),
            pages: Some(pages),
            received: None,
            ticket: Some(ticket),
            entries: Vec::new(),
            base: 0,
            whole: true,
            names: 0,
            name_bytes: 0,
            eof: false,
            skip: 0,
        }
    }

    /// The offset after the last entry fetched.
    pub fn end(&self) -> usize {
        self.base + self.entries.len()
    }

    /// Counts the names of `page` (just fetched) in `names` and `name_bytes`.
    pub fn count(&mut self, page: &[DirEntry]) {
        for e in page.iter().filter(|e| e.name != "." && e.name != "..") {
            self.names += 1;
            self.name_bytes += e.name.len();
        }
    }

    /// Drops the entries before offset `start` if the listing is not kept whole.
    pub fn trim_to(&mut self, start: usize) {
        if self.whole || start <= self.base {
            return;
        }
        let n = (start - self.base).min(self.entries.len());
        self.entries.drain(..n);
        self.base += n;
        if self.entries.capacity() > 4 * self.entries.len() + 1024 {
            // Give the memory of what was dropped back, not only its entries.
            self.entries.shrink_to_fit();
        }
    }

    /// Drops from `page` the entries a restarted listing repeats.
    pub fn skip_seen(&mut self, mut page: Vec<DirEntry>) -> Vec<DirEntry> {
        let n = self.skip.min(page.len());
        self.skip -= n;
        page.drain(..n);
        page
    }
}

/// The source of `fh` numbers, shared by a mount's file and directory tables: the kernel can
/// hand us a directory's `fh` where it would a file's (SETATTR on an open directory, with
/// FATTR_FH), and that number must then find no file at all, not another file.
#[derive(Debug, Clone)]
pub struct FhNumbers(Arc<AtomicU64>);

impl Default for FhNumbers {
    fn default() -> Self {
        Self(Arc::new(AtomicU64::new(1)))
    }
}

/// `fh` -> record, with fresh numbers.
#[derive(Debug)]
pub struct HandleTable<T> {
    next: FhNumbers,
    map: Mutex<HashMap<u64, Arc<T>>>,
}

impl<T> HandleTable<T> {
    /// An empty table taking its numbers from `numbers`.
    pub fn new(numbers: &FhNumbers) -> Self {
        Self {
            next: numbers.clone(),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Stores `value` and returns its new `fh`.
    pub fn insert(&self, value: T) -> u64 {
        let fh = self.next.0.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut map) = self.map.lock() {
            map.insert(fh, Arc::new(value));
        }
        fh
    }

    /// The record for `fh`.
    pub fn get(&self, fh: u64) -> Option<Arc<T>> {
        self.map.lock().ok()?.get(&fh).cloned()
    }

    /// Some record for which `pred` holds.
    pub fn find(&self, pred: impl Fn(&T) -> bool) -> Option<Arc<T>> {
        self.map.lock().ok()?.values().find(|v| pred(v)).cloned()
    }

    /// Every record for which `pred` holds.
    pub fn all_where(&self, pred: impl Fn(&T) -> bool) -> Vec<Arc<T>> {
        self.map
            .lock()
            .map(|map| map.values().filter(|v| pred(v)).cloned().collect())
            .unwrap_or_default()
    }

    /// Calls `f` on every record (under the table's lock: `f` must be quick and not lock it).
    pub fn for_each(&self, mut f: impl FnMut(&T)) {
        if let Ok(map) = self.map.lock() {
            map.values().for_each(|v| f(v));
        }
    }

    /// Removes and returns the record for `fh`.
    pub fn remove(&self, fh: u64) -> Option<Arc<T>> {
        self.map.lock().ok()?.remove(&fh)
    }

    /// Number of open records.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether nothing is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
