//! The one request runner: how a request is sent, on which session, counted and bounded by
//! our deadline, what rides behind it, and what happens when its session dies (sent again,
//! checked first, handles reopened, writes resent in order).
//!
//! A [`Request`] names its target ([`Target`]: a path, a channel, one or two handles, or a
//! write being sent again), what rides behind it ([`Behind`]: nothing, an LSTAT or an FSTAT,
//! queued on the same session right after it) and how to send it; its retry policy comes
//! from the operation ([`Op::retry`]). Everything a reconnect must get right is here: a
//! request waits until the writes lost with an earlier session were sent again
//! ([`PendingWrites`](super::handle::PendingWrites)), a handle is leased for the request and
//! reopened first if it belongs to an earlier session, and a write sent again goes after
//! every earlier one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as RawError;
use russh_sftp::protocol::FileAttributes;

use super::counters::{Op, Retry};
use super::error::{FX_INVALID_HANDLE, SftpError, SftpResult};
use super::handle::{Handle, Lease, Reopen};
use super::link::Session;
use super::server::Family;
use super::{Attempt, InFlight, Sftp};

/// Where a request goes.
#[derive(Clone, Copy)]
pub(super) enum Target<'h> {
    /// A path: the first channel of the current connection.
    Path,
    /// Channel `k` of the current connection (the channels opened first if that was not
    /// tried yet; channel 0 on a connection with fewer).
    Channel(usize),
    /// An open handle: its channel, the handle leased (reopened first if it belongs to an
    /// earlier session).
    Handle(&'h Handle),
    /// Two handles of one channel (a server-side copy between them), both leased.
    Handles(&'h Handle, &'h Handle),
    /// Ordered request `seq` of a handle (a write, or an FSETSTAT queued behind the writes)
    /// sent again after its session died: once every earlier one was sent again; the lease is
    /// let go once the packet is queued.
    Resend(&'h Handle, u64),
}

/// What rides behind a request: queued on the same session right after it, so its answer
/// shows what the request did, in the same round trip.
#[derive(Clone, Copy)]
pub(super) enum Behind<'p> {
    /// Nothing.
    Nothing,
    /// An LSTAT of this path.
    Lstat(&'p str),
    /// An FSTAT of the request's handle.
    Fstat,
}

/// What the stat queued behind a request answered.
#[derive(Debug, Clone)]
pub enum After {
    /// No stat was asked for.
    NotAsked,
    /// The attributes after the request.
    Attrs(FileAttributes),
    /// The stat failed (the request itself succeeded).
    Failed(SftpError),
}

impl After {
    /// The attributes, if the stat was asked for and answered.
    pub fn attrs(self) -> Option<FileAttributes> {
        match self {
            After::Attrs(attrs) => Some(attrs),
            After::NotAsked | After::Failed(_) => None,
        }
    }

    fn from_result(result: SftpResult<FileAttributes>) -> After {
        match result {
            Ok(attrs) => After::Attrs(attrs),
            Err(e) => After::Failed(e),
        }
    }
}

/// The handle strings a request was leased (empty for a path).
#[derive(Default, Clone)]
pub(super) struct Raw {
    first: String,
    second: String,
}

impl Raw {
    /// The handle string of the request's (first) handle.
    pub(super) fn handle(&self) -> String {
        self.first.clone()
    }

    /// The handle string of the second handle ([`Target::Handles`]).
    pub(super) fn other(&self) -> String {
        self.second.clone()
    }
}

/// How a request is sent on a session, with the handle strings it was leased: one or more
/// attempts ([`Sftp::attempt`]).
pub(super) type Sending<'r, T> =
    Box<dyn Fn(Arc<Session>, Raw) -> BoxFuture<'r, SftpResult<T>> + std::marker::Send + Sync + 'r>;

/// For a request whose policy is [`Retry::CheckFirst`]: what it looks for on the new session
/// after its own died unanswered. `Some`: it happened (with this value); `None`: send it
/// again. It may also change what is sent again (an exclusive create found done).
pub(super) type Check<'r, T> =
    Box<dyn Fn() -> BoxFuture<'r, SftpResult<Option<T>>> + std::marker::Send + Sync + 'r>;

/// One request for [`Sftp::run`].
pub(super) struct Request<'r, T> {
    /// What it is (its counter, and its retry policy).
    pub(super) op: Op,
    /// Where it goes.
    pub(super) target: Target<'r>,
    /// What rides behind it.
    pub(super) behind: Behind<'r>,
    /// How it is sent.
    pub(super) send: Sending<'r, T>,
    /// How it is checked after a lost answer ([`Retry::CheckFirst`]; none: sent again).
    pub(super) check: Option<Check<'r, T>>,
}

/// What [`Sftp::run`] returns.
pub(super) struct Reply<T> {
    /// The request's answer.
    pub(super) value: T,
    /// The stat behind it.
    pub(super) after: After,
    /// The session that answered.
    pub(super) session: Arc<Session>,
}

/// The session a request goes on and the leases it holds there.
pub(super) struct Placed<'h> {
    pub(super) session: Arc<Session>,
    pub(super) leases: Vec<Lease<'h>>,
}

impl Placed<'_> {
    /// The handle strings leased.
    pub(super) fn raw(&self) -> Raw {
        let mut raws = self.leases.iter().map(|l| l.raw().to_owned());
        Raw {
            first: raws.next().unwrap_or_default(),
            second: raws.next().unwrap_or_default(),
        }
    }
}

impl Sftp {
    /// One attempt of a request on `session`: counted, bounded by our deadline; a failure of
    /// the session itself is reported to the link (which starts reconnecting).
    pub(super) async fn attempt<T>(
        &self,
        op: Op,
        session: &Session,
        fut: impl Future<Output = Result<T, RawError>>,
    ) -> SftpResult<T> {
        self.counters.count(op);
        let _in_flight = InFlight::new(&self.in_flight);
        let sent = tokio::time::Instant::now();
        let result = match tokio::time::timeout(self.deadline, fut).await {
            Ok(r) => r.map_err(SftpError::from_raw),
            Err(_) => Err(SftpError::Timeout(self.deadline)),
        };
        if matches!(&result, Ok(_) | Err(SftpError::Status { .. })) {
            // The server answered: one round trip (or more, if it queued behind others).
            self.rtt.sample(sent);
        }
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
    pub(super) fn channels_at_risk(&self) -> bool {
        self.server
            .read()
            .is_ok_and(|p| p.family != Family::OpenSsh && p.channels > 1)
    }

    /// The session died while several channels were in use: on a server not known to take
    /// them, every channel of that connection is ended (the server may leave the others open
    /// but silent: their requests would wait for their deadline, the mount busy meanwhile), and
    /// the next connection gets one channel (`ServerProfile::fall_back_after_crash`), said
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

    /// A request made of one packet: `req` makes it on the session, with the leased handle
    /// strings.
    pub(super) fn one<'r, T: 'r>(
        &'r self,
        op: Op,
        req: impl for<'s> Fn(&'s RawSftpSession, &Raw) -> Attempt<'s, T> + std::marker::Send + Sync + 'r,
    ) -> Sending<'r, T> {
        let req = Arc::new(req);
        Box::new(move |session: Arc<Session>, raw: Raw| {
            let req = Arc::clone(&req);
            Box::pin(async move { self.attempt(op, &session, req(&session.raw, &raw)).await })
        })
    }

    /// Runs `req`: on the session of its target, with what rides behind it; if its session
    /// dies before the answer, by its operation's [`Retry`] policy: sent again on the next
    /// session, or checked there first and sent again only if it did not happen.
    pub(super) async fn run<'r, T: std::marker::Send + Unpin + 'r>(
        &'r self,
        req: Request<'r, T>,
    ) -> SftpResult<Reply<T>> {
        let policy = req.op.retry();
        let mut lost = false;
        loop {
            let mut placed = self.place(req.op, req.target).await?;
            if lost
                && policy == Retry::CheckFirst
                && let Some(check) = &req.check
                && let Some(value) = check().await?
            {
                tracing::info!(
                    "{} had happened before the connection was lost",
                    req.op.name()
                );
                let session = Arc::clone(&placed.session);
                drop(placed);
                let after = self.ask_after(req.behind, req.target).await;
                return Ok(Reply {
                    value,
                    after,
                    session,
                });
            }
            let session = Arc::clone(&placed.session);
            let sent = (req.send)(Arc::clone(&session), placed.raw());
            let (result, after) = match (req.target, req.behind) {
                (Target::Resend(handle, seq), _) => {
                    let sent = queued(Box::pin(sent));
                    handle.write_resent(seq, session.epoch);
                    // On the wire: the lease is not needed for the answer.
                    placed.leases.clear();
                    (sent.await, None)
                }
                (_, Behind::Nothing) => (sent.await, None),
                (_, Behind::Lstat(path)) => {
                    let lstat =
                        self.attempt(Op::Lstat, &session, session.raw.lstat(path.to_owned()));
                    let (r, a) = in_order(sent, lstat).await;
                    (r, Some(a))
                }
                (_, Behind::Fstat) => {
                    let raw = placed.raw().handle();
                    let fstat = self.attempt(Op::Fstat, &session, session.raw.fstat(raw));
                    let (r, a) = in_order(sent, fstat).await;
                    (r, Some(a))
                }
            };
            // The leases go with the answer (a stat asked again below takes its own).
            drop(placed);
            match result {
                Err(SftpError::Transport(_)) if policy != Retry::Never => lost = true,
                Err(e) => return Err(e),
                Ok(value) => {
                    let after = match after {
                        None => After::NotAsked,
                        // Lost with its session after the request was answered: asked again.
                        Some(Err(SftpError::Transport(_))) => {
                            self.ask_after(req.behind, req.target).await
                        }
                        Some(other) => After::from_result(other.map(|a| a.attrs)),
                    };
                    return Ok(Reply {
                        value,
                        after,
                        session,
                    });
                }
            }
        }
    }

    /// The stat that rides behind a request, asked on its own (the request's answer was lost
    /// but it happened, or the stat was lost with its session).
    fn ask_after<'a>(&'a self, behind: Behind<'a>, target: Target<'a>) -> BoxFuture<'a, After> {
        Box::pin(async move {
            match (behind, target) {
                (Behind::Nothing, _) => After::NotAsked,
                (Behind::Lstat(path), _) => After::from_result(self.lstat(path).await),
                (
                    Behind::Fstat,
                    Target::Handle(h) | Target::Handles(h, _) | Target::Resend(h, _),
                ) => After::from_result(self.fstat(h).await),
                (Behind::Fstat, Target::Path | Target::Channel(_)) => After::NotAsked,
            }
        })
    }

    /// The session a request on `target` goes on, once the link is up, with its handles
    /// leased there.
    async fn place<'h>(&self, op: Op, target: Target<'h>) -> SftpResult<Placed<'h>> {
        Ok(match target {
            Target::Path => Placed {
                session: self.up_in_order().await?,
                leases: Vec::new(),
            },
            Target::Channel(k) => {
                let first = self.up_in_order().await?;
                first.open_channels(k + 1, self.max_channels()).await;
                Placed {
                    session: first.channel(k),
                    leases: Vec::new(),
                }
            }
            Target::Handle(h) => self.leased(op, h, None, u64::MAX).await?,
            Target::Handles(h, other) => self.leased(op, h, Some(other), u64::MAX).await?,
            Target::Resend(h, seq) => self.leased(op, h, None, seq).await?,
        })
    }

    /// A session to send a request on once the link is up and every write lost with an
    /// earlier session was sent again (see [`PendingWrites`]): the server then applies them
    /// before this request, in the order the program made them.
    pub(super) async fn up_in_order(&self) -> SftpResult<Arc<Session>> {
        let session = self.link.up().await?;
        self.pending_writes.sent_again_on(session.epoch).await;
        Ok(session)
    }

    /// The session (channel) of the current connection that `handle` lives on, for request
    /// `seq` ([`u64::MAX`], or a write being sent again, which does not wait for the others:
    /// they may be waiting for it).
    pub(super) async fn channel_of(&self, handle: &Handle, seq: u64) -> SftpResult<Arc<Session>> {
        let session = match seq {
            u64::MAX => self.up_in_order().await?,
            _ => self.link.up().await?,
        };
        if handle.channel() > 0 {
            // Channel k is the same one for the whole epoch only once they were opened.
            session
                .open_channels(handle.channel() + 1, self.max_channels())
                .await;
        }
        Ok(session.channel(handle.channel()))
    }

    /// The session to send on and leases on `handle` (and `other`, on the same session) for
    /// the request `op` there, waiting for a reconnect if needed (see [`Sftp::lease_on`]);
    /// `seq`: [`u64::MAX`], or a write being resent, which waits only for the lost writes
    /// queued before it.
    pub(super) async fn leased<'h>(
        &self,
        op: Op,
        handle: &'h Handle,
        other: Option<&'h Handle>,
        seq: u64,
    ) -> SftpResult<Placed<'h>> {
        'again: loop {
            let session = self.channel_of(handle, seq).await?;
            let mut leases = Vec::with_capacity(2);
            for h in std::iter::once(handle).chain(other) {
                match self.lease_on(op, h, &session, seq).await {
                    // That session died too, or the handle was reopened on a later one.
                    Err(SftpError::Transport(_)) => continue 'again,
                    other => leases.push(other?),
                }
            }
            return Ok(Placed { session, leases });
        }
    }

    /// A lease on `handle` for the request `op` on `session`: the handle is reopened first if
    /// it belongs to an earlier session, and checked against the handles we hold. Every write
    /// of the handle queued before write `seq` and lost with an earlier session is sent again
    /// first, so the server applies requests in the order the program made them.
    pub(super) async fn lease_on<'h>(
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
    pub(super) async fn reopen(&self, handle: &Handle, session: &Session) -> SftpResult<()> {
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
    pub(super) fn opened(&self, session: &Session, raw: String, reopen: Reopen) -> Handle {
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
}

/// Two requests on one session, `first`'s packet queued before `second`'s (see [`queued`]),
/// both answers awaited together: the server answers a session's requests in order, so
/// `second` sees what `first` did, in the same round trip.
pub(super) async fn in_order<A, B>(first: A, second: B) -> (A::Output, B::Output)
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
pub(super) fn queued<F: Future>(mut fut: Pin<Box<F>>) -> Queued<F> {
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => Queued::Done(Some(out)),
        Poll::Pending => Queued::Sent(fut),
    }
}

/// A request already on the session's queue (see [`queued`]).
pub(super) enum Queued<F: Future> {
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
