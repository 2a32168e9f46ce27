//! What the command line says about the SSH connection ([`SshGiven`]), which wins over
//! ssh_config.

use std::path::PathBuf;
use std::time::Duration;

use sshfs_client::remote::{
    ssh::auth::AuthMethod, ssh::connect::AddressFamily, ssh::connect::StrictHostKeyChecking,
};

use crate::options::args::Args;
use crate::options::mount_opts::MountOpts;
use crate::options::values;
use crate::ssh::target::Target;

/// Default per-request deadline.
pub(super) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The port the command line names: `-p`, else `-o Port`.
pub(super) fn port_given(args: &Args, o: &MountOpts) -> Result<Option<u16>, String> {
    match &args.port {
        Some(p) => Ok(Some(
            values::parse_port(p).map_err(|e| format!("bad -p: {e}"))?,
        )),
        None => Ok(o.port),
    }
}

/// What the command line says about the SSH connection (for a jump host: only what its
/// `ProxyJump` entry says), winning over ssh_config.
#[derive(Debug, Default, Clone)]
pub(super) struct SshGiven {
    pub(super) user: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) identity_files: Vec<PathBuf>,
    pub(super) user_known_hosts: Option<Vec<PathBuf>>,
    pub(super) strict_host_key_checking: Option<StrictHostKeyChecking>,
    pub(super) batch_mode: Option<bool>,
    pub(super) connect_timeout: Option<Duration>,
    pub(super) server_alive_interval: Option<Duration>,
    pub(super) proxy_jump: Option<String>,
    pub(super) proxy_command: Option<String>,
    pub(super) request_deadline: Duration,
    pub(super) ciphers: Option<String>,
    pub(super) kex_algorithms: Option<String>,
    pub(super) macs: Option<String>,
    pub(super) host_key_algorithms: Option<String>,
    pub(super) pubkey_accepted_algorithms: Option<String>,
    pub(super) compression: Option<bool>,
    pub(super) identities_only: Option<bool>,
    pub(super) identity_agent: Option<String>,
    pub(super) certificate_files: Vec<PathBuf>,
    pub(super) address_family: Option<AddressFamily>,
    pub(super) host_key_alias: Option<String>,
    pub(super) global_known_hosts: Option<Vec<PathBuf>>,
    pub(super) connection_attempts: Option<u32>,
    pub(super) preferred_authentications: Option<Vec<AuthMethod>>,
    pub(super) pubkey_authentication: Option<bool>,
    pub(super) password_authentication: Option<bool>,
    pub(super) kbd_interactive_authentication: Option<bool>,
    pub(super) server_alive_count_max: Option<usize>,
}

impl SshGiven {
    /// What the mount's command line says: the source's `user@`, `-p`, `-o` (a mount helper
    /// never prompts: mount(8), fstab at boot and autofs have no one to ask).
    pub(super) fn for_mount(
        args: &Args,
        o: &MountOpts,
        target: &Target,
    ) -> Result<SshGiven, String> {
        Ok(SshGiven {
            user: target.user.clone().or(o.user.clone()),
            port: port_given(args, o)?,
            identity_files: o.identity_files.clone(),
            user_known_hosts: o.user_known_hosts.clone(),
            strict_host_key_checking: o.strict_host_key_checking,
            batch_mode: if args.helper {
                Some(true)
            } else {
                o.batch_mode
            },
            connect_timeout: o.connect_timeout,
            server_alive_interval: o.server_alive_interval,
            proxy_jump: o.proxy_jump.clone(),
            proxy_command: o.proxy_command.clone(),
            request_deadline: o.request_timeout.unwrap_or(DEFAULT_REQUEST_TIMEOUT),
            ciphers: o.ciphers.clone(),
            kex_algorithms: o.kex_algorithms.clone(),
            macs: o.macs.clone(),
            host_key_algorithms: o.host_key_algorithms.clone(),
            pubkey_accepted_algorithms: o.pubkey_accepted_algorithms.clone(),
            compression: o.compression,
            identities_only: o.identities_only,
            identity_agent: o.identity_agent.clone(),
            certificate_files: o.certificate_files.clone(),
            address_family: o.address_family,
            host_key_alias: o.host_key_alias.clone(),
            global_known_hosts: o.global_known_hosts.clone(),
            connection_attempts: o.connection_attempts,
            preferred_authentications: o.preferred_authentications.clone(),
            pubkey_authentication: o.pubkey_authentication,
            password_authentication: o.password_authentication,
            kbd_interactive_authentication: o.kbd_interactive_authentication,
            server_alive_count_max: o.server_alive_count_max,
        })
    }
}
