//! Reads and writes split to the server's limits: a READ of many pieces sent in parallel, and
//! WRITEs (and FSETSTATs behind them) queued in program order and sent again in that order
//! after a reconnect.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::TryFutureExt;
use russh_sftp::client::RawSftpSession;
use russh_sftp::protocol::FileAttributes;

use super::counters::Op;
use super::error::{FX_EOF, SftpError, SftpResult};
use super::handle::Handle;
use super::link::Session;
use super::runner::{Behind, Raw, Request, Sending, Target, queued};
use super::{Attempt, Sftp};

impl Sftp {
    /// Reads `len` bytes at `offset`, split into READs sent in parallel. Returns fewer bytes only
    /// at end of file. Short answers in the middle are completed with further READs, except at
    /// `eof_at` (the file's size, when the caller knows it): a short answer that reaches it is
    /// the end, which saves a round trip per small file. Read again on the new session (the
    /// handle reopened) if the connection died meanwhile.
    pub async fn read_at(
        &self,
        handle: &Handle,
        offset: u64,
        len: u32,
        eof_at: Option<u64>,
    ) -> SftpResult<Vec<u8>> {
        let send: Sending<'_, Vec<u8>> = Box::new(move |session: Arc<Session>, raw: Raw| {
            Box::pin(async move {
                self.read_at_on(&session, &raw.handle(), offset, len, eof_at)
                    .await
            })
        });
        let request = Request {
            op: Op::Read,
            target: Target::Handle(handle),
            behind: Behind::Nothing,
            send,
            check: None,
        };
        Ok(self.run(request).await?.value)
    }

    async fn read_at_on(
        &self,
        session: &Session,
        handle: &str,
        offset: u64,
        len: u32,
        eof_at: Option<u64>,
    ) -> SftpResult<Vec<u8>> {
        let chunk = self.read_len;
        let pieces = (0..len.div_ceil(chunk)).map(|i| {
            let start = offset + u64::from(i * chunk);
            let want = chunk.min(len - i * chunk);
            self.read_full(session, handle, start, want, eof_at)
        });
        let results = futures_util::future::try_join_all(pieces).await?;
        let mut out = Vec::with_capacity(len as usize);
        for (piece, want) in results {
            let short = piece.len() < want as usize;
            out.extend_from_slice(&piece);
            if short {
                break;
            }
        }
        Ok(out)
    }

    /// One READ of at most [`Sftp::read_len`] bytes; an empty result means end of file.
    async fn read(
        &self,
        session: &Session,
        handle: &str,
        offset: u64,
        len: u32,
    ) -> SftpResult<Vec<u8>> {
        let fut = session
            .raw
            .read(handle.to_owned(), offset, len.min(self.read_len));
        match self.attempt(Op::Read, session, fut).await {
            Ok(data) => Ok(data.data),
            Err(e) if e.status() == Some(FX_EOF) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Reads up to `want` bytes at `offset`, looping over short answers until EOF (or `eof_at`).
    async fn read_full(
        &self,
        session: &Session,
        handle: &str,
        offset: u64,
        want: u32,
        eof_at: Option<u64>,
    ) -> SftpResult<(Vec<u8>, u32)> {
        let mut buf = self.read(session, handle, offset, want).await?;
        let at_end = |got: usize| eof_at.is_some_and(|end| offset + got as u64 >= end);
        while !buf.is_empty() && buf.len() < want as usize && !at_end(buf.len()) {
            let got = buf.len() as u32;
            let more = self
                .read(session, handle, offset + u64::from(got), want - got)
                .await?;
            if more.is_empty() {
                break;
            }
            buf.extend_from_slice(&more);
        }
        Ok((buf, want))
    }

    /// Sends `data` at `offset` as WRITEs split to the server's limit, all queued on the session
    /// before this returns (so they reach the server in program order, ahead of any request made
    /// afterwards, the handle's CLOSE included); the returned future resolves once the server
    /// acknowledged every one. A WRITE whose session died unacknowledged is sent again on the
    /// new session (the handle reopened), after every earlier one of the handle, so the file
    /// ends up as the program wrote it.
    pub async fn send_write(
        self: &Arc<Self>,
        handle: &Handle,
        offset: u64,
        data: &[u8],
    ) -> SftpResult<impl Future<Output = SftpResult<()>> + Send + 'static> {
        let placed = self.leased(Op::Write, handle, None, u64::MAX).await?;
        let session = Arc::clone(&placed.session);
        let len = self.write_len as usize;
        let raw_handle = placed.raw().handle();
        let pieces: Vec<_> = data
            .chunks(len)
            .enumerate()
            .map(|(i, piece)| {
                let at = offset + (i * len) as u64;
                let queued_write = handle.write_queued(session.epoch);
                // Queued here, in program order; the packet built with the only copy of the
                // piece we make, which is also what is kept for a resend.
                let (kept, answer) = match session.raw.write_queued(&raw_handle, at, piece) {
                    Ok((packet, answer)) => (
                        packet.slice(packet.len() - piece.len()..),
                        futures_util::future::Either::Left(answer),
                    ),
                    Err(e) => (
                        Bytes::copy_from_slice(piece),
                        futures_util::future::Either::Right(std::future::ready(Err(e))),
                    ),
                };
                let (sftp, session, handle) =
                    (Arc::clone(self), Arc::clone(&session), handle.clone());
                // Polled once right here: counted and timed from now.
                queued(Box::pin(async move {
                    let result = match sftp.attempt(Op::Write, &session, answer).await {
                        Err(SftpError::Transport(_)) => {
                            sftp.write_again(&handle, queued_write.seq(), at, kept)
                                .await
                        }
                        other => other.map(drop),
                    };
                    drop(queued_write);
                    result
                }))
            })
            .collect();
        drop(placed);
        Ok(async move {
            futures_util::future::try_join_all(pieces).await?;
            Ok(())
        })
    }

    /// Sends FSETSTAT on `handle`, queued on the session before this returns (so it reaches
    /// the server after the writes queued before it and before any request made afterwards);
    /// the returned future resolves with the server's answer. It counts among the session's
    /// pending writes: if its session dies it is sent again in its place among them, and
    /// nothing made after it overtakes it (see [`PendingWrites`](super::handle::PendingWrites)).
    pub async fn send_fsetstat(
        self: &Arc<Self>,
        handle: &Handle,
        attrs: FileAttributes,
    ) -> SftpResult<impl Future<Output = SftpResult<()>> + Send + 'static> {
        let placed = self.leased(Op::Fsetstat, handle, None, u64::MAX).await?;
        let session = Arc::clone(&placed.session);
        let queued_change = handle.write_queued(session.epoch);
        let (sftp, handle, raw) = (Arc::clone(self), handle.clone(), placed.raw().handle());
        let sent = queued(Box::pin(async move {
            let first = session.raw.fsetstat(raw, attrs.clone()).map_ok(drop);
            let result = match sftp.attempt(Op::Fsetstat, &session, first).await {
                Err(SftpError::Transport(_)) => {
                    let seq = queued_change.seq();
                    sftp.send_again(Op::Fsetstat, &handle, seq, move |raw, h| {
                        Box::pin(raw.fsetstat(h.handle(), attrs.clone()).map_ok(drop))
                    })
                    .await
                }
                other => other,
            };
            drop(queued_change);
            result
        }));
        drop(placed);
        Ok(sent)
    }

    /// Sends write `seq` again after its session died, in order (see [`Sftp::send_write`]).
    async fn write_again(
        &self,
        handle: &Handle,
        seq: u64,
        at: u64,
        piece: Bytes,
    ) -> SftpResult<()> {
        self.send_again(Op::Write, handle, seq, move |raw, h| {
            match raw.write_queued(&h.handle(), at, &piece) {
                Ok((_, answer)) => Box::pin(answer.map_ok(drop)),
                Err(e) => Box::pin(std::future::ready(Err(e))),
            }
        })
        .await
    }

    /// Sends the ordered request `seq` on `handle` (a write, or an FSETSTAT queued behind the
    /// writes) again after its session died: on the new session, once every earlier one was
    /// sent again there (see [`PendingWrites`](super::handle::PendingWrites)).
    async fn send_again(
        &self,
        op: Op,
        handle: &Handle,
        seq: u64,
        req: impl for<'s> Fn(&'s RawSftpSession, &Raw) -> Attempt<'s, ()> + std::marker::Send + Sync,
    ) -> SftpResult<()> {
        let request = Request {
            op,
            target: Target::Resend(handle, seq),
            behind: Behind::Nothing,
            send: self.one(op, req),
            check: None,
        };
        self.run(request).await.map(drop)
    }
}
