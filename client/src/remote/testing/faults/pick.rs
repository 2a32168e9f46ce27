//! Which requests a fault hits ([`Pick`]) and on which channels ([`Channels`]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt;
use std::sync::Arc;

use super::super::wire;

/// One request as a [`Pick`] sees it.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    /// Its number over all sessions and connections since the plan was made (from 1).
    pub number: u64,
    /// The connection it came on (from 1).
    pub connection: u64,
    /// Its channel in the connection (0 first).
    pub channel: usize,
    /// The packet type (`wire::WRITE`...).
    pub kind: u8,
    /// The request id.
    pub id: u32,
    /// The whole packet, without its length.
    pub body: &'a [u8],
}

impl Request<'_> {
    /// The extension name of an EXTENDED request, else the type's name ("write").
    pub(crate) fn name(&self) -> String {
        wire::request_name(self.body)
    }
}

type Predicate = Arc<dyn Fn(&Request<'_>) -> bool + Send + Sync>;

/// Which requests a fault hits: those a predicate accepts, and of them the `nth` (counted
/// from when the fault was added), or the first few, or all.
#[derive(Clone)]
pub(crate) struct Pick {
    pub(super) pred: Predicate,
    /// Matching requests let through before the first hit.
    pub(super) skip: u64,
    /// How many are hit (`None`: all from then on).
    pub(super) times: Option<u64>,
}

impl Pick {
    /// Every request.
    pub(crate) fn any() -> Pick {
        Pick::when(|_| true)
    }

    /// The `n`-th request from now, of any kind (1: the next one).
    pub(crate) fn next(n: u64) -> Pick {
        Pick::any().nth(n)
    }

    /// The request numbered `n` ([`Request::number`], counted since the plan was made).
    pub(crate) fn number(n: u64) -> Pick {
        Pick::when(move |r| r.number == n)
    }

    /// Every request of type `kind` (`wire::WRITE`...).
    pub(crate) fn kind(kind: u8) -> Pick {
        Pick::when(move |r| r.kind == kind)
    }

    /// Every EXTENDED request for extension `name` (`"fsync@openssh.com"`...).
    pub(crate) fn extension(name: &'static str) -> Pick {
        Pick::when(move |r| wire::extension(r.body).as_deref() == Some(name))
    }

    /// Every request `pred` accepts.
    pub(crate) fn when(pred: impl Fn(&Request<'_>) -> bool + Send + Sync + 'static) -> Pick {
        Pick {
            pred: Arc::new(pred),
            skip: 0,
            times: None,
        }
    }

    /// Of these, only those on `channels`.
    pub(crate) fn on(self, channels: Channels) -> Pick {
        let pred = self.pred;
        Pick {
            pred: Arc::new(move |r| channels.contains(r.connection, r.channel) && pred(r)),
            ..self
        }
    }

    /// Of these, only the `n`-th (1: the first), counted from when the fault is added.
    pub(crate) fn nth(self, n: u64) -> Pick {
        Pick {
            skip: n.saturating_sub(1),
            times: Some(1),
            ..self
        }
    }

    /// Of these, only the first `k` (after any skipped by [`Pick::nth`]).
    pub(crate) fn times(self, k: u64) -> Pick {
        Pick {
            times: Some(k),
            ..self
        }
    }
}

impl fmt::Debug for Pick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pick {{ skip: {}, times: {:?} }}", self.skip, self.times)
    }
}

/// Some channels: of any connection or one, any channel or one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Channels {
    connection: Option<u64>,
    channel: Option<usize>,
}

impl Channels {
    /// Every channel of every connection.
    pub(crate) fn all() -> Channels {
        Channels::default()
    }

    /// Every channel of connection `connection`.
    pub(crate) fn of(connection: u64) -> Channels {
        Channels {
            connection: Some(connection),
            channel: None,
        }
    }

    /// Channel `channel` of every connection.
    pub(crate) fn numbered(channel: usize) -> Channels {
        Channels {
            connection: None,
            channel: Some(channel),
        }
    }

    /// Channel `channel` of connection `connection`.
    pub(crate) fn one(connection: u64, channel: usize) -> Channels {
        Channels {
            connection: Some(connection),
            channel: Some(channel),
        }
    }

    /// Whether channel `channel` of connection `connection` is one of these.
    pub(super) fn contains(&self, connection: u64, channel: usize) -> bool {
        self.connection.is_none_or(|c| c == connection) && self.channel.is_none_or(|c| c == channel)
    }
}
