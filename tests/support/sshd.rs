//! A private OpenSSH server for one test.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;

use super::process::{descendants, is_reaped, proc_stat, still_running, terminate};
use super::wait_until;

const SSHD: &str = "/usr/sbin/sshd";
const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";
const PRIVSEP_DIR: &str = "/run/sshd";
const START_TIMEOUT: Duration = Duration::from_secs(10);
const START_ATTEMPTS: usize = 5;

/// Options for [`Sshd::start_with`].
#[derive(Debug, Clone, Default)]
pub struct SshdOptions {
    /// Sets `PasswordAuthentication yes` (default: no).
    pub password_auth: bool,
    /// Raw `sshd_config` text placed *before* the harness defaults. sshd uses
    /// the first value it reads for a keyword, so these lines win. It must not
    /// contain `Match` blocks or a second `Subsystem sftp`.
    pub extra_config: String,
    /// Runs `sftp-server -l DEBUG3` with its log in a file ([`Sshd::sftp_log`]): every request
    /// it receives, with the handle it names (`-1` for a handle it does not hold).
    pub sftp_debug_log: bool,
}

/// A running `sshd -D` on a free 127.0.0.1 port with fresh host and user keys,
/// all in a temp dir. Dropping it kills sshd and its sessions and removes the dir.
pub struct Sshd {
    dir: TempDir,
    base: PathBuf,
    child: Child,
    port: u16,
    root_dir: PathBuf,
    home: PathBuf,
    user_key: PathBuf,
    known_hosts: PathBuf,
    host_pubkey: String,
    log: PathBuf,
    sftp_log: PathBuf,
}

/// Why a started sshd did not become ready.
enum NotReady {
    /// It lost a race for its port to another process; worth retrying.
    PortTaken,
    /// Anything else, with a description.
    Failed(String),
}

impl Sshd {
    /// Starts sshd with the default [`SshdOptions`] (public key auth only) and
    /// waits (at most 10 s) until it answers with an SSH banner.
    pub fn start() -> Sshd {
        Sshd::start_with(SshdOptions::default())
    }

    /// Starts sshd with `opts`, retrying with a new port if another process
    /// grabbed the chosen one first. Panics with sshd's log on failure.
    pub fn start_with(opts: SshdOptions) -> Sshd {
        fs::create_dir_all(PRIVSEP_DIR).expect("create sshd privilege separation dir /run/sshd");
        for attempt in 1..=START_ATTEMPTS {
            let sshd = Sshd::spawn(&opts);
            match sshd.wait_ready() {
                Ok(()) => return sshd,
                Err(NotReady::PortTaken) if attempt < START_ATTEMPTS => continue,
                Err(NotReady::PortTaken) => panic!(
                    "sshd: no free port after {attempt} attempts:\n{}",
                    sshd.log()
                ),
                Err(NotReady::Failed(why)) => {
                    panic!("sshd did not start: {why}\nsshd log:\n{}", sshd.log())
                }
            }
        }
        unreachable!("the last attempt always returns or panics")
    }

    /// The port sshd listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Server-side directory for tests to mount and to inspect directly.
    pub fn root_dir(&self) -> &Path {
        &self.root_dir
    }

    /// Unencrypted ed25519 private key authorized for `root`.
    pub fn user_key(&self) -> &Path {
        &self.user_key
    }

    /// known_hosts file holding `[127.0.0.1]:PORT ssh-ed25519 ...` for this server.
    pub fn known_hosts(&self) -> &Path {
        &self.known_hosts
    }

    /// Adds `[127.0.0.1]:PORT` for this host key to `known_hosts()` (idempotent),
    /// so clients reaching this server through another port (a [`FaultProxy`](super::FaultProxy)) trust it.
    pub fn trust_port(&self, port: u16) {
        let line = format!("[127.0.0.1]:{port} {}\n", self.host_pubkey);
        let mut text = fs::read_to_string(&self.known_hosts).expect("read known_hosts");
        if !text.contains(&line) {
            text.push_str(&line);
            fs::write(&self.known_hosts, text).expect("write known_hosts");
        }
    }

    /// The `ssh-ed25519 AAAA...` text of the host key (no comment).
    pub fn host_pubkey_line(&self) -> String {
        self.host_pubkey.clone()
    }

    /// An empty HOME for client processes, so they never read the real `~/.ssh`.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Pids of the `sftp-server` processes descended from this sshd.
    pub fn sftp_server_pids(&self) -> Vec<i32> {
        descendants(self.child.id() as i32)
            .into_iter()
            .filter(|p| p.comm == "sftp-server" && p.state != 'Z')
            .map(|p| p.pid)
            .collect()
    }

    /// What `sftp-server` logged so far (empty unless started with
    /// [`SshdOptions::sftp_debug_log`]).
    pub fn sftp_log(&self) -> String {
        fs::read_to_string(&self.sftp_log).unwrap_or_default()
    }

    /// Stops sshd and every session it serves (as a server going down does), keeping its
    /// directory, keys and port for [`Sshd::start_again`].
    ///
    /// The sshd of [`Sshd::start_again`] is spawned here already, as a shell waiting for a line
    /// on its stdin before it execs sshd: a process spawned from this test process closes, at its
    /// exec(), every file of a mount that any test of the process holds, and each such close
    /// waits for that file's FLUSH. While another test's mount is cut off (or this one is, with a
    /// write of its own in flight) that takes seconds. The shell holds no such file, so the
    /// restart itself is immediate.
    pub fn stop(&mut self) {
        self.kill_all();
        self.child = Self::run_sshd_after_a_line(&self.base, &self.log);
    }

    /// Starts sshd again after [`Sshd::stop`]: same port, keys and files. The first attempt
    /// releases the sshd that [`Sshd::stop`] left waiting; a retry (the port taken meanwhile)
    /// spawns a new one from this process.
    pub fn start_again(&mut self) {
        let mut why = String::new();
        for attempt in 0..START_ATTEMPTS {
            match self.child.stdin.take() {
                Some(mut waiting) if attempt == 0 => {
                    waiting
                        .write_all(b"go\n")
                        .expect("release the sshd waiting since stop()");
                }
                _ => self.child = Self::run_sshd(&self.base, &self.log),
            }
            why = match self.wait_ready() {
                Ok(()) => return,
                Err(NotReady::PortTaken) => "its port was taken meanwhile".to_owned(),
                Err(NotReady::Failed(why)) => why,
            };
            terminate(&mut self.child, Duration::from_secs(2));
        }
        panic!("sshd did not start again: {why}\nsshd log:\n{}", self.log());
    }

    /// Lets every local user log in with [`Sshd::user_key`] (sshd reads `authorized_keys` as
    /// the user logging in): the temp dir becomes enterable (711) and `authorized_keys`
    /// readable (644); private keys stay root's.
    pub fn let_users_log_in(&self) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&self.base, fs::Permissions::from_mode(0o711))
            .expect("chmod 711 sshd temp dir");
        fs::set_permissions(
            self.base.join("authorized_keys"),
            fs::Permissions::from_mode(0o644),
        )
        .expect("chmod 644 authorized_keys");
    }

    /// The temp dir holding keys, config, log, `root_dir()` and `home()`.
    pub fn temp_dir(&self) -> &Path {
        &self.base
    }

    /// Creates a temp dir with keys and config for a fresh port and spawns sshd.
    fn spawn(opts: &SshdOptions) -> Sshd {
        let dir = tempfile::Builder::new()
            .prefix("sshfs-rs-sshd-")
            .tempdir()
            .expect("create sshd temp dir");
        let base = dir
            .path()
            .canonicalize()
            .expect("canonicalize sshd temp dir");
        let (root_dir, home) = (base.join("root"), base.join("home"));
        fs::create_dir(&root_dir).expect("create sshd root_dir");
        fs::create_dir(&home).expect("create client home");

        let host_key = base.join("host_ed25519");
        let user_key = base.join("id_ed25519");
        let host_pubkey = keygen(&host_key);
        fs::write(base.join("authorized_keys"), keygen(&user_key) + "\n")
            .expect("write authorized_keys");

        let port = free_port();
        let known_hosts = base.join("known_hosts");
        fs::write(&known_hosts, format!("[127.0.0.1]:{port} {host_pubkey}\n"))
            .expect("write known_hosts");
        let config = base.join("sshd_config");
        fs::write(&config, sshd_config(opts, &base, port)).expect("write sshd_config");

        let log = base.join("sshd.log");
        let sftp_log = base.join("sftp-server.log");
        let child = Self::run_sshd(&base, &log);
        Sshd {
            dir,
            base,
            child,
            port,
            root_dir,
            home,
            user_key,
            known_hosts,
            host_pubkey,
            log,
            sftp_log,
        }
    }

    /// Runs `sshd -D -e -f BASE/sshd_config`, its stderr appended to `log`.
    fn run_sshd(base: &Path, log: &Path) -> Child {
        Self::spawn_sshd(base, log, false)
    }

    /// Spawns `sh`, which reads one line from its (piped) stdin and then execs
    /// `sshd -D -e -f BASE/sshd_config` in its place (same pid), stderr appended to `log`.
    fn run_sshd_after_a_line(base: &Path, log: &Path) -> Child {
        Self::spawn_sshd(base, log, true)
    }

    fn spawn_sshd(base: &Path, log: &Path, after_a_line: bool) -> Child {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open sshd.log");
        let config = base.join("sshd_config");
        let mut command = match after_a_line {
            false => Command::new(SSHD),
            true => Command::new("sh"),
        };
        if after_a_line {
            command
                .arg("-c")
                .arg(r#"read go && exec "$0" -D -e -f "$1""#)
                .arg(SSHD)
                .arg(config)
                .stdin(Stdio::piped());
        } else {
            command
                .args(["-D", "-e", "-f"])
                .arg(config)
                .stdin(Stdio::null());
        }
        command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {SSHD}: {e}"))
    }

    /// Waits until the port answers with an SSH banner from our (still running) sshd.
    fn wait_ready(&self) -> Result<(), NotReady> {
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        while Instant::now() < deadline {
            if !self.is_running() {
                let log = self.log();
                return Err(if log.contains("Address already in use") {
                    NotReady::PortTaken
                } else {
                    NotReady::Failed("sshd exited".into())
                });
            }
            if let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut banner = [0u8; 4];
                if stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-" && self.is_running()
                {
                    return Ok(());
                }
            }
            sleep(Duration::from_millis(20));
        }
        Err(NotReady::Failed(format!(
            "port {} not ready within {START_TIMEOUT:?}",
            self.port
        )))
    }

    fn is_running(&self) -> bool {
        proc_stat(self.child.id() as i32).is_some_and(|p| p.state != 'Z')
    }

    /// sshd's stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log)
            .unwrap_or_else(|e| format!("<cannot read {}: {e}>", self.log.display()))
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill_all();
        // `dir` (a TempDir) is removed when the fields drop.
    }
}

impl Sshd {
    fn kill_all(&mut self) {
        let root = self.child.id() as i32;
        // Stop sessions children first, so each parent is alive to reap its child,
        // then let sshd reap its own children before stopping it: nothing is orphaned.
        for p in descendants(root).iter().rev().filter(|p| still_running(p)) {
            let _ = kill(Pid::from_raw(p.pid), Signal::SIGTERM);
            if !wait_until(Duration::from_secs(1), || !still_running(p)) {
                let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
            }
            wait_until(Duration::from_millis(500), || is_reaped(p));
        }
        wait_until(Duration::from_secs(2), || descendants(root).is_empty());
        terminate(&mut self.child, Duration::from_secs(2));
    }
}

/// Generates an unencrypted ed25519 key at `path`; returns its "ssh-ed25519 AAAA..." public part.
fn keygen(path: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = fs::read_to_string(path.with_extension("pub")).expect("read generated public key");
    public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A port that was free a moment ago (bind 127.0.0.1:0, read it, close).
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("local_addr of probe socket")
        .port()
}

fn sshd_config(opts: &SshdOptions, base: &Path, port: u16) -> String {
    let password = if opts.password_auth { "yes" } else { "no" };
    // sshd runs a subsystem through the user's shell, so a redirection works; `exec` keeps
    // the process named sftp-server (see `sftp_server_pids`).
    let sftp = if opts.sftp_debug_log {
        format!(
            "exec {SFTP_SERVER} -e -l DEBUG3 2>>{}",
            base.join("sftp-server.log").display()
        )
    } else {
        SFTP_SERVER.to_owned()
    };
    format!(
        "{extra}
ListenAddress 127.0.0.1:{port}
HostKey {base}/host_ed25519
PidFile none
PermitRootLogin yes
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication {password}
KbdInteractiveAuthentication no
AuthorizedKeysFile {base}/authorized_keys
Subsystem sftp {sftp}
LogLevel ERROR
",
        extra = opts.extra_config,
        base = base.display(),
    )
}
