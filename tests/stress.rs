//! Many processes using one mount at once: mixed operations on a shared set of names, and
//! writers rewriting files of their own meanwhile, against an `sftp-server` that logs every
//! request at DEBUG3.
//!
//! What must hold, whatever the interleaving:
//! * no request ever reaches the server on a handle it does not hold (a CLOSE sent twice, a READ
//!   or WRITE after CLOSE: OpenSSH reuses handle numbers at once, so such a request could reach
//!   another file): checked in the server's log and in the client's own handle tracking;
//! * no EIO (or any error a local filesystem would not give for these races);
//! * every file whose writes and close succeeded is byte-identical on the server;
//! * right after the run, every path shows through the mount exactly what the server has (type,
//!   size, mode, owner, content): our own changes are never undone by an older answer.
//!
//! The operations are a fixed-seed random sequence per worker; `SSHFS_RS_STRESS_OPS` changes
//! how many each worker does (default 1500; 3000 before the model of the fs layer checked the
//! same handle rules under concurrency and cuts), `SSHFS_RS_STRESS_SEED` the seed.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

use support::{Mount, MountStats, Rng, Sshd, SshdOptions};

/// Processes (threads: the kernel sees each as its own caller) doing mixed operations.
const WORKERS: u64 = 8;
/// Processes rewriting files of their own while the mixed operations run.
const WRITERS: u64 = 8;
/// Names each writer rewrites.
const WRITER_NAMES: u64 = 40;
/// Largest file a writer writes.
const WRITER_MAX: u64 = 600 * 1000;
const DIRS: u64 = 4;
const FILES: u64 = 6;
const SUBDIRS: u64 = 2;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// A 4 KiB-aligned buffer for O_DIRECT reads.
#[repr(C, align(4096))]
struct Aligned([u8; 65536]);

/// Runs one libc call; `Err(errno)` when it returns -1.
fn check(ret: libc::c_long) -> Result<libc::c_long, i32> {
    if ret == -1 { Err(errno()) } else { Ok(ret) }
}

/// open, `body` on the fd, close; the first failure's errno (close's included).
fn with_fd(path: &Path, flags: i32, body: impl FnOnce(i32) -> Result<(), i32>) -> Result<(), i32> {
    let c = cpath(path);
    let fd = check(unsafe { libc::open(c.as_ptr(), flags, 0o644) } as libc::c_long)? as i32;
    let r = body(fd);
    let closed = check(unsafe { libc::close(fd) } as libc::c_long);
    r?;
    closed.map(drop)
}

fn write_all(fd: i32, data: &[u8], mut offset: i64) -> Result<(), i32> {
    let mut rest = data;
    while !rest.is_empty() {
        let n = check(unsafe {
            libc::pwrite(fd, rest.as_ptr().cast(), rest.len(), offset) as libc::c_long
        })? as usize;
        rest = &rest[n..];
        offset += n as i64;
    }
    Ok(())
}

/// The mixed workload's names: `dK/fN`, `dK/sM` (directories) and `dK/sM/fN`.
fn file_path(root: &Path, rng: &mut Rng) -> PathBuf {
    let dir = root.join(format!("d{}", rng.below(DIRS)));
    let dir = if rng.below(4) == 0 {
        dir.join(format!("s{}", rng.below(SUBDIRS)))
    } else {
        dir
    };
    dir.join(format!("f{}", rng.below(FILES)))
}

fn subdir_path(root: &Path, rng: &mut Rng) -> PathBuf {
    root.join(format!("d{}", rng.below(DIRS)))
        .join(format!("s{}", rng.below(SUBDIRS)))
}

/// One random operation; `Err((op, errno))` when it failed in a way the races of this workload
/// do not explain (they explain ENOENT, EEXIST and ENOTEMPTY).
fn one_op(root: &Path, rng: &mut Rng) -> Result<(), (&'static str, i32)> {
    let op = rng.below(17);
    let path = file_path(root, rng);
    let (name, r): (&'static str, Result<(), i32>) = match op {
        0 | 1 => {
            let data = rng.bytes_below(64 * 1024);
            let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
            (
                "create+write",
                with_fd(&path, flags, |fd| write_all(fd, &data, 0)),
            )
        }
        2 => (
            "create O_EXCL",
            with_fd(&path, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, |_| {
                Ok(())
            }),
        ),
        3 | 4 => {
            let mut data = rng.bytes_below(20 * 1024);
            data.push(1);
            let at = rng.below(100 * 1024) as i64;
            (
                "pwrite",
                with_fd(&path, libc::O_RDWR, |fd| write_all(fd, &data, at)),
            )
        }
        5 => {
            let at = (rng.below(32) * 4096) as i64;
            let r = with_fd(&path, libc::O_RDONLY | libc::O_DIRECT, |fd| {
                let mut buf = Box::new(Aligned([0; 65536]));
                check(unsafe {
                    libc::pread(fd, buf.0.as_mut_ptr().cast(), buf.0.len(), at) as libc::c_long
                })
                .map(drop)
            });
            ("O_DIRECT read", r)
        }
        6 => (
            "read",
            fs::read(&path)
                .map(drop)
                .map_err(|e| e.raw_os_error().unwrap_or(-1)),
        ),
        7 => {
            let len = rng.below(100 * 1024) as i64;
            let c = cpath(&path);
            (
                "truncate",
                check(unsafe { libc::truncate(c.as_ptr(), len) } as libc::c_long).map(drop),
            )
        }
        8 => {
            let len = rng.below(100 * 1024) as i64;
            let r = with_fd(&path, libc::O_WRONLY, |fd| {
                check(unsafe { libc::ftruncate(fd, len) } as libc::c_long).map(drop)
            });
            ("ftruncate", r)
        }
        9 => {
            let to = file_path(root, rng);
            (
                "rename",
                fs::rename(&path, &to).map_err(|e| e.raw_os_error().unwrap_or(-1)),
            )
        }
        10 => {
            let to = file_path(root, rng);
            (
                "link",
                fs::hard_link(&path, &to).map_err(|e| e.raw_os_error().unwrap_or(-1)),
            )
        }
        11 => (
            "unlink",
            fs::remove_file(&path).map_err(|e| e.raw_os_error().unwrap_or(-1)),
        ),
        12 => {
            let dir = subdir_path(root, rng);
            let r = if rng.below(2) == 0 {
                fs::create_dir(&dir)
            } else {
                fs::remove_dir(&dir)
            };
            ("mkdir/rmdir", r.map_err(|e| e.raw_os_error().unwrap_or(-1)))
        }
        13 => {
            let dir = path.parent().unwrap().to_path_buf();
            let r = fs::read_dir(&dir).and_then(|entries| {
                for e in entries {
                    match e?.path().symlink_metadata() {
                        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                        other => {
                            other?;
                        }
                    }
                }
                Ok(())
            });
            (
                "readdir+stat",
                r.map_err(|e| e.raw_os_error().unwrap_or(-1)),
            )
        }
        14 => {
            let mode = [0o600, 0o644, 0o640, 0o755][rng.below(4) as usize];
            let c = cpath(&path);
            (
                "chmod",
                check(unsafe { libc::chmod(c.as_ptr(), mode) } as libc::c_long).map(drop),
            )
        }
        15 => {
            let (uid, gid) = (rng.below(3) as u32, rng.below(3) as u32);
            let c = cpath(&path);
            (
                "chown",
                check(unsafe { libc::chown(c.as_ptr(), uid, gid) } as libc::c_long).map(drop),
            )
        }
        _ => {
            let secs = 1_600_000_000 + rng.below(100_000_000) as i64;
            let t = libc::timespec {
                tv_sec: secs,
                tv_nsec: 0,
            };
            let c = cpath(&path);
            let r = check(
                unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), [t, t].as_ptr(), 0) }
                    as libc::c_long,
            );
            ("utimens", r.map(drop))
        }
    };
    match r {
        Ok(()) | Err(libc::ENOENT | libc::EEXIST | libc::ENOTEMPTY) => Ok(()),
        Err(e) => Err((name, e)),
    }
}

/// What one path looks like: type and mode, size, owner, content.
#[derive(PartialEq, Eq)]
struct Seen {
    mode: u32,
    size: u64,
    uid: u32,
    gid: u32,
    content: Option<Vec<u8>>,
}

impl std::fmt::Debug for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sum = self.content.as_ref().map(|c| {
            c.iter()
                .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(*b)))
        });
        write!(
            f,
            "mode {:o} size {} owner {}:{} content {sum:x?}",
            self.mode, self.size, self.uid, self.gid
        )
    }
}

/// Every path below `root` (relative) with what it looks like.
fn snapshot(root: &Path) -> BTreeMap<String, Seen> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("list {dir:?}: {e}")) {
            let path = entry.unwrap().path();
            let meta = path.symlink_metadata().unwrap();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let content = meta.is_file().then(|| fs::read(&path).unwrap());
            if meta.is_dir() {
                stack.push(path);
            }
            let size = if meta.is_dir() { 0 } else { meta.size() };
            out.insert(
                rel,
                Seen {
                    mode: meta.mode(),
                    size,
                    uid: meta.uid(),
                    gid: meta.gid(),
                    content,
                },
            );
        }
    }
    out
}

/// Fails, showing how many and the first 20, unless `found` is empty.
fn assert_none(what: &str, found: &[impl std::fmt::Debug]) {
    assert!(
        found.is_empty(),
        "{} {what}, the first: {:#?}",
        found.len(),
        &found[..found.len().min(20)]
    );
}

/// Lines of the server's log that name a handle it did not hold.
fn bad_handle_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("handle -1") || l.contains("handle 4294967295"))
        .collect()
}

/// One writer: rewrites its own names twice with files of up to 600 kB, written in pieces of up
/// to 128 KiB as cp does. The first round holds all its files open at once (as a build or an
/// archiver may), so the server hands out handle numbers past 127; the second round writes
/// them one after the other. Returns what each name should hold (the last content whose writes
/// and close succeeded) and the failures.
fn writer(root: &Path, id: u64, seed: u64) -> (BTreeMap<PathBuf, Vec<u8>>, Vec<String>) {
    let mut rng = Rng::new((seed ^ (0xA5A5 + id)).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let dir = root.join(format!("w{id}"));
    fs::create_dir(&dir).unwrap();
    let mut want = BTreeMap::new();
    let mut failures = Vec::new();
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
    let write_pieces = |fd: i32, data: &[u8]| {
        for (i, piece) in data.chunks(128 * 1024).enumerate() {
            write_all(fd, piece, (i * 128 * 1024) as i64)?;
        }
        Ok(())
    };
    // Round 1: open all, write all, close all.
    let mut open = Vec::new();
    for n in 0..WRITER_NAMES {
        let path = dir.join(format!("n{n}"));
        let c = cpath(&path);
        match check(unsafe { libc::open(c.as_ptr(), flags, 0o644) } as libc::c_long) {
            Ok(fd) => open.push((path, fd as i32, rng.bytes_below(WRITER_MAX))),
            Err(e) => failures.push(format!("open {path:?}: errno {e}")),
        }
    }
    for (path, fd, data) in &open {
        if let Err(e) = write_pieces(*fd, data) {
            failures.push(format!("write {path:?}: errno {e}"));
        }
    }
    for (path, fd, data) in open {
        match check(unsafe { libc::close(fd) } as libc::c_long) {
            Ok(_) => {
                want.insert(path, data);
            }
            Err(e) => failures.push(format!("close {path:?}: errno {e}")),
        }
    }
    // Round 2: one file after the other.
    for n in 0..WRITER_NAMES {
        let path = dir.join(format!("n{n}"));
        let data = rng.bytes_below(WRITER_MAX);
        match with_fd(&path, flags, |fd| write_pieces(fd, &data)) {
            Ok(()) => {
                want.insert(path, data);
            }
            Err(e) => failures.push(format!("{path:?}: errno {e}")),
        }
    }
    (want, failures)
}

#[test]
fn concurrent_mixed_operations_never_touch_a_handle_not_open() {
    let sshd = Sshd::start_with(SshdOptions {
        sftp_debug_log: true,
        ..SshdOptions::default()
    });
    let m = Mount::start(&sshd, &[]);
    let (mnt, srv) = (m.path().to_path_buf(), sshd.root_dir().to_path_buf());
    let ops = env_u64("SSHFS_RS_STRESS_OPS", 1500);
    let started = std::time::Instant::now();
    let seed = env_u64("SSHFS_RS_STRESS_SEED", 9);
    for d in 0..DIRS {
        fs::create_dir(mnt.join(format!("d{d}"))).unwrap();
    }

    let unexpected = Arc::new(Mutex::new(Vec::<String>::new()));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (mnt, unexpected) = (mnt.clone(), Arc::clone(&unexpected));
            thread::spawn(move || {
                let mut rng = Rng::new((seed * 1000 + w).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                for i in 0..ops {
                    if let Err((op, e)) = one_op(&mnt, &mut rng) {
                        let msg = std::io::Error::from_raw_os_error(e);
                        unexpected
                            .lock()
                            .unwrap()
                            .push(format!("worker {w} op {i} {op}: {msg}"));
                    }
                }
            })
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|id| {
            let mnt = mnt.clone();
            thread::spawn(move || writer(&mnt, id, seed))
        })
        .collect();
    for w in workers {
        w.join().expect("worker panicked");
    }
    eprintln!(
        "{WORKERS} workers x {ops} operations: {:?}",
        started.elapsed()
    );
    let mut written = BTreeMap::new();
    let mut write_failures = Vec::new();
    for w in writers {
        let (want, failures) = w.join().expect("writer panicked");
        written.extend(want);
        write_failures.extend(failures);
    }

    eprintln!("and the writers: {:?}", started.elapsed());
    // Checked at once, well inside every cache lifetime.
    let through_mount = snapshot(&mnt);
    let on_server = snapshot(&srv);
    let stats = MountStats::of(&mnt);
    m.unmount();
    let log = sshd.sftp_log();
    eprintln!(
        "snapshots, unmount, {} MB of server log: {:?}",
        log.len() >> 20,
        started.elapsed()
    );

    assert_none("unexpected errors", &unexpected.lock().unwrap());
    assert!(
        write_failures.is_empty(),
        "writers failed: {write_failures:#?}"
    );
    assert_none(
        "requests on handles the server did not hold",
        &bad_handle_lines(&log),
    );
    for (path, data) in &written {
        let rel = path.strip_prefix(&mnt).unwrap();
        let got = fs::read(srv.join(rel)).unwrap();
        assert!(
            got == *data,
            "{rel:?} on the server: {} bytes, written {}",
            got.len(),
            data.len()
        );
    }
    let differ: Vec<_> = on_server
        .iter()
        .filter(|(p, s)| through_mount.get(*p) != Some(*s))
        .map(|(p, s)| format!("{p}: server {s:?}, mount {:?}", through_mount.get(p)))
        .chain(
            through_mount
                .keys()
                .filter(|p| !on_server.contains_key(*p))
                .map(|p| format!("{p}: only through the mount")),
        )
        .collect();
    assert_none(
        "paths that differ between the mount and the server right after the run",
        &differ,
    );
    assert_eq!(
        stats.get("handle-misuse="),
        0,
        "client's own handle tracking"
    );
}
