//! The life of the sshfs-rs process around its mount, and what it says on the way:
//!
//! * `-o auto_unmount`: after `kill -9` of the daemon the mount goes away (root's mount, and a
//!   user's mount through fusermount3, with a throwaway user and /dev/fuse opened to it while
//!   the test runs).
//! * `-d`: one line per FUSE request with its result and time, no colour codes in a file.
//! * A daemonized mount logs to the system log (here a socket of the test's own, named by
//!   `SSHFS_RS_SYSLOG_SOCKET`).
//!
//! Every test starts its own sshd, mounts the real binary and cleans up on drop, also when it
//! fails: mounts undone, processes it started killed by pid, the user deleted, /dev/fuse's mode
//! restored.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;

use support::login::Mountpoint;
use support::{
    DevFuseOpen, Mount, Sshd, TestUser, assert_sshfs_rs_gone, fuse_max_background, is_mounted,
    run_command, run_to_eof, sshfs_rs_bin, sshfs_rs_processes_of, unmount_and_stop, wait_until,
};

/// How long the mount may take to go away after its daemon was killed.
const GONE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on programs the tests run.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// `-o auto_unmount`, root's mount: it works while the daemon lives; after `kill -9` of the
/// daemon the mountpoint leaves /proc/mounts within seconds and the watcher is gone too.
/// Without auto_unmount the dead mount would stay ("Transport endpoint is not connected").
#[test]
fn auto_unmount_takes_the_mount_down_after_kill_9() {
    let sshd = Sshd::start();
    let m = Mount::start(&sshd, &["-o", "auto_unmount"]);
    fs::write(m.path().join("a.txt"), "through the mount\n").unwrap();
    assert_eq!(
        fs::read_to_string(sshd.root_dir().join("a.txt")).unwrap(),
        "through the mount\n"
    );
    let watchers = sshfs_rs_processes_of(m.path()).len();
    assert_eq!(watchers, 2, "the daemon and its watcher");

    kill(Pid::from_raw(m.pid() as i32), Signal::SIGKILL).unwrap();
    assert!(
        wait_until(GONE_TIMEOUT, || !is_mounted(m.path())),
        "{} is still mounted {GONE_TIMEOUT:?} after kill -9 of the daemon",
        m.path().display()
    );
    assert_sshfs_rs_gone(m.path(), GONE_TIMEOUT);
    // The mountpoint is an ordinary empty directory again.
    assert_eq!(fs::read_dir(m.path()).unwrap().count(), 0);
}

/// A clean unmount of an auto_unmount mount: the daemon exits 0 and the watcher goes with it.
#[test]
fn auto_unmount_leaves_a_clean_unmount_alone() {
    let sshd = Sshd::start();
    let m = Mount::start(&sshd, &["-o", "auto_unmount"]);
    let mnt = m.path().to_path_buf();
    let status = m.unmount();
    assert!(status.success(), "{status}");
    assert_sshfs_rs_gone(&mnt, GONE_TIMEOUT);
}

/// `-o auto_unmount` on a mount that goes to the background, run as autofs runs helpers (its
/// stdout and stderr read until EOF): the watcher holds neither open, so the call returns; then
/// `kill -9` of the daemon takes the mount down.
#[test]
fn auto_unmount_of_a_daemonized_mount() {
    let sshd = Sshd::start();
    let mountpoint = Mountpoint::new();
    let mnt = mountpoint.path().to_path_buf();
    let _cleanup = Daemon { mnt: mnt.clone() };
    let out = run_to_eof(mount_command(&sshd, &mnt).args(["-o", "auto_unmount"]));
    assert!(out.status.success(), "{out:?}");
    assert!(is_mounted(&mnt));
    let pids = sshfs_rs_processes_of(&mnt);
    assert_eq!(pids.len(), 2, "the daemon and its watcher: {pids:?}");
    let daemon = pids
        .iter()
        .copied()
        .find(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sshfs-rs")
        })
        .unwrap();
    kill(Pid::from_raw(daemon), Signal::SIGKILL).unwrap();
    assert!(
        wait_until(GONE_TIMEOUT, || !is_mounted(&mnt)),
        "still mounted {GONE_TIMEOUT:?} after kill -9 of the daemon"
    );
    assert_sshfs_rs_gone(&mnt, GONE_TIMEOUT);
}

/// `sshfs-rs root@127.0.0.1:ROOT MNT -p PORT -o <key, known_hosts, batch mode>`, HOME at the
/// server's empty client home, no agent, no log filter.
fn mount_command(sshd: &Sshd, mnt: &Path) -> Command {
    let mut cmd = Command::new(sshfs_rs_bin());
    cmd.arg(format!("root@127.0.0.1:{}", sshd.root_dir().display()))
        .arg(mnt)
        .args(["-p", &sshd.port().to_string(), "-o"])
        .arg(format!(
            "IdentityFile={},UserKnownHostsFile={},StrictHostKeyChecking=yes,BatchMode=yes",
            sshd.user_key().display(),
            sshd.known_hosts().display()
        ))
        .env("HOME", sshd.home())
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("SSHFS_RS_LOG");
    cmd
}

/// A mount made by `user` in the foreground; killed, and unmounted as root, on drop.
struct UserMount {
    child: Child,
    mnt: PathBuf,
    stderr: PathBuf,
    _dir: TempDir,
}

impl UserMount {
    fn start(sshd: &Sshd, user: &TestUser, extra: &[&str]) -> UserMount {
        let (dir, mnt) = user.mountpoint("sshfs-rs-user-");
        let stderr = mnt.with_file_name("stderr.log");
        let source = format!("root@127.0.0.1:{}", sshd.root_dir().display());
        let child = user.spawn_sshfs_rs(sshd, &source, &mnt, &[&["-f"], extra].concat(), &stderr);
        let mut m = UserMount {
            child,
            mnt,
            stderr,
            _dir: dir,
        };
        let mounted = wait_until(Duration::from_secs(15), || {
            is_mounted(&m.mnt) || m.child.try_wait().ok().flatten().is_some()
        });
        assert!(
            mounted && is_mounted(&m.mnt),
            "the user's mount did not come up: {}",
            fs::read_to_string(&m.stderr).unwrap_or_default()
        );
        m
    }
}

impl Drop for UserMount {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in sshfs_rs_processes_of(&self.mnt) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if is_mounted(&self.mnt) {
            let _ = run_command(
                Command::new("fusermount3")
                    .args(["-u", "-z"])
                    .arg(&self.mnt),
                RUN_TIMEOUT,
            );
        }
        if is_mounted(&self.mnt) {
            let _ = run_command(Command::new("umount").arg("-l").arg(&self.mnt), RUN_TIMEOUT);
        }
    }
}

/// `-o auto_unmount` on a user's mount (through fusermount3, without allow_other): `kill -9`
/// of the daemon takes the mount down, unmounted by the watcher running as that user.
#[test]
fn auto_unmount_of_a_users_mount() {
    let sshd = Sshd::start();
    let user = TestUser::create("lc");
    let _open = DevFuseOpen::new();
    let m = UserMount::start(&sshd, &user, &["-o", "auto_unmount"]);
    let entry = fs::read_to_string("/proc/self/mounts").unwrap();
    let line = entry
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(&*m.mnt.to_string_lossy()))
        .unwrap();
    assert!(
        line.contains(&format!("user_id={}", user.uid)),
        "not the user's mount: {line}"
    );
    kill(Pid::from_raw(m.child.id() as i32), Signal::SIGKILL).unwrap();
    assert!(
        wait_until(GONE_TIMEOUT, || !is_mounted(&m.mnt)),
        "the user's mount is still there {GONE_TIMEOUT:?} after kill -9; stderr: {}",
        fs::read_to_string(&m.stderr).unwrap_or_default()
    );
    assert_sshfs_rs_gone(&m.mnt, GONE_TIMEOUT);
}

/// `-d` logs one line per request, once answered: its number, the operation, the path, the
/// result (an errno by name) and the time taken, with no terminal colour codes in a file.
#[test]
fn debug_logs_every_request() {
    let sshd = Sshd::start();
    let m = Mount::start(&sshd, &["-d"]);
    assert!(fs::metadata(m.path().join("missing.txt")).is_err());
    fs::write(m.path().join("new.txt"), "12345").unwrap();
    let has = |needle: &str| m.stderr().lines().any(|l| l.contains(needle));
    // RELEASE is sent after close() has returned.
    assert!(
        wait_until(Duration::from_secs(10), || has("] release /new.txt -> ok")),
        "no release line:\n{}",
        m.stderr()
    );
    let log = m.stderr();
    for needle in [
        "] lookup /missing.txt -> ENOENT (",
        "] create /new.txt -> ino ",
        "] write /new.txt -> 5 bytes (",
        "] flush /new.txt -> ok (",
        "] release /new.txt -> ok (",
    ] {
        let line = log.lines().find(|l| l.contains(needle));
        let line = line.unwrap_or_else(|| panic!("no line with {needle:?} in:\n{log}"));
        assert!(line.ends_with(" ms)"), "no time taken: {line}");
    }
    assert!(!log.contains('\x1b'), "colour codes in a file:\n{log}");
    let status = m.unmount();
    assert!(status.success(), "{status}");
}

/// `-o max_write` bounds the WRITE requests the kernel sends (seen in the `-d` lines: a 1 MiB
/// write(2) arrives in pieces of at most that), and `-o max_background` is what the kernel
/// keeps for the connection; the data still lands whole on the server.
#[test]
fn max_write_and_max_background_reach_the_kernel() {
    let sshd = Sshd::start();
    let m = Mount::start(&sshd, &["-d", "-o", "max_write=65536,max_background=40"]);
    let data: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    fs::write(m.path().join("big"), &data).unwrap();
    // Read once a request was answered: the mount shows before the kernel's INIT is done.
    assert_eq!(fuse_max_background(m.path()), Some(40));
    assert_eq!(fs::read(sshd.root_dir().join("big")).unwrap(), data);
    let sizes: Vec<u64> = m
        .stderr()
        .lines()
        .filter_map(|l| {
            l.split_once("] write /big -> ")?
                .1
                .split_once(" bytes")?
                .0
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(sizes.iter().sum::<u64>(), 1024 * 1024, "{sizes:?}");
    assert!(sizes.iter().all(|&n| n <= 65536), "{sizes:?}");
    drop(m);

    // Without them: the kernel's default of 12, and writes up to 1 MiB.
    let m = Mount::start(&sshd, &["-d"]);
    fs::write(m.path().join("big2"), &data).unwrap();
    assert_eq!(fuse_max_background(m.path()), Some(12));
    assert!(
        m.stderr().lines().any(|l| l
            .split_once("] write /big2 -> ")
            .and_then(|(_, r)| r.split_once(" bytes")?.0.parse::<u64>().ok())
            .is_some_and(|n| n > 65536)),
        "no write larger than 64 KiB by default"
    );
}

/// A daemonized mount (no -f) logs to the system log: its "connected" and "mounted" lines
/// arrive as syslog datagrams (facility daemon, severity info, tag `sshfs-rs[PID]`).
#[test]
fn daemonized_mount_logs_to_syslog() {
    let sshd = Sshd::start();
    let mountpoint = Mountpoint::new();
    let socket_path = mountpoint.base().join("log");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mnt = mountpoint.path().to_path_buf();
    let _cleanup = Daemon { mnt: mnt.clone() };
    let out = run_command(
        mount_command(&sshd, &mnt).env("SSHFS_RS_SYSLOG_SOCKET", &socket_path),
        RUN_TIMEOUT,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(is_mounted(&mnt));
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let seen = wait_until(Duration::from_secs(10), || {
        if let Ok(n) = socket.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        got.iter().any(|l| l.contains(" mounted "))
    });
    assert!(seen, "no 'mounted' line in the system log: {got:?}");
    let connected = got
        .iter()
        .find(|l| l.contains("connected to root@127.0.0.1 port"))
        .unwrap_or_else(|| panic!("no 'connected' line: {got:?}"));
    assert!(connected.starts_with("<30>"), "{connected}");
    assert!(connected.contains(" sshfs-rs["), "{connected}");
}

/// Unmounts a daemonized mount and stops its processes on drop.
struct Daemon {
    mnt: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        unmount_and_stop(&self.mnt);
    }
}
