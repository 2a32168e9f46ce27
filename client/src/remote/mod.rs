//! Everything that talks to the server: the SSH connection, authentication, host key checking
//! and the SFTP request engine.

pub mod auth;
pub mod connect;
pub mod counters;
pub mod known_hosts;
pub mod sftp;

pub use auth::{NoPrompt, Prompter};
pub use connect::{ConnectError, ConnectOptions, Connection, StrictHostKeyChecking, connect};
pub use counters::{Counters, Op};
pub use sftp::{Sftp, SftpError};
