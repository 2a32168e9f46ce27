//! Server-side copy through a real mount: `cp` (coreutils 9 calls `copy_file_range` first)
//! becomes OpenSSH's `copy-data` request, so no file data crosses the link; a server that
//! refuses it gets a normal copy, with the same bytes.
//!
//! The counters come from `sshfs-rs --stats MNT`: `read=` and `write=` count SFTP READ and
//! WRITE requests, `copy-data=` the server-side copies.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use support::{FaultProxy, Mount, MountStats, Rng, Sshd, SshdOptions};

const CMD_TIMEOUT: Duration = Duration::from_secs(120);
const MIB: usize = 1024 * 1024;

fn sh(dir: &Path, script: &str) -> String {
    support::sh_in(dir, script, CMD_TIMEOUT)
}

/// The counter `name` of the `sftp requests:` part of `--stats` (a kind never sent is not
/// printed: 0).
fn count(stats: &MountStats, name: &str) -> u64 {
    let line = format!("{stats:?}");
    line.split([' ', ';', '\n', '"'])
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `len` bytes that differ from one MiB to the next (a copy that lands at the wrong offset
/// shows).
fn data(len: usize, seed: u64) -> Vec<u8> {
    let block = Rng::new(seed).bytes(MIB + 13);
    // Whole blocks at a time: a byte-at-a-time iterator takes seconds per 100 MB unoptimized.
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let take = block.len().min(len - out.len());
        out.extend_from_slice(&block[..take]);
    }
    out
}

fn assert_same(a: &Path, b: &Path) {
    let (x, y) = (fs::read(a).unwrap(), fs::read(b).unwrap());
    assert_eq!(
        x.len(),
        y.len(),
        "{} and {} differ in size",
        a.display(),
        b.display()
    );
    assert!(x == y, "{} and {} differ", a.display(), b.display());
}

/// `cp` of a 100 MB file inside the mount, at 20 ms round trip: identical bytes on the server,
/// and not one READ or WRITE: a handful of requests in all.
#[test]
fn cp_inside_the_mount_copies_on_the_server() {
    let sshd = Sshd::start();
    let proxy = FaultProxy::start(sshd.port());
    proxy.set_latency(Duration::from_millis(10));
    let root = sshd.root_dir();
    fs::write(root.join("big"), data(100 * 1000 * 1000, 1)).unwrap();
    let m = Mount::start_via(&sshd, proxy.port(), &[]);
    sh(m.path(), "test -f big");
    let before = MountStats::of(m.path());
    let started = Instant::now();
    sh(m.path(), "cp big copy");
    let took = started.elapsed();
    let after = MountStats::of(m.path());
    assert_same(&root.join("big"), &root.join("copy"));
    let sent = |k: &str| count(&after, k) - count(&before, k);
    eprintln!(
        "cp of 100 MB at 20 ms: {took:?}, {} SFTP requests ({} copy-data)",
        sent("total"),
        sent("copy-data")
    );
    assert_eq!(sent("read"), 0, "no data read: {after:?}");
    assert_eq!(sent("write"), 0, "no data written: {after:?}");
    assert!(sent("copy-data") >= 1, "copied on the server: {after:?}");
    assert!(sent("total") < 30, "a few requests at most: {after:?}");
    // The kernel sees the new size at once.
    assert_eq!(sh(m.path(), "stat -c %s copy").trim(), "100000000");
}

/// The connection cut while the server copies (twice): `cp` still succeeds with the same bytes
/// (a copy between two offsets may be repeated: it is sent again on the new connection, both
/// handles reopened there).
#[test]
fn a_copy_survives_a_cut_connection() {
    let sshd = Sshd::start();
    let proxy = FaultProxy::start(sshd.port());
    proxy.set_latency(Duration::from_millis(5));
    let root = sshd.root_dir().to_owned();
    fs::write(root.join("big"), data(200 * MIB, 4)).unwrap();
    let m = Mount::start_via(&sshd, proxy.port(), &[]);
    sh(m.path(), "test -f big");
    let mnt = m.path().to_owned();
    let cp = std::thread::spawn(move || sh(&mnt, "cp big copy"));
    for pause in [150, 300] {
        std::thread::sleep(Duration::from_millis(pause));
        proxy.cut();
    }
    cp.join().expect("cp succeeded");
    assert_same(&root.join("big"), &root.join("copy"));
    let stats = MountStats::of(m.path());
    eprintln!("{stats:?}");
    assert!(count(&stats, "reconnects") >= 1, "{stats:?}");
    assert!(count(&stats, "copy-data") >= 1, "{stats:?}");
}

/// A copy right behind writes still in flight on the source (no close in between) copies
/// what was written, and the destination's size shows through the mount at once.
#[test]
fn copy_waits_for_the_writes_in_flight() {
    if support::lacking(support::needs::python3()) {
        return;
    }
    let sshd = Sshd::start();
    let m = Mount::start(&sshd, &["-o", "cache_timeout=600"]);
    let script = r#"
import os
data = bytes(range(256)) * (20 * 4096)  # 20 MiB
src = os.open("src", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(src, data)
dst = os.open("dst", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
done = 0
while done < len(data):
    n = os.copy_file_range(src, dst, len(data) - done, done, done)
    assert n > 0, n
    done += n
print(os.fstat(dst).st_size, os.stat("dst").st_size)
os.close(src)
os.close(dst)
"#;
    let out = support::sh_in(m.path(), &format!("python3 -c '{script}'"), CMD_TIMEOUT);
    assert_eq!(out.trim(), "20971520 20971520");
    assert_same(&sshd.root_dir().join("src"), &sshd.root_dir().join("dst"));
    let stats = MountStats::of(m.path());
    assert!(count(&stats, "copy-data") >= 1, "{stats:?}");
}

/// A server without `copy-data` (an OpenSSH before 9.0, or one whose admin denies it:
/// `sftp-server -P copy-data` leaves it out of its VERSION packet): the kernel copies through
/// READ and WRITE, and `cp` sees nothing but success.
#[test]
fn without_copy_data_cp_gets_a_normal_copy() {
    let sshd = Sshd::start_with(SshdOptions {
        extra_config: "ForceCommand /usr/lib/openssh/sftp-server -P copy-data\n".into(),
        ..SshdOptions::default()
    });
    let root = sshd.root_dir();
    fs::write(root.join("big"), data(20 * MIB + 12345, 2)).unwrap();
    let m = Mount::start(&sshd, &[]);
    sh(m.path(), "cp big copy && cp copy copy2");
    assert_same(&root.join("big"), &root.join("copy"));
    assert_same(&root.join("big"), &root.join("copy2"));
    let stats = MountStats::of(m.path());
    assert_eq!(count(&stats, "copy-data"), 0, "never asked: {stats:?}");
    assert!(
        count(&stats, "read") > 0 && count(&stats, "write") > 0,
        "{stats:?}"
    );
}

/// A copy within one file, which OpenSSH's `copy-data` refuses: answered EOPNOTSUPP without
/// asking, and the kernel copies the range itself.
#[test]
fn a_copy_within_one_file_is_done_by_the_kernel() {
    if support::lacking(support::needs::python3()) {
        return;
    }
    let sshd = Sshd::start();
    let root = sshd.root_dir();
    let first = data(3 * MIB, 3);
    fs::write(root.join("f"), &first).unwrap();
    let m = Mount::start(&sshd, &[]);
    let script = r#"
import os
fd = os.open("f", os.O_RDWR)
n = os.copy_file_range(fd, fd, 3 << 20, 0, 3 << 20)
print(n)
os.close(fd)
"#;
    let out = sh(m.path(), &format!("python3 -c '{script}'"));
    assert_eq!(out.trim(), (3 * MIB).to_string());
    let mut twice = first.clone();
    twice.extend_from_slice(&first);
    assert!(
        fs::read(root.join("f")).unwrap() == twice,
        "f is twice its bytes"
    );
    let stats = MountStats::of(m.path());
    assert_eq!(count(&stats, "copy-data"), 0, "{stats:?}");
}
