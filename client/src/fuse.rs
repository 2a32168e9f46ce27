//! The FUSE frontend: links each kernel request to the [`SshFs`] method of the same name,
//! converts results to fuse3 replies with the configured TTLs, keeps the registry of requests in
//! flight for FUSE INTERRUPT, and mounts.
//!
//! Every request runs inside [`FuseFs::serve`]: it gets a tracing span, is registered under its
//! FUSE `unique` so an INTERRUPT can cancel it (the caller then gets EINTR), and its error is
//! turned into an errno.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::future::Future;
use std::num::NonZeroU32;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use fuse3::raw::prelude::*;
use fuse3::raw::{MountHandle, Session};
use fuse3::{Errno, MountOptions, Result as FuseResult};
use futures_util::stream::{self, Stream};
use tokio::sync::oneshot;
use tracing::{Instrument, debug, debug_span};

use crate::fs::invalidate::Invalidation;
use crate::fs::{DirItem, FsError, SshFs, attr, detached};
use crate::kernel_names::name_to_kernel;
use crate::request_log::{self, Summary};

/// Largest WRITE the kernel may send us (it caps this at its max_pages, 1 MiB by default).
const MAX_WRITE: u32 = 1024 * 1024;
/// `FOPEN_DIRECT_IO` (fuse_kernel.h): reads and writes of this open bypass the page cache.
const FOPEN_DIRECT_IO: u32 = 1 << 0;
/// `FOPEN_KEEP_CACHE` (fuse_kernel.h): the kernel keeps the file's pages across this open.
const FOPEN_KEEP_CACHE: u32 = 1 << 1;
/// How long an INTERRUPT for a request we do not hold waits for it to show up.
const INTERRUPT_GRACE: Duration = Duration::from_millis(20);

/// How long the kernel may keep what we tell it.
#[derive(Debug, Clone, Copy)]
pub struct KernelTtls {
    /// Attribute validity.
    pub attr: Duration,
    /// Name (dentry) validity.
    pub entry: Duration,
    /// Validity of "no such name" (zero: the kernel asks again every time; our cache answers).
    pub negative: Duration,
}

/// Mount settings.
#[derive(Debug, Clone)]
pub struct MountConfig {
    /// Shown as the mount's source in /proc/mounts (`user@host:/path`).
    pub fs_name: String,
    /// The mount's type in /proc/mounts is `fuse.SUBTYPE` (empty: plain `fuse`).
    pub subtype: String,
    /// Let other users access the mount.
    pub allow_other: bool,
    /// `allow_root`, with the uid of the mount's owner: only it and root may use the mount
    /// (as libfuse does it: the kernel lets everyone in, other users are refused with EACCES).
    pub allow_root: Option<u32>,
    /// Let the kernel check permissions from the mode bits.
    pub default_permissions: bool,
    /// Read-only mount.
    pub read_only: bool,
    /// Kernel mount flags (`nosuid`, `nodev`, `noexec`, atime, `sync`, `dirsync`).
    pub flags: MountFlags,
    /// Largest READ the kernel may send (`max_read=`); `None`: the kernel's own limit.
    pub max_read: Option<u32>,
    /// Decline FUSE_ASYNC_READ: the kernel sends READs from the reading process, so any signal
    /// (not only a fatal one) interrupts a read() blocked on the network.
    pub sync_read: bool,
    /// Mount through fusermount3 (needed when not root).
    pub unprivileged: bool,
    /// Open every file with `FOPEN_DIRECT_IO` (`-o direct_io`): each read(2) and write(2) goes
    /// to the server, none is served from or kept in the page cache.
    pub direct_io: bool,
    /// Largest WRITE the kernel sends (`-o max_write`; at most 1 MiB, the default).
    pub max_write: Option<u32>,
    /// Background requests (readahead, async writes) the kernel keeps in flight
    /// (`-o max_background`; the kernel's default is 12).
    pub max_background: Option<u16>,
    /// Kernel cache lifetimes.
    pub ttls: KernelTtls,
}

/// When the kernel updates access times (mount(8)'s `relatime`, `noatime`, `strictatime`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Atime {
    /// `relatime`: only when older than the modification time (the kernel's default).
    #[default]
    Relative,
    /// `noatime`.
    Never,
    /// `strictatime` (`atime`): on every access.
    Always,
}

/// Kernel mount flags. A user's mount (through fusermount3) is always `nosuid,nodev`. For root's
/// mounts [`mount`] applies only `sync` and `dirsync`; the caller applies the rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountFlags {
    /// Ignore set-user-ID and set-group-ID bits.
    pub nosuid: bool,
    /// Do not open device files.
    pub nodev: bool,
    /// Do not run programs.
    pub noexec: bool,
    /// Access time updates.
    pub atime: Atime,
    /// No access time updates on directories.
    pub nodiratime: bool,
    /// Synchronous writes (`sync`).
    pub sync: bool,
    /// Synchronous directory changes (`dirsync`).
    pub dirsync: bool,
}

impl MountFlags {
    /// The flags as fusermount3 takes them in `-o`. It knows only `rw ro suid nosuid dev nodev
    /// exec noexec async sync atime noatime dirsync` (3.14; any other word makes it fail), and
    /// without `noatime` the kernel's default, `relatime`, applies; so a user's mount cannot
    /// have `strictatime` or `nodiratime` (refused before this: [`MountFlags::user_mount_lacks`]).
    fn words(&self) -> Vec<&'static str> {
        let mut w = Vec::new();
        for (on, word) in [
            (self.nosuid, "nosuid"),
            (self.nodev, "nodev"),
            (self.noexec, "noexec"),
            (self.sync, "sync"),
            (self.dirsync, "dirsync"),
            (self.atime == Atime::Never, "noatime"),
        ] {
            if on {
                w.push(word);
            }
        }
        // relatime is what a new mount gets anyway; strictatime only for root's mounts
        // (refused before for a user's: [`MountFlags::user_mount_lacks`]).
        if self.atime == Atime::Always {
            w.push("strictatime");
        }
        w
    }

    /// The flag asked for that fusermount3 cannot set on a user's mount, if any (its name).
    pub fn user_mount_lacks(&self) -> Option<&'static str> {
        if self.atime == Atime::Always {
            Some("atime/strictatime")
        } else if self.nodiratime {
            Some("nodiratime")
        } else {
            None
        }
    }
}

/// Requests in flight, by FUSE `unique`, with the means to cancel each.
#[derive(Default)]
struct InFlight {
    map: Mutex<HashMap<u64, oneshot::Sender<()>>>,
}

impl InFlight {
    fn register(&self, unique: u64) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut m) = self.map.lock() {
            m.insert(unique, tx);
        }
        rx
    }

    fn finish(&self, unique: u64) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(&unique);
        }
    }

    fn cancel(&self, unique: u64) -> bool {
        let tx = self.map.lock().ok().and_then(|mut m| m.remove(&unique));
        tx.is_some_and(|tx| tx.send(()).is_ok())
    }
}

/// What an INTERRUPT of a request does.
#[derive(Clone, Copy)]
enum OnInterrupt {
    /// Its future is dropped and the kernel answered EINTR.
    Cancel,
    /// Nothing: the request must not be abandoned halfway (releasing a handle the server
    /// holds), so it runs to the end.
    Finish,
}

/// Removes a request from the registry however its future ends (completion or drop).
struct Registered<'a> {
    inflight: &'a InFlight,
    unique: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.inflight.finish(self.unique);
    }
}

/// The fuse3 filesystem: [`SshFs`] plus the FUSE-only concerns.
pub struct FuseFs {
    fs: Arc<SshFs>,
    ttls: KernelTtls,
    direct_io: bool,
    max_write: u32,
    max_background: Option<u16>,
    inflight: InFlight,
    /// `allow_root`: only this uid (the mount's owner) and root are served.
    owner_and_root: Option<u32>,
}

fn errno(e: FsError) -> Errno {
    Errno::from(e.errno)
}

impl FuseFs {
    /// Wraps the filesystem, with the FUSE-side settings of `config` (TTLs, page cache,
    /// request sizes, `allow_root`).
    pub fn new(fs: Arc<SshFs>, config: &MountConfig) -> Self {
        Self {
            fs,
            ttls: config.ttls,
            direct_io: config.direct_io,
            max_write: config.max_write.map_or(MAX_WRITE, |w| w.min(MAX_WRITE)),
            max_background: config.max_background,
            inflight: InFlight::default(),
            // With allow_other as well, allow_root still decides (as libfuse 3).
            owner_and_root: config.allow_root,
        }
    }

    /// The FOPEN_* flags of an open or create reply.
    fn open_flags(&self, keep_cache: bool) -> u32 {
        match (self.direct_io, keep_cache) {
            (true, _) => FOPEN_DIRECT_IO,
            (false, true) => FOPEN_KEEP_CACHE,
            (false, false) => 0,
        }
    }

    /// Runs one request: traced, cancellable by INTERRUPT (EINTR), errors mapped to errno,
    /// logged with `-d`.
    async fn serve<T: Summary>(
        &self,
        req: &Request,
        op: &'static str,
        ino: u64,
        fut: impl Future<Output = Result<T, FsError>>,
    ) -> FuseResult<T> {
        self.serve_named(req, op, ino, None, fut).await
    }

    /// [`FuseFs::serve`] for a request about `name` in directory `ino` (named in the log).
    async fn serve_named<T: Summary>(
        &self,
        req: &Request,
        op: &'static str,
        ino: u64,
        name: Option<&OsStr>,
        fut: impl Future<Output = Result<T, FsError>>,
    ) -> FuseResult<T> {
        self.run_request(req, op, ino, name, OnInterrupt::Cancel, fut)
            .await
    }

    /// Runs one request: admitted, traced, errors mapped to errno, logged with `-d`; what an
    /// INTERRUPT does is `on_interrupt`'s.
    async fn run_request<T: Summary>(
        &self,
        req: &Request,
        op: &'static str,
        ino: u64,
        name: Option<&OsStr>,
        on_interrupt: OnInterrupt,
        fut: impl Future<Output = Result<T, FsError>>,
    ) -> FuseResult<T> {
        let started = Instant::now();
        let span = debug_span!("fuse", op, unique = req.unique, ino, pid = req.pid);
        self.admit(req, op)?;
        let mapped = async {
            fut.await.map_err(|e| {
                debug!(errno = e.errno, "{}", e.message);
                errno(e)
            })
        };
        let result = match on_interrupt {
            OnInterrupt::Cancel => {
                let cancelled = self.inflight.register(req.unique);
                let _registered = Registered {
                    inflight: &self.inflight,
                    unique: req.unique,
                };
                async {
                    tokio::select! {
                        r = mapped => r,
                        Ok(()) = cancelled => {
                            debug!("interrupted");
                            Err(Errno::from(libc::EINTR))
                        }
                    }
                }
                .instrument(span)
                .await
            }
            OnInterrupt::Finish => mapped.instrument(span).await,
        };
        let result = match name {
            Some(name) => result.map_err(|e| self.too_long_or(e, ino, name)),
            None => result,
        };
        self.log(req, op, ino, name, &result, started);
        result
    }

    /// The `-d` line of an answered request ([`request_log`]), outside its span so the line
    /// says everything once.
    fn log<T: Summary>(
        &self,
        req: &Request,
        op: &str,
        ino: u64,
        name: Option<&OsStr>,
        result: &FuseResult<T>,
        started: Instant,
    ) {
        if tracing::enabled!(tracing::Level::DEBUG) {
            let result = match result {
                Ok(v) => Ok(v.summary()),
                Err(e) => Err(-libc::c_int::from(*e)),
            };
            let path = self.fs.shown_path(ino);
            let took = started.elapsed();
            debug!(
                "{}",
                request_log::line(req.unique, op, &path, name, result, took)
            );
        }
    }

    /// `allow_root` as libfuse has it: a request of a user other than the owner and root is
    /// refused (EACCES), except those on a file or directory already open.
    fn admit(&self, req: &Request, op: &'static str) -> FuseResult<()> {
        const ON_OPEN_HANDLES: &[&str] = &[
            "read",
            "write",
            "fsync",
            "release",
            "readdir",
            "readdirplus",
            "releasedir",
        ];
        match self.owner_and_root {
            Some(owner) if req.uid != owner && req.uid != 0 && !ON_OPEN_HANDLES.contains(&op) => {
                Err(Errno::from(libc::EACCES))
            }
            _ => Ok(()),
        }
    }

    /// `e`, or ENAMETOOLONG when `e` is EINVAL and `name` in `parent` is longer than the
    /// server takes (OpenSSH sends its ENAMETOOLONG as BAD_MESSAGE, which reads EINVAL).
    fn too_long_or(&self, e: Errno, parent: u64, name: &OsStr) -> Errno {
        if e == Errno::from(libc::EINVAL) && self.fs.too_long_for_the_server(parent, name) {
            Errno::from(libc::ENAMETOOLONG)
        } else {
            e
        }
    }

    fn entry(&self, attr: FileAttr) -> ReplyEntry {
        ReplyEntry {
            ttl: self.ttls.entry,
            attr,
            generation: 0,
        }
    }
}

impl Filesystem for FuseFs {
    async fn init(&self, _req: Request) -> FuseResult<ReplyInit> {
        let max_write = NonZeroU32::new(self.max_write).unwrap_or(NonZeroU32::MIN);
        let mut reply = ReplyInit::new(max_write);
        reply.max_background = self.max_background;
        Ok(reply)
    }

    async fn ready(&self, notify: Notify) {
        // The one task that talks to the kernel about invalidations (never a request handler).
        // The vendored fuse3 writes each notification outside its reply lock, so one the kernel
        // handles under a lock a pending request holds waits for that request's reply, which
        // still goes out (see fs::invalidate).
        if let Some(mut queue) = self.fs.take_invalidations() {
            tokio::spawn(async move {
                while let Some(what) = queue.recv().await {
                    match what {
                        // Offset -1: attributes only, the pages are left alone.
                        Invalidation::Attrs(ino) => notify.clone().invalid_inode(ino, -1, 0).await,
                        // Offset 0, length 0: every page of the file.
                        Invalidation::Contents(ino) => {
                            notify.clone().invalid_inode(ino, 0, 0).await
                        }
                        Invalidation::Entry { parent, name } => {
                            notify
                                .clone()
                                .invalid_entry(parent, name_to_kernel(&name))
                                .await
                        }
                    }
                }
            });
        }
    }

    async fn destroy(&self, _req: Request) {}

    async fn lookup(&self, req: Request, parent: u64, name: &OsStr) -> FuseResult<ReplyEntry> {
        match self
            .serve_named(
                &req,
                "lookup",
                parent,
                Some(name),
                self.fs.lookup(parent, name),
            )
            .await
        {
            Ok(attr) => Ok(self.entry(attr)),
            // A reply with inode 0 is a negative entry the kernel keeps for its TTL.
            Err(e) if e == Errno::from(libc::ENOENT) && !self.ttls.negative.is_zero() => {
                self.fs.gave_negative(parent, name);
                Ok(ReplyEntry {
                    ttl: self.ttls.negative,
                    attr: attr::file_attr(0, &Default::default(), None, self.fs.block_unit()),
                    generation: 0,
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn forget(&self, _req: Request, inode: u64, nlookup: u64) {
        self.fs.forget(inode, nlookup);
    }

    async fn batch_forget(&self, _req: Request, inodes: &[(u64, u64)]) {
        for (ino, n) in inodes {
            self.fs.forget(*ino, *n);
        }
    }

    async fn getattr(
        &self,
        req: Request,
        inode: u64,
        fh: Option<u64>,
        _flags: u32,
    ) -> FuseResult<ReplyAttr> {
        let attr = self
            .serve(&req, "getattr", inode, self.fs.getattr(inode, fh))
            .await?;
        Ok(ReplyAttr {
            ttl: self.ttls.attr,
            attr,
        })
    }

    async fn setattr(
        &self,
        req: Request,
        inode: u64,
        fh: Option<u64>,
        set_attr: SetAttr,
    ) -> FuseResult<ReplyAttr> {
        let reply = self
            .serve(
                &req,
                "setattr",
                inode,
                self.fs.setattr(inode, fh, &set_attr),
            )
            .await?;
        Ok(ReplyAttr {
            ttl: match reply.confirmed {
                true => self.ttls.attr,
                false => Duration::ZERO,
            },
            attr: reply.attr,
        })
    }

    async fn readlink(&self, req: Request, inode: u64) -> FuseResult<ReplyData> {
        let target = self
            .serve(&req, "readlink", inode, self.fs.readlink(inode))
            .await?;
        Ok(ReplyData::from(bytes::Bytes::from(target)))
    }

    async fn symlink(
        &self,
        req: Request,
        parent: u64,
        name: &OsStr,
        link: &OsStr,
    ) -> FuseResult<ReplyEntry> {
        let attr = self
            .serve_named(
                &req,
                "symlink",
                parent,
                Some(name),
                self.fs.symlink(parent, name, link),
            )
            .await?;
        Ok(self.entry(attr))
    }

    async fn mknod(
        &self,
        req: Request,
        parent: u64,
        name: &OsStr,
        mode: u32,
        _rdev: u32,
    ) -> FuseResult<ReplyEntry> {
        let attr = self
            .serve_named(
                &req,
                "mknod",
                parent,
                Some(name),
                self.fs.mknod(parent, name, mode),
            )
            .await?;
        Ok(self.entry(attr))
    }

    async fn mkdir(
        &self,
        req: Request,
        parent: u64,
        name: &OsStr,
        mode: u32,
        _umask: u32,
    ) -> FuseResult<ReplyEntry> {
        let attr = self
            .serve_named(
                &req,
                "mkdir",
                parent,
                Some(name),
                self.fs.mkdir(parent, name, mode),
            )
            .await?;
        Ok(self.entry(attr))
    }

    async fn unlink(&self, req: Request, parent: u64, name: &OsStr) -> FuseResult<()> {
        self.serve_named(
            &req,
            "unlink",
            parent,
            Some(name),
            self.fs.unlink(parent, name),
        )
        .await
    }

    async fn rmdir(&self, req: Request, parent: u64, name: &OsStr) -> FuseResult<()> {
        self.serve_named(
            &req,
            "rmdir",
            parent,
            Some(name),
            self.fs.rmdir(parent, name),
        )
        .await
    }

    async fn rename(
        &self,
        req: Request,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
    ) -> FuseResult<()> {
        self.serve_named(
            &req,
            "rename",
            parent,
            Some(name),
            self.fs.rename(parent, name, new_parent, new_name, 0),
        )
        .await
        .map_err(|e| self.too_long_or(e, new_parent, new_name))
    }

    async fn rename2(
        &self,
        req: Request,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: u32,
    ) -> FuseResult<()> {
        self.serve_named(
            &req,
            "rename",
            parent,
            Some(name),
            self.fs.rename(parent, name, new_parent, new_name, flags),
        )
        .await
        .map_err(|e| self.too_long_or(e, new_parent, new_name))
    }

    async fn link(
        &self,
        req: Request,
        inode: u64,
        new_parent: u64,
        new_name: &OsStr,
    ) -> FuseResult<ReplyEntry> {
        let attr = self
            .serve(
                &req,
                "link",
                inode,
                self.fs.link(inode, new_parent, new_name),
            )
            .await
            .map_err(|e| self.too_long_or(e, new_parent, new_name))?;
        Ok(self.entry(attr))
    }

    async fn open(&self, req: Request, inode: u64, flags: u32) -> FuseResult<ReplyOpen> {
        let open = detached::run(
            &self.fs,
            move |fs| async move { fs.open(inode, flags).await },
            |fs, (fh, _)| async move { fs.release_quietly(fh).await },
        );
        let (fh, keep_cache) = self.serve(&req, "open", inode, open).await?;
        Ok(ReplyOpen {
            fh,
            flags: self.open_flags(keep_cache),
        })
    }

    async fn create(
        &self,
        req: Request,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: u32,
    ) -> FuseResult<ReplyCreated> {
        let owned = name.to_owned();
        let create = detached::run(
            &self.fs,
            move |fs| async move { fs.create(parent, &owned, mode, flags).await },
            |fs, (attr, fh): (FileAttr, u64)| async move {
                fs.forget(attr.ino, 1);
                fs.release_quietly(fh).await;
            },
        );
        let (attr, fh) = self
            .serve_named(&req, "create", parent, Some(name), create)
            .await?;
        Ok(ReplyCreated {
            ttl: self.ttls.entry,
            attr,
            generation: 0,
            fh,
            flags: self.open_flags(false),
        })
    }

    async fn read(
        &self,
        req: Request,
        inode: u64,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> FuseResult<ReplyData> {
        let data = self
            .serve(&req, "read", inode, self.fs.read(fh, offset, size))
            .await?;
        Ok(ReplyData::from(bytes::Bytes::from(data)))
    }

    async fn write(
        &self,
        req: Request,
        inode: u64,
        fh: u64,
        offset: u64,
        data: &[u8],
        _write_flags: u32,
        _flags: u32,
    ) -> FuseResult<ReplyWrite> {
        let written = self
            .serve(&req, "write", inode, self.fs.write(fh, offset, data))
            .await?;
        Ok(ReplyWrite { written })
    }

    async fn statfs(&self, req: Request, inode: u64) -> FuseResult<ReplyStatFs> {
        let s = self.serve(&req, "statfs", inode, self.fs.statfs()).await?;
        let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Ok(ReplyStatFs {
            blocks: s.blocks,
            bfree: s.blocks_free,
            bavail: s.blocks_avail,
            files: s.inodes,
            ffree: s.inodes_free,
            bsize: clamp(s.block_size),
            namelen: clamp(s.name_max),
            frsize: clamp(s.fragment_size),
        })
    }

    async fn release(
        &self,
        req: Request,
        inode: u64,
        fh: u64,
        _flags: u32,
        _lock_owner: u64,
        _flush: bool,
    ) -> FuseResult<()> {
        self.run_request(
            &req,
            "release",
            inode,
            None,
            OnInterrupt::Finish,
            self.fs.release(fh),
        )
        .await
    }

    async fn fsync(&self, req: Request, inode: u64, fh: u64, _datasync: bool) -> FuseResult<()> {
        self.serve(&req, "fsync", inode, self.fs.fsync(fh)).await
    }

    async fn flush(&self, req: Request, inode: u64, fh: u64, _lock_owner: u64) -> FuseResult<()> {
        self.serve(&req, "flush", inode, self.fs.flush(fh)).await
    }

    async fn opendir(&self, req: Request, inode: u64, _flags: u32) -> FuseResult<ReplyOpen> {
        let opendir = detached::run(
            &self.fs,
            move |fs| async move { fs.opendir(inode).await },
            |fs, fh| async move { fs.releasedir_quietly(fh).await },
        );
        let fh = self.serve(&req, "opendir", inode, opendir).await?;
        Ok(ReplyOpen { fh, flags: 0 })
    }

    async fn readdir<'a>(
        &'a self,
        req: Request,
        parent: u64,
        fh: u64,
        offset: i64,
    ) -> FuseResult<ReplyDirectory<impl Stream<Item = FuseResult<DirectoryEntry>> + Send + 'a>>
    {
        let offset = u64::try_from(offset).unwrap_or(0);
        let items = self
            .serve(&req, "readdir", parent, self.fs.readdir(fh, offset))
            .await?;
        let entries: Vec<FuseResult<DirectoryEntry>> = items
            .into_iter()
            .map(|item| {
                Ok(DirectoryEntry {
                    inode: self.fs.ino_hint(parent, &item.name),
                    kind: attr::kind_of(item.entry.attrs.permissions.unwrap_or(0)),
                    offset: i64::try_from(item.next_offset).unwrap_or(i64::MAX),
                    name: name_to_kernel(&item.name),
                })
            })
            .collect();
        Ok(ReplyDirectory {
            entries: stream::iter(entries),
        })
    }

    async fn readdirplus<'a>(
        &'a self,
        req: Request,
        parent: u64,
        fh: u64,
        offset: u64,
        _lock_owner: u64,
    ) -> FuseResult<
        ReplyDirectoryPlus<impl Stream<Item = FuseResult<DirectoryEntryPlus>> + Send + 'a>,
    > {
        let items = self
            .serve(&req, "readdirplus", parent, self.fs.readdir(fh, offset))
            .await?;
        Ok(ReplyDirectoryPlus {
            entries: PlusEntries {
                fuse: self,
                parent,
                items: items.into_iter(),
                uncommitted: None,
            },
        })
    }

    async fn releasedir(&self, req: Request, inode: u64, fh: u64, _flags: u32) -> FuseResult<()> {
        self.run_request(
            &req,
            "releasedir",
            inode,
            None,
            OnInterrupt::Finish,
            self.fs.releasedir(fh),
        )
        .await
    }

    /// Server-side copy (`copy-data`); see [`crate::fs::copy`] for why ENOSYS and EOPNOTSUPP
    /// make the kernel copy through READ and WRITE instead.
    async fn copy_file_range(
        &self,
        req: Request,
        inode: u64,
        fh_in: u64,
        off_in: u64,
        _inode_out: u64,
        fh_out: u64,
        off_out: u64,
        length: u64,
        _flags: u64,
    ) -> FuseResult<ReplyCopyFileRange> {
        let copy = self.fs.copy_range(fh_in, off_in, fh_out, off_out, length);
        let copied = self.serve(&req, "copy_file_range", inode, copy).await?;
        Ok(ReplyCopyFileRange { copied })
    }

    async fn interrupt(&self, _req: Request, unique: u64) -> FuseResult<()> {
        if self.inflight.cancel(unique) {
            return Ok(());
        }
        // The request may not have reached us yet: wait a moment before asking the kernel to
        // queue the INTERRUPT again (EAGAIN). Never ENOSYS: that turns interrupts off for good.
        tokio::time::sleep(INTERRUPT_GRACE).await;
        if self.inflight.cancel(unique) {
            Ok(())
        } else {
            Err(Errno::from(libc::EAGAIN))
        }
    }
}

/// READDIRPLUS entries. Each entry takes a kernel lookup reference, but fuse3 pulls one entry
/// more than fits in the kernel's buffer and drops it: an entry counts as delivered only when
/// the next one is pulled (or the stream ends), and the reference of one pulled but never
/// delivered is given back on drop. "." and ".." are never referenced (the kernel skips them).
struct PlusEntries<'a> {
    fuse: &'a FuseFs,
    parent: u64,
    items: std::vec::IntoIter<DirItem>,
    uncommitted: Option<u64>,
}

impl Stream for PlusEntries<'_> {
    type Item = FuseResult<DirectoryEntryPlus>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.uncommitted = None;
        let Some(item) = self.items.next() else {
            return Poll::Ready(None);
        };
        let ttls = self.fuse.ttls;
        let dot = item.name == "." || item.name == "..";
        let attr = if dot {
            let ino = self.fuse.fs.ino_hint(self.parent, &item.name);
            Ok(attr::file_attr(
                ino,
                &item.entry.attrs,
                item.entry.nlink,
                self.fuse.fs.block_unit(),
            ))
        } else {
            self.fuse.fs.dir_entry(self.parent, &item)
        };
        let attr = match attr {
            Ok(a) => a,
            Err(e) => return Poll::Ready(Some(Err(errno(e)))),
        };
        if !dot {
            self.uncommitted = Some(attr.ino);
        }
        Poll::Ready(Some(Ok(DirectoryEntryPlus {
            inode: attr.ino,
            generation: 0,
            kind: attr.kind,
            name: name_to_kernel(&item.name),
            offset: i64::try_from(item.next_offset).unwrap_or(i64::MAX),
            attr,
            entry_ttl: ttls.entry,
            attr_ttl: ttls.attr,
        })))
    }
}

impl Drop for PlusEntries<'_> {
    fn drop(&mut self) {
        if let Some(ino) = self.uncommitted.take() {
            self.fuse.fs.forget(ino, 1);
        }
    }
}

/// Mounts `fs` on `mountpoint`; the returned handle resolves when the filesystem is unmounted.
///
/// fuse3 0.10 mounts root's mounts itself with mount(2), always as type `fuse` and with no
/// flags but `ro`; it passes extra options through to the kernel (root) or to fusermount3 (a
/// user). So the type comes from the kernel's `subtype=` option, `sync`/`dirsync` are
/// superblock options the kernel takes in the same string. For root, the per-mount flags
/// (`nosuid`, `nodev`, `noexec`, atime) cannot go through fuse3: the caller applies them with a
/// bind remount as soon as this returns (`MS_REMOUNT | MS_BIND`, see sshfs-rs's serve.rs).
pub async fn mount(
    fs: Arc<SshFs>,
    mountpoint: &Path,
    config: &MountConfig,
) -> std::io::Result<MountHandle> {
    let mut extra: Vec<String> = Vec::new();
    if !config.subtype.is_empty() {
        extra.push(format!("subtype={}", config.subtype));
    }
    if let Some(n) = config.max_read {
        extra.push(format!("max_read={n}"));
    }
    let fs_name = if config.unprivileged {
        // fusermount3 splits its -o at commas; a backslash escapes one (as libfuse does).
        extra.extend(config.flags.words().iter().map(|w| (*w).to_owned()));
        config.fs_name.replace('\\', "\\\\").replace(',', "\\,")
    } else {
        for (on, word) in [
            (config.flags.sync, "sync"),
            (config.flags.dirsync, "dirsync"),
        ] {
            if on {
                extra.push(word.to_owned());
            }
        }
        config.fs_name.clone()
    };
    let mut options = MountOptions::default();
    options
        .fs_name(fs_name)
        .allow_other(config.allow_other || config.allow_root.is_some())
        .default_permissions(config.default_permissions)
        .read_only(config.read_only)
        .sync_read(config.sync_read)
        // With direct_io, mmap(MAP_SHARED) works too (Linux 6.6+; older kernels refuse it).
        .direct_io_allow_mmap(config.direct_io)
        // The server's own kernel clears set-user-ID and set-group-ID bits on write, chown and
        // truncate (sftp-server makes those system calls), so the kernel here need not ask for
        // the mode before each chown (a GETATTR round trip) to clear them itself.
        .handle_killpriv(true)
        // Like sshfs (libfuse 3): mounting over a non-empty directory is allowed.
        .nonempty(true);
    if !extra.is_empty() {
        options.custom_options(extra.join(","));
    }
    let session = Session::new(options);
    let fuse = FuseFs::new(fs, config);
    if config.unprivileged {
        return session.mount_with_unprivileged(fuse, mountpoint).await;
    }
    session.mount(fuse, mountpoint).await
}
