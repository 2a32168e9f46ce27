//! Whatever status a server answers, and even an answer that does not decode, fails that one
//! request with a fitting errno and leaves the session usable: against the in-memory SFTP
//! server of `remote::fake_server` (no network, no mount).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsStr;
use std::sync::Arc;

use sshfs_cache::CacheConfig;

use super::SshFs;
use crate::remote::fake_server::{FakeServer, Fault};

const ROOT: u64 = 1;

async fn mount(server: &FakeServer) -> Arc<SshFs> {
    let sftp = server.connect().await;
    Arc::new(SshFs::new(sftp, "/r".into(), CacheConfig::default()))
}

async fn open(fs: &Arc<SshFs>, name: &str, flags: i32) -> u64 {
    let attr = fs.lookup(ROOT, OsStr::new(name)).await.unwrap();
    fs.open(attr.ino, flags as u32).await.unwrap().0
}

/// The session still answers: a file read back whole.
async fn assert_usable(server: &FakeServer, fs: &Arc<SshFs>) {
    server.put("/r/other", b"still here".to_vec());
    let fh = open(fs, "other", libc::O_RDONLY).await;
    assert_eq!(fs.read(fh, 0, 100).await.unwrap(), b"still here");
    fs.release(fh).await.unwrap();
    assert_eq!(server.sessions(), 1, "the session was replaced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_reported_as_status_14_is_enospc_and_the_session_goes_on() {
    let server = FakeServer::new(1);
    server.put("/r/a", Vec::new());
    let fs = mount(&server).await;
    let fh = open(&fs, "a", libc::O_WRONLY).await;
    server.answer_with("write", Some(Fault::Status(14)));
    // A write may be acknowledged before its answer arrives (write-behind): the error shows at
    // the latest at the flush.
    let written = fs.write(fh, 0, b"data").await;
    let flushed = fs.flush(fh).await;
    let err = written
        .err()
        .or(flushed.err())
        .expect("the full disk was reported");
    assert_eq!(err.errno, libc::ENOSPC, "{}", err.message);
    assert_eq!(err.sftp_status, Some(14));
    server.answer_with("write", None);
    let _ = fs.release(fh).await;
    assert_usable(&server, &fs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_of_later_drafts_and_unknown_codes_fail_only_their_request() {
    let server = FakeServer::new(1);
    server.put("/r/a", b"abc".to_vec());
    let fs = mount(&server).await;
    for (code, errno) in [(9, libc::EBADF), (15, libc::EDQUOT), (4242, libc::EIO)] {
        server.answer_with("open", Some(Fault::Status(code)));
        let attr = fs.lookup(ROOT, OsStr::new("a")).await.unwrap();
        let err = fs.open(attr.ino, libc::O_RDONLY as u32).await.unwrap_err();
        assert_eq!(err.errno, errno, "status {code}: {}", err.message);
        server.answer_with("open", None);
        assert_usable(&server, &fs).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_does_not_decode_fails_its_request_not_the_session() {
    let server = FakeServer::new(1);
    server.put("/r/a", b"abc".to_vec());
    let fs = mount(&server).await;
    let attr = fs.lookup(ROOT, OsStr::new("a")).await.unwrap();
    server.answer_with("open", Some(Fault::Malformed));
    let err = fs.open(attr.ino, libc::O_RDONLY as u32).await.unwrap_err();
    assert_eq!(err.errno, libc::EIO, "{}", err.message);
    assert!(err.message.contains("malformed"), "{}", err.message);
    server.answer_with("open", None);
    assert_usable(&server, &fs).await;
}
