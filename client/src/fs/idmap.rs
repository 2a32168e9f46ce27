//! Owners and modes as shown to the kernel, with the C sshfs's meaning (`-o idmap=`, `uidfile=`,
//! `gidfile=`, `nomap=`, and libfuse's `uid=`, `gid=`, `umask=`).
//!
//! The metadata cache keeps the server's values; the mapping applies at the edges: server ->
//! kernel when attributes are built ([`Owners::show`]), kernel -> server for a chown
//! ([`Owners::to_remote`]). In the order sshfs and libfuse apply them:
//!
//! 1. `idmap=user`: the uid and gid of the login user on the server (those of its home
//!    directory, read once at connect) are shown as the uid and gid of the local user running
//!    the mount, and a chown to the local ones sends the remote ones.
//!    `idmap=file`: the ids listed in `uidfile`/`gidfile` are translated both ways; an id not
//!    listed is, with `nomap=ignore`, shown as it is, and with `nomap=error` (the default) the
//!    file's attributes fail with EPERM (and so does a chown to an unlisted local id).
//! 2. `uid=N`, `gid=N`: every file is shown owned by N (a chown still sends what it is given).
//! 3. `umask=M`: every file's permission bits are shown as `0777 & !M` (libfuse 3 replaces them
//!    all: set-id and sticky bits are not shown).

use std::collections::HashMap;

use fuse3::raw::reply::FileAttr;

use super::errno::FsError;

/// How remote ids are translated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum IdMap {
    /// `idmap=none`: ids are shown as the server has them.
    #[default]
    None,
    /// `idmap=user`: the login user's remote uid and gid are shown as the local user's.
    User {
        /// The login user's (uid, gid) on the server.
        remote: (u32, u32),
        /// The (uid, gid) of the local user running the mount.
        local: (u32, u32),
    },
    /// `idmap=file`: the ids of `uidfile` and `gidfile`; a kind with no file is not translated.
    File {
        /// Users (`uidfile`), if given.
        uids: Option<IdTable>,
        /// Groups (`gidfile`), if given.
        gids: Option<IdTable>,
        /// What an id missing from a given table does.
        nomap: NoMap,
    },
}

/// What `idmap=file` does with an id its table does not list (`nomap=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NoMap {
    /// `nomap=ignore`: the id is shown (or sent) as it is.
    Ignore,
    /// `nomap=error` (sshfs's default): the operation fails with EPERM.
    #[default]
    Error,
}

/// One kind of id (users or groups) both ways: remote -> local and local -> remote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdTable {
    to_local: HashMap<u32, u32>,
    to_remote: HashMap<u32, u32>,
}

impl IdTable {
    /// Adds `remote` <-> `local` (a later pair for the same id wins, as in sshfs).
    pub fn insert(&mut self, remote: u32, local: u32) {
        self.to_local.insert(remote, local);
        self.to_remote.insert(local, remote);
    }

    /// How many remote ids are mapped.
    pub fn len(&self) -> usize {
        self.to_local.len()
    }

    /// Whether no id is mapped.
    pub fn is_empty(&self) -> bool {
        self.to_local.is_empty()
    }
}

/// The owner and mode mapping of a mount: the id translation, then the libfuse overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owners {
    /// `idmap=`.
    pub map: IdMap,
    /// `uid=N`: every file shown owned by this uid.
    pub uid: Option<u32>,
    /// `gid=N`: every file shown owned by this gid.
    pub gid: Option<u32>,
    /// `umask=M`: permission bits shown as `0777 & !M`.
    pub umask: Option<u32>,
}

/// Which way an id goes.
#[derive(Clone, Copy)]
enum Way {
    ToLocal,
    ToRemote,
}

/// Users or groups.
#[derive(Clone, Copy)]
enum Kind {
    User,
    Group,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::User => "uid",
            Kind::Group => "gid",
        }
    }
}

impl Owners {
    /// Whether nothing is changed (the attributes go to the kernel as the server has them).
    pub fn is_identity(&self) -> bool {
        *self == Owners::default()
    }

    /// Whether some owner can make attributes fail (`idmap=file` with `nomap=error`).
    pub fn can_refuse(&self) -> bool {
        matches!(
            self.map,
            IdMap::File {
                nomap: NoMap::Error,
                ..
            }
        )
    }

    /// Turns the server's owner and mode in `attr` into what the kernel is shown. Fails (EPERM)
    /// for an id `idmap=file` does not list, with `nomap=error`.
    pub fn show(&self, attr: &mut FileAttr) -> Result<(), FsError> {
        attr.uid = self.translate(Kind::User, Way::ToLocal, attr.uid)?;
        attr.gid = self.translate(Kind::Group, Way::ToLocal, attr.gid)?;
        if let Some(uid) = self.uid {
            attr.uid = uid;
        }
        if let Some(gid) = self.gid {
            attr.gid = gid;
        }
        if let Some(umask) = self.umask {
            attr.perm = (0o777 & !umask) as u16;
        }
        Ok(())
    }

    /// Checks that the server's `uid` and `gid` can be shown (see [`Owners::show`]).
    pub fn check(&self, uid: u32, gid: u32) -> Result<(), FsError> {
        self.translate(Kind::User, Way::ToLocal, uid)?;
        self.translate(Kind::Group, Way::ToLocal, gid)?;
        Ok(())
    }

    /// The ids to send to the server for a chown to the local `uid` and `gid` (each `None` when
    /// it does not change). Fails (EPERM) for an id `idmap=file` does not list, with
    /// `nomap=error`.
    pub fn to_remote(
        &self,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<(Option<u32>, Option<u32>), FsError> {
        let uid = uid
            .map(|u| self.translate(Kind::User, Way::ToRemote, u))
            .transpose()?;
        let gid = gid
            .map(|g| self.translate(Kind::Group, Way::ToRemote, g))
            .transpose()?;
        Ok((uid, gid))
    }

    fn translate(&self, kind: Kind, way: Way, id: u32) -> Result<u32, FsError> {
        match &self.map {
            IdMap::None => Ok(id),
            IdMap::User { remote, local } => {
                let (remote, local) = match kind {
                    Kind::User => (remote.0, local.0),
                    Kind::Group => (remote.1, local.1),
                };
                Ok(match way {
                    Way::ToLocal if id == remote => local,
                    Way::ToRemote if id == local => remote,
                    _ => id,
                })
            }
            IdMap::File { uids, gids, nomap } => {
                let table = match kind {
                    Kind::User => uids,
                    Kind::Group => gids,
                };
                let Some(table) = table else { return Ok(id) };
                let found = match way {
                    Way::ToLocal => table.to_local.get(&id),
                    Way::ToRemote => table.to_remote.get(&id),
                };
                match (found, nomap) {
                    (Some(mapped), _) => Ok(*mapped),
                    (None, NoMap::Ignore) => Ok(id),
                    (None, NoMap::Error) => Err(FsError::new(
                        libc::EPERM,
                        format!(
                            "{} {id} is not in the {}file (nomap=error)",
                            match way {
                                Way::ToLocal => format!("remote {}", kind.word()),
                                Way::ToRemote => format!("local {}", kind.word()),
                            },
                            kind.word()
                        ),
                    )),
                }
            }
        }
    }
}

/// One line of a `uidfile` or `gidfile` as sshfs reads it: `name:id`, or a passwd/group line
/// (`name:x:id:...`, the third field is the id). `None` for a blank line.
pub fn parse_map_line(line: &str) -> Option<Result<(&str, u32), String>> {
    if line.is_empty() {
        return None;
    }
    let fields: Vec<&str> = line.split(':').collect();
    let (name, id) = match fields.as_slice() {
        [name, id] => (*name, *id),
        [name, _, id, ..] => (*name, *id),
        _ => return Some(Err("not name:id or a passwd/group line".to_owned())),
    };
    Some(match id.trim().parse::<u32>() {
        Ok(id) => Ok((name, id)),
        Err(_) => Err(format!("'{id}' is not an id number")),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use fuse3::{FileType, Timestamp};

    use super::*;

    fn attr(uid: u32, gid: u32, perm: u16) -> FileAttr {
        FileAttr {
            ino: 2,
            size: 0,
            blocks: 0,
            atime: Timestamp::new(0, 0),
            mtime: Timestamp::new(0, 0),
            ctime: Timestamp::new(0, 0),
            kind: FileType::RegularFile,
            perm,
            nlink: 1,
            uid,
            gid,
            rdev: 0,
            blksize: 4096,
        }
    }

    fn shown(o: &Owners, uid: u32, gid: u32, perm: u16) -> Result<(u32, u32, u16), i32> {
        let mut a = attr(uid, gid, perm);
        o.show(&mut a).map_err(|e| e.errno)?;
        Ok((a.uid, a.gid, a.perm))
    }

    #[test]
    fn none_changes_nothing() {
        let o = Owners::default();
        assert!(o.is_identity());
        assert_eq!(shown(&o, 7, 8, 0o4755), Ok((7, 8, 0o4755)));
        assert_eq!(o.to_remote(Some(1), None).unwrap(), (Some(1), None));
    }

    #[test]
    fn user_maps_the_login_user_both_ways() {
        let o = Owners {
            map: IdMap::User {
                remote: (1000, 100),
                local: (5000, 500),
            },
            ..Owners::default()
        };
        assert_eq!(shown(&o, 1000, 100, 0o644), Ok((5000, 500, 0o644)));
        assert_eq!(
            shown(&o, 0, 0, 0o644),
            Ok((0, 0, 0o644)),
            "others as they are"
        );
        assert_eq!(
            o.to_remote(Some(5000), Some(500)).unwrap(),
            (Some(1000), Some(100))
        );
        assert_eq!(o.to_remote(Some(3), None).unwrap(), (Some(3), None));
    }

    #[test]
    fn file_maps_listed_ids_and_nomap_decides_the_rest() {
        let mut uids = IdTable::default();
        uids.insert(1000, 5000);
        let mut o = Owners {
            map: IdMap::File {
                uids: Some(uids),
                gids: None,
                nomap: NoMap::Error,
            },
            ..Owners::default()
        };
        assert!(o.can_refuse());
        assert_eq!(
            shown(&o, 1000, 9, 0o600),
            Ok((5000, 9, 0o600)),
            "no gidfile"
        );
        assert_eq!(shown(&o, 1001, 9, 0o600), Err(libc::EPERM));
        assert_eq!(
            o.to_remote(Some(5000), Some(9)).unwrap(),
            (Some(1000), Some(9))
        );
        assert_eq!(
            o.to_remote(Some(4), None).map_err(|e| e.errno),
            Err(libc::EPERM)
        );
        if let IdMap::File { nomap, .. } = &mut o.map {
            *nomap = NoMap::Ignore;
        }
        assert!(!o.can_refuse());
        assert_eq!(shown(&o, 1001, 9, 0o600), Ok((1001, 9, 0o600)));
        assert_eq!(o.to_remote(Some(4), None).unwrap(), (Some(4), None));
    }

    #[test]
    fn uid_gid_umask_override_what_is_shown() {
        let o = Owners {
            map: IdMap::User {
                remote: (1, 1),
                local: (2, 2),
            },
            uid: Some(77),
            gid: None,
            umask: Some(0o027),
        };
        assert_eq!(shown(&o, 1, 1, 0o4600), Ok((77, 2, 0o750)));
        assert_eq!(o.to_remote(Some(2), None).unwrap(), (Some(1), None));
    }

    #[test]
    fn map_lines() {
        assert_eq!(parse_map_line(""), None);
        assert_eq!(parse_map_line("alice:1000"), Some(Ok(("alice", 1000))));
        assert_eq!(
            parse_map_line("bob:x:1001:1001:Bob:/home/bob:/bin/sh"),
            Some(Ok(("bob", 1001)))
        );
        assert!(matches!(parse_map_line("alice"), Some(Err(_))));
        assert!(matches!(parse_map_line("alice:many"), Some(Err(_))));
    }
}
