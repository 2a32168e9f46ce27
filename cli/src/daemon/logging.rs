//! Where log lines go: stderr, with colour codes only when it is a terminal; and, for a mount
//! that goes to the background (its stderr is /dev/null then), the system log as well, through
//! /dev/log as sshfs's syslog(3) calls do (journald and every syslog daemon read it).
//!
//! `SSHFS_RS_LOG` (tracing's EnvFilter syntax) replaces both filters; `SSHFS_RS_SYSLOG_SOCKET`
//! names another socket than /dev/log.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use syslog::{Formatter3164, LoggerBackend};
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The system log's socket.
const SYSLOG_SOCKET: &str = "/dev/log";
/// The variable that names another socket for the system log.
pub const SYSLOG_SOCKET_VAR: &str = "SSHFS_RS_SYSLOG_SOCKET";
/// The variable holding a log filter that replaces the defaults.
pub const FILTER_VAR: &str = "SSHFS_RS_LOG";

/// Sets up logging: stderr always, with `stderr_default` as its filter (`-d`, `-v`, `LogLevel`:
/// [`crate::config::Config::log_filter`]); the system log too when `background` (and its socket
/// is there: without it, a daemon logs nowhere, as sshfs's syslog(3) calls then do).
pub fn init(stderr_default: &str, background: bool) {
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(filter(stderr_default));
    let syslog = background.then(syslog_writer).flatten().map(|w| {
        tracing_subscriber::fmt::layer()
            .with_writer(w)
            .with_ansi(false)
            .without_time()
            .with_level(false)
            .with_target(false)
            // A daemon says what it does: connected, mounted, reconnects, warnings.
            .with_filter(filter("sshfs_rs=info,sshfs_client=info,warn"))
    });
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(syslog)
        .try_init();
}

fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_env(FILTER_VAR).unwrap_or_else(|_| EnvFilter::new(default))
}

/// A writer to the system log, if its socket takes connections.
fn syslog_writer() -> Option<Syslog> {
    let socket = std::env::var_os(SYSLOG_SOCKET_VAR).unwrap_or_else(|| SYSLOG_SOCKET.into());
    let formatter = Formatter3164 {
        facility: syslog::Facility::LOG_DAEMON,
        hostname: None,
        process: "sshfs-rs".to_owned(),
        pid: std::process::id(),
    };
    let logger = syslog::unix_custom(formatter, socket).ok()?;
    Some(Syslog(Arc::new(Mutex::new(logger))))
}

type Logger = syslog::Logger<LoggerBackend, Formatter3164>;

/// Makes one [`SyslogLine`] per event, at the event's level.
struct Syslog(Arc<Mutex<Logger>>);

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = SyslogLine;

    fn make_writer(&'a self) -> SyslogLine {
        SyslogLine {
            logger: self.0.clone(),
            level: Level::INFO,
            text: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> SyslogLine {
        SyslogLine {
            logger: self.0.clone(),
            level: *meta.level(),
            text: Vec::new(),
        }
    }
}

/// One event's text, sent as one syslog message (with the matching severity) when dropped.
struct SyslogLine {
    logger: Arc<Mutex<Logger>>,
    level: Level,
    text: Vec<u8>,
}

impl Write for SyslogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.text);
        let text = text.trim_end();
        if text.is_empty() {
            return;
        }
        let Ok(mut logger) = self.logger.lock() else {
            return;
        };
        // Nothing to do when the system log is gone: there is nowhere else to say it.
        let _ = match self.level {
            Level::ERROR => logger.err(text),
            Level::WARN => logger.warning(text),
            Level::INFO => logger.info(text),
            Level::DEBUG | Level::TRACE => logger.debug(text),
        };
    }
}
