//! `cargo bench --bench compare -- [copy] [meta] [--rtt-ms N] [--size-mb N] [--runs N]`
//!
//! Side-by-side benchmarks of sshfs-rs against the C sshfs (and scp), measured in the same run
//! on the same private sshd, because these machines are shared and noisy: only the ratios
//! printed at the end of each line are meant to be compared between runs. With `--rtt-ms`
//! every client goes through the test proxy, which adds that round trip time.
//!
//! Sections (all when none is named):
//! * `copy`: a file of `--size-mb` MiB copied into the mount and out of it (cp), next to scp.
//!
//! Each figure is the median of `--runs` runs, each on a fresh mount (so nothing is cached).
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)] // a benchmark fails loudly

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{FaultProxy, Mount, Sshd, SshfsC, run_command};

const CMD_TIMEOUT: Duration = Duration::from_secs(600);

/// What to run, from the command line.
struct Settings {
    sections: Vec<String>,
    rtt: Duration,
    size_mb: usize,
    runs: usize,
}

fn settings() -> Settings {
    let mut s = Settings {
        sections: Vec::new(),
        rtt: Duration::ZERO,
        size_mb: 100,
        runs: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--rtt-ms" => s.rtt = Duration::from_millis(number("--rtt-ms")),
            "--size-mb" => s.size_mb = number("--size-mb") as usize,
            "--runs" => s.runs = number("--runs").max(1) as usize,
            "--bench" => {} // cargo bench passes this to every bench target
            "copy" | "meta" => s.sections.push(arg),
            other => panic!("unknown argument {other:?}; see the doc at the top of tests/bench.rs"),
        }
    }
    if s.sections.is_empty() {
        s.sections = vec!["copy".into()];
    }
    s
}

/// The clients compared.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Client {
    Ours,
    C,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Ours => "sshfs-rs",
            Client::C => "sshfs (C)",
        }
    }
}

/// A mounted client, whichever it is.
enum AnyMount {
    Ours(Mount),
    C(SshfsC),
}

impl AnyMount {
    fn start(client: Client, sshd: &Sshd, port: u16) -> AnyMount {
        match client {
            Client::Ours => AnyMount::Ours(Mount::start_via(sshd, port, &[])),
            Client::C => AnyMount::C(SshfsC::start_via(sshd, port, &[])),
        }
    }

    fn path(&self) -> &Path {
        match self {
            AnyMount::Ours(m) => m.path(),
            AnyMount::C(m) => m.path(),
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn sh(dir: &Path, script: &str) {
    let out = run_command(
        Command::new("sh").arg("-c").arg(script).current_dir(dir),
        CMD_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn main() {
    let s = settings();
    let sshd = Sshd::start();
    let proxy = FaultProxy::start(sshd.port());
    proxy.set_latency(s.rtt / 2);
    let port = if s.rtt.is_zero() {
        sshd.port()
    } else {
        proxy.port()
    };
    println!(
        "sshfs-rs benchmark: RTT {} ms added, median of {} runs, fresh mount per run",
        s.rtt.as_millis(),
        s.runs
    );
    for section in &s.sections {
        match section.as_str() {
            "copy" => copy(&s, &sshd, port),
            _ => println!("section {section}: not written yet"),
        }
    }
}

/// `cp` of one large file into and out of the mount, and scp both ways.
fn copy(s: &Settings, sshd: &Sshd, port: u16) {
    let local = tempfile::tempdir().expect("local temp dir");
    let src = local.path().join("big");
    let data: Vec<u8> = (0..s.size_mb * 1024 * 1024)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(&src, &data).expect("write the local file");
    fs::write(sshd.root_dir().join("big-src"), &data).expect("write the server file");
    let mb = s.size_mb as f64;
    let rate = |d: Duration| mb / d.as_secs_f64();

    println!("\ncopy {} MiB (MiB/s; higher is better)", s.size_mb);
    println!(
        "  {:<22}{:>12}{:>12}{:>12}{:>16}",
        "", "sshfs-rs", "sshfs (C)", "scp", "sshfs-rs / C"
    );
    for (label, inward) in [
        ("in  (local -> mount)", true),
        ("out (mount -> local)", false),
    ] {
        let mut per_client = Vec::new();
        for client in [Client::Ours, Client::C] {
            let runs = (0..s.runs)
                .map(|_| {
                    let m = AnyMount::start(client, sshd, port);
                    let t = if inward {
                        let dst = m.path().join("big-in");
                        timed(|| sh(local.path(), &format!("cp big {}", dst.display())))
                    } else {
                        let from = m.path().join("big-src");
                        timed(|| sh(local.path(), &format!("cp {} out", from.display())))
                    };
                    let copied = if inward {
                        fs::read(sshd.root_dir().join("big-in")).expect("read the copy")
                    } else {
                        fs::read(local.path().join("out")).expect("read the copy")
                    };
                    assert!(copied == data, "{}: copied data differs", client.name());
                    drop(m);
                    t
                })
                .collect();
            per_client.push(median(runs));
        }
        let scp = median(
            (0..s.runs)
                .map(|_| timed(|| scp(sshd, port, local.path(), inward)))
                .collect(),
        );
        let (ours, c) = (per_client[0], per_client[1]);
        println!(
            "  {label:<22}{:>12.1}{:>12.1}{:>12.1}{:>15.2}x",
            rate(ours),
            rate(c),
            rate(scp),
            c.as_secs_f64() / ours.as_secs_f64()
        );
    }
}

/// scp of `big` to the server (`inward`) or of `big-src` from it.
fn scp(sshd: &Sshd, port: u16, local: &Path, inward: bool) {
    let remote = |name: &str| format!("root@127.0.0.1:{}/{name}", sshd.root_dir().display());
    let (from, to) = if inward {
        ("big".to_owned(), remote("big-scp"))
    } else {
        (remote("big-src"), "out-scp".to_owned())
    };
    let out = run_command(
        Command::new("scp")
            .args(["-q", "-F", "/dev/null", "-P", &port.to_string()])
            .arg("-i")
            .arg(sshd.user_key())
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                sshd.known_hosts().display()
            ))
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
            .args([&from, &to])
            .current_dir(local)
            .env("HOME", sshd.home()),
        CMD_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "scp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
