//! Faults injected between our SFTP client and any server: [`Faulty`] wraps an
//! `Arc<dyn ServeSftp>` and is one itself; each session it serves opens the inner server's
//! session and pumps packets both ways ([`session`]), asking a [`FaultPlan`] what to do with
//! each. The plan is shared by every session of every connection and can be changed by a test
//! at any moment (all its methods take `&self` and are thread-safe).
//!
//! Why at the wire and not at an API: the faults then hit exactly what a real network and a
//! real server do to us, through the real codec (russh-sftp), our engine's deadlines, its
//! reconnect and resend logic and the fs layer above, and one fault layer serves every server:
//! the fake, the in-memory one, OpenSSH's own `sftp-server` ([`super::process`]).
//!
//! What a plan can do:
//! * **Cut a connection** before request N reaches the server ([`FaultPlan::cut_before`]:
//!   the server never sees it), after the server answered it ([`FaultPlan::cut_after`]: the
//!   change is made, the answer is lost), or now ([`FaultPlan::cut_now`]). A cut ends every
//!   channel of that connection in both directions, as a dead TCP connection does, and any
//!   channel opened on it later is dead at once. The server first finishes what it was sent
//!   on that connection (its answers are dropped), so nothing sent before the cut lands after
//!   the client reconnected: a cut is one moment, and a run replays the same way. Which request: a [`Pick`] ("request number
//!   12", "the 3rd WRITE from now", any predicate on the packet).
//! * **Shape answers**: delay them ([`Delay`], fixed or seeded random, each channel's answers
//!   staying in order), reorder them (groups released in reverse order), hold every answer of
//!   some channels, or the answers to some requests, until released.
//! * **Answer in the server's place**: refuse with any status code, codes above 8 included
//!   ([`FaultPlan::refuse`]); a full disk ([`FaultPlan::fill_disk_after`]); short reads
//!   ([`FaultPlan::short_reads`]: DATA answers cut shorter, which is valid SFTP).
//! * **Stop answering** but keep the connection ([`FaultPlan::stall`]): requests are swallowed,
//!   answers too, no end of stream, until [`FaultPlan::resume`] or a cut.
//!
//! Everything that passed is recorded ([`FaultPlan::requests`], [`FaultPlan::answers`]) for
//! tests to assert on. INIT and VERSION are not numbered nor recorded, and are never delayed,
//! held or reordered: a session always starts (only a stall swallows INIT).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pick;
mod record;
mod session;
#[cfg(test)]
mod tests;

pub(crate) use pick::{Channels, Pick, Request};
pub(crate) use record::{Answered, Cut, Delivery, Fate, Seen};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::DuplexStream;
use tokio::sync::watch;

use super::wire;
use super::{PIPE_BUFFER, ServeSftp};

/// A server with faults: every session of `inner` goes through the [`FaultPlan`].
pub(crate) struct Faulty {
    inner: Arc<dyn ServeSftp>,
    plan: Arc<FaultPlan>,
}

impl Faulty {
    /// `inner` behind a new, empty plan (no faults until a test adds some).
    pub(crate) fn new(inner: Arc<dyn ServeSftp>) -> Arc<Faulty> {
        Self::with_plan(inner, Arc::new(FaultPlan::default()))
    }

    /// `inner` behind `plan` (which may be shared with other layers).
    pub(crate) fn with_plan(inner: Arc<dyn ServeSftp>, plan: Arc<FaultPlan>) -> Arc<Faulty> {
        Arc::new(Faulty { inner, plan })
    }

    /// The plan, to add faults and read what passed.
    pub(crate) fn plan(&self) -> &Arc<FaultPlan> {
        &self.plan
    }
}

impl ServeSftp for Faulty {
    fn open_session(&self, connection: u64, channel: usize) -> DuplexStream {
        let (client, ours) = tokio::io::duplex(PIPE_BUFFER);
        if self.plan.session_opened(connection) {
            let server = self.inner.open_session(connection, channel);
            let plan = Arc::clone(&self.plan);
            tokio::spawn(session::pump(plan, connection, channel, ours, server));
        }
        // Else the connection was cut: `ours` is dropped, the client reads the end at once.
        client
    }
}

/// How long answers wait before they reach the client. Each channel's answers stay in the
/// order the server sent them (an answer waits for the one before it); reordering is
/// [`FaultPlan::reorder_replies`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Delay {
    /// At once.
    #[default]
    None,
    /// This long, each.
    Fixed(Duration),
    /// Between `min` and `max`, drawn for each answer from a generator seeded with `seed`.
    Random {
        /// Shortest delay.
        min: Duration,
        /// Longest delay.
        max: Duration,
        /// The generator's seed (the same seed gives the same delays in the same order).
        seed: u64,
    },
}

/// How much of a DATA answer a short read keeps (at least one byte: an empty DATA would read
/// as the end of the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shorten {
    /// Half of it, rounded up.
    Half,
    /// At most this many bytes.
    AtMost(usize),
}

impl Shorten {
    fn keep(self, len: usize) -> usize {
        let keep = match self {
            Shorten::Half => len.div_ceil(2),
            Shorten::AtMost(n) => n.min(len),
        };
        keep.max(1)
    }
}

/// The faults to inject, and the record of what passed. Shared by every session of a
/// [`Faulty`] server; a test changes it at any time.
pub(crate) struct FaultPlan {
    state: Mutex<State>,
    /// Bumped whenever sessions must look at the plan again (a cut, a release, a resume).
    changed: watch::Sender<u64>,
    /// Bumped whenever a request is recorded.
    recorded: watch::Sender<u64>,
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan {
            state: Mutex::new(State::default()),
            changed: watch::channel(0).0,
            recorded: watch::channel(0).0,
        }
    }
}

#[derive(Default)]
struct State {
    numbered: u64,
    rules: Vec<Rule>,
    delay: Delay,
    rng: u64,
    reorder: Option<(Channels, usize)>,
    held: Vec<Channels>,
    /// Answers to requests picked by [`FaultPlan::hold_answers`] wait.
    holding_answers: bool,
    stalled: bool,
    disk: Option<Disk>,
    connections: BTreeMap<u64, Connection>,
    cuts: Vec<Cut>,
    requests: Vec<Seen>,
    answers: Vec<Answered>,
}

#[derive(Default)]
struct Connection {
    cut: bool,
    sessions: usize,
    /// Sessions that finished settling after the cut.
    settled: usize,
}

struct Rule {
    pick: Pick,
    matched: u64,
    hit: u64,
    action: Action,
}

#[derive(Debug, Clone, Copy)]
enum Action {
    CutBefore,
    CutAfter,
    Refuse(u32),
    Shorten(Shorten),
    Swallow,
    Hold,
}

struct Disk {
    budget: u64,
    used: u64,
    code: u32,
    creates: bool,
    /// A WRITE was refused: the disk is full even if a smaller one would fit.
    refused: bool,
}

impl Disk {
    fn full(&self) -> bool {
        self.refused || self.used >= self.budget
    }
}

/// What the session does with a request.
pub(super) enum Decision {
    /// Pass it to the server, remembering what to do with its answer.
    Forward(Option<Mark>),
    /// Cut the connection instead (done already: the session only ends).
    CutBefore,
    /// Answer it with this packet instead.
    Answer(Bytes),
    /// Drop it.
    Drop,
}

/// What to do with the answer to a forwarded request.
#[derive(Debug, Clone, Copy)]
pub(super) enum Mark {
    CutAfter(u64),
    Shorten(Shorten),
    Hold,
}

/// How long a partial group of reordered answers waits for the rest.
pub(super) const REORDER_WINDOW: Duration = Duration::from_millis(20);

impl FaultPlan {
    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn rule(&self, pick: Pick, action: Action) {
        self.lock().rules.push(Rule {
            pick,
            matched: 0,
            hit: 0,
            action,
        });
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    // ---- Cuts ----

    /// Cuts the connection of each picked request before the server gets it.
    pub(crate) fn cut_before(&self, pick: Pick) {
        self.rule(pick, Action::CutBefore);
    }

    /// Passes each picked request to the server and cuts its connection when the answer
    /// comes (the answer is dropped): the server made the change, the client never hears.
    pub(crate) fn cut_after(&self, pick: Pick) {
        self.rule(pick, Action::CutAfter);
    }

    /// Cuts every connection that has a session now; returns them.
    pub(crate) fn cut_now(&self) -> Vec<u64> {
        let live: Vec<u64> = {
            let st = self.lock();
            st.connections
                .iter()
                .filter(|(_, c)| !c.cut && c.sessions > 0)
                .map(|(n, _)| *n)
                .collect()
        };
        for &n in &live {
            self.cut(n, "cut_now".into());
        }
        live
    }

    /// Cuts connection `connection` (every channel, both directions; channels opened on it
    /// later are dead at once).
    pub(crate) fn cut_connection(&self, connection: u64) {
        self.cut(connection, "cut_connection".into());
    }

    fn cut(&self, connection: u64, why: String) {
        {
            let mut st = self.lock();
            let conn = st.connections.entry(connection).or_default();
            if conn.cut {
                return;
            }
            conn.cut = true;
            st.cuts.push(Cut { connection, why });
        }
        self.bump();
    }

    // ---- Answers in the server's place ----

    /// Answers each picked request with STATUS `code` (any value, above 8 too) without
    /// passing it on.
    pub(crate) fn refuse(&self, pick: Pick, code: u32) {
        self.rule(pick, Action::Refuse(code));
    }

    /// Shortens the DATA answers of the picked READs (pick READs: other answers are left as
    /// they are).
    pub(crate) fn short_reads(&self, pick: Pick, shorten: Shorten) {
        self.rule(pick, Action::Shorten(shorten));
    }

    /// Drops each picked request without an answer (the connection goes on).
    pub(crate) fn swallow(&self, pick: Pick) {
        self.rule(pick, Action::Swallow);
    }

    /// A disk that fills up: WRITEs pass while their data adds up to at most `budget` bytes
    /// (from now); a WRITE that does not fit is answered with STATUS `code` (OpenSSH sends
    /// `FAILURE` 4 for ENOSPC; 14 is `SSH_FX_NO_SPACE_ON_FILESYSTEM` of later drafts) and not
    /// passed on. With `creates`, an OPEN with CREAT and a MKDIR are refused too once the
    /// budget is used up (the layer does not know whether the file exists already). Once the
    /// budget is used up (or a WRITE was refused), `statvfs@openssh.com` and
    /// `fstatvfs@openssh.com` are answered by the layer: no block available, and with
    /// `creates` no inode either, as statvfs(2) shows a full disk.
    pub(crate) fn fill_disk_after(&self, budget: u64, code: u32, creates: bool) {
        self.lock().disk = Some(Disk {
            budget,
            used: 0,
            code,
            creates,
            refused: false,
        });
    }

    /// Bytes of WRITE data passed since [`FaultPlan::fill_disk_after`].
    pub(crate) fn disk_used(&self) -> u64 {
        self.lock().disk.as_ref().map_or(0, |d| d.used)
    }

    /// Room on the disk again: no more refusals.
    pub(crate) fn free_disk(&self) {
        self.lock().disk = None;
    }

    // ---- Shaping answers ----

    /// Delays answers from now on.
    pub(crate) fn delay_replies(&self, delay: Delay) {
        let mut st = self.lock();
        if let Delay::Random { seed, .. } = delay {
            st.rng = seed;
        }
        st.delay = delay;
    }

    /// Releases the answers of `channels` in groups of `group`, each group in reverse order
    /// (a group not full after [`REORDER_WINDOW`] goes as it is, reversed). Replaces an
    /// earlier reorder.
    pub(crate) fn reorder_replies(&self, channels: Channels, group: usize) {
        self.lock().reorder = Some((channels, group.max(2)));
        self.bump();
    }

    /// Answers go in the order the server sent them again.
    pub(crate) fn in_order(&self) {
        self.lock().reorder = None;
        self.bump();
    }

    /// Holds every answer of `channels` (requests still reach the server) until
    /// [`FaultPlan::release_replies`].
    pub(crate) fn hold_replies(&self, channels: Channels) {
        self.lock().held.push(channels);
        self.bump();
    }

    /// Holds the answers to the picked requests (the other answers go on, overtaking them)
    /// until [`FaultPlan::release_replies`].
    pub(crate) fn hold_answers(&self, pick: Pick) {
        self.lock().holding_answers = true;
        self.rule(pick, Action::Hold);
    }

    /// Lets every held answer go, in order, and holds no more (the faults of
    /// [`FaultPlan::hold_replies`] and [`FaultPlan::hold_answers`] end).
    pub(crate) fn release_replies(&self) {
        {
            let mut st = self.lock();
            st.held.clear();
            st.holding_answers = false;
            st.rules.retain(|r| !matches!(r.action, Action::Hold));
        }
        self.bump();
    }

    // ---- A server that stops answering ----

    /// The server stops answering and the connection stays: every request (INIT too) and
    /// every answer is dropped from now until [`FaultPlan::resume`] or a cut.
    pub(crate) fn stall(&self) {
        self.lock().stalled = true;
        self.bump();
    }

    /// The server answers again (what it dropped stays dropped).
    pub(crate) fn resume(&self) {
        self.lock().stalled = false;
        self.bump();
    }

    /// No faults any more (cuts done stay done; the record stays).
    pub(crate) fn clear(&self) {
        {
            let mut st = self.lock();
            st.rules.clear();
            st.delay = Delay::None;
            st.reorder = None;
            st.held.clear();
            st.holding_answers = false;
            st.stalled = false;
            st.disk = None;
        }
        self.bump();
    }

    // ---- The record ----

    /// Every request so far, in the order they reached the layer.
    pub(crate) fn requests(&self) -> Vec<Seen> {
        self.lock().requests.clone()
    }

    /// Every answer so far, in the order they were delivered or dropped.
    pub(crate) fn answers(&self) -> Vec<Answered> {
        self.lock().answers.clone()
    }

    /// How many requests named `name` ("write", "fsync@openssh.com") reached the server.
    pub(crate) fn forwarded(&self, name: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|s| s.name == name && record::reached_server(s.fate))
            .count()
    }

    /// Requests numbered so far (the next one gets this plus 1).
    pub(crate) fn numbered(&self) -> u64 {
        self.lock().numbered
    }

    /// The connections cut so far.
    pub(crate) fn cuts(&self) -> Vec<Cut> {
        self.lock().cuts.clone()
    }

    /// Sessions of `connection` being served now.
    pub(crate) fn sessions_open(&self, connection: u64) -> usize {
        self.lock()
            .connections
            .get(&connection)
            .map_or(0, |c| c.sessions)
    }

    /// Waits until a request `pred` accepts was recorded (at most `within`); returns it.
    pub(crate) async fn until_seen(
        &self,
        within: Duration,
        pred: impl Fn(&Seen) -> bool,
    ) -> Option<Seen> {
        let mut rx = self.recorded.subscribe();
        let wait = async {
            loop {
                rx.borrow_and_update();
                if let Some(s) = self.lock().requests.iter().find(|s| pred(s)) {
                    return Some(s.clone());
                }
                rx.changed().await.ok()?;
            }
        };
        tokio::time::timeout(within, wait).await.ok().flatten()
    }

    // ---- For the sessions ----

    /// A session of `connection` starts: `false` if the connection is cut.
    fn session_opened(&self, connection: u64) -> bool {
        let mut st = self.lock();
        let conn = st.connections.entry(connection).or_default();
        if conn.cut {
            return false;
        }
        conn.sessions += 1;
        true
    }

    /// A session of `connection` ended.
    pub(super) fn session_closed(&self, connection: u64) {
        if let Some(c) = self.lock().connections.get_mut(&connection) {
            c.sessions = c.sessions.saturating_sub(1);
        }
    }

    /// A session of the cut `connection` has settled.
    pub(super) fn session_settled(&self, connection: u64) {
        if let Some(c) = self.lock().connections.get_mut(&connection) {
            c.settled += 1;
        }
        self.bump();
    }

    /// Whether every session of the cut `connection` has settled.
    pub(super) fn all_settled(&self, connection: u64) -> bool {
        self.lock()
            .connections
            .get(&connection)
            .is_none_or(|c| c.settled >= c.sessions)
    }

    /// Changes sessions must look at (a cut, a release, a resume).
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Whether `connection` was cut.
    pub(super) fn is_cut(&self, connection: u64) -> bool {
        self.lock()
            .connections
            .get(&connection)
            .is_some_and(|c| c.cut)
    }

    /// Whether every answer of this channel waits ([`FaultPlan::hold_replies`]).
    pub(super) fn is_held(&self, connection: u64, channel: usize) -> bool {
        self.lock()
            .held
            .iter()
            .any(|c| c.contains(connection, channel))
    }

    /// Whether answers picked by [`FaultPlan::hold_answers`] wait.
    pub(super) fn holding_answers(&self) -> bool {
        self.lock().holding_answers
    }

    /// Whether the server is stalled ([`FaultPlan::stall`]).
    pub(super) fn is_stalled(&self) -> bool {
        self.lock().stalled
    }

    /// The reorder group size for this channel, if its answers are reordered.
    pub(super) fn reorder_group(&self, connection: u64, channel: usize) -> Option<usize> {
        match self.lock().reorder {
            Some((channels, group)) if channels.contains(connection, channel) => Some(group),
            _ => None,
        }
    }

    /// The delay for the next answer.
    pub(super) fn next_delay(&self) -> Duration {
        let mut st = self.lock();
        match st.delay {
            Delay::None => Duration::ZERO,
            Delay::Fixed(d) => d,
            Delay::Random { min, max, .. } => {
                let span = max.saturating_sub(min).as_micros() as u64;
                let r = splitmix64(&mut st.rng);
                min + Duration::from_micros(if span == 0 { 0 } else { r % (span + 1) })
            }
        }
    }

    /// INIT arrived: `false` if it is to be dropped (stalled).
    pub(super) fn on_init(&self) -> bool {
        !self.is_stalled()
    }

    /// A request arrived on `channel` of `connection`: numbers it, decides its fate, records
    /// it.
    pub(super) fn on_request(&self, connection: u64, channel: usize, body: &[u8]) -> Decision {
        let (decision, cut) = {
            let mut st = self.lock();
            st.numbered += 1;
            let request = Request {
                number: st.numbered,
                connection,
                channel,
                kind: wire::kind(body),
                id: wire::id(body).unwrap_or(0),
                body,
            };
            let (fate, decision, cut) = st.decide(&request);
            st.requests.push(Seen {
                number: request.number,
                connection,
                channel,
                kind: request.kind,
                name: request.name(),
                id: request.id,
                fate,
            });
            (decision, cut)
        };
        self.recorded.send_modify(|n| *n += 1);
        if let Some(why) = cut {
            self.cut(connection, why);
        }
        decision
    }

    /// The connection is cut after the request numbered `number` was answered.
    pub(super) fn cut_after_answer(&self, connection: u64, number: u64, name: &str) {
        self.cut(connection, format!("after request {number} ({name})"));
    }

    /// Records what became of an answer.
    pub(super) fn record_answer(&self, answered: Answered) {
        self.lock().answers.push(answered);
    }
}

impl State {
    /// The fate of `r`, what the session does, and whether to cut the connection (why).
    fn decide(&mut self, r: &Request<'_>) -> (Fate, Decision, Option<String>) {
        if self.connections.get(&r.connection).is_some_and(|c| c.cut) {
            return (Fate::AfterCut, Decision::Drop, None);
        }
        if self.stalled {
            return (Fate::Stalled, Decision::Drop, None);
        }
        let mut action = None;
        for rule in &mut self.rules {
            if !(rule.pick.pred)(r) {
                continue;
            }
            rule.matched += 1;
            let due = rule.matched > rule.pick.skip && rule.pick.times.is_none_or(|t| rule.hit < t);
            if due && action.is_none() {
                rule.hit += 1;
                action = Some(rule.action);
            }
        }
        let name = r.name();
        match action {
            Some(Action::CutBefore) => {
                let why = format!("before request {} ({name})", r.number);
                return (Fate::CutBefore, Decision::CutBefore, Some(why));
            }
            Some(Action::CutAfter) => {
                return (
                    Fate::CutAfter,
                    Decision::Forward(Some(Mark::CutAfter(r.number))),
                    None,
                );
            }
            Some(Action::Refuse(code)) => {
                let answer = wire::status(r.id, code, "refused by the fault plan");
                return (Fate::Refused(code), Decision::Answer(answer), None);
            }
            Some(Action::Swallow) => return (Fate::Swallowed, Decision::Drop, None),
            Some(Action::Hold) => {
                return (Fate::AnswerHeld, Decision::Forward(Some(Mark::Hold)), None);
            }
            Some(Action::Shorten(s)) if r.kind == wire::READ => {
                return (
                    Fate::ShortRead,
                    Decision::Forward(Some(Mark::Shorten(s))),
                    None,
                );
            }
            Some(Action::Shorten(_)) | None => {}
        }
        if let Some(disk) = &mut self.disk {
            let refuse = match wire::write_len(r.body) {
                Some(len) if disk.used + len as u64 > disk.budget => true,
                Some(len) => {
                    disk.used += len as u64;
                    false
                }
                None => {
                    let creates = r.kind == wire::MKDIR
                        || wire::open_pflags(r.body).is_some_and(|f| f & wire::PFLAG_CREAT != 0);
                    disk.creates && creates && disk.used >= disk.budget
                }
            };
            let statvfs = wire::extension(r.body)
                .is_some_and(|e| e == "statvfs@openssh.com" || e == "fstatvfs@openssh.com");
            if statvfs && disk.full() {
                let blocks = disk.budget.div_ceil(4096).max(1);
                let inodes_avail = if disk.creates { 0 } else { 1000 };
                let answer = wire::statvfs_reply(r.id, blocks, 0, 1000, inodes_avail);
                return (Fate::FullStatvfs, Decision::Answer(answer), None);
            }
            if refuse {
                disk.refused |= wire::write_len(r.body).is_some();
                let answer = wire::status(r.id, disk.code, "no space left on device");
                return (Fate::DiskFull(disk.code), Decision::Answer(answer), None);
            }
        }
        (Fate::Forwarded, Decision::Forward(None), None)
    }
}

/// SplitMix64: a tiny seeded generator, enough for test delays.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
