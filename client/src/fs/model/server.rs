//! The server under the fs layer, as the model test needs it: something that serves SFTP
//! sessions ([`ServeSftp`]), can cut the link at a chosen request, and shows its whole tree at
//! the end. [`Caps`] says what it can do, so the strategies only generate what it carries out
//! and the model knows where a server's answer differs from a local filesystem's.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::remote::fake_server::FakeServer;
use crate::remote::testing::ServeSftp;

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
}

/// A server under test.
pub trait Harness: Send + Sync {
    /// What it can do.
    fn caps(&self) -> Caps;
    /// The server, for a [`crate::remote::testing::StreamConnector`].
    fn serve(&self) -> Arc<dyn ServeSftp>;
    /// Cuts the link when the server receives request `at` from now (1: the next), before
    /// carrying it out or `after`.
    fn cut_at(&self, at: u64, after: bool);
    /// Cancels a cut not yet made; whether it was made.
    fn disarm(&self) -> bool;
    /// Requests that named a handle the server did not hold (OpenSSH would have reached
    /// another file).
    fn bad_handles(&self) -> usize;
    /// Every file, directory and symlink below [`ROOT`], by path relative to it.
    fn tree(&self) -> BTreeMap<String, Entry>;
}

/// An entry of the server's tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A regular file and its contents.
    File(Vec<u8>),
    /// A directory.
    Dir,
    /// A symlink and its target.
    Link(String),
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

    fn disarm(&self) -> bool {
        let target = self.armed.lock().ok().and_then(|mut a| a.take());
        match target {
            Some(target) => {
                let made = self.server.requests() >= target;
                if !made {
                    // Far enough away never to be reached.
                    self.server.die_at(u64::MAX / 4, false);
                }
                made
            }
            None => false,
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
                path.strip_prefix(&prefix)
                    .map(|rel| (rel.to_owned(), Entry::File(data)))
            })
            .collect()
    }
}
