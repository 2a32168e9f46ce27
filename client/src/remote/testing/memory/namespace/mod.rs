//! The server's filesystem: a POSIX namespace of inodes, answering as the Linux system calls
//! OpenSSH's `sftp-server` makes would (each operation returns the errno Linux would give).
//!
//! Inodes hold directories (named entries, a parent), regular files ([`content::Content`],
//! sparse) and symlinks (any target, dangling or not), with permission bits, owners, times and
//! link counts. A file's inode lives while it has a name or an open handle (an unlinked open
//! file keeps its content, as on Linux); a removed directory stays as a dead, empty inode while
//! open. Paths are resolved as Linux resolves them ([`walk`]); the system calls are in [`ops`].

pub(crate) mod content;
pub(crate) mod ops;
pub(crate) mod walk;

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use content::{BLOCK, Content};

/// An inode number.
pub(crate) type Ino = u64;

/// A failed system call's errno (`libc::ENOENT`...).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Errno(pub(crate) i32);

impl std::fmt::Debug for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({})",
            std::io::Error::from_raw_os_error(self.0),
            self.0
        )
    }
}

/// The result of a system call.
pub(crate) type SysResult<T> = Result<T, Errno>;

/// The root directory's inode (as ext4's).
pub(crate) const ROOT: Ino = 2;
/// Linux's `NAME_MAX`.
const NAME_MAX: usize = 255;
/// Linux's `PATH_MAX` (with its NUL).
const PATH_MAX: usize = 4096;
/// ext4's largest file (16 TiB, 4 KiB blocks): a larger truncate is EFBIG.
const MAX_FILE_SIZE: u64 = 16 << 40;
/// Inodes the filesystem has (statvfs `f_files`).
const INODES: u64 = 1 << 20;
/// Blocks of a filesystem without a quota (statvfs `f_blocks`: 64 GiB).
const UNLIMITED_BLOCKS: u64 = 16 << 20;

/// Who makes a system call: the server's user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cred {
    /// The user's uid (0: root, which passes every permission check).
    pub(crate) uid: u32,
    /// The primary group.
    pub(crate) gid: u32,
    /// Supplementary groups.
    pub(crate) groups: Vec<u32>,
}

impl Cred {
    /// Root.
    pub(crate) fn root() -> Self {
        Self {
            uid: 0,
            gid: 0,
            groups: Vec::new(),
        }
    }

    fn is_root(&self) -> bool {
        self.uid == 0
    }

    fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

/// Access a permission check asks for (`MAY_READ`, `MAY_WRITE`, `MAY_EXEC`).
pub(crate) const MAY_READ: u32 = 4;
/// See [`MAY_READ`].
pub(crate) const MAY_WRITE: u32 = 2;
/// See [`MAY_READ`].
pub(crate) const MAY_EXEC: u32 = 1;

/// A directory's entries.
#[derive(Debug, Clone)]
pub(crate) struct Dir {
    /// Name -> inode, in name order (the order READDIR gives).
    pub(crate) entries: BTreeMap<Vec<u8>, Ino>,
    /// The directory holding it (the root's is itself).
    pub(crate) parent: Ino,
    /// Entries that are directories (the link count is 2 + this).
    pub(crate) subdirs: u32,
    /// Removed (rmdir) while something still held it: empty, link count 0.
    pub(crate) dead: bool,
}

/// What an inode is.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// A regular file.
    File(Content),
    /// A directory.
    Dir(Dir),
    /// A symlink and its target.
    Symlink(Vec<u8>),
}

/// One inode.
#[derive(Debug, Clone)]
pub(crate) struct Inode {
    /// What it is.
    pub(crate) kind: Kind,
    /// Permission bits, setuid/setgid/sticky included (`07777`).
    pub(crate) perm: u32,
    /// Owner.
    pub(crate) uid: u32,
    /// Group.
    pub(crate) gid: u32,
    /// Access time (seconds).
    pub(crate) atime: u64,
    /// Modification time.
    pub(crate) mtime: u64,
    /// Status change time.
    pub(crate) ctime: u64,
    /// Names of a file or symlink (directories count theirs from [`Dir`]).
    pub(crate) links: u32,
    /// Handles open on it, over all sessions.
    pub(crate) open: u32,
}

impl Inode {
    /// `st_mode`: the file type and the permission bits.
    pub(crate) fn mode(&self) -> u32 {
        let kind = match self.kind {
            Kind::File(_) => libc::S_IFREG,
            Kind::Dir(_) => libc::S_IFDIR,
            Kind::Symlink(_) => libc::S_IFLNK,
        };
        kind | self.perm
    }

    /// `st_nlink`.
    pub(crate) fn nlink(&self) -> u32 {
        match &self.kind {
            Kind::Dir(d) if d.dead => 0,
            Kind::Dir(d) => 2 + d.subdirs,
            _ => self.links,
        }
    }

    /// `st_size` (ext4's: 4096 for a directory, the target's length for a symlink).
    pub(crate) fn size(&self) -> u64 {
        match &self.kind {
            Kind::File(c) => c.size(),
            Kind::Dir(_) => BLOCK,
            Kind::Symlink(t) => t.len() as u64,
        }
    }

    /// Whether it is a directory.
    pub(crate) fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir(_))
    }

    /// Whether it is a symlink.
    pub(crate) fn is_symlink(&self) -> bool {
        matches!(self.kind, Kind::Symlink(_))
    }
}

/// What `stat(2)` gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stat {
    /// The inode number.
    pub(crate) ino: Ino,
    /// `st_mode`.
    pub(crate) mode: u32,
    /// `st_nlink`.
    pub(crate) nlink: u32,
    /// `st_uid`.
    pub(crate) uid: u32,
    /// `st_gid`.
    pub(crate) gid: u32,
    /// `st_size`.
    pub(crate) size: u64,
    /// `st_atime`.
    pub(crate) atime: u64,
    /// `st_mtime`.
    pub(crate) mtime: u64,
    /// `st_ctime`.
    pub(crate) ctime: u64,
}

/// What `statvfs(2)` gives (the fields OpenSSH sends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statvfs {
    /// `f_bsize` and `f_frsize`.
    pub(crate) bsize: u64,
    /// `f_blocks`.
    pub(crate) blocks: u64,
    /// `f_bfree` and `f_bavail`.
    pub(crate) bfree: u64,
    /// `f_files`.
    pub(crate) files: u64,
    /// `f_ffree` and `f_favail`.
    pub(crate) ffree: u64,
    /// `f_namemax`.
    pub(crate) namemax: u64,
}

/// The server's clock: the system's, or one a test sets.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) enum Clock {
    /// The system's time.
    #[default]
    Real,
    /// A fixed time, moved only by the test.
    Manual(u64),
}

impl Clock {
    /// Seconds since the epoch.
    pub(crate) fn now(&self) -> u64 {
        match self {
            Clock::Real => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            Clock::Manual(t) => *t,
        }
    }
}

/// The filesystem.
#[derive(Debug)]
pub(crate) struct Namespace {
    inodes: HashMap<Ino, Inode>,
    next_ino: Ino,
    /// The server's working directory (relative paths start there).
    cwd: Ino,
    /// The clock every time stamp comes from.
    pub(crate) clock: Clock,
    /// Blocks the filesystem has (`None`: no limit).
    pub(crate) quota_blocks: Option<u64>,
    /// Blocks allocated to file contents.
    used_blocks: u64,
    /// Linux's `fs.protected_hardlinks`.
    pub(crate) protected_hardlinks: bool,
}

impl Namespace {
    /// An empty filesystem: the root directory (0755, root's), which is also the working
    /// directory.
    pub(crate) fn new(clock: Clock) -> Self {
        let now = clock.now();
        let root = Inode {
            kind: Kind::Dir(Dir {
                entries: BTreeMap::new(),
                parent: ROOT,
                subdirs: 0,
                dead: false,
            }),
            perm: 0o755,
            uid: 0,
            gid: 0,
            atime: now,
            mtime: now,
            ctime: now,
            links: 0,
            open: 0,
        };
        Self {
            inodes: HashMap::from([(ROOT, root)]),
            next_ino: ROOT + 1,
            cwd: ROOT,
            clock,
            quota_blocks: None,
            used_blocks: 0,
            protected_hardlinks: true,
        }
    }

    /// Now, by the namespace's clock.
    pub(crate) fn now(&self) -> u64 {
        self.clock.now()
    }

    /// The inode `ino` (every inode number handed out refers to a live inode).
    pub(crate) fn inode(&self, ino: Ino) -> SysResult<&Inode> {
        self.inodes.get(&ino).ok_or(Errno(libc::ENOENT))
    }

    fn inode_mut(&mut self, ino: Ino) -> SysResult<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or(Errno(libc::ENOENT))
    }

    /// The directory `ino`, or ENOTDIR.
    pub(crate) fn dir(&self, ino: Ino) -> SysResult<&Dir> {
        match &self.inode(ino)?.kind {
            Kind::Dir(d) => Ok(d),
            _ => Err(Errno(libc::ENOTDIR)),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> SysResult<&mut Dir> {
        match &mut self.inode_mut(ino)?.kind {
            Kind::Dir(d) => Ok(d),
            _ => Err(Errno(libc::ENOTDIR)),
        }
    }

    /// `stat` of an inode.
    pub(crate) fn stat_of(&self, ino: Ino) -> SysResult<Stat> {
        let i = self.inode(ino)?;
        Ok(Stat {
            ino,
            mode: i.mode(),
            nlink: i.nlink(),
            uid: i.uid,
            gid: i.gid,
            size: i.size(),
            atime: i.atime,
            mtime: i.mtime,
            ctime: i.ctime,
        })
    }

    /// The working directory.
    pub(crate) fn cwd(&self) -> Ino {
        self.cwd
    }

    /// Makes `dir` the working directory.
    pub(crate) fn set_cwd(&mut self, dir: Ino) -> SysResult<()> {
        self.dir(dir)?;
        self.cwd = dir;
        Ok(())
    }

    /// Whether `cred` may access `ino` as `mask` asks (Linux's `generic_permission`: root may
    /// do anything but execute a file with no execute bit at all).
    pub(crate) fn permits(&self, cred: &Cred, ino: Ino, mask: u32) -> bool {
        let Ok(i) = self.inode(ino) else {
            return false;
        };
        if cred.is_root() {
            return mask & MAY_EXEC == 0 || i.is_dir() || i.perm & 0o111 != 0;
        }
        let bits = if cred.uid == i.uid {
            i.perm >> 6
        } else if cred.in_group(i.gid) {
            i.perm >> 3
        } else {
            i.perm
        } & 7;
        mask & !bits == 0
    }

    /// EACCES unless [`Namespace::permits`].
    pub(crate) fn require(&self, cred: &Cred, ino: Ino, mask: u32) -> SysResult<()> {
        if self.permits(cred, ino, mask) {
            Ok(())
        } else {
            Err(Errno(libc::EACCES))
        }
    }

    /// Whether `cred` owns `ino` or is root (what chmod and utimes ask).
    pub(crate) fn owns(&self, cred: &Cred, ino: Ino) -> bool {
        cred.is_root() || self.inode(ino).is_ok_and(|i| i.uid == cred.uid)
    }

    /// A new inode.
    fn alloc(&mut self, kind: Kind, perm: u32, cred: &Cred, parent: Ino) -> Ino {
        let now = self.now();
        // A directory with the setgid bit gives its group to what is made in it (and the bit
        // to new directories).
        let (gid, perm) = match self.inode(parent) {
            Ok(p) if p.perm & libc::S_ISGID != 0 => {
                let keep = if matches!(kind, Kind::Dir(_)) {
                    libc::S_ISGID
                } else {
                    0
                };
                (p.gid, perm | keep)
            }
            _ => (cred.gid, perm),
        };
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(
            ino,
            Inode {
                kind,
                perm,
                uid: cred.uid,
                gid,
                atime: now,
                mtime: now,
                ctime: now,
                links: 1,
                open: 0,
            },
        );
        ino
    }

    /// Frees `ino` if nothing refers to it any more (no name, no open handle).
    fn reap(&mut self, ino: Ino) {
        let Ok(i) = self.inode(ino) else {
            return;
        };
        if ino == ROOT || i.open > 0 || i.nlink() > 0 {
            return;
        }
        if let Some(Inode {
            kind: Kind::File(c),
            ..
        }) = self.inodes.remove(&ino)
        {
            self.used_blocks -= c.blocks();
        }
    }

    /// Blocks a write may still allocate.
    fn free_blocks(&self) -> u64 {
        self.quota_blocks
            .map_or(u64::MAX, |q| q.saturating_sub(self.used_blocks))
    }

    /// Bytes of file content allocated (4 KiB blocks).
    pub(crate) fn allocated_bytes(&self) -> u64 {
        self.used_blocks * BLOCK
    }

    /// Inodes in use.
    pub(crate) fn inode_count(&self) -> usize {
        self.inodes.len()
    }

    /// `statvfs` of the filesystem.
    pub(crate) fn statvfs(&self) -> Statvfs {
        let blocks = self.quota_blocks.unwrap_or(UNLIMITED_BLOCKS);
        Statvfs {
            bsize: BLOCK,
            blocks,
            bfree: blocks.saturating_sub(self.used_blocks),
            files: INODES,
            ffree: INODES.saturating_sub(self.inodes.len() as u64),
            namemax: NAME_MAX as u64,
        }
    }

    /// The entries of directory `ino` after `after` (all with `None`), in name order.
    pub(crate) fn entries_after(
        &self,
        ino: Ino,
        after: Option<&[u8]>,
    ) -> SysResult<Vec<(Vec<u8>, Ino)>> {
        let d = self.dir(ino)?;
        let range: Box<dyn Iterator<Item = (&Vec<u8>, &Ino)>> = match after {
            Some(a) => Box::new(
                d.entries
                    .range::<[u8], _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
            ),
            None => Box::new(d.entries.iter()),
        };
        Ok(range.map(|(n, i)| (n.clone(), *i)).collect())
    }

    /// Every path in the tree (depth first, names in order) with its inode; `/` first.
    pub(crate) fn walk_tree(&self) -> Vec<(String, Ino)> {
        let mut out = vec![("/".to_owned(), ROOT)];
        let mut stack = vec![("".to_owned(), ROOT)];
        while let Some((path, ino)) = stack.pop() {
            let Ok(d) = self.dir(ino) else {
                continue;
            };
            let mut subdirs = Vec::new();
            for (name, &child) in &d.entries {
                let p = format!("{path}/{}", String::from_utf8_lossy(name));
                out.push((p.clone(), child));
                if self.dir(child).is_ok() {
                    subdirs.push((p, child));
                }
            }
            stack.extend(subdirs.into_iter().rev());
        }
        out.sort();
        out
    }
}
