//! One large file written through several SFTP channels at once.
//!
//! OpenSSH's server grants each SSH channel a fixed window of about 2 MiB: however many
//! writes a client queues, one channel carries about 100 MiB/s at 20 ms round trip. Once a
//! file's writes reach [`STRIPED_FROM`], the file is opened again (write-only, never created
//! or truncated) on the connection's other channels, and each [`STRIPE`]-sized piece of the
//! file goes through the channel its offset picks. How many: enough that their windows carry
//! a fast link's rate at the measured round trip ([`channels_for`]): [`CHANNELS`] on a short
//! link, up to [`MAX_CHANNELS`] on a long one (more than [`CHANNELS`] are opened on the
//! connection only when a file asks for them). The count is fixed for the file once striping
//! starts, so a byte keeps its channel.
//!
//! What keeps it a file and not a race:
//! * **A byte always takes the same channel** (the stripe of its offset), so writes to the same
//!   place reach the server in the order the program made them, as on one channel.
//! * **Switching is a barrier**: before the first striped write, every write queued so far on
//!   channel 0 is acknowledged, so none of them can land after a later write to the same place.
//! * **Requests that look at the file wait for the stripes** ([`super::OpenFiles::settle`]): a
//!   read, a stat, a truncate or an open of the file first waits until the writes in flight on
//!   the other channels are acknowledged, since the server answers each channel on its own; a
//!   directory listing (it carries the files' attributes) waits for every striped file's.
//!   flush, fsync and release wait for every write anyway.
//! * After a reconnect each handle is reopened on its own channel of the new connection (or on
//!   channel 0 if fewer channels could be opened there): still one channel per byte.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use russh_sftp::protocol::OpenFlags;

use super::write_behind::WriteBehind;
use crate::fs::ahead::pacing::channels_for;
use crate::remote::sftp::handle::Handle;
use crate::remote::sftp::{CHANNELS, MAX_CHANNELS, Sftp, SftpError};

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

    /// `data` written at `offset` of the file whose own handle (channel 0) is `own`, cut at
    /// stripe boundaries, each piece with the handle it goes through.
    pub fn pieces<'d>(
        &self,
        own: &Handle,
        offset: u64,
        data: &'d [u8],
    ) -> Vec<(u64, &'d [u8], Handle)> {
        if !self.active() {
            return vec![(offset, data, own.clone())];
        }
        let mut pieces = Vec::new();
        let mut at = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let to_boundary = (STRIPE - at % STRIPE) as usize;
            let (piece, more) = rest.split_at(to_boundary.min(rest.len()));
            let handle = self.handle_for(at).unwrap_or_else(|| own.clone());
            pieces.push((at, piece, handle));
            at += piece.len() as u64;
            rest = more;
        }
        pieces
    }

    /// Opens the file at `path` (asked only once the channels are known) on the connection's
    /// other channels and, once every write queued on its own channel (`writes`) is
    /// acknowledged, sends the following ones striped; `follow` makes each new handle follow
    /// the file's renames. Tried once per open file; if no other channel can be opened, the
    /// file stays on one. Returns whether striping started.
    pub async fn start(
        &self,
        sftp: &Sftp,
        path: impl FnOnce() -> Option<String>,
        writes: &WriteBehind,
        follow: impl Fn(&Handle),
    ) -> bool {
        let mut tried = self.tried.lock().await;
        if std::mem::replace(&mut *tried, true) {
            return false;
        }
        let want = channels_for(sftp.rtt(), CHANNELS, MAX_CHANNELS);
        let Ok(channels) = sftp.channels(want).await else {
            *tried = false; // the link is down: try again at a later write
            return false;
        };
        let Some(path) = path() else {
            return false;
        };
        let opens = (1..channels).map(|k| sftp.open_on_channel(&path, OpenFlags::WRITE, k));
        let mut handles = Vec::new();
        for opened in futures_util::future::join_all(opens).await {
            match opened {
                Ok(h) => handles.push(h),
                Err(e) => {
                    tracing::debug!(path, "not striping: {e}");
                    for h in handles.drain(..) {
                        let _ = sftp.close(&h).await;
                    }
                    // Not for good if only the connection failed meanwhile.
                    *tried = !matches!(e, SftpError::Transport(_) | SftpError::Timeout(_));
                    return false;
                }
            }
        }
        if handles.is_empty() {
            return false;
        }
        // The barrier: nothing queued on channel 0 may land after a striped write.
        if writes.drain().await.is_err() {
            for h in handles {
                let _ = sftp.close(&h).await;
            }
            return false;
        }
        for h in &handles {
            follow(h);
        }
        if let Ok(mut slot) = self.handles.lock() {
            *slot = handles;
        }
        true
    }

    /// Closes the extra handles (the file's writes were drained). Returns whether there were
    /// any (the file was striped).
    pub async fn close(&self, sftp: &Sftp) -> bool {
        let handles = self
            .handles
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default();
        let had = !handles.is_empty();
        for h in handles {
            if let Err(e) = sftp.close(&h).await {
                tracing::debug!("closing a striped handle failed: {e}");
            }
        }
        had
    }
}

/// How many files were striped, and how many of them are open.
#[derive(Debug, Default)]
pub struct StripeCounts {
    /// Files whose writes went through several channels.
    files: AtomicU64,
    /// Of those, the ones still open.
    open: AtomicUsize,
}

impl StripeCounts {
    /// Counts a file that started striping.
    pub fn started(&self) {
        self.files.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Release);
    }

    /// Counts a striped file closed.
    pub fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Release);
    }

    /// Whether any striped file is open.
    pub fn any_open(&self) -> bool {
        self.open.load(Ordering::Acquire) != 0
    }

    /// Files striped since the mount.
    pub fn files(&self) -> u64 {
        self.files.load(Ordering::Relaxed)
    }
}
