//! Directories: OPENDIR / READDIR / RELEASEDIR, answered from the cache when a fresh listing
//! is there, and listings fetched ahead for subdirectories.
//!
//! **From the cache.** A fresh listing (every child's attributes fresh too) serves `opendir`
//! and every `readdir` without a request. Otherwise the server's pages are fetched only as far
//! as the kernel reads; once the end is reached, the whole listing is remembered and compared
//! with the previous one, so names that vanished or appeared on the server become kernel
//! invalidations.
//!
//! **Fetched ahead.** Each listing shown (from the cache, or a page of it from the server)
//! starts the listings of its subdirectories in the background, and a lookup in a directory
//! whose listing is not cached starts that one ([`super::ahead::listings`]).

use std::sync::Arc;

use fuse3::raw::reply::FileAttr;
use russh_sftp::protocol::FileAttributes;

use super::ahead::Why;
use super::handles::OpenDir;
use super::kernel::dirs::{self, DirCaching};
use super::open_files::hidden;
use super::stat::{self, Stat};
use super::{DirItem, FsError, FsResult, SshFs};
use crate::remote::sftp::{DirEntry, DirPages, Page};

/// Most entries handed to the kernel per READDIR call (it takes what fits in its buffer).
const DIR_BATCH: usize = 256;

impl SshFs {
    /// OPENDIR: from a fresh cached listing (no request), else OPENDIR on the server. Either
    /// way, the subdirectories' listings the cache lacks start being fetched ahead.
    pub async fn opendir(self: &Arc<Self>, ino: u64) -> FsResult<u64> {
        Ok(self.opendir_cached(ino).await?.0)
    }

    /// [`SshFs::opendir`], and whether the kernel may keep what it reads through this open and
    /// list it from what it kept ([`super::kernel::dirs`]).
    pub async fn opendir_cached(self: &Arc<Self>, ino: u64) -> FsResult<(u64, DirCaching)> {
        let rel = self.rel_of(ino)?;
        let kernel_caches = self.kernel_may_cache_dirs();
        self.ahead.recheck().used(&rel, true);
        let cached = self.cache().listing(&rel);
        let dir = match cached {
            Some(children) => {
                // Behind the answer: checking each subdirectory's listing in the cache took
                // 2 to 4 ms for 50 of them, in the way of every `find` over a warm tree.
                let subdirs: Vec<String> = children
                    .iter()
                    .filter(|(_, s)| s.is_dir())
                    .map(|(n, _)| n.clone())
                    .collect();
                if !subdirs.is_empty() {
                    let (fs, at) = (Arc::clone(self), rel.clone());
                    tokio::spawn(async move {
                        fs.prefetch_subdirs(&at, subdirs.iter().map(|n| (n.as_str(), true)));
                    });
                }
                let mut entries = dots(self.cache().peek_attr(&rel));
                entries.extend(children.into_iter().map(|(name, stat)| DirEntry {
                    name,
                    attrs: stat.attrs,
                    nlink: stat.nlink,
                }));
                if kernel_caches && let Some(order) = self.kernel.dirs().order(ino) {
                    entries = in_order(entries, &order);
                }
                OpenDir::whole(ino, rel, kernel_caches, entries)
            }
            None => {
                self.files.settle_all().await;
                let ticket = self.cache().ticket();
                let handle = self.sftp.opendir(&self.remote(&rel)).await?;
                let pages = DirPages::new(&self.sftp, &handle);
                OpenDir::from_server(ino, rel, kernel_caches, handle, pages, ticket)
            }
        };
        // Served from the cache: its fingerprint is known now; from the server: once read.
        let up = self.ino_hint(ino, "..");
        let print = (dir.handle.is_none()).then(|| print_of(up, &dir.entries));
        let fh = self.dirs.insert(tokio::sync::Mutex::new(dir));
        let caching = match kernel_caches {
            true => DirCaching {
                cache: true,
                keep: self.kernel.dirs().opened(ino, fh, print),
            },
            false => DirCaching::default(),
        };
        Ok((fh, caching))
    }

    /// Whether the kernel may keep directory entries between opens: only while listings are
    /// cached, and while the kernel's names and attributes live as long as our cache's (a
    /// listing the kernel keeps brings no READDIRPLUS to refresh them; with timeouts the user
    /// fixed, each `stat` after it would ask us).
    fn kernel_may_cache_dirs(&self) -> bool {
        let ttls = self.kernel.ttls();
        self.cache().config().dir_cache && ttls.attr.is_none() && ttls.entry.is_none()
    }

    /// Entries from `offset` on, fetching READDIR pages only until there is something to give.
    /// When the end of the directory is reached, the listing is remembered in the cache.
    ///
    /// A listing too large for the cache is not kept whole: the entries before `offset` (read
    /// by the kernel) are dropped as it goes, and an `offset` before them (a rewind) reads the
    /// directory again from its start.
    pub async fn readdir(self: &Arc<Self>, fh: u64, offset: u64) -> FsResult<Vec<DirItem>> {
        let dir = self
            .dirs
            .get(fh)
            .ok_or_else(|| FsError::new(libc::EBADF, format!("no open directory {fh}")))?;
        let mut dir = dir.lock().await;
        self.ahead.recheck().used(&dir.rel, false);
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        if start < dir.base {
            self.list_again(&mut dir).await?;
        }
        dir.trim_to(start);
        // Hidden removed files (`.fuse_hidden*`, [`super::hidden`]) are never shown: fetch on
        // until there is a visible entry from `start` on, or the end.
        let visible = |e: &DirEntry| !hidden::is_hidden_name(&e.name);
        while !dir.eof && !dir.entries.iter().skip(start - dir.base).any(visible) {
            let page = match dir.received.take() {
                Some(page) => Page::Names(page),
                None => {
                    let Some(pages) = dir.pages.as_mut() else {
                        break;
                    };
                    // A page carries attributes (readdirplus gives them to the kernel as
                    // they are).
                    self.files.settle_all().await;
                    // Cancel-safe: interrupted here, the page is taken by the next call.
                    pages.next_page().await?
                }
            };
            match page {
                Page::Names(page) => {
                    // Kept in the record while symlinks are followed, in case the kernel
                    // interrupts meanwhile.
                    let rel = dir.rel.clone();
                    let received = dir.received.insert(page);
                    self.follow_page(&rel, received).await;
                    let page = dir.received.take().unwrap_or_default();
                    let page = dir.skip_seen(page);
                    dir.count(&page);
                    if dir.whole && !self.listing_fits(&dir.rel, dir.names, dir.name_bytes, 1) {
                        // Too large to cache: it is not kept whole, nor remembered.
                        self.not_cached(&dir.rel);
                        dir.whole = false;
                        dir.ticket = None;
                    }
                    if let Some(ticket) = dir.ticket {
                        self.namespace.remember_entries(ticket, &rel, &page);
                    }
                    // Fetch subdirectories ahead as soon as a page shows them: a walk (git,
                    // find) descends before it has read its directory to the end.
                    self.prefetch_subdirs(
                        &rel,
                        page.iter()
                            .map(|e| (e.name.as_str(), stat::is_dir(&e.attrs))),
                    );
                    dir.entries.extend(page);
                    dir.trim_to(start);
                }
                Page::Restarted => {
                    // Reopened after a reconnect: the listing starts again; skip what we have.
                    dir.skip = dir.end();
                }
                Page::End => {
                    dir.eof = true;
                    // Only a listing kept whole can be fingerprinted (one too large for the
                    // cache is never answered from it, so its pages are never kept).
                    if dir.kernel_caches && dir.whole {
                        let up = self.ino_hint(dir.ino, "..");
                        let names = || dir.entries.iter().map(|e| e.name.clone()).collect();
                        self.kernel
                            .dirs()
                            .listed(dir.ino, fh, print_of(up, &dir.entries), names);
                    }
                    if let Some(ticket) = dir.ticket.take() {
                        self.remember_listing(ticket, &dir.rel, &dir.entries);
                    }
                }
            }
        }
        let base = dir.base;
        let items: Vec<DirItem> = dir
            .entries
            .iter()
            .enumerate()
            .skip(start.saturating_sub(base))
            .filter(|(_, e)| visible(e))
            .take(DIR_BATCH)
            .map(|(i, e)| DirItem {
                name: e.name.clone(),
                next_offset: (base + i) as u64 + 1,
                entry: e.clone(),
            })
            .collect();
        // As sshfs: with nomap=error, an entry whose owner cannot be shown fails the listing.
        if self.owners.can_refuse() {
            for item in &items {
                self.check_owners(&Stat::from(&item.entry))?;
            }
        }
        Ok(items)
    }

    /// A listing read to its end goes into the cache, unless it is too large for the cache's
    /// bounds (entries and bytes, [`sshfs_cache::MetaCache::listing_fits`]): its children's
    /// attributes would push each other out, so it could never be answered, and its names
    /// alone would outgrow the cache. What was cached of it is then no longer answered.
    fn remember_listing(&self, ticket: sshfs_cache::Ticket, rel: &str, entries: &[DirEntry]) {
        let names = entries.iter().filter(|e| e.name != "." && e.name != "..");
        let (count, bytes) = names.fold((0, 0), |(n, b), e| (n + 1, b + e.name.len()));
        if !self.listing_fits(rel, count, bytes, 1) {
            self.not_cached(rel);
            return;
        }
        self.namespace.remember_listing(ticket, rel, entries);
    }

    /// Whether a listing of `rel` with `names` names of `name_bytes` bytes fits in `1 / share`
    /// of the cache's bounds.
    fn listing_fits(&self, rel: &str, names: usize, name_bytes: usize, share: usize) -> bool {
        self.cache().listing_fits(rel, names, name_bytes, share)
    }

    /// The listing of `rel` is too large to cache: what was cached of it is no longer
    /// answered.
    fn not_cached(&self, rel: &str) {
        tracing::debug!(dir = rel, "too large to cache its listing");
        if self.cache().doubt_listing(rel) {
            self.namespace.negatives_doubted(rel);
        }
    }

    /// The kernel asks for entries before those kept of a listing too large to keep whole (a
    /// rewind): the directory is opened again on the server and read from its start. The
    /// offsets stay those of the server's order, as with a listing started again after a
    /// reconnect.
    async fn list_again(&self, dir: &mut OpenDir) -> FsResult<()> {
        tracing::debug!(
            dir = dir.rel,
            "rewound past what was kept: listing it again"
        );
        // The READDIRs in flight hold the handle: they go before its CLOSE.
        dir.pages = None;
        dir.received = None;
        if let Some(old) = dir.handle.take()
            && let Err(e) = self.sftp.close(&old).await
        {
            tracing::debug!(dir = dir.rel, "closing the handle rewound failed: {e}");
        }
        self.files.settle_all().await;
        let handle = self.sftp.opendir(&self.remote(&dir.rel)).await?;
        dir.pages = Some(DirPages::new(&self.sftp, &handle));
        dir.handle = Some(handle);
        dir.entries = Vec::new();
        dir.base = 0;
        dir.eof = false;
        dir.skip = 0;
        Ok(())
    }

    /// RELEASEDIR: CLOSE the server handle, if the listing came from the server.
    pub async fn releasedir(&self, fh: u64) -> FsResult<()> {
        let Some(dir) = self.dirs.remove(fh) else {
            return Ok(());
        };
        let (handle, rel) = {
            let mut dir = dir.lock().await;
            // The READDIRs in flight hold the handle: they go before its CLOSE.
            dir.pages = None;
            if dir.kernel_caches {
                self.kernel.dirs().released(dir.ino, fh);
            }
            (dir.handle.take(), dir.rel.clone())
        };
        self.ahead.recheck().closed(&rel);
        match handle {
            Some(handle) => Ok(self.sftp.close(&handle).await?),
            None => Ok(()),
        }
    }

    /// RELEASEDIR for a handle the kernel never received; see [`SshFs::release_quietly`].
    pub async fn releasedir_quietly(&self, fh: u64) {
        if let Err(e) = self.releasedir(fh).await {
            tracing::debug!(
                fh,
                "closing an abandoned directory handle failed: {}",
                e.message
            );
        }
    }

    /// The inode number for a READDIR entry, without a kernel reference.
    pub fn ino_hint(&self, parent: u64, name: &str) -> u64 {
        match name {
            "." => parent,
            ".." => self.inodes().parent(parent),
            _ => self.inodes().ino_hint(parent, name),
        }
    }

    /// For READDIRPLUS: takes a kernel reference on an entry and builds its attributes. Undo
    /// with [`SshFs::forget`] if the entry does not reach the kernel.
    pub fn dir_entry(&self, parent: u64, item: &DirItem) -> FsResult<FileAttr> {
        let stat = Stat::from(&item.entry);
        self.check_owners(&stat)?;
        let mut inodes = self.inodes();
        let ino = inodes
            .lookup(parent, &item.name)
            .ok_or_else(|| FsError::new(libc::ENOENT, "directory vanished"))?;
        self.attr_for(&mut inodes, ino, &stat)
    }

    /// `rmdir` of the directory `rel` was refused as not empty (what we cached of it was
    /// doubted): its listing is fetched again at once, so the names the server has show (and
    /// the kernel forgets what it held of them) before the caller can list it again. A
    /// "not empty" never stands beside an empty listing.
    pub(super) async fn relist_refused(&self, rel: &str) {
        self.namespace.negatives_doubted(rel);
        self.namespace.attrs_doubted(rel);
        if let Err(e) = self.fetch_listing(rel, Why::Walk).await {
            tracing::debug!(dir = rel, "listing again after rmdir failed: {}", e.message);
        }
    }

    /// OPENDIR, every READDIR page, CLOSE; the listing goes into the cache. A directory that
    /// takes more than a quarter of the cache's bounds (entries or bytes) is given up on (it
    /// would push out the rest).
    pub(super) async fn fetch_listing(&self, rel: &str, why: Why) -> FsResult<()> {
        self.files.settle_all().await;
        let ticket = self.cache().ticket();
        let handle = self.sftp.opendir(&self.remote(rel)).await?;
        let mut children = Vec::new();
        let mut name_bytes = 0;
        let mut pages = DirPages::new(&self.sftp, &handle);
        let listed = loop {
            match pages.next_page().await {
                // Reopened after a reconnect: start the listing again.
                Ok(Page::Restarted) => {
                    break Err(FsError::new(libc::EAGAIN, "reconnected while listing"));
                }
                Ok(Page::Names(mut page)) => {
                    self.follow_page(rel, &mut page).await;
                    children.extend(
                        page.into_iter()
                            .filter(|e| e.name != "." && e.name != "..")
                            .map(|e| {
                                name_bytes += e.name.len();
                                let stat = Stat::from(&e);
                                (e.name, stat)
                            }),
                    )
                }
                Ok(Page::End) => break Ok(true),
                Err(e) => break Err(FsError::from(e)),
            }
            if !self.listing_fits(rel, children.len(), name_bytes, 4) {
                break Ok(false);
            }
        };
        // The READDIRs in flight hold the handle: they go before its CLOSE.
        drop(pages);
        let closed = self.sftp.close(&handle).await;
        let complete = listed?;
        closed?;
        if !complete {
            // What was cached of it (a listing of long ago, or the empty one of a directory we
            // made) must not be answered any longer: the server has more than that.
            tracing::debug!(dir = rel, "too large to list ahead");
            if self.cache().doubt_listing(rel) {
                self.namespace.negatives_doubted(rel);
            }
            return Ok(());
        }
        let changes = match why {
            Why::Walk => self.cache().put_listing(ticket, rel, children),
            Why::LookedUp => self.cache().put_listing_ahead(ticket, rel, children),
        };
        self.invalidate_changes(changes);
        Ok(())
    }
}

/// The fingerprint of the entries an open serves, whose ".." shows `up`
/// ([`dirs::fingerprint`]).
fn print_of(up: u64, entries: &[DirEntry]) -> u64 {
    dirs::fingerprint(
        up,
        entries
            .iter()
            .map(|e| (e.name.as_str(), e.attrs.permissions.unwrap_or(0))),
    )
}

/// `entries` in the order of `order` when it names each of them once (the order of the
/// server's listing the kernel holds, [`dirs::KernelDirs::order`]); else as they are.
fn in_order(entries: Vec<DirEntry>, order: &[String]) -> Vec<DirEntry> {
    if entries.len() != order.len() {
        return entries;
    }
    let mut by_name: std::collections::HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut placed: Vec<Option<DirEntry>> = vec![None; entries.len()];
    let mut left = Vec::new();
    for e in entries {
        match by_name.remove(e.name.as_str()) {
            Some(i) => placed[i] = Some(e),
            None => left.push(e),
        }
    }
    if !left.is_empty() || placed.iter().any(Option::is_none) {
        // Not the same names: name order, as the cache gives them ("." and ".." first).
        let mut all: Vec<DirEntry> = placed.into_iter().flatten().chain(left).collect();
        all.sort_by(|a, b| dot_first(&a.name).cmp(&dot_first(&b.name)));
        return all;
    }
    placed.into_iter().flatten().collect()
}

/// The sort key of a cached listing's entry: "." and ".." first, then by name.
fn dot_first(name: &str) -> (u8, &str) {
    match name {
        "." => (0, name),
        ".." => (1, name),
        _ => (2, name),
    }
}

/// "." and ".." for a listing served from the cache (the kernel only uses their type).
fn dots(own: sshfs_cache::Lookup<Stat>) -> Vec<DirEntry> {
    let attrs = match own {
        sshfs_cache::Lookup::Found(stat) => stat.attrs,
        _ => FileAttributes {
            permissions: Some(libc::S_IFDIR | 0o755),
            ..FileAttributes::empty()
        },
    };
    [".", ".."]
        .into_iter()
        .map(|name| DirEntry {
            name: name.to_owned(),
            attrs: attrs.clone(),
            nlink: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(names: &[&str]) -> Vec<DirEntry> {
        names
            .iter()
            .map(|n| DirEntry {
                name: (*n).to_owned(),
                attrs: FileAttributes::empty(),
                nlink: None,
            })
            .collect()
    }

    fn names(entries: &[DirEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn a_cached_listing_takes_the_servers_order_when_the_names_are_the_same() {
        let cached = entries(&[".", "..", "a", "b", "c"]);
        let order: Vec<String> = ["c", ".", "a", "..", "b"].map(String::from).to_vec();
        assert_eq!(names(&in_order(cached, &order)), ["c", ".", "a", "..", "b"]);
        // Another name, or one more: name order, as cached.
        let cached = entries(&[".", "..", "a", "b", "d"]);
        assert_eq!(names(&in_order(cached, &order)), [".", "..", "a", "b", "d"]);
        let cached = entries(&[".", "..", "a", "b"]);
        assert_eq!(names(&in_order(cached, &order)), [".", "..", "a", "b"]);
    }
}
