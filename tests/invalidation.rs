//! Name invalidation through a real mount, with the kernel's own caches long
//! (`entry_timeout=600,attr_timeout=600`, and `negative_timeout=600` where it matters): a name
//! removed, created or changed in type on the server shows at once after `sshfs-rs --flush`,
//! and as soon as our cache learns of it otherwise (a listing); and a storm of lookups while
//! the kernel is told to drop names never deadlocks the mount.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::{self, sleep};
use std::time::{Duration, Instant, SystemTime};

use support::{
    FaultProxy, Mount, Rng, Sshd, abort_fuse_connection, fuse_connection_of, fuse_waiting,
    is_mounted, lacking, needs, run_command, skip_note, sshfs_rs_bin, wait_until,
};

const CMD_TIMEOUT: Duration = Duration::from_secs(60);
const LONG_KERNEL_CACHE: &str = "entry_timeout=600,attr_timeout=600,negative_timeout=600";

fn flush(mnt: &Path) {
    if let Err(e) = try_flush(mnt) {
        panic!("--flush: {e}");
    }
}

/// `sshfs-rs --flush MNT`; its stderr if it fails (a mount that stopped serving does not
/// answer it).
fn try_flush(mnt: &Path) -> Result<(), String> {
    let out = run_command(
        Command::new(sshfs_rs_bin()).arg("--flush").arg(mnt),
        CMD_TIMEOUT,
    );
    match out.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

/// `stat` of `path`: Ok(is a directory), or the error kind.
fn kind(path: &Path) -> Result<bool, ErrorKind> {
    fs::symlink_metadata(path)
        .map(|m| m.is_dir())
        .map_err(|e| e.kind())
}

/// After `--flush`, the kernel's names are those of the server: a removed file is ENOENT, a
/// new one (the kernel held a negative entry for it) is found, a file replaced by a directory
/// is a directory, a removed name in a subdirectory is gone.
#[test]
fn flush_drops_the_names_the_kernel_holds() {
    let sshd = Sshd::start();
    let root = sshd.root_dir();
    for f in ["gone", "kept", "retyped", "d/x"] {
        fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
        fs::write(root.join(f), b"1").unwrap();
    }
    let m = Mount::start(
        &sshd,
        &["-o", &format!("cache_timeout=600,{LONG_KERNEL_CACHE}")],
    );
    let at = |p: &str| m.path().join(p);
    for f in ["gone", "kept", "retyped", "d/x"] {
        assert_eq!(kind(&at(f)), Ok(false), "{f}");
    }
    assert_eq!(kind(&at("new")), Err(ErrorKind::NotFound));

    fs::remove_file(root.join("gone")).unwrap();
    fs::remove_file(root.join("d/x")).unwrap();
    fs::write(root.join("new"), b"2").unwrap();
    fs::remove_file(root.join("retyped")).unwrap();
    fs::create_dir(root.join("retyped")).unwrap();
    // The kernel trusts what it holds for 600 s.
    assert_eq!(kind(&at("gone")), Ok(false), "held by the kernel");
    assert_eq!(kind(&at("new")), Err(ErrorKind::NotFound), "negative entry");

    flush(m.path());
    let seen = || {
        kind(&at("gone")) == Err(ErrorKind::NotFound)
            && kind(&at("d/x")) == Err(ErrorKind::NotFound)
            && kind(&at("new")) == Ok(false)
            && kind(&at("retyped")) == Ok(true)
            && kind(&at("kept")) == Ok(false)
    };
    // The notifications leave from their own task: give them a moment.
    assert!(
        wait_until(Duration::from_secs(2), seen),
        "after --flush: gone {:?}, d/x {:?}, new {:?}, retyped {:?}, kept {:?}",
        kind(&at("gone")),
        kind(&at("d/x")),
        kind(&at("new")),
        kind(&at("retyped")),
        kind(&at("kept")),
    );
    assert_eq!(fs::read(at("new")).unwrap(), b"2");
    let stats = support::MountStats::of(m.path());
    assert!(stats.get("names=") >= 4, "names invalidated: {stats:?}");
}

/// Directories' names are never dropped, only made to expire (`FUSE_EXPIRE_ONLY`, Linux 6.2+):
/// after `--flush` the kernel looks each up again at its next use (a LOOKUP in the `-d` log,
/// though it was told to keep it 600 s), a directory removed on the server is ENOENT and one
/// replaced by a file is a file, while a bind mount on a directory of the mount stays mounted.
#[test]
fn flush_makes_directory_names_expire_and_keeps_what_is_mounted_on_them() {
    if lacking(support::needs::expire_only_entries()) {
        return;
    }
    let sshd = Sshd::start();
    let root = sshd.root_dir();
    for d in ["gone", "retyped", "held", "kept"] {
        fs::create_dir(root.join(d)).unwrap();
    }
    let m = Mount::start(
        &sshd,
        &[
            "-d",
            "-o",
            &format!("cache_timeout=600,{LONG_KERNEL_CACHE}"),
        ],
    );
    let at = |p: &str| m.path().join(p);
    for d in ["gone", "retyped", "held", "kept"] {
        assert_eq!(kind(&at(d)), Ok(true), "{d}");
    }
    let lookups_of_kept = || m.stderr().matches("] lookup /kept -> ").count();
    assert_eq!(lookups_of_kept(), 1, "{}", m.stderr());
    assert_eq!(kind(&at("kept")), Ok(true));
    assert_eq!(lookups_of_kept(), 1, "kept by the kernel: {}", m.stderr());
    let local = tempfile::tempdir().unwrap();
    fs::write(local.path().join("marker"), b"bound").unwrap();
    let bound = BindMount::new(local.path(), &at("held"));
    assert_eq!(fs::read(at("held/marker")).unwrap(), b"bound");

    fs::remove_dir(root.join("gone")).unwrap();
    fs::remove_dir(root.join("retyped")).unwrap();
    fs::write(root.join("retyped"), b"now a file").unwrap();
    assert_eq!(kind(&at("gone")), Ok(true), "held by the kernel");

    flush(m.path());
    let seen =
        || kind(&at("gone")) == Err(ErrorKind::NotFound) && kind(&at("retyped")) == Ok(false);
    assert!(
        wait_until(Duration::from_secs(2), seen),
        "after --flush: gone {:?}, retyped {:?}",
        kind(&at("gone")),
        kind(&at("retyped")),
    );
    assert_eq!(fs::read(at("retyped")).unwrap(), b"now a file");
    assert_eq!(kind(&at("kept")), Ok(true));
    assert_eq!(lookups_of_kept(), 2, "not looked up again: {}", m.stderr());
    assert!(is_mounted(&at("held")), "the bind mount was detached");
    assert_eq!(fs::read(at("held/marker")).unwrap(), b"bound");
    drop(bound);
}

/// `mount --bind FROM TO`, undone (lazily, so a failed test still gets its mount unmounted)
/// when dropped.
struct BindMount(std::path::PathBuf);

impl BindMount {
    fn new(from: &Path, to: &Path) -> Self {
        let out = run_command(
            Command::new("mount").arg("--bind").arg(from).arg(to),
            CMD_TIMEOUT,
        );
        assert!(
            out.status.success(),
            "mount --bind: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        BindMount(to.to_path_buf())
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = run_command(Command::new("umount").arg("-l").arg(&self.0), CMD_TIMEOUT);
    }
}

/// Without `--flush`: once our cache learns from a listing that names appeared or vanished, the
/// kernel is told, although its own entries (negative ones included) have 600 s to live.
#[test]
fn names_a_listing_shows_changed_are_invalidated() {
    let sshd = Sshd::start();
    let root = sshd.root_dir();
    fs::write(root.join("old"), b"1").unwrap();
    let m = Mount::start(
        &sshd,
        &["-o", &format!("cache_timeout=1,{LONG_KERNEL_CACHE}")],
    );
    let at = |p: &str| m.path().join(p);
    assert_eq!(kind(&at("old")), Ok(false));
    assert_eq!(kind(&at("new")), Err(ErrorKind::NotFound));
    // Let the listing the lookups started in the background finish before the change.
    sleep(Duration::from_millis(500));
    fs::remove_file(root.join("old")).unwrap();
    fs::write(root.join("new"), b"2").unwrap();
    sleep(Duration::from_millis(1200));
    assert_eq!(kind(&at("new")), Err(ErrorKind::NotFound), "negative entry");
    // Our cache expired: this listing asks the server and sees both changes.
    let names = fs::read_dir(m.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect::<Vec<_>>();
    assert_eq!(names, ["new"]);
    assert!(
        wait_until(Duration::from_secs(2), || kind(&at("new")) == Ok(false)
            && kind(&at("old")) == Err(ErrorKind::NotFound)),
        "new {:?}, old {:?}",
        kind(&at("new")),
        kind(&at("old"))
    );
}

/// A file rewritten on the server: after `--flush` its pages are dropped too, so a program that
/// mapped it (mmap, which new attributes alone do not refresh) reads the new bytes, although
/// the kernel's attributes have 600 s to live.
#[test]
fn flush_reaches_a_mapping() {
    if lacking(needs::python3()) {
        return;
    }
    let sshd = Sshd::start();
    let file = sshd.root_dir().join("f");
    fs::write(&file, b"0123456789").unwrap();
    let m = Mount::start(
        &sshd,
        &["-o", &format!("cache_timeout=1,{LONG_KERNEL_CACHE}")],
    );
    let script = r#"
import mmap, sys, time
f = open("f", "rb")
m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
print(m[:10].decode(), flush=True)
sys.stdin.readline()
deadline = time.time() + 3
while m[:10] == b"0123456789" and time.time() < deadline:
    time.sleep(0.05)
print(m[:10].decode(), flush=True)
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .current_dir(m.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap_or_default());
        }
    });
    let next = || lines.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(next(), "0123456789");
    // Let the listing the first lookup started in the background finish before the change.
    sleep(Duration::from_millis(500));
    fs::write(&file, b"abcdefghij").unwrap();
    let f = fs::File::options().write(true).open(&file).unwrap();
    f.set_modified(SystemTime::now() + Duration::from_secs(10))
        .unwrap();
    flush(m.path());
    writeln!(child.stdin.as_mut().unwrap()).unwrap();
    assert_eq!(next(), "abcdefghij", "the mapping shows the new bytes");
    assert!(child.wait().unwrap().success());
}

/// Lookups in one directory from several threads and a reader of a file in it, at 4 ms round
/// trip, while `--flush` tells the kernel to drop every name and page again and again and files
/// come and go on the server: every lookup and read is answered (progress never stops for
/// 10 s) and the mount ends idle (fusectl `waiting` back to 0). Before the vendored fuse3 wrote
/// notifications outside its reply lock, a name invalidation racing a lookup in the same
/// directory hung the mount within seconds: the storm lasts 15 s by default
/// (`SSHFS_RS_STORM_SECS=60` for a longer one).
#[test]
fn lookup_storm_during_invalidations_never_deadlocks() {
    let secs: u64 = std::env::var("SSHFS_RS_STORM_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let sshd = Sshd::start();
    let root = sshd.root_dir().to_owned();
    fs::create_dir(root.join("d")).unwrap();
    for i in 0..50 {
        fs::write(root.join(format!("d/f{i}")), b"x").unwrap();
    }
    let big = Rng::new(7).bytes(4 << 20);
    fs::write(root.join("d/big"), &big).unwrap();
    let proxy = FaultProxy::start(sshd.port());
    proxy.set_latency(Duration::from_millis(2));
    let m = Mount::start_via(
        &sshd,
        proxy.port(),
        &[
            "-o",
            "cache_timeout=0,entry_timeout=600,attr_timeout=600,negative_timeout=0",
        ],
    );
    let mnt = m.path().to_owned();
    let conn = fuse_connection_of(&mnt).expect("a FUSE connection");
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for t in 0..4u64 {
        let (mnt, stop, progress) = (mnt.clone(), stop.clone(), progress.clone());
        threads.push(thread::spawn(move || {
            let mut rng = Rng::new(t + 1);
            while !stop.load(Ordering::Relaxed) {
                let _ = fs::symlink_metadata(mnt.join(format!("d/f{}", rng.below(60))));
                progress.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    {
        // A reader of a 4 MiB file: its pages under readahead are locked until our READ
        // replies, while `--flush` drops every page of it.
        let (mnt, stop, progress) = (mnt.clone(), stop.clone(), progress.clone());
        threads.push(thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                assert!(
                    fs::read(mnt.join("d/big")).unwrap() == big,
                    "d/big read back"
                );
                progress.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    {
        // The server changes names under the lookups (f50..f59 come and go).
        let (stop, root) = (stop.clone(), root.clone());
        threads.push(thread::spawn(move || {
            let mut rng = Rng::new(99);
            while !stop.load(Ordering::Relaxed) {
                let p = root.join(format!("d/f{}", 50 + rng.below(10)));
                if fs::remove_file(&p).is_err() {
                    let _ = fs::write(&p, b"y");
                }
                sleep(Duration::from_millis(5));
            }
        }));
    }
    let started = Instant::now();
    let mut flushes = 0;
    let mut last = (0, Instant::now());
    let mut stuck = None;
    while started.elapsed() < Duration::from_secs(secs) {
        if let Err(e) = try_flush(&mnt) {
            stuck = Some(format!("--flush failed: {e}"));
            break;
        }
        flushes += 1;
        sleep(Duration::from_millis(20));
        let now = progress.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(10) {
            stuck = Some(format!("no lookup answered for 10 s after {now}"));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(why) = stuck {
        let waiting = fuse_waiting(&mnt);
        abort_fuse_connection(conn);
        panic!("the mount hung: {why} ({flushes} flushes); fusectl waiting {waiting:?}");
    }
    for t in threads {
        t.join().unwrap();
    }
    let lookups = progress.load(Ordering::Relaxed);
    let stats = support::MountStats::of(&mnt);
    let (lstats, reads) = (stats.get("lstat="), stats.get("read="));
    eprintln!(
        "{secs} s: {lookups} stats and reads of d/big, {lstats} LSTATs and {reads} READs sent, {flushes} flushes"
    );
    // Far below what a healthy mount does (about 200 of each a second here), far above none.
    assert!(
        lstats > 20 * secs,
        "only {lstats} lookups reached the server"
    );
    assert!(reads > 10 * secs, "only {reads} READs reached the server");
    assert!(lookups > 100 * secs, "only {lookups} lookups");
    match needs::fusectl() {
        Ok(()) => assert!(
            wait_until(Duration::from_secs(5), || fuse_waiting(&mnt) == Some(0)),
            "requests still waiting: {:?}",
            fuse_waiting(&mnt)
        ),
        Err(why) => skip_note(&format!("the check that no request waits: {why}")),
    }
}
