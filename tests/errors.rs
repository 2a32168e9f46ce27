//! Every bad input gets a clear one-line error, a non-zero exit and no mount.
//!
//! Each case runs the real `sshfs-rs` binary to completion (bounded), with an
//! empty `HOME` and `-F /dev/null` so nothing of the real `~/.ssh` is read, and
//! checks that:
//!
//! * the exit status is non-zero;
//! * stderr is exactly one non-empty line (a trailing newline allowed) that
//!   starts with `sshfs-rs:` and contains the words that name the problem;
//! * the mountpoint is not mounted afterwards and no sshfs-rs process for it is
//!   left running.
//!
//! Failing cases run twice: in the default background mode (the error then
//! comes from the forked child, the exit status from the waiting parent) and in
//! the foreground (`-f`). clap's own usage errors (missing arguments) are
//! multi-line by design and only checked for a non-zero exit and a message
//! naming the missing argument.
//!
//! The last test mounts in the background for real and proves the parent only
//! exits once the mount is live, and that the daemon goes away on unmount.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::fs;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use support::{
    FaultProxy, Mount, Sshd, is_mounted, no_config_args, run_command, sshfs_rs_bin, wait_until,
};

/// Bound on every run of the binary (a hang fails the test instead of blocking it).
const RUN_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on waiting for processes to go away or mounts to appear.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How the binary is started for a case that must fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The default: fork, the parent waits for the child's verdict.
    Background,
    /// `-f`: one process does everything.
    Foreground,
}

const BOTH_MODES: [Mode; 2] = [Mode::Background, Mode::Foreground];

/// A scratch directory for mountpoints, known_hosts files and keys of one test.
/// On drop it detaches anything still mounted below it (only possible if
/// sshfs-rs wrongly mounted) before the directory is removed.
struct Scratch {
    dir: Option<TempDir>,
    base: PathBuf,
    home: PathBuf,
    mountpoints: Vec<PathBuf>,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("sshfs-rs-errors-")
            .tempdir()
            .expect("create scratch dir");
        let base = dir.path().canonicalize().expect("canonicalize scratch dir");
        let home = base.join("home");
        fs::create_dir(&home).expect("create empty home");
        Scratch {
            dir: Some(dir),
            base,
            home,
            mountpoints: Vec::new(),
        }
    }

    /// A fresh, empty directory to mount on.
    fn mountpoint(&mut self, name: &str) -> PathBuf {
        let mnt = self.base.join(format!("mnt-{name}"));
        fs::create_dir(&mnt).expect("create mountpoint");
        self.mountpoints.push(mnt.clone());
        mnt
    }

    /// A path inside the scratch dir (not created).
    fn path(&self, name: &str) -> PathBuf {
        self.base.join(name)
    }

    /// An empty HOME for the binary.
    fn home(&self) -> &Path {
        &self.home
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let mut stuck = false;
        for mnt in &self.mountpoints {
            if is_mounted(mnt) {
                let shown = mnt.to_string_lossy().into_owned();
                let _ = run_command(
                    Command::new("fusermount3").args(["-u", "-z", &shown]),
                    Duration::from_secs(5),
                );
                if is_mounted(mnt) {
                    let _ = run_command(
                        Command::new("umount").args(["-l", &shown]),
                        Duration::from_secs(5),
                    );
                }
                stuck |= is_mounted(mnt);
            }
            for pid in pids_for(mnt) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if stuck && let Some(dir) = self.dir.take() {
            eprintln!(
                "warning: leaving {} in place, something is still mounted",
                self.base.display()
            );
            let _ = dir.keep();
        }
    }
}

/// `-F /dev/null -p PORT -o IdentityFile=KEY,UserKnownHostsFile=KH,StrictHostKeyChecking=STRICT,BatchMode=yes`.
fn ssh_args(port: u16, key: &Path, known_hosts: &Path, strict: &str) -> Vec<String> {
    no_config_args(
        port,
        format!(
            "IdentityFile={},UserKnownHostsFile={},StrictHostKeyChecking={strict},BatchMode=yes",
            key.display(),
            known_hosts.display()
        ),
    )
}

/// The arguments that mount `sshd` successfully (its key and known_hosts).
fn good_args(sshd: &Sshd, port: u16) -> Vec<String> {
    ssh_args(port, sshd.user_key(), sshd.known_hosts(), "yes")
}

/// Runs sshfs-rs with `args` (plus `-f` in the foreground mode), with HOME set
/// to an empty directory and no agent or log settings from the environment.
fn run(home: &Path, args: &[String], mode: Mode) -> Output {
    let mut cmd = Command::new(sshfs_rs_bin());
    cmd.args(args)
        .env("HOME", home)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("SSHFS_RS_LOG");
    if mode == Mode::Foreground {
        cmd.arg("-f");
    }
    run_command(&mut cmd, RUN_TIMEOUT)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// Pids of processes whose command line contains `mnt` (`pgrep -f`).
fn pids_for(mnt: &Path) -> Vec<i32> {
    let pattern: String = mnt
        .to_string_lossy()
        .chars()
        .flat_map(|c| {
            let escape = !(c.is_ascii_alphanumeric() || c == '/' || c == '-' || c == '_');
            escape.then_some('\\').into_iter().chain([c])
        })
        .collect();
    let out = run_command(
        Command::new("pgrep").args(["-f", "--", &pattern]),
        Duration::from_secs(5),
    );
    // pgrep: 0 = found, 1 = none; anything else is an error.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "pgrep failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|p| p.parse().expect("pgrep prints pids"))
        .collect()
}

/// Asserts that `out` is a failure with one `sshfs-rs: ...` line on stderr
/// containing every one of `words`, and that nothing is (or stays) mounted on
/// `mnt` nor any process left for it. Returns the line.
fn assert_clean_failure(what: &str, out: &Output, mnt: &Path, words: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let context = format!("{what}: status {}, stderr {stderr:?}", out.status);
    assert!(!out.status.success(), "{context}: must fail");
    assert!(out.status.code().is_some(), "{context}: killed by a signal");
    let line = stderr.strip_suffix('\n').unwrap_or(&stderr);
    assert!(
        !line.is_empty() && !line.contains('\n'),
        "{context}: must be exactly one line"
    );
    assert!(
        line.starts_with("sshfs-rs: "),
        "{context}: must start with 'sshfs-rs: '"
    );
    for word in words {
        assert!(line.contains(word), "{context}: must mention {word:?}");
    }
    assert!(
        String::from_utf8_lossy(&out.stdout).is_empty(),
        "{context}: nothing on stdout"
    );
    assert!(!is_mounted(mnt), "{context}: {} is mounted", mnt.display());
    let mut left = Vec::new();
    assert!(
        wait_until(SETTLE_TIMEOUT, || {
            left = pids_for(mnt);
            left.is_empty()
        }),
        "{context}: processes left for {}: {left:?}",
        mnt.display()
    );
    eprintln!("{what}: {line}");
    line.to_owned()
}

/// Runs `args` (source first, then the mountpoint, then the rest) in both modes
/// and checks each run with [`assert_clean_failure`].
fn assert_fails_both_modes(
    scratch: &mut Scratch,
    what: &str,
    source: &str,
    mnt: Option<&Path>,
    rest: &[String],
    words: &[&str],
) {
    for mode in BOTH_MODES {
        let mnt = match mnt {
            Some(m) => m.to_path_buf(),
            None => scratch.mountpoint(&format!("{}-{mode:?}", slug(what))),
        };
        let mut args = vec![source.to_owned(), mnt.to_string_lossy().into_owned()];
        args.extend_from_slice(rest);
        let out = run(scratch.home(), &args, mode);
        assert_clean_failure(&format!("{what} ({mode:?})"), &out, &mnt, words);
    }
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Generates an ed25519 key pair at `path`; returns the `ssh-ed25519 AAAA...` public part.
fn keygen(path: &Path) -> String {
    let out = run_command(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"])
            .arg(path),
        Duration::from_secs(10),
    );
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = fs::read_to_string(path.with_extension("pub")).expect("read public key");
    public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A loopback port that refuses connections and that no other process can
/// take meanwhile: the local end of a connection to a throwaway listener (a
/// connected socket is not listening, so a SYN to its port gets a RST).
/// Keep the returned streams alive while the port is used.
fn refusing_port() -> ([TcpStream; 2], u16) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    let client =
        TcpStream::connect(listener.local_addr().expect("listener address")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    drop(listener);
    let port = client.local_addr().expect("client address").port();
    let probe = TcpStream::connect((Ipv4Addr::LOCALHOST, port));
    assert_eq!(
        probe.map(drop).map_err(|e| e.kind()),
        Err(ErrorKind::ConnectionRefused),
        "port {port} must refuse connections"
    );
    ([client, server], port)
}

/// Unknown `-o` names and bad `-o`/`-p` values are refused before anything
/// else, naming the offending option and value.
#[test]
fn bad_options_are_named() {
    let mut scratch = Scratch::new();
    let cases: &[(&[&str], &[&str])] = &[
        (&["-o", "frobnicate"], &["frobnicate"]),
        (&["-o", "ro,frobnicate=1"], &["frobnicate"]),
        (&["-o", "Port=notaport"], &["Port", "notaport"]),
        (&["-o", "Port=0"], &["Port", "'0'", "port number"]),
        (&["-p", "99999"], &["-p", "99999"]),
        (
            &["-o", "StrictHostKeyChecking=maybe"],
            &["StrictHostKeyChecking", "maybe"],
        ),
        (&["-o", "BatchMode=sometimes"], &["BatchMode", "sometimes"]),
        (&["-o", "ConnectTimeout=soon"], &["ConnectTimeout", "soon"]),
        (&["-o", "ro=1"], &["ro", "takes no value"]),
        (&["-o", "IdentityFile"], &["IdentityFile", "needs a value"]),
        (&["-o", "attr_timeout=-1"], &["attr_timeout", "-1"]),
    ];
    for (extra, words) in cases {
        let mut rest = strings(&["-F", "/dev/null"]);
        rest.extend(strings(extra));
        assert_fails_both_modes(
            &mut scratch,
            &extra.join(" "),
            "127.0.0.1:",
            None,
            &rest,
            words,
        );
    }
}

/// A source without the colon (or with an empty host or user) is not taken for
/// a local path: the message shows the expected `[user@]host:[path]` form.
#[test]
fn source_without_colon_shows_the_form() {
    let mut scratch = Scratch::new();
    for source in [
        "127.0.0.1",
        "root@127.0.0.1",
        ":/srv",
        "@127.0.0.1:",
        "[::1]/x",
    ] {
        assert_fails_both_modes(
            &mut scratch,
            &format!("source {source}"),
            source,
            None,
            &strings(&["-F", "/dev/null"]),
            &["[user@]host:[path]", source],
        );
    }
}

/// clap's usage errors for missing positional arguments: non-zero exit and a
/// message naming what is missing (multi-line usage text is clap's format).
#[test]
fn missing_arguments_are_usage_errors() {
    let scratch = Scratch::new();
    for (args, missing) in [
        (&[][..], &["<SOURCE>", "<MOUNTPOINT>"][..]),
        (&["127.0.0.1:"][..], &["<MOUNTPOINT>"][..]),
    ] {
        let out = run(scratch.home(), &strings(args), Mode::Background);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("required"), "{args:?}: {stderr}");
        for m in missing {
            assert!(stderr.contains(m), "{args:?} must name {m}: {stderr}");
        }
    }
}

/// The mountpoint is checked before connecting: missing, not a directory, or
/// already mounted. The existing mount is left alone and keeps working.
#[test]
fn bad_mountpoints_are_refused() {
    let sshd = Sshd::start();
    let mut scratch = Scratch::new();
    let source = format!("root@127.0.0.1:{}", sshd.root_dir().display());
    let good = good_args(&sshd, sshd.port());

    let missing = scratch.path("does-not-exist");
    assert_fails_both_modes(
        &mut scratch,
        "missing mountpoint",
        &source,
        Some(&missing),
        &good,
        &["No such file or directory", &missing.to_string_lossy()],
    );
    assert!(
        !missing.exists(),
        "the missing mountpoint must not be created"
    );

    let file = scratch.path("regular-file");
    fs::write(&file, "not a directory\n").expect("write file");
    assert_fails_both_modes(
        &mut scratch,
        "file as mountpoint",
        &source,
        Some(&file),
        &good,
        &["Not a directory", &file.to_string_lossy()],
    );
    assert_eq!(
        fs::read_to_string(&file).expect("file is intact"),
        "not a directory\n"
    );

    fs::write(sshd.root_dir().join("hello.txt"), "still here\n").expect("write server file");
    let first = Mount::start(&sshd, &[]);
    let mnt = first.path().to_path_buf();
    for mode in BOTH_MODES {
        let mut args = vec![source.clone(), mnt.to_string_lossy().into_owned()];
        args.extend_from_slice(&good);
        let out = run(scratch.home(), &args, mode);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let context = format!("already mounted ({mode:?}): {}, {stderr:?}", out.status);
        assert!(!out.status.success(), "{context}");
        let line = stderr.strip_suffix('\n').unwrap_or(&stderr);
        assert!(
            line.starts_with("sshfs-rs: ") && !line.contains('\n'),
            "{context}"
        );
        assert!(line.contains("already mounted"), "{context}");
        assert!(line.contains(&*mnt.to_string_lossy()), "{context}");
        // Only the first mount's process is there, and its mount still works.
        assert_eq!(pids_for(&mnt), vec![first.pid() as i32], "{context}");
        assert!(is_mounted(&mnt), "{context}: first mount gone");
        assert_eq!(
            fs::read_to_string(mnt.join("hello.txt")).expect("read through first mount"),
            "still here\n",
            "{context}"
        );
    }
    let status = first.unmount();
    assert!(status.success(), "first mount exited with {status}");
}

/// Runs sshfs-rs (both modes) on the dead mount a SIGKILLed daemon leaves
/// behind, and checks for a clean one-line failure containing `words`.
fn check_dead_mountpoint(words: &[&str]) {
    let sshd = Sshd::start();
    let scratch = Scratch::new();
    let dead = Mount::start(&sshd, &[]);
    let mnt = dead.path().to_path_buf();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(dead.pid() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the daemon");
    assert!(
        wait_until(SETTLE_TIMEOUT, || pids_for(&mnt).is_empty()),
        "killed daemon still running"
    );
    assert!(is_mounted(&mnt), "a killed daemon leaves its dead mount");
    let mut args = vec![
        format!("root@127.0.0.1:{}", sshd.root_dir().display()),
        mnt.to_string_lossy().into_owned(),
    ];
    args.extend(good_args(&sshd, sshd.port()));
    for mode in BOTH_MODES {
        let out = run(scratch.home(), &args, mode);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let context = format!("dead mount ({mode:?}): {}, {stderr:?}", out.status);
        assert!(!out.status.success(), "{context}");
        let line = stderr.strip_suffix('\n').unwrap_or(&stderr);
        assert!(
            line.starts_with("sshfs-rs: ") && !line.contains('\n'),
            "{context}: must be one 'sshfs-rs: ' line"
        );
        for word in words {
            assert!(line.contains(word), "{context}: must mention {word:?}");
        }
        assert!(pids_for(&mnt).is_empty(), "{context}: process left");
    }
    drop(dead); // detaches the dead mount
    assert!(!is_mounted(&mnt));
}

/// A dead mount left by a killed daemon on the mountpoint is refused with the
/// OS error, before connecting.
#[test]
fn dead_mountpoint_is_refused() {
    check_dead_mountpoint(&["mountpoint", "Transport endpoint is not connected"]);
}

/// Regression (fails today): `check_mountpoint` has a dedicated message for a
/// dead mount that tells the user to run `fusermount3 -u MNT`, but it is only
/// used when `canonicalize` fails with ENOTCONN. `realpath` does not stat the
/// last component (readlink on a dead FUSE root answers EINVAL, "not a link"),
/// so it succeeds and the later `metadata` call fails instead, with the bare
/// "mountpoint MNT: Transport endpoint is not connected" and no hint.
#[test]
fn regression_dead_mountpoint_message_names_the_fix() {
    check_dead_mountpoint(&["a dead mount is still there", "fusermount3 -u"]);
}

/// Host keys: an unknown key with StrictHostKeyChecking=yes and a changed key
/// are refused with the known_hosts file (and line) to look at; accept-new
/// mounts and records the key, which a strict mount then accepts.
#[test]
fn host_key_problems_are_explained() {
    let sshd = Sshd::start();
    let mut scratch = Scratch::new();
    let port = sshd.port();
    let source = format!("root@127.0.0.1:{}", sshd.root_dir().display());

    let empty = scratch.path("known_hosts_empty");
    fs::write(&empty, "").expect("write empty known_hosts");
    assert_fails_both_modes(
        &mut scratch,
        "unknown host key",
        &source,
        None,
        &ssh_args(port, sshd.user_key(), &empty, "yes"),
        &[
            "Host key verification failed",
            &empty.to_string_lossy(),
            &format!("[127.0.0.1]:{port}"),
        ],
    );
    assert_eq!(
        fs::read_to_string(&empty).expect("read"),
        "",
        "nothing learned"
    );

    let other_key = keygen(&scratch.path("other_host_key"));
    assert_ne!(other_key, sshd.host_pubkey_line());
    let changed = scratch.path("known_hosts_changed");
    fs::write(&changed, format!("[127.0.0.1]:{port} {other_key}\n")).expect("write known_hosts");
    assert_fails_both_modes(
        &mut scratch,
        "changed host key",
        &source,
        None,
        &ssh_args(port, sshd.user_key(), &changed, "yes"),
        &[
            "Host key verification failed",
            "CHANGED",
            &format!("{}:1", changed.display()),
        ],
    );
    // A changed key is refused whatever StrictHostKeyChecking says.
    for strict in ["accept-new", "no"] {
        assert_fails_both_modes(
            &mut scratch,
            &format!("changed host key, {strict}"),
            &source,
            None,
            &ssh_args(port, sshd.user_key(), &changed, strict),
            &["CHANGED", &format!("{}:1", changed.display())],
        );
    }
    assert_eq!(
        fs::read_to_string(&changed).expect("read"),
        format!("[127.0.0.1]:{port} {other_key}\n"),
        "a refused key must not be written"
    );

    let learned = scratch.path("known_hosts_learned");
    fs::write(&learned, "").expect("write empty known_hosts");
    let opts = format!(
        "UserKnownHostsFile={},StrictHostKeyChecking=accept-new",
        learned.display()
    );
    let mount = Mount::start(&sshd, &["-o", &opts]);
    let text = fs::read_to_string(&learned).expect("read learned known_hosts");
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("[127.0.0.1]:{port} "))
                && l.contains(&sshd.host_pubkey_line())),
        "accept-new must record [127.0.0.1]:{port}: {text:?}"
    );
    let status = mount.unmount();
    assert!(status.success(), "accept-new mount exited with {status}");
    // The recorded line is good enough for a strict mount.
    let strict = format!(
        "UserKnownHostsFile={},StrictHostKeyChecking=yes",
        learned.display()
    );
    let mount = Mount::start(&sshd, &["-o", &strict]);
    assert!(is_mounted(mount.path()));
    assert!(mount.unmount().success());
}

/// A key the server does not accept, in batch mode: "Permission denied" and
/// what was tried (the public key file).
#[test]
fn authentication_failure_names_what_was_tried() {
    let sshd = Sshd::start();
    let mut scratch = Scratch::new();
    let stranger = scratch.path("stranger_key");
    keygen(&stranger);
    assert_fails_both_modes(
        &mut scratch,
        "unauthorized key",
        &format!("root@127.0.0.1:{}", sshd.root_dir().display()),
        None,
        &ssh_args(sshd.port(), &stranger, sshd.known_hosts(), "yes"),
        &["Permission denied", "publickey", "root@127.0.0.1"],
    );
}

/// Network failures: refused, unresolvable, and a server that never answers
/// (ConnectTimeout=1 against a frozen proxy gives up within a few seconds).
#[test]
fn network_failures_are_reported() {
    let sshd = Sshd::start();
    let mut scratch = Scratch::new();

    let (_reserved, closed_port) = refusing_port();
    assert_fails_both_modes(
        &mut scratch,
        "connection refused",
        "root@127.0.0.1:",
        None,
        &ssh_args(closed_port, sshd.user_key(), sshd.known_hosts(), "yes"),
        &["Connection refused", &format!("port {closed_port}")],
    );

    assert_fails_both_modes(
        &mut scratch,
        "unresolvable host",
        "root@no-such-host.invalid:",
        None,
        &ssh_args(22, sshd.user_key(), sshd.known_hosts(), "yes"),
        &["Could not resolve hostname", "no-such-host.invalid"],
    );

    let proxy = FaultProxy::start(sshd.port());
    sshd.trust_port(proxy.port());
    proxy.freeze();
    let mut args = ssh_args(proxy.port(), sshd.user_key(), sshd.known_hosts(), "yes");
    args.extend(strings(&["-o", "ConnectTimeout=1"]));
    for mode in BOTH_MODES {
        let mnt = scratch.mountpoint(&format!("timeout-{mode:?}"));
        let mut full = vec![
            format!("root@127.0.0.1:{}", sshd.root_dir().display()),
            mnt.to_string_lossy().into_owned(),
        ];
        full.extend_from_slice(&args);
        let start = Instant::now();
        let out = run(scratch.home(), &full, mode);
        let took = start.elapsed();
        assert_clean_failure(
            &format!("frozen server ({mode:?})"),
            &out,
            &mnt,
            &["timed out", &format!("port {}", proxy.port())],
        );
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(5),
            "ConnectTimeout=1 ({mode:?}) took {took:?}"
        );
    }
    proxy.resume();
}

/// The remote directory is checked before mounting: missing, or not a directory.
#[test]
fn bad_remote_paths_are_refused() {
    let sshd = Sshd::start();
    let mut scratch = Scratch::new();
    let good = good_args(&sshd, sshd.port());
    assert_fails_both_modes(
        &mut scratch,
        "missing remote path",
        "root@127.0.0.1:/nonexistent/dir",
        None,
        &good,
        &["No such file or directory", "/nonexistent/dir"],
    );
    let file = sshd.root_dir().join("plain-file");
    fs::write(&file, "x").expect("write server file");
    assert_fails_both_modes(
        &mut scratch,
        "remote path is a file",
        &format!("root@127.0.0.1:{}", file.display()),
        None,
        &good,
        &["Not a directory", &file.to_string_lossy()],
    );
}

/// `--help` documents every `-o` option and `--version` names the program;
/// both exit 0.
#[test]
fn help_and_version() {
    let scratch = Scratch::new();
    let out = run(scratch.home(), &strings(&["--help"]), Mode::Background);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "--help: {}", out.status);
    for name in [
        "IdentityFile",
        "User",
        "Port",
        "UserKnownHostsFile",
        "StrictHostKeyChecking",
        "BatchMode",
        "ConnectTimeout",
        "ServerAliveInterval",
        "allow_other",
        "default_permissions",
        "ro",
        "rw",
        "debug",
        "timeout",
        "attr_timeout",
        "entry_timeout",
    ] {
        let listed = help.lines().any(|l| {
            l.trim_start().starts_with(name) && l.trim_start()[name.len()..].starts_with(['=', ' '])
        });
        assert!(listed, "--help must list -o {name}:\n{help}");
    }
    let out = run(scratch.home(), &strings(&["--version"]), Mode::Background);
    assert!(out.status.success(), "--version: {}", out.status);
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(version.starts_with("sshfs-rs "), "--version: {version:?}");
}

/// Unmounts and stops a background daemon even if the test fails halfway.
struct DaemonGuard {
    mnt: PathBuf,
}

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        let shown = self.mnt.to_string_lossy().into_owned();
        if is_mounted(&self.mnt) {
            let _ = run_command(
                Command::new("fusermount3").args(["-u", &shown]),
                Duration::from_secs(5),
            );
        }
        if is_mounted(&self.mnt) {
            let _ = run_command(
                Command::new("umount").args(["-l", &shown]),
                Duration::from_secs(5),
            );
        }
        for pid in pids_for(&self.mnt) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Without `-f` the command exits 0 only once the mount is live (as mount
/// helpers must): right after it returns the mount is there and shows the
/// server's files. The daemon then exits when unmounted.
#[test]
fn background_mount_is_ready_when_the_command_returns() {
    let sshd = Sshd::start();
    let mut scratch = Scratch::new();
    fs::write(sshd.root_dir().join("before.txt"), "made before mounting\n")
        .expect("write server file");
    let mnt = scratch.mountpoint("background");
    let guard = DaemonGuard { mnt: mnt.clone() };
    let mut args = vec![
        format!("root@127.0.0.1:{}", sshd.root_dir().display()),
        mnt.to_string_lossy().into_owned(),
    ];
    args.extend(good_args(&sshd, sshd.port()));
    let out = run(scratch.home(), &args, Mode::Background);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "background mount: {} {stderr}",
        out.status
    );
    assert!(stderr.is_empty(), "a good mount prints nothing: {stderr:?}");
    // No waiting: the mount must already be there.
    assert!(is_mounted(&mnt), "not mounted when the command returned");
    let pids = pids_for(&mnt);
    assert_eq!(pids.len(), 1, "one daemon for the mount: {pids:?}");
    let daemon = pids[0];
    assert_eq!(
        nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(daemon)))
            .expect("getsid")
            .as_raw(),
        daemon,
        "the daemon leads its own session"
    );
    assert_eq!(
        fs::read_to_string(mnt.join("before.txt")).expect("read through mount"),
        "made before mounting\n"
    );
    fs::write(sshd.root_dir().join("after.txt"), "made after mounting\n")
        .expect("write server file");
    assert_eq!(
        fs::read_to_string(mnt.join("after.txt")).expect("read new file through mount"),
        "made after mounting\n"
    );

    let shown = mnt.to_string_lossy().into_owned();
    // A process that another test spawns at this moment holds a copy of our (close-on-exec)
    // descriptors until it execs: the mount is busy for that instant, as it would be for any
    // program. Unmount as a user would: again, a moment later.
    let mut out = None;
    for _ in 0..20 {
        let o = run_command(
            Command::new("fusermount3").args(["-u", &shown]),
            Duration::from_secs(10),
        );
        let busy = !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("busy");
        out = Some(o);
        if !busy {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = out.expect("fusermount3 ran");
    assert!(
        out.status.success(),
        "fusermount3 -u: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!is_mounted(&mnt));
    let mut left = Vec::new();
    assert!(
        wait_until(SETTLE_TIMEOUT, || {
            left = pids_for(&mnt);
            left.is_empty()
        }),
        "daemon still running after unmount: {left:?}"
    );
    drop(guard);
}
