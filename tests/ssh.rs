//! Connecting like ssh does, through a real mount against real sshd instances: passwords given
//! on stdin (`-o password_stdin`), and kept for reconnects.
//!
//! The password tests create a throwaway local user with a password (the tests run as root,
//! support::TestUser) and remove it again when done, also when a test fails.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use support::login::{
    MOUNT_TIMEOUT, Mountpoint, TestUser, UserDir, files_go_both_ways_and_after_a_cut,
    key_with_passphrase, logins, password_sshd, sshfs_rs, sshfs_rs_without_terminal,
};
use support::{
    FaultProxy, MountStats, Sshd, SshdOptions, is_mounted, lacking, needs, sshfs_rs_bin, wait_until,
};

/// `-o password_stdin`: the password is read before the program goes to the background, the
/// mount works as the user, and a reconnect (the connection cut) logs in again with the same
/// password without asking anyone.
#[test]
fn password_stdin_mounts_and_reconnects_without_asking() {
    if lacking(needs::local_users()) {
        return;
    }
    let user = TestUser::with_password("pw", "s3cret pass");
    let sshd = password_sshd();
    let dir = UserDir::new(&user);
    let proxy = FaultProxy::start(sshd.port());
    sshd.trust_port(proxy.port());
    let mnt = Mountpoint::new();
    let args: Vec<String> = vec![
        format!("{}@127.0.0.1:{}", user.name, dir.data.display()),
        mnt.path().display().to_string(),
        "-p".into(),
        proxy.port().to_string(),
        "-o".into(),
        format!(
            "UserKnownHostsFile={},StrictHostKeyChecking=yes,password_stdin",
            sshd.known_hosts().display()
        ),
    ];
    let (status, stderr) = sshfs_rs(&mnt.home(), &args, "s3cret pass\n");
    assert!(
        status.success(),
        "mount failed: {stderr}\nsshd log:\n{}",
        sshd.log()
    );
    assert!(is_mounted(mnt.path()), "not mounted after exit 0");
    assert_eq!(logins(&sshd, "password", &user.name), 1, "{}", sshd.log());

    // Then a cut connection: the next request waits for a new one, made with the same password.
    let stats = files_go_both_ways_and_after_a_cut(
        mnt.path(),
        &dir,
        &user,
        &proxy,
        b"through the password mount\n",
    );
    assert!(stats.get("reconnects=") >= 1, "no reconnect: {stats:?}");
    assert_eq!(
        logins(&sshd, "password", &user.name),
        2,
        "two password logins expected:\n{}",
        sshd.log()
    );
}

/// A wrong password on stdin: one line naming the password as refused, nothing mounted, and
/// the password sent once only (no retries with the same one). In batch mode (as a mount
/// helper runs) the password from stdin is still used.
#[test]
fn password_stdin_wrong_password_is_one_clear_line() {
    if lacking(needs::local_users()) {
        return;
    }
    let user = TestUser::with_password("bad", "right one");
    let sshd = password_sshd();
    let dir = UserDir::new(&user);
    let mnt = Mountpoint::new();
    let args = |batch: &str| -> Vec<String> {
        vec![
            format!("{}@127.0.0.1:{}", user.name, dir.data.display()),
            mnt.path().display().to_string(),
            "-f".into(),
            "-p".into(),
            sshd.port().to_string(),
            "-o".into(),
            format!(
                "UserKnownHostsFile={},BatchMode={batch},password_stdin",
                sshd.known_hosts().display()
            ),
        ]
    };
    let (status, stderr) = sshfs_rs(&mnt.home(), &args("no"), "wrong one\n");
    assert!(!status.success());
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("Permission denied")
            && stderr.contains("password (the one given was refused"),
        "{stderr}"
    );
    assert!(!is_mounted(mnt.path()));
    let failed = sshd
        .log()
        .lines()
        .filter(|l| l.contains("Failed password for"))
        .count();
    assert_eq!(failed, 1, "the password is sent once:\n{}", sshd.log());

    // Batch mode and the right password, in the foreground: mounts; then unmount.
    let home = mnt.home();
    let a = args("yes");
    let mut child = Command::new(sshfs_rs_bin())
        .args(&a)
        .env("HOME", &home)
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"right one\n")
        .unwrap();
    let mounted = wait_until(MOUNT_TIMEOUT, || is_mounted(mnt.path()));
    if !mounted {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "batch mode + password_stdin did not mount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fs::write(mnt.path().join("f"), b"x").unwrap();
    assert_eq!(fs::read(dir.data.join("f")).unwrap(), b"x");
    let _ = Command::new("fusermount3")
        .arg("-u")
        .arg(mnt.path())
        .status();
    let exited = wait_until(Duration::from_secs(10), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// sshfs-rs running in the foreground (`-f` is added) until dropped: unmounted, then stopped.
struct FgMount {
    child: Child,
    stderr: PathBuf,
    mnt: Mountpoint,
}

impl FgMount {
    /// Starts `sshfs-rs SOURCE MNT -f ARGS` and waits (bounded) for the mount; panics with its
    /// stderr if it exits or does not mount.
    fn start(source: &str, args: &[String]) -> FgMount {
        let mnt = Mountpoint::new();
        let stderr = mnt.base().join("stderr.log");
        let child = Command::new(sshfs_rs_bin())
            .arg(source)
            .arg(mnt.path())
            .arg("-f")
            .args(args)
            .env("HOME", mnt.home())
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut m = FgMount { child, stderr, mnt };
        let mut exited = false;
        let mounted = wait_until(MOUNT_TIMEOUT, || {
            exited = m.child.try_wait().ok().flatten().is_some();
            exited || is_mounted(m.path())
        });
        assert!(
            mounted && !exited,
            "sshfs-rs {source} {args:?} did not mount: {}",
            m.stderr()
        );
        m
    }

    fn path(&self) -> &Path {
        self.mnt.path()
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for FgMount {
    fn drop(&mut self) {
        let _ = Command::new("fusermount3")
            .arg("-u")
            .arg(self.mnt.path())
            .stderr(Stdio::null())
            .status();
        let exited = wait_until(Duration::from_secs(10), || {
            self.child.try_wait().ok().flatten().is_some()
        });
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs sshfs-rs to completion (bounded; stdin empty) and returns its status and stderr.
fn sshfs_rs_fails(home: &Path, args: &[String]) -> (ExitStatus, String) {
    sshfs_rs(home, args, "")
}

/// A config with `Include` (a glob), `Match originalhost` setting HostName, and the rest in an
/// included `Host` block: the alias mounts the test server. `ControlMaster` (known to ssh, not
/// acted on) is named in one warning line; `SendEnv` (meaningless for a mount) is not.
#[test]
fn ssh_config_include_and_match_reach_the_server_and_unused_keys_are_named() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().canonicalize().unwrap();
    fs::create_dir(d.join("inc")).unwrap();
    fs::write(
        d.join("inc/10-alias.conf"),
        format!(
            "Host viaconfig\n  Port {}\n  User root\n  IdentityFile {}\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  BatchMode yes\n  ControlMaster auto\n  SendEnv LANG\n",
            sshd.port(),
            sshd.user_key().display(),
            sshd.known_hosts().display()
        ),
    )
    .unwrap();
    let config = d.join("config");
    fs::write(
        &config,
        format!(
            "Match originalhost viaconfig\n  HostName 127.0.0.1\nInclude {}/inc/*.conf\n",
            d.display()
        ),
    )
    .unwrap();
    fs::write(sshd.root_dir().join("seen"), b"via the config").unwrap();
    let source = format!("viaconfig:{}", sshd.root_dir().display());
    let m = FgMount::start(&source, &["-F".into(), config.display().to_string()]);
    assert_eq!(fs::read(m.path().join("seen")).unwrap(), b"via the config");
    let stderr = m.stderr();
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("ControlMaster") && !warnings[0].contains("SendEnv"),
        "{stderr}"
    );

    // A key ssh does not know is an error naming the file and line, as in ssh.
    fs::write(&config, "Host *\n  Frobnicate yes\n").unwrap();
    let mnt = Mountpoint::new();
    let (status, stderr) = sshfs_rs_fails(
        &mnt.home(),
        &[
            source.clone(),
            mnt.path().display().to_string(),
            "-F".into(),
            config.display().to_string(),
        ],
    );
    assert!(!status.success());
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("line 2") && stderr.contains("Bad configuration option: Frobnicate"),
        "{stderr}"
    );
    assert!(!is_mounted(mnt.path()));
}

/// A jump host (its log shows each forwarding) and a target server, each with its own keys.
struct JumpSetup {
    jump: Sshd,
    target: Sshd,
    /// In front of the jump host: cutting it cuts every connection through the jump host.
    proxy: FaultProxy,
    dir: TempDir,
}

impl JumpSetup {
    fn new() -> JumpSetup {
        let jump = Sshd::start_with(SshdOptions {
            extra_config: "LogLevel DEBUG1\nAllowTcpForwarding yes\n".to_owned(),
            ..SshdOptions::default()
        });
        let target = Sshd::start_with(SshdOptions {
            extra_config: "LogLevel INFO\n".to_owned(),
            ..SshdOptions::default()
        });
        let proxy = FaultProxy::start(jump.port());
        jump.trust_port(proxy.port());
        let dir = tempfile::tempdir().unwrap();
        JumpSetup {
            jump,
            target,
            proxy,
            dir,
        }
    }

    /// An ssh_config: `jump` (through the fault proxy), `jump2` (straight to the jump host),
    /// and `target` (with `extra` lines).
    fn config(&self, extra: &str) -> PathBuf {
        let host = |name: &str, port: u16, sshd: &Sshd, extra: &str| {
            format!(
                "Host {name}\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  IdentityFile {}\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  BatchMode yes\n{extra}",
                sshd.user_key().display(),
                sshd.known_hosts().display()
            )
        };
        let text = [
            host("jump", self.proxy.port(), &self.jump, ""),
            host("jump2", self.jump.port(), &self.jump, ""),
            host("target", self.target.port(), &self.target, extra),
        ]
        .concat();
        let path = self.dir.path().join("config");
        fs::write(&path, text).unwrap();
        path
    }

    fn source(&self) -> String {
        format!("target:{}", self.target.root_dir().display())
    }

    /// Forwardings the jump host made to the target's port.
    fn forwardings(&self) -> usize {
        let to = format!("target 127.0.0.1 port {}", self.target.port());
        self.jump
            .log()
            .lines()
            .filter(|l| l.contains("server_request_direct_tcpip") && l.trim_end().ends_with(&to))
            .count()
    }

    fn logs(&self) -> String {
        format!(
            "jump log:\n{}\ntarget log:\n{}",
            self.jump.log(),
            self.target.log()
        )
    }
}

fn publickey_logins(sshd: &Sshd) -> usize {
    logins(sshd, "publickey", "root")
}

/// Writes a file through the mount and reads it on the server.
fn write_through(m: &FgMount, server: &Path, name: &str) {
    fs::write(m.path().join(name), name.as_bytes()).unwrap();
    assert_eq!(fs::read(server.join(name)).unwrap(), name.as_bytes());
}

/// `ProxyJump` in the config: one login on the jump host, a forwarding from it to the target,
/// one login on the target; after the jump host's connection is cut, the mount reconnects
/// through the jump host again (two logins on each).
#[test]
fn proxy_jump_from_the_config_survives_a_reconnect() {
    let s = JumpSetup::new();
    let config = s.config("  ProxyJump jump\n");
    let m = FgMount::start(&s.source(), &["-F".into(), config.display().to_string()]);
    works_through_the_jump_and_after_a_cut(&s, &m, "one", "two");
}

/// A file written through `m` reaches the target after one login on each server and a
/// forwarding on the jump host; after the jump host's connection is cut, the mount reconnects
/// through it again (two logins on each) and a file written then reaches the target too.
fn works_through_the_jump_and_after_a_cut(s: &JumpSetup, m: &FgMount, first: &str, second: &str) {
    write_through(m, s.target.root_dir(), first);
    assert_eq!(publickey_logins(&s.jump), 1, "{}", s.logs());
    assert_eq!(publickey_logins(&s.target), 1, "{}", s.logs());
    assert!(s.forwardings() >= 1, "no forwarding seen: {}", s.logs());

    s.proxy.cut();
    write_through(m, s.target.root_dir(), second);
    let stats = MountStats::of(m.path());
    assert!(stats.get("reconnects=") >= 1, "no reconnect: {stats:?}");
    assert_eq!(publickey_logins(&s.jump), 2, "{}", s.logs());
    assert_eq!(publickey_logins(&s.target), 2, "{}", s.logs());
}

/// `-o ProxyJump=jump2\,jump2`: two hops (the second through the first's forwarding), which
/// win over the config's ProxyJump; `-o ProxyJump=none` connects directly.
#[test]
fn proxy_jump_as_option_with_two_hops_and_none() {
    let s = JumpSetup::new();
    let config = s.config("  ProxyJump jump\n");
    let f = config.display().to_string();
    let m = FgMount::start(
        &s.source(),
        &[
            "-F".into(),
            f.clone(),
            "-o".into(),
            "ProxyJump=jump2\\,jump2".into(),
        ],
    );
    write_through(&m, s.target.root_dir(), "two-hops");
    assert_eq!(publickey_logins(&s.jump), 2, "{}", s.logs());
    assert_eq!(publickey_logins(&s.target), 1, "{}", s.logs());
    assert_eq!(s.proxy.connections(), 0, "the config's jump was not used");
    drop(m);

    let m = FgMount::start(
        &s.source(),
        &["-F".into(), f, "-o".into(), "ProxyJump=none".into()],
    );
    write_through(&m, s.target.root_dir(), "direct");
    assert_eq!(publickey_logins(&s.jump), 2, "no jump: {}", s.logs());
    assert_eq!(publickey_logins(&s.target), 2, "{}", s.logs());
}

/// `ProxyCommand` in the config: OpenSSH's own `ssh -W %h:%p` through the jump host carries
/// the connection; when it dies (its connection cut), a reconnect runs it again.
#[test]
fn proxy_command_ssh_w_survives_a_reconnect() {
    let s = JumpSetup::new();
    let command = format!(
        "  ProxyCommand ssh -F /dev/null -i {} -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o BatchMode=yes -p {} -W %h:%p root@127.0.0.1\n",
        s.jump.user_key().display(),
        s.jump.known_hosts().display(),
        s.proxy.port()
    );
    let config = s.config(&command);
    let m = FgMount::start(&s.source(), &["-F".into(), config.display().to_string()]);
    works_through_the_jump_and_after_a_cut(&s, &m, "via-command", "after-cut");
    drop(m);

    // The same command given with -o (the config's target block has none).
    let config = s.config("");
    let option = format!(
        "ProxyCommand={}",
        command.trim().trim_start_matches("ProxyCommand ")
    );
    let m = FgMount::start(
        &s.source(),
        &[
            "-F".into(),
            config.display().to_string(),
            "-o".into(),
            option,
        ],
    );
    write_through(&m, s.target.root_dir(), "via-option");
    assert_eq!(publickey_logins(&s.jump), 3, "{}", s.logs());
    assert_eq!(publickey_logins(&s.target), 3, "{}", s.logs());
}

/// Authentication failures say what was tried and why each failed: a passphrase-protected key
/// in batch mode is named with the reason, and a password the server would take but no one
/// can type is "not tried" (the server logs no password attempt).
#[test]
fn auth_errors_name_each_method_and_why_it_failed() {
    let sshd = password_sshd();
    let mnt = Mountpoint::new();
    let key = mnt.base().join("locked_ed25519");
    key_with_passphrase(&key, "a passphrase");
    let base = |batch: &str| -> Vec<String> {
        vec![
            format!("root@127.0.0.1:{}", sshd.root_dir().display()),
            mnt.path().display().to_string(),
            "-f".into(),
            "-p".into(),
            sshd.port().to_string(),
            "-o".into(),
            format!(
                "IdentityFile={},UserKnownHostsFile={},BatchMode={batch}",
                key.display(),
                sshd.known_hosts().display()
            ),
        ]
    };

    let (status, stderr) = sshfs_rs_without_terminal(&mnt.home(), &base("yes"));
    assert!(!status.success());
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    for want in [
        "Permission denied for root@127.0.0.1",
        &format!(
            "publickey {} (it needs a passphrase and BatchMode is set)",
            key.display()
        ),
        "password (not tried: BatchMode is set)",
        "the server offers publickey,password",
    ] {
        assert!(stderr.contains(want), "{want:?} not in: {stderr}");
    }

    let (status, stderr) = sshfs_rs_without_terminal(&mnt.home(), &base("no"));
    assert!(!status.success());
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    for want in [
        "(it needs a passphrase and no terminal to ask on)",
        "password (not tried: no terminal to ask on)",
    ] {
        assert!(stderr.contains(want), "{want:?} not in: {stderr}");
    }
    assert!(
        !sshd.log().contains("Failed password"),
        "no password was sent: {}",
        sshd.log()
    );
    assert!(!is_mounted(mnt.path()));
}
