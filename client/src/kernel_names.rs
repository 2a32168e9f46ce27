//! File names at the kernel's edge. The kernel hands us names, symlink targets and paths as
//! bytes, and SFTP v3 carries them as bytes; the rest of the client keeps them as `String`s in
//! the vendored russh-sftp's lossless escape ([`russh_sftp::decode_lossless`]): UTF-8 stays as
//! it is, and each byte of a sequence that is not UTF-8 (or of a character in
//! U+10FF00..=U+10FFFF, which the escape uses) becomes the private-use character
//! U+10FF00 + byte. The escape is a bijection between byte strings and the strings it makes, and
//! it commutes with joining by `/` (an ASCII byte never belongs to a multibyte sequence), so a
//! path built from escaped components is the escape of the joined bytes. Every name that
//! enters from the kernel goes through [`name_from_kernel`], every one that leaves to it
//! through [`name_to_kernel`] or [`bytes_to_kernel`]: what the server sends is what `readdir`
//! returns, and a name a program creates reaches the server unchanged.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// Whether `c` is one of the escape's characters (U+10FF00..=U+10FFFF).
fn is_escape(c: char) -> bool {
    c >= '\u{10FF00}'
}

/// A name (or path, or symlink target) the kernel gave, as the process keeps it. Never fails:
/// a name that is not UTF-8 is escaped, not refused.
pub fn name_from_kernel(name: &OsStr) -> Cow<'_, str> {
    match name.to_str() {
        Some(s) if !s.chars().any(is_escape) => Cow::Borrowed(s),
        _ => Cow::Owned(russh_sftp::decode_lossless(name.as_bytes())),
    }
}

/// The bytes the kernel is given for `name`, a string made by [`name_from_kernel`] or
/// decoded from the server.
pub fn bytes_to_kernel(name: &str) -> Vec<u8> {
    russh_sftp::encode_lossless(name).into_owned()
}

/// [`bytes_to_kernel`] as an `OsString` (directory entries, invalidated names).
pub fn name_to_kernel(name: &str) -> OsString {
    OsString::from_vec(bytes_to_kernel(name))
}

/// `PATH_MAX - 1`: the longest path a POSIX server's system calls take (Linux).
const SERVER_PATH_MAX: usize = 4095;
/// `NAME_MAX`: the longest name a POSIX server's filesystems take.
const SERVER_NAME_MAX: usize = 255;

/// Whether `path` (a server path, as the process keeps it) is longer than a POSIX server takes:
/// more than 4095 bytes, or a component of more than 255. OpenSSH's sftp-server answers the
/// ENAMETOOLONG of its system call with BAD_MESSAGE, the status it also sends for EINVAL; for
/// such a path it is ENAMETOOLONG.
pub fn too_long_for_the_server(path: &str) -> bool {
    let bytes = russh_sftp::encode_lossless(path);
    bytes.len() > SERVER_PATH_MAX
        || bytes
            .split(|b| *b == b'/')
            .any(|c| c.len() > SERVER_NAME_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips(bytes: &[u8]) {
        let name = name_from_kernel(OsStr::from_bytes(bytes));
        assert_eq!(name_to_kernel(&name).as_bytes(), bytes, "{bytes:02x?}");
        assert_eq!(bytes_to_kernel(&name), bytes, "{bytes:02x?}");
        // What the server's side decodes from the same bytes is the same string.
        assert_eq!(*name, russh_sftp::decode_lossless(bytes), "{bytes:02x?}");
    }

    #[test]
    fn every_one_and_two_byte_name_round_trips() {
        round_trips(b"");
        for a in 0..=u8::MAX {
            round_trips(&[a]);
            for b in 0..=u8::MAX {
                round_trips(&[a, b]);
            }
        }
    }

    #[test]
    fn names_of_the_issue_round_trips() {
        let escape_char = "\u{10FF41}".as_bytes().to_vec();
        let mut cases: Vec<Vec<u8>> = vec![
            b"bad\xff\xfe.txt".to_vec(),
            b"caf\xe9".to_vec(),
            b"new\xe9.txt".to_vec(),
            "caf\u{e9}".as_bytes().to_vec(),
            [b"x".as_slice(), &escape_char, b"y"].concat(),
            // What the lossy escape of `\xff` looks like as UTF-8: must stay those 4 bytes.
            b"\xf4\x8f\xbf\xbf".to_vec(),
            // Truncated and overlong sequences, surrogates.
            b"\xe2\x82".to_vec(),
            b"\xc0\xaf".to_vec(),
            b"\xed\xa0\x80".to_vec(),
            vec![0xfe; 255],
        ];
        for a in [0x80u8, 0xc3, 0xe2, 0xf0, 0xf4, 0xff] {
            for b in [0x80u8, 0x8f, 0xa9, 0xbf, 0xc0] {
                for c in [0x80u8, 0xbf, b'/'] {
                    cases.push(vec![a, b, c]);
                    cases.push(vec![a, b, c, 0x81]);
                }
            }
        }
        for bytes in cases {
            round_trips(&bytes);
        }
    }

    #[test]
    fn too_long_counts_the_bytes_the_server_gets() {
        let name = |n: usize| "n".repeat(n);
        assert!(!too_long_for_the_server(&format!("/r/{}", name(255))));
        assert!(too_long_for_the_server(&format!("/r/{}", name(256))));
        // 255 bytes that are not UTF-8: 1020 bytes inside the process, 255 on the wire.
        let escaped = name_from_kernel(OsStr::from_bytes(&[0xe9; 255]));
        assert!(!too_long_for_the_server(&format!("/r/{escaped}")));
        let deep = vec![name(200); 25].join("/");
        assert!(!too_long_for_the_server(&deep[..4095]));
        assert!(too_long_for_the_server(&deep[..4096]));
    }

    #[test]
    fn utf8_names_are_borrowed_and_unchanged() {
        assert!(matches!(
            name_from_kernel(OsStr::new("caf\u{e9}")),
            Cow::Borrowed("caf\u{e9}")
        ));
        // A real U+10FF41 is escaped (its four bytes), so it cannot be taken for an escape.
        let real = name_from_kernel(OsStr::new("\u{10FF41}"));
        assert_eq!(real.chars().count(), 4);
        assert_eq!(bytes_to_kernel(&real), "\u{10FF41}".as_bytes());
    }

    #[test]
    fn joining_escaped_components_is_escaping_the_joined_bytes() {
        let parts: [&[u8]; 4] = [b"caf\xe9", b"\xe2\x82", "\u{10FF41}".as_bytes(), b"\xff"];
        for a in parts {
            for b in parts {
                let joined = [a, b"/", b].concat();
                let separately = format!(
                    "{}/{}",
                    name_from_kernel(OsStr::from_bytes(a)),
                    name_from_kernel(OsStr::from_bytes(b))
                );
                assert_eq!(separately, name_from_kernel(OsStr::from_bytes(&joined)));
                assert_eq!(bytes_to_kernel(&separately), joined);
            }
        }
    }
}
