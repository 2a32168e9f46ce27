//! Everyday tools through a real mount of a real sshd, as a new user runs them (issue 23):
//! `git clone` into the mount, changes by path right after a close, a directory made through
//! the mount and then filled on the server, and `du` side by side with the C sshfs.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Mount, Rng, Sshd, SshfsC, open_temp_dir, run_command, wait_until};

const CMD_TIMEOUT: Duration = Duration::from_secs(120);

fn sh(dir: &Path, script: &str) -> String {
    support::sh_in(dir, script, CMD_TIMEOUT)
}

/// Whether `program` is on PATH.
fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

/// `git clone` of a local repository (a few hundred loose objects) into the mount, 20 times in
/// a row at RTT 0, and `git fsck --full` of each clone. git copies every object file (no hard
/// links across filesystems): create, write, close, then `utime(path)`, which must not be sent
/// on the handle whose RELEASE is still under way (it failed with EBADF).
#[test]
fn git_clone_into_the_mount_20_times_and_fsck() {
    if !have("git") {
        eprintln!("skipped: git is not installed");
        return;
    }
    let sshd = Sshd::start();
    let (_src_dir, src) = open_temp_dir("tools-git-src");
    sh(
        &src,
        "git init -q . && git config user.email t@example.com && git config user.name t && \
         for c in 1 2 3 4 5 6; do \
           for i in $(seq 1 40); do mkdir -p d$((i % 4)); echo \"commit $c file $i\" > d$((i % 4))/f$i; done; \
           git add -A && git commit -q -m \"commit $c\"; \
         done",
    );
    let objects: u64 = sh(&src, "git count-objects -v | sed -n 's/^count: //p'")
        .trim()
        .parse()
        .unwrap();
    assert!(objects >= 250, "only {objects} loose objects in the source");

    let m = Mount::start(&sshd, &[]);
    let started = Instant::now();
    for n in 0..20 {
        let dst = m.path().join(format!("clone{n}"));
        let out = run_command(
            Command::new("git")
                .arg("clone")
                .arg("-q")
                .arg(&src)
                .arg(&dst),
            CMD_TIMEOUT,
        );
        assert!(
            out.status.success(),
            "git clone {n} into the mount failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            m.stderr()
        );
        let fsck = run_command(
            Command::new("git")
                .arg("-C")
                .arg(&dst)
                .args(["fsck", "--full", "--strict"]),
            CMD_TIMEOUT,
        );
        assert!(
            fsck.status.success(),
            "git fsck of clone {n} failed: {}{}",
            String::from_utf8_lossy(&fsck.stdout),
            String::from_utf8_lossy(&fsck.stderr)
        );
        let commits = sh(&dst, "git rev-list --count HEAD");
        assert_eq!(commits.trim(), "6", "clone {n}");
    }
    eprintln!(
        "20 clones of {objects} objects each passed git fsck, in {:?}",
        started.elapsed()
    );
}

/// One change by path, right after a file was created (O_EXCL), written and closed.
#[derive(Debug, Clone, Copy)]
enum PathChange {
    Chmod,
    Utime,
    Chown,
    Truncate,
}

impl PathChange {
    fn apply(self, path: &Path) -> std::io::Result<()> {
        let c = c_path(path);
        let rc = match self {
            PathChange::Chmod => {
                return fs::set_permissions(path, fs::Permissions::from_mode(0o640));
            }
            PathChange::Chown => {
                let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
                return std::os::unix::fs::chown(path, Some(uid), Some(gid));
            }
            PathChange::Utime => {
                let t = libc::timespec {
                    tv_sec: 1_000_000_000,
                    tv_nsec: 0,
                };
                // SAFETY: a valid C string and two timespecs.
                unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), [t, t].as_ptr(), 0) }
            }
            // SAFETY: a valid C string.
            PathChange::Truncate => unsafe { libc::truncate(c.as_ptr(), 2) },
        };
        match rc {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        }
    }

    /// Whether the server's file shows the change.
    fn shows(self, server: &Path) -> bool {
        let md = fs::metadata(server).unwrap();
        match self {
            PathChange::Chmod => md.permissions().mode() & 0o7777 == 0o640,
            PathChange::Utime => md.mtime() == 1_000_000_000,
            PathChange::Chown => md.uid() == unsafe { libc::geteuid() },
            PathChange::Truncate => md.len() == 2,
        }
    }
}

/// Create (O_EXCL), write, close, then chmod, utime, chown (to our own uid) or truncate by
/// path, 1,000 times each at RTT 0: never an error (the change once went through the handle
/// being released and failed with EBADF), and the server shows every change.
#[test]
fn changes_by_path_right_after_close_never_fail() {
    let sshd = Sshd::start();
    let m = Mount::start(&sshd, &[]);
    let (mnt, srv) = (m.path().join("p"), sshd.root_dir().join("p"));
    fs::create_dir(&mnt).unwrap();
    let changes = [
        PathChange::Chmod,
        PathChange::Utime,
        PathChange::Chown,
        PathChange::Truncate,
    ];
    for change in changes {
        let started = Instant::now();
        for i in 0..1000 {
            let name = format!("{change:?}-{i}");
            let path = mnt.join(&name);
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .unwrap_or_else(|e| {
                    // Seen once in CI under load (EEXIST for a new name): the log says why.
                    panic!(
                        "create of {} (try {i}): {e}\n{}",
                        path.display(),
                        m.stderr()
                    )
                });
            f.write_all(b"some data").unwrap();
            drop(f);
            if let Err(e) = change.apply(&path) {
                panic!(
                    "{change:?} of {} right after its close (try {i}): {e}\n{}",
                    path.display(),
                    m.stderr()
                );
            }
            assert!(
                change.shows(&srv.join(&name)),
                "{change:?} (try {i}) is not on the server"
            );
        }
        eprintln!("{change:?}: 1000 in {:?}", started.elapsed());
    }
}

/// Counts the entries of `dir`, or `None` if it cannot be listed.
fn entries(dir: &Path) -> Option<usize> {
    Some(fs::read_dir(dir).ok()?.count())
}

/// A directory made through the mount is known to be empty (a lookup of a new name in it costs
/// no request), but that must not hide what the server puts in it: filled on the server, it
/// lists the server's names within the re-check interval (2 s by default; 50 names, then
/// 5,000, more than a listing fetched in the background keeps: a quarter of the cache's 10,000
/// entries), and `rm -rf` of it succeeds.
#[test]
fn a_directory_made_through_the_mount_shows_what_the_server_puts_in_it() {
    let sshd = Sshd::start();
    let m = Mount::start(&sshd, &[]);
    let interval = Duration::from_secs(2);
    for (name, count) in [("few", 50), ("many", 5_000)] {
        let (mnt, srv) = (m.path().join(name), sshd.root_dir().join(name));
        fs::create_dir(&mnt).unwrap();
        assert_eq!(entries(&mnt), Some(0), "{name}: new");
        for i in 0..count {
            File::create(srv.join(format!("f{i:05}"))).unwrap();
        }
        let filled = Instant::now();
        let shown = wait_until(interval + Duration::from_secs(2), || {
            entries(&mnt) == Some(count)
        });
        let took = filled.elapsed();
        assert!(
            shown,
            "{name}: the mount lists {:?} of the server's {count} names after {took:?}",
            entries(&mnt)
        );
        // (Polling starts at once: the re-check comes within the interval, plus the idle time
        // it waits for and the time of the listing itself.)
        eprintln!("{name}: the server's {count} names listed {took:?} after the fill");
        sh(m.path(), &format!("rm -rf {name}"));
        assert!(!srv.exists(), "{name} is still on the server");
    }
}

/// `rmdir` refused as not empty (OpenSSH answers a plain FAILURE) never stands beside an empty
/// listing: with the re-check off, a directory made through the mount and filled on the server
/// lists the server's names right after the refused rmdir, the kernel forgets the "no such
/// file" it was told about one of them (kept 60 s here), and `rm -rf` then succeeds.
#[test]
fn rmdir_refused_as_not_empty_relists_the_directory() {
    let sshd = Sshd::start();
    let m = Mount::start(&sshd, &["-o", "recheck=0,negative_timeout=60"]);
    let (mnt, srv) = (m.path().join("d"), sshd.root_dir().join("d"));
    fs::create_dir(&mnt).unwrap();
    assert_eq!(entries(&mnt), Some(0));
    assert_eq!(
        fs::metadata(mnt.join("y"))
            .map_err(|e| e.kind())
            .unwrap_err(),
        ErrorKind::NotFound,
        "known empty"
    );
    for name in ["x", "y", "z"] {
        fs::write(srv.join(name), name).unwrap();
    }
    let refused = fs::remove_dir(&mnt).unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(libc::ENOTEMPTY), "{refused}");
    // The kernel's negative entry for y is gone (the notification is sent by a task of its
    // own), before anything lists the directory (a listing would replace it too).
    assert!(
        wait_until(Duration::from_secs(2), || mnt.join("y").exists()),
        "y still unknown to the kernel after the refused rmdir"
    );
    assert_eq!(fs::read_to_string(mnt.join("y")).unwrap(), "y");
    let mut names: Vec<String> = fs::read_dir(&mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["x", "y", "z"], "the listing after ENOTEMPTY");
    sh(m.path(), "rm -rf d");
    assert!(!srv.exists());
    assert_eq!(
        fs::metadata(&mnt).map_err(|e| e.kind()).unwrap_err(),
        ErrorKind::NotFound
    );
}

/// `du -s` of a tree (small and large files, directories, symlinks) through the mount is within
/// 1% of the C sshfs's figure for the same tree: SFTP v3 sends no block count, both estimate it
/// from the size in the server's blocks (docs/SEMANTICS.md).
#[test]
fn du_agrees_with_the_c_sshfs() {
    if !have("sshfs") {
        eprintln!("skipped: the C sshfs is not installed");
        return;
    }
    let sshd = Sshd::start();
    let tree = sshd.root_dir().join("tree");
    let mut rng = Rng::new(23);
    for d in 0..20 {
        let dir = tree.join(format!("d{d}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..40 {
            let size = match f % 10 {
                0 => 0,
                1 => 1,
                9 => 100_000 + rng.below(900_000) as usize,
                _ => rng.below(20_000) as usize,
            };
            fs::write(dir.join(format!("f{f}")), vec![b'x'; size]).unwrap();
        }
        symlink(format!("f{d}"), dir.join("link")).unwrap();
    }
    let du = |dir: &Path| -> u64 {
        let out = sh(dir, "du -s -B1 tree");
        out.split_whitespace().next().unwrap().parse().unwrap()
    };
    let server = du(sshd.root_dir());
    let ours = Mount::start(&sshd, &[]);
    let theirs = SshfsC::start(&sshd, &[]);
    let (ours_du, c_du) = (du(ours.path()), du(theirs.path()));
    eprintln!("du -s: sshfs-rs {ours_du}, C sshfs {c_du}, server {server}");
    let off = ours_du.abs_diff(c_du) as f64 / c_du as f64;
    assert!(
        off <= 0.01,
        "du -s through sshfs-rs is {ours_du}, through the C sshfs {c_du} ({:.1}% apart)",
        off * 100.0
    );
    // A one-byte file takes a whole block of the server's filesystem, as there.
    let one = fs::symlink_metadata(ours.path().join("tree/d0/f1")).unwrap();
    let on_server = fs::symlink_metadata(tree.join("d0/f1")).unwrap();
    assert_eq!(one.blocks(), on_server.blocks(), "blocks of a 1-byte file");
}
