//! Tests of the metadata cache. Time only moves through a `ManualClock`; nothing sleeps.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::clock::{Clock, ManualClock};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Attr {
    rev: u8,
    mode: u8,
}

impl Revision for Attr {
    fn same_revision(&self, other: &Self) -> bool {
        self.rev == other.rev
    }
}

fn at(rev: u8) -> Attr {
    Attr { rev, mode: 0 }
}

const SEC: Duration = Duration::from_secs(1);
const NANO: Duration = Duration::from_nanos(1);

/// Distinct TTLs so each test shows which one applies.
fn config() -> CacheConfig {
    CacheConfig {
        stat_ttl: 10 * SEC,
        dir_ttl: 15 * SEC,
        link_ttl: 20 * SEC,
        negative_ttl: 5 * SEC,
        max_entries: 1000,
        max_bytes: usize::MAX,
        dir_cache: true,
    }
}

fn cache_with(config: CacheConfig) -> (MetaCache<Attr>, ManualClock) {
    let clock = ManualClock::new();
    (MetaCache::new(config, Arc::new(clock.clone())), clock)
}

fn cache() -> (MetaCache<Attr>, ManualClock) {
    cache_with(config())
}

fn removed(parent: &str, name: &str) -> Change {
    Change::Removed {
        parent: parent.into(),
        name: name.into(),
    }
}

fn added(parent: &str, name: &str) -> Change {
    Change::Added {
        parent: parent.into(),
        name: name.into(),
    }
}

fn modified(path: &str) -> Change {
    Change::Modified { path: path.into() }
}

fn entries(list: &[(&str, u8)]) -> Vec<(String, Attr)> {
    list.iter()
        .map(|(n, r)| ((*n).to_owned(), at(*r)))
        .collect()
}

fn names(listing: Option<Vec<(String, Attr)>>) -> Option<Vec<String>> {
    listing.map(|l| l.into_iter().map(|(n, _)| n).collect())
}

#[test]
fn cache_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MetaCache<Attr>>();
}

// ----- TTLs ------------------------------------------------------------------------------

#[test]
fn attr_is_fresh_until_stat_ttl() {
    let (mut c, clock) = cache();
    let t = c.ticket();
    assert_eq!(c.put_attr(t, "f", at(1)), None);
    clock.advance(10 * SEC - NANO);
    assert_eq!(c.attr("f"), Lookup::Found(at(1)));
    clock.advance(NANO);
    assert_eq!(c.attr("f"), Lookup::Unknown);
    assert_eq!(c.attr("other"), Lookup::Unknown);
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.entries), (1, 2, 1));
}

#[test]
fn negative_entry_is_fresh_until_negative_ttl() {
    let (mut c, clock) = cache();
    let t = c.ticket();
    assert_eq!(c.put_missing(t, "gone"), None, "nothing was known to exist");
    clock.advance(5 * SEC - NANO);
    assert_eq!(c.attr("gone"), Lookup::Missing);
    clock.advance(NANO);
    assert_eq!(c.attr("gone"), Lookup::Unknown);
    assert_eq!(c.stats().hits, 1, "a negative answer is a hit");
}

#[test]
fn remaining_life_counts_down_to_the_moment_the_cache_would_ask() {
    let (mut c, clock) = cache();
    assert_eq!(c.peek_attr_life("f"), (Lookup::Unknown, Duration::ZERO));
    let t = c.ticket();
    c.put_attr(t, "f", at(1));
    assert_eq!(c.peek_attr_life("f"), (Lookup::Found(at(1)), 10 * SEC));
    clock.advance(4 * SEC);
    assert_eq!(c.peek_attr_life("f"), (Lookup::Found(at(1)), 6 * SEC));
    clock.advance(6 * SEC - NANO);
    assert_eq!(c.peek_attr_life("f"), (Lookup::Found(at(1)), NANO));
    clock.advance(NANO);
    assert_eq!(c.peek_attr_life("f"), (Lookup::Unknown, Duration::ZERO));
    // A newer answer starts a new life; asking counts nothing.
    let t = c.ticket();
    c.put_attr(t, "f", at(1));
    assert_eq!(c.peek_attr_life("f").1, 10 * SEC);
    assert_eq!(c.stats().hits + c.stats().misses, 0);
}

#[test]
fn remaining_life_of_a_negative_entry_follows_negative_ttl() {
    let (mut c, clock) = cache();
    let t = c.ticket();
    c.put_missing(t, "gone");
    clock.advance(2 * SEC);
    assert_eq!(c.peek_attr_life("gone"), (Lookup::Missing, 3 * SEC));
    clock.advance(3 * SEC);
    assert_eq!(c.peek_attr_life("gone"), (Lookup::Unknown, Duration::ZERO));
}

#[test]
fn remaining_life_after_our_own_changes() {
    let (mut c, clock) = cache();
    let t = c.ticket();
    c.put_attr(t, "f", at(1));
    clock.advance(7 * SEC);
    // Our own change: a whole new life.
    c.set_attr("f", at(2));
    assert_eq!(c.peek_attr_life("f"), (Lookup::Found(at(2)), 10 * SEC));
    c.created("new", at(3));
    assert_eq!(c.peek_attr_life("new").1, 10 * SEC);
    c.removed("new");
    assert_eq!(c.peek_attr_life("new"), (Lookup::Missing, 5 * SEC));
    // Forgotten (a write): nothing left to answer, no life.
    c.invalidate("f");
    assert_eq!(c.peek_attr_life("f"), (Lookup::Unknown, Duration::ZERO));
    // A listing's children live from the listing.
    let t = c.ticket();
    c.put_listing(t, "", entries(&[("a", 1)]));
    clock.advance(SEC);
    assert_eq!(c.peek_attr_life("a").1, 9 * SEC);
}

#[test]
fn remaining_life_is_zero_without_a_cache() {
    let (mut c, _clock) = cache_with(CacheConfig {
        stat_ttl: Duration::ZERO,
        negative_ttl: Duration::ZERO,
        ..config()
    });
    let t = c.ticket();
    c.put_attr(t, "f", at(1));
    c.put_missing(t, "g");
    assert_eq!(c.peek_attr_life("f"), (Lookup::Unknown, Duration::ZERO));
    assert_eq!(c.peek_attr_life("g"), (Lookup::Unknown, Duration::ZERO));
}

#[test]
fn link_is_fresh_until_link_ttl() {
    let (mut c, clock) = cache();
    let t = c.ticket();
    c.put_link(t, "l", "target".into());
    clock.advance(20 * SEC - NANO);
    assert_eq!(c.link("l").as_deref(), Some("target"));
    clock.advance(NANO);
    assert_eq!(c.link("l"), None);
    assert_eq!(c.link("never"), None);
}

#[test]
fn listing_is_fresh_until_dir_ttl() {
    let (mut c, clock) = cache_with(CacheConfig {
        stat_ttl: 60 * SEC,
        ..config()
    });
    let t = c.ticket();
    assert!(
        c.put_listing(t, "d", entries(&[("b", 1), ("a", 2)]))
            .is_empty()
    );
    clock.advance(15 * SEC - NANO);
    assert_eq!(
        c.listing("d"),
        Some(vec![("a".into(), at(2)), ("b".into(), at(1))]),
        "name order, with the children's attributes"
    );
    assert_eq!(
        c.attr("d/a"),
        Lookup::Found(at(2)),
        "children's attrs serve stat"
    );
    clock.advance(NANO);
    assert_eq!(c.listing("d"), None);
}

#[test]
fn listing_is_a_miss_once_a_child_attr_expires() {
    let (mut c, clock) = cache();
    let t = c.ticket();
    c.put_listing(t, "d", entries(&[("a", 1), ("b", 1)]));
    clock.advance(5 * SEC);
    let t = c.ticket();
    c.put_attr(t, "d/a", at(1)); // refreshed; "d/b" is not
    clock.advance(5 * SEC);
    assert_eq!(c.attr("d/b"), Lookup::Unknown);
    assert_eq!(
        c.listing("d"),
        None,
        "stat_ttl 10 s < dir_ttl 15 s: no answer with stale attrs"
    );
}

#[test]
fn zero_ttl_never_answers() {
    let (mut c, _clock) = cache_with(CacheConfig {
        stat_ttl: Duration::ZERO,
        negative_ttl: Duration::ZERO,
        ..config()
    });
    let t = c.ticket();
    c.put_attr(t, "f", at(1));
    c.put_missing(t, "g");
    assert_eq!(c.attr("f"), Lookup::Unknown);
    assert_eq!(c.attr("g"), Lookup::Unknown);
    // ... but the stored value is still the baseline for change detection.
    assert_eq!(c.put_attr(t, "f", at(2)), Some(modified("f")));
}

// ----- change detection ------------------------------------------------------------------

#[test]
fn put_attr_reports_revision_changes_even_after_expiry() {
    let (mut c, clock) = cache();
    let t = c.ticket();
    assert_eq!(
        c.put_attr(t, "f", at(1)),
        None,
        "first sighting is no change"
    );
    assert_eq!(
        c.put_attr(t, "f", Attr { rev: 1, mode: 7 }),
        None,
        "same revision, other mode: no content change"
    );
    assert_eq!(c.attr("f"), Lookup::Found(Attr { rev: 1, mode: 7 }));
    clock.advance(3600 * SEC);
    assert_eq!(c.put_attr(t, "f", at(2)), Some(modified("f")));
}

#[test]
fn put_attr_after_negative_reports_added() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    c.put_missing(t, "d/new");
    assert_eq!(c.put_attr(t, "d/new", at(1)), Some(added("d", "new")));
    assert_eq!(c.attr("d/new"), Lookup::Found(at(1)));
}

#[test]
fn put_missing_reports_removed_drops_subtree_and_parent_name() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    c.put_listing(t, "", entries(&[("d", 1), ("e", 1)]));
    c.put_listing(t, "d", entries(&[("f", 1)]));
    c.put_link(t, "d/f", "x".into());
    assert_eq!(c.put_missing(t, "d"), Some(removed("", "d")));
    assert_eq!(c.attr("d"), Lookup::Missing);
    assert_eq!(c.attr("d/f"), Lookup::Unknown, "subtree dropped");
    assert_eq!(c.link("d/f"), None);
    assert_eq!(c.listing("d"), None);
    assert_eq!(names(c.listing("")), Some(vec!["e".to_owned()]));
    assert_eq!(c.put_missing(t, "d"), None, "already known missing");
}

#[test]
fn put_missing_reports_removed_for_a_listed_name_whose_attr_was_evicted() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    c.put_listing(t, "d", entries(&[("f", 1)]));
    c.invalidate("d/f");
    let t = c.ticket();
    assert_eq!(c.put_missing(t, "d/f"), Some(removed("d", "f")));
}

#[test]
fn listing_diff_reports_removed_added_and_modified() {
    let (mut c, clock) = cache();
    let t = c.ticket();
    let first = c.put_listing(t, "d", entries(&[("keep", 1), ("change", 1), ("go", 1)]));
    assert!(first.is_empty(), "a first listing adds nothing: {first:?}");
    clock.advance(100 * SEC); // the old listing is long expired: still the baseline
    let t = c.ticket();
    let changes = c.put_listing(t, "d", entries(&[("new", 1), ("keep", 1), ("change", 2)]));
    assert_eq!(
        changes,
        vec![added("d", "new"), modified("d/change"), removed("d", "go")]
    );
    assert_eq!(
        c.attr("d/go"),
        Lookup::Missing,
        "a vanished name becomes negative"
    );
    assert_eq!(
        names(c.listing("d")),
        Some(vec!["change".into(), "keep".into(), "new".into()])
    );
}

#[test]
fn first_listing_reports_added_for_negative_names_and_removed_for_known_children() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    c.put_missing(t, "d/was-missing");
    c.put_attr(t, "d/looked-up", at(1));
    c.put_attr(t, "d/sub/deep", at(1)); // only something below "d/sub" is known
    let changes = c.put_listing(t, "d", entries(&[("was-missing", 1), ("other", 1)]));
    assert_eq!(
        changes,
        vec![added("d", "was-missing"), removed("d", "looked-up")]
    );
    assert_eq!(
        c.attr("d/was-missing"),
        Lookup::Found(at(1)),
        "negative replaced"
    );
    assert_eq!(c.attr("d/looked-up"), Lookup::Missing);
    assert_eq!(c.attr("d/sub"), Lookup::Missing, "not listed: gone");
    assert_eq!(
        c.attr("d/sub/deep"),
        Lookup::Unknown,
        "and its subtree with it"
    );
}

#[test]
fn listing_skips_dot_entries_slashes_and_duplicates() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    let changes = c.put_listing(
        t,
        "d",
        entries(&[(".", 1), ("..", 1), ("a/b", 1), ("", 1), ("x", 1), ("x", 2)]),
    );
    assert!(changes.is_empty());
    assert_eq!(c.listing("d"), Some(vec![("x".into(), at(1))]));
    assert_eq!(c.attr("d/."), Lookup::Unknown);
}

#[test]
fn directory_revision_change_stales_its_listing_but_keeps_the_diff_baseline() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    c.put_attr(t, "d", at(1));
    c.put_listing(t, "d", entries(&[("a", 1)]));
    assert!(c.listing("d").is_some());
    assert_eq!(c.put_attr(t, "d", at(1)), None);
    assert!(
        c.listing("d").is_some(),
        "same revision: listing still good"
    );
    assert_eq!(c.put_attr(t, "d", at(2)), Some(modified("d")));
    assert_eq!(c.listing("d"), None, "the directory changed: list again");
    let changes = c.put_listing(t, "d", entries(&[("b", 1)]));
    assert_eq!(changes, vec![added("d", "b"), removed("d", "a")]);
    assert!(c.listing("d").is_some());
}

#[test]
fn revision_change_drops_the_link_target() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    c.put_attr(t, "l", at(1));
    c.put_link(t, "l", "old".into());
    c.put_attr(t, "l", at(1));
    assert_eq!(c.link("l").as_deref(), Some("old"));
    c.put_attr(t, "l", at(2));
    assert_eq!(c.link("l"), None);
}

#[test]
fn put_attr_adds_the_name_to_a_cached_parent_listing() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    c.put_listing(t, "d", entries(&[("a", 1)]));
    c.put_attr(t, "d/b", at(1));
    assert_eq!(names(c.listing("d")), Some(vec!["a".into(), "b".into()]));
}

// ----- our own changes -------------------------------------------------------------------

#[test]
fn created_replaces_a_negative_entry_and_joins_the_listing() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    c.put_listing(t, "d", entries(&[("a", 1)]));
    c.put_missing(t, "d/new");
    assert_eq!(c.attr("d/new"), Lookup::Missing);
    c.created("d/new", at(5));
    assert_eq!(c.attr("d/new"), Lookup::Found(at(5)));
    assert_eq!(
        c.listing("d"),
        Some(vec![("a".into(), at(1)), ("new".into(), at(5))])
    );
    // The next listing from the server agrees: nothing to report.
    let t = c.ticket();
    assert!(
        c.put_listing(t, "d", entries(&[("a", 1), ("new", 5)]))
            .is_empty()
    );
}

#[test]
fn removed_drops_the_subtree_and_leaves_a_negative_entry() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    c.put_listing(t, "", entries(&[("d", 1), ("f", 1)]));
    c.put_listing(t, "d", entries(&[("x", 1)]));
    c.put_listing(t, "d/x", entries(&[("y", 1)]));
    c.removed("d");
    assert_eq!(c.attr("d"), Lookup::Missing);
    for p in ["d/x", "d/x/y"] {
        assert_eq!(c.attr(p), Lookup::Unknown, "{p}");
    }
    assert_eq!(c.listing("d"), None);
    assert_eq!(c.listing("d/x"), None);
    assert_eq!(names(c.listing("")), Some(vec!["f".into()]));
    assert_eq!(c.len(), 3, "root, \"f\" and the negative \"d\"");
}

#[test]
fn renamed_directory_moves_children_links_and_listings() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    c.put_listing(t, "", entries(&[("src", 1), ("dst", 1)]));
    c.put_listing(t, "src", entries(&[("sub", 1), ("l", 1)]));
    c.put_listing(t, "src/sub", entries(&[("f", 3)]));
    c.put_link(t, "src/l", "../x".into());
    c.put_listing(t, "dst", entries(&[("old", 1)]));
    c.put_link(t, "dst/old", "stale".into());

    c.renamed("src", "dst");

    assert_eq!(c.attr("dst/sub/f"), Lookup::Found(at(3)));
    assert_eq!(c.link("dst/l").as_deref(), Some("../x"));
    assert_eq!(
        names(c.listing("dst")),
        Some(vec!["l".into(), "sub".into()])
    );
    assert_eq!(names(c.listing("dst/sub")), Some(vec!["f".into()]));
    assert_eq!(
        c.attr("dst/old"),
        Lookup::Unknown,
        "target's old subtree dropped"
    );
    assert_eq!(c.link("dst/old"), None);
    assert_eq!(c.attr("src"), Lookup::Missing);
    for p in ["src/sub", "src/sub/f", "src/l"] {
        assert_eq!(c.attr(p), Lookup::Unknown, "{p}");
    }
    assert_eq!(c.listing("src"), None);
    assert_eq!(names(c.listing("")), Some(vec!["dst".into()]));
}

#[test]
fn renamed_across_directories_updates_both_parent_listings() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    c.put_listing(t, "a", entries(&[("f", 1), ("g", 1)]));
    c.put_listing(t, "b", entries(&[("h", 1)]));
    c.renamed("a/f", "b/f2");
    assert_eq!(names(c.listing("a")), Some(vec!["g".into()]));
    assert_eq!(names(c.listing("b")), Some(vec!["f2".into(), "h".into()]));
    assert_eq!(c.attr("b/f2"), Lookup::Found(at(1)));
    assert_eq!(c.attr("a/f"), Lookup::Missing);
}

#[test]
fn renamed_does_not_touch_sibling_paths_sharing_a_prefix() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    for p in ["a", "a/x", "a-b", "a.txt", "ab", "b/x"] {
        c.put_attr(t, p, at(1));
    }
    c.renamed("a", "b");
    for p in ["a-b", "a.txt", "ab"] {
        assert_eq!(c.attr(p), Lookup::Found(at(1)), "{p}");
    }
    assert_eq!(c.attr("b/x"), Lookup::Found(at(1)), "moved from a/x");
    assert_eq!(c.attr("a/x"), Lookup::Unknown);
}

#[test]
fn renamed_into_own_subtree_forgets_both() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    c.put_attr(t, "a", at(1));
    c.put_attr(t, "a/b", at(1));
    c.renamed("a", "a/b");
    assert_eq!(c.attr("a"), Lookup::Unknown);
    assert_eq!(c.attr("a/b"), Lookup::Unknown);
}

#[test]
fn set_attr_reports_nothing_and_is_answered() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    c.put_attr(t, "f", at(1));
    c.set_attr("f", at(2));
    assert_eq!(c.attr("f"), Lookup::Found(at(2)));
    let t = c.ticket();
    assert_eq!(c.put_attr(t, "f", at(2)), None);
}

#[test]
fn invalidate_and_clear_forget() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    c.put_listing(t, "d", entries(&[("a", 1), ("b", 1)]));
    c.put_link(t, "d/a", "t".into());
    c.invalidate("d/a");
    assert_eq!(c.attr("d/a"), Lookup::Unknown);
    assert_eq!(c.link("d/a"), None);
    assert_eq!(
        c.listing("d"),
        None,
        "a child with no attrs makes the listing a miss"
    );
    assert_eq!(c.attr("d/b"), Lookup::Found(at(1)));
    c.clear();
    assert!(c.is_empty());
    assert_eq!(c.attr("d/b"), Lookup::Unknown);
    assert!(c.stats().hits > 0, "counters survive a clear");
}

#[test]
fn dir_cache_off_stores_attrs_but_never_listings() {
    let (mut c, _clock) = cache_with(CacheConfig {
        dir_cache: false,
        ..config()
    });
    let t = c.ticket();
    assert!(
        c.put_listing(t, "d", entries(&[("a", 1), ("b", 1)]))
            .is_empty()
    );
    assert_eq!(c.listing("d"), None);
    assert_eq!(c.attr("d/a"), Lookup::Found(at(1)));
    // Children with cached attrs are still checked against the next listing.
    let t = c.ticket();
    let changes = c.put_listing(t, "d", entries(&[("a", 2)]));
    assert_eq!(changes, vec![modified("d/a"), removed("d", "b")]);
    assert_eq!(c.listing("d"), None);
    assert_eq!(c.stats().misses, 2);
}

// ----- the bound -------------------------------------------------------------------------

#[test]
fn lru_bound_is_never_exceeded_and_evictions_are_counted() {
    let (mut c, _clock) = cache_with(CacheConfig {
        max_entries: 10,
        ..config()
    });
    let t = c.ticket();
    for i in 0..100 {
        c.put_attr(t, &format!("f{i}"), at(1));
        assert!(c.len() <= 10);
    }
    assert_eq!(c.stats().evictions, 90);
    assert_eq!(c.attr("f99"), Lookup::Found(at(1)));
    assert_eq!(c.attr("f0"), Lookup::Unknown);
}

#[test]
fn zero_max_entries_means_one() {
    let (mut c, _clock) = cache_with(CacheConfig {
        max_entries: 0,
        ..config()
    });
    let t = c.ticket();
    c.put_attr(t, "a", at(1));
    c.put_attr(t, "b", at(1));
    assert_eq!(c.len(), 1);
    assert_eq!(c.attr("b"), Lookup::Found(at(1)));
}

#[test]
fn listing_is_a_miss_when_a_child_was_evicted() {
    let (mut c, _clock) = cache_with(CacheConfig {
        max_entries: 4,
        ..config()
    });
    let t = c.ticket();
    c.put_listing(t, "d", entries(&[("a", 1), ("b", 1), ("c", 1)]));
    assert_eq!(c.len(), 4);
    assert!(c.listing("d").is_some());
    c.put_attr(t, "other", at(1)); // evicts the least recently used child
    assert_eq!(c.stats().evictions, 1);
    assert_eq!(c.listing("d"), None);
}

/// The bytes counted, recomputed from what is held.
fn recount(c: &MetaCache<Attr>) -> usize {
    c.store.lru.iter().map(|(k, e)| entry_bytes(k, e)).sum()
}

/// What one entry of `path` with attributes only is counted as.
fn attr_only(path: &str) -> usize {
    fixed_bytes::<Attr>() + path.len()
}

#[test]
fn bytes_count_paths_links_and_listed_names() {
    let (mut c, _clock) = cache();
    assert_eq!(c.bytes(), 0);
    let t = c.ticket();
    c.put_attr(t, "abc", at(1));
    assert_eq!(c.bytes(), attr_only("abc"));
    c.put_link(t, "abc", "0123456789".to_owned());
    assert_eq!(c.bytes(), attr_only("abc") + 10);
    c.put_listing(t, "d", entries(&[("x", 1), ("yy", 1)]));
    let listing = 2 * NAME_BYTES + 3;
    let want =
        attr_only("abc") + 10 + attr_only("d") + listing + attr_only("d/x") + attr_only("d/yy");
    assert_eq!(c.bytes(), want);
    // Our own create adds a name to the listing, a remove takes it out again.
    c.created("d/zzz", at(1));
    assert_eq!(c.bytes(), want + NAME_BYTES + 3 + attr_only("d/zzz"));
    c.removed("d/zzz");
    assert_eq!(
        c.bytes(),
        want + attr_only("d/zzz"),
        "a negative entry stays"
    );
    assert_eq!(c.bytes(), recount(&c));
    c.renamed("d", "e");
    assert_eq!(c.bytes(), recount(&c));
    c.invalidate("e");
    assert_eq!(c.bytes(), recount(&c));
    c.clear();
    assert_eq!(c.bytes(), 0);
}

#[test]
fn over_the_byte_bound_the_least_recently_used_go() {
    // Room for three entries of one-letter paths, not four.
    let (mut c, _clock) = cache_with(CacheConfig {
        max_bytes: 3 * attr_only("a") + 1,
        ..config()
    });
    let t = c.ticket();
    for p in ["a", "b", "c"] {
        c.put_attr(t, p, at(1));
    }
    assert_eq!(c.len(), 3);
    assert_eq!(
        c.attr("a"),
        Lookup::Found(at(1)),
        "a is now the most recent"
    );
    c.put_attr(t, "d", at(1));
    assert_eq!(c.len(), 3);
    assert_eq!(c.stats().evictions, 1);
    assert_eq!(c.attr("b"), Lookup::Unknown, "the least recently used went");
    assert_eq!(c.attr("a"), Lookup::Found(at(1)));
    assert!(c.bytes() <= 3 * attr_only("a") + 1);
    // A long symlink target makes its entry larger than the bound: it alone stays.
    c.put_link(t, "a", "x".repeat(1000));
    assert_eq!(c.len(), 1);
    assert_eq!(c.link("a"), Some("x".repeat(1000)));
    assert_eq!(c.bytes(), recount(&c));
}

#[test]
fn a_listing_too_large_for_the_byte_bound_is_not_stored() {
    let names: Vec<String> = (0..100).map(|i| format!("name{i:03}")).collect();
    let listed: Vec<(String, Attr)> = names.iter().map(|n| (n.clone(), at(1))).collect();
    let bytes: usize = names.iter().map(String::len).sum();
    let need = listing_bytes::<Attr>("d", 100, bytes);
    // Within the bound: stored and answered.
    let (mut c, _clock) = cache_with(CacheConfig {
        max_bytes: need + attr_only("d") + 1000,
        ..config()
    });
    assert!(c.listing_fits("d", 100, bytes, 1));
    assert!(
        !c.listing_fits("d", 100, bytes, 4),
        "not in a quarter of it"
    );
    let t = c.ticket();
    c.put_listing(t, "d", listed.clone());
    assert_eq!(c.listing("d").map(|l| l.len()), Some(100));
    assert!(c.bytes() <= need + attr_only("d") + 1000);
    // Over it: the names are not stored; the cache stays within its bound.
    let (mut c, _clock) = cache_with(CacheConfig {
        max_bytes: need / 2,
        ..config()
    });
    assert!(!c.listing_fits("d", 100, bytes, 1));
    let t = c.ticket();
    c.put_listing(t, "d", listed);
    assert_eq!(c.listing("d"), None);
    assert!(!c.knows_names("d"));
    assert!(c.bytes() <= need / 2);
    assert_eq!(c.bytes(), recount(&c));
    // And a previous listing of it is no longer answered either.
    let (mut c, _clock) = cache_with(CacheConfig {
        max_bytes: need / 2,
        ..config()
    });
    let t = c.ticket();
    c.put_listing(t, "d", entries(&[("a", 1)]));
    assert!(c.knows_names("d"));
    let t = c.ticket();
    let mut grown = entries(&[("a", 1)]);
    grown.extend(names.iter().map(|n| (n.clone(), at(1))));
    c.put_listing(t, "d", grown);
    assert!(!c.knows_names("d"));
    assert!(!c.absent_from_listing("d", "other"));
}

#[test]
fn a_listing_with_more_names_than_entries_is_not_stored() {
    let (mut c, _clock) = cache_with(CacheConfig {
        max_entries: 3,
        ..config()
    });
    assert!(c.listing_fits("d", 3, 3, 1));
    assert!(!c.listing_fits("d", 4, 4, 1));
    let t = c.ticket();
    c.put_listing(t, "d", entries(&[("a", 1), ("b", 1), ("c", 1), ("e", 1)]));
    assert!(!c.knows_names("d"));
}

#[test]
fn recently_used_entries_survive_eviction() {
    let (mut c, _clock) = cache_with(CacheConfig {
        max_entries: 2,
        ..config()
    });
    let t = c.ticket();
    c.put_attr(t, "a", at(1));
    c.put_attr(t, "b", at(1));
    assert_eq!(c.attr("a"), Lookup::Found(at(1)));
    c.put_attr(t, "c", at(1));
    assert_eq!(c.attr("a"), Lookup::Found(at(1)));
    assert_eq!(c.attr("b"), Lookup::Unknown);
}

#[test]
fn child_name_scan_handles_names_sorting_around_the_separator() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    // '-' and '.' sort before '/', '0' after: the scan must not skip any of these.
    for p in [
        "d/x", "d/x-1", "d/x.txt", "d/x/y/z", "d/x0", "d/y/deep", "e/x",
    ] {
        c.put_attr(t, p, at(1));
    }
    c.invalidate("d/x"); // stamps only: must not count as a known child ...
    let names = c.store.child_names_with_data("d");
    let expect: BTreeSet<String> = ["x", "x-1", "x.txt", "x0", "y"].map(String::from).into();
    assert_eq!(names, expect, "... but d/x/y/z still makes x known");
    let root: BTreeSet<String> = ["d", "e"].map(String::from).into();
    assert_eq!(c.store.child_names_with_data(""), root);
}

// ----- own changes against answers of requests sent earlier ------------------------------

#[test]
fn older_stat_does_not_undo_our_write() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    c.put_attr(t, "f", at(1));
    let before_write = c.ticket(); // a stat is sent ...
    c.set_attr("f", at(2)); // ... our write completes ...
    assert_eq!(c.put_attr(before_write, "f", at(1)), None); // ... the stat answers.
    assert_eq!(c.peek_attr("f"), Lookup::Found(at(2)));
    let after = c.ticket();
    assert_eq!(
        c.put_attr(after, "f", at(3)),
        Some(modified("f")),
        "newer answers count"
    );
}

#[test]
fn older_listing_does_not_undo_our_create_or_remove() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    c.put_listing(t, "d", entries(&[("old", 1)]));
    let before = c.ticket();
    c.created("d/new", at(1));
    c.removed("d/old");
    let changes = c.put_listing(before, "d", entries(&[("old", 1), ("other", 1)]));
    assert!(!changes.contains(&removed("d", "new")), "{changes:?}");
    assert_eq!(c.attr("d/new"), Lookup::Found(at(1)));
    assert_eq!(c.attr("d/old"), Lookup::Missing);
    assert_eq!(
        names(c.listing("d")),
        Some(vec!["new".into(), "other".into()]),
        "names keep our changes; the untouched child the answer showed is added"
    );
}

#[test]
fn older_listing_without_a_cached_listing_is_not_stored() {
    let (mut c, _clock) = cache();
    let before = c.ticket();
    c.created("d/new", at(1));
    c.put_listing(before, "d", entries(&[("a", 1)]));
    assert_eq!(c.listing("d"), None, "it would hide our new file");
    assert_eq!(
        c.attr("d/a"),
        Lookup::Found(at(1)),
        "the children's attrs are fine"
    );
    let t = c.ticket();
    c.put_listing(t, "d", entries(&[("a", 1), ("new", 1)]));
    assert_eq!(names(c.listing("d")), Some(vec!["a".into(), "new".into()]));
}

#[test]
fn older_lookup_does_not_undo_create_remove_or_rename() {
    let (mut c, _clock) = cache();
    let before = c.ticket();
    c.created("n", at(1));
    c.put_attr(before, "d/f", at(1));
    c.removed("d");
    c.renamed("s", "t");
    assert_eq!(c.put_missing(before, "n"), None);
    assert_eq!(c.peek_attr("n"), Lookup::Found(at(1)));
    assert_eq!(c.put_attr(before, "d", at(1)), None);
    assert_eq!(c.put_attr(before, "d/f", at(1)), None);
    assert_eq!(c.peek_attr("d"), Lookup::Missing);
    assert_eq!(c.peek_attr("d/f"), Lookup::Unknown, "below a removed dir");
    c.put_attr(before, "s/x", at(1));
    c.put_missing(before, "t/x");
    c.put_attr(before, "s", at(1));
    assert_eq!(c.peek_attr("s/x"), Lookup::Unknown);
    assert_eq!(c.peek_attr("t/x"), Lookup::Unknown);
    assert_eq!(c.peek_attr("s"), Lookup::Missing);
}

#[test]
fn protection_survives_eviction_of_the_stamped_entry() {
    let (mut c, _clock) = cache_with(CacheConfig {
        max_entries: 2,
        ..config()
    });
    let before = c.ticket();
    c.set_attr("f", at(2));
    let t = c.ticket();
    c.put_attr(t, "x", at(1));
    c.put_attr(t, "y", at(1)); // evicts "f"
    assert_eq!(c.peek_attr("f"), Lookup::Unknown);
    c.put_attr(before, "f", at(1));
    assert_eq!(
        c.peek_attr("f"),
        Lookup::Unknown,
        "absent paths inherit the stamp"
    );
    let t = c.ticket();
    c.put_attr(t, "f", at(2));
    assert_eq!(c.peek_attr("f"), Lookup::Found(at(2)));
}

#[test]
fn protection_survives_recreating_the_evicted_entry() {
    let (mut c, _clock) = cache_with(CacheConfig {
        max_entries: 3,
        ..config()
    });
    let t = c.ticket();
    c.put_attr(t, "", at(1)); // the root stays cached: no absent ancestor to inherit from
    let before = c.ticket();
    c.set_attr("f", at(2));
    let t = c.ticket();
    c.attr("");
    c.put_attr(t, "x", at(1));
    c.put_attr(t, "y", at(1)); // evicts "f"
    c.attr("");
    c.put_link(t, "f", "target".into()); // a new entry for "f" (evicts "x")
    assert_eq!(c.peek_attr(""), Lookup::Found(at(1)));
    c.put_attr(before, "f", at(1));
    assert_eq!(
        c.peek_attr("f"),
        Lookup::Unknown,
        "the new entry inherits the stamp"
    );
}

#[test]
fn clear_and_invalidate_refuse_answers_sent_before() {
    let (mut c, _clock) = cache();
    let before = c.ticket();
    c.invalidate("f");
    c.put_attr(before, "f", at(1));
    assert_eq!(c.peek_attr("f"), Lookup::Unknown);
    c.clear();
    let after_invalidate = before;
    c.put_attr(after_invalidate, "g", at(1));
    assert_eq!(c.peek_attr("g"), Lookup::Unknown);
    let t = c.ticket();
    c.put_attr(t, "g", at(1));
    assert_eq!(c.peek_attr("g"), Lookup::Found(at(1)));
}

// ----- reference model -------------------------------------------------------------------

/// An unbounded, obviously-correct restatement of the documented semantics (no LRU, no
/// index, no tickets: the property tests send every answer with a current ticket).
struct Model {
    config: CacheConfig,
    clock: ManualClock,
    map: HashMap<String, MEntry>,
    hits: u64,
    misses: u64,
}

#[derive(Default, Clone)]
struct MEntry {
    attr: Option<(Option<Attr>, Instant)>, // Some(None) = negative
    link: Option<(String, Instant)>,
    listing: Option<(BTreeSet<String>, Instant, bool)>,
}

fn parent_name(path: &str) -> Option<(String, String)> {
    split(path).map(|(p, n)| (p.to_owned(), n.to_owned()))
}

fn at_or_below(path: &str, base: &str) -> bool {
    path == base || is_below(path, base)
}

impl Model {
    fn new(config: CacheConfig, clock: ManualClock) -> Self {
        Self {
            config,
            clock,
            map: HashMap::new(),
            hits: 0,
            misses: 0,
        }
    }

    fn fresh(&self, at: Instant, ttl: Duration) -> bool {
        self.clock.now().saturating_duration_since(at) < ttl
    }

    fn peek_attr(&self, path: &str) -> Lookup<Attr> {
        match self.map.get(path).and_then(|e| e.attr.clone()) {
            Some((Some(a), t)) if self.fresh(t, self.config.stat_ttl) => Lookup::Found(a),
            Some((None, t)) if self.fresh(t, self.config.negative_ttl) => Lookup::Missing,
            _ => Lookup::Unknown,
        }
    }

    fn count(&mut self, hit: bool) {
        if hit {
            self.hits += 1
        } else {
            self.misses += 1
        }
    }

    fn attr(&mut self, path: &str) -> Lookup<Attr> {
        let a = self.peek_attr(path);
        self.count(a != Lookup::Unknown);
        a
    }

    fn link(&mut self, path: &str) -> Option<String> {
        let l = match self.map.get(path).and_then(|e| e.link.clone()) {
            Some((l, t)) if self.fresh(t, self.config.link_ttl) => Some(l),
            _ => None,
        };
        self.count(l.is_some());
        l
    }

    fn listing(&mut self, dir: &str) -> Option<Vec<(String, Attr)>> {
        let l = self.listing_answer(dir);
        self.count(l.is_some());
        l
    }

    fn listing_answer(&self, dir: &str) -> Option<Vec<(String, Attr)>> {
        if !self.config.dir_cache {
            return None;
        }
        let (names, t, stale) = self.map.get(dir)?.listing.clone()?;
        if stale || !self.fresh(t, self.config.dir_ttl) {
            return None;
        }
        names
            .into_iter()
            .map(|n| match self.peek_attr(&join(dir, &n)) {
                Lookup::Found(a) => Some((n, a)),
                _ => None,
            })
            .collect()
    }

    fn parent_listing(&mut self, path: &str, present: bool) -> bool {
        let Some((p, n)) = parent_name(path) else {
            return false;
        };
        match self.map.get_mut(&p).and_then(|e| e.listing.as_mut()) {
            Some((names, _, _)) if present => names.insert(n),
            Some((names, _, _)) => names.remove(&n),
            None => false,
        }
    }

    fn drop_where(&mut self, f: impl Fn(&str) -> bool) {
        self.map.retain(|k, _| !f(k));
    }

    fn put_attr(&mut self, path: &str, a: Attr) -> Option<Change> {
        let now = self.clock.now();
        let e = self.map.entry(path.to_owned()).or_default();
        let (change, same) = match &e.attr {
            Some((Some(old), _)) if old.rev == a.rev => (None, true),
            Some((Some(_), _)) => (Some(modified(path)), false),
            Some((None, _)) => (parent_name(path).map(|(p, n)| added(&p, &n)), false),
            None => (None, false),
        };
        if !same {
            e.link = None;
            if let Some(l) = e.listing.as_mut() {
                l.2 = true;
            }
        }
        e.attr = Some((Some(a), now));
        self.parent_listing(path, true);
        change
    }

    fn put_missing(&mut self, path: &str) -> Option<Change> {
        let now = self.clock.now();
        let was_present = matches!(
            self.map.get(path).and_then(|e| e.attr.clone()),
            Some((Some(_), _))
        );
        let was_listed = self.parent_listing(path, false);
        self.drop_where(|k| is_below(k, path));
        self.map.insert(
            path.to_owned(),
            MEntry {
                attr: Some((None, now)),
                ..MEntry::default()
            },
        );
        if was_present || was_listed {
            parent_name(path).map(|(p, n)| removed(&p, &n))
        } else {
            None
        }
    }

    fn put_link(&mut self, path: &str, target: String) {
        let now = self.clock.now();
        self.map.entry(path.to_owned()).or_default().link = Some((target, now));
    }

    fn put_listing(&mut self, dir: &str, list: Vec<(String, Attr)>) -> Vec<Change> {
        let now = self.clock.now();
        let previous = self
            .map
            .get(dir)
            .and_then(|e| e.listing.clone())
            .map(|l| l.0);
        let mut known = previous.clone().unwrap_or_default();
        for (k, e) in &self.map {
            let has_data = e.attr.is_some() || e.link.is_some() || e.listing.is_some();
            if has_data && is_below(k, dir) {
                let rest = if dir.is_empty() {
                    k.as_str()
                } else {
                    &k[dir.len() + 1..]
                };
                known.insert(rest.split('/').next().unwrap_or(rest).to_owned());
            }
        }
        let mut changes = Vec::new();
        let mut listed = BTreeSet::new();
        for (n, a) in list {
            if !valid_name(&n) || !listed.insert(n.clone()) {
                continue;
            }
            match self.put_attr(&join(dir, &n), a) {
                Some(c) => changes.push(c),
                None if previous.is_some() && !known.contains(&n) => changes.push(added(dir, &n)),
                None => {}
            }
        }
        for n in known.difference(&listed) {
            if let Some(c) = self.put_missing(&join(dir, n)) {
                changes.push(c);
            }
        }
        if self.config.dir_cache {
            self.map.entry(dir.to_owned()).or_default().listing = Some((listed, now, false));
        }
        changes
    }

    fn created(&mut self, path: &str, a: Attr) {
        let now = self.clock.now();
        self.drop_where(|k| is_below(k, path));
        self.parent_listing(path, true);
        self.map.insert(
            path.to_owned(),
            MEntry {
                attr: Some((Some(a), now)),
                ..MEntry::default()
            },
        );
    }

    fn removed(&mut self, path: &str) {
        let now = self.clock.now();
        self.drop_where(|k| is_below(k, path));
        self.parent_listing(path, false);
        self.map.insert(
            path.to_owned(),
            MEntry {
                attr: Some((None, now)),
                ..MEntry::default()
            },
        );
    }

    fn renamed(&mut self, from: &str, to: &str) {
        if from == to {
            return;
        }
        if from.is_empty() || to.is_empty() || is_below(to, from) || is_below(from, to) {
            self.drop_where(|k| at_or_below(k, from) || at_or_below(k, to));
            return;
        }
        let moved: Vec<(String, MEntry)> = self
            .map
            .iter()
            .filter(|(k, _)| at_or_below(k, from))
            .map(|(k, e)| (format!("{to}{}", &k[from.len()..]), e.clone()))
            .collect();
        self.drop_where(|k| at_or_below(k, from) || at_or_below(k, to));
        self.parent_listing(from, false);
        self.parent_listing(to, true);
        self.map.extend(moved);
        if let Some(e) = self.map.get_mut(to)
            && matches!(e.attr, Some((None, _)))
        {
            e.attr = None;
        }
        let now = self.clock.now();
        self.map.insert(
            from.to_owned(),
            MEntry {
                attr: Some((None, now)),
                ..MEntry::default()
            },
        );
    }

    fn set_attr(&mut self, path: &str, a: Attr) {
        let now = self.clock.now();
        self.map.entry(path.to_owned()).or_default().attr = Some((Some(a), now));
        self.parent_listing(path, true);
    }
}

/// Paths of the property tests: nested, and with names that sort around '/'.
const PATHS: [&str; 9] = ["", "a", "b", "a/x", "a/y", "a/x-1", "a/x/z", "b/x", "b/x/z"];
const DIRS: [&str; 4] = ["", "a", "b", "a/x"];
const NAMES: [&str; 6] = ["a", "b", "x", "y", "x-1", "z"];

#[derive(Debug, Clone)]
enum Op {
    Attr(usize),
    Link(usize),
    Listing(usize),
    PutAttr(usize, u8, u8),
    PutMissing(usize),
    PutLink(usize, u8),
    PutListing(usize, Vec<(usize, u8)>),
    Created(usize, u8),
    Removed(usize),
    Renamed(usize, usize),
    SetAttr(usize, u8, u8),
    Invalidate(usize),
    Clear,
    Advance(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0..PATHS.len();
    let d = 0..DIRS.len();
    prop_oneof![
        3 => p.clone().prop_map(Op::Attr),
        1 => p.clone().prop_map(Op::Link),
        2 => d.clone().prop_map(Op::Listing),
        3 => (p.clone(), 0..3u8, 0..2u8).prop_map(|(p, r, m)| Op::PutAttr(p, r, m)),
        2 => p.clone().prop_map(Op::PutMissing),
        1 => (p.clone(), 0..2u8).prop_map(|(p, t)| Op::PutLink(p, t)),
        3 => (d, prop::collection::vec((0..NAMES.len(), 0..3u8), 0..5))
            .prop_map(|(d, l)| Op::PutListing(d, l)),
        1 => (p.clone(), 0..3u8).prop_map(|(p, r)| Op::Created(p, r)),
        1 => p.clone().prop_map(Op::Removed),
        1 => (p.clone(), p.clone()).prop_map(|(a, b)| Op::Renamed(a, b)),
        1 => (p.clone(), 0..3u8, 0..2u8).prop_map(|(p, r, m)| Op::SetAttr(p, r, m)),
        1 => p.prop_map(Op::Invalidate),
        1 => Just(Op::Clear),
        2 => (0..25u8).prop_map(Op::Advance),
    ]
}

fn config_strategy() -> impl Strategy<Value = CacheConfig> {
    let ttl = prop_oneof![Just(0u64), Just(5), Just(10), Just(20)];
    (ttl.clone(), ttl.clone(), ttl.clone(), ttl, any::<bool>()).prop_map(
        |(stat, dir, link, negative, dir_cache)| CacheConfig {
            stat_ttl: Duration::from_secs(stat),
            dir_ttl: Duration::from_secs(dir),
            link_ttl: Duration::from_secs(link),
            negative_ttl: Duration::from_secs(negative),
            max_entries: 10_000,
            max_bytes: usize::MAX,
            dir_cache,
        },
    )
}

/// What one operation answered, for comparing the cache with the model.
#[derive(Debug, PartialEq)]
enum Out {
    None,
    Attr(Lookup<Attr>),
    Link(Option<String>),
    Listing(Option<Vec<(String, Attr)>>),
    Changes(Vec<Change>),
}

fn listing_entries(l: &[(usize, u8)]) -> Vec<(String, Attr)> {
    l.iter()
        .map(|(n, r)| (NAMES[*n].to_owned(), at(*r)))
        .collect()
}

fn apply_cache(c: &mut MetaCache<Attr>, clock: &ManualClock, op: &Op) -> Out {
    let t = c.ticket();
    match op {
        Op::Attr(p) => Out::Attr(c.attr(PATHS[*p])),
        Op::Link(p) => Out::Link(c.link(PATHS[*p])),
        Op::Listing(d) => Out::Listing(c.listing(DIRS[*d])),
        Op::PutAttr(p, r, m) => Out::Changes(
            c.put_attr(t, PATHS[*p], Attr { rev: *r, mode: *m })
                .into_iter()
                .collect(),
        ),
        Op::PutMissing(p) => Out::Changes(c.put_missing(t, PATHS[*p]).into_iter().collect()),
        Op::PutLink(p, x) => {
            c.put_link(t, PATHS[*p], format!("t{x}"));
            Out::None
        }
        Op::PutListing(d, l) => Out::Changes(c.put_listing(t, DIRS[*d], listing_entries(l))),
        Op::Created(p, r) => {
            c.created(PATHS[*p], at(*r));
            Out::None
        }
        Op::Removed(p) => {
            c.removed(PATHS[*p]);
            Out::None
        }
        Op::Renamed(a, b) => {
            c.renamed(PATHS[*a], PATHS[*b]);
            Out::None
        }
        Op::SetAttr(p, r, m) => {
            c.set_attr(PATHS[*p], Attr { rev: *r, mode: *m });
            Out::None
        }
        Op::Invalidate(p) => {
            c.invalidate(PATHS[*p]);
            Out::None
        }
        Op::Clear => {
            c.clear();
            Out::None
        }
        Op::Advance(s) => {
            clock.advance(Duration::from_secs(u64::from(*s)));
            Out::None
        }
    }
}

fn apply_model(m: &mut Model, op: &Op) -> Out {
    match op {
        Op::Attr(p) => Out::Attr(m.attr(PATHS[*p])),
        Op::Link(p) => Out::Link(m.link(PATHS[*p])),
        Op::Listing(d) => Out::Listing(m.listing(DIRS[*d])),
        Op::PutAttr(p, r, mo) => Out::Changes(
            m.put_attr(PATHS[*p], Attr { rev: *r, mode: *mo })
                .into_iter()
                .collect(),
        ),
        Op::PutMissing(p) => Out::Changes(m.put_missing(PATHS[*p]).into_iter().collect()),
        Op::PutLink(p, x) => {
            m.put_link(PATHS[*p], format!("t{x}"));
            Out::None
        }
        Op::PutListing(d, l) => Out::Changes(m.put_listing(DIRS[*d], listing_entries(l))),
        Op::Created(p, r) => {
            m.created(PATHS[*p], at(*r));
            Out::None
        }
        Op::Removed(p) => {
            m.removed(PATHS[*p]);
            Out::None
        }
        Op::Renamed(a, b) => {
            m.renamed(PATHS[*a], PATHS[*b]);
            Out::None
        }
        Op::SetAttr(p, r, mo) => {
            m.set_attr(PATHS[*p], Attr { rev: *r, mode: *mo });
            Out::None
        }
        Op::Invalidate(p) => {
            m.map.remove(PATHS[*p]);
            Out::None
        }
        Op::Clear => {
            m.map.clear();
            Out::None
        }
        Op::Advance(_) => Out::None, // the clock is shared
    }
}

/// True if the cache's answer is either "don't know" or exactly the model's.
fn informative_subset(cache: &Out, model: &Out) -> bool {
    match (cache, model) {
        (Out::Attr(Lookup::Unknown), Out::Attr(_)) => true,
        (Out::Link(None), Out::Link(_)) => true,
        (Out::Listing(None), Out::Listing(_)) => true,
        (Out::Changes(_), Out::Changes(_)) => true, // evictions may hide changes
        (c, m) => c == m,
    }
}

proptest! {

    /// Without evictions the cache answers exactly like the reference model, operation by
    /// operation, changes included, and every path reads the same after each step.
    #[test]
    fn unbounded_cache_matches_the_model(config in config_strategy(), ops in prop::collection::vec(op(), 1..60)) {
        let clock = ManualClock::new();
        let mut c = MetaCache::new(config.clone(), Arc::new(clock.clone()));
        let mut m = Model::new(config, clock.clone());
        for (i, op) in ops.iter().enumerate() {
            let got = apply_cache(&mut c, &clock, op);
            let want = apply_model(&mut m, op);
            prop_assert_eq!(&got, &want, "step {} {:?}", i, op);
            check_listings_agree_with_children(&c)?;
            for p in PATHS {
                prop_assert_eq!(c.peek_attr(p), m.peek_attr(p), "step {} {:?} path {:?}", i, op, p);
            }
        }
        prop_assert_eq!((c.stats().hits, c.stats().misses), (m.hits, m.misses));
    }

    /// With a tiny bound the cache never holds more than `max_entries` paths, and whatever it
    /// does answer is what the unbounded model answers: evictions lose facts, never invent them.
    #[test]
    fn bounded_cache_stays_within_bound_and_only_forgets(
        config in config_strategy(),
        max in 1usize..7,
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let clock = ManualClock::new();
        let mut c = MetaCache::new(CacheConfig { max_entries: max, ..config.clone() }, Arc::new(clock.clone()));
        let mut m = Model::new(config, clock.clone());
        for (i, op) in ops.iter().enumerate() {
            let got = apply_cache(&mut c, &clock, op);
            let want = apply_model(&mut m, op);
            prop_assert!(c.len() <= max, "step {}: {} entries", i, c.len());
            prop_assert_eq!(c.bytes(), recount(&c), "step {}: bytes out of step", i);
            prop_assert_eq!(c.store.index.len(), c.len(), "index out of step");
            check_listings_agree_with_children(&c)?;
            prop_assert!(informative_subset(&got, &want), "step {} {:?}: cache {:?} model {:?}", i, op, got, want);
            for p in PATHS {
                let cached = c.peek_attr(p);
                prop_assert!(cached == Lookup::Unknown || cached == m.peek_attr(p), "step {} path {:?}", i, p);
            }
        }
    }

    /// With a tiny byte bound the cache never holds more than it (unless one entry alone is
    /// larger), counts exactly what it holds, and whatever it answers is what the unbounded
    /// model answers.
    #[test]
    fn byte_bounded_cache_stays_within_bound_and_only_forgets(
        config in config_strategy(),
        entries in 1usize..7,
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let clock = ManualClock::new();
        let max_bytes = entries * (fixed_bytes::<Attr>() + 8);
        let mut c = MetaCache::new(CacheConfig { max_bytes, ..config.clone() }, Arc::new(clock.clone()));
        let mut m = Model::new(config, clock.clone());
        for (i, op) in ops.iter().enumerate() {
            let got = apply_cache(&mut c, &clock, op);
            let want = apply_model(&mut m, op);
            prop_assert_eq!(c.bytes(), recount(&c), "step {} {:?}: bytes out of step", i, op);
            prop_assert!(c.bytes() <= max_bytes || c.len() == 1, "step {}: {} bytes", i, c.bytes());
            prop_assert_eq!(c.store.index.len(), c.len(), "index out of step");
            check_listings_agree_with_children(&c)?;
            prop_assert!(informative_subset(&got, &want), "step {} {:?}: cache {:?} model {:?}", i, op, got, want);
            for p in PATHS {
                let cached = c.peek_attr(p);
                prop_assert!(cached == Lookup::Unknown || cached == m.peek_attr(p), "step {} path {:?}", i, p);
            }
        }
    }

    /// Answers to requests sent before one of our own changes never undo it: the changed path
    /// (and anything below a created, removed or renamed one) reads the same afterwards or is
    /// forgotten, and so does its membership in its parent's stored listing (`invalidate`
    /// claims nothing about existence, so only its attributes are protected).
    #[test]
    fn stale_answers_never_undo_own_changes(
        max in prop_oneof![Just(3usize), Just(10_000)],
        steps in prop::collection::vec((op(), 0usize..4), 1..80),
    ) {
        let clock = ManualClock::new();
        let mut c: MetaCache<Attr> =
            MetaCache::new(CacheConfig { max_entries: max, ..config() }, Arc::new(clock.clone()));
        let mut tickets = vec![c.ticket()];
        let mut touched: HashMap<&str, (Ticket, Scope)> = HashMap::new();
        for (op, age) in steps {
            let own = |c: &MetaCache<Attr>| Ticket {
                generation: c.generation,
                at: clock.now(),
            };
            match op {
                Op::Created(p, _) | Op::Removed(p) => {
                    apply_cache(&mut c, &clock, &op);
                    touched.insert(PATHS[p], (own(&c), Scope::Subtree));
                }
                Op::Renamed(a, b) => {
                    apply_cache(&mut c, &clock, &op);
                    if a != b {
                        touched.insert(PATHS[a], (own(&c), Scope::Subtree));
                        touched.insert(PATHS[b], (own(&c), Scope::Subtree));
                    }
                }
                Op::SetAttr(p, ..) => {
                    apply_cache(&mut c, &clock, &op);
                    touched.insert(PATHS[p], (own(&c), Scope::Exists));
                }
                Op::Invalidate(p) => {
                    apply_cache(&mut c, &clock, &op);
                    touched.insert(PATHS[p], (own(&c), Scope::Attr));
                }
                Op::PutAttr(..) | Op::PutMissing(_) | Op::PutListing(..) | Op::PutLink(..) => {
                    // Answer with a ticket taken some steps ago.
                    let t = tickets[tickets.len().saturating_sub(1 + age)];
                    let protected: Vec<(&str, bool)> = PATHS
                        .iter()
                        .copied()
                        .filter_map(|p| {
                            let mut hit = None;
                            for (q, (g, scope)) in &touched {
                                if *g <= t {
                                    continue;
                                }
                                if p == *q {
                                    hit = Some(hit.unwrap_or(false) || *scope != Scope::Attr);
                                } else if *scope == Scope::Subtree && is_below(p, q) {
                                    hit = Some(true);
                                }
                            }
                            hit.map(|membership| (p, membership))
                        })
                        .collect();
                    let snapshot = |c: &MetaCache<Attr>| -> Vec<(Lookup<Attr>, Option<bool>)> {
                        protected
                            .iter()
                            .map(|(p, _)| (c.peek_attr(p), stored_membership(c, p)))
                            .collect()
                    };
                    let before = snapshot(&c);
                    match &op {
                        Op::PutAttr(p, r, m) => {
                            c.put_attr(t, PATHS[*p], Attr { rev: *r, mode: *m });
                        }
                        Op::PutMissing(p) => {
                            c.put_missing(t, PATHS[*p]);
                        }
                        Op::PutLink(p, x) => c.put_link(t, PATHS[*p], format!("t{x}")),
                        Op::PutListing(d, l) => {
                            c.put_listing(t, DIRS[*d], listing_entries(l));
                        }
                        _ => {}
                    }
                    let after = snapshot(&c);
                    for (((p, membership), b), a) in protected.iter().zip(&before).zip(&after) {
                        prop_assert!(a.0 == Lookup::Unknown || a.0 == b.0,
                            "{:?} {:?}: attr {:?} -> {:?}", op, p, b.0, a.0);
                        if *membership && b.1.is_some() {
                            prop_assert!(a.1.is_none() || a.1 == b.1,
                                "{:?} {:?}: listed {:?} -> {:?}", op, p, b.1, a.1);
                        }
                    }
                }
                Op::Advance(_) => {} // keep time still: only answers may change what is read
                _ => {
                    apply_cache(&mut c, &clock, &op);
                }
            }
            check_listings_agree_with_children(&c)?;
            tickets.push(c.ticket());
        }
    }
}

/// What an own change claims about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// `invalidate`: only that older attributes are not to be stored.
    Attr,
    /// `set_attr`: the path exists.
    Exists,
    /// `created`, `removed`, `renamed`: the path's existence and everything below it.
    Subtree,
}

/// Whether `path`'s name is in its parent's stored listing (fresh or not), if there is one.
fn stored_membership(c: &MetaCache<Attr>, path: &str) -> Option<bool> {
    let (parent, name) = split(path)?;
    let listing = c.store.peek(parent)?.listing.as_ref()?;
    Some(listing.names.contains(name))
}

/// Invariant: a stored listing names exactly the children whose cached state is "present"
/// (children with no cached attributes may go either way).
fn check_listings_agree_with_children(c: &MetaCache<Attr>) -> Result<(), TestCaseError> {
    for (key, entry) in c.store.lru.iter() {
        let Some(attr) = &entry.attr else { continue };
        let present = matches!(attr.value, Known::Present(_));
        if let Some(member) = stored_membership(c, key) {
            prop_assert_eq!(
                member,
                present,
                "listing and attrs disagree about {:?}",
                key
            );
        }
    }
    Ok(())
}

#[test]
fn a_directory_we_made_is_known_empty() {
    let (mut c, clock) = cache();
    c.created_dir("new", at(1));
    assert!(c.absent_from_listing("new", "a"), "nothing in it yet");
    assert_eq!(c.listing("new"), Some(vec![]));
    c.created("new/a", at(2));
    assert!(
        !c.absent_from_listing("new", "a"),
        "our own create joins it"
    );
    assert!(c.absent_from_listing("new", "b"));
    assert_eq!(c.listing("new"), Some(vec![("a".to_owned(), at(2))]));
    c.removed("new/a");
    assert!(c.absent_from_listing("new", "a"));
    clock.advance(16 * SEC);
    assert!(
        !c.absent_from_listing("new", "b"),
        "it expires like a listing from the server"
    );
    let (mut off, _) = cache_with(CacheConfig {
        dir_cache: false,
        ..config()
    });
    off.created_dir("new", at(1));
    assert!(
        !off.absent_from_listing("new", "a"),
        "dir_cache=no: no listing"
    );
}

#[test]
fn the_new_mtime_of_our_own_change_keeps_the_listing() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    c.put_attr(t, "d", at(1));
    c.put_listing(t, "d", vec![("a".into(), at(1))]);
    c.created("d/b", at(2));
    c.forget_attr("d");
    let t = c.ticket();
    c.put_attr(t, "d", at(3));
    assert!(
        c.absent_from_listing("d", "zzz"),
        "the mtime our create gave the directory does not make its listing stale"
    );
    let t = c.ticket();
    c.put_attr(t, "d", at(4));
    assert!(
        !c.absent_from_listing("d", "zzz"),
        "a change that is not ours does"
    );
}

/// A directory we made is known empty until the server's listing of it comes: then every name
/// the server put in it meanwhile is reported added (the kernel may hold a negative entry for
/// it from our "known empty" answers).
#[test]
fn the_server_s_names_in_a_directory_we_made_are_reported_added() {
    let (mut c, _clock) = cache();
    c.created_dir("new", at(1));
    c.created("new/ours", at(2));
    let t = c.ticket();
    let changes = c.put_listing(t, "new", entries(&[("ours", 2), ("x", 3), ("y", 3)]));
    assert_eq!(changes, vec![added("new", "x"), added("new", "y")]);
    assert_eq!(
        names(c.listing("new")),
        Some(vec!["ours".to_owned(), "x".to_owned(), "y".to_owned()])
    );
    assert!(!c.absent_from_listing("new", "x"));
}

/// `doubt`: the server contradicted the listing (rmdir said "not empty" while it was empty, or
/// the listing was too large to read whole). It is no longer answered, nor the directory's
/// attributes, but it stays the baseline: the next listing reports what appeared. A listing
/// asked for before the doubt is not stored.
#[test]
fn a_doubted_listing_is_not_answered_but_is_the_baseline() {
    let (mut c, _clock) = cache();
    c.created_dir("d", at(1));
    assert!(c.absent_from_listing("d", "x"));
    let before = c.ticket();
    c.doubt("d");
    assert!(
        !c.absent_from_listing("d", "x"),
        "no longer answers absence"
    );
    assert_eq!(c.listing("d"), None);
    assert!(!c.knows_names("d"));
    assert_eq!(c.attr("d"), Lookup::Unknown, "the attributes go too");
    assert_eq!(
        c.put_listing(before, "d", vec![]),
        vec![],
        "an older listing is not stored"
    );
    assert_eq!(c.listing("d"), None);
    let t = c.ticket();
    assert_eq!(
        c.put_listing(t, "d", entries(&[("x", 1)])),
        vec![added("d", "x")]
    );
    assert_eq!(names(c.listing("d")), Some(vec!["x".to_owned()]));
    c.doubt("never-listed");
    assert_eq!(c.listing("never-listed"), None);

    // Only the listing: the attributes stay.
    c.put_attr(c.ticket(), "e", at(1));
    c.created_dir("e/sub", at(1));
    assert!(c.doubt_listing("e/sub"));
    assert!(!c.knows_names("e/sub"));
    assert_eq!(c.attr("e/sub"), Lookup::Found(at(1)));
    assert!(!c.doubt_listing("e"), "e was never listed");
}

#[test]
fn a_fresh_listing_answers_absent_names() {
    let (mut c, clock) = cache();
    let t = c.ticket();
    c.put_listing(t, "d", vec![("a".into(), at(1))]);
    assert!(c.absent_from_listing("d", "b"));
    assert!(!c.absent_from_listing("d", "a"));
    assert!(
        !c.absent_from_listing("other", "b"),
        "no listing, no answer"
    );
    c.created("d/b", at(2));
    assert!(
        !c.absent_from_listing("d", "b"),
        "our own create joins the listing"
    );
    clock.advance(16 * SEC);
    assert!(
        !c.absent_from_listing("d", "zzz"),
        "an expired listing answers nothing"
    );
}

#[test]
fn last_attr_outlives_the_ttl() {
    let (mut c, clock) = cache();
    let t = c.ticket();
    c.put_attr(t, "f", at(3));
    clock.advance(60 * SEC);
    assert_eq!(c.peek_attr("f"), Lookup::Unknown);
    assert_eq!(c.last_attr("f"), Some(at(3)));
    c.invalidate("f");
    assert_eq!(c.last_attr("f"), None);
}

#[test]
fn listing_is_fresh_agrees_with_listing() {
    let (mut c, clock) = cache();
    assert!(!c.listing_is_fresh("d"));
    let t = c.ticket();
    c.put_listing(t, "d", vec![("a".into(), at(1)), ("b".into(), at(1))]);
    assert!(c.listing_is_fresh("d"));
    assert!(c.listing("d").is_some());
    c.invalidate("d/a");
    assert!(!c.listing_is_fresh("d"), "a child without attributes");
    assert!(c.listing("d").is_none());
    let t = c.ticket();
    c.put_listing(t, "d", vec![("a".into(), at(1))]);
    clock.advance(16 * SEC);
    assert!(!c.listing_is_fresh("d"), "expired");
}

#[test]
fn forget_attr_keeps_the_listing() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    c.put_attr(t, "d", at(1));
    c.put_listing(t, "d", vec![("a".into(), at(1))]);
    c.forget_attr("d");
    assert_eq!(c.attr("d"), Lookup::Unknown);
    assert!(c.listing("d").is_some(), "the names are still right");
    c.put_attr(t, "d", at(1));
    assert_eq!(
        c.attr("d"),
        Lookup::Unknown,
        "an answer older than the change is not stored"
    );
}

#[test]
fn forget_attrs_where_picks_by_value() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    c.put_attr(t, "a", at(1));
    c.put_attr(t, "b", at(2));
    c.forget_attrs_where(|a| a.rev == 2);
    assert_eq!(c.attr("a"), Lookup::Found(at(1)));
    assert_eq!(c.attr("b"), Lookup::Unknown);
}

#[test]
fn a_listing_fetched_for_a_lookup_answers_its_names_only() {
    let (mut c, _clock) = cache();
    let t = c.ticket();
    c.put_listing_ahead(t, "d", vec![("a".into(), at(1))]);
    assert!(
        matches!(c.attr("d/a"), Lookup::Found(_)),
        "a listed name is answered"
    );
    assert!(
        !c.absent_from_listing("d", "b"),
        "a name not in it must still be asked for"
    );
    let t = c.ticket();
    c.put_listing(t, "d", vec![("a".into(), at(1))]);
    assert!(
        c.absent_from_listing("d", "b"),
        "a real listing answers absence"
    );
}

#[test]
fn a_listing_does_not_undo_a_newer_answer_about_one_name() {
    let (mut c, clock) = cache();
    let t = c.ticket();
    c.put_listing(t, "d", vec![("a".into(), at(1))]);
    // A listing is asked for; meanwhile "b" is created on the server and found by LSTAT.
    let listing_asked = c.ticket();
    clock.advance(SEC / 10);
    let lstat = c.ticket();
    c.put_attr(lstat, "d/b", at(2));
    // The listing was read before "b" existed.
    c.put_listing(listing_asked, "d", vec![("a".into(), at(1))]);
    assert!(
        matches!(c.attr("d/b"), Lookup::Found(_)),
        "the newer LSTAT stands"
    );
    assert!(!c.absent_from_listing("d", "b"));
}

/// Attributes with a link count, for the hard-link rules.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Linked {
    rev: u8,
    links: u32,
}

impl Revision for Linked {
    fn same_revision(&self, other: &Self) -> bool {
        self.rev == other.rev
    }

    fn may_have_other_names(&self) -> bool {
        self.links > 1
    }
}

#[test]
fn a_listing_across_our_change_to_a_linked_file_forgets_the_other_linked_names() {
    let clock = ManualClock::new();
    let mut c: MetaCache<Linked> = MetaCache::new(config(), Arc::new(clock.clone()));
    let linked = |rev| Linked { rev, links: 2 };
    let single = Linked { rev: 1, links: 1 };
    let t = c.ticket();
    // Answered after the listing was sent, but before our change: as stale as the listing.
    let lstat = c.ticket();
    c.put_attr(lstat, "d/b", linked(1));
    // Our chmod of d/a, not yet known to have other names.
    c.set_attr("d/a", linked(2));
    let changes = c.put_listing(
        t,
        "d",
        vec![
            ("a".into(), linked(1)),
            ("b".into(), linked(1)),
            ("c".into(), single.clone()),
        ],
    );
    assert!(changes.contains(&modified("d/b")), "{changes:?}");
    assert_eq!(
        c.attr("d/b"),
        Lookup::Unknown,
        "d/b may be d/a: asked again"
    );
    assert_eq!(
        c.attr("d/a"),
        Lookup::Found(linked(2)),
        "our own change stays"
    );
    assert_eq!(c.attr("d/c"), Lookup::Found(single), "one link: not d/a");
}

#[test]
fn a_listing_with_no_change_of_ours_keeps_linked_names() {
    let clock = ManualClock::new();
    let mut c: MetaCache<Linked> = MetaCache::new(config(), Arc::new(clock.clone()));
    let linked = Linked { rev: 1, links: 2 };
    let t = c.ticket();
    let changes = c.put_listing(
        t,
        "d",
        vec![("a".into(), linked.clone()), ("b".into(), linked.clone())],
    );
    assert!(!changes.contains(&modified("d/b")), "{changes:?}");
    assert_eq!(c.attr("d/b"), Lookup::Found(linked));
}
