//! Throwaway local users (the tests run as root), what they need to use FUSE, and running
//! commands as them. Everything is undone on drop, also while unwinding from a panic.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use tempfile::TempDir;

use super::{Sshd, run_command, sshfs_rs_bin};

/// Runs `program args` (with `stdin` written to it), panicking with its output unless it
/// succeeds.
pub fn run_ok(program: &str, args: &[&str], stdin: Option<&str>) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait for command");
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A local user, removed (with whatever it runs) when dropped. Its home is a directory of its
/// own in a temp dir everyone may enter ([`TestUser::home`]).
pub struct TestUser {
    /// Login name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// The gid of its own group.
    pub gid: u32,
    home_dir: TempDir,
    home: PathBuf,
}

impl TestUser {
    /// A user named `sfrs<tag><pid>` with no password, that sshd lets in with a key (its
    /// password field is `*`, not the locked `!` that sshd refuses without PAM).
    pub fn create(tag: &str) -> TestUser {
        let name = format!("sfrs{tag}{}", std::process::id());
        // Left over from a run that was killed: start clean.
        let _ = Command::new("userdel")
            .args(["-f", &name])
            .stderr(Stdio::null())
            .status();
        let (home_dir, base) = open_temp_dir("sshfs-rs-user-");
        let home = base.join("home");
        fs::create_dir(&home).expect("create home");
        let home_text = home.to_string_lossy().into_owned();
        run_ok(
            "useradd",
            &["-M", "-d", &home_text, "-s", "/bin/sh", "-p", "*", &name],
            None,
        );
        let user = TestUser {
            uid: id_of(&name, "-u"),
            gid: id_of(&name, "-g"),
            name,
            home_dir,
            home,
        };
        std::os::unix::fs::chown(&user.home, Some(user.uid), Some(user.gid)).expect("chown home");
        user
    }

    /// Like [`TestUser::create`], with a password.
    pub fn with_password(tag: &str, password: &str) -> TestUser {
        let user = TestUser::create(tag);
        run_ok(
            "chpasswd",
            &[],
            Some(&format!("{}:{password}\n", user.name)),
        );
        user
    }

    /// Its home directory (owned by it, mode 755).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Copies `file` into its home, owned by it with mode 600; returns the copy's path.
    pub fn give(&self, file: &Path) -> PathBuf {
        let to = self.home.join(file.file_name().expect("a file name"));
        fs::copy(file, &to).expect("copy file to user home");
        fs::set_permissions(&to, fs::Permissions::from_mode(0o600)).expect("chmod 600");
        std::os::unix::fs::chown(&to, Some(self.uid), Some(self.gid)).expect("chown");
        to
    }

    /// A command that runs as this user (its uid, gid and no other groups; HOME and
    /// XDG_RUNTIME_DIR its home).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.uid(self.uid)
            .gid(self.gid)
            .env("HOME", &self.home)
            .env("USER", &self.name)
            // Where sshfs-rs puts its control sockets: removed with the home.
            .env("XDG_RUNTIME_DIR", &self.home)
            .env_remove("SSH_AUTH_SOCK")
            .current_dir(&self.home);
        cmd
    }

    /// A directory `mnt` this user owns, in an [`open_temp_dir`] named `prefix...` (returned
    /// too, for the test's other files): a mountpoint for its mounts.
    pub fn mountpoint(&self, prefix: &str) -> (TempDir, PathBuf) {
        let (dir, base) = open_temp_dir(prefix);
        let mnt = base.join("mnt");
        fs::create_dir(&mnt).expect("create mountpoint");
        std::os::unix::fs::chown(&mnt, Some(self.uid), Some(self.gid)).expect("chown mountpoint");
        (dir, mnt)
    }

    /// Starts `sshfs-rs SOURCE MNT -p PORT -o IdentityFile=..,UserKnownHostsFile=..,
    /// StrictHostKeyChecking=yes,BatchMode=yes EXTRA` as this user ([`TestUser::command`]),
    /// with `sshd`'s key and known_hosts given to it; stdin and stdout null, stderr to the file
    /// `stderr`.
    pub fn spawn_sshfs_rs(
        &self,
        sshd: &Sshd,
        source: &str,
        mnt: &Path,
        extra: &[&str],
        stderr: &Path,
    ) -> Child {
        let key = self.give(sshd.user_key());
        let known_hosts = self.give(sshd.known_hosts());
        self.command(sshfs_rs_bin())
            .arg(source)
            .arg(mnt)
            .args(["-p", &sshd.port().to_string(), "-o"])
            .arg(format!(
                "IdentityFile={},UserKnownHostsFile={},StrictHostKeyChecking=yes,BatchMode=yes",
                key.display(),
                known_hosts.display()
            ))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(stderr).expect("create the stderr log"))
            .spawn()
            .expect("run sshfs-rs as the test user")
    }

    /// Runs `sh -c script` as this user (bounded by `timeout`) and returns its output.
    pub fn sh(&self, script: &str, timeout: Duration) -> Output {
        run_command(self.command("sh").arg("-c").arg(script), timeout)
    }
}

/// A temp dir named `prefix...` that every user may enter (mode 755), and its canonical path:
/// where a test user's files and mountpoints go.
pub fn open_temp_dir(prefix: &str) -> (TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create temp dir");
    let base = dir.path().canonicalize().expect("canonicalize temp dir");
    fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).expect("chmod 755");
    (dir, base)
}

fn id_of(name: &str, flag: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, name])
        .output()
        .expect("run id");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("id prints a number")
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", &self.name])
            .status();
        let status = Command::new("userdel").args(["-f", &self.name]).status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("warning: could not remove test user {}", self.name);
        }
        // `home_dir` (a TempDir) is removed when the fields drop.
    }
}

/// How many [`DevFuseOpen`] exist in this process, and /dev/fuse's mode before the first.
static DEV_FUSE: Mutex<(usize, u32)> = Mutex::new((0, 0));

/// /dev/fuse open to every user (mode 666, as on a desktop; here it is 600), while any of
/// these exists in the process; its mode before is put back when the last one drops.
pub struct DevFuseOpen(());

impl DevFuseOpen {
    /// Makes /dev/fuse mode 666 (counted: tests may run in parallel).
    pub fn new() -> DevFuseOpen {
        let mut state = DEV_FUSE.lock().unwrap_or_else(|e| e.into_inner());
        if state.0 == 0 {
            let mode = fs::metadata("/dev/fuse")
                .expect("stat /dev/fuse")
                .permissions()
                .mode();
            fs::set_permissions("/dev/fuse", fs::Permissions::from_mode(0o666))
                .expect("chmod 666 /dev/fuse");
            state.1 = mode & 0o7777;
        }
        state.0 += 1;
        DevFuseOpen(())
    }
}

impl Drop for DevFuseOpen {
    fn drop(&mut self) {
        let mut state = DEV_FUSE.lock().unwrap_or_else(|e| e.into_inner());
        state.0 -= 1;
        if state.0 == 0
            && let Err(e) = fs::set_permissions("/dev/fuse", fs::Permissions::from_mode(state.1))
        {
            eprintln!("warning: could not restore /dev/fuse to {:o}: {e}", state.1);
        }
    }
}
