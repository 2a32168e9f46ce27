//! The owner mapping of a mount from its options (`-o idmap`, `uidfile`, `gidfile`, `nomap`,
//! `uid`, `gid`, `umask`): the map files are read and their names looked up here, before
//! anything connects, with the C sshfs's rules (a map file must be the user's own and not
//! writable by others; a name with no local user or group is skipped). What each option means
//! is in sshfs_client::fs::idmap.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::unistd::{Gid, Group, Uid, User};
use sshfs_client::fs::idmap::{IdMap, IdTable, Owners, parse_map_line};
use sshfs_client::os_message::os_message;
use sshfs_client::remote::sftp::Sftp;
use tracing::debug;

use crate::options::mount_opts::{IdMapping, MountOpts};

/// The mapping the options ask for, and whether `idmap=user` still needs the login user's
/// remote ids (learned once connected: [`user_map`]).
pub fn build(o: &MountOpts) -> Result<(Owners, bool), String> {
    if o.idmap != IdMapping::File {
        for (name, given) in [("uidfile", &o.uid_file), ("gidfile", &o.gid_file)] {
            if given.is_some() {
                return Err(format!(
                    "option '-o {name}' is only read with -o idmap=file"
                ));
            }
        }
    }
    let map = match o.idmap {
        IdMapping::None | IdMapping::User => IdMap::None,
        IdMapping::File => {
            if o.uid_file.is_none() && o.gid_file.is_none() {
                return Err(
                    "option '-o idmap=file' needs -o uidfile=FILE or -o gidfile=FILE".to_owned(),
                );
            }
            let uids = o
                .uid_file
                .as_deref()
                .map(|f| read_map(f, "uidfile", local_uid))
                .transpose()?;
            let gids = o
                .gid_file
                .as_deref()
                .map(|f| read_map(f, "gidfile", local_gid))
                .transpose()?;
            IdMap::File {
                uids,
                gids,
                nomap: o.nomap.unwrap_or_default(),
            }
        }
    };
    let owners = Owners {
        map,
        uid: o.uid,
        gid: o.gid,
        umask: o.umask,
    };
    Ok((owners, o.idmap == IdMapping::User))
}

/// `idmap=user` once the login user's remote (uid, gid) is known: those shown as the ids of
/// the local user running the mount.
pub fn user_map(remote: (u32, u32)) -> IdMap {
    IdMap::User {
        remote,
        local: (Uid::current().as_raw(), Gid::current().as_raw()),
    }
}

/// `idmap=user`: the remote uid and gid of the login user, as the C sshfs learns them: those of
/// its home directory (a STAT of `.`, where the server starts).
pub async fn login_user_ids(sftp: &Sftp, host: &str) -> Result<(u32, u32), String> {
    let attrs = sftp.stat(".").await.map_err(|e| {
        format!("-o idmap=user: cannot stat the remote home directory on {host} to learn your remote user id: {e}")
    })?;
    match (attrs.uid, attrs.gid) {
        (Some(uid), Some(gid)) => Ok((uid, gid)),
        _ => Err(format!(
            "-o idmap=user: the server {host} does not tell file owners, so your remote user id is unknown"
        )),
    }
}

/// Reads a `uidfile` or `gidfile` (`what`), each name resolved by `local`.
fn read_map(
    path: &Path,
    what: &str,
    local: fn(&str) -> Result<Option<u32>, String>,
) -> Result<IdTable, String> {
    let shown = path.display();
    let fail = |why: String| format!("{what} {shown}: {why}");
    let meta = fs::metadata(path).map_err(|e| fail(os_message(&e)))?;
    let me = Uid::current().as_raw();
    if meta.uid() != me {
        return Err(fail(format!(
            "not owned by uid {me} (sshfs-rs reads only the mounting user's own map files)"
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(fail(
            "writable by other users (chmod go-w it first)".to_owned(),
        ));
    }
    let text = fs::read_to_string(path).map_err(|e| fail(os_message(&e)))?;
    let mut table = IdTable::default();
    for (n, line) in text.lines().enumerate() {
        let Some(parsed) = parse_map_line(line) else {
            continue;
        };
        let (name, remote) = parsed.map_err(|why| fail(format!("line {}: {why}", n + 1)))?;
        match local(name).map_err(|why| fail(format!("line {}: {why}", n + 1)))? {
            Some(id) => table.insert(remote, id),
            None => debug!("{what} {shown}: no local '{name}', skipped"),
        }
    }
    Ok(table)
}

/// The local uid of user `name`, `None` if there is no such user.
fn local_uid(name: &str) -> Result<Option<u32>, String> {
    User::from_name(name)
        .map(|u| u.map(|u| u.uid.as_raw()))
        .map_err(|e| format!("cannot look up user '{name}': {e}"))
}

/// The local gid of group `name`, `None` if there is no such group.
fn local_gid(name: &str) -> Result<Option<u32>, String> {
    Group::from_name(name)
        .map(|g| g.map(|g| g.gid.as_raw()))
        .map_err(|e| format!("cannot look up group '{name}': {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::os::unix::fs::PermissionsExt;

    use sshfs_client::fs::idmap::NoMap;

    use super::*;
    use crate::options::parse::parse;

    fn opts(s: &str) -> MountOpts {
        parse(&[s.to_owned()]).unwrap()
    }

    #[test]
    fn map_files_are_read_with_sshfs_rules() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("uids");
        fs::write(
            &file,
            "root:4242\n\nno-such-user-here:7\nroot:x:4343:0::/root:/bin/sh\n",
        )
        .unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let given = format!("idmap=file,uidfile={}", file.display());
        let (owners, detect) = build(&opts(&given)).unwrap();
        assert!(!detect);
        let IdMap::File { uids, gids, nomap } = &owners.map else {
            panic!("{owners:?}");
        };
        assert_eq!(*nomap, NoMap::Error, "sshfs's default");
        assert!(gids.is_none());
        // root (uid 0 here) is remote 4343 (the later line wins); the unknown name is skipped.
        assert_eq!(owners.to_remote(Some(0), None).unwrap(), (Some(4343), None));
        assert_eq!(uids.as_ref().unwrap().len(), 2);

        fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
        assert!(build(&opts(&given)).unwrap_err().contains("writable"));
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&file, "root\n").unwrap();
        assert!(build(&opts(&given)).unwrap_err().contains("line 1"));
        let missing = format!("idmap=file,gidfile={}/nope", dir.path().display());
        assert!(build(&opts(&missing)).unwrap_err().contains("gidfile"));
    }

    #[test]
    fn files_need_idmap_file_and_idmap_file_needs_a_file() {
        assert!(build(&opts("idmap=file")).unwrap_err().contains("uidfile"));
        assert!(
            build(&opts("uidfile=/x"))
                .unwrap_err()
                .contains("idmap=file")
        );
        let (owners, detect) = build(&opts("idmap=user,uid=5,umask=022")).unwrap();
        assert!(detect);
        assert_eq!((owners.uid, owners.umask), (Some(5), Some(0o22)));
    }
}
