//! One large file written through several SFTP channels at once.
//!
//! OpenSSH's server grants each SSH channel a fixed window of about 2 MiB: however many
//! writes a client queues, one channel carries about 100 MiB/s at 20 ms round trip. Once a
//! file's writes reach [`STRIPED_FROM`] ([`PREPARE_FROM`] on a long link), the file is opened
//! again (write-only, never created or truncated) on the connection's other channels, in the
//! background, while the writes go on through its own; from the first write after those
//! handles are open, each [`STRIPE`]-sized piece of the file goes through the channel its
//! offset picks. On a long link the channels themselves are opened at mount
//! ([`open_channels_ahead`]). How many: enough that their windows carry
//! a fast link's rate at the measured round trip ([`channels_for`]): [`CHANNELS`] on a short
//! link, up to [`MAX_CHANNELS`] on a long one (more than [`CHANNELS`] are opened on the
//! connection only when a file asks for them, and more than [`CONNECTION_CHANNELS`] on a
//! second connection to the server, made as a reconnect is when a large write first asks for
//! it: at 100 ms, 12 channels). The first [`CHANNELS`] are put in use as soon as they are
//! open, the others when they are.
//!
//! What keeps it a file and not a race:
//! * **A byte always takes the same channel** (the one its stripe was given when first
//!   written), so writes to the same place reach the server in the order the program made
//!   them, as on one channel. A stripe never written goes to the channel with the fewest bytes
//!   in flight (ties in turn): the file's own channel, which carried every write until the
//!   others were open, drains what it holds instead of keeping that backlog to the end (at
//!   100 ms it held 10 MiB of a 32 MiB window throughout, the others 3 to 4).
//! * **Switching needs no barrier**: striping starts at the end of the furthest write made so
//!   far (`from`); every byte before it, which went through channel 0, keeps going there, and
//!   every byte after it was never written before, so no write can overtake an earlier one to
//!   the same place. The writes in flight on channel 0 go on while the next ones are striped.
//! * **The handles open behind the writes**: their round trips (and a new channel's start on
//!   the server, a shell and `sftp-server`, 100 ms even at RTT 0 where the shell's startup
//!   files are heavy) overlap the writes instead of stopping them.
//! * **Requests that look at the file wait for the stripes** ([`super::OpenFiles::settle`]): a
//!   read, a stat, a truncate or an open of the file first waits until the writes in flight on
//!   the other channels are acknowledged, since the server answers each channel on its own; a
//!   directory listing (it carries the files' attributes) waits for every striped file's.
//!   flush, fsync and release wait for every write anyway.
//! * After a reconnect each handle is reopened on its own channel of the new connection (or on
//!   channel 0 if fewer channels could be opened there): still one channel per byte.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use russh_sftp::protocol::OpenFlags;

use crate::fs::ahead::pacing::channels_for;
use crate::remote::sftp::handle::Handle;
use crate::remote::sftp::{CHANNELS, CONNECTION_CHANNELS, MAX_CHANNELS, Sftp, SftpError};

/// The size of a stripe: the file's bytes `[k * STRIPE, (k + 1) * STRIPE)` (from where
/// striping started) go through one channel, the one stripe `k` was given when first written
/// ([`Stripes::pieces`]).
pub const STRIPE: u64 = 1024 * 1024;
/// A file's other handles are opened once a write reaches this offset: smaller files never
/// open more handles.
pub const STRIPED_FROM: u64 = 8 * 1024 * 1024;
/// On a link whose round trip is at least [`PREPARE_RTT`], the other handles are opened
/// once a write reaches this offset already: a round trip there is worth more of the file.
pub const PREPARE_FROM: u64 = STRIPE;
/// See [`PREPARE_FROM`].
pub const PREPARE_RTT: std::time::Duration = std::time::Duration::from_millis(10);

/// On a link whose round trip is at least [`PREPARE_RTT`], opens the channels a large write
/// there is striped over ([`channels_for`]), those of this connection ([`CONNECTION_CHANNELS`]
/// at most: a second connection is made for a large write only), as soon as the link is up:
/// at mount (from the connection's first round trip on) and after each reconnect. Opening a
/// channel takes three round trips (channel, subsystem, SFTP init), and
/// while the first large write's data fills channel 0's window they are slower still: at 100 ms
/// they were ready a second after the write began, which then went at one channel's pace
/// (2 MiB per round trip). Opened ahead, a write's handles on them open in one round trip,
/// behind its first MiB. The cost is the server's: up to [`CONNECTION_CHANNELS`]
/// `sftp-server` processes per mount on a long link, idle until a large write (at RTT below
/// [`PREPARE_RTT`] nothing changes: channels open on first need). Runs until the link is gone.
pub async fn open_channels_ahead(sftp: Arc<Sftp>) {
    let mut epoch = 0;
    while let Some(up) = sftp.up_after(epoch).await {
        epoch = up;
        if let Some(rtt) = first_round_trip(&sftp)
            .await
            .filter(|rtt| *rtt >= PREPARE_RTT)
        {
            let want = channels_for(Some(rtt), CHANNELS, sftp.max_channels());
            // All of this connection's at once: the first ready are put in use first. Not a
            // second connection: that is made for a large write only (`Stripes::prepare`).
            let _ = sftp.channels(want.min(CONNECTION_CHANNELS)).await;
        }
    }
}

/// The link's round trip: as measured at connect (see `Sftp::note_round_trip`), or by the
/// first requests of the mount (a server without the limits extension), waited for a moment.
async fn first_round_trip(sftp: &Sftp) -> Option<std::time::Duration> {
    for _ in 0..200 {
        if let Some(rtt) = sftp.rtt() {
            return Some(rtt);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    None
}

/// The channels to have open, in turn, to end with `want`: the [`CHANNELS`] a short link uses
/// first, then the rest of the connection's, then those of a second connection, so a write
/// can use the first ones while the others open (the connection opens them in these rounds,
/// `Session::open_channels`; making a second connection takes several round trips).
fn rounds(want: usize) -> [usize; 3] {
    [want.min(CHANNELS), want.min(CONNECTION_CHANNELS), want]
}

/// The extra handles of one open file (none until it is striped).
#[derive(Debug, Default)]
pub struct Stripes {
    state: std::sync::Mutex<State>,
    /// Opening the handles was tried for good (once per open file); held while they open.
    tried: tokio::sync::Mutex<bool>,
    /// A background opening was started and has not failed for a reason that may pass.
    preparing: AtomicBool,
    /// Bytes in flight on each channel.
    loads: Arc<Loads>,
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
    /// The channel (0: the file's own handle, `k`: `handles[k - 1]`) each stripe written so
    /// far went through, by stripe number from `from`: a stripe keeps it for good.
    assigned: HashMap<u64, usize>,
}

impl State {
    /// The channel of stripe `k` ([`channel_of`]).
    fn channel_of(&mut self, k: u64, loads: &Loads) -> usize {
        channel_of(&mut self.assigned, k, self.handles.len() + 1, loads)
    }
}

/// The channel of stripe `k` among `channels`: the one it went through before (`assigned`),
/// else (a stripe never written) the one with the fewest bytes in flight, ties going round in
/// stripe order; recorded in `assigned`.
fn channel_of(assigned: &mut HashMap<u64, usize>, k: u64, channels: usize, loads: &Loads) -> usize {
    *assigned.entry(k).or_insert_with(|| {
        let first = usize::try_from(k % channels.max(1) as u64).unwrap_or(0);
        (0..channels)
            .map(|i| (first + i) % channels)
            .min_by_key(|&c| loads.bytes(c))
            .unwrap_or(first)
    })
}

/// Bytes in flight on each channel of one file: its writes sent and not acknowledged yet.
#[derive(Debug, Default)]
pub struct Loads([AtomicU64; MAX_CHANNELS]);

impl Loads {
    fn bytes(&self, channel: usize) -> u64 {
        self.0
            .get(channel)
            .map_or(u64::MAX, |c| c.load(Ordering::Acquire))
    }
}

/// One piece of a write: where it goes, its bytes, the handle (channel) it goes through.
#[derive(Debug)]
pub struct Piece<'d> {
    /// Its offset in the file.
    pub at: u64,
    /// Its bytes.
    pub data: &'d [u8],
    /// The handle it is written through.
    pub handle: Handle,
    /// Counts its bytes in flight on the channel until dropped.
    pub in_flight: InFlight,
}

/// Bytes counted in flight on a channel of a file, until this is dropped.
#[derive(Debug)]
pub struct InFlight {
    loads: Arc<Loads>,
    channel: usize,
    bytes: u64,
}

impl InFlight {
    fn new(loads: &Arc<Loads>, channel: usize, bytes: usize) -> InFlight {
        let bytes = bytes as u64;
        if let Some(c) = loads.0.get(channel) {
            c.fetch_add(bytes, Ordering::AcqRel);
        }
        InFlight {
            loads: Arc::clone(loads),
            channel,
            bytes,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(c) = self.loads.0.get(self.channel) {
            c.fetch_sub(self.bytes, Ordering::AcqRel);
        }
    }
}

impl Stripes {
    /// Whether writes go through several channels.
    pub fn active(&self) -> bool {
        self.state.lock().is_ok_and(|s| !s.handles.is_empty())
    }

    /// The channels the file's writes go through (1 until it is striped).
    pub fn channels(&self) -> usize {
        self.state.lock().map_or(1, |s| s.handles.len() + 1)
    }

    /// `data` written at `offset` of the file whose own handle (channel 0) is `own`, cut at
    /// stripe boundaries, each piece with the handle it goes through and its bytes counted in
    /// flight on that channel until the [`Piece::in_flight`] guard is dropped (when the
    /// piece is acknowledged, or could not be sent).
    pub fn pieces<'d>(&self, own: &Handle, offset: u64, data: &'d [u8]) -> Vec<Piece<'d>> {
        let whole = |data: &'d [u8]| {
            vec![Piece {
                at: offset,
                data,
                handle: own.clone(),
                in_flight: InFlight::new(&self.loads, 0, data.len()),
            }]
        };
        let Ok(mut state) = self.state.lock() else {
            return whole(data);
        };
        // Recorded under the lock that starts striping: a write cut before it started ends
        // below `from`, so a byte it carries never changes channel.
        state.high = state.high.max(offset + data.len() as u64);
        if state.handles.is_empty() {
            return whole(data);
        }
        let mut pieces = Vec::new();
        let mut at = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let (len, channel) = if at < state.from {
                (state.from - at, 0)
            } else {
                let k = (at - state.from) / STRIPE;
                let channel = state.channel_of(k, &self.loads);
                (STRIPE - (at - state.from) % STRIPE, channel)
            };
            let (piece, more) =
                rest.split_at(usize::try_from(len).unwrap_or(usize::MAX).min(rest.len()));
            let handle = channel
                .checked_sub(1)
                .and_then(|i| state.handles.get(i))
                .unwrap_or(own)
                .clone();
            pieces.push(Piece {
                at,
                data: piece,
                handle,
                in_flight: InFlight::new(&self.loads, channel, piece.len()),
            });
            at += piece.len() as u64;
            rest = more;
        }
        pieces
    }

    /// Whether a background opening ([`Stripes::prepare`]) should be started now: true once,
    /// and again after one that failed only because the link was down.
    pub fn should_prepare(&self) -> bool {
        !self.preparing.swap(true, Ordering::AcqRel)
    }

    /// Opens the file at `path` (asked once the channels are known) on the connection's
    /// other channels and keeps the handles ready ([`Stripes::start_ready`] puts them in use);
    /// `follow` makes each new handle follow the file's renames. In rounds: the channels
    /// a short link uses ([`CHANNELS`]) first, then the rest a long link asks for, so the
    /// writes are striped over the first ones while the others are still opening (on a server
    /// whose shell starts slowly, each new channel took 100 ms there). Tried once per open
    /// file; if no other channel can be opened, the file stays on one.
    pub async fn prepare(
        &self,
        sftp: &Sftp,
        path: impl Fn() -> Option<String>,
        follow: impl Fn(&Handle),
    ) {
        let mut tried = self.tried.lock().await;
        if std::mem::replace(&mut *tried, true) {
            return;
        }
        let want = channels_for(sftp.rtt(), CHANNELS, sftp.max_channels());
        if want > CONNECTION_CHANNELS {
            // Ten or so round trips: made beside this connection's rounds, not after them.
            sftp.start_second_connection(want - CONNECTION_CHANNELS);
        }
        let mut have = 1;
        for round in rounds(want) {
            // Channels open already are taken in this round: their handles open together.
            let round = round.max(sftp.channels_open(want));
            let Ok(channels) = sftp.channels(round).await else {
                // The link is down: try again at a later write (if nothing was opened).
                self.failed(&mut tried, have, false);
                return;
            };
            if channels <= have {
                continue;
            }
            let Some(path) = path() else {
                return;
            };
            let opens = (have..channels).map(|k| sftp.open_on_channel(&path, OpenFlags::WRITE, k));
            let mut handles = Vec::new();
            for opened in futures_util::future::join_all(opens).await {
                match opened {
                    Ok(h) => handles.push(h),
                    Err(e) => {
                        tracing::debug!(path, "not striping (further): {e}");
                        close_all(sftp, handles).await;
                        // Not for good if only the connection failed meanwhile.
                        let passing = matches!(e, SftpError::Transport(_) | SftpError::Timeout(_));
                        self.failed(&mut tried, have, !passing);
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
                    state.ready.extend(handles);
                    Vec::new()
                }
                _ => handles,
            };
            if !unused.is_empty() {
                close_all(sftp, unused).await;
                return;
            }
            have = channels;
        }
    }

    /// A [`Stripes::prepare`] that stopped with `have` channels: tried for good if some handles
    /// were opened or the failure will not pass (`for_good`), else it may be tried again.
    fn failed(&self, tried: &mut bool, have: usize, for_good: bool) {
        *tried = for_good || have > 1;
        self.preparing.store(*tried, Ordering::Release);
    }

    /// Puts the handles opened by [`Stripes::prepare`] in use, if there are: the writes cut
    /// from now on are striped from the end of the furthest one cut so far (no write in
    /// flight needs to be waited for: every byte before that point stays on the file's own
    /// channel); handles opened later join them (a stripe keeps the channel it was given).
    /// `started` is called if striping started. Returns whether handles were put in use.
    pub fn start_ready(&self, started: impl FnOnce()) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        if state.closed || state.ready.is_empty() {
            return false;
        }
        let ready = std::mem::take(&mut state.ready);
        let first = state.handles.is_empty();
        state.handles.extend(ready);
        if first {
            state.from = state.high;
            tracing::debug!(from = state.from, "striping");
            started();
        }
        true
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

/// Closes `handles` at once (each on its own channel: one round trip for all, not one each;
/// at 100 ms a file striped over 8 channels took 0.8 s to release).
async fn close_all(sftp: &Sftp, handles: Vec<Handle>) {
    let closes = handles.iter().map(|h| sftp.close(h));
    for closed in futures_util::future::join_all(closes).await {
        if let Err(e) = closed {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const MIB: usize = 1024 * 1024;

    /// Even loads take the channels in turn; a channel holding a backlog (the file's own,
    /// which carried every write until the others opened) gets no new stripe until it drained
    /// to the others' level; a stripe written before keeps its channel whatever the loads.
    #[test]
    fn new_stripes_go_to_the_least_loaded_channel_and_stay_there() {
        let loads = Arc::new(Loads::default());
        let mut assigned = HashMap::new();
        let turn: Vec<usize> = (0..8)
            .map(|k| channel_of(&mut assigned, k, 4, &loads))
            .collect();
        assert_eq!(turn, [0, 1, 2, 3, 0, 1, 2, 3]);

        let mut assigned = HashMap::new();
        let backlog = InFlight::new(&loads, 0, 8 * MIB);
        let mut held = Vec::new();
        let mut got = Vec::new();
        for k in 0..6 {
            let c = channel_of(&mut assigned, k, 4, &loads);
            held.push(InFlight::new(&loads, c, MIB));
            got.push(c);
        }
        assert!(!got.contains(&0), "the backlogged channel got one: {got:?}");
        assert_eq!(loads.bytes(0), 8 * MIB as u64);
        drop(backlog);
        assert_eq!(loads.bytes(0), 0, "counted out when dropped");
        assert_eq!(
            channel_of(&mut assigned, 6, 4, &loads),
            0,
            "drained: its turn"
        );
        // Stripe 1 went elsewhere; written again, it goes there again.
        let was = got[1];
        assert_eq!(channel_of(&mut assigned, 1, 4, &loads), was);
        drop(held);
        assert!((0..4).all(|c| loads.bytes(c) == 0), "all counted out");
    }
}
