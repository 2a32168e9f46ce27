//! The typed SFTP requests: one method per request kind, each naming its target and what
//! rides behind it, and, for a request that changes the namespace, what it looks for when its
//! answer was lost with its session (the runner, [`super::runner`], does the rest).

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, TryFutureExt};
use russh_sftp::client::error::Error as RawError;
use russh_sftp::extensions::Statvfs;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};

use std::sync::Mutex;

use russh_sftp::client::RawSftpSession;

use super::Attempt;
use super::counters::Op;
use super::error::{FX_EOF, FX_NO_SUCH_FILE, SftpError, SftpResult};
use super::handle::{CloseDropped, Handle, Reopen};
use super::runner::{After, Behind, Check, Raw, Reply, Request, Target};
use super::server::SymlinkOrder;
use super::wire::{encode_string, expect_ok};
use super::{DirEntry, Sftp};

impl CloseDropped for Sftp {
    fn close_raw<'a>(
        &'a self,
        epoch: u64,
        channel: usize,
        raw: &'a str,
    ) -> BoxFuture<'a, SftpResult<()>> {
        Box::pin(Sftp::close_raw(self, epoch, channel, raw))
    }
}

impl Sftp {
    /// A request of one packet on `target`, with `behind` riding behind it; `check` for one
    /// whose policy is [`Retry::CheckFirst`](super::counters::Retry::CheckFirst).
    async fn request<'r, T: Send + Unpin + 'r>(
        &'r self,
        op: Op,
        target: Target<'r>,
        behind: Behind<'r>,
        req: impl for<'s> Fn(&'s RawSftpSession, &Raw) -> Attempt<'s, T> + Send + Sync + 'r,
        check: Option<Check<'r, T>>,
    ) -> SftpResult<Reply<T>> {
        let send = self.one(op, req);
        self.run(Request {
            op,
            target,
            behind,
            send,
            check,
        })
        .await
    }

    /// [`Sftp::request`] on a path, nothing behind it, sent again as it is: its answer.
    async fn on_path<'r, T: Send + Unpin + 'r>(
        &'r self,
        op: Op,
        req: impl for<'s> Fn(&'s RawSftpSession, &Raw) -> Attempt<'s, T> + Send + Sync + 'r,
    ) -> SftpResult<T> {
        let reply = self
            .request(op, Target::Path, Behind::Nothing, req, None)
            .await?;
        Ok(reply.value)
    }

    /// [`Sftp::request`] on a handle, nothing behind it: its answer.
    async fn on_handle<'r, T: Send + Unpin + 'r>(
        &'r self,
        op: Op,
        handle: &'r Handle,
        req: impl for<'s> Fn(&'s RawSftpSession, &Raw) -> Attempt<'s, T> + Send + Sync + 'r,
    ) -> SftpResult<T> {
        let reply = self
            .request(op, Target::Handle(handle), Behind::Nothing, req, None)
            .await?;
        Ok(reply.value)
    }

    /// A request that changes the namespace at `path` (with an LSTAT of `lstat` behind it, if
    /// given): if its answer was lost with its session, `happened` looks on the new session
    /// whether it was done; it is sent again only if not.
    async fn changing<'r>(
        &'r self,
        op: Op,
        lstat: Option<&'r str>,
        req: impl for<'s> Fn(&'s RawSftpSession, &Raw) -> Attempt<'s, ()> + Send + Sync + 'r,
        happened: impl Fn() -> BoxFuture<'r, SftpResult<bool>> + Send + Sync + 'r,
    ) -> SftpResult<After> {
        let behind = lstat.map_or(Behind::Nothing, Behind::Lstat);
        let check: Check<'r, ()> =
            Box::new(move || Box::pin(happened().map(|done| Ok(done?.then_some(())))));
        let reply = self
            .request(op, Target::Path, behind, req, Some(check))
            .await?;
        Ok(reply.after)
    }

    /// OPEN on channel `channel` of the connection (another `sftp-server`, with its own
    /// flow-control window): for writing one file through several channels at once. On a
    /// connection with fewer channels, channel 0. Never creates or truncates.
    pub async fn open_on_channel(
        &self,
        path: &str,
        flags: OpenFlags,
        channel: usize,
    ) -> SftpResult<Handle> {
        let flags = flags & !(OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::TRUNCATE);
        let p = path.to_owned();
        let reply = self
            .request(
                Op::Open,
                Target::Channel(channel),
                Behind::Nothing,
                move |raw, _| Box::pin(raw.open(p.clone(), flags, FileAttributes::empty())),
                None,
            )
            .await?;
        Ok(self.opened(
            &reply.session,
            reply.value.handle,
            Reopen::file(path, flags),
        ))
    }

    /// LSTAT: attributes of `path` without following a final symlink.
    pub async fn lstat(&self, path: &str) -> SftpResult<FileAttributes> {
        let p = path.to_owned();
        let attrs = self
            .on_path(Op::Lstat, move |raw, _| Box::pin(raw.lstat(p.clone())))
            .await?;
        Ok(attrs.attrs)
    }

    /// STAT: attributes of `path`, following symlinks.
    pub async fn stat(&self, path: &str) -> SftpResult<FileAttributes> {
        let p = path.to_owned();
        let attrs = self
            .on_path(Op::Stat, move |raw, _| Box::pin(raw.stat(p.clone())))
            .await?;
        Ok(attrs.attrs)
    }

    /// FSTAT: attributes of an open handle.
    pub async fn fstat(&self, handle: &Handle) -> SftpResult<FileAttributes> {
        let attrs = self
            .on_handle(Op::Fstat, handle, |raw, h| Box::pin(raw.fstat(h.handle())))
            .await?;
        Ok(attrs.attrs)
    }

    /// SETSTAT (follows symlinks).
    pub async fn setstat(&self, path: &str, attrs: FileAttributes) -> SftpResult<()> {
        let p = path.to_owned();
        self.on_path(Op::Setstat, move |raw, _| {
            Box::pin(raw.setstat(p.clone(), attrs.clone()).map_ok(drop))
        })
        .await
    }

    /// SETSTAT with an LSTAT of `path` queued behind it: the attributes after the change, in
    /// the same round trip.
    pub async fn setstat_lstat(&self, path: &str, attrs: FileAttributes) -> SftpResult<After> {
        let p = path.to_owned();
        let reply = self
            .request(
                Op::Setstat,
                Target::Path,
                Behind::Lstat(path),
                move |raw, _| Box::pin(raw.setstat(p.clone(), attrs.clone()).map_ok(drop)),
                None,
            )
            .await?;
        Ok(reply.after)
    }

    /// FSETSTAT on an open handle.
    pub async fn fsetstat(&self, handle: &Handle, attrs: FileAttributes) -> SftpResult<()> {
        self.on_handle(Op::Fsetstat, handle, move |raw, h| {
            Box::pin(raw.fsetstat(h.handle(), attrs.clone()).map_ok(drop))
        })
        .await
    }

    /// FSETSTAT with an FSTAT of the handle queued right behind it: the attributes after the
    /// change in the same round trip.
    pub async fn fsetstat_fstat(
        &self,
        handle: &Handle,
        attrs: FileAttributes,
    ) -> SftpResult<After> {
        let reply = self
            .request(
                Op::Fsetstat,
                Target::Handle(handle),
                Behind::Fstat,
                move |raw, h| Box::pin(raw.fsetstat(h.handle(), attrs.clone()).map_ok(drop)),
                None,
            )
            .await?;
        Ok(reply.after)
    }

    /// `lsetstat@openssh.com`: SETSTAT that changes a symlink itself, not its target.
    pub async fn lsetstat(&self, path: &str, attrs: FileAttributes) -> SftpResult<()> {
        let mut data = encode_string(path);
        let attrs = russh_sftp::ser::to_bytes(&attrs)
            .map_err(|e| SftpError::Protocol(format!("encoding attributes: {e}")))?;
        data.extend_from_slice(&attrs);
        expect_ok(
            self.on_path(Op::Lsetstat, move |raw, _| {
                Box::pin(raw.extended("lsetstat@openssh.com", data.clone()))
            })
            .await?,
        )
    }

    /// OPEN: returns the server's handle. After a reconnect it is reopened with these flags,
    /// less CREATE, EXCLUDE and TRUNCATE. An exclusive create whose answer was lost with the
    /// connection counts as done when the file is there, empty.
    pub async fn open(
        &self,
        path: &str,
        flags: OpenFlags,
        attrs: FileAttributes,
    ) -> SftpResult<Handle> {
        Ok(self.open_then(path, flags, attrs, Behind::Nothing).await?.0)
    }

    /// [`Sftp::open`] with an LSTAT of `path` queued right behind the OPEN: the attributes of
    /// the file as opened (created, truncated), in the same round trip.
    pub async fn open_lstat(
        &self,
        path: &str,
        flags: OpenFlags,
        attrs: FileAttributes,
    ) -> SftpResult<(Handle, After)> {
        self.open_then(path, flags, attrs, Behind::Lstat(path))
            .await
    }

    async fn open_then(
        &self,
        path: &str,
        flags: OpenFlags,
        attrs: FileAttributes,
        behind: Behind<'_>,
    ) -> SftpResult<(Handle, After)> {
        let p = path.to_owned();
        // What is sent: after a lost exclusive create found done, the open of the file made.
        let flags_now = std::sync::Arc::new(Mutex::new(flags));
        let sending = std::sync::Arc::clone(&flags_now);
        let check: Check<'_, _> = Box::new(move || {
            let flags_now = std::sync::Arc::clone(&flags_now);
            Box::pin(async move {
                if flags.contains(OpenFlags::EXCLUDE) {
                    // The create may have happened: if the file is there and empty, it is ours.
                    if let Ok(a) = self.lstat(path).await
                        && a.size == Some(0)
                        && let Ok(mut now) = flags_now.lock()
                    {
                        *now =
                            flags & !(OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::TRUNCATE);
                    }
                }
                Ok(None)
            })
        });
        let reply = self
            .request(
                Op::Open,
                Target::Path,
                behind,
                move |raw, _| {
                    let now = sending.lock().map_or(flags, |f| *f);
                    Box::pin(raw.open(p.clone(), now, attrs.clone()))
                },
                Some(check),
            )
            .await?;
        let handle = self.opened(
            &reply.session,
            reply.value.handle,
            Reopen::file(path, flags),
        );
        Ok((handle, reply.after))
    }

    /// CLOSE a file or directory handle: waits for the requests in flight on it, refuses new
    /// ones, and sends the one CLOSE it will get (a handle closed already sends nothing; one of
    /// a session that died is closed with it).
    pub async fn close(&self, handle: &Handle) -> SftpResult<()> {
        match handle.begin_close().await {
            Some((epoch, raw)) => self.close_raw(epoch, handle.channel(), &raw).await,
            None => Ok(()),
        }
    }

    /// Sends CLOSE for a handle string whose close has begun (see [`Sftp::close`]).
    async fn close_raw(&self, epoch: u64, channel: usize, raw: &str) -> SftpResult<()> {
        let session = self.link.session().channel(channel);
        if session.epoch != epoch {
            // Closed with its session; the registry forgets it at the reconnect.
            return Ok(());
        }
        if !self
            .handles
            .closing(&(epoch, session.channel, raw.to_owned()))
        {
            return Err(SftpError::HandleClosed);
        }
        match self
            .attempt(Op::Close, &session, session.raw.close(raw.to_owned()))
            .await
        {
            // The server closes every handle of a session that ends.
            Err(SftpError::Transport(_)) => Ok(()),
            other => other.map(drop),
        }
    }

    /// OPENDIR: returns the server's handle.
    pub async fn opendir(&self, path: &str) -> SftpResult<Handle> {
        let p = path.to_owned();
        let reply = self
            .request(
                Op::Opendir,
                Target::Path,
                Behind::Nothing,
                move |raw, _| Box::pin(raw.opendir(p.clone())),
                None,
            )
            .await?;
        Ok(self.opened(&reply.session, reply.value.handle, Reopen::dir(path)))
    }

    /// One READDIR page; `None` at the end of the directory. `restarted`: the handle was
    /// reopened after a reconnect since the last page, so this page starts the listing again.
    pub async fn readdir(&self, handle: &Handle) -> SftpResult<(Option<Vec<DirEntry>>, bool)> {
        let before = handle.epoch();
        let page = match self
            .on_handle(Op::Readdir, handle, |raw, h| {
                Box::pin(raw.readdir(h.handle()))
            })
            .await
        {
            Ok(name) => Some(DirEntry::page(name)),
            Err(e) if e.status() == Some(FX_EOF) => None,
            Err(e) => return Err(e),
        };
        Ok((page, handle.epoch() != before))
    }

    /// REMOVE a file. If the connection died before the answer, a file no longer there counts
    /// as removed.
    pub async fn remove(&self, path: &str) -> SftpResult<()> {
        let p = path.to_owned();
        self.changing(
            Op::Remove,
            None,
            move |raw, _| Box::pin(raw.remove(p.clone()).map_ok(drop)),
            move || Box::pin(self.is_gone(path)),
        )
        .await
        .map(drop)
    }

    /// MKDIR with the given permissions. After a lost answer, a directory there counts as made.
    pub async fn mkdir(&self, path: &str, mode: u32) -> SftpResult<()> {
        self.mkdir_then(path, mode, None).await.map(drop)
    }

    /// [`Sftp::mkdir`] with an LSTAT of the new directory queued right behind it: its
    /// attributes in the same round trip.
    pub async fn mkdir_lstat(&self, path: &str, mode: u32) -> SftpResult<After> {
        self.mkdir_then(path, mode, Some(path)).await
    }

    async fn mkdir_then(&self, path: &str, mode: u32, lstat: Option<&str>) -> SftpResult<After> {
        let attrs = FileAttributes {
            permissions: Some(mode),
            ..FileAttributes::empty()
        };
        let p = path.to_owned();
        self.changing(
            Op::Mkdir,
            lstat,
            move |raw, _| Box::pin(raw.mkdir(p.clone(), attrs.clone()).map_ok(drop)),
            move || {
                Box::pin(async move {
                    Ok(matches!(self.lstat(path).await, Ok(a) if a.permissions.is_some_and(|m| m & libc::S_IFMT == libc::S_IFDIR)))
                })
            },
        )
        .await
    }

    /// RMDIR. After a lost answer, a directory no longer there counts as removed.
    pub async fn rmdir(&self, path: &str) -> SftpResult<()> {
        let p = path.to_owned();
        self.changing(
            Op::Rmdir,
            None,
            move |raw, _| Box::pin(raw.rmdir(p.clone()).map_ok(drop)),
            move || Box::pin(self.is_gone(path)),
        )
        .await
        .map(drop)
    }

    /// `posix-rename@openssh.com` (replaces the target like rename(2)) when the server has it,
    /// otherwise plain RENAME (which on OpenSSH refuses to replace). After a lost answer, the
    /// rename counts as done when the source is gone and the target is there.
    pub async fn posix_rename(&self, from: &str, to: &str) -> SftpResult<()> {
        if !self.has_extension("posix-rename@openssh.com") {
            return self.rename_noreplace(from, to).await;
        }
        let mut data = encode_string(from);
        data.extend_from_slice(&encode_string(to));
        self.changing(
            Op::Rename,
            None,
            move |raw, _| {
                let data = data.clone();
                Box::pin(async move {
                    match raw.extended("posix-rename@openssh.com", data).await? {
                        Packet::Status(s) if s.status_code == StatusCode::Ok => Ok(()),
                        Packet::Status(s) => Err(RawError::Status(s)),
                        _ => Err(RawError::UnexpectedPacket),
                    }
                })
            },
            move || Box::pin(self.renamed(from, to)),
        )
        .await
        .map(drop)
    }

    /// Plain SFTP RENAME: fails if the target exists.
    pub async fn rename_noreplace(&self, from: &str, to: &str) -> SftpResult<()> {
        let (f, t) = (from.to_owned(), to.to_owned());
        self.changing(
            Op::Rename,
            None,
            move |raw, _| Box::pin(raw.rename(f.clone(), t.clone()).map_ok(drop)),
            move || Box::pin(self.renamed(from, to)),
        )
        .await
        .map(drop)
    }

    /// Whether `path` is gone (after a REMOVE or RMDIR whose answer was lost).
    async fn is_gone(&self, path: &str) -> SftpResult<bool> {
        match self.lstat(path).await {
            Err(e) if e.status() == Some(FX_NO_SUCH_FILE) => Ok(true),
            Err(e) => Err(e),
            Ok(_) => Ok(false),
        }
    }

    /// Whether a rename of `from` to `to` whose answer was lost happened.
    async fn renamed(&self, from: &str, to: &str) -> SftpResult<bool> {
        Ok(self.is_gone(from).await? && self.lstat(to).await.is_ok())
    }

    /// READLINK: the target of a symlink.
    pub async fn readlink(&self, path: &str) -> SftpResult<String> {
        let p = path.to_owned();
        let name = self
            .on_path(Op::Readlink, move |raw, _| {
                Box::pin(raw.readlink(p.clone()))
            })
            .await?;
        name.files
            .into_iter()
            .next()
            .map(|f| f.filename)
            .ok_or_else(|| SftpError::Protocol("empty READLINK answer".into()))
    }

    /// SYMLINK: creates `link` pointing at `target`. After a lost answer, a link there with
    /// that target counts as made.
    ///
    /// OpenSSH's server reads the two paths in the opposite order from the draft standard (and
    /// its clients, the C sshfs included, send them that way, so the target goes first, and
    /// most servers read them so); servers known to read the draft's order get that
    /// ([`ServerProfile::symlink_order`](super::server::ServerProfile::symlink_order)).
    pub async fn symlink(&self, link: &str, target: &str) -> SftpResult<()> {
        let (l, t) = (link.to_owned(), target.to_owned());
        let (first, second) = match self.server().symlink_order {
            SymlinkOrder::OpenSsh => (t, l),
            SymlinkOrder::Draft => (l, t),
        };
        self.changing(
            Op::Symlink,
            None,
            move |raw, _| Box::pin(raw.symlink(first.clone(), second.clone()).map_ok(drop)),
            move || {
                Box::pin(async move { Ok(self.readlink(link).await.is_ok_and(|t| t == target)) })
            },
        )
        .await
        .map(drop)
    }

    /// `hardlink@openssh.com`. After a lost answer, a name there counts as made.
    pub async fn hardlink(&self, existing: &str, new: &str) -> SftpResult<()> {
        let (e, n) = (existing.to_owned(), new.to_owned());
        self.changing(
            Op::Link,
            None,
            move |raw, _| Box::pin(raw.hardlink(e.clone(), n.clone()).map_ok(drop)),
            move || Box::pin(async move { Ok(self.lstat(new).await.is_ok()) }),
        )
        .await
        .map(drop)
    }

    /// `fsync@openssh.com` on an open handle. Servers without it: nothing to do (the data was
    /// acknowledged already).
    pub async fn fsync(&self, handle: &Handle) -> SftpResult<()> {
        if !self.has_extension("fsync@openssh.com") {
            return Ok(());
        }
        self.on_handle(Op::Fsync, handle, |raw, h| {
            Box::pin(raw.fsync(h.handle()).map_ok(drop))
        })
        .await
    }

    /// `copy-data` (OpenSSH 9.0+): the server copies `len` bytes (0: to the end of the file)
    /// from `from` at `from_off` to `to` at `to_off`, between two handles it holds, so no data
    /// crosses the link. The answer does not say how many bytes were copied (the copy stops
    /// at the source's end). Both handles must live on the same channel (one `sftp-server`).
    /// A positional copy may be repeated: it is sent again, both handles reopened, when its
    /// session dies. Only call it when [`Sftp::has_extension`]`("copy-data")`.
    pub async fn copy_data(
        &self,
        from: &Handle,
        from_off: u64,
        len: u64,
        to: &Handle,
        to_off: u64,
    ) -> SftpResult<()> {
        if from.channel() != to.channel() {
            return Err(SftpError::Protocol(
                "copy-data between handles of two channels".into(),
            ));
        }
        let answer = self
            .request(
                Op::CopyData,
                Target::Handles(from, to),
                Behind::Nothing,
                move |raw, h| {
                    let mut data = encode_string(&h.handle());
                    data.extend_from_slice(&from_off.to_be_bytes());
                    data.extend_from_slice(&len.to_be_bytes());
                    data.extend_from_slice(&encode_string(&h.other()));
                    data.extend_from_slice(&to_off.to_be_bytes());
                    Box::pin(raw.extended("copy-data", data))
                },
                None,
            )
            .await?;
        expect_ok(answer.value)
    }

    /// `statvfs@openssh.com`.
    pub async fn statvfs(&self, path: &str) -> SftpResult<Statvfs> {
        let p = path.to_owned();
        self.on_path(Op::Statfs, move |raw, _| Box::pin(raw.statvfs(p.clone())))
            .await
    }

    /// REALPATH: canonical absolute form of `path` ("." is the login directory).
    pub async fn realpath(&self, path: &str) -> SftpResult<String> {
        let p = path.to_owned();
        let name = self
            .on_path(Op::Realpath, move |raw, _| {
                Box::pin(raw.realpath(p.clone()))
            })
            .await?;
        name.files
            .into_iter()
            .next()
            .map(|f| f.filename)
            .ok_or_else(|| SftpError::Protocol("empty REALPATH answer".into()))
    }
}
