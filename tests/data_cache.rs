//! The content cache on local disk (`-o data_cache`) through a real mount: a file read again
//! after a remount comes from the disk without a READ, a file changed on the server is read
//! anew, a corrupted block is fetched again, `--flush` empties it, its directory is private,
//! and without the option nothing is written.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use support::{Mount, Sshd, run_command, sshfs_rs_bin};

/// 3 MiB and a bit: three whole blocks and a short last one.
const LEN: usize = 3 * 1024 * 1024 + 12_345;

/// The mount's stats line.
fn stats(mnt: &Path) -> String {
    let out = run_command(
        Command::new(sshfs_rs_bin()).arg("--stats").arg(mnt),
        Duration::from_secs(60),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number after `key` in the stats line (0 when the counter is not shown).
fn counter(line: &str, key: &str) -> u64 {
    line.split([' ', ';', '\n'])
        .find_map(|w| w.strip_prefix(key))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 7 + i / 4096) as u8).wrapping_add(seed))
        .collect()
}

/// Writes `data` to the server's `name`, modified an hour ago plus `secs`.
fn put(sshd: &Sshd, name: &str, data: &[u8], secs: u64) -> PathBuf {
    let path = sshd.root_dir().join(name);
    fs::write(&path, data).unwrap();
    let f = fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(3600) + Duration::from_secs(secs))
        .unwrap();
    path
}

/// A mount with the content cache in `dir`.
fn mount(sshd: &Sshd, dir: &Path) -> Mount {
    let opt = format!("data_cache={}", dir.display());
    Mount::start(sshd, &["-o", &opt])
}

/// The data files in the cache directory `dir`.
fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(versions) = fs::read_dir(dir.join("v1")) else {
        return out;
    };
    for scope in versions.flatten() {
        for f in fs::read_dir(scope.path()).unwrap().flatten() {
            if f.path().extension().is_some_and(|e| e == "data") {
                out.push(f.path());
            }
        }
    }
    out
}

/// Read, unmount, remount, read again: the same bytes, and not one READ the second time (the
/// OPEN's LSTAT validated the entry). The directories are 0700.
#[test]
fn a_file_read_again_after_a_remount_comes_from_the_disk() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let data = bytes(LEN, 1);
    put(&sshd, "f", &data, 0);
    let m = mount(&sshd, &dir);
    assert_eq!(fs::read(m.path().join("f")).unwrap(), data);
    let first = stats(m.path());
    assert!(counter(&first, "read=") > 0, "{first}");
    drop(m);
    let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the cache directory is private");
    assert_eq!(data_files(&dir).len(), 1);

    let m = mount(&sshd, &dir);
    assert_eq!(fs::read(m.path().join("f")).unwrap(), data);
    let again = stats(m.path());
    assert_eq!(counter(&again, "read="), 0, "no READ: {again}");
    assert!(counter(&again, "bytes-hit=") >= LEN as u64, "{again}");
}

/// A file changed on the server (another size; the same size with another mtime) is read
/// anew, never mixed with what was cached.
#[test]
fn a_file_changed_on_the_server_is_read_anew() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    put(&sshd, "f", &bytes(LEN, 1), 0);
    drop_read(&sshd, &dir, &bytes(LEN, 1));
    // Another size.
    let longer = bytes(LEN + 1000, 2);
    put(&sshd, "f", &longer, 0);
    drop_read(&sshd, &dir, &longer);
    // The same size, another mtime (one second later).
    let same_size = bytes(LEN + 1000, 3);
    put(&sshd, "f", &same_size, 1);
    drop_read(&sshd, &dir, &same_size);
}

/// Mounts, checks that `f` reads as `want`, unmounts.
fn drop_read(sshd: &Sshd, dir: &Path, want: &[u8]) {
    let m = mount(sshd, dir);
    let got = fs::read(m.path().join("f")).unwrap();
    assert!(got == want, "f read back differs ({} bytes)", got.len());
}

/// A block whose bytes on disk were damaged fails its checksum: it is fetched again, and the
/// program reads the right bytes, never an error.
#[test]
fn a_corrupted_block_is_fetched_again() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let data = bytes(LEN, 4);
    put(&sshd, "f", &data, 0);
    drop_read(&sshd, &dir, &data);
    let files = data_files(&dir);
    let file = fs::File::options().write(true).open(&files[0]).unwrap();
    file.write_all_at(b"garbage", 1024 * 1024 + 5000).unwrap();
    drop(file);
    let m = mount(&sshd, &dir);
    assert_eq!(fs::read(m.path().join("f")).unwrap(), data);
    let line = stats(m.path());
    assert!(counter(&line, "corrupt=") >= 1, "{line}");
    assert!(
        counter(&line, "read=") > 0,
        "the bad block was fetched: {line}"
    );
}

/// A file written through the mount is read back as written after a remount (its entry was
/// dropped at the write).
#[test]
fn a_write_through_the_mount_drops_the_entry() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let data = bytes(LEN, 5);
    let server = put(&sshd, "f", &data, 0);
    let cached_mtime = fs::metadata(&server).unwrap().modified().unwrap();
    let m = mount(&sshd, &dir);
    assert_eq!(fs::read(m.path().join("f")).unwrap(), data);
    let f = fs::File::options()
        .write(true)
        .open(m.path().join("f"))
        .unwrap();
    f.write_all_at(b"new bytes", 2 * 1024 * 1024).unwrap();
    drop(f);
    drop(m);
    let mut want = data.clone();
    want[2 * 1024 * 1024..][..9].copy_from_slice(b"new bytes");
    assert_eq!(fs::read(&server).unwrap(), want);
    // Even with the old mtime put back (as tar or cp -p would), the old bytes are gone.
    let f = fs::File::options().write(true).open(&server).unwrap();
    f.set_modified(cached_mtime).unwrap();
    drop(f);
    drop_read(&sshd, &dir, &want);
}

/// `sshfs-rs --flush MNT` empties the cache directory.
#[test]
fn flush_empties_the_cache() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let data = bytes(LEN, 6);
    put(&sshd, "f", &data, 0);
    let m = mount(&sshd, &dir);
    assert_eq!(fs::read(m.path().join("f")).unwrap(), data);
    assert_eq!(data_files(&dir).len(), 1);
    let out = run_command(
        Command::new(sshfs_rs_bin()).arg("--flush").arg(m.path()),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{out:?}");
    assert!(data_files(&dir).is_empty(), "{:?}", data_files(&dir));
    let line = stats(m.path());
    assert_eq!(counter(&line, "used="), 0, "{line}");
}

/// Without `-o data_cache` nothing is written under the default cache directory.
#[test]
fn without_the_option_nothing_is_written() {
    let sshd = Sshd::start();
    let data = bytes(LEN, 7);
    put(&sshd, "f", &data, 0);
    let m = Mount::start(&sshd, &[]);
    assert_eq!(fs::read(m.path().join("f")).unwrap(), data);
    let line = stats(m.path());
    assert!(line.contains("data-cache: off"), "{line}");
    drop(m);
    assert!(!sshd.home().join(".cache/sshfs-rs").exists());
}

/// `grep -r` over a tree of small files, then again after a remount: the second time every
/// file's bytes come from the disk, those of the files opened ahead included, and not one READ
/// is sent (the OPENs and their LSTATs still are: they validate the entries).
#[test]
fn grep_over_small_files_after_a_remount_sends_no_read() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let tree = sshd.root_dir().join("tree");
    let (dirs, files) = (4, 60);
    for d in 0..dirs {
        fs::create_dir_all(tree.join(format!("d{d}"))).unwrap();
        for f in 0..files {
            let text = format!("{d} {f}\n").repeat(50 + f);
            put(&sshd, &format!("tree/d{d}/f{f:03}"), text.as_bytes(), 0);
        }
    }
    let grep = |m: &Mount| {
        let out = run_command(
            Command::new("grep")
                .args(["-r", "-c", " 1"])
                .current_dir(m.path().join("tree")),
            Duration::from_secs(120),
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        lines.join("\n")
    };
    let m = mount(&sshd, &dir);
    let first = grep(&m);
    let line = stats(m.path());
    assert!(counter(&line, "read=") > 0, "{line}");
    assert_eq!(first.lines().count(), dirs * files, "{first}");
    drop(m);

    let m = mount(&sshd, &dir);
    assert_eq!(grep(&m), first, "the same matches");
    let line = stats(m.path());
    assert_eq!(counter(&line, "read="), 0, "no READ: {line}");
    assert!(
        counter(&line, "taken=") > 0,
        "files were opened ahead: {line}"
    );
    let data_cache = line.split("data-cache:").nth(1).unwrap_or_default();
    assert!(
        counter(data_cache, "hits=") >= (dirs * files) as u64,
        "{line}"
    );
}
