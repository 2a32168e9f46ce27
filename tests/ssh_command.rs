//! SFTP over something other than our own SSH, through a real mount: `-o ssh_command` running
//! OpenSSH's real `ssh` against a real sshd (also through a connection that is cut, and with
//! `-o sftp_server=PATH`), `-o directport` against `sftp-server` on a plain TCP port, and
//! `-o passive` with `sftp-server` on the other end of its stdin and stdout.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use support::{
    FaultProxy, Mount, MountStats, SftpPort, Sshd, SshdOptions, is_mounted, run_sshfs_rs,
    sshfs_rs_bin, wait_until,
};

/// Bound on a mount or a failing run.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a reconnect may take here (2 cores shared by many builds).
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The `ssh` processes the mount process `pid` runs: (pid, argv).
fn ssh_children(pid: u32) -> Vec<(i32, Vec<String>)> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map(|(_, c)| c).unwrap_or("");
        let fields: Vec<&str> = tail.split_whitespace().collect();
        let (state, ppid) = (fields.first().copied(), fields.get(1).copied());
        if comm == "ssh" && ppid == Some(&pid.to_string()) && state != Some("Z") {
            let cmdline = fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
            let argv = cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            found.push((child, argv));
        }
    }
    found
}

/// Writes `name` through the mount, reads it back, and finds it in the server's directory.
fn write_read_and_check(mnt: &Path, server: &Path, name: &str) {
    let data = format!("{name}: written through the mount\n").repeat(1000);
    fs::write(mnt.join(name), &data).unwrap_or_else(|e| panic!("write {name}: {e}"));
    assert_eq!(fs::read_to_string(mnt.join(name)).unwrap(), data, "{name}");
    assert_eq!(
        fs::read_to_string(server.join(name)).unwrap(),
        data,
        "{name} on the server"
    );
}

/// `fusermount3 -u MNT`, which must succeed.
fn fusermount_u(mnt: &Path) {
    let status = Command::new("fusermount3")
        .arg("-u")
        .arg(mnt)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "fusermount3 -u {}: {status}",
        mnt.display()
    );
}

/// `-o ssh_command=ssh`: the real OpenSSH client carries SFTP (our -o SSH options, -p, the
/// user and -F passed on as sshfs passes them); when its connection is cut, it ends, and the
/// reconnect runs it again.
#[test]
fn ssh_command_mounts_and_runs_again_after_a_cut() {
    let sshd = Sshd::start();
    let proxy = FaultProxy::start(sshd.port());
    let m = Mount::start_via(
        &sshd,
        proxy.port(),
        &["-F", "/dev/null", "-o", "ssh_command=ssh -q"],
    );
    let first = ssh_children(m.pid());
    assert_eq!(first.len(), 1, "one ssh child: {first:?}\n{}", m.stderr());
    let argv = first[0].1.join(" ");
    let want = format!(
        "ssh -q -x -a -oClearAllForwardings=yes -F /dev/null -p {} -l root -oIdentityFile={} -oUserKnownHostsFile={} -oStrictHostKeyChecking=yes -oBatchMode=yes -s -- 127.0.0.1 sftp",
        proxy.port(),
        sshd.user_key().display(),
        sshd.known_hosts().display()
    );
    assert_eq!(argv, want);
    write_read_and_check(m.path(), sshd.root_dir(), "before-cut");

    proxy.cut();
    // ssh notices at once (the proxy resets both sides) and exits; the next request waits for
    // the new ssh.
    assert!(
        wait_until(RECONNECT_TIMEOUT, || ssh_children(m.pid())
            .iter()
            .all(|(pid, _)| *pid != first[0].0)),
        "the first ssh is still running after the cut"
    );
    write_read_and_check(m.path(), sshd.root_dir(), "after-cut");
    let again = ssh_children(m.pid());
    assert_eq!(again.len(), 1, "{again:?}");
    assert_ne!(again[0].0, first[0].0, "a new ssh runs");
    assert_eq!(again[0].1.join(" "), want, "the same command");
    let stats = MountStats::of(m.path());
    assert_eq!(stats.get("reconnects="), 1);
    assert_eq!(proxy.connections(), 1, "one connection at a time");
    let status = m.unmount();
    assert!(status.success(), "{status}");
    let ssh = again[0].0;
    assert!(
        wait_until(Duration::from_secs(10), || !Path::new(&format!(
            "/proc/{ssh}"
        ))
        .exists()),
        "the ssh outlived the mount"
    );
    assert!(wait_until(Duration::from_secs(10), || proxy.connections() == 0));
}

/// `-o sftp_server=PATH`: ssh runs the server program as a command (no subsystem): the
/// subsystem's own log (sshd runs it with a DEBUG3 log) stays empty. The same through our own
/// SSH, without ssh_command.
#[test]
fn sftp_server_path_is_run_instead_of_the_subsystem() {
    let sshd = Sshd::start_with(SshdOptions {
        sftp_debug_log: true,
        ..SshdOptions::default()
    });
    // Control: the subsystem logs what it serves. An ssh option sshfs-rs has no entry for
    // goes to ssh: ControlMaster makes this ssh a master, with its socket at ControlPath.
    let control = sshd.temp_dir().join("cm");
    let m = Mount::start(
        &sshd,
        &[
            "-F",
            "/dev/null",
            "-o",
            &format!(
                "ssh_command=ssh,ControlMaster=yes,ControlPath={}",
                control.display()
            ),
        ],
    );
    write_read_and_check(m.path(), sshd.root_dir(), "subsystem");
    assert!(control.exists(), "no ControlMaster socket: {}", m.stderr());
    drop(m);
    assert!(
        wait_until(Duration::from_secs(10), || !sshd.sftp_log().is_empty()),
        "the subsystem logged nothing"
    );
    let logged = sshd.sftp_log();

    for (name, args) in [
        (
            "via-ssh-command",
            &[
                "-F",
                "/dev/null",
                "-o",
                "ssh_command=ssh,sftp_server=/usr/lib/openssh/sftp-server",
            ][..],
        ),
        (
            "via-own-ssh",
            &["-o", "sftp_server=/usr/lib/openssh/sftp-server"][..],
        ),
    ] {
        let m = Mount::start(&sshd, args);
        if name == "via-ssh-command" {
            let argv = ssh_children(m.pid())
                .first()
                .map(|(_, a)| a.clone())
                .unwrap();
            assert_eq!(
                argv[argv.len() - 3..].join(" "),
                "-- 127.0.0.1 /usr/lib/openssh/sftp-server"
            );
            assert!(!argv.contains(&"-s".to_owned()), "{argv:?}");
        }
        write_read_and_check(m.path(), sshd.root_dir(), name);
        let status = m.unmount();
        assert!(status.success(), "{name}: {status}");
        assert_eq!(sshd.sftp_log(), logged, "{name} went through the subsystem");
    }
}

/// A host ssh cannot resolve: ssh's own message is the one line on stderr, the exit status is
/// not 0, and nothing is mounted. A command that does not exist is one line too.
#[test]
fn ssh_command_failures_are_one_line_and_mount_nothing() {
    let home = tempfile::tempdir().unwrap();
    let mnt = home.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let mnt_arg = mnt.display().to_string();
    for (command, want) in [
        ("ssh", "ssh: Could not resolve hostname nosuchhost.invalid"),
        (
            "/nonexistent/ssh",
            "sshfs-rs: cannot run ssh_command '/nonexistent/ssh': No such file or directory",
        ),
    ] {
        let out = run_sshfs_rs(
            home.path(),
            &[
                "root@nosuchhost.invalid:/tmp",
                &mnt_arg,
                "-F",
                "/dev/null",
                "-o",
                &format!("BatchMode=yes,ssh_command={command}"),
            ],
            RUN_TIMEOUT,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{command}: one line: {err}"
        );
        assert!(err.contains(want), "{command}: {want:?} not in {err:?}");
        assert!(!is_mounted(&mnt));
    }
}

/// `-o directport`: SFTP straight to `sftp-server` on a TCP port, sshd stopped so nothing else
/// could serve it; killing the server ends the connection and the reconnect connects again.
#[test]
fn directport_mounts_and_connects_again_after_a_cut() {
    let mut sshd = Sshd::start();
    let sftp = SftpPort::start(sshd.root_dir());
    sshd.stop();
    let port = sftp.port().to_string();
    let m = Mount::start(&sshd, &["-o", &format!("directport={port}")]);
    assert!(ssh_children(m.pid()).is_empty());
    write_read_and_check(m.path(), sshd.root_dir(), "direct");
    assert_eq!(sftp.connections(), 1);

    sftp.cut();
    write_read_and_check(m.path(), sshd.root_dir(), "direct-after-cut");
    assert_eq!(sftp.connections(), 2, "connected again: {}", m.stderr());
    assert_eq!(MountStats::of(m.path()).get("reconnects="), 1);
    let status = m.unmount();
    assert!(status.success(), "{status}");
}

/// Processes started by a test and a mountpoint: unmounted, then killed, when dropped.
struct Started {
    mnt: PathBuf,
    children: Vec<Child>,
}

impl Drop for Started {
    fn drop(&mut self) {
        if is_mounted(&self.mnt) {
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg(&self.mnt)
                .status();
        }
        if is_mounted(&self.mnt) {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// sshfs-rs `-o passive` with `sftp-server` on the other end of its stdin and stdout (one
/// socket, as `dpipe` or `socat` would connect them), mounted; the children are
/// `[sftp-server, sshfs-rs]`.
struct Passive {
    _dir: tempfile::TempDir,
    root: PathBuf,
    stderr: PathBuf,
    started: Started,
}

impl Passive {
    fn start() -> Passive {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let (root, mnt) = (base.join("root"), base.join("mnt"));
        fs::create_dir(&root).unwrap();
        fs::create_dir(&mnt).unwrap();
        let (ours, theirs) = UnixStream::pair().unwrap();
        let socket = |s: &UnixStream| Stdio::from(OwnedFd::from(s.try_clone().unwrap()));
        let mut started = Started {
            mnt: mnt.clone(),
            children: Vec::new(),
        };
        started.children.push(
            Command::new("/usr/lib/openssh/sftp-server")
                .stdin(socket(&theirs))
                .stdout(socket(&theirs))
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let stderr = base.join("stderr.log");
        started.children.push(
            Command::new(sshfs_rs_bin())
                .arg(format!("somewhere:{}", root.display()))
                .arg(&mnt)
                .args(["-o", "passive"])
                .env("HOME", &base)
                .stdin(socket(&ours))
                .stdout(socket(&ours))
                .stderr(fs::File::create(&stderr).unwrap())
                .spawn()
                .unwrap(),
        );
        drop((ours, theirs));
        let p = Passive {
            _dir: dir,
            root,
            stderr,
            started,
        };
        assert!(
            wait_until(RUN_TIMEOUT, || is_mounted(&p.started.mnt)),
            "not mounted: {}",
            p.log()
        );
        p
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The exit status of sshfs-rs, waiting at most 10 s.
    fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        let client = &mut self.started.children[1];
        let mut status = None;
        wait_until(Duration::from_secs(10), || {
            status = client.try_wait().unwrap();
            status.is_some()
        });
        status
    }
}

/// `-o passive`: SFTP over our stdin and stdout; the process stays in the foreground, and
/// unmounting ends it.
#[test]
fn passive_speaks_sftp_over_stdin_and_stdout() {
    let mut p = Passive::start();
    let mnt = p.started.mnt.clone();
    write_read_and_check(&mnt, &p.root, "passive");
    assert!(
        p.started.children[1].try_wait().unwrap().is_none(),
        "it stays in the foreground"
    );
    fusermount_u(&mnt);
    let status = p.exit_status();
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}: {}",
        p.log()
    );
}

/// `-o passive` when the other end goes away: there is nothing to reconnect to, so the mount
/// is taken down and sshfs-rs exits with an error.
#[test]
fn passive_ends_the_mount_when_the_server_goes_away() {
    let mut p = Passive::start();
    let mnt = p.started.mnt.clone();
    write_read_and_check(&mnt, &p.root, "passive");
    let server = &mut p.started.children[0];
    server.kill().unwrap();
    server.wait().unwrap();
    // The loss is noticed by the next request, or at once by the session's reader.
    let _ = fs::metadata(mnt.join("after"));
    let status = p.exit_status();
    assert!(
        status.is_some_and(|s| !s.success()),
        "{status:?}: {}",
        p.log()
    );
    assert!(!is_mounted(&mnt), "still mounted");
    assert!(p.log().contains("unmounted"), "{}", p.log());
}

/// Mounts `sshd` through `proxy` with `-o ssh_command=ssh`, and checks a file goes through.
fn ssh_command_mount_via(sshd: &Sshd, proxy: &FaultProxy) -> Mount {
    let m = Mount::start_via(
        sshd,
        proxy.port(),
        &["-F", "/dev/null", "-o", "ssh_command=ssh"],
    );
    write_read_and_check(m.path(), sshd.root_dir(), "x");
    m
}

/// A reconnect whose ssh meets another host key (the known_hosts entry is the first server's)
/// is not tried again: ssh's "Host key verification failed" ends reconnecting, the reason is in
/// the log, and requests fail with EIO at once.
#[test]
fn ssh_command_host_key_failure_on_reconnect_stops_reconnecting() {
    let sshd = Sshd::start();
    let other = Sshd::start();
    let proxy = FaultProxy::start(sshd.port());
    let m = ssh_command_mount_via(&sshd, &proxy);
    proxy.retarget(other.port());
    proxy.cut();
    let started = std::time::Instant::now();
    let err = fs::metadata(m.path().join("y")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(
        started.elapsed() < RECONNECT_TIMEOUT,
        "{:?}",
        started.elapsed()
    );
    let log = m.stderr();
    assert!(log.contains("Host key verification failed"), "{log}");
    let stats = MountStats::of(m.path());
    assert!(
        stats.get("reconnects=") == 0 && format!("{stats:?}").contains("state=gave-up"),
        "{stats:?}"
    );
}

/// Runs `sshfs-rs root@127.0.0.1:ROOT<under> MNT -p PORT -F /dev/null -o <key, known_hosts,
/// batch mode>,ssh_command=COMMAND` without `-f`, to completion.
fn run_in_background(sshd: &Sshd, under: &str, mnt: &Path, command: &str) -> Output {
    run_sshfs_rs(
        sshd.home(),
        &[
            &format!("root@127.0.0.1:{}{under}", sshd.root_dir().display()),
            &mnt.display().to_string(),
            "-p",
            &sshd.port().to_string(),
            "-F",
            "/dev/null",
            "-o",
            &format!(
                "IdentityFile={},UserKnownHostsFile={},StrictHostKeyChecking=yes,BatchMode=yes,ssh_command={command}",
                sshd.user_key().display(),
                sshd.known_hosts().display()
            ),
        ],
        RUN_TIMEOUT,
    )
}

/// Kills the process whose pid is in the file, when dropped.
struct KillPidFile(PathBuf);

impl Drop for KillPidFile {
    fn drop(&mut self) {
        if let Some(pid) = fs::read_to_string(&self.0)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// A mount that fails after the command started (the remote path is missing), without `-f`:
/// the waiting parent reports it and exits at once, although something the command started
/// lives on (it must not hold the parent's pipe).
#[test]
fn a_failed_background_mount_returns_while_the_command_lives_on() {
    let sshd = Sshd::start();
    let pidfile = sshd.temp_dir().join("sleeper.pid");
    let _sleeper = KillPidFile(pidfile.clone());
    let script = format!(
        "sleep 60 & echo $! > {}; exec ssh \"$@\"",
        pidfile.display()
    );
    let command = format!("sh -c {} sh", script.replace(' ', "\\ "));
    let mnt = sshd.temp_dir().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let out = run_in_background(&sshd, "/missing", &mnt, &command);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains("No such file or directory"), "{err}");
    assert!(pidfile.exists(), "the command's own child was started");
    assert!(!is_mounted(&mnt));
}

/// Pids of the processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            found.push(pid);
        }
    }
    found
}

/// Without `-f`: sshfs-rs returns once the mount is live, its daemon keeps the ssh, and both
/// are gone after the unmount.
#[test]
fn ssh_command_in_the_background() {
    let sshd = Sshd::start();
    let mnt = sshd.temp_dir().join("bg-mnt");
    fs::create_dir(&mnt).unwrap();
    let mnt_arg = mnt.display().to_string();
    // Unmounts if the test fails (the daemon then exits by itself).
    let _unmount = Started {
        mnt: mnt.clone(),
        children: Vec::new(),
    };
    let out = run_in_background(&sshd, "", &mnt, "ssh");
    assert!(out.status.success(), "{out:?}");
    assert!(is_mounted(&mnt));
    let daemon = processes_with(&mnt_arg);
    assert_eq!(daemon.len(), 1, "one daemon: {daemon:?}");
    assert_eq!(ssh_children(daemon[0] as u32).len(), 1, "its ssh");
    write_read_and_check(&mnt, sshd.root_dir(), "background");
    fusermount_u(&mnt);
    // The ssh's command line names the key, which is in the sshd's temp dir.
    let key = sshd.user_key().display().to_string();
    assert!(
        wait_until(Duration::from_secs(10), || processes_with(&mnt_arg)
            .is_empty()
            && processes_with(&key).is_empty()),
        "left behind: {:?} {:?}",
        processes_with(&mnt_arg),
        processes_with(&key)
    );
}

/// A reconnect whose ssh is refused ("Permission denied": the key was removed on the server
/// meanwhile) counts as a refused login: after 3 the mount stops reconnecting and says why.
#[test]
fn ssh_command_refused_logins_on_reconnect_stop_reconnecting() {
    let sshd = Sshd::start();
    let proxy = FaultProxy::start(sshd.port());
    let m = ssh_command_mount_via(&sshd, &proxy);
    fs::write(sshd.temp_dir().join("authorized_keys"), "").unwrap();
    proxy.cut();
    // An idle mount notices a lost connection at its next request: this one, which waits for
    // the reconnect and fails with it. (Without it the test relied on a request of the mount's
    // own still being in flight at the cut; on a loaded machine none was, and nothing noticed.)
    let err = fs::metadata(m.path().join("x2")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    // Three refused logins, each an ssh run, with the reconnect backoff between them: on a
    // loaded machine (ten of these tests at once) that took over 30 s once.
    let gave_up = wait_until(2 * RECONNECT_TIMEOUT, || {
        format!("{:?}", MountStats::of(m.path())).contains("state=gave-up")
    });
    let log = m.stderr();
    assert!(gave_up, "still reconnecting: {log}");
    assert!(
        log.contains("authentication failed 3 times on reconnect")
            && log.contains("Permission denied"),
        "{log}"
    );
    let err = fs::metadata(m.path().join("y")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
}
