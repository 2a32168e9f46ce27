//! The SFTP request engine: one typed method per SFTP request, over russh-sftp's
//! `RawSftpSession` (many requests in flight, answers matched by id), on a link that is
//! replaced when the connection dies.
//!
//! | module | its job |
//! |---|---|
//! | `error` | [`SftpError`] and the `SSH_FX_*` status codes |
//! | `runner` | how one request is sent, counted, bounded, and sent again after a reconnect |
//! | `requests` | the typed requests (stat, open, rename...) |
//! | `listing` | a directory read with several READDIRs in flight on its handle |
//! | `io` | reads and writes split to the server's limits, writes resent in order |
//! | `handle` | server handles with one owner, leases, the resend order of writes |
//! | `link` | the session that is replaced when the connection dies |
//! | `server` | what was decided about the server (family, channels, symlink order) |
//! | `counters` | requests counted by kind |
//! | `rtt` | the round trip time: the shortest request/answer time of recent seconds |
//! | `wire` | encoding for EXTENDED requests and long names |

pub mod counters;
mod error;
pub mod handle;
mod io;
pub mod link;
mod listing;
mod requests;
pub mod rtt;
mod runner;
pub mod server;
mod wire;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as RawError;
use russh_sftp::protocol::FileAttributes;

use counters::Counters;
use handle::{Handle, HandleRegistry, PendingWrites};
use link::{ChannelOpener, Connector, Link, LinkState, ReconnectPolicy};
pub use listing::{DirPages, FULL_FIRST_PAGE, MAX_IN_FLIGHT, Page};
pub use runner::After;
use server::ServerProfile;
pub use server::{CHANNELS, CONNECTION_CHANNELS, MAX_CHANNELS};

pub use error::later_drafts;
pub use error::{
    FX_BAD_MESSAGE, FX_CONNECTION_LOST, FX_EOF, FX_FAILURE, FX_INVALID_HANDLE, FX_NO_CONNECTION,
    FX_NO_SUCH_FILE, FX_OP_UNSUPPORTED, FX_PERMISSION_DENIED, SftpError, SftpResult,
};

/// Smallest read/write size every SFTP server must accept (draft-ietf-secsh-filexfer-02).
const SFTP_MIN_IO_LEN: u32 = 32 * 1024;
/// Our cap on one READ/WRITE: OpenSSH allows 261,120 bytes; larger packets gain nothing.
const MAX_IO_LEN: u32 = 256 * 1024;

/// One entry of a READDIR answer.
#[derive(Debug, Clone)]
pub struct DirEntry {
    /// File name (no slashes).
    pub name: String,
    /// Attributes as the server sent them (OpenSSH: those of `lstat`).
    pub attrs: FileAttributes,
    /// Link count parsed from the `ls -l` style long name, when the server sends one.
    pub nlink: Option<u32>,
}

impl DirEntry {
    /// The entries of one READDIR answer.
    pub(super) fn page(name: russh_sftp::protocol::Name) -> Vec<DirEntry> {
        name.files
            .into_iter()
            .map(|f| DirEntry {
                nlink: wire::parse_longname_nlink(&f.longname),
                name: f.filename,
                attrs: f.attrs,
            })
            .collect()
    }
}

/// A raw request, made again for each attempt: on the session given, it returns russh-sftp's
/// future (which owns what it sends).
pub(super) type Attempt<'s, T> = BoxFuture<'s, Result<T, RawError>>;

/// A typed SFTP client over a session that is replaced when the connection dies (see
/// [`super::link`]): requests that may be repeated are sent again on the new session, handles
/// are reopened underneath, writes not acknowledged are resent in order, and requests that
/// change the namespace check on the new session whether they happened.
pub struct Sftp {
    link: Arc<Link>,
    /// Itself, for the handles it hands out (a handle dropped open is closed through it).
    me: Weak<Sftp>,
    handles: HandleRegistry,
    /// The writes of every handle not acknowledged yet: after a reconnect, requests wait until
    /// those lost with the old session were sent again ([`Sftp::up_in_order`]).
    pending_writes: Arc<PendingWrites>,
    deadline: Duration,
    read_len: u32,
    write_len: u32,
    counters: Counters,
    extensions: Vec<String>,
    reopened: std::sync::atomic::AtomicU64,
    reopen_failed: std::sync::atomic::AtomicU64,
    /// Requests sent and not answered yet.
    in_flight: std::sync::atomic::AtomicUsize,
    /// Which server this is and what it allows (OpenSSH's until [`Sftp::set_server`]).
    server: std::sync::RwLock<ServerProfile>,
    /// The link's round trip, from the requests' answer times.
    rtt: rtt::RoundTrip,
}

impl Sftp {
    /// Wraps an initialised session. `limits` are the server's `limits@openssh.com` answer
    /// (read, write) if it gave one; `extensions` the names from its VERSION packet.
    pub fn new(
        raw: RawSftpSession,
        limits: Option<(u64, u64)>,
        extensions: Vec<String>,
        deadline: Duration,
    ) -> Arc<Self> {
        let clamp = |v: u64| u32::try_from(v).unwrap_or(MAX_IO_LEN).clamp(1, MAX_IO_LEN);
        let (read_len, write_len) = match limits {
            Some((r, w)) => (
                if r == 0 { SFTP_MIN_IO_LEN } else { clamp(r) },
                if w == 0 { SFTP_MIN_IO_LEN } else { clamp(w) },
            ),
            None => (SFTP_MIN_IO_LEN, SFTP_MIN_IO_LEN),
        };
        Arc::new_cyclic(|me| Self {
            link: Arc::new(Link::new(raw)),
            me: me.clone(),
            handles: HandleRegistry::default(),
            pending_writes: Arc::default(),
            deadline,
            read_len,
            write_len,
            counters: Counters::default(),
            extensions,
            reopened: Default::default(),
            reopen_failed: Default::default(),
            in_flight: Default::default(),
            server: std::sync::RwLock::new(ServerProfile::openssh()),
            rtt: rtt::RoundTrip::default(),
        })
    }

    /// Lets requests use more than one SFTP channel of the connection (see
    /// [`Sftp::open_on_channel`]); without it there is one.
    pub fn set_channel_opener(&self, opener: Arc<dyn ChannelOpener>) {
        self.link.set_channel_opener(opener);
    }

    /// How many channels of the current connection a large write may use, at most `want`:
    /// opening them first if that was not tried yet on it ([`CHANNELS`] at first need, up to
    /// [`MAX_CHANNELS`] once a write asks for more; at most what the server allows).
    pub async fn channels(&self, want: usize) -> SftpResult<usize> {
        let max = self.max_channels();
        let have = self
            .link
            .up()
            .await?
            .open_channels(want.min(max), max)
            .await;
        Ok(have.min(want).max(1))
    }

    /// How many channels of the current connection are open now, at most `want` (at least 1;
    /// none is opened: see [`Sftp::channels`]).
    pub fn channels_open(&self, want: usize) -> usize {
        self.link.session().channels_open().min(want).max(1)
    }

    /// [`Sftp::prepare_second_connection`] on a task of its own.
    pub fn start_second_connection(&self, channels: usize) {
        if let Some(me) = self.me.upgrade() {
            tokio::spawn(async move {
                let _ = me.prepare_second_connection(channels).await;
            });
        }
    }

    /// Makes the current connection's second connection ahead, with `channels` channels
    /// (once per connection; see [`MAX_CHANNELS`]), so that a large write asking for more
    /// channels than one connection gives finds them open.
    async fn prepare_second_connection(&self, channels: usize) -> SftpResult<()> {
        self.link
            .up()
            .await?
            .prepare_second_connection(channels)
            .await;
        Ok(())
    }

    /// Notes a round trip of the link timed before this engine existed (the connection's
    /// first SFTP request), so the first windows can follow it.
    pub fn note_round_trip(&self, took: Duration) {
        let now = tokio::time::Instant::now();
        self.rtt.sample(now.checked_sub(took).unwrap_or(now));
    }

    /// The link's round trip time as measured so far (`None` before the first answer).
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt.get()
    }

    /// Sets what was decided about the server (before any file is opened).
    pub fn set_server(&self, profile: ServerProfile) {
        if let Ok(mut p) = self.server.write() {
            *p = profile;
        }
    }

    /// What was decided about the server.
    pub fn server(&self) -> ServerProfile {
        self.server
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|_| ServerProfile::openssh())
    }

    /// Channels the server may be sent requests on at once.
    pub fn max_channels(&self) -> usize {
        self.server.read().map_or(1, |p| p.channels)
    }

    /// The extensions the server announced in its VERSION packet.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// Whether a request on `handle` can still reach its file: it lives on the current
    /// session, or it can be reopened there by a name. A handle of a file whose names are all
    /// gone dies with its session.
    pub fn may_reach(&self, handle: &Handle) -> bool {
        handle.epoch() >= self.link.state().0 || handle.reopen_info().path().is_some()
    }

    /// Keeps `keep` alive as long as the first session (e.g. the program it runs over; a
    /// reconnect's sessions carry their own in [`super::link::Connected::keep`]).
    pub fn keep_with_first_session(&self, keep: Box<dyn Send + Sync>) {
        self.link.set_keep(keep);
    }

    /// Reconnects through `connector` when the session dies (without it, a lost connection
    /// fails every request, and [`Sftp::gone`] resolves).
    pub fn reconnect_with(&self, connector: Arc<dyn Connector>, policy: ReconnectPolicy) {
        self.link.set_reconnect(connector, policy);
    }

    /// Resolves, with the reason, when the connection is lost for good (`reconnect=no`, a
    /// changed host key, authentication refused on reconnect).
    pub async fn gone(&self) -> String {
        self.link.gone().await
    }

    /// The mount is going away: no reconnect from now on, and requests fail at once (see
    /// `Link::close`).
    pub fn shut_down(&self) {
        self.link.close("unmounted");
    }

    /// Resolves when a session later than `after` is up (a reconnect), with its epoch and the
    /// number of handles the earlier sessions held (reopened on their next use); `None` once
    /// the link is gone.
    pub async fn reconnected(&self, after: u64) -> Option<(u64, usize)> {
        let epoch = self.up_after(after).await?;
        Some((epoch, self.handles.forget_before(epoch)))
    }

    /// Resolves when a session later than `after` is up (the first one, for 0), with its
    /// epoch; `None` once the link is gone.
    pub async fn up_after(&self, after: u64) -> Option<u64> {
        let mut rx = self.link.watch();
        loop {
            if let (epoch, LinkState::Up) = &*rx.borrow_and_update()
                && *epoch > after
            {
                return Some(*epoch);
            }
            rx.changed().await.ok()?;
        }
    }

    /// "state=up epoch=N reconnects=N reopened=N reopen-failed=N", for the stats line.
    pub fn link_summary(&self) -> String {
        let (epoch, state) = self.link.state();
        let state = match state {
            LinkState::Up => "up".to_owned(),
            LinkState::Down { since } => format!("down({}s)", since.elapsed().as_secs()),
            LinkState::GaveUp(_) => "gave-up".to_owned(),
        };
        let session = self.link.session();
        format!(
            "state={state} epoch={epoch} channels={} connections={} reconnects={} reopened={} reopen-failed={}",
            session.channels_open(),
            session.connections(),
            self.link.reconnects(),
            self.reopened.load(Ordering::Relaxed),
            self.reopen_failed.load(Ordering::Relaxed)
        )
    }

    /// The server handles this session holds open, and requests refused on others.
    pub fn handles(&self) -> &HandleRegistry {
        &self.handles
    }

    /// Largest single READ we send.
    pub fn read_len(&self) -> u32 {
        self.read_len
    }

    /// Largest single WRITE we send.
    pub fn write_len(&self) -> u32 {
        self.write_len
    }

    /// Requests sent and not answered yet (for the background re-check: the link is busy).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Whether the current session is up (not reconnecting, not given up).
    pub fn is_up(&self) -> bool {
        matches!(self.link.state().1, LinkState::Up)
    }

    /// Whether the connection is lost for good.
    pub fn gave_up(&self) -> bool {
        matches!(self.link.state().1, LinkState::GaveUp(_))
    }

    /// Request counters of this session.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Whether the server announced the extension `name` (e.g. `posix-rename@openssh.com`).
    pub fn has_extension(&self, name: &str) -> bool {
        self.extensions.iter().any(|e| e == name)
    }
}

/// Counts one request in flight for as long as it lives (also when its future is dropped).
pub(super) struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> InFlight<'a> {
    pub(super) fn new(n: &'a std::sync::atomic::AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Self(n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
