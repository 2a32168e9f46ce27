//! The link to the server: the SFTP session requests are sent on now, and a new one when it
//! dies.
//!
//! Every session has an **epoch** (1 for the first). A request that fails because its session
//! died reports that epoch ([`Link::lost`]); the first such report per epoch starts one
//! reconnect task, which asks the [`Connector`] for a new session (the first try at once, then
//! with a backoff growing to [`ReconnectPolicy::max_backoff`]) and installs it as the next
//! epoch. Requests wait for it ([`Link::up`]) for at most [`ReconnectPolicy::wait`] counted
//! from the moment the link went down: once it has been down longer, they fail at once while
//! the reconnect goes on. A changed host key, or authentication failing
//! [`ReconnectPolicy::auth_tries`] times, ends reconnecting: requests then fail at once.
//!
//! The connector is the seam between the session logic and the network: the real one
//! (`remote::ssh::connect::connect`) opens SSH, checks the host key against the one seen at mount, and
//! authenticates without a prompt; tests use an in-memory server that can drop the session at
//! any request (`remote::fake_server`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use russh_sftp::client::RawSftpSession;
use tokio::sync::watch;
use tokio::time::Instant;

use super::error::SftpError;
use super::server::{CHANNELS, CONNECTION_CHANNELS, MAX_CHANNELS};

/// A new SFTP session, and what must live as long as it (the SSH connection).
pub struct Connected {
    /// The initialised SFTP session.
    pub raw: RawSftpSession,
    /// Kept alive with the session (dropping it may end the connection).
    pub keep: Box<dyn Send + Sync>,
    /// Opens more SFTP channels on the same connection, if it can.
    pub channels: Option<Arc<dyn ChannelOpener>>,
}

/// Opens one more initialised SFTP session on a connection that is up (another SSH channel
/// running its own `sftp-server`: its own flow-control window, its own handles).
pub trait ChannelOpener: Send + Sync {
    /// Opens the channel, starts the subsystem and initialises SFTP.
    fn open(&self) -> BoxFuture<'static, Result<RawSftpSession, String>>;
}

/// The channel `opened`, or `None` with the failure logged: a channel fewer than asked for is
/// not an error (the server's `MaxSessions`, a slow shell), the others carry the writes.
pub(crate) fn opened_or_logged<T, E: std::fmt::Display>(opened: Result<T, E>) -> Option<T> {
    opened
        .map_err(|e| tracing::info!("cannot open one more SFTP channel: {e}"))
        .ok()
}

/// Why a reconnect attempt failed.
#[derive(Debug, Clone)]
pub enum ConnectFailure {
    /// The network or the server (refused, timed out, reset): try again later.
    Retry(String),
    /// Authentication was refused: tried again only a few times (servers lock accounts).
    Auth(String),
    /// Never try again (the host key changed).
    Fatal(String),
}

/// Opens new sessions to the same server.
pub trait Connector: Send + Sync {
    /// Connects, authenticates without prompting and starts SFTP.
    fn connect(&self) -> BoxFuture<'static, Result<Connected, ConnectFailure>>;

    /// [`Connector::connect`], and `more` further SFTP channels on the new connection (as many
    /// as could be opened). By default they are opened once the first is up; a connector that
    /// can open them beside the first one (in the same round trips) does.
    fn connect_with(
        &self,
        more: usize,
    ) -> BoxFuture<'static, Result<(Connected, Vec<RawSftpSession>), ConnectFailure>> {
        let connecting = self.connect();
        Box::pin(async move {
            let connected = connecting.await?;
            let channels = match &connected.channels {
                Some(opener) => futures_util::future::join_all((0..more).map(|_| opener.open()))
                    .await
                    .into_iter()
                    .filter_map(opened_or_logged)
                    .collect(),
                None => Vec::new(),
            };
            Ok((connected, channels))
        })
    }
}

/// How reconnecting behaves (`-o reconnect`, `-o reconnect_timeout`).
#[derive(Debug, Clone)]
pub struct ReconnectPolicy {
    /// How long a request waits for the link to come back, counted from when it went down.
    pub wait: Duration,
    /// The longest pause between two attempts.
    pub max_backoff: Duration,
    /// Attempts refused by authentication before giving up.
    pub auth_tries: u32,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            wait: Duration::from_secs(60),
            max_backoff: Duration::from_secs(10),
            auth_tries: 3,
        }
    }
}

/// One SFTP session: channel 0 of an epoch's connection, or (in its `extra` and `more`)
/// another channel of the same connection, or (in its `further`) a channel of a second
/// connection to the same server. Every channel of an epoch dies with it.
pub(crate) struct Session {
    pub(crate) raw: RawSftpSession,
    pub(crate) epoch: u64,
    /// 0 for the first channel of the connection.
    pub(crate) channel: usize,
    /// The other channels, opened on first need (channel 0 only): up to [`CHANNELS`] in all.
    extra: tokio::sync::OnceCell<Vec<Arc<Session>>>,
    /// More channels beyond those, up to [`CONNECTION_CHANNELS`], opened once a large write on
    /// a long link asks for them (channel 0 only; only after all of `extra` could be opened).
    more: tokio::sync::OnceCell<Vec<Arc<Session>>>,
    /// Channels from [`CONNECTION_CHANNELS`] on, up to [`MAX_CHANNELS`], on a second
    /// connection, made once a large write on a very long link asks for more than one
    /// connection carries (channel 0 only; only after all of `more` could be opened).
    further: tokio::sync::OnceCell<Vec<Arc<Session>>>,
    opener: OnceLock<Arc<dyn ChannelOpener>>,
    /// Makes the second connection: the reconnect's connector (channel 0 only; none with
    /// `reconnect=no`, and then there is no second connection).
    connector: OnceLock<Arc<dyn Connector>>,
    /// The second connection, made (ahead or at first need) and not yet numbered into
    /// `further` (channel 0 only).
    second: tokio::sync::OnceCell<std::sync::Mutex<Option<SecondConnection>>>,
    /// What must live as long as the session (see [`Connected::keep`]).
    keep: OnceLock<Box<dyn Send + Sync>>,
}

impl Session {
    fn new(raw: RawSftpSession, epoch: u64, channel: usize) -> Session {
        Session {
            raw,
            epoch,
            channel,
            extra: tokio::sync::OnceCell::new(),
            more: tokio::sync::OnceCell::new(),
            further: tokio::sync::OnceCell::new(),
            opener: OnceLock::new(),
            connector: OnceLock::new(),
            second: tokio::sync::OnceCell::new(),
            keep: OnceLock::new(),
        }
    }

    /// Channel `k` of this session's connection: itself for 0, or one opened by
    /// [`Session::open_channels`]; channel 0 if there is no such channel (fewer could be
    /// opened on this connection than on an earlier one).
    pub(crate) fn channel(self: &Arc<Self>, k: usize) -> Arc<Session> {
        match k.checked_sub(1).and_then(|i| self.others().nth(i)) {
            Some(s) => Arc::clone(s),
            None => Arc::clone(self),
        }
    }

    /// Whether requests of this connection went over more than one channel (this is not
    /// channel 0, or channel 0 opened others).
    pub(crate) fn several_channels(&self) -> bool {
        self.channel > 0 || self.extra.get().is_some_and(|extra| !extra.is_empty())
    }

    /// Ends every channel of this connection (channel 0 and those it opened): requests waiting
    /// on any of them fail at once, as after a cut, instead of at their deadline.
    fn end_all_channels(&self) {
        let _ = self.raw.close_session();
        for other in self.others() {
            let _ = other.raw.close_session();
        }
    }

    /// How many channels are open and numbered now (this one and those beside it), without
    /// opening any.
    pub(crate) fn channels_open(&self) -> usize {
        1 + self.others().count()
    }

    /// How many SSH connections this session's channels use: 2 once channels of a second
    /// connection were numbered in, else 1.
    pub(crate) fn connections(&self) -> usize {
        1 + usize::from(self.further.get().is_some_and(|f| !f.is_empty()))
    }

    /// The channels opened beside this one (channel 0), in the order of their numbers.
    fn others(&self) -> impl Iterator<Item = &Arc<Session>> {
        self.extra
            .get()
            .into_iter()
            .chain(self.more.get())
            .chain(self.further.get())
            .flatten()
    }

    /// Makes sure channels `0..want` were tried and returns how many channels there are
    /// (`max`: what the server allows). The first need opens up to [`CHANNELS`] (once; later
    /// calls get what it got); a need beyond them opens the rest of this connection's, up to
    /// [`CONNECTION_CHANNELS`] (once, and only if all of the first could be opened, so channel
    /// `k` stays the same channel for the whole epoch); a need beyond those makes a second
    /// connection for the rest, up to [`MAX_CHANNELS`] (likewise). A first need beyond
    /// [`CHANNELS`] opens all of this connection's at once ([`Session::open_all_at_once`]).
    pub(crate) async fn open_channels(&self, want: usize, max: usize) -> usize {
        if want > CHANNELS && max > CHANNELS && self.extra.get().is_none() {
            self.open_all_at_once(max.min(CHANNELS), max.min(CONNECTION_CHANNELS))
                .await;
        }
        let first = self
            .extra
            .get_or_init(|| self.open_more(1, max.min(CHANNELS)))
            .await;
        let mut have = 1 + first.len();
        if want > have && have == CHANNELS && max > CHANNELS {
            let more = self
                .more
                .get_or_init(|| self.open_more(CHANNELS, max.min(CONNECTION_CHANNELS)))
                .await;
            have += more.len();
        } else if let Some(more) = self.more.get() {
            have += more.len();
        }
        if want > have && have == CONNECTION_CHANNELS && max > CONNECTION_CHANNELS {
            let further = self
                .further
                .get_or_init(|| self.open_second_connection(have, want.min(max).min(MAX_CHANNELS)))
                .await;
            have += further.len();
        } else if let Some(further) = self.further.get() {
            have += further.len();
        }
        have
    }

    /// Makes the second connection ahead, with `count` channels, for [`Session::open_channels`]
    /// to number once this connection's own are all open (once per epoch; see
    /// [`SecondConnection`]). A write on a very long link can then use it as soon as it asks,
    /// instead of waiting the ten or so round trips a connection takes.
    pub(crate) async fn prepare_second_connection(&self, count: usize) {
        self.second_ready(count).await;
    }

    /// The second connection, made with `count` channels on first call.
    async fn second_ready(&self, count: usize) -> &std::sync::Mutex<Option<SecondConnection>> {
        self.second
            .get_or_init(|| async { std::sync::Mutex::new(self.connect_second(count).await) })
            .await
    }

    /// Makes a second connection to the server (as a reconnect does: authenticated without
    /// prompting) with `count` channels; `None` if it cannot be made.
    async fn connect_second(&self, count: usize) -> Option<SecondConnection> {
        let connector = self.connector.get()?;
        let (connected, more) = match connector.connect_with(count.saturating_sub(1)).await {
            Ok(c) => c,
            Err(
                ConnectFailure::Retry(why) | ConnectFailure::Auth(why) | ConnectFailure::Fatal(why),
            ) => {
                tracing::info!("cannot make a second connection for more SFTP channels: {why}");
                return None;
            }
        };
        let mut channels = vec![connected.raw];
        channels.extend(more);
        Some(SecondConnection {
            channels,
            keep: connected.keep,
        })
    }

    /// The channels `from..to` on the second connection (made now if it was not made ahead),
    /// numbered from `from`; none if it cannot be made. What keeps that connection alive goes
    /// with its first channel: the connection lives as long as this epoch's channel 0 holds it.
    async fn open_second_connection(&self, from: usize, to: usize) -> Vec<Arc<Session>> {
        let ready = self.second_ready(to.saturating_sub(from)).await;
        let Some(second) = ready.lock().ok().and_then(|mut s| s.take()) else {
            return Vec::new();
        };
        let count = to.saturating_sub(from);
        let channels = self.numbered(second.channels.into_iter().take(count), from);
        if let Some(first) = channels.first() {
            let _ = first.keep.set(second.keep);
            tracing::info!(
                "second connection in use: channels {from} to {}",
                from + channels.len() - 1
            );
        }
        channels
    }

    /// Opens channels `1..to` all at once, numbered in the order they become ready: the first
    /// `first_to - 1` ready are `extra` (a write waiting for [`CHANNELS`] gets them as soon as
    /// they are, not when the slowest of all is: each new channel costs the server a shell's
    /// start), the others `more`. If another caller was already opening `extra`, this opens
    /// nothing and the usual path applies. A server that lets fewer open fills `extra` first;
    /// then `more` stays empty.
    async fn open_all_at_once(&self, first_to: usize, to: usize) {
        use futures_util::StreamExt;
        let Some(opener) = self.opener.get() else {
            return;
        };
        let mut rest = None;
        let first = self
            .extra
            .get_or_init(|| async {
                let mut opening: futures_util::stream::FuturesUnordered<_> =
                    (1..to).map(|_| opener.open()).collect();
                let mut first = Vec::new();
                while first.len() + 1 < first_to
                    && let Some(opened) = opening.next().await
                {
                    if let Some(raw) = opened_or_logged(opened) {
                        first.push(Arc::new(Session::new(raw, self.epoch, 1 + first.len())));
                    }
                }
                rest = Some(opening);
                first
            })
            .await;
        let Some(mut opening) = rest else {
            return; // `extra` was opened by another caller
        };
        let from = 1 + first.len();
        if from < first_to {
            return; // the server let fewer open: no more are tried
        }
        self.more
            .get_or_init(|| async {
                let mut more = Vec::new();
                while let Some(opened) = opening.next().await {
                    if let Some(raw) = opened_or_logged(opened) {
                        more.push(Arc::new(Session::new(raw, self.epoch, from + more.len())));
                    }
                }
                more
            })
            .await;
    }

    /// Opens channels `from..to` (as many as the server lets open, numbered in order).
    async fn open_more(&self, from: usize, to: usize) -> Vec<Arc<Session>> {
        let Some(opener) = self.opener.get() else {
            return Vec::new();
        };
        let opened = futures_util::future::join_all((from..to).map(|_| opener.open())).await;
        self.numbered(opened.into_iter().filter_map(opened_or_logged), from)
    }

    /// `raws` as channels of this epoch, numbered in order from `from`.
    fn numbered(
        &self,
        raws: impl IntoIterator<Item = RawSftpSession>,
        from: usize,
    ) -> Vec<Arc<Session>> {
        raws.into_iter()
            .enumerate()
            .map(|(i, raw)| Arc::new(Session::new(raw, self.epoch, from + i)))
            .collect()
    }
}

/// A second connection to the server and its initialised SFTP channels, before they are
/// numbered into a session's channels. Dropped unused, it closes the connection.
struct SecondConnection {
    channels: Vec<RawSftpSession>,
    /// What keeps the connection up (see [`Connected::keep`]).
    keep: Box<dyn Send + Sync>,
}

/// Whether requests can be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// The session of the current epoch is working.
    Up,
    /// It died at `since`; reconnecting (if there is a connector).
    Down {
        /// When the link went down.
        since: Instant,
    },
    /// No more reconnecting: every request fails at once.
    GaveUp(String),
}

/// The current session and the reconnect machinery.
pub(crate) struct Link {
    current: RwLock<Arc<Session>>,
    state: watch::Sender<(u64, LinkState)>,
    reconnect: OnceLock<(Arc<dyn Connector>, ReconnectPolicy)>,
    reconnects: AtomicU64,
    /// A request arrived while the link is down: try again now rather than at the end of the
    /// backoff (at most once a second; not after an authentication failure).
    kick: tokio::sync::Notify,
}

/// The shortest pause between two attempts, however often requests ask.
const MIN_PAUSE: Duration = Duration::from_secs(1);

impl Link {
    pub(crate) fn new(raw: RawSftpSession) -> Link {
        Link {
            current: RwLock::new(Arc::new(Session::new(raw, 1, 0))),
            state: watch::channel((1, LinkState::Up)).0,
            reconnect: OnceLock::new(),
            reconnects: AtomicU64::new(0),
            kick: tokio::sync::Notify::new(),
        }
    }

    /// Lets the first session open more channels on its connection (once).
    pub(crate) fn set_channel_opener(&self, opener: Arc<dyn ChannelOpener>) {
        let _ = self.session().opener.set(opener);
    }

    /// Keeps `keep` alive as long as the first session (once): what carries it, e.g. the
    /// program whose stdin and stdout it runs over.
    pub(crate) fn set_keep(&self, keep: Box<dyn Send + Sync>) {
        let _ = self.session().keep.set(keep);
    }

    /// Turns reconnecting on (once); the connector also makes the second connection of a
    /// session that needs more channels than one connection gives.
    pub(crate) fn set_reconnect(&self, connector: Arc<dyn Connector>, policy: ReconnectPolicy) {
        let _ = self.session().connector.set(Arc::clone(&connector));
        let _ = self.reconnect.set((connector, policy));
    }

    /// The session of the current epoch, whatever its state.
    pub(crate) fn session(&self) -> Arc<Session> {
        match self.current.read() {
            Ok(s) => Arc::clone(&s),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The current epoch and state.
    pub(crate) fn state(&self) -> (u64, LinkState) {
        self.state.borrow().clone()
    }

    /// The epoch and state, to watch for reconnects.
    pub(crate) fn watch(&self) -> watch::Receiver<(u64, LinkState)> {
        self.state.subscribe()
    }

    /// Completed reconnects.
    pub(crate) fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// Resolves when the link is down for good: down without a connector (`reconnect=no`),
    /// or given up.
    pub(crate) async fn gone(&self) -> String {
        let mut rx = self.state.subscribe();
        loop {
            match &rx.borrow_and_update().1 {
                LinkState::GaveUp(why) => return why.clone(),
                LinkState::Down { .. } if self.reconnect.get().is_none() => {
                    return "the connection to the server was lost".into();
                }
                _ => {}
            }
            if rx.changed().await.is_err() {
                return "the link was dropped".into();
            }
        }
    }

    /// A session to send on: the current one if the link is up, else the next one once the
    /// reconnect brings it, waiting no longer than the policy allows.
    pub(crate) async fn up(&self) -> Result<Arc<Session>, SftpError> {
        let mut rx = self.state.subscribe();
        loop {
            let (_, state) = rx.borrow_and_update().clone();
            let since = match state {
                LinkState::Up => return Ok(self.session()),
                LinkState::GaveUp(why) => return Err(SftpError::Transport(why)),
                LinkState::Down { since } => since,
            };
            let Some((_, policy)) = self.reconnect.get() else {
                return Err(SftpError::Transport(
                    "the connection to the server was lost (reconnect=no)".into(),
                ));
            };
            self.kick.notify_one();
            let left = policy.wait.saturating_sub(since.elapsed());
            if left.is_zero() {
                return Err(SftpError::Transport(format!(
                    "no connection to the server for {} s; still reconnecting",
                    since.elapsed().as_secs()
                )));
            }
            match tokio::time::timeout(left, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(SftpError::Transport("the link was dropped".into())),
                Err(_) => {
                    return Err(SftpError::Transport(format!(
                        "no connection to the server for {} s; still reconnecting",
                        policy.wait.as_secs()
                    )));
                }
            }
        }
    }

    /// Ends every channel of `epoch`'s connection if it is still the current one (a server
    /// that crashed one channel may leave the others open and silent).
    pub(crate) fn end_channels_of(&self, epoch: u64) {
        let session = self.session();
        if session.epoch == epoch {
            session.end_all_channels();
        }
    }

    /// The session of `epoch` failed with `why`: marks the link down and starts reconnecting
    /// (once per epoch).
    pub(crate) fn lost(self: &Arc<Self>, epoch: u64, why: &str) {
        let since = Instant::now();
        let changed = self.state.send_if_modified(|(e, state)| {
            if *e == epoch && *state == LinkState::Up {
                *state = LinkState::Down { since };
                true
            } else {
                false
            }
        });
        if !changed {
            return;
        }
        match self.reconnect.get() {
            Some((connector, policy)) => {
                tracing::info!("connection to the server lost ({why}); reconnecting");
                tokio::spawn(Arc::clone(self).reconnect_loop(
                    epoch,
                    since,
                    Arc::clone(connector),
                    policy.clone(),
                ));
            }
            None => tracing::warn!("connection to the server lost ({why})"),
        }
    }

    async fn reconnect_loop(
        self: Arc<Self>,
        epoch: u64,
        since: Instant,
        connector: Arc<dyn Connector>,
        policy: ReconnectPolicy,
    ) {
        let mut pause = Duration::from_millis(250);
        let mut auth_failures = 0;
        for attempt in 1u32.. {
            match connector.connect().await {
                Ok(c) => {
                    let next = epoch + 1;
                    let session = Session::new(c.raw, next, 0);
                    let _ = session.keep.set(c.keep);
                    if let Some(opener) = c.channels {
                        let _ = session.opener.set(opener);
                    }
                    let _ = session.connector.set(Arc::clone(&connector));
                    let session = Arc::new(session);
                    match self.current.write() {
                        Ok(mut cur) => *cur = session,
                        Err(poisoned) => *poisoned.into_inner() = session,
                    }
                    self.reconnects.fetch_add(1, Ordering::Relaxed);
                    self.state.send_replace((next, LinkState::Up));
                    tracing::info!(
                        "reconnected after {:.1} s ({attempt} attempts)",
                        since.elapsed().as_secs_f64()
                    );
                    return;
                }
                Err(ConnectFailure::Fatal(why)) => return self.give_up(why),
                Err(ConnectFailure::Auth(why)) => {
                    auth_failures += 1;
                    tracing::warn!("reconnect attempt {attempt}: {why}");
                    if auth_failures >= policy.auth_tries {
                        return self.give_up(format!(
                            "authentication failed {auth_failures} times on reconnect ({why}); not trying again"
                        ));
                    }
                }
                Err(ConnectFailure::Retry(why)) => {
                    tracing::info!("reconnect attempt {attempt}: {why}");
                }
            }
            if auth_failures > 0 || pause < MIN_PAUSE {
                tokio::time::sleep(pause).await;
            } else {
                // Wait out the backoff, or less if a request is waiting (the server may be back).
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = async {
                        tokio::time::sleep(MIN_PAUSE).await;
                        self.kick.notified().await;
                    } => {}
                }
            }
            pause = (pause * 2).min(policy.max_backoff);
        }
    }

    /// The mount is going away (`why`): from now on a lost connection is not reconnected
    /// (a request of a background task that fails at shutdown would otherwise start a login)
    /// and requests fail at once.
    pub(crate) fn close(&self, why: &str) {
        self.state
            .send_modify(|(_, state)| *state = LinkState::GaveUp(why.to_owned()));
    }

    fn give_up(&self, why: String) {
        tracing::error!("{why}; requests fail from now on (unmount, then mount again)");
        self.close(&why);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::remote::fake_server::FakeServer;

    /// Opens channels on a fake server, the later ones faster (so they are ready in the
    /// reverse of the order they were asked for), refusing those beyond `allowed`, as a server
    /// with a low `MaxSessions` does.
    struct Channels {
        server: FakeServer,
        asked: AtomicUsize,
        allowed: usize,
    }

    impl ChannelOpener for Channels {
        fn open(&self) -> BoxFuture<'static, Result<RawSftpSession, String>> {
            let n = self.asked.fetch_add(1, Ordering::SeqCst);
            let refused = n >= self.allowed;
            let (client, server) = tokio::io::duplex(64 * 1024);
            if !refused {
                self.server.serve_stream(server);
            }
            let delay = Duration::from_millis(20 * (10 - n.min(10) as u64));
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                if refused {
                    return Err("refused: too many sessions".into());
                }
                let raw = RawSftpSession::new(client);
                raw.init().await.map_err(|e| e.to_string())?;
                Ok(raw)
            })
        }
    }

    /// Channel 0 of a connection to a fake server whose opener lets `allowed` more open.
    async fn session(allowed: usize) -> Arc<Session> {
        let server = FakeServer::new(1);
        let (client, end) = tokio::io::duplex(64 * 1024);
        server.serve_stream(end);
        let raw = RawSftpSession::new(client);
        raw.init().await.expect("init channel 0");
        let session = Session::new(raw, 1, 0);
        let opener: Arc<dyn ChannelOpener> = Arc::new(Channels {
            server,
            asked: AtomicUsize::new(0),
            allowed,
        });
        assert!(session.opener.set(opener).is_ok());
        Arc::new(session)
    }

    /// Channel `k` is the `k`th channel numbered: what a handle's channel number finds again.
    fn assert_numbered(session: &Arc<Session>, count: usize) {
        assert_eq!(session.channels_open(), count);
        for k in 0..count {
            assert_eq!(session.channel(k).channel, k, "channel {k} of {count}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn all_of_a_connections_channels_open_at_once_numbered_as_they_are_ready() {
        let s = session(7).await;
        assert_eq!(s.open_channels(CONNECTION_CHANNELS, 16).await, 8);
        assert_numbered(&s, 8);
        // Nothing more is opened for a smaller need.
        assert_eq!(s.open_channels(CHANNELS, 16).await, 8);
        assert_numbered(&s, 8);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_that_lets_fewer_open_fills_the_first_channels_first() {
        let s = session(5).await;
        assert_eq!(s.open_channels(CONNECTION_CHANNELS, 16).await, 6);
        assert_numbered(&s, 6);
        let s = session(2).await;
        assert_eq!(s.open_channels(CONNECTION_CHANNELS, 16).await, 3);
        assert_numbered(&s, 3);
        assert!(s.more.get().is_none(), "no more are tried");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_asking_for_the_first_channels_gets_them_before_the_rest() {
        let s = session(7).await;
        let (all, first) = tokio::join!(s.open_channels(CONNECTION_CHANNELS, 16), async {
            tokio::task::yield_now().await;
            let got = s.open_channels(CHANNELS, 16).await;
            (got, s.more.get().is_some())
        });
        assert_eq!(all, 8);
        assert!(first.0 >= CHANNELS, "{first:?}");
        assert!(!first.1, "waited for all of them");
        assert_numbered(&s, 8);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn channels_beyond_a_connections_are_on_a_second_one_made_ahead() {
        let s = session(7).await;
        let server: Arc<dyn crate::remote::testing::ServeSftp> = Arc::new(FakeServer::new(1000));
        let connector: Arc<dyn Connector> = crate::remote::testing::StreamConnector::new(server);
        assert!(s.connector.set(connector).is_ok());
        tokio::join!(
            s.prepare_second_connection(4),
            s.open_channels(CONNECTION_CHANNELS, 16)
        );
        assert_eq!(s.connections(), 1, "made ahead, not yet in use");
        assert_eq!(s.open_channels(12, 16).await, 12);
        assert_eq!(s.connections(), 2);
        assert_numbered(&s, 12);
        // Made once per epoch: a larger need later gets no more.
        assert_eq!(s.open_channels(16, 16).await, 12);
    }

    /// A connector that counts its connections and makes none.
    struct Counting(AtomicUsize);

    impl Connector for Counting {
        fn connect(&self) -> BoxFuture<'static, Result<Connected, ConnectFailure>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Err(ConnectFailure::Retry("not here".into())) })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_link_is_not_reconnected() {
        let s = session(0).await;
        let link = Arc::new(Link {
            current: RwLock::new(s),
            state: watch::channel((1, LinkState::Up)).0,
            reconnect: OnceLock::new(),
            reconnects: AtomicU64::new(0),
            kick: tokio::sync::Notify::new(),
        });
        let connector = Arc::new(Counting(AtomicUsize::new(0)));
        link.set_reconnect(connector.clone(), ReconnectPolicy::default());
        link.close("unmounted");
        link.lost(1, "sender dropped");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(connector.0.load(Ordering::SeqCst), 0, "a login at shutdown");
        assert_eq!(link.state().1, LinkState::GaveUp("unmounted".into()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_a_connector_there_is_no_second_connection() {
        let s = session(7).await;
        assert_eq!(s.open_channels(12, 16).await, 8);
        assert_eq!(s.connections(), 1);
        assert_numbered(&s, 8);
    }
}
