//! The SSH connection's options for a host: what the command line gives ([`SshGiven`]), then
//! ssh_config, then OpenSSH's defaults, for the mounted host and each jump host.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sshfs_client::remote::ssh::algorithms::{self, Algorithms, ListKind};
use sshfs_client::remote::ssh::proxy::{self, Via};
use sshfs_client::remote::{
    ssh::auth::AuthMethod, ssh::auth::AuthOptions, ssh::auth::IdentityAgent,
    ssh::connect::ConnectOptions, ssh::connect::StrictHostKeyChecking,
};

use super::given::SshGiven;
use super::notes::Notes;
use crate::options::values;
use crate::ssh::ssh_config::{self, Tokens, expand_path};

/// Default keepalive interval: a dead connection is noticed after 3 unanswered ones.
pub(super) const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(15);
/// Default `ServerAliveCountMax` (OpenSSH's).
pub(super) const DEFAULT_KEEPALIVE_MAX: usize = 3;

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
    let sc = host_config(name, sources, depth, notes)?;
    let host = sc.host_name.clone().unwrap_or_else(|| name.to_owned());
    let port = match (given.port, &sc.port) {
        (Some(p), _) => p,
        (None, Some(p)) => values::parse_port(p)
            .map_err(|e| format!("bad Port in {}: {e}", sources.user_file.display()))?,
        (None, None) => 22,
    };
    let user = given
        .user
        .clone()
        .or(sc.user.clone())
        .unwrap_or_else(|| sources.local_user.clone());
    let port_text = port.to_string();
    let home = &sources.home;
    let at = HostLookup {
        sc: &sc,
        config_path: &sources.user_file,
        tokens: Tokens {
            host: &host,
            original_host: name,
            port: &port_text,
            remote_user: &user,
            local_user: &sources.local_user,
            home,
        },
    };
    let (identity_files, identity_files_explicit) = at.identity_files(given, home);
    let user_known_hosts = at.file_list(
        &given.user_known_hosts,
        &sc.user_known_hosts,
        vec![
            home.join(".ssh/known_hosts"),
            home.join(".ssh/known_hosts2"),
        ],
    );
    let strict = at
        .pick(
            &given.strict_host_key_checking,
            &sc.strict_host_key_checking,
            "StrictHostKeyChecking",
            values::parse_strict,
        )?
        .unwrap_or(StrictHostKeyChecking::Ask);
    let batch_mode = at
        .pick(
            &given.batch_mode,
            &sc.batch_mode,
            "BatchMode",
            values::parse_yes_no,
        )?
        .unwrap_or(false);
    let connect_timeout = at.pick(
        &given.connect_timeout,
        &sc.connect_timeout,
        "ConnectTimeout",
        values::parse_secs,
    )?;
    let keepalive = at
        .pick(
            &given.server_alive_interval,
            &sc.server_alive_interval,
            "ServerAliveInterval",
            values::parse_secs,
        )?
        .unwrap_or(DEFAULT_KEEPALIVE);
    let algorithms = at.algorithms(given, notes)?;
    let auth = at.auth_options(given)?;
    if let Some(v) = &sc.check_host_ip {
        values::parse_yes_no(v).map_err(|e| at.config_err("CheckHostIP", e))?;
    }
    let global_known_hosts = at.file_list(
        &given.global_known_hosts,
        &sc.global_known_hosts,
        vec![
            PathBuf::from("/etc/ssh/ssh_known_hosts"),
            PathBuf::from("/etc/ssh/ssh_known_hosts2"),
        ],
    );
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
        address_family: at
            .pick(
                &given.address_family,
                &sc.address_family,
                "AddressFamily",
                values::parse_address_family,
            )?
            .unwrap_or_default(),
        connection_attempts: at
            .pick(
                &given.connection_attempts,
                &sc.connection_attempts,
                "ConnectionAttempts",
                values::parse_size,
            )?
            .unwrap_or(1),
        keepalive_max: at
            .pick(
                &given.server_alive_count_max,
                &sc.server_alive_count_max,
                "ServerAliveCountMax",
                values::parse_count,
            )?
            .unwrap_or(DEFAULT_KEEPALIVE_MAX)
            // OpenSSH's 0 gives up at the first unanswered keepalive; russh's 0 never does.
            .max(1),
        auth,
        sftp_server: None,
    };
    opts.via = at.route(given, &opts, sources, depth, notes)?;
    Ok(opts)
}

/// Reads ssh_config for `name`; for the mounted host (depth 0) also notes the keywords it sets
/// that sshfs-rs does not act on, and its `LogLevel`.
fn host_config(
    name: &str,
    sources: &ssh_config::Sources,
    depth: usize,
    notes: &mut Notes,
) -> Result<ssh_config::HostConfig, String> {
    let config_path = &sources.user_file;
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
    Ok(sc)
}

/// One host's ssh_config, with what its values need: the `%` tokens paths expand with, and
/// the file errors name.
struct HostLookup<'a> {
    sc: &'a ssh_config::HostConfig,
    config_path: &'a Path,
    tokens: Tokens<'a>,
}

impl HostLookup<'_> {
    /// "bad KEY in FILE: ERROR".
    fn config_err(&self, key: &str, e: String) -> String {
        format!("bad {key} in {}: {e}", self.config_path.display())
    }

    /// A path with `~` and `%` tokens expanded.
    fn expand(&self, p: &str) -> PathBuf {
        expand_path(p, &self.tokens)
    }

    /// The command line's value, else the config's parsed with `parse`, else `None`.
    fn pick<T: Clone>(
        &self,
        given: &Option<T>,
        config: &Option<String>,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        match (given, config) {
            (Some(v), _) => Ok(Some(v.clone())),
            (None, Some(v)) => parse(v).map(Some).map_err(|e| self.config_err(key, e)),
            (None, None) => Ok(None),
        }
    }

    /// A list of files: the command line's, else the config's (space-separated), else
    /// `default`; expanded.
    fn file_list(
        &self,
        given: &Option<Vec<PathBuf>>,
        config: &Option<String>,
        default: Vec<PathBuf>,
    ) -> Vec<PathBuf> {
        match (given, config) {
            (Some(files), _) => files
                .iter()
                .map(|p| self.expand(&p.to_string_lossy()))
                .collect(),
            (None, Some(list)) => list
                .split_ascii_whitespace()
                .map(|p| self.expand(p))
                .collect(),
            (None, None) => default,
        }
    }

    /// The identity files: the command line's then the config's, else the default keys; and
    /// whether any was named.
    fn identity_files(&self, given: &SshGiven, home: &Path) -> (Vec<PathBuf>, bool) {
        let mut files: Vec<PathBuf> = given
            .identity_files
            .iter()
            .map(|p| self.expand(&p.to_string_lossy()))
            .collect();
        files.extend(self.sc.identity_files.iter().map(|p| self.expand(p)));
        if !files.is_empty() {
            return (files, true);
        }
        let defaults = ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|f| home.join(".ssh").join(f))
            .collect();
        (defaults, false)
    }

    /// The algorithm lists (Ciphers, KexAlgorithms, MACs, HostKeyAlgorithms,
    /// PubkeyAcceptedAlgorithms) and Compression; a list's warning goes to `notes`.
    fn algorithms(&self, given: &SshGiven, notes: &mut Notes) -> Result<Algorithms, String> {
        let sc = self.sc;
        let mut list = |kind: ListKind, given: &Option<String>, config: &Option<String>| {
            let key = kind.keyword();
            let (spec, from_config) = match (given, config) {
                (Some(v), _) => (v, false),
                (None, Some(v)) => (v, true),
                (None, None) => return Ok(None),
            };
            let r = algorithms::resolve(kind, spec).map_err(|e| {
                if from_config {
                    self.config_err(key, e)
                } else {
                    format!("bad value in '-o {key}={spec}': {e}")
                }
            })?;
            notes.warnings.extend(r.warning);
            Ok::<_, String>(Some(r.names))
        };
        Ok(Algorithms {
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
            compression: self
                .pick(
                    &given.compression,
                    &sc.compression,
                    "Compression",
                    values::parse_yes_no,
                )?
                .unwrap_or(false),
        })
    }

    /// How to authenticate: the methods turned off, the agent, certificates, the preferred
    /// order and IdentitiesOnly.
    fn auth_options(&self, given: &SshGiven) -> Result<AuthOptions, String> {
        let sc = self.sc;
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
            if self.pick(&given_v, config_v, key, parse)? == Some(false) {
                disabled.push(method);
            }
        }
        let agent = match (&given.identity_agent, &sc.identity_agent) {
            (Some(v), _) | (None, Some(v)) => {
                identity_agent(v, &self.tokens).map_err(|e| format!("bad IdentityAgent: {e}"))?
            }
            (None, None) => IdentityAgent::Env,
        };
        let mut certificate_files: Vec<PathBuf> = given
            .certificate_files
            .iter()
            .map(|p| self.expand(&p.to_string_lossy()))
            .collect();
        certificate_files.extend(sc.certificate_files.iter().map(|p| self.expand(p)));
        Ok(AuthOptions {
            preferred: self.pick(
                &given.preferred_authentications,
                &sc.preferred_authentications,
                "PreferredAuthentications",
                values::parse_preferred_auth,
            )?,
            disabled,
            identities_only: self
                .pick(
                    &given.identities_only,
                    &sc.identities_only,
                    "IdentitiesOnly",
                    yes_no,
                )?
                .unwrap_or(false),
            agent,
            certificate_files,
        })
    }

    /// The way to the host: the command line's ProxyJump or ProxyCommand, else the config's
    /// (which keeps the first of the two it meets, as ssh); each jump host resolved in turn
    /// (with the prompting rules and timeout of `opts`, the host it leads to).
    fn route(
        &self,
        given: &SshGiven,
        opts: &ConnectOptions,
        sources: &ssh_config::Sources,
        depth: usize,
        notes: &mut Notes,
    ) -> Result<Via, String> {
        let (jump, command) = match (&given.proxy_jump, &given.proxy_command) {
            (Some(j), _) => (Some(j.clone()), None),
            (None, Some(c)) => (None, Some(c.clone())),
            (None, None) => (self.sc.proxy_jump.clone(), self.sc.proxy_command.clone()),
        };
        if let Some(command) = command.filter(|c| !c.eq_ignore_ascii_case("none")) {
            return Ok(Via::Command(ssh_config::expand_tokens(
                &command,
                &self.tokens,
            )));
        }
        let Some(jump) = jump else {
            return Ok(Via::Direct);
        };
        let Some(specs) = proxy::parse_jumps(&jump).map_err(|e| self.config_err("ProxyJump", e))?
        else {
            return Ok(Via::Direct);
        };
        if depth >= MAX_JUMP_DEPTH {
            return Err(format!(
                "ProxyJump: jump hosts nested more than {MAX_JUMP_DEPTH} deep (a loop in {}?)",
                self.config_path.display()
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
        Ok(Via::Jump(hops))
    }
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
