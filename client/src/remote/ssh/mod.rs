//! The SSH side: connecting (directly, through a proxy command or jump hosts, or over an
//! external ssh program), authenticating, checking host keys, choosing algorithms; what it
//! hands on is an [`Sftp`](super::Sftp) session over the connection.

pub mod algorithms;
pub mod auth;
pub mod auth_options;
mod certificates;
pub mod connect;
pub mod external;
mod host_key;
pub mod known_hosts;
pub mod options;
mod prompt;
pub mod proxy;
