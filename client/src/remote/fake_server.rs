//! A small in-memory SFTP server for unit tests: the real russh-sftp client and our [`Sftp`]
//! talk to it over an in-process pipe, with no network and no sshd.
//!
//! It hands out handles as OpenSSH does (4-byte big-endian numbers, the lowest free one first,
//! from [`FakeServer::first_handle`] up, so tests can cross 128), records every request with the
//! handle it named, and counts requests on handles it does not hold, as OpenSSH's DEBUG3 log
//! shows them ("handle -1"). READ answers can be held back until a test lets them go.
//!
//! Faults: [`FakeServer::die_at`] ends the session at its n-th request (counted over all
//! sessions), before or after carrying it out, as a link that dies does; the handles of a
//! session that ends are closed, as OpenSSH's are. [`FakeServer::connector`] opens new
//! sessions to the same files, for the reconnect logic. [`FakeServer::answer_with`] answers
//! every request of one kind with a status code of its choice (any `u32`, as servers speaking
//! later drafts send) or with a reply that does not decode.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use russh_sftp::client::RawSftpSession;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::watch;

use futures_util::future::BoxFuture;

use super::sftp::Sftp;
use super::sftp::link::{ConnectFailure, Connected, Connector, ReconnectPolicy};

const INIT: u8 = 1;
const VERSION: u8 = 2;
const OPEN: u8 = 3;
const CLOSE: u8 = 4;
const READ: u8 = 5;
const WRITE: u8 = 6;
const LSTAT: u8 = 7;
const FSTAT: u8 = 8;
const REMOVE: u8 = 13;
const RENAME: u8 = 18;
const SYMLINK: u8 = 20;
const STATUS: u8 = 101;
const HANDLE: u8 = 102;
const DATA: u8 = 103;
const ATTRS: u8 = 105;

/// One request the server received: its kind, and the handle number it named (`None`: a
/// request without a handle; `Some(None)`: a handle the server does not hold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// "open", "close", "read", "write", "fstat", "lstat".
    pub op: &'static str,
    /// The handle named, resolved as the server sees it.
    pub handle: Option<Option<u32>>,
}

#[derive(Default)]
struct State {
    /// Answer READs with at most half of what was asked (a server may answer short).
    short_reads: bool,
    files: BTreeMap<String, Vec<u8>>,
    /// Open handles: (session, number) -> path.
    open: HashMap<(u64, u32), String>,
    free: BTreeSet<u32>,
    next: u32,
    seen: Vec<Seen>,
    sessions: u64,
    /// Requests received, over all sessions.
    requests: u64,
    /// End the session at this request number; `true`: after carrying it out.
    die_at: Option<(u64, bool)>,
    /// Requests of these kinds get this answer instead of being carried out.
    faults: HashMap<&'static str, Fault>,
    /// The two paths of each SYMLINK, in the order they came.
    symlinks: Vec<(String, String)>,
}

/// An answer [`FakeServer::answer_with`] gives instead of carrying a request out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A STATUS with this code (and the message "fault").
    Status(u32),
    /// A STATUS cut short after the request id: a reply that does not decode.
    Malformed,
}

/// The server side of a test session.
#[derive(Clone)]
pub struct FakeServer {
    state: Arc<Mutex<State>>,
    reads_held: watch::Sender<bool>,
    opens_held: watch::Sender<bool>,
}

impl FakeServer {
    /// A server whose first handle is `first_handle`, with no files.
    pub fn new(first_handle: u32) -> FakeServer {
        let state = State {
            next: first_handle,
            ..State::default()
        };
        FakeServer {
            state: Arc::new(Mutex::new(state)),
            reads_held: watch::channel(false).0,
            opens_held: watch::channel(false).0,
        }
    }

    /// Creates (or replaces) the file `path` with `data`.
    pub fn put(&self, path: &str, data: Vec<u8>) {
        self.state.lock().unwrap().files.insert(path.into(), data);
    }

    /// The contents of `path`.
    pub fn get(&self, path: &str) -> Option<Vec<u8>> {
        self.state.lock().unwrap().files.get(path).cloned()
    }

    /// Ends the session that receives request number `n` (1 = the next one), without an
    /// answer: before carrying it out, or after (`done`: the answer is what is lost).
    pub fn die_at(&self, n: u64, done: bool) {
        let mut st = self.state.lock().unwrap();
        st.die_at = Some((st.requests + n, done));
    }

    /// Requests received so far, over all sessions.
    pub fn requests(&self) -> u64 {
        self.state.lock().unwrap().requests
    }

    /// Every file and its contents.
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        self.state.lock().unwrap().files.clone()
    }

    /// A connector opening new sessions to this server (for reconnecting).
    pub fn connector(&self) -> Arc<dyn Connector> {
        Arc::new(self.clone())
    }

    /// Answers every request of kind `op` ("open", "read", "write"...) with `fault` (`None`:
    /// carries them out again).
    pub fn answer_with(&self, op: &'static str, fault: Option<Fault>) {
        let mut st = self.state.lock().unwrap();
        match fault {
            Some(fault) => st.faults.insert(op, fault),
            None => st.faults.remove(op),
        };
    }

    /// The two paths of each SYMLINK received, in the order they came (the server makes
    /// nothing: it only answers OK).
    pub fn symlinks(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().symlinks.clone()
    }

    /// Sessions started so far (1 until a reconnect).
    pub fn sessions(&self) -> u64 {
        self.state.lock().unwrap().sessions
    }

    /// Answers every READ with at most half the bytes asked for (true).
    pub fn short_reads(&self, short: bool) {
        self.state.lock().unwrap().short_reads = short;
    }

    /// Holds READ answers back (true) or lets them go (false).
    pub fn hold_reads(&self, hold: bool) {
        self.reads_held.send_replace(hold);
    }

    /// Holds OPEN answers back (true) or lets them go (false).
    pub fn hold_opens(&self, hold: bool) {
        self.opens_held.send_replace(hold);
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Requests that named a handle the server did not hold.
    pub fn bad_handle_requests(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.handle == Some(None))
            .collect()
    }

    /// How many requests of kind `op` arrived.
    pub fn count(&self, op: &str) -> usize {
        self.seen().iter().filter(|s| s.op == op).count()
    }

    /// Handles open now.
    pub fn open_handles(&self) -> usize {
        self.state.lock().unwrap().open.len()
    }

    /// Starts serving on a new pipe and returns our engine connected to it.
    pub async fn connect(&self) -> Arc<Sftp> {
        let raw = self.session().await;
        Sftp::new(raw, None, Vec::new(), Duration::from_secs(10))
    }

    /// Like [`FakeServer::connect`], reconnecting to this server when the session ends.
    pub async fn connect_reconnecting(&self) -> Arc<Sftp> {
        let sftp = self.connect().await;
        let policy = ReconnectPolicy {
            wait: Duration::from_secs(5),
            max_backoff: Duration::from_millis(20),
            auth_tries: 3,
        };
        sftp.reconnect_with(self.connector(), policy);
        sftp
    }

    /// Serves a new session on `stream` (the server's end of a pipe), on a task of its own.
    pub fn serve_stream(&self, stream: DuplexStream) {
        let id = {
            let mut st = self.state.lock().unwrap();
            st.sessions += 1;
            st.sessions
        };
        tokio::spawn(self.clone().serve(id, stream));
    }

    /// A new initialised session on a new pipe.
    async fn session(&self) -> RawSftpSession {
        let (client, server) = tokio::io::duplex(1 << 20);
        self.serve_stream(server);
        let raw = RawSftpSession::new(client);
        raw.init().await.expect("fake SFTP init");
        raw
    }

    async fn serve(self, session: u64, stream: DuplexStream) {
        self.serve_until_death(session, stream).await;
        // The session ended: its handles are closed, as OpenSSH's are when sftp-server exits.
        let mut st = self.state.lock().unwrap();
        let gone: Vec<(u64, u32)> = st
            .open
            .keys()
            .filter(|(s, _)| *s == session)
            .copied()
            .collect();
        for key in gone {
            st.open.remove(&key);
            st.free.insert(key.1);
        }
    }

    async fn serve_until_death(&self, session: u64, stream: DuplexStream) {
        let (mut rd, wr) = tokio::io::split(stream);
        let wr = Arc::new(tokio::sync::Mutex::new(wr));
        loop {
            let Ok(len) = rd.read_u32().await else {
                return;
            };
            let mut buf = vec![0; len as usize];
            if rd.read_exact(&mut buf).await.is_err() {
                return;
            }
            let mut p = Bytes::from(buf);
            let kind = p.get_u8();
            if kind == INIT {
                let mut out = BytesMut::new();
                out.put_u8(VERSION);
                out.put_u32(3);
                send(&wr, out).await;
                continue;
            }
            let id = p.get_u32();
            let die = {
                let mut st = self.state.lock().unwrap();
                st.requests += 1;
                match st.die_at {
                    Some((n, done)) if n == st.requests => {
                        st.die_at = None;
                        Some(done)
                    }
                    _ => None,
                }
            };
            if die == Some(false) {
                return;
            }
            let reply = self.answer(session, kind, id, p);
            if die == Some(true) {
                return;
            }
            match reply {
                Reply::Now(out) => send(&wr, out).await,
                Reply::AfterReads(out) | Reply::AfterOpens(out) => {
                    // Answered in the background, so later requests are not held up.
                    let gate = match kind {
                        OPEN => &self.opens_held,
                        _ => &self.reads_held,
                    };
                    let (wr, mut held) = (Arc::clone(&wr), gate.subscribe());
                    tokio::spawn(async move {
                        let _ = held.wait_for(|h| !*h).await;
                        send(&wr, out).await;
                    });
                }
            }
        }
    }

    fn answer(&self, session: u64, kind: u8, id: u32, mut p: Bytes) -> Reply {
        let mut st = self.state.lock().unwrap();
        match st.faults.get(op_name(kind)) {
            Some(Fault::Status(code)) => {
                let mut out = BytesMut::new();
                out.put_u8(STATUS);
                out.put_u32(id);
                out.put_u32(*code);
                put_string(&mut out, b"fault");
                put_string(&mut out, b"");
                return Reply::Now(out);
            }
            Some(Fault::Malformed) => {
                let mut out = BytesMut::new();
                out.put_u8(STATUS);
                out.put_u32(id);
                return Reply::Now(out);
            }
            None => {}
        }
        let handle_of = |p: &mut Bytes, st: &mut State, op: &'static str| {
            let raw = get_string(p);
            let number = <[u8; 4]>::try_from(raw.as_slice())
                .ok()
                .map(u32::from_be_bytes)
                .filter(|n| st.open.contains_key(&(session, *n)));
            st.seen.push(Seen {
                op,
                handle: Some(number),
            });
            number
        };
        match kind {
            OPEN => {
                let path = String::from_utf8_lossy(&get_string(&mut p)).into_owned();
                let pflags = p.get_u32();
                st.seen.push(Seen {
                    op: "open",
                    handle: None,
                });
                if st.files.contains_key(&path) && pflags & 0x20 != 0 {
                    return Reply::Now(status(id, 4)); // EXCL: exists
                }
                if !st.files.contains_key(&path) {
                    if pflags & 0x08 == 0 {
                        return Reply::Now(status(id, 2));
                    }
                    st.files.insert(path.clone(), Vec::new());
                }
                if pflags & 0x10 != 0 {
                    st.files.insert(path.clone(), Vec::new());
                }
                let n = match st.free.pop_first() {
                    Some(n) => n,
                    None => {
                        st.next += 1;
                        st.next - 1
                    }
                };
                st.open.insert((session, n), path);
                let mut out = BytesMut::new();
                out.put_u8(HANDLE);
                out.put_u32(id);
                put_string(&mut out, &n.to_be_bytes());
                Reply::AfterOpens(out)
            }
            CLOSE => match handle_of(&mut p, &mut st, "close") {
                Some(n) => {
                    st.open.remove(&(session, n));
                    st.free.insert(n);
                    Reply::Now(status(id, 0))
                }
                None => Reply::Now(status(id, 4)),
            },
            READ => {
                let Some(n) = handle_of(&mut p, &mut st, "read") else {
                    return Reply::Now(status(id, 4));
                };
                let (offset, len) = (p.get_u64() as usize, p.get_u32() as usize);
                let data = &st.files[&st.open[&(session, n)]];
                if offset >= data.len() {
                    return Reply::AfterReads(status(id, 1));
                }
                let len = if st.short_reads { len.div_ceil(2) } else { len };
                let end = data.len().min(offset + len);
                let mut out = BytesMut::new();
                out.put_u8(DATA);
                out.put_u32(id);
                put_string(&mut out, &data[offset..end]);
                Reply::AfterReads(out)
            }
            WRITE => {
                let Some(n) = handle_of(&mut p, &mut st, "write") else {
                    return Reply::Now(status(id, 4));
                };
                let offset = p.get_u64() as usize;
                let data = get_string(&mut p);
                let path = st.open[&(session, n)].clone();
                let file = st.files.entry(path).or_default();
                if file.len() < offset + data.len() {
                    file.resize(offset + data.len(), 0);
                }
                file[offset..offset + data.len()].copy_from_slice(&data);
                Reply::Now(status(id, 0))
            }
            FSTAT => match handle_of(&mut p, &mut st, "fstat") {
                Some(n) => {
                    let size = st.files[&st.open[&(session, n)]].len();
                    Reply::Now(attrs(id, size))
                }
                None => Reply::Now(status(id, 4)),
            },
            LSTAT => {
                let path = String::from_utf8_lossy(&get_string(&mut p)).into_owned();
                st.seen.push(Seen {
                    op: "lstat",
                    handle: None,
                });
                match st.files.get(&path) {
                    Some(data) => Reply::Now(attrs(id, data.len())),
                    None => Reply::Now(status(id, 2)),
                }
            }
            SYMLINK => {
                let first = String::from_utf8_lossy(&get_string(&mut p)).into_owned();
                let second = String::from_utf8_lossy(&get_string(&mut p)).into_owned();
                st.seen.push(Seen {
                    op: "symlink",
                    handle: None,
                });
                st.symlinks.push((first, second));
                Reply::Now(status(id, 0))
            }
            REMOVE => {
                let path = String::from_utf8_lossy(&get_string(&mut p)).into_owned();
                st.seen.push(Seen {
                    op: "remove",
                    handle: None,
                });
                match st.files.remove(&path) {
                    Some(_) => Reply::Now(status(id, 0)),
                    None => Reply::Now(status(id, 2)),
                }
            }
            RENAME => {
                let from = String::from_utf8_lossy(&get_string(&mut p)).into_owned();
                let to = String::from_utf8_lossy(&get_string(&mut p)).into_owned();
                st.seen.push(Seen {
                    op: "rename",
                    handle: None,
                });
                if st.files.contains_key(&to) {
                    return Reply::Now(status(id, 4));
                }
                match st.files.remove(&from) {
                    Some(data) => {
                        st.files.insert(to, data);
                        Reply::Now(status(id, 0))
                    }
                    None => Reply::Now(status(id, 2)),
                }
            }
            _ => Reply::Now(status(id, 8)),
        }
    }
}

enum Reply {
    Now(BytesMut),
    /// A READ's answer: held while [`FakeServer::hold_reads`] says so.
    AfterReads(BytesMut),
    /// An OPEN's handle: held while [`FakeServer::hold_opens`] says so.
    AfterOpens(BytesMut),
}

/// The name [`Seen::op`] and [`FakeServer::answer_with`] use for a request kind.
fn op_name(kind: u8) -> &'static str {
    match kind {
        OPEN => "open",
        CLOSE => "close",
        READ => "read",
        WRITE => "write",
        LSTAT => "lstat",
        FSTAT => "fstat",
        REMOVE => "remove",
        RENAME => "rename",
        SYMLINK => "symlink",
        _ => "other",
    }
}

async fn send(wr: &tokio::sync::Mutex<tokio::io::WriteHalf<DuplexStream>>, body: BytesMut) {
    let mut wr = wr.lock().await;
    let _ = wr.write_u32(body.len() as u32).await;
    let _ = wr.write_all(&body).await;
}

fn get_string(p: &mut Bytes) -> Vec<u8> {
    let len = p.get_u32() as usize;
    p.split_to(len).to_vec()
}

fn put_string(out: &mut BytesMut, s: &[u8]) {
    out.put_u32(s.len() as u32);
    out.put_slice(s);
}

fn status(id: u32, code: u32) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_u8(STATUS);
    out.put_u32(id);
    out.put_u32(code);
    put_string(&mut out, b"");
    put_string(&mut out, b"");
    out
}

fn attrs(id: u32, size: usize) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_u8(ATTRS);
    out.put_u32(id);
    out.put_u32(0x1 | 0x4); // size, permissions
    out.put_u64(size as u64);
    out.put_u32(0o100644);
    out
}

impl Connector for FakeServer {
    fn connect(&self) -> BoxFuture<'static, Result<Connected, ConnectFailure>> {
        let me = self.clone();
        Box::pin(async move {
            Ok(Connected {
                raw: me.session().await,
                keep: Box::new(()),
                channels: None,
            })
        })
    }
}
