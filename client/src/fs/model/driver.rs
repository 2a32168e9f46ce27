//! Runs a planned step on [`SshFs`] the way the kernel would, and returns what the program
//! sees.
//!
//! The driver is the kernel's part: it walks paths with LOOKUP (and READLINK for symlinks),
//! does the checks the VFS makes before a request reaches the filesystem (EEXIST for a name
//! that exists, EISDIR/ENOTDIR by the types it knows, EINVAL/ENOTEMPTY for a rename into
//! itself, EBADF for the wrong access mode, a rename between two names of one inode doing
//! nothing), keeps each open file's `fh` and position, and the size it knows of each inode
//! (`i_size`: from every attribute answer and every write), which cuts reads through the page
//! cache and sets an O_APPEND write's offset. A close is FLUSH then RELEASE; fstat is GETATTR
//! without a handle, lseek(SEEK_END) GETATTR with one; a copy the server cannot make is done
//! with READ and WRITE, as the kernel's splice fallback. FORGET only comes with
//! [`Op::DropCaches`].

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::sync::{Arc, Mutex, MutexGuard};

use fuse3::raw::reply::FileAttr;
use fuse3::{FileType, SetAttr, Timestamp};
use futures_util::future::{BoxFuture, join_all};

use super::check::{AttrView, Kind, Outcome};
use super::ops::{At, Op, pattern};
use super::posix::{ESCAPE, FdId, MAX_LINKS, Plan, Planned, UMASK};
use crate::fs::{FsError, SshFs};

/// The mount root's inode.
const ROOT: u64 = 1;
/// The kernel's page size.
const PAGE: u64 = 4096;

/// A file the kernel holds open.
#[derive(Clone, Debug)]
struct KFile {
    fh: u64,
    ino: u64,
    read: bool,
    write: bool,
    append: bool,
    pos: u64,
}

#[derive(Default)]
struct Kernel {
    files: BTreeMap<FdId, KFile>,
    /// What the kernel knows of each inode: its size and type.
    size: HashMap<u64, u64>,
    kind: HashMap<u64, Kind>,
    /// LOOKUP references held, by inode.
    refs: HashMap<u64, u64>,
    /// FUSE's `attr_version`: a clock, and when each inode last changed by it.
    clock: u64,
    changed: HashMap<u64, u64>,
    /// Size changes (SETATTR) on their way, by inode.
    unstable: HashMap<u64, u32>,
    /// The filesystem answered ENOSYS to a copy: the kernel never asks again.
    no_copy: bool,
}

/// A path walked with LOOKUP.
enum KWalk {
    Found {
        /// The directories from the root to the parent, both included.
        chain: Vec<u64>,
        name: String,
        attr: FileAttr,
    },
    Missing {
        chain: Vec<u64>,
        name: String,
    },
}

/// The kernel over one [`SshFs`].
pub struct Driver {
    fs: Arc<SshFs>,
    kernel: Mutex<Kernel>,
}

type R<T> = Result<T, i32>;

fn errno(e: FsError) -> i32 {
    e.errno
}

fn kind(attr: &FileAttr) -> Kind {
    match attr.kind {
        FileType::Directory => Kind::Dir,
        FileType::Symlink => Kind::Symlink,
        _ => Kind::File,
    }
}

/// What a program sees of `attr`.
pub fn view(attr: &FileAttr) -> AttrView {
    AttrView {
        kind: kind(attr),
        perm: Some(u32::from(attr.perm)),
        size: Some(attr.size),
        nlink: Some(attr.nlink),
        mtime: Some(attr.mtime.sec),
    }
}

impl Driver {
    /// A kernel that has looked nothing up yet.
    pub fn new(fs: Arc<SshFs>) -> Driver {
        let kernel = Kernel {
            kind: HashMap::from([(ROOT, Kind::Dir)]),
            ..Kernel::default()
        };
        Driver {
            fs,
            kernel: Mutex::new(kernel),
        }
    }

    /// The filesystem.
    pub fn fs(&self) -> &Arc<SshFs> {
        &self.fs
    }

    fn k(&self) -> MutexGuard<'_, Kernel> {
        self.kernel.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a planned step.
    pub async fn run(&self, planned: &Planned) -> Outcome {
        match planned {
            Planned::Skip => Outcome::Skipped,
            Planned::One(plan) => self.one(plan).await,
            Planned::Join(plans) => {
                Outcome::Join(join_all(plans.iter().map(|p| self.one(p))).await)
            }
        }
    }

    async fn one(&self, plan: &Plan) -> Outcome {
        match self.op(plan).await {
            Ok(o) => o,
            Err(e) => Outcome::Err(e),
        }
    }

    /// The kernel's attribute clock now: a request's answer is newer than the changes made
    /// before it was sent (FUSE's `attr_version`).
    fn now(&self) -> u64 {
        self.k().clock
    }

    /// The attributes of an answer to a request sent at `asked`: the kernel keeps the size and
    /// type, unless the file changed through it after the request was sent (then the answer
    /// may predate the change, and FUSE drops its size).
    fn saw(&self, attr: &FileAttr, asked: u64) {
        let mut k = self.k();
        k.kind.insert(attr.ino, kind(attr));
        let changed = k.changed.get(&attr.ino).copied().unwrap_or(0);
        let unstable = k.unstable.get(&attr.ino).is_some_and(|n| *n > 0);
        if attr.kind == FileType::RegularFile && changed <= asked && !unstable {
            k.size.insert(attr.ino, attr.size);
            k.clock += 1;
            let now = k.clock;
            k.changed.insert(attr.ino, now);
        }
    }

    /// An answer that took a LOOKUP reference.
    fn referenced(&self, attr: &FileAttr, asked: u64) {
        self.saw(attr, asked);
        *self.k().refs.entry(attr.ino).or_default() += 1;
    }

    fn file(&self, plan: &Plan, i: usize) -> R<KFile> {
        let id = plan.fds.get(i).ok_or(libc::EBADF)?;
        self.k().files.get(id).cloned().ok_or(libc::EBADF)
    }

    fn set_pos(&self, plan: &Plan, pos: u64) {
        let mut k = self.k();
        if let Some(f) = plan.fds.first().and_then(|id| k.files.get_mut(id)) {
            f.pos = pos;
        }
    }

    fn size_of(&self, ino: u64) -> u64 {
        self.k().size.get(&ino).copied().unwrap_or(0)
    }

    /// The kernel changes the size it knows itself (O_TRUNC, a short read).
    fn set_size(&self, ino: u64, size: u64) {
        let mut k = self.k();
        k.size.insert(ino, size);
        k.clock += 1;
        let now = k.clock;
        k.changed.insert(ino, now);
    }

    fn grew(&self, ino: u64, end: u64) {
        let mut k = self.k();
        let size = k.size.entry(ino).or_default();
        *size = (*size).max(end);
        k.clock += 1;
        let now = k.clock;
        k.changed.insert(ino, now);
    }

    async fn lookup(&self, parent: u64, name: &str) -> Result<FileAttr, FsError> {
        let asked = self.now();
        let attr = self.fs.lookup(parent, OsStr::new(name)).await?;
        self.referenced(&attr, asked);
        Ok(attr)
    }

    async fn walk(&self, path: &str, follow_last: bool) -> R<KWalk> {
        let mut links = 0;
        self.walk_from(vec![ROOT], path.to_owned(), follow_last, &mut links)
            .await
    }

    fn walk_from<'a>(
        &'a self,
        mut chain: Vec<u64>,
        path: String,
        follow_last: bool,
        links: &'a mut u32,
    ) -> BoxFuture<'a, R<KWalk>> {
        Box::pin(async move {
            let comps: Vec<String> = path
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .map(str::to_owned)
                .collect();
            for (i, c) in comps.iter().enumerate() {
                let last = i + 1 == comps.len();
                if c == ".." {
                    if chain.len() <= 1 || last {
                        return Err(ESCAPE);
                    }
                    chain.pop();
                    continue;
                }
                let dir = chain.last().copied().unwrap_or(ROOT);
                let attr = match self.lookup(dir, c).await {
                    Ok(attr) => attr,
                    Err(e) if e.errno == libc::ENOENT && last => {
                        return Ok(KWalk::Missing {
                            chain,
                            name: c.clone(),
                        });
                    }
                    Err(e) => return Err(e.errno),
                };
                let k = kind(&attr);
                if k == Kind::Symlink && (!last || follow_last) {
                    *links += 1;
                    if *links > MAX_LINKS {
                        return Err(libc::ELOOP);
                    }
                    let target = self.fs.readlink(attr.ino).await.map_err(errno)?;
                    let target = String::from_utf8_lossy(&target).into_owned();
                    let reached = self.walk_from(chain.clone(), target, true, links).await?;
                    if last {
                        return Ok(reached);
                    }
                    match reached {
                        KWalk::Found {
                            chain: mut c, attr, ..
                        } if kind(&attr) == Kind::Dir => {
                            c.push(attr.ino);
                            chain = c;
                        }
                        KWalk::Found { .. } => return Err(libc::ENOTDIR),
                        KWalk::Missing { .. } => return Err(libc::ENOENT),
                    }
                } else if last {
                    return Ok(KWalk::Found {
                        chain,
                        name: c.clone(),
                        attr,
                    });
                } else if k == Kind::Dir {
                    chain.push(attr.ino);
                } else {
                    return Err(libc::ENOTDIR);
                }
            }
            Err(ESCAPE)
        })
    }

    /// Walks to an existing name.
    async fn found(&self, path: &str, follow: bool) -> R<(Vec<u64>, String, FileAttr)> {
        match self.walk(path, follow).await? {
            KWalk::Found { chain, name, attr } => Ok((chain, name, attr)),
            KWalk::Missing { .. } => Err(libc::ENOENT),
        }
    }

    /// Walks to a name that must not exist yet (mkdir, symlink, link's new name).
    async fn absent(&self, path: &str) -> R<(u64, String)> {
        match self.walk(path, false).await? {
            KWalk::Found { .. } => Err(libc::EEXIST),
            KWalk::Missing { chain, name } => Ok((chain.last().copied().unwrap_or(ROOT), name)),
        }
    }

    /// SETATTR. FUSE takes its answer's size whatever happened meanwhile, and while a size
    /// change is on its way ignores the size in other answers (FUSE_I_SIZE_UNSTABLE).
    async fn setattr(&self, ino: u64, fh: Option<u64>, set: SetAttr) -> R<FileAttr> {
        let sizing = set.size.is_some();
        if sizing {
            *self.k().unstable.entry(ino).or_default() += 1;
        }
        let reply = self.fs.setattr(ino, fh, &set).await;
        if sizing && let Some(n) = self.k().unstable.get_mut(&ino) {
            *n -= 1;
        }
        let reply = reply.map_err(errno)?;
        let now = self.now();
        self.saw(&reply.attr, now);
        Ok(reply.attr)
    }

    /// A read through the page cache: page-aligned READs of what lies below the size the
    /// kernel knows, the answer cut to it; a short answer makes the kernel shrink its size.
    async fn page_read(&self, f: &KFile, off: u64, len: u64) -> R<Vec<u8>> {
        let size = self.size_of(f.ino);
        if off >= size || len == 0 {
            return Ok(Vec::new());
        }
        let end = (off + len).min(size);
        let start = off / PAGE * PAGE;
        let pages_end = end.div_ceil(PAGE) * PAGE;
        let data = self
            .fs
            .read(f.fh, start, (pages_end - start) as u32)
            .await
            .map_err(errno)?;
        let got_end = start + data.len() as u64;
        let end = if got_end < end {
            // fuse_short_read: the file ends where the answer did.
            self.set_size(f.ino, got_end);
            got_end
        } else {
            end
        };
        if off >= end {
            return Ok(Vec::new());
        }
        Ok(data[(off - start) as usize..(end - start) as usize].to_vec())
    }

    async fn op(&self, plan: &Plan) -> R<Outcome> {
        match plan.op.clone() {
            Op::Open {
                path, flags, mode, ..
            } => {
                let excl = flags.creat && flags.excl;
                let walked = self.walk(path, !excl).await?;
                let bits = flags.bits();
                let (fh, ino) = match walked {
                    KWalk::Found { .. } if excl => return Err(libc::EEXIST),
                    KWalk::Found { attr, .. } => {
                        if kind(&attr) == Kind::Dir {
                            if bits & libc::O_ACCMODE != libc::O_RDONLY
                                || flags.creat
                                || flags.trunc
                            {
                                return Err(libc::EISDIR);
                            }
                            let fh = self.fs.opendir(attr.ino).await.map_err(errno)?;
                            self.fs.releasedir(fh).await.map_err(errno)?;
                            return Ok(Outcome::DirOpened);
                        }
                        let bits = bits & !(libc::O_CREAT | libc::O_EXCL);
                        let (fh, _keep) =
                            self.fs.open(attr.ino, bits as u32).await.map_err(errno)?;
                        if flags.trunc {
                            self.set_size(attr.ino, 0);
                        }
                        (fh, attr.ino)
                    }
                    KWalk::Missing { .. } if !flags.creat => return Err(libc::ENOENT),
                    KWalk::Missing { chain, name } => {
                        let parent = chain.last().copied().unwrap_or(ROOT);
                        let mode = libc::S_IFREG | (mode & 0o7777 & !UMASK);
                        let asked = self.now();
                        let (attr, fh) = self
                            .fs
                            .create(parent, OsStr::new(&name), mode, bits as u32)
                            .await
                            .map_err(errno)?;
                        self.referenced(&attr, asked);
                        (fh, attr.ino)
                    }
                };
                let file = KFile {
                    fh,
                    ino,
                    read: flags.acc != super::ops::Acc::W,
                    write: flags.acc != super::ops::Acc::R,
                    append: flags.append,
                    pos: 0,
                };
                self.k().files.insert(plan.new_fd, file);
                Ok(Outcome::Opened)
            }
            Op::Close { .. } => {
                let f = self.file(plan, 0)?;
                let flushed = self.fs.flush(f.fh).await;
                // RELEASE's error reaches no program.
                let _ = self.fs.release(f.fh).await;
                if let Some(id) = plan.fds.first() {
                    self.k().files.remove(id);
                }
                flushed.map_err(errno)?;
                Ok(Outcome::Done)
            }
            Op::Read {
                at, len, direct, ..
            } => {
                let f = self.file(plan, 0)?;
                if !f.read {
                    return Err(libc::EBADF);
                }
                let off = match at {
                    At::Pos => f.pos,
                    At::Off(o) => o,
                };
                let data = if direct {
                    self.fs.read(f.fh, off, len).await.map_err(errno)?
                } else {
                    self.page_read(&f, off, u64::from(len)).await?
                };
                if at == At::Pos {
                    self.set_pos(plan, off + data.len() as u64);
                }
                Ok(Outcome::Data(data))
            }
            Op::Write { at, len, tag, .. } => {
                let f = self.file(plan, 0)?;
                if !f.write {
                    return Err(libc::EBADF);
                }
                let off = match (f.append, at) {
                    (true, _) => self.size_of(f.ino),
                    (false, At::Pos) => f.pos,
                    (false, At::Off(o)) => o,
                };
                let n = self
                    .fs
                    .write(f.fh, off, &pattern(tag, len as usize))
                    .await
                    .map_err(errno)?;
                self.grew(f.ino, off + u64::from(n));
                if at == At::Pos {
                    self.set_pos(plan, off + u64::from(n));
                }
                Ok(Outcome::Count(u64::from(n)))
            }
            Op::MmapWrite { tag, .. } => {
                let f = self.file(plan, 0)?;
                let (start, end) = plan.range;
                let first = start / PAGE * PAGE;
                // Written back: the dirty pages, the last one cut at the file's end.
                let last = (end.div_ceil(PAGE) * PAGE).min(self.size_of(f.ino).max(end));
                // The pages were read in when the program first touched them.
                let mut pages = self
                    .fs
                    .read(f.fh, first, (last.div_ceil(PAGE) * PAGE - first) as u32)
                    .await
                    .map_err(errno)?;
                pages.resize((last - first) as usize, 0);
                let bytes = pattern(tag, (end - start) as usize);
                pages[(start - first) as usize..(end - first) as usize].copy_from_slice(&bytes);
                self.fs.write(f.fh, first, &pages).await.map_err(errno)?;
                self.grew(f.ino, last);
                Ok(Outcome::Done)
            }
            Op::SeekEnd { .. } => {
                let f = self.file(plan, 0)?;
                let asked = self.now();
                let attr = self.fs.getattr(f.ino, Some(f.fh)).await.map_err(errno)?;
                self.saw(&attr, asked);
                self.set_pos(plan, attr.size);
                Ok(Outcome::Count(attr.size))
            }
            Op::Fstat { .. } => {
                let f = self.file(plan, 0)?;
                let asked = self.now();
                let attr = self.fs.getattr(f.ino, None).await.map_err(errno)?;
                self.saw(&attr, asked);
                Ok(Outcome::Attr(view(&attr)))
            }
            Op::Ftruncate { size, .. } => {
                let f = self.file(plan, 0)?;
                if !f.write {
                    return Err(libc::EINVAL);
                }
                let set = SetAttr {
                    size: Some(size),
                    ..SetAttr::default()
                };
                self.setattr(f.ino, Some(f.fh), set).await?;
                Ok(Outcome::Done)
            }
            Op::Fsync { .. } => {
                let f = self.file(plan, 0)?;
                self.fs.fsync(f.fh).await.map_err(errno)?;
                Ok(Outcome::Done)
            }
            Op::Fchmod { mode, .. } => {
                let f = self.file(plan, 0)?;
                let set = SetAttr {
                    mode: Some(libc::S_IFREG | (mode & 0o7777)),
                    ..SetAttr::default()
                };
                let attr = self.setattr(f.ino, None, set).await?;
                Ok(Outcome::Attr(view(&attr)))
            }
            Op::Copy {
                off_in,
                off_out,
                len,
                ..
            } => self.copy(plan, off_in, off_out, len).await,
            Op::Stat { path, follow } => {
                let (_, _, attr) = self.found(path, follow).await?;
                let asked = self.now();
                let got = self.fs.getattr(attr.ino, None).await.map_err(errno)?;
                self.saw(&got, asked);
                Ok(Outcome::Stat(view(&attr), view(&got)))
            }
            Op::Truncate { path, size } => {
                let (_, _, attr) = self.found(path, true).await?;
                if kind(&attr) == Kind::Dir {
                    return Err(libc::EISDIR);
                }
                let set = SetAttr {
                    size: Some(size),
                    ..SetAttr::default()
                };
                self.setattr(attr.ino, None, set).await?;
                Ok(Outcome::Done)
            }
            Op::Chmod { path, mode } => {
                let (_, _, attr) = self.found(path, true).await?;
                let ty = match kind(&attr) {
                    Kind::Dir => libc::S_IFDIR,
                    Kind::Symlink => libc::S_IFLNK,
                    Kind::File => libc::S_IFREG,
                };
                let set = SetAttr {
                    mode: Some(ty | (mode & 0o7777)),
                    ..SetAttr::default()
                };
                self.setattr(attr.ino, None, set).await?;
                Ok(Outcome::Done)
            }
            Op::Utimens { path, atime, mtime } => {
                let (_, _, attr) = self.found(path, true).await?;
                let set = SetAttr {
                    atime: Some(Timestamp::new(atime, 0)),
                    mtime: Some(Timestamp::new(mtime, 0)),
                    ..SetAttr::default()
                };
                self.setattr(attr.ino, None, set).await?;
                Ok(Outcome::Done)
            }
            Op::Unlink { path } => {
                let (chain, name, attr) = self.found(path, false).await?;
                if kind(&attr) == Kind::Dir {
                    return Err(libc::EISDIR);
                }
                let parent = chain.last().copied().unwrap_or(ROOT);
                self.fs
                    .unlink(parent, OsStr::new(&name))
                    .await
                    .map_err(errno)?;
                Ok(Outcome::Done)
            }
            Op::Rmdir { path } => {
                let (chain, name, attr) = self.found(path, false).await?;
                if kind(&attr) != Kind::Dir {
                    return Err(libc::ENOTDIR);
                }
                let parent = chain.last().copied().unwrap_or(ROOT);
                self.fs
                    .rmdir(parent, OsStr::new(&name))
                    .await
                    .map_err(errno)?;
                Ok(Outcome::Done)
            }
            Op::Mkdir { path, mode } => {
                let (parent, name) = self.absent(path).await?;
                let mode = libc::S_IFDIR | (mode & 0o7777 & !UMASK);
                let asked = self.now();
                let attr = self
                    .fs
                    .mkdir(parent, OsStr::new(&name), mode)
                    .await
                    .map_err(errno)?;
                self.referenced(&attr, asked);
                Ok(Outcome::Done)
            }
            Op::Symlink { target, path } => {
                let (parent, name) = self.absent(path).await?;
                let asked = self.now();
                let attr = self
                    .fs
                    .symlink(parent, OsStr::new(&name), OsStr::new(target))
                    .await
                    .map_err(errno)?;
                self.referenced(&attr, asked);
                Ok(Outcome::Done)
            }
            Op::Readlink { path } => {
                let (_, _, attr) = self.found(path, false).await?;
                if kind(&attr) != Kind::Symlink {
                    return Err(libc::EINVAL);
                }
                let target = self.fs.readlink(attr.ino).await.map_err(errno)?;
                Ok(Outcome::Target(
                    String::from_utf8_lossy(&target).into_owned(),
                ))
            }
            Op::Link { from, to } => {
                let (_, _, attr) = self.found(from, false).await?;
                let (parent, name) = self.absent(to).await?;
                if kind(&attr) == Kind::Dir {
                    return Err(libc::EPERM);
                }
                let asked = self.now();
                let new = self
                    .fs
                    .link(attr.ino, parent, OsStr::new(&name))
                    .await
                    .map_err(errno)?;
                self.referenced(&new, asked);
                Ok(Outcome::Done)
            }
            Op::Rename {
                from,
                to,
                noreplace,
            } => self.rename(from, to, noreplace).await,
            Op::Readdir { path } => {
                let (_, _, attr) = self.found(path, true).await?;
                if kind(&attr) != Kind::Dir {
                    return Err(libc::ENOTDIR);
                }
                self.readdir(attr.ino).await
            }
            Op::DropCaches => {
                let held: Vec<u64> = self.k().files.values().map(|f| f.ino).collect();
                let forget: Vec<(u64, u64)> = {
                    let k = self.k();
                    k.refs
                        .iter()
                        .filter(|(ino, _)| {
                            !held.contains(ino) && k.kind.get(ino) != Some(&Kind::Dir)
                        })
                        .map(|(ino, n)| (*ino, *n))
                        .collect()
                };
                for (ino, n) in forget {
                    self.fs.forget(ino, n);
                    let mut k = self.k();
                    k.refs.remove(&ino);
                    k.size.remove(&ino);
                    k.kind.remove(&ino);
                }
                Ok(Outcome::Done)
            }
            Op::Join(_) => Ok(Outcome::Skipped),
        }
    }

    async fn copy(&self, plan: &Plan, off_in: u64, off_out: u64, len: u64) -> R<Outcome> {
        let (i, o) = (self.file(plan, 0)?, self.file(plan, 1)?);
        if !i.read || !o.write || o.append {
            return Err(libc::EBADF);
        }
        let size = self.size_of(i.ino);
        let count = len.min(size.saturating_sub(off_in));
        if i.ino == o.ino && off_out + count > off_in && off_out < off_in + count {
            return Err(libc::EINVAL);
        }
        if count == 0 {
            return Ok(Outcome::Count(0));
        }
        if !self.k().no_copy {
            match self.fs.copy_range(i.fh, off_in, o.fh, off_out, count).await {
                Ok(n) => {
                    self.grew(o.ino, off_out + n);
                    return Ok(Outcome::Count(n));
                }
                Err(e) if e.errno == libc::ENOSYS => self.k().no_copy = true,
                Err(e) if e.errno == libc::EOPNOTSUPP => {}
                Err(e) => return Err(e.errno),
            }
        }
        // The kernel's own copy: through the page cache, then WRITE.
        let data = self.page_read(&i, off_in, count).await?;
        if data.is_empty() {
            return Ok(Outcome::Count(0));
        }
        let n = self.fs.write(o.fh, off_out, &data).await.map_err(errno)?;
        self.grew(o.ino, off_out + u64::from(n));
        Ok(Outcome::Count(u64::from(n)))
    }

    async fn rename(&self, from: &str, to: &str, noreplace: bool) -> R<Outcome> {
        let (fchain, fname, fattr) = self.found(from, false).await?;
        let (tchain, tname, target) = match self.walk(to, false).await? {
            KWalk::Found { chain, name, attr } => (chain, name, Some(attr)),
            KWalk::Missing { chain, name } => (chain, name, None),
        };
        if noreplace && target.is_some() {
            return Err(libc::EEXIST);
        }
        if tchain.contains(&fattr.ino) {
            return Err(libc::EINVAL);
        }
        if let Some(t) = &target {
            if fchain.contains(&t.ino) {
                return Err(libc::ENOTEMPTY);
            }
            if t.ino == fattr.ino {
                return Ok(Outcome::Done);
            }
            match (kind(&fattr) == Kind::Dir, kind(t) == Kind::Dir) {
                (true, false) => return Err(libc::ENOTDIR),
                (false, true) => return Err(libc::EISDIR),
                _ => {}
            }
        }
        let flags = if noreplace { libc::RENAME_NOREPLACE } else { 0 };
        let (fp, tp) = (
            fchain.last().copied().unwrap_or(ROOT),
            tchain.last().copied().unwrap_or(ROOT),
        );
        self.fs
            .rename(fp, OsStr::new(&fname), tp, OsStr::new(&tname), flags)
            .await
            .map_err(errno)?;
        Ok(Outcome::Done)
    }

    async fn readdir(&self, ino: u64) -> R<Outcome> {
        let fh = self.fs.opendir(ino).await.map_err(errno)?;
        let mut names = Vec::new();
        let mut offset = 0;
        let listed: R<()> = async {
            loop {
                let asked = self.now();
                let items = self.fs.readdir(fh, offset).await.map_err(errno)?;
                let Some(last) = items.last() else {
                    return Ok(());
                };
                offset = last.next_offset;
                for item in &items {
                    if item.name == "." || item.name == ".." {
                        continue;
                    }
                    // READDIRPLUS: every entry's attributes, with a reference.
                    let attr = self.fs.dir_entry(ino, item).map_err(errno)?;
                    self.referenced(&attr, asked);
                    names.push((item.name.clone(), view(&attr)));
                }
            }
        }
        .await;
        let released = self.fs.releasedir(fh).await;
        listed?;
        released.map_err(errno)?;
        names.sort();
        Ok(Outcome::Names(names))
    }
}
