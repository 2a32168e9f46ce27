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
use super::server::{CHANNELS, MAX_CHANNELS};

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

/// One SFTP session: channel 0 of an epoch's connection, or (in its `extra`) another channel
/// of the same connection. Every channel of an epoch dies with it.
pub(crate) struct Session {
    pub(crate) raw: RawSftpSession,
    pub(crate) epoch: u64,
    /// 0 for the first channel of the connection.
    pub(crate) channel: usize,
    /// The other channels, opened on first need (channel 0 only): up to [`CHANNELS`] in all.
    extra: tokio::sync::OnceCell<Vec<Arc<Session>>>,
    /// More channels beyond those, up to [`MAX_CHANNELS`], opened once a large write on a long
    /// link asks for them (channel 0 only; only after all of `extra` could be opened).
    more: tokio::sync::OnceCell<Vec<Arc<Session>>>,
    opener: OnceLock<Arc<dyn ChannelOpener>>,
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
            opener: OnceLock::new(),
            keep: OnceLock::new(),
        }
    }

    /// Channel `k` of this session's connection: itself for 0, or one opened by
    /// [`Session::open_channels`]; channel 0 if there is no such channel (fewer could be
    /// opened on this connection than on an earlier one).
    pub(crate) fn channel(self: &Arc<Self>, k: usize) -> Arc<Session> {
        let others = self
            .extra
            .get()
            .into_iter()
            .chain(self.more.get())
            .flatten();
        match k.checked_sub(1).and_then(|i| others.into_iter().nth(i)) {
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
        for extra in self
            .extra
            .get()
            .into_iter()
            .chain(self.more.get())
            .flatten()
        {
            let _ = extra.raw.close_session();
        }
    }

    /// Makes sure channels `0..want` of this connection were tried and returns how many
    /// channels there are (`max`: what the server allows). The first need opens up to
    /// [`CHANNELS`] (once; later calls get what it got); a need beyond them opens the rest up
    /// to [`MAX_CHANNELS`] (once, and only if all of the first could be opened, so channel `k`
    /// stays the same channel for the whole connection). A first need beyond [`CHANNELS`]
    /// opens all of them at once.
    pub(crate) async fn open_channels(&self, want: usize, max: usize) -> usize {
        let first = self
            .extra
            .get_or_init(|| async {
                // A first need beyond CHANNELS opens them all in one round of opens.
                let to = if want > CHANNELS {
                    max.min(MAX_CHANNELS)
                } else {
                    max.min(CHANNELS)
                };
                let mut opened = self.open_more(1, to).await;
                if opened.len() >= CHANNELS {
                    let more = opened.split_off(CHANNELS - 1);
                    let _ = self.more.set(more);
                }
                opened
            })
            .await;
        let mut have = 1 + first.len();
        if want > have && have == CHANNELS && max > CHANNELS {
            let more = self
                .more
                .get_or_init(|| self.open_more(CHANNELS, max.min(MAX_CHANNELS)))
                .await;
            have += more.len();
        } else if let Some(more) = self.more.get() {
            have += more.len();
        }
        have
    }

    /// Opens channels `from..to` (as many as the server lets open, numbered in order).
    async fn open_more(&self, from: usize, to: usize) -> Vec<Arc<Session>> {
        let Some(opener) = self.opener.get() else {
            return Vec::new();
        };
        let opened = futures_util::future::join_all((from..to).map(|_| opener.open())).await;
        let mut extra = Vec::new();
        for raw in opened {
            match raw {
                Ok(raw) => extra.push(Arc::new(Session::new(raw, self.epoch, from + extra.len()))),
                Err(e) => tracing::info!("cannot open one more SFTP channel: {e}"),
            }
        }
        extra
    }
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

    /// Turns reconnecting on (once).
    pub(crate) fn set_reconnect(&self, connector: Arc<dyn Connector>, policy: ReconnectPolicy) {
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

    fn give_up(&self, why: String) {
        tracing::error!("{why}; requests fail from now on (unmount, then mount again)");
        self.state
            .send_modify(|(_, state)| *state = LinkState::GaveUp(why));
    }
}
