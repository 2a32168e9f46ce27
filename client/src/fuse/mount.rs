//! Mounting: the kernel's mount options from a [`MountConfig`], through mount(2) for root or
//! fusermount3 for a user.

use std::path::Path;
use std::sync::Arc;

use fuse3::MountOptions;
use fuse3::raw::{MountHandle, Session};

use super::adapter::FuseFs;
use super::config::MountConfig;
use crate::fs::SshFs;

/// Mounts `fs` on `mountpoint`; the returned handle resolves when the filesystem is unmounted.
///
/// fuse3 0.10 mounts root's mounts itself with mount(2), always as type `fuse` and with no
/// flags but `ro`; it passes extra options through to the kernel (root) or to fusermount3 (a
/// user). So the type comes from the kernel's `subtype=` option, `sync`/`dirsync` are
/// superblock options the kernel takes in the same string. For root, the per-mount flags
/// (`nosuid`, `nodev`, `noexec`, atime) cannot go through fuse3: the caller applies them with a
/// bind remount as soon as this returns (`MS_REMOUNT | MS_BIND`, see sshfs-rs's serve.rs).
pub async fn mount(
    fs: Arc<SshFs>,
    mountpoint: &Path,
    config: &MountConfig,
) -> std::io::Result<MountHandle> {
    let mut extra: Vec<String> = Vec::new();
    if !config.subtype.is_empty() {
        extra.push(format!("subtype={}", config.subtype));
    }
    if let Some(n) = config.max_read {
        extra.push(format!("max_read={n}"));
    }
    let fs_name = if config.unprivileged {
        // fusermount3 splits its -o at commas; a backslash escapes one (as libfuse does).
        extra.extend(config.flags.words().iter().map(|w| (*w).to_owned()));
        config.fs_name.replace('\\', "\\\\").replace(',', "\\,")
    } else {
        for (on, word) in [
            (config.flags.sync, "sync"),
            (config.flags.dirsync, "dirsync"),
        ] {
            if on {
                extra.push(word.to_owned());
            }
        }
        config.fs_name.clone()
    };
    let mut options = MountOptions::default();
    options
        .fs_name(fs_name)
        .allow_other(config.allow_other || config.allow_root.is_some())
        .default_permissions(config.default_permissions)
        .read_only(config.read_only)
        .sync_read(config.sync_read)
        // With direct_io, mmap(MAP_SHARED) works too (Linux 6.6+; older kernels refuse it).
        .direct_io_allow_mmap(config.direct_io)
        // The server's own kernel clears set-user-ID and set-group-ID bits on write, chown and
        // truncate (sftp-server makes those system calls), so the kernel here need not ask for
        // the mode before each chown (a GETATTR round trip) to clear them itself.
        .handle_killpriv(true)
        // Like sshfs (libfuse 3): mounting over a non-empty directory is allowed.
        .nonempty(true);
    if !extra.is_empty() {
        options.custom_options(extra.join(","));
    }
    let session = Session::new(options);
    let fuse = FuseFs::new(fs, config);
    if config.unprivileged {
        return session.mount_with_unprivileged(fuse, mountpoint).await;
    }
    session.mount(fuse, mountpoint).await
}
