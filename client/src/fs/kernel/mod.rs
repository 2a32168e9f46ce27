//! What the fs layer decides about the kernel it answers, beside the operations themselves:
//! who may use the mount ([`admission`]), when a missing name is answered as a negative entry
//! the kernel keeps ([`negative`]), the lookup references READDIRPLUS entries take ([`plus`]),
//! the undo of an open whose handle never reaches the kernel ([`undo`]), and how long the kernel
//! may keep each answer ([`ttl`]). The FUSE layer names each request's operation ([`Op`]),
//! calls these, and only converts.

pub mod admission;
pub mod negative;
pub mod op;
pub mod plus;
pub mod ttl;
pub mod undo;

pub use negative::Entry;
pub use op::Op;
pub use plus::PlusEntries;
pub use ttl::{KernelTtls, Lifetimes};

use super::SshFs;

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

/// The kernel-side state of [`SshFs`]: the terms set at mount.
#[derive(Debug, Default)]
pub struct Kernel {
    admission: admission::Admission,
    negative: negative::NegativeEntries,
    ttls: std::sync::RwLock<KernelTtls>,
}

impl Kernel {
    /// The timeouts set at mount.
    fn ttls(&self) -> KernelTtls {
        *self.ttls.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl SshFs {
    /// Takes the mount's terms ([`KernelTerms`]); before this, everyone is served and a
    /// missing name is an error.
    pub fn set_kernel_terms(&self, terms: KernelTerms) {
        if let Some(owner) = terms.allow_root {
            self.kernel.admission.only_owner_and_root(owner);
        }
        self.kernel.negative.set(terms.negative_entries);
        *self.kernel.ttls.write().unwrap_or_else(|e| e.into_inner()) = terms.ttls;
    }
}
