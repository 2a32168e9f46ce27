//! The round trips docs/SEMANTICS.md promises, counted: its table "Round trips" (each row an
//! operation, how many round trips the program waits for, and the requests sent) is read and
//! every row is measured here. Each operation runs over the in-memory server with every answer
//! held back [`RTT`] of virtual time (answers keep their order, and requests queued together
//! are answered together), so the time an operation takes, over [`RTT`], is its round trips;
//! the requests the server received meanwhile are compared with the row's. An operation that
//! gains a round trip fails here: change the code or the table, knowingly.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fuse3::{SetAttr, Timestamp};
use sshfs_cache::CacheConfig;
use tokio::time::Instant;

use super::{DIR, ROOT, flags, name};
use crate::fs::SshFs;
use crate::fs::symlinks::LinkOptions;
use crate::remote::sftp::server::{ServerOverrides, ServerProfile};
use crate::remote::testing::faults::{Delay, Faulty};
use crate::remote::testing::memory::{MemoryServer, Personality};
use crate::remote::testing::{StreamConnector, quick_reconnect};

/// docs/SEMANTICS.md, which holds the table.
const SEMANTICS: &str = include_str!("../../../../docs/SEMANTICS.md");
/// The table's header line.
const HEADER: &str = "| operation | round trips | requests |";

/// One round trip: how long every answer is held back.
const RTT: Duration = Duration::from_millis(100);

/// A mount of [`DIR`] over an OpenSSH-like memory server whose answers take [`RTT`].
struct Timed {
    server: MemoryServer,
    fs: Arc<SshFs>,
}

/// What an operation cost.
#[derive(Debug, PartialEq, Eq)]
struct Cost {
    /// Round trips: the operation's time over [`RTT`].
    round_trips: u32,
    /// The requests the server received, by kind (as the memory server names them).
    requests: BTreeMap<String, u64>,
}

/// A mount with these link options, holding a file `f` (10 bytes) and a symlink `l` to it.
async fn mount(links: LinkOptions) -> Timed {
    let personality = Personality::openssh();
    let banner = personality.banner.clone();
    let server = MemoryServer::with_personality(personality);
    server.mkdir(DIR).unwrap();
    server.put_file(&format!("{DIR}/f"), b"0123456789").unwrap();
    server.symlink(&format!("{DIR}/l"), "f").unwrap();
    let faulty = Faulty::new(Arc::new(server.clone()));
    faulty.plan().delay_replies(Delay::Fixed(RTT));
    let sftp = StreamConnector::new(faulty)
        .connect_sftp(quick_reconnect())
        .await;
    let profile = ServerProfile::decide(
        banner.as_deref(),
        sftp.extensions(),
        ServerOverrides::default(),
    );
    sftp.set_server(profile);
    let fs = SshFs::new(sftp, DIR.into(), CacheConfig::default()).with_link_options(links);
    Timed {
        server,
        fs: Arc::new(fs),
    }
}

impl Timed {
    /// Runs `op` once what earlier steps left in the background is done, and measures it.
    async fn measure<T>(&self, op: impl Future<Output = T>) -> (T, Cost) {
        tokio::time::sleep(RTT * 10).await;
        let before = self.server.request_counts();
        let start = Instant::now();
        let out = op.await;
        let elapsed = start.elapsed().as_micros();
        let requests = self
            .server
            .request_counts()
            .into_iter()
            .filter_map(|(k, n)| {
                let new = n - before.get(&k).copied().unwrap_or(0);
                (new > 0).then_some((k, new))
            })
            .collect();
        let rtt = RTT.as_micros();
        let round_trips = u32::try_from((elapsed + rtt / 2) / rtt).unwrap();
        (
            out,
            Cost {
                round_trips,
                requests,
            },
        )
    }

    /// The inode of `rel` (looked up before the measurement).
    async fn ino(&self, rel: &str) -> u64 {
        self.fs.lookup(ROOT, name(rel)).await.unwrap().ino
    }
}

fn at(sec: i64) -> Option<Timestamp> {
    Some(Timestamp::new(sec, 0))
}

/// Measures the operation a row of the table names (its first cell), or `None` for a row
/// this test does not know.
async fn measure(operation: &str) -> Option<Cost> {
    let t = mount(LinkOptions::default()).await;
    let fs = &t.fs;
    let wr = flags(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL);
    let chmod = SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    };
    let cost = match operation {
        "lookup of a name not cached" => t.measure(fs.lookup(ROOT, name("f"))).await.1,
        "getattr, cached" => {
            let f = t.ino("f").await;
            t.measure(fs.getattr(f, None)).await.1
        }
        "chmod, chown, truncate, utimens" => {
            let f = t.ino("f").await;
            t.measure(fs.setattr(f, None, &chmod)).await.1
        }
        "the same through an open file (`ftruncate`)" => {
            let f = t.ino("f").await;
            let (fh, _) = fs.open(f, flags(libc::O_RDWR)).await.unwrap();
            let truncate = SetAttr {
                size: Some(3),
                ..SetAttr::default()
            };
            t.measure(fs.setattr(f, Some(fh), &truncate)).await.1
        }
        "utimens of one time, chown of uid or gid alone" => {
            let f = t.ino("f").await;
            let touch_m = SetAttr {
                mtime: at(5),
                ..SetAttr::default()
            };
            t.measure(fs.setattr(f, None, &touch_m)).await.1
        }
        "lchown, lutimes (a symlink itself)" => {
            let l = t.ino("l").await;
            let lchown = SetAttr {
                uid: Some(1),
                gid: Some(2),
                ..SetAttr::default()
            };
            t.measure(fs.setattr(l, None, &lchown)).await.1
        }
        "chmod, chown, truncate, utimens with `follow_symlinks`" => {
            let t = mount(LinkOptions {
                follow: true,
                ..LinkOptions::default()
            })
            .await;
            let f = t.ino("f").await;
            t.measure(t.fs.setattr(f, None, &chmod)).await.1
        }
        "open" => {
            let f = t.ino("f").await;
            t.measure(fs.open(f, flags(libc::O_RDWR))).await.1
        }
        "create" => t.measure(fs.create(ROOT, name("n"), 0o644, wr)).await.1,
        "write" => {
            let (_, fh) = fs.create(ROOT, name("n"), 0o644, wr).await.unwrap();
            t.measure(fs.write(fh, 0, b"data")).await.1
        }
        "flush, with the writes acknowledged" => {
            let (_, fh) = fs.create(ROOT, name("n"), 0o644, wr).await.unwrap();
            fs.write(fh, 0, b"data").await.unwrap();
            tokio::time::sleep(RTT * 2).await;
            t.measure(fs.flush(fh)).await.1
        }
        "fsync" => {
            let f = t.ino("f").await;
            let (fh, _) = fs.open(f, flags(libc::O_RDWR)).await.unwrap();
            t.measure(fs.fsync(fh)).await.1
        }
        "release" => {
            let f = t.ino("f").await;
            let (fh, _) = fs.open(f, flags(libc::O_RDONLY)).await.unwrap();
            t.measure(fs.release(fh)).await.1
        }
        "mkdir" => t.measure(fs.mkdir(ROOT, name("d"), 0o755)).await.1,
        "rmdir" => {
            fs.mkdir(ROOT, name("d"), 0o755).await.unwrap();
            t.measure(fs.rmdir(ROOT, name("d"))).await.1
        }
        "unlink" => {
            t.ino("f").await;
            t.measure(fs.unlink(ROOT, name("f"))).await.1
        }
        "rename" => {
            t.ino("f").await;
            t.measure(fs.rename(ROOT, name("f"), ROOT, name("g"), 0))
                .await
                .1
        }
        "symlink" => t.measure(fs.symlink(ROOT, name("s"), name("f"))).await.1,
        "link" => {
            let f = t.ino("f").await;
            t.measure(fs.link(f, ROOT, name("h"))).await.1
        }
        "statfs" => t.measure(fs.statfs()).await.1,
        _ => return None,
    };
    Some(cost)
}

/// The requests a row's third cell names: `A + B, then C` is A, B and C, counted; names in
/// capitals are the packet kinds, names in backticks the extensions. What follows a `;` is
/// sent in the background and may or may not be seen: it is returned apart.
fn requests_of(cell: &str) -> (BTreeMap<String, u64>, Vec<String>) {
    let (now, background) = cell.split_once(';').unwrap_or((cell, ""));
    let kinds = |text: &str| -> Vec<String> {
        text.split([',', '+', ' '])
            .map(|w| w.trim().trim_matches('`'))
            .filter(|w| {
                !w.is_empty() && (w.contains('@') || w.chars().all(|c| c.is_ascii_uppercase()))
            })
            .map(|w| w.to_lowercase())
            .collect()
    };
    let mut counts = BTreeMap::new();
    for kind in kinds(now) {
        *counts.entry(kind).or_insert(0) += 1;
    }
    (counts, kinds(background))
}

#[tokio::test(start_paused = true)]
async fn semantics_md_round_trips_are_what_operations_cost() {
    let rows: Vec<Vec<String>> = SEMANTICS
        .lines()
        .skip_while(|l| l.trim() != HEADER)
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect();
    assert!(rows.len() > 10, "docs/SEMANTICS.md: no table {HEADER}");
    let mut wrong = Vec::new();
    for row in &rows {
        let [operation, trips, requests] = &row[..] else {
            wrong.push(format!("{row:?}: not three cells"));
            continue;
        };
        let Some(cost) = measure(operation).await else {
            wrong.push(format!("{operation}: a row this test does not measure"));
            continue;
        };
        let trips: u32 = trips.parse().unwrap_or(u32::MAX);
        let (expected, background) = requests_of(requests);
        let mut seen = cost.requests.clone();
        seen.retain(|k, _| !background.contains(k));
        if cost.round_trips != trips || seen != expected {
            wrong.push(format!(
                "{operation}: the table says {trips} round trips and {expected:?} \
                 (background: {background:?}); measured {} and {:?}",
                cost.round_trips, cost.requests
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/SEMANTICS.md's round trips are not what the operations cost:\n  {}",
        wrong.join("\n  ")
    );
}
