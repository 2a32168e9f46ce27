//! Write-behind for one open file: `write()` returns once its WRITE packets are on their way,
//! not after a round trip, so a copy runs at the link's speed instead of one request per RTT.
//!
//! The rules that keep it safe:
//! * **Bounded**: at most [`WINDOW_BYTES`] per open file are unacknowledged; a write that does
//!   not fit waits (interruptibly) for earlier ones to be acknowledged. On a long link the
//!   window grows to twice the bandwidth-delay product measured for the file (the link's round
//!   trip, the rate its writes are handed over at; see [`crate::fs::ahead::pacing`]), at most
//!   [`MAX_WINDOW_BYTES`], the memory bound of one open file's writes in flight. It does not
//!   shrink: it bounds bytes not yet acknowledged, which a writer that jumps around does not
//!   waste (nothing is sent that was not written).
//! * **Ordered**: packets are queued on the session before `write()` returns, so the server
//!   applies them in program order, before any later READ, STAT, SETSTAT or CLOSE.
//! * **Never dropped**: a failed WRITE is kept and returned by the next write, flush, fsync or
//!   close of the file, and by every one after it (the file's contents are no longer what the
//!   program wrote, so the handle stays failed).
//! * **Durable at close**: flush (every `close()`), fsync and release wait until every WRITE
//!   was acknowledged, so `close()` succeeds only for data the server has.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::fs::ahead::pacing::{RateMeter, window_for};
use crate::fs::errno::{FsError, FsResult};

/// Unacknowledged bytes allowed per open file at first: 8 MiB keeps a 20 ms link busy at
/// 400 MiB/s.
pub const WINDOW_BYTES: u32 = 8 * 1024 * 1024;
/// Unacknowledged bytes allowed per open file at most, once a long link asks for more: 32 MiB
/// keeps a 100 ms link busy at 320 MiB/s.
pub const MAX_WINDOW_BYTES: u32 = 32 * 1024 * 1024;
/// Semaphore permits count KiB, so the window fits a `u32` of permits with room to spare.
const PERMIT_BYTES: u32 = 1024;
const WINDOW_PERMITS: u32 = WINDOW_BYTES / PERMIT_BYTES;

/// The writes in flight on one open file and the first error any of them met.
#[derive(Debug)]
pub struct WriteBehind {
    window: Arc<Semaphore>,
    /// The permits the window has in all (it only grows).
    total: AtomicU32,
    error: Arc<Mutex<Option<FsError>>>,
    /// The rate writes are handed over at.
    rate: Mutex<RateMeter>,
}

impl Default for WriteBehind {
    fn default() -> Self {
        Self {
            window: Arc::new(Semaphore::new(WINDOW_PERMITS as usize)),
            total: AtomicU32::new(WINDOW_PERMITS),
            error: Arc::new(Mutex::new(None)),
            rate: Mutex::new(RateMeter::new()),
        }
    }
}

impl WriteBehind {
    /// The error a write of this file met, if any (it stays).
    pub fn failed(&self) -> FsResult<()> {
        match self.error.lock().ok().and_then(|e| e.clone()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Unacknowledged bytes this file may have now.
    pub fn window(&self) -> u64 {
        u64::from(self.total.load(Ordering::Acquire)) * u64::from(PERMIT_BYTES)
    }

    /// Counts `len` bytes handed over on a link with round trip `rtt` and grows the window to
    /// what the measured rate asks for.
    fn pace(&self, len: usize, rtt: Option<Duration>) {
        let rate = match self.rate.lock() {
            Ok(mut meter) => {
                meter.add(len as u64, Instant::now(), rtt);
                meter.rate()
            }
            Err(_) => return,
        };
        let bytes = window_for(
            rtt,
            rate,
            u64::from(WINDOW_BYTES),
            u64::from(MAX_WINDOW_BYTES),
        );
        let want = u32::try_from(bytes / u64::from(PERMIT_BYTES)).unwrap_or(WINDOW_PERMITS);
        // The total first, then the permits: a drain that got permits added here sees the
        // total changed and waits again.
        let had = self.total.fetch_max(want, Ordering::AcqRel);
        if want > had {
            self.window.add_permits((want - had) as usize);
        }
    }

    /// Waits for room for `len` bytes, then runs `send` (which must queue its packets before it
    /// resolves, to the future of their acknowledgement) and lets the acknowledgement be awaited
    /// in the background. `rtt`: the link's round trip, if measured (sizes the window).
    pub async fn write<S, F>(
        &self,
        len: usize,
        rtt: Option<Duration>,
        send: impl FnOnce() -> S,
    ) -> FsResult<()>
    where
        S: Future<Output = FsResult<F>>,
        F: Future<Output = FsResult<()>> + Send + 'static,
    {
        self.failed()?;
        if len > 0 {
            self.pace(len, rtt);
        }
        let total = self.total.load(Ordering::Acquire);
        let permits = u32::try_from(len.div_ceil(PERMIT_BYTES as usize))
            .unwrap_or(total)
            .clamp(1, total);
        let permit = Arc::clone(&self.window)
            .acquire_many_owned(permits)
            .await
            .map_err(|_| FsError::new(libc::EIO, "write window closed"))?;
        let acked = send().await?;
        let error = Arc::clone(&self.error);
        tokio::spawn(async move {
            if let Err(e) = acked.await
                && let Ok(mut slot) = error.lock()
            {
                // Said once here (the program learns it at its next write, flush or close,
                // which may be much later or never, if it exits without checking).
                if slot.is_none() {
                    tracing::warn!(
                        "a write was refused or lost: {} (errno {})",
                        e.message,
                        e.errno
                    );
                }
                slot.get_or_insert(e);
            }
            drop(permit);
        });
        Ok(())
    }

    /// Waits until every write sent so far was acknowledged, then reports the first failure.
    pub async fn drain(&self) -> FsResult<()> {
        loop {
            let total = self.total.load(Ordering::Acquire);
            let all = self
                .window
                .acquire_many(total)
                .await
                .map_err(|_| FsError::new(libc::EIO, "write window closed"))?;
            // Every permit back means no write in flight, unless the window grew meanwhile
            // and some of them are new ones: then wait for all again.
            let done = self.total.load(Ordering::Acquire) == total;
            drop(all);
            if done {
                return self.failed();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::atomic::AtomicUsize;

    use tokio::sync::oneshot;

    use super::*;

    const MIB: usize = 1024 * 1024;

    /// Writes `len` bytes whose acknowledgement comes when the returned sender fires.
    async fn write(wb: &WriteBehind, len: usize, rtt: Option<Duration>) -> oneshot::Sender<()> {
        let (tx, rx) = oneshot::channel::<()>();
        wb.write(len, rtt, || async move {
            Ok(async move {
                let _ = rx.await;
                Ok(())
            })
        })
        .await
        .unwrap();
        tx
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_link_grows_the_window_to_its_bound() {
        let wb = WriteBehind::default();
        let rtt = Some(Duration::from_millis(100));
        // 1 MiB handed over every 5 ms (200 MiB/s), acknowledged at once.
        for _ in 0..60 {
            let _ = write(&wb, MIB, rtt).await.send(());
            tokio::task::yield_now().await;
            tokio::time::advance(Duration::from_millis(5)).await;
        }
        assert_eq!(wb.window(), u64::from(MAX_WINDOW_BYTES));
        // A short link keeps the first window.
        let short = WriteBehind::default();
        for _ in 0..60 {
            let _ = write(&short, MIB, Some(Duration::from_millis(1)))
                .await
                .send(());
            tokio::task::yield_now().await;
            tokio::time::advance(Duration::from_millis(5)).await;
        }
        assert_eq!(short.window(), u64::from(WINDOW_BYTES));
    }

    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_every_write_while_the_window_grows() {
        let wb = Arc::new(WriteBehind::default());
        let rtt = Some(Duration::from_millis(100));
        // Fill the first window with writes not acknowledged.
        let mut pending = Vec::new();
        for _ in 0..8 {
            pending.push(write(&wb, MIB, None).await);
        }
        let drained = Arc::new(AtomicUsize::new(0));
        let (w, d) = (Arc::clone(&wb), Arc::clone(&drained));
        let drain = tokio::spawn(async move {
            w.drain().await.unwrap();
            d.fetch_add(1, Ordering::SeqCst);
        });
        tokio::task::yield_now().await;
        // The window grows (a fast rate on a long link) while the drain waits.
        wb.pace(MIB, rtt);
        tokio::time::advance(Duration::from_millis(100)).await;
        wb.pace(30 * MIB, rtt);
        assert!(wb.window() > u64::from(WINDOW_BYTES), "{}", wb.window());
        tokio::task::yield_now().await;
        assert_eq!(drained.load(Ordering::SeqCst), 0, "8 MiB still in flight");
        for ack in pending.drain(..7) {
            ack.send(()).unwrap();
        }
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        assert_eq!(drained.load(Ordering::SeqCst), 0, "1 MiB still in flight");
        pending.pop().unwrap().send(()).unwrap();
        drain.await.unwrap();
        assert_eq!(drained.load(Ordering::SeqCst), 1);
    }
}
