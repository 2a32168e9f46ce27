//! The files the kernel holds open, and all that is only about them: which handle a request
//! goes through, the writes still in flight and their errors ([`write_behind`]), the extra
//! handles of a large file written through several channels ([`stripes`]), and the files
//! unlinked while open that are kept under a hidden name ([`hidden`]), and the content cache on
//! local disk they read through ([`content`]).
//!
//! What a `write()` does to an open file is here: [`OpenFiles::write`] cuts it at stripe
//! boundaries, queues each piece behind the file's earlier writes, records the size it gives
//! every open file of the inode, and leaves the acknowledgement to be awaited behind. What it
//! does to the rest of the filesystem (cached attributes, read-ahead, the kernel's caches) is
//! the caller's, named at the call in `SshFs::write`.
//!
//! The open files do not own the names: where a file is now on the server (it may be renamed
//! while open) is asked of the namespace through [`Locate`].

pub mod content;
pub mod file;
pub mod hidden;
pub mod stripes;
pub mod write_behind;

use std::sync::Arc;

use russh_sftp::protocol::FileAttributes;

use crate::fs::ahead::readahead;
use crate::fs::errno::{FsError, FsResult};
use crate::fs::handles::{FhNumbers, HandleTable};
use crate::fs::stat::Stat;
use crate::remote::{sftp::Sftp, sftp::SftpError, sftp::handle::Handle};
pub use file::OpenFile;
use hidden::Hidden;
use stripes::{PREPARE_FROM, PREPARE_RTT, STRIPED_FROM, StripeCounts};

/// Where the files are on the server: the namespace's answer, asked when a handle of an open
/// file is opened again (a stripe; a reopen after a reconnect), since the file may have been
/// renamed through the mount since it was opened.
pub trait Locate: Send + Sync + 'static {
    /// The server path of the inode `ino` now, if it has one.
    fn server_path(&self, ino: u64) -> Option<String>;
}

/// Makes a reopen of `handle` after a reconnect use where the file `ino` is then, as `at`
/// says (it may have been renamed through the mount since it was opened).
pub fn follow_renames<L: Locate>(handle: &Handle, ino: u64, at: &Arc<L>) {
    let at = Arc::downgrade(at);
    handle.follow_path(move || at.upgrade()?.server_path(ino));
}

/// What a RELEASE left to its caller: the file's inode, what its writes came to, and the
/// server's answer to its CLOSE.
pub struct Released {
    /// The inode the file was open on.
    pub ino: u64,
    /// The first failure of its writes, if any.
    pub written: FsResult<()>,
    /// The CLOSE of its handle.
    pub closed: Result<(), SftpError>,
}

/// The open files of a mount, by the `fh` number the kernel holds.
pub struct OpenFiles {
    sftp: Arc<Sftp>,
    table: HandleTable<OpenFile>,
    /// Files whose writes went through several channels ([`stripes`]).
    striped: StripeCounts,
    /// Files unlinked while open, kept under a hidden name until their last release, on
    /// servers that drop a removed file ([`hidden`]).
    hidden: Hidden,
    /// The content cache on local disk (`-o data_cache`; off by default).
    content: content::DataCache,
}

impl OpenFiles {
    /// No open file yet; requests go through `sftp`, `fh` numbers come from `numbers`.
    pub fn new(sftp: Arc<Sftp>, numbers: &FhNumbers) -> Self {
        Self {
            sftp,
            table: HandleTable::new(numbers),
            striped: StripeCounts::default(),
            hidden: Hidden::default(),
            content: content::DataCache::default(),
        }
    }

    /// Reads and keeps file contents through `cache` ([`content`]).
    pub fn set_data_cache(&mut self, cache: content::DataCache) {
        self.content = cache;
    }

    /// The content cache's hooks.
    pub fn data_cache(&self) -> &content::DataCache {
        &self.content
    }

    /// Keeps `file` open and returns its new `fh`.
    pub fn insert(&self, file: OpenFile) -> u64 {
        self.table.insert(file)
    }

    /// The open file `fh`; EBADF if there is none.
    pub fn get(&self, fh: u64) -> FsResult<Arc<OpenFile>> {
        self.table
            .get(fh)
            .ok_or_else(|| FsError::new(libc::EBADF, format!("no open file {fh}")))
    }

    /// The open file `fh`, if the kernel gave one and it is open on `ino`.
    pub fn on(&self, fh: Option<u64>, ino: u64) -> Option<Arc<OpenFile>> {
        fh.and_then(|fh| self.table.get(fh))
            .filter(|f| f.ino == ino)
    }

    /// Whether `ino` is open through the mount (libfuse's `is_open`).
    pub fn is_open(&self, ino: u64) -> bool {
        self.table.find(|f| f.ino == ino).is_some()
    }

    /// Calls `f` on every open file of `ino` (quick: the table is locked meanwhile).
    pub fn each_of(&self, ino: u64, f: impl Fn(&OpenFile)) {
        self.table.for_each(|file| {
            if file.ino == ino {
                f(file)
            }
        });
    }

    /// Forgets what was read ahead for any open file of `ino` (its content changed).
    pub fn drop_read_ahead(&self, ino: u64) {
        self.each_of(ino, |f| f.readahead.clear());
    }

    /// The files unlinked while open and kept under a hidden name.
    pub fn hidden(&self) -> &Hidden {
        &self.hidden
    }

    /// Files striped since the mount (for the stats line).
    pub fn striped_files(&self) -> u64 {
        self.striped.files()
    }

    /// Any open file of `ino` (for operations on an inode whose name is gone) that is not
    /// being closed, and open for writing if `for_writing`; preferably one whose handle can
    /// still reach the file (see [`Sftp::may_reach`]: one that died with a connection cannot
    /// be reopened without a name), then one the program has not closed (whose RELEASE cannot
    /// be under way). A RELEASE takes its file out of the table before anything else, so a
    /// file being released is never offered; one picked just before may still be closed under
    /// the caller, who then answers as if it had not been open (see [`OpenFiles::fstat_any`]).
    pub fn usable(&self, ino: u64, for_writing: bool) -> Option<Arc<OpenFile>> {
        let usable =
            |f: &OpenFile| f.ino == ino && !f.handle.is_closed() && (f.writable || !for_writing);
        // Asked outside the table's lock: reaching asks the inode table for a name.
        let files = self.table.all_where(usable);
        files
            .into_iter()
            .min_by_key(|f| (!self.sftp.may_reach(&f.handle), f.close_seen()))
    }

    /// FSTAT through a handle open on `ino`; `otherwise` if there is none. Each open file is
    /// tried in turn (those the program has not closed first): one whose handle died with a
    /// connection (its name gone, it cannot be reopened) must not hide another that lives.
    pub async fn fstat_any(&self, ino: u64, otherwise: FsError) -> FsResult<Stat> {
        let mut files = self
            .table
            .all_where(|f| f.ino == ino && !f.handle.is_closed());
        files.sort_by_key(|f| (!self.sftp.may_reach(&f.handle), f.close_seen()));
        let mut failure = None;
        for file in files {
            match self.sftp.fstat(&file.handle).await {
                Ok(attrs) => return Ok(Stat::new(attrs)),
                // Released meanwhile: as if it had not been open.
                Err(SftpError::HandleClosed) => {}
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        Err(failure.map_or(otherwise, FsError::from))
    }

    /// The open file a chmod, chown or utimens of `ino` may ride behind
    /// ([`OpenFile::takes_changes_behind`]): `fh` if it may, else any that may.
    pub fn taking_changes_behind(&self, fh: Option<u64>, ino: u64) -> Option<Arc<OpenFile>> {
        fh.and_then(|fh| self.table.get(fh))
            .filter(|f| f.takes_changes_behind(ino))
            .or_else(|| self.table.find(|f| f.takes_changes_behind(ino)))
    }

    /// Queues FSETSTAT `a` behind the writes of `file` ([`OpenFile::send_behind`]).
    pub async fn send_behind(&self, file: &OpenFile, a: FileAttributes) -> Option<FsResult<()>> {
        file.send_behind(&self.sftp, a).await
    }

    /// READ of `size` bytes at `offset` of the open file `fh`, once the writes in flight on
    /// its other channels landed: from its read-ahead when the reader is sequential
    /// ([`ReadAhead`](crate::fs::ahead::readahead::ReadAhead)), else parallel SFTP READs of the
    /// server's maximum size; what is fetched ahead counts against `budget`. A read the
    /// file's entry in the content cache holds whole is answered from it first ([`content`]);
    /// otherwise either fetches through the cache.
    pub async fn read(
        &self,
        fh: u64,
        offset: u64,
        size: u32,
        budget: &readahead::Budget,
    ) -> FsResult<Vec<u8>> {
        let file = self.get(fh)?;
        self.settle(file.ino).await;
        // All cached: from the disk, before (and without) read-ahead, which would only move
        // the same bytes through tasks and buffers of its own.
        if let Some(bytes) = content::DataCache::answer(file.content.as_ref(), offset, size).await {
            file.readahead.passed(offset, size);
            return Ok(bytes);
        }
        let eof_at = file.known_size();
        let (sftp, handle) = (Arc::clone(&self.sftp), file.handle.clone());
        let fetch: readahead::Fetcher = Arc::new(move |offset, len| {
            let (sftp, handle) = (Arc::clone(&sftp), handle.clone());
            Box::pin(async move { Ok(sftp.read_at(&handle, offset, len, eof_at).await?) })
        });
        let fetch = content::DataCache::through(file.content.as_ref(), fetch);
        let source = readahead::Source {
            fetch: &fetch,
            piece_len: self.sftp.read_len(),
            eof_hint: eof_at,
            budget,
            rtt: self.sftp.rtt(),
        };
        file.readahead.read(offset, size, &source).await
    }

    /// WRITE of `data` at `offset` of `file`: cut at stripe boundaries (the other handles start
    /// opening in the background when this write reaches [`STRIPED_FROM`], [`PREPARE_FROM`] on
    /// a long link, and striping starts at the first write after they are; see [`stripes`]),
    /// each piece queued as SFTP WRITEs behind the file's earlier writes before this returns
    /// ([`write_behind`]), the size it gives recorded on every open file of the inode, and
    /// `queued` called for each piece once its packets are on their way. The acknowledgements
    /// are awaited behind; a failure becomes `refused(error)` and is reported by the file's
    /// next write, flush, fsync or close.
    pub async fn write<L, R, F>(
        &self,
        file: &Arc<OpenFile>,
        offset: u64,
        data: &[u8],
        at: &Arc<L>,
        queued: impl Fn(),
        refused: R,
    ) -> FsResult<()>
    where
        L: Locate,
        R: Fn(FsError) -> F + Clone + Send + 'static,
        F: Future<Output = FsError> + Send,
    {
        let end = offset + data.len() as u64;
        if file.stripable() {
            let counts = &self.striped;
            // The other handles open in the background and are put in use by the first write
            // after they are open; the writes never wait for them (on a server whose shell
            // starts slowly, a channel took 100 ms to open even at RTT 0).
            if file.stripes.start_ready(|| counts.started()) {
                file.writes
                    .set_channels(file.stripes.channels(), self.sftp.rtt());
            } else if !file.stripes.active() {
                let long_link = self.sftp.rtt().is_some_and(|r| r >= PREPARE_RTT);
                let from = if long_link {
                    PREPARE_FROM
                } else {
                    STRIPED_FROM
                };
                if end >= from && file.stripes.should_prepare() {
                    self.prepare_striping(file, at);
                }
            }
        }
        let rtt = self.sftp.rtt();
        for stripes::Piece {
            at,
            data: piece,
            handle,
            in_flight,
        } in file.stripes.pieces(&file.handle, offset, data)
        {
            file.writes
                .write(Some(at), piece.len(), rtt, || async {
                    let acked = self.sftp.send_write(&handle, at, piece).await?;
                    self.each_of(file.ino, |f| f.wrote_to(at + piece.len() as u64));
                    queued();
                    let refused = refused.clone();
                    Ok(async move {
                        let r = acked.await;
                        drop(in_flight);
                        match r {
                            Ok(()) => Ok(()),
                            Err(e) => Err(refused(e.into()).await),
                        }
                    })
                })
                .await?;
        }
        Ok(())
    }

    /// Opens `file` on the connection's other channels in the background
    /// ([`stripes::Stripes::prepare`]); a later write starts striping once they are open.
    fn prepare_striping<L: Locate>(&self, file: &Arc<OpenFile>, at: &Arc<L>) {
        let (sftp, file, at) = (Arc::clone(&self.sftp), Arc::clone(file), Arc::clone(at));
        tokio::spawn(async move {
            let ino = file.ino;
            let path = || at.server_path(ino);
            let follow = |h: &Handle| follow_renames(h, ino, &at);
            file.stripes.prepare(&sftp, path, follow).await;
        });
    }

    /// Waits until the writes in flight through other channels on any open file of `ino` are
    /// acknowledged, so a request about the file sees them (their errors stay with the file,
    /// reported by its next write, flush, fsync or close).
    pub async fn settle(&self, ino: u64) {
        self.settle_where(|f| f.ino == ino).await;
    }

    /// [`OpenFiles::settle`] for every open file: before a directory listing, whose
    /// attributes the server computes on channel 0 and which the cache (and readdirplus) then
    /// hands out as the files' attributes.
    pub async fn settle_all(&self) {
        self.settle_where(|_| true).await;
    }

    async fn settle_where(&self, pick: impl Fn(&OpenFile) -> bool) {
        // Every lookup, getattr and listing comes here: with no striped file open, no walk.
        if !self.striped.any_open() {
            return;
        }
        let striped = self.table.all_where(|f| pick(f) && f.stripes.active());
        for f in striped {
            let _ = f.writes.drain().await;
        }
    }

    /// RELEASE of `fh`: takes the file out of the table, drops its read-ahead (its READs in
    /// flight end or are cancelled), waits for its writes, closes its stripes, then CLOSEs
    /// its handle, which waits for any request still using it. `None`: `fh` was not open.
    pub async fn release(&self, fh: u64) -> Option<Released> {
        let file = self.table.remove(fh)?;
        file.readahead.clear();
        let written = file.writes.drain().await;
        if file.stripes.close(&self.sftp).await {
            self.striped.closed();
        }
        let closed = self.sftp.close(&file.handle).await;
        Some(Released {
            ino: file.ino,
            written,
            closed,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::remote::fake_server::FakeServer;

    /// A directory's `fh` (the kernel may hand one where a file's goes: SETATTR with FATTR_FH
    /// on an open directory) finds no open file: EBADF, never another file.
    #[tokio::test]
    async fn an_fh_that_is_no_open_file_is_ebadf() {
        let server = FakeServer::new(1);
        let numbers = FhNumbers::default();
        let files = OpenFiles::new(server.connect().await, &numbers);
        let dirs: HandleTable<()> = HandleTable::new(&numbers);
        let fh = dirs.insert(());
        let before = server.requests();
        assert_eq!(files.get(fh).unwrap_err().errno, libc::EBADF);
        assert!(files.on(Some(fh), 1).is_none());
        assert!(!files.is_open(1));
        assert!(files.release(fh).await.is_none(), "nothing to close");
        assert_eq!(server.requests(), before, "nothing sent");
    }
}
