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
//! * **Switching needs no barrier**: striping starts at the end of the furthest write made so
//!   far (`from`); every byte before it, which went through channel 0, keeps going there, and
//!   every byte after it was never written before, so no write can overtake an earlier one to
//!   the same place. The writes in flight on channel 0 go on while the next ones are striped.
//! * **The handles open behind the writes** on a long link ([`PREPARE_FROM`]): their round
//!   trips overlap the first writes instead of stopping them.
//! * **Requests that look at the file wait for the stripes** ([`super::OpenFiles::settle`]): a
//!   read, a stat, a truncate or an open of the file first waits until the writes in flight on
//!   the other channels are acknowledged, since the server answers each channel on its own; a
//!   directory listing (it carries the files' attributes) waits for every striped file's.
//!   flush, fsync and release wait for every write anyway.
//! * After a reconnect each handle is reopened on its own channel of the new connection (or on
//!   channel 0 if fewer channels could be opened there): still one channel per byte.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use russh_sftp::protocol::OpenFlags;

use crate::fs::ahead::pacing::channels_for;
use crate::remote::sftp::handle::Handle;
use crate::remote::sftp::{CHANNELS, MAX_CHANNELS, Sftp, SftpError};

/// The size of a stripe: the file's bytes `[k * STRIPE, (k + 1) * STRIPE)` (from where
/// striping started) go through channel `k % channels`.
pub const STRIPE: u64 = 1024 * 1024;
/// A file is striped once a write reaches this offset: smaller files never open more handles.
pub const STRIPED_FROM: u64 = 8 * 1024 * 1024;
/// On a link whose round trip is at least [`PREPARE_RTT`], the other handles are opened in
/// the background once a write reaches this offset, and striping starts as soon as they are
/// open: the round trips of opening them overlap the writes through the file's own channel.
pub const PREPARE_FROM: u64 = STRIPE;
/// See [`PREPARE_FROM`].
pub const PREPARE_RTT: std::time::Duration = std::time::Duration::from_millis(10);

/// The extra handles of one open file (none until it is striped).
#[derive(Debug, Default)]
pub struct Stripes {
    state: std::sync::Mutex<State>,
    /// Opening the handles was tried for good (once per open file); held while they open.
    tried: tokio::sync::Mutex<bool>,
    /// A background opening was started ([`PREPARE_FROM`]).
    preparing: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    /// Handles on channels 1.. (index 0 is channel 1); empty: not striped.
    handles: Vec<Handle>,
    /// Handles opened and not in use yet.
    ready: Vec<Handle>,
    /// Bytes from here on are striped; those before it always go through the file's own
    /// handle, which carried every write made before striping started.
    from: u64,
    /// The end of the furthest write cut into pieces so far.
    high: u64,
    /// The file was closed: no handle may be put in use any more.
    closed: bool,
}

impl Stripes {
    /// Whether writes go through several channels.
    pub fn active(&self) -> bool {
        self.state.lock().is_ok_and(|s| !s.handles.is_empty())
    }

    /// `data` written at `offset` of the file whose own handle (channel 0) is `own`, cut at
    /// stripe boundaries, each piece with the handle it goes through.
    pub fn pieces<'d>(
        &self,
        own: &Handle,
        offset: u64,
        data: &'d [u8],
    ) -> Vec<(u64, &'d [u8], Handle)> {
        let Ok(mut state) = self.state.lock() else {
            return vec![(offset, data, own.clone())];
        };
        // Recorded under the lock that starts striping: a write cut before it started ends
        // below `from`, so a byte it carries never changes channel.
        state.high = state.high.max(offset + data.len() as u64);
        if state.handles.is_empty() {
            return vec![(offset, data, own.clone())];
        }
        let channels = state.handles.len() as u64 + 1;
        let mut pieces = Vec::new();
        let mut at = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let (len, handle) = if at < state.from {
                (state.from - at, own.clone())
            } else {
                let k = (at - state.from) / STRIPE;
                let handle = usize::try_from(k % channels)
                    .ok()
                    .and_then(|c| c.checked_sub(1))
                    .and_then(|i| state.handles.get(i))
                    .unwrap_or(own)
                    .clone();
                (STRIPE - (at - state.from) % STRIPE, handle)
            };
            let (piece, more) =
                rest.split_at(usize::try_from(len).unwrap_or(usize::MAX).min(rest.len()));
            pieces.push((at, piece, handle));
            at += piece.len() as u64;
            rest = more;
        }
        pieces
    }

    /// Whether a background opening ([`Stripes::prepare`]) should be started now; true once.
    pub fn should_prepare(&self) -> bool {
        !self.preparing.swap(true, Ordering::AcqRel)
    }

    /// Opens the file at `path` (asked only once the channels are known) on the connection's
    /// other channels and keeps the handles ready ([`Stripes::start`] puts them in use);
    /// `follow` makes each new handle follow the file's renames. Tried once per open file; if
    /// no other channel can be opened, the file stays on one.
    pub async fn prepare(
        &self,
        sftp: &Sftp,
        path: impl FnOnce() -> Option<String>,
        follow: impl Fn(&Handle),
    ) {
        let mut tried = self.tried.lock().await;
        if std::mem::replace(&mut *tried, true) {
            return;
        }
        let want = channels_for(sftp.rtt(), CHANNELS, MAX_CHANNELS);
        let Ok(channels) = sftp.channels(want).await else {
            *tried = false; // the link is down: try again at a later write
            return;
        };
        let Some(path) = path() else {
            return;
        };
        let opens = (1..channels).map(|k| sftp.open_on_channel(&path, OpenFlags::WRITE, k));
        let mut handles = Vec::new();
        for opened in futures_util::future::join_all(opens).await {
            match opened {
                Ok(h) => handles.push(h),
                Err(e) => {
                    tracing::debug!(path, "not striping: {e}");
                    close_all(sftp, handles).await;
                    // Not for good if only the connection failed meanwhile.
                    *tried = !matches!(e, SftpError::Transport(_) | SftpError::Timeout(_));
                    return;
                }
            }
        }
        for h in &handles {
            follow(h);
        }
        tracing::debug!(path, handles = handles.len(), "opened for striping");
        let unused = match self.state.lock() {
            Ok(mut state) if !state.closed => {
                state.ready = handles;
                Vec::new()
            }
            _ => handles,
        };
        close_all(sftp, unused).await;
    }

    /// Puts the handles opened by [`Stripes::prepare`] in use, if there are: the writes cut
    /// from now on are striped from the end of the furthest one cut so far (no write in
    /// flight needs to be waited for: every byte before that point stays on the file's own
    /// channel). `started` is called if striping started. Returns whether it did.
    pub fn start_ready(&self, started: impl FnOnce()) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        if state.closed || state.ready.is_empty() || !state.handles.is_empty() {
            return false;
        }
        state.handles = std::mem::take(&mut state.ready);
        state.from = state.high;
        tracing::debug!(from = state.from, "striping");
        started();
        true
    }

    /// [`Stripes::prepare`] (waiting for one under way), then [`Stripes::start_ready`].
    pub async fn start(
        &self,
        sftp: &Sftp,
        path: impl FnOnce() -> Option<String>,
        follow: impl Fn(&Handle),
        started: impl FnOnce(),
    ) -> bool {
        self.prepare(sftp, path, follow).await;
        self.start_ready(started)
    }

    /// Closes the extra handles (the file's writes were drained), and any opened later.
    /// Returns whether some were in use (the file was striped).
    pub async fn close(&self, sftp: &Sftp) -> bool {
        let (handles, ready) = match self.state.lock() {
            Ok(mut state) => {
                state.closed = true;
                (
                    std::mem::take(&mut state.handles),
                    std::mem::take(&mut state.ready),
                )
            }
            Err(_) => (Vec::new(), Vec::new()),
        };
        let had = !handles.is_empty();
        close_all(sftp, handles).await;
        close_all(sftp, ready).await;
        had
    }
}

async fn close_all(sftp: &Sftp, handles: Vec<Handle>) {
    for h in handles {
        if let Err(e) = sftp.close(&h).await {
            tracing::debug!("closing a striped handle failed: {e}");
        }
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
