//! [`MemoryServer`]: an SFTP v3 server in memory that answers as OpenSSH's `sftp-server` on
//! Linux does, for tests that run the real client stack (russh-sftp's codec, our engine, the
//! reconnect logic, the fs layer) with no network and no sshd.
//!
//! Why it can be trusted: its namespace is a POSIX filesystem ([`namespace`]: directories,
//! sparse files, symlinks, hard links, modes, owners, times, link counts, permission checks)
//! whose operations give the errnos Linux's system calls give, and each request is carried out
//! as sftp-server.c carries it out ([`session`], [`extensions`]): the same system calls, the
//! same `errno_to_portable` table, the same handle numbering ([`handles`]), the same quirks
//! (RENAME never replaces, SYMLINK's arguments reversed, copy-data's EOF answers). Its wire
//! format is its own ([`packets`]), not russh-sftp's. Where other servers differ, a
//! [`Personality`] switch says how.
//!
//! For tests: [`MemoryServer::snapshot`] is the tree as a comparable value; `put_file`,
//! `mkdir`, `symlink` and the other edits change it "behind the mount" as another client would;
//! every request is counted by kind, and requests naming a handle the session does not hold
//! are kept ([`MemoryServer::bad_handle_requests`]: a correct client sends none).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod extensions;
mod handles;
mod longname;
pub(crate) mod namespace;
mod packets;
pub(crate) mod personality;
mod reply;
mod session;
pub(crate) mod snapshot;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::DuplexStream;

use super::{PIPE_BUFFER, ServeSftp};
use handles::{Handles, Open};
use namespace::ops::OpenHow;
use namespace::{Clock, Cred, Errno, Namespace, Stat, SysResult};
pub(crate) use personality::Personality;
#[allow(unused_imports)]
pub(crate) use snapshot::{Data, Node, NodeKind, Snapshot};

/// A request that named a handle its session did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadHandle {
    /// The session (numbered from 1 in the order they were opened).
    pub(crate) session: u64,
    /// The request ("read", "close", "fsync@openssh.com"...).
    pub(crate) op: &'static str,
    /// The handle string as sent.
    pub(crate) handle: Vec<u8>,
}

/// One live session.
#[derive(Debug)]
struct SessionState {
    /// The connection it belongs to (see [`ServeSftp::open_session`]).
    connection: u64,
    /// Its channel within the connection.
    channel: usize,
    /// Its handles.
    handles: Handles,
}

/// Everything the server holds, under one lock.
#[derive(Debug)]
pub(super) struct World {
    ns: Namespace,
    personality: Personality,
    sessions: BTreeMap<u64, SessionState>,
    sessions_opened: u64,
    counts: BTreeMap<String, u64>,
    /// Requests naming a path, by (kind, path).
    path_counts: BTreeMap<(String, Vec<u8>), u64>,
    bad_handles: Vec<BadHandle>,
}

impl World {
    fn cred(&self) -> Cred {
        Cred {
            uid: self.personality.uid,
            gid: self.personality.gid,
            groups: self.personality.groups.clone(),
        }
    }

    fn count(&mut self, op: &str) {
        *self.counts.entry(op.to_owned()).or_default() += 1;
    }

    fn count_path(&mut self, op: &str, path: &[u8]) {
        *self
            .path_counts
            .entry((op.to_owned(), path.to_vec()))
            .or_default() += 1;
    }

    fn handles(&self, session: u64) -> Option<&Handles> {
        self.sessions.get(&session).map(|s| &s.handles)
    }

    fn handles_mut(&mut self, session: u64) -> Option<&mut Handles> {
        self.sessions.get_mut(&session).map(|s| &mut s.handles)
    }

    /// Stores `open` as a new handle of `session` and answers with it.
    fn insert_handle(&mut self, session: u64, open: Open) -> packets::Reply {
        match self.handles_mut(session) {
            Some(h) => packets::Reply::Handle(h.insert(open)),
            None => {
                self.ns.close(open.ino());
                reply::status(personality::FX_FAILURE)
            }
        }
    }

    fn bad_handle(&mut self, session: u64, op: &'static str, handle: &[u8]) {
        self.bad_handles.push(BadHandle {
            session,
            op,
            handle: handle.to_vec(),
        });
    }

    /// The session ended: its handles are closed (as when `sftp-server` exits).
    fn end_session(&mut self, session: u64) {
        if let Some(mut s) = self.sessions.remove(&session) {
            for open in s.handles.drain() {
                self.ns.close(open.ino());
            }
        }
    }

    /// The name of user (or group) `id`, as `user_from_uid` (`group_from_gid`) finds it.
    fn name_of(&self, id: u32, user: bool) -> Option<String> {
        let own = if user {
            self.personality.uid
        } else {
            self.personality.gid
        };
        match id {
            0 => Some("root".into()),
            id if id == own => Some(self.personality.user_name.clone()),
            _ => None,
        }
    }

    /// Whether `name` is a user the server's system knows.
    fn knows_user(&self, name: &[u8]) -> bool {
        name == b"root" || name == self.personality.user_name.as_bytes()
    }

    /// Applies what of the personality the namespace needs, and the working directory.
    fn apply_personality(&mut self) -> SysResult<()> {
        self.ns.quota_blocks = self
            .personality
            .quota
            .map(|q| q / namespace::content::BLOCK);
        self.ns.protected_hardlinks = self.personality.protected_hardlinks;
        let root = Cred::root();
        let home = self.personality.home.clone().into_bytes();
        let mut path = Vec::new();
        for part in home.split(|&b| b == b'/').filter(|p| !p.is_empty()) {
            path.push(b'/');
            path.extend_from_slice(part);
            match self.ns.mkdir(&root, &path, 0o755) {
                Ok(_) | Err(Errno(libc::EEXIST)) => {}
                Err(e) => return Err(e),
            }
        }
        let home = self
            .ns
            .resolve(&root, if path.is_empty() { b"/" } else { &path }, true)?;
        self.ns.set_cwd(home)
    }
}

/// An in-memory SFTP server (see the module doc). Clones share the same server.
#[derive(Clone)]
pub(crate) struct MemoryServer {
    world: Arc<Mutex<World>>,
}

impl Default for MemoryServer {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryServer {
    /// OpenSSH's server run by root, with an empty filesystem and the system's clock.
    pub(crate) fn new() -> Self {
        Self::with_personality(Personality::default())
    }

    /// A server behaving as `personality` says (its home directory is made if missing).
    pub(crate) fn with_personality(personality: Personality) -> Self {
        let mut world = World {
            ns: Namespace::new(Clock::Real),
            personality,
            sessions: BTreeMap::new(),
            sessions_opened: 0,
            counts: BTreeMap::new(),
            path_counts: BTreeMap::new(),
            bad_handles: Vec::new(),
        };
        world
            .apply_personality()
            .expect("the personality's home directory");
        Self {
            world: Arc::new(Mutex::new(world)),
        }
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The personality now.
    pub(crate) fn personality(&self) -> Personality {
        self.world().personality.clone()
    }

    /// Changes the personality (for the requests that follow, in every session).
    pub(crate) fn set_personality(&self, change: impl FnOnce(&mut Personality)) {
        let mut w = self.world();
        change(&mut w.personality);
        w.apply_personality()
            .expect("the personality's home directory");
    }

    /// Stops the clock at `secs` since the epoch: every time stamp is that until changed.
    pub(crate) fn set_time(&self, secs: u64) {
        self.world().ns.clock = Clock::Manual(secs);
    }

    /// Moves a stopped clock on by `secs` (starting it stopped at the system's time).
    pub(crate) fn advance_time(&self, secs: u64) {
        let mut w = self.world();
        let now = w.ns.now();
        w.ns.clock = Clock::Manual(now + secs);
    }

    /// Runs `edit` on the namespace as root (another client of the server), and the result.
    fn as_root<T>(&self, edit: impl FnOnce(&mut Namespace, &Cred) -> SysResult<T>) -> SysResult<T> {
        edit(&mut self.world().ns, &Cred::root())
    }

    /// Writes `data` as the whole content of file `path` (created 0644, or rewritten in place
    /// as `cat > path` does: same inode), as another client would.
    pub(crate) fn put_file(&self, path: &str, data: &[u8]) -> SysResult<()> {
        self.as_root(|ns, root| {
            let how = OpenHow {
                write: true,
                creat: true,
                trunc: true,
                ..OpenHow::default()
            };
            let ino = ns.open(root, path.as_bytes(), how, 0o644)?;
            let written = ns.write(root, ino, 0, data);
            ns.close(ino);
            written.map(drop)
        })
    }

    /// Writes `data` at `offset` of the existing file `path` (in place).
    pub(crate) fn write_at(&self, path: &str, offset: u64, data: &[u8]) -> SysResult<()> {
        self.as_root(|ns, root| {
            let how = OpenHow {
                write: true,
                ..OpenHow::default()
            };
            let ino = ns.open(root, path.as_bytes(), how, 0)?;
            let written = ns.write(root, ino, offset, data);
            ns.close(ino);
            written.map(drop)
        })
    }

    /// Makes directory `path` (0755).
    pub(crate) fn mkdir(&self, path: &str) -> SysResult<()> {
        self.as_root(|ns, root| ns.mkdir(root, path.as_bytes(), 0o755).map(drop))
    }

    /// Makes directory `path` and any missing parent (0755).
    pub(crate) fn mkdir_all(&self, path: &str) -> SysResult<()> {
        let mut at = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            at.push('/');
            at.push_str(part);
            match self.mkdir(&at) {
                Ok(()) | Err(Errno(libc::EEXIST)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Makes symlink `path` pointing at `target`.
    pub(crate) fn symlink(&self, path: &str, target: &str) -> SysResult<()> {
        self.as_root(|ns, root| ns.symlink(root, target.as_bytes(), path.as_bytes()))
    }

    /// Makes `new` another name of `existing`.
    pub(crate) fn hard_link(&self, existing: &str, new: &str) -> SysResult<()> {
        self.as_root(|ns, root| ns.link(root, existing.as_bytes(), new.as_bytes()))
    }

    /// Removes `path`: a file, symlink or empty directory.
    pub(crate) fn remove(&self, path: &str) -> SysResult<()> {
        self.as_root(|ns, root| match ns.unlink(root, path.as_bytes()) {
            Err(Errno(libc::EISDIR)) => ns.rmdir(root, path.as_bytes()),
            other => other,
        })
    }

    /// Renames `from` to `to`, replacing it (rename(2)).
    pub(crate) fn rename(&self, from: &str, to: &str) -> SysResult<()> {
        self.as_root(|ns, root| ns.rename(root, from.as_bytes(), to.as_bytes(), false))
    }

    /// Sets the permission bits of `path` (following symlinks).
    pub(crate) fn chmod(&self, path: &str, perm: u32) -> SysResult<()> {
        self.as_root(|ns, root| {
            let ino = ns.resolve(root, path.as_bytes(), true)?;
            ns.chmod(root, ino, perm)
        })
    }

    /// Sets the owner and group of `path` (following symlinks).
    pub(crate) fn chown(&self, path: &str, uid: u32, gid: u32) -> SysResult<()> {
        self.as_root(|ns, root| {
            let ino = ns.resolve(root, path.as_bytes(), true)?;
            ns.chown(root, ino, uid, gid)
        })
    }

    /// Sets the atime and mtime of `path` (following symlinks).
    pub(crate) fn set_times(&self, path: &str, atime: u64, mtime: u64) -> SysResult<()> {
        self.as_root(|ns, root| {
            let ino = ns.resolve(root, path.as_bytes(), true)?;
            ns.utimes(root, ino, atime, mtime)
        })
    }

    /// Truncates (or extends) the file `path` to `size`.
    pub(crate) fn truncate(&self, path: &str, size: u64) -> SysResult<()> {
        self.as_root(|ns, root| ns.truncate_path(root, path.as_bytes(), size))
    }

    /// The whole tree.
    pub(crate) fn snapshot(&self) -> Snapshot {
        snapshot::take(&self.world().ns)
    }

    /// The content of file `path` (following symlinks), if it is one.
    pub(crate) fn read_file(&self, path: &str) -> Option<Vec<u8>> {
        let w = self.world();
        let ino = w.ns.resolve(&Cred::root(), path.as_bytes(), true).ok()?;
        match &w.ns.inode(ino).ok()?.kind {
            namespace::Kind::File(c) => Some(c.bytes()),
            _ => None,
        }
    }

    /// `lstat` of `path`, times and inode number included.
    pub(crate) fn lstat(&self, path: &str) -> SysResult<Stat> {
        self.world().ns.stat(&Cred::root(), path.as_bytes(), false)
    }

    /// How many requests of kind `op` arrived, over all sessions: "init", OpenSSH's request
    /// names ("open", "close", "read", "write", "lstat", "fstat", "setstat", "fsetstat",
    /// "opendir", "readdir", "remove", "mkdir", "rmdir", "realpath", "stat", "rename",
    /// "readlink", "symlink"), or an extension's name ("posix-rename@openssh.com"...).
    pub(crate) fn requests(&self, op: &str) -> u64 {
        self.world().counts.get(op).copied().unwrap_or(0)
    }

    /// How many requests of kind `op` named `path` (as sent: OPEN, the stats, SETSTAT,
    /// OPENDIR, REMOVE, MKDIR, RMDIR, REALPATH, READLINK; RENAME by its source).
    pub(crate) fn requests_on(&self, op: &str, path: &str) -> u64 {
        let key = (op.to_owned(), path.as_bytes().to_vec());
        self.world().path_counts.get(&key).copied().unwrap_or(0)
    }

    /// Every request kind seen and how many of each.
    pub(crate) fn request_counts(&self) -> BTreeMap<String, u64> {
        self.world().counts.clone()
    }

    /// Requests received, of every kind (INIT included).
    pub(crate) fn total_requests(&self) -> u64 {
        self.world().counts.values().sum()
    }

    /// Requests that named a handle their session did not hold.
    pub(crate) fn bad_handle_requests(&self) -> Vec<BadHandle> {
        self.world().bad_handles.clone()
    }

    /// Handles open now, over all sessions.
    pub(crate) fn open_handles(&self) -> usize {
        self.world()
            .sessions
            .values()
            .map(|s| s.handles.len())
            .sum()
    }

    /// Sessions being served now.
    pub(crate) fn live_sessions(&self) -> usize {
        self.world().sessions.len()
    }

    /// The (connection, channel) of each live session, in the order they were opened.
    pub(crate) fn session_channels(&self) -> Vec<(u64, usize)> {
        let w = self.world();
        w.sessions
            .values()
            .map(|s| (s.connection, s.channel))
            .collect()
    }

    /// Bytes of file content allocated (4 KiB blocks: holes cost nothing).
    pub(crate) fn allocated_bytes(&self) -> u64 {
        self.world().ns.allocated_bytes()
    }

    /// Inodes alive (the root, every name, and files removed while still open).
    pub(crate) fn inodes(&self) -> usize {
        self.world().ns.inode_count()
    }
}

impl ServeSftp for MemoryServer {
    fn open_session(&self, connection: u64, channel: usize) -> DuplexStream {
        let (client, server) = tokio::io::duplex(PIPE_BUFFER);
        let session = {
            let mut w = self.world();
            w.sessions_opened += 1;
            let id = w.sessions_opened;
            w.sessions.insert(
                id,
                SessionState {
                    connection,
                    channel,
                    handles: Handles::default(),
                },
            );
            id
        };
        tokio::spawn(session::serve(Arc::clone(&self.world), session, server));
        client
    }
}
