//! One open file: its server handle, what we know of it through that handle (size, the
//! attributes of a file it created, whether the program closed it), its writes in flight
//! ([`super::write_behind`]), its stripes ([`super::stripes`]) and its read-ahead.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use russh_sftp::protocol::{FileAttributes, OpenFlags};

use super::stripes::Stripes;
use super::write_behind::WriteBehind;
use crate::fs::ahead::readahead::ReadAhead;
use crate::fs::errno::{FsError, FsResult};
use crate::remote::{sftp::Sftp, sftp::SftpError, sftp::handle::Handle};

/// SFTP open flags for POSIX `open(2)` flags.
pub fn open_flags(flags: u32) -> OpenFlags {
    let flags = flags as i32;
    let mut f = match flags & libc::O_ACCMODE {
        libc::O_WRONLY => OpenFlags::WRITE,
        libc::O_RDWR => OpenFlags::READ | OpenFlags::WRITE,
        _ => OpenFlags::READ,
    };
    if flags & libc::O_APPEND != 0 {
        f |= OpenFlags::APPEND;
    }
    if flags & libc::O_CREAT != 0 {
        f |= OpenFlags::CREATE;
    }
    if flags & libc::O_EXCL != 0 {
        f |= OpenFlags::EXCLUDE;
    }
    if flags & libc::O_TRUNC != 0 {
        f |= OpenFlags::TRUNCATE;
    }
    f
}

/// An open file.
#[derive(Debug)]
pub struct OpenFile {
    /// The server's handle.
    pub handle: Handle,
    /// The inode it was opened on.
    pub ino: u64,
    /// Opened for writing (a truncate through it is allowed).
    pub writable: bool,
    /// Opened with O_APPEND (the server picks the offsets: never striped).
    pub append: bool,
    /// Writes sent but not yet acknowledged, and the first error one met.
    pub writes: WriteBehind,
    /// Its handles on the connection's other channels, once its writes are striped.
    pub stripes: Stripes,
    /// Pieces of the file fetched ahead of a sequential reader.
    pub readahead: ReadAhead,
    /// Its entry in the content cache, validated at open ([`super::content`]).
    pub content: Option<std::sync::Arc<sshfs_cache::content::Entry>>,
    /// The file's size as last known through this handle (`u64::MAX`: unknown); only a hint
    /// that lets a short READ at the end count as the end.
    size: AtomicU64,
    /// For a file this handle created: its attributes as the server reported them at the
    /// create, kept up to date with the mode, owner and times we set through it since (the size
    /// is [`OpenFile::known_size`]). A chmod, chown or utimens of it is then answered from
    /// them and sent behind the writes ([`crate::fs::setattr`]).
    own_attrs: Mutex<Option<FileAttributes>>,
    /// A close() of it was seen (FLUSH): the program may hold no descriptor of it any more, and
    /// its RELEASE may come at any moment. A change made by path is then never sent through
    /// this handle ([`OpenFile::takes_changes_behind`]).
    flushed: AtomicBool,
}

impl OpenFile {
    /// A file record for a fresh server handle opened with the `open(2)` `flags`; `size` if
    /// known.
    pub fn new(handle: Handle, ino: u64, flags: u32, size: Option<u64>) -> Self {
        Self {
            handle,
            ino,
            writable: flags as i32 & libc::O_ACCMODE != libc::O_RDONLY,
            append: flags as i32 & libc::O_APPEND != 0,
            writes: WriteBehind::default(),
            stripes: Stripes::default(),
            readahead: ReadAhead::default(),
            content: None,
            size: AtomicU64::new(size.unwrap_or(u64::MAX)),
            own_attrs: Mutex::new(None),
            flushed: AtomicBool::new(false),
        }
    }

    /// Records a close() of the file (FLUSH). For good: a later write through another
    /// descriptor of it does not undo it, the rule only costs a round trip then.
    pub fn note_close(&self) {
        self.flushed.store(true, Ordering::Release);
    }

    /// Whether a close() of the file was seen ([`OpenFile::note_close`]).
    pub fn close_seen(&self) -> bool {
        self.flushed.load(Ordering::Acquire)
    }

    /// Whether a chmod, chown or utimens of `ino` may ride behind this handle's writes
    /// ([`crate::fs::setattr`]): the handle created the file, is open for writing, and the program
    /// never closed a descriptor of it. After a close() the change may come by path from a
    /// program that holds no descriptor (`git` does `close`, then `utime(path)`) while the
    /// RELEASE of this handle is under way: it must go by path then, and a failure of it must
    /// be the call's, not left for a close that already happened.
    pub fn takes_changes_behind(&self, ino: u64) -> bool {
        self.ino == ino
            && self.writable
            && !self.close_seen()
            && !self.handle.is_closed()
            && self.own_attrs.lock().is_ok_and(|own| own.is_some())
    }

    /// Records the attributes of the file this handle just created (see `own_attrs`).
    pub fn set_created(&self, attrs: FileAttributes) {
        if let Ok(mut own) = self.own_attrs.lock() {
            *own = Some(attrs);
        }
    }

    /// The attributes of a file this handle created, as far as we changed them, with the
    /// size known through it; `None` for a file it did not create.
    pub fn own_attrs(&self) -> Option<FileAttributes> {
        let mut attrs = self.own_attrs.lock().ok()?.clone()?;
        attrs.size = self.known_size().or(attrs.size);
        Some(attrs)
    }

    /// Records the attributes after a change we made through this handle.
    pub fn set_own_attrs(&self, attrs: FileAttributes) {
        if let Ok(mut own) = self.own_attrs.lock()
            && own.is_some()
        {
            *own = Some(attrs);
        }
    }

    /// Whether its writes may go through several channels ([`super::stripes`]).
    pub fn stripable(&self) -> bool {
        self.writable && !self.append
    }

    /// The size last known, if any.
    pub fn known_size(&self) -> Option<u64> {
        Some(self.size.load(Ordering::Relaxed)).filter(|s| *s != u64::MAX)
    }

    /// Records that the file is now `size` bytes (truncate).
    pub fn set_size(&self, size: u64) {
        self.size.store(size, Ordering::Relaxed);
    }

    /// Records a write that ends at `end`.
    pub fn wrote_to(&self, end: u64) {
        let _ = self
            .size
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                (s != u64::MAX && end > s).then_some(end)
            });
    }
}

impl OpenFile {
    /// FLUSH (a close()): records it ([`OpenFile::note_close`]) and waits until the server
    /// acknowledged every write; the first failure of any is the answer.
    pub async fn flush(&self) -> FsResult<()> {
        self.note_close();
        self.writes.drain().await
    }

    /// Queues FSETSTAT `a` behind the writes of this file, like a write: not waited for, a
    /// failure is reported by the next write, flush, fsync or close. `None`: its handle was
    /// closed before the packet could be queued (the program closed the file on another
    /// thread, and its RELEASE came): nothing was sent, and the file's writes are untouched.
    pub async fn send_behind(
        &self,
        sftp: &std::sync::Arc<Sftp>,
        a: FileAttributes,
    ) -> Option<FsResult<()>> {
        let released = AtomicBool::new(false);
        let queued = self
            .writes
            .write(None, 0, None, || async {
                let acked = sftp.send_fsetstat(&self.handle, a).await.map_err(|e| {
                    released.store(matches!(e, SftpError::HandleClosed), Ordering::Relaxed);
                    FsError::from(e)
                })?;
                Ok(async move { acked.await.map_err(FsError::from) })
            })
            .await;
        if released.load(Ordering::Relaxed) {
            return None;
        }
        // A close() on another thread may have drained the writes just before this change was
        // queued: nobody would hear of its failure then, so it is waited for here.
        if queued.is_ok() && self.close_seen() {
            return Some(self.writes.drain().await);
        }
        Some(queued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_flag_mapping() {
        let f = |x: i32| open_flags(x as u32);
        assert_eq!(f(libc::O_RDONLY).bits(), OpenFlags::READ.bits());
        assert_eq!(f(libc::O_WRONLY).bits(), OpenFlags::WRITE.bits());
        assert_eq!(
            f(libc::O_RDWR | libc::O_APPEND).bits(),
            (OpenFlags::READ | OpenFlags::WRITE | OpenFlags::APPEND).bits()
        );
        assert_eq!(
            f(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC).bits(),
            (OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::TRUNCATE)
                .bits()
        );
    }
}
