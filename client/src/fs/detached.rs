//! Operations that create state (a server handle, a kernel lookup reference) run on a task of
//! their own, so that an INTERRUPT can answer the caller at once without leaking that state.
//!
//! Dropping an ordinary request future is safe: a late SFTP answer is discarded. But an OPEN,
//! OPENDIR or CREATE whose answer arrives after the caller gave up would leave a handle open on
//! the server for the life of the connection, and a CREATE's inode reference would never be
//! forgotten. [`run`] therefore lets the work finish on its own task and, whenever its result
//! does not reach the caller, hands that result to an `undo` (CLOSE the handle, drop the
//! reference). Both races are covered:
//!
//! * the caller is gone before the work finishes: sending the result fails, the task undoes it;
//! * the result was sent but the caller's future is dropped before it took it: the receiver's
//!   guard finds it in the channel on drop and undoes it on a new task.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::errno::{FsError, FsResult};

/// What releases a result that never reached the caller, given the filesystem `S`.
type Undo<S, T> = Box<dyn FnOnce(Arc<S>, T) -> futures_util::future::BoxFuture<'static, ()> + Send>;

/// The work's result, with what undoes it if it never reaches the caller.
type Outcome<S, T> = (FsResult<T>, Undo<S, T>);

/// Runs `work` on its own task with the filesystem `fs`; if its successful result does not
/// reach the caller (the caller's future was dropped by an INTERRUPT), `undo` is run with it
/// instead.
pub async fn run<S, T, W, Fut, U, UFut>(fs: &Arc<S>, work: W, undo: U) -> FsResult<T>
where
    S: Send + Sync + 'static,
    T: Send + 'static,
    W: FnOnce(Arc<S>) -> Fut,
    Fut: Future<Output = FsResult<T>> + Send + 'static,
    U: FnOnce(Arc<S>, T) -> UFut + Send + 'static,
    UFut: Future<Output = ()> + Send + 'static,
{
    let undo: Undo<S, T> = Box::new(move |fs, value| Box::pin(undo(fs, value)));
    let (tx, rx) = oneshot::channel::<Outcome<S, T>>();
    let work = work(Arc::clone(fs));
    let task_fs = Arc::clone(fs);
    tokio::spawn(async move {
        let result = work.await;
        if let Err((Ok(value), undo)) = tx.send((result, undo)) {
            undo(task_fs, value).await;
        }
    });
    let mut pending = Pending {
        rx: Some(rx),
        fs: Arc::clone(fs),
    };
    pending.wait().await
}

/// The caller's side of [`run`]: undoes a result left in the channel when dropped early.
struct Pending<S: Send + Sync + 'static, T: Send + 'static> {
    rx: Option<oneshot::Receiver<Outcome<S, T>>>,
    fs: Arc<S>,
}

impl<S: Send + Sync + 'static, T: Send + 'static> Pending<S, T> {
    async fn wait(&mut self) -> FsResult<T> {
        let Some(rx) = self.rx.as_mut() else {
            return Err(FsError::new(libc::EIO, "result already taken"));
        };
        let received = rx.await;
        self.rx = None;
        match received {
            Ok((result, _undo)) => result,
            Err(_) => Err(FsError::new(libc::EIO, "the request's task ended early")),
        }
    }
}

impl<S: Send + Sync + 'static, T: Send + 'static> Drop for Pending<S, T> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        if let Ok((Ok(value), undo)) = rx.try_recv() {
            let fs = Arc::clone(&self.fs);
            tokio::spawn(undo(fs, value));
        }
        // Otherwise the task is still working: dropping `rx` makes its send fail, and it undoes.
    }
}
