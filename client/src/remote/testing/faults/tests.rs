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

use super::{Channels, Fate, FaultPlan, Faulty, Pick};
use crate::fs::{FsResult, SshFs};
use crate::remote::fake_server::FakeServer;
use crate::remote::link::Connector;
use crate::remote::sftp::Sftp;
use crate::remote::testing::process::SftpServerProcess;
use crate::remote::testing::wire::WRITE;
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
        self.dir.path().to_str().unwrap().to_owned()
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
}

fn fake() -> Option<Box<dyn Backend>> {
    Some(Box::new(Fake(FakeServer::new(1))))
}

fn process() -> Option<Box<dyn Backend>> {
    let dir = tempfile::tempdir().unwrap();
    let server = SftpServerProcess::new(&dir.path().canonicalize().unwrap())?;
    Some(Box::new(Process { server, dir }))
}

/// Instantiates each scenario `name(backend)` once per server: `over_fake::name`,
/// `over_process::name`.
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
            let rig = Rig::new(backend_like(&*first.backend)).await;
            let when = if after { "after" } else { "before" };
            let pick = Pick::number(rig.plan.numbered() + n);
            match after {
                true => rig.plan.cut_after(pick),
                false => rig.plan.cut_before(pick),
            }
            if let Err(e) = scenario(&rig.fs()).await {
                panic!("cut {when} request {n}: {} (errno {})", e.message, e.errno);
            }
            let cuts = rig.plan.cuts();
            assert_eq!(cuts.len(), 1, "cut {when} request {n}: {cuts:?}");
            assert!(cuts[0].why.starts_with(when), "{cuts:?}");
            assert_eq!(rig.connector.connections(), 2, "cut {when} request {n}");
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
        let rig = Rig::new(backend_like(&*backend)).await;
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

/// A fresh backend of the same kind as `b`.
fn backend_like(b: &dyn Backend) -> Box<dyn Backend> {
    match b.root().as_str() {
        "/r" => fake().unwrap(),
        _ => process().unwrap(),
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
    let data = pattern(12 << 20, 9);
    rig.plan
        .cut_after(Pick::kind(WRITE).on(Channels::one(1, 2)).nth(3));
    let (_, fh) = fs
        .create(ROOT, OsStr::new("big"), 0o644, excl())
        .await
        .unwrap();
    for (i, piece) in data.chunks(1 << 20).enumerate() {
        fs.write(fh, (i << 20) as u64, piece).await.unwrap();
    }
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
