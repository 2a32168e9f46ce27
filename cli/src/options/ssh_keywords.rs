//! Every keyword of OpenSSH's ssh_config, and what sshfs-rs does with it: read by the
//! ssh_config reader, by `-o` parsing (an ssh option given on the command line) and by the
//! docs/ssh.md generator.

/// How sshfs-rs treats a keyword OpenSSH knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Read and acted on.
    Used,
    /// Read by the parser itself (Host, Match, Include, IgnoreUnknown).
    Structure,
    /// Known, not acted on: named in a warning.
    Unsupported,
    /// Known, meaningless for a file mount: named only with `-v`.
    Irrelevant,
}

use Kind::{Irrelevant, Structure, Unsupported, Used};

/// Every keyword of OpenSSH's ssh_config (9.x, lower case), and what sshfs-rs does with it.
/// docs/ssh.md lists them with the reason.
pub const KEYWORDS: &[(&str, Kind)] = &[
    ("host", Structure),
    ("match", Structure),
    ("include", Structure),
    ("ignoreunknown", Structure),
    ("hostname", Used),
    ("port", Used),
    ("user", Used),
    ("identityfile", Used),
    ("identityfile2", Used),
    ("userknownhostsfile", Used),
    ("stricthostkeychecking", Used),
    ("batchmode", Used),
    ("connecttimeout", Used),
    ("serveraliveinterval", Used),
    ("proxyjump", Used),
    ("proxycommand", Used),
    ("ciphers", Used),
    ("kexalgorithms", Used),
    ("macs", Used),
    ("hostkeyalgorithms", Used),
    ("pubkeyacceptedalgorithms", Used),
    ("pubkeyacceptedkeytypes", Used),
    ("compression", Used),
    ("identitiesonly", Used),
    ("identityagent", Used),
    ("certificatefile", Used),
    ("addressfamily", Used),
    ("hostkeyalias", Used),
    ("globalknownhostsfile", Used),
    ("checkhostip", Used),
    ("connectionattempts", Used),
    ("preferredauthentications", Used),
    ("pubkeyauthentication", Used),
    ("passwordauthentication", Used),
    ("kbdinteractiveauthentication", Used),
    ("challengeresponseauthentication", Used),
    ("loglevel", Used),
    ("serveralivecountmax", Used),
    // Known, not acted on (yet): each one that applies is named in a warning.
    ("addkeystoagent", Unsupported),
    ("bindaddress", Unsupported),
    ("bindinterface", Unsupported),
    ("canonicaldomains", Unsupported),
    ("canonicalizefallbacklocal", Unsupported),
    ("canonicalizehostname", Unsupported),
    ("canonicalizemaxdots", Unsupported),
    ("canonicalizepermittedcnames", Unsupported),
    ("casignaturealgorithms", Unsupported),
    ("controlmaster", Unsupported),
    ("controlpath", Unsupported),
    ("controlpersist", Unsupported),
    ("enablesshkeysign", Unsupported),
    ("gssapiauthentication", Unsupported),
    ("gssapidelegatecredentials", Unsupported),
    ("gssapikeyexchange", Unsupported),
    ("gssapiclientidentity", Unsupported),
    ("gssapiserveridentity", Unsupported),
    ("gssapirenewalforcesrekey", Unsupported),
    ("gssapitrustdns", Unsupported),
    ("gssapikexalgorithms", Unsupported),
    ("hashknownhosts", Unsupported),
    ("hostbasedacceptedalgorithms", Unsupported),
    ("hostbasedauthentication", Unsupported),
    ("hostbasedkeytypes", Unsupported),
    ("kbdinteractivedevices", Unsupported),
    ("knownhostscommand", Unsupported),
    ("nohostauthenticationforlocalhost", Unsupported),
    ("numberofpasswordprompts", Unsupported),
    ("pkcs11provider", Unsupported),
    ("smartcarddevice", Unsupported),
    ("proxyusefdpass", Unsupported),
    ("dsaauthentication", Unsupported),
    ("rekeylimit", Unsupported),
    ("requiredrsasize", Unsupported),
    ("revokedhostkeys", Unsupported),
    ("securitykeyprovider", Unsupported),
    ("skeyauthentication", Unsupported),
    ("tisauthentication", Unsupported),
    ("tcpkeepalive", Unsupported),
    ("keepalive", Unsupported),
    ("updatehostkeys", Unsupported),
    ("verifyhostkeydns", Unsupported),
    ("tag", Unsupported),
    ("obscurekeystroketiming", Irrelevant),
    ("channeltimeout", Unsupported),
    // Meaningless for a file mount: no terminal, no forwardings, no remote command.
    ("clearallforwardings", Irrelevant),
    ("dynamicforward", Irrelevant),
    ("enableescapecommandline", Irrelevant),
    ("escapechar", Irrelevant),
    ("exitonforwardfailure", Irrelevant),
    ("fingerprinthash", Irrelevant),
    ("forkafterauthentication", Irrelevant),
    ("forwardagent", Irrelevant),
    ("forwardx11", Irrelevant),
    ("forwardx11timeout", Irrelevant),
    ("forwardx11trusted", Irrelevant),
    ("gatewayports", Irrelevant),
    ("ipqos", Irrelevant),
    ("localcommand", Irrelevant),
    ("localforward", Irrelevant),
    ("logverbose", Irrelevant),
    ("permitlocalcommand", Irrelevant),
    ("permitremoteopen", Irrelevant),
    ("remotecommand", Irrelevant),
    ("remoteforward", Irrelevant),
    ("requesttty", Irrelevant),
    ("sendenv", Irrelevant),
    ("sessiontype", Irrelevant),
    ("setenv", Irrelevant),
    ("stdinnull", Irrelevant),
    ("streamlocalbindmask", Irrelevant),
    ("streamlocalbindunlink", Irrelevant),
    ("syslogfacility", Irrelevant),
    ("tunnel", Irrelevant),
    ("tunneldevice", Irrelevant),
    ("visualhostkey", Irrelevant),
    ("xauthlocation", Irrelevant),
    // Ignored or deprecated by OpenSSH itself.
    ("protocol", Irrelevant),
    ("cipher", Irrelevant),
    ("fallbacktorsh", Irrelevant),
    ("globalknownhostsfile2", Irrelevant),
    ("rhostsauthentication", Irrelevant),
    ("userknownhostsfile2", Irrelevant),
    ("useroaming", Irrelevant),
    ("usersh", Irrelevant),
    ("useprivilegedport", Irrelevant),
    ("afstokenpassing", Irrelevant),
    ("kerberosauthentication", Irrelevant),
    ("kerberostgtpassing", Irrelevant),
    ("rsaauthentication", Irrelevant),
    ("rhostsrsaauthentication", Irrelevant),
    ("compressionlevel", Irrelevant),
];

/// What sshfs-rs does with `key` (lower case), if ssh knows it.
pub fn kind_of(key: &str) -> Option<Kind> {
    KEYWORDS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, kind)| *kind)
}

/// Whether `name` is an option OpenSSH's `ssh -o` takes (any case; not the config language's
/// own Host, Match, Include).
pub fn is_ssh_option(name: &str) -> bool {
    kind_of(&name.to_ascii_lowercase()).is_some_and(|k| k != Structure)
}
