//! `-o auto_unmount`: the mount goes away when the process serving it dies, even by SIGKILL.
//!
//! libfuse keeps fusermount3 running on its socket for this, but fusermount3 3.14 (Debian 12)
//! does it only together with `allow_other`, and root's mounts do not go through it at all. So
//! sshfs-rs starts a watcher of its own, before any thread starts: a small process that holds
//! the read end of a pipe whose write end only the serving process holds (close-on-exec, so no
//! program it starts, such as a ProxyCommand, keeps the pipe open).
//!
//! The watcher is a process of its own, as fusermount3 is: forked twice (nobody's child, never
//! a zombie), in a session of its own, it executes the binary again as
//! `sshfs-rs --auto-unmount-watcher PID` (PID: the serving process), with the pipe as its
//! stdin and nothing else open. So its command line is not the mount's, and a script that
//! looks for the daemon by its command line (`pgrep -f 'sshfs-rs.*MOUNTPOINT'`) finds the
//! daemon alone; `ps` shows whose watcher it is.
//!
//! What the watcher needs goes through the pipe: before forking, the serving process writes
//! the mountpoint and whether the mount is a user's ([`Told`]); once the mount is made, the
//! mount's id (from /proc/self/mountinfo). When the pipe closes, however the serving process
//! ended, the watcher looks for that mount and, if it is still there, detaches it
//! (`umount2(MNT_DETACH)` for root, `fusermount3 -u -z` for a user), then exits. After a clean
//! unmount it finds nothing to do. If the serving process died between mounting and sending
//! the id, a dead FUSE mount on the mountpoint (ENOTCONN) is taken down.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, fork, pipe2, setsid};

/// The first argument that makes the program the watcher of a mount: `sshfs-rs
/// --auto-unmount-watcher PID`, started by [`start`], never by hand.
pub const WATCHER_FLAG: &str = "--auto-unmount-watcher";

/// The name the watcher has in `ps -e` and /proc/PID/comm.
const WATCHER_NAME: &std::ffi::CStr = c"sshfs-rs-watch";

/// The serving process's end of the watcher's pipe; the watcher acts once it is closed.
pub struct Watch {
    pipe: File,
}

/// Starts the watcher for a mount on `mountpoint` (absolute). Must be called before any thread
/// is started (it forks).
pub fn start(mountpoint: &Path, unprivileged: bool) -> Result<Watch, String> {
    let fail = |e: nix::Error| format!("-o auto_unmount: cannot start the watcher process: {e}");
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).map_err(fail)?;
    let mut pipe = File::from(write_end);
    // In the pipe before the watcher exists, so it knows the mountpoint however early this
    // process dies.
    let told = Told {
        mountpoint: mountpoint.to_path_buf(),
        unprivileged,
        mount_id: None,
    };
    pipe.write_all(&told.header())
        .map_err(|e| format!("-o auto_unmount: cannot write to the watcher's pipe: {e}"))?;
    // Made before forking: the forked processes only execute.
    let argv = watcher_argv(std::process::id());
    // Forked twice, so the watcher is nobody's child here and never waits as a zombie.
    // SAFETY: called from main before any thread (tokio, logging) is started.
    match unsafe { fork() }.map_err(fail)? {
        ForkResult::Parent { child } => {
            drop(read_end);
            let _ = waitpid(child, None);
            Ok(Watch { pipe })
        }
        ForkResult::Child => {
            drop(pipe);
            // SAFETY: still single-threaded (a child of a single-threaded process).
            if let Ok(ForkResult::Child) = unsafe { fork() } {
                become_watcher(read_end, &argv, told);
            }
            // SAFETY: _exit ends the intermediate process without running anything of the
            // parent's (no atexit handlers, no buffered output flushed twice).
            unsafe { libc::_exit(0) }
        }
    }
}

/// `sshfs-rs --auto-unmount-watcher PID`: the watcher's command line.
fn watcher_argv(serving: u32) -> Vec<CString> {
    [
        "sshfs-rs".to_owned(),
        WATCHER_FLAG.to_owned(),
        serving.to_string(),
    ]
    .into_iter()
    .filter_map(|a| CString::new(a).ok())
    .collect()
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

/// What the serving process tells its watcher through the pipe: `r` (root's mount) or `u` (a
/// user's, through fusermount3), the mountpoint's bytes and a NUL, written before the watcher
/// starts; then, once the mount is made, its id in /proc/self/mountinfo and a newline.
#[derive(Debug, PartialEq)]
struct Told {
    mountpoint: PathBuf,
    unprivileged: bool,
    mount_id: Option<u64>,
}

impl Told {
    /// The part written before the watcher starts.
    fn header(&self) -> Vec<u8> {
        let mut bytes = vec![if self.unprivileged { b'u' } else { b'r' }];
        bytes.extend_from_slice(self.mountpoint.as_os_str().as_bytes());
        bytes.push(0);
        bytes
    }

    /// Reads everything the pipe carried; `None` if it is not what [`start`] writes.
    fn parse(said: &[u8]) -> Option<Told> {
        let (&kind, rest) = said.split_first()?;
        let unprivileged = match kind {
            b'u' => true,
            b'r' => false,
            _ => return None,
        };
        let nul = rest.iter().position(|b| *b == 0)?;
        let (point, after) = rest.split_at(nul);
        let mountpoint = PathBuf::from(OsStr::from_bytes(point));
        if !mountpoint.is_absolute() {
            return None;
        }
        let mount_id = after
            .get(1..)
            .and_then(|id| std::str::from_utf8(id).ok())
            .and_then(|id| id.lines().next())
            .and_then(|l| l.trim().parse::<u64>().ok());
        Some(Told {
            mountpoint,
            unprivileged,
            mount_id,
        })
    }
}

/// In the watcher's process (the grandchild): leaves the session, keeps only the pipe (as
/// stdin), and executes the binary again as the watcher.
fn become_watcher(pipe: OwnedFd, argv: &[CString], told: Told) -> ! {
    let _ = setsid();
    let _ = std::env::set_current_dir("/");
    // dup2 leaves the new descriptor without close-on-exec: the pipe survives the exec.
    if nix::unistd::dup2_stdin(&pipe).is_ok() {
        drop(pipe);
        keep_only_stdin();
        let _ = nix::unistd::execv(c"/proc/self/exe", argv);
        // No exec (no /proc?): watch from this process, under the serving process's command
        // line, rather than not at all.
        std::process::exit(watch_stdin(Some(told)));
    }
    // Without the watcher the pipe has no reader: arming fails, and the mount with it.
    // SAFETY: _exit ends this forked process without running anything of the parent's.
    unsafe { libc::_exit(1) }
}

/// `sshfs-rs --auto-unmount-watcher PID`: waits for the pipe on stdin to close, then takes
/// the mount down if it is still there. Returns the exit code.
pub fn run_watcher() -> i32 {
    if std::io::stdin().is_terminal() {
        eprintln!("sshfs-rs: {WATCHER_FLAG} is started by sshfs-rs itself for -o auto_unmount");
        return 2;
    }
    watch_stdin(None)
}

/// Reads the pipe on stdin until it closes, then acts on what it said (or on `fallback` if
/// it said nothing usable). Returns the exit code.
fn watch_stdin(fallback: Option<Told>) -> i32 {
    let _ = nix::sys::prctl::set_name(WATCHER_NAME);
    let mut said = Vec::new();
    // Returns at EOF: every copy of the write end is closed, so the serving process is gone.
    let _ = std::io::stdin().lock().read_to_end(&mut said);
    match Told::parse(&said).or(fallback) {
        Some(told) => {
            act(told);
            0
        }
        None => {
            eprintln!("sshfs-rs: {WATCHER_FLAG}: stdin is not a watcher's pipe");
            2
        }
    }
}

/// Takes the mount the watcher was told of down, if it is still there.
fn act(told: Told) {
    let ours = match told.mount_id {
        Some(id) => std::fs::read_to_string("/proc/self/mountinfo")
            .is_ok_and(|info| mounts(&info).any(|m| m.id == id && m.point == told.mountpoint)),
        // Killed after mounting but before saying which mount is ours: a FUSE mount whose
        // server is gone answers ENOTCONN, and that is the only kind taken down then.
        None => std::fs::metadata(&told.mountpoint)
            .is_err_and(|e| e.raw_os_error() == Some(libc::ENOTCONN)),
    };
    if ours {
        detach(&told.mountpoint, told.unprivileged);
    }
}

/// Closes every file descriptor but stdin (the serving process's files, its terminal, the pipe
/// a parent waits on for `-f`-less mounts) and points stdout and stderr at /dev/null, so the
/// watcher holds nothing open that anyone waits on.
fn keep_only_stdin() {
    let open: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    for fd in open.into_iter().filter(|fd| *fd > 2) {
        // SAFETY: nothing else in this process uses these descriptors any more.
        unsafe { libc::close(fd) };
    }
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
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
            point: PathBuf::from(crate::mount::mountpoint::unescape_mountinfo(point)),
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

    #[test]
    fn what_the_pipe_carries() {
        let told = Told {
            mountpoint: PathBuf::from("/mnt/a b\nc"),
            unprivileged: true,
            mount_id: None,
        };
        let mut said = told.header();
        // The serving process died before the mount was made: the header alone.
        assert_eq!(Told::parse(&said), Some(told));
        said.extend_from_slice(b"97\n");
        let told = Told::parse(&said).unwrap();
        assert_eq!(told.mount_id, Some(97));
        assert!(told.unprivileged);
        assert_eq!(told.mountpoint, PathBuf::from("/mnt/a b\nc"));
        let root = Told {
            mountpoint: PathBuf::from("/m"),
            unprivileged: false,
            mount_id: None,
        };
        assert!(!Told::parse(&root.header()).unwrap().unprivileged);
        // Anything else (a terminal's line, /dev/null, a relative path) is not a watcher's pipe.
        for junk in [&b""[..], b"hello\n", b"x/m\0", b"rm\0", b"r/m"] {
            assert_eq!(Told::parse(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn the_watchers_command_line_is_its_own() {
        let argv: Vec<String> = watcher_argv(4242)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(argv, ["sshfs-rs", "--auto-unmount-watcher", "4242"]);
    }
}
