//! The metadata cache through a real mount: what it saves, and that it never shows a program
//! something stale for longer than it promises.
//!
//! Request counts come from `sshfs-rs --stats MNT` (the mount's control socket). Most tests
//! mount with the kernel's own caches off (`attr_timeout=0,entry_timeout=0`), so that every
//! `stat`, lookup and readdir reaches sshfs-rs and the count measures our cache, not the
//! kernel's.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, SystemTime};

use support::{Mount, MountStats, Sshd, run_command, sshfs_rs_bin};

const CMD_TIMEOUT: Duration = Duration::from_secs(60);
/// Every kernel request reaches us.
const NO_KERNEL_CACHE: &str = "attr_timeout=0,entry_timeout=0";

/// The mount's counters: (SFTP requests in total, cache entries).
fn stats(mnt: &Path) -> (u64, u64) {
    let stats = MountStats::of(mnt);
    (stats.get("total="), stats.get("entries="))
}

fn sh(dir: &Path, script: &str) -> String {
    support::sh_in(dir, script, CMD_TIMEOUT)
}

/// `dirs` directories of `files` files each, under `root/tree`.
fn make_tree(root: &Path, dirs: usize, files: usize) {
    for d in 0..dirs {
        let dir = root.join(format!("tree/d{d:02}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..files {
            fs::write(dir.join(format!("f{f:03}")), format!("{d}/{f}\n")).unwrap();
        }
    }
}

/// Sets a file's mtime `secs` seconds into the future (a change the mount can see by mtime).
fn bump_mtime(path: &Path, secs: u64) {
    let f = fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() + Duration::from_secs(secs))
        .unwrap();
}

/// A warm `ls -lR` of a 1000-file tree costs no SFTP request at all: names, attributes and
/// listings all come from the cache. The cold one costs about one listing per directory.
#[test]
fn warm_ls_lr_sends_no_request() {
    let sshd = Sshd::start();
    make_tree(sshd.root_dir(), 20, 50);
    // Without the background re-check (tests/recheck.rs): its LSTATs of the directories just
    // listed, sent once the mount is idle for a moment, would be counted here too.
    let m = Mount::start(&sshd, &["-o", NO_KERNEL_CACHE, "-o", "recheck=0"]);
    let (before, _) = stats(m.path());
    let cold = sh(m.path(), "ls -lR tree");
    let (after_cold, _) = stats(m.path());
    assert_eq!(
        cold.lines().filter(|l| l.starts_with("-rw")).count(),
        1000,
        "every file listed"
    );
    let warm = sh(m.path(), "ls -lR tree");
    let (after_warm, _) = stats(m.path());
    assert_eq!(cold, warm, "the same listing");
    assert_eq!(
        after_warm,
        after_cold,
        "a warm ls -lR sent {} SFTP requests",
        after_warm - after_cold
    );
    // Cold: OPENDIR + READDIR pages + CLOSE per directory (some fetched ahead), a few more.
    assert!(
        after_cold - before < 200,
        "a cold ls -lR of 20 directories sent {} requests (one per file would be > 1000)",
        after_cold - before
    );
}

/// A file rewritten on the server (same size, new content, new mtime) reads new content
/// through the mount once the cache timeout passed: neither our cache nor the kernel's page
/// cache serves the old bytes.
#[test]
fn server_side_rewrite_is_seen_after_the_timeout() {
    let sshd = Sshd::start();
    let file = sshd.root_dir().join("f");
    fs::write(&file, b"old content\n").unwrap();
    let m = Mount::start(&sshd, &["-o", "cache_timeout=1"]);
    let through = m.path().join("f");
    assert_eq!(fs::read(&through).unwrap(), b"old content\n");
    assert_eq!(
        fs::read(&through).unwrap(),
        b"old content\n",
        "reread (from cache)"
    );

    fs::write(&file, b"NEW CONTENT\n").unwrap();
    bump_mtime(&file, 10);
    sleep(Duration::from_millis(2100)); // our 1 s + the kernel's 1 s
    assert_eq!(fs::read(&through).unwrap(), b"NEW CONTENT\n");
}

/// Re-reading an unchanged file transfers nothing: open revalidates (one LSTAT beside the
/// OPEN), finds it unchanged and lets the kernel keep its pages.
#[test]
fn rereading_an_unchanged_file_reads_nothing() {
    let sshd = Sshd::start();
    let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(sshd.root_dir().join("big"), &data).unwrap();
    let m = Mount::start(&sshd, &[]);
    let path = m.path().join("big");
    assert!(fs::read(&path).unwrap() == data);
    let read_requests = || -> u64 {
        let out = run_command(
            Command::new(sshfs_rs_bin()).arg("--stats").arg(m.path()),
            CMD_TIMEOUT,
        );
        let line = String::from_utf8_lossy(&out.stdout).into_owned();
        line.split([' ', ';'])
            .find_map(|w| w.strip_prefix("read="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let reads = read_requests();
    assert!(reads > 0);
    assert!(fs::read(&path).unwrap() == data);
    assert_eq!(read_requests(), reads, "the second read sent READ requests");
}

/// Names created and removed on the server appear and disappear through the mount after the
/// cache timeout; before it, the listing is served from the cache.
#[test]
fn names_added_and_removed_on_the_server_show_after_the_timeout() {
    let sshd = Sshd::start();
    let dir = sshd.root_dir().join("d");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("old"), b"x").unwrap();
    let m = Mount::start(
        &sshd,
        &["-o", &format!("cache_timeout=2,{NO_KERNEL_CACHE}")],
    );
    let list = || sh(m.path(), "ls d");
    assert_eq!(list(), "old\n");

    fs::write(dir.join("new"), b"y").unwrap();
    fs::remove_file(dir.join("old")).unwrap();
    assert_eq!(
        list(),
        "old\n",
        "within the timeout the cached listing answers"
    );
    sleep(Duration::from_millis(2200));
    assert_eq!(list(), "new\n");
    assert!(m.path().join("d/new").exists());
    assert!(!m.path().join("d/old").exists());
}

/// `sshfs-rs --flush MNT` drops every cache at once: a change on the server shows without
/// waiting for the timeout.
#[test]
fn flush_shows_server_changes_at_once() {
    let sshd = Sshd::start();
    fs::write(sshd.root_dir().join("a"), b"x").unwrap();
    let m = Mount::start(
        &sshd,
        &["-o", &format!("cache_timeout=600,{NO_KERNEL_CACHE}")],
    );
    assert_eq!(sh(m.path(), "ls"), "a\n");
    fs::write(sshd.root_dir().join("b"), b"y").unwrap();
    assert_eq!(sh(m.path(), "ls"), "a\n", "cached for 600 s");
    let out = run_command(
        Command::new(sshfs_rs_bin()).arg("--flush").arg(m.path()),
        CMD_TIMEOUT,
    );
    assert!(out.status.success(), "--flush: {out:?}");
    assert_eq!(sh(m.path(), "ls"), "a\nb\n");
}

/// When our cache learns that a file changed, the kernel is told to drop the attributes it
/// holds, even with a long kernel attribute timeout.
#[test]
fn a_change_we_learn_of_invalidates_the_kernel() {
    let sshd = Sshd::start();
    let file = sshd.root_dir().join("f");
    fs::write(&file, b"0123456789").unwrap();
    let m = Mount::start(
        &sshd,
        &["-o", "cache_timeout=1,attr_timeout=600,entry_timeout=600"],
    );
    let through = m.path().join("f");
    assert_eq!(fs::metadata(&through).unwrap().size(), 10);
    // The lookup also listed the root ahead, in the background: let that finish first, or it
    // could see the change below and (rightly) invalidate before the open.
    sleep(Duration::from_millis(500));
    fs::write(&file, b"01234567890123456789").unwrap();
    bump_mtime(&file, 10);
    sleep(Duration::from_millis(1200));
    assert_eq!(
        fs::metadata(&through).unwrap().size(),
        10,
        "the kernel's attributes are valid for 600 s"
    );
    // open() revalidates with the server, sees the change and invalidates the kernel's copy.
    drop(fs::File::open(&through).unwrap());
    assert!(
        support::wait_until(Duration::from_secs(5), || fs::metadata(&through)
            .unwrap()
            .size()
            == 20),
        "the kernel still shows the old size"
    );
    assert_eq!(fs::read(&through).unwrap(), b"01234567890123456789");
}

/// The cache holds at most `cache_max_size` paths however large the tree.
#[test]
fn cache_stays_within_its_bound() {
    let sshd = Sshd::start();
    make_tree(sshd.root_dir(), 10, 50);
    let m = Mount::start(&sshd, &["-o", "cache_max_size=100"]);
    let listed = sh(m.path(), "ls -lR tree");
    assert_eq!(listed.lines().filter(|l| l.starts_with("-rw")).count(), 500);
    let (_, entries) = stats(m.path());
    assert!(entries <= 100, "{entries} entries cached, bound 100");
    assert!(entries > 0);
}

/// Our own changes are never undone by a stale cache entry: each shows at once.
#[test]
fn own_changes_show_at_once() {
    let sshd = Sshd::start();
    let m = Mount::start(&sshd, &["-o", "cache_timeout=600"]);
    let mnt = m.path();
    assert_eq!(sh(mnt, "ls"), "");
    sh(
        mnt,
        "echo hi > a && mkdir d && ln -s a l && mv a d/b && chmod 600 d/b && echo more >> d/b",
    );
    assert_eq!(sh(mnt, "ls"), "d\nl\n");
    assert_eq!(sh(mnt, "ls d"), "b\n");
    assert_eq!(fs::read(mnt.join("d/b")).unwrap(), b"hi\nmore\n");
    assert_eq!(fs::metadata(mnt.join("d/b")).unwrap().size(), 8);
    assert_eq!(fs::metadata(mnt.join("d/b")).unwrap().mode() & 0o777, 0o600);
    assert!(!mnt.join("a").exists());
    sh(mnt, "rm d/b && rmdir d && rm l");
    assert_eq!(sh(mnt, "ls"), "");
    assert_eq!(fs::read_dir(sshd.root_dir()).unwrap().count(), 0);
}

/// Without `attr_timeout`/`entry_timeout`, the kernel keeps a file's name and attributes as
/// long as our cache would answer them: a warm `stat` of every file, well after the old fixed
/// second, does not reach the daemon for any file, and sends no SFTP request. Nor for a
/// directory's name where the kernel can be made to let it expire (Linux 6.2+); before that,
/// those names get only the second, and each costs a LOOKUP answered from the cache.
#[test]
fn warm_stats_within_our_ttl_do_not_reach_the_daemon() {
    let sshd = Sshd::start();
    make_tree(sshd.root_dir(), 4, 50);
    let m = Mount::start(&sshd, &["-o", "recheck=0"]);
    let files: Vec<_> = (0..4)
        .flat_map(|d| (0..50).map(move |f| format!("tree/d{d:02}/f{f:03}")))
        .map(|p| m.path().join(p))
        .collect();
    let stat_all = || {
        for f in &files {
            assert!(fs::metadata(f).unwrap().size() > 0);
        }
    };
    stat_all();
    sleep(Duration::from_millis(1500)); // past the old fixed second
    let asked = |s: &MountStats| s.get("hits=") + s.get("misses=");
    let before = MountStats::of(m.path());
    stat_all();
    let after = MountStats::of(m.path());
    assert_eq!(
        after.get("total="),
        before.get("total="),
        "a warm stat sent SFTP requests"
    );
    let reached = asked(&after) - asked(&before);
    // With the fixed second every one of the 200 files was looked up again (a LOOKUP, or a
    // GETATTR, or both); on an older kernel the 5 directories' names still are.
    let allowed = match support::needs::expire_only_entries() {
        Ok(()) => 0,
        Err(_) => 10,
    };
    assert!(
        reached <= allowed,
        "{reached} cache lookups for a warm stat of 200 files"
    );
}

/// A file changed on the server shows through the mount once our cache's entry for it
/// expires (`cache_timeout`), though the kernel was given that entry's remaining life: no later
/// than with the old fixed second (our timeout plus one).
#[test]
fn a_server_change_shows_when_our_entry_expires() {
    let sshd = Sshd::start();
    let file = sshd.root_dir().join("f");
    fs::write(&file, b"0123456789").unwrap();
    let m = Mount::start(&sshd, &["-o", "cache_timeout=3,recheck=0"]);
    let through = m.path().join("f");
    assert_eq!(fs::metadata(&through).unwrap().size(), 10);
    let changed = std::time::Instant::now();
    fs::write(&file, b"01234567890123456789").unwrap();
    bump_mtime(&file, 10);
    assert!(
        support::wait_until(Duration::from_secs(5), || fs::metadata(&through)
            .unwrap()
            .size()
            == 20),
        "the new size did not show within 3 s + 1 s + 1 s of margin"
    );
    eprintln!("the new size showed after {:?}", changed.elapsed());
}

/// A file being written through the mount shows its growing size at once to another `stat`,
/// though our cache and the kernel keep attributes for 600 s: the kernel drops its own after
/// each WRITE, and our cache forgets them.
#[test]
fn a_file_being_written_shows_its_size_at_once() {
    use std::io::Write;
    let sshd = Sshd::start();
    let m = Mount::start(&sshd, &["-o", "cache_timeout=600"]);
    let path = m.path().join("log");
    fs::write(&path, b"").unwrap();
    assert_eq!(fs::metadata(&path).unwrap().size(), 0);
    let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
    for n in 1..=5u64 {
        f.write_all(b"0123456789").unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().size(),
            10 * n,
            "after write {n}"
        );
    }
    f.set_len(7).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().size(), 7, "after ftruncate");
    drop(f);
    assert_eq!(fs::metadata(&path).unwrap().size(), 7, "after close");
    assert_eq!(
        fs::metadata(sshd.root_dir().join("log")).unwrap().size(),
        7,
        "on the server"
    );
}

/// The names listed in `dir` (opendir, getdents to the end, closedir), sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The SFTP requests the mount has sent, once the count stops changing for 200 ms (at most
/// 5 s): a listing's CLOSE, or one fetched ahead, may still be on its way when the program's
/// own calls have returned.
fn settled_requests(m: &Mount) -> u64 {
    let mut last = MountStats::of(m.path()).get("total=");
    for _ in 0..25 {
        sleep(Duration::from_millis(200));
        let now = MountStats::of(m.path()).get("total=");
        if now == last {
            break;
        }
        last = now;
    }
    last
}

/// The `-d` lines of READDIR and READDIRPLUS requests for `/tree/d00` so far.
fn readdirs_of_d00(m: &Mount) -> usize {
    m.stderr()
        .lines()
        .filter(|l| l.contains("] readdir") && l.contains(" /tree/d00 -> "))
        .count()
}

/// Once our cache answers a directory's listing, the kernel keeps the entries it reads
/// (`FOPEN_CACHE_DIR`) and lists the directory again from them (`FOPEN_KEEP_CACHE`): a listing
/// within our TTL sends no READDIR to the daemon and no SFTP request at all (the OPENDIR and
/// RELEASEDIR still reach the daemon, which decides).
#[test]
fn a_listing_within_our_ttl_is_listed_by_the_kernel_alone() {
    let sshd = Sshd::start();
    make_tree(sshd.root_dir(), 1, 300);
    let m = Mount::start(&sshd, &["-d", "-o", "recheck=0"]);
    let dir = m.path().join("tree/d00");
    let all: Vec<String> = (0..300).map(|f| format!("f{f:03}")).collect();
    // From the server (or from our cache, if it was fetched ahead); the kernel keeps it, and
    // our cache serves it in the server's order, so the kernel's copy serves the next ones.
    assert_eq!(names(&dir), all);
    let (reads, sftp) = (readdirs_of_d00(&m), settled_requests(&m));
    assert!(reads >= 1, "READDIRs went unlogged: {reads}");
    for _ in 0..4 {
        assert_eq!(names(&dir), all);
    }
    assert_eq!(
        readdirs_of_d00(&m),
        reads,
        "a listing within our TTL reached the daemon:\n{}",
        m.stderr()
    );
    assert_eq!(MountStats::of(m.path()).get("total="), sftp);
    let kept = m
        .stderr()
        .lines()
        .filter(|l| l.contains("] opendir /tree/d00 -> ") && l.contains("keep cache"))
        .count();
    assert_eq!(kept, 4, "{kept} opens kept the pages:\n{}", m.stderr());
}

/// A listing the kernel keeps follows what our cache learns: a file created and one removed on
/// the server show in it once our entry expires (`cache_timeout`), as without the kernel's
/// copy, even when the directory's mtime does not tell the kernel; a file created, removed or
/// renamed through the mount shows at once.
#[test]
fn a_kept_listing_shows_changes_as_our_cache_learns_them() {
    let sshd = Sshd::start();
    make_tree(sshd.root_dir(), 1, 20);
    let server = sshd.root_dir().join("tree/d00");
    let m = Mount::start(&sshd, &["-o", "cache_timeout=2,recheck=0"]);
    let dir = m.path().join("tree/d00");
    for _ in 0..3 {
        assert_eq!(names(&dir).len(), 20);
    }
    // The directory's mtime is put back: within one second (SFTP's mtime resolution) the
    // kernel could not tell either.
    let mtime = fs::metadata(&server).unwrap().modified().unwrap();
    fs::write(server.join("new"), "n\n").unwrap();
    fs::remove_file(server.join("f000")).unwrap();
    fs::File::open(&server)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let changed = std::time::Instant::now();
    let shows = |n: &[String]| n.iter().any(|n| n == "new") && !n.iter().any(|n| n == "f000");
    assert!(
        support::wait_until(Duration::from_secs(5), || shows(&names(&dir))),
        "the server's changes did not show within 2 s + 3 s of margin: {:?}",
        names(&dir)
    );
    eprintln!("the server's changes showed after {:?}", changed.elapsed());
    // Kept again, and changes through the mount show at once.
    for _ in 0..3 {
        assert!(shows(&names(&dir)));
    }
    fs::write(dir.join("made"), "m\n").unwrap();
    assert!(names(&dir).iter().any(|n| n == "made"));
    fs::remove_file(dir.join("f001")).unwrap();
    assert!(!names(&dir).iter().any(|n| n == "f001"));
    fs::rename(dir.join("made"), dir.join("renamed")).unwrap();
    let now = names(&dir);
    assert!(now.iter().any(|n| n == "renamed") && !now.iter().any(|n| n == "made"));
    assert_eq!(now.len(), 20, "{now:?}");
}

/// With `-o dir_cache=no` the kernel keeps no directory entries either: every listing reaches
/// the daemon (and the server).
#[test]
fn without_the_dir_cache_the_kernel_keeps_no_listing() {
    let sshd = Sshd::start();
    make_tree(sshd.root_dir(), 1, 30);
    let m = Mount::start(&sshd, &["-d", "-o", "dir_cache=no,recheck=0"]);
    let dir = m.path().join("tree/d00");
    for _ in 0..3 {
        assert_eq!(names(&dir).len(), 30);
    }
    let log = m.stderr();
    let opens: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("] opendir /tree/d00 -> "))
        .collect();
    assert_eq!(opens.len(), 3, "{log}");
    assert!(opens.iter().all(|l| !l.contains("cache")), "{opens:?}");
    assert!(readdirs_of_d00(&m) >= 3);
}
