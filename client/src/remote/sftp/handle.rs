//! Server handles with one owner each: closed exactly once, never used after their CLOSE.
//!
//! OpenSSH's `sftp-server` gives a closed handle's number to the very next OPEN. A second CLOSE,
//! or a READ or WRITE sent after the CLOSE, would therefore reach whatever file holds that
//! number by then: close another program's file, or read and write the wrong one. So a handle
//! string never travels alone. [`Sftp::open`](super::Sftp::open) and
//! [`opendir`](super::Sftp::opendir) return a [`Handle`], and every request on it goes through
//! a [`Lease`]:
//!
//! * **One CLOSE.** [`Sftp::close`](super::Sftp::close) turns the handle from open to closed
//!   once; a second call finds it closed and sends nothing. A handle nobody closed is closed
//!   when its last clone is dropped (an abandoned open, an open-ahead nobody took), so none leaks.
//! * **Nothing after CLOSE.** A request holds a lease from before its packet is queued until its
//!   answer (or its cancellation). The close waits for the leases in flight and refuses new
//!   ones, so every request on the handle is on the wire before its CLOSE, and none after.
//!   A lease asked for after the close fails locally ([`SftpError::HandleClosed`]): nothing
//!   is sent.
//!
//! The session also keeps the set of handles it holds and refuses, loudly, any request naming
//! one it does not ([`HandleRegistry`]): with the rules above that never happens, and the
//! counter `handle-misuse` of `sshfs-rs --stats` shows it if it ever does.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use russh_sftp::protocol::OpenFlags;
use tokio::sync::{Notify, RwLock, RwLockReadGuard};

use futures_util::future::BoxFuture;

use super::error::{SftpError, SftpResult};

/// What closes a handle dropped open: the session that gave it out.
pub(super) trait CloseDropped: Send + Sync {
    /// Sends CLOSE for the handle string `raw` of the session `epoch`, channel `channel`,
    /// whose close has begun.
    fn close_raw<'a>(
        &'a self,
        epoch: u64,
        channel: usize,
        raw: &'a str,
    ) -> BoxFuture<'a, SftpResult<()>>;
}

/// A handle the server gave us (OPEN, OPENDIR), shared by everything that uses it.
///
/// After a reconnect the server's handle is gone with the old session; the next request
/// reopens the same path with the same access mode on the new session (see
/// [`Sftp`](super::Sftp)), so the kernel's `fh` keeps working.
#[derive(Clone)]
pub struct Handle(Arc<Inner>);

struct Inner {
    /// The server's handle string and the session epoch it belongs to.
    at: Mutex<At>,
    /// The channel of the epoch's connection it lives on (each runs its own `sftp-server`).
    channel: usize,
    /// How to open it again on a new session.
    reopen: Reopen,
    /// Held while reopening, so only one request does it.
    reopening: tokio::sync::Mutex<()>,
    /// `true` while open; requests hold it shared, the close takes it exclusively.
    open: RwLock<bool>,
    /// Set when the close begins: no lease is given out after it.
    closing: AtomicBool,
    /// The writes (and FSETSTATs queued behind them) of every handle of the session, in the
    /// order the program made them.
    pending: Arc<PendingWrites>,
    /// The session that closes the handle if it is dropped open.
    sftp: Weak<dyn CloseDropped>,
}

#[derive(Clone)]
struct At {
    epoch: u64,
    raw: String,
}

/// Where a handle's file is now, for reopening it.
#[derive(Clone)]
pub enum PathSource {
    /// The path it was opened with.
    Fixed(String),
    /// Asked at reopen time (the file may have been renamed); `None`: it has no name any more.
    Dynamic(Arc<dyn Fn() -> Option<String> + Send + Sync>),
}

/// How a handle is opened again after a reconnect.
pub(super) struct Reopen {
    /// `None` for a directory (OPENDIR), else OPEN's flags without CREATE, EXCLUDE, TRUNCATE.
    pub(super) flags: Option<OpenFlags>,
    path: Mutex<PathSource>,
}

impl Reopen {
    pub(super) fn file(path: &str, flags: OpenFlags) -> Reopen {
        let flags = flags & !(OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::TRUNCATE);
        Reopen {
            flags: Some(flags),
            path: Mutex::new(PathSource::Fixed(path.to_owned())),
        }
    }

    pub(super) fn dir(path: &str) -> Reopen {
        Reopen {
            flags: None,
            path: Mutex::new(PathSource::Fixed(path.to_owned())),
        }
    }

    /// The path to reopen, if the file still has one.
    pub(super) fn path(&self) -> Option<String> {
        let source = self.path.lock().ok()?.clone();
        match source {
            PathSource::Fixed(p) => Some(p),
            PathSource::Dynamic(f) => f(),
        }
    }
}

/// The right to send one request on a handle: while it is held, the handle's CLOSE waits.
pub struct Lease<'a> {
    at: At,
    _open: RwLockReadGuard<'a, bool>,
}

impl Lease<'_> {
    /// The server's handle string, for the request's packet.
    pub fn raw(&self) -> &str {
        &self.at.raw
    }

    /// The session epoch the handle string belongs to.
    pub fn epoch(&self) -> u64 {
        self.at.epoch
    }
}

impl Handle {
    /// Wraps a handle string the server just gave `sftp` on the session of `epoch`.
    pub(super) fn new(
        raw: String,
        epoch: u64,
        channel: usize,
        reopen: Reopen,
        sftp: Weak<dyn CloseDropped>,
        pending: Arc<PendingWrites>,
    ) -> Handle {
        Handle(Arc::new(Inner {
            at: Mutex::new(At { epoch, raw }),
            channel,
            reopen,
            reopening: tokio::sync::Mutex::new(()),
            open: RwLock::new(true),
            closing: AtomicBool::new(false),
            pending,
            sftp,
        }))
    }

    fn at(&self) -> At {
        match self.0.at.lock() {
            Ok(at) => at.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The epoch of the session the handle string belongs to.
    pub(super) fn epoch(&self) -> u64 {
        self.at().epoch
    }

    /// The channel of the connection the handle lives on (0 for the first).
    pub fn channel(&self) -> usize {
        self.0.channel
    }

    /// Installs the handle string of a reopen on the session of `epoch`.
    pub(super) fn reopened(&self, epoch: u64, raw: String) {
        if let Ok(mut at) = self.0.at.lock() {
            *at = At { epoch, raw };
        }
    }

    pub(super) fn reopen_info(&self) -> &Reopen {
        &self.0.reopen
    }

    pub(super) fn reopen_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.0.reopening
    }

    /// Makes a reopen after a reconnect ask `path` where the file is now (it may be renamed).
    pub fn follow_path(&self, path: impl Fn() -> Option<String> + Send + Sync + 'static) {
        if let Ok(mut source) = self.0.reopen.path.lock() {
            *source = PathSource::Dynamic(Arc::new(path));
        }
    }

    /// A lease for one request; [`SftpError::HandleClosed`] once the close has begun.
    pub async fn lease(&self) -> SftpResult<Lease<'_>> {
        if self.is_closed() {
            return Err(SftpError::HandleClosed);
        }
        let open = self.0.open.read().await;
        if *open {
            Ok(Lease {
                at: self.at(),
                _open: open,
            })
        } else {
            Err(SftpError::HandleClosed)
        }
    }

    /// Marks the handle closed once every lease in flight has ended; `Some((epoch, raw))` for
    /// the one caller that must send the CLOSE, `None` if it was closed already.
    pub(super) async fn begin_close(&self) -> Option<(u64, String)> {
        self.0.closing.store(true, Ordering::Release);
        let mut open = self.0.open.write().await;
        let at = self.at();
        std::mem::replace(&mut *open, false).then_some((at.epoch, at.raw))
    }

    /// Whether the close has begun.
    pub fn is_closed(&self) -> bool {
        self.0.closing.load(Ordering::Acquire)
    }

    /// Numbers a write (or an FSETSTAT queued behind the writes) about to be queued on the
    /// session of `epoch`; it counts as unacknowledged until the returned record is dropped.
    pub(super) fn write_queued(&self, epoch: u64) -> QueuedWrite {
        self.0.pending.queued(epoch)
    }

    /// Waits until every write queued before `seq` (through any handle) and not yet
    /// acknowledged was sent again on the session of `epoch`: writes are resent in the order
    /// the program made them, whichever descriptor they went through.
    pub(super) async fn write_turn(&self, seq: u64, epoch: u64) {
        self.0.pending.turn(seq, epoch).await;
    }

    /// Write `seq` was sent again on the session of `epoch`.
    pub(super) fn write_resent(&self, seq: u64, epoch: u64) {
        self.0.pending.resent(seq, epoch);
    }
}

/// A write from the moment its packet is queued until it is acknowledged, fails for good, or
/// is given up (its future dropped): dropping it ends the write's turn, so no request waits
/// for it any more.
pub(super) struct QueuedWrite {
    pending: Arc<PendingWrites>,
    seq: u64,
}

impl QueuedWrite {
    /// Its place among the session's writes.
    pub(super) fn seq(&self) -> u64 {
        self.seq
    }
}

impl Drop for QueuedWrite {
    fn drop(&mut self) {
        self.pending.done(self.seq);
    }
}

/// The unacknowledged writes of every handle of one [`Sftp`] (and the FSETSTATs queued behind
/// them), numbered in the order the program made them, each with the epoch of the session it
/// was last sent on.
///
/// A write returns once its packets are queued, so the server applies them before any
/// request the program makes afterwards: on one session the server answers in order. When the
/// session dies, its unacknowledged writes are sent again on the next one, but only once
/// their file is reopened there (a round trip). A request sent on the new session meanwhile
/// would overtake them: an LSTAT would show the size of an earlier moment, a SETSTAT or an
/// OPEN that truncates would be undone by writes landing after it. So every request first
/// waits until no write is left on an earlier session ([`PendingWrites::sent_again_on`]);
/// only the writes being sent again do not wait, each behind every earlier one of the
/// session, whichever handle it went through ([`PendingWrites::turn`]): two descriptors of
/// one file writing the same bytes leave the program's last bytes on the server.
#[derive(Debug, Default)]
pub(super) struct PendingWrites {
    order: Mutex<WriteOrder>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct WriteOrder {
    next: u64,
    /// Sequence number -> the epoch it was last sent on.
    unacked: BTreeMap<u64, u64>,
    /// How many of them were last sent on each epoch.
    by_epoch: BTreeMap<u64, usize>,
}

impl WriteOrder {
    fn count(&mut self, epoch: u64) {
        *self.by_epoch.entry(epoch).or_default() += 1;
    }

    fn uncount(&mut self, epoch: u64) {
        if let Some(n) = self.by_epoch.get_mut(&epoch) {
            *n -= 1;
            if *n == 0 {
                self.by_epoch.remove(&epoch);
            }
        }
    }
}

impl PendingWrites {
    fn queued(self: &Arc<Self>, epoch: u64) -> QueuedWrite {
        let seq = match self.order.lock() {
            Ok(mut order) => {
                let seq = order.next;
                order.next += 1;
                order.unacked.insert(seq, epoch);
                order.count(epoch);
                seq
            }
            Err(_) => u64::MAX,
        };
        QueuedWrite {
            pending: Arc::clone(self),
            seq,
        }
    }

    fn done(&self, seq: u64) {
        if let Ok(mut order) = self.order.lock()
            && let Some(epoch) = order.unacked.remove(&seq)
        {
            order.uncount(epoch);
        }
        self.changed.notify_waiters();
    }

    fn resent(&self, seq: u64, epoch: u64) {
        if let Ok(mut order) = self.order.lock()
            && let Some(old) = order
                .unacked
                .get_mut(&seq)
                .map(|e| std::mem::replace(e, epoch))
        {
            order.uncount(old);
            order.count(epoch);
        }
        self.changed.notify_waiters();
    }

    /// Waits until every write before `seq` was sent again on the session of `epoch` (or a
    /// later one), or ended.
    async fn turn(&self, seq: u64, epoch: u64) {
        self.wait_until(|order| order.unacked.range(..seq).all(|(_, e)| *e >= epoch))
            .await;
    }

    /// Waits until every write sent on a session before `epoch` and not acknowledged there
    /// was sent again on a later one (or ended).
    pub(super) async fn sent_again_on(&self, epoch: u64) {
        self.wait_until(|order| order.by_epoch.range(..epoch).next().is_none())
            .await;
    }

    async fn wait_until(&self, ready: impl Fn(&WriteOrder) -> bool) {
        loop {
            let changed = self.changed.notified();
            if self.order.lock().map_or(true, |order| ready(&order)) {
                return;
            }
            changed.await;
        }
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Handle({:02x?})", self.at().raw.as_bytes())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // No clone is left, so no lease either: close it if nobody did.
        let channel = self.channel;
        let open = self.open.get_mut();
        if !*open {
            return;
        }
        *open = false;
        let (Some(sftp), Ok(rt)) = (self.sftp.upgrade(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let at = match self.at.get_mut() {
            Ok(at) => std::mem::replace(
                at,
                At {
                    epoch: 0,
                    raw: String::new(),
                },
            ),
            Err(_) => return,
        };
        rt.spawn(async move {
            if let Err(e) = sftp.close_raw(at.epoch, channel, &at.raw).await {
                tracing::debug!("closing a dropped handle failed: {e}");
            }
        });
    }
}

/// The handles the sessions hold open (by session epoch, channel and handle string: each
/// channel's `sftp-server` numbers its own), to refuse any request on another one.
#[derive(Debug, Default)]
pub struct HandleRegistry {
    open: Mutex<HashSet<(u64, usize, String)>>,
    misuse: AtomicU64,
}

impl HandleRegistry {
    /// Forgets the handles of sessions before `epoch` (they are gone with their session);
    /// returns how many there were.
    pub fn forget_before(&self, epoch: u64) -> usize {
        let Ok(mut open) = self.open.lock() else {
            return 0;
        };
        let before = open.len();
        open.retain(|(e, _, _)| *e >= epoch);
        before - open.len()
    }

    /// Records a handle the server just gave us on `channel` of the session of `epoch`.
    pub fn opened(&self, epoch: u64, channel: usize, raw: &str) {
        if let Ok(mut open) = self.open.lock()
            && !open.insert((epoch, channel, raw.to_owned()))
        {
            self.misused("OPEN", raw);
        }
    }

    /// Checks that the handle `key` (epoch, channel, string) is open before `what` is sent on
    /// it; counts and logs it if not.
    pub fn check(&self, what: &str, key: &(u64, usize, String)) -> bool {
        let held = self.open.lock().is_ok_and(|open| open.contains(key));
        if !held {
            self.misused(what, &key.2);
        }
        held
    }

    /// Records that the CLOSE of the handle `key` is being sent; false (counted) if it was not
    /// open.
    pub fn closing(&self, key: &(u64, usize, String)) -> bool {
        let held = self.open.lock().is_ok_and(|mut open| open.remove(key));
        if !held {
            self.misused("CLOSE", &key.2);
        }
        held
    }

    /// Handles held open now.
    pub fn len(&self) -> usize {
        self.open.lock().map_or(0, |open| open.len())
    }

    /// Whether no handle is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Requests refused because they named a handle not open (always 0 unless there is a bug).
    pub fn misuse(&self) -> u64 {
        self.misuse.load(Ordering::Relaxed)
    }

    fn misused(&self, what: &str, raw: &str) {
        self.misuse.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            "BUG: {what} on handle {:02x?}, which this session does not hold; not sent",
            raw.as_bytes()
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::time::Duration;

    use russh_sftp::protocol::{FileAttributes, OpenFlags};

    use super::super::{Sftp, SftpError};
    use super::Handle;
    use crate::remote::fake_server::FakeServer;

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    async fn open(sftp: &Sftp, path: &str, flags: OpenFlags) -> Handle {
        sftp.open(path, flags, FileAttributes::empty())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_second_close_sends_nothing() {
        let server = FakeServer::new(1);
        server.put("/f", b"x".to_vec());
        let sftp = server.connect().await;
        let h = open(&sftp, "/f", OpenFlags::READ).await;
        let again = h.clone();
        sftp.close(&h).await.unwrap();
        sftp.close(&again).await.unwrap();
        // A handle number reused at once by the next open must not be closed by a stray CLOSE.
        let next = open(&sftp, "/f", OpenFlags::READ).await;
        sftp.close(&h).await.unwrap();
        assert_eq!(server.count("close"), 1);
        assert!(
            sftp.fstat(&next).await.is_ok(),
            "the reused number is still open"
        );
        assert!(server.bad_handle_requests().is_empty());
        assert_eq!(sftp.handles().misuse(), 0);
    }

    #[tokio::test]
    async fn close_waits_for_requests_in_flight_and_refuses_new_ones() {
        let server = FakeServer::new(1);
        server.put("/f", vec![7; 100_000]);
        let sftp = server.connect().await;
        let h = open(&sftp, "/f", OpenFlags::READ).await;
        server.hold_reads(true);
        server.short_reads(true);
        let reading = tokio::spawn({
            let (sftp, h) = (sftp.clone(), h.clone());
            async move { sftp.read_at(&h, 0, 32 * 1024, None).await }
        });
        settle().await;
        let closing = tokio::spawn({
            let (sftp, h) = (sftp.clone(), h.clone());
            async move { sftp.close(&h).await }
        });
        settle().await;
        assert_eq!(
            server.count("close"),
            0,
            "CLOSE sent while a READ was in flight"
        );
        assert!(
            h.is_closed(),
            "no new request may start once the close began"
        );
        // The short answer makes the read ask again: still before the CLOSE.
        server.hold_reads(false);
        let data = reading.await.unwrap().unwrap();
        assert_eq!(data.len(), 32 * 1024);
        closing.await.unwrap().unwrap();
        let after = sftp.read_at(&h, 0, 10, None).await;
        assert!(matches!(after, Err(SftpError::HandleClosed)), "{after:?}");
        let seen = server.seen();
        let close_at = seen.iter().position(|s| s.op == "close").unwrap();
        assert!(
            seen[close_at + 1..].iter().all(|s| s.handle.is_none()),
            "requests after CLOSE: {seen:?}"
        );
        assert!(server.bad_handle_requests().is_empty());
    }

    #[tokio::test]
    async fn a_handle_dropped_open_is_closed_once() {
        let server = FakeServer::new(1);
        server.put("/f", b"x".to_vec());
        let sftp = server.connect().await;
        let h = open(&sftp, "/f", OpenFlags::READ).await;
        let clone = h.clone();
        drop(h);
        settle().await;
        assert_eq!(server.count("close"), 0, "a clone still holds it");
        drop(clone);
        settle().await;
        assert_eq!(server.count("close"), 1);
        assert_eq!(server.open_handles(), 0);
        assert!(server.bad_handle_requests().is_empty());
    }

    /// OpenSSH's handles from 128 on are not UTF-8 (vendor/README.md).
    #[tokio::test]
    async fn handles_past_127_reach_their_file() {
        let server = FakeServer::new(126);
        let sftp = server.connect().await;
        let mut handles = Vec::new();
        for i in 0..4u8 {
            let path = format!("/f{i}");
            server.put(&path, Vec::new());
            let h = open(&sftp, &path, OpenFlags::WRITE).await;
            sftp.send_write(&h, 0, &[i; 10])
                .await
                .unwrap()
                .await
                .unwrap();
            handles.push(h);
        }
        for h in &handles {
            sftp.close(h).await.unwrap();
        }
        for i in 0..4u8 {
            assert_eq!(server.get(&format!("/f{i}")).unwrap(), vec![i; 10]);
        }
        assert!(server.bad_handle_requests().is_empty());
        assert_eq!(server.open_handles(), 0);
    }
}
