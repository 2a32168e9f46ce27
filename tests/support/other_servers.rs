//! SFTP servers that are not OpenSSH's, each on a free 127.0.0.1 port with its own keys and
//! directory, started by the test and stopped by pid on `Drop`:
//! * ProFTPD's mod_sftp (Debian: proftpd-core, proftpd-mod-crypto), standalone in the
//!   foreground (`proftpd -n`), logging in `root` with a public key;
//! * `rclone serve sftp` (Debian: rclone), in its default mode or with
//!   `--vfs-cache-mode writes`;
//! * an asyncssh SFTP server (Debian: python3-asyncssh), a script of a few lines written to the
//!   server's directory and run by the system's `/usr/bin/python3`.
//!
//! [`OtherServer::mount`] mounts the server's directory with the sshfs-rs binary under test.

use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::Mount;
use super::process::terminate;

const PROFTPD: &str = "/usr/sbin/proftpd";
const MOD_SFTP: &str = "/usr/lib/proftpd/mod_sftp.so";
/// Debian's python3-asyncssh is for the system's interpreter (not one earlier on PATH).
const PYTHON: &str = "/usr/bin/python3";
/// The asyncssh server: `server.py PORT HOSTKEY AUTHORIZED_KEYS`, SFTP only, logins by key.
const ASYNCSSH_SERVER: &str = "\
import asyncio, sys
import asyncssh

async def main(port, host_key, authorized_keys):
    await asyncssh.listen('127.0.0.1', port, server_host_keys=[host_key],
                          authorized_client_keys=authorized_keys,
                          sftp_factory=True, allow_scp=False)
    await asyncio.Event().wait()

asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
";
/// Tries with a new port when another process took the chosen one first.
const START_ATTEMPTS: usize = 3;

/// Which server, and how it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ProFTPD's mod_sftp.
    Proftpd,
    /// `rclone serve sftp` in its default mode (writes only in order).
    Rclone,
    /// `rclone serve sftp --vfs-cache-mode writes` (files uploaded to the directory after close).
    RcloneWrites,
    /// An asyncssh SFTP server (reads SYMLINK in the draft's order).
    Asyncssh,
}

impl Kind {
    /// `Err(what is missing)` when the machine lacks the server.
    pub fn available(self) -> Result<(), String> {
        match self {
            Kind::Proftpd if !Path::new(PROFTPD).exists() || !Path::new(MOD_SFTP).exists() => {
                Err("no ProFTPD with mod_sftp (apt-get install proftpd-core proftpd-mod-crypto, or scripts/install-deps.sh)".into())
            }
            Kind::Rclone | Kind::RcloneWrites if !on_path("rclone") => {
                Err("no rclone (apt-get install rclone, or scripts/install-deps.sh)".into())
            }
            Kind::Asyncssh if !has_asyncssh() => Err(
                "no python3-asyncssh (apt-get install python3-asyncssh, or scripts/install-deps.sh)"
                    .into(),
            ),
            _ => Ok(()),
        }
    }
}

fn has_asyncssh() -> bool {
    Command::new(PYTHON)
        .args(["-c", "import asyncssh"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// A running server. Dropping it stops the server (by its pid) and removes its files.
pub struct OtherServer {
    kind: Kind,
    child: Child,
    port: u16,
    base: TempDir,
}

impl OtherServer {
    /// Starts `kind` and waits (at most 10 s) until it answers with an SSH banner.
    pub fn start(kind: Kind) -> OtherServer {
        for attempt in 1..=START_ATTEMPTS {
            let base = tempfile::Builder::new()
                .prefix("sshfs-rs-other-")
                .tempdir()
                .expect("temp dir for the server");
            let dir = base.path();
            fs::create_dir(dir.join("data")).unwrap();
            fs::create_dir(dir.join("home")).unwrap();
            keygen(&["-t", "ecdsa", "-m", "PEM"], &dir.join("hostkey"));
            keygen(&["-t", "ed25519"], &dir.join("userkey"));
            let port = free_port();
            let child = match kind {
                Kind::Proftpd => spawn_proftpd(dir, port),
                Kind::Rclone | Kind::RcloneWrites => spawn_rclone(dir, port, kind),
                Kind::Asyncssh => spawn_asyncssh(dir, port),
            };
            let mut server = OtherServer {
                kind,
                child,
                port,
                base,
            };
            match server.wait_ready() {
                Ok(()) => {
                    server.write_known_hosts();
                    return server;
                }
                // Another process may have taken the port first: a new one (Drop stops this).
                Err(why) if attempt < START_ATTEMPTS => {
                    eprintln!("{kind:?} did not start on port {port} ({why}); trying another");
                }
                Err(why) => panic!("{kind:?} did not start: {why}\n{}", server.log()),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// The server's directory, as on its disk.
    pub fn data(&self) -> PathBuf {
        self.base.path().join("data")
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        ["out.log", "sftp.log", "system.log"]
            .iter()
            .filter_map(|f| fs::read_to_string(self.base.path().join(f)).ok())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Mounts the server's directory with sshfs-rs (key, known_hosts, `extra` options).
    pub fn mount(&self, extra: &[&str]) -> Mount {
        let dir = self.base.path();
        let remote = match self.kind {
            Kind::Proftpd | Kind::Asyncssh => self.data().to_string_lossy().into_owned(),
            // rclone serves its directory as the root.
            Kind::Rclone | Kind::RcloneWrites => "/".into(),
        };
        let options = format!(
            "IdentityFile={},UserKnownHostsFile={},StrictHostKeyChecking=yes,BatchMode=yes",
            dir.join("userkey").display(),
            dir.join("known_hosts").display()
        );
        let port = self.port.to_string();
        let mut args = vec!["-F", "/dev/null", "-p", &port, "-o", &options];
        args.extend_from_slice(extra);
        Mount::start_plain(
            &format!("root@127.0.0.1:{remote}"),
            &args,
            &dir.join("home"),
            &[],
        )
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}"));
            }
            if let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut banner = [0u8; 4];
                if s.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("no SSH banner within 10 s".into())
    }

    fn write_known_hosts(&self) {
        let dir = self.base.path();
        let key = fs::read_to_string(dir.join("hostkey.pub")).unwrap();
        let key: Vec<&str> = key.split_whitespace().take(2).collect();
        let line = format!("[127.0.0.1]:{} {}\n", self.port, key.join(" "));
        fs::write(dir.join("known_hosts"), line).unwrap();
    }
}

impl Drop for OtherServer {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(3));
    }
}

fn keygen(args: &[&str], file: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-N", ""])
        .args(args)
        .arg("-f")
        .arg(file)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen");
    assert!(status.success(), "ssh-keygen {args:?} failed");
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

fn log_file(dir: &Path) -> fs::File {
    fs::File::create(dir.join("out.log")).expect("server log file")
}

fn spawn_proftpd(dir: &Path, port: u16) -> Child {
    // RFC 4716 form of the user's key, as SFTPAuthorizedUserKeys wants it.
    let rfc4716 = Command::new("ssh-keygen")
        .arg("-e")
        .arg("-f")
        .arg(dir.join("userkey.pub"))
        .output()
        .expect("ssh-keygen -e");
    fs::write(dir.join("authorized_keys"), rfc4716.stdout).unwrap();
    let d = dir.display();
    let conf = format!(
        "ServerType standalone\n\
         DefaultServer on\n\
         Port {port}\n\
         DefaultAddress 127.0.0.1\n\
         SocketBindTight on\n\
         UseIPv6 off\n\
         User root\n\
         Group root\n\
         RootLogin on\n\
         UseFtpUsers off\n\
         RequireValidShell off\n\
         WtmpLog off\n\
         DelayTable none\n\
         TransferLog none\n\
         PidFile {d}/proftpd.pid\n\
         ScoreboardFile {d}/scoreboard\n\
         SystemLog {d}/system.log\n\
         AllowOverwrite on\n\
         AllowStoreRestart on\n\
         LoadModule mod_sftp.c\n\
         SFTPEngine on\n\
         SFTPLog {d}/sftp.log\n\
         SFTPHostKey {d}/hostkey\n\
         SFTPAuthorizedUserKeys file:{d}/authorized_keys\n\
         SFTPAuthMethods publickey\n"
    );
    fs::write(dir.join("proftpd.conf"), conf).unwrap();
    let log = log_file(dir);
    Command::new(PROFTPD)
        .arg("-n")
        .arg("-c")
        .arg(dir.join("proftpd.conf"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start proftpd")
}

fn spawn_rclone(dir: &Path, port: u16, kind: Kind) -> Child {
    fs::copy(dir.join("userkey.pub"), dir.join("authorized_keys")).unwrap();
    let log = log_file(dir);
    let mut cmd = Command::new("rclone");
    cmd.arg("serve")
        .arg("sftp")
        .arg(dir.join("data"))
        .arg("--addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--key")
        .arg(dir.join("hostkey"))
        .arg("--authorized-keys")
        .arg(dir.join("authorized_keys"))
        .arg("--config")
        .arg("/dev/null")
        .arg("--cache-dir")
        .arg(dir.join("cache"));
    if kind == Kind::RcloneWrites {
        cmd.args(["--vfs-cache-mode", "writes", "--vfs-write-back", "0s"]);
    }
    cmd.env("HOME", dir.join("home"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start rclone")
}

fn spawn_asyncssh(dir: &Path, port: u16) -> Child {
    fs::copy(dir.join("userkey.pub"), dir.join("authorized_keys")).unwrap();
    fs::write(dir.join("server.py"), ASYNCSSH_SERVER).unwrap();
    let log = log_file(dir);
    Command::new(PYTHON)
        .args(["-W", "ignore"])
        .arg(dir.join("server.py"))
        .arg(port.to_string())
        .arg(dir.join("hostkey"))
        .arg(dir.join("authorized_keys"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start the asyncssh server")
}
