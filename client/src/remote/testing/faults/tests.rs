//! Each fault shown through our real engine ([`Sftp`], and [`SshFs`] above it), over every
//! server the seam has: the fake ([`FakeServer`]) and OpenSSH's own `sftp-server` run as a
//! process ([`SftpServerProcess`], whose files are checked directly in its directory). The
//! scenarios are written once against a [`Backend`] and instantiated per server by
//! [`over_each_server!`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;

use sshfs_cache::CacheConfig;

use super::{Channels, Delay, Delivery, Fate, FaultPlan, Faulty, Pick, Shorten};
use crate::fs::{FsResult, SshFs};
use crate::remote::fake_server::FakeServer;
use crate::remote::sftp::link::Connector;
use crate::remote::sftp::{FX_FAILURE, FX_PERMISSION_DENIED, Sftp, SftpError};
use crate::remote::testing::memory::MemoryServer;
use crate::remote::testing::process::SftpServerProcess;
use crate::remote::testing::wire::{LSTAT, OPEN, READ, WRITE};
use crate::remote::testing::{ServeSftp, StreamConnector, quick_reconnect};

const ROOT: u64 = 1;

/// A server to put faults over, with its files reachable without SFTP.
trait Backend: Send + Sync {
    /// The server.
    fn server(&self) -> Arc<dyn ServeSftp>;
    /// The directory the fs layer is rooted at, on the server.
    fn root(&self) -> String;
    /// Creates (replaces) the regular file `name` under the root.
    fn put(&self, name: &str, data: &[u8]);
    /// Every regular file under the root (names relative to it) and its contents.
    fn files(&self) -> BTreeMap<String, Vec<u8>>;
    /// A new, empty server of the same kind.
    fn fresh(&self) -> Box<dyn Backend>;
}

struct Fake(FakeServer);

impl Backend for Fake {
    fn server(&self) -> Arc<dyn ServeSftp> {
        Arc::new(self.0.clone())
    }
    fn root(&self) -> String {
        "/r".into()
    }
    fn put(&self, name: &str, data: &[u8]) {
        self.0.put(&format!("/r/{name}"), data.to_vec());
    }
    fn files(&self) -> BTreeMap<String, Vec<u8>> {
        self.0
            .files()
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("/r/")?.to_owned(), v)))
            .collect()
    }
    fn fresh(&self) -> Box<dyn Backend> {
        fake().unwrap()
    }
}

struct Memory(MemoryServer);

impl Backend for Memory {
    fn server(&self) -> Arc<dyn ServeSftp> {
        Arc::new(self.0.clone())
    }
    fn root(&self) -> String {
        "/m".into()
    }
    fn put(&self, name: &str, data: &[u8]) {
        self.0.put_file(&format!("/m/{name}"), data).unwrap();
    }
    fn files(&self) -> BTreeMap<String, Vec<u8>> {
        self.0
            .snapshot()
            .into_iter()
            .filter_map(|(path, node)| {
                let name = path.strip_prefix("/m/")?;
                Some((name.to_owned(), node.content?.to_vec()))
            })
            .collect()
    }
    fn fresh(&self) -> Box<dyn Backend> {
        memory().unwrap()
    }
}

struct Process {
    server: Arc<SftpServerProcess>,
    dir: tempfile::TempDir,
}

impl Backend for Process {
    fn server(&self) -> Arc<dyn ServeSftp> {
        self.server.clone()
    }
    fn root(&self) -> String {
        self.server.dir().to_str().unwrap().to_owned()
    }
    fn put(&self, name: &str, data: &[u8]) {
        std::fs::write(self.dir.path().join(name), data).unwrap();
    }
    fn files(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                let name = entry.file_name().into_string().unwrap();
                files.insert(name, std::fs::read(entry.path()).unwrap());
            }
        }
        files
    }
    fn fresh(&self) -> Box<dyn Backend> {
        process().unwrap()
    }
}

fn fake() -> Option<Box<dyn Backend>> {
    Some(Box::new(Fake(FakeServer::new(1))))
}

fn memory() -> Option<Box<dyn Backend>> {
    let server = MemoryServer::new();
    server.mkdir_all("/m").unwrap();
    Some(Box::new(Memory(server)))
}

fn process() -> Option<Box<dyn Backend>> {
    let dir = tempfile::tempdir().unwrap();
    let server = SftpServerProcess::new(&dir.path().canonicalize().unwrap())?;
    Some(Box::new(Process { server, dir }))
}

/// Instantiates each scenario `name(backend)` once per server: `over_fake::name`,
/// `over_memory::name`, `over_process::name`.
macro_rules! over_each_server {
    ($($name:ident),* $(,)?) => {
        mod over_fake {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = super::fake() {
                        super::$name(backend).await;
                    }
                }
            )*
        }
        mod over_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = super::memory() {
                        super::$name(backend).await;
                    }
                }
            )*
        }
        mod over_process {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = super::process() {
                        super::$name(backend).await;
                    }
                }
            )*
        }
    };
}

over_each_server!(
    a_cut_before_or_after_any_request_is_survived,
    the_third_write_cut_before_and_after,
    a_cut_now_while_answers_are_held_loses_nothing,
    a_cut_ends_every_channel_of_the_connection,
    refusals_come_back_as_their_errno,
    short_reads_still_read_the_whole_file,
    a_full_disk_fails_the_write_with_enospc,
    a_stalled_server_fails_requests_at_the_deadline,
    a_swallowed_request_fails_alone,
    delayed_answers_keep_their_order_and_their_data,
    reordered_answers_still_read_and_write_right,
    held_answers_wait_for_the_release,
    answers_to_picked_requests_wait_while_others_pass,
    the_record_names_each_request,
);

/// A backend behind a fault layer, our engine connected through it.
struct Rig {
    backend: Box<dyn Backend>,
    plan: Arc<FaultPlan>,
    connector: Arc<StreamConnector>,
    sftp: Arc<Sftp>,
}

impl Rig {
    async fn new(backend: Box<dyn Backend>) -> Rig {
        let faulty = Faulty::new(backend.server());
        let plan = Arc::clone(faulty.plan());
        let connector = StreamConnector::new(faulty);
        let sftp = connector.connect_sftp(quick_reconnect()).await;
        Rig {
            backend,
            plan,
            connector,
            sftp,
        }
    }

    /// Like [`Rig::new`], with our deadline for each request set to `deadline` (the server's
    /// limits and extensions are not read: 32 KiB reads and writes).
    async fn with_deadline(backend: Box<dyn Backend>, deadline: Duration) -> Rig {
        let faulty = Faulty::new(backend.server());
        let plan = Arc::clone(faulty.plan());
        let connector = StreamConnector::new(faulty);
        let first = connector.connect().await.ok().unwrap();
        let sftp = Sftp::new(first.raw, None, Vec::new(), deadline);
        if let Some(opener) = first.channels {
            sftp.set_channel_opener(opener);
        }
        sftp.reconnect_with(connector.clone(), quick_reconnect());
        Rig {
            backend,
            plan,
            connector,
            sftp,
        }
    }

    fn fs(&self) -> Arc<SshFs> {
        Arc::new(SshFs::new(
            Arc::clone(&self.sftp),
            self.backend.root(),
            CacheConfig::default(),
        ))
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.backend.root())
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn excl() -> u32 {
    (libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL) as u32
}

/// create, two writes, fsync, close; open, read back, close; rename; create and unlink
/// another (the scenario of `fs::recovery_tests`).
async fn scenario(fs: &Arc<SshFs>) -> FsResult<()> {
    let (one, two) = (pattern(100_000, 1), pattern(50_000, 2));
    let (_, fh) = fs.create(ROOT, OsStr::new("a"), 0o644, excl()).await?;
    fs.write(fh, 0, &one).await?;
    fs.write(fh, 100_000, &two).await?;
    fs.fsync(fh).await?;
    fs.flush(fh).await?;
    fs.release(fh).await?;

    let attr = fs.lookup(ROOT, OsStr::new("a")).await?;
    let (fh, _) = fs.open(attr.ino, libc::O_RDONLY as u32).await?;
    let back = fs.read(fh, 0, 150_000).await?;
    fs.release(fh).await?;
    if back[..] != [one, two].concat()[..] {
        return Err(crate::fs::FsError::new(libc::EILSEQ, "read back differs"));
    }

    fs.rename(ROOT, OsStr::new("a"), ROOT, OsStr::new("b"), 0)
        .await?;
    let (_, fh) = fs.create(ROOT, OsStr::new("c"), 0o644, excl()).await?;
    fs.release(fh).await?;
    fs.unlink(ROOT, OsStr::new("c")).await?;
    Ok(())
}

fn scenario_result() -> BTreeMap<String, Vec<u8>> {
    BTreeMap::from([(
        "b".to_owned(),
        [pattern(100_000, 1), pattern(50_000, 2)].concat(),
    )])
}

/// Polls `cond` for up to 5 s.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("still not true after 5 s: {what}");
}

/// The connection is cut before, then after, each request of the scenario in turn (counted
/// over all connections by the fault layer): every operation succeeds after the reconnect and
/// the server ends with what a local filesystem would have.
async fn a_cut_before_or_after_any_request_is_survived(backend: Box<dyn Backend>) {
    let first = Rig::new(backend).await;
    let start = first.plan.numbered();
    scenario(&first.fs()).await.unwrap();
    assert_eq!(first.backend.files(), scenario_result());
    let requests = first.plan.numbered() - start;
    assert!(requests > 10, "the scenario sent only {requests} requests");
    assert!(first.plan.cuts().is_empty());
    for n in 1..=requests {
        for after in [false, true] {
            let rig = Rig::new(first.backend.fresh()).await;
            let start = rig.plan.numbered();
            let when = if after { "after" } else { "before" };
            let pick = Pick::next(n);
            match after {
                true => rig.plan.cut_after(pick),
                false => rig.plan.cut_before(pick),
            }
            if let Err(e) = scenario(&rig.fs()).await {
                panic!("cut {when} request {n}: {} (errno {})", e.message, e.errno);
            }
            let cuts = rig.plan.cuts();
            if cuts.is_empty() && rig.plan.numbered() - start < n {
                // This run sent fewer requests (a lookup answered from the cache): nothing
                // to cut.
                continue;
            }
            assert_eq!(cuts.len(), 1, "cut {when} request {n}: {cuts:?}");
            assert!(cuts[0].why.starts_with(when), "{cuts:?}");
            // A cut the scenario did not wait for (after a CLOSE) reconnects in the background.
            eventually(
                &format!("reconnected after the cut {when} request {n}"),
                || rig.connector.connections() == 2,
            )
            .await;
            // Closes of abandoned handles may still be on their way.
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(
                rig.backend.files(),
                scenario_result(),
                "cut {when} request {n}"
            );
            assert_eq!(rig.sftp.handles().misuse(), 0);
        }
    }
}

/// "The third WRITE": cut before it, the server never has it and the engine sends it again;
/// cut after it, the server has it and the engine's resend does no harm.
async fn the_third_write_cut_before_and_after(backend: Box<dyn Backend>) {
    for after in [false, true] {
        let rig = Rig::new(backend.fresh()).await;
        let fs = rig.fs();
        let data = pattern(300_000, 7);
        let pick = Pick::kind(WRITE).nth(3);
        match after {
            true => rig.plan.cut_after(pick),
            false => rig.plan.cut_before(pick),
        }
        let (_, fh) = fs
            .create(ROOT, OsStr::new("w"), 0o644, excl())
            .await
            .unwrap();
        for (i, piece) in data.chunks(40_000).enumerate() {
            fs.write(fh, (i * 40_000) as u64, piece).await.unwrap();
        }
        fs.release(fh).await.unwrap();
        assert_eq!(rig.backend.files()["w"], data, "after: {after}");

        let writes: Vec<_> = rig
            .plan
            .requests()
            .into_iter()
            .filter(|s| s.kind == WRITE)
            .collect();
        let fate = if after {
            Fate::CutAfter
        } else {
            Fate::CutBefore
        };
        assert_eq!(writes[2].fate, fate);
        assert_eq!(writes[2].connection, 1);
        assert!(
            writes.iter().any(|w| w.connection == 2),
            "resent on the new one"
        );
        assert_eq!(rig.connector.connections(), 2);
    }
}

/// Answers held while a write is in flight, then the connection cut from the test: the
/// write is sent again on the new connection and close() succeeds with every byte there.
async fn a_cut_now_while_answers_are_held_loses_nothing(backend: Box<dyn Backend>) {
    let rig = Rig::new(backend).await;
    let fs = rig.fs();
    let data = pattern(200_000, 3);
    let (_, fh) = fs
        .create(ROOT, OsStr::new("h"), 0o644, excl())
        .await
        .unwrap();
    rig.plan.hold_replies(Channels::all());
    fs.write(fh, 0, &data).await.unwrap();
    rig.plan
        .until_seen(Duration::from_secs(5), |s| s.kind == WRITE)
        .await
        .expect("the write reached the layer");
    assert_eq!(rig.plan.cut_now(), vec![1]);
    rig.plan.release_replies();
    fs.flush(fh).await.unwrap();
    fs.release(fh).await.unwrap();
    assert_eq!(rig.backend.files()["h"], data);
    assert_eq!(rig.plan.cuts()[0].why, "cut_now");
    assert_eq!(rig.connector.connections(), 2);
}

/// A cut on a WRITE of channel 2 (a striped write of a large file) ends every channel of the
/// connection, and the file still ends up as written.
async fn a_cut_ends_every_channel_of_the_connection(backend: Box<dyn Backend>) {
    let rig = Rig::new(backend).await;
    let fs = rig.fs();
    let all = pattern(64 << 20, 9);
    rig.plan
        .cut_after(Pick::kind(WRITE).on(Channels::one(1, 2)).nth(3));
    let (_, fh) = fs
        .create(ROOT, OsStr::new("big"), 0o644, excl())
        .await
        .unwrap();
    // The other handles open in the background from 8 MiB on: the writes go on (a little
    // slower than they could, to give them the time) until the cut came and a few more.
    let mut written = 0;
    for (i, piece) in all.chunks(1 << 20).enumerate() {
        fs.write(fh, (i << 20) as u64, piece).await.unwrap();
        written += piece.len();
        if i >= 8 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if i >= 12 && rig.plan.cuts().len() == 1 && written >= 24 << 20 {
            break;
        }
    }
    let data = &all[..written];
    fs.release(fh).await.unwrap();
    let cuts = rig.plan.cuts();
    assert_eq!(cuts.len(), 1, "{cuts:?}");
    assert_eq!(cuts[0].connection, 1);
    let on_one: Vec<usize> = rig
        .plan
        .requests()
        .iter()
        .filter(|s| s.connection == 1)
        .map(|s| s.channel)
        .collect();
    assert!(on_one.contains(&3), "the file was striped over 4 channels");
    eventually("every session of connection 1 ended", || {
        rig.plan.sessions_open(1) == 0
    })
    .await;
    assert_eq!(rig.backend.files()["big"], data);
}

/// A refusal is the request's answer: the status reaches the engine and the fs layer as its
/// errno, and the request never reached the server. (Creates, not lookups, at the fs layer:
/// a lookup may be answered by a listing fetched ahead, without an LSTAT.)
async fn refusals_come_back_as_their_errno(backend: Box<dyn Backend>) {
    let rig = Rig::new(backend).await;
    rig.backend.put("f", b"data");
    let path = rig.path("f");
    rig.plan
        .refuse(Pick::kind(LSTAT).nth(1), FX_PERMISSION_DENIED);
    let err = rig.sftp.lstat(&path).await.unwrap_err();
    assert_eq!(err.status(), Some(FX_PERMISSION_DENIED), "{err:?}");
    // Only the first LSTAT was refused.
    assert_eq!(rig.sftp.lstat(&path).await.unwrap().size, Some(4));

    let fs = rig.fs();
    rig.plan
        .refuse(Pick::kind(OPEN).nth(1), FX_PERMISSION_DENIED);
    rig.plan.refuse(Pick::kind(OPEN).nth(2), 8);
    for errno in [libc::EACCES, libc::EOPNOTSUPP] {
        let err = fs
            .create(ROOT, OsStr::new("new"), 0o644, excl())
            .await
            .unwrap_err();
        assert_eq!(err.errno, errno, "{}", err.message);
    }
    assert!(!rig.backend.files().contains_key("new"));

    let refused: Vec<_> = rig
        .plan
        .requests()
        .into_iter()
        .filter(|s| matches!(s.fate, Fate::Refused(_)))
        .collect();
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert_eq!(rig.plan.forwarded("open"), 0);
    let made_here = rig.plan.answers().iter().filter(|a| a.by_layer).count();
    assert_eq!(made_here, 3);
    assert!(rig.plan.cuts().is_empty());
}

/// Every DATA answer cut to half (then to at most 1000 bytes): the engine asks again for
/// the rest and reads the whole file.
async fn short_reads_still_read_the_whole_file(backend: Box<dyn Backend>) {
    let rig = Rig::new(backend).await;
    let data = pattern(300_000, 5);
    rig.backend.put("s", &data);
    let fs = rig.fs();
    for shorten in [Shorten::Half, Shorten::AtMost(1000)] {
        rig.plan.clear();
        rig.plan.short_reads(Pick::kind(READ), shorten);
        let reads_before = rig.plan.forwarded("read");
        let attr = fs.lookup(ROOT, OsStr::new("s")).await.unwrap();
        let (fh, _) = fs.open(attr.ino, libc::O_RDONLY as u32).await.unwrap();
        let back = fs.read(fh, 0, 300_000).await.unwrap();
        fs.release(fh).await.unwrap();
        assert!(back == data, "{shorten:?}: read {} bytes", back.len());
        // Direct reads through the engine, at an odd offset.
        let handle = rig
            .sftp
            .open(
                &rig.path("s"),
                russh_sftp::protocol::OpenFlags::READ,
                Default::default(),
            )
            .await
            .unwrap();
        let back = rig.sftp.read_at(&handle, 1, 299_999, None).await.unwrap();
        assert!(back[..] == data[1..], "{shorten:?}");
        rig.sftp.close(&handle).await.unwrap();
        let reads = rig.plan.forwarded("read") - reads_before;
        let shortened = rig
            .plan
            .answers()
            .iter()
            .filter(|a| matches!(a.delivery, Delivery::Shortened { .. }))
            .count();
        assert!(shortened > 0, "{shorten:?}");
        let min_reads = match shorten {
            Shorten::Half => 2 * 600_000 / rig.sftp.read_len() as usize,
            Shorten::AtMost(n) => 600_000 / n,
        };
        assert!(reads >= min_reads, "{shorten:?}: {reads} READs");
    }
}

/// A full disk as OpenSSH reports it (FAILURE for ENOSPC): the WRITE that does not fit is
/// refused by the layer, the write-behind error comes back at flush and at close, and the
/// server has exactly the bytes that fitted. Where the server has statvfs (memory, process:
/// the layer answers it as a full disk would) the error is ENOSPC, else EIO (fs::full); a
/// window of failed writes asks statvfs once, not once per WRITE.
async fn a_full_disk_fails_the_write_with_enospc(backend: Box<dyn Backend>) {
    let rig = Rig::new(backend).await;
    let fs = rig.fs();
    let want = if rig.sftp.has_extension("statvfs@openssh.com") {
        libc::ENOSPC
    } else {
        libc::EIO
    };
    let (_, fh) = fs
        .create(ROOT, OsStr::new("full"), 0o644, excl())
        .await
        .unwrap();
    let write_len = rig.sftp.write_len() as u64;
    let statvfs_before = statvfs_asked(&rig.plan);
    rig.plan.fill_disk_after(4 * write_len, FX_FAILURE, true);
    let data = pattern(10 * write_len as usize, 4);
    let mut first_error = None;
    for (i, piece) in data.chunks(write_len as usize).enumerate() {
        if let Err(e) = fs.write(fh, i as u64 * write_len, piece).await {
            first_error = Some((i, e));
            break;
        }
    }
    let flushed = fs.flush(fh).await;
    let closed = fs.release(fh).await;
    let err = match first_error {
        Some((i, e)) => {
            assert!(i > 4, "a write past the budget failed at once ({i})");
            e
        }
        None => flushed.clone().unwrap_err(),
    };
    assert_eq!(err.errno, want, "{}", err.message);
    assert_eq!(flushed.unwrap_err().errno, want);
    assert_eq!(closed.unwrap_err().errno, want);
    assert_eq!(rig.backend.files()["full"], data[..4 * write_len as usize]);
    assert_eq!(rig.plan.disk_used(), 4 * write_len);
    let statvfs_asked = statvfs_asked(&rig.plan) - statvfs_before;
    assert!(statvfs_asked <= 1, "statvfs asked {statvfs_asked} times");

    // With `creates`, a new file cannot be made either (no inode left); with room again, it
    // can.
    let err = fs
        .create(ROOT, OsStr::new("new"), 0o644, excl())
        .await
        .unwrap_err();
    assert_eq!(err.errno, want, "{}", err.message);
    let err = fs.mkdir(ROOT, OsStr::new("dir"), 0o755).await.unwrap_err();
    assert_eq!(err.errno, want, "{}", err.message);
    assert_eq!(rig.plan.forwarded("mkdir"), 0);
    rig.plan.free_disk();
    let (_, fh) = fs
        .create(ROOT, OsStr::new("new"), 0o644, excl())
        .await
        .unwrap();
    fs.release(fh).await.unwrap();
    assert!(rig.plan.cuts().is_empty());
}

/// statvfs requests seen by the layer (answered by it or by the server).
fn statvfs_asked(plan: &FaultPlan) -> usize {
    plan.requests()
        .iter()
        .filter(|r| r.name == "statvfs@openssh.com")
        .count()
}

/// A server that stops answering but keeps the connection: a request fails with our
/// deadline (the link stays up, nothing reconnects); once it answers again, requests work;
/// stalled and then cut, the request waiting is sent again on the new connection.
async fn a_stalled_server_fails_requests_at_the_deadline(backend: Box<dyn Backend>) {
    let deadline = Duration::from_millis(300);
    let rig = Rig::with_deadline(backend, deadline).await;
    rig.backend.put("f", b"12345");
    let path = rig.path("f");
    rig.plan.stall();
    let started = tokio::time::Instant::now();
    let err = rig.sftp.lstat(&path).await.unwrap_err();
    assert!(matches!(err, SftpError::Timeout(_)), "{err:?}");
    assert!(started.elapsed() >= deadline);
    assert!(rig.sftp.is_up());
    assert_eq!(rig.connector.connections(), 1);
    // Through the fs layer: EIO (docs/errno.md: deadline passed).
    let err = rig.fs().lookup(ROOT, OsStr::new("f")).await.unwrap_err();
    assert_eq!(err.errno, libc::EIO, "{}", err.message);

    rig.plan.resume();
    assert_eq!(rig.sftp.lstat(&path).await.unwrap().size, Some(5));

    rig.plan.stall();
    let sftp = Arc::clone(&rig.sftp);
    let p = path.clone();
    let waiting = tokio::spawn(async move { sftp.lstat(&p).await });
    rig.plan
        .until_seen(Duration::from_secs(5), |s| {
            s.fate == Fate::Stalled && s.number > 3
        })
        .await
        .unwrap();
    rig.plan.resume();
    rig.plan.cut_now();
    let attrs = waiting.await.unwrap();
    // The deadline may have passed before the cut was seen: then the next one succeeds.
    match attrs {
        Ok(a) => assert_eq!(a.size, Some(5)),
        Err(SftpError::Timeout(_)) => {
            assert_eq!(rig.sftp.lstat(&path).await.unwrap().size, Some(5))
        }
        Err(e) => panic!("{e:?}"),
    }
    assert_eq!(rig.connector.connections(), 2);
    let stalled = rig
        .plan
        .requests()
        .iter()
        .filter(|s| s.fate == Fate::Stalled)
        .count();
    assert!(stalled >= 3, "{stalled}");
}

/// One request swallowed (the next LSTAT): it alone fails at the deadline.
async fn a_swallowed_request_fails_alone(backend: Box<dyn Backend>) {
    let rig = Rig::with_deadline(backend, Duration::from_millis(300)).await;
    rig.backend.put("f", b"12345");
    let path = rig.path("f");
    rig.plan.swallow(Pick::kind(LSTAT).nth(1));
    let err = rig.sftp.lstat(&path).await.unwrap_err();
    assert!(matches!(err, SftpError::Timeout(_)), "{err:?}");
    assert_eq!(rig.sftp.lstat(&path).await.unwrap().size, Some(5));
    assert_eq!(rig.connector.connections(), 1);
}

/// Answers delayed by 30 ms each, then by a seeded random 0-3 ms: each takes its time, and a
/// file written and read in parallel pieces comes back whole.
async fn delayed_answers_keep_their_order_and_their_data(backend: Box<dyn Backend>) {
    let rig = Rig::new(backend).await;
    rig.backend.put("f", b"12345");
    rig.plan
        .delay_replies(Delay::Fixed(Duration::from_millis(30)));
    let started = tokio::time::Instant::now();
    rig.sftp.lstat(&rig.path("f")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(30));

    rig.plan.delay_replies(Delay::Random {
        min: Duration::ZERO,
        max: Duration::from_millis(3),
        seed: 18,
    });
    write_and_read_back(&rig, "d", 1 << 20).await;
    // Random delays do not reorder: four LSTATs sent at once are answered in order.
    let start = rig.plan.numbered();
    let path = rig.path("d");
    let sftp = &rig.sftp;
    let (a, b, c, d) = tokio::join!(
        sftp.lstat(&path),
        sftp.lstat(&path),
        sftp.lstat(&path),
        sftp.lstat(&path)
    );
    for attrs in [a, b, c, d] {
        assert_eq!(attrs.unwrap().size, Some(1 << 20));
    }
    let (sent, delivered) = sent_and_delivered(&rig.plan, start);
    assert_eq!(delivered, sent);
}

/// Answers of every channel released in groups of 4, each reversed: four LSTATs sent at
/// once are answered last first, and what was written and read in parallel pieces is right.
async fn reordered_answers_still_read_and_write_right(backend: Box<dyn Backend>) {
    let rig = Rig::new(backend).await;
    rig.backend.put("f", b"12345");
    rig.plan.reorder_replies(Channels::all(), 4);
    let path = rig.path("f");
    let start = rig.plan.numbered();
    let sftp = &rig.sftp;
    let (a, b, c, d) = tokio::join!(
        sftp.lstat(&path),
        sftp.lstat(&path),
        sftp.lstat(&path),
        sftp.lstat(&path)
    );
    for attrs in [a, b, c, d] {
        assert_eq!(attrs.unwrap().size, Some(5));
    }
    let (sent, delivered) = sent_and_delivered(&rig.plan, start);
    assert_eq!(sent.len(), 4);
    let reversed: Vec<u32> = sent.iter().rev().copied().collect();
    assert_eq!(delivered, reversed, "answers to {sent:?}");
    rig.plan.in_order();

    write_and_read_back(&rig, "r", 1 << 20).await;
}

/// Every answer held: a read does not finish until they are released, then it does.
async fn held_answers_wait_for_the_release(backend: Box<dyn Backend>) {
    let rig = Rig::new(backend).await;
    let data = pattern(100_000, 8);
    rig.backend.put("f", &data);
    let handle = rig
        .sftp
        .open(
            &rig.path("f"),
            russh_sftp::protocol::OpenFlags::READ,
            Default::default(),
        )
        .await
        .unwrap();
    rig.plan.hold_replies(Channels::of(1));
    let sftp = Arc::clone(&rig.sftp);
    let mut read = tokio::spawn(async move {
        let back = sftp.read_at(&handle, 0, 100_000, None).await;
        (back, handle)
    });
    rig.plan
        .until_seen(Duration::from_secs(5), |s| s.kind == READ)
        .await
        .unwrap();
    let early = tokio::time::timeout(Duration::from_millis(200), &mut read).await;
    assert!(
        early.is_err(),
        "the read finished while its answers were held"
    );
    rig.plan.release_replies();
    let (back, handle) = read.await.unwrap();
    assert!(back.unwrap() == data);
    rig.sftp.close(&handle).await.unwrap();
}

/// The answers to READs held (as `FakeServer::hold_reads` does): an LSTAT sent after the
/// READ is answered meanwhile, and the read finishes once they are released.
async fn answers_to_picked_requests_wait_while_others_pass(backend: Box<dyn Backend>) {
    let rig = Rig::new(backend).await;
    let data = pattern(100_000, 6);
    rig.backend.put("f", &data);
    let handle = rig
        .sftp
        .open(
            &rig.path("f"),
            russh_sftp::protocol::OpenFlags::READ,
            Default::default(),
        )
        .await
        .unwrap();
    rig.plan.hold_answers(Pick::kind(READ));
    let sftp = Arc::clone(&rig.sftp);
    let mut read = tokio::spawn(async move {
        let back = sftp.read_at(&handle, 0, 100_000, None).await;
        (back, handle)
    });
    rig.plan
        .until_seen(Duration::from_secs(5), |s| s.fate == Fate::AnswerHeld)
        .await
        .unwrap();
    let path = rig.path("f");
    let attrs = tokio::time::timeout(Duration::from_secs(5), rig.sftp.lstat(&path));
    assert_eq!(attrs.await.unwrap().unwrap().size, Some(100_000));
    let early = tokio::time::timeout(Duration::from_millis(100), &mut read).await;
    assert!(
        early.is_err(),
        "the read finished while its answers were held"
    );
    rig.plan.release_replies();
    let (back, handle) = read.await.unwrap();
    assert!(back.unwrap() == data);
    rig.sftp.close(&handle).await.unwrap();
}

/// The record names each request with its kind, id, channel and connection, in order.
async fn the_record_names_each_request(backend: Box<dyn Backend>) {
    let rig = Rig::new(backend).await;
    rig.backend.put("f", b"abc");
    let start = rig.plan.numbered();
    let handle = rig
        .sftp
        .open(
            &rig.path("f"),
            russh_sftp::protocol::OpenFlags::READ,
            Default::default(),
        )
        .await
        .unwrap();
    rig.sftp.read_at(&handle, 0, 3, Some(3)).await.unwrap();
    rig.sftp.close(&handle).await.unwrap();
    rig.sftp.lstat(&rig.path("f")).await.unwrap();
    let seen: Vec<_> = rig
        .plan
        .requests()
        .into_iter()
        .filter(|s| s.number > start)
        .collect();
    let names: Vec<&str> = seen.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["open", "read", "close", "lstat"]);
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s.number, start + 1 + i as u64);
        assert_eq!((s.connection, s.channel, s.fate), (1, 0, Fate::Forwarded));
    }
    let ids: Vec<u32> = seen.iter().map(|s| s.id).collect();
    let answered: Vec<u32> = rig
        .plan
        .answers()
        .iter()
        .map(|a| a.id)
        .filter(|id| ids.contains(id))
        .collect();
    assert_eq!(answered, ids, "each answered once, in order");
}

/// Writes `len` bytes to a new file `name` through the fs layer and reads it back in one
/// read (parallel READs), through a new open.
async fn write_and_read_back(rig: &Rig, name: &str, len: usize) {
    let fs = rig.fs();
    let data = pattern(len, 11);
    let (_, fh) = fs
        .create(ROOT, OsStr::new(name), 0o644, excl())
        .await
        .unwrap();
    fs.write(fh, 0, &data).await.unwrap();
    fs.release(fh).await.unwrap();
    let attr = fs.lookup(ROOT, OsStr::new(name)).await.unwrap();
    let (fh, _) = fs.open(attr.ino, libc::O_RDONLY as u32).await.unwrap();
    let back = fs.read(fh, 0, len as u32).await.unwrap();
    fs.release(fh).await.unwrap();
    assert!(back == data, "read back {} bytes of {len}", back.len());
    assert_eq!(rig.backend.files()[name], data);
}

/// The ids of the requests numbered after `start`, and of their answers in delivery order.
fn sent_and_delivered(plan: &FaultPlan, start: u64) -> (Vec<u32>, Vec<u32>) {
    let sent: Vec<u32> = plan
        .requests()
        .iter()
        .filter(|s| s.number > start)
        .map(|s| s.id)
        .collect();
    let delivered = plan
        .answers()
        .iter()
        .map(|a| a.id)
        .filter(|id| sent.contains(id))
        .collect();
    (sent, delivered)
}

/// `SSH_FX_NO_SPACE_ON_FILESYSTEM` (draft-ietf-secsh-filexfer-05 and later; some servers send
/// it to v3 clients).
const FX_NO_SPACE: u32 = 14;

/// A status code above 8 answers one request; it must fail that request, in bounded time,
/// and leave the connection alone.
///
/// Found with this layer: the vendored russh-sftp could not decode a STATUS whose code is not
/// one of v3's nine, dropped the session, and our engine took that for a lost connection and
/// resent the request forever (about 1,300 reconnects a second). Now the code is kept
/// (vendor/README.md) and mapped (docs/errno.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_above_8_fails_the_request_not_the_connection() {
    let rig = Rig::new(fake().unwrap()).await;
    rig.backend.put("f", b"data");
    let fs = rig.fs();
    rig.plan.refuse(Pick::kind(LSTAT), 9);
    let looked = tokio::time::timeout(Duration::from_secs(5), fs.lookup(ROOT, OsStr::new("f")));
    let err = looked
        .await
        .unwrap_or_else(|_| {
            panic!(
                "lookup still waiting after 5 s; {} connections made",
                rig.connector.connections()
            )
        })
        .unwrap_err();
    // 9 is SSH_FX_INVALID_HANDLE (docs/errno.md).
    assert_eq!(err.errno, libc::EBADF, "{}", err.message);
    assert_eq!(rig.connector.connections(), 1);
}

/// A full disk reported as `SSH_FX_NO_SPACE_ON_FILESYSTEM` (14): the write must fail with
/// ENOSPC (the errno the status names, docs/errno.md), in bounded time, without reconnecting.
/// (It used to end the session and be resent forever, as in
/// [`a_status_above_8_fails_the_request_not_the_connection`].)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_said_as_no_space_fails_with_enospc() {
    let rig = Rig::new(fake().unwrap()).await;
    let fs = rig.fs();
    let (_, fh) = fs
        .create(ROOT, OsStr::new("w"), 0o644, excl())
        .await
        .unwrap();
    rig.plan.fill_disk_after(100_000, FX_NO_SPACE, false);
    let data = pattern(300_000, 1);
    let written = tokio::time::timeout(Duration::from_secs(5), async {
        for (i, piece) in data.chunks(32768).enumerate() {
            fs.write(fh, (i * 32768) as u64, piece).await?;
        }
        fs.flush(fh).await
    });
    let err = written
        .await
        .unwrap_or_else(|_| {
            panic!(
                "writes still waiting after 5 s; {} connections made",
                rig.connector.connections()
            )
        })
        .unwrap_err();
    assert_eq!(err.errno, libc::ENOSPC, "{}", err.message);
    assert_eq!(rig.connector.connections(), 1);
}

fn packet(kind: u8, id: u32, rest: &[u8]) -> Vec<u8> {
    let mut p = vec![kind];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(rest);
    p
}

fn ssh_string(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

/// Picks: `nth` and `times` count the requests a fault's predicate accepts from when it was
/// added; `number` is absolute; the first fault that hits decides; the record says what
/// became of each request.
#[test]
fn picks_choose_requests_and_the_record_tells_their_fate() {
    use crate::remote::testing::wire::EXTENDED;
    let plan = FaultPlan::default();
    let lstat = |id| packet(LSTAT, id, &ssh_string("/f"));
    let fsync = |id| {
        packet(
            EXTENDED,
            id,
            &[ssh_string("fsync@openssh.com"), ssh_string("h")].concat(),
        )
    };
    plan.on_request(1, 0, &lstat(1));
    plan.refuse(Pick::kind(LSTAT).nth(2), 3);
    plan.swallow(Pick::extension("fsync@openssh.com"));
    plan.cut_before(Pick::any().on(Channels::numbered(2)).times(1));
    plan.refuse(Pick::number(7), 5);
    plan.on_request(1, 0, &lstat(2)); // 2: the first LSTAT since the refusal was added
    plan.on_request(1, 0, &lstat(3)); // 3: the second: refused
    plan.on_request(1, 0, &fsync(4)); // 4: swallowed
    plan.on_request(1, 2, &lstat(5)); // 5: on channel 2: cut
    plan.on_request(1, 0, &lstat(6)); // 6: connection 1 is cut
    plan.on_request(2, 2, &lstat(7)); // 7: refused by number (the cut was once only)
    plan.on_request(2, 2, &lstat(8));
    let fates: Vec<(u64, Fate)> = plan.requests().iter().map(|s| (s.number, s.fate)).collect();
    assert_eq!(
        fates,
        [
            (1, Fate::Forwarded),
            (2, Fate::Forwarded),
            (3, Fate::Refused(3)),
            (4, Fate::Swallowed),
            (5, Fate::CutBefore),
            (6, Fate::AfterCut),
            (7, Fate::Refused(5)),
            (8, Fate::Forwarded),
        ]
    );
    assert_eq!(plan.requests()[3].name, "fsync@openssh.com");
    assert_eq!(plan.cuts()[0].why, "before request 5 (lstat)");
    assert_eq!(plan.forwarded("lstat"), 3);
}

/// A connection cut from the test: its sessions end, and a channel opened on it later is
/// dead at once, while other connections are served.
#[tokio::test]
async fn a_cut_connection_stays_dead() {
    use tokio::io::AsyncReadExt;
    let faulty = Faulty::new(Arc::new(FakeServer::new(1)));
    let mut first = faulty.open_session(1, 0);
    faulty.plan().cut_connection(1);
    let mut buf = [0u8; 1];
    assert_eq!(
        first.read(&mut buf).await.unwrap(),
        0,
        "the end of the stream"
    );
    let mut later = faulty.open_session(1, 1);
    assert_eq!(later.read(&mut buf).await.unwrap(), 0);
    assert_eq!(faulty.plan().sessions_open(1), 0);
    let other = russh_sftp::client::RawSftpSession::new(faulty.open_session(2, 0));
    other.init().await.unwrap();
    assert!(other.lstat("/nothing").await.is_err());
    assert_eq!(faulty.plan().requests().last().unwrap().connection, 2);
}

/// The example of docs/architecture.md ("Tests without a network"), as written there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_of_the_architecture_doc_runs() -> FsResult<()> {
    use crate::remote::testing::wire;
    let flags = excl();
    let server = MemoryServer::new();
    let faulty = Faulty::new(Arc::new(server.clone()));
    let plan = Arc::clone(faulty.plan());
    let sftp = StreamConnector::new(faulty)
        .connect_sftp(quick_reconnect())
        .await;
    let fs = Arc::new(SshFs::new(sftp, "/".into(), CacheConfig::default()));
    plan.cut_after(Pick::kind(wire::WRITE).nth(3)); // the server has it, the answer is lost
    let (_, fh) = fs.create(ROOT, OsStr::new("f"), 0o644, flags).await?;
    for i in 0..5 {
        fs.write(fh, i * 4096, &[i as u8; 4096]).await?; // 4 KiB each: one WRITE each
    }
    fs.release(fh).await?; // close() succeeds: every byte is on the server
    assert_eq!(plan.cuts()[0].why, "after request 6 (write)"); // limits, OPEN, LSTAT, 3 WRITEs

    let expected: Vec<u8> = (0..5u8).flat_map(|i| [i; 4096]).collect();
    assert_eq!(server.read_file("/f"), Some(expected));
    Ok(())
}

/// A fault layer over a fault layer: the inner one refuses the first LSTAT, the outer one
/// cuts before the first WRITE; both happen, and the outer one records the inner refusal as
/// an answer from its server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_layers_compose() {
    let server = MemoryServer::new();
    let inner = Faulty::new(Arc::new(server.clone()));
    let outer = Faulty::new(inner.clone());
    inner
        .plan()
        .refuse(Pick::kind(LSTAT).nth(1), FX_PERMISSION_DENIED);
    outer.plan().cut_before(Pick::kind(WRITE).nth(1));
    let connector = StreamConnector::new(outer.clone());
    let sftp = connector.connect_sftp(quick_reconnect()).await;
    let err = sftp.lstat("/").await.unwrap_err();
    assert_eq!(err.status(), Some(FX_PERMISSION_DENIED));
    let fs = Arc::new(SshFs::new(sftp, "/".into(), CacheConfig::default()));
    let (_, fh) = fs
        .create(ROOT, OsStr::new("f"), 0o644, excl())
        .await
        .unwrap();
    fs.write(fh, 0, b"both").await.unwrap();
    fs.release(fh).await.unwrap();
    assert_eq!(server.read_file("/f").as_deref(), Some(&b"both"[..]));
    assert_eq!(outer.plan().cuts().len(), 1);
    assert!(
        inner.plan().cuts().is_empty(),
        "the inner layer saw its sessions end"
    );
    let refusal = outer
        .plan()
        .answers()
        .into_iter()
        .find(|a| a.kind == crate::remote::testing::wire::STATUS)
        .unwrap();
    assert!(
        !refusal.by_layer,
        "for the outer layer, the server answered"
    );
    assert_eq!(connector.connections(), 2);
}
