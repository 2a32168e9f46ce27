//! What a program sees of an operation ([`Outcome`]), what the model expects ([`Expect`]), and
//! the comparison after every step; at the end, the whole tree as the mount shows it and as
//! the server holds it, against the model's.

use std::collections::BTreeMap;

use super::server::Entry;
pub use super::server::Kind;

/// The attributes a program sees; for an expected one, `None` is "any" (what SFTP cannot
/// carry, or what the model cannot know).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AttrView {
    /// Type.
    pub kind: Kind,
    /// Permission bits.
    pub perm: Option<u32>,
    /// Size.
    pub size: Option<u64>,
    /// Link count.
    pub nlink: Option<u32>,
    /// Modification time (whole seconds).
    pub mtime: Option<i64>,
}

impl AttrView {
    /// Whether `seen` is what this expected view allows.
    pub fn allows(&self, seen: &AttrView) -> bool {
        fn same<T: PartialEq>(want: &Option<T>, got: &Option<T>) -> bool {
            want.is_none() || want == got
        }
        self.kind == seen.kind
            && same(&self.perm, &seen.perm)
            && same(&self.size, &seen.size)
            && same(&self.nlink, &seen.nlink)
            && same(&self.mtime, &seen.mtime)
    }
}

/// What a program sees of one operation.
#[derive(Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not run: the model left it out (no such open file, or nothing the server can do).
    Skipped,
    /// Success with nothing to show.
    Done,
    /// Failure with this errno.
    Err(i32),
    /// A file opened (the new descriptor is the model's).
    Opened,
    /// A directory opened with open(2) (and closed again).
    DirOpened,
    /// Bytes read.
    Data(Vec<u8>),
    /// A count: bytes written or copied, a file offset.
    Count(u64),
    /// Attributes (fstat, chmod's answer).
    Attr(AttrView),
    /// stat: the attributes LOOKUP answered and those GETATTR answered.
    Stat(AttrView, AttrView),
    /// A symlink's target.
    Target(String),
    /// A directory's entries, by name.
    Names(Vec<(String, AttrView)>),
    /// The outcomes of a [`super::ops::Op::Join`], in its order.
    Join(Vec<Outcome>),
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Skipped => write!(f, "Skipped"),
            Outcome::Done => write!(f, "Done"),
            Outcome::Err(e) => write!(f, "Err({})", errno_name(*e)),
            Outcome::Opened => write!(f, "Opened"),
            Outcome::DirOpened => write!(f, "DirOpened"),
            Outcome::Data(d) => write!(f, "Data({} bytes, {:08x})", d.len(), digest(d)),
            Outcome::Count(n) => write!(f, "Count({n})"),
            Outcome::Attr(a) => write!(f, "Attr({a:?})"),
            Outcome::Stat(l, g) => write!(f, "Stat(lookup {l:?}, getattr {g:?})"),
            Outcome::Target(t) => write!(f, "Target({t:?})"),
            Outcome::Names(n) => write!(f, "Names({n:?})"),
            Outcome::Join(o) => write!(f, "Join({o:?})"),
        }
    }
}

/// A short digest of bytes, for messages.
pub fn digest(d: &[u8]) -> u32 {
    d.iter().fold(2_166_136_261u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(16_777_619)
    })
}

/// The name of an errno, for messages.
pub fn errno_name(e: i32) -> String {
    let name = match e {
        libc::ENOENT => "ENOENT",
        libc::EEXIST => "EEXIST",
        libc::EISDIR => "EISDIR",
        libc::ENOTDIR => "ENOTDIR",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::EBADF => "EBADF",
        libc::EINVAL => "EINVAL",
        libc::EIO => "EIO",
        libc::EPERM => "EPERM",
        libc::ELOOP => "ELOOP",
        libc::EACCES => "EACCES",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EXDEV => "EXDEV",
        _ => return format!("errno {e}"),
    };
    name.to_owned()
}

/// What the model expects of one operation.
#[derive(Clone, Debug)]
pub enum Expect {
    /// Exactly this (attributes: as [`AttrView::allows`]).
    Is(Outcome),
    /// Any of these (a divergence SFTP or a reconnect makes, documented in SEMANTICS.md).
    OneOf(Vec<Outcome>),
    /// Each operation of a join, in order.
    Join(Vec<Expect>),
}

impl Expect {
    /// Whether `seen` is expected.
    pub fn allows(&self, seen: &Outcome) -> bool {
        match (self, seen) {
            (Expect::Is(want), seen) => outcome_allows(want, seen),
            (Expect::OneOf(all), seen) => all.iter().any(|w| outcome_allows(w, seen)),
            (Expect::Join(want), Outcome::Join(seen)) => {
                want.len() == seen.len() && want.iter().zip(seen).all(|(w, s)| w.allows(s))
            }
            _ => false,
        }
    }

    /// Also allows `other` (a failure a cut may cause).
    pub fn or(self, other: Outcome) -> Expect {
        match self {
            Expect::Is(o) => Expect::OneOf(vec![o, other]),
            Expect::OneOf(mut all) => {
                all.push(other);
                Expect::OneOf(all)
            }
            join => join,
        }
    }
}

fn outcome_allows(want: &Outcome, seen: &Outcome) -> bool {
    match (want, seen) {
        (Outcome::Attr(w), Outcome::Attr(s)) => w.allows(s),
        (Outcome::Stat(w, _), Outcome::Stat(l, g)) => w.allows(l) && w.allows(g),
        (Outcome::Names(w), Outcome::Names(s)) => {
            w.len() == s.len()
                && w.iter()
                    .zip(s)
                    .all(|((wn, wa), (sn, sa))| wn == sn && wa.allows(sa))
        }
        (w, s) => w == s,
    }
}

/// Differences between the model's tree and the server's, one line each.
pub fn tree_differences(
    model: &BTreeMap<String, Entry>,
    server: &BTreeMap<String, Entry>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (path, want) in model {
        match server.get(path) {
            None => out.push(format!("{path}: missing on the server")),
            Some(got) if !want.same(got) => out.push(format!(
                "{path}: model {} / server {}",
                show_entry(want),
                show_entry(got)
            )),
            Some(_) => {}
        }
    }
    for (path, got) in server {
        if !model.contains_key(path) {
            out.push(format!(
                "{path}: on the server ({}) but not in the model",
                show_entry(got)
            ));
        }
    }
    out
}

fn show_entry(e: &Entry) -> String {
    let what = match (&e.data, &e.target) {
        (Some(d), _) => format!("{:?} of {} bytes ({:08x})", e.kind, d.len(), digest(d)),
        (_, Some(t)) => format!("{:?} to {t:?}", e.kind),
        _ => format!("{:?}", e.kind),
    };
    let perm = e.perm.map(|p| format!("{p:o}"));
    format!("{what}, mode {perm:?}, nlink {:?}", e.nlink)
}

/// Where two byte strings first differ, for messages.
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or((a.len() != b.len()).then(|| a.len().min(b.len())))
}
