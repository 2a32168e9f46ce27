//! The cache's directories: created private to the user (0700), refused when another user owns
//! one or its group or others may write or enter it, and locked (`flock`) by the one mount that
//! uses a scope's directory, so two mounts never write the same files.

use std::fs::File;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

/// Group and others may not write (the base directory the user names or we default to).
pub const NOT_WRITABLE: u32 = 0o022;
/// Group and others may not enter, read or write (the directories we make inside it).
pub const PRIVATE: u32 = 0o077;

/// Creates `dir` (and its missing parents) with mode 0700 if it does not exist, then checks it
/// ([`check`]) with the mode bits `refused`.
pub fn private_dir(dir: &Path, refused: u32) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    check(dir, refused)
}

/// Fails unless `dir` is a directory (not a symlink) owned by this user with none of the mode
/// bits `refused`.
pub fn check(dir: &Path, refused: u32) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    let refuse = |why: &str| {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("refusing the cache directory {}: {why}", dir.display()),
        ))
    };
    if !meta.is_dir() {
        return refuse("not a directory");
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return refuse(&format!("owned by uid {}, not {me}", meta.uid()));
    }
    if meta.mode() & refused != 0 {
        return refuse(&format!(
            "mode {:o} lets group or others in (chmod 700 it)",
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

/// Takes the exclusive lock of `dir` (its file `lock`) without waiting: `WouldBlock` when
/// another mount holds it. Held until the returned lock is dropped (or the process ends).
pub fn lock(dir: &Path) -> io::Result<Flock<File>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join("lock"))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        let e = io::Error::from(errno);
        match e.kind() {
            io::ErrorKind::WouldBlock => io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is in use by another mount", dir.display()),
            ),
            _ => e,
        }
    })
}
