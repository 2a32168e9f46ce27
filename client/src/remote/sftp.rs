//! The SFTP request engine: one typed method per SFTP request, over russh-sftp's
//! `RawSftpSession` (many requests in flight, answers matched by id).
//!
//! Every call goes through [`Sftp::call`], which applies our own deadline (russh-sftp's timeout
//! counts from enqueue, so it is set out of the way), counts the request by [`Op`] and turns
//! russh-sftp's error into [`SftpError`], keeping server answers apart from transport failures.
//! Splitting reads and writes to the server's limits happens here too.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as RawError;
use russh_sftp::extensions::Statvfs;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};

use super::counters::{Counters, Op};
use futures_util::TryFutureExt;
use futures_util::future::BoxFuture;

use super::handle::{Closed, Handle, HandleRegistry, Lease, PendingWrites, Reopen};
use super::link::{ChannelOpener, Connector, Link, LinkState, ReconnectPolicy, Session};
use super::server::{Family, ServerProfile, SymlinkOrder};
use crate::fs::errno::FX_INVALID_HANDLE;

/// Smallest read/write size every SFTP server must accept (draft-ietf-secsh-filexfer-02).
const SFTP_MIN_IO_LEN: u32 = 32 * 1024;
/// Our cap on one READ/WRITE: OpenSSH allows 261,120 bytes; larger packets gain nothing.
const MAX_IO_LEN: u32 = 256 * 1024;
/// SFTP channels per connection at most: OpenSSH's server gives each channel a fixed 2 MiB
/// window, about 100 MiB/s at 20 ms round trip; a large write spread over 4 is not bound by it.
pub const CHANNELS: usize = 4;

/// Why an SFTP request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SftpError {
    /// The server answered with a status other than OK.
    #[error("{message} (SFTP status {code})")]
    Status {
        /// Raw SFTP status code (`SSH_FX_*`).
        code: u32,
        /// The server's message.
        message: String,
    },
    /// No answer within our deadline.
    #[error("no answer from the server within {0:?}")]
    Timeout(Duration),
    /// The session or connection failed (every pending request fails with this).
    #[error("connection to the server failed: {0}")]
    Transport(String),
    /// The request named a handle that was already closed: nothing was sent.
    #[error("the file handle was closed")]
    HandleClosed,
    /// The server's answer did not make sense (the session may go on).
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// The open file could not be carried over to the new connection (removed or renamed on
    /// the server meanwhile, or unlinked while open).
    #[error("{0}")]
    Lost(String),
}

impl From<Closed> for SftpError {
    fn from(_: Closed) -> Self {
        SftpError::HandleClosed
    }
}

/// `SSH_FX_EOF`.
pub const FX_EOF: u32 = 1;
/// `SSH_FX_NO_SUCH_FILE`.
pub const FX_NO_SUCH_FILE: u32 = 2;
/// `SSH_FX_PERMISSION_DENIED`.
pub const FX_PERMISSION_DENIED: u32 = 3;
/// `SSH_FX_FAILURE`: OpenSSH's answer for most errnos (EEXIST, ENOTEMPTY, EISDIR...).
pub const FX_FAILURE: u32 = 4;
/// `SSH_FX_BAD_MESSAGE`.
pub const FX_BAD_MESSAGE: u32 = 5;
/// `SSH_FX_NO_CONNECTION`.
pub const FX_NO_CONNECTION: u32 = 6;
/// `SSH_FX_CONNECTION_LOST`.
pub const FX_CONNECTION_LOST: u32 = 7;
/// `SSH_FX_OP_UNSUPPORTED`.
pub const FX_OP_UNSUPPORTED: u32 = 8;

impl SftpError {
    /// The SFTP status code, if the server answered.
    pub fn status(&self) -> Option<u32> {
        match self {
            SftpError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    fn from_raw(err: RawError) -> Self {
        match err {
            RawError::Status(s) => SftpError::Status {
                code: u32::from(s.status_code),
                message: s.error_message,
            },
            RawError::Timeout => SftpError::Transport("request timed out in the SFTP layer".into()),
            // Bad packets, limits: this request failed, the session may go on (if it does not,
            // the next request finds it closed).
            e @ (RawError::Limited(_) | RawError::UnexpectedPacket) => {
                SftpError::Protocol(e.to_string())
            }
            other => SftpError::Transport(other.to_string()),
        }
    }
}

/// Result of an SFTP call.
pub type SftpResult<T> = Result<T, SftpError>;

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

/// A raw request, made again for each attempt: on the session given, it returns russh-sftp's
/// future (which owns what it sends).
type Attempt<'s, T> = BoxFuture<'s, Result<T, RawError>>;

/// What a request that may have happened before its session died checks on the new session:
/// `true` if its effect is there (do not send it again).
type Outcome<'a> = BoxFuture<'a, SftpResult<bool>>;

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
        })
    }

    /// Lets requests use more than one SFTP channel of the connection (see
    /// [`Sftp::open_on_channel`]); without it there is one.
    pub fn set_channel_opener(&self, opener: Arc<dyn ChannelOpener>) {
        self.link.set_channel_opener(opener);
    }

    /// How many channels the current connection has, opening the others first if that was
    /// not tried yet on it (at most [`CHANNELS`], and what the server allows).
    pub async fn channels(&self) -> SftpResult<usize> {
        Ok(self
            .link
            .up()
            .await?
            .open_channels(self.max_channels())
            .await)
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
    fn max_channels(&self) -> usize {
        self.server.read().map_or(1, |p| p.channels)
    }

    /// The extensions the server announced in its VERSION packet.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// A session to send a request on once the link is up and every write lost with an
    /// earlier session was sent again (see [`PendingWrites`]): the server then applies them
    /// before this request, in the order the program made them.
    async fn up_in_order(&self) -> SftpResult<Arc<Session>> {
        let session = self.link.up().await?;
        self.pending_writes.sent_again_on(session.epoch).await;
        Ok(session)
    }

    /// Whether a request on `handle` can still reach its file: it lives on the current
    /// session, or it can be reopened there by a name. A handle of a file whose names are all
    /// gone dies with its session.
    pub fn may_reach(&self, handle: &Handle) -> bool {
        handle.epoch() >= self.link.state().0 || handle.reopen_info().path().is_some()
    }

    /// The session (channel) of the current connection that `handle` lives on, for request
    /// `seq` ([`u64::MAX`], or a write being sent again, which does not wait for the others:
    /// they may be waiting for it).
    async fn channel_of(&self, handle: &Handle, seq: u64) -> SftpResult<Arc<Session>> {
        let session = match seq {
            u64::MAX => self.up_in_order().await?,
            _ => self.link.up().await?,
        };
        if handle.channel() > 0 {
            // Channel k is the same one for the whole epoch only once they were opened.
            session.open_channels(self.max_channels()).await;
        }
        Ok(session.channel(handle.channel()))
    }

    /// OPEN on channel `channel` of the connection (another `sftp-server`, with its own
    /// flow-control window): for writing one file through several channels at once. On a
    /// connection with fewer channels, channel 0. Never creates or truncates.
    pub async fn open_on_channel(
        &self,
        path: &str,
        flags: OpenFlags,
        channel: usize,
    ) -> SftpResult<Handle> {
        let flags = flags & !(OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::TRUNCATE);
        let p = path.to_owned();
        loop {
            let first = self.up_in_order().await?;
            first.open_channels(self.max_channels()).await;
            let session = first.channel(channel);
            let sent = session.raw.open(p.clone(), flags, FileAttributes::empty());
            match self.attempt(Op::Open, &session, sent).await {
                Ok(h) => return Ok(self.opened(&session, h.handle, Reopen::file(path, flags))),
                Err(SftpError::Transport(_)) => continue,
                Err(e) => return Err(e),
            }
        }
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

    /// Resolves when a session later than `after` is up (a reconnect), with its epoch and the
    /// number of handles the earlier sessions held (reopened on their next use); `None` once
    /// the link is gone.
    pub async fn reconnected(&self, after: u64) -> Option<(u64, usize)> {
        let mut rx = self.link.watch();
        loop {
            let up = match &*rx.borrow_and_update() {
                (epoch, LinkState::Up) if *epoch > after => Some(*epoch),
                _ => None,
            };
            if let Some(epoch) = up {
                return Some((epoch, self.handles.forget_before(epoch)));
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
        format!(
            "state={state} epoch={epoch} reconnects={} reopened={} reopen-failed={}",
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

    /// One attempt of a request on `session`: counted, bounded by our deadline; a failure of
    /// the session itself is reported to the link (which starts reconnecting).
    async fn attempt<T>(
        &self,
        op: Op,
        session: &Session,
        fut: impl Future<Output = Result<T, RawError>>,
    ) -> SftpResult<T> {
        self.counters.count(op);
        let _in_flight = InFlight::new(&self.in_flight);
        let result = match tokio::time::timeout(self.deadline, fut).await {
            Ok(r) => r.map_err(SftpError::from_raw),
            Err(_) => Err(SftpError::Timeout(self.deadline)),
        };
        let result = match result {
            // Where several channels are forced on a server not known to take them, a handle
            // it forgets is its session breaking (ProFTPD answers so once the packets of the
            // channels got mixed up): taken as a loss of the connection, so the request goes
            // again on the next one, with one channel.
            Err(SftpError::Status {
                code: FX_INVALID_HANDLE,
                message,
            }) if session.several_channels() && self.channels_at_risk() => {
                Err(SftpError::Transport(format!(
                    "the server lost a handle while several channels were in use ({message})"
                )))
            }
            other => other,
        };
        if let Err(SftpError::Transport(why)) = &result {
            if session.several_channels() {
                self.fall_back_after_crash(session.epoch, why);
            }
            self.link.lost(session.epoch, why);
        }
        result
    }

    /// Whether several channels are in use on a server not known to take them (forced by
    /// `-o max_conns`, not fallen back yet).
    fn channels_at_risk(&self) -> bool {
        self.server
            .read()
            .is_ok_and(|p| p.family != Family::OpenSsh && p.channels > 1)
    }

    /// The session died while several channels were in use: on a server not known to take
    /// them, every channel of that connection is ended (the server may leave the others open
    /// but silent: their requests would wait for their deadline, the mount busy meanwhile), and
    /// the next connection gets one channel ([`ServerProfile::fall_back_after_crash`]), said
    /// once.
    fn fall_back_after_crash(&self, epoch: u64, why: &str) {
        let (other, fell_back, channels) = match self.server.write() {
            Ok(mut profile) => {
                let channels = profile.channels;
                let other = profile.family != Family::OpenSsh;
                (other, profile.fall_back_after_crash(), channels)
            }
            Err(_) => return,
        };
        if !other {
            return;
        }
        self.link.end_channels_of(epoch);
        if fell_back {
            tracing::warn!(
                "the SFTP session died ({why}) while {channels} channels were in use on a \
                 server not known to take them: reconnecting with one channel, writes in order"
            );
        }
    }

    /// A request without a handle that may be sent again as it is (reads of the namespace,
    /// SETSTAT): repeated on the new session if its own died.
    async fn call<T>(
        &self,
        op: Op,
        req: impl for<'s> Fn(&'s RawSftpSession) -> Attempt<'s, T>,
    ) -> SftpResult<T> {
        Ok(self.call_in(op, req).await?.0)
    }

    /// [`Sftp::call`], also returning the session that answered.
    async fn call_in<T>(
        &self,
        op: Op,
        req: impl for<'s> Fn(&'s RawSftpSession) -> Attempt<'s, T>,
    ) -> SftpResult<(T, Arc<Session>)> {
        loop {
            let session = self.up_in_order().await?;
            match self.attempt(op, &session, req(&session.raw)).await {
                Err(SftpError::Transport(_)) => continue,
                other => return Ok((other?, session)),
            }
        }
    }

    /// A request that changes the namespace: if its session died before the answer, `done`
    /// looks on the new session whether it happened; it is sent again only if not.
    async fn call_checked<'a>(
        &'a self,
        op: Op,
        req: impl for<'s> Fn(&'s RawSftpSession) -> Attempt<'s, ()>,
        done: impl Fn() -> Outcome<'a>,
    ) -> SftpResult<()> {
        self.call_checked_then(op, req, done, None).await.map(drop)
    }

    /// [`Sftp::call_checked`], with an LSTAT of `lstat` (if given) queued right behind the
    /// request (see [`Sftp::then_lstat`]): the attributes after the change, in the same round
    /// trip.
    async fn call_checked_then<'a>(
        &'a self,
        op: Op,
        req: impl for<'s> Fn(&'s RawSftpSession) -> Attempt<'s, ()>,
        done: impl Fn() -> Outcome<'a>,
        lstat: Option<&str>,
    ) -> SftpResult<Option<SftpResult<FileAttributes>>> {
        let mut lost = false;
        loop {
            let session = self.up_in_order().await?;
            if lost && done().await? {
                tracing::info!("{} had happened before the connection was lost", op.name());
                return Ok(match lstat {
                    Some(path) => Some(self.lstat(path).await),
                    None => None,
                });
            }
            let sent = self.attempt(op, &session, req(&session.raw));
            let (result, attrs) = match lstat {
                Some(path) => {
                    let (r, a) = self.then_lstat(&session, sent, path).await;
                    (r, Some(a))
                }
                None => (sent.await, None),
            };
            match result {
                Err(SftpError::Transport(_)) => lost = true,
                other => return other.map(|()| attrs),
            }
        }
    }

    /// Runs `first` (a request on `session`) with an LSTAT of `path` queued right behind it on
    /// the same session. The server answers a session's requests in order, so the attributes are
    /// those after `first`: one round trip instead of two. Both packets are queued before
    /// either answer is awaited ([`queued`]). An LSTAT lost with its session is asked again
    /// (only when `first` succeeded; otherwise its answer does not matter).
    async fn then_lstat<T: Unpin>(
        &self,
        session: &Session,
        first: impl Future<Output = SftpResult<T>>,
        path: &str,
    ) -> (SftpResult<T>, SftpResult<FileAttributes>) {
        let lstat = self.attempt(Op::Lstat, session, session.raw.lstat(path.to_owned()));
        let (result, attrs) = in_order(first, lstat).await;
        let attrs = match attrs {
            Err(SftpError::Transport(_)) if result.is_ok() => self.lstat(path).await,
            other => other.map(|a| a.attrs),
        };
        (result, attrs)
    }

    /// A request on `handle`, repeated (with the handle reopened) on the new session if its own
    /// died.
    async fn call_on<T>(
        &self,
        op: Op,
        handle: &Handle,
        req: impl for<'s> Fn(&'s RawSftpSession, String) -> Attempt<'s, T>,
    ) -> SftpResult<T> {
        loop {
            let (session, lease) = self.leased(op, handle, u64::MAX).await?;
            let result = self
                .attempt(op, &session, req(&session.raw, lease.raw().to_owned()))
                .await;
            drop(lease);
            match result {
                Err(SftpError::Transport(_)) => continue,
                other => return other,
            }
        }
    }

    /// The session to send on and a lease on `handle` for the request `op` there, waiting for
    /// a reconnect if needed (see [`Sftp::lease_on`]); `seq`: [`u64::MAX`], or a write being
    /// resent, which waits only for the lost writes queued before it.
    async fn leased<'h>(
        &self,
        op: Op,
        handle: &'h Handle,
        seq: u64,
    ) -> SftpResult<(Arc<Session>, Lease<'h>)> {
        loop {
            let session = self.channel_of(handle, seq).await?;
            match self.lease_on(op, handle, &session, seq).await {
                // That session died too, or the handle was reopened on a later one.
                Err(SftpError::Transport(_)) => continue,
                other => return Ok((session, other?)),
            }
        }
    }

    /// A lease on `handle` for the request `op` on `session`: the handle is reopened first if
    /// it belongs to an earlier session, and checked against the handles we hold. Every write
    /// of the handle queued before write `seq` and lost with an earlier session is sent again
    /// first, so the server applies requests in the order the program made them.
    async fn lease_on<'h>(
        &self,
        op: Op,
        handle: &'h Handle,
        session: &Session,
        seq: u64,
    ) -> SftpResult<Lease<'h>> {
        if handle.epoch() < session.epoch {
            self.reopen(handle, session).await?;
        }
        handle.write_turn(seq, session.epoch).await;
        let lease = handle.lease().await?;
        if lease.epoch() != session.epoch {
            // Reopened on a later session meanwhile: the caller starts over on that one.
            return Err(SftpError::Transport("the session changed".into()));
        }
        let key = (lease.epoch(), session.channel, lease.raw().to_owned());
        if !self.handles.check(op.name(), &key) {
            return Err(SftpError::HandleClosed);
        }
        Ok(lease)
    }

    /// Opens `handle`'s file (or directory) again on `session`, same path and access mode,
    /// never creating or truncating. A file whose name is gone cannot be: EIO for it only.
    async fn reopen(&self, handle: &Handle, session: &Session) -> SftpResult<()> {
        let _one = handle.reopen_lock().lock().await;
        if handle.epoch() >= session.epoch || handle.is_closed() {
            return Ok(());
        }
        let reopen = handle.reopen_info();
        let Some(path) = reopen.path() else {
            self.reopen_failed.fetch_add(1, Ordering::Relaxed);
            return Err(SftpError::Lost(
                "the file has no name left to reopen after the reconnect".into(),
            ));
        };
        let raw = match reopen.flags {
            Some(flags) => {
                let p = path.clone();
                self.attempt(
                    Op::Open,
                    session,
                    session.raw.open(p, flags, FileAttributes::empty()),
                )
                .await
                .map(|h| h.handle)
            }
            None => {
                let p = path.clone();
                self.attempt(Op::Opendir, session, session.raw.opendir(p))
                    .await
                    .map(|h| h.handle)
            }
        };
        match raw {
            Ok(raw) => {
                self.handles.opened(session.epoch, session.channel, &raw);
                handle.reopened(session.epoch, raw);
                self.reopened.fetch_add(1, Ordering::Relaxed);
                tracing::info!("reopened {path} after the reconnect");
                Ok(())
            }
            Err(SftpError::Status { code, message }) => {
                self.reopen_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("cannot reopen {path} after the reconnect: {message}");
                Err(SftpError::Lost(format!(
                    "{path} could not be reopened after the reconnect: {message} (SFTP status {code})"
                )))
            }
            Err(e) => Err(e),
        }
    }

    /// Wraps a handle string the server just gave us on `session`.
    fn opened(&self, session: &Session, raw: String, reopen: Reopen) -> Handle {
        self.handles.opened(session.epoch, session.channel, &raw);
        Handle::new(
            raw,
            session.epoch,
            session.channel,
            reopen,
            self.me.clone(),
            Arc::clone(&self.pending_writes),
        )
    }

    /// LSTAT: attributes of `path` without following a final symlink.
    pub async fn lstat(&self, path: &str) -> SftpResult<FileAttributes> {
        let p = path.to_owned();
        let attrs = self
            .call(Op::Lstat, |raw| Box::pin(raw.lstat(p.clone())))
            .await?;
        Ok(attrs.attrs)
    }

    /// STAT: attributes of `path`, following symlinks.
    pub async fn stat(&self, path: &str) -> SftpResult<FileAttributes> {
        let p = path.to_owned();
        let attrs = self
            .call(Op::Stat, |raw| Box::pin(raw.stat(p.clone())))
            .await?;
        Ok(attrs.attrs)
    }

    /// FSTAT: attributes of an open handle.
    pub async fn fstat(&self, handle: &Handle) -> SftpResult<FileAttributes> {
        let attrs = self
            .call_on(Op::Fstat, handle, |raw, h| Box::pin(raw.fstat(h)))
            .await?;
        Ok(attrs.attrs)
    }

    /// SETSTAT (follows symlinks).
    pub async fn setstat(&self, path: &str, attrs: FileAttributes) -> SftpResult<()> {
        let p = path.to_owned();
        self.call(Op::Setstat, |raw| {
            Box::pin(raw.setstat(p.clone(), attrs.clone()).map_ok(drop))
        })
        .await
    }

    /// SETSTAT with an LSTAT of `path` queued behind it: the attributes after the change (the
    /// outer error is the SETSTAT's, the inner one the LSTAT's).
    pub async fn setstat_lstat(
        &self,
        path: &str,
        attrs: FileAttributes,
    ) -> SftpResult<SftpResult<FileAttributes>> {
        let p = path.to_owned();
        loop {
            let session = self.up_in_order().await?;
            let sent = session.raw.setstat(p.clone(), attrs.clone()).map_ok(drop);
            let sent = self.attempt(Op::Setstat, &session, sent);
            match self.then_lstat(&session, sent, path).await {
                (Err(SftpError::Transport(_)), _) => continue,
                (result, attrs) => return result.map(|()| attrs),
            }
        }
    }

    /// FSETSTAT on an open handle.
    pub async fn fsetstat(&self, handle: &Handle, attrs: FileAttributes) -> SftpResult<()> {
        self.call_on(Op::Fsetstat, handle, |raw, h| {
            Box::pin(raw.fsetstat(h, attrs.clone()).map_ok(drop))
        })
        .await
    }

    /// FSETSTAT with an FSTAT of the handle queued right behind it: the attributes after the
    /// change in the same round trip (the outer error is the FSETSTAT's, the inner one the
    /// FSTAT's).
    pub async fn fsetstat_fstat(
        &self,
        handle: &Handle,
        attrs: FileAttributes,
    ) -> SftpResult<SftpResult<FileAttributes>> {
        loop {
            let (session, lease) = self.leased(Op::Fsetstat, handle, u64::MAX).await?;
            let raw = lease.raw().to_owned();
            let set = session
                .raw
                .fsetstat(raw.clone(), attrs.clone())
                .map_ok(drop);
            let set = self.attempt(Op::Fsetstat, &session, set);
            let stat = self.attempt(Op::Fstat, &session, session.raw.fstat(raw));
            let (result, after) = in_order(set, stat).await;
            drop(lease);
            match result {
                Err(SftpError::Transport(_)) => continue,
                Err(e) => return Err(e),
                Ok(()) => {
                    return Ok(match after {
                        Err(SftpError::Transport(_)) => self.fstat(handle).await,
                        other => other.map(|a| a.attrs),
                    });
                }
            }
        }
    }

    /// `lsetstat@openssh.com`: SETSTAT that changes a symlink itself, not its target.
    pub async fn lsetstat(&self, path: &str, attrs: FileAttributes) -> SftpResult<()> {
        let mut data = encode_string(path);
        let attrs = russh_sftp::ser::to_bytes(&attrs)
            .map_err(|e| SftpError::Protocol(format!("encoding attributes: {e}")))?;
        data.extend_from_slice(&attrs);
        expect_ok(
            self.call(Op::Lsetstat, |raw| {
                Box::pin(raw.extended("lsetstat@openssh.com", data.clone()))
            })
            .await?,
        )
    }

    /// OPEN: returns the server's handle. After a reconnect it is reopened with these flags,
    /// less CREATE, EXCLUDE and TRUNCATE. An exclusive create whose answer was lost with the
    /// connection counts as done when the file is there, empty.
    pub async fn open(
        &self,
        path: &str,
        flags: OpenFlags,
        attrs: FileAttributes,
    ) -> SftpResult<Handle> {
        Ok(self.open_then(path, flags, attrs, false).await?.0)
    }

    /// [`Sftp::open`] with an LSTAT of `path` queued right behind the OPEN: the attributes of
    /// the file as opened (created, truncated), in the same round trip.
    pub async fn open_lstat(
        &self,
        path: &str,
        flags: OpenFlags,
        attrs: FileAttributes,
    ) -> SftpResult<(Handle, SftpResult<FileAttributes>)> {
        let (handle, attrs) = self.open_then(path, flags, attrs, true).await?;
        let attrs = match attrs {
            Some(attrs) => attrs,
            None => self.lstat(path).await,
        };
        Ok((handle, attrs))
    }

    async fn open_then(
        &self,
        path: &str,
        flags: OpenFlags,
        attrs: FileAttributes,
        lstat: bool,
    ) -> SftpResult<(Handle, Option<SftpResult<FileAttributes>>)> {
        let p = path.to_owned();
        let mut flags_now = flags;
        loop {
            let session = self.up_in_order().await?;
            let sent = self.attempt(
                Op::Open,
                &session,
                session.raw.open(p.clone(), flags_now, attrs.clone()),
            );
            let (sent, after) = match lstat {
                true => {
                    let (r, a) = self.then_lstat(&session, sent, path).await;
                    (r, Some(a))
                }
                false => (sent.await, None),
            };
            match sent {
                Ok(h) => {
                    let handle = self.opened(&session, h.handle, Reopen::file(path, flags));
                    return Ok((handle, after));
                }
                Err(SftpError::Transport(_)) if flags.contains(OpenFlags::EXCLUDE) => {
                    // The create may have happened: if the file is there and empty, it is ours.
                    match self.lstat(path).await {
                        Ok(a) if a.size == Some(0) => {
                            flags_now = flags
                                & !(OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::TRUNCATE);
                        }
                        _ => {}
                    }
                }
                Err(SftpError::Transport(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// CLOSE a file or directory handle: waits for the requests in flight on it, refuses new
    /// ones, and sends the one CLOSE it will get (a handle closed already sends nothing; one of
    /// a session that died is closed with it).
    pub async fn close(&self, handle: &Handle) -> SftpResult<()> {
        match handle.begin_close().await {
            Some((epoch, raw)) => self.close_raw(epoch, handle.channel(), &raw).await,
            None => Ok(()),
        }
    }

    /// Sends CLOSE for a handle string whose close has begun (see [`Sftp::close`]).
    pub(super) async fn close_raw(&self, epoch: u64, channel: usize, raw: &str) -> SftpResult<()> {
        let session = self.link.session().channel(channel);
        if session.epoch != epoch {
            // Closed with its session; the registry forgets it at the reconnect.
            return Ok(());
        }
        if !self
            .handles
            .closing(&(epoch, session.channel, raw.to_owned()))
        {
            return Err(SftpError::HandleClosed);
        }
        match self
            .attempt(Op::Close, &session, session.raw.close(raw.to_owned()))
            .await
        {
            // The server closes every handle of a session that ends.
            Err(SftpError::Transport(_)) => Ok(()),
            other => other.map(drop),
        }
    }

    /// OPENDIR: returns the server's handle.
    pub async fn opendir(&self, path: &str) -> SftpResult<Handle> {
        let p = path.to_owned();
        let (h, session) = self
            .call_in(Op::Opendir, |raw| Box::pin(raw.opendir(p.clone())))
            .await?;
        Ok(self.opened(&session, h.handle, Reopen::dir(path)))
    }

    /// One READDIR page; `None` at the end of the directory. `restarted`: the handle was
    /// reopened after a reconnect since the last page, so this page starts the listing again.
    pub async fn readdir(&self, handle: &Handle) -> SftpResult<(Option<Vec<DirEntry>>, bool)> {
        let before = handle.epoch();
        let page = match self
            .call_on(Op::Readdir, handle, |raw, h| Box::pin(raw.readdir(h)))
            .await
        {
            Ok(name) => Some(
                name.files
                    .into_iter()
                    .map(|f| DirEntry {
                        nlink: parse_longname_nlink(&f.longname),
                        name: f.filename,
                        attrs: f.attrs,
                    })
                    .collect(),
            ),
            Err(e) if e.status() == Some(FX_EOF) => None,
            Err(e) => return Err(e),
        };
        Ok((page, handle.epoch() != before))
    }

    /// Reads `len` bytes at `offset`, split into READs sent in parallel. Returns fewer bytes only
    /// at end of file. Short answers in the middle are completed with further READs, except at
    /// `eof_at` (the file's size, when the caller knows it): a short answer that reaches it is
    /// the end, which saves a round trip per small file. Read again on the new session (the
    /// handle reopened) if the connection died meanwhile.
    pub async fn read_at(
        &self,
        handle: &Handle,
        offset: u64,
        len: u32,
        eof_at: Option<u64>,
    ) -> SftpResult<Vec<u8>> {
        loop {
            let (session, lease) = self.leased(Op::Read, handle, u64::MAX).await?;
            match self
                .read_at_on(&session, lease.raw(), offset, len, eof_at)
                .await
            {
                Err(SftpError::Transport(_)) => continue,
                other => return other,
            }
        }
    }

    async fn read_at_on(
        &self,
        session: &Session,
        handle: &str,
        offset: u64,
        len: u32,
        eof_at: Option<u64>,
    ) -> SftpResult<Vec<u8>> {
        let chunk = self.read_len;
        let pieces = (0..len.div_ceil(chunk)).map(|i| {
            let start = offset + u64::from(i * chunk);
            let want = chunk.min(len - i * chunk);
            self.read_full(session, handle, start, want, eof_at)
        });
        let results = futures_util::future::try_join_all(pieces).await?;
        let mut out = Vec::with_capacity(len as usize);
        for (piece, want) in results {
            let short = piece.len() < want as usize;
            out.extend_from_slice(&piece);
            if short {
                break;
            }
        }
        Ok(out)
    }

    /// One READ of at most [`Sftp::read_len`] bytes; an empty result means end of file.
    async fn read(
        &self,
        session: &Session,
        handle: &str,
        offset: u64,
        len: u32,
    ) -> SftpResult<Vec<u8>> {
        let fut = session
            .raw
            .read(handle.to_owned(), offset, len.min(self.read_len));
        match self.attempt(Op::Read, session, fut).await {
            Ok(data) => Ok(data.data),
            Err(e) if e.status() == Some(FX_EOF) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Reads up to `want` bytes at `offset`, looping over short answers until EOF (or `eof_at`).
    async fn read_full(
        &self,
        session: &Session,
        handle: &str,
        offset: u64,
        want: u32,
        eof_at: Option<u64>,
    ) -> SftpResult<(Vec<u8>, u32)> {
        let mut buf = self.read(session, handle, offset, want).await?;
        let at_end = |got: usize| eof_at.is_some_and(|end| offset + got as u64 >= end);
        while !buf.is_empty() && buf.len() < want as usize && !at_end(buf.len()) {
            let got = buf.len() as u32;
            let more = self
                .read(session, handle, offset + u64::from(got), want - got)
                .await?;
            if more.is_empty() {
                break;
            }
            buf.extend_from_slice(&more);
        }
        Ok((buf, want))
    }

    /// Sends `data` at `offset` as WRITEs split to the server's limit, all queued on the session
    /// before this returns (so they reach the server in program order, ahead of any request made
    /// afterwards, the handle's CLOSE included); the returned future resolves once the server
    /// acknowledged every one. A WRITE whose session died unacknowledged is sent again on the
    /// new session (the handle reopened), after every earlier one of the handle, so the file
    /// ends up as the program wrote it.
    pub async fn send_write(
        self: &Arc<Self>,
        handle: &Handle,
        offset: u64,
        data: &[u8],
    ) -> SftpResult<impl Future<Output = SftpResult<()>> + Send + 'static> {
        let (session, lease) = self.leased(Op::Write, handle, u64::MAX).await?;
        let len = self.write_len as usize;
        let pieces: Vec<_> = data
            .chunks(len)
            .enumerate()
            .map(|(i, piece)| {
                let at = offset + (i * len) as u64;
                let queued_write = handle.write_queued(session.epoch);
                let (sftp, session, handle, piece, raw) = (
                    Arc::clone(self),
                    Arc::clone(&session),
                    handle.clone(),
                    piece.to_vec(),
                    lease.raw().to_owned(),
                );
                // Polled once right here: the packet is queued before send_write returns.
                queued(Box::pin(async move {
                    let first = session.raw.write(raw, at, piece.clone());
                    let result = match sftp.attempt(Op::Write, &session, first).await {
                        Err(SftpError::Transport(_)) => {
                            sftp.write_again(&handle, queued_write.seq(), at, piece)
                                .await
                        }
                        other => other.map(drop),
                    };
                    drop(queued_write);
                    result
                }))
            })
            .collect();
        drop(lease);
        Ok(async move {
            futures_util::future::try_join_all(pieces).await?;
            Ok(())
        })
    }

    /// Sends FSETSTAT on `handle`, queued on the session before this returns (so it reaches
    /// the server after the writes queued before it and before any request made afterwards);
    /// the returned future resolves with the server's answer. It counts among the session's
    /// pending writes: if its session dies it is sent again in its place among them, and
    /// nothing made after it overtakes it (see [`PendingWrites`]).
    pub async fn send_fsetstat(
        self: &Arc<Self>,
        handle: &Handle,
        attrs: FileAttributes,
    ) -> SftpResult<impl Future<Output = SftpResult<()>> + Send + 'static> {
        let (session, lease) = self.leased(Op::Fsetstat, handle, u64::MAX).await?;
        let queued_change = handle.write_queued(session.epoch);
        let (sftp, handle, raw) = (Arc::clone(self), handle.clone(), lease.raw().to_owned());
        let sent = queued(Box::pin(async move {
            let first = session.raw.fsetstat(raw, attrs.clone()).map_ok(drop);
            let result = match sftp.attempt(Op::Fsetstat, &session, first).await {
                Err(SftpError::Transport(_)) => {
                    let seq = queued_change.seq();
                    sftp.send_again(Op::Fsetstat, &handle, seq, |raw, h| {
                        Box::pin(raw.fsetstat(h, attrs.clone()).map_ok(drop))
                    })
                    .await
                }
                other => other,
            };
            drop(queued_change);
            result
        }));
        drop(lease);
        Ok(sent)
    }

    /// Sends write `seq` again after its session died, in order (see [`Sftp::send_write`]).
    async fn write_again(
        &self,
        handle: &Handle,
        seq: u64,
        at: u64,
        piece: Vec<u8>,
    ) -> SftpResult<()> {
        self.send_again(Op::Write, handle, seq, |raw, h| {
            Box::pin(raw.write(h, at, piece.clone()).map_ok(drop))
        })
        .await
    }

    /// Sends the ordered request `seq` on `handle` (a write, or an FSETSTAT queued behind the
    /// writes) again after its session died: on the new session, once every earlier one was
    /// sent again there (see [`PendingWrites`]).
    async fn send_again(
        &self,
        op: Op,
        handle: &Handle,
        seq: u64,
        req: impl for<'s> Fn(&'s RawSftpSession, String) -> Attempt<'s, ()>,
    ) -> SftpResult<()> {
        loop {
            let (session, lease) = self.leased(op, handle, seq).await?;
            let sent = queued(Box::pin(self.attempt(
                op,
                &session,
                req(&session.raw, lease.raw().to_owned()),
            )));
            handle.write_resent(seq, session.epoch);
            drop(lease);
            match sent.await {
                Err(SftpError::Transport(_)) => continue,
                other => return other,
            }
        }
    }

    /// REMOVE a file. If the connection died before the answer, a file no longer there counts
    /// as removed.
    pub async fn remove(&self, path: &str) -> SftpResult<()> {
        let p = path.to_owned();
        self.call_checked(
            Op::Remove,
            |raw| Box::pin(raw.remove(p.clone()).map_ok(drop)),
            || Box::pin(self.is_gone(path)),
        )
        .await
    }

    /// MKDIR with the given permissions. After a lost answer, a directory there counts as made.
    pub async fn mkdir(&self, path: &str, mode: u32) -> SftpResult<()> {
        self.mkdir_then(path, mode, false).await.map(drop)
    }

    /// [`Sftp::mkdir`] with an LSTAT of the new directory queued right behind it (the outer
    /// error is the MKDIR's, the inner one the LSTAT's).
    pub async fn mkdir_lstat(
        &self,
        path: &str,
        mode: u32,
    ) -> SftpResult<SftpResult<FileAttributes>> {
        match self.mkdir_then(path, mode, true).await? {
            Some(attrs) => Ok(attrs),
            None => Ok(self.lstat(path).await),
        }
    }

    async fn mkdir_then(
        &self,
        path: &str,
        mode: u32,
        lstat: bool,
    ) -> SftpResult<Option<SftpResult<FileAttributes>>> {
        let attrs = FileAttributes {
            permissions: Some(mode),
            ..FileAttributes::empty()
        };
        let p = path.to_owned();
        self.call_checked_then(
            Op::Mkdir,
            |raw| Box::pin(raw.mkdir(p.clone(), attrs.clone()).map_ok(drop)),
            || {
                Box::pin(async move {
                    Ok(matches!(self.lstat(path).await, Ok(a) if a.permissions.is_some_and(|m| m & libc::S_IFMT == libc::S_IFDIR)))
                })
            },
            lstat.then_some(path),
        )
        .await
    }

    /// RMDIR. After a lost answer, a directory no longer there counts as removed.
    pub async fn rmdir(&self, path: &str) -> SftpResult<()> {
        let p = path.to_owned();
        self.call_checked(
            Op::Rmdir,
            |raw| Box::pin(raw.rmdir(p.clone()).map_ok(drop)),
            || Box::pin(self.is_gone(path)),
        )
        .await
    }

    /// `posix-rename@openssh.com` (replaces the target like rename(2)) when the server has it,
    /// otherwise plain RENAME (which on OpenSSH refuses to replace). After a lost answer, the
    /// rename counts as done when the source is gone and the target is there.
    pub async fn posix_rename(&self, from: &str, to: &str) -> SftpResult<()> {
        if !self.has_extension("posix-rename@openssh.com") {
            return self.rename_noreplace(from, to).await;
        }
        let mut data = encode_string(from);
        data.extend_from_slice(&encode_string(to));
        self.call_checked(
            Op::Rename,
            |raw| {
                let data = data.clone();
                Box::pin(async move {
                    match raw.extended("posix-rename@openssh.com", data).await? {
                        Packet::Status(s) if s.status_code == StatusCode::Ok => Ok(()),
                        Packet::Status(s) => Err(RawError::Status(s)),
                        _ => Err(RawError::UnexpectedPacket),
                    }
                })
            },
            || Box::pin(self.renamed(from, to)),
        )
        .await
    }

    /// Plain SFTP RENAME: fails if the target exists.
    pub async fn rename_noreplace(&self, from: &str, to: &str) -> SftpResult<()> {
        let (f, t) = (from.to_owned(), to.to_owned());
        self.call_checked(
            Op::Rename,
            |raw| Box::pin(raw.rename(f.clone(), t.clone()).map_ok(drop)),
            || Box::pin(self.renamed(from, to)),
        )
        .await
    }

    /// Whether `path` is gone (after a REMOVE or RMDIR whose answer was lost).
    async fn is_gone(&self, path: &str) -> SftpResult<bool> {
        match self.lstat(path).await {
            Err(e) if e.status() == Some(FX_NO_SUCH_FILE) => Ok(true),
            Err(e) => Err(e),
            Ok(_) => Ok(false),
        }
    }

    /// Whether a rename of `from` to `to` whose answer was lost happened.
    async fn renamed(&self, from: &str, to: &str) -> SftpResult<bool> {
        Ok(self.is_gone(from).await? && self.lstat(to).await.is_ok())
    }

    /// READLINK: the target of a symlink.
    pub async fn readlink(&self, path: &str) -> SftpResult<String> {
        let p = path.to_owned();
        let name = self
            .call(Op::Readlink, |raw| Box::pin(raw.readlink(p.clone())))
            .await?;
        name.files
            .into_iter()
            .next()
            .map(|f| f.filename)
            .ok_or_else(|| SftpError::Protocol("empty READLINK answer".into()))
    }

    /// SYMLINK: creates `link` pointing at `target`. After a lost answer, a link there with
    /// that target counts as made.
    ///
    /// OpenSSH's server reads the two paths in the opposite order from the draft standard (and
    /// its clients, the C sshfs included, send them that way, so the target goes first, and
    /// most servers read them so); servers known to read the draft's order get that
    /// ([`ServerProfile::symlink_order`]).
    pub async fn symlink(&self, link: &str, target: &str) -> SftpResult<()> {
        let (l, t) = (link.to_owned(), target.to_owned());
        let (first, second) = match self.server().symlink_order {
            SymlinkOrder::OpenSsh => (t, l),
            SymlinkOrder::Draft => (l, t),
        };
        self.call_checked(
            Op::Symlink,
            |raw| Box::pin(raw.symlink(first.clone(), second.clone()).map_ok(drop)),
            || Box::pin(async move { Ok(self.readlink(link).await.is_ok_and(|t| t == target)) }),
        )
        .await
    }

    /// `hardlink@openssh.com`. After a lost answer, a name there counts as made.
    pub async fn hardlink(&self, existing: &str, new: &str) -> SftpResult<()> {
        let (e, n) = (existing.to_owned(), new.to_owned());
        self.call_checked(
            Op::Link,
            |raw| Box::pin(raw.hardlink(e.clone(), n.clone()).map_ok(drop)),
            || Box::pin(async move { Ok(self.lstat(new).await.is_ok()) }),
        )
        .await
    }

    /// `fsync@openssh.com` on an open handle. Servers without it: nothing to do (the data was
    /// acknowledged already).
    pub async fn fsync(&self, handle: &Handle) -> SftpResult<()> {
        if !self.has_extension("fsync@openssh.com") {
            return Ok(());
        }
        self.call_on(Op::Fsync, handle, |raw, h| {
            Box::pin(raw.fsync(h).map_ok(drop))
        })
        .await
    }

    /// `copy-data` (OpenSSH 9.0+): the server copies `len` bytes (0: to the end of the file)
    /// from `from` at `from_off` to `to` at `to_off`, between two handles it holds, so no data
    /// crosses the link. The answer does not say how many bytes were copied (the copy stops
    /// at the source's end). Both handles must live on the same channel (one `sftp-server`).
    /// A positional copy may be repeated: it is sent again, both handles reopened, when its
    /// session dies. Only call it when [`Sftp::has_extension`]`("copy-data")`.
    pub async fn copy_data(
        &self,
        from: &Handle,
        from_off: u64,
        len: u64,
        to: &Handle,
        to_off: u64,
    ) -> SftpResult<()> {
        if from.channel() != to.channel() {
            return Err(SftpError::Protocol(
                "copy-data between handles of two channels".into(),
            ));
        }
        loop {
            let (session, from_lease) = self.leased(Op::CopyData, from, u64::MAX).await?;
            let to_lease = match self.lease_on(Op::CopyData, to, &session, u64::MAX).await {
                Err(SftpError::Transport(_)) => continue,
                other => other?,
            };
            let mut data = encode_string(from_lease.raw());
            data.extend_from_slice(&from_off.to_be_bytes());
            data.extend_from_slice(&len.to_be_bytes());
            data.extend_from_slice(&encode_string(to_lease.raw()));
            data.extend_from_slice(&to_off.to_be_bytes());
            let sent = session.raw.extended("copy-data", data);
            let result = self
                .attempt(Op::CopyData, &session, sent)
                .await
                .and_then(expect_ok);
            drop((from_lease, to_lease));
            match result {
                Err(SftpError::Transport(_)) => continue,
                other => return other,
            }
        }
    }

    /// `statvfs@openssh.com`.
    pub async fn statvfs(&self, path: &str) -> SftpResult<Statvfs> {
        let p = path.to_owned();
        self.call(Op::Statfs, |raw| Box::pin(raw.statvfs(p.clone())))
            .await
    }

    /// REALPATH: canonical absolute form of `path` ("." is the login directory).
    pub async fn realpath(&self, path: &str) -> SftpResult<String> {
        let p = path.to_owned();
        let name = self
            .call(Op::Realpath, |raw| Box::pin(raw.realpath(p.clone())))
            .await?;
        name.files
            .into_iter()
            .next()
            .map(|f| f.filename)
            .ok_or_else(|| SftpError::Protocol("empty REALPATH answer".into()))
    }
}

/// Two requests on one session, `first`'s packet queued before `second`'s (see [`queued`]),
/// both answers awaited together: the server answers a session's requests in order, so
/// `second` sees what `first` did, in the same round trip.
async fn in_order<A, B>(first: A, second: B) -> (A::Output, B::Output)
where
    A: Future,
    B: Future,
    A::Output: Unpin,
    B::Output: Unpin,
{
    let first = queued(Box::pin(first));
    let second = queued(Box::pin(second));
    tokio::join!(first, second)
}

/// Polls a request future once, which puts its packet on the session's queue right away
/// (russh-sftp sends on the first poll, before its first await), and keeps it to be awaited
/// later; a request that finished at once keeps its result.
fn queued<F: Future>(mut fut: Pin<Box<F>>) -> Queued<F> {
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => Queued::Done(Some(out)),
        Poll::Pending => Queued::Sent(fut),
    }
}

/// A request already on the session's queue (see [`queued`]).
enum Queued<F: Future> {
    /// Sent, answer pending.
    Sent(Pin<Box<F>>),
    /// Finished on the first poll; taken once.
    Done(Option<F::Output>),
}

impl<F: Future> Future for Queued<F>
where
    F::Output: Unpin,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.get_mut() {
            Queued::Sent(fut) => fut.as_mut().poll(cx),
            Queued::Done(out) => match out.take() {
                Some(out) => Poll::Ready(out),
                None => Poll::Pending,
            },
        }
    }
}

/// Encodes an SSH `string` (u32 length + bytes) as russh-sftp encodes every other string: a
/// name it decoded from bytes that are not UTF-8 goes back as those bytes (vendor/README.md).
fn encode_string(s: &str) -> Vec<u8> {
    russh_sftp::ser::to_bytes(&s).map_or_else(
        |_| {
            let mut v = Vec::with_capacity(4 + s.len());
            v.extend_from_slice(&(s.len() as u32).to_be_bytes());
            v.extend_from_slice(s.as_bytes());
            v
        },
        |b| b.to_vec(),
    )
}

/// An EXTENDED request's answer must be a Status OK.
fn expect_ok(packet: Packet) -> SftpResult<()> {
    match packet {
        Packet::Status(s) if s.status_code == StatusCode::Ok => Ok(()),
        Packet::Status(s) => Err(SftpError::Status {
            code: u32::from(s.status_code),
            message: s.error_message,
        }),
        _ => Err(SftpError::Protocol(
            "unexpected answer to an extended request".into(),
        )),
    }
}

/// The link count in an `ls -l` style long name: "-rw-r--r--    2 user group ...".
fn parse_longname_nlink(longname: &str) -> Option<u32> {
    let mut fields = longname.split_ascii_whitespace();
    let mode = fields.next()?;
    if mode.len() < 10 {
        return None;
    }
    fields.next()?.parse().ok()
}

/// Counts one request in flight for as long as it lives (also when its future is dropped).
struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> InFlight<'a> {
    fn new(n: &'a std::sync::atomic::AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Self(n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longname_nlink() {
        assert_eq!(
            parse_longname_nlink("-rw-r--r--    2 root     root            0 Nov 21 14:50 a"),
            Some(2)
        );
        assert_eq!(parse_longname_nlink(""), None);
        assert_eq!(parse_longname_nlink("a"), None);
    }

    #[test]
    fn ssh_string() {
        assert_eq!(encode_string("ab"), vec![0, 0, 0, 2, b'a', b'b']);
    }

    /// OpenSSH's handle 128 is the bytes 00 00 00 80, not UTF-8: the handle sent back in a
    /// request must be those bytes, not a lossy U+FFFD (the server would not know it, and every
    /// READ, WRITE and CLOSE on it would fail: the stray requests of the concurrency issue).
    #[test]
    fn handles_that_are_not_utf8_go_back_unchanged() {
        use russh_sftp::protocol::Close;
        for number in [0x80u32, 0xff, 0x1_80, 0x7f] {
            let raw = number.to_be_bytes();
            let mut reply = bytes::BytesMut::new();
            reply.extend_from_slice(&[102]); // SSH_FXP_HANDLE
            reply.extend_from_slice(&7u32.to_be_bytes());
            reply.extend_from_slice(&4u32.to_be_bytes());
            reply.extend_from_slice(&raw);
            let mut reply = reply.freeze();
            let handle = match Packet::try_from(&mut reply) {
                Ok(Packet::Handle(h)) => h.handle,
                other => panic!("not a HANDLE packet: {other:?}"),
            };
            let close = bytes::Bytes::try_from(Packet::Close(Close { id: 8, handle }));
            let close = close.unwrap_or_default();
            assert!(
                close.ends_with(&[0, 0, 0, 4, raw[0], raw[1], raw[2], raw[3]]),
                "handle {number:#x} sent back as {close:02x?}"
            );
        }
        assert_eq!(encode_string("a\u{10FF80}"), vec![0, 0, 0, 2, b'a', 0x80]);
    }
}
