//! One cached file (`Entry`): its sparse data file (`<key>.data`, block `i` at `i` MiB) and its
//! block table ([`super::table`]), for one identity of the file (size and mtime).
//!
//! A read is answered only when every block it touches is present and every chunk it touches
//! matches its checksum; a chunk that does not is dropped with its block (and fetched again by
//! the caller), never answered. Bytes fetched from the server are offered to the entry: whole
//! blocks are stored at once, pieces of a block are gathered in memory (a few blocks per file)
//! until the block is whole. The table is saved every few blocks, at most a second after a
//! change, and when the last user of the entry lets it go.
//!
//! An entry that was invalidated (the file was written through the mount, or `--flush`) is
//! dead: it answers nothing and stores nothing, even for a fetch that began before.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::table::{Table, block_len, checksums};
use super::{BLOCK, CHUNK, Shared};

/// Blocks gathered in memory per file while their pieces arrive.
const STAGED_BLOCKS: usize = 8;
/// Blocks stored before the table is saved again.
const SAVE_EVERY: u32 = 16;
/// The longest a stored block waits for the table to be saved.
const SAVE_AFTER: Duration = Duration::from_secs(1);

/// A cached file, shared by every open file of its path.
pub struct Entry {
    shared: Arc<Shared>,
    /// The key: the data file is `<stem>.data`, the table `<stem>.meta`.
    pub(super) stem: String,
    path: String,
    size: u64,
    mtime: u64,
    cached_at: u64,
    data: File,
    state: Mutex<State>,
}

/// What changes while the entry is used.
struct State {
    blocks: BTreeMap<u32, Vec<u32>>,
    /// Blocks being gathered.
    staging: Vec<Staged>,
    /// Changes since the table was last saved.
    unsaved: u32,
    last_save: Instant,
    dead: bool,
}

/// A block being gathered: its index, its bytes, the ranges received (sorted, merged).
type Staged = (u32, Vec<u8>, Vec<(u64, u64)>);

impl Entry {
    /// The entry for `table`'s identity over the data file `data`.
    pub(super) fn new(shared: Arc<Shared>, stem: String, table: Table, data: File) -> Self {
        Self {
            shared,
            stem,
            path: table.path,
            size: table.size,
            mtime: table.mtime,
            cached_at: table.cached_at,
            data,
            state: Mutex::new(State {
                blocks: table.blocks,
                staging: Vec::new(),
                unsaved: 0,
                last_save: Instant::now(),
                dead: false,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this entry is for the file with `size` and `mtime` and still usable.
    pub fn is(&self, size: u64, mtime: u64) -> bool {
        self.size == size && self.mtime == mtime && !self.state().dead
    }

    /// The file's size this entry caches.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Blocks present (for tests and the stats).
    pub fn blocks(&self) -> usize {
        self.state().blocks.len()
    }

    /// The `len` bytes at `offset` (fewer at the end of the file, none past it), if all are
    /// cached and intact; `None` otherwise (the caller fetches them). Counted as a hit or a
    /// miss.
    pub fn read(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        let got = self.read_uncounted(offset, len);
        if got.is_none() {
            self.missed();
        }
        self.count_hit(got)
    }

    /// [`Entry::read`] for a caller that asks the server itself when this answers `None`
    /// (through a fetcher that counts its own miss): only a hit is counted.
    pub fn read_cached(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        self.count_hit(self.read_uncounted(offset, len))
    }

    /// Counts a miss: a read of this file that goes to the server.
    pub fn missed(&self) {
        self.shared.stats.misses.fetch_add(1, Ordering::Relaxed);
    }

    fn count_hit(&self, got: Option<Vec<u8>>) -> Option<Vec<u8>> {
        if let Some(bytes) = &got {
            let stats = &self.shared.stats;
            stats.hits.fetch_add(1, Ordering::Relaxed);
            stats
                .bytes_hit
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        got
    }

    /// Whether every block the `len` bytes at `offset` touch is present (nothing read from the
    /// disk: whether they are intact is known only by reading them, [`Entry::read_cached`]).
    /// True past the end of the file, as [`Entry::read`] answers there.
    pub fn covers(&self, offset: u64, len: u64) -> bool {
        let st = self.state();
        if st.dead {
            return false;
        }
        if offset >= self.size || len == 0 {
            return true;
        }
        let end = offset.saturating_add(len).min(self.size);
        let (first, last) = (offset / BLOCK, (end - 1) / BLOCK);
        (first..=last).all(|b| u32::try_from(b).is_ok_and(|b| st.blocks.contains_key(&b)))
    }

    /// The bytes `[offset, offset + len)` from the disk: the chunks they touch are read in one
    /// call, each checked against its checksum in place, and the range cut out of them.
    fn read_uncounted(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        if offset >= self.size || len == 0 {
            // The end of the file as it was at open (close-to-open: what is appended on the
            // server later shows at the next open). A dead entry leaves it to the server.
            return (!self.state().dead).then(Vec::new);
        }
        let end = offset.saturating_add(len).min(self.size);
        let (first, last) = (offset / CHUNK, (end - 1) / CHUNK);
        let per_block = BLOCK / CHUNK;
        // The block and checksum of every chunk touched (chunk `c` of the file is chunk
        // `c % per_block` of block `c / per_block`; only the file's last chunk is short).
        let crcs: Vec<(u32, u32)> = {
            let st = self.state();
            if st.dead {
                return None;
            }
            (first..=last)
                .map(|c| {
                    let b = u32::try_from(c / per_block).ok()?;
                    let crc = st.blocks.get(&b)?.get((c % per_block) as usize)?;
                    Some((b, *crc))
                })
                .collect::<Option<_>>()?
        };
        let span = first * CHUNK;
        let span_end = ((last + 1) * CHUNK).min(self.size);
        let mut buf = vec![0u8; usize::try_from(span_end - span).ok()?];
        if self.data.read_exact_at(&mut buf, span).is_err() {
            // The data file is shorter than its table says: none of these blocks is there.
            let mut blocks: Vec<u32> = crcs.iter().map(|(b, _)| *b).collect();
            blocks.dedup();
            for b in blocks {
                self.drop_block(b);
            }
            return None;
        }
        for (chunk, (b, crc)) in buf.chunks(CHUNK as usize).zip(&crcs) {
            if crc32fast::hash(chunk) != *crc {
                self.drop_block(*b);
                return None;
            }
        }
        let (from, to) = ((offset - span) as usize, (end - span) as usize);
        buf.truncate(to);
        if from > 0 {
            buf.drain(..from);
        }
        Some(buf)
    }

    /// Forgets block `b`, whose bytes on disk do not match their checksum.
    fn drop_block(&self, b: u32) {
        self.shared.stats.corrupt.fetch_add(1, Ordering::Relaxed);
        let mut st = self.state();
        if st.blocks.remove(&b).is_some() {
            st.unsaved += 1;
            self.save_if_due(&mut st, true);
        }
    }

    /// Takes `data`, the file's bytes at `offset` as the server sent them: every block they
    /// complete is stored (within the cache's size limit).
    pub fn offer(&self, offset: u64, data: &[u8]) {
        let end = offset.saturating_add(data.len() as u64).min(self.size);
        if offset >= end {
            return;
        }
        let mut st = self.state();
        if st.dead {
            return;
        }
        let (Ok(first), Ok(last)) = (
            u32::try_from(offset / BLOCK),
            u32::try_from((end - 1) / BLOCK),
        ) else {
            return;
        };
        for b in first..=last {
            if st.blocks.contains_key(&b) {
                continue;
            }
            let bstart = u64::from(b) * BLOCK;
            let bend = bstart + block_len(self.size, b);
            let (s, e) = (offset.max(bstart), end.min(bend));
            let Some(piece) = data.get((s - offset) as usize..(e - offset) as usize) else {
                continue;
            };
            if s == bstart && e == bend {
                self.store(&mut st, b, piece);
                continue;
            }
            let blen = bend - bstart;
            let at = match st.staging.iter().position(|(i, _, _)| *i == b) {
                Some(at) => at,
                None => {
                    if st.staging.len() >= STAGED_BLOCKS {
                        st.staging.remove(0);
                    }
                    st.staging.push((b, vec![0; blen as usize], Vec::new()));
                    st.staging.len() - 1
                }
            };
            let whole = {
                let Some((_, buf, ranges)) = st.staging.get_mut(at) else {
                    continue;
                };
                let (rs, re) = (s - bstart, e - bstart);
                if let Some(dst) = buf.get_mut(rs as usize..re as usize) {
                    dst.copy_from_slice(piece);
                    add_range(ranges, rs, re);
                }
                ranges.first() == Some(&(0, blen))
            };
            if whole {
                let (_, buf, _) = st.staging.remove(at);
                self.store(&mut st, b, &buf);
            }
        }
    }

    /// Writes block `b` to the data file and records its checksums, if the cache has room.
    fn store(&self, st: &mut State, b: u32, bytes: &[u8]) {
        if !self.shared.make_room(bytes.len() as u64, &self.stem) {
            return;
        }
        if self.data.write_all_at(bytes, u64::from(b) * BLOCK).is_err() {
            return;
        }
        st.blocks.insert(b, checksums(bytes));
        st.unsaved += 1;
        let stats = &self.shared.stats;
        stats
            .bytes_stored
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.save_if_due(st, false);
        self.shared.account(&self.stem, self.disk_use(st));
    }

    /// Saves the table if enough changed or enough time passed (or `now`).
    fn save_if_due(&self, st: &mut State, now: bool) {
        let due = st.unsaved >= SAVE_EVERY || st.last_save.elapsed() >= SAVE_AFTER;
        if st.unsaved > 0 && (now || due) {
            self.save(st);
        }
    }

    fn save(&self, st: &mut State) {
        if st.dead {
            return;
        }
        let table = Table {
            path: self.path.clone(),
            size: self.size,
            mtime: self.mtime,
            cached_at: self.cached_at,
            blocks: st.blocks.clone(),
        };
        if table.save(&self.table_path()).is_ok() {
            st.unsaved = 0;
            st.last_save = Instant::now();
        }
    }

    /// The bytes the entry takes on disk: the data file's allocated blocks and the table.
    fn disk_use(&self, st: &State) -> u64 {
        let data = self.data.metadata().map(|m| m.blocks() * 512).unwrap_or(0);
        data + 64 + st.blocks.len() as u64 * 72 + self.path.len() as u64
    }

    fn table_path(&self) -> PathBuf {
        self.shared.dir.join(format!("{}.meta", self.stem))
    }

    /// Makes the entry dead: it answers and stores nothing from now on (its files are removed
    /// by the caller).
    pub(super) fn kill(&self) {
        let mut st = self.state();
        st.dead = true;
        st.blocks.clear();
        st.staging.clear();
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("path", &self.path)
            .field("size", &self.size)
            .field("mtime", &self.mtime)
            .finish_non_exhaustive()
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if st.dead {
            // Its usage was forgotten when it was killed.
            return;
        }
        if st.unsaved > 0 {
            self.save(&mut st);
        }
        drop(st);
        self.shared.unpin(&self.stem);
    }
}

/// Adds `[s, e)` to the sorted, merged `ranges`.
fn add_range(ranges: &mut Vec<(u64, u64)>, s: u64, e: u64) {
    ranges.push((s, e));
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for &(s, e) in ranges.iter() {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    *ranges = merged;
}
