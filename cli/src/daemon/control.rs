//! `sshfs-rs --flush MNT` and `sshfs-rs --stats MNT`: talking to a running mount.
//!
//! Each mount listens on a Unix socket named after its mountpoint, in a directory only its user
//! can enter (`/run/sshfs-rs` for root, `$XDG_RUNTIME_DIR/sshfs-rs` or `/tmp/sshfs-rs-UID`
//! otherwise). A client sends one line, `flush` or `stats`, and reads one line back. A socket
//! rather than a signal: the command needs no pid, works for the mount's own user only, and
//! answers (the counters, or that the caches were dropped).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sshfs_client::fs::SshFs;
use sshfs_client::os_message::os_message;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

/// How long a client waits for the mount's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// What a client asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Drop every cache now.
    Flush,
    /// The request and cache counters.
    Stats,
}

impl Request {
    fn word(self) -> &'static str {
        match self {
            Request::Flush => "flush",
            Request::Stats => "stats",
        }
    }
}

/// The directory holding this user's control sockets.
fn socket_dir() -> PathBuf {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        return PathBuf::from("/run/sshfs-rs");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("sshfs-rs"),
        _ => PathBuf::from(format!("/tmp/sshfs-rs-{uid}")),
    }
}

/// The control socket of the mount on `mountpoint` (an absolute, canonical path).
pub fn socket_path(mountpoint: &Path) -> PathBuf {
    // FNV-1a: a short, stable name for any path (socket names are limited to ~100 bytes).
    let hash = mountpoint
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    socket_dir().join(format!("{hash:016x}.sock"))
}

/// The daemon's side: listens on the mount's control socket until the returned guard is
/// dropped (which removes the socket file).
pub fn listen(mountpoint: &Path, fs: Arc<SshFs>) -> Result<SocketGuard, String> {
    let path = socket_path(mountpoint);
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    // A socket left by a mount that was killed is stale: the mountpoint was checked free.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)
        .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let fs = Arc::clone(&fs);
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                let mut read = tokio::io::BufReader::new(read);
                if read.read_line(&mut line).await.is_err() {
                    return;
                }
                let answer = match line.trim() {
                    "flush" => {
                        fs.flush_caches();
                        "flushed".to_owned()
                    }
                    "stats" => fs.stats_line(),
                    other => format!("unknown request {other:?}"),
                };
                let _ = write.write_all(format!("{answer}\n").as_bytes()).await;
            });
        }
    });
    Ok(SocketGuard { path, task })
}

/// Removes the control socket when the mount ends.
pub struct SocketGuard {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The client's side: sends `request` to the mount on `mountpoint` and returns its answer.
pub fn ask(mountpoint: &Path, request: Request) -> Result<String, String> {
    let shown = mountpoint.display();
    let abs = canonical_without_entering(mountpoint).map_err(|e| format!("{shown}: {e}"))?;
    let mut path = socket_path(&abs);
    if !path.exists() {
        // The mountpoint was named through a symlink: the daemon knows it by its real path
        // (resolving it asks the mount itself, so only when needed).
        if let Ok(real) = std::fs::canonicalize(mountpoint) {
            path = socket_path(&real);
        }
    }
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
        format!(
            "{shown}: no sshfs-rs mount of this user there ({}: {})",
            path.display(),
            os_message(&e)
        )
    })?;
    let _ = stream.set_read_timeout(Some(ANSWER_TIMEOUT));
    stream
        .write_all(format!("{}\n", request.word()).as_bytes())
        .map_err(|e| format!("{shown}: {e}"))?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| format!("{shown}: no answer from the mount: {e}"))?;
    Ok(answer.trim_end().to_owned())
}

/// The canonical path of `mountpoint` without resolving (so without a `stat` of) its last
/// component: that is the mount's root, and a mount waiting for its server would make
/// `--stats` and `--flush` wait too.
fn canonical_without_entering(mountpoint: &Path) -> std::io::Result<PathBuf> {
    let absolute = std::path::absolute(mountpoint)?;
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => Ok(std::fs::canonicalize(parent)?.join(name)),
        _ => Ok(absolute),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_names_are_stable_and_distinct() {
        let a = socket_path(Path::new("/mnt/a"));
        assert_eq!(a, socket_path(Path::new("/mnt/a")));
        assert_ne!(a, socket_path(Path::new("/mnt/b")));
        assert!(a.to_string_lossy().len() < 100, "fits a socket address");
    }
}
