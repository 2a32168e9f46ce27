//! The table of files this mount hid instead of removing them (unlinked while open, on a
//! server that drops a removed file), and the names it gives them: libfuse's. What hiding
//! does and why is in [`crate::fs::hidden`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// The prefix of hidden names (libfuse's).
const PREFIX: &str = ".fuse_hidden";
/// Hidden names tried for a free one before an unlink of an open file gives up (libfuse: 10).
pub const TRIES: usize = 10;

/// Whether `name` is one libfuse or we would give a hidden file: [`PREFIX`] and at least 16
/// hex digits (libfuse: the inode as `%08x`, then a counter as `%08x`).
pub fn is_hidden_name(name: &str) -> bool {
    name.strip_prefix(PREFIX)
        .is_some_and(|hex| hex.len() >= 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The files hidden by this mount, by inode, until their last release.
#[derive(Default)]
pub struct Hidden {
    /// libfuse's `hidectr`: makes each hidden name new.
    counter: AtomicU32,
    /// Inode -> (its directory's inode, its hidden name).
    files: Mutex<HashMap<u64, (u64, String)>>,
}

impl Hidden {
    /// A hidden name for `ino` not given before by this mount.
    pub fn next_name(&self, ino: u64) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        format!("{PREFIX}{ino:08x}{n:08x}")
    }

    /// Records `ino` as hidden as `name` in the directory `parent`.
    pub fn insert(&self, ino: u64, parent: u64, name: String) {
        if let Ok(mut files) = self.files.lock() {
            files.insert(ino, (parent, name));
        }
    }

    /// `ino`'s directory and hidden name, while it is hidden.
    pub fn get(&self, ino: u64) -> Option<(u64, String)> {
        self.files.lock().ok()?.get(&ino).cloned()
    }

    /// Takes `ino`'s hidden name out of the table: whoever gets it removes the file.
    pub fn take(&self, ino: u64) -> Option<(u64, String)> {
        self.files.lock().ok()?.remove(&ino)
    }

    /// How many files this mount holds hidden now.
    pub fn len(&self) -> usize {
        self.files.lock().map_or(0, |f| f.len())
    }

    /// Whether no file is hidden now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_names_are_libfuse_s() {
        let h = Hidden::default();
        let name = h.next_name(0x2a);
        assert_eq!(name, ".fuse_hidden0000002a00000001");
        assert!(is_hidden_name(&name));
        assert!(is_hidden_name(".fuse_hidden123456789abcdef0123"));
        assert!(!is_hidden_name(".fuse_hidden"));
        assert!(!is_hidden_name(".fuse_hiddenfoo"));
        assert!(!is_hidden_name("fuse_hidden0000002a00000001"));
        assert!(!is_hidden_name(".fuse_hidden0000002a0000000g"));
    }
}
