//! The `-o name[=value]` options: one definition per option (name, value, help), from which both
//! parsing and the `--help` text are made. Parsing checks values but does no I/O.

use std::path::PathBuf;
use std::time::Duration;

use sshfs_client::remote::StrictHostKeyChecking;

/// What an option's value looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    /// A bare flag (`-o ro`).
    Flag,
    /// `name=value`.
    Required(&'static str),
}

/// One `-o` option.
struct Def {
    name: &'static str,
    value: Value,
    help: &'static str,
}

/// Every `-o` option we accept. SSH options are matched case-insensitively, like OpenSSH.
const DEFS: &[Def] = &[
    Def {
        name: "IdentityFile",
        value: Value::Required("FILE"),
        help: "private key to authenticate with (repeatable; default ~/.ssh/id_ed25519, id_ecdsa, id_rsa)",
    },
    Def {
        name: "User",
        value: Value::Required("NAME"),
        help: "remote user name",
    },
    Def {
        name: "Port",
        value: Value::Required("PORT"),
        help: "remote SSH port (same as -p)",
    },
    Def {
        name: "UserKnownHostsFile",
        value: Value::Required("FILE"),
        help: "known_hosts file(s), space separated (default ~/.ssh/known_hosts)",
    },
    Def {
        name: "StrictHostKeyChecking",
        value: Value::Required("yes|accept-new|no|ask"),
        help: "what to do with an unknown host key (default ask); a changed key is always refused",
    },
    Def {
        name: "BatchMode",
        value: Value::Required("yes|no"),
        help: "never prompt for passwords, passphrases or host keys",
    },
    Def {
        name: "ConnectTimeout",
        value: Value::Required("SECONDS"),
        help: "give up connecting after this long",
    },
    Def {
        name: "ServerAliveInterval",
        value: Value::Required("SECONDS"),
        help: "send a keepalive after this much silence (default 15; 0 = never)",
    },
    Def {
        name: "ro",
        value: Value::Flag,
        help: "mount read-only",
    },
    Def {
        name: "rw",
        value: Value::Flag,
        help: "mount read-write (the default)",
    },
    Def {
        name: "allow_other",
        value: Value::Flag,
        help: "let other users access the mount (non-root: needs user_allow_other in /etc/fuse.conf)",
    },
    Def {
        name: "default_permissions",
        value: Value::Flag,
        help: "let the kernel check access from the file modes",
    },
    Def {
        name: "sync_read",
        value: Value::Flag,
        help: "the kernel reads one request at a time; any signal interrupts a blocked read() (default; we read ahead ourselves)",
    },
    Def {
        name: "async_read",
        value: Value::Flag,
        help: "the kernel sends its readahead in the background; only SIGKILL-like signals interrupt a blocked read()",
    },
    Def {
        name: "debug",
        value: Value::Flag,
        help: "stay in the foreground and log every request (same as -d)",
    },
    Def {
        name: "timeout",
        value: Value::Required("SECONDS"),
        help: "fail an SFTP request with EIO when the server has not answered after this long (default 60)",
    },
    Def {
        name: "reconnect",
        value: Value::Required("yes|no"),
        help: "when the connection drops, connect again and carry on with the open files (default yes); no: unmount and exit",
    },
    Def {
        name: "reconnect_timeout",
        value: Value::Required("SECONDS"),
        help: "while reconnecting, a request waits this long before failing with EIO (default 60); later ones fail at once until the link is back",
    },
    Def {
        name: "attr_timeout",
        value: Value::Required("SECONDS"),
        help: "how long the kernel caches attributes (default 1)",
    },
    Def {
        name: "entry_timeout",
        value: Value::Required("SECONDS"),
        help: "how long the kernel caches names (default 1)",
    },
    Def {
        name: "negative_timeout",
        value: Value::Required("SECONDS"),
        help: "how long the kernel caches 'no such file' (default 0: our own cache answers it)",
    },
    Def {
        name: "cache",
        value: Value::Required("yes|no"),
        help: "cache attributes, names and listings (default yes; no = ask the server every time)",
    },
    Def {
        name: "dir_cache",
        value: Value::Required("yes|no"),
        help: "cache directory listings (default yes)",
    },
    Def {
        name: "cache_timeout",
        value: Value::Required("SECONDS"),
        help: "sets the three cache_*_timeout options below",
    },
    Def {
        name: "cache_stat_timeout",
        value: Value::Required("SECONDS"),
        help: "how long cached attributes (and 'no such file') are used (default 20)",
    },
    Def {
        name: "cache_dir_timeout",
        value: Value::Required("SECONDS"),
        help: "how long cached directory listings are used (default 20)",
    },
    Def {
        name: "cache_link_timeout",
        value: Value::Required("SECONDS"),
        help: "how long cached symlink targets are used (default 20)",
    },
    Def {
        name: "cache_max_size",
        value: Value::Required("N"),
        help: "most paths the cache holds; the least recently used go first (default 10000)",
    },
    Def {
        name: "cache_clean_interval",
        value: Value::Required("SECONDS"),
        help: "accepted for sshfs compatibility; no effect (the cache is bounded by cache_max_size)",
    },
    Def {
        name: "cache_min_clean_interval",
        value: Value::Required("SECONDS"),
        help: "accepted for sshfs compatibility; no effect",
    },
];

/// Settings collected from `-o` options. `None` means "not given" (ssh_config or the default
/// applies).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MountOpts {
    /// IdentityFile, in order.
    pub identity_files: Vec<PathBuf>,
    /// User.
    pub user: Option<String>,
    /// Port.
    pub port: Option<u16>,
    /// UserKnownHostsFile.
    pub user_known_hosts: Option<Vec<PathBuf>>,
    /// StrictHostKeyChecking.
    pub strict_host_key_checking: Option<StrictHostKeyChecking>,
    /// BatchMode.
    pub batch_mode: Option<bool>,
    /// ConnectTimeout.
    pub connect_timeout: Option<Duration>,
    /// ServerAliveInterval (zero = off).
    pub server_alive_interval: Option<Duration>,
    /// ro.
    pub read_only: bool,
    /// allow_other.
    pub allow_other: bool,
    /// default_permissions.
    pub default_permissions: bool,
    /// async_read (sync_read clears it).
    pub async_read: bool,
    /// debug.
    pub debug: bool,
    /// timeout.
    pub request_timeout: Option<Duration>,
    pub reconnect: Option<bool>,
    pub reconnect_timeout: Option<Duration>,
    /// attr_timeout.
    pub attr_timeout: Option<Duration>,
    /// entry_timeout.
    pub entry_timeout: Option<Duration>,
    /// negative_timeout.
    pub negative_timeout: Option<Duration>,
    /// cache (false = no caching at all).
    pub cache: Option<bool>,
    /// dir_cache.
    pub dir_cache: Option<bool>,
    /// cache_stat_timeout (or cache_timeout).
    pub cache_stat_timeout: Option<Duration>,
    /// cache_dir_timeout (or cache_timeout).
    pub cache_dir_timeout: Option<Duration>,
    /// cache_link_timeout (or cache_timeout).
    pub cache_link_timeout: Option<Duration>,
    /// cache_max_size.
    pub cache_max_size: Option<usize>,
}

/// Every `-o` option as users see it (`name` or `name=VALUE`) and what it does.
pub fn documented() -> impl Iterator<Item = (String, &'static str)> {
    DEFS.iter().map(|d| {
        let shown = match d.value {
            Value::Flag => d.name.to_owned(),
            Value::Required(v) => format!("{}={v}", d.name),
        };
        (shown, d.help)
    })
}

/// The `-o` part of `--help`, made from the definitions.
pub fn help_text() -> String {
    let mut s = String::from("Mount options (-o name[=value][,name[=value]...]; repeatable):\n");
    for (shown, help) in documented() {
        s.push_str(&format!("  {shown:<42} {help}\n"));
    }
    s
}

/// Parses a list of `-o` arguments (each may hold several comma-separated options).
pub fn parse(args: &[String]) -> Result<MountOpts, String> {
    let mut o = MountOpts::default();
    for arg in args {
        for item in arg.split(',').filter(|s| !s.is_empty()) {
            let (name, value) = match item.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (item, None),
            };
            let def = DEFS
                .iter()
                .find(|d| d.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| format!("unknown option '-o {name}' (see sshfs-rs --help)"))?;
            let value = match (def.value, value) {
                (Value::Flag, None) => "",
                (Value::Flag, Some(_)) => return Err(format!("option '-o {name}' takes no value")),
                (Value::Required(what), None) | (Value::Required(what), Some("")) => {
                    return Err(format!(
                        "option '-o {name}' needs a value: -o {}={what}",
                        def.name
                    ));
                }
                (Value::Required(_), Some(v)) => v,
            };
            apply(&mut o, def.name, value)
                .map_err(|why| format!("bad value in '-o {item}': {why}"))?;
        }
    }
    Ok(o)
}

fn apply(o: &mut MountOpts, name: &str, v: &str) -> Result<(), String> {
    match name {
        "IdentityFile" => o.identity_files.push(PathBuf::from(v)),
        "User" => o.user = Some(v.to_owned()),
        "Port" => o.port = Some(parse_port(v)?),
        "UserKnownHostsFile" => {
            o.user_known_hosts = Some(v.split_ascii_whitespace().map(PathBuf::from).collect())
        }
        "StrictHostKeyChecking" => o.strict_host_key_checking = Some(parse_strict(v)?),
        "BatchMode" => o.batch_mode = Some(parse_yes_no(v)?),
        "ConnectTimeout" => o.connect_timeout = Some(parse_secs(v)?),
        "ServerAliveInterval" => o.server_alive_interval = Some(parse_secs(v)?),
        "ro" => o.read_only = true,
        "rw" => o.read_only = false,
        "allow_other" => o.allow_other = true,
        "default_permissions" => o.default_permissions = true,
        "sync_read" => o.async_read = false,
        "async_read" => o.async_read = true,
        "debug" => o.debug = true,
        "timeout" => o.request_timeout = Some(parse_secs(v)?),
        "reconnect" => o.reconnect = Some(parse_yes_no(v)?),
        "reconnect_timeout" => o.reconnect_timeout = Some(parse_secs(v)?),
        "attr_timeout" => o.attr_timeout = Some(parse_secs_f(v)?),
        "entry_timeout" => o.entry_timeout = Some(parse_secs_f(v)?),
        "negative_timeout" => o.negative_timeout = Some(parse_secs_f(v)?),
        "cache" => o.cache = Some(parse_yes_no(v)?),
        "dir_cache" => o.dir_cache = Some(parse_yes_no(v)?),
        "cache_timeout" => {
            let t = parse_secs_f(v)?;
            o.cache_stat_timeout = Some(t);
            o.cache_dir_timeout = Some(t);
            o.cache_link_timeout = Some(t);
        }
        "cache_stat_timeout" => o.cache_stat_timeout = Some(parse_secs_f(v)?),
        "cache_dir_timeout" => o.cache_dir_timeout = Some(parse_secs_f(v)?),
        "cache_link_timeout" => o.cache_link_timeout = Some(parse_secs_f(v)?),
        "cache_max_size" => match v.parse::<usize>() {
            Ok(n) if n > 0 => o.cache_max_size = Some(n),
            _ => return Err(format!("'{v}' is not a positive number of entries")),
        },
        "cache_clean_interval" | "cache_min_clean_interval" => {
            parse_secs(v)?;
        }
        _ => return Err(format!("option {name} has no handler")),
    }
    Ok(())
}

/// A TCP port number 1..=65535.
pub fn parse_port(v: &str) -> Result<u16, String> {
    match v.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("'{v}' is not a port number (1-65535)")),
    }
}

/// OpenSSH's StrictHostKeyChecking values (`off` = no, `on` = yes, like OpenSSH).
pub fn parse_strict(v: &str) -> Result<StrictHostKeyChecking, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "on" | "true" => Ok(StrictHostKeyChecking::Yes),
        "accept-new" => Ok(StrictHostKeyChecking::AcceptNew),
        "no" | "off" | "false" => Ok(StrictHostKeyChecking::No),
        "ask" => Ok(StrictHostKeyChecking::Ask),
        _ => Err(format!("'{v}' is not one of yes, accept-new, no, ask")),
    }
}

/// yes/no.
pub fn parse_yes_no(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" => Ok(true),
        "no" | "false" | "off" => Ok(false),
        _ => Err(format!("'{v}' is not yes or no")),
    }
}

/// Whole seconds.
pub fn parse_secs(v: &str) -> Result<Duration, String> {
    v.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("'{v}' is not a number of seconds"))
}

fn parse_secs_f(v: &str) -> Result<Duration, String> {
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("'{v}' is not a number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<MountOpts, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn ssh_options_case_insensitive_and_comma_lists() {
        let o = p(&[
            "identityfile=/k1,IdentityFile=/k2",
            "port=2222,ro",
            "stricthostkeychecking=accept-new",
        ])
        .unwrap();
        assert_eq!(
            o.identity_files,
            vec![PathBuf::from("/k1"), PathBuf::from("/k2")]
        );
        assert_eq!(o.port, Some(2222));
        assert!(o.read_only);
        assert_eq!(
            o.strict_host_key_checking,
            Some(StrictHostKeyChecking::AcceptNew)
        );
    }

    #[test]
    fn unknown_option_is_named() {
        let e = p(&["ro,frobnicate"]).unwrap_err();
        assert!(e.contains("frobnicate"), "{e}");
    }

    #[test]
    fn bad_values() {
        assert!(p(&["Port=0"]).unwrap_err().contains("port"));
        assert!(p(&["Port=x"]).is_err());
        assert!(p(&["BatchMode=maybe"]).is_err());
        assert!(p(&["StrictHostKeyChecking=sometimes"]).is_err());
        assert!(p(&["ro=1"]).unwrap_err().contains("takes no value"));
        assert!(p(&["User"]).unwrap_err().contains("needs a value"));
        assert!(p(&["attr_timeout=-1"]).is_err());
    }

    #[test]
    fn values() {
        let o = p(&["BatchMode=yes,ConnectTimeout=5,timeout=7,attr_timeout=0.5,allow_other,default_permissions,UserKnownHostsFile=/a /b"]).unwrap();
        assert_eq!(o.batch_mode, Some(true));
        assert_eq!(o.connect_timeout, Some(Duration::from_secs(5)));
        assert_eq!(o.request_timeout, Some(Duration::from_secs(7)));
        assert_eq!(o.attr_timeout, Some(Duration::from_millis(500)));
        assert!(o.allow_other && o.default_permissions);
        assert_eq!(
            o.user_known_hosts,
            Some(vec![PathBuf::from("/a"), PathBuf::from("/b")])
        );
    }

    #[test]
    fn cache_options() {
        let o =
            p(&["cache_timeout=5,cache_dir_timeout=2.5,dir_cache=no,cache_max_size=100"]).unwrap();
        assert_eq!(o.cache_stat_timeout, Some(Duration::from_secs(5)));
        assert_eq!(o.cache_link_timeout, Some(Duration::from_secs(5)));
        assert_eq!(o.cache_dir_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(o.dir_cache, Some(false));
        assert_eq!(o.cache_max_size, Some(100));
        assert!(p(&["cache_max_size=0"]).is_err());
        assert!(p(&["cache=maybe"]).is_err());
        assert!(p(&["cache_clean_interval=60"]).is_ok());
    }

    #[test]
    fn help_lists_every_option() {
        let h = help_text();
        for d in DEFS {
            assert!(h.contains(d.name), "{} missing from help", d.name);
        }
    }
}
