//! Write-behind for one open file: `write()` returns once its WRITE packets are on their way,
//! not after a round trip, so a copy runs at the link's speed instead of one request per RTT.
//!
//! The rules that keep it safe:
//! * **Bounded**: at most [`WINDOW_BYTES`] per open file are unacknowledged; a write that does
//!   not fit waits (interruptibly) for earlier ones to be acknowledged.
//! * **Ordered**: packets are queued on the session before `write()` returns, so the server
//!   applies them in program order, before any later READ, STAT, SETSTAT or CLOSE.
//! * **Never dropped**: a failed WRITE is kept and returned by the next write, flush, fsync or
//!   close of the file, and by every one after it (the file's contents are no longer what the
//!   program wrote, so the handle stays failed).
//! * **Durable at close**: flush (every `close()`), fsync and release wait until every WRITE
//!   was acknowledged, so `close()` succeeds only for data the server has.

use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::fs::errno::{FsError, FsResult};

/// Unacknowledged bytes allowed per open file: 8 MiB keeps a 20 ms link busy at 400 MiB/s.
pub const WINDOW_BYTES: u32 = 8 * 1024 * 1024;
/// Semaphore permits count KiB, so the window fits a `u32` of permits with room to spare.
const PERMIT_BYTES: u32 = 1024;
const WINDOW_PERMITS: u32 = WINDOW_BYTES / PERMIT_BYTES;

/// The writes in flight on one open file and the first error any of them met.
#[derive(Debug)]
pub struct WriteBehind {
    window: Arc<Semaphore>,
    error: Arc<Mutex<Option<FsError>>>,
}

impl Default for WriteBehind {
    fn default() -> Self {
        Self {
            window: Arc::new(Semaphore::new(WINDOW_PERMITS as usize)),
            error: Arc::new(Mutex::new(None)),
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

    /// Waits for room for `len` bytes, then runs `send` (which must queue its packets before it
    /// resolves, to the future of their acknowledgement) and lets the acknowledgement be awaited
    /// in the background.
    pub async fn write<S, F>(&self, len: usize, send: impl FnOnce() -> S) -> FsResult<()>
    where
        S: Future<Output = FsResult<F>>,
        F: Future<Output = FsResult<()>> + Send + 'static,
    {
        self.failed()?;
        let permits = u32::try_from(len.div_ceil(PERMIT_BYTES as usize))
            .unwrap_or(WINDOW_PERMITS)
            .clamp(1, WINDOW_PERMITS);
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
        let all = self
            .window
            .acquire_many(WINDOW_PERMITS)
            .await
            .map_err(|_| FsError::new(libc::EIO, "write window closed"))?;
        drop(all);
        self.failed()
    }
}
