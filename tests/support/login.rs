//! A local user with a password, an sshd that takes passwords, mountpoints, and running
//! sshfs-rs with a line on its stdin: what the password tests (tests/ssh.rs, tests/keyring.rs)
//! share. The user is created with useradd (the tests run as root) and removed again when
//! dropped, also when a test fails.

use std::fs;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::{Sshd, SshdOptions, is_mounted, sshfs_rs_bin, wait_until};

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
        let dir = tempfile::Builder::new()
            .prefix("sshfs-rs-ssh-")
            .tempdir()
            .unwrap();
        let base = dir.path().canonicalize().unwrap();
        fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();
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
    let err = tempfile::tempfile().unwrap();
    let mut child: Child = Command::new(sshfs_rs_bin())
        .args(args)
        .env("HOME", home)
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    let status = exited_within_mount_timeout(&mut child, args);
    let mut text = String::new();
    let mut err = err;
    err.rewind().unwrap();
    err.read_to_string(&mut text).unwrap();
    (status, text)
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
