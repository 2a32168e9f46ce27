//! Regular files: OPEN's flags, READ, WRITE, the stats, SETSTAT and FSETSTAT.

use russh_sftp::protocol::{FileAttributes, OpenFlags};

use super::{code, create_flags, no_attrs, perm, session};
use crate::remote::testing::memory::personality::*;
use crate::remote::testing::memory::{MemoryServer, NodeKind};

/// A file written and read back; its attributes as OpenSSH's `stat_to_attrib` gives them.
#[tokio::test]
async fn write_read_and_stat_a_file() {
    let server = MemoryServer::new();
    server.set_time(1_700_000_000);
    let raw = session(&server).await;
    let h = raw
        .open("/f", create_flags(), perm(0o640))
        .await
        .unwrap()
        .handle;
    raw.write(h.clone(), 0, b"hello world".to_vec())
        .await
        .unwrap();
    assert_eq!(raw.read(h.clone(), 6, 100).await.unwrap().data, b"world");
    assert_eq!(code(raw.read(h.clone(), 11, 100).await), FX_EOF);
    let a = raw.fstat(h.clone()).await.unwrap().attrs;
    assert_eq!(a.size, Some(11));
    assert_eq!(a.permissions, Some(libc::S_IFREG | 0o640));
    assert_eq!((a.uid, a.gid), (Some(0), Some(0)));
    assert_eq!(
        (a.atime, a.mtime),
        (Some(1_700_000_000), Some(1_700_000_000))
    );
    raw.close(h).await.unwrap();
    assert_eq!(raw.lstat("/f").await.unwrap().attrs.size, Some(11));
    assert_eq!(server.read_file("/f").unwrap(), b"hello world");
    assert_eq!(server.snapshot()["/f"].kind, NodeKind::File);
    assert_eq!(server.open_handles(), 0);
}

/// A new file's mode is the OPEN's permissions less the umask (0666 without any).
#[tokio::test]
async fn a_new_file_s_mode_is_masked_by_the_umask() {
    let server = MemoryServer::new();
    let raw = session(&server).await;
    let h = raw
        .open("/a", create_flags(), no_attrs())
        .await
        .unwrap()
        .handle;
    raw.close(h).await.unwrap();
    let h = raw
        .open("/b", create_flags(), perm(0o777))
        .await
        .unwrap()
        .handle;
    raw.close(h).await.unwrap();
    assert_eq!(server.snapshot()["/a"].mode, libc::S_IFREG | 0o644);
    assert_eq!(server.snapshot()["/b"].mode, libc::S_IFREG | 0o755);
}

/// OPEN as open(2) does it: EXCL on an existing name fails (FAILURE), a missing file without
/// CREAT is NO_SUCH_FILE, a directory cannot be opened for writing (EISDIR: FAILURE) but can
/// be for reading (its READ then fails), TRUNC empties.
#[tokio::test]
async fn open_flags_as_open_2() {
    let server = MemoryServer::new();
    server.put_file("/f", b"data").unwrap();
    server.mkdir("/d").unwrap();
    let raw = session(&server).await;
    let excl = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUDE;
    assert_eq!(code(raw.open("/f", excl, no_attrs()).await), FX_FAILURE);
    assert_eq!(
        code(raw.open("/g", OpenFlags::READ, no_attrs()).await),
        FX_NO_SUCH_FILE
    );
    assert_eq!(
        code(raw.open("/d", OpenFlags::WRITE, no_attrs()).await),
        FX_FAILURE
    );
    assert_eq!(
        code(
            raw.open("/d", OpenFlags::READ | OpenFlags::CREATE, no_attrs())
                .await
        ),
        FX_FAILURE
    );
    let h = raw
        .open("/d", OpenFlags::READ, no_attrs())
        .await
        .unwrap()
        .handle;
    assert_eq!(
        code(raw.read(h.clone(), 0, 10).await),
        FX_FAILURE,
        "read(2) of a directory: EISDIR"
    );
    raw.close(h).await.unwrap();
    assert_eq!(
        code(raw.open("/nodir/f", create_flags(), no_attrs()).await),
        FX_NO_SUCH_FILE
    );
    assert_eq!(
        code(raw.open("/f/x", create_flags(), no_attrs()).await),
        FX_NO_SUCH_FILE,
        "ENOTDIR"
    );
    let h = raw
        .open("/f", OpenFlags::WRITE | OpenFlags::TRUNCATE, no_attrs())
        .await
        .unwrap()
        .handle;
    raw.close(h).await.unwrap();
    assert_eq!(server.read_file("/f").unwrap(), b"");
}

/// A write past the end leaves a hole that reads as zeros and allocates nothing.
#[tokio::test]
async fn writes_past_the_end_leave_holes() {
    let server = MemoryServer::new();
    let raw = session(&server).await;
    let h = raw
        .open("/sparse", create_flags(), no_attrs())
        .await
        .unwrap()
        .handle;
    raw.write(h.clone(), 1 << 40, b"far".to_vec())
        .await
        .unwrap();
    raw.write(h.clone(), 10, b"near".to_vec()).await.unwrap();
    assert_eq!(
        raw.fstat(h.clone()).await.unwrap().attrs.size,
        Some((1 << 40) + 3)
    );
    assert_eq!(
        raw.read(h.clone(), 8, 8).await.unwrap().data,
        b"\0\0near\0\0"
    );
    assert_eq!(
        raw.read(h.clone(), (1 << 40) - 1, 8).await.unwrap().data,
        b"\0far"
    );
    assert_eq!(server.allocated_bytes(), 2 * 4096);
    raw.close(h).await.unwrap();
}

/// APPEND: every write goes to the end, whatever its offset.
#[tokio::test]
async fn append_writes_go_to_the_end() {
    let server = MemoryServer::new();
    server.put_file("/log", b"one ").unwrap();
    let raw = session(&server).await;
    let h = raw
        .open("/log", OpenFlags::WRITE | OpenFlags::APPEND, no_attrs())
        .await
        .unwrap()
        .handle;
    raw.write(h.clone(), 0, b"two ".to_vec()).await.unwrap();
    raw.write(h.clone(), 1, b"three".to_vec()).await.unwrap();
    raw.close(h).await.unwrap();
    assert_eq!(server.read_file("/log").unwrap(), b"one two three");
}

/// A handle is only good for its access mode: read(2) or write(2) on the other gives EBADF,
/// which OpenSSH answers NO_SUCH_FILE; ftruncate of a read-only handle is EINVAL
/// (BAD_MESSAGE).
#[tokio::test]
async fn the_access_mode_of_a_handle_is_enforced() {
    let server = MemoryServer::new();
    server.put_file("/f", b"abc").unwrap();
    let raw = session(&server).await;
    let ro = raw
        .open("/f", OpenFlags::READ, no_attrs())
        .await
        .unwrap()
        .handle;
    let wo = raw
        .open("/f", OpenFlags::WRITE, no_attrs())
        .await
        .unwrap()
        .handle;
    assert_eq!(
        code(raw.write(ro.clone(), 0, b"x".to_vec()).await),
        FX_NO_SUCH_FILE
    );
    assert_eq!(code(raw.read(wo.clone(), 0, 3).await), FX_NO_SUCH_FILE);
    let truncate = FileAttributes {
        size: Some(0),
        ..FileAttributes::empty()
    };
    assert_eq!(
        code(raw.fsetstat(ro.clone(), truncate.clone()).await),
        FX_BAD_MESSAGE
    );
    raw.fsetstat(wo.clone(), truncate).await.unwrap();
    assert_eq!(server.read_file("/f").unwrap(), b"");
}

/// SETSTAT and FSETSTAT change size, mode (07777 kept), owners and times; STAT follows a
/// symlink, LSTAT does not.
#[tokio::test]
async fn setstat_changes_every_attribute() {
    let server = MemoryServer::new();
    server.put_file("/f", b"0123456789").unwrap();
    server.symlink("/l", "f").unwrap();
    let raw = session(&server).await;
    let all = FileAttributes {
        size: Some(4),
        uid: Some(1000),
        gid: Some(100),
        permissions: Some(0o4751),
        atime: Some(111),
        mtime: Some(222),
        ..FileAttributes::empty()
    };
    raw.setstat("/l", all).await.unwrap();
    let a = raw.stat("/l").await.unwrap().attrs;
    assert_eq!(a.size, Some(4));
    // chown ran after chmod and cleared setuid, as chown(2) of a file does.
    assert_eq!(a.permissions, Some(libc::S_IFREG | 0o751));
    assert_eq!(
        (a.uid, a.gid, a.atime, a.mtime),
        (Some(1000), Some(100), Some(111), Some(222))
    );
    let l = raw.lstat("/l").await.unwrap().attrs;
    assert_eq!(l.permissions, Some(libc::S_IFLNK | 0o777));
    assert_eq!(l.size, Some(1));
    let h = raw
        .open("/f", OpenFlags::READ | OpenFlags::WRITE, no_attrs())
        .await
        .unwrap()
        .handle;
    let grow = FileAttributes {
        size: Some(8),
        permissions: Some(0o600),
        ..FileAttributes::empty()
    };
    raw.fsetstat(h.clone(), grow).await.unwrap();
    assert_eq!(
        raw.read(h.clone(), 0, 100).await.unwrap().data,
        b"0123\0\0\0\0"
    );
    assert_eq!(
        raw.fstat(h).await.unwrap().attrs.permissions,
        Some(libc::S_IFREG | 0o600)
    );
    assert_eq!(code(raw.stat("/missing").await), FX_NO_SUCH_FILE);
    assert_eq!(
        code(raw.setstat("/missing", perm(0o600)).await),
        FX_NO_SUCH_FILE
    );
}
