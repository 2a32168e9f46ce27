//! Turning the parsed command line into everything a mount needs ([`Config`]), validated.
//! Precedence is OpenSSH's: command line, then ssh_config, then defaults.

mod given;
mod log;
pub mod login;
mod mount;
mod notes;
pub mod owners;
pub mod password;
mod resolve;
mod sources;

use std::path::PathBuf;
use std::time::Duration;

use sshfs_cache::CacheConfig;
use sshfs_client::fs::idmap::Owners;
use sshfs_client::fs::symlinks::LinkOptions;
use sshfs_client::fuse::MountConfig;
use sshfs_client::remote::sftp::link::ReconnectPolicy;
use sshfs_client::remote::sftp::server::ServerOverrides;
use sshfs_client::remote::ssh::connect::ConnectOptions;
use sshfs_client::remote::ssh::external::{External, ExternalOptions};

use crate::options::args::Args;
use crate::options::mount_opts::{KeyringChoice, LogLevel, MountOpts};
use crate::options::{parse, values};
use crate::ssh::ssh_command;
use crate::ssh::target::{self, Target};

use given::SshGiven;
use log::log_filter;
use notes::Notes;
use password::read_password_stdin;
use resolve::resolve;

/// How long a request waits for a lost connection to come back (`-o reconnect_timeout`).
const DEFAULT_RECONNECT_WAIT: Duration = Duration::from_secs(60);

/// Everything a mount needs, validated.
#[derive(Debug)]
pub struct Config {
    /// Where to connect.
    pub connect: ConnectOptions,
    /// Remote path as given ("" = home).
    pub remote_path: String,
    /// Mountpoint as given.
    pub mountpoint: PathBuf,
    /// Mount settings.
    pub mount: MountConfig,
    /// Our metadata cache.
    pub cache: CacheConfig,
    /// The content cache on local disk (`-o data_cache`), if asked for.
    pub data_cache: Option<mount::DataCacheConfig>,
    /// How often directories programs use are re-checked (`-o recheck`; zero: never).
    pub recheck: Duration,
    /// How symlinks and hard links are shown and made (`follow_symlinks`, ...).
    pub links: LinkOptions,
    /// What `max_conns`, `symlink_order` and `hard_remove` force about the server.
    pub server: ServerOverrides,
    /// Stay in the foreground.
    pub foreground: bool,
    /// Log every request.
    pub debug: bool,
    /// Unknown options skipped because of mount's sloppy flag.
    pub skipped_options: Vec<String>,
    /// Reconnect when the connection drops (`None`: `-o reconnect=no`).
    pub reconnect: Option<ReconnectPolicy>,
    /// How owners and modes are shown (`-o idmap`, `uid`, `gid`, `umask`).
    pub owners: Owners,
    /// `-o idmap=user`: [`Config::owners`] still needs the login user's remote ids.
    pub idmap_user: bool,
    /// The default log filter (`-d`, `-v`, `LogLevel`; `SSHFS_RS_LOG` wins over it).
    pub log_filter: &'static str,
    /// Where stored passwords and passphrases are looked up (`-o keyring`).
    pub keyring: KeyringChoice,
    /// Take the mount down when the serving process dies (`-o auto_unmount`).
    pub auto_unmount: bool,
    /// SFTP over an external program or a plain port (`-o ssh_command`, `-o directport`)
    /// instead of our own SSH connection; `connect` then holds only what the command line
    /// says (no ssh_config is read: the program reads its own).
    pub external: Option<ExternalOptions>,
}

/// Builds the configuration; the error is one line for the user. The steps run in this order
/// (so the first of several problems is the one named): the source, the `-o` options, what a
/// user's mount may ask for, owners, the transport, the SSH options (warnings printed), the
/// password from stdin, the kernel flags a user's mount cannot have.
pub fn build(args: Args) -> Result<Config, String> {
    let (Some(source), Some(mountpoint)) = (args.source.as_deref(), args.mountpoint.clone()) else {
        return Err("a source ([user@]host:[path]) and a mountpoint are needed".to_owned());
    };
    let target: Target = target::parse(source)?;
    let o = mount_options(&args)?;
    let unprivileged = !nix::unistd::geteuid().is_root();
    if unprivileged {
        mount::check_allow_other(&o)?;
    }
    let (owners, idmap_user) = owners::build(&o)?;
    let external = external_transport(&args, &o, &target)?;
    let sources = sources::mount_sources(&args, external.is_some());
    let given = SshGiven::for_mount(&args, &o, &target)?;
    let mut notes = Notes::default();
    let mut connect = resolve(&target.host, &given, &sources, 0, &mut notes)?;
    let log_level = o.log_level.or(notes.log_level);
    let verbose = args.verbose || log_level >= Some(LogLevel::Verbose);
    notes.add_options(&o);
    notes.print(log_level, args.verbose, verbose);

    // Read now, before going to the background (stdin is /dev/null afterwards); not for a
    // fake mount (mount -f), which connects nowhere.
    connect.password = if o.password_stdin && !args.fake {
        Some(read_password_stdin()?)
    } else {
        None
    };
    if unprivileged {
        mount::check_user_flags(&o)?;
    }
    connect.sftp_server = o.sftp_server.clone();
    let debug = args.debug || o.debug;
    let fs_name = o.fsname.clone().unwrap_or_else(|| match &external {
        // As sshfs: the source as given (the external ssh picks the user).
        Some(_) => source.to_owned(),
        None => format!("{}@{}:{}", connect.user, target.host, target.path),
    });
    let external = external.map(|how| ExternalOptions {
        how,
        host: target.host.clone(),
        request_deadline: connect.request_deadline,
        connect_timeout: connect.connect_timeout,
    });
    Ok(Config {
        connect,
        remote_path: target.path,
        mountpoint,
        mount: mount::mount_config(&o, fs_name, unprivileged),
        cache: mount::cache_config(&o),
        data_cache: mount::data_cache(&o),
        recheck: mount::recheck_interval(&o),
        links: o.links,
        server: o.server,
        // As sshfs: -o passive keeps stdin and stdout, so it cannot go to the background.
        foreground: args.foreground || debug || o.passive,
        debug,
        log_filter: log_filter(debug, args.verbose, log_level),
        skipped_options: o.skipped_unknown.clone(),
        reconnect: reconnect_policy(&o),
        owners,
        idmap_user,
        keyring: o.keyring,
        auto_unmount: o.auto_unmount,
        external,
    })
}

/// The `-o` options, with what `-C` and `-1` stand for.
fn mount_options(args: &Args) -> Result<MountOpts, String> {
    let mut given = args.options.clone();
    if args.compression {
        given.push("Compression=yes".to_owned());
    }
    if args.protocol_1 {
        given.push("ssh_protocol=1".to_owned());
    }
    parse::parse_with(&given, args.sloppy)
}

/// The external transport `-o ssh_command`, `directport` or `passive` asks for, if any.
fn external_transport(
    args: &Args,
    o: &MountOpts,
    target: &Target,
) -> Result<Option<External>, String> {
    let port = match &args.port {
        Some(p) => Some(values::parse_port(p).map_err(|e| format!("bad -p: {e}"))?),
        None => None,
    };
    ssh_command::external(
        o,
        &ssh_command::SshArgs {
            config_file: args.ssh_config.clone(),
            port,
            user: target.user.clone(),
            batch_mode: args.helper,
            options: o.ssh_options.clone(),
            host: target.host.clone(),
        },
    )
}

/// Reconnecting after a dropped connection, unless `-o reconnect=no`; `-o passive` has nothing
/// to reconnect to (the mount ends with its stdin).
fn reconnect_policy(o: &MountOpts) -> Option<ReconnectPolicy> {
    (o.reconnect != Some(false) && !o.passive).then(|| ReconnectPolicy {
        wait: o.reconnect_timeout.unwrap_or(DEFAULT_RECONNECT_WAIT),
        ..ReconnectPolicy::default()
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::Parser;
    use sshfs_client::remote::ssh::proxy::Via;
    use sshfs_client::remote::{ssh::auth::AuthMethod, ssh::auth::IdentityAgent};

    use super::log::{LOG_DEBUG, LOG_DEFAULT, LOG_VERBOSE};
    use super::resolve::DEFAULT_KEEPALIVE_MAX;
    use super::*;

    fn args(v: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("sshfs-rs").chain(v.iter().copied())).unwrap()
    }

    #[test]
    fn a_remote_path_that_is_not_utf8_reaches_the_server_as_its_bytes() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let source = OsStr::from_bytes(b"me@h:/srv/caf\xe9");
        let argv = ["sshfs-rs", "-F", "/dev/null"].map(OsStr::new);
        let argv = argv.into_iter().chain([source, OsStr::new("/mnt")]);
        let c = build(Args::try_parse_from(argv).unwrap()).unwrap();
        let sent = sshfs_client::kernel_names::bytes_to_kernel(&c.remote_path);
        assert_eq!(sent, b"/srv/caf\xe9");
    }

    #[test]
    fn options_after_positionals_and_precedence() {
        let c = build(args(&[
            "me@h:/srv",
            "/mnt",
            "-p",
            "2200",
            "-o",
            "Port=9,ro",
            "-F",
            "/dev/null",
        ]))
        .unwrap();
        assert_eq!(c.connect.port, 2200, "-p wins over -o Port");
        assert_eq!(c.connect.user, "me");
        assert!(c.mount.read_only);
        assert_eq!(c.remote_path, "/srv");
        assert!(!c.foreground);
        let c = build(args(&["-d", "-F", "/dev/null", "h:", "/mnt"])).unwrap();
        assert!(c.foreground && c.debug);
        assert_eq!(c.connect.port, 22);
    }

    #[test]
    fn reads_are_synchronous_unless_async_read() {
        let mount = |extra: &[&str]| {
            let mut v = vec!["h:", "/mnt", "-F", "/dev/null"];
            v.extend_from_slice(extra);
            build(args(&v)).unwrap().mount
        };
        assert!(
            mount(&[]).sync_read,
            "sync reads by default (interruptible)"
        );
        assert!(!mount(&["-o", "async_read"]).sync_read);
        assert!(
            mount(&["-o", "async_read,sync_read"]).sync_read,
            "the last one wins"
        );
    }

    #[test]
    fn proxy_jump_and_proxy_command_from_options() {
        let c = build(args(&[
            "me@h:/srv",
            "/mnt",
            "-F",
            "/dev/null",
            "-o",
            "ProxyJump=j1\\,u@j2:2222",
        ]))
        .unwrap();
        let Via::Jump(hops) = &c.connect.via else {
            panic!("not a jump: {:?}", c.connect.via)
        };
        let hops: Vec<_> = hops
            .iter()
            .map(|h| (h.user.as_str(), h.host.as_str(), h.port))
            .collect();
        assert_eq!(hops[1], ("u", "j2", 2222));
        assert_eq!(hops[0].1, "j1");
        let c = build(args(&[
            "me@h:/srv",
            "/mnt",
            "-p",
            "2200",
            "-F",
            "/dev/null",
            "-o",
            "ProxyCommand=nc %h %p # %r %%",
        ]))
        .unwrap();
        assert!(
            matches!(&c.connect.via, Via::Command(cmd) if cmd == "nc h 2200 # me %"),
            "{:?}",
            c.connect.via
        );
        let c = build(args(&[
            "h:",
            "/mnt",
            "-F",
            "/dev/null",
            "-o",
            "ProxyCommand=none",
        ]))
        .unwrap();
        assert!(matches!(c.connect.via, Via::Direct));
    }

    /// ServerAliveCountMax, HostKeyAlias, ConnectionAttempts and the auth options, from -o and
    /// from ssh_config, the command line winning.
    #[test]
    fn ssh_options_from_the_command_line_and_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("config");
        std::fs::write(
            &conf,
            "Host h
  ServerAliveCountMax 9
  HostKeyAlias fromconfig
  ConnectionAttempts 4
  PubkeyAuthentication no
  IdentityAgent none
  CertificateFile /c/%r.cert
  LogLevel ERROR
  Ciphers ^aes128-ctr
",
        )
        .unwrap();
        let f = conf.display().to_string();
        let c = build(args(&["me@h:", "/mnt", "-F", &f])).unwrap();
        assert_eq!(c.connect.keepalive_max, 9);
        assert_eq!(c.connect.host_key_alias.as_deref(), Some("fromconfig"));
        assert_eq!(c.connect.known_hosts_name(), "fromconfig");
        assert_eq!(c.connect.connection_attempts, 4);
        assert_eq!(c.connect.auth.disabled, vec![AuthMethod::PublicKey]);
        assert_eq!(c.connect.auth.agent, IdentityAgent::None);
        assert_eq!(
            c.connect.auth.certificate_files,
            vec![PathBuf::from("/c/me.cert")]
        );
        assert_eq!(c.log_filter, "error");
        let ciphers = c.connect.algorithms.ciphers.unwrap();
        assert_eq!(ciphers[0], "aes128-ctr");
        let c = build(args(&[
            "me@h:",
            "/mnt",
            "-F",
            &f,
            "-v",
            "-o",
            "ServerAliveCountMax=2,HostKeyAlias=given,PubkeyAuthentication=yes,IdentityAgent=/s/%u",
        ]))
        .unwrap();
        assert_eq!(c.connect.keepalive_max, 2);
        assert_eq!(c.connect.known_hosts_name(), "given");
        assert!(c.connect.auth.disabled.is_empty());
        assert!(
            matches!(c.connect.auth.agent, IdentityAgent::Socket(ref p) if p.starts_with("/s/"))
        );
        assert_eq!(c.log_filter, LOG_VERBOSE, "-v wins over LogLevel ERROR");
        let c = build(args(&["me@h:", "/mnt", "-F", "/dev/null"])).unwrap();
        assert_eq!(c.connect.keepalive_max, DEFAULT_KEEPALIVE_MAX);
        assert_eq!(c.connect.known_hosts_name(), "h");
        assert_eq!(c.log_filter, LOG_DEFAULT);
    }

    #[test]
    fn log_levels() {
        assert_eq!(log_filter(true, false, Some(LogLevel::Quiet)), LOG_DEBUG);
        assert_eq!(log_filter(false, false, Some(LogLevel::Quiet)), "off");
        assert_eq!(
            log_filter(false, false, Some(LogLevel::Verbose)),
            LOG_VERBOSE
        );
        assert_eq!(log_filter(false, true, Some(LogLevel::Debug3)), "debug");
        assert_eq!(log_filter(false, false, Some(LogLevel::Debug1)), LOG_DEBUG);
    }

    #[test]
    fn bad_port_is_an_error() {
        assert!(build(args(&["h:", "/mnt", "-p", "99999", "-F", "/dev/null"])).is_err());
    }
}
