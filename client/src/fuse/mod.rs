//! The FUSE frontend: it only converts. Each kernel request is linked to the [`SshFs`] method
//! of the same name ([`adapter`]); the request runs traced, admitted by the fs layer,
//! cancellable by an INTERRUPT ([`interrupts`]), its error mapped to an errno and its answer
//! logged ([`request`]), and its result turned into a fuse3 reply with the configured TTLs
//! ([`reply`]). What to decide about the kernel (admission, negative entries, READDIRPLUS
//! references, undo of an open whose reply is lost) is the fs layer's
//! ([`crate::fs::kernel`]). [`mount`] mounts with a [`MountConfig`] ([`config`]); the kernel's
//! invalidations are sent by one task ([`notify`]).
//!
//! [`SshFs`]: crate::fs::SshFs

mod adapter;
mod config;
mod interrupts;
mod mount;
mod notify;
mod reply;
mod request;

pub use adapter::FuseFs;
pub use config::{Atime, KernelTtls, MountConfig, MountFlags, kernel_expires_entries};
pub use mount::mount;
