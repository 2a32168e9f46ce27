//! The background re-check (`-o recheck`, client/src/fs/ahead/recheck.rs) through a real mount, with
//! our cache long (`cache_timeout=600`): a file created, rewritten or removed on the server in a
//! directory a program listed shows within 3 s; a directory nobody used is not polled; with
//! `recheck=0` nothing is.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use support::{Mount, MountStats, Sshd};

const CMD_TIMEOUT: Duration = Duration::from_secs(60);
const LONG_CACHE: &str = "cache_timeout=600";

fn sh(dir: &Path, script: &str) -> String {
    support::sh_in(dir, script, CMD_TIMEOUT)
}

/// (SFTP requests in total, recheck dirs, recheck lstat, recheck relisted).
fn counts(mnt: &Path) -> (u64, u64, u64, u64) {
    let s = MountStats::of(mnt);
    let line = format!("{s:?}");
    let recheck = line
        .split_once("recheck:")
        .map(|(_, r)| r.to_owned())
        .unwrap_or_else(|| panic!("no recheck in {line}"));
    let num = |key: &str| -> u64 {
        recheck
            .split([' ', ';', '\n', '"', '\\', ')'])
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {recheck}"))
    };
    (
        s.get("total="),
        num("dirs="),
        num("lstat="),
        num("relisted="),
    )
}

/// Polls `ok` every 50 ms for at most `within`; the time it took.
fn seen_within(within: Duration, mut ok: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if ok() {
            return Some(start.elapsed());
        }
        sleep(Duration::from_millis(50));
    }
    ok().then(|| start.elapsed())
}

/// A file created, rewritten, then removed on the server in a directory a program listed shows
/// through the mount (a new listing, by name, its size) within 3 s each, though our cache would
/// keep the old answers for 600 s.
#[test]
fn server_changes_in_a_listed_directory_show_within_3s() {
    let sshd = Sshd::start();
    let dir = sshd.root_dir().join("d");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("a"), "a\n").unwrap();
    let m = Mount::start(&sshd, &["-o", LONG_CACHE]);
    let d = m.path().join("d");
    assert_eq!(sh(m.path(), "ls d"), "a\n");

    fs::write(dir.join("b"), "b\n").unwrap();
    let created = seen_within(Duration::from_secs(3), || {
        sh(m.path(), "ls d") == "a\nb\n" && d.join("b").exists()
    })
    .expect("a file created on the server shows within 3 s");

    fs::write(dir.join("b"), "longer content\n").unwrap();
    let rewritten = seen_within(Duration::from_secs(3), || {
        fs::metadata(d.join("b")).is_ok_and(|m| m.len() == 15)
    })
    .expect("a file rewritten on the server shows its new size within 3 s");
    assert_eq!(fs::read(d.join("b")).unwrap(), b"longer content\n");

    fs::remove_file(dir.join("a")).unwrap();
    let removed = seen_within(Duration::from_secs(3), || {
        fs::symlink_metadata(d.join("a")).is_err_and(|e| e.kind() == ErrorKind::NotFound)
            && sh(m.path(), "ls d") == "b\n"
    })
    .expect("a file removed on the server is ENOENT within 3 s");
    let (_, dirs, lstat, relisted) = counts(m.path());
    eprintln!(
        "created seen after {created:?}, rewritten after {rewritten:?}, removed after {removed:?}; recheck dirs={dirs} lstat={lstat} relisted={relisted}"
    );
    assert!(dirs >= 1 && lstat >= 1 && relisted >= 1);
}

/// Only the directory a program listed is re-checked (one LSTAT per interval while nothing
/// changes), the tracked set stays within 64, and an idle mount sends at most 10 LSTATs a
/// second.
#[test]
fn a_directory_nobody_used_is_not_polled() {
    let sshd = Sshd::start();
    for i in 0..80 {
        fs::create_dir_all(sshd.root_dir().join(format!("tree/d{i:02}"))).unwrap();
    }
    let m = Mount::start(&sshd, &["-o", LONG_CACHE]);
    assert_eq!(sh(m.path(), "ls tree/d00"), "");
    // Past the first two checks (each lists again once, see ahead/recheck.rs).
    sleep(Duration::from_secs(6));
    let (total0, dirs, lstat0, relisted0) = counts(m.path());
    assert_eq!(dirs, 1, "only tree/d00 is tracked");
    let window = Duration::from_secs(5);
    sleep(window);
    let (total1, _, lstat1, relisted1) = counts(m.path());
    let sent = total1 - total0;
    eprintln!(
        "idle with one directory tracked: {sent} requests in {window:?} ({} lstat, {} relisted)",
        lstat1 - lstat0,
        relisted1 - relisted0
    );
    assert_eq!(relisted1, relisted0, "nothing changed: no listing");
    assert_eq!(sent, lstat1 - lstat0, "only the re-check's LSTATs");
    assert!(
        (2..=3).contains(&sent),
        "one LSTAT every 2 s of one directory, not of the 80 others: {sent}"
    );

    // A walk opens all 81: at most 64 stay tracked, at most 10 LSTATs a second.
    sh(m.path(), "ls -R tree >/dev/null");
    let (_, _, lstat2, _) = counts(m.path());
    let start = Instant::now();
    sleep(Duration::from_secs(4));
    let (_, dirs, lstat3, _) = counts(m.path());
    let per_sec = (lstat3 - lstat2) as f64 / start.elapsed().as_secs_f64();
    eprintln!("after a walk: {dirs} tracked, {per_sec:.1} LSTAT/s");
    assert!(dirs <= 64, "{dirs} directories tracked");
    assert!(per_sec <= 10.5, "{per_sec} LSTAT/s");
}

/// With `recheck=0` nothing is re-checked: the cache answers for its 600 s.
#[test]
fn recheck_zero_checks_nothing() {
    let sshd = Sshd::start();
    let dir = sshd.root_dir().join("d");
    fs::create_dir(&dir).unwrap();
    let m = Mount::start(&sshd, &["-o", LONG_CACHE, "-o", "recheck=0"]);
    assert_eq!(sh(m.path(), "ls d"), "");
    let (total0, ..) = counts(m.path());
    fs::write(dir.join("b"), "b\n").unwrap();
    sleep(Duration::from_secs(4));
    let (total1, dirs, lstat, relisted) = counts(m.path());
    assert_eq!((dirs, lstat, relisted), (0, 0, 0));
    assert_eq!(total1, total0, "no request while idle");
    assert_eq!(sh(m.path(), "ls d"), "", "cached for 600 s");
}
