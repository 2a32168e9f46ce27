//! What the fault layer records: each request and its [`Fate`], each answer and its
//! [`Delivery`], each [`Cut`].

#[allow(unused_imports)] // for the doc links
use super::FaultPlan;

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Passed to the server.
    Forwarded,
    /// Never reached the server: its connection was cut instead.
    CutBefore,
    /// Passed to the server; its connection is cut when the answer comes (which is dropped).
    CutAfter,
    /// Passed to the server; its DATA answer is shortened.
    ShortRead,
    /// Passed to the server; its answer waits for [`FaultPlan::release_replies`].
    AnswerHeld,
    /// Answered by the fault layer with this status, not passed on.
    Refused(u32),
    /// A WRITE (or a create) refused with this status because the disk budget is used up.
    DiskFull(u32),
    /// A statvfs answered by the fault layer: the disk of [`FaultPlan::fill_disk_after`],
    /// full.
    FullStatvfs,
    /// Dropped without an answer: picked by [`FaultPlan::swallow`].
    Swallowed,
    /// Dropped without an answer: the server is stalled ([`FaultPlan::stall`]).
    Stalled,
    /// Dropped: its connection was already cut.
    AfterCut,
}

/// A request that reached the fault layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    /// Its number ([`Request::number`]).
    pub number: u64,
    /// Its connection.
    pub connection: u64,
    /// Its channel.
    pub channel: usize,
    /// Its packet type.
    pub kind: u8,
    /// Its name: the extension's for EXTENDED, else the type's ("write").
    pub name: String,
    /// Its request id.
    pub id: u32,
    /// What became of it.
    pub fate: Fate,
}

/// What became of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Written to the client as it was.
    Delivered,
    /// Written to the client with its data cut from `from` bytes to `to`.
    Shortened {
        /// Bytes the server sent.
        from: usize,
        /// Bytes the client got.
        to: usize,
    },
    /// Dropped: the server is stalled.
    Stalled,
    /// Dropped: it answered the request a cut was to follow.
    CutAfter,
    /// Dropped: it came while its connection settled after a cut.
    AfterCut,
}

/// An answer that reached the fault layer (the server's, or one the layer made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answered {
    /// Its connection.
    pub connection: u64,
    /// Its channel.
    pub channel: usize,
    /// Its packet type.
    pub kind: u8,
    /// The request it answers.
    pub id: u32,
    /// Made by the fault layer (a refusal), not the server.
    pub by_layer: bool,
    /// What became of it.
    pub delivery: Delivery,
}

/// A connection that was cut, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cut {
    /// The connection.
    pub connection: u64,
    /// "before request 12 (write)", "after request 3 (open)", "cut_now".
    pub why: String,
}

/// Whether a request of this fate reached the server.
pub(super) fn reached_server(fate: Fate) -> bool {
    matches!(
        fate,
        Fate::Forwarded | Fate::CutAfter | Fate::ShortRead | Fate::AnswerHeld
    )
}
