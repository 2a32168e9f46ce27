//! OpenSSH's extensions, as our client calls them (client/src/remote/sftp/requests.rs) and as
//! `sftp-server` 9.2 answers.

use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet};

use super::{code, create_flags, no_attrs, session};
use crate::remote::testing::memory::personality::*;
use crate::remote::testing::memory::{MemoryServer, NodeKind, Personality};

fn ssh_string(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

fn status(p: Result<Packet, russh_sftp::client::error::Error>) -> u32 {
    match p {
        Ok(Packet::Status(s)) => u32::from(s.status_code),
        other => panic!("expected a status, got {other:?}"),
    }
}

/// posix-rename replaces the target; plain RENAME never does.
#[tokio::test]
async fn posix_rename_replaces_where_rename_refuses() {
    let server = MemoryServer::new();
    server.put_file("/a", b"a").unwrap();
    server.put_file("/b", b"b").unwrap();
    let raw = session(&server).await;
    assert_eq!(code(raw.rename("/a", "/b").await), FX_FAILURE);
    let mut data = ssh_string(b"/a");
    data.extend(ssh_string(b"/b"));
    assert_eq!(
        status(raw.extended("posix-rename@openssh.com", data).await),
        FX_OK
    );
    assert_eq!(server.read_file("/b").unwrap(), b"a");
    assert!(!server.snapshot().contains_key("/a"));
    raw.rename("/b", "/c").await.unwrap();
    assert_eq!(server.read_file("/c").unwrap(), b"a");
}

/// hardlink: both names one file, its link count 2; a directory cannot be linked (EPERM).
#[tokio::test]
async fn hardlink_counts_links() {
    let server = MemoryServer::new();
    server.put_file("/a", b"x").unwrap();
    server.mkdir("/d").unwrap();
    let raw = session(&server).await;
    raw.hardlink("/a", "/d/b").await.unwrap();
    let snap = server.snapshot();
    assert_eq!((snap["/a"].nlink, snap["/d/b"].nlink), (2, 2));
    assert_eq!(code(raw.hardlink("/a", "/d/b").await), FX_FAILURE);
    assert_eq!(code(raw.hardlink("/d", "/e").await), FX_PERMISSION_DENIED);
    server.write_at("/d/b", 1, b"y").unwrap();
    assert_eq!(server.read_file("/a").unwrap(), b"xy");
    raw.remove("/a").await.unwrap();
    assert_eq!(server.snapshot()["/d/b"].nlink, 1);
}

/// fsync: OK on a file handle; NO_SUCH_FILE on anything else.
#[tokio::test]
async fn fsync_answers() {
    let server = MemoryServer::new();
    server.mkdir("/d").unwrap();
    let raw = session(&server).await;
    let f = raw
        .open("/f", create_flags(), no_attrs())
        .await
        .unwrap()
        .handle;
    let d = raw.opendir("/d").await.unwrap().handle;
    raw.fsync(f).await.unwrap();
    assert_eq!(code(raw.fsync(d).await), FX_NO_SUCH_FILE);
}

/// statvfs and fstatvfs: 4 KiB blocks; the quota's size; 255-byte names.
#[tokio::test]
async fn statvfs_answers() {
    let server = MemoryServer::with_personality(Personality {
        quota: Some(1 << 20),
        ..Personality::openssh()
    });
    server.put_file("/f", &[1; 5000]).unwrap();
    let raw = session(&server).await;
    let st = raw.statvfs("/").await.unwrap();
    assert_eq!(
        (st.block_size, st.fragment_size, st.blocks, st.blocks_free),
        (4096, 4096, 256, 254)
    );
    assert_eq!(st.name_max, 255);
    assert_eq!(code(raw.statvfs("/missing").await), FX_NO_SUCH_FILE);
    let h = raw
        .open("/f", OpenFlags::READ, no_attrs())
        .await
        .unwrap()
        .handle;
    let reply = raw
        .extended("fstatvfs@openssh.com", ssh_string(h.as_bytes()))
        .await;
    assert!(matches!(reply, Ok(Packet::ExtendedReply(_))), "{reply:?}");
}

/// lsetstat changes a symlink itself: times and owners; a mode on a symlink fails as glibc's
/// fchmodat(AT_SYMLINK_NOFOLLOW) does (FAILURE); a size is BAD_MESSAGE.
#[tokio::test]
async fn lsetstat_changes_the_link_itself() {
    let server = MemoryServer::new();
    server.put_file("/f", b"x").unwrap();
    server.symlink("/l", "f").unwrap();
    let raw = session(&server).await;
    let lsetstat = |a: FileAttributes| {
        let mut data = ssh_string(b"/l");
        data.extend(russh_sftp::ser::to_bytes(&a).unwrap().to_vec());
        raw.extended("lsetstat@openssh.com", data)
    };
    let times = FileAttributes {
        atime: Some(10),
        mtime: Some(20),
        uid: Some(7),
        gid: Some(8),
        ..FileAttributes::empty()
    };
    assert_eq!(status(lsetstat(times).await), FX_OK);
    let l = server.lstat("/l").unwrap();
    assert_eq!((l.atime, l.mtime, l.uid, l.gid), (10, 20, 7, 8));
    assert_ne!(
        server.lstat("/f").unwrap().mtime,
        20,
        "the target is untouched"
    );
    let mode = FileAttributes {
        permissions: Some(0o600),
        ..FileAttributes::empty()
    };
    assert_eq!(status(lsetstat(mode).await), FX_FAILURE);
    let size = FileAttributes {
        size: Some(0),
        ..FileAttributes::empty()
    };
    assert_eq!(status(lsetstat(size).await), FX_BAD_MESSAGE);
}

/// limits: OpenSSH's packet, read and write lengths.
#[tokio::test]
async fn limits_answers() {
    let server = MemoryServer::new();
    let raw = session(&server).await;
    let l = raw.limits().await.unwrap();
    assert_eq!(
        (l.max_packet_len, l.max_read_len, l.max_write_len),
        (262_144, 261_120, 261_120)
    );
    assert_eq!(l.max_open_handles, 1019);
}

/// expand-path: `~` is the working directory; realpath resolves the rest.
#[tokio::test]
async fn expand_path_answers() {
    let server = MemoryServer::with_personality(Personality {
        home: "/home/u".into(),
        ..Personality::openssh()
    });
    server.mkdir("/home/u/d").unwrap();
    server.symlink("/home/u/l", "d").unwrap();
    let raw = session(&server).await;
    let expand = |p: &'static str| raw.expand_path(p);
    assert_eq!(expand("~").await.unwrap().files[0].filename, "/home/u");
    assert_eq!(
        expand("~/l/x").await.unwrap().files[0].filename,
        "/home/u/d/x"
    );
    assert_eq!(expand("l").await.unwrap().files[0].filename, "/home/u/d");
    assert_eq!(
        expand("~root/d").await.unwrap().files[0].filename,
        "/home/u/d"
    );
    assert_eq!(code(expand("~nobody/x").await), FX_NO_SUCH_FILE);
    assert_eq!(
        raw.realpath(".").await.unwrap().files[0].filename,
        "/home/u"
    );
}

/// copy-data between two handles, OpenSSH 9.2's way: OK when the length runs out (also when
/// the source ended in the last 64 KiB), EOF when the source ends before a later chunk,
/// FAILURE for the same handle or the same path; the destination grows, holes stay holes.
#[tokio::test]
async fn copy_data_answers_as_openssh_9_2() {
    let server = MemoryServer::new();
    server
        .put_file(
            "/src",
            &(0..200_000u32).map(|i| i as u8).collect::<Vec<_>>(),
        )
        .unwrap();
    let raw = session(&server).await;
    let src = raw
        .open("/src", OpenFlags::READ, no_attrs())
        .await
        .unwrap()
        .handle;
    let dst = raw
        .open("/dst", create_flags(), no_attrs())
        .await
        .unwrap()
        .handle;
    let copy = |from: &str, off: u64, len: u64, to: &str, to_off: u64| {
        let mut data = ssh_string(from.as_bytes());
        data.extend(off.to_be_bytes());
        data.extend(len.to_be_bytes());
        data.extend(ssh_string(to.as_bytes()));
        data.extend(to_off.to_be_bytes());
        raw.extended("copy-data", data)
    };
    assert_eq!(status(copy(&src, 10, 100, &dst, 1000).await), FX_OK);
    let back = server.read_file("/dst").unwrap();
    assert_eq!(back.len(), 1100);
    assert_eq!(&back[1000..], &server.read_file("/src").unwrap()[10..110]);
    assert!(back[..1000].iter().all(|&b| b == 0));
    assert_eq!(status(copy(&src, 0, 0, &dst, 0).await), FX_OK, "to the end");
    assert_eq!(
        server.read_file("/dst").unwrap(),
        server.read_file("/src").unwrap()
    );
    assert_eq!(
        status(copy(&src, 199_990, 100, &dst, 0).await),
        FX_OK,
        "ended in the last chunk"
    );
    assert_eq!(
        status(copy(&src, 0, 300_000, &dst, 0).await),
        FX_OK,
        "the length ran out at the end"
    );
    assert_eq!(
        status(copy(&src, 0, 400_000, &dst, 0).await),
        FX_EOF,
        "ended before a later chunk"
    );
    assert_eq!(status(copy(&src, 0, 10, &src, 0).await), FX_FAILURE);
    let again = raw
        .open("/src", OpenFlags::READ | OpenFlags::WRITE, no_attrs())
        .await
        .unwrap()
        .handle;
    assert_eq!(
        status(copy(&src, 0, 10, &again, 0).await),
        FX_FAILURE,
        "same path"
    );
    assert_eq!(server.snapshot()["/dst"].kind, NodeKind::File);
}

/// home-directory and users-groups-by-id.
#[tokio::test]
async fn user_extensions_answer() {
    let server = MemoryServer::new();
    let raw = session(&server).await;
    match raw.extended("home-directory", ssh_string(b"root")).await {
        Ok(Packet::Name(n)) => assert_eq!(n.files[0].filename, "/"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        status(raw.extended("home-directory", ssh_string(b"nobody")).await),
        FX_FAILURE
    );
    let mut ids = ssh_string(&[0, 0, 0, 0, 0, 0, 3, 232]);
    ids.extend(ssh_string(&[0, 0, 0, 0]));
    match raw.extended("users-groups-by-id@openssh.com", ids).await {
        Ok(Packet::ExtendedReply(r)) => {
            let mut expected = ssh_string(&[0, 0, 0, 4, b'r', b'o', b'o', b't', 0, 0, 0, 0]);
            expected.extend(ssh_string(&[0, 0, 0, 4, b'r', b'o', b'o', b't']));
            assert_eq!(r.data, expected);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        status(raw.extended("nonsense@example.com", Vec::new()).await),
        FX_OP_UNSUPPORTED
    );
}
