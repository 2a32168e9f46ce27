//! docs/ssh.md's table of every ssh_config keyword (each also an ssh `-o` option) and what
//! sshfs-rs does with it, made from [`KEYWORDS`] and [`NOTES`] and checked by a test, so the
//! document cannot drift from the parser.

use crate::options::ssh_keywords::{KEYWORDS, Kind};

/// docs/ssh.md's keyword table: each keyword of [`KEYWORDS`] as OpenSSH spells it, with what
/// sshfs-rs does with it (the table's third column; the second comes from its [`Kind`]).
pub const NOTES: &[(&str, &str)] = &[
    (
        "Host",
        "patterns with `*`, `?`, `!` negation; matched against the host as given on the command line",
    ),
    (
        "Match",
        "`all`, `host` (after HostName so far), `originalhost`, `user` (the User so far, else the local user), `localuser`, `exec` (run with `$SHELL -c`, tokens expanded; exit 0 matches), `canonical`, `final` (a second pass, as ssh); each negatable with `!`. `localnetwork` and `tagged` are refused with a message naming the line",
    ),
    (
        "Include",
        "globs; a relative path is in `~/.ssh` (user's files) or `/etc/ssh` (system file); inside a block that does not apply nothing of the included file applies; nested at most 16 deep",
    ),
    (
        "IgnoreUnknown",
        "an unknown keyword matching one of its patterns is skipped instead of being an error",
    ),
    (
        "HostName",
        "`%h` and `%%` expanded; also the name checked in known_hosts",
    ),
    ("Port", "`-p` and `-o Port` win"),
    ("User", "`user@` in the source and `-o User` win"),
    (
        "IdentityFile",
        "accumulates; `~`, `%d %u %h %r %p %n %i %l %L %%` expanded",
    ),
    ("IdentityFile2", "old name of IdentityFile"),
    (
        "UserKnownHostsFile",
        "space-separated list; new keys go to the first",
    ),
    (
        "StrictHostKeyChecking",
        "yes, accept-new, no (= accept-new: a changed key is always refused), ask",
    ),
    (
        "BatchMode",
        "never prompt; a password from `-o password_stdin` is still used",
    ),
    ("ConnectTimeout", ""),
    (
        "ServerAliveInterval",
        "default 15 s (3 missed answers end the connection)",
    ),
    (
        "ProxyJump",
        "`[user@]host[:port]` hops, comma-separated (`ssh://` too); `none` disables. Each hop is a full SSH connection (its own host key check and login), looked up in the config by its name (HostName, Port, User, IdentityFile, UserKnownHostsFile, StrictHostKeyChecking, ...; `user@`/`:port` win), the next hop and finally the server reached through a `direct-tcpip` channel of the previous one. A jump host's own ProxyJump is followed (flattened into the chain, at most 8 deep); a ProxyCommand of the first jump host is used. The mount's BatchMode and ConnectTimeout apply to its jump hosts too. Reconnects go through the jump hosts again, each with the host key it had at the mount",
    ),
    (
        "ProxyCommand",
        "run as `$SHELL -c \"exec COMMAND\"` (else /bin/sh) with `%h %p %r %n %u %d %%` expanded; its stdin/stdout carry the SSH connection, its stderr is ours (so it is shown until the mount goes to the background); `none` disables. Run again for each reconnect; killed when its connection ends. Of ProxyJump and ProxyCommand the first one found wins, as in ssh",
    ),
    (
        "Ciphers",
        "`a,b` replaces the default list, `+a,b` appends to it, `-a*,b` removes from it (wildcards), `^a,b` puts first. Default: chacha20-poly1305@openssh.com, aes256-gcm@openssh.com, aes256-ctr, aes192-ctr, aes128-ctr; also implemented: aes128-gcm@openssh.com, aes128-cbc, aes192-cbc, aes256-cbc. A name OpenSSH knows that sshfs-rs does not implement (3des-cbc) is skipped with a warning, and is an error when it is the only one; an unknown name is an error. When the server has none of ours, one line names both offers (`Unable to negotiate with HOST port P: no matching cipher found. Their offer: ...`)",
    ),
    (
        "KexAlgorithms",
        "`+`, `-`, `^` and wildcards as for Ciphers. Default: mlkem768x25519-sha256, curve25519-sha256, curve25519-sha256@libssh.org, diffie-hellman-group-exchange-sha256, diffie-hellman-group18/17/16/15-sha512, diffie-hellman-group14-sha256; also implemented: ecdh-sha2-nistp256/384/521, diffie-hellman-group14-sha1, diffie-hellman-group1-sha1, diffie-hellman-group-exchange-sha1. Not implemented: sntrup761x25519-sha512",
    ),
    (
        "MACs",
        "`+`, `-`, `^` and wildcards as for Ciphers. Default: hmac-sha2-512-etm@openssh.com, hmac-sha2-256-etm@openssh.com, hmac-sha2-512, hmac-sha2-256; also implemented: hmac-sha1, hmac-sha1-etm@openssh.com. Not implemented: umac-*, hmac-md5*, hmac-sha1-96*",
    ),
    (
        "HostKeyAlgorithms",
        "`+`, `-`, `^` and wildcards as for Ciphers. Default: ssh-ed25519, ecdsa-sha2-nistp256/384/521, rsa-sha2-512, rsa-sha2-256, ssh-rsa, with the types known_hosts lists for the host (or its HostKeyAlias) moved first, as OpenSSH does, so a host known by its RSA key is not asked for its Ed25519 key. Given explicitly, the list is used as is; when the server's key is then of a type known_hosts has no entry for, `StrictHostKeyChecking yes` refuses it with a message naming the type known_hosts has. Host certificates (`*-cert-v01@openssh.com`) are not implemented (skipped with a warning)",
    ),
    (
        "PubkeyAcceptedAlgorithms",
        "`+`, `-`, `^` and wildcards as for Ciphers: the key and certificate types offered in user authentication (default: all of ssh-ed25519, ecdsa-sha2-*, rsa-sha2-512, rsa-sha2-256, ssh-rsa and their `-cert-v01@openssh.com` forms). An RSA key signs with the server's preferred hash that the list accepts",
    ),
    (
        "PubkeyAcceptedKeyTypes",
        "old name of PubkeyAcceptedAlgorithms",
    ),
    (
        "Compression",
        "`yes` (or `-C`): zlib@openssh.com (compression starts after login) or zlib, if the server agrees; `no` (default): not compressed",
    ),
    (
        "IdentitiesOnly",
        "`yes`: of the agent's keys only those that are an IdentityFile's (its `.pub`, or the key itself when it has no passphrase) or a CertificateFile's are offered; the IdentityFiles (default ones included) are offered as usual",
    ),
    (
        "IdentityAgent",
        "`SSH_AUTH_SOCK` (the default), `none` (no agent), `$VAR` (the socket that variable names) or a socket path (`~`, the tokens of IdentityFile and `${VAR}` expanded)",
    ),
    (
        "CertificateFile",
        "accumulates; `~` and tokens expanded. Each certificate is offered before the plain key, with the IdentityFile key or the agent key it certifies; `KEY-cert.pub` next to an IdentityFile is offered too, as ssh does, and so are certificates the agent holds",
    ),
    (
        "AddressFamily",
        "`any` (default), `inet` (IPv4 only), `inet6` (IPv6 only): which of the host's addresses are connected to",
    ),
    (
        "HostKeyAlias",
        "the name the host key is looked up under in known_hosts, and written under by accept-new, instead of `host` / `[host]:port` (no port is added, as in ssh)",
    ),
    (
        "GlobalKnownHostsFile",
        "space-separated list, tokens expanded; read only. Default `/etc/ssh/ssh_known_hosts`, `/etc/ssh/ssh_known_hosts2`",
    ),
    (
        "CheckHostIP",
        "accepted (`yes`/`no` checked), no effect: the host key is checked under the host name (or HostKeyAlias) only, which is what OpenSSH does with its default `CheckHostIP no`. With `yes` ssh would also look the key up under the server's IP address and warn when that differs; sshfs-rs does not",
    ),
    (
        "ConnectionAttempts",
        "TCP connects tried, one second apart, before giving up (default 1); not for a ProxyCommand. ConnectTimeout bounds each attempt, as in ssh",
    ),
    (
        "PreferredAuthentications",
        "the order of publickey, keyboard-interactive and password (default that order); `gssapi-with-mic` and `hostbased` are skipped. A method the server offers that is not listed shows in the error as `(not tried: not in PreferredAuthentications)`",
    ),
    (
        "PubkeyAuthentication",
        "`no`: no key is offered (agent, IdentityFile, CertificateFile); `unbound` and `host-bound` mean yes",
    ),
    (
        "PasswordAuthentication",
        "`no`: the password method is not tried",
    ),
    (
        "KbdInteractiveAuthentication",
        "`no`: keyboard-interactive is not tried",
    ),
    (
        "ChallengeResponseAuthentication",
        "old name of KbdInteractiveAuthentication",
    ),
    (
        "LogLevel",
        "QUIET (nothing), FATAL and ERROR (errors; warnings such as the unused-keyword one are dropped), INFO (the default), VERBOSE (as `-v`), DEBUG/DEBUG1 (every request, as `-d` but not staying in the foreground), DEBUG2/DEBUG3 (everything, the SSH library's too). `-v` and `-d` win when they show more; `SSHFS_RS_LOG` wins over all",
    ),
    (
        "ServerAliveCountMax",
        "keepalives (every ServerAliveInterval) left unanswered before the connection is given up and replaced (default 3); 0 is taken as 1",
    ),
    ("AddKeysToAgent", "not implemented yet"),
    ("BindAddress", "not implemented yet"),
    ("BindInterface", "not implemented yet"),
    ("CanonicalDomains", "not implemented yet"),
    ("CanonicalizeFallbackLocal", "not implemented yet"),
    ("CanonicalizeHostname", "not implemented yet"),
    ("CanonicalizeMaxDots", "not implemented yet"),
    ("CanonicalizePermittedCNAMEs", "not implemented yet"),
    ("CASignatureAlgorithms", "not implemented yet"),
    ("ControlMaster", "each mount makes its own connection"),
    ("ControlPath", "each mount makes its own connection"),
    ("ControlPersist", "each mount makes its own connection"),
    ("EnableSSHKeysign", "not implemented yet"),
    ("GSSAPIAuthentication", "no GSSAPI/Kerberos authentication"),
    ("GSSAPIDelegateCredentials", "not implemented yet"),
    ("GSSAPIKeyExchange", "not implemented yet"),
    ("GSSAPIClientIdentity", "not implemented yet"),
    ("GSSAPIServerIdentity", "not implemented yet"),
    ("GSSAPIRenewalForcesRekey", "not implemented yet"),
    ("GSSAPITrustDns", "not implemented yet"),
    ("GSSAPIKexAlgorithms", "not implemented yet"),
    (
        "HashKnownHosts",
        "new known_hosts entries are written unhashed",
    ),
    ("HostbasedAcceptedAlgorithms", "not implemented yet"),
    ("HostbasedAuthentication", "not implemented yet"),
    ("HostbasedKeyTypes", "not implemented yet"),
    ("KbdInteractiveDevices", "not implemented yet"),
    ("KnownHostsCommand", "not implemented yet"),
    ("NoHostAuthenticationForLocalhost", "not implemented yet"),
    ("NumberOfPasswordPrompts", "always 3"),
    ("PKCS11Provider", "not implemented yet"),
    ("SmartcardDevice", "not implemented yet"),
    ("ProxyUseFdpass", "not implemented yet"),
    ("DSAAuthentication", "not implemented yet"),
    ("RekeyLimit", "not implemented yet"),
    ("RequiredRSASize", "not implemented yet"),
    ("RevokedHostKeys", "not implemented yet"),
    ("SecurityKeyProvider", "not implemented yet"),
    ("SKeyAuthentication", "not implemented yet"),
    ("TISAuthentication", "not implemented yet"),
    ("TCPKeepAlive", "not implemented yet"),
    ("KeepAlive", "not implemented yet"),
    ("UpdateHostKeys", "not implemented yet"),
    ("VerifyHostKeyDNS", "not implemented yet"),
    ("Tag", "not implemented yet"),
    (
        "ObscureKeystrokeTiming",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    ("ChannelTimeout", "not implemented yet"),
    (
        "ClearAllForwardings",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "DynamicForward",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "EnableEscapeCommandline",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "EscapeChar",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "ExitOnForwardFailure",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "FingerprintHash",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "ForkAfterAuthentication",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "ForwardAgent",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "ForwardX11",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "ForwardX11Timeout",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "ForwardX11Trusted",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "GatewayPorts",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "IPQoS",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "LocalCommand",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "LocalForward",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "LogVerbose",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "PermitLocalCommand",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "PermitRemoteOpen",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "RemoteCommand",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "RemoteForward",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "RequestTTY",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "SendEnv",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "SessionType",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "SetEnv",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "StdinNull",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "StreamLocalBindMask",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "StreamLocalBindUnlink",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "SyslogFacility",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "Tunnel",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "TunnelDevice",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "VisualHostKey",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    (
        "XAuthLocation",
        "meaningless for a file mount (no terminal, no forwardings, no remote command, no ssh log)",
    ),
    ("Protocol", "ignored or deprecated by OpenSSH itself"),
    ("Cipher", "ignored or deprecated by OpenSSH itself"),
    ("FallBackToRsh", "ignored or deprecated by OpenSSH itself"),
    (
        "GlobalKnownHostsFile2",
        "ignored or deprecated by OpenSSH itself",
    ),
    (
        "RhostsAuthentication",
        "ignored or deprecated by OpenSSH itself",
    ),
    (
        "UserKnownHostsFile2",
        "ignored or deprecated by OpenSSH itself",
    ),
    ("UseRoaming", "ignored or deprecated by OpenSSH itself"),
    ("UseRsh", "ignored or deprecated by OpenSSH itself"),
    (
        "UsePrivilegedPort",
        "ignored or deprecated by OpenSSH itself",
    ),
    ("AFSTokenPassing", "ignored or deprecated by OpenSSH itself"),
    (
        "KerberosAuthentication",
        "ignored or deprecated by OpenSSH itself",
    ),
    (
        "KerberosTGTPassing",
        "ignored or deprecated by OpenSSH itself",
    ),
    (
        "RSAAuthentication",
        "ignored or deprecated by OpenSSH itself",
    ),
    (
        "RhostsRSAAuthentication",
        "ignored or deprecated by OpenSSH itself",
    ),
    (
        "CompressionLevel",
        "ignored or deprecated by OpenSSH itself",
    ),
];

/// The word docs/ssh.md uses for a kind.
fn word(kind: Kind) -> &'static str {
    match kind {
        Kind::Used => "used",
        Kind::Structure => "read",
        Kind::Unsupported => "warned",
        Kind::Irrelevant => "no effect",
    }
}

/// The Markdown table: one row per keyword, in [`KEYWORDS`]'s order.
pub fn table() -> String {
    let mut s =
        String::from("| keyword (ssh_config, or ssh's `-o`) | sshfs-rs | |\n|---|---|---|\n");
    for (key, kind) in KEYWORDS {
        let (name, note) = NOTES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(key))
            .copied()
            .unwrap_or((key, ""));
        s.push_str(&format!(
            "| `{name}` | {} | {} |\n",
            word(*kind),
            note.replace('|', "\\|")
        ));
    }
    s
}

mod tests {
    use super::*;

    #[test]
    fn every_keyword_has_a_note_and_every_note_a_keyword() {
        for (key, _) in KEYWORDS {
            assert!(
                NOTES.iter().any(|(n, _)| n.eq_ignore_ascii_case(key)),
                "{key} has no note"
            );
        }
        for (name, _) in NOTES {
            assert!(
                KEYWORDS.iter().any(|(k, _)| name.eq_ignore_ascii_case(k)),
                "{name} is not a keyword"
            );
        }
    }

    /// docs/ssh.md holds [`table`] between two marker lines;
    /// `SSHFS_RS_WRITE_DOCS=1 cargo test -p sshfs-rs ssh_table` writes it anew.
    #[test]
    fn ssh_table_in_docs_is_current() {
        const BEGIN: &str = "<!-- BEGIN ssh-keywords: made by `SSHFS_RS_WRITE_DOCS=1 cargo test -p sshfs-rs ssh_table` from cli/src/options/ssh_keywords.rs and cli/src/docs/ssh_page.rs -->\n";
        const END: &str = "<!-- END ssh-keywords -->\n";
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ssh.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let (head, rest) = doc.split_once(BEGIN).expect("BEGIN marker in docs/ssh.md");
        let (old, tail) = rest.split_once(END).expect("END marker in docs/ssh.md");
        let table = table();
        if std::env::var_os("SSHFS_RS_WRITE_DOCS").is_some() && old != table {
            std::fs::write(&path, format!("{head}{BEGIN}{table}{END}{tail}")).unwrap();
            return;
        }
        assert!(
            old == table,
            "the keyword table in docs/ssh.md is out of date: run SSHFS_RS_WRITE_DOCS=1 cargo test -p sshfs-rs ssh_table"
        );
    }
}
