//! OpenSSH's own `sftp-server` program as a [`ServeSftp`]: each session runs one child
//! process, its stdin and stdout pumped to the session's in-process stream, as sshd runs the
//! subsystem for each SFTP channel. The child starts in a test's directory (`-d DIR`, and as
//! its working directory) and is killed (and reaped) when its session ends.
//!
//! Why: the in-memory servers answer as their authors understood OpenSSH; this one is OpenSSH.
//! Faults composed over it ([`super::faults`]) and files checked directly in its directory
//! show our engine against the real thing, still with no network, no sshd and no root.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::DuplexStream;
use tokio::process::Command;

use super::{PIPE_BUFFER, ServeSftp};

/// Where Debian and Ubuntu install OpenSSH's SFTP server.
pub(crate) const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

/// OpenSSH's `sftp-server`, one process per session, started in `dir`.
pub(crate) struct SftpServerProcess {
    program: PathBuf,
    dir: PathBuf,
    /// Children alive now.
    running: Arc<AtomicUsize>,
    /// Sessions started (processes spawned).
    started: AtomicUsize,
}

impl SftpServerProcess {
    /// A server starting its sessions in `dir`; `None` (after printing why the test is
    /// skipped) if [`SFTP_SERVER`] is not installed.
    pub(crate) fn new(dir: &Path) -> Option<Arc<SftpServerProcess>> {
        if !Path::new(SFTP_SERVER).exists() {
            println!("skipped: {SFTP_SERVER} not found (apt-get install openssh-server)");
            return None;
        }
        Some(Arc::new(SftpServerProcess {
            program: SFTP_SERVER.into(),
            dir: dir.to_owned(),
            running: Arc::new(AtomicUsize::new(0)),
            started: AtomicUsize::new(0),
        }))
    }

    /// The directory sessions start in (what `realpath(".")` answers).
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// `sftp-server` processes alive now.
    pub(crate) fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// `sftp-server` processes started so far.
    pub(crate) fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }
}

impl ServeSftp for SftpServerProcess {
    fn open_session(&self, _connection: u64, _channel: usize) -> DuplexStream {
        let (client, ours) = tokio::io::duplex(PIPE_BUFFER);
        let child = Command::new(&self.program)
            .arg("-d")
            .arg(&self.dir)
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn();
        match child {
            Ok(child) => {
                self.started.fetch_add(1, Ordering::SeqCst);
                self.running.fetch_add(1, Ordering::SeqCst);
                let running = Running(Arc::clone(&self.running));
                tokio::spawn(serve(child, ours, running));
            }
            // `ours` is dropped: the client reads the end of the stream at once.
            Err(e) => eprintln!("cannot start {}: {e}", self.program.display()),
        }
        client
    }
}

/// Counts one child alive until dropped.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Pumps `stream` to the child's stdin and its stdout to `stream` until either side ends,
/// then kills the child and waits for it.
async fn serve(mut child: tokio::process::Child, stream: DuplexStream, running: Running) {
    let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return;
    };
    let (mut rd, mut wr) = tokio::io::split(stream);
    tokio::select! {
        _ = tokio::io::copy(&mut rd, &mut stdin) => {}
        _ = tokio::io::copy(&mut stdout, &mut wr) => {}
    }
    drop((stdin, stdout, rd, wr));
    let _ = child.start_kill();
    let _ = child.wait().await;
    drop(running);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::testing::{StreamConnector, quick_reconnect};

    /// Our engine over the real sftp-server: a file written through it is in the directory,
    /// and the process goes away with the session.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_real_sftp_server_serves_our_engine_and_ends_with_its_session() {
        let dir = tempfile::tempdir().unwrap();
        let Some(server) = SftpServerProcess::new(dir.path()) else {
            return;
        };
        std::fs::write(dir.path().join("f"), b"hello").unwrap();
        let connector = StreamConnector::new(server.clone());
        let sftp = connector.connect_sftp(quick_reconnect()).await;
        assert!(sftp.has_extension("posix-rename@openssh.com"));
        assert_eq!(sftp.read_len(), 261_120, "limits@openssh.com was read");
        let cwd = sftp.realpath(".").await.unwrap();
        assert_eq!(Path::new(&cwd), dir.path().canonicalize().unwrap());
        let path = format!("{cwd}/f");
        assert_eq!(sftp.lstat(&path).await.unwrap().size, Some(5));
        assert_eq!((server.running(), server.started()), (1, 1));
        drop(sftp);
        for _ in 0..200 {
            if server.running() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(server.running(), 0, "the process outlived its session");
    }
}
