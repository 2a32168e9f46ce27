#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A file of `len` bytes served from memory, counting fetches and fetched bytes.
struct FakeFile {
    data: Arc<Mutex<Vec<u8>>>,
    fetches: Arc<AtomicUsize>,
    fetched: Arc<AtomicUsize>,
}

impl FakeFile {
    fn new(len: usize) -> Self {
        Self {
            data: Arc::new(Mutex::new((0..len).map(|i| (i % 251) as u8).collect())),
            fetches: Arc::default(),
            fetched: Arc::default(),
        }
    }

    fn fetcher(&self) -> Fetcher {
        let (data, fetches, fetched) = (
            Arc::clone(&self.data),
            Arc::clone(&self.fetches),
            Arc::clone(&self.fetched),
        );
        Arc::new(move |offset, len| {
            let data = data.lock().unwrap();
            let from = (offset as usize).min(data.len());
            let to = (from + len as usize).min(data.len());
            let piece = data[from..to].to_vec();
            fetches.fetch_add(1, Ordering::SeqCst);
            fetched.fetch_add(piece.len(), Ordering::SeqCst);
            async move { Ok(piece) }.boxed()
        })
    }

    fn expect(&self, offset: u64, len: usize) -> Vec<u8> {
        let data = self.data.lock().unwrap();
        let from = (offset as usize).min(data.len());
        data[from..(from + len).min(data.len())].to_vec()
    }
}

const PIECE: u32 = 64 * 1024;

fn src<'a>(fetch: &'a Fetcher, eof_hint: Option<u64>, budget: &'a Budget) -> Source<'a> {
    Source {
        fetch,
        piece_len: PIECE,
        eof_hint,
        budget,
        rtt: None,
    }
}

#[tokio::test]
async fn sequential_reads_return_the_file_and_fetch_ahead() {
    let file = FakeFile::new(3 * 1024 * 1024 + 123);
    let (ra, budget, fetch) = (ReadAhead::default(), Budget::default(), file.fetcher());
    let mut offset = 0;
    loop {
        let got = ra
            .read(offset, 128 * 1024, &src(&fetch, None, &budget))
            .await
            .unwrap();
        assert_eq!(got, file.expect(offset, 128 * 1024), "at {offset}");
        if got.len() < 128 * 1024 {
            break;
        }
        offset += got.len() as u64;
    }
    assert_eq!(offset, 3 * 1024 * 1024);
    // Each byte fetched once, in pieces, plus the empty pieces past the end.
    assert_eq!(file.fetched.load(Ordering::SeqCst), 3 * 1024 * 1024 + 123);
}

#[tokio::test]
async fn nothing_is_prefetched_past_the_known_size() {
    let file = FakeFile::new(100_000);
    let (ra, budget, fetch) = (ReadAhead::default(), Budget::default(), file.fetcher());
    let got = ra
        .read(0, 4096, &src(&fetch, Some(100_000), &budget))
        .await
        .unwrap();
    assert_eq!(got, file.expect(0, 4096));
    tokio::task::yield_now().await;
    // 4096 asked + window, clamped at 100 000: two pieces.
    assert_eq!(file.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_jump_reads_directly_and_drops_what_was_ahead() {
    let file = FakeFile::new(4 * 1024 * 1024);
    let (ra, budget, fetch) = (ReadAhead::default(), Budget::default(), file.fetcher());
    ra.read(0, 4096, &src(&fetch, None, &budget)).await.unwrap();
    assert!(budget.available() < BUDGET_BYTES, "the window takes budget");
    let got = ra
        .read(2_000_000, 5000, &src(&fetch, None, &budget))
        .await
        .unwrap();
    assert_eq!(got, file.expect(2_000_000, 5000));
    assert_eq!(
        budget.available(),
        BUDGET_BYTES,
        "a jump returns the budget"
    );
}

/// Reads the first 4 KiB (the window fetches ahead), changes byte 5000 of the file, runs
/// `forget`, and returns byte 5000 as the next sequential read sees it.
async fn byte_5000_after(forget: impl AsyncFnOnce(&ReadAhead)) -> u8 {
    let file = FakeFile::new(1024 * 1024);
    let (ra, budget, fetch) = (ReadAhead::default(), Budget::default(), file.fetcher());
    ra.read(0, 4096, &src(&fetch, None, &budget)).await.unwrap();
    file.data.lock().unwrap()[5000] = 0xEE;
    forget(&ra).await;
    let got = ra
        .read(4096, 4096, &src(&fetch, None, &budget))
        .await
        .unwrap();
    got[5000 - 4096]
}

#[tokio::test]
async fn a_write_through_clear_is_seen_by_the_next_read() {
    assert_eq!(byte_5000_after(async |ra| ra.clear()).await, 0xEE);
}

#[tokio::test]
async fn a_file_that_grows_after_eof_is_read_again() {
    let file = FakeFile::new(10_000);
    let (ra, budget, fetch) = (ReadAhead::default(), Budget::default(), file.fetcher());
    let got = ra
        .read(0, 65536, &src(&fetch, None, &budget))
        .await
        .unwrap();
    assert_eq!(got.len(), 10_000);
    file.data.lock().unwrap().extend_from_slice(&[7; 500]);
    let more = ra
        .read(10_000, 65536, &src(&fetch, None, &budget))
        .await
        .unwrap();
    assert_eq!(more, vec![7; 500]);
}

#[tokio::test]
async fn the_budget_bounds_prefetch_but_never_the_read_itself() {
    let file = FakeFile::new(64 * 1024 * 1024);
    let budget = Budget(Arc::new(Semaphore::new(100_000)));
    let fetch = file.fetcher();
    let ra = ReadAhead::default();
    let mut offset = 0;
    for _ in 0..10 {
        let got = ra
            .read(offset, 200_000, &src(&fetch, None, &budget))
            .await
            .unwrap();
        assert_eq!(got, file.expect(offset, 200_000));
        offset += 200_000;
    }
    assert!(file.fetched.load(Ordering::SeqCst) <= 10 * 200_000 + 100_000 + PIECE as usize);
}

#[tokio::test]
async fn an_error_reaches_the_reader_and_is_not_kept() {
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let f = Arc::clone(&fail);
    let fetch: Fetcher = Arc::new(move |_, len| {
        let failing = f.load(Ordering::SeqCst);
        async move {
            if failing {
                Err(FsError::new(libc::EIO, "down"))
            } else {
                Ok(vec![1; len as usize])
            }
        }
        .boxed()
    });
    let (ra, budget) = (ReadAhead::default(), Budget::default());
    let err = ra
        .read(0, 4096, &src(&fetch, None, &budget))
        .await
        .unwrap_err();
    assert_eq!(err.errno, libc::EIO);
    fail.store(false, Ordering::SeqCst);
    let got = ra.read(0, 4096, &src(&fetch, None, &budget)).await.unwrap();
    assert_eq!(got, vec![1; 4096]);
}

#[tokio::test]
async fn the_window_is_kept_in_whole_pieces() {
    let file = FakeFile::new(32 * 1024 * 1024);
    let (ra, budget, fetch) = (ReadAhead::default(), Budget::default(), file.fetcher());
    for i in 0..64u64 {
        ra.read(i * 4096, 4096, &src(&fetch, None, &budget))
            .await
            .unwrap();
    }
    let fetched = file.fetched.load(Ordering::SeqCst);
    let fetches = file.fetches.load(Ordering::SeqCst);
    assert_eq!(
        fetched,
        fetches * PIECE as usize,
        "every fetch a whole piece"
    );
}

#[tokio::test(start_paused = true)]
async fn a_piece_left_unread_too_long_is_fetched_again() {
    let wait = async |_: &ReadAhead| tokio::time::advance(MAX_AGE * 2).await;
    assert_eq!(byte_5000_after(wait).await, 0xEE);
}

#[tokio::test]
async fn small_reads_of_a_short_file_use_what_was_fetched() {
    let file = FakeFile::new(3000);
    let (ra, budget, fetch) = (ReadAhead::default(), Budget::default(), file.fetcher());
    let mut after_first = 0;
    for i in 0..30u64 {
        let got = ra
            .read(i * 100, 100, &src(&fetch, None, &budget))
            .await
            .unwrap();
        assert_eq!(got, file.expect(i * 100, 100));
        if i == 0 {
            after_first = file.fetches.load(Ordering::SeqCst);
        }
    }
    assert!(after_first <= 1 + (FIRST_WINDOW / u64::from(PIECE)) as usize);
    assert_eq!(
        file.fetches.load(Ordering::SeqCst),
        after_first,
        "nothing fetched again, nothing past the end"
    );
}

#[tokio::test]
async fn pieces_nobody_holds_are_aborted() {
    /// Counts its drops.
    struct Dropped(Arc<AtomicUsize>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let (started, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (s, d) = (Arc::clone(&started), Arc::clone(&dropped));
    // The piece asked for answers at once; the pieces ahead never do (a frozen server).
    let fetch: Fetcher = Arc::new(move |offset, len| {
        let guard = Dropped(Arc::clone(&d));
        if offset > 0 {
            s.fetch_add(1, Ordering::SeqCst);
        }
        async move {
            let _guard = guard;
            if offset > 0 {
                futures_util::future::pending::<()>().await;
            }
            Ok(vec![0; len as usize])
        }
        .boxed()
    });
    let (ra, budget) = (ReadAhead::default(), Budget::default());
    ra.read(0, 4096, &src(&fetch, None, &budget)).await.unwrap();
    tokio::task::yield_now().await;
    let ahead = started.load(Ordering::SeqCst);
    assert!(ahead > 0, "the window fetches ahead");
    let dropped_before = dropped.load(Ordering::SeqCst);
    ra.clear();
    tokio::task::yield_now().await;
    assert_eq!(
        dropped.load(Ordering::SeqCst) - dropped_before,
        ahead,
        "every piece in flight was aborted"
    );
    assert_eq!(budget.available(), BUDGET_BYTES, "and its budget returned");
}

#[test]
fn the_window_doubles_to_the_link_sized_bound() {
    const MIB: u64 = 1024 * 1024;
    let ms = Duration::from_millis;
    // A short link, or nothing measured yet: up to MAX_WINDOW, as always.
    let mut w = 0;
    for _ in 0..20 {
        w = next_window(w, None, None);
    }
    assert_eq!(w, MAX_WINDOW);
    let fast = Some(150.0 * MIB as f64);
    assert_eq!(next_window(MAX_WINDOW, Some(ms(0)), fast), MAX_WINDOW);
    // 100 ms at 150 MiB/s: 15 MiB in flight keep it busy, the window goes to twice that.
    assert_eq!(next_window(MAX_WINDOW, Some(ms(100)), fast), 2 * MAX_WINDOW);
    assert_eq!(next_window(2 * MAX_WINDOW, Some(ms(100)), fast), 30 * MIB);
    // A long link starts from what a short one reads at, before any rate is measured: 16 MiB
    // at 100 ms; up to 50 ms the floor is MAX_WINDOW, as on a short link.
    assert_eq!(next_window(MAX_WINDOW, Some(ms(100)), None), 16 * MIB);
    assert_eq!(floor(Some(ms(100))), 16 * MIB);
    assert_eq!(floor(Some(ms(50))), MAX_WINDOW);
    assert_eq!(floor(Some(ms(20))), MAX_WINDOW);
    assert_eq!(floor(Some(ms(1000))), LINK_WINDOW);
    let slow = Some(10.0 * MIB as f64);
    assert_eq!(
        next_window(32 * MIB, Some(ms(100)), slow),
        16 * MIB,
        "a slow link measured keeps the floor"
    );
    // Never past the memory bound of one reader.
    assert_eq!(next_window(LINK_WINDOW, Some(ms(1000)), fast), LINK_WINDOW);
    // A first sequential read starts small whatever the link.
    assert_eq!(next_window(0, Some(ms(100)), fast), FIRST_WINDOW);
}

#[tokio::test(start_paused = true)]
async fn a_long_link_grows_the_window_and_a_seek_shrinks_it_back() {
    const MIB: u64 = 1024 * 1024;
    let file = FakeFile::new(160 * MIB as usize);
    let (ra, budget, fetch) = (ReadAhead::default(), Budget::default(), file.fetcher());
    let mut source = src(&fetch, None, &budget);
    source.rtt = Some(Duration::from_millis(200));
    // The reader takes 1 MiB every 5 ms (200 MiB/s; at 200 ms twice the product is 80 MiB):
    // the window is what limits it.
    let mut at = 0;
    for _ in 0..80 {
        let got = ra.read(at, MIB as u32, &source).await.unwrap();
        assert_eq!(got.len(), MIB as usize);
        at += MIB;
        tokio::time::advance(Duration::from_millis(5)).await;
    }
    assert_eq!(
        ra.window(),
        LINK_WINDOW,
        "past the short link's bound, to the memory bound"
    );
    assert!(budget.available() <= BUDGET_BYTES - (LINK_WINDOW - MIB) as usize);
    // A jump: no read-ahead, no window, and the rate is measured afresh.
    ra.read(3, 4096, &source).await.unwrap();
    assert_eq!(ra.window(), 0);
    assert_eq!(budget.available(), BUDGET_BYTES, "the budget returned");
    ra.read(4099, 4096, &source).await.unwrap();
    assert_eq!(ra.window(), FIRST_WINDOW);
    ra.read(8195, 4096, &source).await.unwrap();
    assert_eq!(ra.window(), 2 * FIRST_WINDOW);
}

#[tokio::test(start_paused = true)]
async fn a_slow_reader_on_a_long_link_keeps_the_short_window() {
    const MIB: u64 = 1024 * 1024;
    let file = FakeFile::new(64 * MIB as usize);
    let (ra, budget, fetch) = (ReadAhead::default(), Budget::default(), file.fetcher());
    let mut source = src(&fetch, None, &budget);
    source.rtt = Some(Duration::from_millis(100));
    // 1 MiB every 50 ms: 20 MiB/s × 100 ms is 2 MiB, less than the floor (16 MiB at 100 ms).
    let mut at = 0;
    for _ in 0..20 {
        ra.read(at, MIB as u32, &source).await.unwrap();
        at += MIB;
        tokio::time::advance(Duration::from_millis(50)).await;
    }
    assert_eq!(ra.window(), floor(source.rtt));
    assert!(ra.window() < LINK_WINDOW);
}

/// Reads answered elsewhere (the content cache) keep a stream a stream: the read after them
/// is sequential and fetches ahead; one elsewhere that jumps drops the window and the budget.
#[tokio::test]
async fn reads_passed_elsewhere_keep_the_stream_and_a_jump_among_them_drops_it() {
    let file = FakeFile::new(8 * 1024 * 1024);
    let (ra, budget, fetch) = (ReadAhead::default(), Budget::default(), file.fetcher());
    ra.read(0, 4096, &src(&fetch, None, &budget)).await.unwrap();
    ra.passed(4096, 4096);
    let window = ra.window();
    assert!(window > 0);
    let got = ra.read(8192, 4096, &src(&fetch, None, &budget)).await;
    assert_eq!(got.unwrap(), file.expect(8192, 4096));
    assert!(ra.window() > window, "still a stream: the window grew");
    ra.passed(5_000_000, 4096);
    assert_eq!(ra.window(), 0, "a jump drops the window");
    assert_eq!(budget.available(), BUDGET_BYTES, "and what was ahead");
    let fetches = file.fetches.load(Ordering::SeqCst);
    let got = ra.read(5_004_096, 4096, &src(&fetch, None, &budget)).await;
    assert_eq!(got.unwrap(), file.expect(5_004_096, 4096));
    assert!(ra.window() > 0, "the stream goes on from the jump");
    assert!(
        file.fetches.load(Ordering::SeqCst) > fetches + 1,
        "and fetches ahead"
    );
}
