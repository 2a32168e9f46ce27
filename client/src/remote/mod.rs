//! Everything that talks to the server, in two parts: [`ssh`], the SSH connection
//! (connecting, authentication, host keys, algorithms, proxies, external transports), and
//! [`sftp`], the SFTP request engine over it (requests, retries and reconnects, handles,
//! counters). `ssh` builds an [`Sftp`](sftp::Sftp) over the connection it made; `sftp` knows
//! nothing of SSH. Callers name each item by its part: `remote::ssh::...`, `remote::sftp::...`.

#[cfg(test)]
pub(crate) mod fake_server;
pub mod sftp;
pub mod ssh;
#[cfg(test)]
pub(crate) mod testing;
