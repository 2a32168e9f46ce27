//! Who closes a server handle, and when: every path that ends a handle's life, against the
//! in-memory SFTP server of `remote::fake_server` (no network, no mount). Each test checks that
//! the server saw exactly one CLOSE per OPEN and no request on a handle it did not hold.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;

use sshfs_cache::CacheConfig;

use super::{SshFs, detached};
use crate::remote::fake_server::FakeServer;

const ROOT: u64 = 1;

async fn mount(server: &FakeServer) -> Arc<SshFs> {
    let sftp = server.connect().await;
    Arc::new(SshFs::new(sftp, "/r".into(), CacheConfig::default()))
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Every OPEN closed once, nothing sent on a handle the server did not hold.
fn assert_clean(server: &FakeServer, fs: &SshFs) {
    assert!(
        server.bad_handle_requests().is_empty(),
        "requests on handles not open: {:?}",
        server.seen()
    );
    assert_eq!(
        server.count("close"),
        server.count("open"),
        "{:?}",
        server.seen()
    );
    assert_eq!(server.open_handles(), 0);
    assert_eq!(fs.sftp().handles().misuse(), 0);
}

async fn open(fs: &Arc<SshFs>, name: &str, flags: i32) -> u64 {
    let attr = fs.lookup(ROOT, OsStr::new(name)).await.unwrap();
    fs.open(attr.ino, flags as u32).await.unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_release_closes_once() {
    let server = FakeServer::new(1);
    server.put("/r/a", b"hello".to_vec());
    let fs = mount(&server).await;
    let fh = open(&fs, "a", libc::O_RDONLY).await;
    let (one, two) = tokio::join!(fs.release(fh), fs.release(fh));
    one.unwrap();
    two.unwrap();
    settle().await;
    assert_eq!(server.count("close"), 1);
    assert_clean(&server, &fs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_during_read_ahead_sends_nothing_after_the_close() {
    let server = FakeServer::new(1);
    server.put("/r/big", (0..4_000_000u32).map(|i| i as u8).collect());
    let fs = mount(&server).await;
    let fh = open(&fs, "big", libc::O_RDONLY).await;
    let first = fs.read(fh, 0, 32 * 1024).await.unwrap();
    assert_eq!(first.len(), 32 * 1024);
    settle().await;
    // The next window's READs stay unanswered (and answer short, so each would ask again).
    server.hold_reads(true);
    server.short_reads(true);
    let second = tokio::time::timeout(Duration::from_secs(5), fs.read(fh, 32 * 1024, 32 * 1024))
        .await
        .expect("a read from what was fetched ahead")
        .unwrap();
    assert_eq!(second[0], (32 * 1024u32) as u8);
    tokio::time::timeout(Duration::from_secs(5), fs.release(fh))
        .await
        .expect("release waits for nothing it cancelled")
        .unwrap();
    server.hold_reads(false);
    settle().await;
    let seen = server.seen();
    let close_at = seen.iter().position(|s| s.op == "close").unwrap();
    assert!(
        seen[close_at + 1..].iter().all(|s| s.handle.is_none()),
        "requests after the CLOSE: {:?}",
        &seen[close_at..]
    );
    assert_clean(&server, &fs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_ahead_taken_while_it_is_forgotten_is_closed_once() {
    for take_first in [true, false] {
        let server = FakeServer::new(1);
        server.put("/r/a", b"data".to_vec());
        let fs = mount(&server).await;
        server.hold_reads(true);
        fs.ahead.open().open_one(&fs, "a".into());
        settle().await;
        let taking = tokio::spawn({
            let fs = Arc::clone(&fs);
            async move { fs.ahead.open().take("a").await }
        });
        if take_first {
            settle().await;
        }
        // A change through the mount forgets what was opened ahead, racing the open taking it.
        fs.ahead.open().forget_all();
        server.hold_reads(false);
        let taken = taking.await.unwrap();
        if let Some(opened) = taken {
            assert_eq!(opened.data, b"data");
            fs.sftp().close(&opened.handle).await.unwrap();
        }
        settle().await;
        assert_clean(&server, &fs);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_ahead_nobody_takes_is_closed_when_it_expires() {
    let server = FakeServer::new(1);
    server.put("/r/a", b"data".to_vec());
    let fs = mount(&server).await;
    fs.ahead.open().open_one(&fs, "a".into());
    settle().await;
    assert_eq!(server.open_handles(), 1);
    tokio::time::sleep(super::ahead::open_ahead::MAX_AGE + Duration::from_millis(200)).await;
    assert!(fs.ahead.open().take("a").await.is_none());
    assert_clean(&server, &fs);
}

/// A create whose caller is gone (an INTERRUPT) before the answer: its handle is closed once
/// and its inode reference given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_undone_closes_its_handle_once() {
    let server = FakeServer::new(1);
    let fs = mount(&server).await;
    let create = detached::run(
        &fs,
        |fs| async move {
            let flags = (libc::O_WRONLY | libc::O_CREAT) as u32;
            fs.create(ROOT, OsStr::new("new"), 0o644, flags).await
        },
        |fs, (attr, fh): (fuse3::raw::reply::FileAttr, u64)| async move {
            fs.forget(attr.ino, 1);
            fs.release_quietly(fh).await;
        },
    );
    // Polled once, then dropped: the caller was interrupted before the server answered.
    server.hold_opens(true);
    let mut create = Box::pin(create);
    let first = futures_util::poll!(&mut create);
    assert!(first.is_pending(), "{first:?}");
    drop(create);
    settle().await;
    server.hold_opens(false);
    settle().await;
    assert_eq!(server.count("open"), 1);
    assert!(server.get("/r/new").is_some());
    assert_clean(&server, &fs);
}
