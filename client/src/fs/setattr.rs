//! SETATTR (chmod, chown, truncate, utimens) in one SETSTAT, or behind the writes of a file
//! this mount created and holds open ([`super::open_files`]).

use std::sync::Arc;

use fuse3::SetAttr;
use fuse3::raw::reply::FileAttr;
use russh_sftp::protocol::FileAttributes;

use super::open_files::OpenFile;
use super::stat::Stat;
use super::{FsError, FsResult, SshFs};
use crate::remote::sftp::After;

impl SshFs {
    /// SETATTR: one SETSTAT (FSETSTAT with a handle, `lsetstat@openssh.com` on a symlink) carrying
    /// every change, with the new attributes asked in the same round trip (LSTAT or FSTAT
    /// queued behind it). SFTP v3 sets uid with gid and atime with mtime, so
    /// when only one of a pair changes the other is read first (UTIME_OMIT keeps its time).
    ///
    /// A chmod, chown or utimens of a file this mount created and still holds open for writing
    /// is not waited for: see [`SshFs::setattr_behind`]. The owners of a chown are mapped to
    /// the server's ([`super::idmap`]).
    pub async fn setattr(
        &self,
        ino: u64,
        fh: Option<u64>,
        set: &SetAttr,
    ) -> FsResult<SetAttrReply> {
        // A chown names local owners: the server is sent its own ([`super::idmap`]).
        let remote;
        let set = if set.uid.is_some() || set.gid.is_some() {
            let (uid, gid) = self.owners.to_remote(set.uid, set.gid)?;
            remote = SetAttr {
                uid,
                gid,
                ..set.clone()
            };
            &remote
        } else {
            set
        };
        // Writes in flight through other channels land before the change.
        self.files.settle(ino).await;
        if let Some(behind) = self.setattr_behind(ino, fh, set).await {
            return behind.map(|attr| SetAttrReply {
                attr,
                confirmed: false,
            });
        }
        let confirmed = |attr| SetAttrReply {
            attr,
            confirmed: true,
        };
        match self.setattr_via(ino, fh, set).await.map(confirmed) {
            // The inode had lost its name and the open file we went through was closed
            // meanwhile: the name vanished before the change, as far as the caller can tell.
            Err(e) if fh.is_none() && e.errno == libc::EBADF => Err(FsError::new(
                libc::ENOENT,
                format!("inode {ino} has no path and no open file left"),
            )),
            other => other,
        }
    }

    /// A chmod, chown or utimens (no truncate) of a file this mount created with O_EXCL and
    /// still holds open for writing (GNU tar and `cp -p` do `write`, `futimens`, `fchown`,
    /// `fchmod`, `close`): the FSETSTAT is queued behind the file's writes and not waited for,
    /// like a write; a failure is reported by the next write, flush, fsync or close of the
    /// file. The answer is the attributes the change gives, from what we know of the file
    /// (the kernel does not cache it: the mtime after a write is the server's). A chown is
    /// taken this way only when the server cannot refuse it: to the owner the file has, or on a
    /// server running as root (the file was created owned by uid 0). `None`: not such a change.
    ///
    /// Never through a handle whose file the program closed ([`OpenFile::takes_changes_behind`]):
    /// SETATTR carries no handle (only ftruncate's does), so `close`, then `utime(path)` (git)
    /// looks the same as `futimens`, but arrives while the RELEASE of the handle may be under
    /// way; it goes by path. Should the handle be closed between the pick and the queueing
    /// (another thread's close), the change goes by path too: an operation on a path never
    /// fails because some handle of its file was closed.
    async fn setattr_behind(
        &self,
        ino: u64,
        fh: Option<u64>,
        set: &SetAttr,
    ) -> Option<FsResult<FileAttr>> {
        if set.size.is_some() {
            return None;
        }
        let file = self.files.taking_changes_behind(fh, ino)?;
        let own = file.own_attrs()?;
        let a = requested(set, Some(&own));
        let pairs_known = (a.uid.is_some() && a.gid.is_some()
            || set.uid.is_none() && set.gid.is_none())
            && (a.atime.is_some() && a.mtime.is_some()
                || set.atime.is_none() && set.mtime.is_none());
        let same_owner = a.uid.is_none() || (a.uid, a.gid) == (own.uid, own.gid);
        if !pairs_known || !same_owner && own.uid != Some(0) {
            return None;
        }
        let after = applied(&own, &a);
        let _changing = self.ahead.open().changing();
        // Closed meanwhile: nothing was sent, the change goes by path.
        let queued = self.files.send_behind(&file, a).await?;
        // The server's attributes change behind the writes: ask it for them from now on.
        let rel = self.rel_of(ino).ok();
        self.changed_content(ino, rel.as_deref());
        if let Err(e) = queued {
            return Some(Err(e));
        }
        file.set_own_attrs(after.clone());
        let stat = Stat::new(after);
        Some(self.attr_for(&mut self.inodes(), ino, &stat))
    }

    pub(super) async fn setattr_via(
        &self,
        ino: u64,
        fh: Option<u64>,
        set: &SetAttr,
    ) -> FsResult<FileAttr> {
        let _changing = self.ahead.open().changing();
        // A name that is gone (unlinked or replaced while open) is changed through an open
        // handle of the inode: the kernel sends fchmod without one.
        let rel = self.rel_of(ino).ok();
        let file = self.files.on(fh, ino);
        let target = match (file, &rel) {
            (Some(f), _) => Target::Handle(f),
            (None, Some(rel)) => Target::Path(self.remote(rel)),
            // A truncate needs a handle open for writing (ftruncate of a read-only one fails).
            (None, None) => match self.files.usable(ino, set.size.is_some()) {
                Some(f) => Target::Handle(f),
                None => {
                    return Err(FsError::new(
                        libc::ENOENT,
                        format!("inode {ino} has no path"),
                    ));
                }
            },
        };
        let is_symlink = self.inodes().file_type(ino) == libc::S_IFLNK;
        let needs_current =
            set.uid.is_some() != set.gid.is_some() || set.atime.is_some() != set.mtime.is_some();
        let current = if needs_current {
            Some(match &target {
                Target::Handle(f) => self.sftp.fstat(&f.handle).await?,
                Target::Path(path) => self.attrs_of(path).await?,
            })
        } else {
            None
        };
        let a = requested(set, current.as_ref());
        let changes =
            a.size.is_some() || a.permissions.is_some() || a.uid.is_some() || a.atime.is_some();
        if !changes {
            return match &target {
                Target::Handle(f) => {
                    let stat = Stat::new(self.sftp.fstat(&f.handle).await?);
                    self.attr_for(&mut self.inodes(), ino, &stat)
                }
                Target::Path(_) => self.getattr(ino, None).await,
            };
        }
        // The link count is not in SFTP attributes: keep the one we knew.
        let nlink = rel
            .as_deref()
            .and_then(|rel| self.cache().last_attr(rel))
            .and_then(|s| s.nlink);
        // The change, and the attributes after it queued right behind (one round trip).
        let result = match &target {
            Target::Handle(f) => self.sftp.fsetstat_fstat(&f.handle, a).await,
            Target::Path(path) if is_symlink && self.sftp.has_extension("lsetstat@openssh.com") => {
                self.sftp.lsetstat(path, a).await.map(|()| After::NotAsked)
            }
            Target::Path(_) if is_symlink => {
                return Err(FsError::new(
                    libc::EOPNOTSUPP,
                    "server cannot change a symlink itself (no lsetstat@openssh.com)",
                ));
            }
            // The attributes after the change are the target's: asked for below.
            Target::Path(path) if self.links.follow => {
                self.sftp.setstat(path, a).await.map(|()| After::NotAsked)
            }
            Target::Path(path) => self.sftp.setstat_lstat(path, a).await,
        };
        // Whatever happened on the server, what we had cached may be wrong now.
        self.changed_content(ino, rel.as_deref());
        let after = result?;
        if let Some(size) = set.size {
            // The size is the file's: every handle of it knows it now (a truncate by path
            // too), or a chmod answered from a handle's attributes would show the old one.
            self.files.each_of(ino, |f| f.set_size(size));
        }
        match after {
            After::Attrs(attrs) => {
                let stat = Stat { attrs, nlink };
                // Through a handle the file may no longer be the one the name shows.
                if let (Target::Path(_), Some(rel)) = (&target, &rel) {
                    self.cache().set_attr(rel, stat.clone());
                }
                self.attr_for(&mut self.inodes(), ino, &stat)
            }
            // Not asked (a symlink), or not answered: ask now.
            After::NotAsked | After::Failed(_) => self.getattr(ino, fh).await,
        }
    }
}

/// The SETSTAT attributes for `set`. SFTP v3 sets uid with gid and atime with mtime, so the
/// half of a pair that does not change comes from `current` (missing if that is not known).
fn requested(set: &SetAttr, current: Option<&FileAttributes>) -> FileAttributes {
    let mut a = FileAttributes {
        size: set.size,
        permissions: set.mode.map(|m| m & 0o7777),
        ..FileAttributes::empty()
    };
    if set.uid.is_some() || set.gid.is_some() {
        a.uid = set.uid.or(current.and_then(|c| c.uid));
        a.gid = set.gid.or(current.and_then(|c| c.gid));
    }
    if set.atime.is_some() || set.mtime.is_some() {
        let secs = |t: fuse3::Timestamp| u32::try_from(t.sec).unwrap_or(0);
        a.atime = set.atime.map(secs).or(current.and_then(|c| c.atime));
        a.mtime = set.mtime.map(secs).or(current.and_then(|c| c.mtime));
    }
    a
}

/// `attrs` once the SETSTAT attributes `change` took effect (the file type stays).
fn applied(attrs: &FileAttributes, change: &FileAttributes) -> FileAttributes {
    let mut after = attrs.clone();
    if let Some(perm) = change.permissions {
        after.permissions = Some(attrs.permissions.unwrap_or(libc::S_IFREG) & libc::S_IFMT | perm);
    }
    after.size = change.size.or(attrs.size);
    after.uid = change.uid.or(attrs.uid);
    after.gid = change.gid.or(attrs.gid);
    after.atime = change.atime.or(attrs.atime);
    after.mtime = change.mtime.or(attrs.mtime);
    after
}

/// What SETATTR answers.
#[derive(Debug)]
pub struct SetAttrReply {
    /// The attributes after the change.
    pub attr: FileAttr,
    /// The server confirmed them (the kernel may cache them); `false` when the change is still
    /// on its way behind the file's writes ([`SshFs::setattr_behind`]).
    pub confirmed: bool,
}

/// What a SETATTR goes through: an open handle of the file, or its path.
enum Target {
    Handle(Arc<OpenFile>),
    Path(String),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::ffi::OsStr;

    use sshfs_cache::CacheConfig;

    use super::*;
    use crate::remote::fake_server::FakeServer;
    use crate::remote::sftp::counters::Op;

    const ROOT: u64 = 1;

    async fn mounted() -> (FakeServer, Arc<SshFs>) {
        let server = FakeServer::new(1);
        let sftp = server.connect().await;
        let fs = Arc::new(SshFs::new(sftp, "/r".into(), CacheConfig::default()));
        (server, fs)
    }

    fn chmod(mode: u32) -> SetAttr {
        SetAttr {
            mode: Some(mode),
            ..SetAttr::default()
        }
    }

    /// The in-memory server refuses every SETSTAT and FSETSTAT (OP_UNSUPPORTED): a chmod that
    /// rode behind the writes of a file we created reports that at the close, never drops it.
    #[tokio::test]
    async fn a_change_sent_behind_the_writes_fails_at_the_close() {
        let (server, fs) = mounted().await;
        let excl = (libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL) as u32;
        let (attr, fh) = fs.create(ROOT, OsStr::new("a"), 0o600, excl).await.unwrap();
        fs.write(fh, 0, b"hello").await.unwrap();
        let reply = fs.setattr(attr.ino, None, &chmod(0o755)).await.unwrap();
        assert!(!reply.confirmed, "not waited for");
        assert_eq!(reply.attr.perm, 0o755);
        assert_eq!(reply.attr.size, 5, "the size our writes gave it");
        let flushed = fs.flush(fh).await;
        assert!(
            flushed.is_err(),
            "the refused FSETSTAT is reported at flush"
        );
        assert!(fs.release(fh).await.is_err(), "and at release");
        assert_eq!(server.get("/r/a").as_deref(), Some(&b"hello"[..]));
    }

    /// Without O_EXCL the file may not be ours: the change is waited for, and its failure is
    /// the chmod's.
    #[tokio::test]
    async fn a_file_not_created_exclusively_is_changed_at_once() {
        let (_server, fs) = mounted().await;
        let flags = (libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC) as u32;
        let (attr, fh) = fs
            .create(ROOT, OsStr::new("b"), 0o600, flags)
            .await
            .unwrap();
        fs.write(fh, 0, b"x").await.unwrap();
        let refused = fs.setattr(attr.ino, None, &chmod(0o755)).await;
        assert!(refused.is_err(), "the server's refusal is the chmod's");
        fs.flush(fh).await.unwrap();
        fs.release(fh).await.unwrap();
    }

    /// git: create, write, close, then `utime(path)`, which arrives while the RELEASE of the
    /// handle may be under way. The change goes by path and its answer is the call's (the
    /// in-memory server refuses SETSTAT: the chmod fails with that, not with EBADF), never
    /// through the handle of the closed file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_change_after_the_close_goes_by_path() {
        let (server, fs) = mounted().await;
        let excl = (libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL) as u32;
        for i in 0..50 {
            let name = format!("obj{i}");
            let (attr, fh) = fs
                .create(ROOT, OsStr::new(&name), 0o444, excl)
                .await
                .unwrap();
            fs.write(fh, 0, b"blob").await.unwrap();
            fs.flush(fh).await.unwrap();
            let release = {
                let fs = Arc::clone(&fs);
                tokio::spawn(async move { fs.release(fh).await })
            };
            let refused = fs.setattr(attr.ino, None, &chmod(0o444)).await.unwrap_err();
            assert_eq!(refused.errno, libc::EOPNOTSUPP, "{}", refused.message);
            release.await.unwrap().unwrap();
        }
        let counters = fs.sftp().counters();
        assert_eq!(counters.get(Op::Fsetstat), 0, "{}", counters.summary());
        assert_eq!(counters.get(Op::Setstat), 50, "{}", counters.summary());
        assert!(
            server.bad_handle_requests().is_empty(),
            "{:?}",
            server.seen()
        );
    }

    /// The handle of a file is closed between the pick and the queueing of a change (another
    /// thread closed the file and its RELEASE ran): nothing is sent on it, the file's writes
    /// are not failed by it, and the change goes by path.
    #[tokio::test]
    async fn a_handle_closed_under_a_change_falls_back_to_the_path() {
        let (server, fs) = mounted().await;
        let excl = (libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL) as u32;
        let (attr, fh) = fs.create(ROOT, OsStr::new("t"), 0o600, excl).await.unwrap();
        fs.write(fh, 0, b"data").await.unwrap();
        let file = fs.files.get(fh).unwrap();
        assert!(
            file.takes_changes_behind(attr.ino),
            "open, created, not closed"
        );
        fs.sftp().close(&file.handle).await.unwrap();
        assert!(
            !file.takes_changes_behind(attr.ino),
            "a closed handle is not offered"
        );
        let change = FileAttributes {
            permissions: Some(0o644),
            ..FileAttributes::empty()
        };
        assert!(
            fs.files.send_behind(&file, change).await.is_none(),
            "nothing queued"
        );
        assert!(
            file.writes.failed().is_ok(),
            "the file's writes are not failed by it"
        );
        let refused = fs.setattr(attr.ino, None, &chmod(0o644)).await.unwrap_err();
        assert_eq!(
            refused.errno,
            libc::EOPNOTSUPP,
            "by path: {}",
            refused.message
        );
        assert_eq!(fs.sftp().counters().get(Op::Fsetstat), 0);
        fs.release(fh).await.unwrap();
        assert!(
            server.bad_handle_requests().is_empty(),
            "{:?}",
            server.seen()
        );
    }

    /// A chown to another owner on a server that is not running as root may be refused: it is
    /// waited for.
    #[tokio::test]
    async fn a_chown_the_server_may_refuse_is_waited_for() {
        let (_server, fs) = mounted().await;
        let excl = (libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL) as u32;
        let (attr, fh) = fs.create(ROOT, OsStr::new("c"), 0o600, excl).await.unwrap();
        let chown = SetAttr {
            uid: Some(4321),
            gid: Some(4321),
            ..SetAttr::default()
        };
        // Not the owner the file has, and its owner is not root (the in-memory server sends none).
        assert!(fs.setattr(attr.ino, None, &chown).await.is_err());
        fs.flush(fh).await.unwrap();
        fs.release(fh).await.unwrap();
    }
}
