//! The content cache on local disk (`-o data_cache`): the bytes of files read through the
//! mount, kept across unmounts, reconnects and reboots, so reading them again costs no
//! transfer.
//!
//! Unlike the rest of this crate it does file I/O, on the local disk only: no FUSE, no network.
//! The filesystem asks for a file's [`Entry`] at open, giving the size and mtime the server
//! just reported; an entry cached for another size or mtime is dropped, so a file changed on
//! the server is read anew. Entries are kept under `DIR/v1/<scope>/`, where the scope is a
//! hash of the server's host key, the user and the remote root ([`Scope`]): each file is a
//! sparse data file holding only the [`BLOCK`]s that were read, and a small block table with
//! a checksum per [`CHUNK`] ([`table`]), checked on every read ([`entry`]).
//!
//! - **Recent files are not cached**: SFTP v3 mtimes have a resolution of one second, so a file
//!   whose mtime is within [`RECENT`] seconds of now may be being written this very second
//!   without its mtime changing again; it is read from the server.
//! - **Bounded**: the data files' real disk use (allocated blocks) plus the tables stay under
//!   the limit; the least recently used files go first, never one that is open. The usage of
//!   entries left by earlier mounts is counted by a scan on a thread of its own, so a mount
//!   never waits for it.
//! - **Private and exclusive**: directories are made 0700, files 0600; a directory another user
//!   owns, or that group or others may write (inside the base directory: enter), is refused
//!   ([`dir`]); one mount at a time uses a scope's
//!   directory (`flock`), a second one runs without the cache.

pub mod dir;
pub mod entry;
pub mod table;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::Flock;
use sha2::{Digest, Sha256};

pub use entry::Entry;
use table::Table;

/// The unit of presence and eviction: 1 MiB of the file, at a multiple of 1 MiB.
pub const BLOCK: u64 = 1 << 20;
/// The unit of checksums: a read checks only the chunks it touches.
pub const CHUNK: u64 = 64 << 10;
/// A file whose mtime is this close to now (seconds) is not cached.
pub const RECENT: u64 = 2;
/// The default bound on the cache's disk use: 1 GiB.
pub const DEFAULT_LIMIT: u64 = 1 << 30;

/// Whose files a cache directory holds: one server (by its host key), one user, one remote
/// root. Two mounts differing in any of them never share entries.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The server's identity: its host key's fingerprint (or, without one, how it is reached).
    pub server: String,
    /// The user logged in as.
    pub user: String,
    /// The remote directory mounted.
    pub root: String,
}

impl Scope {
    /// The scope's directory name: a hash of its three parts.
    pub fn key(&self) -> String {
        let joined = format!("{}\0{}\0{}", self.server, self.user, self.root);
        hex_hash(joined.as_bytes())
    }
}

/// The first 128 bits of the SHA-256 of `bytes`, in hex.
fn hex_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The counters of `--stats`.
#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    bytes_hit: AtomicU64,
    bytes_stored: AtomicU64,
    corrupt: AtomicU64,
    evictions: AtomicU64,
}

/// What the cache did since the mount (`--stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContentStats {
    /// Reads answered from the disk.
    pub hits: u64,
    /// Reads of a cached file that had to go to the server.
    pub misses: u64,
    /// Bytes answered from the disk.
    pub bytes_hit: u64,
    /// Bytes written to the disk.
    pub bytes_stored: u64,
    /// Blocks dropped because a checksum did not match.
    pub corrupt: u64,
    /// Files evicted to stay under the limit.
    pub evictions: u64,
    /// Bytes the cache takes on disk (as far as counted).
    pub used: u64,
}

/// One file's use of the disk.
#[derive(Debug, Default)]
struct FileUse {
    bytes: u64,
    /// Nanoseconds since the epoch of its last use.
    last_used: u64,
    /// Entries alive for it: an open file's entry is never evicted.
    live: u32,
    /// Its path, when known (for [`ContentCache::forget_under`]).
    path: Option<String>,
}

/// Disk use by file key.
#[derive(Debug, Default)]
struct Usage {
    files: HashMap<String, FileUse>,
    total: u64,
}

/// What the entries share: the directory, the bound, the usage, the counters.
pub(crate) struct Shared {
    dir: PathBuf,
    limit: u64,
    stats: Counters,
    usage: Mutex<Usage>,
    /// The scan of what earlier mounts left is done (until then usage is partial).
    scanned: AtomicBool,
}

impl Shared {
    fn usage(&self) -> MutexGuard<'_, Usage> {
        self.usage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Evicts the least recently used files that no open file uses until `need` more bytes fit
    /// under the limit; false if they cannot.
    fn make_room(&self, need: u64, _for: &str) -> bool {
        let mut usage = self.usage();
        while usage.total.saturating_add(need) > self.limit {
            let victim = usage
                .files
                .iter()
                .filter(|(_, u)| u.live == 0)
                .min_by_key(|(_, u)| u.last_used)
                .map(|(stem, _)| stem.clone());
            let Some(victim) = victim else {
                return false;
            };
            if let Some(u) = usage.files.remove(&victim) {
                usage.total = usage.total.saturating_sub(u.bytes);
            }
            self.remove_files(&victim);
            self.stats.evictions.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// Records that the file `stem` takes `bytes` now, and was just used.
    fn account(&self, stem: &str, bytes: u64) {
        let mut usage = self.usage();
        let u = usage.files.entry(stem.to_owned()).or_default();
        let before = std::mem::replace(&mut u.bytes, bytes);
        u.last_used = now_nanos();
        usage.total = usage.total.saturating_sub(before).saturating_add(bytes);
    }

    /// An entry of `stem` (for `path`) is alive: it is not evicted until [`Shared::unpin`].
    fn pin(&self, stem: &str, path: &str) {
        let mut usage = self.usage();
        let u = usage.files.entry(stem.to_owned()).or_default();
        u.live += 1;
        u.last_used = now_nanos();
        u.path = Some(path.to_owned());
    }

    /// An entry of `stem` is gone.
    fn unpin(&self, stem: &str) {
        let mut usage = self.usage();
        if let Some(u) = usage.files.get_mut(stem) {
            u.live = u.live.saturating_sub(1);
            u.last_used = now_nanos();
        }
    }

    /// Forgets the file `stem`: its usage and its files on disk.
    fn forget_stem(&self, stem: &str) {
        let mut usage = self.usage();
        if let Some(u) = usage.files.remove(stem) {
            usage.total = usage.total.saturating_sub(u.bytes);
        }
        drop(usage);
        self.remove_files(stem);
    }

    fn remove_files(&self, stem: &str) {
        for ext in ["meta", "data", "meta.tmp"] {
            let _ = std::fs::remove_file(self.dir.join(format!("{stem}.{ext}")));
        }
    }

    /// Counts what earlier mounts left in the directory (and removes half-written tables),
    /// then evicts down to the limit. Files used since the mount are already counted.
    fn scan(&self) {
        let Ok(list) = std::fs::read_dir(&self.dir) else {
            self.scanned.store(true, Ordering::Release);
            return;
        };
        let mut found: HashMap<String, FileUse> = HashMap::new();
        for item in list.flatten() {
            let name = item.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some((stem, ext)) = name.split_once('.') else {
                continue;
            };
            let Ok(meta) = item.metadata() else { continue };
            if ext == "meta.tmp" {
                let _ = std::fs::remove_file(item.path());
                continue;
            }
            let u = found.entry(stem.to_owned()).or_default();
            u.bytes += meta.blocks() * 512;
            let mtime = u64::try_from(meta.mtime()).unwrap_or(0) * 1_000_000_000;
            u.last_used = u.last_used.max(mtime);
            if ext == "meta" {
                u.path = Table::load(&item.path()).map(|t| t.path);
            }
        }
        {
            let mut usage = self.usage();
            for (stem, u) in found {
                if !usage.files.contains_key(&stem) {
                    usage.total += u.bytes;
                    usage.files.insert(stem, u);
                }
            }
        }
        self.scanned.store(true, Ordering::Release);
        self.make_room(0, "");
    }
}

/// The content cache of one mount.
pub struct ContentCache {
    shared: Arc<Shared>,
    /// The live entries by path: every open file of a path shares one.
    entries: Mutex<HashMap<String, Weak<Entry>>>,
    /// Held while the mount uses the directory.
    _lock: Flock<File>,
}

impl ContentCache {
    /// The cache of `scope` under `base` (created private, checked, and locked), bounded by
    /// `limit` bytes. Fails when `base` is not private to the user or another mount uses the
    /// scope's directory. What earlier mounts left is counted on a thread of its own.
    pub fn open(base: &Path, scope: &Scope, limit: u64) -> io::Result<ContentCache> {
        dir::private_dir(base, dir::NOT_WRITABLE)?;
        let versioned = base.join(format!("v{}", table::VERSION));
        dir::private_dir(&versioned, dir::PRIVATE)?;
        let dir = versioned.join(scope.key());
        dir::private_dir(&dir, dir::PRIVATE)?;
        let lock = dir::lock(&dir)?;
        let shared = Arc::new(Shared {
            dir,
            limit,
            stats: Counters::default(),
            usage: Mutex::new(Usage::default()),
            scanned: AtomicBool::new(false),
        });
        let scanner = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("data-cache-scan".into())
            .spawn(move || scanner.scan())?;
        Ok(ContentCache {
            shared,
            entries: Mutex::new(HashMap::new()),
            _lock: lock,
        })
    }

    /// The scope's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<String, Weak<Entry>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry of `path` for the file the server just reported as `size` bytes modified at
    /// `mtime` (seconds), `now` being the local time in seconds: the cached one if it is for
    /// that size and mtime; otherwise a new, empty one (what was cached is dropped). `None`
    /// when the file is not cached: empty, modified within [`RECENT`] seconds of now, or the
    /// disk refused.
    pub fn entry(&self, path: &str, size: u64, mtime: u64, now: u64) -> Option<Arc<Entry>> {
        let stem = hex_hash(path.as_bytes());
        let mut entries = self.entries();
        if let Some(e) = entries.get(path).and_then(Weak::upgrade) {
            if e.is(size, mtime) {
                self.shared.pin(&stem, path);
                self.shared.unpin(&stem);
                return Some(e);
            }
            e.kill();
            entries.remove(path);
            self.shared.forget_stem(&stem);
        }
        if size == 0 || mtime.saturating_add(RECENT) > now {
            entries.remove(path);
            self.shared.forget_stem(&stem);
            return None;
        }
        self.shared.pin(&stem, path);
        let opened = self.load_or_create(&stem, path, size, mtime, now);
        let Some((table, data)) = opened else {
            self.shared.unpin(&stem);
            return None;
        };
        let e = Arc::new(Entry::new(
            Arc::clone(&self.shared),
            stem.clone(),
            table,
            data,
        ));
        self.shared.account(&stem, data_use(&e, &self.shared.dir));
        entries.retain(|_, w| w.strong_count() > 0);
        entries.insert(path.to_owned(), Arc::downgrade(&e));
        Some(e)
    }

    /// The saved table and data file of `stem` if they are for this path, size and mtime;
    /// else new ones (the old removed).
    fn load_or_create(
        &self,
        stem: &str,
        path: &str,
        size: u64,
        mtime: u64,
        now: u64,
    ) -> Option<(Table, File)> {
        let dir = &self.shared.dir;
        let saved = Table::load(&dir.join(format!("{stem}.meta"))).filter(|t| {
            t.path == path && t.size == size && t.mtime == mtime && t.mtime + RECENT <= t.cached_at
        });
        let data_path = dir.join(format!("{stem}.data"));
        if let Some(t) = saved
            && let Ok(f) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&data_path)
        {
            return Some((t, f));
        }
        self.shared.remove_files(stem);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&data_path)
            .ok()?;
        let t = Table {
            path: path.to_owned(),
            size,
            mtime,
            cached_at: now,
            blocks: Default::default(),
        };
        Some((t, f))
    }

    /// Drops what is cached of `path` (written, truncated, removed or renamed through the
    /// mount): an open file's entry stops answering and storing.
    pub fn forget(&self, path: &str) {
        let stem = hex_hash(path.as_bytes());
        let mut entries = self.entries();
        if let Some(e) = entries.remove(path).and_then(|w| w.upgrade()) {
            e.kill();
        }
        drop(entries);
        self.shared.forget_stem(&stem);
    }

    /// Drops what is cached of every file under the directory `dir` (renamed or removed through
    /// the mount); everything while the paths of earlier mounts' entries are not known yet.
    pub fn forget_under(&self, dir: &str) {
        if !self.shared.scanned.load(Ordering::Acquire) {
            self.clear();
            return;
        }
        let prefix = format!("{dir}/");
        let paths: Vec<String> = self
            .shared
            .usage()
            .files
            .values()
            .filter_map(|u| u.path.clone())
            .filter(|p| dir.is_empty() || p.starts_with(&prefix))
            .collect();
        for p in paths {
            self.forget(&p);
        }
    }

    /// Drops everything (`--flush`): every entry stops answering, every file is removed.
    pub fn clear(&self) {
        let mut entries = self.entries();
        for (_, w) in entries.drain() {
            if let Some(e) = w.upgrade() {
                e.kill();
            }
        }
        drop(entries);
        {
            // The entries were killed: none unpins.
            let mut usage = self.shared.usage();
            usage.files.clear();
            usage.total = 0;
        }
        if let Ok(list) = std::fs::read_dir(&self.shared.dir) {
            for item in list.flatten() {
                if item.file_name() != "lock" {
                    let _ = std::fs::remove_file(item.path());
                }
            }
        }
    }

    /// What the cache did since the mount.
    pub fn stats(&self) -> ContentStats {
        let c = &self.shared.stats;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ContentStats {
            hits: get(&c.hits),
            misses: get(&c.misses),
            bytes_hit: get(&c.bytes_hit),
            bytes_stored: get(&c.bytes_stored),
            corrupt: get(&c.corrupt),
            evictions: get(&c.evictions),
            used: self.shared.usage().total,
        }
    }

    /// Waits for the scan of earlier mounts' entries (tests).
    #[cfg(test)]
    fn wait_scanned(&self) {
        while !self.shared.scanned.load(Ordering::Acquire) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// The disk use of a freshly opened entry's files.
fn data_use(e: &Entry, dir: &Path) -> u64 {
    ["data", "meta"]
        .iter()
        .filter_map(|ext| std::fs::metadata(dir.join(format!("{}.{ext}", e.stem))).ok())
        .map(|m| m.blocks() * 512)
        .sum()
}

/// Now, in nanoseconds since the epoch.
fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Now, in seconds since the epoch (what [`ContentCache::entry`] compares mtimes with).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
