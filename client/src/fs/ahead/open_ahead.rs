//! Open-ahead: a process that opens the files of a directory one after the other in name order
//! (`git status` re-reading a fresh clone, `grep -r`, a build reading its sources) gets the next
//! small files opened and read before it asks.
//!
//! Each such open() would otherwise cost two round trips in a row (OPEN with LSTAT, then READ),
//! however fast the rest is. When a read-only open in a directory comes right after the open of
//! the file before it (in byte order of names, among the regular files of the directory's cached
//! listing), the next [`FILES_AHEAD`] regular files of at most one READ are opened, stat-ed and
//! read on tasks of their own. An open() of such a file then takes the server handle, the
//! attributes and the first piece of data with no round trip left (or only what remains of one
//! in flight); its READ is answered from that piece through the file's read-ahead.
//!
//! Consistency is that of an open() done [`MAX_AGE`] earlier: a prefetched file not opened
//! within it is closed and forgotten, and anything this mount changes (a write, a rename, any
//! namespace change) forgets every prefetched file first and again when it is done. Handles
//! never leak: every prefetched handle is closed unless an open() took it.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt, Shared};
use russh_sftp::protocol::FileAttributes;
use sshfs_cache::content::Entry;
use sshfs_cache::{Lookup, Ticket};
use tokio::time::Instant;

use super::Host;
use crate::fs::errno::{FsError, FsResult};
use crate::fs::rel::join_rel;
use crate::fs::stat::Stat;
use crate::remote::sftp::Sftp;
use crate::remote::sftp::handle::Handle;

/// Files opened ahead after each open that continues a run: at 20 ms round trip, 8 kept a
/// fresh `git status` of 5000 files at 36 s, 32 brings it to 15 s.
pub const FILES_AHEAD: usize = 32;
/// Files opened ahead at once in the whole mount, at most (server handles, and at most one READ
/// of data each).
const MAX_FILES: usize = 96;
/// How long an opened-ahead file waits for its open().
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// Directories whose last open is remembered.
const DIRS_TRACKED: usize = 64;

/// What an open-ahead fetched: the server's handle, the attributes (LSTAT sent with the OPEN)
/// and the file's first bytes (one READ of `asked` bytes; fewer means the end of the file).
#[derive(Debug)]
pub struct Opened {
    /// The server's handle, now owned by whoever took this (dropped untaken, it is closed).
    pub handle: Handle,
    /// Attributes from the LSTAT sent beside the OPEN.
    pub attrs: FileAttributes,
    /// The first bytes of the file.
    pub data: Vec<u8>,
    /// How many bytes the READ asked for.
    pub asked: u32,
    /// Cache ticket taken before the requests were sent.
    pub ticket: Ticket,
    /// When the requests were sent.
    pub since: Instant,
    /// The file's entry in the content cache, validated with `attrs` and offered `data`
    /// (`None`: the cache is off, or does not keep this file).
    pub content: Option<Arc<Entry>>,
}

type Fetching = Shared<BoxFuture<'static, Result<Arc<Mutex<Option<Opened>>>, FsError>>>;

/// Open-ahead state of a mount.
pub struct OpenAhead {
    /// Where prefetched handles are read and closed.
    sftp: Arc<Sftp>,
    state: Arc<Mutex<State>>,
    /// Files opened ahead and then taken by an open().
    taken: AtomicU64,
    /// Files opened ahead.
    started: AtomicU64,
}

impl OpenAhead {
    /// Nothing opened ahead yet, over `sftp`.
    pub fn new(sftp: Arc<Sftp>) -> Self {
        Self {
            sftp,
            state: Arc::default(),
            taken: AtomicU64::default(),
            started: AtomicU64::default(),
        }
    }

    /// "taken=N started=M", for the stats line.
    pub fn summary(&self) -> String {
        format!(
            "taken={} started={}",
            self.taken.load(Ordering::Relaxed),
            self.started.load(Ordering::Relaxed)
        )
    }
}

impl std::fmt::Debug for OpenAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenAhead")
    }
}

#[derive(Default)]
struct State {
    /// Directory -> the name opened last in it (read-only).
    last_open: HashMap<String, String>,
    /// Relative path -> its open-ahead, done or in flight.
    files: HashMap<String, Fetching>,
}

impl OpenAhead {
    /// Takes the opened-ahead file at `rel` if there is a fresh one (waiting for it if still in
    /// flight). `None`: open it the usual way.
    pub async fn take(&self, rel: &str) -> Option<Opened> {
        let fetching = self.state.lock().ok()?.files.remove(rel)?;
        let slot = match fetching.clone().await {
            Ok(slot) => slot,
            Err(_) => return None,
        };
        let opened = slot.lock().ok()?.take()?;
        if opened.since.elapsed() > MAX_AGE {
            close_quietly(&self.sftp, opened.handle);
            return None;
        }
        self.taken.fetch_add(1, Ordering::Relaxed);
        Some(opened)
    }

    /// Notes a read-only open of `name` in `dir`; if it continues a run of opens in name order,
    /// opens the next files of the directory ahead.
    pub fn opened_in_order<H: Host>(&self, host: &Arc<H>, dir: &str, name: &str) {
        let previous = match self.state.lock() {
            Ok(mut st) => {
                if st.last_open.len() >= DIRS_TRACKED && !st.last_open.contains_key(dir) {
                    st.last_open.clear();
                }
                st.last_open.insert(dir.to_owned(), name.to_owned())
            }
            Err(_) => return,
        };
        let Some(previous) = previous.filter(|p| p.as_str() < name) else {
            return;
        };
        // Among the regular files of the cached listing, `name` must follow `previous`
        // directly; the next ones small enough for one READ are opened ahead.
        let piece = u64::from(self.sftp.read_len());
        let next: Vec<String> = {
            let cache = host.meta_cache();
            let before = cache
                .peek_listed(dir, Bound::Unbounded, Bound::Excluded(name))
                .and_then(|files| files.rev().find_map(regular_file));
            if before.map(|(n, _)| n) != Some(previous.as_str()) {
                return;
            }
            let Some(after) = cache.peek_listed(dir, Bound::Excluded(name), Bound::Unbounded)
            else {
                return;
            };
            after
                .filter_map(regular_file)
                .filter(|(_, size)| size.is_some_and(|s| s < piece))
                .take(FILES_AHEAD)
                .map(|(n, _)| join_rel(dir, n))
                .collect()
        };
        for rel in next {
            self.open_one(host, rel);
        }
    }

    /// Starts opening `rel` ahead unless it already is.
    pub fn open_one<H: Host>(&self, host: &Arc<H>, rel: String) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        if st.files.contains_key(&rel) || st.files.len() >= MAX_FILES {
            return;
        }
        self.started.fetch_add(1, Ordering::Relaxed);
        let (host, sftp) = (Arc::clone(host), Arc::clone(&self.sftp));
        let task = {
            let rel = rel.clone();
            tokio::spawn(async move { fetch(&*host, &sftp, &rel).await })
        };
        let fetching: Fetching = async move {
            match task.await {
                Ok(r) => r.map(|opened| Arc::new(Mutex::new(Some(opened)))),
                Err(e) => Err(FsError::new(libc::EIO, format!("open-ahead: {e}"))),
            }
        }
        .boxed()
        .shared();
        st.files.insert(rel.clone(), fetching.clone());
        drop(st);
        // Whatever happens to it, the handle is closed unless an open() took it in time.
        let (state, sftp) = (Arc::clone(&self.state), Arc::clone(&self.sftp));
        tokio::spawn(async move {
            tokio::time::sleep(MAX_AGE).await;
            forget(&state, &sftp, &rel, &fetching);
        });
    }

    /// Forgets every file opened ahead (this mount is about to change something, or did).
    pub fn forget_all(&self) {
        let files: Vec<Fetching> = match self.state.lock() {
            Ok(mut st) => st.files.drain().map(|(_, f)| f).collect(),
            Err(_) => return,
        };
        for f in files {
            close_when_done(&self.sftp, f);
        }
    }

    /// See [`Changing`].
    pub fn changing(&self) -> Changing<'_> {
        self.forget_all();
        Changing(self)
    }
}

/// OPEN (read) with LSTAT, as an open() would, then one READ unless the content cache holds
/// the bytes it would bring.
async fn fetch<H: Host>(host: &H, sftp: &Arc<Sftp>, rel: &str) -> FsResult<Opened> {
    let since = Instant::now();
    let (handle, attrs, ticket) = host.open_for_reading(rel).await?;
    let asked = sftp.read_len();
    let attrs = match attrs {
        Ok(a) => a,
        Err(e) => {
            close_quietly(sftp, handle);
            return Err(e.into());
        }
    };
    // What the content cache holds is not asked again.
    let (content, cached) = host.cached_start(rel, &attrs, asked).await;
    let data = match cached {
        Some(data) => data,
        None => match sftp.read_at(&handle, 0, asked, attrs.size).await {
            Ok(data) => match &content {
                Some(entry) => match host.cache_offer(entry, data).await {
                    Ok(data) => data,
                    Err(e) => {
                        close_quietly(sftp, handle);
                        return Err(e);
                    }
                },
                None => data,
            },
            Err(e) => {
                close_quietly(sftp, handle);
                return Err(e.into());
            }
        },
    };
    Ok(Opened {
        handle,
        attrs,
        data,
        asked,
        ticket,
        since,
        content,
    })
}

/// Drops `rel`'s open-ahead if it is still `fetching`, closing its handle.
fn forget(state: &Mutex<State>, sftp: &Arc<Sftp>, rel: &str, fetching: &Fetching) {
    let still = state.lock().ok().and_then(|mut st| {
        let same = st.files.get(rel).is_some_and(|f| f.ptr_eq(fetching));
        same.then(|| st.files.remove(rel)).flatten()
    });
    let owner = still.unwrap_or_else(|| fetching.clone());
    close_when_done(sftp, owner);
}

/// Once `fetching` is done, closes its handle if nobody took it.
fn close_when_done(sftp: &Arc<Sftp>, fetching: Fetching) {
    let sftp = Arc::clone(sftp);
    tokio::spawn(async move {
        if let Ok(slot) = fetching.await {
            let handle = slot
                .lock()
                .ok()
                .and_then(|mut s| s.take())
                .map(|o| o.handle);
            if let Some(handle) = handle {
                let _ = sftp.close(&handle).await;
            }
        }
    });
}

fn close_quietly(sftp: &Arc<Sftp>, handle: Handle) {
    let sftp = Arc::clone(sftp);
    tokio::spawn(async move {
        let _ = sftp.close(&handle).await;
    });
}

/// A listed regular file's name and size (`None` for anything else or unknown attributes).
fn regular_file((name, attr): (&str, Lookup<Stat>)) -> Option<(&str, Option<u64>)> {
    match attr {
        Lookup::Found(s)
            if s.attrs
                .permissions
                .is_some_and(|m| m & libc::S_IFMT == libc::S_IFREG) =>
        {
            Some((name, s.attrs.size))
        }
        _ => None,
    }
}

/// Forgets every file opened ahead when made and again when dropped: held by each operation
/// that changes something on the server.
pub struct Changing<'a>(&'a OpenAhead);

impl Drop for Changing<'_> {
    fn drop(&mut self) {
        self.0.forget_all();
    }
}
