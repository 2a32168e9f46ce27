//! The connection dies at every request of a scenario in turn (before the server carries the
//! request out, and after it did but before its answer), against the in-memory SFTP server of
//! `remote::fake_server`, which closes the session's handles as OpenSSH does: the program must
//! see every operation succeed and the server end as a local filesystem would, with no request
//! on a handle the server does not hold. No network, no mount.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::sync::Arc;

use sshfs_cache::CacheConfig;

use super::{FsResult, SshFs};
use crate::remote::fake_server::FakeServer;

const ROOT: u64 = 1;

/// create, two writes, fsync, close; open, read back, close; rename; create and unlink another.
async fn scenario(fs: &Arc<SshFs>) -> FsResult<()> {
    let (one, two) = (vec![1u8; 100_000], vec![2u8; 50_000]);
    let excl = (libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL) as u32;
    let (_, fh) = fs.create(ROOT, OsStr::new("a"), 0o644, excl).await?;
    fs.write(fh, 0, &one).await?;
    fs.write(fh, 100_000, &two).await?;
    fs.fsync(fh).await?;
    fs.flush(fh).await?;
    fs.release(fh).await?;

    let attr = fs.lookup(ROOT, OsStr::new("a")).await?;
    let (fh, _) = fs.open(attr.ino, libc::O_RDONLY as u32).await?;
    let back = fs.read(fh, 0, 150_000).await?;
    assert!(
        back[..100_000] == one[..] && back[100_000..] == two[..],
        "read back"
    );
    fs.release(fh).await?;

    fs.rename(ROOT, OsStr::new("a"), ROOT, OsStr::new("b"), 0)
        .await?;
    let (_, fh) = fs.create(ROOT, OsStr::new("c"), 0o644, excl).await?;
    fs.release(fh).await?;
    fs.unlink(ROOT, OsStr::new("c")).await?;
    Ok(())
}

fn expected() -> BTreeMap<String, Vec<u8>> {
    let mut data = vec![1u8; 100_000];
    data.extend_from_slice(&[2u8; 50_000]);
    BTreeMap::from([("/r/b".to_owned(), data)])
}

async fn run(die: Option<(u64, bool)>) -> (FakeServer, Arc<SshFs>, FsResult<()>) {
    let server = FakeServer::new(1);
    let sftp = server.connect_reconnecting().await;
    let fs = Arc::new(SshFs::new(sftp, "/r".into(), CacheConfig::default()));
    if let Some((n, done)) = die {
        server.die_at(n, done);
    }
    let result = scenario(&fs).await;
    (server, fs, result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_dies_at_every_request_in_turn() {
    let (server, _, result) = run(None).await;
    result.unwrap();
    assert_eq!(server.files(), expected());
    let requests = server.requests();
    assert!(requests > 10, "the scenario sent only {requests} requests");
    for n in 1..=requests {
        for done in [false, true] {
            let (server, fs, result) = run(Some((n, done))).await;
            let when = if done { "after" } else { "before" };
            if let Err(e) = result {
                panic!(
                    "link died {when} request {n}: {} (errno {})",
                    e.message, e.errno
                );
            }
            // Closes of abandoned handles may still be on their way.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            assert_eq!(
                server.files(),
                expected(),
                "link died {when} request {n}: {:?}",
                server.seen()
            );
            assert!(
                server.bad_handle_requests().is_empty(),
                "link died {when} request {n}: requests on handles not open: {:?}",
                server.seen()
            );
            assert_eq!(fs.sftp().handles().misuse(), 0);
            assert!(
                fs.sftp().link_summary().contains("reconnects=1"),
                "link died {when} request {n}: {}",
                fs.sftp().link_summary()
            );
        }
    }
}

/// Issue 18 (fsx with the link cut every 3 s): a write that extends a file is queued, the link
/// dies before the server has all its packets, and `fstat` asks for the size right after the
/// reconnect. The lost packets are sent again only once the file is reopened on the new
/// session (one round trip); the LSTAT behind `fstat` must not overtake them, or the program
/// is shown the size of an earlier moment (the truncate's, or part of the way through the
/// write). The reopen is held here until the LSTAT had every chance to go first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_after_reconnect_follows_the_last_extending_write() {
    const LEN: usize = 100_000; // four WRITE packets of the fake server's 32 KiB
    for piece in 1..=4 {
        for done in [false, true] {
            let server = FakeServer::new(1);
            let sftp = server.connect_reconnecting().await;
            let fs = Arc::new(SshFs::new(sftp, "/r".into(), CacheConfig::default()));
            let rw = (libc::O_RDWR | libc::O_CREAT) as u32;
            let (attr, fh) = fs.create(ROOT, OsStr::new("f"), 0o644, rw).await.unwrap();
            let opens = server.count("open");
            server.hold_opens(true);
            server.die_at(piece, done);
            fs.write(fh, 0, &[5; LEN]).await.unwrap();
            let size = tokio::spawn({
                let fs = Arc::clone(&fs);
                async move { fs.getattr(attr.ino, None).await.map(|a| a.size) }
            });
            // The file is being reopened on the new session; its answer is held.
            let reopening = async {
                while server.count("open") == opens {
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
            };
            tokio::time::timeout(std::time::Duration::from_secs(5), reopening)
                .await
                .expect("the file is reopened after the reconnect");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            server.hold_opens(false);
            let when = if done { "after" } else { "before" };
            let size = size.await.unwrap().unwrap();
            assert_eq!(
                size,
                LEN as u64,
                "link died {when} WRITE packet {piece}: {:?}",
                server.seen()
            );
            fs.release(fh).await.unwrap();
            assert_eq!(server.get("/r/f").unwrap().len(), LEN);
        }
    }
}
