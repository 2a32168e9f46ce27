//! Parsing `-o` arguments against the option table into [`MountOpts`]: splitting at commas,
//! ssh's comma lists, case-insensitive ssh keywords, mount's sloppy mode. No I/O.

use super::mount_opts::MountOpts;
use super::table::{
    Any, Flag, Ignore, List, Nothing, Optional, Refuse, Required, Set, Ssh, lookup,
};

/// Parses a list of `-o` arguments (each may hold several comma-separated options).
#[cfg(test)]
pub fn parse(args: &[String]) -> Result<MountOpts, String> {
    parse_with(args, false)
}

/// Splits an `-o` argument at its commas; `\,` is a comma inside a value (as libfuse's option
/// parser, and so the C sshfs, take it).
fn split_options(arg: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = arg.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                chars.next();
                if let Some(last) = out.last_mut() {
                    last.push(',');
                }
            }
            ',' => out.push(String::new()),
            c => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    out
}

/// Like [`parse`]; with `sloppy` (mount's `-s`), an unknown option is skipped (and listed in
/// [`MountOpts::skipped_unknown`]) instead of refused.
pub fn parse_with(args: &[String], sloppy: bool) -> Result<MountOpts, String> {
    let mut o = MountOpts::default();
    // ssh keywords we have no entry for: for the ssh of -o ssh_command, else warned about.
    let mut ssh_keywords = Vec::new();
    for arg in args {
        for item in join_lists(split_options(arg)).iter() {
            let item = item.as_str();
            let (name, value) = match item.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (item, None),
            };
            let def = lookup(name, value.is_some());
            let Some(def) = def else {
                if let Some(kind) =
                    crate::options::ssh_keywords::kind_of(&name.to_ascii_lowercase())
                {
                    // Passed on to the ssh of -o ssh_command; without one, named in a warning
                    // as in ssh_config (checked below, once ssh_command is known).
                    if let Some(v) =
                        value.filter(|_| crate::options::ssh_keywords::is_ssh_option(name))
                    {
                        o.ssh_options.push(format!("{name}={v}"));
                    }
                    ssh_keywords.push((name.to_owned(), value.map(str::to_owned), kind));
                    continue;
                }
                if sloppy {
                    o.skipped_unknown.push(item.to_owned());
                    continue;
                }
                return Err(format!("unknown option '-o {name}' (see sshfs-rs --help)"));
            };
            let value = match (def.value, value) {
                (Any, v) => v.unwrap_or(""),
                (Flag, None) => "",
                (Flag, Some(_)) => return Err(format!("option '-o {name}' takes no value")),
                (Required(what), None) | (Required(what), Some("")) => {
                    return Err(format!(
                        "option '-o {name}' needs a value: -o {}={what}",
                        def.name
                    ));
                }
                (List(what), None) | (List(what), Some("")) => {
                    return Err(format!(
                        "option '-o {name}' needs a value: -o {}={what}",
                        def.name
                    ));
                }
                (Optional(_), v) | (Required(_), v) | (List(_), v) => v.unwrap_or(""),
            };
            let bad = |why: String| format!("bad value in '-o {item}': {why}");
            match def.does {
                Set(set) => set(&mut o, value).map_err(bad)?,
                Nothing(check) => check(value).map_err(bad)?,
                Ignore => {}
                Refuse(why) => return Err(format!("option '-o {name}' is not supported: {why}")),
            }
            if def.origin == Ssh {
                o.ssh_options.push(format!("{name}={value}"));
            }
        }
    }
    // With ssh_command they went to ssh above; the config language is never an -o option.
    for (name, value, kind) in ssh_keywords {
        if o.ssh_command.is_none() || kind == crate::options::ssh_keywords::Kind::Structure {
            ssh_keyword(&mut o, &name, value.as_deref(), kind)?;
        }
    }
    Ok(o)
}

/// An ssh option sshfs-rs has no `-o` definition for: one ssh_config knows but sshfs-rs does
/// not act on is kept to be named in a warning (one meaningless for a mount, only with -v),
/// as the same keyword in ssh_config is; the config language itself is refused.
fn ssh_keyword(
    o: &mut MountOpts,
    name: &str,
    value: Option<&str>,
    kind: crate::options::ssh_keywords::Kind,
) -> Result<(), String> {
    use crate::options::ssh_keywords::Kind;
    if value.is_none_or(str::is_empty) {
        return Err(format!("option '-o {name}' needs a value: -o {name}=..."));
    }
    match kind {
        Kind::Unsupported => o.ssh_unused.push(name.to_owned()),
        Kind::Irrelevant => o.ssh_irrelevant.push(name.to_owned()),
        Kind::Structure | Kind::Used => {
            return Err(format!(
                "option '-o {name}' is not supported with -o: set it in an ssh_config file (-F FILE)"
            ));
        }
    }
    Ok(())
}

/// Joins to a list option (`Ciphers=a`) the words after it that are not options themselves
/// (`b`, `c` of `-o Ciphers=a,b,c,ro`), as ssh reads `-o Ciphers=a,b,c`.
fn join_lists(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items.into_iter().filter(|s| !s.is_empty()) {
        let continues = !item.contains('=')
            && lookup(&item, false).is_none()
            && crate::options::ssh_keywords::kind_of(&item.to_ascii_lowercase()).is_none()
            && out.last().is_some_and(|last| {
                last.split_once('=')
                    .and_then(|(n, _)| lookup(n, true))
                    .is_some_and(|d| matches!(d.value, List(_)))
            });
        match out.last_mut() {
            Some(last) if continues => {
                last.push(',');
                last.push_str(&item);
            }
            _ => out.push(item),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use sshfs_client::fs::idmap::NoMap;
    use sshfs_client::fuse::Atime;
    use sshfs_client::remote::sftp::server::SymlinkOrder;
    use sshfs_client::remote::{ssh::auth::AuthMethod, ssh::connect::StrictHostKeyChecking};

    use super::*;
    use crate::options::mount_opts::{IdMapping, LogLevel};
    use crate::options::table::{DEFS, Def};

    fn p(args: &[&str]) -> Result<MountOpts, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn server_overrides_are_parsed() {
        let o = p(&["max_conns=1,symlink_order=draft,hard_remove"]).unwrap();
        assert_eq!(o.server.max_conns, Some(1));
        assert_eq!(o.server.symlink_order, Some(SymlinkOrder::Draft));
        assert_eq!(o.server.hard_remove, Some(true));
        assert_eq!(
            p(&["hard_remove=no"]).unwrap().server.hard_remove,
            Some(false)
        );
        assert_eq!(p(&["ro"]).unwrap().server.hard_remove, None);
        assert!(p(&["hard_remove=maybe"]).is_err());
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
    fn ssh_lists_take_their_commas_and_other_ssh_keywords_are_kept() {
        let o = p(&[
            "Ciphers=aes128-ctr,aes256-ctr,ro,MACs=-hmac-sha1*,KexAlgorithms=^curve25519-sha256",
        ])
        .unwrap();
        assert_eq!(o.ciphers.as_deref(), Some("aes128-ctr,aes256-ctr"));
        assert!(o.read_only);
        assert_eq!(o.macs.as_deref(), Some("-hmac-sha1*"));
        assert!(
            p(&["Ciphers=aes128-ctr,frob"])
                .unwrap_err()
                .contains("frob")
        );
        assert_eq!(
            p(&["PreferredAuthentications=password,gssapi-with-mic,publickey"])
                .unwrap()
                .preferred_authentications,
            Some(vec![AuthMethod::Password, AuthMethod::PublicKey])
        );
        let o =
            p(&["ControlMaster=auto,SendEnv=LANG,ServerAliveCountMax=7,LogLevel=debug3"]).unwrap();
        assert_eq!(o.ssh_unused, vec!["ControlMaster"]);
        assert_eq!(o.ssh_irrelevant, vec!["SendEnv"]);
        assert_eq!(o.server_alive_count_max, Some(7));
        assert_eq!(o.log_level, Some(LogLevel::Debug3));
        assert!(p(&["Host=x"]).unwrap_err().contains("ssh_config file"));
        assert!(p(&["AddressFamily=ipx"]).is_err());
    }

    /// Every keyword ssh_config acts on can be given with -o too.
    #[test]
    fn every_used_ssh_keyword_is_an_option() {
        for (key, kind) in crate::options::ssh_keywords::KEYWORDS {
            // HostName and the old IdentityFile2 are read from ssh_config only.
            if *kind == crate::options::ssh_keywords::Kind::Used
                && !["hostname", "identityfile2"].contains(key)
            {
                assert!(
                    DEFS.iter().any(|d| d.origin == Ssh && d.matches(key)),
                    "ssh_config keyword {key} has no -o definition"
                );
            }
        }
    }

    #[test]
    fn unknown_option_is_named() {
        let e = p(&["ro,frobnicate"]).unwrap_err();
        assert!(e.contains("frobnicate"), "{e}");
        let o = parse_with(&["ro,frobnicate=1".to_owned()], true).unwrap();
        assert_eq!(o.skipped_unknown, vec!["frobnicate=1".to_owned()]);
    }

    /// An ssh option we have no entry for goes to the ssh of ssh_command; without one it is
    /// named in a warning, as in ssh_config.
    #[test]
    fn other_ssh_options_go_to_ssh_command() {
        let o = p(&["ro,ControlMaster=auto"]).unwrap();
        assert_eq!(o.ssh_unused, ["ControlMaster"]);
        let o = p(&["GSSAPIAuthentication=yes,ssh_command=ssh,IdentityFile=/k"]).unwrap();
        assert_eq!(
            o.ssh_options,
            ["GSSAPIAuthentication=yes", "IdentityFile=/k"]
        );
        assert!(o.ssh_unused.is_empty(), "{:?}", o.ssh_unused);
        assert!(
            p(&["ssh_command=ssh,Frobnicate=1"]).is_err(),
            "not an ssh option"
        );
        assert!(p(&["ssh_command=ssh,Host=x"]).is_err(), "config language");
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
        assert!(p(&["workaround=rename:nofrob"]).is_err());
        assert!(p(&["ssh_protocol=1"]).unwrap_err().contains("protocol 1"));
        assert!(p(&["idmap=group"]).unwrap_err().contains("idmap=group"));
        assert!(p(&["nomap=maybe"]).is_err());
        assert!(p(&["uid=-1"]).is_err());
        assert!(p(&["umask=8"]).is_err());
        assert!(p(&["umask=77777"]).is_err());
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
    fn owner_options() {
        let o = p(&["idmap=file,uidfile=/u,gidfile=/g,nomap=ignore,uid=1000,gid=100,umask=027"])
            .unwrap();
        assert_eq!(o.idmap, IdMapping::File);
        assert_eq!(o.uid_file, Some(PathBuf::from("/u")));
        assert_eq!(o.gid_file, Some(PathBuf::from("/g")));
        assert_eq!(o.nomap, Some(NoMap::Ignore));
        assert_eq!((o.uid, o.gid, o.umask), (Some(1000), Some(100), Some(0o27)));
        assert_eq!(p(&["idmap=user"]).unwrap().idmap, IdMapping::User);
        assert_eq!(
            p(&["idmap=user,idmap=none"]).unwrap().idmap,
            IdMapping::None
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
        assert_eq!(
            p(&["cache_max_bytes=4M"]).unwrap().cache_max_bytes,
            Some(4 << 20)
        );
        assert_eq!(
            p(&["cache_max_bytes=100000"]).unwrap().cache_max_bytes,
            Some(100_000)
        );
        assert!(p(&["cache_max_bytes=0"]).is_err());
        assert!(p(&["cache_max_bytes=lots"]).is_err());
        assert!(p(&["cache=maybe"]).is_err());
        assert!(p(&["cache_clean_interval=60"]).is_ok());
        let d = p(&["dcache_timeout=3,dcache_link_timeout=1,dcache_max_size=7"]).unwrap();
        assert_eq!(d.cache_stat_timeout, Some(Duration::from_secs(3)));
        assert_eq!(d.cache_link_timeout, Some(Duration::from_secs(1)));
        assert_eq!(d.cache_max_size, Some(7));
        assert_eq!(p(&["recheck=0"]).unwrap().recheck, Some(Duration::ZERO));
        assert_eq!(
            p(&["recheck=5"]).unwrap().recheck,
            Some(Duration::from_secs(5))
        );
        assert!(p(&["recheck=soon"]).is_err());
    }

    /// What mount(8) and mount.fuse3 pass on: kernel flags and fstab words.
    #[test]
    fn kernel_flags_and_fstab_words() {
        let o = p(&["rw,nosuid,nodev,noexec,noatime,_netdev,nofail,x-systemd.automount,comment=x,defaults,user,noauto"]).unwrap();
        assert!(!o.suid && !o.dev && o.noexec && !o.read_only);
        assert_eq!(o.atime, Atime::Never);
        let o = p(&["dev,suid,relatime,sync,dirsync,nodiratime"]).unwrap();
        assert!(o.suid && o.dev && o.sync && o.dirsync && o.nodiratime);
        assert_eq!(o.atime, Atime::Relative);
        let o = p(&[""]).unwrap();
        assert!(!o.suid && !o.dev, "nosuid,nodev by default");
        let o = p(&["fsname=me@x:/y,subtype=sshfs,max_read=65536,reconnect"]).unwrap();
        assert_eq!(o.fsname.as_deref(), Some("me@x:/y"));
        assert_eq!(o.subtype.as_deref(), Some("sshfs"));
        assert_eq!(o.max_read, Some(65536));
        assert_eq!(o.reconnect, Some(true), "a bare reconnect means yes");
        assert_eq!(p(&["reconnect=no"]).unwrap().reconnect, Some(false));
        // fstab's bare `user` is mount(8)'s; `user=NAME` is ssh's User, as ssh -o takes it.
        assert_eq!(p(&["user"]).unwrap(), MountOpts::default());
        assert_eq!(p(&["user=bob"]).unwrap().user.as_deref(), Some("bob"));
        assert!(p(&["User"]).unwrap_err().contains("needs a value"));
    }

    /// A value each option accepts, from its description.
    fn sample(d: &Def) -> Option<String> {
        let v = match d.value {
            Flag | Any | Optional(_) => return None,
            List(_) => match d.name {
                "Ciphers" => "aes128-ctr",
                "KexAlgorithms" => "curve25519-sha256",
                "MACs" => "hmac-sha2-256",
                "PreferredAuthentications" => "publickey",
                _ => "ssh-ed25519",
            },
            Required(what) => match what {
                "SECONDS" | "N" | "BYTES" | "PORT" => "5",
                "OCTAL" => "022",
                "LIST" => "rename:nofstat",
                _ => what.split('|').next().unwrap_or(what),
            },
        };
        Some(v.to_owned())
    }

    /// The parser does what each definition says (and so what the docs table says): `Set` and
    /// `Nothing` are accepted, `Ignore` too whatever the value, `Refuse` is refused with its
    /// reason.
    #[test]
    fn every_definition_parses_as_its_answer() {
        for d in DEFS {
            let name = d.name.replace('*', "foo");
            let item = match sample(d) {
                Some(v) => format!("{name}={v}"),
                None => name.clone(),
            };
            let got = p(&[&item]);
            match d.does {
                Set(_) | Nothing(_) | Ignore => {
                    assert!(got.is_ok(), "{item}: {got:?}")
                }
                Refuse(why) => {
                    let e = got.unwrap_err();
                    assert!(e.contains(&name) && e.contains(why), "{item}: {e}");
                }
            }
            if matches!(d.does, Nothing(_) | Ignore) && d.name != "x-*" {
                let mut o = p(&[&item]).unwrap();
                o.skipped_unknown.clear();
                // SSH options are kept for an ssh_command whatever they do for us.
                o.ssh_options.clear();
                assert_eq!(o, MountOpts::default(), "{item} has no effect");
            }
        }
    }

    /// Every option the C sshfs 3.7 lists in `sshfs -h` and `man sshfs` (and the FUSE ones it
    /// passes on) has a definition: no sshfs option is "unknown".
    #[test]
    fn every_sshfs_option_has_an_answer() {
        let sshfs = "reconnect delay_connect sshfs_sync no_readahead sync_readdir dir_cache \
            dcache_max_size dcache_timeout dcache_stat_timeout dcache_link_timeout \
            dcache_dir_timeout dcache_clean_interval dcache_min_clean_interval direct_io \
            workaround idmap uidfile gidfile nomap ssh_command ssh_protocol sftp_server \
            directport passive disable_hardlink transform_symlinks contain_symlinks \
            no_contain_symlinks follow_symlinks no_check_root password_stdin max_conns \
            kernel_cache auto_cache noauto_cache no_rofd_flush umask uid gid entry_timeout \
            negative_timeout attr_timeout ac_attr_timeout noforget remember modules \
            allow_other allow_root auto_unmount subdir rellinks norellinks from_code to_code \
            max_read large_read atime noatime relatime dev nodev suid nosuid exec noexec \
            fsname subtype max_write max_background writeback_cache rw ro sync async dirsync \
            default_permissions debug cache cache_timeout cache_max_size \
            _netdev nofail auto noauto user users nouser defaults comment x-systemd.foo";
        for name in sshfs.split_ascii_whitespace() {
            assert!(
                DEFS.iter().any(|d| d.matches(name)),
                "sshfs option {name} has no definition"
            );
        }
    }
}
