use bytes::Buf;

use crate::error::Error;

pub trait TryBuf: Buf {
    fn try_get_bytes(&mut self) -> Result<Vec<u8>, Error>;
    fn try_get_string(&mut self) -> Result<String, Error>;
}

impl<T: Buf> TryBuf for T {
    fn try_get_bytes(&mut self) -> Result<Vec<u8>, Error> {
        let len = self.try_get_u32()? as usize;
        if self.remaining() < len {
            return Err(Error::BadMessage("no remaining for vec".to_owned()));
        }

        Ok(self.copy_to_bytes(len).to_vec())
    }

    fn try_get_string(&mut self) -> Result<String, Error> {
        let bytes = self.try_get_bytes()?;
        Ok(decode_lossless(&bytes))
    }
}

// sshfs-rs patch: byte strings that are not UTF-8 are decoded losslessly, so they can be sent
// back unchanged. OpenSSH's handles are 4-byte big-endian integers: from handle 128 on they are
// not UTF-8, and a lossy decoding (U+FFFD) made every request on them name a handle the server
// does not hold. Each byte of an invalid sequence becomes the private-use character
// U+10FF00 + byte; so does each byte of a character already in U+10FF00..=U+10FFFF, so that
// `encode_lossless(&decode_lossless(b)) == b` for every byte string `b`.

const ESCAPE_BASE: u32 = 0x10FF00;

fn is_escape(c: char) -> bool {
    (ESCAPE_BASE..=0x10FFFF).contains(&(c as u32))
}

fn push_escaped(out: &mut String, byte: u8) {
    if let Some(c) = char::from_u32(ESCAPE_BASE + u32::from(byte)) {
        out.push(c);
    }
}

fn push_valid(out: &mut String, valid: &str) {
    for c in valid.chars() {
        if is_escape(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                push_escaped(out, b);
            }
        } else {
            out.push(c);
        }
    }
}

/// Decodes an SSH string losslessly (see above).
pub fn decode_lossless(bytes: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(bytes) {
        if !s.chars().any(is_escape) {
            return s.to_owned();
        }
    }
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                push_valid(&mut out, valid);
                return out;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                push_valid(&mut out, std::str::from_utf8(valid).unwrap_or_default());
                let bad = e.error_len().unwrap_or(after.len());
                for b in &after[..bad] {
                    push_escaped(&mut out, *b);
                }
                rest = &after[bad..];
            }
        }
    }
}

/// The bytes a string decoded by [`decode_lossless`] came from.
pub fn encode_lossless(s: &str) -> std::borrow::Cow<'_, [u8]> {
    if !s.chars().any(is_escape) {
        return std::borrow::Cow::Borrowed(s.as_bytes());
    }
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        if is_escape(c) {
            out.push((c as u32 - ESCAPE_BASE) as u8);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod lossless_tests {
    use super::{decode_lossless, encode_lossless};

    #[test]
    fn every_byte_string_round_trips() {
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            b"plain".to_vec(),
            vec![0, 0, 0, 0x80],
            vec![0, 0, 0, 0xff],
            vec![0xc3, 0x28, b'a', 0xe2, 0x82],
            "caf\u{e9} \u{10FF41}".as_bytes().to_vec(),
            vec![0xf4, 0x8f, 0xbf, 0xbf],
        ];
        for bytes in cases {
            let s = decode_lossless(&bytes);
            assert_eq!(&*encode_lossless(&s), &bytes[..], "{bytes:02x?}");
        }
        for i in 0..=u16::MAX {
            let bytes = [0, 0, (i >> 8) as u8, i as u8];
            assert_eq!(&*encode_lossless(&decode_lossless(&bytes)), &bytes[..]);
        }
        assert_eq!(decode_lossless(b"plain"), "plain");
    }
}
