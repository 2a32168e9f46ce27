//! The operations a program makes, as the model test generates them, and their proptest
//! strategies.
//!
//! An operation names paths from a small pool (so creates, renames and unlinks collide) and
//! open files by process and slot: `fd` picks the `fd % n`-th of the `n` files process `p`
//! holds open, so a shrunk sequence still names a file that is open. A [`Step`] is one
//! operation, or several of different processes at once ([`Op::Join`]), with an optional link
//! cut during it.
//!
//! `Debug` prints valid Rust (with `use super::ops::*`), so a shrunk failure pastes into a
//! named regression case.

use proptest::prelude::*;

use super::server::Caps;

/// Simulated processes.
pub const PROCS: usize = 3;

/// Paths when the server has directories: names collide at every level.
pub const PATHS: &[&str] = &[
    "a", "b", "c", "d0", "d1", "d0/a", "d0/b", "d1/a", "d0/d1", "d0/d1/a",
];
/// Paths when the server has one flat directory (the fake server).
pub const FLAT_PATHS: &[&str] = &["a", "b", "c"];
/// Symlink targets (relative, as the kernel follows them inside the mount).
pub const TARGETS: &[&str] = &["a", "b", "d0", "d0/a", "../a", "../d1", "zz", "d0/d1/a"];

/// Access mode of an open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acc {
    /// O_RDONLY.
    R,
    /// O_WRONLY.
    W,
    /// O_RDWR.
    RW,
}

/// `open(2)` flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OFlags {
    /// Access mode.
    pub acc: Acc,
    /// O_CREAT.
    pub creat: bool,
    /// O_EXCL.
    pub excl: bool,
    /// O_TRUNC.
    pub trunc: bool,
    /// O_APPEND.
    pub append: bool,
}

impl OFlags {
    /// The flags as `open(2)` takes them.
    pub fn bits(&self) -> i32 {
        let mut f = match self.acc {
            Acc::R => libc::O_RDONLY,
            Acc::W => libc::O_WRONLY,
            Acc::RW => libc::O_RDWR,
        };
        for (on, bit) in [
            (self.creat, libc::O_CREAT),
            (self.excl, libc::O_EXCL),
            (self.trunc, libc::O_TRUNC),
            (self.append, libc::O_APPEND),
        ] {
            if on {
                f |= bit;
            }
        }
        f
    }
}

/// Where a read or write happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// At the file position, which moves (read(2), write(2)).
    Pos,
    /// At this offset; the position stays (pread(2), pwrite(2)).
    Off(u64),
}

/// One operation of a program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// open(2) (O_CREAT: mode `mode`).
    Open {
        p: usize,
        path: &'static str,
        flags: OFlags,
        mode: u32,
    },
    /// close(2): FLUSH, then RELEASE.
    Close { p: usize, fd: usize },
    /// read(2)/pread(2): through the page cache (page-aligned READs, cut at the size the
    /// kernel knows) or `direct` (exactly the bytes asked for).
    Read {
        p: usize,
        fd: usize,
        at: At,
        len: u32,
        direct: bool,
    },
    /// write(2)/pwrite(2) of `len` bytes of pattern `tag`.
    Write {
        p: usize,
        fd: usize,
        at: At,
        len: u32,
        tag: u8,
    },
    /// A store through a shared mapping, written back as the kernel does: whole pages, cut at
    /// the file's end (the range is cut to the file's size: a mapping cannot extend a file).
    MmapWrite {
        p: usize,
        fd: usize,
        off: u64,
        len: u32,
        tag: u8,
    },
    /// lseek(fd, 0, SEEK_END): GETATTR with the file's handle.
    SeekEnd { p: usize, fd: usize },
    /// fstat(2): GETATTR without a handle, as the kernel sends it.
    Fstat { p: usize, fd: usize },
    /// ftruncate(2).
    Ftruncate { p: usize, fd: usize, size: u64 },
    /// fsync(2).
    Fsync { p: usize, fd: usize },
    /// fchmod(2).
    Fchmod { p: usize, fd: usize, mode: u32 },
    /// copy_file_range(2) between two files process `p` holds, at explicit offsets.
    Copy {
        p: usize,
        fd_in: usize,
        off_in: u64,
        fd_out: usize,
        off_out: u64,
        len: u64,
    },
    /// stat(2) (`follow`) or lstat(2).
    Stat { path: &'static str, follow: bool },
    /// truncate(2).
    Truncate { path: &'static str, size: u64 },
    /// chmod(2).
    Chmod { path: &'static str, mode: u32 },
    /// utimensat(2) with both times, whole seconds.
    Utimens {
        path: &'static str,
        atime: i64,
        mtime: i64,
    },
    /// unlink(2).
    Unlink { path: &'static str },
    /// rmdir(2).
    Rmdir { path: &'static str },
    /// mkdir(2).
    Mkdir { path: &'static str, mode: u32 },
    /// symlink(2).
    Symlink {
        target: &'static str,
        path: &'static str,
    },
    /// readlink(2).
    Readlink { path: &'static str },
    /// link(2).
    Link {
        from: &'static str,
        to: &'static str,
    },
    /// rename(2), or renameat2 with RENAME_NOREPLACE.
    Rename {
        from: &'static str,
        to: &'static str,
        noreplace: bool,
    },
    /// opendir, readdir to the end (readdirplus: every entry's attributes), closedir.
    Readdir { path: &'static str },
    /// `echo 2 > drop_caches`: the kernel forgets every inode no open file holds.
    DropCaches,
    /// Several operations of different processes at once (those the model cannot order are
    /// left out when the step runs).
    Join(Ops),
}

/// The operations of a [`Op::Join`] (prints as `Ops(vec![..])`).
#[derive(Clone, PartialEq, Eq)]
pub struct Ops(pub Vec<Op>);

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ops(vec!{:?})", self.0)
    }
}

/// The link dies when the server receives the `at`-th request from the start of the step
/// (counted from 1 over all channels; it may come in a later step: a write's packets leave
/// after write() returned): before carrying it out, or after (`after`: only its answer is
/// lost). A later step's cut replaces one not made yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cut {
    /// Which request of the step.
    pub at: u8,
    /// After the server carried it out.
    pub after: bool,
}

/// One step of a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// What the program does.
    pub op: Op,
    /// Where the link dies during it, if it does.
    pub cut: Option<Cut>,
}

impl Step {
    /// A step without a cut.
    pub fn new(op: Op) -> Step {
        Step { op, cut: None }
    }

    /// A step whose link dies at request `at` (`after` it was carried out).
    pub fn cut(op: Op, at: u8, after: bool) -> Step {
        Step {
            op,
            cut: Some(Cut { at, after }),
        }
    }
}

/// The bytes of a write: byte `i` of a write tagged `tag`. Each write's bytes differ from its
/// neighbours' and from other writes', so a misplaced or lost piece shows.
pub fn pattern(tag: u8, len: usize) -> Vec<u8> {
    static BYTES: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
        (0..256 * 131 + MAX_LEN)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8 ^ (i / 4096) as u8)
            .collect()
    });
    let start = usize::from(tag) * 131;
    match BYTES.get(start..start + len) {
        Some(bytes) => bytes.to_vec(),
        None => (0..len).map(|i| tag ^ i as u8).collect(),
    }
}

/// The longest read or write generated.
pub const MAX_LEN: usize = 70_000;

/// What the strategies generate.
#[derive(Clone, Copy, Debug)]
pub struct Mix {
    /// How many steps (at least, at most).
    pub steps: (usize, usize),
    /// One step in this many has a cut (0: none).
    pub cut_one_in: u32,
    /// One step in this many is a [`Op::Join`] (0: none).
    pub join_one_in: u32,
}

impl Mix {
    /// 10 to 40 steps, one in eight a join, and a cut during one step in `cut_one_in` (0: none):
    /// what every property of the model runs.
    pub const fn with_cuts(cut_one_in: u32) -> Mix {
        Mix {
            steps: (10, 40),
            cut_one_in,
            join_one_in: 8,
        }
    }
}

fn paths(caps: Caps) -> &'static [&'static str] {
    if caps.dirs { PATHS } else { FLAT_PATHS }
}

fn path(caps: Caps) -> impl Strategy<Value = &'static str> + Clone {
    prop::sample::select(paths(caps))
}

fn offset() -> impl Strategy<Value = u64> + Clone {
    prop_oneof![
        3 => 0..70_000u64,
        1 => (0..18u64).prop_map(|p| p * 4096),
        1 => Just(0u64),
    ]
}

fn length() -> impl Strategy<Value = u32> + Clone {
    prop_oneof![
        3 => 1..5_000u32,
        2 => (1..9u32).prop_map(|p| p * 4096),
        1 => 1..MAX_LEN as u32,
    ]
}

fn size() -> impl Strategy<Value = u64> + Clone {
    prop_oneof![Just(0u64), 1..80_000u64, (1..20u64).prop_map(|p| p * 4096)]
}

fn file_mode() -> impl Strategy<Value = u32> + Clone {
    prop::sample::select(&[0o644u32, 0o600, 0o640, 0o755, 0o700][..])
}

fn flags() -> impl Strategy<Value = OFlags> + Clone {
    (
        prop::sample::select(&[Acc::R, Acc::W, Acc::RW, Acc::RW][..]),
        prop::bool::weighted(0.75),
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.25),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(acc, creat, excl, trunc, append)| OFlags {
            acc,
            creat,
            excl: creat && excl,
            // O_RDONLY|O_TRUNC is unspecified by POSIX: not generated.
            trunc: trunc && acc != Acc::R,
            append: append && acc != Acc::R,
        })
}

fn at() -> impl Strategy<Value = At> + Clone {
    prop_oneof![2 => Just(At::Pos), 1 => offset().prop_map(At::Off)]
}

fn proc_() -> impl Strategy<Value = usize> + Clone {
    0..PROCS
}

fn fd() -> impl Strategy<Value = usize> + Clone {
    0..4usize
}

/// Operations on open files (those a [`Op::Join`] may run at once).
fn fd_op() -> impl Strategy<Value = Op> + Clone {
    prop_oneof![
        6 => (proc_(), fd(), at(), length(), any::<bool>())
            .prop_map(|(p, fd, at, len, direct)| Op::Read { p, fd, at, len, direct }),
        9 => (proc_(), fd(), at(), length(), any::<u8>())
            .prop_map(|(p, fd, at, len, tag)| Op::Write { p, fd, at, len, tag }),
        2 => (proc_(), fd(), offset(), length(), any::<u8>())
            .prop_map(|(p, fd, off, len, tag)| Op::MmapWrite { p, fd, off, len, tag }),
        3 => (proc_(), fd()).prop_map(|(p, fd)| Op::SeekEnd { p, fd }),
        4 => (proc_(), fd()).prop_map(|(p, fd)| Op::Fstat { p, fd }),
        2 => (proc_(), fd()).prop_map(|(p, fd)| Op::Fsync { p, fd }),
        4 => (proc_(), fd()).prop_map(|(p, fd)| Op::Close { p, fd }),
        2 => (proc_(), fd(), offset(), fd(), offset(), length())
            .prop_map(|(p, fd_in, off_in, fd_out, off_out, len)| Op::Copy {
                p, fd_in, off_in, fd_out, off_out, len: u64::from(len),
            }),
    ]
}

/// Operations that need SETSTAT on the server.
fn setattr_op(caps: Caps) -> impl Strategy<Value = Op> + Clone {
    prop_oneof![
        4 => (proc_(), fd(), size()).prop_map(|(p, fd, size)| Op::Ftruncate { p, fd, size }),
        2 => (path(caps), size()).prop_map(|(path, size)| Op::Truncate { path, size }),
        1 => (proc_(), fd(), file_mode()).prop_map(|(p, fd, mode)| Op::Fchmod { p, fd, mode }),
        1 => (path(caps), file_mode()).prop_map(|(path, mode)| Op::Chmod { path, mode }),
        1 => (path(caps), 0..2_000_000_000i64, 0..2_000_000_000i64)
            .prop_map(|(path, atime, mtime)| Op::Utimens { path, atime, mtime }),
    ]
}

/// Operations on names.
fn name_op(caps: Caps) -> impl Strategy<Value = Op> + Clone {
    let p = path(caps);
    prop_oneof![
        10 => (proc_(), p.clone(), flags(), file_mode())
            .prop_map(|(p, path, flags, mode)| Op::Open { p, path, flags, mode }),
        4 => (p.clone(), any::<bool>()).prop_map(|(path, follow)| Op::Stat { path, follow }),
        3 => p.clone().prop_map(|path| Op::Unlink { path }),
        3 => (p.clone(), p.clone(), prop::bool::weighted(0.2))
            .prop_map(|(from, to, noreplace)| Op::Rename { from, to, noreplace }),
        1 => Just(Op::DropCaches),
    ]
}

/// Operations on directories.
fn dir_op(caps: Caps) -> impl Strategy<Value = Op> + Clone {
    let p = path(caps);
    prop_oneof![
        3 => (p.clone(), prop::sample::select(&[0o755u32, 0o700][..]))
            .prop_map(|(path, mode)| Op::Mkdir { path, mode }),
        2 => p.clone().prop_map(|path| Op::Rmdir { path }),
        2 => p.clone().prop_map(|path| Op::Readdir { path }),
    ]
}

/// Operations on symlinks and hard links.
fn link_op(caps: Caps) -> impl Strategy<Value = Op> + Clone {
    let p = path(caps);
    prop_oneof![
        2 => (prop::sample::select(TARGETS), p.clone())
            .prop_map(|(target, path)| Op::Symlink { target, path }),
        1 => p.clone().prop_map(|path| Op::Readlink { path }),
        2 => (p.clone(), p.clone()).prop_map(|(from, to)| Op::Link { from, to }),
    ]
}

/// One operation, of those the server can carry out.
pub fn op(caps: Caps) -> BoxedStrategy<Op> {
    let mut all: Vec<(u32, BoxedStrategy<Op>)> =
        vec![(10, fd_op().boxed()), (6, name_op(caps).boxed())];
    if caps.setstat {
        all.push((3, setattr_op(caps).boxed()));
    }
    if caps.dirs {
        all.push((2, dir_op(caps).boxed()));
    }
    if caps.links {
        all.push((2, link_op(caps).boxed()));
    }
    prop::strategy::Union::new_weighted(all).boxed()
}

/// One step: an operation, or a join of operations on open files, maybe with a cut.
pub fn step(caps: Caps, mix: Mix) -> BoxedStrategy<Step> {
    let single = op(caps);
    let join = prop::collection::vec(
        prop_oneof![
            4 => fd_op(),
            1 => (path(caps), any::<bool>()).prop_map(|(path, follow)| Op::Stat { path, follow }),
            2 => op(caps),
        ],
        2..=4,
    )
    .prop_map(|ops| Op::Join(Ops(ops)));
    let op = if mix.join_one_in > 0 {
        prop_oneof![mix.join_one_in - 1 => single, 1 => join].boxed()
    } else {
        single
    };
    let cut = if mix.cut_one_in > 0 {
        prop_oneof![
            mix.cut_one_in - 1 => Just(None),
            1 => (1..8u8, any::<bool>()).prop_map(|(at, after)| Some(Cut { at, after })),
        ]
        .boxed()
    } else {
        Just(None).boxed()
    };
    (op, cut).prop_map(|(op, cut)| Step { op, cut }).boxed()
}

/// A case: a sequence of steps.
pub fn steps(caps: Caps, mix: Mix) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(step(caps, mix), mix.steps.0..=mix.steps.1)
}
