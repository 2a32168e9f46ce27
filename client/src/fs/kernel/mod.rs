//! What the fs layer decides about the kernel it answers, beside the operations themselves,
//! from the terms set at mount: who may use the mount ([`admission`]), when a missing name
//! is answered as a negative entry the kernel keeps ([`negative`]), and how long the kernel may
//! keep each answer ([`ttl`]), and whether it may keep a directory's entries between opens
//! ([`dirs`]). The FUSE layer names each request's operation ([`Op`]), asks
//! `SshFs` (which routes to [`Kernel`]), and only converts. Three more jobs of this kind need the
//! filesystem itself and sit beside it: the lookup references of READDIRPLUS entries
//! ([`crate::fs::plus`]), the undo of an open whose handle never reaches the kernel
//! ([`crate::fs::undo`]), and each answer's remaining life ([`crate::fs::lifetimes`]).

pub mod admission;
pub mod dirs;
pub mod negative;
pub mod op;
pub mod ttl;

pub use negative::Entry;
pub use op::Op;
pub use ttl::{KernelTtls, Lifetimes};

use crate::fs::errno::FsResult;

/// What the mount tells the fs layer about the kernel it serves.
#[derive(Debug, Clone, Copy, Default)]
pub struct KernelTerms {
    /// `allow_root`, with the uid of the mount's owner: only it and root are served.
    pub allow_root: Option<u32>,
    /// Whether a missing name is answered as a negative entry (the kernel's
    /// `negative_timeout` is not zero).
    pub negative_entries: bool,
    /// How long the kernel may keep names and attributes ([`ttl`]).
    pub ttls: KernelTtls,
}

/// The kernel-side state of the filesystem: the terms set at mount, and what the kernel may
/// hold of each directory's entries.
#[derive(Debug, Default)]
pub struct Kernel {
    admission: admission::Admission,
    negative: negative::NegativeEntries,
    ttls: std::sync::RwLock<KernelTtls>,
    dirs: dirs::KernelDirs,
}

impl Kernel {
    /// The timeouts set at mount.
    pub fn ttls(&self) -> KernelTtls {
        *self.ttls.read().unwrap_or_else(|e| e.into_inner())
    }

    /// What the kernel may hold of each directory's entries ([`dirs`]).
    pub fn dirs(&self) -> &dirs::KernelDirs {
        &self.dirs
    }
}

impl Kernel {
    /// Takes the mount's terms ([`KernelTerms`]); before this, everyone is served and a
    /// missing name is an error.
    pub fn set_terms(&self, terms: KernelTerms) {
        if let Some(owner) = terms.allow_root {
            self.admission.only_owner_and_root(owner);
        }
        self.negative.set(terms.negative_entries);
        *self.ttls.write().unwrap_or_else(|e| e.into_inner()) = terms.ttls;
    }

    /// Whether the user `uid` may make a request of `op` ([`admission::Admission`]).
    pub fn admit(&self, uid: u32, op: Op) -> FsResult<()> {
        self.admission.admit(uid, op)
    }

    /// Whether a missing name is answered as a negative entry ([`negative`]).
    pub fn negative_entries(&self) -> bool {
        self.negative.given()
    }
}
