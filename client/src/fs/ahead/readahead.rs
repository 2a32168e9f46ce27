//! Read-ahead for one open file read sequentially.
//!
//! The kernel sends us one READ at a time per reading process (we decline FUSE_ASYNC_READ so
//! that any signal can interrupt a blocked read(), see docs/interrupts.md). Answering each from
//! the network would cost a round trip per READ. Instead, once a handle is read from where the
//! last read ended, we keep a window of READs in flight ahead of the reader, doubling from
//! [`FIRST_WINDOW`] to [`MAX_WINDOW`], so a stream of reads waits for the network about once.
//! On a long link that is not enough (8 MiB per 100 ms round trip is 80 MiB/s): the window
//! may then grow on to twice the bandwidth-delay product measured for this reader (its round
//! trip from the SFTP engine, its rate from the bytes it took; see [`super::pacing`]), at most
//! [`LINK_WINDOW`]. A jump (a read not where the last one ended) drops the window and the
//! measured rate: a random reader never gets read-ahead.
//!
//! Each piece is fetched by a task of its own, so an interrupted read() leaves it to finish for
//! the read() that comes next; a piece nobody holds any longer is aborted (its late reply is
//! discarded by the SFTP session). Prefetched bytes of all handles together are bounded by a
//! shared budget ([`Budget`]); when it is spent we read only what was asked. What this mount
//! writes to a file drops its handles' read-ahead ([`ReadAhead::clear`]). Read-ahead is a
//! pipeline, not a cache: a piece not read within [`MAX_AGE`] is fetched again, so changes made
//! on the server by others show as they would without it.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt, Shared};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::pacing::{RateMeter, window_for};
use crate::fs::errno::{FsError, FsResult};

/// The window after the first sequential read.
pub const FIRST_WINDOW: u64 = 512 * 1024;
/// The largest window of one handle on a short link (the floor of its link-sized window).
pub const MAX_WINDOW: u64 = 8 * 1024 * 1024;
/// The largest window of one handle on a long link: the memory bound of one reader's
/// read-ahead (all readers together stay within [`BUDGET_BYTES`]). 64 MiB: at 100 ms one
/// reader read 256 MiB in 1.32 s, against 1.92 s with 32 MiB (peak RSS 61 MiB, 29 before).
pub const LINK_WINDOW: u64 = 64 * 1024 * 1024;
/// How long a fetched piece may wait for its reader.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// Bytes prefetched and not yet read, over all handles of a mount (two readers at
/// [`LINK_WINDOW`]).
pub const BUDGET_BYTES: usize = 128 * 1024 * 1024;

/// The bound on prefetched bytes shared by every handle of a mount.
#[derive(Debug, Clone)]
pub struct Budget(Arc<Semaphore>);

impl Default for Budget {
    fn default() -> Self {
        Self(Arc::new(Semaphore::new(BUDGET_BYTES)))
    }
}

impl Budget {
    /// Bytes not taken by any prefetched piece (for the stats line).
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }
}

/// Fetches `len` bytes at an offset (fewer only at end of file).
pub type Fetcher = Arc<dyn Fn(u64, u32) -> BoxFuture<'static, FsResult<Vec<u8>>> + Send + Sync>;

/// Where a file's pieces come from, for one read.
pub struct Source<'a> {
    /// Fetches a piece.
    pub fetch: &'a Fetcher,
    /// The size of one fetch (the server's largest READ).
    pub piece_len: u32,
    /// The file's size if known: nothing is prefetched past it.
    pub eof_hint: Option<u64>,
    /// The mount's bound on prefetched bytes.
    pub budget: &'a Budget,
    /// The link's round trip, if measured (sizes the window on a long link).
    pub rtt: Option<Duration>,
}

/// The read-ahead state of one open file.
#[derive(Default)]
pub struct ReadAhead {
    state: Mutex<State>,
}

impl std::fmt::Debug for ReadAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadAhead")
    }
}

#[derive(Default)]
struct State {
    /// Where the next read starts if the reader goes on sequentially.
    next: u64,
    /// Bytes kept fetched beyond the current read; 0 until the reader reads sequentially.
    window: u64,
    /// Pieces fetched or being fetched: contiguous, in ascending order.
    pieces: VecDeque<Piece>,
    /// Where a piece held showed the file to end (nothing is fetched past it).
    eof_seen: Option<u64>,
    /// The rate the reader takes bytes at while it reads sequentially.
    rate: RateMeter,
}

type PieceData = Result<Arc<Vec<u8>>, FsError>;

/// A piece's bytes, fetched or on their way; every reader that needs them holds a clone.
type PieceFuture = Shared<BoxFuture<'static, PieceData>>;

/// Bytes `[start, start + len)` of the file, fetched by a task.
struct Piece {
    start: u64,
    len: u32,
    data: PieceFuture,
    /// When it was asked for.
    since: Instant,
    /// The budget this piece takes while it is held (none for bytes a read asked for).
    _permit: Option<OwnedSemaphorePermit>,
}

impl Piece {
    fn end(&self) -> u64 {
        self.start + u64::from(self.len)
    }
}

/// A spawned fetch, aborted when dropped.
struct Fetch(JoinHandle<PieceData>);

impl Future for Fetch {
    type Output = PieceData;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<PieceData> {
        Pin::new(&mut self.0).poll(cx).map(|joined| {
            joined.unwrap_or_else(|e| Err(FsError::new(libc::EIO, format!("read-ahead: {e}"))))
        })
    }
}

impl Drop for Fetch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ReadAhead {
    /// Starts with `data`, the answer to a READ of `asked` bytes at offset 0 sent at `since`
    /// (fewer bytes: the end of the file), for the first read to take.
    pub fn seed(&self, asked: u32, data: Vec<u8>, since: Instant) {
        let ready = futures_util::future::ready(Ok(Arc::new(data))).boxed();
        if let Ok(mut st) = self.state.lock() {
            st.pieces.clear();
            st.pieces.push_back(Piece {
                start: 0,
                len: asked,
                data: ready.shared(),
                since,
                _permit: None,
            });
        }
    }

    /// Drops everything fetched ahead (the file changed, or the reader jumped).
    pub fn clear(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.pieces.clear();
            st.window = 0;
            st.eof_seen = None;
            st.rate.reset();
        }
    }

    /// A read of `size` bytes at `offset` was answered without read-ahead (from the content
    /// cache): the reader is at its end now, so a read from there on goes on as a stream. One
    /// not where the last read ended is a jump, as in [`ReadAhead::read`]: what was fetched
    /// ahead, the window and the measured rate are dropped.
    pub fn passed(&self, offset: u64, size: u32) {
        if let Ok(mut st) = self.state.lock() {
            let end = offset + u64::from(size);
            let held_from = st.pieces.front().map(|p| p.start);
            let sequential =
                offset == st.next || held_from.is_some_and(|s| s <= offset && offset < st.next);
            if !sequential {
                st.pieces.clear();
                st.window = 0;
                st.eof_seen = None;
                st.rate.reset();
            }
            st.next = end;
            while st.pieces.front().is_some_and(|p| p.end() <= end) {
                st.pieces.pop_front();
            }
        }
    }

    /// Bytes this handle keeps fetched ahead of its reader now (0: none).
    pub fn window(&self) -> u64 {
        self.state.lock().map_or(0, |st| st.window)
    }

    /// Reads `size` bytes at `offset` (fewer only at end of file): from pieces fetched ahead when
    /// the reader is sequential, and keeps the window ahead of it full.
    pub async fn read(&self, offset: u64, size: u32, src: &Source<'_>) -> FsResult<Vec<u8>> {
        let wanted = match self.plan(offset, size, src) {
            Some(pieces) => pieces,
            None => return (src.fetch)(offset, size).await,
        };
        let end = offset + u64::from(size);
        let mut out = Vec::with_capacity(size as usize);
        for (start, len, data) in wanted {
            let data = match data.await {
                Ok(data) => data,
                Err(e) => {
                    self.clear();
                    return Err(e);
                }
            };
            let data_end = start + data.len() as u64;
            let from = offset.saturating_sub(start) as usize;
            let to = (end.min(data_end) - start) as usize;
            if from < to {
                out.extend_from_slice(&data[from..to]);
            }
            if data.len() < len as usize {
                // The end of the file. A reader that got there may come back later (the file
                // may have grown): forget what was fetched past it, so the server is asked again.
                self.saw_eof(data_end, end >= data_end);
                break;
            }
        }
        Ok(out)
    }

    /// A piece ended the file at `at`; `reached`: this read got there.
    fn saw_eof(&self, at: u64, reached: bool) {
        if let Ok(mut st) = self.state.lock() {
            if reached {
                st.pieces.clear();
                st.next = at;
                st.eof_seen = None;
            } else {
                st.eof_seen = Some(at);
            }
        }
    }

    /// Under the lock: decides whether this read continues a stream, tops the window up, and
    /// returns the pieces covering the read (`None`: read it directly).
    fn plan(
        &self,
        offset: u64,
        size: u32,
        src: &Source<'_>,
    ) -> Option<Vec<(u64, u32, PieceFuture)>> {
        let piece_len = src.piece_len.max(1);
        let mut st = self.state.lock().ok()?;
        let end = offset + u64::from(size);
        // Sequential: where the last read ended, or again over what is held (a read() retried
        // after an interrupt).
        let held_from = st.pieces.front().map(|p| p.start);
        let sequential =
            offset == st.next || held_from.is_some_and(|s| s <= offset && offset < st.next);
        st.next = end;
        if !sequential {
            st.pieces.clear();
            st.window = 0;
            st.eof_seen = None;
            st.rate.reset();
            return None;
        }
        let now = Instant::now();
        st.rate.add(u64::from(size), now, src.rtt);
        st.window = next_window(st.window, src.rtt, st.rate.rate());
        while st.pieces.front().is_some_and(|p| p.end() <= offset) {
            st.pieces.pop_front();
        }
        let stale = |p: &Piece| now.duration_since(p.since) > MAX_AGE;
        if st
            .pieces
            .front()
            .is_some_and(|p| p.start > offset || stale(p))
        {
            st.pieces.clear();
        }
        // Pieces are whole (a window topped up by a few bytes at a time would mean many small
        // READs), and none starts past the known end of the file.
        let limit = [src.eof_hint, st.eof_seen]
            .into_iter()
            .flatten()
            .map(|size| size.max(end))
            .min()
            .unwrap_or(u64::MAX);
        let ahead_to = (end + st.window).min(limit);
        let mut at = st.pieces.back().map_or(offset, Piece::end);
        while at < ahead_to {
            let asked = at < end;
            let len = u64::from(piece_len).min(limit - at) as u32;
            let permit = if asked {
                None
            } else {
                match Arc::clone(&src.budget.0).try_acquire_many_owned(len) {
                    Ok(permit) => Some(permit),
                    Err(_) => break,
                }
            };
            let task = tokio::spawn((src.fetch)(at, len).map(|r| r.map(Arc::new)));
            st.pieces.push_back(Piece {
                start: at,
                len,
                data: Fetch(task).boxed().shared(),
                since: now,
                _permit: permit,
            });
            at += u64::from(len);
        }
        Some(
            st.pieces
                .iter()
                .take_while(|p| p.start < end)
                .map(|p| (p.start, p.len, p.data.clone()))
                .collect(),
        )
    }
}

/// The window after `window` for one more sequential read: [`FIRST_WINDOW`] first, then
/// doubling up to twice the bandwidth-delay product of the reader's link (`rtt` × `rate`),
/// which is at least [`floor`] and at most [`LINK_WINDOW`].
pub fn next_window(window: u64, rtt: Option<Duration>, rate: Option<f64>) -> u64 {
    match window {
        0 => FIRST_WINDOW,
        w => (w * 2).min(window_for(rtt, rate, floor(rtt), LINK_WINDOW)),
    }
}

/// The rate a reader's window is sized for before its own rate is measured: about what one
/// stream reads at on a short link.
pub const STREAM_RATE: f64 = 160.0 * 1024.0 * 1024.0;

/// The least window of a sequential reader on a link with round trip `rtt`: [`MAX_WINDOW`], or
/// on a long link what carries [`STREAM_RATE`] over a round trip (within [`LINK_WINDOW`]). A
/// window grown from the rate it measured doubles once per round trip or two: at 100 ms,
/// growing from 8 MiB took half a second of a 256 MiB read.
pub fn floor(rtt: Option<Duration>) -> u64 {
    let bdp = rtt.map_or(0.0, |rtt| STREAM_RATE * rtt.as_secs_f64());
    // `as` saturates (NaN gives 0): the clamp bounds it anyway.
    (bdp as u64).clamp(MAX_WINDOW, LINK_WINDOW)
}

#[cfg(test)]
mod tests;
