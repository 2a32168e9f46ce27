//! The round trip time of the link, as the SFTP engine sees it: the shortest time any request
//! took from being sent to being answered, over the last [`BUCKET`] or two.
//!
//! Every request is timed ([`super::Sftp::attempt`]); the cost is two clock reads and an atomic
//! `fetch_min`. A request queued behind megabytes of READs or WRITEs takes longer than the
//! round trip, so the shortest time is kept, not an average: while the link is busy some
//! request still finds it empty (the first READ of a file, an OPEN, a STAT). The minimum is
//! kept per bucket of [`BUCKET`] and the estimate is the smaller of the current and the last
//! bucket, so a link that got slower (a new route after a reconnect) is seen within two
//! buckets, and a bucket with no request at all keeps the last one's figure.
//!
//! The estimate sizes the windows that keep a long link busy (read-ahead depth, write window,
//! channels per large write: [`crate::fs::ahead::pacing`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How long one minimum is kept.
pub const BUCKET: Duration = Duration::from_secs(10);

/// No sample in this bucket yet.
const NONE: u64 = u64::MAX;

/// The shortest request/answer time of recent buckets.
#[derive(Debug)]
pub struct RoundTrip {
    /// The clock's zero (bucket starts are kept in microseconds since then).
    base: Instant,
    /// When the current bucket started (µs since `base`).
    bucket_start: AtomicU64,
    /// The current bucket's shortest sample (µs), [`NONE`] if none.
    current: AtomicU64,
    /// The previous bucket's shortest sample (µs), [`NONE`] if none.
    previous: AtomicU64,
}

impl Default for RoundTrip {
    fn default() -> Self {
        Self {
            base: Instant::now(),
            bucket_start: AtomicU64::new(0),
            current: AtomicU64::new(NONE),
            previous: AtomicU64::new(NONE),
        }
    }
}

impl RoundTrip {
    /// Notes a request sent at `sent` and answered now.
    pub fn sample(&self, sent: Instant) {
        let now = Instant::now();
        self.sample_at(now, now.saturating_duration_since(sent));
    }

    /// Notes a request that took `took`, answered at `now`.
    fn sample_at(&self, now: Instant, took: Duration) {
        let now_us = micros(now.saturating_duration_since(self.base));
        let start = self.bucket_start.load(Ordering::Relaxed);
        if now_us.saturating_sub(start) >= micros(BUCKET)
            && self
                .bucket_start
                .compare_exchange(start, now_us, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            // One caller rotates; an empty bucket keeps the figure of the one before.
            let ended = self.current.swap(NONE, Ordering::Relaxed);
            if ended != NONE {
                self.previous.store(ended, Ordering::Relaxed);
            }
        }
        self.current
            .fetch_min(micros(took).max(1), Ordering::Relaxed);
    }

    /// The round trip estimate; `None` before any request was answered.
    pub fn get(&self) -> Option<Duration> {
        let best = self
            .current
            .load(Ordering::Relaxed)
            .min(self.previous.load(Ordering::Relaxed));
        (best != NONE).then(|| Duration::from_micros(best))
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn unknown_until_a_request_was_answered() {
        assert_eq!(RoundTrip::default().get(), None);
    }

    #[test]
    fn the_shortest_sample_wins() {
        let rtt = RoundTrip::default();
        let now = rtt.base;
        for ms in [130, 100, 250, 101] {
            rtt.sample_at(now, ms * MS);
        }
        assert_eq!(rtt.get(), Some(100 * MS));
    }

    #[test]
    fn a_slower_link_shows_within_two_buckets() {
        let rtt = RoundTrip::default();
        let t0 = rtt.base;
        rtt.sample_at(t0, 10 * MS);
        rtt.sample_at(t0 + BUCKET, 100 * MS);
        assert_eq!(rtt.get(), Some(10 * MS), "the last bucket still counts");
        rtt.sample_at(t0 + 2 * BUCKET, 100 * MS);
        assert_eq!(rtt.get(), Some(100 * MS));
    }

    #[test]
    fn an_idle_bucket_keeps_the_last_figure() {
        let rtt = RoundTrip::default();
        let t0 = rtt.base;
        rtt.sample_at(t0, 20 * MS);
        // Nothing for a long time, then one bucket rotates with no sample in it.
        rtt.sample_at(t0 + 5 * BUCKET, 30 * MS);
        rtt.sample_at(t0 + 7 * BUCKET, 40 * MS);
        assert_eq!(rtt.get(), Some(30 * MS));
    }
}
