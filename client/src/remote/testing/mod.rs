//! The seam for running the fs layer without a network: anything that can serve an SFTP
//! session on a byte stream ([`ServeSftp`]) becomes a [`Connector`] ([`StreamConnector`]), so
//! the real codec (russh-sftp), our SFTP engine ([`Sftp`]), the link and its reconnect logic,
//! and the whole fs layer ([`crate::fs::SshFs`]) run against it exactly as against sshd.
//!
//! Implementations compose: a server (an in-memory one, or OpenSSH's own `sftp-server`
//! program) is wrapped by fault injectors, which are themselves [`ServeSftp`].
//!
//! Every session belongs to a **connection** (what one SSH connection is: a reconnect makes a
//! new one) and has a **channel** number within it (0 first; more for striped writes). A fault
//! that "cuts the link" ends every channel of a connection at once, as a dropped TCP connection
//! does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use russh_sftp::client::RawSftpSession;
use tokio::io::DuplexStream;

use super::sftp::Sftp;
use super::sftp::link::{ChannelOpener, ConnectFailure, Connected, Connector, ReconnectPolicy};

pub(crate) mod faults;
pub(crate) mod memory;
pub(crate) mod process;
pub(crate) mod wire;

/// Bytes buffered in each direction of an in-process pipe.
pub(crate) const PIPE_BUFFER: usize = 1 << 20;

/// Serves SFTP sessions on in-process byte streams.
pub(crate) trait ServeSftp: Send + Sync + 'static {
    /// Starts serving one new session (one SSH channel's `sftp-server`): channel `channel` of
    /// connection `connection` (numbered from 1 by the [`StreamConnector`]). Returns the
    /// client's end of its stream; the server reads requests from it and writes answers to it,
    /// starting with the INIT / VERSION exchange.
    fn open_session(&self, connection: u64, channel: usize) -> DuplexStream;
}

/// A [`Connector`] over any [`ServeSftp`]: each connect is a new connection, whose first
/// channel is initialised as `remote::ssh::connect::connect` initialises sshd's (VERSION's extensions, then
/// `limits@openssh.com` when offered), and which can open more channels.
pub(crate) struct StreamConnector {
    server: Arc<dyn ServeSftp>,
    connections: AtomicU64,
}

impl StreamConnector {
    /// A connector to `server`.
    pub(crate) fn new(server: Arc<dyn ServeSftp>) -> Arc<Self> {
        Arc::new(Self {
            server,
            connections: AtomicU64::new(0),
        })
    }

    /// How many connections were made so far (the first connect, then each reconnect).
    pub(crate) fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    /// A first connection, as the mount makes it: our engine over it, with its limits and
    /// extensions, reconnecting through this connector when the connection dies.
    pub(crate) async fn connect_sftp(self: &Arc<Self>, policy: ReconnectPolicy) -> Arc<Sftp> {
        let connection = self.connections.fetch_add(1, Ordering::SeqCst) + 1;
        let first = start(Arc::clone(&self.server), connection)
            .await
            .expect("first connection to the test server");
        let sftp = Sftp::new(
            first.connected.raw,
            first.limits,
            first.extensions,
            Duration::from_secs(10),
        );
        if let Some(opener) = first.connected.channels {
            sftp.set_channel_opener(opener);
        }
        sftp.reconnect_with(self.clone(), policy);
        sftp
    }
}

/// Opens connection number `connection` to `server` and initialises its first channel.
async fn start(server: Arc<dyn ServeSftp>, connection: u64) -> Result<Started, ConnectFailure> {
    let raw = RawSftpSession::new(server.open_session(connection, 0));
    let version = raw
        .init()
        .await
        .map_err(|e| ConnectFailure::Retry(format!("SFTP init: {e}")))?;
    let extensions: Vec<String> = version.extensions.keys().cloned().collect();
    let limits = if version.extensions.contains_key("limits@openssh.com") {
        raw.limits()
            .await
            .ok()
            .map(|l| (l.max_read_len, l.max_write_len))
    } else {
        None
    };
    let channels: Arc<dyn ChannelOpener> = Arc::new(StreamChannels {
        server,
        connection,
        next: AtomicUsize::new(1),
    });
    Ok(Started {
        connected: Connected {
            raw,
            keep: Box::new(()),
            channels: Some(channels),
        },
        limits,
        extensions,
    })
}

/// A first connection and what its VERSION and limits said.
struct Started {
    connected: Connected,
    limits: Option<(u64, u64)>,
    extensions: Vec<String>,
}

impl Connector for StreamConnector {
    fn connect(&self) -> BoxFuture<'static, Result<Connected, ConnectFailure>> {
        let connection = self.connections.fetch_add(1, Ordering::SeqCst) + 1;
        let server = Arc::clone(&self.server);
        Box::pin(async move { start(server, connection).await.map(|s| s.connected) })
    }
}

/// More channels of one connection.
struct StreamChannels {
    server: Arc<dyn ServeSftp>,
    connection: u64,
    next: AtomicUsize,
}

impl ChannelOpener for StreamChannels {
    fn open(&self) -> BoxFuture<'static, Result<RawSftpSession, String>> {
        let channel = self.next.fetch_add(1, Ordering::SeqCst);
        let stream = self.server.open_session(self.connection, channel);
        Box::pin(async move {
            let raw = RawSftpSession::new(stream);
            raw.init().await.map_err(|e| format!("SFTP init: {e}"))?;
            Ok(raw)
        })
    }
}

/// A reconnect policy for tests: retry at once and often, give up waiting after 5 s.
pub(crate) fn quick_reconnect() -> ReconnectPolicy {
    ReconnectPolicy {
        wait: Duration::from_secs(5),
        max_backoff: Duration::from_millis(20),
        auth_tries: 3,
    }
}

impl ServeSftp for super::fake_server::FakeServer {
    fn open_session(&self, _connection: u64, _channel: usize) -> DuplexStream {
        let (client, server) = tokio::io::duplex(PIPE_BUFFER);
        self.serve_stream(server);
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::fake_server::FakeServer;

    /// The fake server behind the generic connector: a file written through our engine is on
    /// the server, and a second connection made after the first died reads it back.
    #[tokio::test]
    async fn a_server_behind_the_stream_connector_serves_the_engine() {
        let server = FakeServer::new(1);
        server.put("/f", b"hello".to_vec());
        let connector = StreamConnector::new(Arc::new(server.clone()));
        let sftp = connector.connect_sftp(quick_reconnect()).await;
        let attrs = sftp.lstat("/f").await.expect("lstat");
        assert_eq!(attrs.size, Some(5));
        assert_eq!(connector.connections(), 1);
    }
}
