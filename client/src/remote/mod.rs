//! Everything that talks to the server: the SSH connection, authentication, host key checking
//! and the SFTP request engine; SFTP over an external ssh program or a plain port (`external`).

pub mod algorithms;
pub mod auth;
pub mod auth_options;
mod certificates;
pub mod connect;
pub mod counters;
pub mod external;
#[cfg(test)]
pub(crate) mod fake_server;
pub mod handle;
pub mod known_hosts;
pub mod link;
pub mod proxy;
pub mod server;
pub mod sftp;
#[cfg(test)]
pub(crate) mod testing;

pub use auth::{AuthMethod, AuthOptions, IdentityAgent, NoPrompt, Prompter, Secret, SecretFor};
pub use connect::{
    AddressFamily, ConnectError, ConnectOptions, Connection, StrictHostKeyChecking, connect,
};
pub use counters::{Counters, Op};
pub use handle::Handle;
pub use sftp::{Sftp, SftpError};
