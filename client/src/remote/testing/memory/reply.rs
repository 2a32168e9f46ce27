//! What the answers of the in-memory server are built from, shared by the session's requests
//! and the extensions: OpenSSH's size limits, status answers (an errno as this server's
//! personality reports it), NAME answers, the file a handle names, and attribute changes.

use super::World;
use super::handles::{Open, OpenFile};
use super::namespace::{Cred, Errno, Ino, Stat};
use super::packets::{Attrs, NameEntry, Reply};
use super::personality::{FX_NO_SUCH_FILE, FX_OK, status_message};

/// OpenSSH's `SFTP_MAX_MSG_LENGTH`: a longer packet ends the session.
pub(super) const MAX_MSG_LENGTH: u32 = 256 * 1024;
/// OpenSSH's `SFTP_MAX_READ_LENGTH`: a longer READ is answered with this much at most.
pub(super) const MAX_READ_LENGTH: u32 = MAX_MSG_LENGTH - 1024;
/// A status answer.
pub(super) fn status(code: u32) -> Reply {
    Reply::Status(code, status_message(code).to_owned())
}

/// The answer for a system call's result: OK, or the status for its errno.
pub(super) fn done(w: &World, result: Result<(), Errno>) -> Reply {
    match result {
        Ok(()) => status(FX_OK),
        Err(e) => failed(w, e),
    }
}

/// The answer for a failed system call.
pub(super) fn failed(w: &World, e: Errno) -> Reply {
    status(w.personality.status_for(e.0))
}

/// OpenSSH's `stat_to_attrib`: size, owners, the whole mode, atime and mtime.
pub(super) fn attrs_of(st: &Stat) -> Attrs {
    Attrs {
        size: Some(st.size),
        uid_gid: Some((st.uid, st.gid)),
        perm: Some(st.mode),
        times: Some((st.atime as u32, st.mtime as u32)),
    }
}

/// A NAME answer with one entry whose name and long name are `path` (REALPATH, READLINK).
pub(super) fn name_only(path: Vec<u8>) -> Reply {
    Reply::Name(vec![NameEntry {
        name: path.clone(),
        longname: path,
        attrs: Attrs::default(),
    }])
}

/// The file a handle names, for a request `op` that takes a file handle (OpenSSH's
/// `handle_to_fd`); otherwise the answer: `openssh` (FAILURE for most requests), counted as
/// a bad handle when the session does not hold it at all. A file removed while open is
/// NO_SUCH_FILE with [`super::Personality::unlinked_files_vanish`].
pub(super) fn file(
    w: &mut World,
    session: u64,
    op: &'static str,
    handle: &[u8],
    openssh: u32,
) -> Result<OpenFile, Reply> {
    match w.handles(session).and_then(|h| h.get(handle)).cloned() {
        Some(Open::File(f)) => {
            if w.personality.unlinked_files_vanish
                && w.ns.inode(f.ino).is_ok_and(|i| i.nlink() == 0)
            {
                return Err(status(FX_NO_SUCH_FILE));
            }
            Ok(f)
        }
        Some(Open::Dir(_)) => Err(status(openssh)),
        None => {
            w.bad_handle(session, op, handle);
            Err(status(w.personality.bad_handle(openssh)))
        }
    }
}

/// chmod, utimes, chown of inode `ino` for the fields of `a` that are set, in OpenSSH's
/// order; the last failure (or `result`) is the answer.
pub(super) fn set_attrs(
    w: &mut World,
    cred: &Cred,
    ino: Ino,
    a: &Attrs,
    mut result: Result<(), Errno>,
) -> Result<(), Errno> {
    if let Some(perm) = a.perm
        && let Err(e) = w.ns.chmod(cred, ino, perm & 0o7777)
    {
        result = Err(e);
    }
    if let Some((atime, mtime)) = a.times
        && let Err(e) = w.ns.utimes(cred, ino, u64::from(atime), u64::from(mtime))
    {
        result = Err(e);
    }
    if let Some((uid, gid)) = a.uid_gid
        && let Err(e) = w.ns.chown(cred, ino, uid, gid)
    {
        result = Err(e);
    }
    result
}
