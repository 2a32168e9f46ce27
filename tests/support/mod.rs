//! End-to-end test harness for sshfs-rs.
//!
//! * [`Sshd`]: a private OpenSSH server on a free loopback port with fresh keys.
//! * [`Mount`] / [`SshfsC`]: the binary under test (or the C `sshfs`) mounted in
//!   the foreground as a child process.
//! * [`login`]: a local user with a password, and an sshd that takes passwords.
//! * [`FaultProxy`]: a TCP proxy that can add latency, freeze and cut connections.
//! * [`TestUser`] / [`DevFuseOpen`]: throwaway local users, and /dev/fuse open to them.
//! * [`other_servers`]: ProFTPD's mod_sftp and rclone's SFTP server, for tests against servers
//!   that are not OpenSSH's.
//! * [`SftpPort`]: `sftp-server` on a plain TCP port, without SSH (`-o directport`).
//! * Small `/proc` and `/sys` helpers ([`is_mounted`], [`fuse_waiting`], ...).
//! * [`needs`]: what a test needs from the machine, checked first (`skipped: ...` otherwise).
//!
//! Everything is per instance (own ports, temp dirs, mountpoints), so tests may
//! run in parallel. Every wait is bounded, failures panic with the captured
//! logs, and every type cleans up on `Drop`, also while unwinding from a panic.
//!
//! Use it from a test file in `tests/` with `mod support;`.
#![allow(dead_code, unused_imports)] // each test file uses a different subset of the harness
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)] // tests fail loudly on purpose

pub mod login;
mod mount;
pub mod needs;
pub mod other_servers;
mod process;
mod proxy;
mod rng;
mod sftp_port;
mod sshd;
mod users;

pub use mount::{
    DEFAULT_RUN_TIMEOUT, Mount, MountStats, SshfsC, no_config_args, run_plain, run_sshfs_rs,
    sshfs_rs_bin,
};
pub use needs::{lacking, skip_note};
pub use proxy::FaultProxy;
pub use rng::Rng;
pub use sftp_port::SftpPort;
pub use sshd::{Sshd, SshdOptions};
pub use users::{DevFuseOpen, TestUser, open_temp_dir, run_ok};

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use process::{run_bounded, terminate, wait_timeout};

const FUSECTL_DIR: &str = "/sys/fs/fuse/connections";

/// True if `path` is a mount point in `/proc/self/mountinfo`.
pub fn is_mounted(path: &Path) -> bool {
    find_mount(path).is_some()
}

/// The `N` of `/sys/fs/fuse/connections/N` for the FUSE mount at `mountpoint`
/// (the minor of its `0:N` device), or `None` if nothing FUSE is mounted there.
pub fn fuse_connection_of(mountpoint: &Path) -> Option<u32> {
    find_mount(mountpoint)
        .filter(|m| m.fstype == "fuse" || m.fstype == "fuseblk" || m.fstype.starts_with("fuse."))
        .map(|m| m.minor)
}

/// Number of requests waiting on the FUSE connection of `mountpoint`
/// (`/sys/fs/fuse/connections/N/waiting`). Mounts the `fusectl` file system on
/// first use if the system has not (it is left mounted, as systemd would).
pub fn fuse_waiting(mountpoint: &Path) -> Option<u64> {
    let conn = fuse_connection_of(mountpoint)?;
    ensure_fusectl();
    let text = std::fs::read_to_string(format!("{FUSECTL_DIR}/{conn}/waiting")).ok()?;
    text.trim().parse().ok()
}

/// The kernel's `max_background` of the FUSE connection of `mountpoint`
/// (`/sys/fs/fuse/connections/N/max_background`).
pub fn fuse_max_background(mountpoint: &Path) -> Option<u64> {
    let conn = fuse_connection_of(mountpoint)?;
    ensure_fusectl();
    let text = std::fs::read_to_string(format!("{FUSECTL_DIR}/{conn}/max_background")).ok()?;
    text.trim().parse().ok()
}

/// Number of open file descriptors of process `pid` (entries in `/proc/PID/fd`).
pub fn open_fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("cannot list /proc/{pid}/fd: {e}"))
        .count()
}

/// Runs `sh -c script` in `dir` (bounded by `timeout`), asserts that it succeeded and returns
/// its stdout.
pub fn sh_in(dir: &Path, script: &str, timeout: Duration) -> String {
    let out = run_command(
        Command::new("sh").arg("-c").arg(script).current_dir(dir),
        timeout,
    );
    assert!(
        out.status.success(),
        "`{script}` failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd` to completion with stdin null and stdout/stderr captured, like
/// [`Command::output`] but bounded: panics (with its stderr) if it runs longer than `timeout`.
pub fn run_command(cmd: &mut Command, timeout: Duration) -> Output {
    let stdout = tempfile::tempfile().expect("create stdout capture file");
    let stderr = tempfile::tempfile().expect("create stderr capture file");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(stdout.try_clone().expect("dup stdout capture file"))
        .stderr(stderr.try_clone().expect("dup stderr capture file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let Some(status) = wait_timeout(&mut child, timeout) else {
        terminate(&mut child, Duration::from_secs(1));
        let err = String::from_utf8_lossy(&read_all(stderr)).into_owned();
        panic!("{cmd:?} still running after {timeout:?}; stderr:\n{err}");
    };
    Output {
        status,
        stdout: read_all(stdout),
        stderr: read_all(stderr),
    }
}

fn read_all(mut file: File) -> Vec<u8> {
    let mut bytes = Vec::new();
    file.rewind().expect("rewind capture file");
    file.read_to_end(&mut bytes).expect("read capture file");
    bytes
}

/// One line of `/proc/self/mountinfo`, reduced to what the harness needs.
struct MountEntry {
    minor: u32,
    mount_point: PathBuf,
    fstype: String,
}

/// The topmost mount whose mount point is `path`.
fn find_mount(path: &Path) -> Option<MountEntry> {
    let wanted = normalize(path);
    let text = std::fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    text.lines()
        .rev()
        .filter_map(parse_mountinfo_line)
        .find(|m| m.mount_point == wanted)
}

/// Parses `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTS`.
fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let fields: Vec<&str> = left.split(' ').collect();
    let minor = fields.get(2)?.split_once(':')?.1.parse().ok()?;
    let mount_point = unescape_octal(fields.get(4)?);
    let fstype = right.split(' ').next()?.to_string();
    Some(MountEntry {
        minor,
        mount_point,
        fstype,
    })
}

/// Undoes the kernel's `\NNN` octal escaping (`\040` for space, `\134` for `\`, ...).
fn unescape_octal(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) if bytes[i] == b'\\' => {
                out.push(d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0')) as u8);
                i += 4;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

/// Absolute path with a canonical parent. The last component is left alone:
/// resolving it would stat the mount root, which hangs on a stuck FUSE mount.
fn normalize(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => parent
            .canonicalize()
            .map_or(absolute.clone(), |p| p.join(name)),
        _ => absolute,
    }
}

/// Mounts `fusectl` on /sys/fs/fuse/connections once, if it is not mounted yet (a test that
/// needs it checks [`needs::fusectl`] first).
fn ensure_fusectl() {
    let _ = needs::fusectl();
}

/// Aborts FUSE connection `conn`, failing all its pending and future requests.
pub fn abort_fuse_connection(conn: u32) {
    ensure_fusectl();
    let _ = std::fs::write(format!("{FUSECTL_DIR}/{conn}/abort"), "1");
}

/// Pids of the sshfs-rs processes (daemons and `mount.fuse.sshfs-rs` helpers) that have `mnt`
/// among their arguments. An `-o auto_unmount` watcher is not one of them: its command line is
/// its own (see [`auto_unmount_watchers_of`]).
pub fn sshfs_rs_processes_of(mnt: &Path) -> Vec<i32> {
    let wanted = mnt.as_os_str().as_encoded_bytes();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("list /proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let (Ok(cmdline), Ok(comm)) = (
            std::fs::read(entry.path().join("cmdline")),
            std::fs::read_to_string(entry.path().join("comm")),
        ) else {
            continue;
        };
        let ours =
            comm.trim().starts_with("sshfs-rs") || comm.trim().starts_with("mount.fuse.sshf");
        if ours && cmdline.split(|b| *b == 0).any(|arg| arg == wanted) {
            pids.push(pid);
        }
    }
    pids
}

/// Pids of the `-o auto_unmount` watchers of the sshfs-rs process `daemon`: the processes whose
/// command line is `sshfs-rs --auto-unmount-watcher DAEMON` (still there after the daemon died,
/// until they have done their work).
pub fn auto_unmount_watchers_of(daemon: i32) -> Vec<i32> {
    let wanted = format!("sshfs-rs\0--auto-unmount-watcher\0{daemon}\0");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("list /proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let state = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = state
            .rsplit_once(") ")
            .is_some_and(|(_, s)| s.starts_with('Z'));
        if !zombie
            && std::fs::read(entry.path().join("cmdline")).is_ok_and(|c| c == wanted.as_bytes())
        {
            pids.push(pid);
        }
    }
    pids
}

/// Whether process `pid` has /dev/fuse open: the process that serves a FUSE mount does.
pub fn holds_dev_fuse(pid: i32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == Path::new("/dev/fuse")))
    })
}

/// Runs `cmd` with stdout and stderr on pipes and waits until both reach EOF, as autofs does
/// (at most 30 s): a daemon that kept them open would hang here.
pub fn run_to_eof(cmd: &mut Command) -> Output {
    const EOF_TIMEOUT: Duration = Duration::from_secs(30);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let _ = out.read_to_end(&mut o);
        let _ = err.read_to_end(&mut e);
        let _ = tx.send((o, e));
    });
    let Ok((stdout, stderr)) = rx.recv_timeout(EOF_TIMEOUT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{cmd:?}: stdout/stderr still open after {EOF_TIMEOUT:?}");
    };
    let status = child.wait().unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Waits at most `timeout` until no sshfs-rs process has `mnt` among its arguments (see
/// [`sshfs_rs_processes_of`]); panics naming those left otherwise.
pub fn assert_sshfs_rs_gone(mnt: &Path, timeout: Duration) {
    assert!(
        wait_until(timeout, || sshfs_rs_processes_of(mnt).is_empty()),
        "sshfs-rs processes of {} left after {timeout:?}: {:?}",
        mnt.display(),
        sshfs_rs_processes_of(mnt)
    );
}

/// Cleans up after a mount made in the background: `umount MNT` (then `umount -l`) while it
/// is mounted, then waits at most 10 s for its sshfs-rs processes to end and kills those left.
pub fn unmount_and_stop(mnt: &Path) {
    const STOP_TIMEOUT: Duration = Duration::from_secs(10);
    for args in [&[][..], &["-l"][..]] {
        if is_mounted(mnt) {
            let _ = run_command(Command::new("umount").args(args).arg(mnt), STOP_TIMEOUT);
        }
    }
    if !wait_until(STOP_TIMEOUT, || sshfs_rs_processes_of(mnt).is_empty()) {
        for pid in sshfs_rs_processes_of(mnt) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns its last value.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(20));
    }
}
