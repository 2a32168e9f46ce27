//! How long the kernel may keep each answer ([`crate::fs::kernel::ttl`]): the remaining life of
//! our cache entry, the floor where our cache does not keep the answer, what the user gave.

use std::time::Duration;

use sshfs_cache::CacheConfig;

use super::{Mounted, ROOT, flags, mount, mount_cached, name};
use crate::fs::kernel::{KernelTerms, KernelTtls, Lifetimes};
use crate::remote::sftp::server::ServerOverrides;
use crate::remote::testing::memory::Personality;

const SEC: Duration = Duration::from_secs(1);
/// The floor: what the kernel was always given before.
const FLOOR: Lifetimes = Lifetimes {
    entry: SEC,
    attr: SEC,
};

/// Whether `d` is the life of a cache entry of 20 s just made.
fn fresh(d: Duration) -> bool {
    d > 19 * SEC && d <= 20 * SEC
}

/// A file on the server at `rel`, looked up: its inode.
async fn looked_up(m: &Mounted, rel: &str) -> u64 {
    m.server.put_file(&m.path(rel), b"0123456789").unwrap();
    m.fs.lookup(ROOT, name(rel)).await.unwrap().ino
}

#[tokio::test]
async fn a_cached_answer_lives_as_long_as_our_entry() {
    let m = mount().await;
    let f = looked_up(&m, "f").await;
    let life = m.fs.lifetimes(f);
    assert!(fresh(life.attr), "{life:?}");
    assert_eq!(life.entry, life.attr);
    m.fs.getattr(f, None).await.unwrap();
    assert!(fresh(m.fs.lifetimes(f).attr));
    // A directory's attributes too, but its name only the floor (`--flush` cannot take it back).
    m.server.mkdir(&m.path("d")).unwrap();
    let d = m.fs.lookup(ROOT, name("d")).await.unwrap().ino;
    let life = m.fs.lifetimes(d);
    assert!(fresh(life.attr), "{life:?}");
    assert_eq!(life.entry, SEC);
    // Made through the mount: the same.
    let made = m.fs.mkdir(ROOT, name("e"), 0o755).await.unwrap();
    assert!(fresh(m.fs.lifetimes(made.ino).attr));
}

#[tokio::test]
async fn a_file_open_for_writing_gets_the_floor() {
    let m = mount().await;
    let fs = &m.fs;
    let excl = flags(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL);
    let (attr, fh) = fs.create(ROOT, name("w"), 0o644, excl).await.unwrap();
    assert_eq!(fs.lifetimes(attr.ino), FLOOR, "created for writing");
    fs.write(fh, 0, b"data").await.unwrap();
    assert_eq!(fs.getattr(attr.ino, None).await.unwrap().size, 4);
    assert_eq!(fs.lifetimes(attr.ino), FLOOR, "being written");
    fs.release(fh).await.unwrap();
    // Closed: the next answer is the cache's again.
    assert_eq!(fs.getattr(attr.ino, None).await.unwrap().size, 4);
    assert!(fresh(fs.lifetimes(attr.ino).attr));
    // Open for reading only: the cache's.
    let (fh, _) = fs.open(attr.ino, flags(libc::O_RDONLY)).await.unwrap();
    assert!(fresh(fs.lifetimes(attr.ino).attr));
    fs.release(fh).await.unwrap();
    m.assert_clean().await;
}

#[tokio::test]
async fn a_file_with_several_names_gets_the_floor() {
    let m = mount().await;
    let f = looked_up(&m, "f").await;
    let linked = m.fs.link(f, ROOT, name("g")).await.unwrap();
    assert_eq!(linked.nlink, 2);
    // Our cache asks the server for it every time: the kernel may keep it only the floor.
    assert_eq!(m.fs.lifetimes(f), FLOOR);
    m.fs.getattr(f, None).await.unwrap();
    assert_eq!(m.fs.lifetimes(f), FLOOR);
}

#[tokio::test]
async fn an_answer_our_cache_forgot_gets_the_floor() {
    let m = mount().await;
    let f = looked_up(&m, "f").await;
    m.fs.cache().invalidate("f");
    assert_eq!(m.fs.lifetimes(f), FLOOR);
    // An inode the mount does not know (gone, or never looked up).
    assert_eq!(m.fs.lifetimes(999), FLOOR);
}

#[tokio::test]
async fn without_a_cache_every_answer_gets_the_floor() {
    let off = CacheConfig {
        stat_ttl: Duration::ZERO,
        dir_ttl: Duration::ZERO,
        link_ttl: Duration::ZERO,
        negative_ttl: Duration::ZERO,
        dir_cache: false,
        ..CacheConfig::default()
    };
    let m = mount_cached(Personality::openssh(), ServerOverrides::default(), off).await;
    let f = looked_up(&m, "f").await;
    assert_eq!(m.fs.lifetimes(f), FLOOR);
    assert_eq!(m.fs.lifetimes(ROOT), FLOOR);
}

#[tokio::test]
async fn timeouts_the_user_gave_are_kept() {
    let m = mount().await;
    let given = |attr, entry| KernelTerms {
        ttls: KernelTtls {
            attr,
            entry,
            ..KernelTtls::default()
        },
        ..KernelTerms::default()
    };
    m.fs.set_kernel_terms(given(Some(600 * SEC), Some(Duration::ZERO)));
    let f = looked_up(&m, "f").await;
    let fixed = Lifetimes {
        entry: Duration::ZERO,
        attr: 600 * SEC,
    };
    assert_eq!(m.fs.lifetimes(f), fixed);
    assert_eq!(m.fs.lifetimes(999), fixed);
    // Only one given: the other from our cache.
    m.fs.set_kernel_terms(given(None, Some(2 * SEC)));
    let life = m.fs.lifetimes(f);
    assert_eq!(life.entry, 2 * SEC);
    assert!(fresh(life.attr), "{life:?}");
}
