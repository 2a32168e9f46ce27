//! Going to the background only once the mount works, as mount helpers must (autofs and
//! mount(8) wait for the helper's exit status and read its output until EOF).
//!
//! The process forks before anything else starts (no threads yet). The parent waits on a pipe:
//! the child writes one byte once the mount is live and its stdio points at /dev/null, and the
//! parent exits 0; if the child fails it prints its own one-line error and exits, the pipe
//! closes, and the parent exits with the child's status.

use std::fs::File;
use std::io::{Read, Write};

use nix::fcntl::OFlag;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork, pipe2, setsid};

/// The child's end: tells the waiting parent that the mount is ready.
pub struct Detach {
    pipe: File,
}

/// Forks. Returns in the child; the parent waits for the child's verdict and exits.
pub fn fork_and_wait() -> Result<Detach, String> {
    // Close-on-exec: a program we run (ssh_command, ProxyCommand) must not hold the parent's
    // pipe open, or a failed mount would leave the parent waiting as long as it runs.
    let (read_end, write_end) =
        pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("cannot create a pipe: {e}"))?;
    // SAFETY: called from main before any thread (tokio, logging) is started.
    match unsafe { fork() }.map_err(|e| format!("cannot fork: {e}"))? {
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut byte = [0u8; 1];
            let got = File::from(read_end).read(&mut byte).unwrap_or(0);
            if got == 1 {
                std::process::exit(0);
            }
            let code = match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, code)) if code != 0 => code,
                _ => 1,
            };
            std::process::exit(code);
        }
        ForkResult::Child => {
            drop(read_end);
            Ok(Detach {
                pipe: File::from(write_end),
            })
        }
    }
}

impl Detach {
    /// Leaves the terminal's session, points stdio at /dev/null, then releases the parent.
    pub fn ready(mut self) {
        let _ = setsid();
        let _ = std::env::set_current_dir("/");
        stdio_to_dev_null();
        let _ = self.pipe.write_all(b"1");
    }
}

/// Points stdin, stdout and stderr at /dev/null (left as they are if it cannot be opened), so
/// the process holds nothing open that a caller reads until EOF.
pub fn stdio_to_dev_null() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
}
