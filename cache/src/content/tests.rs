//! Tests of the content cache on a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::{FileExt, PermissionsExt};

use super::*;

const NOW: u64 = 1_700_000_000;
const OLD: u64 = NOW - 3600;

fn scope() -> Scope {
    Scope {
        server: "SHA256:abc".into(),
        user: "me".into(),
        root: "/home/me".into(),
    }
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn open(base: &Path, limit: u64) -> ContentCache {
    let c = ContentCache::open(base, &scope(), limit).unwrap();
    c.wait_scanned();
    c
}

#[test]
fn a_block_put_is_read_back_and_a_missing_one_is_a_miss() {
    let tmp = tempfile::tempdir().unwrap();
    let c = open(tmp.path(), DEFAULT_LIMIT);
    let file = bytes(3 * BLOCK as usize + 1000, 7);
    let e = c.entry("a/f", file.len() as u64, OLD, NOW).unwrap();
    assert!(e.read(0, 4096).is_none(), "nothing cached yet");
    e.offer(0, &file[..BLOCK as usize]);
    assert_eq!(e.read(100, 5000).unwrap(), file[100..5100]);
    assert!(e.read(BLOCK - 10, 20).is_none(), "block 1 missing");
    // Pieces of block 1 out of order, then the short last block.
    e.offer(
        BLOCK + 300_000,
        &file[BLOCK as usize + 300_000..2 * BLOCK as usize],
    );
    e.offer(BLOCK, &file[BLOCK as usize..BLOCK as usize + 300_000]);
    e.offer(3 * BLOCK, &file[3 * BLOCK as usize..]);
    assert_eq!(
        e.read(BLOCK - 10, 20).unwrap(),
        file[BLOCK as usize - 10..][..20]
    );
    assert_eq!(e.read(3 * BLOCK, 4096).unwrap(), file[3 * BLOCK as usize..]);
    assert_eq!(
        e.read(file.len() as u64, 4096).unwrap(),
        b"",
        "the end of the file"
    );
    assert_eq!(e.blocks(), 3);
    let s = c.stats();
    assert_eq!((s.hits, s.misses), (4, 2));
    assert!(s.used >= 2 * BLOCK, "{s:?}");
}

#[test]
fn a_crash_leaves_entries_that_answer_right_or_not_at_all() {
    let tmp = tempfile::tempdir().unwrap();
    let file = bytes(2 * BLOCK as usize, 1);
    {
        let c = open(tmp.path(), DEFAULT_LIMIT);
        let saved = c.entry("saved", BLOCK * 40, OLD, NOW).unwrap();
        for b in 0..20 {
            saved.offer(b * BLOCK, &file[..BLOCK as usize]);
        }
        let unsaved = c.entry("unsaved", file.len() as u64, OLD, NOW).unwrap();
        unsaved.offer(0, &file);
        // A crash: the entries are never dropped (no table saved at the end); the lock goes
        // with the process.
        std::mem::forget(saved);
        std::mem::forget(unsaved);
    }
    let c = open(tmp.path(), DEFAULT_LIMIT);
    assert!(
        c.stats().used >= 2 * BLOCK,
        "leftovers are counted: {:?}",
        c.stats()
    );
    let unsaved = c.entry("unsaved", file.len() as u64, OLD, NOW).unwrap();
    assert!(
        unsaved.read(0, 10).is_none(),
        "no table was saved: nothing served"
    );
    let saved = c.entry("saved", BLOCK * 40, OLD, NOW).unwrap();
    assert!(
        saved.blocks() >= 16,
        "saved every 16 blocks: {}",
        saved.blocks()
    );
    assert_eq!(saved.read(BLOCK, 100).unwrap(), file[..100]);
    assert!(saved.read(30 * BLOCK, 100).is_none(), "never stored");
}

#[test]
fn an_entry_is_kept_across_mounts_and_dropped_when_the_file_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let file = bytes(BLOCK as usize + 10, 2);
    {
        let c = open(tmp.path(), DEFAULT_LIMIT);
        let e = c.entry("f", file.len() as u64, OLD, NOW).unwrap();
        e.offer(0, &file);
    }
    let c = open(tmp.path(), DEFAULT_LIMIT);
    assert!(
        c.stats().used > BLOCK,
        "earlier mounts' entries are counted"
    );
    let e = c.entry("f", file.len() as u64, OLD, NOW + 10).unwrap();
    assert_eq!(e.read(0, file.len() as u64).unwrap(), file);
    drop(e);
    // Same size, another mtime: a miss, and the old bytes are gone.
    let e = c.entry("f", file.len() as u64, OLD + 1, NOW + 10).unwrap();
    assert!(e.read(0, 10).is_none());
    drop(e);
    // Another size.
    let e = c.entry("f", 5, OLD + 1, NOW + 10).unwrap();
    assert!(e.read(0, 5).is_none());
}

#[test]
fn a_file_modified_within_two_seconds_is_not_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let c = open(tmp.path(), DEFAULT_LIMIT);
    assert!(c.entry("f", 10, NOW - 1, NOW).is_none());
    assert!(c.entry("f", 10, NOW + 5, NOW).is_none(), "a future mtime");
    assert!(c.entry("f", 0, OLD, NOW).is_none(), "empty");
    assert!(c.entry("f", 10, NOW - RECENT, NOW).is_some());
}

#[test]
fn a_torn_block_is_detected_dropped_and_stored_again() {
    let tmp = tempfile::tempdir().unwrap();
    let file = bytes(2 * BLOCK as usize, 3);
    let c = open(tmp.path(), DEFAULT_LIMIT);
    let e = c.entry("f", file.len() as u64, OLD, NOW).unwrap();
    e.offer(0, &file);
    // Flip a byte of block 1 on disk.
    let data = std::fs::OpenOptions::new()
        .write(true)
        .open(c.dir().join(format!("{}.data", e.stem)))
        .unwrap();
    data.write_all_at(&[!file[BLOCK as usize + 70_000]], BLOCK + 70_000)
        .unwrap();
    assert_eq!(e.read(0, 100).unwrap(), file[..100], "block 0 is intact");
    assert_eq!(
        e.read(BLOCK, 1000).unwrap(),
        file[BLOCK as usize..][..1000],
        "chunk 0 of block 1 is intact"
    );
    assert!(e.read(BLOCK + 65_536, 10_000).is_none(), "the torn chunk");
    assert_eq!(c.stats().corrupt, 1);
    assert!(e.read(BLOCK, 10).is_none(), "its whole block was dropped");
    e.offer(BLOCK, &file[BLOCK as usize..]);
    assert_eq!(
        e.read(BLOCK + 65_536, 10_000).unwrap(),
        file[BLOCK as usize + 65_536..][..10_000]
    );
}

#[test]
fn a_torn_table_is_no_table() {
    let tmp = tempfile::tempdir().unwrap();
    let file = bytes(BLOCK as usize, 4);
    let stem;
    {
        let c = open(tmp.path(), DEFAULT_LIMIT);
        let e = c.entry("f", file.len() as u64, OLD, NOW).unwrap();
        e.offer(0, &file);
        stem = e.stem.clone();
    }
    let dir = tmp.path().join("v1").join(scope().key());
    let meta = dir.join(format!("{stem}.meta"));
    let whole = std::fs::read(&meta).unwrap();
    assert!(table::Table::decode(&whole).is_some());
    std::fs::write(&meta, &whole[..whole.len() - 3]).unwrap();
    let c = open(tmp.path(), DEFAULT_LIMIT);
    let e = c.entry("f", file.len() as u64, OLD, NOW).unwrap();
    assert!(e.read(0, 10).is_none(), "a torn table caches nothing");
}

#[test]
fn eviction_keeps_disk_use_under_the_limit_and_spares_open_files() {
    let tmp = tempfile::tempdir().unwrap();
    let limit = 4 * BLOCK + BLOCK / 2;
    let c = open(tmp.path(), limit);
    let file = bytes(2 * BLOCK as usize, 5);
    for name in ["a", "b", "c"] {
        let e = c.entry(name, file.len() as u64, OLD, NOW).unwrap();
        e.offer(0, &file);
        assert!(c.stats().used <= limit, "{:?}", c.stats());
    }
    assert!(c.stats().evictions >= 1);
    let a = c.entry("a", file.len() as u64, OLD, NOW).unwrap();
    assert!(a.read(0, 10).is_none(), "a, the least recently used, went");
    let c_entry = c.entry("c", file.len() as u64, OLD, NOW).unwrap();
    assert_eq!(c_entry.read(0, 10).unwrap(), file[..10]);
    // With `a` and `c` open, nothing can go: `a`'s blocks are refused past the limit.
    a.offer(0, &file);
    assert!(c.stats().used <= limit, "{:?}", c.stats());
}

#[test]
fn forget_and_clear_drop_entries_even_open_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let c = open(tmp.path(), DEFAULT_LIMIT);
    let file = bytes(BLOCK as usize, 6);
    let e = c.entry("d/f", file.len() as u64, OLD, NOW).unwrap();
    e.offer(0, &file);
    c.forget("d/f");
    assert!(e.read(0, 10).is_none(), "dead");
    e.offer(0, &file);
    assert_eq!(e.blocks(), 0, "a dead entry stores nothing");
    let e = c.entry("d/g", file.len() as u64, OLD, NOW).unwrap();
    e.offer(0, &file);
    c.forget_under("d");
    assert!(e.read(0, 10).is_none());
    let e = c.entry("h", file.len() as u64, OLD, NOW).unwrap();
    e.offer(0, &file);
    c.clear();
    assert!(e.read(0, 10).is_none());
    let left: Vec<_> = std::fs::read_dir(c.dir())
        .unwrap()
        .flatten()
        .map(|i| i.file_name())
        .filter(|n| n != "lock")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(c.stats().used, 0);
}

#[test]
fn directories_are_private_and_others_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("cache");
    let c = open(&base, DEFAULT_LIMIT);
    for d in [base.clone(), base.join("v1"), c.dir().to_path_buf()] {
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", d.display());
    }
    drop(c);
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o770)).unwrap();
    let e = ContentCache::open(&base, &scope(), DEFAULT_LIMIT)
        .err()
        .unwrap();
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&base, &link).unwrap();
    assert!(
        ContentCache::open(&link, &scope(), DEFAULT_LIMIT).is_err(),
        "a symlink"
    );
}

#[test]
fn a_second_mount_of_the_same_scope_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let _c = open(tmp.path(), DEFAULT_LIMIT);
    let e = ContentCache::open(tmp.path(), &scope(), DEFAULT_LIMIT)
        .err()
        .unwrap();
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e}");
    let other = Scope {
        root: "/other".into(),
        ..scope()
    };
    assert!(ContentCache::open(tmp.path(), &other, DEFAULT_LIMIT).is_ok());
}

/// `covers` says from memory whether every block of a range is present; `read_cached` answers
/// like `read` but counts only hits (its caller counts the miss when it asks the server).
#[test]
fn covers_and_read_cached_count_only_hits() {
    let tmp = tempfile::tempdir().unwrap();
    let c = open(tmp.path(), DEFAULT_LIMIT);
    let file = bytes(2 * BLOCK as usize + 5000, 9);
    let e = c.entry("g", file.len() as u64, OLD, NOW).unwrap();
    assert!(!e.covers(0, 10));
    assert!(e.read_cached(0, 10).is_none());
    assert_eq!(c.stats().misses, 0, "read_cached counts no miss");
    e.offer(0, &file[..BLOCK as usize]);
    e.offer(2 * BLOCK, &file[2 * BLOCK as usize..]);
    assert!(e.covers(0, BLOCK));
    assert!(!e.covers(BLOCK - 1, 2), "block 1 missing");
    assert!(
        e.covers(2 * BLOCK, 1 << 20),
        "the short last block, to the end"
    );
    assert!(
        e.covers(file.len() as u64, 4096),
        "past the end: the end of file"
    );
    // Unaligned ranges over several chunks, and one to the end of the file.
    assert_eq!(e.read_cached(100, 200_000).unwrap(), file[100..200_100]);
    assert_eq!(
        e.read_cached(2 * BLOCK + 1000, 1 << 20).unwrap(),
        file[2 * BLOCK as usize + 1000..]
    );
    assert_eq!(e.read_cached(file.len() as u64, 10).unwrap(), b"");
    e.missed();
    let s = c.stats();
    assert_eq!((s.hits, s.misses), (3, 1), "{s:?}");
    assert_eq!(s.bytes_hit, 200_000 + 4000);
    // A torn chunk: not served, and its block no longer covered.
    let data = std::fs::OpenOptions::new()
        .write(true)
        .open(c.dir().join(format!("{}.data", e.stem)))
        .unwrap();
    data.write_all_at(&[!file[300_000]], 300_000).unwrap();
    assert!(e.covers(0, 10), "a damaged block is known only once read");
    assert!(e.read_cached(0, BLOCK).is_none());
    assert!(!e.covers(0, 10));
    assert_eq!(c.stats().corrupt, 1);
    // A data file cut short: the blocks it lost are dropped, never answered.
    e.offer(0, &file[..BLOCK as usize]);
    data.set_len(BLOCK + 10).unwrap();
    assert!(e.read_cached(2 * BLOCK, 100).is_none());
    assert!(!e.covers(2 * BLOCK, 100));
    assert!(e.covers(0, 100), "block 0 is still there");
    // A dead entry covers nothing.
    c.forget("g");
    assert!(!e.covers(0, 10));
    assert!(e.read_cached(file.len() as u64, 10).is_none());
}
