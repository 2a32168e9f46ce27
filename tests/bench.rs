//! `cargo bench --bench compare -- [copy] [meta] [workloads] [reconnect] [--rtt-ms N]
//! [--size-mb N] [--runs N] [--ours-o OPTION]... [--only WORKLOAD]... [--ours-only]`
//!
//! Side-by-side benchmarks of sshfs-rs against the C sshfs (and scp), measured in the same run
//! on the same private sshd, because these machines are shared and noisy: only the ratios
//! printed at the end of each line are meant to be compared between runs. With `--rtt-ms`
//! every client goes through the test proxy, which adds that round trip time.
//!
//! Sections (all when none is named):
//! * `copy`: a file of `--size-mb` MiB copied into the mount and out of it (cp), next to scp,
//!   and within the mount (cp: sshfs-rs has the server copy it, `copy-data`).
//! * `meta`: metadata-heavy work on a fresh mount, first cold (right after mounting) and then
//!   warm (the same command again at once): `ls -lR` of 1000 files in 20 directories, and
//!   `git status` in a repository of 1000 files committed on the server (its index as the server
//!   wrote it for every cold run, so git re-reads every file, as after a fresh clone). For
//!   sshfs-rs it also shows the SFTP requests sent (`sshfs-rs --stats MNT`): by the cold run
//!   since mounting, by the warm run alone. The goals beside the figures: warm under 150 ms,
//!   cold at most half the C sshfs's time.
//! * `workloads`: `tar -x` of 1000 small files, 300 small writes, `rm -rf`, `find`, `ls -lR`,
//!   `ls -f` and `ls -l` of one directory of 50,000 entries,
//!   warm stat and `git status` over 5000 files, 1000 random 4 KiB reads, sequential read and
//!   write (with fsync) of `--size-mb` MiB, `ls -f` and `ls -l` of 200,000 entries: times,
//!   ratio sshfs-rs / C against the goal, requests per file or MiB, peak RSS, resident memory
//!   right after the run and CPU (see `bench/workloads.rs`). `--only` picks workloads by a
//!   part of their name.
//! * `reconnect` (only when named): downtime after a cut connection.
//!
//! Each figure is the median of `--runs` runs, each on a fresh mount (so nothing is cached but
//! what a `meta` cold run left for its warm run).
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)] // a benchmark fails loudly

mod support;
#[path = "bench/workloads.rs"]
mod workloads;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{DEFAULT_RUN_TIMEOUT, FaultProxy, Mount, Sshd, SshfsC, run_command, run_sshfs_rs};

const CMD_TIMEOUT: Duration = Duration::from_secs(600);

/// What to run, from the command line.
#[derive(Clone)]
struct Settings {
    sections: Vec<String>,
    rtt: Duration,
    size_mb: usize,
    runs: usize,
    /// Extra `-o` options for sshfs-rs (`--ours-o OPT`, repeatable), to compare settings.
    ours_opts: Vec<String>,
    /// `--only NAME` (repeatable): only the workloads whose name contains one of these.
    only: Vec<String>,
    /// `--ours-only`: the workloads without the C sshfs (no ratios), for trying a change.
    ours_only: bool,
}

fn settings() -> Settings {
    let mut s = Settings {
        sections: Vec::new(),
        rtt: Duration::ZERO,
        size_mb: 256,
        runs: 3,
        ours_opts: Vec::new(),
        only: Vec::new(),
        ours_only: false,
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
            "--ours-o" => {
                let opt = args
                    .next()
                    .unwrap_or_else(|| panic!("--ours-o needs an option"));
                s.ours_opts.extend(["-o".to_owned(), opt]);
            }
            "--ours-only" => s.ours_only = true,
            "--only" => {
                let name = args
                    .next()
                    .unwrap_or_else(|| panic!("--only needs a workload name"));
                s.only.push(name);
            }
            "--bench" => {} // cargo bench passes this to every bench target
            "copy" | "meta" | "workloads" | "reconnect" => s.sections.push(arg),
            other => panic!("unknown argument {other:?}; see the doc at the top of tests/bench.rs"),
        }
    }
    if s.sections.is_empty() {
        s.sections = vec!["copy".into(), "meta".into(), "workloads".into()];
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
    fn start(client: Client, s: &Settings, sshd: &Sshd, port: u16) -> AnyMount {
        match client {
            Client::Ours => {
                let opts: Vec<&str> = s.ours_opts.iter().map(String::as_str).collect();
                AnyMount::Ours(Mount::start_via(sshd, port, &opts))
            }
            Client::C => AnyMount::C(SshfsC::start_via(sshd, port, &[])),
        }
    }

    fn pid(&self) -> u32 {
        match self {
            AnyMount::Ours(m) => m.pid(),
            AnyMount::C(m) => m.pid(),
        }
    }

    fn path(&self) -> &Path {
        match self {
            AnyMount::Ours(m) => m.path(),
            AnyMount::C(m) => m.path(),
        }
    }
}

/// `len` bytes of a fixed pseudo-random pattern.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
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

/// Runs `script` with `sh -c` in `dir`, panics unless it succeeds, and returns its stdout.
/// Git reads no user or system configuration, and messages are in English.
fn sh_out(dir: &Path, script: &str) -> String {
    let out = run_command(
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .env("LC_ALL", "C")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1"),
        CMD_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "{script} (in {}): {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// [`sh_out`] without the output.
fn sh(dir: &Path, script: &str) {
    sh_out(dir, script);
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
            "meta" => meta(&s, &sshd, port),
            "workloads" => workloads::workloads(&s, &sshd, port),
            "reconnect" => reconnect(&s, &sshd),
            _ => unreachable!("settings() accepts only known sections"),
        }
    }
}

/// Downtime after a cut connection: from the cut to the first `stat` through the mount that
/// succeeds, for sshfs-rs (reconnect is its default) and the C sshfs with `-o reconnect`. Caches
/// are off so every `stat` asks the server. Not run by default: `-- reconnect`.
fn reconnect(s: &Settings, sshd: &Sshd) {
    fs::write(sshd.root_dir().join("reconnect-probe"), b"x").expect("write the probe file");
    println!("\n## Reconnect: from a cut to the first successful stat");
    let nocache = "cache=no,attr_timeout=0,entry_timeout=0";
    for client in [Client::Ours, Client::C] {
        let proxy = FaultProxy::start(sshd.port());
        proxy.set_latency(s.rtt / 2);
        let m = match client {
            Client::Ours => AnyMount::Ours(Mount::start_via(sshd, proxy.port(), &["-o", nocache])),
            Client::C => AnyMount::C(SshfsC::start_via(
                sshd,
                proxy.port(),
                &["-o", &format!("reconnect,{nocache}")],
            )),
        };
        let probe = m.path().join("reconnect-probe");
        let mut downtimes = Vec::new();
        let mut failed = 0;
        for _ in 0..s.runs {
            if fs::metadata(&probe).is_err() {
                failed += 1;
                continue;
            }
            proxy.cut();
            let cut = Instant::now();
            while fs::metadata(&probe).is_err() && cut.elapsed() < Duration::from_secs(60) {
                failed += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            downtimes.push(cut.elapsed());
        }
        println!(
            "{:<10} downtime median {:>7.3} s, max {:>7.3} s; failed stats on the way: {failed}",
            client.name(),
            median(downtimes.clone()).as_secs_f64(),
            downtimes
                .iter()
                .max()
                .copied()
                .unwrap_or_default()
                .as_secs_f64()
        );
    }
}

/// `cp` of one large file into and out of the mount, and scp both ways.
fn copy(s: &Settings, sshd: &Sshd, port: u16) {
    let local = tempfile::tempdir().expect("local temp dir");
    let src = local.path().join("big");
    let data = pattern(s.size_mb * 1024 * 1024);
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
                    let m = AnyMount::start(client, s, sshd, port);
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
    // Within the mount: cp (coreutils 9) asks for copy_file_range first; sshfs-rs has the
    // server copy with `copy-data`, the C sshfs copies through the link and back.
    let mut per_client = Vec::new();
    for client in [Client::Ours, Client::C] {
        let runs = (0..s.runs)
            .map(|_| {
                let m = AnyMount::start(client, s, sshd, port);
                let t = timed(|| sh(m.path(), "cp big-src big-within"));
                let copied = fs::read(sshd.root_dir().join("big-within")).expect("read the copy");
                assert!(copied == data, "{}: copied data differs", client.name());
                drop(m);
                fs::remove_file(sshd.root_dir().join("big-within")).expect("remove the copy");
                t
            })
            .collect();
        per_client.push(median(runs));
    }
    let (ours, c) = (per_client[0], per_client[1]);
    println!(
        "  {:<22}{:>12.1}{:>12.1}{:>12}{:>15.2}x",
        "within (mount->mount)",
        rate(ours),
        rate(c),
        "-",
        c.as_secs_f64() / ours.as_secs_f64()
    );
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

/// Directories and files per directory of the `meta` trees.
const META_DIRS: usize = 20;
const META_FILES_PER_DIR: usize = 50;
const META_FILES: usize = META_DIRS * META_FILES_PER_DIR;
/// The goal for a warm run.
const WARM_GOAL: Duration = Duration::from_millis(150);
/// The goal for a cold run: at least this many times faster than the C sshfs.
const COLD_GOAL_RATIO: f64 = 2.0;

/// One command of the `meta` section, run cold and then warm in `dir` of a fresh mount.
struct MetaTask {
    label: &'static str,
    /// Relative to the mount (and to the server's root dir).
    dir: &'static str,
    script: &'static str,
    /// Panics unless the command's output is what a working mount gives.
    check: fn(&str),
}

/// Cold and warm times of one client, and (sshfs-rs only) the SFTP requests they sent.
#[derive(Default)]
struct MetaRuns {
    cold: Vec<Duration>,
    warm: Vec<Duration>,
    cold_requests: Vec<Requests>,
    warm_requests: Vec<Requests>,
}

/// SFTP requests by kind, with `total`, as `sshfs-rs --stats` prints them.
type Requests = BTreeMap<String, u64>;

/// `ls -lR` of 1000 files in 20 directories, and `git status` in a repository of 1000 files.
fn meta(s: &Settings, sshd: &Sshd, port: u16) {
    let root = sshd.root_dir();
    // The files get an old mtime, so that git never sees them as racily clean (same second as
    // the index) and the repository's index stays what the server side wrote.
    for top in ["tree", "repo"] {
        for d in 0..META_DIRS {
            let dir = root.join(top).join(format!("d{d:02}"));
            fs::create_dir_all(&dir).expect("create a directory on the server");
            for f in 0..META_FILES_PER_DIR {
                fs::write(dir.join(format!("f{f:02}.txt")), format!("{top} {d} {f}\n"))
                    .expect("write a file on the server");
            }
        }
    }
    sh(
        root,
        "find tree repo -exec touch -h -d 2020-01-01T00:00:00 {} +",
    );
    let repo = root.join("repo");
    sh(
        &repo,
        "git init -q -b main && git add -A \
         && git -c user.email=t@t -c user.name=t commit -q -m files && git status --porcelain",
    );
    // Each cold `git status` starts from the index as the server side wrote it (through a mount
    // git rewrites it: the inode numbers and times it records differ).
    let index = fs::read(repo.join(".git/index")).expect("read the git index");
    let tasks = [
        MetaTask {
            label: "ls -lR",
            dir: "",
            script: "ls -lR tree",
            check: |out| {
                let files = out.lines().filter(|l| l.starts_with('-')).count();
                assert_eq!(files, META_FILES, "ls -lR lists {files} files:\n{out}");
            },
        },
        MetaTask {
            label: "git status",
            dir: "repo",
            script: "git status",
            check: |out| {
                assert!(
                    out.contains("nothing to commit, working tree clean"),
                    "git status:\n{out}"
                );
            },
        },
    ];

    println!(
        "\nmeta: {META_FILES} files in {META_DIRS} dirs; cold = first after mounting, warm = again \
         at once (seconds; lower is better)"
    );
    println!(
        "  {:<18}{:>10}{:>11}{:>15}{:>15}   goal",
        "", "sshfs-rs", "sshfs (C)", "C / sshfs-rs", "sshfs-rs reqs"
    );
    let mut details = Vec::new();
    for task in &tasks {
        let mut per_client = [MetaRuns::default(), MetaRuns::default()];
        // Clients alternate run by run, so that a noisy moment hurts both alike.
        for _ in 0..s.runs {
            for (client, runs) in [Client::Ours, Client::C].into_iter().zip(&mut per_client) {
                fs::write(repo.join(".git/index"), &index).expect("restore the git index");
                let m = AnyMount::start(client, s, sshd, port);
                let dir = m.path().join(task.dir);
                let mut out = String::new();
                runs.cold.push(timed(|| out = sh_out(&dir, task.script)));
                (task.check)(&out);
                let before = match &m {
                    AnyMount::Ours(ours) => {
                        let since_mount = request_counts(sshd, ours.path());
                        runs.cold_requests.push(since_mount.clone());
                        since_mount
                    }
                    AnyMount::C(_) => Requests::new(),
                };
                runs.warm.push(timed(|| out = sh_out(&dir, task.script)));
                (task.check)(&out);
                if let AnyMount::Ours(ours) = &m {
                    let after = request_counts(sshd, ours.path());
                    runs.warm_requests.push(difference(&after, &before));
                }
                drop(m);
            }
        }
        let [ours, c] = per_client;
        for (phase, ours_t, c_t, requests) in [
            ("cold", &ours.cold, &c.cold, &ours.cold_requests),
            ("warm", &ours.warm, &c.warm, &ours.warm_requests),
        ] {
            let (ours_t, c_t) = (median(ours_t.clone()), median(c_t.clone()));
            let ratio = c_t.as_secs_f64() / ours_t.as_secs_f64();
            let totals: Vec<u64> = requests.iter().map(|r| r["total"]).collect();
            let goal = if phase == "cold" {
                let met = ratio >= COLD_GOAL_RATIO;
                format!("C / sshfs-rs >= {COLD_GOAL_RATIO:.0}x: {}", verdict(met))
            } else {
                let met = ours_t < WARM_GOAL;
                format!("< {:.3} s: {}", WARM_GOAL.as_secs_f64(), verdict(met))
            };
            println!(
                "  {:<18}{:>10.3}{:>11.3}{:>14.2}x{:>15}   {goal}",
                format!("{} {phase}", task.label),
                ours_t.as_secs_f64(),
                c_t.as_secs_f64(),
                ratio,
                median_u64(totals),
            );
            let runs: Vec<String> = requests.iter().map(summary).collect();
            details.push(format!(
                "  {} {phase}{}: {}",
                task.label,
                if phase == "cold" {
                    " (since mounting)"
                } else {
                    ""
                },
                runs.join(" | ")
            ));
        }
    }
    println!("  sshfs-rs SFTP requests by kind, run by run:");
    for line in details {
        println!("  {line}");
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn median_u64(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// The SFTP requests a running sshfs-rs mount has sent so far (`sshfs-rs --stats MNT`, whose
/// line starts `sftp requests: total=N lstat=N ...;`).
fn request_counts(sshd: &Sshd, mnt: &Path) -> Requests {
    let out = run_sshfs_rs(
        sshd.home(),
        &["--stats", &mnt.to_string_lossy()],
        DEFAULT_RUN_TIMEOUT,
    );
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sshfs-rs --stats: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let requests = line
        .trim()
        .strip_prefix("sftp requests: ")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("unexpected sshfs-rs --stats line: {line}"));
    requests
        .split_whitespace()
        .map(|pair| {
            let (kind, n) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("unexpected sshfs-rs --stats line: {line}"));
            let n = n
                .parse()
                .unwrap_or_else(|_| panic!("unexpected sshfs-rs --stats line: {line}"));
            (kind.to_owned(), n)
        })
        .collect()
}

/// Requests counted in `after` but not yet in `before`.
fn difference(after: &Requests, before: &Requests) -> Requests {
    after
        .iter()
        .map(|(kind, n)| (kind.clone(), n - before.get(kind).copied().unwrap_or(0)))
        .filter(|(kind, n)| *n > 0 || kind == "total")
        .collect()
}

/// `total=N kind=N ...`, as `sshfs-rs --stats` prints it.
fn summary(requests: &Requests) -> String {
    let mut s = format!("total={}", requests["total"]);
    for (kind, n) in requests.iter().filter(|(kind, _)| *kind != "total") {
        s.push_str(&format!(" {kind}={n}"));
    }
    s
}
