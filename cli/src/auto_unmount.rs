//! `-o auto_unmount`: the mount goes away when the process serving it dies, even by SIGKILL.
//!
//! libfuse keeps fusermount3 running on its socket for this, but fusermount3 3.14 (Debian 12)
//! does it only together with `allow_other`, and root's mounts do not go through it at all. So
//! sshfs-rs forks a watcher of its own, before any thread starts: a small process that holds the
//! read end of a pipe whose write end only the serving process holds (close-on-exec, so no
//! program it starts, such as a ProxyCommand, keeps the pipe open). Once the mount is made, the
//! serving process writes the mount's id (from /proc/self/mountinfo) into the pipe. When the pipe
//! closes, however the serving process ended, the watcher looks for that mount and, if it is
//! still there, detaches it (`umount2(MNT_DETACH)` for root, `fusermount3 -u -z` for a user),
//! then exits. After a clean unmount it finds nothing to do. If the serving process died
//! between mounting and sending the id, a dead FUSE mount on the mountpoint (ENOTCONN) is
//! taken down.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, fork, pipe2, setsid};

/// The serving process's end of the watcher's pipe; the watcher acts once it is closed.
pub struct Watch {
    pipe: File,
}

/// Starts the watcher for a mount on `mountpoint` (absolute). Must be called before any thread
/// is started (it forks).
pub fn start(mountpoint: &Path, unprivileged: bool) -> Result<Watch, String> {
    let fail = |e: nix::Error| format!("-o auto_unmount: cannot start the watcher process: {e}");
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).map_err(fail)?;
    // Forked twice, so the watcher is nobody's child here and never waits as a zombie.
    // SAFETY: called from main before any thread (tokio, logging) is started.
    match unsafe { fork() }.map_err(fail)? {
        ForkResult::Parent { child } => {
            drop(read_end);
            let _ = waitpid(child, None);
            Ok(Watch {
                pipe: File::from(write_end),
            })
        }
        ForkResult::Child => {
            drop(write_end);
            // SAFETY: still single-threaded (a child of a single-threaded process).
            if let Ok(ForkResult::Child) = unsafe { fork() } {
                watch(read_end, mountpoint.to_path_buf(), unprivileged);
            }
            // SAFETY: _exit ends the intermediate process without running anything of the
            // parent's (no atexit handlers, no buffered output flushed twice).
            unsafe { libc::_exit(0) }
        }
    }
}

impl Watch {
    /// Tells the watcher which mount to take down: the topmost one on `mountpoint`, just made.
    pub fn arm(&mut self, mountpoint: &Path) -> Result<(), String> {
        let info = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("-o auto_unmount: cannot read /proc/self/mountinfo: {e}"))?;
        let id = mounts(&info)
            .filter(|m| m.point == mountpoint)
            .last()
            .map(|m| m.id)
            .ok_or_else(|| {
                format!(
                    "-o auto_unmount: the new mount on {} is not in /proc/self/mountinfo",
                    mountpoint.display()
                )
            })?;
        writeln!(self.pipe, "{id}").map_err(|e| {
            format!("-o auto_unmount: the watcher process is gone ({e}); mount without it")
        })
    }
}

/// The watcher: waits for the pipe to close, then takes the mount down if it is still there.
fn watch(pipe: OwnedFd, mountpoint: PathBuf, unprivileged: bool) -> ! {
    let _ = setsid();
    let _ = std::env::set_current_dir("/");
    close_all_but(pipe.as_raw_fd());
    let _ = nix::sys::prctl::set_name(c"sshfs-rs-watch");
    let mut said = Vec::new();
    // Returns at EOF: every copy of the write end is closed, so the serving process is gone.
    let _ = File::from(pipe).read_to_end(&mut said);
    let id = String::from_utf8_lossy(&said)
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<u64>().ok());
    let ours = match id {
        Some(id) => std::fs::read_to_string("/proc/self/mountinfo")
            .is_ok_and(|info| mounts(&info).any(|m| m.id == id && m.point == mountpoint)),
        // Killed after mounting but before saying which mount is ours: a FUSE mount whose
        // server is gone answers ENOTCONN, and that is the only kind taken down then.
        None => {
            std::fs::metadata(&mountpoint).is_err_and(|e| e.raw_os_error() == Some(libc::ENOTCONN))
        }
    };
    if ours {
        detach(&mountpoint, unprivileged);
    }
    std::process::exit(0)
}

/// Closes every file descriptor but `keep` (the serving process's files, its terminal, the
/// pipe a parent waits on for `-f`-less mounts) and points stdio at /dev/null, so the watcher
/// holds nothing open that anyone waits on.
fn close_all_but(keep: i32) {
    let open: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    for fd in open.into_iter().filter(|fd| *fd != keep && *fd > 2) {
        // SAFETY: nothing else in this process uses these descriptors any more.
        unsafe { libc::close(fd) };
    }
    crate::daemon::stdio_to_dev_null();
}

/// Detaches the mount: lazily, since programs may still be inside it.
fn detach(mountpoint: &Path, unprivileged: bool) {
    if unprivileged {
        let _ = std::process::Command::new("fusermount3")
            .args(["-u", "-z", "--"])
            .arg(mountpoint)
            .status();
    } else {
        let _ = nix::mount::umount2(mountpoint, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// One line of /proc/self/mountinfo: its id and mount point.
struct MountLine {
    id: u64,
    point: PathBuf,
}

/// The lines of a mountinfo text (`ID PARENT MAJ:MIN ROOT MOUNT_POINT ...`).
fn mounts(info: &str) -> impl Iterator<Item = MountLine> + '_ {
    info.lines().filter_map(|l| {
        let mut f = l.split(' ');
        let id = f.next()?.parse().ok()?;
        let point = f.nth(3)?;
        Some(MountLine {
            id,
            point: PathBuf::from(crate::config::unescape_mountinfo(point)),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines() {
        let info = "22 1 0:21 / /proc rw - proc proc rw\n\
                    97 30 0:52 / /tmp/a\\040b rw,nosuid - fuse.sshfs-rs me@h:/ rw\n";
        let m: Vec<_> = mounts(info).collect();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].id, 97);
        assert_eq!(m[1].point, PathBuf::from("/tmp/a b"));
    }
}
