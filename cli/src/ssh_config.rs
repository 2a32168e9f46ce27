//! Reading `~/.ssh/config` (or `-F FILE`) for the keys sshfs-rs uses, with OpenSSH's rules:
//! `Host` patterns (with `*`, `?`, `!`), the first value obtained wins (IdentityFile and
//! UserKnownHostsFile accumulate / take a list), options before any `Host` apply to all hosts.
//! `Match` blocks are skipped (not evaluated); `Include` is not followed.

use std::path::{Path, PathBuf};

use sshfs_client::remote::known_hosts::wildcard_match;

/// What the config says for one host.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// HostName.
    pub host_name: Option<String>,
    /// Port.
    pub port: Option<String>,
    /// User.
    pub user: Option<String>,
    /// IdentityFile (all of them, in order).
    pub identity_files: Vec<String>,
    /// UserKnownHostsFile.
    pub user_known_hosts: Option<String>,
    /// StrictHostKeyChecking.
    pub strict_host_key_checking: Option<String>,
    /// BatchMode.
    pub batch_mode: Option<String>,
    /// ConnectTimeout.
    pub connect_timeout: Option<String>,
    /// ServerAliveInterval.
    pub server_alive_interval: Option<String>,
}

/// Reads `path` for `host`. A missing file is an empty config; an unreadable one an error.
pub fn load(path: &Path, host: &str) -> Result<HostConfig, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse(&text, host)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HostConfig::default()),
        Err(e) => Err(format!("cannot read ssh config {}: {e}", path.display())),
    }
}

/// Evaluates config text for `host`.
pub fn parse(text: &str, host: &str) -> HostConfig {
    let mut c = HostConfig::default();
    let mut active = true;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = split_key_value(line);
        let key = key.to_ascii_lowercase();
        match key.as_str() {
            "host" => {
                active = host_matches(value, host);
                continue;
            }
            "match" => {
                active = false;
                continue;
            }
            _ => {}
        }
        if !active {
            continue;
        }
        let value = unquote(value).to_owned();
        let first = |slot: &mut Option<String>| {
            if slot.is_none() {
                *slot = Some(value.clone());
            }
        };
        match key.as_str() {
            "hostname" => first(&mut c.host_name),
            "port" => first(&mut c.port),
            "user" => first(&mut c.user),
            "identityfile" => c.identity_files.push(value.clone()),
            "userknownhostsfile" => first(&mut c.user_known_hosts),
            "stricthostkeychecking" => first(&mut c.strict_host_key_checking),
            "batchmode" => first(&mut c.batch_mode),
            "connecttimeout" => first(&mut c.connect_timeout),
            "serveraliveinterval" => first(&mut c.server_alive_interval),
            _ => {}
        }
    }
    c
}

fn split_key_value(line: &str) -> (&str, &str) {
    let end = line
        .find(|c: char| c.is_ascii_whitespace() || c == '=')
        .unwrap_or(line.len());
    let key = &line[..end];
    let rest = line[end..].trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    (key, rest)
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

fn host_matches(patterns: &str, host: &str) -> bool {
    let mut matched = false;
    for p in patterns.split_ascii_whitespace() {
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

/// Expands `~` and the tokens `%d` (home), `%u` (local user), `%h` (host), `%r` (remote user),
/// `%%` in a path from the config or the command line.
pub fn expand_path(p: &str, home: &Path, host: &str, remote_user: &str) -> PathBuf {
    let local_user = std::env::var("USER").unwrap_or_default();
    let mut out = String::new();
    let mut chars = p.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '%' {
            match chars.next() {
                Some('d') => out.push_str(&home.to_string_lossy()),
                Some('u') => out.push_str(&local_user),
                Some('h') => out.push_str(host),
                Some('r') => out.push_str(remote_user),
                Some('%') => out.push('%'),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            }
        } else {
            out.push(ch);
        }
    }
    if out == "~" {
        return home.to_path_buf();
    }
    match out.strip_prefix("~/") {
        Some(rest) => home.join(rest),
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
    fn negation_and_match_skipped() {
        let c = parse(CONF, "bad.lan");
        assert_eq!(c.host_name, None);
        assert_eq!(c.identity_files, vec!["~/.ssh/b"]);
        let c = parse(CONF, "foo");
        assert_eq!(c.user.as_deref(), Some("globaluser"));
    }

    #[test]
    fn tokens() {
        let home = Path::new("/home/me");
        assert_eq!(
            expand_path("~/.ssh/id", home, "h", "r"),
            PathBuf::from("/home/me/.ssh/id")
        );
        assert_eq!(
            expand_path("%d/k-%h-%r", home, "h", "r"),
            PathBuf::from("/home/me/k-h-r")
        );
    }
}
