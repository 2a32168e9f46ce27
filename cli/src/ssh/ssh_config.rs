//! Reading ssh_config(5) as OpenSSH reads it: the user's file (`-F FILE`, else
//! `~/.ssh/config`), then `/etc/ssh/ssh_config` (not with `-F`); `Include` (globs, relative to
//! `~/.ssh` in the user's files and to `/etc/ssh` in the system's), `Host` patterns with `*`, `?`
//! and `!`, `Match` (`all`, `host`, `originalhost`, `user`, `localuser`, `exec`, `canonical`,
//! `final`, each negatable with `!`), the first value obtained for a key wins (IdentityFile
//! accumulates), `IgnoreUnknown`.
//!
//! Every keyword OpenSSH knows is recognised ([`crate::options::ssh_keywords::KEYWORDS`]); one sshfs-rs does not act on is
//! reported back ([`HostConfig::unused`]) so the caller can name it, never dropped silently.
//! An unknown keyword is an error, as in ssh, unless `IgnoreUnknown` names it.

use std::path::{Path, PathBuf};

use sshfs_client::remote::ssh::known_hosts::wildcard_match;

use crate::options::ssh_keywords::Kind::{Irrelevant, Unsupported};
use crate::options::ssh_keywords::kind_of;
use sshfs_client::os_message::os_message;

/// How deep `Include` may nest (OpenSSH's READCONF_MAX_DEPTH).
const MAX_DEPTH: usize = 16;

/// What the config says for one host.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// HostName (`%h` and `%%` expanded).
    pub host_name: Option<String>,
    /// Port.
    pub port: Option<String>,
    /// User.
    pub user: Option<String>,
    /// IdentityFile (all of them, in order; tokens not expanded).
    pub identity_files: Vec<String>,
    /// UserKnownHostsFile (the whole value, space-separated).
    pub user_known_hosts: Option<String>,
    /// StrictHostKeyChecking.
    pub strict_host_key_checking: Option<String>,
    /// BatchMode.
    pub batch_mode: Option<String>,
    /// ConnectTimeout.
    pub connect_timeout: Option<String>,
    /// ServerAliveInterval.
    pub server_alive_interval: Option<String>,
    /// ProxyJump.
    pub proxy_jump: Option<String>,
    /// ProxyCommand (the rest of its line; tokens not expanded).
    pub proxy_command: Option<String>,
    /// Ciphers.
    pub ciphers: Option<String>,
    /// KexAlgorithms.
    pub kex_algorithms: Option<String>,
    /// MACs.
    pub macs: Option<String>,
    /// HostKeyAlgorithms.
    pub host_key_algorithms: Option<String>,
    /// PubkeyAcceptedAlgorithms (or PubkeyAcceptedKeyTypes).
    pub pubkey_accepted_algorithms: Option<String>,
    /// Compression.
    pub compression: Option<String>,
    /// IdentitiesOnly.
    pub identities_only: Option<String>,
    /// IdentityAgent (tokens not expanded).
    pub identity_agent: Option<String>,
    /// CertificateFile (all of them, in order; tokens not expanded).
    pub certificate_files: Vec<String>,
    /// AddressFamily.
    pub address_family: Option<String>,
    /// HostKeyAlias.
    pub host_key_alias: Option<String>,
    /// GlobalKnownHostsFile (the whole value, space-separated).
    pub global_known_hosts: Option<String>,
    /// CheckHostIP.
    pub check_host_ip: Option<String>,
    /// ConnectionAttempts.
    pub connection_attempts: Option<String>,
    /// PreferredAuthentications.
    pub preferred_authentications: Option<String>,
    /// PubkeyAuthentication.
    pub pubkey_authentication: Option<String>,
    /// PasswordAuthentication.
    pub password_authentication: Option<String>,
    /// KbdInteractiveAuthentication (or ChallengeResponseAuthentication).
    pub kbd_interactive_authentication: Option<String>,
    /// LogLevel.
    pub log_level: Option<String>,
    /// ServerAliveCountMax.
    pub server_alive_count_max: Option<String>,
    /// Keywords in effect for this host that sshfs-rs does not act on, in order, each once.
    pub unused: Vec<Unused>,
}

/// A keyword in effect for the host that sshfs-rs does not act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unused {
    /// As written in the file.
    pub key: String,
    /// From `/etc/ssh/ssh_config` (or a file it includes): the system's defaults.
    pub system: bool,
    /// Meaningless for a file mount (forwardings, terminals, environment, ...).
    pub irrelevant: bool,
}

/// Where to read the configuration from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The user's file (`-F FILE`, or `~/.ssh/config`).
    pub user_file: PathBuf,
    /// The system-wide file, read after the user's (`None` with `-F`, as ssh does).
    pub system_file: Option<PathBuf>,
    /// The home directory (`~`, and where relative `Include`s of the user's files are).
    pub home: PathBuf,
    /// The local user (`%u`, `Match localuser`, the remote user when none is configured).
    pub local_user: String,
}

/// Reads the configuration for `host` (the name given on the command line).
pub fn load(src: &Sources, host: &str) -> Result<HostConfig, String> {
    let mut r = Reader {
        src,
        original_host: host.to_owned(),
        final_pass: false,
        want_final_pass: false,
        c: HostConfig::default(),
        ignore_unknown: None,
    };
    r.read_all()?;
    if r.want_final_pass {
        // `Match final`: the files once more, with what the first pass found kept.
        r.final_pass = true;
        r.read_all()?;
    }
    Ok(r.c)
}

/// One evaluation of the configuration files.
struct Reader<'a> {
    src: &'a Sources,
    original_host: String,
    final_pass: bool,
    want_final_pass: bool,
    c: HostConfig,
    ignore_unknown: Option<String>,
}

/// Which file set a line comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    User,
    System,
}

impl Reader<'_> {
    fn read_all(&mut self) -> Result<(), String> {
        let user = self.src.user_file.clone();
        self.read_file(&user, Origin::User, false, 0, true)?;
        if let Some(system) = self.src.system_file.clone() {
            self.read_file(&system, Origin::System, false, 0, true)?;
        }
        Ok(())
    }

    /// Reads one file. `never_match`: included from an inactive block (nothing applies).
    fn read_file(
        &mut self,
        path: &Path,
        origin: Origin,
        never_match: bool,
        depth: usize,
        missing_ok: bool,
    ) -> Result<(), String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && missing_ok => return Ok(()),
            Err(e) => {
                return Err(format!(
                    "cannot read ssh config {}: {}",
                    path.display(),
                    os_message(&e)
                ));
            }
        };
        let mut active = !never_match;
        for (n, raw) in text.lines().enumerate() {
            let at = || format!("{} line {}", path.display(), n + 1);
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key_raw, rest) = split_key_value(line);
            let key = key_raw.to_ascii_lowercase();
            let args = words(rest).map_err(|e| format!("{}: {e}", at()))?;
            match key.as_str() {
                "host" => {
                    if args.is_empty() {
                        return Err(format!("{}: Host needs at least one pattern", at()));
                    }
                    active = !never_match && host_matches(&args, &self.original_host);
                    continue;
                }
                "match" => {
                    active = !never_match && self.match_line(&args, &at)?;
                    continue;
                }
                "include" => {
                    if args.is_empty() {
                        return Err(format!("{}: Include needs a file", at()));
                    }
                    if depth >= MAX_DEPTH {
                        return Err(format!("{}: Include nested too deeply", at()));
                    }
                    for pattern in &args {
                        for file in self.include_files(pattern, origin) {
                            self.read_file(&file, origin, !active, depth + 1, false)?;
                        }
                    }
                    continue;
                }
                _ => {}
            }
            let kind = match kind_of(&key) {
                Some(kind) => kind,
                None if self
                    .ignore_unknown
                    .as_deref()
                    .is_some_and(|p| pattern_list_matches(p, &key)) =>
                {
                    continue;
                }
                None => {
                    return Err(format!(
                        "{}: Bad configuration option: {key_raw} (unknown to ssh; add it to IgnoreUnknown to skip it)",
                        at()
                    ));
                }
            };
            if !active {
                continue;
            }
            let Some(first) = args.first().cloned() else {
                return Err(format!("{}: {key_raw} needs a value", at()));
            };
            let set = |slot: &mut Option<String>, v: String| {
                if slot.is_none() {
                    *slot = Some(v);
                }
            };
            match key.as_str() {
                "hostname" => {
                    let v = expand_host_name(&first, &self.original_host);
                    set(&mut self.c.host_name, v);
                }
                "port" => set(&mut self.c.port, first),
                "user" => set(&mut self.c.user, first),
                "identityfile" | "identityfile2" if !self.c.identity_files.contains(&first) => {
                    self.c.identity_files.push(first);
                }
                "userknownhostsfile" => set(&mut self.c.user_known_hosts, args.join(" ")),
                "stricthostkeychecking" => set(&mut self.c.strict_host_key_checking, first),
                "batchmode" => set(&mut self.c.batch_mode, first),
                "connecttimeout" => set(&mut self.c.connect_timeout, first),
                "serveraliveinterval" => set(&mut self.c.server_alive_interval, first),
                // ProxyJump and ProxyCommand exclude each other: the first one found wins.
                "proxyjump" if self.c.proxy_command.is_none() => set(&mut self.c.proxy_jump, first),
                // The rest of the line, as ssh takes it.
                "proxycommand" if self.c.proxy_jump.is_none() => {
                    set(&mut self.c.proxy_command, rest.trim().to_owned())
                }
                "ignoreunknown" => set(&mut self.ignore_unknown, args.join(",")),
                "ciphers" => set(&mut self.c.ciphers, first),
                "kexalgorithms" => set(&mut self.c.kex_algorithms, first),
                "macs" => set(&mut self.c.macs, first),
                "hostkeyalgorithms" => set(&mut self.c.host_key_algorithms, first),
                "pubkeyacceptedalgorithms" | "pubkeyacceptedkeytypes" => {
                    set(&mut self.c.pubkey_accepted_algorithms, first)
                }
                "compression" => set(&mut self.c.compression, first),
                "identitiesonly" => set(&mut self.c.identities_only, first),
                "identityagent" => set(&mut self.c.identity_agent, first),
                "certificatefile" if !self.c.certificate_files.contains(&first) => {
                    self.c.certificate_files.push(first);
                }
                "addressfamily" => set(&mut self.c.address_family, first),
                "hostkeyalias" => set(&mut self.c.host_key_alias, first),
                "globalknownhostsfile" => set(&mut self.c.global_known_hosts, args.join(" ")),
                "checkhostip" => set(&mut self.c.check_host_ip, first),
                "connectionattempts" => set(&mut self.c.connection_attempts, first),
                "preferredauthentications" => set(&mut self.c.preferred_authentications, first),
                "pubkeyauthentication" => set(&mut self.c.pubkey_authentication, first),
                "passwordauthentication" => set(&mut self.c.password_authentication, first),
                "kbdinteractiveauthentication" | "challengeresponseauthentication" => {
                    set(&mut self.c.kbd_interactive_authentication, first)
                }
                "loglevel" => set(&mut self.c.log_level, first),
                "serveralivecountmax" => set(&mut self.c.server_alive_count_max, first),
                _ => {}
            }
            if matches!(kind, Unsupported | Irrelevant)
                && !self
                    .c
                    .unused
                    .iter()
                    .any(|u| u.key.eq_ignore_ascii_case(key_raw))
            {
                self.c.unused.push(Unused {
                    key: key_raw.to_owned(),
                    system: origin == Origin::System,
                    irrelevant: kind == Irrelevant,
                });
            }
        }
        Ok(())
    }

    /// The files an `Include` pattern names: `~/` expanded, a relative path taken in `~/.ssh`
    /// (the user's files) or `/etc/ssh` (the system's), globs expanded and sorted.
    fn include_files(&self, pattern: &str, origin: Origin) -> Vec<PathBuf> {
        let path = if let Some(rest) = pattern.strip_prefix("~/") {
            self.src.home.join(rest)
        } else if pattern.starts_with('/') {
            PathBuf::from(pattern)
        } else {
            match origin {
                Origin::User => self.src.home.join(".ssh").join(pattern),
                Origin::System => Path::new("/etc/ssh").join(pattern),
            }
        };
        glob(&path)
    }

    /// Evaluates the criteria of a `Match` line.
    fn match_line(&mut self, args: &[String], at: &dyn Fn() -> String) -> Result<bool, String> {
        if args.is_empty() {
            return Err(format!("{}: Match needs criteria", at()));
        }
        let host = match &self.c.host_name {
            Some(h) => h.clone(),
            None => self.original_host.clone(),
        };
        let user = self
            .c
            .user
            .clone()
            .unwrap_or_else(|| self.src.local_user.clone());
        let mut result = true;
        let mut i = 0;
        while let Some(word) = args.get(i) {
            i += 1;
            let (negate, criterion) = match word.strip_prefix('!') {
                Some(c) => (true, c),
                None => (false, word.as_str()),
            };
            let criterion = criterion.to_ascii_lowercase();
            let this = match criterion.as_str() {
                "all" => {
                    if args.len() > 1
                        && !args
                            .iter()
                            .all(|a| matches!(a.as_str(), "all" | "canonical" | "final"))
                    {
                        return Err(format!(
                            "{}: 'all' cannot be combined with other Match criteria",
                            at()
                        ));
                    }
                    true
                }
                "canonical" => self.final_pass,
                "final" => {
                    if !self.final_pass {
                        self.want_final_pass = true;
                    }
                    self.final_pass
                }
                "host" | "originalhost" | "user" | "localuser" | "exec" | "localnetwork"
                | "tagged" => {
                    let Some(arg) = args.get(i) else {
                        return Err(format!("{}: Match {criterion} needs an argument", at()));
                    };
                    i += 1;
                    match criterion.as_str() {
                        "host" => pattern_list_matches(arg, &host),
                        "originalhost" => pattern_list_matches(arg, &self.original_host),
                        "user" => pattern_list_matches(arg, &user),
                        "localuser" => pattern_list_matches(arg, &self.src.local_user),
                        "exec" => self.exec(arg, &host, &user)?,
                        _ => {
                            return Err(format!(
                                "{}: Match {criterion} is not supported by sshfs-rs",
                                at()
                            ));
                        }
                    }
                }
                other => {
                    return Err(format!("{}: Unsupported Match attribute {other}", at()));
                }
            };
            if this == negate {
                result = false;
            }
        }
        Ok(result)
    }

    /// `Match exec`: the command (tokens expanded) through the shell; exit status 0 matches.
    fn exec(&self, command: &str, host: &str, user: &str) -> Result<bool, String> {
        let port = self.c.port.clone().unwrap_or_else(|| "22".to_owned());
        let command = expand_tokens(
            command,
            &Tokens {
                host,
                original_host: &self.original_host,
                port: &port,
                remote_user: user,
                local_user: &self.src.local_user,
                home: &self.src.home,
            },
        );
        let shell = std::env::var("SHELL")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "/bin/sh".to_owned());
        let status = std::process::Command::new(&shell)
            .arg("-c")
            .arg(&command)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("Match exec: cannot run {shell}: {e}"))?;
        Ok(status.success())
    }
}

/// `%h` and `%%` in a HostName.
fn expand_host_name(v: &str, original_host: &str) -> String {
    expand_with(v, |c| (c == 'h').then(|| original_host.to_owned()))
}

/// Replaces each `%c` by `value(c)` and `%%` by `%`; a token `value` does not know stays as
/// written.
fn expand_with(s: &str, value: impl Fn(char) -> Option<String>) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(ch) = chars.next() {
        if ch != '%' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(c) => match value(c) {
                Some(v) => out.push_str(&v),
                None => {
                    out.push('%');
                    out.push(c);
                }
            },
            None => out.push('%'),
        }
    }
    out
}

/// `keyword [=] arguments`.
fn split_key_value(line: &str) -> (&str, &str) {
    let end = line
        .find(|c: char| c.is_ascii_whitespace() || c == '=')
        .unwrap_or(line.len());
    let (key, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    (key, rest)
}

/// The arguments of a line, as OpenSSH splits them: words separated by blanks, `"..."` or
/// `'...'` quoting, a backslash escaping the next character, and an unquoted word starting
/// with `#` ending the line.
fn words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Ok(out);
        };
        if first == '#' {
            return Ok(out);
        }
        let mut word = String::new();
        let mut quote = None;
        while let Some(&c) = chars.peek() {
            match (quote, c) {
                (None, c) if c.is_ascii_whitespace() => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, '\\') => {
                    chars.next();
                    if let Some(&n) = chars.peek() {
                        word.push(n);
                    }
                }
                (_, c) => word.push(c),
            }
            chars.next();
        }
        if quote.is_some() {
            return Err("unterminated quote".to_owned());
        }
        out.push(word);
    }
}

/// `Host` patterns: one matching and none negated matching.
fn host_matches(patterns: &[String], host: &str) -> bool {
    let mut matched = false;
    for p in patterns {
        if let Some(neg) = p.strip_prefix('!') {
            if wildcard_match(neg, host) {
                return false;
            }
        } else if wildcard_match(p, host) {
            matched = true;
        }
    }
    matched
}

/// A comma-separated pattern list (`Match host a,b,!c`), as OpenSSH's match_pattern_list.
fn pattern_list_matches(list: &str, s: &str) -> bool {
    let patterns: Vec<String> = list.split(',').map(str::to_owned).collect();
    host_matches(&patterns, s)
}

/// Expands `*` and `?` in the components of `path`, in sorted order (as glob(3)).
fn glob(path: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::new()];
    for comp in path.components() {
        let name = comp.as_os_str().to_string_lossy();
        if !name.contains(['*', '?', '[']) {
            for p in &mut found {
                p.push(comp);
            }
            continue;
        }
        let mut next = Vec::new();
        for dir in &found {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.') && wildcard_match(&name, n))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| dir.join(n)));
        }
        found = next;
    }
    found.retain(|p| p.exists());
    found
}

/// What the `%` tokens stand for.
pub struct Tokens<'a> {
    /// `%h`: the host name (after HostName).
    pub host: &'a str,
    /// `%n`: the host as given on the command line.
    pub original_host: &'a str,
    /// `%p`: the port.
    pub port: &'a str,
    /// `%r`: the remote user.
    pub remote_user: &'a str,
    /// `%u`: the local user.
    pub local_user: &'a str,
    /// `%d`: the local home directory.
    pub home: &'a Path,
}

/// Expands `%h %n %p %r %u %d %i %l %L %%` (an unknown token is kept as written).
pub fn expand_tokens(s: &str, t: &Tokens<'_>) -> String {
    let local_host = || {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    expand_with(s, |c| {
        Some(match c {
            'h' => t.host.to_owned(),
            'n' => t.original_host.to_owned(),
            'p' => t.port.to_owned(),
            'r' => t.remote_user.to_owned(),
            'u' => t.local_user.to_owned(),
            'd' => t.home.to_string_lossy().into_owned(),
            'i' => nix::unistd::getuid().to_string(),
            'l' => local_host(),
            'L' => local_host().split('.').next().unwrap_or("").to_owned(),
            _ => return None,
        })
    })
}

/// Expands `~` and the `%` tokens in a path from the config or the command line.
pub fn expand_path(p: &str, t: &Tokens<'_>) -> PathBuf {
    let out = expand_tokens(p, t);
    if out == "~" {
        return t.home.to_path_buf();
    }
    match out.strip_prefix("~/") {
        Some(rest) => t.home.join(rest),
        None => PathBuf::from(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = "
# global
User globaluser
Host build *.lan !bad.lan
    HostName 10.0.0.5
    Port=2222
    IdentityFile ~/.ssh/a
Match host foo
    User matched
Host *
    IdentityFile ~/.ssh/b
    User fallback
    StrictHostKeyChecking accept-new
";

    fn sources(dir: &Path, text: &str) -> Sources {
        let file = dir.join("config");
        std::fs::write(&file, text).unwrap();
        Sources {
            user_file: file,
            system_file: None,
            home: dir.to_path_buf(),
            local_user: "me".to_owned(),
        }
    }

    fn parse(text: &str, host: &str) -> HostConfig {
        let dir = tempfile::tempdir().unwrap();
        load(&sources(dir.path(), text), host).unwrap()
    }

    #[test]
    fn first_value_wins_and_identity_files_accumulate() {
        let c = parse(CONF, "build");
        assert_eq!(c.host_name.as_deref(), Some("10.0.0.5"));
        assert_eq!(c.port.as_deref(), Some("2222"));
        assert_eq!(c.user.as_deref(), Some("globaluser"));
        assert_eq!(c.identity_files, vec!["~/.ssh/a", "~/.ssh/b"]);
        assert_eq!(c.strict_host_key_checking.as_deref(), Some("accept-new"));
    }

    #[test]
    fn negation_and_match() {
        let c = parse(CONF, "bad.lan");
        assert_eq!(c.host_name, None);
        assert_eq!(c.identity_files, vec!["~/.ssh/b"]);
        let c = parse(&CONF.replace("User globaluser", ""), "foo");
        assert_eq!(c.user.as_deref(), Some("matched"));
    }

    #[test]
    fn include_relative_to_dot_ssh_with_globs_and_inactive_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let ssh = dir.path().join(".ssh");
        std::fs::create_dir_all(ssh.join("conf.d")).unwrap();
        std::fs::write(ssh.join("conf.d/b.conf"), "Host alias\n  Port 7\n").unwrap();
        std::fs::write(
            ssh.join("conf.d/a.conf"),
            "HostName inc.example\nHost other\n  User nobody\n",
        )
        .unwrap();
        std::fs::write(ssh.join("never.conf"), "User never\n").unwrap();
        let src = sources(
            dir.path(),
            "Host nomatch\n  Include never.conf\nHost alias\n  Include conf.d/*.conf\n",
        );
        let c = load(&src, "alias").unwrap();
        assert_eq!(c.host_name.as_deref(), Some("inc.example"));
        assert_eq!(c.port.as_deref(), Some("7"));
        assert_eq!(c.user, None);
    }

    #[test]
    fn unknown_keys_fail_unless_ignored_and_unused_keys_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(&sources(dir.path(), "Host *\n  Frobnicate yes\n"), "h").unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("Frobnicate"),
            "{err}"
        );
        let c = load(
            &sources(
                dir.path(),
                "IgnoreUnknown Frob*,UseKeychain\nFrobnicate yes\nUseKeychain yes\nControlMaster auto\nSendEnv LANG\nControlMaster no\n",
            ),
            "h",
        )
        .unwrap();
        let keys: Vec<_> = c
            .unused
            .iter()
            .map(|u| (u.key.as_str(), u.irrelevant))
            .collect();
        assert_eq!(keys, vec![("ControlMaster", false), ("SendEnv", true)]);
    }

    #[test]
    fn match_criteria() {
        let text = "Host a\n  HostName real.example\nMatch host real.example user *,!root\n  Port 1\nMatch originalhost a exec \"exit 1\"\n  Port 2\nMatch originalhost a !exec \"exit 1\"\n  User viaexec\nMatch all\n  Port 3\n";
        let c = parse(text, "a");
        assert_eq!(c.port.as_deref(), Some("1"));
        assert_eq!(c.user.as_deref(), Some("viaexec"));
        let c = parse(&text.replace("user *,!root", "user *,!me"), "a");
        assert_eq!(c.port.as_deref(), Some("3"));
        let dir = tempfile::tempdir().unwrap();
        assert!(load(&sources(dir.path(), "Match localnetwork 10.0.0.0/8\n"), "a").is_err());
        assert!(load(&sources(dir.path(), "Match all host a\n"), "a").is_err());
    }

    #[test]
    fn final_pass() {
        let c = parse("Match final\n  Port 9\nHost x\n  HostName y\n", "x");
        assert_eq!(c.port.as_deref(), Some("9"));
        assert_eq!(c.host_name.as_deref(), Some("y"));
    }

    #[test]
    fn words_and_comments() {
        assert_eq!(
            words("a \"b c\" d\\ e # x").unwrap(),
            vec!["a", "b c", "d e"]
        );
        assert!(words("\"open").is_err());
        let c = parse("Host x\n  HostName %h.example.com # comment\n", "x");
        assert_eq!(c.host_name.as_deref(), Some("x.example.com"));
    }

    /// The keys sshfs-rs reads, as `ssh -G` prints them (lower-case keys, values as written).
    fn ours_as_ssh_prints(c: &HostConfig, host: &str) -> Vec<String> {
        let mut out = vec![format!(
            "hostname {}",
            c.host_name.as_deref().unwrap_or(host)
        )];
        if let Some(p) = &c.port {
            out.push(format!("port {p}"));
        }
        if let Some(u) = &c.user {
            out.push(format!("user {u}"));
        }
        out.extend(c.identity_files.iter().map(|f| format!("identityfile {f}")));
        if let Some(k) = &c.user_known_hosts {
            out.push(format!("userknownhostsfile {k}"));
        }
        if let Some(v) = &c.strict_host_key_checking {
            let v = match v.as_str() {
                "yes" => "true",
                "no" => "false",
                v => v,
            };
            out.push(format!("stricthostkeychecking {v}"));
        }
        if let Some(v) = &c.batch_mode {
            out.push(format!("batchmode {v}"));
        }
        if let Some(v) = &c.connect_timeout {
            out.push(format!("connecttimeout {v}"));
        }
        if let Some(v) = &c.server_alive_interval {
            out.push(format!("serveraliveinterval {v}"));
        }
        if let Some(v) = &c.proxy_jump {
            out.push(format!("proxyjump {v}"));
        }
        if let Some(v) = &c.proxy_command {
            out.push(format!("proxycommand {v}"));
        }
        out.sort();
        out
    }

    /// The same keys from `ssh -G`, those our config set (ssh prints defaults for the rest).
    fn ssh_g(config: &Path, host: &str, ours: &[String]) -> Vec<String> {
        let out = std::process::Command::new("ssh")
            .arg("-G")
            .arg("-F")
            .arg(config)
            .arg(host)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh -G {host}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let keys: Vec<&str> = ours.iter().filter_map(|l| l.split(' ').next()).collect();
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| match l.split_once(' ') {
                Some((k, v)) => format!("{} {v}", k.to_ascii_lowercase()),
                None => l.to_owned(),
            })
            .filter(|l| keys.iter().any(|k| l.split(' ').next() == Some(k)))
            .collect();
        lines.sort();
        lines
    }

    /// Include (a glob), Host negation, Match host/originalhost/user/all, `%h` in HostName,
    /// first value wins, IgnoreUnknown: resolved as OpenSSH's own `ssh -G` does.
    #[test]
    fn same_as_ssh_dash_g() {
        if std::process::Command::new("ssh")
            .arg("-V")
            .output()
            .is_err()
        {
            eprintln!("no ssh client: skipped");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().canonicalize().unwrap();
        std::fs::create_dir(d.join("conf.d")).unwrap();
        std::fs::write(
            d.join("conf.d/10-web.conf"),
            "Host web*\n  HostName %h.internal.example\n  User deploy\n  IdentityFile ~/.ssh/web_%r\n",
        )
        .unwrap();
        std::fs::write(
            d.join("conf.d/20-all.conf"),
            "Host *\n  ServerAliveInterval 30\n  UserKnownHostsFile /etc/kh1 /etc/kh2\n",
        )
        .unwrap();
        std::fs::write(d.join("conf.d/skipped.txt"), "Port 1\n").unwrap();
        let local = nix::unistd::User::from_uid(nix::unistd::getuid())
            .unwrap()
            .unwrap()
            .name;
        let config = format!(
            "IgnoreUnknown UseKeychain
UseKeychain yes
Host bastion
  HostName 192.0.2.1
  Port 2200
Host *.corp !secret.corp
  ProxyJump bastion
  StrictHostKeyChecking accept-new
Host secret.corp
  ProxyCommand ssh -W %h:%p bastion
  BatchMode yes
Match host *.internal.example
  Port 2022
  ConnectTimeout 5
Match originalhost web2 user deploy
  IdentityFile /keys/web2
Match user {local} !originalhost web*
  Port 2345
Include {inc}/conf.d/*.conf
Match all
  IdentityFile /keys/last
  Port 9
",
            inc = d.display()
        );
        let file = d.join("config");
        std::fs::write(&file, &config).unwrap();
        let src = Sources {
            user_file: file.clone(),
            system_file: None,
            home: d.clone(),
            local_user: local,
        };
        for host in ["bastion", "a.corp", "secret.corp", "web1", "web2", "plain"] {
            let c = load(&src, host).unwrap();
            let ours = ours_as_ssh_prints(&c, host);
            assert_eq!(ours, ssh_g(&file, host, &ours), "host {host}");
        }
    }

    #[test]
    fn tokens() {
        let home = Path::new("/home/me");
        let t = Tokens {
            host: "h",
            original_host: "n",
            port: "22",
            remote_user: "r",
            local_user: "u",
            home,
        };
        assert_eq!(
            expand_path("~/.ssh/id", &t),
            PathBuf::from("/home/me/.ssh/id")
        );
        assert_eq!(
            expand_path("%d/k-%h-%r-%p-%n-%u-%%", &t),
            PathBuf::from("/home/me/k-h-r-22-n-u-%")
        );
    }
}
