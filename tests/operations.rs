//! Every core operation through a real mount against a real sshd, each result checked both
//! through the mount and directly in the server's directory.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{Mount, MountStats, Rng, Sshd, is_mounted, run_command, wait_until};

const CMD_TIMEOUT: Duration = Duration::from_secs(60);

/// Mounts with the kernel caches off, so every check sees the server's current state.
fn mount(sshd: &Sshd) -> Mount {
    Mount::start(sshd, &["-o", "attr_timeout=0,entry_timeout=0"])
}

fn errno(r: std::io::Result<impl Sized>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

fn sh(dir: &Path, script: &str) -> String {
    support::sh_in(dir, script, CMD_TIMEOUT)
}

/// Create, write at offsets, append, O_EXCL, O_TRUNC, truncate, ftruncate, chmod, utimens with
/// UTIME_OMIT, chown, mknod, statfs.
#[test]
fn file_operations_reach_the_server() {
    let sshd = Sshd::start();
    let m = mount(&sshd);
    let (mnt, srv) = (m.path(), sshd.root_dir());

    fs::write(mnt.join("a"), b"hello world").unwrap();
    assert_eq!(fs::read(srv.join("a")).unwrap(), b"hello world");
    let f = OpenOptions::new().write(true).open(mnt.join("a")).unwrap();
    f.write_all_at(b"WORLD", 6).unwrap();
    f.write_all_at(b"!", 20).unwrap(); // beyond EOF: a hole of zeros
    drop(f);
    let mut want = b"hello WORLD".to_vec();
    want.resize(20, 0);
    want.push(b'!');
    assert_eq!(fs::read(srv.join("a")).unwrap(), want);
    assert_eq!(fs::read(mnt.join("a")).unwrap(), want);

    // O_APPEND appends even when the server-side file grew behind our back.
    fs::write(srv.join("log"), b"1\n").unwrap();
    let mut f = OpenOptions::new()
        .append(true)
        .open(mnt.join("log"))
        .unwrap();
    fs::write(srv.join("log"), b"1\n2\n").unwrap();
    f.write_all(b"3\n").unwrap();
    drop(f);
    assert_eq!(fs::read(srv.join("log")).unwrap(), b"1\n2\n3\n");

    // O_EXCL on an existing file.
    let r = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(mnt.join("a"));
    assert_eq!(errno(r), libc::EEXIST);
    // O_TRUNC.
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(mnt.join("log"))
        .unwrap();
    assert_eq!(fs::metadata(srv.join("log")).unwrap().len(), 0);

    // truncate (path) and ftruncate (handle), growing and shrinking.
    File::options()
        .write(true)
        .open(mnt.join("a"))
        .unwrap()
        .set_len(5)
        .unwrap();
    assert_eq!(fs::read(srv.join("a")).unwrap(), b"hello");
    let p = std::ffi::CString::new(mnt.join("a").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::truncate(p.as_ptr(), 8) }, 0);
    assert_eq!(fs::read(srv.join("a")).unwrap(), b"hello\0\0\0");

    // chmod.
    fs::set_permissions(mnt.join("a"), fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(fs::metadata(srv.join("a")).unwrap().mode() & 0o7777, 0o640);
    assert_eq!(fs::metadata(mnt.join("a")).unwrap().mode() & 0o7777, 0o640);

    // utimens: set both, then change mtime only (UTIME_OMIT keeps atime).
    let set_times = |atime: libc::timespec, mtime: libc::timespec| {
        let ts = [atime, mtime];
        assert_eq!(
            unsafe { libc::utimensat(libc::AT_FDCWD, p.as_ptr(), ts.as_ptr(), 0) },
            0
        );
    };
    let t = |s: i64| libc::timespec {
        tv_sec: s,
        tv_nsec: 0,
    };
    set_times(t(1_000_000_000), t(1_100_000_000));
    let md = fs::metadata(srv.join("a")).unwrap();
    assert_eq!((md.atime(), md.mtime()), (1_000_000_000, 1_100_000_000));
    set_times(
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        t(1_200_000_000),
    );
    let md = fs::metadata(srv.join("a")).unwrap();
    assert_eq!((md.atime(), md.mtime()), (1_000_000_000, 1_200_000_000));
    assert_eq!(fs::metadata(mnt.join("a")).unwrap().mtime(), 1_200_000_000);

    // chown (the test server runs as root, so it may).
    std::os::unix::fs::chown(mnt.join("a"), Some(1234), Some(5678)).unwrap();
    let md = fs::metadata(srv.join("a")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1234, 5678));
    std::os::unix::fs::chown(mnt.join("a"), None, Some(42)).unwrap();
    let md = fs::metadata(srv.join("a")).unwrap();
    assert_eq!(
        (md.uid(), md.gid()),
        (1234, 42),
        "chown of gid only keeps the uid"
    );

    // mknod: regular files work, FIFOs and devices cannot be made over SFTP.
    let node = std::ffi::CString::new(mnt.join("node").to_str().unwrap()).unwrap();
    assert_eq!(
        unsafe { libc::mknod(node.as_ptr(), libc::S_IFREG | 0o600, 0) },
        0
    );
    assert!(srv.join("node").is_file());
    let fifo = std::ffi::CString::new(mnt.join("fifo").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::EPERM)
    );

    // statfs reports the server's filesystem.
    let out = sh(mnt, "stat -f -c '%b %S' .");
    let blocks: u64 = out.split_whitespace().next().unwrap().parse().unwrap();
    assert!(blocks > 0, "statfs: {out}");

    // Reads larger than one SFTP request, at an odd offset.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(srv.join("big"), &big).unwrap();
    let mut f = File::open(mnt.join("big")).unwrap();
    f.seek(SeekFrom::Start(12345)).unwrap();
    let mut got = Vec::new();
    f.read_to_end(&mut got).unwrap();
    assert_eq!(got, big[12345..]);
}

/// mkdir/rmdir/unlink/rename with the errno a local filesystem gives, subtree moves, inode
/// numbers that stay put, large directories and unusual names.
/// GNU tar and `cp -a` create each file with O_EXCL, write it, then futimens, fchown and fchmod
/// it while it is open (those changes ride behind its writes): with the default cache times,
/// every file shows its contents, mode, owner and mtime through the mount at once, and the
/// server has them.
#[test]
fn unpacked_and_copied_files_keep_mode_owner_and_times() {
    let sshd = Sshd::start();
    let m = Mount::start(&sshd, &[]);
    let local = tempfile::tempdir().unwrap();
    sh(
        local.path(),
        "mkdir -p src/sub && printf 'echo hi\\n' > src/run.sh && printf secret > src/key \
         && head -c 300000 /dev/urandom > src/sub/blob && chmod 755 src/run.sh \
         && chmod 600 src/key && chmod 2640 src/sub/blob && chown 4321:4322 src/key src/sub/blob \
         && touch -d 2021-02-03T04:05:06 src/run.sh src/key src/sub/blob \
         && tar -cf t.tar -C src .",
    );
    let src = local.path().join("src");
    sh(
        m.path(),
        &format!(
            "mkdir x && tar -xpf {} -C x && cp -a {} cp",
            local.path().join("t.tar").display(),
            src.display()
        ),
    );
    for top in ["x", "cp"] {
        for name in ["run.sh", "key", "sub/blob"] {
            let want = fs::metadata(src.join(name)).unwrap();
            let through = m.path().join(top).join(name);
            let server = sshd.root_dir().join(top).join(name);
            for (what, path) in [("through the mount", &through), ("on the server", &server)] {
                let got = fs::metadata(path).unwrap();
                let at = format!("{top}/{name} {what}");
                assert_eq!(got.mode(), want.mode(), "{at}: mode");
                assert_eq!(
                    (got.uid(), got.gid()),
                    (want.uid(), want.gid()),
                    "{at}: owner"
                );
                assert_eq!(got.mtime(), want.mtime(), "{at}: mtime");
                assert_eq!(got.len(), want.len(), "{at}: size");
                assert!(
                    fs::read(path).unwrap() == fs::read(src.join(name)).unwrap(),
                    "{at}"
                );
            }
        }
    }
    let behind = MountStats::of(m.path()).get("fsetstat=");
    assert!(
        behind >= 6,
        "the changes went behind the writes: {behind} FSETSTATs"
    );
}

/// A large file's writes go through several SFTP channels at once: what a program does with
/// the file meanwhile (stat by name, read back through the same fd and another one, overwrite
/// what it wrote before, truncate and grow again) sees every byte written, and the server ends
/// with the file a local one would be.
#[test]
fn a_large_write_through_several_channels_stays_one_file() {
    const MIB: usize = 1024 * 1024;
    let sshd = Sshd::start();
    let m = Mount::start(&sshd, &[]);
    let path = m.path().join("big");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    let mut rng = Rng::new(9);
    let mut want: Vec<u8> = Vec::new();
    for step in 0..32usize {
        let piece = rng.bytes(MIB + 4096);
        let at = want.len();
        f.write_all_at(&piece, at as u64).unwrap();
        want.extend_from_slice(&piece);
        if step % 4 == 3 {
            assert_eq!(
                fs::metadata(&path).unwrap().len(),
                want.len() as u64,
                "stat, step {step}"
            );
            let mut back = vec![0; 3 * MIB];
            let from = want.len() - back.len();
            f.read_exact_at(&mut back, from as u64).unwrap();
            assert!(
                back == want[from..],
                "read back through the same fd, step {step}"
            );
            let other = File::open(&path).unwrap();
            other.read_exact_at(&mut back, from as u64).unwrap();
            assert!(
                back == want[from..],
                "read back through another fd, step {step}"
            );
            // Overwrite a stretch written earlier, across stripe boundaries.
            let over = rng.bytes(2 * MIB + 77);
            let at = want.len() / 2 + 123;
            f.write_all_at(&over, at as u64).unwrap();
            want[at..at + over.len()].copy_from_slice(&over);
        }
        if step == 20 {
            let keep = want.len() - 5 * MIB;
            f.set_len(keep as u64).unwrap();
            want.truncate(keep);
        }
    }
    f.sync_all().unwrap();
    drop(f);
    let got = fs::read(sshd.root_dir().join("big")).unwrap();
    assert_eq!(got.len(), want.len(), "size on the server");
    assert!(got == want, "contents on the server");
    let stats = MountStats::of(m.path());
    assert_eq!(stats.get("files="), 1, "striped: {stats:?}");
    assert_eq!(stats.get("handle-misuse="), 0);
}

/// On a long link the other channels' handles open behind a large file's first writes, and
/// striping starts as soon as they are open (before the 8 MiB it waits for on a short link),
/// from where the writes had got to: bytes before that stay on the first channel, so an
/// overwrite across that point, and one across stripes, still lands in program order.
#[test]
fn on_a_long_link_striping_starts_behind_the_first_writes() {
    const MIB: usize = 1024 * 1024;
    let sshd = Sshd::start();
    let proxy = support::FaultProxy::start(sshd.port());
    proxy.set_latency(Duration::from_millis(10));
    let m = Mount::start_via(&sshd, proxy.port(), &[]);
    let path = m.path().join("big");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    let mut rng = Rng::new(21);
    let mut want: Vec<u8> = Vec::new();
    let put = |want: &mut Vec<u8>, at: usize, bytes: &[u8]| {
        f.write_all_at(bytes, at as u64).unwrap();
        if want.len() < at + bytes.len() {
            want.resize(at + bytes.len(), 0);
        }
        want[at..at + bytes.len()].copy_from_slice(bytes);
    };
    // 1.5 MiB starts the opening; small writes follow, slowly, until striping started (the
    // first write after the handles are open starts it), then a few more.
    put(&mut want, 0, &rng.bytes(MIB + MIB / 2));
    let mut striped_at = None;
    for step in 0..40 {
        let at = want.len();
        put(&mut want, at, &rng.bytes(MIB / 8 + 77));
        if striped_at.is_none() && MountStats::of(m.path()).get("files=") == 1 {
            striped_at = Some(step);
        }
        if striped_at.is_some_and(|s| step >= s + 8) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(striped_at.is_some(), "never striped\n{}", m.stderr());
    // Across the point striping started from, and across stripes.
    put(&mut want, MIB, &rng.bytes(2 * MIB));
    put(&mut want, 3 * MIB + 5, &rng.bytes(MIB + 3));
    let mut back = vec![0; want.len()];
    File::open(&path)
        .unwrap()
        .read_exact_at(&mut back, 0)
        .unwrap();
    assert!(back == want, "read back through another fd");
    f.sync_all().unwrap();
    drop(f);
    let got = fs::read(sshd.root_dir().join("big")).unwrap();
    assert!(want.len() < 8 * MIB, "below where a short link stripes");
    assert_eq!(got.len(), want.len(), "size on the server");
    assert!(got == want, "contents on the server");
    let stats = MountStats::of(m.path());
    assert_eq!(stats.get("files="), 1, "striped: {stats:?}\n{}", m.stderr());
    assert_eq!(stats.get("handle-misuse="), 0);
}

/// On a very long link (100 ms) a large write takes more channels than one SSH connection
/// gives: a second connection to the server, made when a large write first asks for it (not at
/// mount: a mount that writes no large file makes one login), carries the rest. The file lands
/// whole, both on the server and read back; a cut ends both connections, and after the
/// reconnect the next large write makes a second one again.
#[test]
fn on_a_very_long_link_a_second_connection_carries_more_channels() {
    const MIB: usize = 1024 * 1024;
    let sshd = Sshd::start();
    let proxy = support::FaultProxy::start(sshd.port());
    proxy.set_latency(Duration::from_millis(50));
    let m = Mount::start_via(&sshd, proxy.port(), &[]);
    fs::write(m.path().join("small"), vec![7u8; 100_000]).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        proxy.connections(),
        1,
        "a second connection without a large write"
    );
    let mut rng = Rng::new(33);
    for round in 0..2 {
        let name = format!("big{round}");
        let want = rng.bytes(40 * MIB + 5);
        let mut f = File::create(m.path().join(&name)).unwrap();
        // The first MiBs start the other channels' opening, and the second connection's.
        f.write_all(&want[..4 * MIB]).unwrap();
        assert!(
            wait_until(Duration::from_secs(30), || {
                MountStats::of(m.path()).get("connections=") == 2
            }),
            "round {round}: no second connection in use ({} open)\n{}",
            proxy.connections(),
            m.stderr()
        );
        f.write_all(&want[4 * MIB..]).unwrap();
        f.sync_all().unwrap();
        drop(f);
        let got = fs::read(sshd.root_dir().join(&name)).unwrap();
        assert_eq!(got.len(), want.len(), "round {round}: size on the server");
        assert!(got == want, "round {round}: contents on the server");
        assert_eq!(proxy.connections(), 2, "round {round}");
        let stats = MountStats::of(m.path());
        assert!(stats.get("channels=") > 8, "round {round}: {stats:?}");
        assert_eq!(stats.get("files="), round + 1, "striped: {stats:?}");
        if round == 0 {
            let back = fs::read(m.path().join(&name)).unwrap();
            assert!(back == want, "read back through the mount");
            proxy.cut();
            // The next request waits for the reconnect (which may have begun already: the
            // cut ends both connections at once, and the mount notices).
            fs::write(m.path().join("after-cut"), b"x").unwrap();
            assert_eq!(fs::read(sshd.root_dir().join("after-cut")).unwrap(), b"x");
            let stats = MountStats::of(m.path());
            assert!(stats.get("reconnects=") >= 1, "{stats:?}");
            assert_eq!(stats.get("connections="), 1, "{stats:?}");
            assert_eq!(
                proxy.connections(),
                1,
                "one login until a large write asks again"
            );
        }
    }
}

#[test]
fn directory_operations_and_errnos() {
    let sshd = Sshd::start();
    let m = mount(&sshd);
    let (mnt, srv) = (m.path(), sshd.root_dir());

    fs::create_dir(mnt.join("d")).unwrap();
    assert!(srv.join("d").is_dir());
    assert_eq!(errno(fs::create_dir(mnt.join("d"))), libc::EEXIST);
    fs::write(mnt.join("d/f"), b"x").unwrap();
    assert_eq!(errno(fs::remove_dir(mnt.join("d"))), libc::ENOTEMPTY);
    assert_eq!(errno(fs::remove_file(mnt.join("d"))), libc::EISDIR);
    assert_eq!(errno(fs::remove_dir(mnt.join("d/f"))), libc::ENOTDIR);
    assert_eq!(errno(fs::remove_file(mnt.join("missing"))), libc::ENOENT);

    // rename replaces an existing file, like rename(2).
    fs::write(mnt.join("x"), b"new").unwrap();
    fs::write(mnt.join("y"), b"old").unwrap();
    fs::rename(mnt.join("x"), mnt.join("y")).unwrap();
    assert_eq!(fs::read(srv.join("y")).unwrap(), b"new");
    assert!(!srv.join("x").exists());

    // rename a directory: the subtree moves, inode numbers follow.
    let ino = fs::metadata(mnt.join("d/f")).unwrap().ino();
    fs::rename(mnt.join("d"), mnt.join("e")).unwrap();
    assert_eq!(fs::read(mnt.join("e/f")).unwrap(), b"x");
    assert_eq!(fs::metadata(mnt.join("e/f")).unwrap().ino(), ino);
    assert!(srv.join("e/f").is_file() && !srv.join("d").exists());
    // same path, same inode number
    assert_eq!(
        fs::metadata(mnt.join("e")).unwrap().ino(),
        fs::metadata(mnt.join("e")).unwrap().ino()
    );

    // rename over a non-empty directory / dir over file / file over dir.
    fs::create_dir(mnt.join("g")).unwrap();
    fs::create_dir(mnt.join("full")).unwrap();
    fs::write(mnt.join("full/z"), b"").unwrap();
    assert_eq!(
        errno(fs::rename(mnt.join("g"), mnt.join("full"))),
        libc::ENOTEMPTY
    );
    assert_eq!(
        errno(fs::rename(mnt.join("g"), mnt.join("y"))),
        libc::ENOTDIR
    );
    assert_eq!(
        errno(fs::rename(mnt.join("y"), mnt.join("g"))),
        libc::EISDIR
    );
    // rename over an empty directory works.
    fs::create_dir(mnt.join("empty")).unwrap();
    fs::rename(mnt.join("g"), mnt.join("empty")).unwrap();
    assert!(srv.join("empty").is_dir() && !srv.join("g").exists());

    // Names: spaces, newlines, UTF-8, 255 bytes.
    let long = "n".repeat(255);
    for name in ["with space", "new\nline", "ünïcødé-名前", long.as_str()] {
        fs::write(mnt.join(name), name.as_bytes()).unwrap();
        assert_eq!(
            fs::read(srv.join(name)).unwrap(),
            name.as_bytes(),
            "{name:?}"
        );
    }

    // A directory larger than one READDIR page, listed through the mount.
    fs::create_dir(srv.join("many")).unwrap();
    for i in 0..1500 {
        File::create(srv.join(format!("many/file-{i:04}"))).unwrap();
    }
    let mut names: Vec<String> = fs::read_dir(mnt.join("many"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 1500);
    assert_eq!(names[0], "file-0000");
    assert_eq!(names[1499], "file-1499");
    // ls -l: types and sizes come with the listing.
    let out = sh(mnt, "ls -l many | grep -c '^-rw'");
    assert_eq!(out.trim(), "1500");
}

/// Symlinks (also dangling), readlink, `touch -h`/`chown -h` on the link itself, hard links
/// with the server's link count.
#[test]
fn links() {
    let sshd = Sshd::start();
    let m = mount(&sshd);
    let (mnt, srv) = (m.path(), sshd.root_dir());

    fs::write(mnt.join("target"), b"t").unwrap();
    symlink("target", mnt.join("link")).unwrap();
    assert_eq!(
        fs::read_link(srv.join("link")).unwrap(),
        Path::new("target")
    );
    assert_eq!(
        fs::read_link(mnt.join("link")).unwrap(),
        Path::new("target")
    );
    assert_eq!(fs::read(mnt.join("link")).unwrap(), b"t");
    symlink("nowhere", mnt.join("dangling")).unwrap();
    assert_eq!(
        fs::read_link(srv.join("dangling")).unwrap(),
        Path::new("nowhere")
    );
    assert_eq!(errno(symlink("x", mnt.join("link"))), libc::EEXIST);

    // touch -h changes the link, not its target, and works on a dangling link.
    let target_mtime = fs::metadata(srv.join("target")).unwrap().mtime();
    sh(mnt, "touch -h -d '2001-02-03 04:05:06 UTC' link dangling");
    assert_eq!(
        fs::symlink_metadata(srv.join("link")).unwrap().mtime(),
        981_173_106
    );
    assert_eq!(
        fs::symlink_metadata(srv.join("dangling")).unwrap().mtime(),
        981_173_106
    );
    assert_eq!(
        fs::metadata(srv.join("target")).unwrap().mtime(),
        target_mtime
    );
    // chown -h changes the link's owner only.
    sh(mnt, "chown -h 4321:4321 link");
    assert_eq!(fs::symlink_metadata(srv.join("link")).unwrap().uid(), 4321);
    assert_eq!(fs::metadata(srv.join("target")).unwrap().uid(), 0);

    // Hard link: same content on the server, link count 2 there and through the mount.
    fs::hard_link(mnt.join("target"), mnt.join("hard")).unwrap();
    assert_eq!(fs::metadata(srv.join("target")).unwrap().nlink(), 2);
    assert_eq!(
        fs::metadata(srv.join("hard")).unwrap().ino(),
        fs::metadata(srv.join("target")).unwrap().ino()
    );
    assert_eq!(fs::metadata(mnt.join("hard")).unwrap().nlink(), 2);
    // A fresh listing reports the server's count too.
    let out = sh(mnt, "ls -l hard");
    assert!(out.split_whitespace().nth(1) == Some("2"), "ls -l: {out}");
}

/// A hard link made through the mount is one file through the mount too, with the kernel's
/// caches on (its defaults): one inode number for both names, st_nlink 2 on both at once, and a
/// change through one name seen through the other at once. An open file whose last name is
/// removed reports st_nlink 0, as on a local filesystem.
#[test]
fn hard_links_are_one_inode_and_an_unlinked_open_file_has_no_links() {
    let sshd = Sshd::start();
    let m = Mount::start(&sshd, &[]);
    let (mnt, srv) = (m.path(), sshd.root_dir());

    fs::write(mnt.join("a"), b"one").unwrap();
    assert_eq!(fs::metadata(mnt.join("a")).unwrap().nlink(), 1); // now in the kernel's cache
    fs::hard_link(mnt.join("a"), mnt.join("b")).unwrap();
    let (a, b) = (
        fs::metadata(mnt.join("a")).unwrap(),
        fs::metadata(mnt.join("b")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino(), "one file, one inode number");
    assert_eq!((a.nlink(), b.nlink()), (2, 2));

    fs::write(mnt.join("b"), b"longer content").unwrap();
    fs::set_permissions(mnt.join("b"), fs::Permissions::from_mode(0o600)).unwrap();
    let a = fs::metadata(mnt.join("a")).unwrap();
    assert_eq!((a.len(), a.mode() & 0o777), (14, 0o600));
    assert_eq!(fs::read(mnt.join("a")).unwrap(), b"longer content");
    assert_eq!(fs::read(srv.join("a")).unwrap(), b"longer content");

    fs::remove_file(mnt.join("b")).unwrap();
    assert_eq!(fs::metadata(mnt.join("a")).unwrap().nlink(), 1);
    assert!(!srv.join("b").exists());

    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(mnt.join("a"))
        .unwrap();
    fs::remove_file(mnt.join("a")).unwrap();
    assert_eq!(
        f.metadata().unwrap().nlink(),
        0,
        "fstat after the last name is gone"
    );
    f.write_all(b"!").unwrap();
    assert_eq!(f.metadata().unwrap().len(), 14);
    drop(f);
    assert!(!srv.join("a").exists());
}

/// The everyday workflow of the issue: cp -r in and out, tar, git, in-place edit, mmap, rm -rf,
/// with the server's folder matching byte for byte.
#[test]
fn everyday_workflows() {
    let sshd = Sshd::start();
    let m = mount(&sshd);
    let (mnt, srv) = (m.path(), sshd.root_dir());
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src");
    fs::create_dir_all(src.join("sub/deeper")).unwrap();
    for i in 0..50 {
        let data: Vec<u8> = (0..(i * 997)).map(|j| (j ^ i) as u8).collect();
        fs::write(src.join(format!("sub/f{i}")), &data).unwrap();
    }
    fs::write(src.join("sub/deeper/z"), b"zzz").unwrap();
    symlink("../f1", src.join("sub/deeper/l")).unwrap();

    sh(mnt, &format!("cp -a {} tree", src.display()));
    sh(
        local.path(),
        &format!("diff -r {} {}", src.display(), srv.join("tree").display()),
    );
    sh(
        local.path(),
        &format!("cp -a {} back", mnt.join("tree").display()),
    );
    sh(local.path(), &format!("diff -r {} back", src.display()));

    // tar: pack locally, unpack through the mount.
    sh(local.path(), "tar cf t.tar src");
    sh(
        mnt,
        &format!(
            "mkdir un && tar xf {} -C un",
            local.path().join("t.tar").display()
        ),
    );
    sh(
        local.path(),
        &format!("diff -r src {}", srv.join("un/src").display()),
    );

    // git.
    let git = "git -c user.email=t@t -c user.name=t -c init.defaultBranch=main";
    sh(
        mnt,
        &format!(
            "mkdir repo && cd repo && {git} init -q && echo one > a && {git} add a && {git} commit -qm first"
        ),
    );
    sh(
        mnt,
        &format!("cd repo && echo two >> a && {git} commit -qam second"),
    );
    let status = sh(
        mnt,
        &format!("cd repo && {git} status --porcelain && {git} log --oneline | wc -l"),
    );
    assert_eq!(status.trim(), "2");
    let fsck = sh(
        srv,
        &format!("cd repo && {git} fsck --full 2>&1; echo rc=$?"),
    );
    assert!(fsck.contains("rc=0"), "git fsck on the server: {fsck}");

    // In-place edit (sed -i writes a temp file and renames it over).
    fs::write(mnt.join("conf"), b"key=old\nother=1\n").unwrap();
    sh(mnt, "sed -i 's/old/new/' conf");
    assert_eq!(fs::read(srv.join("conf")).unwrap(), b"key=new\nother=1\n");

    // mmap read.
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    fs::write(srv.join("mapped"), &data).unwrap();
    let f = File::open(mnt.join("mapped")).unwrap();
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            data.len(),
            libc::PROT_READ,
            libc::MAP_SHARED,
            std::os::fd::AsRawFd::as_raw_fd(&f),
            0,
        )
    };
    assert_ne!(map, libc::MAP_FAILED);
    let mapped = unsafe { std::slice::from_raw_parts(map as *const u8, data.len()) };
    assert!(mapped == data.as_slice(), "mmap content differs");
    unsafe { libc::munmap(map, data.len()) };

    // rm -rf everything.
    sh(mnt, "rm -rf tree un repo conf mapped");
    assert_eq!(
        fs::read_dir(srv).unwrap().count(),
        0,
        "server folder is empty"
    );
}

/// Data written through the mount is on the server once unmount returns, without fsync.
#[test]
fn data_is_on_the_server_after_unmount() {
    let sshd = Sshd::start();
    let m = Mount::start(&sshd, &[]);
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 241) as u8).collect();
    let mut f = File::create(m.path().join("out")).unwrap();
    f.write_all(&data).unwrap();
    drop(f);
    let status = m.unmount();
    assert!(status.success(), "sshfs-rs exit status {status}");
    assert_eq!(fs::read(sshd.root_dir().join("out")).unwrap(), data);
}

/// In the foreground, SIGTERM and SIGINT unmount cleanly and exit 0, with no stale mountpoint.
#[test]
fn foreground_signals_unmount_cleanly() {
    let sshd = Sshd::start();
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let m = Mount::start(&sshd, &[]);
        let mnt = m.path().to_path_buf();
        fs::write(mnt.join("f"), b"x").unwrap();
        assert_eq!(unsafe { libc::kill(m.pid() as i32, sig) }, 0);
        assert!(
            wait_until(Duration::from_secs(10), || !is_mounted(&mnt)),
            "still mounted after signal {sig}: {}",
            m.stderr()
        );
        assert!(fs::read_dir(&mnt).is_ok(), "mountpoint usable again");
        let status = m.unmount();
        assert!(status.success(), "exit status after signal {sig}: {status}");
    }
}

/// Reading a missing name gives ENOENT, and the remote home is mounted for an empty path.
#[test]
fn missing_names_and_home_mount() {
    let sshd = Sshd::start();
    let m = Mount::start_remote(&sshd, "", &[]);
    // root's home on the test machine: whatever it is, the mount shows the same entries.
    let home = nix_home();
    let mut ours: Vec<_> = fs::read_dir(m.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let mut theirs: Vec<_> = fs::read_dir(&home)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);
    let e = fs::metadata(m.path().join("definitely-not-here")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

/// root's home directory from the password database (what sshd uses).
fn nix_home() -> std::path::PathBuf {
    let out = run_command(Command::new("getent").args(["passwd", "root"]), CMD_TIMEOUT);
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    std::path::PathBuf::from(line.trim().split(':').nth(5).unwrap())
}

/// Sequential reads are served from the read-ahead (several MiB ahead of the reader), yet a
/// write through another descriptor, and a truncate, are seen by the reader's next read. And
/// the read-ahead does not change what is read.
#[test]
fn read_ahead_never_serves_stale_or_wrong_bytes() {
    const MIB: usize = 1 << 20;
    let sshd = Sshd::start();
    let m = Mount::start(&sshd, &[]);
    let (mnt, srv) = (m.path(), sshd.root_dir());
    let data: Vec<u8> = (0..16 * MIB as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    fs::write(srv.join("big"), &data).unwrap();

    // (Nothing read before: the kernel's page cache must not hold the file.)
    // 0..6 MiB read in 64 KiB steps: our window is now 8 MiB ahead, far past the kernel's.
    let mut reader = File::open(mnt.join("big")).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    for step in 0..96 {
        reader.read_exact(&mut buf).unwrap();
        assert!(buf[..] == data[step * buf.len()..(step + 1) * buf.len()]);
    }
    // Let the pieces ahead arrive, so that they hold the bytes from before the write.
    std::thread::sleep(Duration::from_millis(300));
    let writer = OpenOptions::new()
        .write(true)
        .open(mnt.join("big"))
        .unwrap();
    let at = 10 * MIB;
    let page = [0xAB_u8; 4096];
    writer.write_all_at(&page, at as u64).unwrap();
    // A whole page written is kept in the kernel's page cache; drop it (as memory pressure or a
    // changed mtime would), so the reader's next READ of it comes to us.
    // SAFETY: a valid open descriptor; fadvise only drops clean cached pages.
    let dropped =
        unsafe { libc::posix_fadvise(reader.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(dropped, 0, "posix_fadvise");
    let mut rest = vec![0u8; 6 * MIB];
    reader.read_exact(&mut rest).unwrap(); // 6..12 MiB, sequentially
    let mut want = data[6 * MIB..12 * MIB].to_vec();
    want[at - 6 * MIB..at - 6 * MIB + 4096].copy_from_slice(&page);
    assert!(
        rest == want,
        "the reader must see the other descriptor's write"
    );

    // A truncate through the writer: the reader meets the new end.
    writer.set_len((12 * MIB + 10) as u64).unwrap();
    let mut tail = Vec::new();
    reader.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, data[12 * MIB..12 * MIB + 10]);
}

/// Files read one after the other in name order are opened and read ahead, yet every read is
/// right: a file changed on the server after its open-ahead expired, and one written through
/// the mount after it was opened ahead, read new. No server handle is left open afterwards.
#[test]
fn open_ahead_serves_files_read_in_order_and_leaks_nothing() {
    let sshd = Sshd::start();
    let dir = sshd.root_dir().join("src");
    fs::create_dir(&dir).unwrap();
    let content = |i: usize, tag: &str| format!("file {i:02} {tag}\n").repeat(50 + i);
    for i in 0..30 {
        fs::write(dir.join(format!("f{i:02}")), content(i, "old")).unwrap();
    }
    let m = Mount::start(&sshd, &[]);
    let src = m.path().join("src");
    let server_fds = || -> usize {
        sshd.sftp_server_pids()
            .into_iter()
            .map(support::open_fd_count)
            .sum()
    };
    assert_eq!(fs::read_dir(&src).unwrap().count(), 30);
    let baseline = server_fds();

    for i in 0..15 {
        let got = fs::read_to_string(src.join(format!("f{i:02}"))).unwrap();
        assert_eq!(got, content(i, "old"), "f{i:02}");
    }
    let taken = support::MountStats::of(m.path()).get("taken=");
    assert!(
        taken >= 10,
        "only {taken} of 15 in-order opens found their file opened ahead"
    );

    // f15.. are opened ahead now. f20 changes on the server (same size); once the open-ahead
    // has expired, the next in-order opens fetch it anew.
    fs::write(dir.join("f20"), content(20, "new")).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    for i in 15..22 {
        let want = content(i, if i == 20 { "new" } else { "old" });
        assert_eq!(
            fs::read_to_string(src.join(format!("f{i:02}"))).unwrap(),
            want,
            "f{i:02}"
        );
    }
    // f22.. are opened ahead now; a write through the mount forgets them.
    fs::write(src.join("f25"), content(25, "NEW")).unwrap();
    for i in 22..30 {
        let want = content(i, if i == 25 { "NEW" } else { "old" });
        assert_eq!(
            fs::read_to_string(src.join(format!("f{i:02}"))).unwrap(),
            want,
            "f{i:02}"
        );
    }
    assert!(
        wait_until(Duration::from_secs(5), || server_fds() <= baseline),
        "sftp-server holds {} fds, {baseline} before: open-ahead handles leaked",
        server_fds()
    );
}

/// Issue 18 (pjdfstest rename/09.t and 10.t with `-o allow_other,default_permissions`): renames
/// by another user in sticky directories, some refused by the sticky rule, leave every name as
/// the server has it. (The 33 assertions there that pass on the C sshfs and not here are not a
/// stale cache: the C sshfs fails `lchown` of a symlink (its SETSTAT follows the link to a
/// missing target), so from the first `symlink`, `lchown` of each script on it goes down
/// another path, where its expectations, made for a filesystem on which `mkfifo` succeeds,
/// happen to match.) Kernel caches on, as in that run.
#[test]
fn renames_in_sticky_directories_by_another_user_keep_names_in_step() {
    const NOBODY: u32 = 65534;
    let sshd = Sshd::start();
    fs::set_permissions(sshd.root_dir(), fs::Permissions::from_mode(0o755)).unwrap();
    let m = Mount::start(&sshd, &["-o", "allow_other,default_permissions"]);
    let (mnt, srv) = (m.path(), sshd.root_dir());
    // The user must reach the mount: the harness makes its parent 0700.
    let parent = mnt.parent().unwrap();
    fs::set_permissions(parent, fs::Permissions::from_mode(0o755)).unwrap();
    let chown = |p: &Path, id: u32| std::os::unix::fs::lchown(p, Some(id), Some(id)).unwrap();
    // rename(2) as the other user (coreutils mv: RENAME_NOREPLACE first, then rename).
    let mv_as_nobody = |from: &str, to: &str| {
        let out = run_command(
            Command::new("mv")
                .args(["-f", "-T"])
                .arg(mnt.join(from))
                .arg(mnt.join(to))
                .uid(NOBODY)
                .gid(NOBODY),
            CMD_TIMEOUT,
        );
        out.status.success()
    };
    // What the mount shows of `rel` is what the server has: there or not, type and owner.
    let in_step = |rel: &str| {
        let shown = |p: &Path| {
            fs::symlink_metadata(p)
                .ok()
                .map(|m| (m.mode() & libc::S_IFMT, m.uid(), m.gid()))
        };
        let (through_mount, on_server) = (shown(&mnt.join(rel)), shown(&srv.join(rel)));
        assert_eq!(through_mount, on_server, "{rel}: the mount vs the server");
        through_mount
    };
    let ino = |rel: &str| fs::symlink_metadata(mnt.join(rel)).unwrap().ino();
    let (file, link) = (libc::S_IFREG, libc::S_IFLNK);

    fs::create_dir(mnt.join("from")).unwrap();
    chown(&mnt.join("from"), NOBODY);
    fs::create_dir(mnt.join("sticky")).unwrap();
    fs::set_permissions(mnt.join("sticky"), fs::Permissions::from_mode(0o1777)).unwrap();
    chown(&mnt.join("sticky"), NOBODY);
    fs::write(mnt.join("from/f"), b"f").unwrap();
    chown(&mnt.join("from/f"), NOBODY);
    let f = ino("from/f");

    // The user owns the sticky directory: a rename over a symlink there, and back.
    symlink("test", mnt.join("sticky/t")).unwrap();
    chown(&mnt.join("sticky/t"), NOBODY); // the link itself (the C sshfs: ENOENT)
    assert_eq!(in_step("sticky/t"), Some((link, NOBODY, NOBODY)));
    assert!(mv_as_nobody("from/f", "sticky/t"));
    assert_eq!(in_step("from/f"), None);
    assert_eq!(in_step("sticky/t"), Some((file, NOBODY, NOBODY)));
    assert_eq!(ino("sticky/t"), f, "the moved file keeps its inode number");
    assert!(mv_as_nobody("sticky/t", "from/f"));
    assert_eq!(in_step("sticky/t"), None);
    assert_eq!(ino("from/f"), f);

    // Neither the sticky directory nor the target is the user's: the kernel refuses, and
    // both names stay.
    chown(&mnt.join("sticky"), 0);
    symlink("test", mnt.join("sticky/t")).unwrap();
    assert!(
        !mv_as_nobody("from/f", "sticky/t"),
        "the sticky rule refuses"
    );
    assert_eq!(in_step("from/f"), Some((file, NOBODY, NOBODY)));
    assert_eq!(in_step("sticky/t"), Some((link, 0, 0)));
    assert_eq!(ino("from/f"), f);

    // A name the user may take (none there): the rename goes through, and the names follow.
    fs::remove_file(mnt.join("sticky/t")).unwrap();
    assert_eq!(in_step("sticky/t"), None);
    assert!(mv_as_nobody("from/f", "sticky/t"));
    assert_eq!(in_step("from/f"), None);
    assert_eq!(in_step("sticky/t"), Some((file, NOBODY, NOBODY)));
    chown(&mnt.join("sticky/t"), 0);
    assert_eq!(in_step("sticky/t"), Some((file, 0, 0)));
    // No longer the user's file: moving it away is refused, and it stays.
    assert!(
        !mv_as_nobody("sticky/t", "from/f"),
        "the sticky rule refuses"
    );
    assert_eq!(in_step("sticky/t"), Some((file, 0, 0)));
    assert_eq!(in_step("from/f"), None);
}
