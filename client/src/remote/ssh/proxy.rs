//! The byte streams an SSH connection can run over besides a plain TCP connection:
//! `ProxyCommand` (a child process whose stdin and stdout carry the stream) and a `direct-tcpip`
//! channel of another SSH connection (`ProxyJump`).

use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

pub use super::options::Via;

/// Any stream an SSH connection can run over.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Transport for T {}

/// A `ProxyCommand` child: reading reads its stdout, writing writes its stdin. Dropping it
/// kills the child (the connection is over).
pub struct CommandStream {
    stdin: ChildStdin,
    stdout: ChildStdout,
    _child: Child,
}

/// Starts `command` as OpenSSH does: `$SHELL -c "exec COMMAND"` (else `/bin/sh`), stderr
/// passed through.
pub fn spawn_command(command: &str) -> io::Result<CommandStream> {
    let shell = std::env::var("SHELL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".to_owned());
    let mut child = Command::new(shell)
        .arg("-c")
        .arg(format!("exec {command}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(io::Error::other("no pipes to the proxy command"));
    };
    Ok(CommandStream {
        stdin,
        stdout,
        _child: child,
    })
}

impl AsyncRead for CommandStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for CommandStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

/// Parses a `ProxyJump` value: comma-separated `[user@]host[:port]` (or
/// `ssh://[user@]host[:port]`), IPv6 addresses in brackets. `None` for `none`.
pub fn parse_jumps(value: &str) -> Result<Option<Vec<JumpSpec>>, String> {
    if value.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let mut out = Vec::new();
    for part in value.split(',') {
        let part = part.trim();
        let part = part.strip_prefix("ssh://").unwrap_or(part);
        let bad = || format!("bad ProxyJump host '{part}'");
        let (user, rest) = match part.rsplit_once('@') {
            Some((u, r)) if !u.is_empty() => (Some(u.to_owned()), r),
            Some(_) => return Err(bad()),
            None => (None, part),
        };
        let (host, port) = if let Some(r) = rest.strip_prefix('[') {
            let (h, after) = r.split_once(']').ok_or_else(bad)?;
            match after.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None if after.is_empty() => (h, None),
                None => return Err(bad()),
            }
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(bad());
        }
        let port = match port {
            Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?),
            None => None,
        };
        out.push(JumpSpec {
            user,
            host: host.to_owned(),
            port,
        });
    }
    Ok(Some(out))
}

/// One hop of a `ProxyJump` value, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpSpec {
    /// `user@`, if given.
    pub user: Option<String>,
    /// The host (an alias looked up in ssh_config, as ssh does).
    pub host: String,
    /// `:port`, if given.
    pub port: Option<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_specs() {
        let j = parse_jumps("a, me@b:2222,ssh://c,[::1]:7,u@[fe80::1]")
            .ok()
            .flatten()
            .unwrap_or_default();
        let want = [
            (None, "a", None),
            (Some("me"), "b", Some(2222)),
            (None, "c", None),
            (None, "::1", Some(7)),
            (Some("u"), "fe80::1", None),
        ];
        assert_eq!(j.len(), want.len());
        for (got, (u, h, p)) in j.iter().zip(want) {
            assert_eq!(got.user.as_deref(), u);
            assert_eq!(got.host, h);
            assert_eq!(got.port, p);
        }
        assert!(matches!(parse_jumps("none"), Ok(None)));
        assert!(parse_jumps("a:0").is_err());
        assert!(parse_jumps("@a").is_err());
        assert!(parse_jumps("a,,b").is_err());
    }
}
