//! Windows sized from the link: how many bytes to keep in flight so a stream of reads or writes
//! is not bound by the round trip, within a memory bound.
//!
//! A link carries `rate` bytes per second with a round trip of `rtt`: it is kept busy only if
//! `rate × rtt` bytes (the bandwidth-delay product) are in flight. Both figures are measured:
//! the round trip by the SFTP engine ([`crate::remote::sftp::rtt`]), the rate by the stream
//! itself ([`RateMeter`]: bytes the reader took, or the writer handed over, per second). A
//! window of `W` bytes carries at most `W / rtt`, so the rate measured through it says whether
//! the window or the link is the limit: the window is sized to [`HEADROOM`] times the measured
//! product ([`window_for`]), which grows it while the window is the limit (the rate then grows
//! with it) and stops where the link is (the rate stays put).
//!
//! Every window has a floor (the fixed size it had before, enough for a short link, so nothing
//! changes at RTT 0) and a cap (the memory bound, documented with each window):
//! * read-ahead of one handle: [`super::readahead::MAX_WINDOW`] up to
//!   [`super::readahead::LINK_WINDOW`], and all handles together within the mount's budget;
//! * unacknowledged writes of one open file:
//!   [`crate::fs::open_files::write_behind::WINDOW_BYTES`] up to
//!   [`crate::fs::open_files::write_behind::MAX_WINDOW_BYTES`];
//! * channels of one large write ([`channels_for`]): OpenSSH grants each channel 2 MiB per round
//!   trip whatever the client queues.

use std::time::Duration;

use tokio::time::Instant;

/// The window is this many times the measured bandwidth-delay product: room to find out that
/// the link carries more.
pub const HEADROOM: f64 = 2.0;
/// The shortest period a rate is measured over (a round trip, but at least this).
pub const MIN_PERIOD: Duration = Duration::from_millis(50);

/// `HEADROOM × rtt × rate` bytes, within `[floor, cap]`; `floor` while either is unknown.
pub fn window_for(rtt: Option<Duration>, rate: Option<f64>, floor: u64, cap: u64) -> u64 {
    let floor = floor.min(cap);
    match (rtt, rate) {
        (Some(rtt), Some(rate)) => {
            let bytes = HEADROOM * rtt.as_secs_f64() * rate;
            // `as` saturates (NaN gives 0): the clamp bounds it anyway.
            (bytes as u64).clamp(floor, cap)
        }
        _ => floor,
    }
}

/// The bytes one SFTP channel carries per round trip: OpenSSH's server grants each channel a
/// window of 2 MiB (64 packets of 32 KiB) and waits for our acknowledgement of nothing else.
pub const CHANNEL_WINDOW: u64 = 2 * 1024 * 1024;
/// The rate a large write is given channels for: the faster local links this was measured on
/// carry about this much with a few `sftp-server` processes (190 to 300 MiB/s for a 256 MiB
/// write at RTT 0 on two cores). At 100 ms that is 12 channels: a second connection.
pub const TARGET_RATE: f64 = 240.0 * 1024.0 * 1024.0;

/// Channels for one large write on a link with this round trip: enough that their windows
/// together ([`CHANNEL_WINDOW`] per round trip each) carry [`TARGET_RATE`], within
/// `[least, most]` (`least`: what a short link uses anyway, for the server's CPU).
pub fn channels_for(rtt: Option<Duration>, least: usize, most: usize) -> usize {
    let least = least.min(most).max(1);
    let Some(rtt) = rtt else {
        return least;
    };
    let per_channel = CHANNEL_WINDOW as f64 / rtt.as_secs_f64().max(1e-6);
    let want = (TARGET_RATE / per_channel).ceil();
    // `as` saturates: a huge figure becomes usize::MAX, then the clamp.
    (want as usize).clamp(least, most)
}

/// The rate of one stream: bytes counted over periods of about a round trip.
#[derive(Debug, Clone, Copy)]
pub struct RateMeter {
    /// When the current period started.
    since: Option<Instant>,
    /// Bytes counted in the current period.
    bytes: u64,
    /// Bytes per second over the last full period.
    rate: Option<f64>,
}

impl Default for RateMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl RateMeter {
    /// A meter that measured nothing yet.
    pub const fn new() -> Self {
        Self {
            since: None,
            bytes: 0,
            rate: None,
        }
    }

    /// Counts `bytes` moved at `now`; a period ends once it lasted a round trip (`rtt`, at
    /// least [`MIN_PERIOD`]).
    pub fn add(&mut self, bytes: u64, now: Instant, rtt: Option<Duration>) {
        let Some(since) = self.since else {
            // The first bytes start the clock: they took a wait nobody measured.
            self.since = Some(now);
            return;
        };
        self.bytes += bytes;
        let elapsed = now.saturating_duration_since(since);
        if elapsed >= rtt.unwrap_or(MIN_PERIOD).max(MIN_PERIOD) {
            self.rate = Some(self.bytes as f64 / elapsed.as_secs_f64());
            self.since = Some(now);
            self.bytes = 0;
        }
    }

    /// Bytes per second over the last full period, if one ended.
    pub fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// Forgets everything (the stream stopped: a seek).
    pub fn reset(&mut self) {
        *self = Self::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;
    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_window_is_twice_the_bandwidth_delay_product_within_bounds() {
        let rate = Some(100.0 * MIB as f64);
        // 100 MiB/s × 100 ms = 10 MiB in flight; twice that.
        assert_eq!(
            window_for(Some(100 * MS), rate, 8 * MIB, 32 * MIB),
            20 * MIB
        );
        // A short link keeps the floor (nothing changes at RTT 0).
        assert_eq!(window_for(Some(MS), rate, 8 * MIB, 32 * MIB), 8 * MIB);
        // A long fast link stops at the memory bound.
        assert_eq!(
            window_for(Some(500 * MS), rate, 8 * MIB, 32 * MIB),
            32 * MIB
        );
        // Unknown round trip or rate: the floor.
        assert_eq!(window_for(None, rate, 8 * MIB, 32 * MIB), 8 * MIB);
        assert_eq!(window_for(Some(100 * MS), None, 8 * MIB, 32 * MIB), 8 * MIB);
        // A floor above the cap gives the cap.
        assert_eq!(window_for(None, None, 64 * MIB, 32 * MIB), 32 * MIB);
    }

    #[test]
    fn a_window_bound_rate_grows_the_window_a_link_bound_rate_does_not() {
        let (rtt, floor, cap) = (Some(100 * MS), 8 * MIB, 64 * MIB);
        // A window of W carries W per round trip while the link has room: each step doubles.
        let mut w = floor;
        for _ in 0..3 {
            let rate = w as f64 / 0.1;
            let next = window_for(rtt, Some(rate), floor, cap);
            assert_eq!(next, (2 * w).min(cap));
            w = next;
        }
        // The link carries 120 MiB/s however large the window: the window settles.
        let link = 120.0 * MIB as f64;
        assert_eq!(window_for(rtt, Some(link), floor, cap), 24 * MIB);
    }

    #[test]
    fn channels_follow_the_round_trip() {
        assert_eq!(channels_for(None, 4, 16), 4);
        assert_eq!(channels_for(Some(Duration::ZERO), 4, 16), 4);
        assert_eq!(channels_for(Some(20 * MS), 4, 16), 4, "3 channels would do");
        assert_eq!(channels_for(Some(30 * MS), 4, 16), 4);
        assert_eq!(channels_for(Some(50 * MS), 4, 16), 6);
        assert_eq!(channels_for(Some(70 * MS), 4, 16), 9, "a second connection");
        assert_eq!(channels_for(Some(100 * MS), 4, 16), 12);
        assert_eq!(channels_for(Some(1000 * MS), 4, 16), 16, "within the limit");
        assert_eq!(channels_for(Some(100 * MS), 4, 8), 8, "max_conns=8");
        assert_eq!(channels_for(Some(100 * MS), 4, 1), 1, "max_conns=1");
    }

    #[test]
    fn the_rate_is_bytes_over_a_round_trip() {
        let mut m = RateMeter::new();
        let t0 = Instant::now();
        m.add(MIB, t0, Some(100 * MS));
        assert_eq!(m.rate(), None, "the first bytes only start the clock");
        m.add(4 * MIB, t0 + 60 * MS, Some(100 * MS));
        assert_eq!(m.rate(), None, "a period lasts a round trip");
        m.add(4 * MIB, t0 + 100 * MS, Some(100 * MS));
        let rate = m.rate().unwrap_or_default();
        assert!((rate - 80.0 * MIB as f64).abs() < 1.0, "{rate}");
        m.reset();
        assert_eq!(m.rate(), None);
    }

    #[test]
    fn a_short_round_trip_is_measured_over_the_shortest_period() {
        let mut m = RateMeter::new();
        let t0 = Instant::now();
        m.add(MIB, t0, Some(MS));
        m.add(MIB, t0 + 10 * MS, Some(MS));
        assert_eq!(m.rate(), None);
        m.add(MIB, t0 + MIN_PERIOD, Some(MS));
        assert!(m.rate().is_some());
    }
}
