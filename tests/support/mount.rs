//! Mounting the binary under test (and the C `sshfs`) as foreground child processes.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::process::{run_bounded, terminate, wait_timeout};
use super::{Sshd, abort_fuse_connection, fuse_connection_of, is_mounted, run_command, wait_until};

/// Default timeout for [`run_sshfs_rs`].
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(20);
const MOUNT_TIMEOUT: Duration = Duration::from_secs(15);
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
const HELPER_TIMEOUT: Duration = Duration::from_secs(5);

/// Path of the sshfs-rs binary under test.
pub fn sshfs_rs_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sshfs-rs"))
}

/// Runs sshfs-rs with `args` to completion (HOME=`home`, no SSH_AUTH_SOCK,
/// stdin null). Panics, with its stderr, if it runs longer than `timeout`.
pub fn run_sshfs_rs(home: &Path, args: &[&str], timeout: Duration) -> Output {
    let mut cmd = Command::new(sshfs_rs_bin());
    cmd.args(args).env("HOME", home).env_remove("SSH_AUTH_SOCK");
    run_command(&mut cmd, timeout)
}

/// Runs `sshfs-rs SOURCE MNT -f ARGS` to completion, set up as [`Mount::start_plain`] sets it
/// up (HOME=`home`, no SSH_AUTH_SOCK unless `env` sets it, `env` applied), for a mount that is
/// meant to fail. Panics, with its stderr, if it runs longer than `timeout`.
pub fn run_plain<S: AsRef<OsStr>>(
    source: &str,
    mnt: &Path,
    args: &[S],
    home: &Path,
    env: &[(&str, Option<&OsStr>)],
    timeout: Duration,
) -> Output {
    let mut cmd = Command::new(sshfs_rs_bin());
    plain_setup(&mut cmd, source, mnt, args, home, env);
    run_command(&mut cmd, timeout)
}

/// `SOURCE MNT -f ARGS`, HOME=`home`, SSH_AUTH_SOCK removed, then `env` (`None` removes a
/// variable): what [`Mount::start_plain`] and [`run_plain`] give sshfs-rs.
fn plain_setup<S: AsRef<OsStr>>(
    cmd: &mut Command,
    source: &str,
    mnt: &Path,
    args: &[S],
    home: &Path,
    env: &[(&str, Option<&OsStr>)],
) {
    cmd.arg(source)
        .arg(mnt)
        .arg("-f")
        .args(args)
        .env("HOME", home)
        .env_remove("SSH_AUTH_SOCK");
    for (name, value) in env {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
}

/// `-F /dev/null -p PORT -o OPTIONS`: no ssh_config file, the port, and the `-o` list.
pub fn no_config_args(port: u16, options: String) -> Vec<String> {
    vec![
        "-F".into(),
        "/dev/null".into(),
        "-p".into(),
        port.to_string(),
        "-o".into(),
        options,
    ]
}

/// The counters of a running sshfs-rs mount, as `sshfs-rs --stats MNT` prints them
/// (`sftp requests: total=N open=N ...; cache: hits=N ...; open-ahead: taken=N ...`).
#[derive(Debug)]
pub struct MountStats(String);

impl MountStats {
    /// Asks the mount on `mnt` for its counters.
    pub fn of(mnt: &Path) -> MountStats {
        let out = run_command(
            Command::new(sshfs_rs_bin()).arg("--stats").arg(mnt),
            Duration::from_secs(60),
        );
        let line = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "--stats failed: {line} {out:?}");
        MountStats(line)
    }

    /// The number after `key` (which ends with `=`, e.g. `"total="`).
    pub fn get(&self, key: &str) -> u64 {
        self.0
            .split([' ', ';', '\n'])
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {:?}", self.0))
    }
}

/// A mount of the sshfs-rs binary under test, running in the foreground (`-f`)
/// as a child process. Dropping it unmounts, stops the process and removes the
/// mountpoint.
pub struct Mount(FuseProcess);

impl Mount {
    /// Mounts `sshd.root_dir()` (see [`Mount::start_remote`]).
    pub fn start(sshd: &Sshd, extra_args: &[&str]) -> Mount {
        Mount::start_remote(sshd, &sshd.root_dir().to_string_lossy(), extra_args)
    }

    /// Runs `sshfs-rs root@127.0.0.1:<remote> <mnt> -f -p PORT -o IdentityFile=..,
    /// UserKnownHostsFile=..,StrictHostKeyChecking=yes,BatchMode=yes <extra_args>`
    /// and waits (at most 15 s) until the mount appears. Panics with its stderr otherwise.
    pub fn start_remote(sshd: &Sshd, remote: &str, extra_args: &[&str]) -> Mount {
        Mount(FuseProcess::start(
            Client::SshfsRs,
            sshd,
            sshd.port(),
            remote,
            extra_args,
        ))
    }

    /// Runs `sshfs-rs SOURCE MNT -f ARGS` with nothing added (no key, known_hosts or port),
    /// HOME=`home`, SSH_AUTH_SOCK removed unless `env` sets it, and `env` applied (`None`
    /// removes a variable); waits for the mount like [`Mount::start_remote`].
    pub fn start_plain(
        source: &str,
        args: &[&str],
        home: &Path,
        env: &[(&str, Option<&OsStr>)],
    ) -> Mount {
        Mount(FuseProcess::launch(sshfs_rs_bin(), |mnt, cmd| {
            plain_setup(cmd, source, mnt, args, home, env);
        }))
    }

    /// Mounts `sshd.root_dir()` through another port, e.g. a [`FaultProxy`](super::FaultProxy)'s;
    /// the port is added to `sshd.known_hosts()` first.
    pub fn start_via(sshd: &Sshd, port: u16, extra_args: &[&str]) -> Mount {
        sshd.trust_port(port);
        let remote = sshd.root_dir().to_string_lossy();
        Mount(FuseProcess::start(
            Client::SshfsRs,
            sshd,
            port,
            &remote,
            extra_args,
        ))
    }

    /// The mountpoint.
    pub fn path(&self) -> &Path {
        &self.0.mnt
    }

    /// Pid of the sshfs-rs process.
    pub fn pid(&self) -> u32 {
        self.0.pid
    }

    /// Unmounts (`fusermount3 -u`, falling back to `umount -l`), waits at most
    /// 10 s for the process to exit (killing it otherwise) and returns its status.
    pub fn unmount(self) -> ExitStatus {
        self.0.unmount()
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.0.stderr()
    }
}

/// The C `sshfs`, mounted exactly like [`Mount`] for comparisons and benchmarks.
/// It also gets `-F /dev/null` so ssh never reads the real `~/.ssh/config`
/// (OpenSSH finds `~` through the password database, not `$HOME`).
pub struct SshfsC(FuseProcess);

impl SshfsC {
    /// Mounts `sshd.root_dir()` with the C `sshfs`.
    pub fn start(sshd: &Sshd, extra_args: &[&str]) -> SshfsC {
        SshfsC::start_remote(sshd, &sshd.root_dir().to_string_lossy(), extra_args)
    }

    /// Mounts `remote` with the C `sshfs` (same arguments and waiting as [`Mount::start_remote`]).
    pub fn start_remote(sshd: &Sshd, remote: &str, extra_args: &[&str]) -> SshfsC {
        SshfsC(FuseProcess::start(
            Client::SshfsC,
            sshd,
            sshd.port(),
            remote,
            extra_args,
        ))
    }

    /// Mounts `sshd.root_dir()` through another port, e.g. a [`FaultProxy`](super::FaultProxy)'s;
    /// the port is added to `sshd.known_hosts()` first.
    pub fn start_via(sshd: &Sshd, port: u16, extra_args: &[&str]) -> SshfsC {
        sshd.trust_port(port);
        let remote = sshd.root_dir().to_string_lossy();
        SshfsC(FuseProcess::start(
            Client::SshfsC,
            sshd,
            port,
            &remote,
            extra_args,
        ))
    }

    /// The mountpoint.
    pub fn path(&self) -> &Path {
        &self.0.mnt
    }

    /// Pid of the sshfs process.
    pub fn pid(&self) -> u32 {
        self.0.pid
    }

    /// Unmounts and returns the exit status, like [`Mount::unmount`].
    pub fn unmount(self) -> ExitStatus {
        self.0.unmount()
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.0.stderr()
    }
}

/// Which FUSE client a [`FuseProcess`] runs.
#[derive(Clone, Copy)]
enum Client {
    SshfsRs,
    SshfsC,
}

impl Client {
    fn program(self) -> PathBuf {
        match self {
            Client::SshfsRs => sshfs_rs_bin(),
            Client::SshfsC => PathBuf::from("sshfs"),
        }
    }

    /// Arguments placed before `-o`, beyond the ones both clients share.
    fn own_args(self) -> &'static [&'static str] {
        match self {
            Client::SshfsRs => &[],
            Client::SshfsC => &["-F", "/dev/null"],
        }
    }
}

/// A FUSE client child process and its mountpoint: start, wait, unmount, clean up.
struct FuseProcess {
    program: PathBuf,
    child: Option<Child>,
    pid: u32,
    /// Holds `mnt/` and the stdout/stderr logs; `None` once deliberately leaked.
    dir: Option<TempDir>,
    mnt: PathBuf,
    stderr_log: PathBuf,
}

impl FuseProcess {
    fn start(
        client: Client,
        sshd: &Sshd,
        port: u16,
        remote: &str,
        extra_args: &[&str],
    ) -> FuseProcess {
        let ssh_opts = format!(
            "IdentityFile={},UserKnownHostsFile={},StrictHostKeyChecking=yes,BatchMode=yes",
            sshd.user_key().display(),
            sshd.known_hosts().display()
        );
        FuseProcess::launch(client.program(), |mnt, cmd| {
            cmd.arg(format!("root@127.0.0.1:{remote}"))
                .arg(mnt)
                .args(["-f", "-p", &port.to_string()])
                .args(client.own_args())
                .args(["-o", &ssh_opts])
                .args(extra_args)
                .env("HOME", sshd.home())
                .env_remove("SSH_AUTH_SOCK");
        })
    }

    /// Starts `program` with the arguments and environment `setup` gives it (it is handed the
    /// mountpoint), output to logs in a temp dir, and waits until the mount appears.
    fn launch(program: PathBuf, setup: impl FnOnce(&Path, &mut Command)) -> FuseProcess {
        let dir = tempfile::Builder::new()
            .prefix("sshfs-rs-mnt-")
            .tempdir()
            .expect("create mount temp dir");
        let base = dir
            .path()
            .canonicalize()
            .expect("canonicalize mount temp dir");
        let mnt = base.join("mnt");
        fs::create_dir(&mnt).expect("create mountpoint");
        let stderr_log = base.join("stderr.log");
        let mut cmd = Command::new(&program);
        setup(&mnt, &mut cmd);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(File::create(base.join("stdout.log")).expect("create stdout.log"))
            .stderr(File::create(&stderr_log).expect("create stderr.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        let mut this = FuseProcess {
            program,
            pid: child.id(),
            child: Some(child),
            dir: Some(dir),
            mnt,
            stderr_log,
        };
        this.wait_mounted(); // a panic here drops `this`, which cleans up
        this
    }

    fn wait_mounted(&mut self) {
        let mut exited = None;
        let mounted = wait_until(MOUNT_TIMEOUT, || {
            exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            exited.is_none() && is_mounted(&self.mnt)
        });
        let name = self.program.display();
        match (mounted, exited) {
            (true, _) => {}
            (false, Some(status)) => panic!(
                "{name} exited ({status}) before mounting; stderr:\n{}",
                self.stderr()
            ),
            (false, None) => panic!(
                "{name} did not mount within {MOUNT_TIMEOUT:?}; stderr:\n{}",
                self.stderr()
            ),
        }
    }

    fn unmount(mut self) -> ExitStatus {
        if !self.detach(None) {
            eprintln!(
                "warning: {} still mounted after fusermount3 -u and umount -l",
                self.mnt.display()
            );
        }
        let mut child = self
            .child
            .take()
            .expect("child is present until unmount or drop");
        wait_timeout(&mut child, EXIT_TIMEOUT).unwrap_or_else(|| {
            eprintln!(
                "warning: {} did not exit within {EXIT_TIMEOUT:?} of unmount; killing it",
                self.program.display()
            );
            terminate(&mut child, Duration::ZERO)
        })
    }

    /// Unmounts if mounted: `fusermount3 -u`, then `umount -l`, then aborting
    /// connection `conn` and `umount -l` again. Returns whether it is unmounted.
    fn detach(&self, conn: Option<u32>) -> bool {
        let mnt = self.mnt.to_string_lossy();
        if !is_mounted(&self.mnt) {
            return true;
        }
        if run_bounded("fusermount3", &["-u", &mnt], HELPER_TIMEOUT) && !is_mounted(&self.mnt) {
            return true;
        }
        if run_bounded("umount", &["-l", &mnt], HELPER_TIMEOUT) && !is_mounted(&self.mnt) {
            return true;
        }
        if let Some(conn) = conn {
            abort_fuse_connection(conn);
            run_bounded("umount", &["-l", &mnt], HELPER_TIMEOUT);
        }
        !is_mounted(&self.mnt)
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_log)
            .unwrap_or_else(|e| format!("<cannot read {}: {e}>", self.stderr_log.display()))
    }
}

impl Drop for FuseProcess {
    fn drop(&mut self) {
        let conn = fuse_connection_of(&self.mnt);
        let unmounted = self.detach(conn);
        if let Some(mut child) = self.child.take() {
            let exited = wait_timeout(&mut child, Duration::from_secs(2)).is_some();
            if !exited {
                // Unblock a daemon stuck on the connection before killing it.
                if let Some(conn) = conn {
                    abort_fuse_connection(conn);
                }
                terminate(&mut child, Duration::from_secs(2));
            }
        }
        if !unmounted && !self.detach(conn) {
            // Never let TempDir recurse into a live mount: leak the directory instead.
            eprintln!(
                "warning: leaving {} in place, it is still mounted",
                self.mnt.display()
            );
            if let Some(dir) = self.dir.take() {
                let _ = dir.keep();
            }
        }
    }
}
