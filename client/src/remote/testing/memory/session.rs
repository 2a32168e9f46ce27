//! One SFTP session (what one `sftp-server` process serves on one channel): reads requests,
//! answers each in order as OpenSSH's `sftp-server` would (`process_*` in sftp-server.c, one
//! function here per request), and closes its handles when the stream ends.
//!
//! Every request is carried out under the server's one lock, against the shared namespace, as
//! a system call would be; the answer is written after the lock is released.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::World;
use super::extensions;
use super::handles::{Open, OpenDir, OpenFile};
use super::longname::long_name;
use super::namespace::ops::OpenHow;
use super::namespace::{Cred, Errno};
use super::packets::{
    self, Attrs, FXF_APPEND, FXF_CREAT, FXF_EXCL, FXF_READ, FXF_TRUNC, FXF_WRITE, Incoming,
    NameEntry, Reply, Request,
};
use super::personality::{
    FX_EOF, FX_FAILURE, FX_NO_SPACE_ON_FILESYSTEM, FX_NO_SUCH_FILE, FX_OK, FX_OP_UNSUPPORTED,
};
use super::reply::{
    MAX_MSG_LENGTH, MAX_READ_LENGTH, attrs_of, done, failed, file, name_only, set_attrs, status,
};

/// What one packet from the client leads to.
enum Step {
    /// Send these bytes.
    Answer(Vec<u8>),
    /// Nothing to send (a packet type the server does not know).
    Silent,
    /// End the session (a packet that does not parse, a request before INIT).
    End,
}

/// Serves session `session` on `stream` until the client closes it (or sends what OpenSSH's
/// server would die of), then closes the session's handles.
pub(super) async fn serve(world: Arc<Mutex<World>>, session: u64, stream: DuplexStream) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut initialised = false;
    while let Ok(len) = rd.read_u32().await {
        if len > MAX_MSG_LENGTH {
            break;
        }
        let mut body = vec![0; len as usize];
        if rd.read_exact(&mut body).await.is_err() {
            break;
        }
        let step = {
            let mut w = world.lock().unwrap_or_else(|e| e.into_inner());
            step(&mut w, session, &body, &mut initialised)
        };
        match step {
            Step::Answer(bytes) => {
                if wr.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            Step::Silent => {}
            Step::End => break,
        }
    }
    let mut w = world.lock().unwrap_or_else(|e| e.into_inner());
    w.end_session(session);
}

fn step(w: &mut World, session: u64, body: &[u8], initialised: &mut bool) -> Step {
    let incoming = match packets::decode(body) {
        Ok(i) => i,
        Err(_) => return Step::End,
    };
    match incoming {
        Incoming::Init => {
            w.count("init");
            *initialised = true;
            Step::Answer(packets::version(&extensions::announced(&w.personality)))
        }
        _ if !*initialised => Step::End,
        Incoming::Unknown(_) => Step::Silent,
        Incoming::Request(id, request) => {
            w.count(&request.name());
            if let Some(path) = request.path() {
                w.count_path(&request.name(), path);
            }
            match answer(w, session, request) {
                Ok(reply) => Step::Answer(packets::encode(id, &reply)),
                Err(_) => Step::End,
            }
        }
    }
}

/// The answer to one request; `Err`: the request does not parse (the session ends).
fn answer(w: &mut World, session: u64, request: Request) -> Result<Reply, packets::Malformed> {
    let cred = w.cred();
    Ok(match request {
        Request::Open {
            path,
            pflags,
            attrs,
        } => open(w, session, &cred, path, pflags, &attrs),
        Request::Close { handle } => close(w, session, &handle),
        Request::Read {
            handle,
            offset,
            len,
        } => read(w, session, &handle, offset, len),
        Request::Write {
            handle,
            offset,
            data,
        } => write(w, session, &cred, &handle, offset, &data),
        Request::Lstat { path } => stat(w, &cred, &path, false),
        Request::Stat { path } => stat(w, &cred, &path, true),
        Request::Fstat { handle } => match file(w, session, "fstat", &handle, FX_FAILURE) {
            Ok(f) => match w.ns.stat_of(f.ino) {
                Ok(st) => Reply::Attrs(attrs_of(&st)),
                Err(e) => failed(w, e),
            },
            Err(reply) => reply,
        },
        Request::Setstat { path, attrs } => setstat(w, &cred, &path, &attrs),
        Request::Fsetstat { handle, attrs } => fsetstat(w, session, &cred, &handle, &attrs),
        Request::Opendir { path } => opendir(w, session, &cred, path),
        Request::Readdir { handle } => readdir(w, session, &cred, &handle),
        Request::Remove { path } => {
            let removed = w.ns.unlink(&cred, &path);
            done(w, removed)
        }
        Request::Mkdir { path, attrs } => {
            let perm = attrs.perm.map_or(0o777, |p| p & 0o7777) & !w.personality.umask;
            let made = w.ns.mkdir(&cred, &path, perm).map(drop);
            done(w, made)
        }
        Request::Rmdir { path } => {
            let removed = w.ns.rmdir(&cred, &path);
            done(w, removed)
        }
        Request::Realpath { path } => {
            let path = if path.is_empty() { b".".to_vec() } else { path };
            match w.ns.realpath(&cred, &path) {
                Ok(resolved) => name_only(resolved),
                Err(e) => failed(w, e),
            }
        }
        Request::Rename { from, to } => rename(w, &cred, &from, &to),
        Request::Readlink { path } => match w.ns.readlink(&cred, &path) {
            Ok(target) => name_only(target),
            Err(e) => failed(w, e),
        },
        Request::Symlink { first, second } => {
            let (target, link) = if w.personality.symlink_draft_order {
                (second, first)
            } else {
                (first, second)
            };
            let made = w.ns.symlink(&cred, &target, &link);
            done(w, made)
        }
        Request::Extended { name, data } => {
            if !w.personality.extensions {
                status(FX_OP_UNSUPPORTED)
            } else {
                extensions::answer(w, session, &cred, &name, &data)?
            }
        }
    })
}

fn open(
    w: &mut World,
    session: u64,
    cred: &Cred,
    path: Vec<u8>,
    pflags: u32,
    attrs: &Attrs,
) -> Reply {
    let write = pflags & FXF_WRITE != 0;
    let how = OpenHow {
        read: pflags & FXF_READ != 0 || !write,
        write,
        append: pflags & FXF_APPEND != 0,
        creat: pflags & FXF_CREAT != 0,
        trunc: pflags & FXF_TRUNC != 0,
        excl: pflags & FXF_EXCL != 0,
    };
    if w.handles(session).map_or(0, |h| h.len()) as u64 >= w.personality.max_open_handles {
        return failed(w, Errno(libc::EMFILE));
    }
    let perm = attrs.perm.unwrap_or(0o666) & 0o7777 & !w.personality.umask;
    match w.ns.open(cred, &path, how, perm) {
        Ok(ino) => {
            let open = Open::File(OpenFile {
                ino,
                path,
                read: how.read,
                write: how.write,
                append: how.append,
                next_write: 0,
            });
            w.insert_handle(session, open)
        }
        Err(e) => failed(w, e),
    }
}

fn close(w: &mut World, session: u64, handle: &[u8]) -> Reply {
    match w.handles_mut(session).and_then(|h| h.remove(handle)) {
        Some(open) => {
            w.ns.close(open.ino());
            status(FX_OK)
        }
        None => {
            w.bad_handle(session, "close", handle);
            // handle_close sets ENOENT.
            status(w.personality.bad_handle(FX_NO_SUCH_FILE))
        }
    }
}

fn read(w: &mut World, session: u64, handle: &[u8], offset: u64, len: u32) -> Reply {
    let f = match file(w, session, "read", handle, FX_FAILURE) {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    if i64::try_from(offset).is_err() {
        return failed(w, Errno(libc::EINVAL));
    }
    let mut len = len.min(MAX_READ_LENGTH);
    if len == 0 {
        return Reply::Data(Vec::new());
    }
    if !f.read {
        return failed(w, Errno(libc::EBADF));
    }
    if w.personality.short_reads {
        len = len.div_ceil(2);
    }
    match w.ns.read(f.ino, offset, len as usize) {
        Ok(data) if data.is_empty() => status(FX_EOF),
        Ok(data) => Reply::Data(data),
        Err(e) => failed(w, e),
    }
}

fn write(
    w: &mut World,
    session: u64,
    cred: &Cred,
    handle: &[u8],
    offset: u64,
    data: &[u8],
) -> Reply {
    let f = match file(w, session, "write", handle, FX_FAILURE) {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    if !f.append && i64::try_from(offset).is_err() {
        return failed(w, Errno(libc::EINVAL));
    }
    if !f.write {
        return failed(w, Errno(libc::EBADF));
    }
    let at = match f.append {
        true => w.ns.size_of(f.ino).unwrap_or(0),
        false => offset,
    };
    if w.personality.writes_in_order && !f.append && at != f.next_write {
        return status(FX_FAILURE);
    }
    match w.ns.write(cred, f.ino, at, data) {
        Ok(n) if n == data.len() => {
            if let Some(Open::File(f)) = w.handles_mut(session).and_then(|h| h.get_mut(handle)) {
                f.next_write = at + n as u64;
            }
            status(FX_OK)
        }
        // Part of it landed: OpenSSH says FAILURE ("nothing at all written").
        Ok(_) if w.personality.status_codes_above_8 => status(FX_NO_SPACE_ON_FILESYSTEM),
        Ok(_) => status(FX_FAILURE),
        Err(e) => failed(w, e),
    }
}

fn stat(w: &World, cred: &Cred, path: &[u8], follow: bool) -> Reply {
    match w.ns.stat(cred, path, follow) {
        Ok(st) => Reply::Attrs(attrs_of(&st)),
        Err(e) => failed(w, e),
    }
}

/// SETSTAT: truncate, chmod, utimes, chown, each a system call of its own on the path
/// (following symlinks); all are tried, the answer is the last failure's.
fn setstat(w: &mut World, cred: &Cred, path: &[u8], a: &Attrs) -> Reply {
    let mut result = Ok(());
    let mut keep = |r: Result<(), Errno>| {
        if r.is_err() {
            result = r;
        }
    };
    if let Some(size) = a.size {
        keep(w.ns.truncate_path(cred, path, size));
    }
    if let Some(perm) = a.perm {
        keep(
            w.ns.resolve(cred, path, true)
                .and_then(|ino| w.ns.chmod(cred, ino, perm & 0o7777)),
        );
    }
    if let Some((atime, mtime)) = a.times {
        keep(
            w.ns.resolve(cred, path, true)
                .and_then(|ino| w.ns.utimes(cred, ino, u64::from(atime), u64::from(mtime))),
        );
    }
    if let Some((uid, gid)) = a.uid_gid {
        keep(
            w.ns.resolve(cred, path, true)
                .and_then(|ino| w.ns.chown(cred, ino, uid, gid)),
        );
    }
    done(w, result)
}

/// FSETSTAT: as SETSTAT through the handle (ftruncate needs it open for writing: EINVAL).
fn fsetstat(w: &mut World, session: u64, cred: &Cred, handle: &[u8], a: &Attrs) -> Reply {
    let f = match file(w, session, "fsetstat", handle, FX_FAILURE) {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    let mut result = Ok(());
    if let Some(size) = a.size {
        result = match f.write {
            true => w.ns.truncate(cred, f.ino, size),
            false => Err(Errno(libc::EINVAL)),
        };
    }
    let result = set_attrs(w, cred, f.ino, a, result);
    done(w, result)
}

fn opendir(w: &mut World, session: u64, cred: &Cred, path: Vec<u8>) -> Reply {
    if w.handles(session).map_or(0, |h| h.len()) as u64 >= w.personality.max_open_handles {
        return failed(w, Errno(libc::EMFILE));
    }
    match w.ns.opendir(cred, &path) {
        Ok(ino) => {
            let open = Open::Dir(OpenDir {
                ino,
                path,
                dots: 0,
                after: None,
            });
            w.insert_handle(session, open)
        }
        Err(e) => failed(w, e),
    }
}

/// READDIR: up to the personality's `names_per_page` entries (OpenSSH: 100), `.` and `..` first, each with the attributes `lstat` of
/// "path/name" gives (an entry that fails it is skipped, as OpenSSH skips it), then EOF.
fn readdir(w: &mut World, session: u64, cred: &Cred, handle: &[u8]) -> Reply {
    let dir = match w.handles(session).and_then(|h| h.get(handle)).cloned() {
        Some(Open::Dir(d)) => d,
        Some(Open::File(_)) => return status(FX_FAILURE),
        None => {
            w.bad_handle(session, "readdir", handle);
            return status(w.personality.bad_handle(FX_FAILURE));
        }
    };
    let dead = w.ns.dir(dir.ino).map_or(true, |d| d.dead);
    let mut names: Vec<Vec<u8>> = Vec::new();
    if !dead {
        names.extend(
            [b".".to_vec(), b"..".to_vec()]
                .into_iter()
                .skip(dir.dots.into()),
        );
        let after =
            w.ns.entries_after(dir.ino, dir.after.as_deref())
                .unwrap_or_default();
        names.extend(after.into_iter().map(|(n, _)| n));
    }
    let now = w.ns.now();
    let (mut entries, mut dots, mut last) = (Vec::new(), dir.dots, dir.after.clone());
    let page = w.personality.names_per_page.max(1);
    for name in names {
        if entries.len() == page {
            break;
        }
        if name == b"." || name == b".." {
            dots += 1;
        } else {
            last = Some(name.clone());
        }
        let mut path = dir.path.clone();
        if path != b"/" {
            path.push(b'/');
        }
        path.extend_from_slice(&name);
        let Ok(st) = w.ns.stat(cred, &path, false) else {
            continue;
        };
        let longname = long_name(&name, &st, now, |id, user| w.name_of(id, user));
        entries.push(NameEntry {
            name,
            longname,
            attrs: attrs_of(&st),
        });
    }
    if let Some(Open::Dir(d)) = w.handles_mut(session).and_then(|h| h.get_mut(handle)) {
        d.dots = dots;
        d.after = last;
    }
    w.ns.accessed(dir.ino);
    if entries.is_empty() {
        status(FX_EOF)
    } else {
        Reply::Name(entries)
    }
}

/// OpenSSH's RENAME: a regular file is linked to the new name and unlinked from the old one
/// (so an existing target is never replaced: link's EEXIST is FAILURE); anything else, or a
/// file link(2) refuses with EPERM, is renamed only if `stat` of the target fails.
fn rename(w: &mut World, cred: &Cred, from: &[u8], to: &[u8]) -> Reply {
    let st = match w.ns.stat(cred, from, false) {
        Ok(st) => st,
        Err(e) => return failed(w, e),
    };
    if st.mode & libc::S_IFMT == libc::S_IFREG {
        match w.ns.link(cred, from, to) {
            // LINK_OPNOTSUPP_ERRNO is EPERM on Linux (a filesystem without hard links; here
            // also protected_hardlinks): stat, then rename(2).
            Err(Errno(libc::EPERM)) => return rename_if_free(w, cred, from, to),
            Err(e) => return failed(w, e),
            Ok(()) => {}
        }
        if let Err(e) = w.ns.unlink(cred, from) {
            // Clean the spare link.
            let _ = w.ns.unlink(cred, to);
            return failed(w, e);
        }
        return status(FX_OK);
    }
    rename_if_free(w, cred, from, to)
}

/// rename(2) if `stat` of the target fails (it may still be a dangling symlink, which is
/// replaced), else FAILURE.
fn rename_if_free(w: &mut World, cred: &Cred, from: &[u8], to: &[u8]) -> Reply {
    if w.ns.stat(cred, to, true).is_ok() {
        return status(FX_FAILURE);
    }
    let renamed = w.ns.rename(cred, from, to, false);
    done(w, renamed)
}
