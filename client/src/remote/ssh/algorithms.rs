//! OpenSSH's algorithm lists (`Ciphers`, `KexAlgorithms`, `MACs`, `HostKeyAlgorithms`,
//! `PubkeyAcceptedAlgorithms`) with their meaning in ssh_config(5): `a,b` replaces the default
//! list, `+a,b` appends to it, `-a*,b` removes from it (wildcards allowed), `^a,b` puts the names
//! first; `*` and `?` patterns name every implemented algorithm they match.
//!
//! The default list is the one sshfs-rs offers (russh's). A name OpenSSH knows but russh does not
//! implement is skipped with a warning, and is an error when nothing else is left; a name no
//! one knows is an error (OpenSSH's "Bad SSH2 cipher spec").

use std::borrow::Cow;

use russh::keys::Algorithm;
use russh::{Preferred, cipher, compression, kex, mac};

use super::known_hosts::wildcard_match;

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// `Ciphers`.
    Cipher,
    /// `KexAlgorithms`.
    Kex,
    /// `MACs`.
    Mac,
    /// `HostKeyAlgorithms`.
    HostKey,
    /// `PubkeyAcceptedAlgorithms`.
    Pubkey,
}

impl ListKind {
    /// The ssh_config keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            ListKind::Cipher => "Ciphers",
            ListKind::Kex => "KexAlgorithms",
            ListKind::Mac => "MACs",
            ListKind::HostKey => "HostKeyAlgorithms",
            ListKind::Pubkey => "PubkeyAcceptedAlgorithms",
        }
    }

    fn what(self) -> &'static str {
        match self {
            ListKind::Cipher => "cipher",
            ListKind::Kex => "key exchange algorithm",
            ListKind::Mac => "MAC",
            ListKind::HostKey => "host key algorithm",
            ListKind::Pubkey => "public key algorithm",
        }
    }

    /// What sshfs-rs offers when the list is not set, most preferred first.
    pub fn defaults(self) -> Vec<String> {
        let d = Preferred::DEFAULT;
        match self {
            ListKind::Cipher => d.cipher.iter().map(|n| n.as_ref().to_owned()).collect(),
            ListKind::Kex => d
                .kex
                .iter()
                .map(|n| n.as_ref().to_owned())
                .filter(|n| !is_kex_extension(n))
                .collect(),
            ListKind::Mac => d.mac.iter().map(|n| n.as_ref().to_owned()).collect(),
            ListKind::HostKey => d.key.iter().map(|a| a.as_str().to_owned()).collect(),
            ListKind::Pubkey => {
                let mut v: Vec<String> = d.key.iter().map(|a| a.as_str().to_owned()).collect();
                v.extend(CERT_ALGORITHMS.iter().map(|s| (*s).to_owned()));
                v
            }
        }
    }

    /// Every name sshfs-rs implements (russh's, without `none`).
    fn implemented(self) -> Vec<String> {
        let mut v: Vec<String> = match self {
            ListKind::Cipher => cipher::ALL_CIPHERS
                .iter()
                .filter(|n| ***n != cipher::NONE && ***n != cipher::CLEAR)
                .map(|n| n.as_ref().to_owned())
                .collect(),
            ListKind::Kex => kex::ALL_KEX_ALGORITHMS
                .iter()
                .filter(|n| ***n != kex::NONE)
                .map(|n| n.as_ref().to_owned())
                .collect(),
            ListKind::Mac => mac::ALL_MAC_ALGORITHMS
                .iter()
                .filter(|n| ***n != mac::NONE)
                .map(|n| n.as_ref().to_owned())
                .collect(),
            ListKind::HostKey | ListKind::Pubkey => self.defaults(),
        };
        // Keep the default order first, so a pattern lists the preferred ones first.
        let mut out = self.defaults();
        v.retain(|n| !out.contains(n));
        out.append(&mut v);
        out
    }

    /// Names OpenSSH 9 knows (`ssh -Q cipher|kex|mac|key-sig`) beyond what we implement.
    fn known_to_openssh(self) -> &'static [&'static str] {
        match self {
            ListKind::Cipher => &[
                "3des-cbc",
                "aes128-cbc",
                "aes192-cbc",
                "aes256-cbc",
                "aes128-ctr",
                "aes192-ctr",
                "aes256-ctr",
                "aes128-gcm@openssh.com",
                "aes256-gcm@openssh.com",
                "chacha20-poly1305@openssh.com",
            ],
            ListKind::Kex => &[
                "diffie-hellman-group1-sha1",
                "diffie-hellman-group14-sha1",
                "diffie-hellman-group14-sha256",
                "diffie-hellman-group16-sha512",
                "diffie-hellman-group18-sha512",
                "diffie-hellman-group-exchange-sha1",
                "diffie-hellman-group-exchange-sha256",
                "ecdh-sha2-nistp256",
                "ecdh-sha2-nistp384",
                "ecdh-sha2-nistp521",
                "curve25519-sha256",
                "curve25519-sha256@libssh.org",
                "sntrup761x25519-sha512",
                "sntrup761x25519-sha512@openssh.com",
                "mlkem768x25519-sha256",
            ],
            ListKind::Mac => &[
                "hmac-sha1",
                "hmac-sha1-96",
                "hmac-sha2-256",
                "hmac-sha2-512",
                "hmac-md5",
                "hmac-md5-96",
                "umac-64@openssh.com",
                "umac-128@openssh.com",
                "hmac-sha1-etm@openssh.com",
                "hmac-sha1-96-etm@openssh.com",
                "hmac-sha2-256-etm@openssh.com",
                "hmac-sha2-512-etm@openssh.com",
                "hmac-md5-etm@openssh.com",
                "hmac-md5-96-etm@openssh.com",
                "umac-64-etm@openssh.com",
                "umac-128-etm@openssh.com",
            ],
            ListKind::HostKey | ListKind::Pubkey => &[
                "ssh-ed25519",
                "ssh-ed25519-cert-v01@openssh.com",
                "sk-ssh-ed25519@openssh.com",
                "sk-ssh-ed25519-cert-v01@openssh.com",
                "ecdsa-sha2-nistp256",
                "ecdsa-sha2-nistp256-cert-v01@openssh.com",
                "ecdsa-sha2-nistp384",
                "ecdsa-sha2-nistp384-cert-v01@openssh.com",
                "ecdsa-sha2-nistp521",
                "ecdsa-sha2-nistp521-cert-v01@openssh.com",
                "sk-ecdsa-sha2-nistp256@openssh.com",
                "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
                "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
                "ssh-dss",
                "ssh-dss-cert-v01@openssh.com",
                "ssh-rsa",
                "ssh-rsa-cert-v01@openssh.com",
                "rsa-sha2-256",
                "rsa-sha2-256-cert-v01@openssh.com",
                "rsa-sha2-512",
                "rsa-sha2-512-cert-v01@openssh.com",
            ],
        }
    }
}

/// Certificate algorithms a client certificate may be offered under (user authentication).
const CERT_ALGORITHMS: &[&str] = &[
    "ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
    "ssh-rsa-cert-v01@openssh.com",
];

fn is_kex_extension(name: &str) -> bool {
    name.starts_with("ext-info-") || name.starts_with("kex-strict-")
}

/// An algorithm list worked out from an OpenSSH specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The names to offer, most preferred first.
    pub names: Vec<String>,
    /// A warning for the user (names skipped because sshfs-rs does not implement them).
    pub warning: Option<String>,
}

/// Works out the list `spec` (as written after `Ciphers` etc.) means. The error is one line.
pub fn resolve(kind: ListKind, spec: &str) -> Result<Resolved, String> {
    let spec = spec.trim();
    let (mode, body) = match spec.chars().next() {
        Some(c @ ('+' | '-' | '^')) => (c, &spec[1..]),
        _ => (' ', spec),
    };
    let items: Vec<&str> = body
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() {
        return Err(format!("{} needs at least one name", kind.keyword()));
    }
    let implemented = kind.implemented();
    let known = kind.known_to_openssh();
    let defaults = kind.defaults();
    if mode == '-' {
        for item in &items {
            if !is_pattern(item)
                && !implemented.contains(&(*item).to_owned())
                && !known.contains(item)
            {
                return Err(format!("unknown {} '{item}'", kind.what()));
            }
        }
        let names: Vec<String> = defaults
            .into_iter()
            .filter(|n| !items.iter().any(|p| wildcard_match(p, n)))
            .collect();
        if names.is_empty() {
            return Err(format!(
                "{}={spec} leaves no {} to offer",
                kind.keyword(),
                kind.what()
            ));
        }
        return Ok(Resolved {
            names,
            warning: None,
        });
    }
    let mut given = Vec::new();
    let mut unsupported = Vec::new();
    for item in &items {
        if is_pattern(item) {
            let matched: Vec<&String> = implemented
                .iter()
                .filter(|n| wildcard_match(item, n))
                .collect();
            if matched.is_empty() {
                if known.iter().any(|n| wildcard_match(item, n)) {
                    unsupported.push((*item).to_owned());
                } else {
                    return Err(format!("unknown {} '{item}'", kind.what()));
                }
            }
            given.extend(matched.into_iter().cloned());
        } else if implemented.iter().any(|n| n == item) {
            given.push((*item).to_owned());
        } else if known.contains(item) {
            unsupported.push((*item).to_owned());
        } else {
            return Err(format!("unknown {} '{item}'", kind.what()));
        }
    }
    let all = match mode {
        '+' => [defaults, given].concat(),
        '^' => [given, defaults].concat(),
        _ => given,
    };
    let mut names: Vec<String> = Vec::new();
    for n in all {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    if names.is_empty() {
        return Err(format!(
            "sshfs-rs does not implement the {} {}, the only one{} {} allows (it implements {})",
            kind.what(),
            unsupported.join(", "),
            if unsupported.len() == 1 { "" } else { "s" },
            kind.keyword(),
            implemented.join(",")
        ));
    }
    let warning = (!unsupported.is_empty()).then(|| {
        format!(
            "{}: sshfs-rs does not implement {}; skipped",
            kind.keyword(),
            unsupported.join(", ")
        )
    });
    Ok(Resolved { names, warning })
}

fn is_rsa(a: &Algorithm) -> bool {
    matches!(a, Algorithm::Rsa { .. })
}

fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// The algorithms to offer: the lists given (`None`: the defaults) and compression.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Algorithms {
    /// Ciphers.
    pub ciphers: Option<Vec<String>>,
    /// KexAlgorithms.
    pub kex: Option<Vec<String>>,
    /// MACs.
    pub macs: Option<Vec<String>>,
    /// HostKeyAlgorithms (`None`: the defaults, those known_hosts has for the host first).
    pub host_keys: Option<Vec<String>>,
    /// PubkeyAcceptedAlgorithms (`None`: every one implemented).
    pub pubkey: Option<Vec<String>>,
    /// Compression: zlib preferred.
    pub compression: bool,
}

impl Algorithms {
    /// russh's preference lists; `known_types` are the key types known_hosts lists for the
    /// host, moved first when HostKeyAlgorithms is not given (as OpenSSH does).
    pub fn preferred(&self, known_types: &[Algorithm]) -> Preferred {
        let d = Preferred::DEFAULT;
        let mut p = Preferred::DEFAULT.clone();
        if let Some(c) = &self.ciphers {
            p.cipher = Cow::Owned(
                c.iter()
                    .filter_map(|n| cipher::Name::try_from(n.as_str()).ok())
                    .collect(),
            );
        }
        if let Some(k) = &self.kex {
            let mut v: Vec<kex::Name> = k
                .iter()
                .filter_map(|n| kex::Name::try_from(n.as_str()).ok())
                .collect();
            // The protocol extensions ride on the kex list, as OpenSSH adds them.
            v.push(kex::EXTENSION_SUPPORT_AS_CLIENT);
            v.push(kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT);
            p.kex = Cow::Owned(v);
        }
        if let Some(m) = &self.macs {
            p.mac = Cow::Owned(
                m.iter()
                    .filter_map(|n| mac::Name::try_from(n.as_str()).ok())
                    .collect(),
            );
        }
        let keys: Vec<Algorithm> = match &self.host_keys {
            Some(h) => h
                .iter()
                .filter_map(|n| d.key.iter().find(|a| a.as_str() == n).cloned())
                .collect(),
            None => {
                let known = |a: &Algorithm| {
                    known_types
                        .iter()
                        .any(|k| k == a || (is_rsa(k) && is_rsa(a)))
                };
                let (mut first, rest): (Vec<Algorithm>, Vec<Algorithm>) =
                    d.key.iter().cloned().partition(known);
                first.extend(rest);
                first
            }
        };
        p.key = Cow::Owned(keys);
        if self.compression {
            p.compression = Cow::Owned(vec![
                compression::ZLIB_LEGACY,
                compression::ZLIB,
                compression::NONE,
            ]);
        } else {
            p.compression = Cow::Owned(vec![compression::NONE]);
        }
        p
    }

    /// Whether PubkeyAcceptedAlgorithms lets a key or certificate of algorithm `name` be used.
    pub fn accepts_pubkey(&self, name: &str) -> bool {
        self.pubkey
            .as_ref()
            .is_none_or(|list| list.iter().any(|n| n == name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(kind: ListKind, spec: &str) -> Vec<String> {
        resolve(kind, spec).unwrap().names
    }

    #[test]
    fn plus_minus_caret_and_explicit() {
        let d = ListKind::Cipher.defaults();
        let plus = names(ListKind::Cipher, "+aes128-cbc");
        assert_eq!(plus[..d.len()], d[..]);
        assert_eq!(plus.last().map(String::as_str), Some("aes128-cbc"));
        let minus = names(ListKind::Cipher, "-aes*-ctr");
        assert!(minus.iter().all(|n| !n.ends_with("-ctr")), "{minus:?}");
        assert!(minus.contains(&"chacha20-poly1305@openssh.com".to_owned()));
        let caret = names(ListKind::Cipher, "^aes128-ctr");
        assert_eq!(caret[0], "aes128-ctr");
        assert_eq!(caret.len(), d.len(), "no duplicate");
        assert_eq!(
            names(ListKind::Mac, "hmac-sha2-256,hmac-sha1"),
            vec!["hmac-sha2-256", "hmac-sha1"]
        );
        assert_eq!(
            names(ListKind::Kex, "curve25519-sha256*"),
            vec!["curve25519-sha256", "curve25519-sha256@libssh.org"]
        );
    }

    #[test]
    fn unimplemented_and_unknown_names() {
        let r = resolve(ListKind::Mac, "umac-64@openssh.com,hmac-sha2-256").unwrap();
        assert_eq!(r.names, vec!["hmac-sha2-256"]);
        assert!(r.warning.unwrap().contains("umac-64@openssh.com"));
        let e = resolve(ListKind::Cipher, "3des-cbc").unwrap_err();
        assert!(e.contains("3des-cbc") && e.contains("only one"), "{e}");
        let e = resolve(ListKind::Cipher, "aes512-ctr").unwrap_err();
        assert!(e.contains("unknown cipher 'aes512-ctr'"), "{e}");
        assert!(resolve(ListKind::Cipher, "-*").is_err());
        assert!(resolve(ListKind::Kex, "").is_err());
    }

    #[test]
    fn preferred_lists() {
        let a = Algorithms {
            ciphers: Some(vec!["aes128-ctr".into()]),
            kex: Some(vec!["curve25519-sha256".into()]),
            compression: true,
            ..Algorithms::default()
        };
        let p = a.preferred(&[Algorithm::Rsa { hash: None }]);
        assert_eq!(p.cipher.len(), 1);
        assert!(p.kex.contains(&kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT));
        assert!(is_rsa(&p.key[0]), "known_hosts' type first: {:?}", p.key);
        assert_eq!(p.compression[0], compression::ZLIB_LEGACY);
    }
}
