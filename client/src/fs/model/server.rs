//! The server under the fs layer, as the model test needs it: something that serves SFTP
//! sessions ([`ServeSftp`]), can cut the link at a chosen request, and shows its whole tree at
//! the end. [`Caps`] says what it can do, so the strategies only generate what it carries out
//! and the model knows where a server's answer differs from a local filesystem's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::remote::fake_server::FakeServer;
use crate::remote::testing::ServeSftp;
use crate::remote::testing::faults::{Delay, Fate, FaultPlan, Faulty, Pick};
use crate::remote::testing::memory::{MemoryServer, NodeKind};

/// A file's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
}

/// The remote directory the fs layer is rooted at.
pub const ROOT: &str = "/r";

/// What a server can do.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    /// Directories (MKDIR, RMDIR, OPENDIR, READDIR) and paths below the root.
    pub dirs: bool,
    /// `posix-rename@openssh.com`: a rename replaces an existing target.
    pub posix_rename: bool,
    /// SETSTAT and FSETSTAT: truncate, chmod, utimens.
    pub setstat: bool,
    /// Modes as given at create and chmod are what a stat shows.
    pub modes: bool,
    /// Times set by utimens are what a stat shows.
    pub times: bool,
    /// An open file keeps working after its name is removed or renamed (OpenSSH: yes; the
    /// fake server's handles name paths, not files).
    pub unlink_open: bool,
    /// A symlink's size is its target's length.
    pub symlink_size: bool,
    /// Symlinks (SYMLINK, READLINK) and hard links.
    pub links: bool,
    /// `hardlink@openssh.com` (without it, link() is EPERM).
    pub hardlink: bool,
}

/// A server under test.
pub trait Harness: Send + Sync {
    /// What it can do.
    fn caps(&self) -> Caps;
    /// The server, for a [`crate::remote::testing::StreamConnector`].
    fn serve(&self) -> Arc<dyn ServeSftp>;
    /// Cuts the link when the server receives request `at` from now (1: the next), before
    /// carrying it out or `after`; replaces a cut not made yet.
    fn cut_at(&self, at: u64, after: bool);
    /// Whether the cut asked for was made since the last call (then it is no longer asked for).
    fn fired(&self) -> bool;
    /// Cancels a cut not made yet.
    fn disarm(&self);
    /// Requests that named a handle the server did not hold (OpenSSH would have reached
    /// another file).
    fn bad_handles(&self) -> usize;
    /// Every file, directory and symlink below [`ROOT`], by path relative to it.
    fn tree(&self) -> BTreeMap<String, Entry>;
    /// The requests the server received so far, short, for a failure's message.
    fn trace(&self) -> String {
        String::new()
    }
}

/// An entry of the server's tree. A field that one side leaves `None` is not compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Type.
    pub kind: Kind,
    /// A file's contents.
    pub data: Option<Vec<u8>>,
    /// A symlink's target.
    pub target: Option<String>,
    /// Permission bits.
    pub perm: Option<u32>,
    /// Link count.
    pub nlink: Option<u32>,
}

impl Entry {
    /// Whether `other` is this entry (fields either side leaves out are not compared).
    pub fn same(&self, other: &Entry) -> bool {
        fn same<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
            a.is_none() || b.is_none() || a == b
        }
        self.kind == other.kind
            && same(&self.data, &other.data)
            && same(&self.target, &other.target)
            && same(&self.perm, &other.perm)
            && same(&self.nlink, &other.nlink)
    }
}

/// `remote::fake_server`: files in one directory, no SETSTAT, no extensions, no reads of a
/// removed open file.
pub struct Fake {
    server: FakeServer,
    armed: std::sync::Mutex<Option<u64>>,
}

impl Fake {
    /// An empty fake server.
    pub fn new() -> Fake {
        Fake {
            server: FakeServer::new(1),
            armed: std::sync::Mutex::new(None),
        }
    }
}

impl Harness for Fake {
    fn caps(&self) -> Caps {
        Caps {
            dirs: false,
            posix_rename: false,
            setstat: false,
            modes: false,
            times: false,
            unlink_open: false,
            symlink_size: false,
            links: false,
            hardlink: false,
        }
    }

    fn serve(&self) -> Arc<dyn ServeSftp> {
        Arc::new(self.server.clone())
    }

    fn cut_at(&self, at: u64, after: bool) {
        let target = self.server.requests() + at;
        self.server.die_at(at, after);
        if let Ok(mut armed) = self.armed.lock() {
            *armed = Some(target);
        }
    }

    fn fired(&self) -> bool {
        let Ok(mut armed) = self.armed.lock() else {
            return false;
        };
        match *armed {
            Some(target) if self.server.requests() >= target => {
                *armed = None;
                true
            }
            _ => false,
        }
    }

    fn disarm(&self) {
        if let Ok(mut armed) = self.armed.lock()
            && armed.take().is_some()
        {
            // Far enough away never to be reached.
            self.server.die_at(u64::MAX / 4, false);
        }
    }

    fn bad_handles(&self) -> usize {
        self.server.bad_handle_requests().len()
    }

    fn tree(&self) -> BTreeMap<String, Entry> {
        let prefix = format!("{ROOT}/");
        self.server
            .files()
            .into_iter()
            .filter_map(|(path, data)| {
                path.strip_prefix(&prefix).map(|rel| {
                    let entry = Entry {
                        kind: Kind::File,
                        data: Some(data),
                        target: None,
                        perm: None,
                        nlink: None,
                    };
                    (rel.to_owned(), entry)
                })
            })
            .collect()
    }
}

/// `remote::testing::memory`'s server, answering as OpenSSH's `sftp-server` run by root,
/// behind `remote::testing::faults` (which makes the cuts).
pub struct Memory {
    server: MemoryServer,
    faulty: Arc<Faulty>,
    cuts_before: std::sync::Mutex<Option<usize>>,
    delay: Delay,
    extensions: bool,
}

impl Memory {
    /// A server holding an empty [`ROOT`], answering at once.
    pub fn new() -> Memory {
        Memory::with_delay(Delay::None)
    }

    /// Like [`Memory::new`], each answer delayed by 0 to 3 ms (virtual time, the same delays
    /// in every run), so requests in flight at once meet in other orders.
    pub fn jittery() -> Memory {
        Memory::with_delay(Delay::Random {
            min: Duration::ZERO,
            max: Duration::from_millis(3),
            seed: 18,
        })
    }

    /// Like [`Memory::jittery`], answering every READ short (at most half of what was asked,
    /// which SFTP allows anywhere in a file).
    pub fn short_reads() -> Memory {
        let mut memory = Memory::jittery();
        memory.server.set_personality(|p| p.short_reads = true);
        memory.delay = Delay::Random {
            min: Duration::ZERO,
            max: Duration::from_millis(3),
            seed: 7,
        };
        memory
    }

    /// Like [`Memory::jittery`], a server that announces no extension (no posix-rename,
    /// hardlink, fsync, copy-data...), as some servers that are not OpenSSH.
    pub fn no_extensions() -> Memory {
        let mut memory = Memory::jittery();
        memory.server.set_personality(|p| p.extensions = false);
        memory.extensions = false;
        memory
    }

    fn with_delay(delay: Delay) -> Memory {
        let server = MemoryServer::new();
        if let Err(e) = server.mkdir(ROOT) {
            panic!("mkdir {ROOT}: {e:?}");
        }
        let faulty = Faulty::new(Arc::new(server.clone()));
        faulty.plan().delay_replies(delay);
        Memory {
            server,
            faulty,
            cuts_before: std::sync::Mutex::new(None),
            delay,
            extensions: true,
        }
    }

    fn plan(&self) -> &Arc<FaultPlan> {
        self.faulty.plan()
    }

    /// Drops the cut asked for (the plan has no other rules), keeping the delays.
    fn clear_cut(&self) {
        self.plan().clear();
        if self.delay != Delay::None {
            self.plan().delay_replies(self.delay);
        }
    }
}

impl Harness for Memory {
    fn caps(&self) -> Caps {
        Caps {
            dirs: true,
            posix_rename: self.extensions,
            setstat: true,
            modes: true,
            times: true,
            unlink_open: true,
            symlink_size: true,
            links: true,
            hardlink: self.extensions,
        }
    }

    fn serve(&self) -> Arc<dyn ServeSftp> {
        self.faulty.clone()
    }

    fn cut_at(&self, at: u64, after: bool) {
        self.clear_cut();
        if let Ok(mut c) = self.cuts_before.lock() {
            *c = Some(self.plan().cuts().len());
        }
        if after {
            self.plan().cut_after(Pick::next(at));
        } else {
            self.plan().cut_before(Pick::next(at));
        }
    }

    fn fired(&self) -> bool {
        let Ok(mut before) = self.cuts_before.lock() else {
            return false;
        };
        match *before {
            Some(n) if self.plan().cuts().len() > n => {
                *before = None;
                self.clear_cut();
                true
            }
            _ => false,
        }
    }

    fn disarm(&self) {
        if let Ok(mut before) = self.cuts_before.lock() {
            *before = None;
        }
        self.clear_cut();
    }

    fn bad_handles(&self) -> usize {
        self.server.bad_handle_requests().len()
    }

    fn trace(&self) -> String {
        let mut out = String::new();
        let mut connection = 0;
        for r in self.plan().requests() {
            if r.connection != connection {
                connection = r.connection;
                out.push_str(&format!("\n  connection {connection}:"));
            }
            let fate = match r.fate {
                Fate::Forwarded => String::new(),
                other => format!("({other:?})"),
            };
            out.push_str(&format!(" {}{}{fate}", r.number, r.name));
        }
        out
    }

    fn tree(&self) -> BTreeMap<String, Entry> {
        let prefix = format!("{ROOT}/");
        self.server
            .snapshot()
            .into_iter()
            .filter_map(|(path, node)| {
                let rel = path.strip_prefix(&prefix)?.to_owned();
                let kind = match node.kind {
                    NodeKind::File => Kind::File,
                    NodeKind::Dir => Kind::Dir,
                    NodeKind::Symlink => Kind::Symlink,
                };
                let entry = Entry {
                    kind,
                    data: node.content.map(|d| d.to_vec()),
                    target: node.target,
                    perm: (kind != Kind::Symlink).then_some(node.mode & 0o7777),
                    nlink: Some(node.nlink),
                };
                Some((rel, entry))
            })
            .collect()
    }
}
