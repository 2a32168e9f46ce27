//! Everything that talks to the server: the SSH connection, authentication, host key checking
//! and the SFTP request engine; SFTP over an external ssh program or a plain port (`external`).

pub mod auth;
pub mod connect;
pub mod counters;
pub mod external;
#[cfg(test)]
pub(crate) mod fake_server;
pub mod handle;
pub mod known_hosts;
pub mod link;
pub mod proxy;
pub mod sftp;

pub use auth::{NoPrompt, Prompter, Secret};
pub use connect::{ConnectError, ConnectOptions, Connection, StrictHostKeyChecking, connect};
pub use counters::{Counters, Op};
pub use handle::Handle;
pub use sftp::{Sftp, SftpError};
