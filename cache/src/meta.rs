//! The metadata cache: attributes, negative entries, symlink targets and directory listings of
//! remote paths, with TTLs, a hard bound on memory, and change detection.
//!
//! # Why it looks like this
//!
//! **One LRU entry per path.** Everything known about a path (its attributes or the fact that it
//! does not exist, its symlink target, its listing if it is a directory) lives in one entry of
//! one [`lru::LruCache`] bounded by [`CacheConfig::max_entries`] and by
//! [`CacheConfig::max_bytes`]. Memory is therefore flat however large the remote tree is, and one
//! eviction drops all of a path's facts at once, so no half-entry can contradict another.
//!
//! **Bytes, counted roughly.** An entry's size is estimated from what it holds
//! ([`entry_bytes`]): a fixed part (the entry, its LRU and index slots), its path, its symlink
//! target and, for a directory, its listing's names ([`NAME_BYTES`] each plus their length). The
//! entry count alone does not bound memory: a long listing kept as the baseline of a directory
//! whose children were evicted costs as much as thousands of entries. Over the bound, the least
//! recently used entries go, as over the count. A listing whose names and children's entries
//! could not fit in the bound is not stored at all ([`MetaCache::listing_fits`]): its
//! children's attributes would push each other, and the listing, out.
//!
//! **Expired data is kept until evicted.** A TTL only decides whether a fact may be *answered*.
//! The stale value stays as the baseline the next answer from the server is compared with: that is
//! how the cache notices that a file changed revision ([`Change::Modified`]), that a name vanished
//! from a directory ([`Change::Removed`]) or appeared ([`Change::Added`]). The cache does not talk
//! to the kernel; it returns these [`Change`]s and the filesystem, which maps paths to inodes,
//! turns them into kernel invalidations.
//!
//! **A listing holds names, not attributes.** The attributes of a directory's children live in the
//! children's own entries, so there is one copy of every attribute and a `stat` after a `readdir`
//! is a hit. A listing is answered only if every child still has fresh attributes: a child evicted
//! by the LRU, invalidated or expired turns the whole listing into a miss instead of an answer with
//! a hole in it.
//!
//! **A sorted index of paths.** Renaming or removing a directory must move or drop everything
//! cached below it. Beside the LRU, a `BTreeSet` of the same keys (shared `Arc<str>`) keeps paths in
//! order, so `a/...` is one contiguous range: subtree operations cost `O(log n + k)` for `k` cached
//! descendants, not a scan of the whole cache.
//!
//! **Our own changes win over older answers.** The filesystem records its own successful
//! operations ([`MetaCache::created`], [`removed`](MetaCache::removed),
//! [`renamed`](MetaCache::renamed), [`set_attr`](MetaCache::set_attr)) so a program sees its own
//! change at once. But requests run concurrently: a `stat` sent before our `write` may answer after
//! it, with the old size, and storing that answer would undo the program's own change for a whole
//! TTL. So every own change bumps a generation counter and stamps the entries it touched, and every
//! answer from the server carries the [`Ticket`] taken when its request was sent: an answer older
//! than a stamp on its path (or on the path of an ancestor that was created, removed or renamed)
//! is not stored. When a stamped entry leaves the cache its stamp is folded into a single floor
//! that absent paths inherit, which errs on the side of storing less, never on storing wrong.

use std::collections::BTreeSet;
use std::fmt;
use std::num::NonZeroUsize;
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lru::LruCache;

use crate::clock::Clock;

/// Whether two attribute snapshots describe the same version of a file (same type, size, mtime).
///
/// The cache compares a new snapshot with the previous one of the same path; a different revision
/// means the file's content may have changed behind our back ([`Change::Modified`]).
pub trait Revision {
    /// True if `self` and `other` are the same version of the file.
    fn same_revision(&self, other: &Self) -> bool;

    /// Takes from `older` (the previous snapshot of the same path) what this snapshot does not
    /// carry but is still true of the file (the link count a STAT lacks). Nothing by default.
    fn keep_from(&mut self, _older: &Self) {}

    /// True if the file may have names besides this one (a link count above one). False by
    /// default.
    fn may_have_other_names(&self) -> bool {
        false
    }
}

/// Lifetimes and size of the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long attributes are answered from the cache.
    pub stat_ttl: Duration,
    /// How long a directory listing is answered from the cache.
    pub dir_ttl: Duration,
    /// How long a symlink target is answered from the cache.
    pub link_ttl: Duration,
    /// How long "no such file" is answered from the cache.
    pub negative_ttl: Duration,
    /// Most paths held at once (values below 1 count as 1).
    pub max_entries: usize,
    /// Most bytes held at once, as estimated per entry (see the module documentation); the
    /// most recently used entry is kept even if it alone is larger.
    pub max_bytes: usize,
    /// Whether directory listings are cached at all.
    pub dir_cache: bool,
}

impl Default for CacheConfig {
    /// The defaults of the C sshfs: 20 s for everything, 10 000 entries, listings cached; and
    /// at most [`DEFAULT_MAX_BYTES`].
    fn default() -> Self {
        let ttl = Duration::from_secs(20);
        Self {
            stat_ttl: ttl,
            dir_ttl: ttl,
            link_ttl: ttl,
            negative_ttl: ttl,
            max_entries: 10_000,
            max_bytes: DEFAULT_MAX_BYTES,
            dir_cache: true,
        }
    }
}

/// The default bound on the cache's estimated size: 32 MiB.
pub const DEFAULT_MAX_BYTES: usize = 32 << 20;

/// Estimated bytes of one listed name beyond its length (the `String`, its allocation, its slot
/// in the listing's tree).
pub const NAME_BYTES: usize = 48;

/// Estimated bytes of an entry beyond its path, link target and listing: the entry itself, the
/// LRU's node and hash slot, the sorted index's slot, the shared key's header.
fn fixed_bytes<A>() -> usize {
    std::mem::size_of::<Entry<A>>() + 128
}

/// The estimated size of the entry of `path` (see the module documentation).
fn entry_bytes<A>(path: &str, entry: &Entry<A>) -> usize {
    fixed_bytes::<A>()
        + path.len()
        + entry.link.as_ref().map_or(0, |l| l.value.len())
        + entry.listing.as_ref().map_or(0, Listing::bytes)
}

/// The cache's answer about a path's attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<A> {
    /// Fresh attributes.
    Found(A),
    /// A fresh negative entry: the path is known not to exist.
    Missing,
    /// Nothing fresh is known: ask the server.
    Unknown,
}

/// Something the filesystem must tell the kernel after a cache update (it maps paths to inodes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Change {
    /// The attributes of a known path changed revision: drop the kernel's attributes and page cache.
    Modified {
        /// The path that changed.
        path: String,
    },
    /// A name known to exist is gone.
    Removed {
        /// The directory that held the name.
        parent: String,
        /// The name that is gone.
        name: String,
    },
    /// A name appeared that we had not listed or had answered as missing (the kernel may hold a
    /// negative dentry for it).
    Added {
        /// The directory that now holds the name.
        parent: String,
        /// The new name.
        name: String,
    },
}

/// Counters for the "how is the cache doing" question.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups (attributes, links, listings) answered from the cache, negative answers included.
    pub hits: u64,
    /// Lookups that found nothing fresh.
    pub misses: u64,
    /// Paths held now.
    pub entries: usize,
    /// Paths dropped because the cache was full.
    pub evictions: u64,
}

/// When a request to the server was sent: in the cache's own-change generations, and on its
/// clock.
///
/// Take one with [`MetaCache::ticket`] before sending a request and pass it with the answer; the
/// cache then ignores the parts of the answer that our own later changes made obsolete (and, for
/// a listing, what answers stored since it was asked for say about single names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket {
    generation: u64,
    at: Instant,
}

/// A path's existence as last learned.
#[derive(Debug, Clone)]
enum Known<A> {
    Present(A),
    Missing,
}

/// A value and when it was learned.
#[derive(Debug, Clone)]
struct Timed<T> {
    value: T,
    at: Instant,
}

/// The names of a directory and when they were listed.
#[derive(Debug, Clone)]
struct Listing {
    /// Change only through [`Listing::insert`] and [`Listing::remove`], which keep `name_bytes`.
    names: BTreeSet<String>,
    /// The sum of the names' lengths.
    name_bytes: usize,
    at: Instant,
    /// Set when the directory itself changed revision: the names are kept as the baseline for the
    /// next listing's diff, but are no longer answered.
    stale: bool,
    /// Whether a name missing from it may be answered "no such file" (false for a listing
    /// fetched only because a name in the directory was looked up: see
    /// [`MetaCache::put_listing_ahead`]).
    answers_absence: bool,
}

/// Everything cached about one path, plus the generations of our own last changes to it.
#[derive(Debug)]
struct Entry<A> {
    attr: Option<Timed<Known<A>>>,
    link: Option<Timed<String>>,
    listing: Option<Listing>,
    /// Our last change to this path's attributes or existence.
    own: u64,
    /// Our last change to what this path *is* (created, removed, renamed): covers descendants.
    identity: u64,
    /// Our last change to the set of names in this directory.
    names: u64,
    /// The attributes were forgotten because our own change of the names in this directory
    /// changed its mtime ([`MetaCache::forget_attr`]): the next ones the server gives are
    /// explained by it and do not make the listing stale.
    names_changed_by_us: bool,
}

impl Listing {
    /// A fresh listing of `names` learned at `at`.
    fn new(names: BTreeSet<String>, at: Instant, answers_absence: bool) -> Self {
        let name_bytes = names.iter().map(String::len).sum();
        Self {
            names,
            name_bytes,
            at,
            stale: false,
            answers_absence,
        }
    }

    /// Adds `name`; true if it was not there.
    fn insert(&mut self, name: &str) -> bool {
        if self.names.contains(name) {
            return false;
        }
        self.name_bytes += name.len();
        self.names.insert(name.to_owned())
    }

    /// Removes `name`; true if it was there.
    fn remove(&mut self, name: &str) -> bool {
        let removed = self.names.remove(name);
        if removed {
            self.name_bytes -= name.len();
        }
        removed
    }

    /// Estimated size of the names.
    fn bytes(&self) -> usize {
        self.names.len() * NAME_BYTES + self.name_bytes
    }
}

impl<A> Entry<A> {
    fn empty() -> Self {
        Self {
            attr: None,
            link: None,
            listing: None,
            own: 0,
            identity: 0,
            names: 0,
            names_changed_by_us: false,
        }
    }

    /// Whether the entry holds any fact (an entry may only carry stamps).
    fn has_data(&self) -> bool {
        self.attr.is_some() || self.link.is_some() || self.listing.is_some()
    }

    fn drop_data(&mut self) {
        self.attr = None;
        self.link = None;
        self.listing = None;
        self.names_changed_by_us = false;
    }

    fn newest_stamp(&self) -> u64 {
        self.own.max(self.identity).max(self.names)
    }

    fn is_present(&self) -> bool {
        matches!(
            self.attr,
            Some(Timed {
                value: Known::Present(_),
                ..
            })
        )
    }
}

/// The LRU plus its sorted key index; keeps the two in step, counts the estimated bytes held
/// and accounts evictions.
struct Store<A> {
    lru: LruCache<Arc<str>, Entry<A>>,
    index: BTreeSet<Arc<str>>,
    /// Newest own-change stamp of any entry that left the cache; absent paths inherit it.
    floor: u64,
    evictions: u64,
    /// The estimated size of every entry held ([`entry_bytes`]).
    bytes: usize,
    max_bytes: usize,
}

impl<A> Store<A> {
    fn new(max_entries: usize, max_bytes: usize) -> Self {
        let cap = NonZeroUsize::new(max_entries).unwrap_or(NonZeroUsize::MIN);
        Self {
            lru: LruCache::new(cap),
            index: BTreeSet::new(),
            floor: 0,
            evictions: 0,
            bytes: 0,
            max_bytes,
        }
    }

    fn len(&self) -> usize {
        self.lru.len()
    }

    /// Without touching recency.
    fn peek(&self, path: &str) -> Option<&Entry<A>> {
        self.lru.peek(path)
    }

    /// Runs `f` on the entry of `path` if there is one, without touching recency, and counts
    /// the bytes it adds or frees. Over the byte bound, least recently used entries go (this
    /// one too, if it is the least recently used).
    fn modify<R>(&mut self, path: &str, f: impl FnOnce(&mut Entry<A>) -> R) -> Option<R> {
        let entry = self.lru.peek_mut(path)?;
        let before = entry_bytes(path, entry);
        let out = f(entry);
        let after = entry_bytes(path, entry);
        self.bytes = self.bytes + after - before;
        self.evict_over_bytes();
        Some(out)
    }

    /// Marks the entry most recently used.
    fn get(&mut self, path: &str) -> Option<&Entry<A>> {
        self.lru.get(path)
    }

    /// Runs `f` on the entry of `path`, creating an empty one if needed (which may evict another),
    /// and marks it most recently used. A new entry starts with the floor as its stamps, as the
    /// absent path had: recreating an evicted entry must not lift its protection.
    /// Over the byte bound, least recently used entries go (the most recent one stays).
    fn update<R>(&mut self, path: &str, f: impl FnOnce(&mut Entry<A>) -> R) -> R {
        if let Some(entry) = self.lru.get_mut(path) {
            let before = entry_bytes(path, entry);
            let out = f(entry);
            let after = entry_bytes(path, entry);
            self.bytes = self.bytes + after - before;
            self.evict_over_bytes();
            return out;
        }
        let mut entry = Entry::empty();
        entry.own = self.floor;
        entry.identity = self.floor;
        entry.names = self.floor;
        let out = f(&mut entry);
        self.insert(path, entry);
        out
    }

    /// Inserts an entry for a path that has none (as the most recently used); over either
    /// bound, the least recently used entries go.
    fn insert(&mut self, path: &str, entry: Entry<A>) {
        let key: Arc<str> = Arc::from(path);
        self.bytes += entry_bytes(path, &entry);
        if let Some((old_key, old)) = self.lru.push(Arc::clone(&key), entry) {
            self.bytes -= entry_bytes(&old_key, &old);
            if *old_key != *path {
                self.index.remove(&old_key);
                self.floor = self.floor.max(old.newest_stamp());
                self.evictions += 1;
            }
        }
        self.index.insert(key);
        self.evict_over_bytes();
    }

    /// Evicts least recently used entries while the bytes held are over the bound, keeping the
    /// most recently used one.
    fn evict_over_bytes(&mut self) {
        while self.bytes > self.max_bytes && self.lru.len() > 1 {
            let Some((old_key, old)) = self.lru.pop_lru() else {
                break;
            };
            self.bytes -= entry_bytes(&old_key, &old);
            self.index.remove(&old_key);
            self.floor = self.floor.max(old.newest_stamp());
            self.evictions += 1;
        }
    }

    /// Drops the entry of `path`, remembering its stamps in the floor.
    fn remove(&mut self, path: &str) {
        if let Some(old) = self.lru.pop(path) {
            self.bytes -= entry_bytes(path, &old);
            self.floor = self.floor.max(old.newest_stamp());
        }
        self.index.remove(path);
    }

    /// Keys strictly below `path`.
    fn descendants(&self, path: &str) -> Vec<Arc<str>> {
        if path.is_empty() {
            return self
                .index
                .iter()
                .filter(|k| !k.is_empty())
                .cloned()
                .collect();
        }
        let prefix = format!("{path}/");
        self.index
            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
            .take_while(|k| k.starts_with(&prefix))
            .cloned()
            .collect()
    }

    /// Drops every entry strictly below `path`.
    fn drop_below(&mut self, path: &str) {
        for key in self.descendants(path) {
            self.remove(&key);
        }
    }

    /// Takes the entries at and below `path` out of the cache (to be reinserted elsewhere).
    fn take_subtree(&mut self, path: &str) -> Vec<(Arc<str>, Entry<A>)> {
        let mut keys = self.descendants(path);
        if self.lru.contains(path) {
            keys.push(Arc::from(path));
        }
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            self.index.remove(&key);
            if let Some(entry) = self.lru.pop(&key) {
                self.bytes -= entry_bytes(&key, &entry);
                out.push((key, entry));
            }
        }
        out
    }

    /// Names directly in `dir` for which a fact is cached at the name or anywhere below it.
    ///
    /// Walks the sorted index and jumps over each such name's subtree once the name is known, so
    /// the cost follows the number of children, not of descendants.
    fn child_names_with_data(&self, dir: &str) -> BTreeSet<String> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut names = BTreeSet::new();
        let mut cursor = Bound::Included(prefix.clone());
        loop {
            let bounds = (cursor.as_ref().map(String::as_str), Bound::Unbounded);
            let Some(key) = self.index.range::<str, _>(bounds).next() else {
                break;
            };
            let Some(rest) = key.strip_prefix(prefix.as_str()) else {
                break;
            };
            let name = rest.split('/').next().unwrap_or(rest);
            let inside = rest.len() > name.len();
            if !name.is_empty()
                && (names.contains(name) || self.peek(key).is_some_and(Entry::has_data))
            {
                names.insert(name.to_owned());
                if inside {
                    // Past every "dir/name/..." key: '0' is the character after '/'.
                    cursor = Bound::Included(format!("{prefix}{name}0"));
                    continue;
                }
            }
            cursor = Bound::Excluded(key.to_string());
        }
        names
    }

    fn clear(&mut self, floor: u64) {
        self.lru.clear();
        self.bytes = 0;
        self.index.clear();
        self.floor = self.floor.max(floor);
    }
}

/// The metadata cache of one mount. See the module documentation for the design.
///
/// Paths are relative to the mount's root as [`InodeTable`](crate::InodeTable) produces them:
/// `""` is the root, then `"a"`, `"a/b"`.
pub struct MetaCache<A> {
    config: CacheConfig,
    clock: Arc<dyn Clock>,
    store: Store<A>,
    /// Own-change generation: bumped by every own change, handed out in tickets.
    generation: u64,
    hits: u64,
    misses: u64,
}

impl<A> fmt::Debug for MetaCache<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaCache")
            .field("config", &self.config)
            .field("entries", &self.store.len())
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl<A: Clone + Revision> MetaCache<A> {
    /// An empty cache.
    pub fn new(config: CacheConfig, clock: Arc<dyn Clock>) -> Self {
        let store = Store::new(config.max_entries, config.max_bytes);
        Self {
            config,
            clock,
            store,
            generation: 0,
            hits: 0,
            misses: 0,
        }
    }

    /// The configuration the cache was built with.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// Number of paths held (at most `max_entries`).
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// The estimated bytes held (at most `max_bytes`, unless one entry alone is larger).
    pub fn bytes(&self) -> usize {
        self.store.bytes
    }

    /// Whether a listing of `names` names, `name_bytes` bytes of names in all, in the
    /// directory `dir` may be cached: within `1 / share` of both bounds, counting the names and
    /// the entries of the children whose attributes a listing answers with. A larger one is
    /// not stored ([`put_listing`](Self::put_listing) drops its names), and the filesystem
    /// need not keep it whole to store it.
    pub fn listing_fits(&self, dir: &str, names: usize, name_bytes: usize, share: usize) -> bool {
        let share = share.max(1);
        names <= self.config.max_entries / share
            && listing_bytes::<A>(dir, names, name_bytes) <= self.config.max_bytes / share
    }

    /// Whether no path is held.
    pub fn is_empty(&self) -> bool {
        self.store.len() == 0
    }

    /// Hit, miss and eviction counters, and the number of paths held.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits,
            misses: self.misses,
            entries: self.store.len(),
            evictions: self.store.evictions,
        }
    }

    /// The ticket to send with a request to the server; pass it back with the answer.
    pub fn ticket(&self) -> Ticket {
        Ticket {
            generation: self.generation,
            at: self.clock.now(),
        }
    }

    // ----- lookups -------------------------------------------------------------------------

    /// Cached attributes of `path`: fresh attributes, a fresh negative entry, or nothing.
    /// Counts a hit or a miss and marks the path recently used.
    pub fn attr(&mut self, path: &str) -> Lookup<A> {
        let now = self.clock.now();
        let answer = attr_answer(&self.config, now, self.store.get(path));
        self.count(!matches!(answer, Lookup::Unknown));
        answer
    }

    /// Like [`attr`](Self::attr) but without counting or touching recency: for re-reading what
    /// the cache holds right after a `put_*` whose answer may have been set aside.
    pub fn peek_attr(&self, path: &str) -> Lookup<A> {
        attr_answer(&self.config, self.clock.now(), self.store.peek(path))
    }

    /// What [`peek_attr`](Self::peek_attr) answers, with how much longer that answer stays
    /// fresh (zero for [`Lookup::Unknown`]): the moment it expires is the moment the cache
    /// would ask the server again. Counts nothing and does not touch recency.
    pub fn peek_attr_life(&self, path: &str) -> (Lookup<A>, Duration) {
        let now = self.clock.now();
        let entry = self.store.peek(path);
        let answer = attr_answer(&self.config, now, entry);
        let ttl = match answer {
            Lookup::Found(_) => self.config.stat_ttl,
            Lookup::Missing => self.config.negative_ttl,
            Lookup::Unknown => return (answer, Duration::ZERO),
        };
        let at = entry.and_then(|e| e.attr.as_ref()).map_or(now, |t| t.at);
        (answer, remaining(at, ttl, now))
    }

    /// The attributes last stored for `path`, fresh or expired (`None` if nothing is known or it
    /// is known to be missing). This is the baseline a revalidation compares with: the
    /// filesystem uses it to decide whether the kernel's page cache of a file may be kept.
    pub fn last_attr(&self, path: &str) -> Option<A> {
        match &self.store.peek(path)?.attr.as_ref()?.value {
            Known::Present(a) => Some(a.clone()),
            Known::Missing => None,
        }
    }

    /// The cached target of the symlink `path`, if fresh. Counts a hit or a miss.
    pub fn link(&mut self, path: &str) -> Option<String> {
        let now = self.clock.now();
        let ttl = self.config.link_ttl;
        let answer = self
            .store
            .get(path)
            .and_then(|e| e.link.as_ref())
            .filter(|l| fresh(l.at, ttl, now))
            .map(|l| l.value.clone());
        self.count(answer.is_some());
        answer
    }

    /// The cached listing of directory `dir` with each child's attributes, in name order.
    ///
    /// Answered only if directory caching is on, the listing is younger than `dir_ttl`, the
    /// directory has not changed revision since, and every child still has fresh attributes (a
    /// child evicted or expired makes the whole listing a miss). Counts a hit or a miss.
    pub fn listing(&mut self, dir: &str) -> Option<Vec<(String, A)>> {
        let answer = self.listing_answer(dir);
        self.count(answer.is_some());
        answer
    }

    /// Whether [`listing`](Self::listing) would answer for `dir` now; counts nothing, copies
    /// nothing and does not mark anything as recently used.
    pub fn listing_is_fresh(&self, dir: &str) -> bool {
        if !self.config.dir_cache {
            return false;
        }
        let now = self.clock.now();
        let Some(listing) = self.store.peek(dir).and_then(|e| e.listing.as_ref()) else {
            return false;
        };
        if listing.stale || !fresh(listing.at, self.config.dir_ttl, now) {
            return false;
        }
        // One buffer for every child's path (a `join` each took most of a warm `find`'s
        // opendir of a directory of 50 subdirectories, each checked for prefetching).
        let mut path = String::with_capacity(dir.len() + 64);
        listing.names.iter().all(|name| {
            path.clear();
            if !dir.is_empty() {
                path.push_str(dir);
                path.push('/');
            }
            path.push_str(name);
            matches!(
                attr_answer(&self.config, now, self.store.peek(&path)),
                Lookup::Found(_)
            )
        })
    }

    /// Whether a fresh listing of `dir` shows that `name` does not exist there: a lookup of a
    /// name that is not in it needs no request. Counts a hit when it answers.
    pub fn absent_from_listing(&mut self, dir: &str, name: &str) -> bool {
        if !self.config.dir_cache {
            return false;
        }
        let now = self.clock.now();
        let ttl = self.config.dir_ttl;
        let absent = self
            .store
            .get(dir)
            .and_then(|e| e.listing.as_ref())
            .is_some_and(|l| {
                l.answers_absence && !l.stale && fresh(l.at, ttl, now) && !l.names.contains(name)
            });
        if absent {
            self.count(true);
        }
        absent
    }

    /// Whether a fresh listing of `dir` is cached (its names are known, whatever the state of
    /// each child's attributes); counts nothing.
    pub fn knows_names(&self, dir: &str) -> bool {
        self.peek_listed(dir, Bound::Unbounded, Bound::Unbounded)
            .is_some()
    }

    /// The names of a fresh listing of `dir` between `from` and `to`, in byte order, each with
    /// its attributes as [`peek_attr`](Self::peek_attr) answers them; `None` without a fresh
    /// listing. Copies nothing up front, counts nothing, and does not mark anything as used.
    pub fn peek_listed<'a>(
        &'a self,
        dir: &'a str,
        from: Bound<&'a str>,
        to: Bound<&'a str>,
    ) -> Option<impl DoubleEndedIterator<Item = (&'a str, Lookup<A>)> + 'a> {
        if !self.config.dir_cache {
            return None;
        }
        let now = self.clock.now();
        let listing = self.store.peek(dir)?.listing.as_ref()?;
        if listing.stale || !fresh(listing.at, self.config.dir_ttl, now) {
            return None;
        }
        Some(listing.names.range::<str, _>((from, to)).map(move |name| {
            let attr = attr_answer(&self.config, now, self.store.peek(&join(dir, name)));
            (name.as_str(), attr)
        }))
    }

    fn listing_answer(&mut self, dir: &str) -> Option<Vec<(String, A)>> {
        let out = self
            .peek_listed(dir, Bound::Unbounded, Bound::Unbounded)?
            .map(|(name, attr)| match attr {
                Lookup::Found(attr) => Some((name.to_owned(), attr)),
                // An evicted or expired child: a miss, never a listing with a hole.
                Lookup::Missing | Lookup::Unknown => None,
            })
            .collect::<Option<Vec<_>>>()?;
        // Mark the directory and its children as recently used.
        self.store.get(dir);
        for (name, _) in &out {
            self.store.get(&join(dir, name));
        }
        Some(out)
    }

    fn count(&mut self, hit: bool) {
        if hit {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
    }

    // ----- answers from the server ---------------------------------------------------------

    /// Stores attributes the server reported for `path` (request sent at `ticket`).
    ///
    /// Returns [`Change::Modified`] if an earlier entry, even an expired one, held another
    /// revision, and [`Change::Added`] if the path was negative. Unless the revision is unchanged,
    /// the path's cached symlink target is dropped and its listing kept only as a diff baseline.
    /// The name joins its parent's cached listing. Nothing is stored if one of our own changes is
    /// newer than `ticket` (see [`peek_attr`](Self::peek_attr)).
    pub fn put_attr(&mut self, ticket: Ticket, path: &str, attr: A) -> Option<Change> {
        if self.blocked(ticket, path) {
            return None;
        }
        let now = self.clock.now();
        self.store_attr(path, attr, now)
    }

    /// Stores that `path` does not exist (request sent at `ticket`).
    ///
    /// Returns [`Change::Removed`] if the path was known to exist (cached attributes or a name in
    /// its parent's listing). Everything cached below the path is dropped and the name leaves the
    /// parent's listing.
    pub fn put_missing(&mut self, ticket: Ticket, path: &str) -> Option<Change> {
        if self.blocked(ticket, path) {
            return None;
        }
        let now = self.clock.now();
        self.store_missing(path, now)
    }

    /// Stores the target of the symlink `path` (request sent at `ticket`).
    pub fn put_link(&mut self, ticket: Ticket, path: &str, target: String) {
        if self.blocked(ticket, path) {
            return;
        }
        let at = self.clock.now();
        self.store.update(path, |e| {
            e.link = Some(Timed { value: target, at });
        });
    }

    /// Stores a listing of directory `dir` read from the server (request sent at `ticket`);
    /// `entries` are the children's names (without `.` and `..`) and attributes.
    ///
    /// Each child's attributes are stored as by [`put_attr`](Self::put_attr). The names are
    /// compared with what was known of the directory — its previous listing even if expired, and
    /// any child with something cached: a vanished name gives [`Change::Removed`] and becomes a
    /// negative entry; a name missing from a previous listing, or negative, gives
    /// [`Change::Added`] (a first listing adds nothing else). Changes come in `entries` order,
    /// then the removals in name order. With directory caching off the names are not stored, but
    /// attributes and removals are.
    ///
    /// Children changed by our own operations after `ticket` keep their cached state. If our own
    /// operations changed the set of names in `dir` after `ticket` (or a path we changed since was
    /// evicted, so its state is unknown), the names are not stored and no name is reported
    /// removed; attributes still are.
    pub fn put_listing(
        &mut self,
        ticket: Ticket,
        dir: &str,
        entries: Vec<(String, A)>,
    ) -> Vec<Change> {
        self.store_listing(ticket, dir, entries, true)
    }

    /// [`put_listing`](Self::put_listing) for a listing fetched because a name in `dir` was
    /// looked up, not because anyone listed it: its names' attributes are answered, but a name
    /// not in it is still asked for (until `dir` is listed for real), so a file created on the
    /// server is found by name at once, as it would be without the listing.
    pub fn put_listing_ahead(
        &mut self,
        ticket: Ticket,
        dir: &str,
        entries: Vec<(String, A)>,
    ) -> Vec<Change> {
        self.store_listing(ticket, dir, entries, false)
    }

    fn store_listing(
        &mut self,
        ticket: Ticket,
        dir: &str,
        entries: Vec<(String, A)>,
        answers_absence: bool,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        if self.identity_blocked(ticket, dir) {
            return changes;
        }
        let now = self.clock.now();
        let previous = self
            .store
            .peek(dir)
            .and_then(|e| e.listing.as_ref())
            .map(|l| l.names.clone());
        let mut known = previous.clone().unwrap_or_default();
        known.extend(self.store.child_names_with_data(dir));

        // A file with several names that we changed after `ticket`: the listing's (and the
        // cache's) attributes of its other names may predate the change, and SFTP v3 does not
        // say which names they are. Every other name with several links here is forgotten.
        let shared_changed = entries.iter().any(|(name, a)| {
            a.may_have_other_names() && self.own_blocked(ticket, &join(dir, name))
        });
        let mut listed = BTreeSet::new();
        let mut names = BTreeSet::new();
        for (name, attr) in entries {
            if !valid_name(&name) || !listed.insert(name.clone()) {
                continue;
            }
            let path = join(dir, &name);
            // (An answer about it stored since the listing was sent may predate our change
            // too: forgetting costs one round trip, a stale answer a wrong mode.)
            if shared_changed && attr.may_have_other_names() && !self.own_blocked(ticket, &path) {
                let stamp = self.next_generation();
                self.store.update(&path, |e| {
                    e.attr = None;
                    e.own = stamp;
                });
                changes.push(Change::Modified { path });
                names.insert(name);
                continue;
            }
            if self.own_blocked(ticket, &path) || self.answered_since(ticket, &path) {
                // Our own newer change, or a newer answer, decides; the listing does not.
                if !matches!(
                    self.store.peek(&path).and_then(|e| e.attr.as_ref()),
                    Some(Timed {
                        value: Known::Missing,
                        ..
                    })
                ) {
                    names.insert(name);
                }
                continue;
            }
            let change = self.store_attr(&path, attr, now);
            let added = match change {
                Some(Change::Added { .. }) => true,
                Some(modified) => {
                    changes.push(modified);
                    false
                }
                // `known` includes the previous listing and any child with cached facts.
                None => previous.is_some() && !known.contains(&name),
            };
            if added {
                changes.push(Change::Added {
                    parent: dir.to_owned(),
                    name: name.clone(),
                });
            }
            names.insert(name);
        }
        if self.names_blocked(ticket, dir) {
            return changes;
        }
        for name in known.difference(&listed) {
            let path = join(dir, name);
            if self.own_blocked(ticket, &path) || self.answered_since(ticket, &path) {
                if self.store.peek(&path).is_some_and(Entry::is_present) {
                    names.insert(name.clone());
                }
                continue;
            }
            if let Some(change) = self.store_missing(&path, now) {
                changes.push(change);
            }
        }
        // Storing attributes and negative entries above may have evicted a stamped entry.
        if self.config.dir_cache && !self.names_blocked(ticket, dir) {
            let listing = Listing::new(names, now, answers_absence);
            // Too large for the bounds: its children push each other out, so it could never be
            // answered; only its diff (above) is kept.
            let fits = self.listing_fits(dir, listing.names.len(), listing.name_bytes, 1);
            self.store.update(dir, |e| {
                e.listing = fits.then_some(listing);
            });
        }
        changes
    }

    // ----- our own changes -----------------------------------------------------------------

    /// Records that we created `path` (file, directory, symlink, node) with attributes `attr`:
    /// the attributes are stored, a negative entry is replaced, the name joins the parent's
    /// cached listing. Answers to requests sent before this call cannot undo it.
    pub fn created(&mut self, path: &str, attr: A) {
        let stamp = self.next_generation();
        let at = self.clock.now();
        self.store.drop_below(path);
        self.stamp_parent_names(path, stamp, Some(true));
        self.store.update(path, |e| {
            e.drop_data();
            e.attr = Some(Timed {
                value: Known::Present(attr),
                at,
            });
            e.own = stamp;
            e.identity = stamp;
        });
    }

    /// Records that we created the directory `path` with attributes `attr` (as
    /// [`created`](Self::created)): it is empty, so its listing is known to be empty (our own
    /// creates in it join it) and answers "no such file" for any other name while it is fresh,
    /// as a listing read from the server would. A tree being unpacked into the mount needs no
    /// request to learn that a name is free.
    pub fn created_dir(&mut self, path: &str, attr: A) {
        self.created(path, attr);
        if self.config.dir_cache {
            let at = self.clock.now();
            self.store.update(path, |e| {
                e.listing = Some(Listing::new(BTreeSet::new(), at, true));
            });
        }
    }

    /// Records that we removed `path` (unlink, rmdir): it becomes a negative entry, everything
    /// below it is dropped and the name leaves the parent's cached listing.
    pub fn removed(&mut self, path: &str) {
        let stamp = self.next_generation();
        let at = self.clock.now();
        self.store.drop_below(path);
        self.stamp_parent_names(path, stamp, Some(false));
        self.store.update(path, |e| {
            e.drop_data();
            e.attr = Some(Timed {
                value: Known::Missing,
                at,
            });
            e.own = stamp;
            e.identity = stamp;
        });
    }

    /// Records that we renamed `from` to `to`: everything cached at or below `from` (attributes,
    /// links, listings) moves to the same place below `to`, what was cached at or below `to`
    /// before is dropped, both parents' listings follow, and `from` becomes a negative entry.
    ///
    /// A rename of the root, or between a path and its own descendant (which the server refuses),
    /// just forgets both paths and what is below them.
    pub fn renamed(&mut self, from: &str, to: &str) {
        if from == to {
            return;
        }
        let stamp = self.next_generation();
        let at = self.clock.now();
        if from.is_empty() || to.is_empty() || is_below(to, from) || is_below(from, to) {
            for path in [from, to] {
                self.stamp_parent_names(path, stamp, None);
                self.store.drop_below(path);
                self.store.update(path, |e| {
                    e.drop_data();
                    e.own = stamp;
                    e.identity = stamp;
                });
            }
            return;
        }
        let moved = self.store.take_subtree(from);
        self.store.drop_below(to);
        self.store.remove(to);
        self.stamp_parent_names(from, stamp, Some(false));
        self.stamp_parent_names(to, stamp, Some(true));
        for (key, entry) in moved {
            let new_path = format!("{to}{}", &key[from.len()..]);
            self.store.insert(&new_path, entry);
        }
        self.store.update(to, |e| {
            if matches!(e.attr.as_ref().map(|t| &t.value), Some(Known::Missing)) {
                // The rename succeeded, so whatever said "missing" about `from` was out of date.
                e.attr = None;
            }
            e.own = stamp;
            e.identity = stamp;
        });
        self.store.update(from, |e| {
            e.attr = Some(Timed {
                value: Known::Missing,
                at,
            });
            e.own = stamp;
            e.identity = stamp;
        });
    }

    /// Records attributes of `path` after our own `setattr`, `write` or `truncate`. No
    /// [`Change`] results (the kernel knows); answers to requests sent before cannot undo it.
    pub fn set_attr(&mut self, path: &str, attr: A) {
        let stamp = self.next_generation();
        let at = self.clock.now();
        self.store.update(path, |e| {
            e.attr = Some(Timed {
                value: Known::Present(attr),
                at,
            });
            e.own = stamp;
        });
        self.add_to_parent_listing(path);
    }

    // ----- forgetting ----------------------------------------------------------------------

    /// Drops everything cached for `path` (not below it); answers to requests sent before are
    /// not stored either. The parent's listing becomes a miss until listed again.
    pub fn invalidate(&mut self, path: &str) {
        let stamp = self.next_generation();
        self.store.update(path, |e| {
            e.drop_data();
            e.own = stamp;
        });
    }

    /// Doubts what is cached of the directory `path`: the server contradicted it (`rmdir`
    /// refused as not empty while its listing said empty), or its listing could not be read
    /// whole. Its attributes and link go, as with [`invalidate`](Self::invalidate); its
    /// listing is no longer answered but kept as the baseline the next one is compared with, so
    /// every name that appeared since is reported [`Change::Added`] then. Answers to requests
    /// sent before are not stored.
    pub fn doubt(&mut self, path: &str) {
        self.doubt_listing(path);
        let stamp = self.generation;
        self.store.update(path, |e| {
            e.attr = None;
            e.link = None;
            e.names_changed_by_us = false;
            e.own = stamp;
        });
    }

    /// Doubts only the listing of `dir` (see [`doubt`](Self::doubt)); its attributes stay.
    /// Returns whether there was one.
    pub fn doubt_listing(&mut self, dir: &str) -> bool {
        let stamp = self.next_generation();
        self.store.update(dir, |e| {
            e.names = stamp;
            e.listing
                .as_mut()
                .map(|listing| listing.stale = true)
                .is_some()
        })
    }

    /// Forgets only the attributes of `path` (its listing, link and what is below stay), for a
    /// directory whose mtime and size our own create, remove or rename in it just changed on the
    /// server. Answers to requests sent before are not stored.
    pub fn forget_attr(&mut self, path: &str) {
        let stamp = self.next_generation();
        self.store.update(path, |e| {
            e.names_changed_by_us = e.attr.is_some() || e.names_changed_by_us;
            e.attr = None;
            e.own = stamp;
        });
    }

    /// Forgets the attributes of every path whose cached attributes satisfy `pred` (their
    /// listings stay); answers to requests sent before are not stored for them. For facts SFTP
    /// cannot tie to one path, like the link count shared by a hard-linked file's names.
    /// Returns the paths whose attributes went.
    pub fn forget_attrs_where(&mut self, pred: impl Fn(&A) -> bool) -> Vec<String> {
        let stamp = self.next_generation();
        let mut forgotten = Vec::new();
        for (path, e) in self.store.lru.iter_mut() {
            if let Some(Timed {
                value: Known::Present(a),
                ..
            }) = &e.attr
                && pred(a)
            {
                e.attr = None;
                e.own = stamp;
                forgotten.push(path.to_string());
            }
        }
        forgotten
    }

    /// Drops everything (a user's "flush now"); answers to requests sent before are not stored.
    /// Counters are kept.
    pub fn clear(&mut self) {
        let stamp = self.next_generation();
        self.store.clear(stamp);
    }

    // ----- internals -----------------------------------------------------------------------

    fn next_generation(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    /// Whether an own change to `path` itself or to the identity of an ancestor is newer than
    /// `ticket`.
    fn blocked(&self, ticket: Ticket, path: &str) -> bool {
        self.own_blocked(ticket, path) || self.identity_blocked(ticket, path)
    }

    fn own_blocked(&self, ticket: Ticket, path: &str) -> bool {
        let floor = self.store.floor;
        self.store
            .peek(path)
            .map_or(floor, |e| e.own.max(e.identity))
            > ticket.generation
    }

    /// Whether what is known of `path` was stored after `ticket` was taken. A listing takes
    /// several round trips (OPENDIR, READDIR pages), so an answer about one of its names can be
    /// stored in between, and be newer than the listing: a file created on the server since,
    /// found by LSTAT, must not be made "missing" by the listing that missed it.
    fn answered_since(&self, ticket: Ticket, path: &str) -> bool {
        self.store
            .peek(path)
            .and_then(|e| e.attr.as_ref())
            .is_some_and(|t| t.at > ticket.at)
    }

    /// Whether the names of `dir` in an answer sent at `ticket` may be out of date: our own newer
    /// change to them, or a stamped entry left the cache since (its state is unknown, so the
    /// names could not be completed safely).
    fn names_blocked(&self, ticket: Ticket, dir: &str) -> bool {
        let floor = self.store.floor;
        self.store.peek(dir).map_or(floor, |e| e.names.max(floor)) > ticket.generation
    }

    /// Whether `path` or an ancestor was created, removed or renamed by us after `ticket`.
    fn identity_blocked(&self, ticket: Ticket, path: &str) -> bool {
        let floor = self.store.floor;
        let mut cur = Some(path);
        while let Some(p) = cur {
            if self.store.peek(p).map_or(floor, |e| e.identity) > ticket.generation {
                return true;
            }
            cur = split(p).map(|(parent, _)| parent);
        }
        false
    }

    /// Stores attributes learned from the server and reports what changed.
    fn store_attr(&mut self, path: &str, mut attr: A, at: Instant) -> Option<Change> {
        let change = self.store.update(path, |e| {
            if let Some(Known::Present(old)) = e.attr.as_ref().map(|t| &t.value) {
                attr.keep_from(old);
            }
            let (change, same) = match e.attr.as_ref().map(|t| &t.value) {
                Some(Known::Present(old)) if old.same_revision(&attr) => (None, true),
                Some(Known::Present(_)) => (
                    Some(Change::Modified {
                        path: path.to_owned(),
                    }),
                    false,
                ),
                Some(Known::Missing) => (
                    split(path).map(|(parent, name)| Change::Added {
                        parent: parent.to_owned(),
                        name: name.to_owned(),
                    }),
                    false,
                ),
                // Forgotten for our own change of its names: the new mtime is ours.
                None if e.names_changed_by_us => (None, true),
                None => (None, false),
            };
            e.names_changed_by_us = false;
            if !same {
                // Unknown or different previous revision: whatever was derived from it may be old.
                e.link = None;
                if let Some(listing) = e.listing.as_mut() {
                    listing.stale = true;
                }
            }
            e.attr = Some(Timed {
                value: Known::Present(attr),
                at,
            });
            change
        });
        self.add_to_parent_listing(path);
        change
    }

    /// Stores a negative entry learned from the server and reports a removal if the name was
    /// known to exist.
    fn store_missing(&mut self, path: &str, at: Instant) -> Option<Change> {
        let was_present = self.store.peek(path).is_some_and(Entry::is_present);
        let was_listed = match split(path) {
            Some((parent, name)) => self
                .store
                .modify(parent, |e| {
                    e.listing.as_mut().is_some_and(|l| l.remove(name))
                })
                .unwrap_or(false),
            None => false,
        };
        self.store.drop_below(path);
        self.store.update(path, |e| {
            e.drop_data();
            e.attr = Some(Timed {
                value: Known::Missing,
                at,
            });
        });
        if !(was_present || was_listed) {
            return None;
        }
        split(path).map(|(parent, name)| Change::Removed {
            parent: parent.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Adds the name of `path` to its parent's cached listing, if there is one.
    fn add_to_parent_listing(&mut self, path: &str) {
        if let Some((parent, name)) = split(path) {
            self.store.modify(parent, |e| {
                if let Some(listing) = e.listing.as_mut() {
                    listing.insert(name);
                }
            });
        }
    }

    /// Records an own change to the names of `path`'s parent: stamps the parent (creating a
    /// stamp-only entry if needed, so older listings cannot be stored) and, if `present` says
    /// whether the name now exists, adds or removes it in the parent's cached listing.
    fn stamp_parent_names(&mut self, path: &str, stamp: u64, present: Option<bool>) {
        let Some((parent, name)) = split(path) else {
            return;
        };
        self.store.update(parent, |e| {
            e.names = stamp;
            match (e.listing.as_mut(), present) {
                (Some(listing), Some(true)) => {
                    listing.insert(name);
                }
                (Some(listing), Some(false)) => {
                    listing.remove(name);
                }
                _ => {}
            }
        });
    }
}

/// The estimated bytes a listing of `names` names (`name_bytes` in all) of `dir` takes in the
/// cache with its children's entries.
fn listing_bytes<A>(dir: &str, names: usize, name_bytes: usize) -> usize {
    let child = fixed_bytes::<A>() + NAME_BYTES + dir.len() + 1;
    names
        .saturating_mul(child)
        .saturating_add(name_bytes.saturating_mul(2))
}

/// The answer an entry gives about attributes at `now`.
fn attr_answer<A: Clone>(
    config: &CacheConfig,
    now: Instant,
    entry: Option<&Entry<A>>,
) -> Lookup<A> {
    match entry.and_then(|e| e.attr.as_ref()) {
        Some(Timed {
            value: Known::Present(attr),
            at,
        }) if fresh(*at, config.stat_ttl, now) => Lookup::Found(attr.clone()),
        Some(Timed {
            value: Known::Missing,
            at,
        }) if fresh(*at, config.negative_ttl, now) => Lookup::Missing,
        _ => Lookup::Unknown,
    }
}

/// A fact learned at `at` may be answered while it is younger than `ttl` (a zero TTL never).
fn fresh(at: Instant, ttl: Duration, now: Instant) -> bool {
    now.saturating_duration_since(at) < ttl
}

/// How much longer a fact learned at `at` stays fresh under `ttl` (zero once expired).
fn remaining(at: Instant, ttl: Duration, now: Instant) -> Duration {
    ttl.saturating_sub(now.saturating_duration_since(at))
}

/// Parent and name of `path`; `None` for the root.
fn split(path: &str) -> Option<(&str, &str)> {
    if path.is_empty() {
        return None;
    }
    Some(match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    })
}

/// The path of `name` in `dir`.
fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether `path` is strictly below `base`.
fn is_below(path: &str, base: &str) -> bool {
    if base.is_empty() {
        return !path.is_empty();
    }
    path.starts_with(base) && path.as_bytes().get(base.len()) == Some(&b'/')
}

/// A name a listing may contain.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/')
}

#[cfg(test)]
mod tests;
