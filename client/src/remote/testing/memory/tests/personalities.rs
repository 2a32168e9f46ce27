//! The switches for servers other than OpenSSH's, and what the vendored russh-sftp does with
//! a status code above 8.

use russh_sftp::client::error::Error as RawError;
use russh_sftp::protocol::OpenFlags;

use super::{code, create_flags, no_attrs, session};
use crate::remote::testing::memory::personality::*;
use crate::remote::testing::memory::{MemoryServer, NodeKind, Personality};

/// OpenSSH's VERSION names its eleven extensions; without them, none, and every EXTENDED
/// request (known or not) is OP_UNSUPPORTED.
#[tokio::test]
async fn extensions_are_announced_or_not() {
    let server = MemoryServer::new();
    let raw = russh_sftp::client::RawSftpSession::new(
        crate::remote::testing::ServeSftp::open_session(&server, 1, 0),
    );
    let version = raw.init().await.unwrap();
    assert_eq!(version.version, 3);
    assert_eq!(version.extensions.len(), 11);
    assert_eq!(version.extensions["statvfs@openssh.com"], "2");
    assert!(version.extensions.contains_key("copy-data"));

    let bare = MemoryServer::with_personality(Personality {
        extensions: false,
        ..Personality::openssh()
    });
    let raw = russh_sftp::client::RawSftpSession::new(
        crate::remote::testing::ServeSftp::open_session(&bare, 1, 0),
    );
    assert!(raw.init().await.unwrap().extensions.is_empty());
    assert_eq!(code(raw.limits().await), FX_OP_UNSUPPORTED);
    assert_eq!(code(raw.hardlink("/a", "/b").await), FX_OP_UNSUPPORTED);
    assert_eq!(bare.requests("hardlink@openssh.com"), 1);
}

/// SYMLINK: OpenSSH reads (target, link path); the draft's order is (link path, target).
#[tokio::test]
async fn symlink_arguments_in_either_order() {
    let openssh = MemoryServer::new();
    let raw = session(&openssh).await;
    // russh-sftp's symlink(a, b) sends a then b.
    raw.symlink("target", "/link").await.unwrap();
    assert_eq!(
        openssh.snapshot()["/link"].target.as_deref(),
        Some("target")
    );

    let draft = MemoryServer::with_personality(Personality {
        symlink_draft_order: true,
        ..Personality::openssh()
    });
    let raw = session(&draft).await;
    raw.symlink("/link", "target").await.unwrap();
    assert_eq!(draft.snapshot()["/link"].target.as_deref(), Some("target"));
    assert_eq!(draft.snapshot()["/link"].kind, NodeKind::Symlink);
}

/// Linux keeps a removed open file usable through its handles; with the switch, it is gone.
#[tokio::test]
async fn a_removed_open_file_stays_or_vanishes() {
    for vanish in [false, true] {
        let server = MemoryServer::with_personality(Personality {
            unlinked_files_vanish: vanish,
            ..Personality::openssh()
        });
        server.put_file("/f", b"kept").unwrap();
        let raw = session(&server).await;
        let h = raw
            .open("/f", OpenFlags::READ | OpenFlags::WRITE, no_attrs())
            .await
            .unwrap()
            .handle;
        raw.remove("/f").await.unwrap();
        let read = raw.read(h.clone(), 0, 10).await;
        let write = raw.write(h.clone(), 4, b"!".to_vec()).await;
        let fstat = raw.fstat(h.clone()).await;
        if vanish {
            assert_eq!(code(read), FX_NO_SUCH_FILE);
            assert_eq!(code(write), FX_NO_SUCH_FILE);
            assert_eq!(code(fstat), FX_NO_SUCH_FILE);
        } else {
            assert_eq!(read.unwrap().data, b"kept");
            write.unwrap();
            assert_eq!(fstat.unwrap().attrs.size, Some(5));
        }
        raw.close(h).await.unwrap();
        assert_eq!(server.inodes(), 1, "only the root is left");
    }
}

/// rclone takes each handle's WRITEs only in order, from 0.
#[tokio::test]
async fn writes_in_order_only() {
    let server = MemoryServer::with_personality(Personality::rclone());
    let raw = session(&server).await;
    let h = raw
        .open("/f", create_flags(), no_attrs())
        .await
        .unwrap()
        .handle;
    raw.write(h.clone(), 0, b"abc".to_vec()).await.unwrap();
    raw.write(h.clone(), 3, b"def".to_vec()).await.unwrap();
    assert_eq!(
        code(raw.write(h.clone(), 10, b"x".to_vec()).await),
        FX_FAILURE
    );
    assert_eq!(
        code(raw.write(h.clone(), 0, b"x".to_vec()).await),
        FX_FAILURE
    );
    let again = raw
        .open("/f", OpenFlags::WRITE, no_attrs())
        .await
        .unwrap()
        .handle;
    assert_eq!(
        code(raw.write(again.clone(), 6, b"x".to_vec()).await),
        FX_FAILURE,
        "a new handle starts at 0"
    );
    raw.close(h).await.unwrap();
    raw.close(again).await.unwrap();
    assert_eq!(server.read_file("/f").unwrap(), b"abcdef");
}

/// Short reads: at most half of what was asked for, rounded up.
#[tokio::test]
async fn short_reads() {
    let server = MemoryServer::with_personality(Personality {
        short_reads: true,
        ..Personality::openssh()
    });
    server.put_file("/f", b"0123456789").unwrap();
    let raw = session(&server).await;
    let h = raw
        .open("/f", OpenFlags::READ, no_attrs())
        .await
        .unwrap()
        .handle;
    assert_eq!(raw.read(h.clone(), 0, 10).await.unwrap().data, b"01234");
    assert_eq!(raw.read(h.clone(), 8, 3).await.unwrap().data, b"89");
}

/// A quota fills up: a write that cannot allocate fails (FAILURE), one that could in part
/// writes that part (and still fails, as OpenSSH answers a short write); statvfs shows it.
#[tokio::test]
async fn a_full_disk_fails_writes() {
    let server = MemoryServer::with_personality(Personality {
        quota: Some(3 * 4096),
        ..Personality::openssh()
    });
    let raw = session(&server).await;
    let h = raw
        .open("/f", create_flags(), no_attrs())
        .await
        .unwrap()
        .handle;
    raw.write(h.clone(), 0, vec![1; 8192]).await.unwrap();
    assert_eq!(raw.statvfs("/").await.unwrap().blocks_free, 1);
    assert_eq!(
        code(raw.write(h.clone(), 8192, vec![2; 8192]).await),
        FX_FAILURE
    );
    assert_eq!(
        raw.fstat(h.clone()).await.unwrap().attrs.size,
        Some(12_288),
        "a short write"
    );
    assert_eq!(
        code(raw.write(h.clone(), 1 << 20, vec![3; 10]).await),
        FX_FAILURE
    );
    raw.write(h.clone(), 0, vec![4; 100]).await.unwrap();
    // Freed blocks can be written again.
    raw.fsetstat(
        h.clone(),
        russh_sftp::protocol::FileAttributes {
            size: Some(0),
            ..russh_sftp::protocol::FileAttributes::empty()
        },
    )
    .await
    .unwrap();
    raw.write(h.clone(), 0, vec![5; 12_288]).await.unwrap();
    raw.close(h).await.unwrap();
}

/// The personality can change while sessions are open: the next request follows it.
#[tokio::test]
async fn the_personality_changes_for_the_next_request() {
    let server = MemoryServer::new();
    let raw = session(&server).await;
    let h = raw
        .open("/f", create_flags(), no_attrs())
        .await
        .unwrap()
        .handle;
    raw.write(h.clone(), 0, vec![1; 4096]).await.unwrap();
    server.set_personality(|p| p.quota = Some(4096));
    assert_eq!(server.personality().quota, Some(4096));
    assert_eq!(
        code(raw.write(h.clone(), 4096, vec![1; 10]).await),
        FX_FAILURE
    );
    server.set_personality(|p| p.quota = None);
    raw.write(h, 4096, vec![1; 10]).await.unwrap();
}

/// With newer drafts' codes, errors are precise: FILE_ALREADY_EXISTS, DIR_NOT_EMPTY,
/// NO_SPACE_ON_FILESYSTEM... Checked on the raw bytes: russh-sftp cannot decode them (below).
#[tokio::test]
async fn status_codes_above_8_map_the_errnos() {
    let p = Personality {
        status_codes_above_8: true,
        ..Personality::openssh()
    };
    assert_eq!(p.status_for(libc::EEXIST), FX_FILE_ALREADY_EXISTS);
    assert_eq!(p.status_for(libc::ENOTEMPTY), FX_DIR_NOT_EMPTY);
    assert_eq!(p.status_for(libc::ENOSPC), FX_NO_SPACE_ON_FILESYSTEM);
    assert_eq!(p.status_for(libc::ENOTDIR), FX_NOT_A_DIRECTORY);
    assert_eq!(p.status_for(libc::EISDIR), FX_FILE_IS_A_DIRECTORY);
    assert_eq!(p.status_for(libc::ELOOP), FX_LINK_LOOP);
    assert_eq!(p.status_for(libc::ENOENT), FX_NO_SUCH_FILE);
    assert_eq!(p.status_for(libc::EACCES), FX_PERMISSION_DENIED);
    assert_eq!(p.bad_handle(FX_FAILURE), FX_INVALID_HANDLE);
    let openssh = Personality::openssh();
    assert_eq!(openssh.status_for(libc::EEXIST), FX_FAILURE);
    assert_eq!(openssh.status_for(libc::ENOSYS), FX_OP_UNSUPPORTED);
    assert_eq!(openssh.status_for(libc::EINVAL), FX_BAD_MESSAGE);
}

/// The vendored russh-sftp keeps a status code above 8 (`StatusCode::Other`, vendor/README.md):
/// the request fails with that status and the session goes on. (Before the patch, decoding the
/// STATUS failed and ended the session, and our engine reconnected and resent forever.)
#[tokio::test]
async fn a_status_above_8_fails_the_request_and_the_session_goes_on() {
    let server = MemoryServer::with_personality(Personality {
        status_codes_above_8: true,
        ..Personality::openssh()
    });
    server.mkdir("/d").unwrap();
    let raw = session(&server).await;
    let exists = raw.mkdir("/d", no_attrs()).await;
    match exists {
        Err(RawError::Status(s)) => assert_eq!(u32::from(s.status_code), FX_FILE_ALREADY_EXISTS),
        other => panic!("MKDIR of an existing name: {other:?}"),
    }
    let after = raw.lstat("/d").await;
    assert!(after.is_ok(), "the same session answers: {after:?}");
    assert_eq!(server.live_sessions(), 1);
}
