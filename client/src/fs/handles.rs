//! Tables of open files and directories, keyed by the `fh` number we give the kernel.
//!
//! The kernel's `fh` names our record, never the server's handle directly, so a reconnect can
//! later reopen the server handle underneath without the kernel noticing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use russh_sftp::protocol::FileAttributes;
use sshfs_cache::Ticket;

use super::ahead::readahead::ReadAhead;
use super::stripes::Stripes;
use super::write_behind::WriteBehind;
use crate::remote::Handle;
use crate::remote::sftp::DirEntry;

/// An open file.
#[derive(Debug)]
pub struct OpenFile {
    /// The server's handle.
    pub handle: Handle,
    /// The inode it was opened on.
    pub ino: u64,
    /// Opened for writing (a truncate through it is allowed).
    pub writable: bool,
    /// Opened with O_APPEND (the server picks the offsets: never striped).
    pub append: bool,
    /// Writes sent but not yet acknowledged, and the first error one met.
    pub writes: WriteBehind,
    /// Its handles on the connection's other channels, once its writes are striped.
    pub stripes: Stripes,
    /// Pieces of the file fetched ahead of a sequential reader.
    pub readahead: ReadAhead,
    /// The file's size as last known through this handle (`u64::MAX`: unknown); only a hint
    /// that lets a short READ at the end count as the end.
    size: AtomicU64,
    /// For a file this handle created: its attributes as the server reported them at the
    /// create, kept up to date with the mode, owner and times we set through it since (the size
    /// is [`OpenFile::known_size`]). A chmod, chown or utimens of it is then answered from
    /// them and sent behind the writes ([`super::setattr`]).
    own_attrs: Mutex<Option<FileAttributes>>,
    /// A close() of it was seen (FLUSH): the program may hold no descriptor of it any more, and
    /// its RELEASE may come at any moment. A change made by path is then never sent through
    /// this handle ([`OpenFile::takes_changes_behind`]).
    flushed: AtomicBool,
}

impl OpenFile {
    /// A file record for a fresh server handle opened with the `open(2)` `flags`; `size` if
    /// known.
    pub fn new(handle: Handle, ino: u64, flags: u32, size: Option<u64>) -> Self {
        Self {
            handle,
            ino,
            writable: flags as i32 & libc::O_ACCMODE != libc::O_RDONLY,
            append: flags as i32 & libc::O_APPEND != 0,
            writes: WriteBehind::default(),
            stripes: Stripes::default(),
            readahead: ReadAhead::default(),
            size: AtomicU64::new(size.unwrap_or(u64::MAX)),
            own_attrs: Mutex::new(None),
            flushed: AtomicBool::new(false),
        }
    }

    /// Records a close() of the file (FLUSH). For good: a later write through another
    /// descriptor of it does not undo it, the rule only costs a round trip then.
    pub fn note_close(&self) {
        self.flushed.store(true, Ordering::Release);
    }

    /// Whether a close() of the file was seen ([`OpenFile::note_close`]).
    pub fn close_seen(&self) -> bool {
        self.flushed.load(Ordering::Acquire)
    }

    /// Whether a chmod, chown or utimens of `ino` may ride behind this handle's writes
    /// ([`super::setattr`]): the handle created the file, is open for writing, and the program
    /// never closed a descriptor of it. After a close() the change may come by path from a
    /// program that holds no descriptor (`git` does `close`, then `utime(path)`) while the
    /// RELEASE of this handle is under way: it must go by path then, and a failure of it must
    /// be the call's, not left for a close that already happened.
    pub fn takes_changes_behind(&self, ino: u64) -> bool {
        self.ino == ino
            && self.writable
            && !self.close_seen()
            && !self.handle.is_closed()
            && self.own_attrs.lock().is_ok_and(|own| own.is_some())
    }

    /// Records the attributes of the file this handle just created (see `own_attrs`).
    pub fn set_created(&self, attrs: FileAttributes) {
        if let Ok(mut own) = self.own_attrs.lock() {
            *own = Some(attrs);
        }
    }

    /// The attributes of a file this handle created, as far as we changed them, with the
    /// size known through it; `None` for a file it did not create.
    pub fn own_attrs(&self) -> Option<FileAttributes> {
        let mut attrs = self.own_attrs.lock().ok()?.clone()?;
        attrs.size = self.known_size().or(attrs.size);
        Some(attrs)
    }

    /// Records the attributes after a change we made through this handle.
    pub fn set_own_attrs(&self, attrs: FileAttributes) {
        if let Ok(mut own) = self.own_attrs.lock()
            && own.is_some()
        {
            *own = Some(attrs);
        }
    }

    /// Whether its writes may go through several channels ([`super::stripes`]).
    pub fn stripable(&self) -> bool {
        self.writable && !self.append
    }

    /// The size last known, if any.
    pub fn known_size(&self) -> Option<u64> {
        Some(self.size.load(Ordering::Relaxed)).filter(|s| *s != u64::MAX)
    }

    /// Records that the file is now `size` bytes (truncate).
    pub fn set_size(&self, size: u64) {
        self.size.store(size, Ordering::Relaxed);
    }

    /// Records a write that ends at `end`.
    pub fn wrote_to(&self, end: u64) {
        let _ = self
            .size
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                (s != u64::MAX && end > s).then_some(end)
            });
    }
}

/// An open directory: the entries read so far, so the kernel can page through (and rewind) by
/// offset. Either the whole listing came from the cache (no server handle), or pages are fetched
/// through the server handle only as far as the kernel reads, and the complete listing is
/// remembered in the cache at the end.
#[derive(Debug)]
pub struct OpenDir {
    /// The directory's path relative to the mount root.
    pub rel: String,
    /// The server's handle; `None` when the listing came from the cache.
    pub handle: Option<Handle>,
    /// When OPENDIR was sent (for storing the listing in the cache).
    pub ticket: Option<Ticket>,
    /// Entries fetched so far, "." and ".." included when the server sends them.
    pub entries: Vec<DirEntry>,
    /// Whether the end of the directory was reached.
    pub eof: bool,
    /// Entries still to drop from the pages of a listing started again after a reconnect
    /// (they were fetched before it).
    pub skip: usize,
}

impl OpenDir {
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
