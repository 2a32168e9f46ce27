//! [`MountOpts`]: what the `-o` options say, collected and checked but not yet acted on, and
//! the value types only options carry.

use std::path::PathBuf;
use std::time::Duration;

use sshfs_client::fs::idmap::NoMap;
use sshfs_client::fs::symlinks::LinkOptions;
use sshfs_client::fuse::Atime;
use sshfs_client::remote::sftp::server::ServerOverrides;
use sshfs_client::remote::{
    ssh::auth::AuthMethod, ssh::connect::AddressFamily, ssh::connect::StrictHostKeyChecking,
};

/// `-o idmap=`: how remote owners are shown.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum IdMapping {
    /// As the server has them (the default, as sshfs's).
    #[default]
    None,
    /// The login user's remote ids shown as the local user's.
    User,
    /// The ids of `uidfile` and `gidfile`.
    File,
}

/// Settings collected from `-o` options. `None` means "not given" (ssh_config or the default
/// applies).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MountOpts {
    /// IdentityFile, in order.
    pub identity_files: Vec<PathBuf>,
    /// User.
    pub user: Option<String>,
    /// Port.
    pub port: Option<u16>,
    /// UserKnownHostsFile.
    pub user_known_hosts: Option<Vec<PathBuf>>,
    /// StrictHostKeyChecking.
    pub strict_host_key_checking: Option<StrictHostKeyChecking>,
    /// BatchMode.
    pub batch_mode: Option<bool>,
    /// ConnectTimeout.
    pub connect_timeout: Option<Duration>,
    /// ServerAliveInterval (zero = off).
    pub server_alive_interval: Option<Duration>,
    /// password_stdin: read the password from stdin.
    pub password_stdin: bool,
    /// keyring: where stored secrets are looked up.
    pub keyring: KeyringChoice,
    /// ProxyJump (as given).
    pub proxy_jump: Option<String>,
    /// ProxyCommand (as given).
    pub proxy_command: Option<String>,
    /// Every SSH option given (origin ssh_config(5)), as `Name=value`, in order: passed on to
    /// the program of `ssh_command`.
    pub ssh_options: Vec<String>,
    /// ssh_command (as given).
    pub ssh_command: Option<String>,
    /// sftp_server (as given).
    pub sftp_server: Option<String>,
    /// directport.
    pub directport: Option<u16>,
    /// passive.
    pub passive: bool,
    /// ro.
    pub read_only: bool,
    /// suid (default nosuid).
    pub suid: bool,
    /// dev (default nodev).
    pub dev: bool,
    /// noexec.
    pub noexec: bool,
    /// atime, noatime, relatime.
    pub atime: Atime,
    /// nodiratime.
    pub nodiratime: bool,
    /// sync.
    pub sync: bool,
    /// dirsync.
    pub dirsync: bool,
    /// fsname.
    pub fsname: Option<String>,
    /// subtype.
    pub subtype: Option<String>,
    /// max_read.
    pub max_read: Option<u32>,
    /// allow_other.
    pub allow_other: bool,
    /// allow_root.
    pub allow_root: bool,
    /// auto_unmount.
    pub auto_unmount: bool,
    /// direct_io.
    pub direct_io: bool,
    /// default_permissions.
    pub default_permissions: bool,
    /// idmap.
    pub idmap: IdMapping,
    /// uidfile.
    pub uid_file: Option<PathBuf>,
    /// gidfile.
    pub gid_file: Option<PathBuf>,
    /// nomap.
    pub nomap: Option<NoMap>,
    /// uid.
    pub uid: Option<u32>,
    /// gid.
    pub gid: Option<u32>,
    /// umask.
    pub umask: Option<u32>,
    /// async_read (sync_read clears it).
    pub async_read: bool,
    /// debug.
    pub debug: bool,
    /// timeout.
    pub request_timeout: Option<Duration>,
    /// reconnect.
    pub reconnect: Option<bool>,
    /// reconnect_timeout.
    pub reconnect_timeout: Option<Duration>,
    /// attr_timeout.
    pub attr_timeout: Option<Duration>,
    /// entry_timeout.
    pub entry_timeout: Option<Duration>,
    /// negative_timeout.
    pub negative_timeout: Option<Duration>,
    /// cache (false = no caching at all).
    pub cache: Option<bool>,
    /// dir_cache.
    pub dir_cache: Option<bool>,
    /// cache_stat_timeout (or cache_timeout).
    pub cache_stat_timeout: Option<Duration>,
    /// cache_dir_timeout (or cache_timeout).
    pub cache_dir_timeout: Option<Duration>,
    /// cache_link_timeout (or cache_timeout).
    pub cache_link_timeout: Option<Duration>,
    /// cache_max_size.
    pub cache_max_size: Option<usize>,
    /// cache_max_bytes, in bytes.
    pub cache_max_bytes: Option<u64>,
    /// data_cache: `Some(None)` for the default directory.
    pub data_cache: Option<Option<std::path::PathBuf>>,
    /// data_cache_size, in bytes.
    pub data_cache_size: Option<u64>,
    /// recheck (zero: off).
    pub recheck: Option<Duration>,
    /// Options not known, skipped because of mount's sloppy flag (`-s` of a mount helper).
    pub skipped_unknown: Vec<String>,
    /// follow_symlinks, transform_symlinks, contain_symlinks, disable_hardlink.
    pub links: LinkOptions,
    /// max_write.
    pub max_write: Option<u32>,
    /// max_background.
    pub max_background: Option<u16>,
    /// Ciphers (checked, as given).
    pub ciphers: Option<String>,
    /// KexAlgorithms (checked, as given).
    pub kex_algorithms: Option<String>,
    /// MACs (checked, as given).
    pub macs: Option<String>,
    /// HostKeyAlgorithms (checked, as given).
    pub host_key_algorithms: Option<String>,
    /// PubkeyAcceptedAlgorithms (checked, as given).
    pub pubkey_accepted_algorithms: Option<String>,
    /// Compression (and -C).
    pub compression: Option<bool>,
    /// IdentitiesOnly.
    pub identities_only: Option<bool>,
    /// IdentityAgent (as given; expanded later).
    pub identity_agent: Option<String>,
    /// CertificateFile, in order.
    pub certificate_files: Vec<PathBuf>,
    /// AddressFamily.
    pub address_family: Option<AddressFamily>,
    /// HostKeyAlias.
    pub host_key_alias: Option<String>,
    /// GlobalKnownHostsFile.
    pub global_known_hosts: Option<Vec<PathBuf>>,
    /// ConnectionAttempts.
    pub connection_attempts: Option<u32>,
    /// PreferredAuthentications (the methods sshfs-rs implements, in order).
    pub preferred_authentications: Option<Vec<AuthMethod>>,
    /// PubkeyAuthentication.
    pub pubkey_authentication: Option<bool>,
    /// PasswordAuthentication.
    pub password_authentication: Option<bool>,
    /// KbdInteractiveAuthentication (ChallengeResponseAuthentication).
    pub kbd_interactive_authentication: Option<bool>,
    /// LogLevel.
    pub log_level: Option<LogLevel>,
    /// ServerAliveCountMax.
    pub server_alive_count_max: Option<usize>,
    /// ssh options given with -o that sshfs-rs knows but does not act on (named in a warning).
    pub ssh_unused: Vec<String>,
    /// ssh options given with -o that mean nothing for a mount (named with -v).
    pub ssh_irrelevant: Vec<String>,
    /// max_conns, symlink_order, hard_remove.
    pub server: ServerOverrides,
}

/// OpenSSH's `LogLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Nothing.
    Quiet,
    /// Fatal errors only.
    Fatal,
    /// Errors.
    Error,
    /// The default: errors and warnings.
    Info,
    /// What `-v` shows.
    Verbose,
    /// DEBUG, DEBUG1: every request.
    Debug1,
    /// DEBUG2.
    Debug2,
    /// DEBUG3: everything, the SSH library's too.
    Debug3,
}

/// Which store to use (`-o keyring=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyringChoice {
    /// The Secret Service when one answers on the session bus, else keyutils.
    #[default]
    Auto,
    /// Only the Secret Service.
    SecretService,
    /// Only the kernel keyring.
    Keyutils,
    /// No keyring: nothing is looked up.
    No,
}

impl KeyringChoice {
    /// Parses `auto`, `secret-service`, `keyutils` or `no`.
    pub fn parse(v: &str) -> Result<KeyringChoice, String> {
        match v {
            "" | "auto" | "yes" => Ok(KeyringChoice::Auto),
            "secret-service" => Ok(KeyringChoice::SecretService),
            "keyutils" => Ok(KeyringChoice::Keyutils),
            "no" => Ok(KeyringChoice::No),
            _ => Err(format!(
                "'{v}' is not a keyring: use auto, secret-service, keyutils or no"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices() {
        assert_eq!(KeyringChoice::parse("auto").unwrap(), KeyringChoice::Auto);
        assert_eq!(
            KeyringChoice::parse("keyutils").unwrap(),
            KeyringChoice::Keyutils
        );
        assert_eq!(
            KeyringChoice::parse("secret-service").unwrap(),
            KeyringChoice::SecretService
        );
        assert_eq!(KeyringChoice::parse("no").unwrap(), KeyringChoice::No);
        assert!(KeyringChoice::parse("kwallet").is_err());
    }
}
