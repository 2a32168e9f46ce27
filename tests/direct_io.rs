//! `-o direct_io` through a real mount: reads and writes bypass the page cache, so a change
//! made on the server shows at the next read even when size and mtime stay the same (the page
//! cache would keep the old pages), writes at odd offsets land exactly, and mmap behaves as
//! documented (MAP_PRIVATE works, MAP_SHARED fails with ENODEV, as with sshfs -o direct_io).
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use support::{Mount, Rng, Sshd};

/// Replaces the server's file with `data` and gives it back `mtime`.
fn replace_on_server(path: &Path, data: &[u8], mtime: SystemTime) {
    fs::write(path, data).unwrap();
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
}

/// A file changed on the server with the same size and mtime: with direct_io each open reads
/// the new bytes (without it the kernel keeps the pages it has, since nothing it can see
/// changed).
#[test]
fn reads_go_to_the_server_every_time() {
    let sshd = Sshd::start();
    let remote = sshd.root_dir().join("same-size.txt");
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    replace_on_server(&remote, &[b'a'; 10_000], mtime);
    let m = Mount::start(&sshd, &["-o", "direct_io"]);
    let local = m.path().join("same-size.txt");
    assert!(fs::read(&local).unwrap() == [b'a'; 10_000]);
    replace_on_server(&remote, &[b'b'; 10_000], mtime);
    assert!(
        fs::read(&local).unwrap() == [b'b'; 10_000],
        "a read was served from the page cache"
    );
    // Within one open too: the second pread reaches the server.
    let f = File::open(&local).unwrap();
    let mut buf = [0u8; 100];
    f.read_exact_at(&mut buf, 5000).unwrap();
    assert_eq!(buf, [b'b'; 100]);
    replace_on_server(&remote, &[b'c'; 10_000], mtime);
    f.read_exact_at(&mut buf, 5000).unwrap();
    assert_eq!(buf, [b'c'; 100]);
    drop(f);
    assert!(m.unmount().success());
}

/// Writes of odd sizes at odd offsets, and reads of odd sizes, match a local copy, through the
/// mount and on the server.
#[test]
fn odd_writes_and_reads_match_the_server() {
    let sshd = Sshd::start();
    let m = Mount::start(&sshd, &["-o", "direct_io"]);
    let mut rng = Rng::new(12);
    let mut model = vec![0u8; 300_000];
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(m.path().join("odd.bin"))
        .unwrap();
    f.write_all(&model).unwrap();
    for _ in 0..40 {
        let len = 1 + rng.below(70_000) as usize;
        let at = rng.below((model.len() - len) as u64) as usize;
        let data = rng.bytes(len);
        f.write_all_at(&data, at as u64).unwrap();
        model[at..at + len].copy_from_slice(&data);
        let rlen = 1 + rng.below(50_000) as usize;
        let rat = rng.below((model.len() - rlen) as u64) as usize;
        let mut got = vec![0u8; rlen];
        f.read_exact_at(&mut got, rat as u64).unwrap();
        assert_eq!(got, model[rat..rat + rlen], "read {rlen} at {rat}");
    }
    // Appends past the end.
    f.seek(SeekFrom::End(0)).unwrap();
    f.write_all(b"tail").unwrap();
    model.extend_from_slice(b"tail");
    f.sync_all().unwrap();
    let mut all = Vec::new();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.read_to_end(&mut all).unwrap();
    assert!(
        all == model,
        "the file read back differs from what was written"
    );
    drop(f);
    assert!(fs::read(sshd.root_dir().join("odd.bin")).unwrap() == model);
    assert!(m.unmount().success());
}

/// mmap with direct_io: a private mapping reads the file; a shared one is refused with ENODEV
/// (the kernel cannot keep shared pages coherent with uncached I/O; docs/options.md says so).
#[test]
fn mmap_private_works_shared_is_refused() {
    let sshd = Sshd::start();
    fs::write(sshd.root_dir().join("mapped.txt"), b"mapped bytes\n").unwrap();
    let m = Mount::start(&sshd, &["-o", "direct_io"]);
    let f = File::open(m.path().join("mapped.txt")).unwrap();
    let map = |flags: libc::c_int| {
        // SAFETY: a fresh read-only mapping of a file we hold open, unmapped below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                13,
                libc::PROT_READ,
                flags,
                f.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: 13 readable bytes at p, mapped just above.
        let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, 13) }.to_vec();
        // SAFETY: p is the mapping made above.
        unsafe { libc::munmap(p, 13) };
        Ok(bytes)
    };
    assert_eq!(map(libc::MAP_PRIVATE).unwrap(), b"mapped bytes\n");
    let shared = map(libc::MAP_SHARED).unwrap_err();
    assert_eq!(shared.raw_os_error(), Some(libc::ENODEV), "{shared}");
    drop(f);
    assert!(m.unmount().success());
}
