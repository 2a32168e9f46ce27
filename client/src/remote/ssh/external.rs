//! SFTP spoken over something other than our own SSH connection, as the C sshfs can:
//!
//! * `-o ssh_command`: the stdin and stdout of a program, normally OpenSSH's
//!   `ssh ... host -s sftp`, so that whatever ssh can do and we cannot (GSSAPI, FIDO keys,
//!   ControlMaster, its own config) works. The program checks the host key and logs in; its
//!   stderr goes to our log, and its last line is the error when the first connect fails.
//! * `-o directport`: a plain TCP connection to a port where an SFTP server listens. No SSH:
//!   nothing is encrypted and nothing authenticated.
//! * `-o passive`: our own stdin and stdout, already connected to an SFTP server (no
//!   reconnect).
//!
//! Each is a [`Connector`]: a reconnect runs the program again (or connects again; stdin and
//! stdout cannot be), so the layers above see the same sessions as over SSH. Each connection
//! carries one SFTP channel: a second one would be a second program with a second login (over
//! SSH the extra channels only lift sshd's per-channel window, which a plain TCP port does not
//! have).

use crate::os_message::os_message;
use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use russh_sftp::client::RawSftpSession;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};
use tokio::process::{ChildStderr, Command};

use crate::remote::sftp::Sftp;
use crate::remote::sftp::link::{ConnectFailure, Connected, Connector};

/// How the SFTP stream is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum External {
    /// `-o ssh_command`: run this program with these arguments (no shell); its stdin and
    /// stdout carry SFTP.
    Command(Vec<String>),
    /// `-o directport`: a TCP connection to `host:port`, SFTP straight on it.
    Port {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// `-o passive`: our own stdin and stdout, connected to an SFTP server by whoever started
    /// us. Only once: there is nothing to reconnect to.
    Stdio,
}

impl std::fmt::Display for External {
    /// How the mount reaches its server, for log lines.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            External::Command(argv) => {
                write!(f, "{}", argv.first().map_or("ssh_command", String::as_str))
            }
            External::Port { host, port } => write!(f, "plain TCP to {host} port {port}"),
            External::Stdio => write!(f, "stdin and stdout"),
        }
    }
}

/// Everything needed to connect through an [`External`].
#[derive(Debug, Clone)]
pub struct ExternalOptions {
    /// The program or the port.
    pub how: External,
    /// The server as the user named it, for messages.
    pub host: String,
    /// Deadline for each SFTP request.
    pub request_deadline: Duration,
    /// Bound on one connect (`ConnectTimeout`): the TCP connect of `directport`, and each
    /// reconnect attempt (otherwise 15 s). The first run of a command is not bounded: ssh
    /// applies its own ConnectTimeout, and it may be waiting for a passphrase or a key touch.
    pub connect_timeout: Option<Duration>,
}

/// A live SFTP session over an [`External`], with what a reconnect needs.
pub struct ExternalConnection {
    /// The SFTP request engine.
    pub sftp: Arc<Sftp>,
    again: ExternalConnector,
}

impl ExternalConnection {
    /// Opens new sessions the same way when this one dies (the command run again).
    pub fn reconnector(&self) -> Arc<dyn Connector> {
        Arc::new(self.again.clone())
    }
}

/// How long one reconnect attempt may take when no ConnectTimeout is set.
const RECONNECT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long SFTP's INIT may take once the TCP connection of `directport` is up.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);
/// After a command's stream ended: how long to wait for its exit status and last words.
const LAST_WORDS_TIMEOUT: Duration = Duration::from_secs(3);
/// Lines of the command's stderr kept for the error message.
const KEPT_LINES: usize = 8;

/// Connects through `opts` and starts SFTP. The error is one line for the user: for a
/// command, the last line it wrote to stderr (ssh's own message, e.g. `ssh: Could not resolve
/// hostname ...`).
pub async fn connect(opts: &ExternalOptions) -> Result<ExternalConnection, String> {
    let o = open(opts).await.map_err(|f| f.message)?;
    let sftp = Sftp::new(o.raw, o.limits, o.extensions, opts.request_deadline);
    // The stream lives as long as the session's reader task; the child dies with `keep`.
    sftp.keep_with_first_session(o.keep);
    Ok(ExternalConnection {
        sftp,
        again: ExternalConnector { opts: opts.clone() },
    })
}

/// See [`ExternalConnection::reconnector`].
#[derive(Clone)]
struct ExternalConnector {
    opts: ExternalOptions,
}

impl Connector for ExternalConnector {
    fn connect(&self) -> BoxFuture<'static, Result<Connected, ConnectFailure>> {
        let opts = self.opts.clone();
        Box::pin(async move {
            let bound = opts.connect_timeout.unwrap_or(RECONNECT_ATTEMPT_TIMEOUT);
            let Ok(opened) = tokio::time::timeout(bound, open(&opts)).await else {
                return Err(ConnectFailure::Retry(format!(
                    "no SFTP session within {} s",
                    bound.as_secs()
                )));
            };
            match opened {
                Ok(o) => Ok(Connected {
                    raw: o.raw,
                    keep: o.keep,
                    channels: None,
                }),
                Err(f) => Err(match f.kind {
                    Kind::Retry => ConnectFailure::Retry(f.message),
                    Kind::Auth => ConnectFailure::Auth(f.message),
                    Kind::Fatal => ConnectFailure::Fatal(f.message),
                }),
            }
        })
    }
}

/// Why opening failed, and whether trying again may help.
struct Failure {
    message: String,
    kind: Kind,
}

enum Kind {
    Retry,
    Auth,
    Fatal,
}

impl Failure {
    fn retry(message: String) -> Failure {
        Failure {
            message,
            kind: Kind::Retry,
        }
    }
}

/// What [`open`] brings up.
struct Opened {
    raw: RawSftpSession,
    limits: Option<(u64, u64)>,
    extensions: Vec<String>,
    /// The child process (killed when dropped), or nothing.
    keep: Box<dyn Send + Sync>,
}

async fn open(opts: &ExternalOptions) -> Result<Opened, Failure> {
    match &opts.how {
        External::Command(argv) => open_command(argv, &opts.host).await,
        External::Port { host, port } => open_port(host, *port, opts.connect_timeout).await,
        External::Stdio => open_stdio().await,
    }
}

/// Speaks SFTP over our stdin and stdout (the first connection only).
async fn open_stdio() -> Result<Opened, Failure> {
    static TAKEN: AtomicBool = AtomicBool::new(false);
    let fatal = |message: String| Failure {
        message,
        kind: Kind::Fatal,
    };
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Err(fatal(
            "passive: stdin and stdout cannot be connected again".to_owned(),
        ));
    }
    // Files, not tokio's stdout: std's stdout holds binary data back until a newline.
    let dup = |fd: std::os::fd::BorrowedFd<'_>| {
        fd.try_clone_to_owned()
            .map(|fd| tokio::fs::File::from_std(std::fs::File::from(fd)))
            .map_err(|e| {
                fatal(format!(
                    "passive: cannot use stdin and stdout: {}",
                    os_message(&e)
                ))
            })
    };
    let input = dup(std::io::stdin().as_fd())?;
    let output = dup(std::io::stdout().as_fd())?;
    let (raw, limits, extensions) = start_sftp(tokio::io::join(input, output), Some(INIT_TIMEOUT))
        .await
        .map_err(|why| fatal(format!("sftp over stdin and stdout (passive): {why}")))?;
    Ok(Opened {
        raw,
        limits,
        extensions,
        keep: Box::new(()),
    })
}

/// Runs the command and speaks SFTP over its stdin and stdout.
async fn open_command(argv: &[String], host: &str) -> Result<Opened, Failure> {
    let Some((program, args)) = argv.split_first() else {
        return Err(Failure {
            message: "ssh_command is empty".to_owned(),
            kind: Kind::Fatal,
        });
    };
    tracing::debug!("running {argv:?}");
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // As sshfs: the child never holds a directory that may be under the mount.
        .current_dir("/")
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Failure {
            message: format!("cannot run ssh_command '{program}': {}", os_message(&e)),
            kind: Kind::Fatal,
        })?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(Failure::retry(format!(
            "no pipes to ssh_command '{program}'"
        )));
    };
    let mut words = LastWords::follow(stderr, program);
    let stream = tokio::io::join(stdout, stdin);
    match start_sftp(stream, None).await {
        Ok((raw, limits, extensions)) => {
            words.connected();
            Ok(Opened {
                raw,
                limits,
                extensions,
                // kill_on_drop: the child dies with the session.
                keep: Box::new(Mutex::new(child)),
            })
        }
        Err(why) => {
            // Usually the program ended (ssh could not connect or log in): its exit status and
            // its last line on stderr say why, better than the SFTP layer can.
            let status = tokio::time::timeout(LAST_WORDS_TIMEOUT, child.wait()).await;
            words.finished().await;
            let status = match status {
                Ok(Ok(status)) => Some(status),
                _ => None,
            };
            Err(words.failure(program, host, status, &why))
        }
    }
}

/// Connects to the port and speaks SFTP on the TCP stream.
async fn open_port(host: &str, port: u16, bound: Option<Duration>) -> Result<Opened, Failure> {
    let connect = async {
        let addrs: Vec<_> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| {
                Failure::retry(format!(
                    "sftp: Could not resolve hostname {host}: Name or service not known"
                ))
            })?
            .collect();
        let mut last = None;
        for addr in addrs {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(tcp) => return Ok(tcp),
                Err(e) => last = Some(e),
            }
        }
        Err(Failure::retry(format!(
            "sftp: connect to host {host} port {port} (directport): {}",
            last.map_or_else(|| "no address".to_owned(), |e| os_message(&e))
        )))
    };
    let tcp = match bound {
        Some(t) => tokio::time::timeout(t, connect).await.map_err(|_| {
            Failure::retry(format!(
                "sftp: connect to host {host} port {port} (directport): Connection timed out after {} s",
                t.as_secs()
            ))
        })?,
        None => connect.await,
    }?;
    let _ = tcp.set_nodelay(true);
    let (raw, limits, extensions) = start_sftp(tcp, Some(INIT_TIMEOUT))
        .await
        .map_err(|why| Failure::retry(format!("sftp: {host} port {port} (directport): {why}")))?;
    Ok(Opened {
        raw,
        limits,
        extensions,
        keep: Box::new(()),
    })
}

/// INIT (bounded by `bound`, if given) and `limits@openssh.com` on a fresh stream.
async fn start_sftp(
    stream: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    bound: Option<Duration>,
) -> Result<(RawSftpSession, Option<(u64, u64)>, Vec<String>), String> {
    let config = russh_sftp::client::Config {
        // Must hold a full READ answer; larger packets end the session.
        max_packet_len: 1024 * 1024,
        // Our own deadline applies (Sftp::attempt); this one counts from enqueue.
        request_timeout_secs: 24 * 3600,
        ..Default::default()
    };
    let raw = RawSftpSession::new_with_config(stream, config);
    let version = match bound {
        Some(t) => tokio::time::timeout(t, raw.init())
            .await
            .map_err(|_| "no answer to SFTP init".to_owned())?,
        None => raw.init().await,
    }
    .map_err(|e| format!("SFTP init failed: {e}"))?;
    let extensions: Vec<String> = version.extensions.keys().cloned().collect();
    let limits = if version.extensions.contains_key("limits@openssh.com") {
        raw.limits()
            .await
            .ok()
            .map(|l| (l.max_read_len, l.max_write_len))
    } else {
        None
    };
    Ok((raw, limits, extensions))
}

/// Follows the command's stderr: every line goes to our log (at info level while connecting,
/// when the failure becomes the error message; as warnings once the session is up), and the
/// last few are kept.
struct LastWords {
    lines: Arc<Mutex<VecDeque<String>>>,
    up: Arc<AtomicBool>,
    reader: tokio::task::JoinHandle<()>,
}

impl LastWords {
    fn follow(stderr: ChildStderr, program: &str) -> LastWords {
        let lines = Arc::new(Mutex::new(VecDeque::new()));
        let up = Arc::new(AtomicBool::new(false));
        let (kept, is_up, name) = (Arc::clone(&lines), Arc::clone(&up), program.to_owned());
        let reader = tokio::spawn(async move {
            let mut input = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = input.next_line().await {
                let line = line.trim_end().to_owned();
                if line.is_empty() {
                    continue;
                }
                if is_up.load(Ordering::Relaxed) {
                    tracing::warn!("{name}: {line}");
                } else {
                    tracing::info!("{name}: {line}");
                }
                if let Ok(mut kept) = kept.lock() {
                    if kept.len() == KEPT_LINES {
                        kept.pop_front();
                    }
                    kept.push_back(line);
                }
            }
        });
        LastWords { lines, up, reader }
    }

    /// The session is up: from now on its lines are warnings.
    fn connected(&self) {
        self.up.store(true, Ordering::Relaxed);
    }

    /// Waits (bounded) until the program's stderr has ended.
    async fn finished(&mut self) {
        if tokio::time::timeout(LAST_WORDS_TIMEOUT, &mut self.reader)
            .await
            .is_err()
        {
            self.reader.abort();
        }
    }

    fn kept(&self) -> Vec<String> {
        self.lines
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The error for a session that did not start: the program's last line on stderr as it
    /// wrote it, else what we know (its exit status, the SFTP error).
    fn failure(
        &self,
        program: &str,
        host: &str,
        status: Option<ExitStatus>,
        sftp_error: &str,
    ) -> Failure {
        let kept = self.kept();
        let said = |what: &str| kept.iter().any(|l| l.contains(what));
        let kind = if said("Host key verification failed")
            || said("REMOTE HOST IDENTIFICATION HAS CHANGED")
        {
            Kind::Fatal
        } else if said("Permission denied") || said("Too many authentication failures") {
            Kind::Auth
        } else {
            Kind::Retry
        };
        // Named by the program, as ssh names itself in most of its messages.
        let name = std::path::Path::new(program)
            .file_name()
            .map_or_else(|| program.to_owned(), |n| n.to_string_lossy().into_owned());
        let message = match (kept.last(), status) {
            (Some(line), _) if line.starts_with(&format!("{name}:")) => line.clone(),
            (Some(line), _) => format!("{name}: {line}"),
            (None, Some(status)) => format!(
                "ssh_command '{program}' ended ({}) before an SFTP session with {host} started ({sftp_error})",
                describe(status)
            ),
            (None, None) => format!(
                "sftp: {host}: {sftp_error} (over ssh_command '{program}': does the remote shell print something at login?)"
            ),
        };
        Failure { message, kind }
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}
