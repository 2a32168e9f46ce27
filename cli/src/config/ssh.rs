//! The SSH connection's options: what the command line gives ([`SshGiven`]), then ssh_config,
//! then OpenSSH's defaults, for the mounted host and each jump host.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sshfs_client::remote::algorithms::{self, Algorithms, ListKind};
use sshfs_client::remote::proxy::{self, Via};
use sshfs_client::remote::{
    AddressFamily, AuthMethod, AuthOptions, ConnectOptions, IdentityAgent, StrictHostKeyChecking,
};

use crate::options::args::Args;
use crate::options::mount_opts::{LogLevel, MountOpts};
use crate::options::values;
use crate::ssh::ssh_config::{self, Tokens, expand_path};

/// Default per-request deadline.
pub(super) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Default keepalive interval: a dead connection is noticed after 3 unanswered ones.
pub(super) const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(15);
/// Default `ServerAliveCountMax` (OpenSSH's).
pub(super) const DEFAULT_KEEPALIVE_MAX: usize = 3;

/// What working out the SSH options found to tell the user.
#[derive(Debug, Default)]
pub(super) struct Notes {
    /// Warnings (one line each).
    pub(super) warnings: Vec<String>,
    /// Shown with -v only.
    pub(super) verbose: Vec<String>,
    /// The mounted host's LogLevel from ssh_config.
    pub(super) log_level: Option<LogLevel>,
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

pub(super) fn local_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".to_owned())
}

/// The ssh_config files to read: `-F FILE`, else `~/.ssh/config` then `/etc/ssh/ssh_config`.
pub(super) fn ssh_sources(args: &Args) -> ssh_config::Sources {
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

/// How deep jump hosts may name jump hosts of their own.
pub(super) const MAX_JUMP_DEPTH: usize = 8;

/// The connection options for `name` (as given on the command line or in a ProxyJump):
/// `given`, then ssh_config, then the defaults. `depth` > 0 for a jump host.
pub(super) fn resolve(
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
                values::parse_log_level(v)
                    .map_err(|e| format!("bad LogLevel in {}: {e}", config_path.display()))?,
            );
        }
    }
    let config_err = |k: &str, e: String| format!("bad {k} in {}: {e}", config_path.display());
    let host = sc.host_name.clone().unwrap_or_else(|| name.to_owned());
    let port = match (given.port, &sc.port) {
        (Some(p), _) => p,
        (None, Some(p)) => values::parse_port(p).map_err(|e| config_err("Port", e))?,
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
            values::parse_strict(v).map_err(|e| config_err("StrictHostKeyChecking", e))?
        }
        (None, None) => StrictHostKeyChecking::Ask,
    };
    let batch_mode = match (given.batch_mode, &sc.batch_mode) {
        (Some(b), _) => b,
        (None, Some(v)) => values::parse_yes_no(v).map_err(|e| config_err("BatchMode", e))?,
        (None, None) => false,
    };
    let connect_timeout = match (given.connect_timeout, &sc.connect_timeout) {
        (Some(t), _) => Some(t),
        (None, Some(v)) => {
            Some(values::parse_secs(v).map_err(|e| config_err("ConnectTimeout", e))?)
        }
        (None, None) => None,
    };
    let keepalive = match (given.server_alive_interval, &sc.server_alive_interval) {
        (Some(t), _) => t,
        (None, Some(v)) => {
            values::parse_secs(v).map_err(|e| config_err("ServerAliveInterval", e))?
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
            values::parse_yes_no,
            &config_err,
        )?
        .unwrap_or(false),
    };
    let yes_no = values::parse_yes_no;
    let mut disabled = Vec::new();
    for (method, given_v, config_v, key, parse) in [
        (
            AuthMethod::PublicKey,
            given.pubkey_authentication,
            &sc.pubkey_authentication,
            "PubkeyAuthentication",
            values::parse_pubkey_auth as fn(&str) -> Result<bool, String>,
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
            values::parse_preferred_auth,
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
            values::parse_address_family,
            &config_err,
        )?
        .unwrap_or_default(),
        connection_attempts: pick(
            &given.connection_attempts,
            &sc.connection_attempts,
            "ConnectionAttempts",
            values::parse_size,
            &config_err,
        )?
        .unwrap_or(1),
        keepalive_max: pick(
            &given.server_alive_count_max,
            &sc.server_alive_count_max,
            "ServerAliveCountMax",
            values::parse_count,
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
pub(super) fn report_unused(sc: &ssh_config::HostConfig, config_path: &Path, notes: &mut Notes) {
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
pub(super) fn identity_agent(v: &str, tokens: &Tokens<'_>) -> Result<IdentityAgent, String> {
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
