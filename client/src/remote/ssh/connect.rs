//! Opening the SSH connection and the SFTP session, like OpenSSH does: resolve, connect (with
//! `ConnectTimeout`), check the host key, authenticate, start the `sftp` subsystem.

use crate::os_message::os_message;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::keys::PublicKey;
use russh::{ChannelMsg, client};
use russh_sftp::client::RawSftpSession;

use futures_util::future::BoxFuture;

use super::auth::{self, Prompter, Secret};
use super::host_key::HostKeyCheck;
use super::known_hosts;
pub use super::options::{AddressFamily, ConnectError, ConnectOptions, StrictHostKeyChecking, Via};
use super::proxy::{self, Transport};
use crate::remote::sftp::Sftp;
use crate::remote::sftp::link::{
    ChannelOpener, ConnectFailure, Connected, Connector, opened_or_logged,
};

/// A live SSH connection with its SFTP session.
pub struct Connection {
    /// The SSH connection (kept open as long as the SFTP session is used).
    pub ssh: Arc<client::Handle<HostKeyCheck>>,
    /// The SFTP request engine.
    pub sftp: Arc<Sftp>,
    /// What a reconnect needs: the options, the host keys seen now, the secrets typed now.
    again: SshConnector,
    /// The jump hosts' connections carrying this one (`ProxyJump`), kept open with it.
    _hops: Vec<Arc<client::Handle<HostKeyCheck>>>,
    /// The server's SSH version banner (`SSH-2.0-OpenSSH_9.2p1 Debian-2`), as it sent it.
    pub banner: Option<String>,
    /// The SHA-256 fingerprint of the server's host key (what keys its content cache).
    pub host_key_fingerprint: Option<String>,
}

impl Connection {
    /// Opens new sessions to the same server when this one dies: same options, insisting on
    /// the host key seen at this connection, authenticating with keys, the agent or the
    /// secrets given at this connection (kept in memory only), never prompting.
    pub fn reconnector(&self) -> Arc<dyn Connector> {
        Arc::new(self.again.clone())
    }
}

/// How long one reconnect attempt may take when no ConnectTimeout is set.
const RECONNECT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// See [`Connection::reconnector`].
#[derive(Clone)]
struct SshConnector {
    opts: ConnectOptions,
    pins: Pins,
    secrets: Arc<Remembered>,
}

/// The host keys seen at the first connection: the server's and each jump host's.
#[derive(Clone, Default)]
struct Pins {
    target: Option<PublicKey>,
    hops: Vec<Option<PublicKey>>,
}

impl Connector for SshConnector {
    fn connect(&self) -> BoxFuture<'static, Result<Connected, ConnectFailure>> {
        let connecting = self.connect_with(0);
        Box::pin(async move { Ok(connecting.await?.0) })
    }

    /// The further channels are opened beside the first, right after the login.
    fn connect_with(
        &self,
        more: usize,
    ) -> BoxFuture<'static, Result<(Connected, Vec<RawSftpSession>), ConnectFailure>> {
        let me = self.clone();
        Box::pin(async move {
            let replay: Arc<dyn Prompter> = Arc::new(Replay(Arc::clone(&me.secrets)));
            // Each attempt is bounded (ConnectTimeout, else 15 s): into a frozen network a
            // connect could otherwise wait for minutes while the server is back elsewhere.
            let bound = me.opts.connect_timeout.unwrap_or(RECONNECT_ATTEMPT_TIMEOUT);
            let attempt = open(&me.opts, replay, &me.pins, more);
            let Ok(opened) = tokio::time::timeout(bound, attempt).await else {
                return Err(ConnectFailure::Retry(format!(
                    "no answer within {} s",
                    bound.as_secs()
                )));
            };
            match opened {
                Ok(o) => Ok((
                    Connected {
                        raw: o.raw,
                        channels: Some(Arc::new(SshChannels {
                            ssh: Arc::clone(&o.ssh),
                            opts: me.opts.clone(),
                        })),
                        keep: Box::new((o.ssh, o.hops)),
                    },
                    o.more,
                )),
                Err(e @ ConnectError::HostKey(_)) => Err(ConnectFailure::Fatal(e.to_string())),
                Err(e @ ConnectError::Auth { .. }) => Err(ConnectFailure::Auth(e.to_string())),
                Err(e) => Err(ConnectFailure::Retry(e.to_string())),
            }
        })
    }
}

/// Secrets (passwords, passphrases) typed or given at the first connection, by prompt, kept in
/// this process's memory only, so a reconnect can authenticate without asking.
#[derive(Default)]
struct Remembered(Mutex<Vec<(String, Secret)>>);

impl Remembered {
    fn keep(&self, prompt: &str, secret: &str) {
        if let Ok(mut s) = self.0.lock() {
            s.push((prompt.to_owned(), Secret::new(secret.to_owned())));
        }
    }
}

/// The user's prompter, remembering the secrets it is given.
struct Remembering {
    inner: Arc<dyn Prompter>,
    secrets: Arc<Remembered>,
}

impl Prompter for Remembering {
    fn secret(&self, prompt: &str) -> Option<String> {
        let secret = self.inner.secret(prompt)?;
        self.secrets.keep(prompt, &secret);
        Some(secret)
    }
    fn known_secret(&self, prompt: &str) -> Option<String> {
        let secret = self.inner.known_secret(prompt)?;
        self.secrets.keep(prompt, &secret);
        Some(secret)
    }
    fn stored_secret(&self, prompt: &str, what: &auth::SecretFor<'_>) -> Option<String> {
        let secret = self.inner.stored_secret(prompt, what)?;
        self.secrets.keep(prompt, &secret);
        Some(secret)
    }
    fn ask(&self, prompt: &str) -> Option<String> {
        self.inner.ask(prompt)
    }
    fn info(&self, message: &str) {
        self.inner.info(message)
    }
}

/// The user's prompter, with a password given beforehand (`-o password_stdin`) as the known
/// answer to every password prompt.
struct Given {
    password: Secret,
    inner: Arc<dyn Prompter>,
}

impl Prompter for Given {
    fn secret(&self, prompt: &str) -> Option<String> {
        self.inner.secret(prompt)
    }
    fn known_secret(&self, prompt: &str) -> Option<String> {
        if auth::is_password_prompt(prompt) {
            Some(self.password.expose().to_owned())
        } else {
            self.inner.known_secret(prompt)
        }
    }
    fn stored_secret(&self, prompt: &str, what: &auth::SecretFor<'_>) -> Option<String> {
        self.inner.stored_secret(prompt, what)
    }
    fn ask(&self, prompt: &str) -> Option<String> {
        self.inner.ask(prompt)
    }
    fn info(&self, message: &str) {
        self.inner.info(message)
    }
}

/// A prompter for reconnects: answers a secret prompt with what was typed for it at the first
/// connection, and nothing else (there may be no terminal any more).
struct Replay(Arc<Remembered>);

impl Prompter for Replay {
    fn secret(&self, prompt: &str) -> Option<String> {
        self.known_secret(prompt)
    }
    fn known_secret(&self, prompt: &str) -> Option<String> {
        let secrets = self.0.0.lock().ok()?;
        secrets
            .iter()
            .rev()
            .find(|(p, _)| p == prompt)
            .map(|(_, s)| s.expose().to_owned())
    }
    fn ask(&self, _: &str) -> Option<String> {
        None
    }
    fn info(&self, message: &str) {
        tracing::info!("{message}");
    }
}

fn ssh_config(opts: &ConnectOptions) -> client::Config {
    let known_types = known_hosts::known_types(&opts.known_hosts_files(), &opts.known_hosts_name());
    client::Config {
        preferred: opts.algorithms.preferred(&known_types),
        // What the server may send us unacknowledged per channel: russh's 2 MiB default caps a
        // download near 43 MiB/s at 20 ms RTT. russh tops the window up only once half of it
        // is used, so between half and all of it is open: 16 MiB kept one channel near 100
        // MiB/s at 100 ms; 64 MiB keeps read-ahead's window (at most 64 MiB,
        // `readahead::LINK_WINDOW`) the limit. It costs no memory by itself: the server sends
        // only what our READs asked for, which read-ahead bounds. (With a 32 MiB window for
        // both, 256 MiB took 1.92 s at 100 ms; with 64 MiB, 1.32 s; 20 ms and RTT 0 the same.)
        window_size: 64 * 1024 * 1024,
        maximum_packet_size: 65535,
        // A full per-channel buffer stalls the whole connection.
        channel_buffer_size: 1024,
        nodelay: true,
        keepalive_interval: opts.keepalive_interval,
        keepalive_max: opts.keepalive_max,
        ..Default::default()
    }
}

/// Connects, checks the host key, authenticates and starts SFTP.
pub async fn connect(
    opts: &ConnectOptions,
    prompter: Arc<dyn Prompter>,
) -> Result<Connection, ConnectError> {
    let secrets = Arc::new(Remembered::default());
    let inner: Arc<dyn Prompter> = match &opts.password {
        Some(password) => Arc::new(Given {
            password: password.clone(),
            inner: prompter,
        }),
        None => prompter,
    };
    let remembering: Arc<dyn Prompter> = Arc::new(Remembering {
        inner,
        secrets: Arc::clone(&secrets),
    });
    // The given password lives on only among the remembered secrets.
    let opts = &ConnectOptions {
        password: None,
        ..opts.clone()
    };
    let o = open(opts, remembering, &Pins::default(), 0).await?;
    let sftp = Sftp::new(o.raw, o.limits, o.extensions, opts.request_deadline);
    if let Some(took) = o.round_trip {
        sftp.note_round_trip(took);
    }
    sftp.set_channel_opener(Arc::new(SshChannels {
        ssh: Arc::clone(&o.ssh),
        opts: opts.clone(),
    }));
    let host_key_fingerprint = o
        .host_key
        .as_ref()
        .map(|k| k.fingerprint(russh::keys::HashAlg::Sha256).to_string());
    Ok(Connection {
        host_key_fingerprint,
        ssh: o.ssh,
        sftp,
        again: SshConnector {
            opts: opts.clone(),
            pins: Pins {
                target: o.host_key,
                hops: o.hop_keys,
            },
            secrets,
        },
        _hops: o.hops,
        banner: o.banner,
    })
}

/// What [`open`] brings up.
struct Opened {
    ssh: Arc<client::Handle<HostKeyCheck>>,
    raw: RawSftpSession,
    limits: Option<(u64, u64)>,
    extensions: Vec<String>,
    host_key: Option<PublicKey>,
    /// The jump hosts' connections, first hop first.
    hops: Vec<Arc<client::Handle<HostKeyCheck>>>,
    hop_keys: Vec<Option<PublicKey>>,
    /// The server's version banner.
    banner: Option<String>,
    /// The further SFTP channels asked for, opened beside the first.
    more: Vec<RawSftpSession>,
    /// A round trip of the link, timed at the start of SFTP (see [`start_sftp`]).
    round_trip: Option<Duration>,
}

/// Connects (directly, through the ProxyCommand, or through the jump hosts), checks the host
/// keys (against `pins` where known), authenticates and starts the SFTP session, and `more`
/// further SFTP channels beside it (those that cannot be opened are left out).
async fn open(
    opts: &ConnectOptions,
    prompter: Arc<dyn Prompter>,
    pins: &Pins,
    more: usize,
) -> Result<Opened, ConnectError> {
    let mut hops: Vec<Arc<client::Handle<HostKeyCheck>>> = Vec::new();
    let mut hop_keys = Vec::new();
    let stream: Box<dyn Transport> = match &opts.via {
        Via::Direct | Via::Command(_) => direct_or_command(opts).await?,
        Via::Jump(chain) => {
            let mut prev: Option<(&client::Handle<HostKeyCheck>, &ConnectOptions)> = None;
            for (i, hop) in chain.iter().enumerate() {
                let stream: Box<dyn Transport> = match prev {
                    // The first jump host may be reached through a ProxyCommand of its own.
                    None => direct_or_command(hop).await?,
                    Some((jump, jump_opts)) => {
                        Box::new(forward(jump, jump_opts, &hop.host, hop.port).await?)
                    }
                };
                let pinned = pins.hops.get(i).cloned().flatten();
                let (ssh, key, _) = login(hop, stream, Arc::clone(&prompter), pinned).await?;
                hops.push(Arc::new(ssh));
                hop_keys.push(key);
                prev = hops.last().map(|h| (h.as_ref(), hop));
            }
            match prev {
                Some((jump, jump_opts)) => {
                    Box::new(forward(jump, jump_opts, &opts.host, opts.port).await?)
                }
                None => Box::new(bounded(opts, tcp_connect(opts)).await?),
            }
        }
    };
    let (ssh, host_key, banner) = login(opts, stream, prompter, pins.target.clone()).await?;
    let further = (0..more).map(|_| open_sftp_channel(&ssh, opts));
    let (first, further) = tokio::join!(
        start_sftp(&ssh, opts),
        futures_util::future::join_all(further)
    );
    let (raw, limits, extensions, round_trip) = first?;
    let more = further
        .into_iter()
        .filter_map(opened_or_logged)
        .map(|(raw, _)| raw)
        .collect();
    Ok(Opened {
        more,
        round_trip,
        ssh: Arc::new(ssh),
        raw,
        limits,
        extensions,
        host_key,
        hops,
        hop_keys,
        banner,
    })
}

/// A TCP connection to the host, or the stream of its ProxyCommand.
async fn direct_or_command(opts: &ConnectOptions) -> Result<Box<dyn Transport>, ConnectError> {
    match &opts.via {
        Via::Command(command) => Ok(Box::new(proxy::spawn_command(command).map_err(|e| {
            ConnectError::Connect {
                host: opts.host.clone(),
                port: opts.port,
                reason: format!("cannot run ProxyCommand '{command}': {}", os_message(&e)),
            }
        })?)),
        _ => Ok(Box::new(tcp_connect(opts).await?)),
    }
}

/// Bounds a connect step by `ConnectTimeout`.
async fn bounded<T>(
    opts: &ConnectOptions,
    step: impl std::future::Future<Output = Result<T, ConnectError>>,
) -> Result<T, ConnectError> {
    match opts.connect_timeout {
        Some(t) => tokio::time::timeout(t, step)
            .await
            .map_err(|_| ConnectError::Timeout {
                host: opts.host.clone(),
                port: opts.port,
                secs: t.as_secs(),
            })?,
        None => step.await,
    }
}

/// A `direct-tcpip` channel of the jump host `jump` (reached with `jump_opts`) to `host:port`.
async fn forward(
    jump: &client::Handle<HostKeyCheck>,
    jump_opts: &ConnectOptions,
    host: &str,
    port: u16,
) -> Result<russh::ChannelStream<client::Msg>, ConnectError> {
    let channel = bounded(jump_opts, async {
        jump.channel_open_direct_tcpip(host, u32::from(port), "127.0.0.1", 0)
            .await
            .map_err(|e| ConnectError::Connect {
                host: host.to_owned(),
                port,
                reason: format!("jump host {} could not connect there: {e}", jump_opts.host),
            })
    })
    .await?;
    Ok(channel.into_stream())
}

/// The SSH handshake over `stream` (bounded by `ConnectTimeout`), the host key check (against
/// `pinned` if given) and the login. Returns the connection and the key the server showed.
async fn login(
    opts: &ConnectOptions,
    stream: Box<dyn Transport>,
    prompter: Arc<dyn Prompter>,
    pinned: Option<PublicKey>,
) -> Result<
    (
        client::Handle<HostKeyCheck>,
        Option<PublicKey>,
        Option<String>,
    ),
    ConnectError,
> {
    let refusal = Arc::new(Mutex::new(None));
    let seen = Arc::new(Mutex::new(None));
    let banner = Arc::new(Mutex::new(None));
    let handler = HostKeyCheck {
        opts: opts.clone(),
        prompter: prompter.clone(),
        refusal: refusal.clone(),
        pinned,
        seen: Arc::clone(&seen),
        banner: Arc::clone(&banner),
    };
    let handshake = async {
        client::connect_stream(Arc::new(ssh_config(opts)), stream, handler)
            .await
            .map_err(|e| {
                if let Ok(mut r) = refusal.lock()
                    && let Some(why) = r.take()
                {
                    return ConnectError::HostKey(why);
                }
                ConnectError::Ssh {
                    host: opts.host.clone(),
                    reason: handshake_message(&e, opts),
                }
            })
    };
    let mut ssh = bounded(opts, handshake).await?;
    auth::authenticate(&mut ssh, opts, prompter.as_ref()).await?;
    let host_key = seen.lock().ok().and_then(|mut k| k.take());
    let banner = banner.lock().ok().and_then(|mut b| b.take());
    Ok((ssh, host_key, banner))
}

/// OpenSSH's words for a failed negotiation: which kind of algorithm, and what each side
/// offered.
fn handshake_message(e: &russh::Error, opts: &ConnectOptions) -> String {
    let russh::Error::NoCommonAlgo { kind, ours, theirs } = e else {
        return e.to_string();
    };
    let (what, option) = match kind {
        russh::AlgorithmKind::Kex => ("key exchange method", "KexAlgorithms"),
        russh::AlgorithmKind::Key => ("host key type", "HostKeyAlgorithms"),
        russh::AlgorithmKind::Cipher => ("cipher", "Ciphers"),
        russh::AlgorithmKind::Mac => ("MAC", "MACs"),
        russh::AlgorithmKind::Compression => ("compression method", "Compression"),
    };
    let ours: Vec<&String> = ours.iter().filter(|n| !is_extension(n)).collect();
    let theirs: Vec<&String> = theirs.iter().filter(|n| !is_extension(n)).collect();
    let list = |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
    format!(
        "Unable to negotiate with {} port {}: no matching {what} found. Their offer: {}; ours: {} (see -o {option})",
        opts.host,
        opts.port,
        list(&theirs),
        list(&ours)
    )
}

fn is_extension(name: &str) -> bool {
    name.starts_with("ext-info-") || name.starts_with("kex-strict-")
}

/// TCP connect, `ConnectionAttempts` times at most, each bounded by `ConnectTimeout` (as ssh).
async fn tcp_connect(opts: &ConnectOptions) -> Result<tokio::net::TcpStream, ConnectError> {
    let attempts = opts.connection_attempts.max(1);
    let mut n = 1;
    loop {
        let once = tcp_connect_once(&opts.host, opts.port, opts.address_family);
        match bounded(opts, once).await {
            Err(ConnectError::Connect { .. } | ConnectError::Timeout { .. }) if n < attempts => {
                tracing::info!(
                    "connect to {} port {} failed (attempt {n} of {attempts}); trying again in 1 s",
                    opts.host,
                    opts.port
                );
                n += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            r => return r,
        }
    }
}

async fn tcp_connect_once(
    host: &str,
    port: u16,
    family: AddressFamily,
) -> Result<tokio::net::TcpStream, ConnectError> {
    let addrs: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| ConnectError::Resolve {
            host: host.to_owned(),
            reason: resolver_message(&e),
        })?
        .filter(|a| family.admits(a))
        .collect();
    if addrs.is_empty() {
        return Err(ConnectError::Resolve {
            host: host.to_owned(),
            reason: format!(
                "no {} address",
                if family == AddressFamily::Inet6 {
                    "IPv6"
                } else {
                    "IPv4"
                }
            ),
        });
    }
    let mut last = None;
    for addr in addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(ConnectError::Connect {
        host: host.to_owned(),
        port,
        reason: last.map_or_else(|| "no address".to_owned(), |e| os_message(&e)),
    })
}

fn resolver_message(e: &std::io::Error) -> String {
    let s = os_message(e);
    if s.contains("failed to lookup address") || s.contains("Name or service not known") {
        "Name or service not known".to_owned()
    } else {
        s
    }
}

/// Opens more SFTP channels on a connection that is up (see [`ChannelOpener`]).
struct SshChannels {
    ssh: Arc<client::Handle<HostKeyCheck>>,
    opts: ConnectOptions,
}

impl ChannelOpener for SshChannels {
    fn open(&self) -> BoxFuture<'static, Result<RawSftpSession, String>> {
        let (ssh, opts) = (Arc::clone(&self.ssh), self.opts.clone());
        Box::pin(async move {
            let (raw, _) = open_sftp_channel(&ssh, &opts)
                .await
                .map_err(|e| e.to_string())?;
            Ok(raw)
        })
    }
}

/// Starts SFTP on a new channel and asks for the server's limits: the session, the limits,
/// the extensions, and how long the limits took (a round trip of the link with nothing else
/// on it, unlike INIT, which waits for the server to start `sftp-server`).
async fn start_sftp(
    ssh: &client::Handle<HostKeyCheck>,
    opts: &ConnectOptions,
) -> Result<Started, ConnectError> {
    let (raw, version) = open_sftp_channel(ssh, opts).await?;
    let extensions: Vec<String> = version.extensions.keys().cloned().collect();
    let mut round_trip = None;
    let limits = if version.extensions.contains_key("limits@openssh.com") {
        let sent = tokio::time::Instant::now();
        match raw.limits().await {
            Ok(l) => {
                round_trip = Some(sent.elapsed());
                Some((l.max_read_len, l.max_write_len))
            }
            Err(_) => None,
        }
    } else {
        None
    };
    Ok((raw, limits, extensions, round_trip))
}

/// What [`start_sftp`] gives.
type Started = (
    RawSftpSession,
    Option<(u64, u64)>,
    Vec<String>,
    Option<Duration>,
);

/// Opens a session channel, starts the `sftp` subsystem on it and initialises SFTP.
async fn open_sftp_channel(
    ssh: &client::Handle<HostKeyCheck>,
    opts: &ConnectOptions,
) -> Result<(RawSftpSession, russh_sftp::protocol::Version), ConnectError> {
    let fail = |reason: String| ConnectError::Sftp {
        host: opts.host.clone(),
        reason,
    };
    let mut channel = ssh
        .channel_open_session()
        .await
        .map_err(|e| fail(format!("cannot open a session channel: {e}")))?;
    let server = opts.sftp_server.as_deref().unwrap_or("sftp");
    // As sshfs: a server with a '/' is a command for the server to run (-o sftp_server).
    let refused = if server.contains('/') {
        channel
            .exec(true, server)
            .await
            .map_err(|e| fail(format!("cannot run '{server}' on the server: {e}")))?;
        format!("the server refused to run '{server}'")
    } else {
        channel
            .request_subsystem(true, server)
            .await
            .map_err(|e| fail(format!("cannot request the {server} subsystem: {e}")))?;
        format!(
            "the server refused the {server} subsystem (is Subsystem {server} configured in sshd_config?)"
        )
    };
    // request_subsystem does not wait for the answer: a refusal would otherwise only show up
    // as an SFTP init timeout.
    loop {
        match channel.wait().await {
            Some(ChannelMsg::Success) => break,
            Some(ChannelMsg::Failure) => return Err(fail(refused)),
            Some(_) => continue,
            None => return Err(fail("the server closed the channel".into())),
        }
    }
    let config = russh_sftp::client::Config {
        // Must hold a full READ answer; larger packets end the session.
        max_packet_len: 1024 * 1024,
        // Our own deadline applies (Sftp::attempt); this one counts from enqueue.
        request_timeout_secs: 24 * 3600,
        ..Default::default()
    };
    let raw = RawSftpSession::new_with_config(channel.into_stream(), config);
    let version = tokio::time::timeout(Duration::from_secs(30), raw.init())
        .await
        .map_err(|_| fail("no answer to SFTP init".into()))?
        .map_err(|e| fail(format!("SFTP init failed: {e}")))?;
    Ok((raw, version))
}
