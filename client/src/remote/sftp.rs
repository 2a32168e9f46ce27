//! The SFTP request engine: one typed method per SFTP request, over russh-sftp's
//! `RawSftpSession` (many requests in flight, answers matched by id).
//!
//! Every call goes through [`Sftp::call`], which applies our own deadline (russh-sftp's timeout
//! counts from enqueue, so it is set out of the way), counts the request by [`Op`] and turns
//! russh-sftp's error into [`SftpError`], keeping server answers apart from transport failures.
//! Splitting reads and writes to the server's limits happens here too.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as RawError;
use russh_sftp::extensions::Statvfs;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};

use super::counters::{Counters, Op};
use super::handle::{Closed, Handle, HandleRegistry, Lease};

/// Smallest read/write size every SFTP server must accept (draft-ietf-secsh-filexfer-02).
const SFTP_MIN_IO_LEN: u32 = 32 * 1024;
/// Our cap on one READ/WRITE: OpenSSH allows 261,120 bytes; larger packets gain nothing.
const MAX_IO_LEN: u32 = 256 * 1024;

/// Why an SFTP request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SftpError {
    /// The server answered with a status other than OK.
    #[error("{message} (SFTP status {code})")]
    Status {
        /// Raw SFTP status code (`SSH_FX_*`).
        code: u32,
        /// The server's message.
        message: String,
    },
    /// No answer within our deadline.
    #[error("no answer from the server within {0:?}")]
    Timeout(Duration),
    /// The session or connection failed (every pending request fails with this).
    #[error("connection to the server failed: {0}")]
    Transport(String),
    /// The request named a handle that was already closed: nothing was sent.
    #[error("the file handle was closed")]
    HandleClosed,
}

impl From<Closed> for SftpError {
    fn from(_: Closed) -> Self {
        SftpError::HandleClosed
    }
}

/// `SSH_FX_EOF`.
pub const FX_EOF: u32 = 1;
/// `SSH_FX_NO_SUCH_FILE`.
pub const FX_NO_SUCH_FILE: u32 = 2;
/// `SSH_FX_PERMISSION_DENIED`.
pub const FX_PERMISSION_DENIED: u32 = 3;
/// `SSH_FX_FAILURE`: OpenSSH's answer for most errnos (EEXIST, ENOTEMPTY, EISDIR...).
pub const FX_FAILURE: u32 = 4;
/// `SSH_FX_BAD_MESSAGE`.
pub const FX_BAD_MESSAGE: u32 = 5;
/// `SSH_FX_NO_CONNECTION`.
pub const FX_NO_CONNECTION: u32 = 6;
/// `SSH_FX_CONNECTION_LOST`.
pub const FX_CONNECTION_LOST: u32 = 7;
/// `SSH_FX_OP_UNSUPPORTED`.
pub const FX_OP_UNSUPPORTED: u32 = 8;

impl SftpError {
    /// The SFTP status code, if the server answered.
    pub fn status(&self) -> Option<u32> {
        match self {
            SftpError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    fn from_raw(err: RawError) -> Self {
        match err {
            RawError::Status(s) => SftpError::Status {
                code: s.status_code as u32,
                message: s.error_message,
            },
            RawError::Timeout => SftpError::Transport("request timed out in the SFTP layer".into()),
            other => SftpError::Transport(other.to_string()),
        }
    }
}

/// Result of an SFTP call.
pub type SftpResult<T> = Result<T, SftpError>;

/// One entry of a READDIR answer.
#[derive(Debug, Clone)]
pub struct DirEntry {
    /// File name (no slashes).
    pub name: String,
    /// Attributes as the server sent them (OpenSSH: those of `lstat`).
    pub attrs: FileAttributes,
    /// Link count parsed from the `ls -l` style long name, when the server sends one.
    pub nlink: Option<u32>,
}

/// A typed SFTP client over one session.
pub struct Sftp {
    raw: RawSftpSession,
    /// Itself, for the handles it hands out (a handle dropped open is closed through it).
    me: Weak<Sftp>,
    handles: HandleRegistry,
    deadline: Duration,
    read_len: u32,
    write_len: u32,
    counters: Counters,
    extensions: Vec<String>,
}

impl Sftp {
    /// Wraps an initialised session. `limits` are the server's `limits@openssh.com` answer
    /// (read, write) if it gave one; `extensions` the names from its VERSION packet.
    pub fn new(
        raw: RawSftpSession,
        limits: Option<(u64, u64)>,
        extensions: Vec<String>,
        deadline: Duration,
    ) -> Arc<Self> {
        let clamp = |v: u64| u32::try_from(v).unwrap_or(MAX_IO_LEN).clamp(1, MAX_IO_LEN);
        let (read_len, write_len) = match limits {
            Some((r, w)) => (
                if r == 0 { SFTP_MIN_IO_LEN } else { clamp(r) },
                if w == 0 { SFTP_MIN_IO_LEN } else { clamp(w) },
            ),
            None => (SFTP_MIN_IO_LEN, SFTP_MIN_IO_LEN),
        };
        Arc::new_cyclic(|me| Self {
            raw,
            me: me.clone(),
            handles: HandleRegistry::default(),
            deadline,
            read_len,
            write_len,
            counters: Counters::default(),
            extensions,
        })
    }

    /// The server handles this session holds open, and requests refused on others.
    pub fn handles(&self) -> &HandleRegistry {
        &self.handles
    }

    /// A lease on `handle` for the request `op`, checked against the handles we hold.
    async fn lease<'h>(&self, op: Op, handle: &'h Handle) -> SftpResult<Lease<'h>> {
        let lease = handle.lease().await?;
        if !self.handles.check(op.name(), lease.raw()) {
            return Err(SftpError::HandleClosed);
        }
        Ok(lease)
    }

    /// Wraps a handle string the server just gave us.
    fn opened(&self, raw: String) -> Handle {
        self.handles.opened(&raw);
        Handle::new(raw, self.me.clone())
    }

    /// Largest single READ we send.
    pub fn read_len(&self) -> u32 {
        self.read_len
    }

    /// Largest single WRITE we send.
    pub fn write_len(&self) -> u32 {
        self.write_len
    }

    /// Request counters of this session.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Whether the server announced the extension `name` (e.g. `posix-rename@openssh.com`).
    pub fn has_extension(&self, name: &str) -> bool {
        self.extensions.iter().any(|e| e == name)
    }

    async fn call<T>(
        &self,
        op: Op,
        fut: impl Future<Output = Result<T, RawError>>,
    ) -> SftpResult<T> {
        self.counters.count(op);
        match tokio::time::timeout(self.deadline, fut).await {
            Ok(r) => r.map_err(SftpError::from_raw),
            Err(_) => Err(SftpError::Timeout(self.deadline)),
        }
    }

    /// LSTAT: attributes of `path` without following a final symlink.
    pub async fn lstat(&self, path: &str) -> SftpResult<FileAttributes> {
        Ok(self.call(Op::Lstat, self.raw.lstat(path)).await?.attrs)
    }

    /// STAT: attributes of `path`, following symlinks.
    pub async fn stat(&self, path: &str) -> SftpResult<FileAttributes> {
        Ok(self.call(Op::Stat, self.raw.stat(path)).await?.attrs)
    }

    /// FSTAT: attributes of an open handle.
    pub async fn fstat(&self, handle: &Handle) -> SftpResult<FileAttributes> {
        let h = self.lease(Op::Fstat, handle).await?;
        Ok(self.call(Op::Fstat, self.raw.fstat(h.raw())).await?.attrs)
    }

    /// SETSTAT (follows symlinks).
    pub async fn setstat(&self, path: &str, attrs: FileAttributes) -> SftpResult<()> {
        self.call(Op::Setstat, self.raw.setstat(path, attrs))
            .await
            .map(drop)
    }

    /// FSETSTAT on an open handle.
    pub async fn fsetstat(&self, handle: &Handle, attrs: FileAttributes) -> SftpResult<()> {
        let h = self.lease(Op::Fsetstat, handle).await?;
        self.call(Op::Fsetstat, self.raw.fsetstat(h.raw(), attrs))
            .await
            .map(drop)
    }

    /// `lsetstat@openssh.com`: SETSTAT that changes a symlink itself, not its target.
    pub async fn lsetstat(&self, path: &str, attrs: FileAttributes) -> SftpResult<()> {
        let mut data = encode_string(path);
        let attrs = russh_sftp::ser::to_bytes(&attrs)
            .map_err(|e| SftpError::Transport(format!("encoding attributes: {e}")))?;
        data.extend_from_slice(&attrs);
        expect_ok(
            self.call(
                Op::Lsetstat,
                self.raw.extended("lsetstat@openssh.com", data),
            )
            .await?,
        )
    }

    /// OPEN: returns the server's handle.
    pub async fn open(
        &self,
        path: &str,
        flags: OpenFlags,
        attrs: FileAttributes,
    ) -> SftpResult<Handle> {
        let raw = self
            .call(Op::Open, self.raw.open(path, flags, attrs))
            .await?;
        Ok(self.opened(raw.handle))
    }

    /// CLOSE a file or directory handle: waits for the requests in flight on it, refuses new
    /// ones, and sends the one CLOSE it will get (a handle closed already sends nothing).
    pub async fn close(&self, handle: &Handle) -> SftpResult<()> {
        match handle.begin_close().await {
            Some(raw) => self.close_raw(raw).await,
            None => Ok(()),
        }
    }

    /// Sends CLOSE for a handle string whose close has begun (see [`Sftp::close`]).
    pub(super) async fn close_raw(&self, raw: &str) -> SftpResult<()> {
        if !self.handles.closing(raw) {
            return Err(SftpError::HandleClosed);
        }
        self.call(Op::Close, self.raw.close(raw)).await.map(drop)
    }

    /// OPENDIR: returns the server's handle.
    pub async fn opendir(&self, path: &str) -> SftpResult<Handle> {
        let raw = self.call(Op::Opendir, self.raw.opendir(path)).await?;
        Ok(self.opened(raw.handle))
    }

    /// One READDIR page; `None` at the end of the directory.
    pub async fn readdir(&self, handle: &Handle) -> SftpResult<Option<Vec<DirEntry>>> {
        let h = self.lease(Op::Readdir, handle).await?;
        match self.call(Op::Readdir, self.raw.readdir(h.raw())).await {
            Ok(name) => Ok(Some(
                name.files
                    .into_iter()
                    .map(|f| DirEntry {
                        nlink: parse_longname_nlink(&f.longname),
                        name: f.filename,
                        attrs: f.attrs,
                    })
                    .collect(),
            )),
            Err(e) if e.status() == Some(FX_EOF) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One READ of at most [`Sftp::read_len`] bytes; an empty result means end of file.
    async fn read(&self, handle: &str, offset: u64, len: u32) -> SftpResult<Vec<u8>> {
        match self
            .call(
                Op::Read,
                self.raw.read(handle, offset, len.min(self.read_len)),
            )
            .await
        {
            Ok(data) => Ok(data.data),
            Err(e) if e.status() == Some(FX_EOF) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Reads `len` bytes at `offset`, split into READs sent in parallel. Returns fewer bytes only
    /// at end of file. Short answers in the middle are completed with further READs, except at
    /// `eof_at` (the file's size, when the caller knows it): a short answer that reaches it is
    /// the end, which saves a round trip per small file.
    pub async fn read_at(
        &self,
        handle: &Handle,
        offset: u64,
        len: u32,
        eof_at: Option<u64>,
    ) -> SftpResult<Vec<u8>> {
        let lease = self.lease(Op::Read, handle).await?;
        let handle = lease.raw();
        let chunk = self.read_len;
        let pieces = (0..len.div_ceil(chunk)).map(|i| {
            let start = offset + u64::from(i * chunk);
            let want = chunk.min(len - i * chunk);
            self.read_full(handle, start, want, eof_at)
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

    /// Reads up to `want` bytes at `offset`, looping over short answers until EOF (or `eof_at`).
    async fn read_full(
        &self,
        handle: &str,
        offset: u64,
        want: u32,
        eof_at: Option<u64>,
    ) -> SftpResult<(Vec<u8>, u32)> {
        let mut buf = self.read(handle, offset, want).await?;
        let at_end = |got: usize| eof_at.is_some_and(|end| offset + got as u64 >= end);
        while !buf.is_empty() && buf.len() < want as usize && !at_end(buf.len()) {
            let got = buf.len() as u32;
            let more = self
                .read(handle, offset + u64::from(got), want - got)
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
    /// acknowledged every one.
    pub async fn send_write(
        self: &Arc<Self>,
        handle: &Handle,
        offset: u64,
        data: &[u8],
    ) -> SftpResult<impl Future<Output = SftpResult<()>> + Send + 'static> {
        let lease = self.lease(Op::Write, handle).await?;
        let handle = lease.raw();
        let len = self.write_len as usize;
        let pieces: Vec<_> = data
            .chunks(len)
            .enumerate()
            .map(|(i, piece)| {
                let sftp = Arc::clone(self);
                let (handle, piece) = (handle.to_owned(), piece.to_vec());
                let at = offset + (i * len) as u64;
                queued(Box::pin(async move {
                    sftp.call(Op::Write, sftp.raw.write(handle, at, piece))
                        .await
                }))
            })
            .collect();
        Ok(async move {
            futures_util::future::try_join_all(pieces).await?;
            Ok(())
        })
    }

    /// REMOVE a file.
    pub async fn remove(&self, path: &str) -> SftpResult<()> {
        self.call(Op::Remove, self.raw.remove(path)).await.map(drop)
    }

    /// MKDIR with the given permissions.
    pub async fn mkdir(&self, path: &str, mode: u32) -> SftpResult<()> {
        let attrs = FileAttributes {
            permissions: Some(mode),
            ..FileAttributes::empty()
        };
        self.call(Op::Mkdir, self.raw.mkdir(path, attrs))
            .await
            .map(drop)
    }

    /// RMDIR.
    pub async fn rmdir(&self, path: &str) -> SftpResult<()> {
        self.call(Op::Rmdir, self.raw.rmdir(path)).await.map(drop)
    }

    /// `posix-rename@openssh.com` (replaces the target like rename(2)) when the server has it,
    /// otherwise plain RENAME (which on OpenSSH refuses to replace).
    pub async fn posix_rename(&self, from: &str, to: &str) -> SftpResult<()> {
        if !self.has_extension("posix-rename@openssh.com") {
            return self.rename_noreplace(from, to).await;
        }
        let mut data = encode_string(from);
        data.extend_from_slice(&encode_string(to));
        expect_ok(
            self.call(
                Op::Rename,
                self.raw.extended("posix-rename@openssh.com", data),
            )
            .await?,
        )
    }

    /// Plain SFTP RENAME: fails if the target exists.
    pub async fn rename_noreplace(&self, from: &str, to: &str) -> SftpResult<()> {
        self.call(Op::Rename, self.raw.rename(from, to))
            .await
            .map(drop)
    }

    /// READLINK: the target of a symlink.
    pub async fn readlink(&self, path: &str) -> SftpResult<String> {
        let name = self.call(Op::Readlink, self.raw.readlink(path)).await?;
        name.files
            .into_iter()
            .next()
            .map(|f| f.filename)
            .ok_or_else(|| SftpError::Transport("empty READLINK answer".into()))
    }

    /// SYMLINK: creates `link` pointing at `target`.
    ///
    /// OpenSSH's server reads the two paths in the opposite order from the draft standard (and
    /// every client, the C sshfs included, sends them that way), so the target goes first.
    pub async fn symlink(&self, link: &str, target: &str) -> SftpResult<()> {
        self.call(Op::Symlink, self.raw.symlink(target, link))
            .await
            .map(drop)
    }

    /// `hardlink@openssh.com`.
    pub async fn hardlink(&self, existing: &str, new: &str) -> SftpResult<()> {
        self.call(Op::Link, self.raw.hardlink(existing, new))
            .await
            .map(drop)
    }

    /// `fsync@openssh.com` on an open handle. Servers without it: nothing to do (the data was
    /// acknowledged already).
    pub async fn fsync(&self, handle: &Handle) -> SftpResult<()> {
        if !self.has_extension("fsync@openssh.com") {
            return Ok(());
        }
        let h = self.lease(Op::Fsync, handle).await?;
        self.call(Op::Fsync, self.raw.fsync(h.raw()))
            .await
            .map(drop)
    }

    /// `statvfs@openssh.com`.
    pub async fn statvfs(&self, path: &str) -> SftpResult<Statvfs> {
        self.call(Op::Statfs, self.raw.statvfs(path)).await
    }

    /// REALPATH: canonical absolute form of `path` ("." is the login directory).
    pub async fn realpath(&self, path: &str) -> SftpResult<String> {
        let name = self.call(Op::Realpath, self.raw.realpath(path)).await?;
        name.files
            .into_iter()
            .next()
            .map(|f| f.filename)
            .ok_or_else(|| SftpError::Transport("empty REALPATH answer".into()))
    }
}

/// Polls a request future once, which puts its packet on the session's queue right away
/// (russh-sftp sends on the first poll, before its first await), and keeps it to be awaited
/// later; a request that finished at once keeps its result.
fn queued<F: Future>(mut fut: Pin<Box<F>>) -> Queued<F> {
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => Queued::Done(Some(out)),
        Poll::Pending => Queued::Sent(fut),
    }
}

/// A request already on the session's queue (see [`queued`]).
enum Queued<F: Future> {
    /// Sent, answer pending.
    Sent(Pin<Box<F>>),
    /// Finished on the first poll; taken once.
    Done(Option<F::Output>),
}

impl<F: Future> Future for Queued<F>
where
    F::Output: Unpin,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.get_mut() {
            Queued::Sent(fut) => fut.as_mut().poll(cx),
            Queued::Done(out) => match out.take() {
                Some(out) => Poll::Ready(out),
                None => Poll::Pending,
            },
        }
    }
}

/// Encodes an SSH `string` (u32 length + bytes) as russh-sftp encodes every other string: a
/// name it decoded from bytes that are not UTF-8 goes back as those bytes (vendor/README.md).
fn encode_string(s: &str) -> Vec<u8> {
    russh_sftp::ser::to_bytes(&s).map_or_else(
        |_| {
            let mut v = Vec::with_capacity(4 + s.len());
            v.extend_from_slice(&(s.len() as u32).to_be_bytes());
            v.extend_from_slice(s.as_bytes());
            v
        },
        |b| b.to_vec(),
    )
}

/// An EXTENDED request's answer must be a Status OK.
fn expect_ok(packet: Packet) -> SftpResult<()> {
    match packet {
        Packet::Status(s) if s.status_code == StatusCode::Ok => Ok(()),
        Packet::Status(s) => Err(SftpError::Status {
            code: s.status_code as u32,
            message: s.error_message,
        }),
        _ => Err(SftpError::Transport(
            "unexpected answer to an extended request".into(),
        )),
    }
}

/// The link count in an `ls -l` style long name: "-rw-r--r--    2 user group ...".
fn parse_longname_nlink(longname: &str) -> Option<u32> {
    let mut fields = longname.split_ascii_whitespace();
    let mode = fields.next()?;
    if mode.len() < 10 {
        return None;
    }
    fields.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longname_nlink() {
        assert_eq!(
            parse_longname_nlink("-rw-r--r--    2 root     root            0 Nov 21 14:50 a"),
            Some(2)
        );
        assert_eq!(parse_longname_nlink(""), None);
        assert_eq!(parse_longname_nlink("a"), None);
    }

    #[test]
    fn ssh_string() {
        assert_eq!(encode_string("ab"), vec![0, 0, 0, 2, b'a', b'b']);
    }

    /// OpenSSH's handle 128 is the bytes 00 00 00 80, not UTF-8: the handle sent back in a
    /// request must be those bytes, not a lossy U+FFFD (the server would not know it, and every
    /// READ, WRITE and CLOSE on it would fail: the stray requests of the concurrency issue).
    #[test]
    fn handles_that_are_not_utf8_go_back_unchanged() {
        use russh_sftp::protocol::Close;
        for number in [0x80u32, 0xff, 0x1_80, 0x7f] {
            let raw = number.to_be_bytes();
            let mut reply = bytes::BytesMut::new();
            reply.extend_from_slice(&[102]); // SSH_FXP_HANDLE
            reply.extend_from_slice(&7u32.to_be_bytes());
            reply.extend_from_slice(&4u32.to_be_bytes());
            reply.extend_from_slice(&raw);
            let mut reply = reply.freeze();
            let handle = match Packet::try_from(&mut reply) {
                Ok(Packet::Handle(h)) => h.handle,
                other => panic!("not a HANDLE packet: {other:?}"),
            };
            let close = bytes::Bytes::try_from(Packet::Close(Close { id: 8, handle }));
            let close = close.unwrap_or_default();
            assert!(
                close.ends_with(&[0, 0, 0, 4, raw[0], raw[1], raw[2], raw[3]]),
                "handle {number:#x} sent back as {close:02x?}"
            );
            assert_eq!(encode_string("a\u{10FF80}"), vec![0, 0, 0, 2, b'a', 0x80]);
        }
    }
}
