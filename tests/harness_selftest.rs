//! Proves the e2e harness works without the sshfs-rs binary: OpenSSH `sftp`
//! against [`Sshd`], through [`FaultProxy`], and the C `sshfs` via [`SshfsC`].
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use support::{
    FaultProxy, Sshd, SshfsC, fuse_connection_of, fuse_waiting, is_mounted, lacking, needs,
    open_fd_count, run_command, skip_note, wait_until,
};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs an OpenSSH `sftp` batch against `sshd` on `port` (its own or a proxy's).
fn sftp(sshd: &Sshd, port: u16, batch: &str) -> Output {
    let batch_file = sshd.temp_dir().join(format!("batch-{port}"));
    fs::write(&batch_file, batch).expect("write sftp batch file");
    let out = run_command(&mut sftp_command(sshd, port, &batch_file), TIMEOUT);
    assert!(
        out.status.success(),
        "sftp failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `sftp -b BATCH` with strict host key checking, the test key and an isolated config.
fn sftp_command(sshd: &Sshd, port: u16, batch: &Path) -> Command {
    let mut cmd = Command::new("sftp");
    cmd.arg("-b")
        .arg(batch)
        .args(["-F", "/dev/null", "-P", &port.to_string(), "-i"])
        .arg(sshd.user_key())
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            sshd.known_hosts().display()
        ))
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "root@127.0.0.1",
        ])
        .env("HOME", sshd.home())
        .env_remove("SSH_AUTH_SOCK");
    cmd
}

/// Reads 4 bytes (the "SSH-" of the server banner), failing after `timeout`.
fn read_banner(stream: &mut TcpStream, timeout: Duration) -> std::io::Result<[u8; 4]> {
    stream.set_read_timeout(Some(timeout))?;
    let mut banner = [0u8; 4];
    stream.read_exact(&mut banner).map(|()| banner)
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

#[test]
fn sshd_serves_sftp_put_and_get() {
    let sshd = Sshd::start();
    let kh = fs::read_to_string(sshd.known_hosts()).expect("read known_hosts");
    assert_eq!(
        kh.trim(),
        format!("[127.0.0.1]:{} {}", sshd.port(), sshd.host_pubkey_line())
    );
    assert!(sshd.host_pubkey_line().starts_with("ssh-ed25519 AAAA"));
    assert_eq!(
        fs::read_dir(sshd.home()).expect("list home").count(),
        0,
        "home must be empty"
    );

    let local = sshd.temp_dir().join("local.txt");
    fs::write(&local, "uploaded through sftp\n").expect("write local file");
    fs::write(sshd.root_dir().join("server.txt"), "made on the server\n")
        .expect("write server file");
    let (root, fetched) = (
        sshd.root_dir().display(),
        sshd.temp_dir().join("fetched.txt"),
    );
    sftp(
        &sshd,
        sshd.port(),
        &format!(
            "put {} {root}/up.txt\nget {root}/server.txt {}\n",
            local.display(),
            fetched.display()
        ),
    );
    assert_eq!(
        fs::read_to_string(sshd.root_dir().join("up.txt")).expect("uploaded file"),
        "uploaded through sftp\n"
    );
    assert_eq!(
        fs::read_to_string(&fetched).expect("downloaded file"),
        "made on the server\n"
    );
}

#[test]
fn sftp_server_pids_are_found_while_a_session_is_open() {
    let sshd = Sshd::start();
    // A batch read from stdin keeps the session open until stdin closes.
    let mut child = sftp_command(&sshd, sshd.port(), Path::new("-"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn sftp");
    assert!(
        wait_until(TIMEOUT, || !sshd.sftp_server_pids().is_empty()),
        "no sftp-server appeared for the open session"
    );
    let pids = sshd.sftp_server_pids();
    assert_eq!(pids.len(), 1, "expected one sftp-server, found {pids:?}");
    assert!(
        open_fd_count(pids[0]) >= 3,
        "sftp-server has at least stdin/stdout/stderr"
    );

    drop(child.stdin.take()); // EOF ends the batch and the session
    if !wait_until(TIMEOUT, || matches!(child.try_wait(), Ok(Some(_)))) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("sftp did not exit after EOF on its batch");
    }
    let status = child.wait().expect("reap sftp");
    assert!(status.success(), "sftp exited with {status}");
}

#[test]
fn proxy_forwards_and_adds_latency() {
    let sshd = Sshd::start();
    let proxy = FaultProxy::start(sshd.port());
    sshd.trust_port(proxy.port());
    let batch = format!("ls {}\n", sshd.root_dir().display());
    let timed = |latency: Duration| {
        proxy.set_latency(latency);
        let start = Instant::now();
        sftp(&sshd, proxy.port(), &batch);
        start.elapsed()
    };
    let fast = timed(Duration::ZERO);
    let slow = timed(Duration::from_millis(50));
    // Key exchange, authentication, channel and SFTP setup and the `ls` are
    // over 10 sequential round trips, each now 100 ms longer. CPU load only adds
    // time, so this bound cannot flake, unlike comparing against `fast`.
    assert!(
        slow >= Duration::from_millis(800),
        "latency not applied: {fast:?} without, {slow:?} with 50 ms one way"
    );
    assert!(
        wait_until(Duration::from_secs(5), || proxy.connections() == 0),
        "finished sessions stay open"
    );
}

#[test]
fn proxy_latency_is_pipelined() {
    // Echo server: everything sent comes back through the proxy twice delayed.
    let echo = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind echo server");
    let echo_port = echo.local_addr().expect("echo address").port();
    thread::spawn(move || {
        if let Ok((mut conn, _)) = echo.accept() {
            let mut reader = conn.try_clone().expect("clone echo socket");
            let _ = std::io::copy(&mut reader, &mut conn);
        }
    });
    let proxy = FaultProxy::start(echo_port);
    proxy.set_latency(Duration::from_millis(100));
    let mut stream =
        TcpStream::connect((Ipv4Addr::LOCALHOST, proxy.port())).expect("connect to proxy");
    stream.set_nodelay(true).expect("nodelay");
    let start = Instant::now();
    for i in 0..10u8 {
        stream.write_all(&[i]).expect("send");
        thread::sleep(Duration::from_millis(20));
    }
    let mut back = [0u8; 10];
    stream
        .set_read_timeout(Some(TIMEOUT))
        .expect("read timeout");
    stream.read_exact(&mut back).expect("echo");
    let elapsed = start.elapsed();
    assert_eq!(back, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Sending takes ~200 ms and the last byte needs one 200 ms round trip;
    // sleeping 100 ms per chunk one after the other would take over 1.1 s.
    assert!(
        elapsed >= Duration::from_millis(380),
        "latency missing: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(1000),
        "delays not pipelined: {elapsed:?}"
    );
}

#[test]
fn proxy_freeze_holds_traffic_until_resume() {
    let sshd = Sshd::start();
    let proxy = FaultProxy::start(sshd.port());

    // A new connection while frozen: the server's banner is held.
    proxy.freeze();
    let mut fresh =
        TcpStream::connect((Ipv4Addr::LOCALHOST, proxy.port())).expect("connect while frozen");
    let err = read_banner(&mut fresh, Duration::from_millis(500))
        .expect_err("banner must be held while frozen");
    assert!(is_timeout(&err), "expected a read timeout, got {err}");
    proxy.resume();
    assert_eq!(
        &read_banner(&mut fresh, Duration::from_secs(5)).expect("banner after resume"),
        b"SSH-"
    );

    // An established connection: our identification (and so the server's KEXINIT reply) is held.
    let mut live = TcpStream::connect((Ipv4Addr::LOCALHOST, proxy.port())).expect("connect");
    let mut banner_line = Vec::new();
    live.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    while !banner_line.ends_with(b"\n") {
        let mut byte = [0u8; 1];
        live.read_exact(&mut byte)
            .expect("server identification line");
        banner_line.push(byte[0]);
    }
    assert!(banner_line.starts_with(b"SSH-2.0-"));
    proxy.freeze();
    live.write_all(b"SSH-2.0-harness_selftest\r\n")
        .expect("send identification");
    let err = read_banner(&mut live, Duration::from_millis(500))
        .expect_err("reply must be held while frozen");
    assert!(is_timeout(&err), "expected a read timeout, got {err}");
    assert_eq!(proxy.connections(), 2, "frozen connections stay open");
    proxy.resume();
    live.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let n = live.read(&mut [0u8; 64]).expect("KEXINIT after resume");
    assert!(n > 0, "server closed instead of answering");
}

#[test]
fn proxy_cut_kills_connections() {
    let sshd = Sshd::start();
    let proxy = FaultProxy::start(sshd.port());
    let mut conn = TcpStream::connect((Ipv4Addr::LOCALHOST, proxy.port())).expect("connect");
    assert_eq!(
        &read_banner(&mut conn, Duration::from_secs(5)).expect("banner"),
        b"SSH-"
    );
    assert_eq!(proxy.connections(), 1);
    proxy.cut();
    assert_eq!(proxy.connections(), 0);
    let mut rest = Vec::new();
    match conn.read_to_end(&mut rest) {
        Ok(_) => {}                                            // FIN
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {} // RST
        Err(e) => panic!("expected the connection to be closed, got {e}"),
    }
    // The proxy keeps accepting after a cut.
    sshd.trust_port(proxy.port());
    sftp(&sshd, proxy.port(), "pwd\n");
}

#[test]
fn c_sshfs_mounts_through_the_harness() {
    if lacking(needs::c_sshfs()) {
        return;
    }
    let sshd = Sshd::start();
    fs::write(sshd.root_dir().join("hello.txt"), "hello from the server\n")
        .expect("write server file");
    let mount = SshfsC::start(&sshd, &[]);
    assert!(is_mounted(mount.path()));
    let conn = fuse_connection_of(mount.path()).expect("a FUSE connection for the mount");
    match needs::fusectl() {
        Ok(()) => {
            let idle = || fuse_waiting(mount.path()) == Some(0);
            assert!(
                wait_until(Duration::from_secs(5), idle),
                "requests stay pending on FUSE connection {conn}: {:?}",
                fuse_waiting(mount.path())
            );
        }
        Err(why) => skip_note(&format!("the check of fusectl's waiting count: {why}")),
    }

    let read = fs::read_to_string(mount.path().join("hello.txt")).expect("read through sshfs");
    assert_eq!(read, "hello from the server\n");
    fs::write(mount.path().join("back.txt"), "written through sshfs\n")
        .expect("write through sshfs");
    assert_eq!(
        fs::read_to_string(sshd.root_dir().join("back.txt")).expect("server copy"),
        "written through sshfs\n"
    );

    let servers = sshd.sftp_server_pids();
    assert_eq!(servers.len(), 1, "one sftp-server per mount: {servers:?}");
    assert!(open_fd_count(servers[0]) >= 3);

    let path = mount.path().to_path_buf();
    let status = mount.unmount();
    assert!(status.success(), "sshfs exited with {status}");
    assert!(!is_mounted(&path));
}

#[test]
fn c_sshfs_through_proxy_survives_latency() {
    if lacking(needs::c_sshfs()) {
        return;
    }
    let sshd = Sshd::start();
    let proxy = FaultProxy::start(sshd.port());
    proxy.set_latency(Duration::from_millis(20));
    fs::write(sshd.root_dir().join("a.txt"), "via proxy\n").expect("write server file");
    let mount = SshfsC::start_via(&sshd, proxy.port(), &[]);
    assert_eq!(
        fs::read_to_string(mount.path().join("a.txt")).expect("read via proxy"),
        "via proxy\n"
    );
    assert_eq!(proxy.connections(), 1);
}

#[test]
fn everything_is_cleaned_up_after_a_panic() {
    if lacking(needs::c_sshfs()) {
        return;
    }
    let mut seen = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let sshd = Sshd::start();
        let proxy = FaultProxy::start(sshd.port());
        let mount = SshfsC::start_via(&sshd, proxy.port(), &[]);
        seen = Some((
            sshd.temp_dir().to_path_buf(),
            sshd.port(),
            mount.path().to_path_buf(),
            mount.pid(),
            sshd.sftp_server_pids(),
            proxy.port(),
        ));
        panic!("deliberate panic with a live mount");
    }));
    assert!(result.is_err());
    let (temp_dir, sshd_port, mnt, sshfs_pid, servers, proxy_port) =
        seen.expect("the closure got far enough");
    assert!(!is_mounted(&mnt), "mount left behind");
    assert!(!mnt.exists(), "mountpoint dir left behind");
    assert!(!temp_dir.exists(), "sshd temp dir left behind");
    assert!(
        !Path::new(&format!("/proc/{sshfs_pid}")).exists(),
        "sshfs process left behind"
    );
    for pid in servers {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z "),
            "sftp-server {pid} left running"
        );
    }
    assert!(
        TcpStream::connect((Ipv4Addr::LOCALHOST, sshd_port)).is_err(),
        "sshd still listening"
    );
    assert!(
        TcpStream::connect((Ipv4Addr::LOCALHOST, proxy_port)).is_err(),
        "proxy still listening"
    );
}
