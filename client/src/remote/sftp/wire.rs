//! Wire helpers for what russh-sftp does not encode or decode for us: SSH strings in
//! EXTENDED requests, their status answers, and the link count in a READDIR long name.

use russh_sftp::protocol::{Packet, StatusCode};

use super::error::{SftpError, SftpResult};

/// Encodes an SSH `string` (u32 length + bytes) as russh-sftp encodes every other string: a
/// name it decoded from bytes that are not UTF-8 goes back as those bytes (vendor/README.md).
pub(super) fn encode_string(s: &str) -> Vec<u8> {
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
pub(super) fn expect_ok(packet: Packet) -> SftpResult<()> {
    match packet {
        Packet::Status(s) if s.status_code == StatusCode::Ok => Ok(()),
        Packet::Status(s) => Err(SftpError::Status {
            code: u32::from(s.status_code),
            message: s.error_message,
        }),
        _ => Err(SftpError::Protocol(
            "unexpected answer to an extended request".into(),
        )),
    }
}

/// The link count in an `ls -l` style long name: "-rw-r--r--    2 user group ...".
pub(super) fn parse_longname_nlink(longname: &str) -> Option<u32> {
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
        }
        assert_eq!(encode_string("a\u{10FF80}"), vec![0, 0, 0, 2, b'a', 0x80]);
    }
}
