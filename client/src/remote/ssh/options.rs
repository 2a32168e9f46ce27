//! What connecting needs and how it fails: [`ConnectOptions`] (after the command line and
//! ssh_config were merged), the route to the server ([`Via`]), and [`ConnectError`].

use std::path::PathBuf;
use std::time::Duration;

use super::algorithms::Algorithms;
use super::auth_options::AuthOptions;
use super::known_hosts;
use super::prompt::Secret;

/// OpenSSH's `StrictHostKeyChecking`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StrictHostKeyChecking {
    /// Only keys already in known_hosts.
    Yes,
    /// Unknown hosts are added; changed keys refused.
    AcceptNew,
    /// Like accept-new (changed keys are still refused: we never connect to a changed key).
    No,
    /// Ask on the terminal about unknown hosts (refused in batch mode or without a terminal).
    #[default]
    Ask,
}

/// Everything needed to connect, after the command line and ssh_config were merged.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Host to connect to (ssh_config `HostName`), also the name looked up in known_hosts.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Remote user.
    pub user: String,
    /// Private keys to try, in order.
    pub identity_files: Vec<PathBuf>,
    /// Whether `identity_files` were named by the user (a missing one is then reported).
    pub identity_files_explicit: bool,
    /// User known_hosts files (the first one is where new keys are added).
    pub user_known_hosts: Vec<PathBuf>,
    /// System-wide known_hosts files (read only).
    pub global_known_hosts: Vec<PathBuf>,
    /// Host key policy.
    pub strict_host_key_checking: StrictHostKeyChecking,
    /// Never prompt.
    pub batch_mode: bool,
    /// Limit on resolving + TCP connect + SSH handshake.
    pub connect_timeout: Option<Duration>,
    /// Deadline for each SFTP request.
    pub request_deadline: Duration,
    /// Send an SSH keepalive after this much silence (`ServerAliveInterval`).
    pub keepalive_interval: Option<Duration>,
    /// A password given beforehand (`-o password_stdin`): answers the password prompts of the
    /// first login, even in batch mode, and is then remembered like a typed one.
    pub password: Option<Secret>,
    /// How the connection reaches the server (`ProxyCommand`, `ProxyJump`, or TCP).
    pub via: Via,
    /// Algorithms to offer (`Ciphers`, `KexAlgorithms`, `MACs`, `HostKeyAlgorithms`,
    /// `PubkeyAcceptedAlgorithms`) and `Compression`.
    pub algorithms: Algorithms,
    /// `HostKeyAlias`: the name the host key is looked up under (and added as) in known_hosts,
    /// instead of `host` or `[host]:port`.
    pub host_key_alias: Option<String>,
    /// `AddressFamily`: which addresses of the host to connect to.
    pub address_family: AddressFamily,
    /// `ConnectionAttempts`: TCP connects tried, one second apart (at least 1).
    pub connection_attempts: u32,
    /// `ServerAliveCountMax`: keepalives left unanswered before the connection is given up.
    pub keepalive_max: usize,
    /// Which authentication methods and keys to use, in which order.
    pub auth: AuthOptions,
    /// `-o sftp_server`: the subsystem to ask for instead of `sftp`, or (with a `/`) the
    /// command to run on the server instead.
    pub sftp_server: Option<String>,
}

impl ConnectOptions {
    /// The name the host has in known_hosts: `HostKeyAlias` if set, else `host` (`[host]:port`
    /// when the port is not 22).
    pub fn known_hosts_name(&self) -> String {
        match &self.host_key_alias {
            Some(alias) => alias.clone(),
            None => known_hosts::host_entry_name(&self.host, self.port),
        }
    }

    /// Every known_hosts file, the user's first.
    pub(super) fn known_hosts_files(&self) -> Vec<PathBuf> {
        self.user_known_hosts
            .iter()
            .chain(&self.global_known_hosts)
            .cloned()
            .collect()
    }
}

/// OpenSSH's `AddressFamily`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressFamily {
    /// IPv4 and IPv6 (`any`).
    #[default]
    Any,
    /// IPv4 only (`inet`).
    Inet,
    /// IPv6 only (`inet6`).
    Inet6,
}

impl AddressFamily {
    pub(super) fn admits(self, addr: &std::net::SocketAddr) -> bool {
        match self {
            AddressFamily::Any => true,
            AddressFamily::Inet => addr.is_ipv4(),
            AddressFamily::Inet6 => addr.is_ipv6(),
        }
    }
}

/// Why connecting failed. Each renders as one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The name did not resolve.
    #[error("ssh: Could not resolve hostname {host}: {reason}")]
    Resolve {
        /// Host name.
        host: String,
        /// Resolver message.
        reason: String,
    },
    /// TCP connect failed (refused, unreachable...).
    #[error("ssh: connect to host {host} port {port}: {reason}")]
    Connect {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// OS message.
        reason: String,
    },
    /// ConnectTimeout elapsed.
    #[error("ssh: connect to host {host} port {port}: Connection timed out after {secs} s")]
    Timeout {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The timeout.
        secs: u64,
    },
    /// The host key was refused; the message says why and what to do.
    #[error("Host key verification failed: {0}")]
    HostKey(String),
    /// No authentication method worked.
    #[error(
        "Permission denied for {user}@{host} (tried: {tried}); check the user name and keys (-o IdentityFile=...), or load the key into ssh-agent"
    )]
    Auth {
        /// User.
        user: String,
        /// Host.
        host: String,
        /// What was tried, for the message.
        tried: String,
    },
    /// The SSH protocol failed after connecting.
    #[error("ssh: {host}: {reason}")]
    Ssh {
        /// Host.
        host: String,
        /// What failed.
        reason: String,
    },
    /// The server refused or broke the SFTP subsystem.
    #[error("sftp: {host}: {reason}")]
    Sftp {
        /// Host.
        host: String,
        /// What failed.
        reason: String,
    },
}

/// How the SSH connection reaches the server.
#[derive(Debug, Clone, Default)]
pub enum Via {
    /// A TCP connection to the host and port.
    #[default]
    Direct,
    /// `ProxyCommand`: run through the shell (tokens already expanded); its stdin and stdout
    /// carry the connection.
    Command(String),
    /// `ProxyJump`: each hop a full SSH connection (its own host key check and login), the next
    /// one carried through a `direct-tcpip` channel of the previous one; the last one carries
    /// the connection to the server.
    Jump(Vec<ConnectOptions>),
}
