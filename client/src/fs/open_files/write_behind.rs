//! Write-behind for one open file: `write()` returns once its WRITE packets are on their way,
//! not after a round trip, so a copy runs at the link's speed instead of one request per RTT.
//!
//! The rules that keep it safe:
//! * **Bounded**: at most [`WINDOW_BYTES`] per open file are unacknowledged; a write that does
//!   not fit waits (interruptibly) for earlier ones to be acknowledged. On a long link the
//!   window grows to four times the bandwidth-delay product measured for the file (the link's
//!   round trip, the rate its writes are handed over at; see [`crate::fs::ahead::pacing`]; four,
//!   as a write may wait a round trip for its channel's window first), at most
//!   [`CHANNEL_BYTES`] for each channel the file's writes go through (one until it is
//!   striped, [`super::stripes`]; a striped file on a long link gets that at once) and at most
//!   [`MAX_WINDOW_BYTES`], the memory bound of one open file's writes in flight. A seek (a
//!   write that does not start where the previous one ended) shrinks it back to
//!   [`WINDOW_BYTES`] and starts the rate over: a stream that stopped is measured anew, and a
//!   writer that jumps around holds no more memory than a short link's. Permits of writes in
//!   flight are given back to the smaller window as they are acknowledged.
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

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::stripes::PREPARE_RTT;
use crate::fs::ahead::pacing::{RateMeter, window_for};
use crate::fs::errno::{FsError, FsResult};

/// Unacknowledged bytes allowed per open file at first: 8 MiB keeps a 20 ms link busy at
/// 400 MiB/s.
pub const WINDOW_BYTES: u32 = 8 * 1024 * 1024;
/// Unacknowledged bytes allowed per open file at most, once a long link asks for more: 32 MiB
/// keeps a 100 ms link busy at 320 MiB/s.
pub const MAX_WINDOW_BYTES: u32 = 32 * 1024 * 1024;
/// Unacknowledged bytes allowed per channel the file's writes go through: the 2 MiB window
/// OpenSSH grants a channel and half of it again, ready to go when the server widens it. More
/// only wait in our queue for that channel, holding the window that the file's other channels
/// could use, and make the last drain longer (4 MiB at 100 ms: the same speed, 10 MiB more
/// memory). Before a large file is striped, its one channel gets no more than
/// [`WINDOW_BYTES`].
pub const CHANNEL_BYTES: u32 = 3 * 1024 * 1024;
/// How many round trips a write takes to be acknowledged at most, its wait for the channel's
/// window included (sizes the window: [`WriteBehind::pace`]).
const CHANNEL_WAIT: f64 = 2.0;
/// Semaphore permits count KiB, so the window fits a `u32` of permits with room to spare.
const PERMIT_BYTES: u32 = 1024;
const WINDOW_PERMITS: u32 = WINDOW_BYTES / PERMIT_BYTES;

/// The writes in flight on one open file and the first error any of them met.
#[derive(Debug)]
pub struct WriteBehind {
    window: Arc<Semaphore>,
    /// The permits the window has in all: the permits available plus those held by writes in
    /// flight, less those [`Shared::owed`].
    total: AtomicU32,
    shared: Arc<Shared>,
    /// The stream's rate, and where its next write would start.
    pace: Mutex<Pace>,
    /// Wakes a drain when the window is resized (it waits for all the permits again).
    resized: Notify,
    /// The channels the writes go through (see [`CHANNEL_BYTES`]).
    channels: AtomicU32,
}

/// What the acknowledgement tasks share with the file.
#[derive(Debug, Default)]
struct Shared {
    /// The first error a write met.
    error: Mutex<Option<FsError>>,
    /// Permits the window shrank by that writes in flight still hold: forgotten, not given
    /// back, when they are acknowledged.
    owed: AtomicU32,
}

/// The writer's stream as measured so far.
#[derive(Debug)]
struct Pace {
    /// The rate writes are handed over at.
    rate: RateMeter,
    /// Where the last write ended (a write anywhere else is a seek).
    next: Option<u64>,
}

impl Default for WriteBehind {
    fn default() -> Self {
        Self {
            window: Arc::new(Semaphore::new(WINDOW_PERMITS as usize)),
            total: AtomicU32::new(WINDOW_PERMITS),
            shared: Arc::default(),
            pace: Mutex::new(Pace {
                rate: RateMeter::new(),
                next: None,
            }),
            resized: Notify::new(),
            channels: AtomicU32::new(1),
        }
    }
}

impl WriteBehind {
    /// The error a write of this file met, if any (it stays).
    pub fn failed(&self) -> FsResult<()> {
        match self.shared.error.lock().ok().and_then(|e| e.clone()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Unacknowledged bytes this file may have now.
    pub fn window(&self) -> u64 {
        u64::from(self.total.load(Ordering::Acquire)) * u64::from(PERMIT_BYTES)
    }

    /// The file's writes go through `n` channels from now on (it was striped): the window may
    /// grow to [`CHANNEL_BYTES`] for each. On a long link (`rtt` at least [`PREPARE_RTT`]) it
    /// grows so at once: the rate measured so far was one channel's.
    pub fn set_channels(&self, n: usize, rtt: Option<Duration>) {
        let n = u32::try_from(n).unwrap_or(u32::MAX).max(1);
        self.channels.store(n, Ordering::Release);
        if rtt.is_some_and(|r| r >= PREPARE_RTT)
            && let Ok(_pace) = self.pace.lock()
        {
            let cap = u32::try_from(self.cap() / u64::from(PERMIT_BYTES)).unwrap_or(u32::MAX);
            self.grow_to(cap);
        }
    }

    /// The most the window may grow to: [`CHANNEL_BYTES`] per channel, within
    /// [`WINDOW_BYTES`] and [`MAX_WINDOW_BYTES`].
    fn cap(&self) -> u64 {
        let channels = u64::from(self.channels.load(Ordering::Acquire));
        (channels * u64::from(CHANNEL_BYTES))
            .clamp(u64::from(WINDOW_BYTES), u64::from(MAX_WINDOW_BYTES))
    }

    /// Counts `len` bytes handed over at `offset` (`None`: not a write of the file's bytes) on
    /// a link with round trip `rtt`, and sizes the window: back to [`WINDOW_BYTES`] after a
    /// seek, else grown to what the measured rate asks for.
    fn pace(&self, offset: Option<u64>, len: usize, rtt: Option<Duration>) {
        let Ok(mut pace) = self.pace.lock() else {
            return;
        };
        if let Some(at) = offset {
            let seek = pace.next.is_some_and(|next| next != at);
            pace.next = Some(at + len as u64);
            if seek {
                pace.rate.reset();
                self.shrink();
                return;
            }
        }
        pace.rate.add(len as u64, Instant::now(), rtt);
        // A write is acknowledged a round trip after it left, and it may first wait up to
        // another one for its channel's window (the server's 2 MiB per channel): the rate a
        // window carries is about W / (2 rtt), so the product is taken twice.
        let bytes = window_for(
            rtt,
            pace.rate.rate().map(|r| r * CHANNEL_WAIT),
            u64::from(WINDOW_BYTES),
            self.cap(),
        );
        let want = u32::try_from(bytes / u64::from(PERMIT_BYTES)).unwrap_or(WINDOW_PERMITS);
        self.grow_to(want);
    }

    /// Grows the window to `want` permits if it is smaller (called under `pace`).
    fn grow_to(&self, want: u32) {
        // The total first, then the permits: a drain that got permits added here sees the
        // total changed and waits again. Only under `pace` is the total changed.
        let had = self.total.load(Ordering::Acquire);
        if want > had {
            self.total.store(want, Ordering::Release);
            self.window.add_permits((want - had) as usize);
            self.resized.notify_waiters();
        }
    }

    /// Shrinks the window back to [`WINDOW_BYTES`] (called under `pace`): the permits
    /// available now are forgotten, those held by writes in flight are owed and forgotten when
    /// they come back.
    fn shrink(&self) {
        let had = self.total.load(Ordering::Acquire);
        if had <= WINDOW_PERMITS {
            return;
        }
        let excess = had - WINDOW_PERMITS;
        self.total.store(WINDOW_PERMITS, Ordering::Release);
        self.shared.owed.fetch_add(excess, Ordering::AcqRel);
        self.collect_owed();
        self.resized.notify_waiters();
    }

    /// Waits for room for `len` bytes, then runs `send` (which must queue its packets before it
    /// resolves, to the future of their acknowledgement) and lets the acknowledgement be awaited
    /// in the background. `offset`: where the bytes go in the file (`None`: a request that only
    /// rides behind the writes); `rtt`: the link's round trip, if measured (both size the
    /// window).
    pub async fn write<S, F>(
        &self,
        offset: Option<u64>,
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
            self.pace(offset, len, rtt);
        }
        self.collect_owed();
        let total = self.total.load(Ordering::Acquire);
        let permits = u32::try_from(len.div_ceil(PERMIT_BYTES as usize))
            .unwrap_or(total)
            .clamp(1, total);
        let permit = Arc::clone(&self.window)
            .acquire_many_owned(permits)
            .await
            .map_err(|_| FsError::new(libc::EIO, "write window closed"))?;
        let acked = send().await?;
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            if let Err(e) = acked.await
                && let Ok(mut slot) = shared.error.lock()
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
            shared.give_back(permit);
        });
        Ok(())
    }

    /// Forgets available permits a shrink still owes (they came back to a wait that gave them
    /// up, not through [`Shared::give_back`]).
    fn collect_owed(&self) {
        if self.shared.owed.load(Ordering::Acquire) == 0 {
            return;
        }
        // Claimed whole first, so an acknowledgement meanwhile cannot pay the same debt.
        let claimed = self.shared.owed.swap(0, Ordering::AcqRel);
        let paid = self.window.forget_permits(claimed as usize);
        let left = claimed - u32::try_from(paid).unwrap_or(claimed);
        if left > 0 {
            self.shared.owed.fetch_add(left, Ordering::AcqRel);
        }
    }

    /// Waits until every write sent so far was acknowledged, then reports the first failure.
    pub async fn drain(&self) -> FsResult<()> {
        loop {
            // Armed before the total is read: a resize after it wakes this at once.
            let resized = self.resized.notified();
            tokio::pin!(resized);
            resized.as_mut().enable();
            self.collect_owed();
            let total = self.total.load(Ordering::Acquire);
            tokio::select! {
                all = self.window.acquire_many(total) => {
                    let all = all.map_err(|_| FsError::new(libc::EIO, "write window closed"))?;
                    // Every permit back means no write in flight, unless the window grew
                    // meanwhile and some of them are new ones, or it shrank and some permits
                    // still owed were available: then (the debt collected) wait again.
                    let done = self.total.load(Ordering::Acquire) == total
                        && self.shared.owed.load(Ordering::Acquire) == 0;
                    drop(all);
                    if done {
                        return self.failed();
                    }
                }
                // The window changed size: wait for the new total (the permits assigned to
                // this wait so far go back as it is dropped).
                () = &mut resized => {}
            }
        }
    }
}

impl Shared {
    /// Gives the permits of an acknowledged write back to the window, less what a shrink of
    /// the window still owes.
    fn give_back(&self, mut permit: OwnedSemaphorePermit) {
        let held = u32::try_from(permit.num_permits()).unwrap_or(u32::MAX);
        let Ok(owed) = self
            .owed
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |o| {
                (o > 0).then(|| o - o.min(held))
            })
        else {
            return; // nothing owed: `permit` goes back whole as it drops
        };
        let pay = owed.min(held) as usize;
        if let Some(paid) = permit.split(pay) {
            paid.forget();
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

    /// A file striped over enough channels that its window may grow to the bound.
    fn striped() -> WriteBehind {
        let wb = WriteBehind::default();
        wb.set_channels((MAX_WINDOW_BYTES / CHANNEL_BYTES + 1) as usize, None);
        wb
    }

    /// Before striping, a file's one channel holds no more than the first window however
    /// fast the stream; striped on a long link, the window is its channels' at once.
    #[tokio::test(start_paused = true)]
    async fn one_channel_keeps_the_first_window_and_striping_opens_it() {
        let wb = WriteBehind::default();
        let rtt = Some(Duration::from_millis(100));
        stream(&wb, 0, rtt).await;
        assert_eq!(wb.window(), u64::from(WINDOW_BYTES));
        wb.set_channels(4, rtt);
        assert_eq!(wb.window(), 4 * u64::from(CHANNEL_BYTES));
        wb.set_channels(100, rtt);
        assert_eq!(wb.window(), u64::from(MAX_WINDOW_BYTES), "within the bound");
        // On a short link the rate decides, as before.
        let short = WriteBehind::default();
        short.set_channels(4, Some(Duration::from_millis(1)));
        assert_eq!(short.window(), u64::from(WINDOW_BYTES));
    }

    /// Writes `len` bytes whose acknowledgement comes when the returned sender fires.
    async fn write(wb: &WriteBehind, len: usize, rtt: Option<Duration>) -> oneshot::Sender<()> {
        let (tx, rx) = oneshot::channel::<()>();
        wb.write(None, len, rtt, || async move {
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
        let wb = striped();
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
        let wb = Arc::new(striped());
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
        wb.pace(None, MIB, rtt);
        tokio::time::advance(Duration::from_millis(100)).await;
        wb.pace(None, 30 * MIB, rtt);
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

    /// Writes `len` bytes at `offset`, acknowledged when the returned sender fires.
    async fn write_at(
        wb: &WriteBehind,
        offset: u64,
        len: usize,
        rtt: Option<Duration>,
    ) -> oneshot::Sender<()> {
        let (tx, rx) = oneshot::channel::<()>();
        wb.write(Some(offset), len, rtt, || async move {
            Ok(async move {
                let _ = rx.await;
                Ok(())
            })
        })
        .await
        .unwrap();
        tx
    }

    /// 60 MiB written from `at` as a stream, 1 MiB every 5 ms, each acknowledged at once:
    /// enough to grow the window to its bound on a long link. Returns where it ended.
    async fn stream(wb: &WriteBehind, mut at: u64, rtt: Option<Duration>) -> u64 {
        for _ in 0..60 {
            let _ = write_at(wb, at, MIB, rtt).await.send(());
            at += MIB as u64;
            tokio::task::yield_now().await;
            tokio::time::advance(Duration::from_millis(5)).await;
        }
        at
    }

    /// Lets the acknowledgement tasks run.
    async fn settle() {
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_seek_shrinks_the_window_back_and_the_stream_grows_it_again() {
        let wb = Arc::new(striped());
        let rtt = Some(Duration::from_millis(100));
        // A sequential stream on a long link grows the window to its bound.
        let mut at = stream(&wb, 0, rtt).await;
        settle().await;
        assert_eq!(wb.window(), u64::from(MAX_WINDOW_BYTES));
        // 20 MiB in flight, then a seek: back to the first window at once.
        let mut pending = Vec::new();
        for _ in 0..20 {
            pending.push(write_at(&wb, at, MIB, rtt).await);
            at += MIB as u64;
        }
        let w = Arc::clone(&wb);
        let seek = tokio::spawn(async move { write_at(&w, 0, MIB, rtt).await });
        settle().await;
        assert_eq!(wb.window(), u64::from(WINDOW_BYTES));
        assert!(!seek.is_finished(), "20 MiB in flight: no room in 8 MiB");
        // What the writes in flight hold is owed: once they are acknowledged the window holds
        // its first size, no more (a drain gets exactly that many permits).
        for ack in pending.drain(..) {
            ack.send(()).unwrap();
        }
        let last = seek.await.unwrap();
        let drained = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (w, d) = (Arc::clone(&wb), Arc::clone(&drained));
        let drain = tokio::spawn(async move {
            w.drain().await.unwrap();
            d.store(true, Ordering::SeqCst);
        });
        settle().await;
        assert!(!drained.load(Ordering::SeqCst), "1 MiB in flight");
        last.send(()).unwrap();
        drain.await.unwrap();
        assert!(drained.load(Ordering::SeqCst));
        assert_eq!(wb.window.available_permits(), WINDOW_PERMITS as usize);
        assert_eq!(wb.shared.owed.load(Ordering::SeqCst), 0);
        // Sequential again from the seek: the rate is measured anew and grows the window.
        stream(&wb, MIB as u64, rtt).await;
        settle().await;
        assert_eq!(wb.window(), u64::from(MAX_WINDOW_BYTES));
        wb.drain().await.unwrap();
        assert_eq!(
            wb.window.available_permits(),
            (MAX_WINDOW_BYTES / PERMIT_BYTES) as usize
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_drain_waiting_on_a_large_window_ends_when_it_shrinks() {
        let wb = Arc::new(striped());
        let rtt = Some(Duration::from_millis(100));
        let at = stream(&wb, 0, rtt).await;
        settle().await;
        assert_eq!(wb.window(), u64::from(MAX_WINDOW_BYTES));
        let first = write_at(&wb, at, MIB, rtt).await;
        let (w, done) = (
            Arc::clone(&wb),
            Arc::new(std::sync::atomic::AtomicBool::new(false)),
        );
        let d = Arc::clone(&done);
        let drain = tokio::spawn(async move {
            w.drain().await.unwrap();
            d.store(true, Ordering::SeqCst);
        });
        settle().await;
        // A seek from another thread while the drain waits for 32 MiB of permits.
        let second = write_at(&wb, 0, MIB, rtt).await;
        settle().await;
        assert!(!done.load(Ordering::SeqCst));
        first.send(()).unwrap();
        second.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), drain)
            .await
            .expect("the drain ends on the smaller window")
            .unwrap();
        assert_eq!(wb.window.available_permits(), WINDOW_PERMITS as usize);
    }

    #[tokio::test(start_paused = true)]
    async fn writes_acknowledged_two_round_trips_late_still_grow_the_window() {
        // Each write waits a round trip for its channel's window, then one for its answer: the
        // window carries W / (2 rtt), and must still grow to its bound.
        let wb = striped();
        let rtt = Some(Duration::from_millis(100));
        let mut at = 0;
        for _ in 0..400 {
            let ack = write_at(&wb, at, MIB, rtt).await;
            at += MIB as u64;
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = ack.send(());
            });
        }
        assert_eq!(wb.window(), u64::from(MAX_WINDOW_BYTES));
    }
}
