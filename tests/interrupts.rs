//! FUSE INTERRUPT: a process blocked on the mount can always be signalled away.
//!
//! The server side is frozen with a [`FaultProxy`] (the TCP connection stays open, nothing
//! moves), so every request that needs the server hangs. A process blocked in such a request
//! must then:
//!
//! * die within [`REQUIRED`] of SIGINT, of SIGTERM and of SIGKILL (measured from the signal to
//!   the process being reaped), and
//! * get EINTR within [`REQUIRED`] if it handles SIGINT (handler installed without
//!   SA_RESTART).
//!
//! That holds for read(), open(), stat() of a name never looked up, opendir(), readdir of a
//! directory never listed, write() and fsync(); close() must not hang at all. After `resume()`
//! the mount works again, the FUSE connection has no request waiting, and the server's
//! sftp-server holds no more open fds than before (no handle leaked by an abandoned request).
//! [`interrupt_storm`] does the same with many readers and random signals while the traffic is
//! frozen and resumed at random.
//!
//! The blocked processes ("victims") are this test binary itself, re-executed with
//! `SSHFS_RS_VICTIM=op:path` so that only [`victim`] runs: it prepares (opens the file, looks
//! the name up, ...) while the traffic still flows, prints `VICTIM ready TID`, waits for a line
//! on stdin, then makes the one system call under test and prints its result. The test signals
//! it only once /proc shows that thread asleep in that system call, plus [`SETTLE`].
//!
//! Where the kernel waits matters. Most requests wait in `request_wait_answer`: a signal makes
//! the kernel send an INTERRUPT, and the process is free once the server answers it. A buffered
//! read() instead waits for the kernel's own readahead (`folio_wait_bit_common`) when the
//! server took FUSE_ASYNC_READ at INIT: fatal signals end that wait without the server, a
//! handled one does not and no INTERRUPT is ever sent. sshfs-rs declines FUSE_ASYNC_READ by
//! default (`-o sync_read`, our patched fuse3), so the kernel sends READs from the reading
//! process and the SIGINT-handled case of [`read_is_interruptible`] holds too.
//!
//! Tests run one at a time (they measure latencies on a small machine); each prints its
//! measurements to stderr (`--nocapture` shows them), the victim's kernel wait channel
//! included. [`compare_with_c_sshfs`] only runs with `SSHFS_RS_COMPARE_C=1` and prints the
//! read() and stat() measurements for the C sshfs next to sshfs-rs; it asserts nothing.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::ffi::CString;
use std::fmt;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard};
use std::thread::{self, sleep};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::unistd::Pid;

use support::{
    FaultProxy, Mount, Rng, Sshd, SshfsC, abort_fuse_connection, fuse_connection_of, fuse_waiting,
    lacking, needs, open_fd_count, skip_note, wait_until,
};

/// A blocked process must be gone (or have its EINTR) this soon after the signal.
const REQUIRED: Duration = Duration::from_millis(300);
/// How long a measurement waits before it calls the process "still blocked".
const MEASURE_CAP: Duration = Duration::from_secs(2);
/// The same cap for [`compare_with_c_sshfs`].
const COMPARE_CAP: Duration = Duration::from_secs(3);
/// Pause between seeing the victim asleep in its system call and signalling it.
const SETTLE: Duration = Duration::from_millis(100);
/// Bound on a victim getting ready, and on it reaching its system call after "go".
const VICTIM_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on each step of the recovery after `resume()`.
const RECOVER_TIMEOUT: Duration = Duration::from_secs(15);
/// Mount options for the single-operation tests: names and attributes looked up while the
/// traffic flows stay valid, so the frozen system call waits on the request meant.
const LONG_TTLS: &[&str] = &["-o", "entry_timeout=60,attr_timeout=60"];

/// Length of the interrupt storm: 15 s (a new seed each run), `SSHFS_RS_INTERRUPT_STORM_SECS`
/// for a longer one.
fn storm_duration() -> Duration {
    let secs = std::env::var("SSHFS_RS_INTERRUPT_STORM_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    Duration::from_secs(secs)
}

/// Reader processes kept running during the storm.
const STORM_READERS: usize = 8;
/// Files the storm readers read (`o/00` ..., linked as `s/rN/00` ... for reader process N).
const STORM_FILES: u64 = 16;
/// During the storm, a reader sent a fatal signal must be dead this soon.
const STORM_REAP_BOUND: Duration = Duration::from_secs(1);

const VICTIM_ENV: &str = "SSHFS_RS_VICTIM";
/// Which signal the victim handles (no SA_RESTART): `INT` or `USR1`.
const HANDLER_ENV: &str = "SSHFS_RS_VICTIM_HANDLER";
const COMPARE_ENV: &str = "SSHFS_RS_COMPARE_C";
/// What [`compare_with_c_sshfs`] measures: read() as asked, and stat() of a new name (a
/// LOOKUP, which unlike a read the kernel makes wait for the FUSE server's answer).
const COMPARE_OPS: [Op; 2] = [Op::Read, Op::Stat];
/// Prefix of the lines a victim prints (libtest prints its own lines on the same stdout).
const TAG: &str = "VICTIM ";

/// Content of the file every test reads through the mount after `resume()`.
const CHECK_CONTENT: &[u8] = b"the mount works again\n";
const FILE_SIZE: usize = 1 << 20;
/// Four times the write-behind window (8 MiB), so write() must wait for acknowledgements.
const BIG_WRITE: usize = 32 << 20;

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs the tests of this file one at a time.
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// The tests.

/// Buffered read(), the handled SIGINT included (it needs sync reads, see the module doc).
#[test]
fn read_is_interruptible() {
    op_test(Op::Read);
}

#[test]
fn open_is_interruptible() {
    op_test(Op::Open);
}

#[test]
fn stat_of_a_new_name_is_interruptible() {
    op_test(Op::Stat);
}

#[test]
fn opendir_is_interruptible() {
    op_test(Op::Opendir);
}

#[test]
fn readdir_of_a_new_directory_is_interruptible() {
    op_test(Op::Readdir);
}

#[test]
fn write_is_interruptible() {
    op_test(Op::Write);
}

#[test]
fn fsync_is_interruptible() {
    op_test(Op::Fsync);
}

#[test]
fn close_does_not_hang() {
    op_test(Op::Close);
}

/// One victim per way of signalling, all blocked in `op` on the same frozen mount; then
/// resume and check that everything recovers.
fn op_test(op: Op) {
    if lacking(needs::proc_syscall()) {
        return;
    }
    let hows = &How::ALL;
    let _serial = serial();
    let mut fix = Fixture::start(Client::SshfsRs, LONG_TTLS);
    let baseline_fds = fix.sftp_fds();
    for &how in hows {
        let path = op.prepare(fix.sshd.root_dir(), fix.mnt(), how.label());
        let v = Victim::spawn(op.name(), &path, how.handled());
        fix.victims.push(v);
    }
    fix.proxy.freeze();
    let samples: Vec<Sample> = hows
        .iter()
        .enumerate()
        .map(|(i, &how)| measure(&mut fix.victims[i], how, MEASURE_CAP))
        .collect();
    eprintln!("{op} (sshfs-rs, traffic frozen):");
    for s in &samples {
        eprintln!("  {s}");
    }
    let mut failures: Vec<String> = samples.iter().filter_map(|s| s.failure(op)).collect();
    failures.extend(fix.recover(baseline_fds));
    assert!(
        failures.is_empty(),
        "{op}: {} problem(s):\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

/// [`STORM_READERS`] processes read, stat and list files in a loop while the traffic is frozen
/// and resumed at random and random signals hit them (SIGUSR1, which they handle, and the fatal
/// SIGINT, SIGTERM and SIGKILL; a killed reader is replaced). No reader may hang, none may see
/// wrong data or an error other than EINTR, and afterwards everything recovers.
///
/// Each reader process reads the files under names of its own (server-side hard links, so
/// new inodes for the kernel). Shared names would make the test fail whatever the FUSE server
/// does: the readahead of a killed reader stays pending while the traffic is frozen and keeps
/// the file's pages locked, and open() of that file by another process (which drops the page
/// cache) waits for them uninterruptibly in the kernel (`__folio_lock`).
#[test]
fn interrupt_storm() {
    let _serial = serial();
    let mut fix = Fixture::start(Client::SshfsRs, &[]);
    let (originals, dirs) = (fix.sshd.root_dir().join("o"), fix.sshd.root_dir().join("s"));
    fs::create_dir(&originals).unwrap();
    fs::create_dir(&dirs).unwrap();
    for k in 0..STORM_FILES {
        fs::write(originals.join(storm_name(k)), storm_content(k)).unwrap();
    }
    let baseline_fds = fix.sftp_fds();
    let mnt_dirs = fix.mnt().join("s");
    let reader_dir = |n: usize| -> (PathBuf, PathBuf) {
        let name = format!("r{n}");
        (dirs.join(&name), mnt_dirs.join(name))
    };

    let seed = std::env::var("SSHFS_RS_STORM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(clock_seed);
    let mut rng = Rng::new(seed);
    let mut stats = StormStats::default();
    let mut failures = Vec::new();
    // Indices into fix.victims: readers running, and readers sent a fatal signal at a time.
    let mut active: Vec<usize> = Vec::new();
    let mut dying: Vec<Dying> = Vec::new();

    let start = Instant::now();
    let mut frozen = false;
    let mut next_toggle = start + rng.millis(300, 1000);
    let mut next_signal = start + rng.millis(50, 150);
    let duration = storm_duration();
    while start.elapsed() < duration {
        let now = Instant::now();
        if now >= next_toggle {
            frozen = !frozen;
            if frozen {
                fix.proxy.freeze();
                stats.freezes += 1;
                next_toggle = now + rng.millis(500, 2000);
            } else {
                fix.proxy.resume();
                next_toggle = now + rng.millis(200, 1000);
            }
        }
        reap_dying(&mut fix, &mut dying, &mut stats);
        active.retain(|&i| {
            let v = &mut fix.victims[i];
            match v.child.try_wait() {
                Ok(None) => true,
                Ok(Some(status)) => {
                    failures.push(format!(
                        "reader {} exited by itself ({status}): {}",
                        v.pid,
                        v.drain_lines().join(" | ")
                    ));
                    false
                }
                Err(e) => panic!("waiting for reader {}: {e}", v.pid),
            }
        });
        while active.len() < STORM_READERS {
            let (srv, mnt) = reader_dir(fix.victims.len());
            fs::create_dir(&srv).unwrap();
            for k in 0..STORM_FILES {
                let name = storm_name(k);
                fs::hard_link(originals.join(&name), srv.join(&name)).unwrap();
            }
            fix.victims
                .push(Victim::spawn("storm", &mnt, Some(Signal::SIGUSR1)));
            active.push(fix.victims.len() - 1);
        }
        if now >= next_signal {
            let pick = active[rng.below(active.len() as u64) as usize];
            let v = &mut fix.victims[pick];
            let sig = [
                Signal::SIGUSR1,
                Signal::SIGINT,
                Signal::SIGTERM,
                Signal::SIGKILL,
            ][rng.below(4) as usize];
            if sig == Signal::SIGUSR1 {
                v.signal_thread(sig);
                stats.handled += 1;
            } else {
                let was_in = v.whereabouts();
                let sent = Instant::now();
                v.signal_process(sig);
                stats.fatal += 1;
                active.retain(|&i| i != pick);
                dying.push(Dying {
                    victim: pick,
                    sent,
                    sig,
                    was_in,
                    died: watch_death(v.pid, sent),
                });
            }
            next_signal = now + rng.millis(20, 120);
        }
        sleep(Duration::from_millis(2));
    }
    fix.proxy.resume();

    // Readers signalled at the very end still get their bound; then stop the others.
    let end = Instant::now() + STORM_REAP_BOUND;
    while !dying.is_empty() && Instant::now() < end {
        reap_dying(&mut fix, &mut dying, &mut stats);
        sleep(Duration::from_millis(1));
    }
    reap_dying(&mut fix, &mut dying, &mut stats);
    for d in &dying {
        let v = &fix.victims[d.victim];
        stats.hung.push(format!(
            "reader {} not reaped {} after {} (signalled in {}; now state {}, wchan {})",
            v.pid,
            ms(d.sent.elapsed()),
            d.sig,
            d.was_in,
            v.state(),
            v.wchan()
        ));
    }
    for &i in &active {
        let v = &mut fix.victims[i];
        v.signal_process(Signal::SIGKILL);
        if reap_within(&mut v.child, RECOVER_TIMEOUT).is_none() {
            stats.hung.push(format!(
                "reader {} not reaped {RECOVER_TIMEOUT:?} after SIGKILL with the traffic flowing",
                v.pid
            ));
        }
    }
    failures.extend(stats.hung.iter().cloned());
    failures.extend(fix.recover(baseline_fds));
    let (mut files_ok, mut eintrs) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    for v in &fix.victims {
        // The readers are gone: their output ends once the pipes are drained.
        let left = || deadline.saturating_duration_since(Instant::now());
        while let Ok(line) = v.lines.recv_timeout(left()) {
            files_ok += usize::from(line == "ok");
            eintrs += usize::from(line == "eintr");
        }
    }
    if files_ok == 0 {
        failures.push("no reader read a single file".into());
    }

    eprintln!(
        "interrupt storm (seed {seed}): {:?}, {} readers, {} freezes, {} SIGUSR1 (handled), \
         {} fatal signals ({} readers started)",
        duration,
        STORM_READERS,
        stats.freezes,
        stats.handled,
        stats.fatal,
        fix.victims.len()
    );
    eprintln!(
        "  fatal signal -> dead: {}; over {STORM_REAP_BOUND:?}: {}",
        summarize(&mut stats.latencies),
        stats.hung.len()
    );
    eprintln!("  files read and verified: {files_ok}; calls ended by EINTR: {eintrs}");
    assert!(
        failures.is_empty(),
        "interrupt storm (seed {seed}): {} problem(s):\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

/// Prints how long a process blocked in read() (and in stat() of a new name) takes to die of
/// SIGINT, SIGTERM and SIGKILL (and to get EINTR when it handles SIGINT) with sshfs-rs and with
/// the C sshfs, measured in the same run through the same frozen proxy. Only with `SSHFS_RS_COMPARE_C=1`; asserts
/// nothing about either client.
#[test]
fn compare_with_c_sshfs() {
    if std::env::var(COMPARE_ENV).as_deref() != Ok("1") {
        eprintln!("compare_with_c_sshfs: set {COMPARE_ENV}=1 to run it");
        return;
    }
    if lacking(needs::c_sshfs().and_then(|()| needs::proc_syscall())) {
        return;
    }
    let _serial = serial();
    let mut table = Vec::new();
    for client in [Client::SshfsRs, Client::SshfsC] {
        let mut fix = Fixture::start(client, LONG_TTLS);
        for op in COMPARE_OPS {
            for how in How::ALL {
                let path = op.prepare(fix.sshd.root_dir(), fix.mnt(), how.label());
                fix.victims
                    .push(Victim::spawn(op.name(), &path, how.handled()));
            }
        }
        fix.proxy.freeze();
        for (i, (op, how)) in COMPARE_OPS
            .into_iter()
            .flat_map(|op| How::ALL.map(|how| (op, how)))
            .enumerate()
        {
            let sample = measure(&mut fix.victims[i], how, COMPARE_CAP);
            table.push((op, client, sample));
        }
        fix.proxy.resume();
        let all_gone = wait_until(Duration::from_secs(5), || {
            fix.victims.iter_mut().all(|v| !v.alive())
        });
        if !all_gone {
            eprintln!("{client}: victims still blocked 5 s after resume; aborting the connection");
            fix.abort_connection();
        }
        // Dropping the fixture unmounts (aborting the connection if the client hangs).
    }
    eprintln!("blocked on a frozen server, signal -> reaped or EINTR (cap {COMPARE_CAP:?}):");
    eprintln!("  {:<6} {:<10} {:<14} outcome", "call", "client", "signal");
    for (op, client, s) in &table {
        eprintln!(
            "  {:<6} {:<10} {:<14} {} [wchan {}]",
            op.name(),
            client.to_string(),
            s.how.label(),
            s.outcome.describe(COMPARE_CAP),
            s.wchan
        );
    }
}

/// Not a test: the body of a victim process. Returns at once unless `SSHFS_RS_VICTIM` is set.
#[test]
fn victim() {
    let Ok(spec) = std::env::var(VICTIM_ENV) else {
        return;
    };
    let (op, path) = spec
        .split_once(':')
        .unwrap_or_else(|| panic!("{VICTIM_ENV}={spec}: want op:path"));
    // A test run started in the background of a non-interactive shell inherits SIGINT and
    // SIGQUIT ignored: the victim takes the default dispositions, as a program run from a
    // terminal has them, so a plain SIGINT kills it.
    for sig in [Signal::SIGINT, Signal::SIGQUIT] {
        // SAFETY: SIG_DFL installs no handler; the victim is single-threaded here.
        unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl) }
            .expect("reset a signal's disposition");
    }
    if let Ok(name) = std::env::var(HANDLER_ENV) {
        let sig = match name.as_str() {
            "INT" => Signal::SIGINT,
            "USR1" => Signal::SIGUSR1,
            other => panic!("{HANDLER_ENV}={other}: want INT or USR1"),
        };
        install_handler(sig);
    }
    if op == "storm" {
        storm_reader(Path::new(path));
    }
    victim_syscall(op, Path::new(path));
}

// ---------------------------------------------------------------------------------------------
// The fixture: sshd, fault proxy, mount through it, and the victims.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Client {
    SshfsRs,
    SshfsC,
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Client::SshfsRs => "sshfs-rs",
            Client::SshfsC => "C sshfs",
        })
    }
}

enum AnyMount {
    Rs(Mount),
    C(SshfsC),
}

/// Dropping it resumes the traffic and kills the victims before it unmounts, so neither a
/// panic nor a failed assertion leaves a process or a mount hanging. Fields drop in order.
struct Fixture {
    victims: Vec<Victim>,
    mount: AnyMount,
    proxy: FaultProxy,
    sshd: Sshd,
}

impl Fixture {
    fn start(client: Client, extra_args: &[&str]) -> Fixture {
        let sshd = Sshd::start();
        let proxy = FaultProxy::start(sshd.port());
        let mount = match client {
            Client::SshfsRs => AnyMount::Rs(Mount::start_via(&sshd, proxy.port(), extra_args)),
            Client::SshfsC => AnyMount::C(SshfsC::start_via(&sshd, proxy.port(), extra_args)),
        };
        fs::write(sshd.root_dir().join("check"), CHECK_CONTENT).unwrap();
        Fixture {
            victims: Vec::new(),
            mount,
            proxy,
            sshd,
        }
    }

    fn mnt(&self) -> &Path {
        match &self.mount {
            AnyMount::Rs(m) => m.path(),
            AnyMount::C(m) => m.path(),
        }
    }

    /// Open fds of all sftp-server processes of this sshd beyond the three every one has
    /// (stdin, stdout, stderr): the files and directories they hold open for us. Not the
    /// processes themselves: a large write opens more channels (each its own sftp-server) in
    /// the background, which stay with the connection.
    fn sftp_fds(&self) -> usize {
        self.sshd
            .sftp_server_pids()
            .into_iter()
            .map(|pid| open_fd_count(pid).saturating_sub(3))
            .sum()
    }

    fn abort_connection(&self) {
        if let Some(conn) = fuse_connection_of(self.mnt()) {
            abort_fuse_connection(conn);
        }
    }

    /// Resumes the traffic and checks the recovery: every victim gone, the mount serving
    /// correct data, no request waiting, no more server fds than `baseline_fds`.
    fn recover(&mut self, baseline_fds: usize) -> Vec<String> {
        let mut failures = Vec::new();
        self.proxy.resume();
        let deadline = Instant::now() + RECOVER_TIMEOUT;
        for v in &mut self.victims {
            let left = deadline.saturating_duration_since(Instant::now());
            if reap_within(&mut v.child, left).is_none() {
                failures.push(format!(
                    "victim {} ({}) still alive {RECOVER_TIMEOUT:?} after resume (state {}, wchan {})",
                    v.pid,
                    v.op,
                    v.state(),
                    v.wchan()
                ));
                v.signal_process(Signal::SIGKILL);
            }
        }
        let check = self.mnt().join("check");
        match bounded(RECOVER_TIMEOUT, move || fs::read(check)) {
            Some(Ok(data)) if data == CHECK_CONTENT => {}
            Some(Ok(data)) => failures.push(format!(
                "after resume, check file reads {:?}",
                String::from_utf8_lossy(&data)
            )),
            Some(Err(e)) => failures.push(format!("after resume, reading the check file: {e}")),
            None => failures.push(format!(
                "after resume, reading the check file hangs (> {RECOVER_TIMEOUT:?})"
            )),
        }
        let mnt = self.mnt().to_path_buf();
        match needs::fusectl() {
            Ok(()) => {
                if !wait_until(RECOVER_TIMEOUT, || fuse_waiting(&mnt) == Some(0)) {
                    failures.push(format!(
                        "FUSE requests still waiting {RECOVER_TIMEOUT:?} after resume: {:?}",
                        fuse_waiting(&mnt)
                    ));
                }
            }
            Err(why) => skip_note(&format!("the check that no FUSE request waits: {why}")),
        }
        let fds_back = wait_until(RECOVER_TIMEOUT, || self.sftp_fds() <= baseline_fds);
        let fds = self.sftp_fds();
        eprintln!(
            "  after resume: sftp-server fds {fds} (before: {baseline_fds}), FUSE waiting {:?}",
            fuse_waiting(&mnt)
        );
        if !fds_back {
            failures.push(format!(
                "sftp-server fds: {baseline_fds} before, {fds} {RECOVER_TIMEOUT:?} after resume (leaked handles)"
            ));
        }
        failures
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.proxy.resume();
        for v in &mut self.victims {
            if v.alive() {
                v.signal_process(Signal::SIGKILL);
            }
        }
        let victims = &mut self.victims;
        if !wait_until(Duration::from_secs(5), || {
            victims.iter_mut().all(|v| !v.alive())
        }) {
            self.abort_connection();
        }
        // Victim::drop reaps (bounded); then the mount, proxy and sshd drop in that order.
        self.victims.clear();
    }
}

/// Runs `f` on a helper thread; `None` if it has not finished within `timeout` (the thread
/// is left behind, blocked on the mount, and freed when the fixture aborts the connection).
fn bounded<T: Send + 'static>(
    timeout: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(timeout).ok()
}

/// Waits up to `timeout` for `child` to be reaped, polling every millisecond; returns how long
/// it took (zero if it was already gone).
fn reap_within(child: &mut Child, timeout: Duration) -> Option<(ExitStatus, Duration)> {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some((status, start.elapsed()));
        }
        if start.elapsed() >= timeout {
            return None;
        }
        sleep(Duration::from_millis(1));
    }
}

// ---------------------------------------------------------------------------------------------
// Operations and ways of signalling.

/// The system call a victim is blocked in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    /// read() of an open file whose data was never read (READ, sent by readahead).
    Read,
    /// open() of a name already looked up (OPEN).
    Open,
    /// stat() of a name never looked up, in a directory already looked up (LOOKUP).
    Stat,
    /// open(O_DIRECTORY) of a directory already looked up (OPENDIR).
    Opendir,
    /// getdents64() on a directory opened but never listed (READDIR / READDIRPLUS).
    Readdir,
    /// write() of 32 MiB to a new file (WRITE): more than the write-behind window, so it waits on acknowledgements.
    Write,
    /// fsync() after writing 1 MiB (FSYNC).
    Fsync,
    /// close() after writing 1 MiB (FLUSH, then RELEASE in the background): it may simply
    /// return, but must not hang.
    Close,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Open => "open",
            Op::Stat => "stat",
            Op::Opendir => "opendir",
            Op::Readdir => "readdir",
            Op::Write => "write",
            Op::Fsync => "fsync",
            Op::Close => "close",
        }
    }

    /// Creates what the victim `tag` works on in the server's directory; returns its path
    /// through the mount.
    fn prepare(self, srv: &Path, mnt: &Path, tag: &str) -> PathBuf {
        let name = format!("{}-{tag}", self.name());
        match self {
            Op::Read | Op::Open => {
                fs::write(srv.join(&name), file_content(&name)).unwrap();
            }
            Op::Stat => {
                // Its own parent for each victim: a client without parallel directory
                // operations would otherwise queue the later LOOKUPs behind the first one.
                fs::create_dir(srv.join(&name)).unwrap();
                fs::write(srv.join(&name).join("new"), file_content(&name)).unwrap();
                return mnt.join(name).join("new");
            }
            Op::Opendir | Op::Readdir => {
                fs::create_dir(srv.join(&name)).unwrap();
                for i in 0..5 {
                    fs::write(srv.join(&name).join(format!("entry{i}")), b"x").unwrap();
                }
            }
            Op::Write | Op::Fsync | Op::Close => {}
        }
        mnt.join(name)
    }

    /// Whether the system call may finish on a frozen server instead of blocking.
    /// Whether `result` ("ok N") is a short count this call may return when interrupted.
    fn partial_ok(self, result: &str) -> bool {
        let count = result
            .strip_prefix("ok ")
            .and_then(|n| n.parse::<usize>().ok());
        matches!(self, Op::Write) && count.is_some_and(|n| n > 0 && n < BIG_WRITE)
    }

    fn may_complete(self) -> bool {
        self == Op::Close
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a blocked victim is signalled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum How {
    /// SIGINT, default action (fatal).
    Int,
    /// SIGTERM, default action.
    Term,
    /// SIGKILL.
    Kill,
    /// SIGINT to a process that handles it (no SA_RESTART): the call must fail with EINTR.
    IntHandled,
}

impl How {
    const ALL: [How; 4] = [How::Int, How::Term, How::Kill, How::IntHandled];

    fn label(self) -> &'static str {
        match self {
            How::Int => "SIGINT",
            How::Term => "SIGTERM",
            How::Kill => "SIGKILL",
            How::IntHandled => "SIGINT-handled",
        }
    }

    fn signal(self) -> Signal {
        match self {
            How::Int | How::IntHandled => Signal::SIGINT,
            How::Term => Signal::SIGTERM,
            How::Kill => Signal::SIGKILL,
        }
    }

    /// The signal the victim installs a handler for.
    fn handled(self) -> Option<Signal> {
        (self == How::IntHandled).then_some(Signal::SIGINT)
    }
}

/// One victim's fate.
struct Sample {
    how: How,
    /// Where the victim slept when signalled (/proc/PID/task/TID/wchan).
    wchan: String,
    outcome: Outcome,
}

enum Outcome {
    /// Reaped this long after the signal.
    Died(Duration),
    /// The system call failed with EINTR this long after the signal.
    Eintr(Duration),
    /// The system call returned something else after the signal ("errno N" or "ok N").
    Returned(String, Duration),
    /// The system call finished before it was signalled (a frozen server did not block it).
    NotBlocked(String),
    /// Still blocked at the cap.
    StillBlocked,
}

impl Outcome {
    fn describe(&self, cap: Duration) -> String {
        match self {
            Outcome::Died(d) => format!("died after {}", ms(*d)),
            Outcome::Eintr(d) => format!("EINTR after {}", ms(*d)),
            Outcome::Returned(r, d) => format!("returned `{r}` after {}", ms(*d)),
            Outcome::NotBlocked(r) => format!("did not block: {r}"),
            Outcome::StillBlocked => format!("still blocked after {cap:?}"),
        }
    }
}

impl Sample {
    /// What is wrong with this sample for `op`, if anything.
    fn failure(&self, op: Op) -> Option<String> {
        let ok = match &self.outcome {
            Outcome::Died(d) => self.how.handled().is_none() && *d <= REQUIRED,
            Outcome::Eintr(d) => self.how.handled().is_some() && *d <= REQUIRED,
            Outcome::NotBlocked(r) => op.may_complete() && r == "ok 0",
            // write(2) interrupted after part of the buffer was accepted returns that part
            // (POSIX), never more than was asked for.
            Outcome::Returned(r, d) => {
                self.how.handled().is_some() && *d <= REQUIRED && op.partial_ok(r)
            }
            Outcome::StillBlocked => false,
        };
        (!ok).then(|| format!("{op}, {self} (want: within {})", ms(REQUIRED)))
    }
}

impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<14} {} [wchan {}]",
            self.how.label(),
            self.outcome.describe(MEASURE_CAP),
            self.wchan
        )
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Lets `v` make its system call, waits until it sleeps in it, signals it as `how` says and
/// measures the outcome (up to `cap`). A victim still blocked at the cap is sent SIGKILL and
/// left for the fixture to reap after resume.
fn measure(v: &mut Victim, how: How, cap: Duration) -> Sample {
    v.go();
    let blocked = v.wait_blocked(VICTIM_TIMEOUT);
    if !blocked {
        let what = match v.result(Duration::from_secs(1)) {
            Some(r) => r,
            None if v.alive() => format!(
                "not asleep in its system call within {VICTIM_TIMEOUT:?} (state {}, wchan {})",
                v.state(),
                v.wchan()
            ),
            None => "exited without a result".into(),
        };
        return Sample {
            how,
            wchan: "-".into(),
            outcome: Outcome::NotBlocked(what),
        };
    }
    sleep(SETTLE);
    if let Some(r) = v.try_result() {
        return Sample {
            how,
            wchan: "-".into(),
            outcome: Outcome::NotBlocked(r),
        };
    }
    let wchan = v.wchan();
    let start = Instant::now();
    let outcome = if how.handled().is_some() {
        v.signal_thread(how.signal());
        match v.result(cap) {
            Some(r) if r == format!("errno {}", libc::EINTR) => Outcome::Eintr(start.elapsed()),
            Some(r) => Outcome::Returned(r, start.elapsed()),
            None => Outcome::StillBlocked,
        }
    } else {
        v.signal_process(how.signal());
        match reap_within(&mut v.child, cap) {
            Some((_, _)) => Outcome::Died(start.elapsed()),
            None => Outcome::StillBlocked,
        }
    };
    if matches!(outcome, Outcome::StillBlocked) {
        v.signal_process(Signal::SIGKILL);
    }
    Sample {
        how,
        wchan,
        outcome,
    }
}

// ---------------------------------------------------------------------------------------------
// The victim, seen from the test.

/// A victim process: this test binary running [`victim`].
struct Victim {
    op: String,
    child: Child,
    pid: i32,
    /// The thread that makes the system call.
    tid: i32,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Victim {
    /// Starts a victim for `op` on `path` (handling `handler` if given) and waits until it
    /// is ready.
    fn spawn(op: &str, path: &Path, handler: Option<Signal>) -> Victim {
        let exe = std::env::current_exe().expect("path of the test binary");
        let mut cmd = Command::new(exe);
        cmd.args(["--exact", "victim", "--nocapture", "--test-threads=1"])
            .env(VICTIM_ENV, format!("{op}:{}", path.display()))
            .env_remove(HANDLER_ENV)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        match handler {
            Some(Signal::SIGINT) => {
                cmd.env(HANDLER_ENV, "INT");
            }
            Some(Signal::SIGUSR1) => {
                cmd.env(HANDLER_ENV, "USR1");
            }
            Some(other) => panic!("victims cannot handle {other}"),
            None => {}
        }
        let mut child = cmd.spawn().expect("spawn the victim");
        let stdout = child.stdout.take().expect("victim stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // libtest may have started the line ("test victim ... ").
                if let Some(at) = line.find(TAG)
                    && tx.send(line[at + TAG.len()..].to_string()).is_err()
                {
                    break;
                }
            }
        });
        let mut v = Victim {
            op: op.to_string(),
            pid: child.id() as i32,
            stdin: child.stdin.take(),
            child,
            tid: 0,
            lines: rx,
        };
        match v.lines.recv_timeout(VICTIM_TIMEOUT) {
            Ok(line) => match line.strip_prefix("ready ").and_then(|t| t.parse().ok()) {
                Some(tid) => v.tid = tid,
                None => panic!("victim {op} {}: {line}", path.display()),
            },
            Err(e) => panic!("victim {op} {} not ready: {e}", path.display()),
        }
        v
    }

    /// Tells the victim to make its system call.
    fn go(&mut self) {
        let stdin = self.stdin.as_mut().expect("victim stdin");
        stdin.write_all(b"go\n").expect("write to victim stdin");
        stdin.flush().expect("flush victim stdin");
    }

    /// Waits until the victim thread sleeps (S or D) in a system call other than its read of
    /// stdin, i.e. in the one under test; false if it exits or never does.
    fn wait_blocked(&mut self, timeout: Duration) -> bool {
        let (pid, tid) = (self.pid, self.tid);
        let mut blocked = false;
        wait_until(timeout, || {
            if !self.alive() {
                return true;
            }
            let state = self.state();
            let syscall =
                fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).unwrap_or_default();
            let mut fields = syscall.split_whitespace();
            let nr: i64 = fields.next().and_then(|n| n.parse().ok()).unwrap_or(-1);
            let arg0 = fields.next().unwrap_or("");
            let reading_stdin = nr == libc::SYS_read && arg0 == "0x0";
            blocked = (state == 'S' || state == 'D') && nr >= 0 && !reading_stdin;
            blocked
        });
        blocked && self.alive()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Scheduler state of the victim thread ('?' once it is gone).
    fn state(&self) -> char {
        let text = fs::read_to_string(format!("/proc/{}/task/{}/stat", self.pid, self.tid))
            .unwrap_or_default();
        text.rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .unwrap_or('?')
    }

    /// Kernel function the victim thread sleeps in.
    fn wchan(&self) -> String {
        fs::read_to_string(format!("/proc/{}/task/{}/wchan", self.pid, self.tid))
            .map(|w| w.trim().to_string())
            .unwrap_or_else(|_| "?".into())
    }

    /// The system call the victim thread is in and where it sleeps, e.g. `openat/request_wait_answer`.
    fn whereabouts(&self) -> String {
        let syscall = fs::read_to_string(format!("/proc/{}/task/{}/syscall", self.pid, self.tid))
            .unwrap_or_default();
        let first = syscall.split_whitespace().next().unwrap_or("?");
        let name = match first.parse::<i64>() {
            Ok(libc::SYS_read) => "read".to_string(),
            Ok(libc::SYS_openat) => "openat".to_string(),
            Ok(libc::SYS_statx) => "statx".to_string(),
            Ok(libc::SYS_newfstatat) => "newfstatat".to_string(),
            Ok(libc::SYS_getdents64) => "getdents64".to_string(),
            Ok(libc::SYS_close) => "close".to_string(),
            Ok(libc::SYS_futex) => "futex".to_string(),
            Ok(libc::SYS_exit_group) => "exit_group".to_string(),
            Ok(-1) => "no syscall".to_string(),
            Ok(nr) => format!("syscall {nr}"),
            Err(_) => first.to_string(), // "running", or empty once gone
        };
        format!("{name}/{} {}", self.state(), self.wchan())
    }

    /// Signals the process (a fatal signal ends every thread).
    fn signal_process(&self, sig: Signal) {
        let _ = kill(Pid::from_raw(self.pid), sig);
    }

    /// Signals the victim thread itself: a signal sent to the process would be handled by
    /// libtest's main thread and leave the system call alone.
    fn signal_thread(&self, sig: Signal) {
        // SAFETY: tgkill only sends a signal; a stale tid at worst fails with ESRCH.
        unsafe {
            libc::syscall(
                libc::SYS_tgkill,
                libc::c_long::from(self.pid),
                libc::c_long::from(self.tid),
                libc::c_long::from(sig as i32),
            );
        }
    }

    /// The result line of the system call ("errno N" / "ok N"), waiting up to `timeout`.
    fn result(&self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(r) = line.strip_prefix("result ") {
                        return Some(r.to_string());
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    fn try_result(&self) -> Option<String> {
        self.lines
            .try_iter()
            .find_map(|line| line.strip_prefix("result ").map(str::to_string))
    }

    fn drain_lines(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        if self.alive() {
            let _ = self.child.kill();
            if reap_within(&mut self.child, Duration::from_secs(5)).is_none() {
                eprintln!(
                    "warning: victim {} ({}) could not be reaped",
                    self.pid, self.op
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The victim, from the inside.

fn say(msg: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{TAG}{msg}");
    let _ = out.flush();
}

extern "C" fn on_signal(_: libc::c_int) {}

fn install_handler(sig: Signal) {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(), // no SA_RESTART: a blocked system call fails with EINTR
        SigSet::empty(),
    );
    // SAFETY: the handler does nothing, which is async-signal-safe.
    unsafe { sigaction(sig, &action) }.expect("install signal handler");
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
}

/// Prepares `op` on `path`, says ready, waits for "go" on stdin, makes the one system call
/// and prints its result. Never returns.
fn victim_syscall(op: &str, path: &Path) -> ! {
    let c = CString::new(path.as_os_str().as_bytes()).expect("path without NUL");
    let mut buf = vec![0u8; 64 * 1024];
    let big = vec![b'w'; BIG_WRITE];
    // SAFETY (all libc calls below): valid NUL-terminated path, buffers of the given lengths.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let create = || unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
            0o644,
        )
    };
    let setup_fd = match op {
        "read" => unsafe { libc::open(c.as_ptr(), libc::O_RDONLY) },
        "readdir" => unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) },
        "write" => create(),
        "fsync" | "close" => {
            let fd = create();
            if fd >= 0 && unsafe { libc::write(fd, big.as_ptr().cast(), FILE_SIZE) } < 0 {
                say(&format!("setup-failed write errno {}", errno()));
                std::process::exit(1);
            }
            fd
        }
        "open" | "opendir" => unsafe { libc::stat(c.as_ptr(), &mut st) },
        "stat" => {
            let parent = CString::new(path.parent().unwrap_or(path).as_os_str().as_bytes())
                .expect("path without NUL");
            unsafe { libc::stat(parent.as_ptr(), &mut st) }
        }
        other => panic!("unknown victim op {other}"),
    };
    if setup_fd < 0 {
        say(&format!("setup-failed errno {}", errno()));
        std::process::exit(1);
    }
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    say(&format!("ready {tid}"));
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    let fd = setup_fd;
    let r: i64 = match op {
        "read" => unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) as i64 },
        "open" => unsafe { libc::open(c.as_ptr(), libc::O_RDONLY).into() },
        "opendir" => unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY).into() },
        "stat" => unsafe { libc::stat(c.as_ptr(), &mut st).into() },
        "readdir" => unsafe {
            libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len())
        },
        "write" => unsafe { libc::write(fd, big.as_ptr().cast(), big.len()) as i64 },
        "fsync" => unsafe { libc::fsync(fd).into() },
        "close" => unsafe { libc::close(fd).into() },
        other => panic!("unknown victim op {other}"),
    };
    if r < 0 {
        say(&format!("result errno {}", errno()));
    } else {
        say(&format!("result ok {r}"));
    }
    std::process::exit(0);
}

// ---------------------------------------------------------------------------------------------
// The storm.

#[derive(Default)]
struct StormStats {
    freezes: usize,
    handled: usize,
    fatal: usize,
    latencies: Vec<Duration>,
    hung: Vec<String>,
}

/// A storm reader sent a fatal signal.
struct Dying {
    victim: usize,
    sent: Instant,
    sig: Signal,
    /// Where its thread was when signalled ([`Victim::whereabouts`]).
    was_in: String,
    /// From [`watch_death`].
    died: Receiver<Duration>,
}

/// Watches `pid` on a thread of its own, so that the storm loop (which may be busy starting a
/// reader) does not delay the measurement: the receiver gets how long after `since` the
/// process died (all its threads gone; it may still wait to be reaped).
fn watch_death(pid: i32, since: Instant) -> Receiver<Duration> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        while since.elapsed() < RECOVER_TIMEOUT * 4 {
            if process_dead(pid) {
                let _ = tx.send(since.elapsed());
                return;
            }
            sleep(Duration::from_millis(1));
        }
    });
    rx
}

/// True if no thread of `pid` runs any more. The main thread of a dying process turns zombie
/// at once, while another thread may still be stuck in the kernel: look at every thread.
fn process_dead(pid: i32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.filter_map(Result::ok).all(|task| {
        let stat = fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        matches!(state, None | Some('Z' | 'X'))
    })
}

/// Reaps the readers sent a fatal signal; one that took longer than [`STORM_REAP_BOUND`] to
/// die hung.
fn reap_dying(fix: &mut Fixture, dying: &mut Vec<Dying>, stats: &mut StormStats) {
    dying.retain(|d| {
        let v = &mut fix.victims[d.victim];
        match v.child.try_wait() {
            Ok(Some(_)) => {
                let took = d
                    .died
                    .recv_timeout(Duration::from_millis(100))
                    .unwrap_or_else(|_| d.sent.elapsed());
                stats.latencies.push(took);
                if took > STORM_REAP_BOUND {
                    stats.hung.push(format!(
                        "reader {} took {} to die of {} (signalled in {})",
                        v.pid,
                        ms(took),
                        d.sig,
                        d.was_in
                    ));
                }
                false
            }
            _ => true,
        }
    });
}

fn summarize(latencies: &mut [Duration]) -> String {
    if latencies.is_empty() {
        return "no samples".into();
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    format!(
        "n={} median {} p90 {} p99 {} max {}",
        latencies.len(),
        ms(at(0.5)),
        ms(at(0.9)),
        ms(at(0.99)),
        ms(at(1.0))
    )
}

fn storm_name(k: u64) -> String {
    format!("{k:02}")
}

/// Content of storm file `k`: a few hundred KiB (not page aligned) of a pattern unique to it.
fn storm_content(k: u64) -> Vec<u8> {
    let len = 64 * 1024 * (1 + k as usize % 4) + 100 * k as usize + 7;
    (0..len)
        .map(|i| ((i as u64 * 31 + k * 7 + i as u64 / 4093) % 251) as u8)
        .collect()
}

/// Content of the files of the single-operation tests.
fn file_content(name: &str) -> Vec<u8> {
    let seed = name.bytes().map(u64::from).sum::<u64>();
    (0..FILE_SIZE as u64)
        .map(|i| ((i * 13 + seed) % 253) as u8)
        .collect()
}

/// A storm reader: stat, open, read and check random files of `dir`, list it every 8th
/// round, forever; says "ok" for each file read whole and right. EINTR abandons the round
/// (said as "eintr"); any other error or wrong data ends the process with a message.
fn storm_reader(dir: &Path) -> ! {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    say(&format!("ready {tid}"));
    let mut rng = Rng::new(clock_seed() ^ u64::from(std::process::id()));
    let mut buf = vec![0u8; 128 * 1024];
    for round in 0u64.. {
        if round % 8 == 7 {
            match fs::read_dir(dir).and_then(|rd| rd.collect::<Result<Vec<_>, _>>()) {
                Ok(entries) if entries.len() as u64 == STORM_FILES => {}
                Ok(entries) => storm_fail(format!("listing has {} entries", entries.len())),
                Err(e) if e.kind() == ErrorKind::Interrupted => {
                    say("eintr");
                    continue;
                }
                Err(e) => storm_fail(format!("readdir: {e}")),
            }
        }
        let k = rng.below(STORM_FILES);
        let path = dir.join(storm_name(k));
        let want = storm_content(k);
        match fs::metadata(&path) {
            Ok(md) if md.len() == want.len() as u64 => {}
            Ok(md) => storm_fail(format!("{} has size {}", path.display(), md.len())),
            Err(e) if e.kind() == ErrorKind::Interrupted => {
                say("eintr");
                continue;
            }
            Err(e) => storm_fail(format!("stat {}: {e}", path.display())),
        }
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::Interrupted => {
                say("eintr");
                continue;
            }
            Err(e) => storm_fail(format!("open {}: {e}", path.display())),
        };
        let mut data = Vec::with_capacity(want.len());
        let complete = loop {
            match file.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => data.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => break false,
                Err(e) => storm_fail(format!("read {}: {e}", path.display())),
            }
        };
        if !complete {
            say("eintr");
        } else if data == want {
            say("ok");
        } else {
            let at = data.iter().zip(&want).position(|(a, b)| a != b);
            storm_fail(format!(
                "{}: wrong data ({} bytes, want {}; first difference at {at:?})",
                path.display(),
                data.len(),
                want.len()
            ));
        }
    }
    unreachable!("the rounds never end")
}

/// Ends a storm reader with a message for the test.
fn storm_fail(what: String) -> ! {
    say(&format!("error {what}"));
    std::process::exit(2);
}

fn clock_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}
