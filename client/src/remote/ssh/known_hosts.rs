//! Host key checking against OpenSSH `known_hosts` files, with OpenSSH's semantics.
//!
//! russh's helper misses wildcards, negations, `@revoked` and several keys per host, and cannot
//! say which line a mismatch is on, so we read the files ourselves: plain and hashed (`|1|`) host
//! names, `[host]:port`, `*`/`?` patterns, `!negation`, `@revoked`; `@cert-authority` lines are
//! skipped (host certificates are not supported yet).

use std::path::{Path, PathBuf};

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::PublicKey;
use sha1::Sha1;

/// Where a known_hosts line came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// What the known_hosts files say about a host's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyStatus {
    /// The key is listed for this host.
    Known(Location),
    /// The key is marked `@revoked`.
    Revoked(Location),
    /// The host is listed with other keys of the same type: the key changed.
    Changed(Location),
    /// The host is not listed with a key of this type.
    Unknown,
}

/// The name a host has in known_hosts: `host`, or `[host]:port` when the port is not 22.
pub fn host_entry_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Checks `key` for `host`:`port` against `files`, in order. A revoked key wins over anything;
/// a matching key over a changed one.
pub fn check(files: &[PathBuf], host: &str, port: u16, key: &PublicKey) -> HostKeyStatus {
    check_name(files, &host_entry_name(host, port), key)
}

/// Like [`check`], for the name the host has in known_hosts (`HostKeyAlias`, or
/// [`host_entry_name`]).
pub fn check_name(files: &[PathBuf], name: &str, key: &PublicKey) -> HostKeyStatus {
    let name = name.to_owned();
    let mut changed = None;
    let mut known = None;
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            let loc = || Location {
                file: file.clone(),
                line: i + 1,
            };
            let Some(entry) = parse_line(line) else {
                continue;
            };
            if !hosts_match(entry.hosts, &name) {
                continue;
            }
            let Ok(listed) = PublicKey::from_openssh(&format!("{} {}", entry.key_type, entry.key))
            else {
                continue;
            };
            let same = listed.key_data() == key.key_data();
            match entry.marker {
                Marker::Revoked if same => return HostKeyStatus::Revoked(loc()),
                Marker::Revoked | Marker::CertAuthority => {}
                Marker::None if same => {
                    known.get_or_insert_with(loc);
                }
                Marker::None if listed.algorithm() == key.algorithm() => {
                    changed.get_or_insert_with(loc);
                }
                Marker::None => {}
            }
        }
    }
    match (known, changed) {
        (Some(loc), _) => HostKeyStatus::Known(loc),
        (None, Some(loc)) => HostKeyStatus::Changed(loc),
        (None, None) => HostKeyStatus::Unknown,
    }
}

/// The key types `files` list for the host named `name` (not `@revoked` or `@cert-authority`
/// lines), in the order first seen: what OpenSSH prefers to negotiate when HostKeyAlgorithms is
/// not set.
pub fn known_types(files: &[PathBuf], name: &str) -> Vec<russh::keys::Algorithm> {
    let mut types = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for entry in text.lines().filter_map(parse_line) {
            if entry.marker != Marker::None || !hosts_match(entry.hosts, name) {
                continue;
            }
            if let Ok(key) = PublicKey::from_openssh(&format!("{} {}", entry.key_type, entry.key))
                && !types.contains(&key.algorithm())
            {
                types.push(key.algorithm());
            }
        }
    }
    types
}

/// Appends `key` for the host named `name` (a `HostKeyAlias`: no port is added) to `file`,
/// creating it and its directory.
pub fn learn_name(file: &Path, name: &str, key: &PublicKey) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let line = key
        .to_openssh()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut words = line.split_ascii_whitespace();
    let (Some(kind), Some(blob)) = (words.next(), words.next()) else {
        return Err(std::io::Error::other("cannot encode the key"));
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    writeln!(f, "{name} {kind} {blob}")
}

/// Appends `host`'s key to `file` (creating it and its directory), as `accept-new` does.
pub fn learn(file: &Path, host: &str, port: u16, key: &PublicKey) -> std::io::Result<()> {
    russh::keys::known_hosts::learn_known_hosts_path(host, port, key, file)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

#[derive(Debug, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

struct Entry<'a> {
    marker: Marker,
    hosts: &'a str,
    key_type: &'a str,
    key: &'a str,
}

fn parse_line(line: &str) -> Option<Entry<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_ascii_whitespace();
    let mut first = fields.next()?;
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next()?;
    }
    Some(Entry {
        marker,
        hosts: first,
        key_type: fields.next()?,
        key: fields.next()?,
    })
}

/// OpenSSH's rule: a host matches a comma-separated list if some pattern matches and no negated
/// pattern does.
fn hosts_match(patterns: &str, name: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split(',') {
        if let Some(hashed) = pattern.strip_prefix("|1|") {
            if hashed_matches(hashed, name) {
                matched = true;
            }
        } else if let Some(negated) = pattern.strip_prefix('!') {
            if wildcard_match(negated, name) {
                return false;
            }
        } else if wildcard_match(pattern, name) {
            matched = true;
        }
    }
    matched
}

fn hashed_matches(salt_and_hash: &str, name: &str) -> bool {
    let Some((salt, hash)) = salt_and_hash.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (
        BASE64.decode(salt.as_bytes()),
        BASE64.decode(hash.as_bytes()),
    ) else {
        return false;
    };
    let Ok(mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(&salt) else {
        return false;
    };
    mac.chain_update(name.as_bytes())
        .verify_slice(&hash)
        .is_ok()
}

/// `*` and `?` glob, case-insensitive like OpenSSH's host matching.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF";

    fn file_with(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        (dir, path)
    }

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    #[test]
    fn plain_port_and_line_numbers() {
        let (_d, f) = file_with(&format!("# comment\n[localhost]:2222 {KEY_A}\n"));
        assert_eq!(
            check(std::slice::from_ref(&f), "localhost", 2222, &key(KEY_A)),
            HostKeyStatus::Known(Location {
                file: f.clone(),
                line: 2
            })
        );
        assert_eq!(
            check(std::slice::from_ref(&f), "localhost", 22, &key(KEY_A)),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            check(std::slice::from_ref(&f), "localhost", 2222, &key(KEY_B)),
            HostKeyStatus::Changed(Location { file: f, line: 2 })
        );
    }

    #[test]
    fn hashed_entry() {
        // Made with `ssh-keygen -H` from a "pijul.org" line.
        let (_d, f) = file_with(&format!(
            "|1|6VgKvFGsiIvBS8SqgODumg24Q1s=|OeAUNQ4u9wx60TsInMTPU28ZGM4= {KEY_B}\n"
        ));
        assert!(matches!(
            check(std::slice::from_ref(&f), "pijul.org", 22, &key(KEY_B)),
            HostKeyStatus::Known(_)
        ));
        assert_eq!(
            check(&[f], "example.org", 22, &key(KEY_B)),
            HostKeyStatus::Unknown
        );
    }

    #[test]
    fn wildcards_and_negation() {
        let (_d, f) = file_with(&format!("*.example.com,!bad.example.com {KEY_A}\n"));
        assert!(matches!(
            check(std::slice::from_ref(&f), "a.example.com", 22, &key(KEY_A)),
            HostKeyStatus::Known(_)
        ));
        assert_eq!(
            check(&[f], "bad.example.com", 22, &key(KEY_A)),
            HostKeyStatus::Unknown
        );
    }

    #[test]
    fn several_keys_per_host_and_revoked() {
        let (_d, f) = file_with(&format!("h {KEY_B}\nh {KEY_A}\n"));
        assert!(matches!(
            check(&[f], "h", 22, &key(KEY_A)),
            HostKeyStatus::Known(_)
        ));
        let (_d, f) = file_with(&format!("h {KEY_A}\n@revoked * {KEY_A}\n"));
        assert!(matches!(
            check(&[f], "h", 22, &key(KEY_A)),
            HostKeyStatus::Revoked(_)
        ));
    }

    #[test]
    fn learn_then_known() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sub/known_hosts");
        learn(&f, "127.0.0.1", 2200, &key(KEY_A)).unwrap();
        assert!(matches!(
            check(&[f], "127.0.0.1", 2200, &key(KEY_A)),
            HostKeyStatus::Known(_)
        ));
    }

    #[test]
    fn alias_learned_and_types_listed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("kh");
        learn_name(&f, "myalias", &key(KEY_A)).unwrap();
        assert!(matches!(
            check_name(std::slice::from_ref(&f), "myalias", &key(KEY_A)),
            HostKeyStatus::Known(_)
        ));
        assert_eq!(
            known_types(&[f], "myalias"),
            vec![russh::keys::Algorithm::Ed25519]
        );
    }

    #[test]
    fn glob() {
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("h?st", "HOST"));
        assert!(!wildcard_match("h?st", "hoost"));
        assert!(wildcard_match("[127.0.0.1]:*", "[127.0.0.1]:2222"));
    }
}
