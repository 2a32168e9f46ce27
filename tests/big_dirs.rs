//! Large directories listed through the mount, READDIRs pipelined on the handle: the whole
//! listing, once each name, over a link with latency and through a connection cut in the
//! middle of it (the listing starts again on the reopened handle, skipping what was shown).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use support::{FaultProxy, Mount, MountStats, Sshd, wait_until};

/// `n` empty files `f000000`... in `dir` on the server.
fn fill(dir: &Path, n: usize) -> BTreeSet<String> {
    fs::create_dir(dir).unwrap();
    (0..n)
        .map(|i| {
            let name = format!("f{i:06}");
            File::create(dir.join(&name)).unwrap();
            name
        })
        .collect()
}

/// The names of `dir` through the mount, checked to come once each.
fn names_once(dir: &Path) -> BTreeSet<String> {
    let names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let unique: BTreeSet<String> = names.iter().cloned().collect();
    assert_eq!(unique.len(), names.len(), "a name came twice");
    unique
}

/// Thousands of names over a 20 ms link: all of them, once each, and `ls -l` sees every one.
#[test]
fn a_large_directory_over_a_slow_link_is_listed_whole() {
    let sshd = Sshd::start();
    let want = fill(&sshd.root_dir().join("big"), 6_000);
    let proxy = FaultProxy::start(sshd.port());
    proxy.set_latency(Duration::from_millis(10));
    let m = Mount::start_via(&sshd, proxy.port(), &[]);
    let start = Instant::now();
    assert_eq!(names_once(&m.path().join("big")), want);
    let took = start.elapsed();
    // 61 pages: one READDIR per round trip would take 1.2 s; pipelined, a few round trips.
    assert!(took < Duration::from_secs(20), "listing took {took:?}");
    let out = support::sh_in(
        m.path(),
        "ls -l big | grep -c '^-'",
        Duration::from_secs(120),
    );
    assert_eq!(out.trim(), "6000");
}

/// The connection is cut while a large directory is being listed: the listing still shows
/// every name once.
#[test]
fn a_listing_cut_in_the_middle_shows_every_name_once() {
    let sshd = Sshd::start();
    let want = fill(&sshd.root_dir().join("big"), 30_000);
    let proxy = FaultProxy::start(sshd.port());
    proxy.set_latency(Duration::from_millis(5));
    // No cached listing, so each `read_dir` goes to the server.
    let m = Mount::start_via(&sshd, proxy.port(), &["-o", "cache=no"]);
    let dir = m.path().join("big");
    let mut reconnects = 0;
    for delay_ms in [20, 60, 150] {
        let lister = {
            let dir = dir.clone();
            thread::spawn(move || names_once(&dir))
        };
        thread::sleep(Duration::from_millis(delay_ms));
        if !lister.is_finished() {
            proxy.cut();
            reconnects += 1;
            let back = wait_until(Duration::from_secs(20), || {
                MountStats::of(m.path()).get("reconnects=") >= reconnects
            });
            assert!(back, "no reconnect; sshfs-rs log:\n{}", m.stderr());
        }
        assert_eq!(lister.join().unwrap(), want, "cut after {delay_ms} ms");
    }
    assert_eq!(MountStats::of(m.path()).get("handle-misuse="), 0);
}
