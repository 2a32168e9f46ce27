//! File names as bytes through the mount (issue 20): names that are not UTF-8 round-trip byte
//! for byte in both directions (listed as the server has them, created as the program gave
//! them), and names up to NAME_MAX and paths up to what the server's PATH_MAX leaves work.
//! Each check looks both through the mount and at the server's directory.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::fd::AsFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::symlink;
use std::path::Path;

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, fstat, mkdirat};
use support::{Mount, Sshd, SshfsC, lacking, needs};

/// `bytes` as a file name.
fn os(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

/// The names in `dir`, as bytes.
fn listed(dir: &Path) -> BTreeSet<Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_vec())
        .collect()
}

/// Names the server has that are not UTF-8, or whose UTF-8 is the escape's own range.
fn server_names() -> Vec<Vec<u8>> {
    vec![
        b"bad\xff\xfe.txt".to_vec(),
        b"caf\xe9".to_vec(),
        // A real U+10FF41 (f4 8f bd 81): the escape must not take it for an escaped byte.
        "real\u{10FF41}char".as_bytes().to_vec(),
        // What the escape of 0xff looks like in UTF-8, as a name of its own.
        b"\xf4\x8f\xbf\xbf".to_vec(),
    ]
}

/// Mounts with the kernel caches off, so every check sees the server's current state.
fn mount(sshd: &Sshd) -> Mount {
    Mount::start(sshd, &["-o", "attr_timeout=0,entry_timeout=0"])
}

#[test]
fn names_that_are_not_utf8_round_trip_byte_for_byte() {
    let sshd = Sshd::start();
    let srv = sshd.root_dir();
    for (i, name) in server_names().iter().enumerate() {
        fs::write(srv.join(os(name)), format!("content {i}")).unwrap();
    }
    fs::create_dir(srv.join(os(b"dir\xe9"))).unwrap();
    fs::write(srv.join(os(b"dir\xe9")).join(os(b"in\xfe")), b"inner").unwrap();
    symlink(os(b"to\xff"), srv.join(os(b"link\xe9"))).unwrap();
    let m = mount(&sshd);
    let mnt = m.path();

    // Server to program: listed, looked up, read, exactly as the server has them.
    let names = listed(mnt);
    for (i, name) in server_names().iter().enumerate() {
        assert!(names.contains(name), "{name:02x?} not in {names:02x?}");
        let path = mnt.join(os(name));
        assert!(fs::symlink_metadata(&path).unwrap().is_file());
        assert_eq!(fs::read(&path).unwrap(), format!("content {i}").as_bytes());
    }
    assert_eq!(
        listed(&mnt.join(os(b"dir\xe9"))),
        [b"in\xfe".to_vec()].into()
    );
    let inner = mnt.join(os(b"dir\xe9")).join(os(b"in\xfe"));
    assert_eq!(fs::read(&inner).unwrap(), b"inner");
    let target = fs::read_link(mnt.join(os(b"link\xe9"))).unwrap();
    assert_eq!(target.as_os_str().as_bytes(), b"to\xff");

    // Program to server: every kind of name-taking call reaches the server byte for byte.
    fs::write(mnt.join(os(b"new\xe9.txt")), b"created").unwrap();
    assert_eq!(fs::read(srv.join(os(b"new\xe9.txt"))).unwrap(), b"created");
    let escape_lookalike = "made\u{10FF41}".as_bytes();
    fs::write(mnt.join(os(escape_lookalike)), b"u").unwrap();
    assert_eq!(fs::read(srv.join(os(escape_lookalike))).unwrap(), b"u");
    fs::create_dir(mnt.join(os(b"sub\xff"))).unwrap();
    assert!(srv.join(os(b"sub\xff")).is_dir());
    fs::write(mnt.join(os(b"sub\xff")).join(os(b"f\xc3")), b"deep").unwrap();
    assert_eq!(
        fs::read(srv.join(os(b"sub\xff")).join(os(b"f\xc3"))).unwrap(),
        b"deep"
    );
    fs::rename(mnt.join(os(b"new\xe9.txt")), mnt.join(os(b"ren\xfe.txt"))).unwrap();
    assert!(!srv.join(os(b"new\xe9.txt")).exists());
    assert_eq!(fs::read(srv.join(os(b"ren\xfe.txt"))).unwrap(), b"created");
    fs::hard_link(mnt.join(os(b"ren\xfe.txt")), mnt.join(os(b"hard\xe9"))).unwrap();
    let (a, b) = (
        fs::metadata(srv.join(os(b"ren\xfe.txt"))).unwrap(),
        fs::metadata(srv.join(os(b"hard\xe9"))).unwrap(),
    );
    assert_eq!(std::os::unix::fs::MetadataExt::ino(&a), {
        std::os::unix::fs::MetadataExt::ino(&b)
    });
    symlink(os(b"ren\xfe.txt"), mnt.join(os(b"sym\xff"))).unwrap();
    let on_server = fs::read_link(srv.join(os(b"sym\xff"))).unwrap();
    assert_eq!(on_server.as_os_str().as_bytes(), b"ren\xfe.txt");
    let shown = fs::read_link(mnt.join(os(b"sym\xff"))).unwrap();
    assert_eq!(shown.as_os_str().as_bytes(), b"ren\xfe.txt");
    assert_eq!(fs::read(mnt.join(os(b"sym\xff"))).unwrap(), b"created");
    let names = listed(mnt);
    for name in [&b"ren\xfe.txt"[..], b"hard\xe9", b"sym\xff", b"sub\xff"] {
        assert!(names.contains(name), "{name:02x?} not in {names:02x?}");
    }
    assert_eq!(
        listed(mnt),
        listed(srv),
        "the mount lists what the server has"
    );

    // And away again.
    fs::remove_file(mnt.join(os(b"sub\xff")).join(os(b"f\xc3"))).unwrap();
    fs::remove_dir(mnt.join(os(b"sub\xff"))).unwrap();
    fs::remove_file(mnt.join(os(b"hard\xe9"))).unwrap();
    assert!(!srv.join(os(b"sub\xff")).exists());
    assert!(!srv.join(os(b"hard\xe9")).exists());
    drop(m);
}

/// A relative path of exactly `len` bytes (components of 250 bytes and a last one for the rest),
/// the directories that lead to it, and its last name.
fn long_path(len: usize) -> (Vec<OsString>, OsString) {
    let mut dirs = Vec::new();
    let mut path = String::new();
    let mut i = 0;
    while len - path.len() > 251 + 10 {
        let name = format!("{i:02}{}", "d".repeat(248));
        path = if path.is_empty() {
            name
        } else {
            format!("{path}/{name}")
        };
        dirs.push(OsString::from(&path));
        i += 1;
    }
    let rest = len - path.len() - 1;
    let file = format!("{path}/{}", "f".repeat(rest));
    assert_eq!(file.len(), len);
    (dirs, OsString::from(file))
}

/// Makes `dirs` and then the file `file` under `base` with *at calls (as pjdfstest does, so the
/// kernel's own PATH_MAX applies to the relative path only); the file's errno, if any.
fn make_long(base: &Path, dirs: &[OsString], file: &OsStr) -> Result<(), nix::Error> {
    let dir = fs::File::open(base).unwrap();
    for d in dirs {
        mkdirat(dir.as_fd(), d.as_os_str(), Mode::from_bits_truncate(0o755))?;
    }
    let fd = openat(
        dir.as_fd(),
        file,
        OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_EXCL,
        Mode::from_bits_truncate(0o644),
    )?;
    fstat(&fd)?;
    Ok(())
}

#[test]
fn name_max_names_and_long_paths() {
    let sshd = Sshd::start();
    let srv = sshd.root_dir();
    let m = mount(&sshd);
    let mnt = m.path();

    // NAME_MAX: 255 bytes, ASCII and not UTF-8 (whose escape inside is 4 times as long).
    for name in [vec![b'n'; 255], vec![0xe9; 255]] {
        fs::write(mnt.join(os(&name)), b"x").unwrap();
        assert_eq!(fs::read(srv.join(os(&name))).unwrap(), b"x");
        assert!(listed(mnt).contains(&name));
        fs::remove_file(mnt.join(os(&name))).unwrap();
    }
    let too_long = mnt.join("n".repeat(256));
    let e = fs::write(&too_long, b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENAMETOOLONG), "{e}");

    // The longest path the server can take: its root, a slash, and the rest up to its
    // PATH_MAX - 1 (4095) bytes.
    let room = 4095 - srv.as_os_str().len() - 1;
    let (dirs, file) = long_path(room);
    make_long(mnt, &dirs, &file).unwrap_or_else(|e| panic!("{room}-byte path: {e}"));
    assert!(srv.join(&file).is_file());
    // One byte more does not fit on the server: ENAMETOOLONG (as the server's own system call
    // said), not EINVAL.
    assert_eq!(create_one_byte_longer(mnt, &file), nix::Error::ENAMETOOLONG);
    drop(m);
}

/// What the C sshfs does with the same long paths (the bar: do at least as well).
#[test]
fn c_sshfs_takes_no_longer_paths_than_sshfs_rs() {
    if lacking(needs::c_sshfs()) {
        return;
    }
    let sshd = Sshd::start();
    let srv = sshd.root_dir();
    let c = SshfsC::start(&sshd, &["-o", "attr_timeout=0,entry_timeout=0"]);
    let room = 4095 - srv.as_os_str().len() - 1;
    let (dirs, file) = long_path(room);
    make_long(c.path(), &dirs, &file).unwrap_or_else(|e| panic!("C sshfs, {room} bytes: {e}"));
    let e = create_one_byte_longer(c.path(), &file);
    eprintln!("C sshfs, a path one byte too long for the server: {e}");
    drop(c);
}

/// The error of creating `file` with one byte more, below `mnt` (it must fail).
fn create_one_byte_longer(mnt: &Path, file: &std::ffi::OsStr) -> nix::Error {
    let longer = OsString::from(format!("{}g", file.to_str().unwrap()));
    let dir = fs::File::open(mnt).unwrap();
    openat(
        dir.as_fd(),
        longer.as_os_str(),
        OFlag::O_CREAT | OFlag::O_WRONLY,
        Mode::from_bits_truncate(0o644),
    )
    .unwrap_err()
}
