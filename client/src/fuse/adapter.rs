//! [`FuseFs`]: fuse3's `Filesystem`, one short method per kernel request. Each names its
//! operation, runs the [`SshFs`] method of the same name as a request ([`super::request`]),
//! and converts the result into a reply ([`super::reply`]).

use std::ffi::OsStr;
use std::num::NonZeroU32;
use std::sync::Arc;

use fuse3::Result as FuseResult;
use fuse3::raw::prelude::*;
use futures_util::stream::{self, Stream};

use super::config::MountConfig;
use super::interrupts::OnInterrupt;
use super::notify;
use super::reply::{self, Replies};
use super::request::{Runner, errno};
use crate::fs::SshFs;
use crate::fs::kernel::{Entry, KernelTerms, Op};

/// Largest WRITE the kernel may send us (it caps this at its max_pages, 1 MiB by default).
const MAX_WRITE: u32 = 1024 * 1024;

/// The fuse3 filesystem: [`SshFs`] plus the FUSE-only concerns.
pub struct FuseFs {
    fs: Arc<SshFs>,
    run: Runner,
    replies: Replies,
    max_write: u32,
    max_background: Option<u16>,
}

impl FuseFs {
    /// Wraps the filesystem, with the FUSE-side settings of `config` (TTLs, page cache,
    /// request sizes); tells the fs layer its kernel terms (`allow_root`, negative entries).
    pub fn new(fs: Arc<SshFs>, config: &MountConfig) -> Self {
        fs.set_kernel_terms(KernelTerms {
            // With allow_other as well, allow_root still decides (as libfuse 3).
            allow_root: config.allow_root,
            negative_entries: !config.ttls.negative.is_zero(),
            ttls: config.ttls,
        });
        Self {
            run: Runner::new(Arc::clone(&fs)),
            fs,
            replies: Replies {
                negative: config.ttls.negative,
                direct_io: config.direct_io,
            },
            max_write: config.max_write.map_or(MAX_WRITE, |w| w.min(MAX_WRITE)),
            max_background: config.max_background,
        }
    }

    /// RENAME and RENAME2: `flags` are RENAME2's (0 for RENAME).
    async fn rename_with(
        &self,
        req: Request,
        (parent, name): (u64, &OsStr),
        (new_parent, new_name): (u64, &OsStr),
        flags: u32,
    ) -> FuseResult<()> {
        let rename = self.fs.rename(parent, name, new_parent, new_name, flags);
        self.run
            .serve_named(&req, Op::Rename, parent, Some(name), rename)
            .await
            .map_err(|e| self.run.too_long_or(e, new_parent, new_name))
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
        notify::spawn_invalidations(&self.fs, notify);
    }

    async fn destroy(&self, _req: Request) {}

    async fn lookup(&self, req: Request, parent: u64, name: &OsStr) -> FuseResult<ReplyEntry> {
        let lookup = self.fs.lookup_entry(parent, name);
        let entry = self
            .run
            .serve_named(&req, Op::Lookup, parent, Some(name), lookup)
            .await?;
        Ok(match entry {
            Entry::Found(attr) => self.replies.entry(attr, self.fs.lifetimes(attr.ino)),
            Entry::Negative => self.replies.negative(self.fs.block_unit()),
        })
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
        let getattr = self.fs.getattr(inode, fh);
        let attr = self.run.serve(&req, Op::Getattr, inode, getattr).await?;
        Ok(self.replies.attr(attr, self.fs.lifetimes(inode)))
    }

    async fn setattr(
        &self,
        req: Request,
        inode: u64,
        fh: Option<u64>,
        set_attr: SetAttr,
    ) -> FuseResult<ReplyAttr> {
        let setattr = self.fs.setattr(inode, fh, &set_attr);
        let reply = self.run.serve(&req, Op::Setattr, inode, setattr).await?;
        Ok(self.replies.setattr(reply, self.fs.lifetimes(inode)))
    }

    async fn readlink(&self, req: Request, inode: u64) -> FuseResult<ReplyData> {
        let readlink = self.fs.readlink(inode);
        let target = self.run.serve(&req, Op::Readlink, inode, readlink).await?;
        Ok(reply::data(target))
    }

    async fn symlink(
        &self,
        req: Request,
        parent: u64,
        name: &OsStr,
        link: &OsStr,
    ) -> FuseResult<ReplyEntry> {
        let symlink = self.fs.symlink(parent, name, link);
        let attr = self
            .run
            .serve_named(&req, Op::Symlink, parent, Some(name), symlink)
            .await?;
        Ok(self.replies.entry(attr, self.fs.lifetimes(attr.ino)))
    }

    async fn mknod(
        &self,
        req: Request,
        parent: u64,
        name: &OsStr,
        mode: u32,
        _rdev: u32,
    ) -> FuseResult<ReplyEntry> {
        let mknod = self.fs.mknod(parent, name, mode);
        let attr = self
            .run
            .serve_named(&req, Op::Mknod, parent, Some(name), mknod)
            .await?;
        Ok(self.replies.entry(attr, self.fs.lifetimes(attr.ino)))
    }

    async fn mkdir(
        &self,
        req: Request,
        parent: u64,
        name: &OsStr,
        mode: u32,
        _umask: u32,
    ) -> FuseResult<ReplyEntry> {
        let mkdir = self.fs.mkdir(parent, name, mode);
        let attr = self
            .run
            .serve_named(&req, Op::Mkdir, parent, Some(name), mkdir)
            .await?;
        Ok(self.replies.entry(attr, self.fs.lifetimes(attr.ino)))
    }

    async fn unlink(&self, req: Request, parent: u64, name: &OsStr) -> FuseResult<()> {
        let unlink = self.fs.unlink(parent, name);
        self.run
            .serve_named(&req, Op::Unlink, parent, Some(name), unlink)
            .await
    }

    async fn rmdir(&self, req: Request, parent: u64, name: &OsStr) -> FuseResult<()> {
        let rmdir = self.fs.rmdir(parent, name);
        self.run
            .serve_named(&req, Op::Rmdir, parent, Some(name), rmdir)
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
        self.rename_with(req, (parent, name), (new_parent, new_name), 0)
            .await
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
        self.rename_with(req, (parent, name), (new_parent, new_name), flags)
            .await
    }

    async fn link(
        &self,
        req: Request,
        inode: u64,
        new_parent: u64,
        new_name: &OsStr,
    ) -> FuseResult<ReplyEntry> {
        let link = self.fs.link(inode, new_parent, new_name);
        let attr = self
            .run
            .serve(&req, Op::Link, inode, link)
            .await
            .map_err(|e| self.run.too_long_or(e, new_parent, new_name))?;
        Ok(self.replies.entry(attr, self.fs.lifetimes(attr.ino)))
    }

    async fn open(&self, req: Request, inode: u64, flags: u32) -> FuseResult<ReplyOpen> {
        let open = self.fs.open_or_undo(inode, flags);
        let opened = self.run.serve(&req, Op::Open, inode, open).await?;
        Ok(self.replies.open(opened))
    }

    async fn create(
        &self,
        req: Request,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: u32,
    ) -> FuseResult<ReplyCreated> {
        let create = self.fs.create_or_undo(parent, name, mode, flags);
        let created = self
            .run
            .serve_named(&req, Op::Create, parent, Some(name), create)
            .await?;
        let life = self.fs.lifetimes(created.0.ino);
        Ok(self.replies.created(created, life))
    }

    async fn read(
        &self,
        req: Request,
        inode: u64,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> FuseResult<ReplyData> {
        let read = self.fs.read(fh, offset, size);
        let data = self.run.serve(&req, Op::Read, inode, read).await?;
        Ok(reply::data(data))
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
        let write = self.fs.write(fh, offset, data);
        let written = self.run.serve(&req, Op::Write, inode, write).await?;
        Ok(ReplyWrite { written })
    }

    async fn statfs(&self, req: Request, inode: u64) -> FuseResult<ReplyStatFs> {
        let s = self
            .run
            .serve(&req, Op::Statfs, inode, self.fs.statfs())
            .await?;
        Ok(reply::statfs(s))
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
        let release = self.fs.release(fh);
        let finish = OnInterrupt::Finish;
        self.run
            .run_request(&req, Op::Release, inode, None, finish, release)
            .await
    }

    async fn fsync(&self, req: Request, inode: u64, fh: u64, _datasync: bool) -> FuseResult<()> {
        self.run
            .serve(&req, Op::Fsync, inode, self.fs.fsync(fh))
            .await
    }

    async fn flush(&self, req: Request, inode: u64, fh: u64, _lock_owner: u64) -> FuseResult<()> {
        self.run
            .serve(&req, Op::Flush, inode, self.fs.flush(fh))
            .await
    }

    async fn opendir(&self, req: Request, inode: u64, _flags: u32) -> FuseResult<ReplyOpen> {
        let opendir = self.fs.opendir_or_undo(inode);
        let opened = self.run.serve(&req, Op::Opendir, inode, opendir).await?;
        Ok(reply::opendir(opened))
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
        let readdir = self.fs.readdir(fh, offset);
        let items = self.run.serve(&req, Op::Readdir, parent, readdir).await?;
        let entries: Vec<FuseResult<DirectoryEntry>> = items
            .iter()
            .map(|item| Ok(reply::dir_entry(self.fs.ino_hint(parent, &item.name), item)))
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
        let readdir = self.fs.readdir(fh, offset);
        let items = self
            .run
            .serve(&req, Op::Readdirplus, parent, readdir)
            .await?;
        // Pulled one at a time: the fs layer counts an entry's reference as delivered only
        // when the next one is pulled (see `crate::fs::plus`).
        let entries = self.fs.plus_entries(parent, items).map(|entry| {
            entry
                .map(|entry| {
                    let life = self.fs.lifetimes(entry.1.ino);
                    self.replies.plus_entry(entry, life)
                })
                .map_err(errno)
        });
        Ok(ReplyDirectoryPlus {
            entries: stream::iter(entries),
        })
    }

    async fn releasedir(&self, req: Request, inode: u64, fh: u64, _flags: u32) -> FuseResult<()> {
        let releasedir = self.fs.releasedir(fh);
        let finish = OnInterrupt::Finish;
        self.run
            .run_request(&req, Op::Releasedir, inode, None, finish, releasedir)
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
        let copied = self.run.serve(&req, Op::CopyFileRange, inode, copy).await?;
        Ok(ReplyCopyFileRange { copied })
    }

    async fn interrupt(&self, _req: Request, unique: u64) -> FuseResult<()> {
        self.run.interrupt(unique).await
    }
}
