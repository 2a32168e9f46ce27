//! One large file written through several SFTP channels at once.
//!
//! OpenSSH's server grants each SSH channel a fixed window of about 2 MiB: however many
//! writes a client queues, one channel carries about 100 MiB/s at 20 ms round trip. Once a
//! file's writes reach [`STRIPED_FROM`], the file is opened again (write-only, never created
//! or truncated) on the connection's other channels ([`crate::remote::sftp::CHANNELS`]), and
//! each [`STRIPE`]-sized piece of the file goes through the channel its offset picks.
//!
//! What keeps it a file and not a race:
//! * **A byte always takes the same channel** (the stripe of its offset), so writes to the same
//!   place reach the server in the order the program made them, as on one channel.
//! * **Switching is a barrier**: before the first striped write, every write queued so far on
//!   channel 0 is acknowledged, so none of them can land after a later write to the same place.
//! * **Requests that look at the file wait for the stripes** ([`SshFs::settle_stripes`]): a
//!   read, a stat, a truncate or an open of the file first waits until the writes in flight on
//!   the other channels are acknowledged, since the server answers each channel on its own; a
//!   directory listing (it carries the files' attributes) waits for every striped file's.
//!   flush, fsync and release wait for every write anyway.
//! * After a reconnect each handle is reopened on its own channel of the new connection (or on
//!   channel 0 if fewer channels could be opened there): still one channel per byte.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use russh_sftp::protocol::OpenFlags;

use super::SshFs;
use super::handles::OpenFile;
use crate::remote::{Handle, SftpError};

/// The size of a stripe: the file's bytes `[k * STRIPE, (k + 1) * STRIPE)` go through
/// channel `k % channels`.
pub const STRIPE: u64 = 1024 * 1024;
/// A file is striped once a write reaches this offset: smaller files never open more handles.
pub const STRIPED_FROM: u64 = 8 * 1024 * 1024;

/// The extra handles of one open file (none until it is striped).
#[derive(Debug, Default)]
pub struct Stripes {
    /// Handles on channels 1.. (index 0 is channel 1); empty: not striped.
    handles: std::sync::Mutex<Vec<Handle>>,
    /// Striping was tried (once per open file).
    tried: tokio::sync::Mutex<bool>,
}

impl Stripes {
    /// Whether writes go through several channels.
    pub fn active(&self) -> bool {
        self.handles.lock().is_ok_and(|h| !h.is_empty())
    }

    /// The handle for the byte at `offset`; `None` for channel 0 (the file's own handle).
    fn handle_for(&self, offset: u64) -> Option<Handle> {
        let handles = self.handles.lock().ok()?;
        let channels = handles.len() as u64 + 1;
        let k = (offset / STRIPE) % channels;
        let i = usize::try_from(k.checked_sub(1)?).ok()?;
        handles.get(i).cloned()
    }

    /// The extra handles, taken for closing.
    pub fn take(&self) -> Vec<Handle> {
        self.handles
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default()
    }
}

impl SshFs {
    /// `data` written at `offset` of `file`, cut at stripe boundaries, each piece with the
    /// handle it goes through. Starts striping the file when this write reaches
    /// [`STRIPED_FROM`] (see the module doc).
    pub(super) async fn striped_pieces<'d>(
        self: &Arc<Self>,
        file: &Arc<OpenFile>,
        offset: u64,
        data: &'d [u8],
    ) -> Vec<(u64, &'d [u8], Handle)> {
        let end = offset + data.len() as u64;
        if !file.stripes.active() && end >= STRIPED_FROM && file.stripable() {
            self.start_striping(file).await;
        }
        if !file.stripes.active() {
            return vec![(offset, data, file.handle.clone())];
        }
        let mut pieces = Vec::new();
        let mut at = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let to_boundary = (STRIPE - at % STRIPE) as usize;
            let (piece, more) = rest.split_at(to_boundary.min(rest.len()));
            let handle = file
                .stripes
                .handle_for(at)
                .unwrap_or_else(|| file.handle.clone());
            pieces.push((at, piece, handle));
            at += piece.len() as u64;
            rest = more;
        }
        pieces
    }

    /// Opens `file` on the connection's other channels and, once every write queued on its
    /// own channel is acknowledged, sends the following ones striped. Tried once per open
    /// file; if no other channel can be opened, the file stays on one.
    async fn start_striping(self: &Arc<Self>, file: &Arc<OpenFile>) {
        let mut tried = file.stripes.tried.lock().await;
        if std::mem::replace(&mut *tried, true) {
            return;
        }
        let Ok(channels) = self.sftp.channels().await else {
            *tried = false; // the link is down: try again at a later write
            return;
        };
        let Ok(path) = self.path_of(file.ino) else {
            return;
        };
        let opens = (1..channels).map(|k| self.sftp.open_on_channel(&path, OpenFlags::WRITE, k));
        let mut handles = Vec::new();
        for opened in futures_util::future::join_all(opens).await {
            match opened {
                Ok(h) => handles.push(h),
                Err(e) => {
                    tracing::debug!(path, "not striping: {e}");
                    for h in handles.drain(..) {
                        let _ = self.sftp.close(&h).await;
                    }
                    // Not for good if only the connection failed meanwhile.
                    *tried = !matches!(e, SftpError::Transport(_) | SftpError::Timeout(_));
                    return;
                }
            }
        }
        if handles.is_empty() {
            return;
        }
        // The barrier: nothing queued on channel 0 may land after a striped write.
        if file.writes.drain().await.is_err() {
            for h in handles {
                let _ = self.sftp.close(&h).await;
            }
            return;
        }
        let ino = file.ino;
        for h in &handles {
            self.follow_renames(h, ino);
        }
        if let Ok(mut slot) = file.stripes.handles.lock() {
            *slot = handles;
        }
        self.striped_files.fetch_add(1, Ordering::Relaxed);
        self.striped_open.fetch_add(1, Ordering::Release);
    }

    /// Waits until the writes in flight through other channels on any open file of `ino` are
    /// acknowledged, so a request about the file sees them (their errors stay with the file,
    /// reported by its next write, flush, fsync or close).
    pub(super) async fn settle_stripes(&self, ino: u64) {
        self.settle_stripes_where(|f| f.ino == ino).await;
    }

    /// [`SshFs::settle_stripes`] for every open file: before a directory listing, whose
    /// attributes the server computes on channel 0 and which the cache (and readdirplus) then
    /// hands out as the files' attributes.
    pub(super) async fn settle_all_stripes(&self) {
        self.settle_stripes_where(|_| true).await;
    }

    async fn settle_stripes_where(&self, pick: impl Fn(&OpenFile) -> bool) {
        // Every lookup, getattr and listing comes here: with no striped file open, no walk.
        if self.striped_open.load(Ordering::Acquire) == 0 {
            return;
        }
        let striped = self.files.all_where(|f| pick(f) && f.stripes.active());
        for f in striped {
            let _ = f.writes.drain().await;
        }
    }

    /// Closes the extra handles of `file` (its writes were drained).
    pub(super) async fn close_stripes(&self, file: &OpenFile) {
        let handles = file.stripes.take();
        if !handles.is_empty() {
            self.striped_open.fetch_sub(1, Ordering::Release);
        }
        for h in handles {
            if let Err(e) = self.sftp.close(&h).await {
                tracing::debug!("closing a striped handle failed: {e}");
            }
        }
    }
}
