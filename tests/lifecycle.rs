//! The life of the sshfs-rs process around its mount, and what it says on the way:
//!
//! * `-o auto_unmount`: after `kill -9` of the daemon the mount goes away (root's mount, and a
//!   user's mount through fusermount3, with a throwaway user and /dev/fuse opened to it while
//!   the test runs); the watcher that does it has a command line of its own, so `pgrep -f` of
//!   the mount's command line finds the daemon alone.
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
    DevFuseOpen, Mount, Sshd, TestUser, assert_sshfs_rs_gone, auto_unmount_watchers_of,
    fuse_max_background, holds_dev_fuse, is_mounted, lacking, needs, run_command, run_to_eof,
    skip_note, sshfs_rs_bin, sshfs_rs_processes_of, unmount_and_stop, wait_until,
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
    let daemon = m.pid() as i32;
    assert_eq!(
        sshfs_rs_processes_of(m.path()),
        [daemon],
        "the daemon alone"
    );
    assert_eq!(auto_unmount_watchers_of(daemon).len(), 1, "its watcher");

    kill(Pid::from_raw(daemon), Signal::SIGKILL).unwrap();
    assert!(
        wait_until(GONE_TIMEOUT, || !is_mounted(m.path())),
        "{} is still mounted {GONE_TIMEOUT:?} after kill -9 of the daemon",
        m.path().display()
    );
    assert_sshfs_rs_gone(m.path(), GONE_TIMEOUT);
    assert_watcher_gone(daemon);
    // The mountpoint is an ordinary empty directory again.
    assert_eq!(fs::read_dir(m.path()).unwrap().count(), 0);
}

/// A clean unmount of an auto_unmount mount: the daemon exits 0 and the watcher goes with it.
#[test]
fn auto_unmount_leaves_a_clean_unmount_alone() {
    let sshd = Sshd::start();
    let m = Mount::start(&sshd, &["-o", "auto_unmount"]);
    let mnt = m.path().to_path_buf();
    let daemon = m.pid() as i32;
    assert_eq!(auto_unmount_watchers_of(daemon).len(), 1, "a watcher");
    let status = m.unmount();
    assert!(status.success(), "{status}");
    assert_sshfs_rs_gone(&mnt, GONE_TIMEOUT);
    assert_watcher_gone(daemon);
}

/// Waits (bounded) for the `-o auto_unmount` watcher of `daemon` to end.
fn assert_watcher_gone(daemon: i32) {
    assert!(
        wait_until(GONE_TIMEOUT, || auto_unmount_watchers_of(daemon).is_empty()),
        "the watcher of {daemon} is still there {GONE_TIMEOUT:?} after it: {:?}",
        auto_unmount_watchers_of(daemon)
    );
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
    assert_eq!(pids.len(), 1, "the daemon alone: {pids:?}");
    let daemon = pids[0];
    assert_eq!(auto_unmount_watchers_of(daemon).len(), 1, "its watcher");
    kill(Pid::from_raw(daemon), Signal::SIGKILL).unwrap();
    assert!(
        wait_until(GONE_TIMEOUT, || !is_mounted(&mnt)),
        "still mounted {GONE_TIMEOUT:?} after kill -9 of the daemon"
    );
    assert_sshfs_rs_gone(&mnt, GONE_TIMEOUT);
    assert_watcher_gone(daemon);
}

/// `-o auto_unmount` gives the mount a watcher with a command line of its own (`sshfs-rs
/// --auto-unmount-watcher PID`, as libfuse's fusermount3 is a process of its own), so a script
/// that finds the daemon by the mount's command line finds it alone: `pgrep -f` of the exact
/// command line, and `pgrep -f 'sshfs-rs.*MOUNTPOINT'`, each name one pid, the process that
/// holds /dev/fuse (the one serving the mount). The watcher is there (found by its own command
/// line, without /dev/fuse), and `kill -9` of the pid pgrep found still takes the mount down.
#[test]
fn pgrep_of_the_mount_command_line_finds_the_daemon_alone() {
    let sshd = Sshd::start();
    let mountpoint = Mountpoint::new();
    let mnt = mountpoint.path().to_path_buf();
    let _cleanup = Daemon { mnt: mnt.clone() };
    let mut cmd = mount_command(&sshd, &mnt);
    cmd.args(["-o", "auto_unmount"]);
    let typed: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let out = run_to_eof(&mut cmd);
    assert!(out.status.success(), "{out:?}");
    assert!(is_mounted(&mnt));

    let exact = pgrep(&["-f", "-x", &regex_quote(&typed.join(" "))]);
    assert_eq!(exact.len(), 1, "pgrep -f of {typed:?}: {exact:?}");
    let daemon = exact[0];
    let loose = pgrep(&[
        "-f",
        &format!("sshfs-rs.*{}", regex_quote(&mnt.to_string_lossy())),
    ]);
    assert_eq!(loose, [daemon], "pgrep -f 'sshfs-rs.*MOUNTPOINT'");
    assert!(holds_dev_fuse(daemon), "{daemon} does not serve the mount");
    assert_eq!(sshfs_rs_processes_of(&mnt), [daemon]);

    let watchers = pgrep(&[
        "-f",
        "-x",
        &format!("sshfs-rs --auto-unmount-watcher {daemon}"),
    ]);
    assert_eq!(watchers.len(), 1, "the watcher of {daemon}: {watchers:?}");
    assert_eq!(watchers, auto_unmount_watchers_of(daemon));
    assert_ne!(watchers[0], daemon);
    assert!(!holds_dev_fuse(watchers[0]));
    assert_eq!(
        fs::read_to_string(format!("/proc/{}/comm", watchers[0]))
            .unwrap()
            .trim(),
        "sshfs-rs-watch"
    );

    kill(Pid::from_raw(daemon), Signal::SIGKILL).unwrap();
    assert!(
        wait_until(GONE_TIMEOUT, || !is_mounted(&mnt)),
        "still mounted {GONE_TIMEOUT:?} after kill -9 of the daemon"
    );
    assert_watcher_gone(daemon);
    assert!(pgrep(&["-f", "-x", &regex_quote(&typed.join(" "))]).is_empty());
}

/// `pgrep ARGS`: the pids it prints (none when it finds none).
fn pgrep(args: &[&str]) -> Vec<i32> {
    let out = run_command(Command::new("pgrep").args(args), RUN_TIMEOUT);
    // pgrep: 0 = found, 1 = none; anything else is an error.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "pgrep {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// `text` as an extended regular expression that matches it literally.
fn regex_quote(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.[]{}()*+?^$|".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
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
    if lacking(needs::local_users()) {
        return;
    }
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
    let daemon = m.child.id() as i32;
    assert_eq!(sshfs_rs_processes_of(&m.mnt), [daemon], "the daemon alone");
    let watchers = auto_unmount_watchers_of(daemon);
    assert_eq!(watchers.len(), 1, "its watcher: {watchers:?}");
    let status = fs::read_to_string(format!("/proc/{}/status", watchers[0])).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:")
                && l.split_whitespace().nth(1) == Some(&user.uid.to_string())),
        "the watcher runs as the user: {status}"
    );
    kill(Pid::from_raw(daemon), Signal::SIGKILL).unwrap();
    assert!(
        wait_until(GONE_TIMEOUT, || !is_mounted(&m.mnt)),
        "the user's mount is still there {GONE_TIMEOUT:?} after kill -9; stderr: {}",
        fs::read_to_string(&m.stderr).unwrap_or_default()
    );
    assert_sshfs_rs_gone(&m.mnt, GONE_TIMEOUT);
    assert_watcher_gone(daemon);
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
    let fusectl = needs::fusectl();
    if let Err(why) = &fusectl {
        skip_note(&format!("the max_background checks (fusectl): {why}"));
    }
    // Read once a request was answered: the mount shows before the kernel's INIT is done.
    if fusectl.is_ok() {
        assert_eq!(fuse_max_background(m.path()), Some(40));
    }
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
    if fusectl.is_ok() {
        assert_eq!(fuse_max_background(m.path()), Some(12));
    }
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
