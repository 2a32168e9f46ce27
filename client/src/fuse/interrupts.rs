//! FUSE INTERRUPT: the registry of requests in flight, by FUSE `unique`. An INTERRUPT for a
//! request we hold drops its future and the caller gets EINTR; one for a request we do not
//! hold (yet) waits a moment for it, then asks the kernel to send it again (EAGAIN). Never
//! ENOSYS: that turns interrupts off for good.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use fuse3::{Errno, Result as FuseResult};
use tokio::sync::oneshot;
use tracing::debug;

/// How long an INTERRUPT for a request we do not hold waits for it to show up.
const INTERRUPT_GRACE: Duration = Duration::from_millis(20);

/// What an INTERRUPT of a request does.
#[derive(Clone, Copy)]
pub(super) enum OnInterrupt {
    /// Its future is dropped and the kernel answered EINTR.
    Cancel,
    /// Nothing: the request must not be abandoned halfway (releasing a handle the server
    /// holds), so it runs to the end.
    Finish,
}

/// Requests in flight, by FUSE `unique`, with the means to cancel each.
#[derive(Default)]
pub(super) struct InFlight {
    map: Mutex<HashMap<u64, oneshot::Sender<()>>>,
}

impl InFlight {
    /// Runs `fut` as the request `unique`: an INTERRUPT of it drops `fut` and answers EINTR.
    pub(super) async fn cancellable<T>(
        &self,
        unique: u64,
        fut: impl Future<Output = FuseResult<T>>,
    ) -> FuseResult<T> {
        let cancelled = self.register(unique);
        let _registered = Registered {
            inflight: self,
            unique,
        };
        tokio::select! {
            r = fut => r,
            Ok(()) = cancelled => {
                debug!("interrupted");
                Err(Errno::from(libc::EINTR))
            }
        }
    }

    /// INTERRUPT of the request `unique`: cancels it, or EAGAIN if it does not show up within
    /// [`INTERRUPT_GRACE`] (it may not have reached us yet; the kernel queues the INTERRUPT
    /// again).
    pub(super) async fn interrupt(&self, unique: u64) -> FuseResult<()> {
        if self.cancel(unique) {
            return Ok(());
        }
        tokio::time::sleep(INTERRUPT_GRACE).await;
        if self.cancel(unique) {
            Ok(())
        } else {
            Err(Errno::from(libc::EAGAIN))
        }
    }

    fn register(&self, unique: u64) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut m) = self.map.lock() {
            m.insert(unique, tx);
        }
        rx
    }

    fn finish(&self, unique: u64) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(&unique);
        }
    }

    fn cancel(&self, unique: u64) -> bool {
        let tx = self.map.lock().ok().and_then(|mut m| m.remove(&unique));
        tx.is_some_and(|tx| tx.send(()).is_ok())
    }
}

/// Removes a request from the registry however its future ends (completion or drop).
struct Registered<'a> {
    inflight: &'a InFlight,
    unique: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.inflight.finish(self.unique);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_interrupt_cancels_the_request_it_names() {
        let inflight = InFlight::default();
        let request = inflight.cancellable(7, std::future::pending::<FuseResult<()>>());
        let interrupt = async {
            tokio::task::yield_now().await;
            inflight.interrupt(7).await
        };
        let (answered, interrupted) = tokio::join!(request, interrupt);
        assert_eq!(answered, Err(Errno::from(libc::EINTR)));
        assert_eq!(interrupted, Ok(()));
        // Gone from the registry once answered: a second INTERRUPT is for a request not held.
        assert_eq!(inflight.interrupt(7).await, Err(Errno::from(libc::EAGAIN)));
    }

    #[tokio::test]
    async fn a_request_that_ended_is_not_held() {
        let inflight = InFlight::default();
        assert_eq!(inflight.cancellable(3, async { Ok(5) }).await, Ok(5));
        assert_eq!(inflight.interrupt(3).await, Err(Errno::from(libc::EAGAIN)));
    }
}
