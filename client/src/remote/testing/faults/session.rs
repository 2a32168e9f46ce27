//! One session through the fault layer: two reader tasks cut each direction into packets;
//! one loop asks the plan about each request, forwards it (or answers, drops, cuts), and
//! delivers the answers through an [`Outbox`] that delays, reorders and holds them.
//!
//! A cut settles before it shows ([`settle`]): the server finishes what it was sent, so a cut
//! is one moment and not a window in which old requests may still land.
//!
//! The readers feed unbounded queues so neither peer ever blocks on us, and the loop only
//! waits on things that can be dropped safely (`select!` on queues, the plan's change signal
//! and a timer). When the session ends for any reason, the readers are aborted and both
//! streams dropped: the client and the inner server each read the end of their stream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, DuplexStream, WriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::super::wire;
use super::{Answered, Decision, Delivery, FaultPlan, Mark, REORDER_WINDOW};

/// Serves one session: `client` is our end of the client's pipe, `server` the inner server's
/// session.
pub(super) async fn pump(
    plan: Arc<FaultPlan>,
    connection: u64,
    channel: usize,
    client: DuplexStream,
    server: DuplexStream,
) {
    let (client_rd, client_wr) = tokio::io::split(client);
    let (server_rd, mut server_wr) = tokio::io::split(server);
    let (requests_tx, mut requests) = mpsc::unbounded_channel();
    let (answers_tx, mut answers) = mpsc::unbounded_channel();
    let _readers = AbortOnDrop(vec![
        tokio::spawn(read_packets(client_rd, requests_tx)),
        tokio::spawn(read_packets(server_rd, answers_tx)),
    ]);
    let mut changed = plan.subscribe();
    let mut out = Outbox {
        plan: Arc::clone(&plan),
        connection,
        channel,
        client: client_wr,
        queue: VecDeque::new(),
        held: Vec::new(),
        group: Vec::new(),
        group_since: None,
        last_due: Instant::now(),
    };
    // Forwarded requests whose answer gets special treatment, by request id.
    let mut marks: HashMap<u32, (Mark, String)> = HashMap::new();
    // Forwarded requests the server has not answered yet.
    let mut outstanding: HashSet<u32> = HashSet::new();
    loop {
        if plan.is_cut(connection) {
            settle(&plan, &mut out, &mut answers, &mut outstanding).await;
            break;
        }
        if out.deliver_due().await.is_err() {
            break; // The client is gone.
        }
        let wake = out.next_wake();
        tokio::select! {
            biased;
            r = changed.changed() => {
                if r.is_err() {
                    break;
                }
            }
            request = requests.recv() => {
                let Some(body) = request else {
                    break; // The client ended the session.
                };
                if wire::kind(&body) == wire::INIT {
                    if plan.on_init() {
                        let _ = wire::write_packet(&mut server_wr, &body).await;
                    }
                    continue;
                }
                match plan.on_request(connection, channel, &body) {
                    Decision::Forward(mark) => {
                        if let Some(id) = wire::id(&body) {
                            outstanding.insert(id);
                            if let Some(mark) = mark {
                                marks.insert(id, (mark, wire::request_name(&body)));
                            }
                        }
                        // A server that is gone shows as the end of its answers.
                        let _ = wire::write_packet(&mut server_wr, &body).await;
                    }
                    Decision::CutBefore => continue, // The loop settles and ends.
                    Decision::Answer(answer) => out.push(answer, true),
                    Decision::Drop => {}
                }
            }
            answer = answers.recv() => {
                let Some(body) = answer else {
                    // The server ended the session: what it said reaches the client, then the
                    // end.
                    let _ = out.deliver_all().await;
                    break;
                };
                if wire::kind(&body) == wire::VERSION {
                    if !plan.is_stalled() && out.write(&body).await.is_err() {
                        break;
                    }
                    continue;
                }
                let id = wire::id(&body).unwrap_or(0);
                outstanding.remove(&id);
                if plan.is_stalled() {
                    out.record(&body, false, Delivery::Stalled);
                    continue;
                }
                match marks.remove(&id) {
                    Some((Mark::CutAfter(number), name)) => {
                        out.record(&body, false, Delivery::CutAfter);
                        plan.cut_after_answer(connection, number, &name);
                        continue; // The loop settles and ends.
                    }
                    Some((Mark::Shorten(shorten), _)) => {
                        let from = wire::data_len(&body).unwrap_or(0);
                        let to = shorten.keep(from);
                        match wire::shorten_data(&body, to) {
                            Some(short) if to < from => {
                                out.push_as(short, false, Delivery::Shortened { from, to });
                            }
                            _ => out.push(body, false),
                        }
                    }
                    Some((Mark::Hold, _)) => out.hold(body),
                    None => out.push(body, false),
                }
            }
            () = sleep_until(wake), if wake.is_some() => {}
        }
    }
    plan.session_closed(connection);
}

/// How long a cut waits for the server to finish what it was sent.
const SETTLE_LIMIT: Duration = Duration::from_secs(2);

/// The connection is cut: before the client sees the end, the server finishes every request
/// it was sent on this session (their answers are dropped), and every other session of the
/// connection has done the same (each at most [`SETTLE_LIMIT`]). So nothing sent before a cut
/// reaches the server after the client has reconnected: a cut is one moment, and a run with
/// the same faults does the same thing each time.
async fn settle(
    plan: &FaultPlan,
    out: &mut Outbox,
    answers: &mut mpsc::UnboundedReceiver<Bytes>,
    outstanding: &mut HashSet<u32>,
) {
    let drain = async {
        while !outstanding.is_empty() {
            let Some(body) = answers.recv().await else {
                return;
            };
            if let Some(id) = wire::id(&body) {
                outstanding.remove(&id);
            }
            out.record(&body, false, Delivery::AfterCut);
        }
    };
    let _ = tokio::time::timeout(SETTLE_LIMIT, drain).await;
    let connection = out.connection;
    plan.session_settled(connection);
    let mut changed = plan.subscribe();
    let others = async {
        loop {
            changed.borrow_and_update();
            if plan.all_settled(connection) || changed.changed().await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(SETTLE_LIMIT, others).await;
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// Reads packets from `from` into `to` until the stream ends (or the session loop is gone).
async fn read_packets<R: AsyncRead + Unpin>(mut from: R, to: mpsc::UnboundedSender<Bytes>) {
    while let Some(body) = wire::read_packet(&mut from).await {
        if to.send(body).is_err() {
            return;
        }
    }
}

/// Aborts the tasks when dropped (they own the streams' read halves).
struct AbortOnDrop(Vec<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// An answer on its way to the client.
struct Out {
    body: Bytes,
    by_layer: bool,
    delivery: Delivery,
    delay: Duration,
    /// When it may go (set when it enters the queue).
    due: Instant,
}

/// The answers of one session not delivered yet: a group being reordered, then a queue in
/// delivery order, each with the time it may go.
struct Outbox {
    plan: Arc<FaultPlan>,
    connection: u64,
    channel: usize,
    client: WriteHalf<DuplexStream>,
    queue: VecDeque<Out>,
    /// Answers to requests picked by `hold_answers`, in arrival order.
    held: Vec<Out>,
    /// Answers collected for reordering.
    group: Vec<Out>,
    group_since: Option<Instant>,
    /// The due time of the last answer queued (answers never overtake each other in the
    /// queue).
    last_due: Instant,
}

impl Outbox {
    fn push(&mut self, body: Bytes, by_layer: bool) {
        self.push_as(body, by_layer, Delivery::Delivered);
    }

    fn push_as(&mut self, body: Bytes, by_layer: bool, delivery: Delivery) {
        let out = Out {
            body,
            by_layer,
            delivery,
            delay: self.plan.next_delay(),
            due: Instant::now(),
        };
        match self.plan.reorder_group(self.connection, self.channel) {
            Some(group) => {
                self.group_since.get_or_insert_with(Instant::now);
                self.group.push(out);
                if self.group.len() >= group {
                    self.release_group();
                }
            }
            None => {
                self.release_group();
                self.enqueue(out);
            }
        }
    }

    /// An answer to a request picked by `hold_answers`: it waits for the release.
    fn hold(&mut self, body: Bytes) {
        self.held.push(Out {
            body,
            by_layer: false,
            delivery: Delivery::Delivered,
            delay: self.plan.next_delay(),
            due: Instant::now(),
        });
    }

    fn enqueue(&mut self, mut out: Out) {
        let due = (Instant::now() + out.delay).max(self.last_due);
        out.due = due;
        self.last_due = due;
        self.queue.push_back(out);
    }

    /// The collected group goes into the queue, last first.
    fn release_group(&mut self) {
        self.group_since = None;
        while let Some(out) = self.group.pop() {
            self.enqueue(out);
        }
    }

    /// When the loop must wake up for this outbox.
    fn next_wake(&self) -> Option<Instant> {
        let group = self.group_since.map(|t| t + REORDER_WINDOW);
        let front = match self.plan.is_held(self.connection, self.channel) {
            true => None,
            false => self.queue.front().map(|o| o.due),
        };
        match (group, front) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Writes every answer whose time has come (none while held).
    async fn deliver_due(&mut self) -> std::io::Result<()> {
        let now = Instant::now();
        let reordered = self.plan.reorder_group(self.connection, self.channel);
        if self.group_since.is_some_and(|t| now >= t + REORDER_WINDOW) || reordered.is_none() {
            self.release_group();
        }
        if !self.held.is_empty() && !self.plan.holding_answers() {
            for out in std::mem::take(&mut self.held) {
                self.enqueue(out);
            }
        }
        if self.plan.is_held(self.connection, self.channel) {
            return Ok(());
        }
        while self.queue.front().is_some_and(|o| o.due <= now) {
            let Some(out) = self.queue.pop_front() else {
                break;
            };
            self.deliver(out).await?;
        }
        Ok(())
    }

    /// Writes every answer now, whatever their delay or hold.
    async fn deliver_all(&mut self) -> std::io::Result<()> {
        self.release_group();
        for out in std::mem::take(&mut self.held) {
            self.enqueue(out);
        }
        while let Some(out) = self.queue.pop_front() {
            self.deliver(out).await?;
        }
        Ok(())
    }

    async fn deliver(&mut self, out: Out) -> std::io::Result<()> {
        self.write(&out.body).await?;
        self.record(&out.body, out.by_layer, out.delivery);
        Ok(())
    }

    async fn write(&mut self, body: &[u8]) -> std::io::Result<()> {
        wire::write_packet(&mut self.client, body).await
    }

    fn record(&self, body: &[u8], by_layer: bool, delivery: Delivery) {
        self.plan.record_answer(Answered {
            connection: self.connection,
            channel: self.channel,
            kind: wire::kind(body),
            id: wire::id(body).unwrap_or(0),
            by_layer,
            delivery,
        });
    }
}
