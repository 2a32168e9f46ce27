//! A local user with a password, an sshd that takes passwords, mountpoints, and running
//! sshfs-rs with a line on its stdin: what the password tests (tests/ssh.rs, tests/keyring.rs)
//! share. The user is created with useradd (the tests run as root) and removed again when
//! dropped, also when a test fails.

use std::fs;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::{
    FaultProxy, MountStats, Sshd, SshdOptions, is_mounted, open_temp_dir, sshfs_rs_bin, wait_until,
};

/// Bound on a mount command (the parent exits once the mount is live).
pub const MOUNT_TIMEOUT: Duration = Duration::from_secs(20);

pub use super::{TestUser, run_ok};

/// A directory the test user owns (in a temp dir everyone may enter).
pub struct UserDir {
    _dir: TempDir,
    /// The directory, owned by the user.
    pub data: PathBuf,
}

impl UserDir {
    pub fn new(user: &TestUser) -> UserDir {
        let (dir, base) = open_temp_dir("sshfs-rs-ssh-");
        let data = base.join("data");
        fs::create_dir(&data).unwrap();
        std::os::unix::fs::chown(&data, Some(user.uid), Some(user.gid)).unwrap();
        UserDir { _dir: dir, data }
    }
}

/// A mountpoint, unmounted (lazily if need be) when dropped; the daemon then exits.
pub struct Mountpoint {
    dir: TempDir,
    mnt: PathBuf,
}

impl Mountpoint {
    pub fn new() -> Mountpoint {
        let dir = tempfile::Builder::new()
            .prefix("sshfs-rs-ssh-mnt-")
            .tempdir()
            .unwrap();
        let mnt = dir.path().canonicalize().unwrap().join("mnt");
        fs::create_dir(&mnt).unwrap();
        Mountpoint { dir, mnt }
    }

    pub fn path(&self) -> &Path {
        &self.mnt
    }

    /// The temp dir holding the mountpoint, for a test's other files.
    pub fn base(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        let home = self.dir.path().join("home");
        let _ = fs::create_dir(&home);
        home
    }
}

impl Drop for Mountpoint {
    fn drop(&mut self) {
        for _ in 0..3 {
            if !is_mounted(&self.mnt) {
                return;
            }
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg(&self.mnt)
                .stderr(Stdio::null())
                .status();
            if is_mounted(&self.mnt) {
                let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
            }
        }
    }
}

/// Runs sshfs-rs with `args`, `stdin` written to its stdin (then closed), HOME an empty
/// directory and no ssh-agent; waits (bounded) for it to exit and returns its status and stderr.
/// Without `-f` it exits once the mount is live, the daemon staying behind.
pub fn sshfs_rs(home: &Path, args: &[String], stdin: &str) -> (ExitStatus, String) {
    run_to_exit(Command::new(sshfs_rs_bin()), home, args, Some(stdin))
}

/// Like [`sshfs_rs`] with stdin null, in a session of its own (`setsid`): no controlling
/// terminal, so nothing can be asked.
pub fn sshfs_rs_without_terminal(home: &Path, args: &[String]) -> (ExitStatus, String) {
    let mut cmd = Command::new("setsid");
    cmd.arg(sshfs_rs_bin());
    run_to_exit(cmd, home, args, None)
}

/// Runs `cmd ARGS` (HOME=`home`, no agent, `stdin` written then closed, or stdin null) until
/// it exits, bounded; returns its status and stderr.
fn run_to_exit(
    mut cmd: Command,
    home: &Path,
    args: &[String],
    stdin: Option<&str>,
) -> (ExitStatus, String) {
    let err = tempfile::tempfile().unwrap();
    let mut child: Child = cmd
        .args(args)
        .env("HOME", home)
        .env_remove("SSH_AUTH_SOCK")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap();
    if let (Some(mut input), Some(text)) = (child.stdin.take(), stdin) {
        let _ = input.write_all(text.as_bytes());
    }
    let status = exited_within_mount_timeout(&mut child, args);
    let mut text = String::new();
    let mut err = err;
    err.rewind().unwrap();
    err.read_to_string(&mut text).unwrap();
    (status, text)
}

/// On `mnt`, a mount of `dir` logged in as `user`: a file written through the mount (`data`)
/// is on the server, owned by the user, and one written on the server reads the same through
/// the mount. Then the connection is cut (`proxy` carries it): a file written after the cut is
/// on the server. Returns the mount's counters after that.
pub fn files_go_both_ways_and_after_a_cut(
    mnt: &Path,
    dir: &UserDir,
    user: &TestUser,
    proxy: &FaultProxy,
    data: &[u8],
) -> MountStats {
    fs::write(mnt.join("hello"), data).unwrap();
    let on_server = dir.data.join("hello");
    assert_eq!(fs::read(&on_server).unwrap(), data);
    assert_eq!(fs::metadata(&on_server).unwrap().uid(), user.uid);
    fs::write(dir.data.join("from-server"), b"server side").unwrap();
    assert_eq!(fs::read(mnt.join("from-server")).unwrap(), b"server side");

    // The next request waits for a new connection, logged in again the same way.
    proxy.cut();
    fs::write(mnt.join("after-cut"), b"again").unwrap();
    assert_eq!(fs::read(dir.data.join("after-cut")).unwrap(), b"again");
    MountStats::of(mnt)
}

/// Makes an Ed25519 key at `path` (its public half at `path.pub`) protected by `passphrase`.
pub fn key_with_passphrase(path: &Path, passphrase: &str) {
    run_ok(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            passphrase,
            "-C",
            "",
            "-f",
            path.to_str().unwrap(),
        ],
        None,
    );
}

/// An sshd that takes passwords and logs each login.
pub fn password_sshd() -> Sshd {
    Sshd::start_with(SshdOptions {
        password_auth: true,
        extra_config: "LogLevel INFO\n".to_owned(),
        ..SshdOptions::default()
    })
}

pub fn logins(sshd: &Sshd, method: &str, user: &str) -> usize {
    sshd.log()
        .lines()
        .filter(|l| l.contains(&format!("Accepted {method} for {user} ")))
        .count()
}

/// The exit status of `child` (sshfs-rs run with `args`); killed, and a panic, if it runs
/// longer than [`MOUNT_TIMEOUT`].
pub fn exited_within_mount_timeout(
    child: &mut std::process::Child,
    args: &[String],
) -> std::process::ExitStatus {
    let mut status = None;
    wait_until(MOUNT_TIMEOUT, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("sshfs-rs {args:?} still running after {MOUNT_TIMEOUT:?}");
    };
    status
}
