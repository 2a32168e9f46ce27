//! Each answer's remaining life: how long the kernel may keep the name and attributes of an
//! inode we answer, from what our cache still answers for it ([`crate::fs::kernel::ttl`] has
//! the rules and the timeouts set at mount).

use std::time::Duration;

use crate::fs::SshFs;
use crate::fs::kernel::Lifetimes;

impl SshFs {
    /// How long the kernel may keep the name and attributes of `ino` we are answering (see the
    /// module doc).
    pub fn lifetimes(&self, ino: u64) -> Lifetimes {
        let ttls = self.kernel.ttls();
        if let Some(fixed) = ttls.fixed() {
            return fixed;
        }
        let dir = self.inodes().file_type(ino) == libc::S_IFDIR;
        ttls.lifetimes(self.cache_life(ino), dir)
    }

    /// How much longer our cache answers the attributes of `ino` without asking the server
    /// (zero if it does not answer them, or they change under a writer of ours).
    fn cache_life(&self, ino: u64) -> Duration {
        if self.files.usable(ino, true).is_some() {
            return Duration::ZERO;
        }
        let Some(rel) = self.inodes().path(ino) else {
            return Duration::ZERO;
        };
        self.namespace
            .answer_life(&rel, Some(ino), self.links.follow)
    }
}
