//! Surviving the network: the connection is cut (by the fault proxy of the test support) while
//! programs read and write through open files, and everything carries on; with
//! `-o reconnect=no` the mount goes away cleanly instead.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::thread;
use std::time::{Duration, Instant};

use support::{FaultProxy, Mount, MountStats, Rng, Sshd, is_mounted, wait_until};

const MIB: usize = 1024 * 1024;

/// `got` is `want`: the same length, the same bytes (without printing megabytes of them).
fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if got == want {
        // (A slice comparison: the byte-by-byte search below is slow unoptimized.)
        return;
    }
    let first = got.iter().zip(want).position(|(a, b)| a != b);
    assert!(
        first.is_none(),
        "{what}: first difference at byte {first:?}"
    );
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    Rng::new(seed).bytes(len)
}

/// While `busy()` holds, `times` times: waits a moment, cuts the connection (`freeze` first
/// holds the requests in flight, so their answers are lost to the cut), and waits until the mount
/// has reconnected.
fn cut_while(
    proxy: &FaultProxy,
    m: &Mount,
    times: u64,
    freeze: bool,
    mut busy: impl FnMut() -> bool,
) {
    cut_every(
        proxy,
        m,
        Duration::from_millis(300),
        times,
        freeze,
        &mut busy,
    );
}

/// [`cut_while`] with `pause` between the cuts.
fn cut_every(
    proxy: &FaultProxy,
    m: &Mount,
    pause: Duration,
    times: u64,
    freeze: bool,
    busy: &mut impl FnMut() -> bool,
) {
    for k in 1..=times {
        thread::sleep(pause);
        if !busy() {
            return;
        }
        if freeze {
            proxy.freeze();
            thread::sleep(Duration::from_millis(30));
        }
        proxy.cut();
        proxy.resume();
        let reconnected = wait_until(Duration::from_secs(20), || {
            !busy() || MountStats::of(m.path()).get("reconnects=") >= k
        });
        assert!(
            reconnected,
            "no reconnect after cut {k}; sshfs-rs log:\n{}",
            m.stderr()
        );
    }
}

#[test]
fn a_read_through_one_fd_survives_two_cuts() {
    let sshd = Sshd::start();
    let want = pattern(50 * MIB, 1);
    fs::write(sshd.root_dir().join("big"), &want).unwrap();
    let proxy = FaultProxy::start(sshd.port());
    proxy.set_latency(Duration::from_millis(2));
    let m = Mount::start_via(&sshd, proxy.port(), &[]);
    let path = m.path().join("big");
    let reader = thread::spawn(move || {
        let mut f = File::open(path).unwrap();
        let mut got = Vec::with_capacity(50 * MIB);
        let mut buf = vec![0; 128 * 1024];
        loop {
            let n = f.read(&mut buf).expect("read through the cuts");
            if n == 0 {
                return got;
            }
            got.extend_from_slice(&buf[..n]);
        }
    });
    let started = Instant::now();
    cut_while(&proxy, &m, 2, false, || !reader.is_finished());
    let got = reader.join().unwrap();
    assert_same_bytes(&got, &want, "the bytes read");
    let stats = MountStats::of(m.path());
    assert!(
        stats.get("reconnects=") >= 1,
        "no reconnect happened (read done in {:?})",
        started.elapsed()
    );
    assert_eq!(stats.get("handle-misuse="), 0);
}

#[test]
fn a_write_through_one_fd_survives_cuts_and_fsync_means_on_the_server() {
    let sshd = Sshd::start();
    let proxy = FaultProxy::start(sshd.port());
    proxy.set_latency(Duration::from_millis(10));
    let m = Mount::start_via(&sshd, proxy.port(), &[]);
    let want = pattern(40 * MIB, 2);
    let path = m.path().join("out");
    let data = want.clone();
    let writer = thread::spawn(move || {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .unwrap();
        for piece in data.chunks(256 * 1024) {
            f.write_all(piece).expect("write through the cuts");
        }
        f.sync_all().expect("fsync after the cuts");
        drop(f);
    });
    cut_while(&proxy, &m, 4, false, || !writer.is_finished());
    writer
        .join()
        .unwrap_or_else(|_| panic!("the writer failed; sshfs-rs log:\n{}", m.stderr()));
    let on_server = fs::read(sshd.root_dir().join("out")).unwrap();
    assert_same_bytes(&on_server, &want, "the server's file");
    let stats = MountStats::of(m.path());
    assert!(stats.get("reconnects=") >= 1, "no reconnect happened");
    assert_eq!(stats.get("handle-misuse="), 0);
}

/// Positional writes, reads and truncates on one fd for 24 s, the connection cut every 3 s,
/// checked against a local copy made by the same operations. (The glue: reconnects through a
/// real proxy and sshd under a busy fd. The logic, every cut point among writes, truncates and
/// reads, is the model's: `model_memory_server_with_cuts` in client/src/fs/model/.)
#[test]
fn random_io_with_cuts_matches_a_local_file() {
    let sshd = Sshd::start();
    let proxy = FaultProxy::start(sshd.port());
    let m = Mount::start_via(&sshd, proxy.port(), &[]);
    let local_dir = tempfile::tempdir().unwrap();
    let local_path = local_dir.path().join("ref");
    let remote_path = m.path().join("rand");
    let worker = thread::spawn(move || {
        let open = |p: &std::path::Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(p)
                .unwrap()
        };
        let (local, remote) = (open(&local_path), open(&remote_path));
        let mut rng = Rng::new(77);
        let deadline = Instant::now() + Duration::from_secs(24);
        while Instant::now() < deadline {
            let at = rng.below(4 * MIB as u64);
            match rng.below(4) {
                0 | 1 => {
                    let data = rng.bytes_below(300_000);
                    local.write_all_at(&data, at).unwrap();
                    remote.write_all_at(&data, at).expect("pwrite");
                }
                2 => {
                    let len = rng.below(5 * MIB as u64);
                    local.set_len(len).unwrap();
                    remote.set_len(len).expect("ftruncate");
                }
                _ => {
                    let mut a = vec![0; 100_000];
                    let mut b = vec![0; 100_000];
                    let na = local.read_at(&mut a, at).unwrap();
                    let nb = remote.read_at(&mut b, at).expect("pread");
                    assert!(
                        a[..na] == b[..nb],
                        "read at {at}: {na} bytes locally, {nb} through the mount, or other bytes"
                    );
                }
            }
        }
        remote.sync_all().expect("fsync");
        fs::read(local_path).unwrap()
    });
    cut_every(&proxy, &m, Duration::from_secs(3), 8, false, &mut || {
        !worker.is_finished()
    });
    let want = worker
        .join()
        .unwrap_or_else(|_| panic!("the worker failed; sshfs-rs log:\n{}", m.stderr()));
    let got = fs::read(sshd.root_dir().join("rand")).unwrap();
    assert_same_bytes(&got, &want, "the server's file");
    let stats = MountStats::of(m.path());
    assert!(
        stats.get("reconnects=") >= 4,
        "too few reconnects: {stats:?}"
    );
}

/// A rename whose answer is lost to the cut is done exactly once, and the program sees success.
#[test]
fn namespace_changes_whose_answer_is_lost_happen_once() {
    let sshd = Sshd::start();
    let proxy = FaultProxy::start(sshd.port());
    proxy.set_latency(Duration::from_millis(5));
    let m = Mount::start_via(&sshd, proxy.port(), &["-o", "cache=no"]);
    let (mnt, srv) = (m.path().to_path_buf(), sshd.root_dir().to_path_buf());
    for i in 0..600 {
        fs::write(srv.join(format!("f{i}")), b"x").unwrap();
    }
    // Freezing holds the requests; a cut then loses their answers.
    let worker = thread::spawn(move || {
        for i in 0..600 {
            match i % 3 {
                0 => fs::rename(mnt.join(format!("f{i}")), mnt.join(format!("g{i}")))
                    .unwrap_or_else(|e| panic!("rename f{i}: {e}")),
                1 => fs::remove_file(mnt.join(format!("f{i}")))
                    .unwrap_or_else(|e| panic!("unlink f{i}: {e}")),
                _ => fs::create_dir(mnt.join(format!("d{i}")))
                    .unwrap_or_else(|e| panic!("mkdir d{i}: {e}")),
            }
        }
    });
    cut_while(&proxy, &m, 4, true, || !worker.is_finished());
    worker.join().unwrap();
    let stats = MountStats::of(m.path());
    assert!(
        stats.get("reconnects=") >= 3,
        "too few reconnects: {stats:?}"
    );
    for i in 0..600 {
        let (f, g, d) = (
            srv.join(format!("f{i}")).exists(),
            srv.join(format!("g{i}")).exists(),
            srv.join(format!("d{i}")).is_dir(),
        );
        match i % 3 {
            0 => assert!(!f && g, "rename {i}: f={f} g={g}"),
            1 => assert!(!f, "unlink {i}"),
            _ => assert!(f && d, "mkdir {i}"),
        }
    }
}

/// The server is unreachable for 5 s (connections cut, new ones get no answer), then back:
/// the mount and a file held open through it keep working, and a write made during the outage
/// waits for the reconnect.
#[test]
fn the_server_unreachable_for_seconds_then_back() {
    let sshd = Sshd::start();
    fs::write(sshd.root_dir().join("a"), b"before").unwrap();
    let proxy = FaultProxy::start(sshd.port());
    let m = Mount::start_via(&sshd, proxy.port(), &[]);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(m.path().join("a"))
        .unwrap();
    proxy.freeze();
    proxy.cut();
    let writer = thread::spawn(move || {
        f.write_all_at(b"after!", 0)
            .expect("write during the outage");
        f.sync_all().expect("fsync after the outage");
        f
    });
    thread::sleep(Duration::from_secs(5));
    proxy.resume();
    let f = writer
        .join()
        .unwrap_or_else(|_| panic!("the writer failed; sshfs-rs log:\n{}", m.stderr()));
    assert_eq!(fs::read(sshd.root_dir().join("a")).unwrap(), b"after!");
    let mut s = String::new();
    File::open(m.path().join("a"))
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "after!");
    drop(f);
    let stats = MountStats::of(m.path());
    assert_eq!(stats.get("reconnects="), 1, "{stats:?}");
    assert!(stats.get("reopened=") >= 1, "{stats:?}");
}

#[test]
fn reconnect_no_ends_the_mount_when_the_connection_drops() {
    let sshd = Sshd::start();
    let proxy = FaultProxy::start(sshd.port());
    let m = Mount::start_via(&sshd, proxy.port(), &["-o", "reconnect=no"]);
    fs::write(m.path().join("x"), b"1").unwrap();
    proxy.cut();
    // The next request finds the connection gone; the process unmounts and exits.
    let _ = fs::metadata(m.path().join("y"));
    let mnt = m.path().to_path_buf();
    assert!(
        wait_until(Duration::from_secs(10), || !is_mounted(&mnt)),
        "still mounted after the connection dropped; stderr: {}",
        m.stderr()
    );
}

/// A reconnect that meets another host key is refused: a clear log line, and requests fail
/// with EIO instead of reaching a server that may be someone else's.
#[test]
fn a_changed_host_key_stops_reconnecting() {
    let sshd = Sshd::start();
    let other = Sshd::start();
    let proxy = FaultProxy::start(sshd.port());
    let m = Mount::start_via(&sshd, proxy.port(), &[]);
    fs::write(m.path().join("x"), b"1").unwrap();
    proxy.retarget(other.port());
    proxy.cut();
    let started = Instant::now();
    let err = fs::metadata(m.path().join("y")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    let log = m.stderr();
    assert!(log.contains("changed since the mount"), "{log}");
    let stats = MountStats::of(m.path());
    assert_eq!(stats.get("reconnects="), 0, "{stats:?}");
    assert!(fs::metadata(m.path().join("x")).is_err());
}

/// Traffic frozen longer than the keepalive allows (ServerAliveInterval=1, 3 unanswered): the
/// client gives the link up, reconnects once traffic flows, and a reader killed meanwhile dies
/// at once.
#[test]
fn a_frozen_link_is_noticed_and_replaced() {
    let sshd = Sshd::start();
    let want = pattern(8 * MIB, 3);
    fs::write(sshd.root_dir().join("f"), &want).unwrap();
    let proxy = FaultProxy::start(sshd.port());
    let m = Mount::start_via(&sshd, proxy.port(), &["-o", "ServerAliveInterval=1"]);
    let mut f = File::open(m.path().join("f")).unwrap();
    let mut head = vec![0; MIB];
    f.read_exact(&mut head).unwrap();
    proxy.freeze();
    // A reader blocked on the frozen link is killed: it must go at once.
    let mut child = std::process::Command::new("cat")
        .arg(m.path().join("f"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(500));
    let killed = Instant::now();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        killed.elapsed() < Duration::from_secs(1),
        "{:?}",
        killed.elapsed()
    );
    // Keepalives go unanswered; the client ends the session and tries again.
    thread::sleep(Duration::from_secs(6));
    proxy.resume();
    let mut rest = Vec::new();
    f.read_to_end(&mut rest)
        .expect("read after the frozen link");
    head.extend_from_slice(&rest);
    assert_same_bytes(&head, &want, "the bytes read");
    let stats = MountStats::of(m.path());
    assert!(stats.get("reconnects=") >= 1, "{stats:?}");
}

/// While the server is away longer than `reconnect_timeout`, a request fails with EIO after
/// that wait, the next ones at once; unmount does not hang; and once the server is back a
/// request succeeds again.
#[test]
fn requests_wait_at_most_reconnect_timeout_then_fail_at_once() {
    let sshd = Sshd::start();
    fs::write(sshd.root_dir().join("x"), b"1").unwrap();
    let proxy = FaultProxy::start(sshd.port());
    let m = Mount::start_via(
        &sshd,
        proxy.port(),
        &[
            "-o",
            "reconnect_timeout=2,cache=no,attr_timeout=0,entry_timeout=0",
        ],
    );
    fs::metadata(m.path().join("x")).unwrap();
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = nowhere.local_addr().unwrap().port();
    drop(nowhere);
    proxy.retarget(dead_port);
    proxy.cut();

    let t = Instant::now();
    let err = fs::metadata(m.path().join("x")).unwrap_err();
    let first = t.elapsed();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(
        first >= Duration::from_millis(1500) && first < Duration::from_secs(6),
        "the first request waited {first:?}"
    );
    let t = Instant::now();
    assert!(fs::metadata(m.path().join("x")).is_err());
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );

    proxy.retarget(sshd.port());
    let back = Instant::now();
    assert!(
        wait_until(Duration::from_secs(10), || fs::metadata(m.path().join("x"))
            .is_ok()),
        "no success after the server came back"
    );
    eprintln!(
        "first success {:?} after the server came back",
        back.elapsed()
    );

    proxy.retarget(dead_port);
    proxy.cut();
    let t = Instant::now();
    m.unmount();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "unmount took {:?}",
        t.elapsed()
    );
}

/// sshd stopped for 5 s (its sessions too, as a server going down) and started again on the
/// same port: a file a program held open across the outage keeps working, and its close
/// returns once the write made during the outage is on the server.
///
/// The program is a shell, not this test process, and the sshd that starts again was spawned
/// before the outage ([`Sshd::stop`]): a process spawned while the test process holds a mount's
/// file with unacknowledged writes closes that file at its exec(), which waits for the FLUSH,
/// that is for the server being started (another test's cut-off mount is the same trap).
#[test]
fn sshd_stopped_for_seconds_then_back_on_the_same_port() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let mut sshd = Sshd::start();
    fs::write(sshd.root_dir().join("a"), b"before").unwrap();
    let m = Mount::start(&sshd, &[]);
    let mut program = Command::new("sh")
        .arg("-c")
        .arg(r#"exec 3<>"$1" && echo open && read go && printf 'after!' >&3 && exec 3>&- && echo closed"#)
        .arg("sh")
        .arg(m.path().join("a"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(program.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "open\n");

    sshd.stop();
    program.stdin.take().unwrap().write_all(b"go\n").unwrap();
    thread::sleep(Duration::from_secs(5));
    let restart = Instant::now();
    sshd.start_again();
    assert!(
        restart.elapsed() < Duration::from_secs(5),
        "{:?}",
        restart.elapsed()
    );
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "closed\n", "sshfs-rs log:\n{}", m.stderr());
    assert!(program.wait().unwrap().success());
    assert_eq!(fs::read(sshd.root_dir().join("a")).unwrap(), b"after!");
    let stats = MountStats::of(m.path());
    assert_eq!(stats.get("reconnects="), 1, "{stats:?}");
}
