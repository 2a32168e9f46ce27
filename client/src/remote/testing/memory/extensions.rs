//! OpenSSH's extended requests, as its `sftp-server` 9.2 announces and answers them
//! (`process_extended_*` in sftp-server.c); an extension it does not know is OP_UNSUPPORTED.

use super::World;
use super::namespace::{Cred, Errno};
use super::packets::{Attrs, Malformed, Reader, Reply, Writer};
use super::personality::{
    FX_BAD_MESSAGE, FX_EOF, FX_FAILURE, FX_NO_SUCH_FILE, FX_OK, FX_OP_UNSUPPORTED, Personality,
};
use super::reply::{self, MAX_MSG_LENGTH, MAX_READ_LENGTH, done, failed, name_only, status};

/// Bytes copy-data moves per read and write (its 64 KiB buffer).
const COPY_CHUNK: u64 = 64 * 1024;

/// The extensions VERSION announces (name, version), in OpenSSH's order.
pub(super) fn announced(p: &Personality) -> Vec<(&'static str, &'static str)> {
    if !p.extensions {
        return Vec::new();
    }
    vec![
        ("posix-rename@openssh.com", "1"),
        ("statvfs@openssh.com", "2"),
        ("fstatvfs@openssh.com", "2"),
        ("hardlink@openssh.com", "1"),
        ("fsync@openssh.com", "1"),
        ("lsetstat@openssh.com", "1"),
        ("limits@openssh.com", "1"),
        ("expand-path@openssh.com", "1"),
        ("copy-data", "1"),
        ("home-directory", "1"),
        ("users-groups-by-id@openssh.com", "1"),
    ]
}

/// The answer to the extended request `name` with the bytes `data` after its name.
pub(super) fn answer(
    w: &mut World,
    session: u64,
    cred: &Cred,
    name: &[u8],
    data: &[u8],
) -> Result<Reply, Malformed> {
    let mut r = Reader::new(data);
    Ok(match name {
        b"posix-rename@openssh.com" => {
            let (from, to) = (r.string()?, r.string()?);
            let renamed = w.ns.rename(cred, &from, &to, false);
            done(w, renamed)
        }
        b"statvfs@openssh.com" => {
            let path = r.string()?;
            match w.ns.resolve(cred, &path, true) {
                Ok(_) => statvfs(w),
                Err(e) => failed(w, e),
            }
        }
        b"fstatvfs@openssh.com" => {
            let handle = r.string()?;
            match reply::file(w, session, "fstatvfs@openssh.com", &handle, FX_FAILURE) {
                Ok(_) => statvfs(w),
                Err(reply) => reply,
            }
        }
        b"hardlink@openssh.com" => {
            let (existing, new) = (r.string()?, r.string()?);
            let linked = w.ns.link(cred, &existing, &new);
            done(w, linked)
        }
        b"fsync@openssh.com" => {
            let handle = r.string()?;
            match reply::file(w, session, "fsync@openssh.com", &handle, FX_NO_SUCH_FILE) {
                Ok(_) => status(FX_OK),
                Err(reply) => reply,
            }
        }
        b"lsetstat@openssh.com" => {
            let (path, a) = (r.string()?, r.attrs()?);
            lsetstat(w, cred, &path, &a)
        }
        b"limits@openssh.com" => {
            let mut out = Writer::default();
            out.u64(u64::from(MAX_MSG_LENGTH))
                .u64(u64::from(MAX_READ_LENGTH))
                .u64(u64::from(MAX_MSG_LENGTH - 1024))
                .u64(w.personality.max_open_handles);
            Reply::Extended(out.into_bytes())
        }
        b"expand-path@openssh.com" => {
            let path = r.string()?;
            expand_path(w, cred, path)
        }
        b"copy-data" => {
            let (from, from_off, len) = (r.string()?, r.u64()?, r.u64()?);
            let (to, to_off) = (r.string()?, r.u64()?);
            copy_data(w, session, cred, &from, from_off, len, &to, to_off)
        }
        b"home-directory" => {
            let user = r.string()?;
            // OpenSSH 9.2 looks the user up, then answers with the session user's home.
            if w.knows_user(&user) {
                name_only(w.personality.home.clone().into_bytes())
            } else {
                status(FX_FAILURE)
            }
        }
        b"users-groups-by-id@openssh.com" => {
            let (uids, gids) = (r.string()?, r.string()?);
            users_groups(w, &uids, &gids)?
        }
        _ => status(FX_OP_UNSUPPORTED),
    })
}

/// The statvfs answer (OpenSSH's `send_statvfs`).
fn statvfs(w: &World) -> Reply {
    let st = w.ns.statvfs();
    let mut out = Writer::default();
    out.u64(st.bsize)
        .u64(st.bsize)
        .u64(st.blocks)
        .u64(st.bfree)
        .u64(st.bfree)
        .u64(st.files)
        .u64(st.ffree)
        .u64(st.ffree)
        .u64(0x5eed)
        .u64(0)
        .u64(st.namemax);
    Reply::Extended(out.into_bytes())
}

/// lsetstat: as SETSTAT without following a final symlink; a size is BAD_MESSAGE, and a mode
/// on a symlink fails as glibc's `fchmodat(AT_SYMLINK_NOFOLLOW)` does (EOPNOTSUPP).
fn lsetstat(w: &mut World, cred: &Cred, path: &[u8], a: &Attrs) -> Reply {
    if a.size.is_some() {
        return status(FX_BAD_MESSAGE);
    }
    let mut result = Ok(());
    if a.perm.is_some() {
        result = match w.ns.resolve(cred, path, false) {
            Ok(ino) if w.ns.inode(ino).is_ok_and(|i| i.is_symlink()) => {
                Err(Errno(libc::EOPNOTSUPP))
            }
            Ok(ino) => reply::set_attrs(
                w,
                cred,
                ino,
                &Attrs {
                    perm: a.perm,
                    ..Attrs::default()
                },
                Ok(()),
            ),
            Err(e) => Err(e),
        };
    }
    let rest = Attrs {
        perm: None,
        ..a.clone()
    };
    if rest.times.is_some() || rest.uid_gid.is_some() {
        result = match w.ns.resolve(cred, path, false) {
            Ok(ino) => reply::set_attrs(w, cred, ino, &rest, result),
            Err(e) => Err(e),
        };
    }
    done(w, result)
}

/// expand-path: `~` and `~/...` from the working directory, `~user` for the server's user
/// only, a relative path from the working directory; then `sftp_realpath`.
fn expand_path(w: &World, cred: &Cred, path: Vec<u8>) -> Reply {
    let cwd = match w.ns.dir_path(w.ns.cwd()) {
        Ok(cwd) => cwd,
        Err(e) => return failed(w, e),
    };
    let join = |rest: &[u8]| {
        let mut p = cwd.clone();
        p.push(b'/');
        p.extend_from_slice(rest);
        p
    };
    let path = if path.is_empty() {
        b".".to_vec()
    } else if path == b"~" {
        cwd.clone()
    } else if let Some(rest) = path.strip_prefix(b"~/") {
        join(rest)
    } else if let Some(user) = path.strip_prefix(b"~") {
        let (name, rest) = match user.iter().position(|&b| b == b'/') {
            Some(p) => (&user[..p], Some(&user[p + 1..])),
            None => (user, None),
        };
        if !w.knows_user(name) {
            return Reply::Status(FX_NO_SUCH_FILE, "no such user".into());
        }
        let mut home = w.personality.home.clone().into_bytes();
        if let Some(rest) = rest {
            home.push(b'/');
            home.extend_from_slice(rest);
        }
        home
    } else if path.first() != Some(&b'/') {
        join(&path)
    } else {
        path
    };
    match w.ns.realpath(cred, &path) {
        Ok(resolved) => name_only(resolved),
        Err(e) => failed(w, e),
    }
}

/// copy-data, as OpenSSH 9.2 does it: both handles must be files of different names (else
/// FAILURE); the copy goes in 64 KiB reads and writes; `len` 0 copies to the end of the
/// source. Its quirks are kept: a copy that meets the source's end before `len` answers EOF
/// unless that happened in the last chunk, and `len` used up answers OK whatever the last
/// chunk met.
#[allow(clippy::too_many_arguments)]
fn copy_data(
    w: &mut World,
    session: u64,
    cred: &Cred,
    from: &[u8],
    from_off: u64,
    len: u64,
    to: &[u8],
    to_off: u64,
) -> Reply {
    let (copy_until_eof, mut left) = match len {
        0 => (true, u64::MAX - from_off),
        n => (false, n),
    };
    let src = reply::file(w, session, "copy-data", from, FX_FAILURE);
    let dst = reply::file(w, session, "copy-data", to, FX_FAILURE);
    let (src, dst) = match (src, dst) {
        (Ok(s), Ok(d)) if from != to && s.path != d.path => (s, d),
        _ => return status(FX_FAILURE),
    };
    if i64::try_from(from_off).is_err() || !dst.append && i64::try_from(to_off).is_err() {
        return failed(w, Errno(libc::EINVAL));
    }
    let mut code = FX_OP_UNSUPPORTED;
    let (mut at_src, mut at_dst) = (from_off, to_off);
    while left > 0 || copy_until_eof {
        let n = COPY_CHUNK.min(left);
        left -= n;
        if !src.read {
            code = w.personality.status_for(libc::EBADF);
            break;
        }
        let chunk = match w.ns.read(src.ino, at_src, n as usize) {
            Ok(c) if c.is_empty() => {
                code = if copy_until_eof { FX_OK } else { FX_EOF };
                break;
            }
            Ok(c) => c,
            Err(e) => {
                code = w.personality.status_for(e.0);
                break;
            }
        };
        at_src += chunk.len() as u64;
        if !dst.write {
            code = w.personality.status_for(libc::EBADF);
            break;
        }
        let at = match dst.append {
            true => w.ns.size_of(dst.ino).unwrap_or(0),
            false => at_dst,
        };
        match w.ns.write(cred, dst.ino, at, &chunk) {
            Ok(written) if written == chunk.len() => at_dst = at + written as u64,
            Ok(_) => {
                code = w.personality.status_for(libc::ENOSPC);
                break;
            }
            Err(e) => {
                code = w.personality.status_for(e.0);
                break;
            }
        }
    }
    if left == 0 {
        code = FX_OK;
    }
    status(code)
}

/// users-groups-by-id: the names of the uids and gids asked for ("" for an unknown one).
fn users_groups(w: &World, uids: &[u8], gids: &[u8]) -> Result<Reply, Malformed> {
    let names = |ids: &[u8], user: bool| -> Result<Vec<u8>, Malformed> {
        let mut r = Reader::new(ids);
        let mut out = Writer::default();
        while !r.rest().is_empty() {
            let name = w.name_of(r.u32()?, user).unwrap_or_default();
            out.string(name.as_bytes());
        }
        Ok(out.into_bytes())
    };
    let mut out = Writer::default();
    out.string(&names(uids, true)?).string(&names(gids, false)?);
    Ok(Reply::Extended(out.into_bytes()))
}
