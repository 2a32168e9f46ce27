//! Everything that talks to the server, in two parts: [`ssh`], the SSH connection
//! (connecting, authentication, host keys, algorithms, proxies, external transports), and
//! [`sftp`], the SFTP request engine over it (requests, retries and reconnects, handles,
//! counters). `ssh` builds an [`Sftp`] over the connection it made; `sftp` knows nothing of SSH.

#[cfg(test)]
pub(crate) mod fake_server;
pub mod sftp;
pub mod ssh;
#[cfg(test)]
pub(crate) mod testing;

pub use sftp::{counters, handle, link, server};
pub use ssh::{algorithms, auth, auth_options, connect, external, known_hosts, proxy};

pub use sftp::counters::{Counters, Op};
pub use sftp::handle::Handle;
pub use sftp::{Sftp, SftpError};
pub use ssh::auth::{
    AuthMethod, AuthOptions, IdentityAgent, NoPrompt, Prompter, Secret, SecretFor,
};
pub use ssh::connect::{
    AddressFamily, ConnectError, ConnectOptions, Connection, StrictHostKeyChecking, connect,
};
