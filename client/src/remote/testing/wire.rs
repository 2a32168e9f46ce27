//! SFTP v3 packet framing, just enough to stand between a client and a server: cut the byte
//! stream into packets (a 4-byte big-endian length, then the body), tell a packet's type and
//! request id, and build or edit the few packets a fault injector answers with itself (STATUS,
//! a shortened DATA). Everything else passes through as the bytes that came in.
//!
//! Nothing here trusts the bytes: a packet too short for what is asked of it gives `None`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// `SSH_FXP_INIT`.
pub(crate) const INIT: u8 = 1;
/// `SSH_FXP_VERSION`.
pub(crate) const VERSION: u8 = 2;
/// `SSH_FXP_OPEN`.
pub(crate) const OPEN: u8 = 3;
/// `SSH_FXP_CLOSE`.
pub(crate) const CLOSE: u8 = 4;
/// `SSH_FXP_READ`.
pub(crate) const READ: u8 = 5;
/// `SSH_FXP_WRITE`.
pub(crate) const WRITE: u8 = 6;
/// `SSH_FXP_LSTAT`.
pub(crate) const LSTAT: u8 = 7;
/// `SSH_FXP_FSTAT`.
pub(crate) const FSTAT: u8 = 8;
/// `SSH_FXP_SETSTAT`.
pub(crate) const SETSTAT: u8 = 9;
/// `SSH_FXP_FSETSTAT`.
pub(crate) const FSETSTAT: u8 = 10;
/// `SSH_FXP_OPENDIR`.
pub(crate) const OPENDIR: u8 = 11;
/// `SSH_FXP_READDIR`.
pub(crate) const READDIR: u8 = 12;
/// `SSH_FXP_REMOVE`.
pub(crate) const REMOVE: u8 = 13;
/// `SSH_FXP_MKDIR`.
pub(crate) const MKDIR: u8 = 14;
/// `SSH_FXP_RMDIR`.
pub(crate) const RMDIR: u8 = 15;
/// `SSH_FXP_REALPATH`.
pub(crate) const REALPATH: u8 = 16;
/// `SSH_FXP_STAT`.
pub(crate) const STAT: u8 = 17;
/// `SSH_FXP_RENAME`.
pub(crate) const RENAME: u8 = 18;
/// `SSH_FXP_READLINK`.
pub(crate) const READLINK: u8 = 19;
/// `SSH_FXP_SYMLINK`.
pub(crate) const SYMLINK: u8 = 20;
/// `SSH_FXP_STATUS`.
pub(crate) const STATUS: u8 = 101;
/// `SSH_FXP_HANDLE`.
pub(crate) const HANDLE: u8 = 102;
/// `SSH_FXP_DATA`.
pub(crate) const DATA: u8 = 103;
/// `SSH_FXP_NAME`.
pub(crate) const NAME: u8 = 104;
/// `SSH_FXP_ATTRS`.
pub(crate) const ATTRS: u8 = 105;
/// `SSH_FXP_EXTENDED`.
pub(crate) const EXTENDED: u8 = 200;
/// `SSH_FXP_EXTENDED_REPLY`.
pub(crate) const EXTENDED_REPLY: u8 = 201;

/// `SSH_FXF_CREAT` in OPEN's pflags.
pub(crate) const PFLAG_CREAT: u32 = 0x08;

/// The largest packet passed on (OpenSSH's sftp-server takes 256 KiB of payload; anything far
/// beyond is a broken stream, not a packet).
const MAX_PACKET: u32 = 16 << 20;

/// Reads one packet's body; `None` at the end of the stream (or a stream that breaks off in
/// the middle of a packet, or claims an absurd length: the peer is gone either way).
pub(crate) async fn read_packet<R: AsyncRead + Unpin>(r: &mut R) -> Option<Bytes> {
    let len = r.read_u32().await.ok()?;
    if len == 0 || len > MAX_PACKET {
        return None;
    }
    let mut body = vec![0; len as usize];
    r.read_exact(&mut body).await.ok()?;
    Some(Bytes::from(body))
}

/// Writes one packet (its length, then `body`) in a single write.
pub(crate) async fn write_packet<W: AsyncWrite + Unpin>(
    w: &mut W,
    body: &[u8],
) -> std::io::Result<()> {
    let mut framed = Vec::with_capacity(4 + body.len());
    framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
    framed.extend_from_slice(body);
    w.write_all(&framed).await?;
    w.flush().await
}

/// A packet's type byte.
pub(crate) fn kind(body: &[u8]) -> u8 {
    body.first().copied().unwrap_or(0)
}

/// A packet's request id (every packet but INIT and VERSION has one, right after the type).
pub(crate) fn id(body: &[u8]) -> Option<u32> {
    match kind(body) {
        INIT | VERSION => None,
        _ => u32_at(body, 1),
    }
}

/// The name of a packet type, as OpenSSH's log spells requests ("open", "write", "status"...).
pub(crate) fn kind_name(kind: u8) -> &'static str {
    match kind {
        INIT => "init",
        VERSION => "version",
        OPEN => "open",
        CLOSE => "close",
        READ => "read",
        WRITE => "write",
        LSTAT => "lstat",
        FSTAT => "fstat",
        SETSTAT => "setstat",
        FSETSTAT => "fsetstat",
        OPENDIR => "opendir",
        READDIR => "readdir",
        REMOVE => "remove",
        MKDIR => "mkdir",
        RMDIR => "rmdir",
        REALPATH => "realpath",
        STAT => "stat",
        RENAME => "rename",
        READLINK => "readlink",
        SYMLINK => "symlink",
        STATUS => "status",
        HANDLE => "handle",
        DATA => "data",
        NAME => "name",
        ATTRS => "attrs",
        EXTENDED => "extended",
        EXTENDED_REPLY => "extended-reply",
        _ => "unknown",
    }
}

/// An EXTENDED request's extension name (e.g. `posix-rename@openssh.com`).
pub(crate) fn extension(body: &[u8]) -> Option<String> {
    if kind(body) != EXTENDED {
        return None;
    }
    let name = string_at(body, 5)?.0;
    Some(String::from_utf8_lossy(name).into_owned())
}

/// A request's name for the record: the extension name of an EXTENDED request, else the
/// type's name.
pub(crate) fn request_name(body: &[u8]) -> String {
    extension(body).unwrap_or_else(|| kind_name(kind(body)).to_owned())
}

/// How many data bytes a WRITE carries.
pub(crate) fn write_len(body: &[u8]) -> Option<usize> {
    if kind(body) != WRITE {
        return None;
    }
    let (_, after_handle) = string_at(body, 5)?;
    let (data, _) = string_at(body, after_handle + 8)?;
    Some(data.len())
}

/// An OPEN's pflags.
pub(crate) fn open_pflags(body: &[u8]) -> Option<u32> {
    if kind(body) != OPEN {
        return None;
    }
    let (_, after_path) = string_at(body, 5)?;
    u32_at(body, after_path)
}

/// How many data bytes a DATA answer carries.
pub(crate) fn data_len(body: &[u8]) -> Option<usize> {
    if kind(body) != DATA {
        return None;
    }
    Some(string_at(body, 5)?.0.len())
}

/// A DATA answer keeping only its first `keep` bytes; `None` if `body` is not a DATA packet
/// (or is malformed).
pub(crate) fn shorten_data(body: &[u8], keep: usize) -> Option<Bytes> {
    if kind(body) != DATA {
        return None;
    }
    let (data, _) = string_at(body, 5)?;
    let data = &data[..keep.min(data.len())];
    let mut out = BytesMut::with_capacity(9 + data.len());
    out.put_slice(&body[..5]);
    out.put_u32(data.len() as u32);
    out.put_slice(data);
    Some(out.freeze())
}

/// A STATUS answer to request `id`.
pub(crate) fn status(id: u32, code: u32, message: &str) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(STATUS);
    out.put_u32(id);
    out.put_u32(code);
    out.put_u32(message.len() as u32);
    out.put_slice(message.as_bytes());
    out.put_u32(0); // language tag
    out.freeze()
}

/// An EXTENDED_REPLY to `statvfs@openssh.com` (eleven u64s, in OpenSSH's order): 4 KiB
/// blocks, `blocks` of them of which `blocks_avail` free, `inodes` of which `inodes_avail`
/// free, 255-byte names.
pub(crate) fn statvfs_reply(
    id: u32,
    blocks: u64,
    blocks_avail: u64,
    inodes: u64,
    inodes_avail: u64,
) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(EXTENDED_REPLY);
    out.put_u32(id);
    for v in [
        4096,
        4096,
        blocks,
        blocks_avail,
        blocks_avail,
        inodes,
        inodes_avail,
        inodes_avail,
        0,
        0,
        255,
    ] {
        out.put_u64(v);
    }
    out.freeze()
}

/// A STATUS packet's code.
pub(crate) fn status_code(body: &[u8]) -> Option<u32> {
    match kind(body) {
        STATUS => u32_at(body, 5),
        _ => None,
    }
}

fn u32_at(body: &[u8], at: usize) -> Option<u32> {
    let bytes = body.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

/// The SSH string at `at` and the offset just after it.
fn string_at(body: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let len = u32_at(body, at)? as usize;
    let start = at + 4;
    let end = start.checked_add(len)?;
    Some((body.get(start..end)?, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_packet_body(handle: &[u8], offset: u64, data: &[u8]) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.put_u8(WRITE);
        b.put_u32(7);
        b.put_u32(handle.len() as u32);
        b.put_slice(handle);
        b.put_u64(offset);
        b.put_u32(data.len() as u32);
        b.put_slice(data);
        b.to_vec()
    }

    #[test]
    fn a_write_is_measured_and_a_data_answer_shortened() {
        let w = write_packet_body(&[0, 0, 0, 200], 4096, b"hello");
        assert_eq!((kind(&w), id(&w), write_len(&w)), (WRITE, Some(7), Some(5)));
        assert_eq!(write_len(&w[..w.len() - 1]), None, "a truncated packet");

        let mut d = BytesMut::new();
        d.put_u8(DATA);
        d.put_u32(9);
        d.put_u32(6);
        d.put_slice(b"abcdef");
        let short = shorten_data(&d, 2).unwrap();
        assert_eq!(&short[..], &[DATA, 0, 0, 0, 9, 0, 0, 0, 2, b'a', b'b']);
        assert_eq!(data_len(&short), Some(2));
        assert_eq!(shorten_data(&w, 2), None);
    }

    #[test]
    fn a_status_names_its_request_and_code() {
        let s = status(42, 14, "full");
        assert_eq!(
            (kind(&s), id(&s), status_code(&s)),
            (STATUS, Some(42), Some(14))
        );
        assert_eq!(kind_name(kind(&s)), "status");
    }

    #[tokio::test]
    async fn packets_are_framed_and_unframed() {
        let (mut a, mut b) = tokio::io::duplex(64);
        write_packet(&mut a, &[INIT, 0, 0, 0, 3]).await.unwrap();
        drop(a);
        assert_eq!(
            read_packet(&mut b).await.as_deref(),
            Some(&[INIT, 0, 0, 0, 3][..])
        );
        assert_eq!(read_packet(&mut b).await, None);
    }
}
