//! The fs layer over servers that are not OpenSSH's (the memory server's personalities), each
//! known as the real mount knows it: by its banner and the extensions it announces (issue 20).

use std::sync::Arc;
use std::time::Duration;

use super::{ROOT, flags, mount, mount_as, mount_with, name};
use crate::remote::sftp::server::{ServerOverrides, ServerProfile, SymlinkOrder};
use crate::remote::testing::faults::{Faulty, Pick};
use crate::remote::testing::memory::personality::FX_PERMISSION_DENIED;
use crate::remote::testing::memory::{MemoryServer, NodeKind, Personality};
use crate::remote::testing::wire::RENAME;
use crate::remote::testing::{StreamConnector, quick_reconnect};

/// Without any extension: the basics work; statfs is ENOSYS, link EPERM, copy_file_range
/// ENOSYS (the kernel copies), fsync has nothing to send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_extensions_serves_the_basics() {
    let m = mount_as(Personality {
        extensions: false,
        ..Personality::openssh()
    })
    .await;
    let fs = &m.fs;
    let excl = flags(libc::O_RDWR | libc::O_CREAT | libc::O_EXCL);
    let (a, fh) = fs.create(ROOT, name("a"), 0o644, excl).await.unwrap();
    fs.write(fh, 0, b"data").await.unwrap();
    fs.fsync(fh).await.unwrap();
    let (_, fh2) = fs.create(ROOT, name("b"), 0o644, excl).await.unwrap();
    assert_eq!(
        fs.copy_range(fh, 0, fh2, 0, 4).await.unwrap_err().errno,
        libc::ENOSYS
    );
    fs.release(fh2).await.unwrap();
    fs.release(fh).await.unwrap();
    assert_eq!(fs.statfs().await.unwrap_err().errno, libc::ENOSYS);
    assert_eq!(
        fs.link(a.ino, ROOT, name("c")).await.unwrap_err().errno,
        libc::EPERM
    );
    fs.rename(ROOT, name("a"), ROOT, name("c"), 0)
        .await
        .unwrap();
    assert_eq!(m.content("c").unwrap(), b"data");
    assert_eq!(m.server.requests("rename"), 1, "plain RENAME");
    m.assert_clean().await;
}

/// Issue 20: asyncssh reads SYMLINK's arguments in the draft's order (link path, then target)
/// from a client that is not OpenSSH: known by its banner, it gets them so, and `ln -s target
/// link` makes "link" pointing at "target".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_on_a_draft_order_server_points_where_asked() {
    let m = mount_as(Personality::asyncssh()).await;
    assert_eq!(m.fs.sftp().server().symlink_order, SymlinkOrder::Draft);
    m.server.put_file(&m.path("target"), b"t").unwrap();
    let made = m.fs.symlink(ROOT, name("link"), name("target")).await;
    let snap = m.server.snapshot();
    assert!(made.is_ok(), "{made:?}");
    assert_eq!(snap[&m.path("link")].kind, NodeKind::Symlink);
    assert_eq!(snap[&m.path("link")].target.as_deref(), Some("target"));
    assert!(!snap.contains_key(&m.path("target/link")));
    assert_eq!(m.server.read_file(&m.path("target")).unwrap(), b"t");
}

/// A draft-order server whose banner says nothing known gets OpenSSH's order (what most
/// servers read): `ln -s` fails or makes the wrong link. `-o symlink_order=draft` is the
/// user's way out, and then links point where asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlink_order_draft_fixes_links_on_an_unknown_draft_order_server() {
    let draft = Personality {
        symlink_draft_order: true,
        ..Personality::unknown()
    };
    let m = mount_as(draft.clone()).await;
    let made = m.fs.symlink(ROOT, name("link"), name("target")).await;
    let snap = m.server.snapshot();
    let right = snap
        .get(&m.path("link"))
        .is_some_and(|n| n.target.as_deref() == Some("target"));
    assert!(
        made.is_err() || !right,
        "detection alone cannot know: {made:?}"
    );

    let forced = ServerOverrides {
        symlink_order: Some(SymlinkOrder::Draft),
        ..ServerOverrides::default()
    };
    let m = mount_with(draft, forced).await;
    m.fs.symlink(ROOT, name("link"), name("target"))
        .await
        .unwrap();
    let snap = m.server.snapshot();
    assert_eq!(snap[&m.path("link")].kind, NodeKind::Symlink);
    assert_eq!(snap[&m.path("link")].target.as_deref(), Some("target"));
}

/// Hidden files an earlier mount left in the root (it ended while they were open) are listed
/// at mount where hiding is used, and left alone: another client may hold them open. Not
/// looked for on OpenSSH's server, which needs no hiding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_leftovers_are_listed_not_removed() {
    let leftover = ".fuse_hidden0000002a00000001";
    let m = mount_as(Personality::unknown()).await;
    m.server.put_file(&m.path(leftover), b"old").unwrap();
    m.server.put_file(&m.path(".fuse_hiddenfoo"), b"x").unwrap();
    assert_eq!(m.fs.note_hidden_leftovers().await, [leftover]);
    assert_eq!(m.server.read_file(&m.path(leftover)).unwrap(), b"old");
    let m = mount().await;
    m.server.put_file(&m.path(leftover), b"old").unwrap();
    assert!(m.fs.note_hidden_leftovers().await.is_empty());
}

/// Issue 20: on a server that drops a removed file with its name (rclone), a file removed
/// while open through the mount stays readable and writable until its last close, as on
/// Linux: it is renamed to `.fuse_hidden<ino><n>` (libfuse's answer), left out of listings,
/// and removed at the last release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_open_file_stays_readable_on_a_server_that_drops_it() {
    // rclone's semantics for removed files, without its in-order writes.
    let m = mount_as(Personality {
        unlinked_files_vanish: true,
        ..Personality::unknown()
    })
    .await;
    m.server.put_file(&m.path("f"), b"content").unwrap();
    m.server.put_file(&m.path("other"), b"o").unwrap();
    let f = m.fs.lookup(ROOT, name("f")).await.unwrap();
    let (fh, _) = m.fs.open(f.ino, flags(libc::O_RDWR)).await.unwrap();
    let (fh2, _) = m.fs.open(f.ino, flags(libc::O_RDONLY)).await.unwrap();
    m.fs.unlink(ROOT, name("f")).await.unwrap();
    assert_eq!(
        m.fs.lookup(ROOT, name("f")).await.unwrap_err().errno,
        libc::ENOENT
    );
    let read = m.fs.read(fh, 0, 100).await;
    assert_eq!(read.map_err(|e| e.errno), Ok(b"content".to_vec()));
    m.fs.write(fh, 7, b"+more").await.unwrap();
    m.fs.flush(fh).await.unwrap();
    let attr = m.fs.getattr(f.ino, Some(fh)).await.unwrap();
    assert_eq!(
        (attr.size, attr.nlink),
        (12, 0),
        "as fstat of a removed file"
    );

    // On the server: under a hidden name in the same directory; not in our listing.
    let hidden: Vec<String> = m
        .server
        .snapshot()
        .keys()
        .filter(|p| p.starts_with(&m.path(".fuse_hidden")))
        .cloned()
        .collect();
    assert_eq!(hidden.len(), 1, "{hidden:?}");
    assert_eq!(m.server.read_file(&hidden[0]).unwrap(), b"content+more");
    let dh = m.fs.opendir(ROOT).await.unwrap();
    let listed: Vec<String> =
        m.fs.readdir(dh, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.name)
            .collect();
    m.fs.releasedir(dh).await.unwrap();
    assert_eq!(listed, [".", "..", "other"]);

    // Removed at the last release only.
    m.fs.release(fh).await.unwrap();
    assert!(m.server.read_file(&hidden[0]).is_some(), "still open once");
    assert_eq!(m.fs.read(fh2, 0, 100).await.unwrap(), b"content+more");
    m.fs.release(fh2).await.unwrap();
    assert!(
        m.server.read_file(&hidden[0]).is_none(),
        "removed at the last close"
    );
    assert_eq!(m.server.snapshot().len(), 3, "/m, /m/other and the root");
    m.assert_clean().await;
}

/// A rename over a file open through the mount, on such a server: the replaced file is
/// hidden first, so its readers keep reading the old content until their last close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_replaced_by_rename_while_open_stays_readable() {
    let m = mount_as(Personality {
        unlinked_files_vanish: true,
        ..Personality::unknown()
    })
    .await;
    m.server.put_file(&m.path("f"), b"old").unwrap();
    m.server.put_file(&m.path("new"), b"new").unwrap();
    let f = m.fs.lookup(ROOT, name("f")).await.unwrap();
    m.fs.lookup(ROOT, name("new")).await.unwrap();
    let (fh, _) = m.fs.open(f.ino, flags(libc::O_RDONLY)).await.unwrap();
    m.fs.rename(ROOT, name("new"), ROOT, name("f"), 0)
        .await
        .unwrap();
    assert_eq!(m.content("f").unwrap(), b"new");
    assert_eq!(m.fs.read(fh, 0, 100).await.unwrap(), b"old");
    m.fs.release(fh).await.unwrap();
    assert_eq!(m.server.snapshot().len(), 3, "/, /m and /m/f");
    m.assert_clean().await;
}

/// `-o hard_remove` (libfuse's option) removes an open file at once, as before: on a server
/// that drops it, its readers then fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_remove_removes_an_open_file_at_once() {
    let hard = ServerOverrides {
        hard_remove: Some(true),
        ..ServerOverrides::default()
    };
    let vanish = Personality {
        unlinked_files_vanish: true,
        ..Personality::unknown()
    };
    let m = mount_with(vanish, hard).await;
    m.server.put_file(&m.path("f"), b"content").unwrap();
    let f = m.fs.lookup(ROOT, name("f")).await.unwrap();
    let (fh, _) = m.fs.open(f.ino, flags(libc::O_RDONLY)).await.unwrap();
    m.fs.unlink(ROOT, name("f")).await.unwrap();
    assert_eq!(m.server.requests("rename"), 0);
    assert_eq!(m.fs.read(fh, 0, 100).await.unwrap_err().errno, libc::ENOENT);
    let _ = m.fs.release(fh).await;
}

/// A file that is not open, or any file on OpenSSH's server, is removed with one REMOVE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlink_is_one_remove_unless_an_open_file_must_be_kept() {
    let m = mount_as(Personality::rclone()).await;
    m.server.put_file(&m.path("closed"), b"x").unwrap();
    m.fs.lookup(ROOT, name("closed")).await.unwrap();
    m.fs.unlink(ROOT, name("closed")).await.unwrap();
    assert_eq!(m.server.requests("remove"), 1);
    assert_eq!(m.server.requests("rename"), 0);

    let m = mount().await;
    m.server.put_file(&m.path("f"), b"content").unwrap();
    let f = m.fs.lookup(ROOT, name("f")).await.unwrap();
    let (fh, _) = m.fs.open(f.ino, flags(libc::O_RDONLY)).await.unwrap();
    m.fs.unlink(ROOT, name("f")).await.unwrap();
    assert_eq!(m.server.requests("remove"), 1);
    assert_eq!(m.server.requests("rename"), 0);
    assert_eq!(m.fs.read(fh, 0, 100).await.unwrap(), b"content");
    m.fs.release(fh).await.unwrap();
    assert!(
        m.server
            .snapshot()
            .keys()
            .all(|p| !p.contains("fuse_hidden"))
    );
}

/// Issue 20: a server that takes writes only in order (rclone's default) is known by its
/// banner as not OpenSSH: one channel, so a large file's writes reach it in order and `dd`
/// of a large file succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_write_on_an_in_order_server_succeeds() {
    let m = mount_as(Personality::rclone()).await;
    assert_eq!(m.fs.sftp().server().channels, 1);
    let fs = &m.fs;
    let rw = flags(libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC);
    let (_, fh) = fs.create(ROOT, name("big"), 0o644, rw).await.unwrap();
    let data: Vec<u8> = (0..10u32 << 20).map(|i| (i % 251) as u8).collect();
    let mut result = Ok(());
    for (i, chunk) in data.chunks(128 * 1024).enumerate() {
        if let Err(e) = fs.write(fh, (i * 128 * 1024) as u64, chunk).await {
            result = Err(e.errno);
            break;
        }
    }
    let flushed = fs.flush(fh).await.map_err(|e| e.errno);
    let _ = fs.release(fh).await;
    assert_eq!((result, flushed), (Ok(()), Ok(())));
    assert!(m.content("big").unwrap() == data);
    m.assert_clean().await;
}

/// Issue 20: a status code above 8 (here NO_SPACE_ON_FILESYSTEM for a full disk) kills the
/// session in russh-sftp; our engine takes that for a lost connection, reconnects and sends
/// the write again, which kills the new session too: the write never fails, it loops (until
/// the reconnect policy gives up, if ever). A full disk should be ENOSPC, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_on_a_server_with_newer_status_codes_fails_the_write() {
    let m = mount_as(Personality {
        status_codes_above_8: true,
        quota: Some(64 * 1024),
        ..Personality::openssh()
    })
    .await;
    let fs = &m.fs;
    let rw = flags(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL);
    let (_, fh) = fs.create(ROOT, name("f"), 0o644, rw).await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        fs.write(fh, 0, &vec![1; 128 * 1024]).await?;
        fs.flush(fh).await
    })
    .await;
    let sessions = m.server.request_counts().get("init").copied().unwrap_or(0);
    let errno = match outcome {
        Ok(r) => r.map_err(|e| e.errno),
        Err(_) => panic!("no answer within 10 s; the server saw {sessions} sessions start"),
    };
    assert_eq!(errno, Err(libc::ENOSPC));
}

/// On one channel, writes leave in the order the program made them, whatever their size
/// (split into several WRITEs, or many small ones behind each other): an in-order server
/// takes them even where it looks like OpenSSH's, with `-o max_conns=1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_channel_sends_writes_in_order_whatever_their_size() {
    let one = ServerOverrides {
        max_conns: Some(1),
        ..ServerOverrides::default()
    };
    let in_order = Personality {
        writes_in_order: true,
        ..Personality::openssh()
    };
    let m = mount_with(in_order, one).await;
    let fs = &m.fs;
    let rw = flags(libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC);
    let data: Vec<u8> = (0..9u32 << 20).map(|i| (i % 253) as u8).collect();
    for (file, chunk_len) in [("big", 1 << 20), ("small", 32 * 1024), ("odd", 200_001)] {
        let (_, fh) = fs.create(ROOT, name(file), 0o644, rw).await.unwrap();
        for (i, chunk) in data.chunks(chunk_len).enumerate() {
            fs.write(fh, (i * chunk_len) as u64, chunk).await.unwrap();
        }
        fs.flush(fh).await.unwrap();
        fs.release(fh).await.unwrap();
        assert!(m.content(file).unwrap() == data, "{file}");
    }
    m.assert_clean().await;
}

/// A mount over `personality` behind a fault injector: the server, the injector, the connector
/// (to count reconnects) and the filesystem.
async fn mount_faulty(
    personality: Personality,
) -> (
    MemoryServer,
    Arc<Faulty>,
    Arc<StreamConnector>,
    Arc<crate::fs::SshFs>,
) {
    let banner = personality.banner.clone();
    let server = MemoryServer::with_personality(personality);
    server.mkdir(super::DIR).unwrap();
    let faulty = Faulty::new(Arc::new(server.clone()));
    let connector = StreamConnector::new(faulty.clone());
    let sftp = connector.connect_sftp(quick_reconnect()).await;
    let profile = ServerProfile::decide(banner.as_deref(), sftp.extensions(), Default::default());
    sftp.set_server(profile);
    let fs = Arc::new(crate::fs::SshFs::new(
        sftp,
        super::DIR.into(),
        sshfs_cache::CacheConfig::default(),
    ));
    (server, faulty, connector, fs)
}

/// A hidden file has a name: after a reconnect, its handle is reopened by it, and the file
/// still reads (on OpenSSH's server a removed open file cannot be reopened).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_file_is_reopened_by_its_hidden_name_after_a_reconnect() {
    let (server, faulty, connector, fs) = mount_faulty(Personality {
        unlinked_files_vanish: true,
        ..Personality::unknown()
    })
    .await;
    server.put_file("/m/f", b"content").unwrap();
    let f = fs.lookup(ROOT, name("f")).await.unwrap();
    let (fh, _) = fs.open(f.ino, flags(libc::O_RDONLY)).await.unwrap();
    fs.unlink(ROOT, name("f")).await.unwrap();
    assert_eq!(faulty.plan().cut_now(), vec![1]);
    assert_eq!(fs.read(fh, 0, 100).await.unwrap(), b"content");
    assert_eq!(connector.connections(), 2);
    fs.release(fh).await.unwrap();
    assert_eq!(server.snapshot().len(), 2, "only / and /m left");
}

/// A server that refuses to rename an open file: `rm` still works (the file is removed at
/// once, as without hiding), and so does a rename over it (posix-rename, not refused here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rm_of_an_open_file_works_when_the_server_refuses_to_hide_it() {
    let (server, faulty, _, fs) = mount_faulty(Personality {
        unlinked_files_vanish: true,
        extensions: true,
        ..Personality::unknown()
    })
    .await;
    faulty
        .plan()
        .refuse(Pick::kind(RENAME).nth(1), FX_PERMISSION_DENIED);
    server.put_file("/m/f", b"content").unwrap();
    server.put_file("/m/g", b"g").unwrap();
    let f = fs.lookup(ROOT, name("f")).await.unwrap();
    let (fh, _) = fs.open(f.ino, flags(libc::O_RDONLY)).await.unwrap();
    fs.unlink(ROOT, name("f")).await.unwrap();
    assert!(server.read_file("/m/f").is_none());
    fs.release(fh).await.unwrap();
    assert_eq!(
        server.requests("rename"),
        0,
        "refused before the server saw it"
    );
    assert_eq!(server.requests("remove"), 1);
    // Over an open file: the hiding RENAME is refused, the rename itself goes through.
    faulty
        .plan()
        .refuse(Pick::kind(RENAME).nth(1), FX_PERMISSION_DENIED);
    server.put_file("/m/new", b"new").unwrap();
    fs.lookup(ROOT, name("new")).await.unwrap();
    let g = fs.lookup(ROOT, name("g")).await.unwrap();
    let (gh, _) = fs.open(g.ino, flags(libc::O_RDONLY)).await.unwrap();
    fs.rename(ROOT, name("new"), ROOT, name("g"), 0)
        .await
        .unwrap();
    assert_eq!(server.read_file("/m/g").unwrap(), b"new");
    fs.release(gh).await.unwrap();
    assert_eq!(server.snapshot().len(), 3, "/, /m and /m/g");
}
