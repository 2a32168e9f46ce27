//! The command line: clap arguments, merged with `-o` options and ssh_config into the runtime
//! configuration. Precedence is OpenSSH's: command line, then ssh_config, then defaults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, ValueHint};
use sshfs_cache::CacheConfig;
use sshfs_client::fs::idmap::Owners;
use sshfs_client::fs::symlinks::LinkOptions;
use sshfs_client::fuse::{KernelTtls, MountConfig, MountFlags};
use sshfs_client::remote::algorithms::{self, Algorithms, ListKind};
use sshfs_client::remote::external::ExternalOptions;
use sshfs_client::remote::link::ReconnectPolicy;
use sshfs_client::remote::proxy::{self, Via};
use sshfs_client::remote::server::ServerOverrides;
use sshfs_client::remote::{
    AddressFamily, AuthMethod, AuthOptions, ConnectOptions, IdentityAgent, Secret,
    StrictHostKeyChecking,
};

use crate::options::{self, LogLevel, MountOpts};
use crate::ssh_command;
use crate::ssh_config::{self, Tokens, expand_path};
use crate::target::{self, Target};

/// Default per-request deadline.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a request waits for a lost connection to come back (`-o reconnect_timeout`).
const DEFAULT_RECONNECT_WAIT: Duration = Duration::from_secs(60);
/// Default keepalive interval: a dead connection is noticed after 3 unanswered ones.
const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(15);
/// Default `ServerAliveCountMax` (OpenSSH's).
const DEFAULT_KEEPALIVE_MAX: usize = 3;
/// Default kernel attribute and name cache lifetime.
const DEFAULT_KERNEL_TTL: Duration = Duration::from_secs(1);

/// The flags that make the program do something else than mount (no source, no mountpoint).
const NOT_A_MOUNT: [&str; 6] = [
    "flush",
    "stats",
    "store_password",
    "forget_password",
    "store_passphrase",
    "forget_passphrase",
];

/// sshfs-rs: mount a remote directory over SSH.
#[derive(Parser, Debug)]
#[command(
    name = "sshfs-rs",
    version,
    about = "Mount a remote directory over SSH (SFTP)",
    group(clap::ArgGroup::new("keyring_command").multiple(false))
)]
pub struct Args {
    /// Remote directory: [user@]host:[path] (empty path: the remote home; IPv6 in brackets)
    #[arg(required_unless_present_any = NOT_A_MOUNT, value_parser = source_parser())]
    pub source: Option<String>,
    /// Local directory to mount on
    #[arg(required_unless_present_any = NOT_A_MOUNT, value_hint = ValueHint::DirPath)]
    pub mountpoint: Option<PathBuf>,
    /// Drop every cache of the sshfs-rs mount on MOUNTPOINT now (after changes made directly on
    /// the server), then exit
    #[arg(long, value_name = "MOUNTPOINT", value_hint = ValueHint::DirPath, conflicts_with_all = ["source", "stats"])]
    pub flush: Option<PathBuf>,
    /// Print the SFTP request and cache counters of the sshfs-rs mount on MOUNTPOINT, then exit
    #[arg(long, value_name = "MOUNTPOINT", value_hint = ValueHint::DirPath, conflicts_with = "source")]
    pub stats: Option<PathBuf>,
    /// Ask for the password of [USER@]HOST[:PORT] (on the terminal, or one line from stdin
    /// with -o password_stdin) and store it in the OS keyring for later mounts, then exit
    #[arg(long, value_name = "[USER@]HOST[:PORT]", conflicts_with_all = ["source", "flush", "stats"], group = "keyring_command")]
    pub store_password: Option<String>,
    /// Remove the password of [USER@]HOST[:PORT] from the OS keyring, then exit
    #[arg(long, value_name = "[USER@]HOST[:PORT]", conflicts_with_all = ["source", "flush", "stats"], group = "keyring_command")]
    pub forget_password: Option<String>,
    /// Ask for the passphrase of the private key KEYFILE (checked against the key) and store it
    /// in the OS keyring for later mounts, then exit
    #[arg(long, value_name = "KEYFILE", conflicts_with_all = ["source", "flush", "stats"], group = "keyring_command")]
    pub store_passphrase: Option<PathBuf>,
    /// Remove the passphrase of KEYFILE from the OS keyring, then exit
    #[arg(long, value_name = "KEYFILE", conflicts_with_all = ["source", "flush", "stats"], group = "keyring_command")]
    pub forget_passphrase: Option<PathBuf>,
    /// Remote SSH port
    #[arg(short = 'p', value_name = "PORT")]
    pub port: Option<String>,
    /// ssh_config file to read instead of ~/.ssh/config
    #[arg(short = 'F', value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub ssh_config: Option<PathBuf>,
    /// Stay in the foreground
    #[arg(short = 'f')]
    pub foreground: bool,
    /// Debug: stay in the foreground and log every request (also -o debug)
    #[arg(short = 'd', long = "debug")]
    pub debug: bool,
    /// Log the steps of connecting and authenticating on stderr
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Compress the connection (same as -o Compression=yes)
    #[arg(short = 'C')]
    pub compression: bool,
    /// Same as -o ssh_protocol=1, which is refused (SSH protocol 1 is not supported)
    #[arg(short = '1')]
    pub protocol_1: bool,
    /// Single-threaded (accepted for sshfs compatibility; no effect)
    #[arg(short = 's')]
    pub single_threaded: bool,
    /// Mount options, see below (repeatable, comma-separated)
    #[arg(short = 'o', value_name = "OPT[,OPT...]")]
    pub options: Vec<String>,
    /// Run as the mount helper mount.fuse.sshfs-rs: never prompt.
    #[arg(skip)]
    pub helper: bool,
    /// mount's `-s` (sloppy): skip unknown options instead of refusing them.
    #[arg(skip)]
    pub sloppy: bool,
    /// mount's `-f` (fake): check everything that needs no network, then exit without mounting.
    #[arg(skip)]
    pub fake: bool,
}

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
    pub keyring: crate::keyring::Choice,
    /// Take the mount down when the serving process dies (`-o auto_unmount`).
    pub auto_unmount: bool,
    /// SFTP over an external program or a plain port (`-o ssh_command`, `-o directport`)
    /// instead of our own SSH connection; `connect` then holds only what the command line
    /// says (no ssh_config is read: the program reads its own).
    pub external: Option<ExternalOptions>,
}

/// Log filters for each verbosity.
// Not fuse3's own spans (INFO) with -d: they would repeat each raw request on every line.
const LOG_DEBUG: &str = "sshfs_client=debug,sshfs_rs=debug,info,fuse3=warn";
const LOG_VERBOSE: &str = "info";
// russh-sftp warns when its stream breaks (an ssh_command that exited, say); what that means
// for the mount is ours to say, once.
const LOG_DEFAULT: &str = "warn,russh_sftp=error";

/// The log filter: `-d`, then the more verbose of `-v` and `LogLevel`.
fn log_filter(debug: bool, verbose: bool, level: Option<LogLevel>) -> &'static str {
    if debug {
        return LOG_DEBUG;
    }
    match level {
        Some(LogLevel::Debug2 | LogLevel::Debug3) => "debug",
        Some(LogLevel::Debug1) => LOG_DEBUG,
        _ if verbose => LOG_VERBOSE,
        Some(LogLevel::Verbose) => LOG_VERBOSE,
        Some(LogLevel::Quiet) => "off",
        Some(LogLevel::Fatal | LogLevel::Error) => "error",
        Some(LogLevel::Info) | None => LOG_DEFAULT,
    }
}

/// What working out the SSH options found to tell the user.
#[derive(Debug, Default)]
struct Notes {
    /// Warnings (one line each).
    warnings: Vec<String>,
    /// Shown with -v only.
    verbose: Vec<String>,
    /// The mounted host's LogLevel from ssh_config.
    log_level: Option<LogLevel>,
}

/// The remote directory's argument as bytes: a path that is not UTF-8 is kept in the escape
/// the client keeps names in (`sshfs_client::kernel_names`), so it reaches the server unchanged.
fn source_parser() -> impl clap::builder::TypedValueParser<Value = String> {
    use clap::builder::TypedValueParser;
    clap::builder::OsStringValueParser::new()
        .map(|s: std::ffi::OsString| sshfs_client::kernel_names::name_from_kernel(&s).into_owned())
}

/// The whole command line, `-o` options included (for `--help` and the man page).
pub fn command() -> clap::Command {
    Args::command().after_help(options::help_text())
}

/// Parses the process arguments (clap prints help, version and missing-argument errors and
/// exits itself; an unknown flag is one line, without clap's "use '-- -X'" tip).
pub fn parse_args() -> Args {
    let matches = match command().try_get_matches() {
        Ok(m) => m,
        Err(e) => usage_error(e),
    };
    match Args::from_arg_matches(&matches) {
        Ok(a) => a,
        Err(e) => usage_error(e),
    }
}

fn usage_error(e: clap::Error) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if let (ErrorKind::UnknownArgument, Some(ContextValue::String(arg))) =
        (e.kind(), e.get(ContextKind::InvalidArg))
    {
        eprintln!("sshfs-rs: unknown option '{arg}' (see sshfs-rs --help)");
        std::process::exit(2);
    }
    e.exit()
}

/// The user's home directory.
pub fn home_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map_or_else(|| PathBuf::from("/"), |u| u.dir)
}

fn local_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".to_owned())
}

/// Builds the configuration; the error is one line for the user.
pub fn build(args: Args) -> Result<Config, String> {
    let (Some(source), Some(mountpoint)) = (args.source.as_deref(), args.mountpoint.clone()) else {
        return Err("a source ([user@]host:[path]) and a mountpoint are needed".to_owned());
    };
    let target: Target = target::parse(source)?;
    let mut given = args.options.clone();
    if args.compression {
        given.push("Compression=yes".to_owned());
    }
    if args.protocol_1 {
        given.push("ssh_protocol=1".to_owned());
    }
    let o: MountOpts = options::parse_with(&given, args.sloppy)?;
    let unprivileged = !nix::unistd::geteuid().is_root();
    for (given, name) in [(o.allow_other, "allow_other"), (o.allow_root, "allow_root")] {
        if given && unprivileged && !user_allow_other() {
            return Err(format!(
                "option '-o {name}' needs 'user_allow_other' in /etc/fuse.conf for a user's mount (ask root to add that line, or mount without it)"
            ));
        }
    }
    let (owners, idmap_user) = crate::owners::build(&o)?;
    let port_flag = match &args.port {
        Some(p) => Some(options::parse_port(p).map_err(|e| format!("bad -p: {e}"))?),
        None => None,
    };
    let external = ssh_command::external(
        &o,
        &ssh_command::SshArgs {
            config_file: args.ssh_config.clone(),
            port: port_flag,
            user: target.user.clone(),
            batch_mode: args.helper,
            options: o.ssh_options.clone(),
            host: target.host.clone(),
        },
    )?;
    let sources = match external {
        // The external ssh reads its config itself.
        Some(_) => ssh_config::Sources {
            user_file: PathBuf::from("/dev/null"),
            system_file: None,
            home: home_dir(),
            local_user: local_user(),
        },
        None => ssh_sources(&args),
    };
    let given = SshGiven {
        user: target.user.clone().or(o.user.clone()),
        port: port_given(&args, &o)?,
        identity_files: o.identity_files.clone(),
        user_known_hosts: o.user_known_hosts.clone(),
        strict_host_key_checking: o.strict_host_key_checking,
        // A mount helper has no one to ask (mount(8), fstab at boot, autofs).
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
    };
    let mut notes = Notes::default();
    let mut connect = resolve(&target.host, &given, &sources, 0, &mut notes)?;
    let log_level = o.log_level.or(notes.log_level);
    let verbose = args.verbose || log_level >= Some(LogLevel::Verbose);
    if !o.ssh_unused.is_empty() {
        notes.warnings.push(format!(
            "-o {}: sshfs-rs does not act on {} (see docs/ssh.md)",
            o.ssh_unused.join(", -o "),
            if o.ssh_unused.len() == 1 {
                "it"
            } else {
                "them"
            }
        ));
    }
    if !o.ssh_irrelevant.is_empty() {
        notes.verbose.push(format!(
            "ssh options with no effect on this mount: {}",
            o.ssh_irrelevant.join(", ")
        ));
    }
    // LogLevel QUIET, FATAL and ERROR drop warnings, as in ssh.
    if log_level.is_none_or(|l| l > LogLevel::Error) || args.verbose {
        for w in &notes.warnings {
            eprintln!("sshfs-rs: warning: {w}");
        }
    }
    if verbose {
        for v in &notes.verbose {
            eprintln!("sshfs-rs: {v}");
        }
    }
    let user = connect.user.clone();

    // Read now, before going to the background (stdin is /dev/null afterwards); not for a
    // fake mount (mount -f), which connects nowhere.
    let password = if o.password_stdin && !args.fake {
        Some(read_password_stdin()?)
    } else {
        None
    };

    if unprivileged {
        let asked = MountFlags {
            atime: o.atime,
            nodiratime: o.nodiratime,
            ..MountFlags::default()
        };
        if let Some(flag) = asked.user_mount_lacks() {
            return Err(format!(
                "option '-o {flag}' is only available to root: fusermount3 cannot set it on a user's mount"
            ));
        }
    }
    let debug = args.debug || o.debug;
    let fs_name = o.fsname.clone().unwrap_or_else(|| match &external {
        // As sshfs: the source as given (the external ssh picks the user).
        Some(_) => source.to_owned(),
        None => format!("{user}@{}:{}", target.host, target.path),
    });
    let external = external.map(|how| ExternalOptions {
        how,
        host: target.host.clone(),
        request_deadline: connect.request_deadline,
        connect_timeout: connect.connect_timeout,
    });
    Ok(Config {
        connect: {
            connect.password = password;
            connect.sftp_server = o.sftp_server.clone();
            connect
        },
        remote_path: target.path,
        mountpoint,
        mount: MountConfig {
            fs_name,
            subtype: o.subtype.clone().unwrap_or_else(|| "sshfs-rs".to_owned()),
            allow_other: o.allow_other,
            allow_root: o.allow_root.then(|| nix::unistd::getuid().as_raw()),
            default_permissions: o.default_permissions,
            read_only: o.read_only,
            // fusermount3 makes a user's mount nosuid,nodev whatever is asked.
            flags: MountFlags {
                nosuid: !o.suid || unprivileged,
                nodev: !o.dev || unprivileged,
                noexec: o.noexec,
                atime: o.atime,
                nodiratime: o.nodiratime,
                sync: o.sync,
                dirsync: o.dirsync,
            },
            max_read: o.max_read,
            sync_read: !o.async_read,
            unprivileged,
            direct_io: o.direct_io,
            max_write: o.max_write,
            max_background: o.max_background,
            ttls: KernelTtls {
                attr: o.attr_timeout.unwrap_or(DEFAULT_KERNEL_TTL),
                entry: o.entry_timeout.unwrap_or(DEFAULT_KERNEL_TTL),
                negative: o.negative_timeout.unwrap_or(Duration::ZERO),
            },
        },
        cache: cache_config(&o),
        recheck: recheck_interval(&o),
        links: o.links,
        server: o.server,
        // As sshfs: -o passive keeps stdin and stdout, so it cannot go to the background.
        foreground: args.foreground || debug || o.passive,
        debug,
        log_filter: log_filter(debug, args.verbose, log_level),
        skipped_options: o.skipped_unknown.clone(),
        // -o passive has nothing to reconnect to: the mount ends with its stdin.
        reconnect: (o.reconnect != Some(false) && !o.passive).then(|| ReconnectPolicy {
            wait: o.reconnect_timeout.unwrap_or(DEFAULT_RECONNECT_WAIT),
            ..ReconnectPolicy::default()
        }),
        owners,
        idmap_user,
        keyring: o.keyring,
        auto_unmount: o.auto_unmount,
        external,
    })
}

/// The ssh_config files to read: `-F FILE`, else `~/.ssh/config` then `/etc/ssh/ssh_config`.
fn ssh_sources(args: &Args) -> ssh_config::Sources {
    let home = home_dir();
    ssh_config::Sources {
        user_file: args
            .ssh_config
            .clone()
            .unwrap_or_else(|| home.join(".ssh/config")),
        // As ssh: -F replaces both the user's and the system's file.
        system_file: args
            .ssh_config
            .is_none()
            .then(|| PathBuf::from("/etc/ssh/ssh_config")),
        home,
        local_user: local_user(),
    }
}

/// The port the command line names: `-p`, else `-o Port`.
fn port_given(args: &Args, o: &MountOpts) -> Result<Option<u16>, String> {
    match &args.port {
        Some(p) => Ok(Some(
            options::parse_port(p).map_err(|e| format!("bad -p: {e}"))?,
        )),
        None => Ok(o.port),
    }
}

/// The `-o` options of a command that is not a mount (`--store-password` ...).
pub fn command_options(args: &Args) -> Result<MountOpts, String> {
    options::parse_with(&args.options, false)
}

/// The login a password is stored under for `[user@]host[:port]`: user, host and port as a
/// mount of that host would use them (the login's own user and port, `-p`, `-o User=`/`Port=`,
/// then ssh_config's `User`, `HostName` and `Port`, then the local user and 22).
pub fn login_of(spec: &str, args: &Args, o: &MountOpts) -> Result<(String, String, u16), String> {
    let login = target::parse_login(spec)?;
    let given = SshGiven {
        user: login.user.or(o.user.clone()),
        port: login.port.or(port_given(args, o)?),
        request_deadline: DEFAULT_REQUEST_TIMEOUT,
        ..SshGiven::default()
    };
    // As a jump host (depth 1): the config's unused keywords are not reported again.
    let c = resolve(
        &login.host,
        &given,
        &ssh_sources(args),
        1,
        &mut Notes::default(),
    )?;
    Ok((c.user, c.host, c.port))
}

/// What the command line says about the SSH connection (for a jump host: only what its
/// `ProxyJump` entry says), winning over ssh_config.
#[derive(Debug, Default, Clone)]
struct SshGiven {
    user: Option<String>,
    port: Option<u16>,
    identity_files: Vec<PathBuf>,
    user_known_hosts: Option<Vec<PathBuf>>,
    strict_host_key_checking: Option<StrictHostKeyChecking>,
    batch_mode: Option<bool>,
    connect_timeout: Option<Duration>,
    server_alive_interval: Option<Duration>,
    proxy_jump: Option<String>,
    proxy_command: Option<String>,
    request_deadline: Duration,
    ciphers: Option<String>,
    kex_algorithms: Option<String>,
    macs: Option<String>,
    host_key_algorithms: Option<String>,
    pubkey_accepted_algorithms: Option<String>,
    compression: Option<bool>,
    identities_only: Option<bool>,
    identity_agent: Option<String>,
    certificate_files: Vec<PathBuf>,
    address_family: Option<AddressFamily>,
    host_key_alias: Option<String>,
    global_known_hosts: Option<Vec<PathBuf>>,
    connection_attempts: Option<u32>,
    preferred_authentications: Option<Vec<AuthMethod>>,
    pubkey_authentication: Option<bool>,
    password_authentication: Option<bool>,
    kbd_interactive_authentication: Option<bool>,
    server_alive_count_max: Option<usize>,
}

/// How deep jump hosts may name jump hosts of their own.
const MAX_JUMP_DEPTH: usize = 8;

/// The connection options for `name` (as given on the command line or in a ProxyJump):
/// `given`, then ssh_config, then the defaults. `depth` > 0 for a jump host.
fn resolve(
    name: &str,
    given: &SshGiven,
    sources: &ssh_config::Sources,
    depth: usize,
    notes: &mut Notes,
) -> Result<ConnectOptions, String> {
    let config_path = &sources.user_file;
    let home = &sources.home;
    let sc = ssh_config::load(sources, name)?;
    if depth == 0 {
        report_unused(&sc, config_path, notes);
        if let Some(v) = &sc.log_level {
            notes.log_level = Some(
                options::parse_log_level(v)
                    .map_err(|e| format!("bad LogLevel in {}: {e}", config_path.display()))?,
            );
        }
    }
    let config_err = |k: &str, e: String| format!("bad {k} in {}: {e}", config_path.display());
    let host = sc.host_name.clone().unwrap_or_else(|| name.to_owned());
    let port = match (given.port, &sc.port) {
        (Some(p), _) => p,
        (None, Some(p)) => options::parse_port(p).map_err(|e| config_err("Port", e))?,
        (None, None) => 22,
    };
    let user = given
        .user
        .clone()
        .or(sc.user.clone())
        .unwrap_or_else(|| sources.local_user.clone());
    let port_text = port.to_string();
    let tokens = Tokens {
        host: &host,
        original_host: name,
        port: &port_text,
        remote_user: &user,
        local_user: &sources.local_user,
        home,
    };
    let expand = |p: &str| expand_path(p, &tokens);

    let mut identity_files: Vec<PathBuf> = given
        .identity_files
        .iter()
        .map(|p| expand(&p.to_string_lossy()))
        .collect();
    identity_files.extend(sc.identity_files.iter().map(|p| expand(p)));
    let identity_files_explicit = !identity_files.is_empty();
    if identity_files.is_empty() {
        identity_files = ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|f| home.join(".ssh").join(f))
            .collect();
    }
    let user_known_hosts = match (&given.user_known_hosts, &sc.user_known_hosts) {
        (Some(files), _) => files.iter().map(|p| expand(&p.to_string_lossy())).collect(),
        (None, Some(list)) => list.split_ascii_whitespace().map(expand).collect(),
        (None, None) => vec![
            home.join(".ssh/known_hosts"),
            home.join(".ssh/known_hosts2"),
        ],
    };
    let strict = match (given.strict_host_key_checking, &sc.strict_host_key_checking) {
        (Some(s), _) => s,
        (None, Some(v)) => {
            options::parse_strict(v).map_err(|e| config_err("StrictHostKeyChecking", e))?
        }
        (None, None) => StrictHostKeyChecking::Ask,
    };
    let batch_mode = match (given.batch_mode, &sc.batch_mode) {
        (Some(b), _) => b,
        (None, Some(v)) => options::parse_yes_no(v).map_err(|e| config_err("BatchMode", e))?,
        (None, None) => false,
    };
    let connect_timeout = match (given.connect_timeout, &sc.connect_timeout) {
        (Some(t), _) => Some(t),
        (None, Some(v)) => {
            Some(options::parse_secs(v).map_err(|e| config_err("ConnectTimeout", e))?)
        }
        (None, None) => None,
    };
    let keepalive = match (given.server_alive_interval, &sc.server_alive_interval) {
        (Some(t), _) => t,
        (None, Some(v)) => {
            options::parse_secs(v).map_err(|e| config_err("ServerAliveInterval", e))?
        }
        (None, None) => DEFAULT_KEEPALIVE,
    };
    // The command line's value, else the config's parsed with `parse`, else `default`.
    fn pick<T: Clone>(
        given: &Option<T>,
        config: &Option<String>,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
        config_err: &dyn Fn(&str, String) -> String,
    ) -> Result<Option<T>, String> {
        match (given, config) {
            (Some(v), _) => Ok(Some(v.clone())),
            (None, Some(v)) => parse(v).map(Some).map_err(|e| config_err(key, e)),
            (None, None) => Ok(None),
        }
    }
    let mut list = |kind: ListKind, given: &Option<String>, config: &Option<String>| {
        let key = kind.keyword();
        let (spec, from_config) = match (given, config) {
            (Some(v), _) => (v, false),
            (None, Some(v)) => (v, true),
            (None, None) => return Ok(None),
        };
        let r = algorithms::resolve(kind, spec).map_err(|e| {
            if from_config {
                config_err(key, e)
            } else {
                format!("bad value in '-o {key}={spec}': {e}")
            }
        })?;
        notes.warnings.extend(r.warning);
        Ok::<_, String>(Some(r.names))
    };
    let algorithms = Algorithms {
        ciphers: list(ListKind::Cipher, &given.ciphers, &sc.ciphers)?,
        kex: list(ListKind::Kex, &given.kex_algorithms, &sc.kex_algorithms)?,
        macs: list(ListKind::Mac, &given.macs, &sc.macs)?,
        host_keys: list(
            ListKind::HostKey,
            &given.host_key_algorithms,
            &sc.host_key_algorithms,
        )?,
        pubkey: list(
            ListKind::Pubkey,
            &given.pubkey_accepted_algorithms,
            &sc.pubkey_accepted_algorithms,
        )?,
        compression: pick(
            &given.compression,
            &sc.compression,
            "Compression",
            options::parse_yes_no,
            &config_err,
        )?
        .unwrap_or(false),
    };
    let yes_no = options::parse_yes_no;
    let mut disabled = Vec::new();
    for (method, given_v, config_v, key, parse) in [
        (
            AuthMethod::PublicKey,
            given.pubkey_authentication,
            &sc.pubkey_authentication,
            "PubkeyAuthentication",
            options::parse_pubkey_auth as fn(&str) -> Result<bool, String>,
        ),
        (
            AuthMethod::Password,
            given.password_authentication,
            &sc.password_authentication,
            "PasswordAuthentication",
            yes_no,
        ),
        (
            AuthMethod::KeyboardInteractive,
            given.kbd_interactive_authentication,
            &sc.kbd_interactive_authentication,
            "KbdInteractiveAuthentication",
            yes_no,
        ),
    ] {
        if pick(&given_v, config_v, key, parse, &config_err)? == Some(false) {
            disabled.push(method);
        }
    }
    let agent = match (&given.identity_agent, &sc.identity_agent) {
        (Some(v), _) | (None, Some(v)) => {
            identity_agent(v, &tokens).map_err(|e| format!("bad IdentityAgent: {e}"))?
        }
        (None, None) => IdentityAgent::Env,
    };
    let mut certificate_files: Vec<PathBuf> = given
        .certificate_files
        .iter()
        .map(|p| expand(&p.to_string_lossy()))
        .collect();
    certificate_files.extend(sc.certificate_files.iter().map(|p| expand(p)));
    let auth = AuthOptions {
        preferred: pick(
            &given.preferred_authentications,
            &sc.preferred_authentications,
            "PreferredAuthentications",
            options::parse_preferred_auth,
            &config_err,
        )?,
        disabled,
        identities_only: pick(
            &given.identities_only,
            &sc.identities_only,
            "IdentitiesOnly",
            yes_no,
            &config_err,
        )?
        .unwrap_or(false),
        agent,
        certificate_files,
    };
    if let Some(v) = &sc.check_host_ip {
        yes_no(v).map_err(|e| config_err("CheckHostIP", e))?;
    }
    let global_known_hosts = match (&given.global_known_hosts, &sc.global_known_hosts) {
        (Some(files), _) => files.iter().map(|p| expand(&p.to_string_lossy())).collect(),
        (None, Some(list)) => list.split_ascii_whitespace().map(expand).collect(),
        (None, None) => vec![
            PathBuf::from("/etc/ssh/ssh_known_hosts"),
            PathBuf::from("/etc/ssh/ssh_known_hosts2"),
        ],
    };
    let mut opts = ConnectOptions {
        host: host.clone(),
        port,
        user: user.clone(),
        identity_files,
        identity_files_explicit,
        user_known_hosts,
        global_known_hosts,
        strict_host_key_checking: strict,
        batch_mode,
        connect_timeout: connect_timeout.filter(|t| !t.is_zero()),
        request_deadline: given.request_deadline,
        keepalive_interval: Some(keepalive).filter(|t| !t.is_zero()),
        password: None,
        via: Via::Direct,
        algorithms,
        host_key_alias: given.host_key_alias.clone().or(sc.host_key_alias.clone()),
        address_family: pick(
            &given.address_family,
            &sc.address_family,
            "AddressFamily",
            options::parse_address_family,
            &config_err,
        )?
        .unwrap_or_default(),
        connection_attempts: pick(
            &given.connection_attempts,
            &sc.connection_attempts,
            "ConnectionAttempts",
            options::parse_size,
            &config_err,
        )?
        .unwrap_or(1),
        keepalive_max: pick(
            &given.server_alive_count_max,
            &sc.server_alive_count_max,
            "ServerAliveCountMax",
            options::parse_count,
            &config_err,
        )?
        .unwrap_or(DEFAULT_KEEPALIVE_MAX)
        // OpenSSH's 0 gives up at the first unanswered keepalive; russh's 0 never does.
        .max(1),
        auth,
        sftp_server: None,
    };
    // The command line's ProxyJump or ProxyCommand, else the config's (which keeps the first
    // of the two it meets, as ssh).
    let (jump, command) = match (&given.proxy_jump, &given.proxy_command) {
        (Some(j), _) => (Some(j.clone()), None),
        (None, Some(c)) => (None, Some(c.clone())),
        (None, None) => (sc.proxy_jump.clone(), sc.proxy_command.clone()),
    };
    if let Some(command) = command.filter(|c| !c.eq_ignore_ascii_case("none")) {
        opts.via = Via::Command(ssh_config::expand_tokens(&command, &tokens));
    } else if let Some(jump) = jump {
        let Some(specs) = proxy::parse_jumps(&jump).map_err(|e| config_err("ProxyJump", e))? else {
            return Ok(opts);
        };
        if depth >= MAX_JUMP_DEPTH {
            return Err(format!(
                "ProxyJump: jump hosts nested more than {MAX_JUMP_DEPTH} deep (a loop in {}?)",
                config_path.display()
            ));
        }
        let mut hops = Vec::new();
        for spec in specs {
            let hop_given = SshGiven {
                user: spec.user.clone(),
                port: spec.port,
                // The mount's own prompting rules hold for its jump hosts.
                batch_mode: opts.batch_mode.then_some(true),
                connect_timeout: opts.connect_timeout,
                request_deadline: given.request_deadline,
                ..SshGiven::default()
            };
            let mut hop = resolve(&spec.host, &hop_given, sources, depth + 1, notes)?;
            // A jump host reached through jump hosts of its own: flattened into the chain.
            if matches!(hop.via, Via::Jump(_))
                && let Via::Jump(inner) = std::mem::take(&mut hop.via)
            {
                hops.extend(inner);
            }
            hops.push(hop);
        }
        opts.via = Via::Jump(hops);
    }
    Ok(opts)
}

/// Names the ssh_config keywords in effect for this host that sshfs-rs does not act on: those
/// of the user's files in one warning line; the system's defaults (`/etc/ssh/ssh_config`) and
/// keywords meaningless for a mount (forwardings, terminal, environment) only with `-v`.
fn report_unused(sc: &ssh_config::HostConfig, config_path: &Path, notes: &mut Notes) {
    let (warn, quiet): (Vec<_>, Vec<_>) =
        sc.unused.iter().partition(|u| !u.system && !u.irrelevant);
    let names = |v: &[&ssh_config::Unused]| {
        v.iter()
            .map(|u| u.key.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !warn.is_empty() {
        notes.warnings.push(format!(
            "{} sets {} for this host; sshfs-rs does not act on {} (see docs/ssh.md)",
            config_path.display(),
            names(&warn),
            if warn.len() == 1 { "it" } else { "them" }
        ));
    }
    if !quiet.is_empty() {
        notes.verbose.push(format!(
            "ssh config keywords with no effect on this mount: {}",
            names(&quiet)
        ));
    }
}

/// OpenSSH's `IdentityAgent`: `none`, `SSH_AUTH_SOCK` (the default), `$VAR` (the socket that
/// variable names), or a path (`~`, `%` tokens and `${VAR}` expanded).
fn identity_agent(v: &str, tokens: &Tokens<'_>) -> Result<IdentityAgent, String> {
    let env =
        |name: &str| std::env::var_os(name).ok_or_else(|| format!("'{v}': ${name} is not set"));
    if v.eq_ignore_ascii_case("none") {
        return Ok(IdentityAgent::None);
    }
    if v == "SSH_AUTH_SOCK" {
        return Ok(IdentityAgent::Env);
    }
    if let Some(name) = v.strip_prefix('$').filter(|n| !n.starts_with('{')) {
        return Ok(IdentityAgent::Socket(PathBuf::from(env(name)?)));
    }
    let mut out = String::new();
    let mut rest = v;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start + 2..].find('}') else {
            return Err(format!("'{v}': unterminated ${{"));
        };
        let name = &rest[start + 2..start + 2 + len];
        out.push_str(&env(name)?.to_string_lossy());
        rest = &rest[start + 3 + len..];
    }
    out.push_str(rest);
    Ok(IdentityAgent::Socket(expand_path(&out, tokens)))
}

/// `-o password_stdin`: one line from stdin, without its line end (as the C sshfs reads it).
/// On a terminal the line is read without echo.
pub fn read_password_stdin() -> Result<Secret, String> {
    use std::io::BufRead;
    let fail =
        |e: std::io::Error| format!("cannot read the password from stdin: {}", os_message(&e));
    let stdin = std::io::stdin();
    let echo_off = EchoOff::on(&stdin);
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    drop(echo_off);
    let password = Secret::new(line);
    read.map_err(fail)?;
    let mut text = password.expose();
    if text.is_empty() {
        return Err("-o password_stdin: stdin ended before a password was read".to_owned());
    }
    text = text.strip_suffix('\n').unwrap_or(text);
    text = text.strip_suffix('\r').unwrap_or(text);
    Ok(Secret::new(text.to_owned()))
}

/// Terminal echo turned off while it lives (when stdin is a terminal).
struct EchoOff(Option<nix::sys::termios::Termios>);

impl EchoOff {
    fn on(stdin: &std::io::Stdin) -> EchoOff {
        use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
        let Ok(saved) = tcgetattr(stdin) else {
            return EchoOff(None);
        };
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        quiet.local_flags.insert(LocalFlags::ECHONL);
        match tcsetattr(stdin, SetArg::TCSANOW, &quiet) {
            Ok(()) => EchoOff(Some(saved)),
            Err(_) => EchoOff(None),
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                saved,
            );
        }
    }
}

/// Whether /etc/fuse.conf lets users mount with allow_other (as fusermount3 reads it).
fn user_allow_other() -> bool {
    std::fs::read_to_string("/etc/fuse.conf").is_ok_and(|conf| {
        conf.lines()
            .any(|l| l.split('#').next().unwrap_or("").trim() == "user_allow_other")
    })
}

/// Default of `-o recheck`.
const DEFAULT_RECHECK: Duration = Duration::from_secs(2);

/// `-o recheck` (default 2 s); zero without a cache (nothing to re-check).
fn recheck_interval(o: &MountOpts) -> Duration {
    if o.cache == Some(false) || o.dir_cache == Some(false) {
        return Duration::ZERO;
    }
    o.recheck.unwrap_or(DEFAULT_RECHECK)
}

/// The metadata cache settings: sshfs's option names and defaults (20 s, 10 000 entries).
fn cache_config(o: &MountOpts) -> CacheConfig {
    let d = CacheConfig::default();
    if o.cache == Some(false) {
        return CacheConfig {
            stat_ttl: Duration::ZERO,
            dir_ttl: Duration::ZERO,
            link_ttl: Duration::ZERO,
            negative_ttl: Duration::ZERO,
            dir_cache: false,
            ..d
        };
    }
    let stat_ttl = o.cache_stat_timeout.unwrap_or(d.stat_ttl);
    CacheConfig {
        stat_ttl,
        dir_ttl: o.cache_dir_timeout.unwrap_or(d.dir_ttl),
        link_ttl: o.cache_link_timeout.unwrap_or(d.link_ttl),
        negative_ttl: stat_ttl,
        max_entries: o.cache_max_size.unwrap_or(d.max_entries),
        dir_cache: o.dir_cache.unwrap_or(d.dir_cache),
    }
}

/// Checks the mountpoint before connecting: it exists, is a directory, is not mounted already.
/// Returns its absolute form (the daemon leaves the working directory).
pub fn check_mountpoint(p: &Path) -> Result<PathBuf, String> {
    let shown = p.display();
    if p.starts_with("/dev/fd") {
        return Err(format!(
            "mountpoint {shown}: mounting on a /dev/fuse descriptor passed in (mount.fuse3's drop_privileges) is not supported; mount without drop_privileges"
        ));
    }
    // A dead FUSE mount (its daemon killed) answers ENOTCONN; `canonicalize` may not notice it
    // (realpath does not stat the last component), so every step names the fix the same way.
    let fail = |e: std::io::Error| {
        if e.raw_os_error() == Some(libc::ENOTCONN) {
            format!(
                "mountpoint {shown}: a dead mount is still there (Transport endpoint is not connected); unmount it with: fusermount3 -u {shown}"
            )
        } else {
            format!("mountpoint {shown}: {}", os_message(&e))
        }
    };
    let abs = std::fs::canonicalize(p).map_err(fail)?;
    let meta = std::fs::metadata(&abs).map_err(fail)?;
    if !meta.is_dir() {
        return Err(format!("mountpoint {shown}: Not a directory"));
    }
    if is_mounted(&abs) {
        return Err(format!(
            "mountpoint {shown} is already mounted; unmount it first (fusermount3 -u {shown})"
        ));
    }
    Ok(abs)
}

/// Whether something is mounted exactly on `path` (from /proc/self/mountinfo).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| Path::new(&unescape_mountinfo(m)) == path)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
pub fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub use sshfs_client::os_message::os_message;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/tmp/a\\040b"), "/tmp/a b");
        assert_eq!(unescape_mountinfo("/x\\134y"), "/x\\y");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }

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
    fn stored_password_login_is_resolved_like_a_mount() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config");
        std::fs::write(
            &cfg,
            "Host work\n  HostName srv.example\n  Port 2222\n  User alice\n",
        )
        .unwrap();
        let cfg = cfg.display().to_string();
        let a = args(&["--store-password", "work", "-F", &cfg]);
        let o = command_options(&a).unwrap();
        let login = |spec: &str| login_of(spec, &a, &o).unwrap();
        assert_eq!(login("work"), ("alice".into(), "srv.example".into(), 2222));
        assert_eq!(
            login("bob@work:22"),
            ("bob".into(), "srv.example".into(), 22)
        );
        let a = args(&["--store-password", "work", "-F", &cfg, "-p", "23"]);
        assert_eq!(login_of("work", &a, &o).unwrap().2, 23);
    }

    #[test]
    fn bad_port_is_an_error() {
        assert!(build(args(&["h:", "/mnt", "-p", "99999", "-F", "/dev/null"])).is_err());
    }
}
