//! The `-d` request log: one line per FUSE request once it is answered, as sshfs's debug output
//! has it: the request's number, the operation, the path it is about, the result (what the
//! reply carries, or the errno's name) and how long it took:
//!
//! ```text
//! [12] lookup /src/main.rs -> ino 5, 1024 bytes (0.412 ms)
//! [13] open /src/main.rs -> fh 3 (2.100 ms)
//! [14] lookup /src/nope.rs -> ENOENT (0.020 ms)
//! ```
//!
//! The line is only put together when debug logging is on.

use std::ffi::OsStr;
use std::time::Duration;

use fuse3::raw::reply::FileAttr;
use russh_sftp::extensions::Statvfs;

use crate::fs::DirItem;
use crate::fs::kernel::Entry;
use crate::fs::kernel::dirs::DirCaching;
use crate::fs::setattr::SetAttrReply;

/// What a request's answer carried, in a few words.
pub trait Summary {
    /// The words for the log line.
    fn summary(&self) -> String;
}

impl Summary for () {
    fn summary(&self) -> String {
        "ok".to_owned()
    }
}

impl Summary for FileAttr {
    fn summary(&self) -> String {
        format!("ino {}, {} bytes", self.ino, self.size)
    }
}

/// A LOOKUP: the entry found, or a negative entry (the caller sees ENOENT, logged as such).
impl Summary for Entry {
    fn summary(&self) -> String {
        match self {
            Entry::Found(attr) => attr.summary(),
            Entry::Negative => "ENOENT".to_owned(),
        }
    }
}

impl Summary for SetAttrReply {
    fn summary(&self) -> String {
        self.attr.summary()
    }
}

/// Data read, or a symlink's target.
impl Summary for Vec<u8> {
    fn summary(&self) -> String {
        format!("{} bytes", self.len())
    }
}

/// Bytes written.
impl Summary for u32 {
    fn summary(&self) -> String {
        format!("{self} bytes")
    }
}

/// A directory handle, or bytes copied.
impl Summary for u64 {
    fn summary(&self) -> String {
        self.to_string()
    }
}

/// An open: the handle, and whether the kernel keeps the file's pages.
impl Summary for (u64, bool) {
    fn summary(&self) -> String {
        let keep = if self.1 { ", keep cache" } else { "" };
        format!("fh {}{keep}", self.0)
    }
}

/// An OPENDIR: the handle, and whether the kernel keeps the entries it reads ("cache dir") and
/// lists this open from those it kept ("keep cache").
impl Summary for (u64, DirCaching) {
    fn summary(&self) -> String {
        let cache = match self.1 {
            DirCaching { cache: false, .. } => "",
            DirCaching { keep: false, .. } => ", cache dir",
            DirCaching { keep: true, .. } => ", cache dir, keep cache",
        };
        format!("fh {}{cache}", self.0)
    }
}

/// A create: the new file and its handle.
impl Summary for (FileAttr, u64) {
    fn summary(&self) -> String {
        format!("ino {}, fh {}", self.0.ino, self.1)
    }
}

impl Summary for Vec<DirItem> {
    fn summary(&self) -> String {
        format!("{} entries", self.len())
    }
}

impl Summary for Statvfs {
    fn summary(&self) -> String {
        format!("{} of {} blocks free", self.blocks_free, self.blocks)
    }
}

/// The log line of one answered request. `path` is the request's inode as a path in the mount
/// (`name` appended for requests about a name in a directory); `result` is the summary or the
/// errno.
pub fn line(
    unique: u64,
    op: &str,
    path: &str,
    name: Option<&OsStr>,
    result: Result<String, i32>,
    took: Duration,
) -> String {
    let mut target = path.to_owned();
    if let Some(name) = name {
        if !target.ends_with('/') {
            target.push('/');
        }
        target.push_str(&name.to_string_lossy());
    }
    let result = result.unwrap_or_else(errno_name);
    let ms = took.as_secs_f64() * 1000.0;
    format!("[{unique}] {op} {target} -> {result} ({ms:.3} ms)")
}

/// `ENOENT` for 2.
fn errno_name(errno: i32) -> String {
    match nix::errno::Errno::from_raw(errno) {
        nix::errno::Errno::UnknownErrno => format!("errno {errno}"),
        e => format!("{e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let t = Duration::from_micros(412);
        assert_eq!(
            line(
                12,
                "lookup",
                "/src",
                Some(OsStr::new("a.rs")),
                Ok("ok".into()),
                t
            ),
            "[12] lookup /src/a.rs -> ok (0.412 ms)"
        );
        assert_eq!(
            line(
                3,
                "lookup",
                "/",
                Some(OsStr::new("x")),
                Err(libc::ENOENT),
                t
            ),
            "[3] lookup /x -> ENOENT (0.412 ms)"
        );
        assert_eq!(
            line(4, "read", "/f", None, Err(100_000), t),
            "[4] read /f -> errno 100000 (0.412 ms)"
        );
    }
}
