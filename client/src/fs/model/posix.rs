//! A plain POSIX filesystem, as Linux gives it on a local disk: inodes with names,
//! directories, file contents, modes, link counts and symlinks; open file descriptions of
//! several processes with their offsets and flags; files unlinked while open. Each operation
//! answers with what a program would see ([`Expect`]), errno included, and changes the state.
//!
//! Path walks follow the kernel's rules (symlinks in the middle of a path always, the last
//! component only where the call does; `..` goes to the parent; 40 links at most), because
//! the model test's driver walks paths the same way with LOOKUP and READLINK.
//!
//! Where SFTP cannot do what a local filesystem does, [`Caps`] says so and the expectation
//! follows the documented behaviour (docs/SEMANTICS.md): no link counts of directories, no
//! times but those a program set. An open file whose server handle died with a cut and was not
//! reopened since, and whose file has no name left, cannot be reopened (SEMANTICS.md: `EIO`):
//! the model calls it [`Model::doubtful`], and the test lets its operations fail with EIO.

use std::collections::BTreeMap;

use super::check::{AttrView, Expect, Kind, Outcome};
use super::ops::{Acc, At, Op, pattern};
use super::server::{Caps, Entry};

/// A model inode number.
pub type Ino = u64;
/// A model open file description (the same number in the driver).
pub type FdId = u64;

/// The root directory's inode.
pub const ROOT_INO: Ino = 1;
/// The umask of the simulated processes.
pub const UMASK: u32 = 0o022;
/// Symlinks one path walk follows at most (Linux's MAXSYMLINKS).
pub const MAX_LINKS: u32 = 40;
/// Not an errno: the walk left the mount through `..` at its root (the op is left out).
pub const ESCAPE: i32 = -1;

#[derive(Clone, Debug)]
enum Body {
    File(Vec<u8>),
    Dir(BTreeMap<String, Ino>),
    Link(String),
}

#[derive(Clone, Debug)]
struct Node {
    body: Body,
    perm: u32,
    /// Names (directories: 2 + subdirectories).
    nlink: u32,
    /// A directory's parent.
    parent: Ino,
    /// Set by utimens and not changed since.
    mtime: Option<i64>,
    /// It had several names at some point.
    was_shared: bool,
}

/// An open file description.
#[derive(Clone, Debug)]
pub struct Fd {
    /// The process holding it.
    pub p: usize,
    /// Its inode.
    pub ino: Ino,
    /// Opened for reading.
    pub read: bool,
    /// Opened for writing.
    pub write: bool,
    /// O_APPEND.
    pub append: bool,
    /// The file position.
    pub pos: u64,
    /// The link was cut while it was open, and no operation since certainly reopened its
    /// server handle (see [`Model::doubtful`]).
    pub stale: bool,
}

/// A path walked to its end.
#[derive(Clone, Debug)]
pub enum Walked {
    /// The last component exists.
    Found {
        /// Its directory.
        parent: Ino,
        /// Its name there.
        name: String,
        /// Its inode.
        ino: Ino,
    },
    /// The last component does not exist (its directory does).
    Missing {
        /// The directory.
        parent: Ino,
        /// The name.
        name: String,
    },
}

/// An operation with its open files chosen.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The operation.
    pub op: Op,
    /// The open files it names, in the order the op names them.
    pub fds: Vec<FdId>,
    /// The number an open gives its new file.
    pub new_fd: FdId,
    /// For [`Op::MmapWrite`]: the range it stores to, cut to the file's size.
    pub range: (u64, u64),
}

/// What an operation of a join reads and changes.
#[derive(Clone, Debug, Default)]
struct Footprint {
    reads: Vec<Ino>,
    writes: Vec<Ino>,
    fds: Vec<FdId>,
}

impl Footprint {
    /// Whether the two may give another outcome run in another order.
    fn clashes(&self, other: &Footprint) -> bool {
        let meets = |a: &[Ino], b: &[Ino]| a.iter().any(|i| b.contains(i));
        self.fds.iter().any(|f| other.fds.contains(f))
            || meets(&self.writes, &other.writes)
            || meets(&self.writes, &other.reads)
            || meets(&other.writes, &self.reads)
    }
}

/// What a step runs.
#[derive(Clone, Debug)]
pub enum Planned {
    /// Nothing (see [`Outcome::Skipped`]).
    Skip,
    /// One operation.
    One(Plan),
    /// Operations at once.
    Join(Vec<Plan>),
}

/// The filesystem.
#[derive(Clone, Debug)]
pub struct Model {
    caps: Caps,
    nodes: BTreeMap<Ino, Node>,
    fds: BTreeMap<FdId, Fd>,
    next_ino: Ino,
    next_fd: FdId,
    /// The kernel forgot its inodes ([`Op::DropCaches`]): SEMANTICS.md, "Hard links": the
    /// names of a file with several links are then looked up apart, and a plain STAT carries
    /// no link count, so each may show 1 until a listing tells the count again.
    links_forgotten: bool,
    /// See [`super::KnownBugs::nlink_after_forget`].
    lenient_nlink: bool,
}

impl Model {
    /// An empty filesystem on a server that can do `caps`; `lenient_nlink`: see
    /// [`super::KnownBugs::nlink_after_forget`].
    pub fn new(caps: Caps, lenient_nlink: bool) -> Model {
        let root = Node {
            body: Body::Dir(BTreeMap::new()),
            perm: 0o755,
            nlink: 2,
            parent: ROOT_INO,
            mtime: None,
            was_shared: false,
        };
        Model {
            caps,
            nodes: BTreeMap::from([(ROOT_INO, root)]),
            fds: BTreeMap::new(),
            next_ino: ROOT_INO + 1,
            next_fd: 1,
            links_forgotten: false,
            lenient_nlink,
        }
    }

    /// The open files, by number.
    pub fn fds(&self) -> &BTreeMap<FdId, Fd> {
        &self.fds
    }

    fn node(&self, ino: Ino) -> Option<&Node> {
        self.nodes.get(&ino)
    }

    fn kind(&self, ino: Ino) -> Option<Kind> {
        self.node(ino).map(|n| match n.body {
            Body::File(_) => Kind::File,
            Body::Dir(_) => Kind::Dir,
            Body::Link(_) => Kind::Symlink,
        })
    }

    fn entries(&self, dir: Ino) -> Result<&BTreeMap<String, Ino>, i32> {
        match self.node(dir).map(|n| &n.body) {
            Some(Body::Dir(e)) => Ok(e),
            _ => Err(libc::ENOTDIR),
        }
    }

    fn entries_mut(&mut self, dir: Ino) -> Option<&mut BTreeMap<String, Ino>> {
        match self.nodes.get_mut(&dir).map(|n| &mut n.body) {
            Some(Body::Dir(e)) => Some(e),
            _ => None,
        }
    }

    fn data(&self, ino: Ino) -> &[u8] {
        match self.node(ino).map(|n| &n.body) {
            Some(Body::File(d)) => d,
            _ => &[],
        }
    }

    fn data_mut(&mut self, ino: Ino) -> Option<&mut Vec<u8>> {
        match self.nodes.get_mut(&ino).map(|n| &mut n.body) {
            Some(Body::File(d)) => Some(d),
            _ => None,
        }
    }

    /// Walks `path` from the root (see the module doc).
    pub fn walk(&self, path: &str, follow_last: bool) -> Result<Walked, i32> {
        self.walk_from(ROOT_INO, path, follow_last, &mut 0)
    }

    fn walk_from(
        &self,
        start: Ino,
        path: &str,
        follow_last: bool,
        links: &mut u32,
    ) -> Result<Walked, i32> {
        let comps: Vec<&str> = path
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        let mut dir = start;
        for (i, c) in comps.iter().enumerate() {
            let last = i + 1 == comps.len();
            if *c == ".." {
                if dir == ROOT_INO {
                    return Err(ESCAPE);
                }
                dir = self.node(dir).map_or(ROOT_INO, |n| n.parent);
                if last {
                    // Not generated: a path ending in "..".
                    return Err(ESCAPE);
                }
                continue;
            }
            let Some(&ino) = self.entries(dir)?.get(*c) else {
                return if last {
                    Ok(Walked::Missing {
                        parent: dir,
                        name: (*c).to_owned(),
                    })
                } else {
                    Err(libc::ENOENT)
                };
            };
            let kind = self.kind(ino);
            if kind == Some(Kind::Symlink) && (!last || follow_last) {
                *links += 1;
                if *links > MAX_LINKS {
                    return Err(libc::ELOOP);
                }
                let target = match self.node(ino).map(|n| &n.body) {
                    Some(Body::Link(t)) => t.clone(),
                    _ => String::new(),
                };
                let reached = self.walk_from(dir, &target, true, links)?;
                if last {
                    return Ok(reached);
                }
                match reached {
                    Walked::Found { ino, .. } if self.kind(ino) == Some(Kind::Dir) => dir = ino,
                    Walked::Found { .. } => return Err(libc::ENOTDIR),
                    Walked::Missing { .. } => return Err(libc::ENOENT),
                }
            } else if last {
                return Ok(Walked::Found {
                    parent: dir,
                    name: (*c).to_owned(),
                    ino,
                });
            } else if kind == Some(Kind::Dir) {
                dir = ino;
            } else {
                return Err(libc::ENOTDIR);
            }
        }
        // An empty path: not generated.
        Err(ESCAPE)
    }

    /// What a program sees of `ino`'s attributes (`None` where SFTP or the model cannot say).
    pub fn view(&self, ino: Ino) -> AttrView {
        let Some(n) = self.node(ino) else {
            return AttrView {
                kind: Kind::File,
                perm: None,
                size: None,
                nlink: None,
                mtime: None,
            };
        };
        let kind = self.kind(ino).unwrap_or(Kind::File);
        // (With `lenient_nlink`, a known bug: a count once above 1 may stay too high after the
        // kernel forgot the inodes.)
        let shown_nlink =
            if (n.nlink > 1 || n.was_shared && self.lenient_nlink) && self.links_forgotten {
                None
            } else {
                Some(n.nlink)
            };
        let (size, nlink) = match &n.body {
            Body::File(d) => (Some(d.len() as u64), shown_nlink),
            Body::Link(t) => (
                self.caps.symlink_size.then_some(t.len() as u64),
                shown_nlink,
            ),
            Body::Dir(_) => (None, None),
        };
        AttrView {
            kind,
            // A symlink's mode is the server's (0777 on Linux), never set.
            perm: (self.caps.modes && kind != Kind::Symlink).then_some(n.perm),
            size,
            nlink,
            mtime: if self.caps.times { n.mtime } else { None },
        }
    }

    /// The open file process `p` names by slot `slot`: its `slot % n`-th, by age. A process
    /// that holds none stands for the `p % m`-th of the `m` that hold some (so few steps are
    /// left out).
    fn pick(&self, p: usize, slot: usize) -> Option<FdId> {
        let of = |p: usize| -> Vec<FdId> {
            self.fds
                .iter()
                .filter(|(_, f)| f.p == p)
                .map(|(id, _)| *id)
                .collect()
        };
        let mut mine = of(p);
        if mine.is_empty() {
            let mut holders: Vec<usize> = self.fds.values().map(|f| f.p).collect();
            holders.sort_unstable();
            holders.dedup();
            mine = of(*holders.get(p % holders.len().max(1))?);
        }
        (!mine.is_empty()).then(|| mine[slot % mine.len()])
    }

    /// Chooses the open files `op` names and leaves out what cannot run (see [`Planned`]).
    pub fn plan(&self, op: &Op) -> Planned {
        match op {
            Op::Join(ops) => {
                let mut plans: Vec<Plan> = Vec::new();
                let mut used: Vec<Footprint> = Vec::new();
                for op in &ops.0 {
                    let Planned::One(mut plan) = self.plan(op) else {
                        continue;
                    };
                    let Some(mine) = self.footprint(&plan) else {
                        continue;
                    };
                    if !used.iter().any(|other| mine.clashes(other)) {
                        // Each open of the join numbers its file on.
                        plan.new_fd = self.next_fd + plans.len() as u64;
                        used.push(mine);
                        plans.push(plan);
                    }
                }
                match plans.len() {
                    0 => Planned::Skip,
                    1 => plans.pop().map_or(Planned::Skip, Planned::One),
                    _ => Planned::Join(plans),
                }
            }
            _ => match self.plan_one(op) {
                Some(plan) => Planned::One(plan),
                None => Planned::Skip,
            },
        }
    }

    /// What an operation of a join reads and changes; `None`: it may not run in a join (its
    /// outcome could depend on the order).
    fn footprint(&self, plan: &Plan) -> Option<Footprint> {
        if plan.fds.iter().any(|f| self.doubtful(*f)) {
            return None;
        }
        let ino_of = |i: usize| plan.fds.get(i).and_then(|f| self.fds.get(f)).map(|f| f.ino);
        let mut fp = Footprint {
            fds: plan.fds.clone(),
            ..Footprint::default()
        };
        // A path's directories are read; its directory and its target are changed (`change`).
        let path = |fp: &mut Footprint, path: &str, follow: bool, change: bool| {
            let (dirs, target) = self.path_dirs(path, follow)?;
            if change {
                fp.writes.extend(dirs.last().copied());
                fp.writes.extend(target);
            } else {
                fp.reads.extend(target);
            }
            fp.reads.extend(dirs);
            Some(())
        };
        match &plan.op {
            Op::Read { .. } | Op::SeekEnd { .. } | Op::Fstat { .. } | Op::Fsync { .. } => {
                fp.reads.push(ino_of(0)?)
            }
            Op::Write { .. }
            | Op::MmapWrite { .. }
            | Op::Ftruncate { .. }
            | Op::Fchmod { .. }
            | Op::Close { .. } => fp.writes.push(ino_of(0)?),
            Op::Copy { .. } => fp.writes.extend([ino_of(0)?, ino_of(1)?]),
            Op::Stat { path: p, follow } => path(&mut fp, p, *follow, false)?,
            Op::Readlink { path: p } => path(&mut fp, p, false, false)?,
            Op::Readdir { path: p } => {
                path(&mut fp, p, true, false)?;
                // Its answer carries every entry's attributes: a write to one of them at the
                // same moment may show in them or not.
                if let Some(&dir) = fp.reads.first()
                    && let Ok(entries) = self.entries(dir)
                {
                    fp.reads.extend(entries.values().copied());
                }
            }
            Op::Open { path: p, flags, .. } => {
                path(&mut fp, p, !(flags.creat && flags.excl), true)?
            }
            Op::Truncate { path: p, .. }
            | Op::Chmod { path: p, .. }
            | Op::Utimens { path: p, .. } => path(&mut fp, p, true, true)?,
            Op::Unlink { path: p }
            | Op::Rmdir { path: p }
            | Op::Mkdir { path: p, .. }
            | Op::Symlink { path: p, .. } => path(&mut fp, p, false, true)?,
            Op::Rename { from, to, .. } | Op::Link { from, to } => {
                path(&mut fp, from, false, true)?;
                path(&mut fp, to, false, true)?;
            }
            Op::DropCaches | Op::Join(_) => return None,
        }
        Some(fp)
    }

    /// The directories a walk of `path` reads (the root first, its own directory last) and
    /// the inode it reaches, if any; `None` if the walk meets a symlink it follows or `..`
    /// (then what it reads depends on more than the path).
    fn path_dirs(&self, path: &str, follow_last: bool) -> Option<(Vec<Ino>, Option<Ino>)> {
        let comps: Vec<&str> = path
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        if comps.contains(&"..") {
            return None;
        }
        let mut dirs = vec![ROOT_INO];
        for (i, c) in comps.iter().enumerate() {
            let last = i + 1 == comps.len();
            let dir = dirs.last().copied().unwrap_or(ROOT_INO);
            let Some(&ino) = self.entries(dir).ok().and_then(|e| e.get(*c)) else {
                return Some((dirs, None));
            };
            match self.kind(ino) {
                Some(Kind::Symlink) if !last || follow_last => return None,
                _ if last => return Some((dirs, Some(ino))),
                Some(Kind::Dir) => dirs.push(ino),
                _ => return Some((dirs, None)),
            }
        }
        None
    }

    fn plan_one(&self, op: &Op) -> Option<Plan> {
        let mut plan = Plan {
            op: op.clone(),
            fds: Vec::new(),
            new_fd: self.next_fd,
            range: (0, 0),
        };
        let escapes = |path: &str, follow: bool| self.walk(path, follow) == Err(ESCAPE);
        match op {
            Op::Open { path, .. } if escapes(path, true) || escapes(path, false) => return None,
            Op::Close { p, fd }
            | Op::Read { p, fd, .. }
            | Op::Write { p, fd, .. }
            | Op::SeekEnd { p, fd }
            | Op::Fstat { p, fd }
            | Op::Ftruncate { p, fd, .. }
            | Op::Fsync { p, fd }
            | Op::Fchmod { p, fd, .. } => plan.fds.push(self.pick(*p, *fd)?),
            Op::MmapWrite {
                p, fd, off, len, ..
            } => {
                let id = self.pick(*p, *fd)?;
                let f = self.fds.get(&id)?;
                // PROT_WRITE on a shared mapping needs O_RDWR; stores past the end fault.
                if !(f.read && f.write) || f.append {
                    return None;
                }
                let size = self.data(f.ino).len() as u64;
                let end = (off + u64::from(*len)).min(size);
                if *off >= end {
                    return None;
                }
                plan.range = (*off, end);
                plan.fds.push(id);
            }
            Op::Copy {
                p, fd_in, fd_out, ..
            } => {
                plan.fds.push(self.pick(*p, *fd_in)?);
                plan.fds.push(self.pick(*p, *fd_out)?);
            }
            Op::Stat { path, follow } if escapes(path, *follow) => return None,
            Op::Truncate { path, .. } | Op::Chmod { path, .. } | Op::Utimens { path, .. }
                if escapes(path, true) =>
            {
                return None;
            }
            Op::Readdir { path } if escapes(path, true) => return None,
            Op::Unlink { path } | Op::Rmdir { path } | Op::Readlink { path }
                if escapes(path, false) =>
            {
                return None;
            }
            Op::Mkdir { path, .. } | Op::Symlink { path, .. } if escapes(path, false) => {
                return None;
            }
            Op::Link { from, to } if escapes(from, false) || escapes(to, false) => return None,
            Op::Rename { from, to, .. } if escapes(from, false) || escapes(to, false) => {
                return None;
            }
            _ => {}
        }
        if !self.caps.unlink_open {
            // The server cannot keep a removed or renamed open file: leave those out.
            let open = |path: &str| match self.walk(path, false) {
                Ok(Walked::Found { ino, .. }) => self.fds.values().any(|f| f.ino == ino),
                _ => false,
            };
            match op {
                Op::Unlink { path } if open(path) => return None,
                Op::Rename { from, to, .. }
                    if (open(to) || open(from)) && !self.same_file(from, to) =>
                {
                    return None;
                }
                _ => {}
            }
        }
        Some(plan)
    }

    fn same_file(&self, a: &str, b: &str) -> bool {
        match (self.walk(a, false), self.walk(b, false)) {
            (Ok(Walked::Found { ino: x, .. }), Ok(Walked::Found { ino: y, .. })) => x == y,
            _ => false,
        }
    }

    /// Carries out a planned step.
    pub fn apply(&mut self, planned: &Planned) -> Expect {
        match planned {
            Planned::Skip => Expect::Is(Outcome::Skipped),
            Planned::One(plan) => self.apply_one(plan),
            Planned::Join(plans) => Expect::Join(plans.iter().map(|p| self.apply_one(p)).collect()),
        }
    }

    /// The link was cut during the step just applied: every open file's server handle died
    /// with it.
    pub fn link_cut(&mut self) {
        for f in self.fds.values_mut() {
            f.stale = true;
        }
    }

    /// An operation that certainly went through `fd`'s server handle succeeded: it is open on
    /// the current connection.
    pub fn handle_used(&mut self, fd: FdId) {
        if let Some(f) = self.fds.get_mut(&fd) {
            f.stale = false;
        }
    }

    /// Whether `fd` is open on a file with no name left.
    pub fn nameless(&self, fd: FdId) -> bool {
        self.fds
            .get(&fd)
            .and_then(|f| self.node(f.ino))
            .is_some_and(|n| n.nlink == 0)
    }

    /// Whether `fd`'s handle may be one that no name can reopen: its file has no name left and
    /// the link was cut since it was last known open on the server.
    pub fn doubtful(&self, fd: FdId) -> bool {
        self.nameless(fd) && self.fds.get(&fd).is_some_and(|f| f.stale)
    }

    fn apply_one(&mut self, plan: &Plan) -> Expect {
        let fd = plan.fds.first().copied().unwrap_or(0);
        let is = Expect::Is;
        let err = |e| Expect::Is(Outcome::Err(e));
        match plan.op.clone() {
            Op::Open {
                p,
                path,
                flags,
                mode,
            } => {
                let walked = if flags.creat && flags.excl {
                    self.walk(path, false)
                } else {
                    self.walk(path, true)
                };
                let ino = match walked {
                    Err(e) => return err(e),
                    Ok(Walked::Found { .. }) if flags.creat && flags.excl => {
                        return err(libc::EEXIST);
                    }
                    Ok(Walked::Found { ino, .. }) => {
                        if self.kind(ino) == Some(Kind::Dir) {
                            if flags.acc != Acc::R || flags.creat || flags.trunc {
                                return err(libc::EISDIR);
                            }
                            return is(Outcome::DirOpened);
                        }
                        if flags.trunc {
                            self.resize(ino, 0);
                        }
                        ino
                    }
                    Ok(Walked::Missing { .. }) if !flags.creat => return err(libc::ENOENT),
                    Ok(Walked::Missing { parent, name }) => self.add(
                        parent,
                        &name,
                        Body::File(Vec::new()),
                        mode & 0o7777 & !UMASK,
                    ),
                };
                self.fds.insert(
                    plan.new_fd,
                    Fd {
                        p,
                        ino,
                        read: flags.acc != Acc::W,
                        write: flags.acc != Acc::R,
                        append: flags.append,
                        pos: 0,
                        stale: false,
                    },
                );
                self.next_fd = plan.new_fd + 1;
                is(Outcome::Opened)
            }
            Op::Close { .. } => {
                if let Some(f) = self.fds.remove(&fd) {
                    self.collect(f.ino);
                }
                is(Outcome::Done)
            }
            Op::Read { at, len, .. } => {
                let Some(f) = self.fds.get(&fd).cloned() else {
                    return err(libc::EBADF);
                };
                if !f.read {
                    return err(libc::EBADF);
                }
                let off = match at {
                    At::Pos => f.pos,
                    At::Off(o) => o,
                };
                let data = self.data(f.ino);
                let start = (off as usize).min(data.len());
                let end = (off as usize + len as usize).min(data.len());
                let out = data[start..end].to_vec();
                if at == At::Pos
                    && let Some(f) = self.fds.get_mut(&fd)
                {
                    f.pos = off + out.len() as u64;
                }
                is(Outcome::Data(out))
            }
            Op::Write { at, len, tag, .. } => {
                let Some(f) = self.fds.get(&fd).cloned() else {
                    return err(libc::EBADF);
                };
                if !f.write {
                    return err(libc::EBADF);
                }
                let size = self.data(f.ino).len() as u64;
                let off = match (f.append, at) {
                    (true, _) => size,
                    (false, At::Pos) => f.pos,
                    (false, At::Off(o)) => o,
                };
                self.store(f.ino, off, &pattern(tag, len as usize));
                if at == At::Pos
                    && let Some(f) = self.fds.get_mut(&fd)
                {
                    f.pos = off + u64::from(len);
                }
                is(Outcome::Count(u64::from(len)))
            }
            Op::MmapWrite { tag, .. } => {
                let Some(ino) = self.fds.get(&fd).map(|f| f.ino) else {
                    return err(libc::EBADF);
                };
                let (start, end) = plan.range;
                self.store(ino, start, &pattern(tag, (end - start) as usize));
                is(Outcome::Done)
            }
            Op::SeekEnd { .. } => {
                let Some(ino) = self.fds.get(&fd).map(|f| f.ino) else {
                    return err(libc::EBADF);
                };
                let size = self.data(ino).len() as u64;
                if let Some(f) = self.fds.get_mut(&fd) {
                    f.pos = size;
                }
                is(Outcome::Count(size))
            }
            Op::Fstat { .. } => match self.fds.get(&fd) {
                Some(f) => is(Outcome::Attr(self.view(f.ino))),
                None => err(libc::EBADF),
            },
            Op::Ftruncate { size, .. } => {
                let Some(f) = self.fds.get(&fd).cloned() else {
                    return err(libc::EBADF);
                };
                if !f.write {
                    return err(libc::EINVAL);
                }
                self.resize(f.ino, size);
                is(Outcome::Done)
            }
            Op::Fsync { .. } => is(Outcome::Done),
            Op::Fchmod { mode, .. } => {
                let Some(ino) = self.fds.get(&fd).map(|f| f.ino) else {
                    return err(libc::EBADF);
                };
                if let Some(n) = self.nodes.get_mut(&ino) {
                    n.perm = mode & 0o7777;
                }
                is(Outcome::Attr(self.view(ino)))
            }
            Op::Copy {
                off_in,
                off_out,
                len,
                ..
            } => self.copy(plan, off_in, off_out, len),
            Op::Stat { path, follow } => match self.walk(path, follow) {
                Err(e) => err(e),
                Ok(Walked::Missing { .. }) => err(libc::ENOENT),
                Ok(Walked::Found { ino, .. }) => {
                    let v = self.view(ino);
                    is(Outcome::Stat(v.clone(), v))
                }
            },
            Op::Truncate { path, size } => match self.walk(path, true) {
                Err(e) => err(e),
                Ok(Walked::Missing { .. }) => err(libc::ENOENT),
                Ok(Walked::Found { ino, .. }) if self.kind(ino) == Some(Kind::Dir) => {
                    err(libc::EISDIR)
                }
                Ok(Walked::Found { ino, .. }) => {
                    self.resize(ino, size);
                    is(Outcome::Done)
                }
            },
            Op::Chmod { path, mode } => match self.walk(path, true) {
                Err(e) => err(e),
                Ok(Walked::Missing { .. }) => err(libc::ENOENT),
                Ok(Walked::Found { ino, .. }) => {
                    if let Some(n) = self.nodes.get_mut(&ino) {
                        n.perm = mode & 0o7777;
                    }
                    is(Outcome::Done)
                }
            },
            Op::Utimens { path, mtime, .. } => match self.walk(path, true) {
                Err(e) => err(e),
                Ok(Walked::Missing { .. }) => err(libc::ENOENT),
                Ok(Walked::Found { ino, .. }) => {
                    if let Some(n) = self.nodes.get_mut(&ino) {
                        n.mtime = Some(mtime);
                    }
                    is(Outcome::Done)
                }
            },
            Op::Unlink { path } => match self.walk(path, false) {
                Err(e) => err(e),
                Ok(Walked::Missing { .. }) => err(libc::ENOENT),
                Ok(Walked::Found { ino, .. }) if self.kind(ino) == Some(Kind::Dir) => {
                    err(libc::EISDIR)
                }
                Ok(Walked::Found { parent, name, ino }) => {
                    self.remove_name(parent, &name, ino);
                    is(Outcome::Done)
                }
            },
            Op::Rmdir { path } => match self.walk(path, false) {
                Err(e) => err(e),
                Ok(Walked::Missing { .. }) => err(libc::ENOENT),
                Ok(Walked::Found { ino, .. }) if self.kind(ino) != Some(Kind::Dir) => {
                    err(libc::ENOTDIR)
                }
                Ok(Walked::Found { ino, .. }) if self.entries(ino).is_ok_and(|e| !e.is_empty()) => {
                    err(libc::ENOTEMPTY)
                }
                Ok(Walked::Found { parent, name, ino }) => {
                    self.remove_name(parent, &name, ino);
                    is(Outcome::Done)
                }
            },
            Op::Mkdir { path, mode } => match self.walk(path, false) {
                Err(e) => err(e),
                Ok(Walked::Found { .. }) => err(libc::EEXIST),
                Ok(Walked::Missing { parent, name }) => {
                    self.add(parent, &name, Body::Dir(BTreeMap::new()), mode & !UMASK);
                    is(Outcome::Done)
                }
            },
            Op::Symlink { target, path } => match self.walk(path, false) {
                Err(e) => err(e),
                Ok(Walked::Found { .. }) => err(libc::EEXIST),
                Ok(Walked::Missing { parent, name }) => {
                    self.add(parent, &name, Body::Link(target.to_owned()), 0o777);
                    is(Outcome::Done)
                }
            },
            Op::Readlink { path } => match self.walk(path, false) {
                Err(e) => err(e),
                Ok(Walked::Missing { .. }) => err(libc::ENOENT),
                Ok(Walked::Found { ino, .. }) => match self.node(ino).map(|n| &n.body) {
                    Some(Body::Link(t)) => is(Outcome::Target(t.clone())),
                    _ => err(libc::EINVAL),
                },
            },
            Op::Link { from, to } => {
                let ino = match self.walk(from, false) {
                    Err(e) => return err(e),
                    Ok(Walked::Missing { .. }) => return err(libc::ENOENT),
                    Ok(Walked::Found { ino, .. }) => ino,
                };
                let (parent, name) = match self.walk(to, false) {
                    Err(e) => return err(e),
                    Ok(Walked::Found { .. }) => return err(libc::EEXIST),
                    Ok(Walked::Missing { parent, name }) => (parent, name),
                };
                if self.kind(ino) == Some(Kind::Dir) || !self.caps.hardlink {
                    // Without hardlink@openssh.com: EPERM (SEMANTICS.md).
                    return err(libc::EPERM);
                }
                if let Some(e) = self.entries_mut(parent) {
                    e.insert(name, ino);
                }
                self.dir_changed(parent);
                if let Some(n) = self.nodes.get_mut(&ino) {
                    n.nlink += 1;
                    n.was_shared = true;
                }
                is(Outcome::Done)
            }
            Op::Rename {
                from,
                to,
                noreplace,
            } => self.rename(from, to, noreplace),
            Op::Readdir { path } => match self.walk(path, true) {
                Err(e) => err(e),
                Ok(Walked::Missing { .. }) => err(libc::ENOENT),
                Ok(Walked::Found { ino, .. }) => match self.entries(ino) {
                    Err(e) => err(e),
                    Ok(entries) => is(Outcome::Names(
                        entries
                            .iter()
                            .map(|(n, i)| (n.clone(), self.view(*i)))
                            .collect(),
                    )),
                },
            },
            Op::DropCaches => {
                self.links_forgotten = true;
                is(Outcome::Done)
            }
            Op::Join(_) => is(Outcome::Skipped),
        }
    }

    fn copy(&mut self, plan: &Plan, off_in: u64, off_out: u64, len: u64) -> Expect {
        let (Some(i), Some(o)) = (
            plan.fds.first().and_then(|f| self.fds.get(f)).cloned(),
            plan.fds.get(1).and_then(|f| self.fds.get(f)).cloned(),
        ) else {
            return Expect::Is(Outcome::Err(libc::EBADF));
        };
        if !i.read || !o.write || o.append {
            return Expect::Is(Outcome::Err(libc::EBADF));
        }
        let size = self.data(i.ino).len() as u64;
        let count = len.min(size.saturating_sub(off_in));
        if i.ino == o.ino && off_out + count > off_in && off_out < off_in + count {
            return Expect::Is(Outcome::Err(libc::EINVAL));
        }
        if count > 0 {
            let bytes = self.data(i.ino)[off_in as usize..(off_in + count) as usize].to_vec();
            self.store(o.ino, off_out, &bytes);
        }
        Expect::Is(Outcome::Count(count))
    }

    fn rename(&mut self, from: &str, to: &str, noreplace: bool) -> Expect {
        let err = |e| Expect::Is(Outcome::Err(e));
        let (fparent, fname, ino) = match self.walk(from, false) {
            Err(e) => return err(e),
            Ok(Walked::Missing { .. }) => return err(libc::ENOENT),
            Ok(Walked::Found { parent, name, ino }) => (parent, name, ino),
        };
        let (tparent, tname, target) = match self.walk(to, false) {
            Err(e) => return err(e),
            Ok(Walked::Missing { parent, name }) => (parent, name, None),
            Ok(Walked::Found { parent, name, ino }) => (parent, name, Some(ino)),
        };
        if noreplace && target.is_some() {
            return err(libc::EEXIST);
        }
        // The source may not be an ancestor of the target, nor the target of the source.
        if self.is_ancestor(ino, tparent) {
            return err(libc::EINVAL);
        }
        if let Some(t) = target
            && self.is_ancestor(t, fparent)
        {
            return err(libc::ENOTEMPTY);
        }
        if target == Some(ino) {
            return Expect::Is(Outcome::Done);
        }
        let from_dir = self.kind(ino) == Some(Kind::Dir);
        if let Some(t) = target {
            let to_dir = self.kind(t) == Some(Kind::Dir);
            if from_dir && !to_dir {
                return err(libc::ENOTDIR);
            }
            if !from_dir && to_dir {
                return err(libc::EISDIR);
            }
            if to_dir && self.entries(t).is_ok_and(|e| !e.is_empty()) {
                return err(libc::ENOTEMPTY);
            }
            if !self.caps.posix_rename {
                // Plain SFTP RENAME as OpenSSH's sftp-server does it (SEMANTICS.md): a regular
                // file is linked to the new name, which fails if the name exists; anything else
                // is renamed unless stat(2) of the target succeeds, so a dangling symlink is
                // replaced. Refused: SSH_FX_FAILURE.
                let regular = self.kind(ino) == Some(Kind::File);
                let resolves = matches!(self.walk(to, true), Ok(Walked::Found { .. }));
                if regular || resolves {
                    return err(libc::EIO);
                }
            }
            self.remove_name(tparent, &tname, t);
        }
        if let Some(e) = self.entries_mut(fparent) {
            e.remove(&fname);
        }
        if let Some(e) = self.entries_mut(tparent) {
            e.insert(tname, ino);
        }
        self.dir_changed(fparent);
        self.dir_changed(tparent);
        if from_dir {
            if let Some(n) = self.nodes.get_mut(&ino) {
                n.parent = tparent;
            }
            for (dir, delta) in [(fparent, -1i64), (tparent, 1)] {
                if let Some(n) = self.nodes.get_mut(&dir) {
                    n.nlink = (i64::from(n.nlink) + delta) as u32;
                }
            }
        }
        Expect::Is(Outcome::Done)
    }

    /// Whether `a` is `b` or one of its ancestors.
    fn is_ancestor(&self, a: Ino, mut b: Ino) -> bool {
        loop {
            if a == b {
                return true;
            }
            if b == ROOT_INO {
                return false;
            }
            b = self.node(b).map_or(ROOT_INO, |n| n.parent);
        }
    }

    fn add(&mut self, parent: Ino, name: &str, body: Body, perm: u32) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        let dir = matches!(body, Body::Dir(_));
        self.nodes.insert(
            ino,
            Node {
                body,
                perm,
                nlink: if dir { 2 } else { 1 },
                parent,
                mtime: None,
                was_shared: false,
            },
        );
        if let Some(e) = self.entries_mut(parent) {
            e.insert(name.to_owned(), ino);
        }
        self.dir_changed(parent);
        if dir && let Some(n) = self.nodes.get_mut(&parent) {
            n.nlink += 1;
        }
        ino
    }

    /// A directory's entries changed: its time is the server's now.
    fn dir_changed(&mut self, dir: Ino) {
        if let Some(n) = self.nodes.get_mut(&dir) {
            n.mtime = None;
        }
    }

    fn remove_name(&mut self, parent: Ino, name: &str, ino: Ino) {
        if let Some(e) = self.entries_mut(parent) {
            e.remove(name);
        }
        self.dir_changed(parent);
        let dir = self.kind(ino) == Some(Kind::Dir);
        if dir {
            if let Some(n) = self.nodes.get_mut(&parent) {
                n.nlink -= 1;
            }
            if let Some(n) = self.nodes.get_mut(&ino) {
                n.nlink = 0;
            }
        } else if let Some(n) = self.nodes.get_mut(&ino) {
            n.nlink -= 1;
        }
        self.collect(ino);
    }

    /// Drops an inode with no name and no open file.
    fn collect(&mut self, ino: Ino) {
        let unused = self.node(ino).is_some_and(|n| n.nlink == 0)
            && !self.fds.values().any(|f| f.ino == ino);
        if unused {
            self.nodes.remove(&ino);
        }
    }

    fn store(&mut self, ino: Ino, off: u64, bytes: &[u8]) {
        if let Some(d) = self.data_mut(ino) {
            let end = off as usize + bytes.len();
            if d.len() < end {
                d.resize(end, 0);
            }
            d[off as usize..end].copy_from_slice(bytes);
        }
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.mtime = None;
        }
    }

    fn resize(&mut self, ino: Ino, size: u64) {
        if let Some(d) = self.data_mut(ino) {
            d.resize(size as usize, 0);
        }
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.mtime = None;
        }
    }

    /// Every name in the tree, by path, with its inode (directories before their entries).
    pub fn paths(&self) -> Vec<(String, Ino)> {
        let mut out = Vec::new();
        self.collect_paths(ROOT_INO, "", &mut out);
        out
    }

    fn collect_paths(&self, dir: Ino, prefix: &str, out: &mut Vec<(String, Ino)>) {
        let Ok(entries) = self.entries(dir) else {
            return;
        };
        for (name, ino) in entries {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            out.push((path.clone(), *ino));
            if self.kind(*ino) == Some(Kind::Dir) {
                self.collect_paths(*ino, &path, out);
            }
        }
    }

    /// The tree as the server should hold it.
    pub fn tree(&self) -> BTreeMap<String, Entry> {
        self.paths()
            .into_iter()
            .filter_map(|(path, ino)| {
                let n = self.node(ino)?;
                let (kind, data, target) = match &n.body {
                    Body::File(d) => (Kind::File, Some(d.clone()), None),
                    Body::Dir(_) => (Kind::Dir, None, None),
                    Body::Link(t) => (Kind::Symlink, None, Some(t.clone())),
                };
                let entry = Entry {
                    kind,
                    data,
                    target,
                    perm: (self.caps.modes && kind != Kind::Symlink).then_some(n.perm),
                    nlink: Some(n.nlink),
                };
                Some((path, entry))
            })
            .collect()
    }

    /// A file's contents.
    pub fn contents(&self, ino: Ino) -> Vec<u8> {
        self.data(ino).to_vec()
    }

    /// An inode's type.
    pub fn kind_of(&self, ino: Ino) -> Option<Kind> {
        self.kind(ino)
    }
}

impl PartialEq for Walked {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Walked::Found { ino: a, .. }, Walked::Found { ino: b, .. }) => a == b,
            (Walked::Missing { parent: a, name: x }, Walked::Missing { parent: b, name: y }) => {
                a == b && x == y
            }
            _ => false,
        }
    }
}
