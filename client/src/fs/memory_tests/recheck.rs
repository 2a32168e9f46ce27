//! The background re-check (`fs::ahead::recheck`) notices what another client changed in a directory
//! a program uses, and tells the kernel: a name made, a file rewritten, a name removed.

use std::time::{Duration, Instant};

use super::{ROOT, mount, name};
use crate::fs::invalidate::{Invalidation, Invalidations};

/// Waits (at most 10 s) for `want` among the invalidations; the others are dropped.
async fn wait_for(inv: &mut Invalidations, want: &Invalidation) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, inv.recv()).await {
            Ok(Some(got)) if got == *want => return,
            Ok(Some(_)) => {}
            _ => panic!("no {want:?} within 10 s"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recheck_notices_changes_made_behind_the_mount() {
    let m = mount().await;
    let fs = &m.fs;
    // A stopped clock, moved on before each change: the directory's mtime (whole seconds)
    // moves with every change, as it would between changes a second apart.
    m.server.set_time(1_700_000_000);
    let mut inv = fs.take_invalidations().unwrap();
    m.server.mkdir(&m.path("w")).unwrap();
    m.server.put_file(&m.path("w/old"), b"old").unwrap();
    let w = fs.lookup(ROOT, name("w")).await.unwrap().ino;
    let old = fs.lookup(w, name("old")).await.unwrap().ino;
    fs.start_recheck(Duration::from_millis(200));
    let listed = |fs: &std::sync::Arc<crate::fs::SshFs>| {
        let fs = fs.clone();
        async move {
            let dh = fs.opendir(w).await.unwrap();
            let mut names = Vec::new();
            loop {
                let page = fs.readdir(dh, names.len() as u64).await.unwrap();
                if page.is_empty() {
                    break;
                }
                names.extend(page.into_iter().map(|i| i.name));
            }
            fs.releasedir(dh).await.unwrap();
            names
        }
    };
    assert_eq!(listed(fs).await, [".", "..", "old"]);

    m.server.advance_time(5);
    m.server.put_file(&m.path("w/new"), b"new").unwrap();
    m.server.put_file(&m.path("w/old"), b"rewritten").unwrap();
    wait_for(
        &mut inv,
        &Invalidation::Entry {
            parent: w,
            name: "new".into(),
        },
    )
    .await;
    wait_for(&mut inv, &Invalidation::Contents(old)).await;
    let opendirs = m.server.requests("opendir");
    assert_eq!(listed(fs).await, [".", "..", "new", "old"]);
    assert_eq!(
        m.server.requests("opendir"),
        opendirs,
        "from the cache the re-check refreshed"
    );
    assert_eq!(fs.lookup(w, name("old")).await.unwrap().size, 9);

    m.server.advance_time(5);
    m.server.remove(&m.path("w/new")).unwrap();
    wait_for(
        &mut inv,
        &Invalidation::Entry {
            parent: w,
            name: "new".into(),
        },
    )
    .await;
    assert_eq!(listed(fs).await, [".", "..", "old"]);
    assert_eq!(
        fs.lookup(w, name("new")).await.unwrap_err().errno,
        libc::ENOENT
    );
    m.assert_clean().await;
}
