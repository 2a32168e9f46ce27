//! Handles: numbered and reused as OpenSSH numbers them, per session, closed with the session,
//! and requests on handles a session does not hold answered and counted.

use std::time::Duration;

use russh_sftp::protocol::OpenFlags;

use super::{code, create_flags, no_attrs, session};
use crate::remote::testing::ServeSftp;
use crate::remote::testing::memory::personality::*;
use crate::remote::testing::memory::{MemoryServer, Personality};

/// Waits until `cond` holds (the server notices a closed stream on its own task).
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}

/// Handles are 4-byte big-endian slot numbers from 0; the slot closed last is given out next.
#[tokio::test]
async fn handles_are_numbered_and_reused_as_openssh_does() {
    let server = MemoryServer::new();
    server.mkdir("/d").unwrap();
    let raw = session(&server).await;
    let mut handles = Vec::new();
    for i in 0..3 {
        let h = raw
            .open(format!("/f{i}"), create_flags(), no_attrs())
            .await
            .unwrap();
        handles.push(h.handle);
    }
    let numbers: Vec<&[u8]> = handles.iter().map(|h| h.as_bytes()).collect();
    assert_eq!(numbers, [[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 2]]);
    raw.close(handles[0].clone()).await.unwrap();
    raw.close(handles[2].clone()).await.unwrap();
    let d = raw.opendir("/d").await.unwrap().handle;
    assert_eq!(d.as_bytes(), [0, 0, 0, 2], "the last one closed");
    let f = raw
        .open("/f0", OpenFlags::READ, no_attrs())
        .await
        .unwrap()
        .handle;
    assert_eq!(f.as_bytes(), [0, 0, 0, 0]);
    assert_eq!(server.open_handles(), 3);
    assert!(server.bad_handle_requests().is_empty());
}

/// A request naming a handle the session does not hold: FAILURE (CLOSE and fsync:
/// NO_SUCH_FILE), and it is recorded.
#[tokio::test]
async fn requests_on_handles_not_held_fail_and_are_counted() {
    let server = MemoryServer::new();
    let raw = session(&server).await;
    let h = raw
        .open("/f", create_flags(), no_attrs())
        .await
        .unwrap()
        .handle;
    raw.close(h.clone()).await.unwrap();
    assert_eq!(code(raw.close(h.clone()).await), FX_NO_SUCH_FILE);
    assert_eq!(code(raw.read(h.clone(), 0, 1).await), FX_FAILURE);
    assert_eq!(
        code(raw.write(h.clone(), 0, b"x".to_vec()).await),
        FX_FAILURE
    );
    assert_eq!(code(raw.fstat(h.clone()).await), FX_FAILURE);
    assert_eq!(code(raw.readdir(h.clone()).await), FX_FAILURE);
    assert_eq!(code(raw.fsync(h.clone()).await), FX_NO_SUCH_FILE);
    let ops: Vec<&str> = server.bad_handle_requests().iter().map(|b| b.op).collect();
    assert_eq!(
        ops,
        [
            "close",
            "read",
            "write",
            "fstat",
            "readdir",
            "fsync@openssh.com"
        ]
    );
    assert_eq!(server.bad_handle_requests()[0].handle, [0, 0, 0, 0]);
}

/// A directory handle is not a file handle (READ, WRITE, FSTAT: FAILURE) and a file handle
/// is not a directory's (READDIR: FAILURE); neither counts as a handle not held.
#[tokio::test]
async fn a_handle_of_the_other_kind_fails_without_counting() {
    let server = MemoryServer::new();
    server.mkdir("/d").unwrap();
    let raw = session(&server).await;
    let d = raw.opendir("/d").await.unwrap().handle;
    let f = raw
        .open("/f", create_flags(), no_attrs())
        .await
        .unwrap()
        .handle;
    assert_eq!(code(raw.read(d.clone(), 0, 1).await), FX_FAILURE);
    assert_eq!(code(raw.fstat(d.clone()).await), FX_FAILURE);
    assert_eq!(code(raw.readdir(f.clone()).await), FX_FAILURE);
    assert!(server.bad_handle_requests().is_empty());
}

/// Each session has its own table; a session that ends closes its handles, and a file
/// removed while open is freed with its last handle.
#[tokio::test]
async fn each_session_has_its_own_handles_closed_when_it_ends() {
    let server = MemoryServer::new();
    let one = session(&server).await;
    let two = RawSftpSessionOn::new(&server, 1, 1).await;
    let a = one
        .open("/a", create_flags(), no_attrs())
        .await
        .unwrap()
        .handle;
    let b = two
        .0
        .open("/b", create_flags(), no_attrs())
        .await
        .unwrap()
        .handle;
    assert_eq!(
        (a.as_bytes(), b.as_bytes()),
        ([0u8, 0, 0, 0].as_slice(), [0u8, 0, 0, 0].as_slice())
    );
    assert_eq!(server.session_channels(), [(1, 0), (1, 1)]);
    one.write(a.clone(), 0, vec![1; 10_000]).await.unwrap();
    one.remove("/a").await.unwrap();
    assert_eq!(server.allocated_bytes(), 3 * 4096, "still held open");
    assert_eq!(one.read(a.clone(), 9_999, 10).await.unwrap().data, [1]);
    let inodes = server.inodes();
    drop(one);
    eventually("the first session ended", || server.live_sessions() == 1).await;
    assert_eq!(server.open_handles(), 1);
    assert_eq!(server.allocated_bytes(), 0);
    assert_eq!(server.inodes(), inodes - 1);
    // Handle 0 of session 2 is its own /b (empty): the same string reaches another file.
    assert_eq!(code(two.0.read(a, 0, 1).await), FX_EOF);
    assert_eq!(code(two.0.read(vec_handle(1), 0, 1).await), FX_FAILURE);
    assert_eq!(server.bad_handle_requests().len(), 1);
}

/// One more handle than the server's open-file limit fails (EMFILE: FAILURE), and creates
/// nothing.
#[tokio::test]
async fn the_open_file_limit_is_enforced() {
    let mut p = Personality::openssh();
    p.max_open_handles = 2;
    let server = MemoryServer::with_personality(p);
    let raw = session(&server).await;
    raw.open("/a", create_flags(), no_attrs()).await.unwrap();
    raw.open("/b", create_flags(), no_attrs()).await.unwrap();
    assert_eq!(
        code(raw.open("/c", create_flags(), no_attrs()).await),
        FX_FAILURE
    );
    assert!(!server.snapshot().contains_key("/c"));
    assert_eq!(raw.limits().await.unwrap().max_open_handles, 2);
}

/// A session of another channel.
struct RawSftpSessionOn(russh_sftp::client::RawSftpSession);

impl RawSftpSessionOn {
    async fn new(server: &MemoryServer, connection: u64, channel: usize) -> Self {
        let raw = russh_sftp::client::RawSftpSession::new(server.open_session(connection, channel));
        raw.init().await.unwrap();
        Self(raw)
    }
}

fn vec_handle(n: u8) -> String {
    String::from_utf8(vec![0, 0, 0, n]).unwrap()
}
