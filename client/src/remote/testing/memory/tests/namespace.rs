//! The tree: directories and listings, links, times, and the test API that edits it behind the
//! client's back.

use russh_sftp::protocol::{FileAttributes, OpenFlags};

use super::{code, create_flags, no_attrs, perm, session};
use crate::remote::testing::memory::personality::*;
use crate::remote::testing::memory::{Data, MemoryServer, Node, NodeKind, Personality};

/// MKDIR, RMDIR and REMOVE as mkdir(2), rmdir(2) and unlink(2): EEXIST and ENOTEMPTY are
/// FAILURE, a missing name NO_SUCH_FILE, a file where a directory is expected ENOTDIR
/// (NO_SUCH_FILE), REMOVE of a directory EISDIR (FAILURE).
#[tokio::test]
async fn directories_as_the_system_calls() {
    let server = MemoryServer::new();
    let raw = session(&server).await;
    raw.mkdir("/d", perm(0o750)).await.unwrap();
    raw.mkdir("/d/e", no_attrs()).await.unwrap();
    assert_eq!(code(raw.mkdir("/d", no_attrs()).await), FX_FAILURE);
    assert_eq!(code(raw.mkdir("/x/y", no_attrs()).await), FX_NO_SUCH_FILE);
    assert_eq!(code(raw.rmdir("/d").await), FX_FAILURE);
    assert_eq!(code(raw.rmdir("/nothing").await), FX_NO_SUCH_FILE);
    assert_eq!(code(raw.remove("/d/e").await), FX_FAILURE);
    server.put_file("/f", b"").unwrap();
    assert_eq!(code(raw.rmdir("/f").await), FX_NO_SUCH_FILE);
    assert_eq!(code(raw.rmdir("/").await), FX_FAILURE, "EBUSY");
    let snap = server.snapshot();
    assert_eq!(snap["/d"].mode, libc::S_IFDIR | 0o750);
    assert_eq!(
        snap["/d/e"].mode,
        libc::S_IFDIR | 0o755,
        "0777 less the umask"
    );
    assert_eq!(
        (snap["/"].nlink, snap["/d"].nlink, snap["/d/e"].nlink),
        (3, 3, 2)
    );
    raw.rmdir("/d/e").await.unwrap();
    assert_eq!(server.snapshot()["/d"].nlink, 2);
}

/// READDIR: pages of at most 100 entries, `.` and `..` first, with OpenSSH's long names, then
/// EOF; a name made after the page that passed it does not show, one made ahead of it does.
#[tokio::test]
async fn listings_come_in_pages() {
    let server = MemoryServer::new();
    server.set_time(1_700_000_000);
    server.mkdir("/d").unwrap();
    for i in 0..150 {
        server.put_file(&format!("/d/f{i:03}"), b"12345").unwrap();
    }
    let raw = session(&server).await;
    let h = raw.opendir("/d").await.unwrap().handle;
    let first = raw.readdir(h.clone()).await.unwrap().files;
    assert_eq!(first.len(), 100);
    assert_eq!(
        (first[0].filename.as_str(), first[1].filename.as_str()),
        (".", "..")
    );
    assert_eq!(
        first[2].longname,
        "-rw-r--r--    1 root     root            5 Nov 14 22:13 f000"
    );
    assert_eq!(first[2].attrs.size, Some(5));
    server.put_file("/d/a_before", b"").unwrap();
    server.put_file("/d/z_after", b"").unwrap();
    server.remove("/d/f149").unwrap();
    let second = raw.readdir(h.clone()).await.unwrap().files;
    let names: Vec<&str> = second.iter().map(|f| f.filename.as_str()).collect();
    // f098..=f148 and z_after; not a_before (behind the cursor) nor f149 (removed).
    assert_eq!(names.len(), 52);
    assert_eq!(names[0], "f098");
    assert_eq!(names[50..], ["f148", "z_after"]);
    assert_eq!(code(raw.readdir(h.clone()).await), FX_EOF);
    assert_eq!(code(raw.readdir(h).await), FX_EOF);
}

/// Symlinks: relative and absolute targets, dangling ones, loops (ELOOP: NO_SUCH_FILE),
/// through a directory; READLINK; REALPATH resolves them.
#[tokio::test]
async fn symlinks_resolve_as_on_linux() {
    let server = MemoryServer::new();
    server.mkdir_all("/a/b").unwrap();
    server.put_file("/a/b/f", b"x").unwrap();
    server.symlink("/rel", "a/b").unwrap();
    server.symlink("/a/up", "../a/b/f").unwrap();
    server.symlink("/abs", "/a/b/f").unwrap();
    server.symlink("/dangling", "nowhere").unwrap();
    server.symlink("/loop", "loop").unwrap();
    let raw = session(&server).await;
    assert_eq!(raw.stat("/rel/f").await.unwrap().attrs.size, Some(1));
    assert_eq!(raw.stat("/a/up").await.unwrap().attrs.size, Some(1));
    assert_eq!(
        raw.stat("/abs").await.unwrap().attrs.permissions,
        Some(libc::S_IFREG | 0o644)
    );
    assert_eq!(
        raw.lstat("/abs").await.unwrap().attrs.permissions,
        Some(libc::S_IFLNK | 0o777)
    );
    assert_eq!(code(raw.stat("/dangling").await), FX_NO_SUCH_FILE);
    assert_eq!(code(raw.stat("/loop").await), FX_NO_SUCH_FILE);
    assert_eq!(
        raw.readlink("/a/up").await.unwrap().files[0].filename,
        "../a/b/f"
    );
    assert_eq!(code(raw.readlink("/a").await), FX_BAD_MESSAGE, "EINVAL");
    assert_eq!(
        raw.realpath("/rel/../b/./f").await.unwrap().files[0].filename,
        "/a/b/f"
    );
    assert_eq!(
        raw.realpath("/a/up").await.unwrap().files[0].filename,
        "/a/b/f"
    );
    assert_eq!(
        raw.realpath("/a/new").await.unwrap().files[0].filename,
        "/a/new"
    );
    assert_eq!(code(raw.realpath("/no/new").await), FX_NO_SUCH_FILE);
    // O_CREAT through a dangling symlink creates its target.
    let h = raw
        .open("/dangling", create_flags(), no_attrs())
        .await
        .unwrap()
        .handle;
    raw.close(h).await.unwrap();
    assert_eq!(server.snapshot()["/nowhere"].kind, NodeKind::File);
}

/// posix-rename of directories: onto an empty one replaces it, onto a full one ENOTEMPTY
/// (FAILURE), into itself EINVAL (BAD_MESSAGE); link counts follow.
#[tokio::test]
async fn renames_of_directories() {
    let server = MemoryServer::new();
    server.mkdir_all("/a/sub").unwrap();
    server.mkdir_all("/b").unwrap();
    server.mkdir_all("/full/x").unwrap();
    let raw = session(&server).await;
    let posix = |from: &str, to: &str| {
        let mut data = Vec::new();
        for s in [from, to] {
            data.extend((s.len() as u32).to_be_bytes());
            data.extend(s.as_bytes());
        }
        raw.extended("posix-rename@openssh.com", data)
    };
    let status = |r: Result<russh_sftp::protocol::Packet, _>| match r {
        Ok(russh_sftp::protocol::Packet::Status(s)) => u32::from(s.status_code),
        other => panic!("{other:?}"),
    };
    assert_eq!(status(posix("/a", "/full").await), FX_FAILURE);
    assert_eq!(status(posix("/a", "/a/sub/in").await), FX_BAD_MESSAGE);
    assert_eq!(status(posix("/a", "/b").await), FX_OK);
    let snap = server.snapshot();
    assert!(!snap.contains_key("/a"));
    assert_eq!(snap["/b/sub"].kind, NodeKind::Dir);
    assert_eq!(snap["/"].nlink, 4, "/, b, full, and their ..");
    assert_eq!(status(posix("/b/sub", "/full/x/sub").await), FX_OK);
    assert_eq!(
        (
            server.snapshot()["/b"].nlink,
            server.snapshot()["/full/x"].nlink
        ),
        (2, 3)
    );
    // Plain RENAME of a directory onto an existing name: FAILURE.
    assert_eq!(code(raw.rename("/b", "/full").await), FX_FAILURE);
}

/// Times: a write sets mtime; SETSTAT sets both; a read sets atime as relatime does; a new
/// name sets its directory's mtime.
#[tokio::test]
async fn times_follow_the_clock() {
    let server = MemoryServer::new();
    server.set_time(1000);
    server.mkdir("/d").unwrap();
    let raw = session(&server).await;
    server.set_time(2000);
    let h = raw
        .open("/d/f", create_flags(), no_attrs())
        .await
        .unwrap()
        .handle;
    assert_eq!(server.lstat("/d").unwrap().mtime, 2000);
    server.advance_time(10);
    raw.write(h.clone(), 0, b"x".to_vec()).await.unwrap();
    let st = server.lstat("/d/f").unwrap();
    assert_eq!((st.atime, st.mtime, st.ctime), (2000, 2010, 2010));
    server.advance_time(10);
    raw.read(h.clone(), 0, 1).await.unwrap();
    assert_eq!(
        server.lstat("/d/f").unwrap().atime,
        2020,
        "atime <= mtime: updated"
    );
    server.advance_time(10);
    raw.read(h.clone(), 0, 1).await.unwrap();
    assert_eq!(
        server.lstat("/d/f").unwrap().atime,
        2020,
        "relatime: not again"
    );
    let set = FileAttributes {
        atime: Some(5),
        mtime: Some(6),
        ..FileAttributes::empty()
    };
    raw.fsetstat(h.clone(), set).await.unwrap();
    let st = raw.fstat(h).await.unwrap().attrs;
    assert_eq!((st.atime, st.mtime), (Some(5), Some(6)));
    assert_eq!(server.lstat("/d/f").unwrap().ctime, 2030);
}

/// An ordinary user: EACCES is PERMISSION_DENIED; the sticky bit keeps others' files; chown
/// to another user is refused (EPERM: PERMISSION_DENIED).
#[tokio::test]
async fn permissions_of_an_ordinary_user() {
    let server = MemoryServer::with_personality(Personality {
        home: "/home/u".into(),
        ..Personality::openssh_as_user(1000)
    });
    server.chown("/home/u", 1000, 1000).unwrap();
    server.put_file("/secret", b"s").unwrap();
    server.chmod("/secret", 0o600).unwrap();
    server.mkdir("/tmp").unwrap();
    server.chmod("/tmp", 0o1777).unwrap();
    server.put_file("/tmp/roots", b"r").unwrap();
    server.chmod("/tmp/roots", 0o666).unwrap();
    let raw = session(&server).await;
    assert_eq!(
        code(raw.open("/secret", OpenFlags::READ, no_attrs()).await),
        FX_PERMISSION_DENIED
    );
    assert_eq!(
        code(raw.open("/new", create_flags(), no_attrs()).await),
        FX_PERMISSION_DENIED
    );
    assert_eq!(code(raw.remove("/tmp/roots").await), FX_PERMISSION_DENIED);
    let h = raw
        .open("mine", create_flags(), no_attrs())
        .await
        .unwrap()
        .handle;
    let chown = FileAttributes {
        uid: Some(0),
        gid: Some(0),
        ..FileAttributes::empty()
    };
    assert_eq!(code(raw.fsetstat(h, chown).await), FX_PERMISSION_DENIED);
    let mine = server.lstat("/home/u/mine").unwrap();
    assert_eq!(
        (mine.uid, mine.gid, mine.mode),
        (1000, 1000, libc::S_IFREG | 0o644)
    );
}

/// The snapshot: every path with kind, mode, owners, size, content, link count and target.
#[tokio::test]
async fn the_snapshot_shows_the_tree() {
    let server = MemoryServer::new();
    server.mkdir("/d").unwrap();
    server.put_file("/d/f", b"abc").unwrap();
    server.hard_link("/d/f", "/g").unwrap();
    server.symlink("/d/l", "../g").unwrap();
    server.chown("/d/f", 5, 6).unwrap();
    server.truncate("/g", 5).unwrap();
    server.set_times("/d/f", 1, 2).unwrap();
    server.rename("/g", "/h").unwrap();
    let snap = server.snapshot();
    let paths: Vec<&str> = snap.keys().map(String::as_str).collect();
    assert_eq!(paths, ["/", "/d", "/d/f", "/d/l", "/h"]);
    let file = Node {
        kind: NodeKind::File,
        mode: libc::S_IFREG | 0o644,
        uid: 5,
        gid: 6,
        size: 5,
        nlink: 2,
        content: Some(Data::new(b"abc\0\0")),
        target: None,
    };
    assert_eq!(snap["/d/f"], file);
    assert_eq!(snap["/h"], file);
    assert_eq!(snap["/d/l"].target.as_deref(), Some("../g"));
    assert_eq!(snap["/d/l"].size, 4);
    assert_eq!(server.lstat("/h").unwrap().mtime, 2, "one inode");
    server.remove("/d/f").unwrap();
    server.remove("/d/l").unwrap();
    server.remove("/d").unwrap();
    assert_eq!(server.snapshot().len(), 2);
    assert_eq!(server.snapshot()["/h"].nlink, 1);
    assert_eq!(server.total_requests(), 0);
}

/// Every request is counted by its kind.
#[tokio::test]
async fn requests_are_counted() {
    let server = MemoryServer::new();
    let raw = session(&server).await;
    raw.lstat("/").await.unwrap();
    raw.lstat("/").await.unwrap();
    let _ = raw.stat("/x").await;
    assert_eq!(server.requests("init"), 1);
    assert_eq!(server.requests("lstat"), 2);
    assert_eq!(server.requests("stat"), 1);
    assert_eq!(server.total_requests(), 4);
    assert_eq!(server.request_counts().len(), 3);
}

/// A snapshot holds contents sparse: a file with a terabyte hole costs what its data costs,
/// and compares equal to the same bytes written out.
#[tokio::test]
async fn a_snapshot_of_a_sparse_file_stays_small() {
    let server = MemoryServer::new();
    server.put_file("/big", b"").unwrap();
    server.write_at("/big", 1 << 40, b"end").unwrap();
    let snap = server.snapshot();
    let data = snap["/big"].content.clone().unwrap();
    assert_eq!(data.len(), (1 << 40) + 3);
    assert!(!data.is_empty());
    assert_eq!(server.snapshot()["/"].content, None);
    server.put_file("/small", &[0, 0, 7]).unwrap();
    server.truncate("/small", 2).unwrap();
    server.truncate("/small", 3).unwrap();
    assert_eq!(
        server.snapshot()["/small"].content,
        Some(Data::new(&[0, 0, 0]))
    );
    assert_ne!(
        server.snapshot()["/small"].content,
        Some(Data::new(&[0, 0, 7]))
    );
    assert_eq!(
        server.snapshot()["/small"]
            .content
            .as_ref()
            .unwrap()
            .to_vec(),
        [0, 0, 0]
    );
}
