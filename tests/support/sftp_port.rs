//! OpenSSH's `sftp-server` on a plain loopback TCP port, one server process per connection,
//! for `-o directport` (no SSH at all).

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::process::terminate;

const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

/// Listens on a free 127.0.0.1 port; each connection gets its own `sftp-server -d DIR` with
/// the socket as stdin and stdout. Dropping it stops listening and kills the servers.
pub struct SftpPort {
    port: u16,
    stopped: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    servers: Arc<Mutex<Vec<Child>>>,
    listener: Option<JoinHandle<()>>,
}

impl SftpPort {
    /// Starts listening; the servers start in `dir`.
    pub fn start(dir: &Path) -> SftpPort {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind sftp listener");
        let port = listener.local_addr().expect("sftp listener address").port();
        let stopped = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let servers = Arc::new(Mutex::new(Vec::new()));
        let (stop, count, kids, dir) = (
            Arc::clone(&stopped),
            Arc::clone(&accepted),
            Arc::clone(&servers),
            dir.to_owned(),
        );
        let thread = thread::spawn(move || accept_loop(&listener, &stop, &count, &kids, &dir));
        SftpPort {
            port,
            stopped,
            accepted,
            servers,
            listener: Some(thread),
        }
    }

    /// The port to give as `-o directport=`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Kills every server process: their connections end (the client sees EOF).
    pub fn cut(&self) {
        for child in self.servers.lock().unwrap().iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    stopped: &AtomicBool,
    accepted: &AtomicUsize,
    servers: &Mutex<Vec<Child>>,
    dir: &PathBuf,
) {
    for stream in listener.incoming() {
        if stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        accepted.fetch_add(1, Ordering::SeqCst);
        let input: OwnedFd = stream.into();
        let output = input.try_clone().expect("dup the accepted socket");
        let child = Command::new(SFTP_SERVER)
            .arg("-d")
            .arg(dir)
            .stdin(Stdio::from(input))
            .stdout(Stdio::from(output))
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {SFTP_SERVER}: {e}"));
        servers.lock().unwrap().push(child);
    }
}

impl Drop for SftpPort {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wake the accept() so the thread sees the flag.
        let _ = TcpStream::connect_timeout(
            &(Ipv4Addr::LOCALHOST, self.port).into(),
            Duration::from_secs(1),
        );
        if let Some(t) = self.listener.take() {
            let _ = t.join();
        }
        if let Ok(mut servers) = self.servers.lock() {
            for child in servers.iter_mut() {
                terminate(child, Duration::from_secs(1));
            }
        }
    }
}
