//! The whole fs layer over the in-memory SFTP server (`remote::testing::memory`), through the
//! real client stack (russh-sftp's codec, our engine and its connector), with no network, no
//! sshd and no FUSE: every operation the FUSE frontend calls ([`operations`]), the errnos a
//! local filesystem gives ([`errors`]), the background re-check noticing changes made behind
//! the mount ([`recheck`]), servers that are not OpenSSH ([`other_servers`]), and the round trips
//! each operation costs, as docs/SEMANTICS.md promises them ([`round_trips`]), and how long the
//! kernel may keep each answer ([`ttl`]). Results are checked through `SshFs` and in the
//! server's own tree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod errors;
mod operations;
mod other_servers;
mod recheck;
mod round_trips;
mod ttl;

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;

use sshfs_cache::CacheConfig;

use super::SshFs;
use crate::remote::sftp::server::{ServerOverrides, ServerProfile};
use crate::remote::testing::memory::{MemoryServer, Personality};
use crate::remote::testing::{StreamConnector, quick_reconnect};

/// The mount's root inode.
const ROOT: u64 = 1;
/// The mounted directory on the server.
const DIR: &str = "/m";

/// The filesystem over a memory server.
struct Mounted {
    server: MemoryServer,
    fs: Arc<SshFs>,
}

/// A mount of [`DIR`] on a new OpenSSH-like memory server.
async fn mount() -> Mounted {
    mount_as(Personality::openssh()).await
}

/// A mount of [`DIR`] on a new memory server behaving as `personality`.
async fn mount_as(personality: Personality) -> Mounted {
    mount_with(personality, ServerOverrides::default()).await
}

/// A mount of [`DIR`] on a new memory server behaving as `personality`, with the `-o` options
/// that force what is decided about the server. The server is known as the real mount knows
/// it: from its banner and the extensions it announced.
async fn mount_with(personality: Personality, overrides: ServerOverrides) -> Mounted {
    mount_cached(personality, overrides, CacheConfig::default()).await
}

/// [`mount_with`], with the metadata cache configured by `cache`.
async fn mount_cached(
    personality: Personality,
    overrides: ServerOverrides,
    cache: CacheConfig,
) -> Mounted {
    let banner = personality.banner.clone();
    let server = MemoryServer::with_personality(personality);
    server.mkdir(DIR).unwrap();
    let connector = StreamConnector::new(Arc::new(server.clone()));
    let sftp = connector.connect_sftp(quick_reconnect()).await;
    let profile = ServerProfile::decide(banner.as_deref(), sftp.extensions(), overrides);
    sftp.set_server(profile);
    let fs = Arc::new(SshFs::new(sftp, DIR.into(), cache));
    Mounted { server, fs }
}

impl Mounted {
    /// The server path of `rel` under the mount.
    fn path(&self, rel: &str) -> String {
        format!("{DIR}/{rel}")
    }

    /// What the server holds at `rel`.
    fn content(&self, rel: &str) -> Option<Vec<u8>> {
        self.server.read_file(&self.path(rel))
    }

    /// Waits for CLOSEs sent in the background, then checks nothing was left open and no
    /// request named a handle the server did not hold.
    async fn assert_clean(&self) {
        for _ in 0..100 {
            if self.server.open_handles() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(self.server.open_handles(), 0, "handles left open");
        assert!(
            self.server.bad_handle_requests().is_empty(),
            "requests on handles not held: {:?}",
            self.server.bad_handle_requests()
        );
        assert_eq!(self.fs.sftp().handles().misuse(), 0);
    }
}

fn name(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// `open(2)` flags as the kernel passes them.
fn flags(f: i32) -> u32 {
    f as u32
}
