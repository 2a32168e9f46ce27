//! A directory read with several READDIRs in flight on its handle ([`DirPages`]).
//!
//! **Why.** A READDIR answers one page (OpenSSH's `sftp-server`: up to 100 names), and the
//! next can only be asked on the same handle. One at a time, a directory of 50,000 names costs
//! 500 round trips. As the C sshfs does, several READDIRs are kept in flight on the handle and
//! their answers are taken in the order they were sent: the server answers a handle's requests
//! in order, each with the page after the one before.
//!
//! **The window.** One READDIR first; a first page shorter than [`FULL_FIRST_PAGE`] says the
//! directory is small, and the next READDIR (which will most likely answer the end) goes alone
//! too, so a small directory costs the two READDIRs it always did. After that, the window
//! doubles with each page answered, up to [`MAX_IN_FLIGHT`]. Only servers known to answer in
//! order (OpenSSH's, [`Family::OpenSsh`]) get a window above one; any other server is read one
//! READDIR at a time, as before.
//!
//! **The end.** The first end-of-directory answer (in sending order) ends the listing; the
//! READDIRs sent after it (answered EOF again, or anything else) are dropped unread.
//!
//! **Sending order.** A READDIR is not positional: the server gives the next page to whichever
//! request it reads first. Each request therefore waits for its turn ([`Turns`]) to put its
//! packet on the session, so the packets leave in the order of the pages we count them as.
//!
//! **Reconnects.** A READDIR is not idempotent on a handle. A request whose session died (or
//! that finds its handle reopened on a later session) is never sent again on the new session:
//! it answers [`Page::Restarted`] instead, every READDIR in flight is dropped, and the listing
//! starts again from the first page of the reopened handle, which no request has read yet.
//!
//! **Interrupts.** [`DirPages::next_page`] may be dropped at its await (the kernel interrupted
//! the READDIR that asked): the requests in flight stay in the [`DirPages`], answered or not,
//! and the next call takes the same page.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::sync::Notify;

use super::counters::Op;
use super::error::{FX_EOF, SftpResult};
use super::handle::Handle;
use super::link::Session;
use super::runner::{Behind, Raw, Request, Sending, Target, queued};
use super::server::Family;
use super::{DirEntry, Sftp};

/// Most READDIRs in flight on one handle: 64 pages of OpenSSH's 100 names each, about 800 KB
/// of answers, keep a 100 ms link busy at 64,000 names a second.
pub const MAX_IN_FLIGHT: usize = 64;

/// A first page with fewer names than this says the directory is small: the next READDIR goes
/// alone (its answer is most likely the end).
pub const FULL_FIRST_PAGE: usize = 64;

/// What one READDIR of a [`DirPages`] answered.
#[derive(Debug)]
pub enum Page {
    /// The next names of the directory.
    Names(Vec<DirEntry>),
    /// The end of the directory.
    End,
    /// The handle was reopened on a later session: the listing starts again from its first
    /// page (the entries before this one came from the earlier handle).
    Restarted,
}

/// One READDIR's answer.
enum Answer {
    Names(Vec<DirEntry>),
    End,
    /// The session (of this epoch) is not the one the listing is on (a reconnect): nothing
    /// was sent.
    OtherSession(u64),
}

/// The order in which the READDIRs of one window put their packets on the session.
#[derive(Default)]
struct Turns {
    /// Requests (by index) that have sent their packet, or given up sending it.
    passed: AtomicU64,
    changed: Notify,
}

impl Turns {
    /// Waits until every request before `index` has sent its packet.
    async fn wait(&self, index: u64) {
        loop {
            let changed = self.changed.notified();
            if self.passed.load(Ordering::Acquire) >= index {
                return;
            }
            changed.await;
        }
    }

    /// Request `index` has sent (or will never send) its packet.
    fn pass(&self, index: u64) {
        self.passed.fetch_max(index + 1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }
}

/// A directory handle's pages, read with several READDIRs in flight (see the module doc).
pub struct DirPages {
    sftp: Arc<Sftp>,
    handle: Handle,
    /// The session epoch the listing is read on.
    epoch: u64,
    in_flight: FuturesOrdered<BoxFuture<'static, SftpResult<Answer>>>,
    /// The sending order of the requests in flight (new with each restart).
    turns: Arc<Turns>,
    /// The index the next request gets in `turns`.
    next_index: u64,
    /// How many READDIRs may be in flight now.
    window: usize,
    /// Pages answered so far on this epoch.
    pages: usize,
    /// The end was answered: nothing more is sent.
    ended: bool,
    /// The most READDIRs that were in flight at once (for the tests).
    widest: usize,
}

impl std::fmt::Debug for DirPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirPages")
            .field("epoch", &self.epoch)
            .field("in_flight", &self.in_flight.len())
            .field("window", &self.window)
            .field("ended", &self.ended)
            .finish()
    }
}

impl DirPages {
    /// The pages of `handle` (just opened by OPENDIR, no READDIR sent on it yet).
    pub fn new(sftp: &Arc<Sftp>, handle: &Handle) -> DirPages {
        DirPages {
            sftp: Arc::clone(sftp),
            handle: handle.clone(),
            epoch: handle.epoch(),
            in_flight: FuturesOrdered::new(),
            turns: Arc::default(),
            next_index: 0,
            window: 1,
            pages: 0,
            ended: false,
            widest: 0,
        }
    }

    /// The next page, in order: sends READDIRs until the window is full, then takes the
    /// oldest answer. Cancel-safe: dropped at its await, nothing is lost.
    pub async fn next_page(&mut self) -> SftpResult<Page> {
        if self.ended {
            return Ok(Page::End);
        }
        self.fill();
        let answer = match self.in_flight.next().await {
            Some(answer) => answer,
            // Never empty after `fill`; taken as the end all the same.
            None => Ok(Answer::End),
        };
        match answer {
            Ok(Answer::Names(names)) => {
                self.pages += 1;
                self.window = self.next_window(names.len());
                Ok(Page::Names(names))
            }
            Ok(Answer::End) => {
                self.finish();
                Ok(Page::End)
            }
            Ok(Answer::OtherSession(epoch)) => {
                // Nothing in flight was sent on the new session: its handle is unread.
                self.reset(epoch);
                Ok(Page::Restarted)
            }
            Err(e) => {
                // What was in flight behind a failed page is not taken: the next call asks
                // again, one READDIR at a time.
                self.reset(self.epoch);
                Err(e)
            }
        }
    }

    /// The largest number of READDIRs that were in flight at once.
    pub fn widest(&self) -> usize {
        self.widest
    }

    /// Drops every READDIR in flight (their answers are ignored when they come).
    pub fn finish(&mut self) {
        self.ended = true;
        self.in_flight = FuturesOrdered::new();
    }

    /// Drops what is in flight; the listing goes on (or starts again) on `epoch`, one
    /// READDIR at a time.
    fn reset(&mut self, epoch: u64) {
        self.in_flight = FuturesOrdered::new();
        self.turns = Arc::default();
        self.next_index = 0;
        self.window = 1;
        self.pages = 0;
        self.epoch = epoch;
    }

    /// The window after a page of `names` names was answered.
    fn next_window(&self, names: usize) -> usize {
        let pipelined = self
            .sftp
            .server
            .read()
            .is_ok_and(|p| p.family == Family::OpenSsh);
        if !pipelined || (self.pages == 1 && names < FULL_FIRST_PAGE) {
            1
        } else {
            (self.window * 2).min(MAX_IN_FLIGHT)
        }
    }

    /// Sends READDIRs until `window` are in flight.
    fn fill(&mut self) {
        while self.in_flight.len() < self.window.max(1) {
            let (sftp, handle, turns) = (
                Arc::clone(&self.sftp),
                self.handle.clone(),
                Arc::clone(&self.turns),
            );
            let (epoch, index) = (self.epoch, self.next_index);
            self.next_index += 1;
            let request =
                Box::pin(async move { sftp.readdir_in_turn(&handle, epoch, &turns, index).await });
            // Polled once here, so it is on its way even before the caller awaits it.
            self.in_flight.push_back(Box::pin(queued(request)));
        }
        self.widest = self.widest.max(self.in_flight.len());
    }
}

impl Sftp {
    /// One READDIR of a [`DirPages`] on `handle`, sent only on session `epoch` and only once
    /// every request before `index` has sent its own.
    async fn readdir_in_turn(
        &self,
        handle: &Handle,
        epoch: u64,
        turns: &Turns,
        index: u64,
    ) -> SftpResult<Answer> {
        let send: Sending<'_, Answer> = Box::new(move |session: Arc<Session>, raw: Raw| {
            Box::pin(async move {
                if session.epoch != epoch {
                    turns.pass(index);
                    return Ok(Answer::OtherSession(session.epoch));
                }
                turns.wait(index).await;
                let sent = queued(Box::pin(self.attempt(
                    Op::Readdir,
                    &session,
                    session.raw.readdir(raw.handle()),
                )));
                turns.pass(index);
                match sent.await {
                    Ok(name) => Ok(Answer::Names(DirEntry::page(name))),
                    Err(e) if e.status() == Some(FX_EOF) => Ok(Answer::End),
                    Err(e) => Err(e),
                }
            })
        });
        let reply = self
            .run(Request {
                op: Op::Readdir,
                target: Target::Handle(handle),
                behind: Behind::Nothing,
                send,
                check: None,
            })
            .await;
        reply.map(|r| r.value)
    }
}

#[cfg(test)]
mod tests;
