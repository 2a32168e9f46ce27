//! Every operation the FUSE frontend calls on `SshFs`, each checked through the fs layer and in
//! the server's tree.

use fuse3::{FileType, SetAttr, Timestamp};
use sshfs_cache::CacheConfig;

use super::{DIR, ROOT, flags, mount, mount_cached, name};
use crate::fs::DirItem;
use crate::remote::sftp::server::ServerOverrides;
use crate::remote::testing::memory::{Data, NodeKind, Personality};

fn at(sec: i64) -> Option<Timestamp> {
    Some(Timestamp::new(sec, 0))
}

/// Files: create (O_EXCL), write with a hole, flush, fsync, release; lookup, getattr, open,
/// read, write in the middle, open with O_TRUNC; mknod; statfs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_from_create_to_release() {
    let m = mount().await;
    let fs = &m.fs;
    let excl = flags(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL);
    let (attr, fh) = fs.create(ROOT, name("f"), 0o640, excl).await.unwrap();
    assert_eq!(
        (attr.kind, attr.perm, attr.size),
        (FileType::RegularFile, 0o640, 0)
    );
    assert_eq!(fs.write(fh, 0, b"hello").await.unwrap(), 5);
    assert_eq!(fs.write(fh, 1 << 20, b"tail").await.unwrap(), 4);
    fs.flush(fh).await.unwrap();
    fs.fsync(fh).await.unwrap();
    fs.release(fh).await.unwrap();
    let size = (1 << 20) + 4;
    let mut expected = vec![0; size];
    expected[..5].copy_from_slice(b"hello");
    expected[1 << 20..].copy_from_slice(b"tail");
    assert_eq!(m.content("f").unwrap(), expected);
    assert_eq!(
        m.server.allocated_bytes(),
        2 * 4096,
        "the hole is not written"
    );
    assert_eq!(m.server.requests("fsync@openssh.com"), 1);

    let attr = fs.lookup(ROOT, name("f")).await.unwrap();
    assert_eq!((attr.size, attr.nlink, attr.uid), (size as u64, 1, 0));
    assert_eq!(fs.getattr(attr.ino, None).await.unwrap().size, size as u64);
    let (fh, _) = fs.open(attr.ino, flags(libc::O_RDWR)).await.unwrap();
    assert_eq!(fs.read(fh, 0, 8).await.unwrap(), b"hello\0\0\0");
    assert_eq!(fs.read(fh, (1 << 20) - 2, 100).await.unwrap(), b"\0\0tail");
    assert_eq!(fs.read(fh, size as u64, 100).await.unwrap(), b"");
    fs.write(fh, 2, b"LL").await.unwrap();
    assert_eq!(
        fs.getattr(attr.ino, Some(fh)).await.unwrap().size,
        size as u64
    );
    fs.release(fh).await.unwrap();
    assert_eq!(&m.content("f").unwrap()[..5], b"heLLo");

    let (fh, _) = fs
        .open(attr.ino, flags(libc::O_WRONLY | libc::O_TRUNC))
        .await
        .unwrap();
    fs.write(fh, 0, b"new").await.unwrap();
    fs.release(fh).await.unwrap();
    assert_eq!(m.content("f").unwrap(), b"new");
    assert_eq!(fs.getattr(attr.ino, None).await.unwrap().size, 3);

    let node = fs
        .mknod(ROOT, name("node"), libc::S_IFREG | 0o600)
        .await
        .unwrap();
    assert_eq!((node.kind, node.perm), (FileType::RegularFile, 0o600));
    assert_eq!(
        m.server.snapshot()[&m.path("node")].mode,
        libc::S_IFREG | 0o600
    );
    let fifo = fs.mknod(ROOT, name("fifo"), libc::S_IFIFO | 0o600).await;
    assert_eq!(fifo.unwrap_err().errno, libc::EPERM);

    let st = fs.statfs().await.unwrap();
    assert_eq!((st.block_size, st.name_max), (4096, 255));
    m.assert_clean().await;
}

/// A large write goes through several channels (several server sessions) and lands whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_striped_write_lands_whole() {
    let m = mount().await;
    let fs = &m.fs;
    let rw = flags(libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC);
    let (_, fh) = fs.create(ROOT, name("big"), 0o644, rw).await.unwrap();
    let data: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
    for (i, chunk) in data.chunks(128 * 1024).enumerate() {
        fs.write(fh, (i * 128 * 1024) as u64, chunk).await.unwrap();
    }
    fs.flush(fh).await.unwrap();
    let channels: Vec<usize> = m.server.session_channels().iter().map(|c| c.1).collect();
    assert!(channels.len() > 1, "one channel only: {channels:?}");
    // The handles open in the background: the writes after 8 MiB left them time to start.
    let stats = fs.stats_line();
    assert!(stats.contains("striped-writes: files=1"), "{stats}");
    assert_eq!(
        fs.read(fh, 9 << 20, 16).await.unwrap(),
        data[9 << 20..(9 << 20) + 16]
    );
    fs.release(fh).await.unwrap();
    assert!(
        m.content("big").unwrap() == data,
        "the server's copy differs"
    );
    m.assert_clean().await;
}

/// SETATTR in every form: chmod, chown (both, uid alone, gid alone), truncate by path and
/// through a handle, utimens (both, atime alone, mtime alone), on a symlink itself (lchown),
/// and behind the writes of a file this mount created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setattr_in_every_form() {
    let m = mount().await;
    let fs = &m.fs;
    m.server.put_file(&m.path("f"), b"0123456789").unwrap();
    let f = fs.lookup(ROOT, name("f")).await.unwrap().ino;
    let set = |s: SetAttr| async move { fs.setattr(f, None, &s).await.unwrap() };
    let stat = || m.server.lstat(&m.path("f")).unwrap();

    let r = set(SetAttr {
        mode: Some(0o4711),
        ..SetAttr::default()
    })
    .await;
    assert!(r.confirmed);
    assert_eq!(r.attr.perm, 0o4711);
    assert_eq!(stat().mode, libc::S_IFREG | 0o4711);

    let r = set(SetAttr {
        uid: Some(10),
        gid: Some(20),
        ..SetAttr::default()
    })
    .await;
    assert_eq!((r.attr.uid, r.attr.gid), (10, 20));
    assert_eq!(
        (stat().uid, stat().gid, stat().mode & 0o7777),
        (10, 20, 0o711),
        "chown clears setuid"
    );
    set(SetAttr {
        uid: Some(11),
        ..SetAttr::default()
    })
    .await;
    assert_eq!((stat().uid, stat().gid), (11, 20));
    set(SetAttr {
        gid: Some(21),
        ..SetAttr::default()
    })
    .await;
    assert_eq!((stat().uid, stat().gid), (11, 21));

    let r = set(SetAttr {
        size: Some(4),
        ..SetAttr::default()
    })
    .await;
    assert_eq!(r.attr.size, 4);
    assert_eq!(m.content("f").unwrap(), b"0123");

    set(SetAttr {
        atime: at(1000),
        mtime: at(2000),
        ..SetAttr::default()
    })
    .await;
    assert_eq!((stat().atime, stat().mtime), (1000, 2000));
    set(SetAttr {
        atime: at(1500),
        ..SetAttr::default()
    })
    .await;
    assert_eq!((stat().atime, stat().mtime), (1500, 2000), "mtime kept");
    let r = set(SetAttr {
        mtime: at(2500),
        ..SetAttr::default()
    })
    .await;
    assert_eq!((stat().atime, stat().mtime), (1500, 2500), "atime kept");
    assert_eq!(r.attr.mtime.sec, 2500);

    // Through a handle: ftruncate up (a hole), and fchmod.
    let (fh, _) = fs.open(f, flags(libc::O_RDWR)).await.unwrap();
    let grow = SetAttr {
        size: Some(8),
        mode: Some(0o600),
        ..SetAttr::default()
    };
    let r = fs.setattr(f, Some(fh), &grow).await.unwrap();
    assert_eq!((r.attr.size, r.attr.perm), (8, 0o600));
    assert_eq!(m.content("f").unwrap(), b"0123\0\0\0\0");
    fs.release(fh).await.unwrap();

    // A symlink itself: lchown goes through lsetstat@openssh.com; the target is untouched.
    let l = fs.symlink(ROOT, name("l"), name("f")).await.unwrap().ino;
    fs.setattr(
        l,
        None,
        &SetAttr {
            uid: Some(33),
            gid: Some(44),
            ..SetAttr::default()
        },
    )
    .await
    .unwrap();
    let snap = m.server.snapshot();
    assert_eq!((snap[&m.path("l")].uid, snap[&m.path("l")].gid), (33, 44));
    assert_eq!(snap[&m.path("f")].uid, 11);
    assert_eq!(m.server.requests("lsetstat@openssh.com"), 1);

    // A file this mount created with O_EXCL and still writes: the chmod rides behind the
    // writes, not waited for, and is on the server once the file is flushed.
    let excl = flags(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL);
    let (c, fh) = fs.create(ROOT, name("c"), 0o600, excl).await.unwrap();
    fs.write(fh, 0, b"data").await.unwrap();
    let r = fs
        .setattr(
            c.ino,
            None,
            &SetAttr {
                mode: Some(0o644),
                ..SetAttr::default()
            },
        )
        .await
        .unwrap();
    assert!(!r.confirmed);
    assert_eq!((r.attr.perm, r.attr.size), (0o644, 4));
    fs.flush(fh).await.unwrap();
    assert_eq!(
        m.server.lstat(&m.path("c")).unwrap().mode,
        libc::S_IFREG | 0o644
    );
    fs.release(fh).await.unwrap();
    m.assert_clean().await;
}

/// Names: mkdir, symlink and readlink, link (both names one file, nlink 2), rename (replacing,
/// RENAME_NOREPLACE, a directory), unlink, rmdir, forget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_made_changed_and_removed() {
    let m = mount().await;
    let fs = &m.fs;
    let d = fs.mkdir(ROOT, name("d"), 0o750).await.unwrap();
    // A directory's count is unknown until a listing shows it (1: "unknown", as btrfs shows).
    assert_eq!((d.kind, d.perm), (FileType::Directory, 0o750));
    let node = &m.server.snapshot()[&m.path("d")];
    assert_eq!((node.mode, node.nlink), (libc::S_IFDIR | 0o750, 2));
    // Made through the mount: one made behind it in a directory the mount just made is not
    // seen until the cache's listing expires (or the re-check relists it).
    let excl = flags(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL);
    let (_, fh) = fs.create(d.ino, name("f"), 0o644, excl).await.unwrap();
    fs.write(fh, 0, b"file").await.unwrap();
    fs.release(fh).await.unwrap();

    let l = fs.symlink(d.ino, name("l"), name("f")).await.unwrap();
    assert_eq!((l.kind, l.size), (FileType::Symlink, 1));
    assert_eq!(fs.readlink(l.ino).await.unwrap(), b"f");
    let abs = fs
        .symlink(ROOT, name("abs"), name("/elsewhere"))
        .await
        .unwrap();
    assert_eq!(fs.readlink(abs.ino).await.unwrap(), b"/elsewhere");
    assert_eq!(
        m.server.snapshot()[&m.path("abs")].target.as_deref(),
        Some("/elsewhere")
    );

    let f = fs.lookup(d.ino, name("f")).await.unwrap();
    let h = fs.link(f.ino, ROOT, name("hard")).await.unwrap();
    assert_eq!(h.nlink, 2);
    let snap = m.server.snapshot();
    assert_eq!(
        (snap[&m.path("d/f")].nlink, snap[&m.path("hard")].nlink),
        (2, 2)
    );

    // rename onto an existing name replaces it (posix-rename).
    m.server.put_file(&m.path("victim"), b"old").unwrap();
    fs.lookup(ROOT, name("victim")).await.unwrap();
    fs.rename(ROOT, name("hard"), ROOT, name("victim"), 0)
        .await
        .unwrap();
    assert_eq!(m.content("victim").unwrap(), b"file");
    assert!(!m.server.snapshot().contains_key(&m.path("hard")));
    assert_eq!(
        fs.lookup(ROOT, name("hard")).await.unwrap_err().errno,
        libc::ENOENT
    );
    // RENAME_NOREPLACE: plain RENAME, never replacing.
    let noreplace = libc::RENAME_NOREPLACE;
    let e = fs
        .rename(d.ino, name("f"), ROOT, name("victim"), noreplace)
        .await
        .unwrap_err();
    assert_eq!(e.errno, libc::EEXIST);
    fs.rename(d.ino, name("f"), ROOT, name("moved"), noreplace)
        .await
        .unwrap();
    assert_eq!(m.content("moved").unwrap(), b"file");
    let e = fs
        .rename(ROOT, name("moved"), ROOT, name("x"), libc::RENAME_EXCHANGE)
        .await
        .unwrap_err();
    assert_eq!(e.errno, libc::EINVAL);
    // A directory with what is in it.
    fs.rename(ROOT, name("d"), ROOT, name("e"), 0)
        .await
        .unwrap();
    assert_eq!(m.server.snapshot()[&m.path("e/l")].kind, NodeKind::Symlink);
    let e_ino = fs.lookup(ROOT, name("e")).await.unwrap().ino;
    assert_eq!(e_ino, d.ino, "the same inode, renamed");
    assert_eq!(
        fs.readlink(fs.lookup(e_ino, name("l")).await.unwrap().ino)
            .await
            .unwrap(),
        b"f"
    );

    fs.unlink(e_ino, name("l")).await.unwrap();
    fs.unlink(ROOT, name("moved")).await.unwrap();
    assert_eq!(m.server.snapshot()[&m.path("victim")].nlink, 1);
    fs.rmdir(ROOT, name("e")).await.unwrap();
    fs.forget(e_ino, 1);
    let paths: Vec<String> = m.server.snapshot().into_keys().collect();
    assert_eq!(paths, ["/", DIR, "/m/abs", "/m/victim"]);
    m.assert_clean().await;
}

/// Directories: opendir, readdir (from the server, then from the cache), what readdirplus
/// builds from each entry, releasedir.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_and_readdirplus() {
    let m = mount().await;
    let fs = &m.fs;
    for i in 0..130 {
        m.server
            .put_file(&m.path(&format!("f{i:03}")), &vec![1; i])
            .unwrap();
    }
    m.server.mkdir(&m.path("sub")).unwrap();
    m.server.symlink(&m.path("link"), "f001").unwrap();
    let names =
        |items: &[DirItem]| -> Vec<String> { items.iter().map(|i| i.name.clone()).collect() };
    let mut opendirs = Vec::new();
    for round in ["server", "cache"] {
        let dh = fs.opendir(ROOT).await.unwrap();
        let mut items = Vec::new();
        loop {
            let page = fs.readdir(dh, items.len() as u64).await.unwrap();
            if page.is_empty() {
                break;
            }
            items.extend(page);
        }
        let listed = names(&items);
        assert_eq!(listed.len(), 134, "{round}: . .. 130 files, sub, link");
        assert_eq!(&listed[..2], [".", ".."], "{round}");
        let mut expected: Vec<String> = m
            .server
            .snapshot()
            .keys()
            .filter_map(|p| p.strip_prefix("/m/").map(str::to_owned))
            .collect();
        expected.sort();
        let mut got = listed[2..].to_vec();
        got.sort();
        assert_eq!(got, expected, "{round}");
        // readdirplus: each entry's attributes, with a kernel reference taken (then dropped).
        for item in items.iter().filter(|i| i.name != "." && i.name != "..") {
            let attr = fs.dir_entry(ROOT, item).unwrap();
            let node = &m.server.snapshot()[&m.path(&item.name)];
            let kind = match node.kind {
                NodeKind::File => FileType::RegularFile,
                NodeKind::Dir => FileType::Directory,
                NodeKind::Symlink => FileType::Symlink,
            };
            assert_eq!(
                (attr.kind, attr.size, attr.nlink),
                (kind, node.size, node.nlink),
                "{}",
                item.name
            );
            assert_eq!(fs.ino_hint(ROOT, &item.name), attr.ino);
            fs.forget(attr.ino, 1);
        }
        fs.releasedir(dh).await.unwrap();
        opendirs.push(m.server.requests_on("opendir", DIR));
    }
    assert_eq!(opendirs, [1, 1], "the second listing came from the cache");
    m.assert_clean().await;
}

/// copy_file_range through copy-data: the copy happens on the server; a copy past the
/// source's end is cut to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_file_range_copies_on_the_server() {
    let m = mount().await;
    let fs = &m.fs;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 7) as u8).collect();
    m.server.put_file(&m.path("src"), &data).unwrap();
    let src = fs.lookup(ROOT, name("src")).await.unwrap();
    let (fh_in, _) = fs.open(src.ino, flags(libc::O_RDONLY)).await.unwrap();
    let rw = flags(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL);
    let (_, fh_out) = fs.create(ROOT, name("dst"), 0o644, rw).await.unwrap();
    fs.write(fh_out, 0, b"head").await.unwrap();
    let reads = m.server.requests("read");
    assert_eq!(
        fs.copy_range(fh_in, 100, fh_out, 4, 200_000).await.unwrap(),
        200_000
    );
    assert_eq!(
        fs.copy_range(fh_in, 250_000, fh_out, 200_004, 1 << 20)
            .await
            .unwrap(),
        50_000
    );
    assert_eq!(
        fs.copy_range(fh_in, 400_000, fh_out, 0, 10).await.unwrap(),
        0
    );
    assert_eq!(m.server.requests("read"), reads, "no data crossed the link");
    assert_eq!(m.server.requests("copy-data"), 2);
    fs.release(fh_out).await.unwrap();
    fs.release(fh_in).await.unwrap();
    let mut expected = b"head".to_vec();
    expected.extend_from_slice(&data[100..200_100]);
    expected.extend_from_slice(&data[250_000..]);
    assert_eq!(
        m.server.snapshot()[&m.path("dst")].content,
        Some(Data::from(expected))
    );
    m.assert_clean().await;
}

/// A file removed while open stays usable through its handle (the server keeps it, as Linux
/// does): read, write, getattr (fstat without a name), setattr; gone at the last release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlinked_open_file_stays_usable() {
    let m = mount().await;
    let fs = &m.fs;
    m.server.put_file(&m.path("f"), b"still here").unwrap();
    let f = fs.lookup(ROOT, name("f")).await.unwrap();
    let (fh, _) = fs.open(f.ino, flags(libc::O_RDWR)).await.unwrap();
    fs.unlink(ROOT, name("f")).await.unwrap();
    assert!(!m.server.snapshot().contains_key(&m.path("f")));
    assert_eq!(fs.read(fh, 0, 100).await.unwrap(), b"still here");
    fs.write(fh, 10, b"!").await.unwrap();
    fs.flush(fh).await.unwrap();
    let attr = fs.getattr(f.ino, None).await.unwrap();
    assert_eq!((attr.size, attr.nlink), (11, 0));
    let r = fs
        .setattr(
            f.ino,
            None,
            &SetAttr {
                mode: Some(0o600),
                ..SetAttr::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(r.attr.perm, 0o600);
    assert_eq!(m.server.inodes(), 3, "/, /m and the open file");
    fs.release(fh).await.unwrap();
    m.assert_clean().await;
    assert_eq!(m.server.inodes(), 2);
}

/// A listing too large for the cache's byte bound: read whole in kernel-sized steps, the open
/// handle keeps only what was not read yet; a rewind to offset 0 (and a seek into what was
/// dropped) lists it again from the server on a new handle, the old one closed; nothing is
/// cached, and every handle is closed in the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_too_large_for_the_cache_is_not_kept_whole() {
    let cache = CacheConfig {
        max_bytes: 64 << 10,
        ..CacheConfig::default()
    };
    let m = mount_cached(Personality::openssh(), ServerOverrides::default(), cache).await;
    let fs = &m.fs;
    for i in 0..1000 {
        m.server
            .put_file(&m.path(&format!("f{i:04}")), b"x")
            .unwrap();
    }
    let read_from = |dh: u64, from: u64| async move {
        let mut names = Vec::new();
        let mut at = from;
        loop {
            // The kernel takes a few entries of each answer, then asks from the next offset.
            let page = fs.readdir(dh, at).await.unwrap();
            let taken = &page[..page.len().min(30)];
            let Some(last) = taken.last() else {
                break;
            };
            at = last.next_offset;
            names.extend(taken.iter().map(|i| i.name.clone()));
        }
        names
    };
    let dh = fs.opendir(ROOT).await.unwrap();
    let first = read_from(dh, 0).await;
    assert_eq!(first.len(), 1002, ". .. and 1000 files");
    let held = {
        let dir = fs.dirs.get(dh).unwrap();
        let dir = dir.lock().await;
        (dir.whole, dir.base, dir.entries.len())
    };
    assert!(!held.0, "too large: not kept whole");
    assert!(held.1 >= 900, "what was read is dropped: base {}", held.1);
    assert!(held.2 <= 200, "{} entries kept", held.2);
    assert_eq!(m.server.requests_on("opendir", DIR), 1);
    // rewinddir: the same names again, from a new handle.
    assert_eq!(read_from(dh, 0).await, first);
    assert_eq!(m.server.requests_on("opendir", DIR), 2);
    // seekdir into what was dropped.
    assert_eq!(read_from(dh, 500).await, first[500..]);
    assert_eq!(m.server.requests_on("opendir", DIR), 3);
    fs.releasedir(dh).await.unwrap();
    // Not cached: listed from the server again.
    let dh = fs.opendir(ROOT).await.unwrap();
    assert_eq!(read_from(dh, 0).await, first);
    fs.releasedir(dh).await.unwrap();
    assert_eq!(m.server.requests_on("opendir", DIR), 4);
    assert!(!fs.cache().knows_names(""));
    m.assert_clean().await;
}
