//! `-o direct_io` through a real mount: reads and writes bypass the page cache, so a change
//! made on the server shows at the next read even when size and mtime stay the same (the page
//! cache would keep the old pages), writes at odd offsets land exactly, and mmap works, shared
//! mappings included (FUSE_DIRECT_IO_ALLOW_MMAP).
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

/// Whether the running kernel takes `FUSE_DIRECT_IO_ALLOW_MMAP` (Linux 6.6 and later).
fn kernel_allows_shared_mmap() -> bool {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (6, 6)
}

/// Maps `len` bytes of `f` with `prot` and `flags`, hands the mapping to `with`, unmaps it.
fn with_map<T>(
    f: &File,
    len: usize,
    prot: libc::c_int,
    flags: libc::c_int,
    with: impl FnOnce(&mut [u8]) -> T,
) -> std::io::Result<T> {
    // SAFETY: a fresh mapping of a file we hold open, unmapped below.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, f.as_raw_fd(), 0) };
    if p == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `len` bytes at p, mapped just above; with PROT_WRITE only when asked.
    let bytes = unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), len) };
    let out = with(bytes);
    // SAFETY: p is the mapping made above; msync first so shared writes go out.
    unsafe {
        libc::msync(p, len, libc::MS_SYNC);
        libc::munmap(p, len);
    }
    Ok(out)
}

/// mmap with direct_io: a private mapping reads the file; so does a shared one, and a write
/// through a shared mapping reaches the server, since the mount asks the kernel for
/// FUSE_DIRECT_IO_ALLOW_MMAP (before Linux 6.6 a shared mapping fails with ENODEV, as with
/// sshfs -o direct_io).
#[test]
fn mmap_of_direct_io_files() {
    let sshd = Sshd::start();
    let remote = sshd.root_dir().join("mapped.txt");
    fs::write(&remote, b"mapped bytes\n").unwrap();
    let m = Mount::start(&sshd, &["-o", "direct_io"]);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(m.path().join("mapped.txt"))
        .unwrap();
    let read = |b: &mut [u8]| b.to_vec();
    let private = with_map(&f, 13, libc::PROT_READ, libc::MAP_PRIVATE, read).unwrap();
    assert_eq!(private, b"mapped bytes\n");
    let shared = with_map(&f, 13, libc::PROT_READ, libc::MAP_SHARED, read);
    if !kernel_allows_shared_mmap() {
        let e = shared.unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{e}");
        return;
    }
    assert_eq!(shared.unwrap(), b"mapped bytes\n");
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    with_map(&f, 13, rw, libc::MAP_SHARED, |b| {
        b[..6].copy_from_slice(b"MAPPED")
    })
    .unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(fs::read(&remote).unwrap(), b"MAPPED bytes\n");
    assert_eq!(
        fs::read(m.path().join("mapped.txt")).unwrap(),
        b"MAPPED bytes\n"
    );
    assert!(m.unmount().success());
}
