//! The `workloads` section: what people do on a mount (unpack, write small files, remove a
//! tree, walk it, `git status`, random and sequential I/O), each on a fresh mount of sshfs-rs
//! and of the C sshfs in the same run, each result checked, with the time ratio
//! sshfs-rs / C (lower is better) against the goal for the round trip time, sshfs-rs's SFTP
//! requests per file or MiB, and each daemon's peak RSS, resident memory after the run and CPU
//! seconds.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{
    AnyMount, Client, Requests, Settings, difference, median, request_counts, sh, sh_out, summary,
    timed, verdict,
};
use crate::support::Sshd;

/// Files in the small-file trees (`tar -x`) and in the big trees (`rm`, `find`, `git status`).
const TAR_DIRS: usize = 20;
const TAR_FILES: usize = 1000;
const TREE_DIRS: usize = 50;
const TREE_FILES: usize = 5000;
const SMALL_WRITES: usize = 300;
const RANDOM_READS: usize = 1000;
/// Entries in the one big directory (`ls -f`, `ls -l`): where one READDIR per round trip shows.
const BIG_DIR_FILES: usize = 50_000;
/// Entries of the directory whose listing shows the daemon's memory bound (peak RSS).
const HUGE_DIR_FILES: usize = 200_000;
/// A little longer than both clients' kernel attribute and entry timeouts (1 s by default).
const KERNEL_TTL: Duration = Duration::from_millis(1500);

/// One workload: what it prepares, runs and checks.
struct Workload {
    name: &'static str,
    /// What the requests are counted per ("file", "MiB") and how many there are.
    unit: &'static str,
    units: f64,
    /// The goal for `ours / C` at RTT 0 and at 20 ms.
    goal: (f64, f64),
    /// Prepares the server side before every run (the workload's own directory `w` is removed
    /// first).
    prepare: fn(&Bench),
    /// Run once, untimed, before the timed run (for warm figures), which then starts once the
    /// kernel's own caches have expired ([`KERNEL_TTL`]): the clients' caches are compared.
    warm_up: bool,
    /// The timed part, in the mount; returns what `check` looks at.
    run: fn(&Bench, &Path) -> String,
    /// Panics unless the run did what a working mount does.
    check: fn(&Bench, &str),
}

/// What the workloads share: the server's directory, a local directory with the inputs, the
/// large file's bytes.
struct Bench {
    server: PathBuf,
    local: tempfile::TempDir,
    big: Vec<u8>,
}

impl Bench {
    fn w(&self) -> PathBuf {
        self.server.join("w")
    }
}

/// Time, peak RSS, resident memory after and CPU of one run.
struct Run {
    time: Duration,
    rss_mib: f64,
    /// Resident (VmRSS) right after the run: what the daemon keeps.
    after_mib: f64,
    cpu_s: f64,
    /// By kind (sshfs-rs only).
    requests: Requests,
}

pub(super) fn workloads(s: &Settings, sshd: &Sshd, port: u16) {
    let big_mib = s.size_mb;
    let bench = Bench {
        server: sshd.root_dir().to_path_buf(),
        local: tempfile::tempdir().expect("local temp dir"),
        big: crate::pattern(big_mib * 1024 * 1024),
    };
    prepare_local(&bench);
    let list = all(big_mib);
    let rtt20 = s.rtt >= Duration::from_millis(20);
    println!(
        "\nworkloads: time ours / C (lower is better), goal for RTT {}; requests per unit, peak RSS, RSS after the run, CPU",
        if rtt20 { "20 ms" } else { "0" }
    );
    println!(
        "  {:<26}{:>10}{:>10}{:>8}  {:<12}{:>12}{:>14}{:>14}{:>12}",
        "", "sshfs-rs", "sshfs (C)", "ratio", "goal", "reqs/unit", "RSS MiB", "after MiB", "CPU s"
    );
    let mut details = Vec::new();
    for w in list
        .iter()
        .filter(|w| s.only.is_empty() || s.only.iter().any(|o| w.name.contains(o.as_str())))
    {
        let mut per_client: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..s.runs {
            for (client, runs) in [Client::Ours, Client::C].into_iter().zip(&mut per_client) {
                if client == Client::C && s.ours_only {
                    continue;
                }
                runs.push(run_once(w, &bench, client, s, sshd, port));
            }
        }
        let [ours, c] = per_client;
        let t = |runs: &[Run]| match runs.is_empty() {
            true => Duration::ZERO,
            false => median(runs.iter().map(|r| r.time).collect()),
        };
        let (ours_t, c_t) = (t(&ours), t(&c));
        let ratio = ours_t.as_secs_f64() / c_t.as_secs_f64();
        let goal = if rtt20 { w.goal.1 } else { w.goal.0 };
        let max = |runs: &[Run], f: fn(&Run) -> f64| runs.iter().map(f).fold(0.0, f64::max);
        let reqs = ours
            .iter()
            .map(|r| r.requests.get("total").copied().unwrap_or(0))
            .max()
            .unwrap_or(0) as f64
            / w.units;
        println!(
            "  {:<26}{:>10.2}{:>10.2}{:>8.2}  {:<12}{:>12}{:>14}{:>14}{:>12}",
            w.name,
            ours_t.as_secs_f64(),
            c_t.as_secs_f64(),
            ratio,
            format!("<={goal:.2} {}", verdict(ratio <= goal)),
            format!("{reqs:.1}/{}", w.unit),
            format!(
                "{:.0} / {:.0}",
                max(&ours, |r| r.rss_mib),
                max(&c, |r| r.rss_mib)
            ),
            format!(
                "{:.0} / {:.0}",
                max(&ours, |r| r.after_mib),
                max(&c, |r| r.after_mib)
            ),
            format!(
                "{:.1} / {:.1}",
                max(&ours, |r| r.cpu_s),
                max(&c, |r| r.cpu_s)
            ),
        );
        details.push(format!(
            "  {}: {}",
            w.name,
            ours.iter()
                .map(|r| summary(&r.requests))
                .collect::<Vec<_>>()
                .join(" | ")
        ));
    }
    println!("  sshfs-rs SFTP requests by kind, run by run:");
    for line in details {
        println!("  {line}");
    }
}

fn run_once(
    w: &Workload,
    bench: &Bench,
    client: Client,
    s: &Settings,
    sshd: &Sshd,
    port: u16,
) -> Run {
    let _ = fs::remove_dir_all(bench.w());
    (w.prepare)(bench);
    let s = &ours_options(w, bench, s);
    let mut m = AnyMount::start(client, s, sshd, port);
    if w.warm_up {
        (w.check)(bench, &(w.run)(bench, m.path()));
        if remounts(w) {
            drop(m);
            m = AnyMount::start(client, s, sshd, port);
        } else {
            std::thread::sleep(KERNEL_TTL);
        }
    }
    let before = requests(&m, sshd);
    let mut out = String::new();
    let time = timed(|| out = (w.run)(bench, m.path()));
    (w.check)(bench, &out);
    let requests = difference(&requests(&m, sshd), &before);
    let (rss_mib, after_mib, cpu_s) = usage(m.pid());
    drop(m);
    Run {
        time,
        rss_mib,
        after_mib,
        cpu_s,
        requests,
    }
}

/// Whether the timed run of `w` is on a new mount after the warm-up's (the workloads named
/// "... after remount": what a cache that outlives the mount is for).
fn remounts(w: &Workload) -> bool {
    w.name.contains("after remount")
}

/// The settings for `w`: those given, and `-o data_cache` in a directory of the bench's own
/// for the workloads named "..., data_cache" (sshfs-rs only).
fn ours_options(w: &Workload, bench: &Bench, s: &Settings) -> Settings {
    let mut s = s.clone();
    if w.name.ends_with("data_cache") {
        let dir = bench.local.path().join("data-cache");
        s.ours_opts
            .extend(["-o".to_owned(), format!("data_cache={}", dir.display())]);
    }
    s
}

/// SFTP requests sent so far (sshfs-rs only; `total=0` for the C sshfs).
fn requests(m: &AnyMount, sshd: &Sshd) -> Requests {
    match m {
        AnyMount::Ours(ours) => request_counts(sshd, ours.path()),
        AnyMount::C(_) => Requests::from([("total".to_owned(), 0)]),
    }
}

/// Peak RSS (MiB), resident memory now (MiB) and CPU seconds (user + system) of process `pid`
/// so far.
fn usage(pid: u32) -> (f64, f64, f64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |field: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0)
    };
    let (peak_kib, now_kib) = (kib("VmHWM:"), kib("VmRSS:"));
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) }.max(1) as f64;
    (
        peak_kib / 1024.0,
        now_kib / 1024.0,
        (ticks(11) + ticks(12)) / hz,
    )
}

/// The inputs that live on this machine: a tarball of small files and the large file.
fn prepare_local(bench: &Bench) {
    let src = bench.local.path().join("small");
    for d in 0..TAR_DIRS {
        let dir = src.join(format!("d{d:02}"));
        fs::create_dir_all(&dir).expect("create a local directory");
        for f in 0..TAR_FILES / TAR_DIRS {
            let body = format!("file {d} {f}\n").repeat(1 + (d * 31 + f * 17) % 200);
            fs::write(dir.join(format!("f{f:03}.c")), body).expect("write a local file");
        }
    }
    sh(bench.local.path(), "tar -cf small.tar -C small .");
    fs::write(bench.local.path().join("big"), &bench.big).expect("write the local large file");
}

/// `dirs` directories of `files / dirs` files each under `root`.
fn make_tree(root: &Path, dirs: usize, files: usize) {
    for d in 0..dirs {
        let dir = root.join(format!("d{d:02}"));
        fs::create_dir_all(&dir).expect("create a directory on the server");
        for f in 0..files / dirs {
            fs::write(dir.join(format!("f{f:03}.txt")), format!("{d} {f}\n"))
                .expect("write a file on the server");
        }
    }
}

/// The server's tree of `files` files for the read-only workloads, kept between runs.
fn shared_tree(bench: &Bench, name: &str, files: usize) -> PathBuf {
    let root = bench.server.join(name);
    if !root.exists() {
        make_tree(&root, TREE_DIRS, files);
    }
    root
}

fn in_mount(mnt: &Path, script: &str) -> String {
    sh_out(mnt, script)
}

fn all(big_mib: usize) -> Vec<Workload> {
    let tree_units = TREE_FILES as f64;
    vec![
        Workload {
            name: "tar -x 1000 small files",
            unit: "file",
            units: TAR_FILES as f64,
            goal: (1.0, 0.35),
            prepare: |_| {},
            warm_up: false,
            run: |b, mnt| {
                let tar = b.local.path().join("small.tar");
                in_mount(
                    mnt,
                    &format!("mkdir w && tar -xf {} -C w && echo done", tar.display()),
                )
            },
            check: |b, _| {
                let small = b.local.path().join("small");
                sh(
                    b.local.path(),
                    &format!("diff -r {} {}", small.display(), b.w().display()),
                );
            },
        },
        Workload {
            name: "300 small writes",
            unit: "file",
            units: SMALL_WRITES as f64,
            goal: (1.0, 0.5),
            prepare: |_| {},
            warm_up: false,
            run: |_, mnt| {
                in_mount(
                    mnt,
                    &format!("mkdir w && for i in $(seq {SMALL_WRITES}); do echo $i > w/$i; done"),
                )
            },
            check: |b, _| {
                for i in 1..=SMALL_WRITES {
                    let got = fs::read_to_string(b.w().join(i.to_string()))
                        .unwrap_or_else(|e| panic!("small write {i}: {e}"));
                    assert_eq!(got, format!("{i}\n"), "small write {i}");
                }
            },
        },
        Workload {
            name: "rm -rf 5000 files",
            unit: "file",
            units: tree_units,
            goal: (1.0, 0.9),
            prepare: |b| make_tree(&b.w(), TREE_DIRS, TREE_FILES),
            warm_up: false,
            run: |_, mnt| in_mount(mnt, "rm -rf w"),
            check: |b, _| assert!(!b.w().exists(), "rm -rf left the tree"),
        },
        tree_walk("find 5000 files", (1.0, 1.0), false, |_, mnt| {
            in_mount(mnt, "find tree -type f | wc -l")
        }),
        tree_walk("ls -lR 5000 files", (1.0, 1.0), false, |_, mnt| {
            in_mount(mnt, "ls -lR tree | grep -c '^-'")
        }),
        tree_walk("stat 5000 files, warm", (1.0, 0.25), true, |_, mnt| {
            in_mount(
                mnt,
                "find tree -type f -print0 | xargs -0 stat -c %s | wc -l",
            )
        }),
        big_dir("ls -f 50000 entries", |_, mnt| {
            // `-f`: unsorted, no stat: the listing alone (with `.` and `..`).
            let n: usize = in_mount(mnt, "ls -f bigdir | wc -l")
                .trim()
                .parse()
                .unwrap_or(0);
            n.saturating_sub(2).to_string()
        }),
        big_dir("ls -l 50000 entries", |_, mnt| {
            in_mount(mnt, "ls -l bigdir | grep -c '^-'")
        }),
        Workload {
            name: "git status 5000 files",
            unit: "file",
            units: tree_units,
            goal: (1.0, 0.08),
            prepare: prepare_repo,
            warm_up: false,
            run: |_, mnt| in_mount(&mnt.join("repo"), "git status"),
            check: |_, out| {
                assert!(
                    out.contains("nothing to commit, working tree clean"),
                    "git status:\n{out}"
                );
            },
        },
        Workload {
            name: "1000 random 4 KiB reads",
            unit: "read",
            units: RANDOM_READS as f64,
            goal: (1.0, 1.0),
            prepare: prepare_big,
            warm_up: false,
            run: |b, mnt| {
                let f = File::open(mnt.join("big")).expect("open the large file");
                let mut state = 12345u64;
                let mut buf = vec![0; 4096];
                for _ in 0..RANDOM_READS {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    let at = (state >> 11) % (b.big.len() as u64 - 4096);
                    f.read_exact_at(&mut buf, at).expect("random read");
                    assert!(
                        buf == b.big[at as usize..at as usize + 4096],
                        "bytes at {at}"
                    );
                }
                String::new()
            },
            check: |_, _| {},
        },
        Workload {
            name: "sequential read",
            unit: "MiB",
            units: big_mib as f64,
            goal: (0.8, 1.0),
            prepare: prepare_big,
            warm_up: false,
            run: |b, mnt| {
                let mut f = File::open(mnt.join("big")).expect("open the large file");
                let mut got = Vec::with_capacity(b.big.len());
                f.read_to_end(&mut got).expect("read the large file");
                assert!(got == b.big, "the large file read back differs");
                String::new()
            },
            check: |_, _| {},
        },
        Workload {
            name: "sequential write, fsync",
            unit: "MiB",
            units: big_mib as f64,
            goal: (0.8, 0.5),
            prepare: |_| {},
            warm_up: false,
            run: |b, mnt| {
                let big = b.local.path().join("big");
                in_mount(
                    mnt,
                    &format!(
                        "mkdir w && dd if={} of=w/big bs=1M conv=fsync status=none",
                        big.display()
                    ),
                )
            },
            check: |b, _| {
                let got = fs::read(b.w().join("big")).expect("read the written file");
                assert!(got == b.big, "the written file differs");
            },
        },
        huge_dir("ls -f 200000 entries", |_, mnt| {
            let n: usize = in_mount(mnt, "ls -f hugedir | wc -l")
                .trim()
                .parse()
                .unwrap_or(0);
            n.saturating_sub(2).to_string()
        }),
        huge_dir("ls -l 200000 entries", |_, mnt| {
            in_mount(mnt, "ls -l hugedir | grep -c '^-'")
        }),
        reread("re-read after remount", big_mib, (1.0, 1.0)),
        reread("re-read after remount, data_cache", big_mib, (0.5, 0.05)),
        grep_after_remount("grep -r 1000 files after remount", (1.0, 1.0)),
        grep_after_remount("grep -r 1000 files after remount, data_cache", (1.0, 0.25)),
    ]
}

/// The large file read whole on a new mount, after a warm-up read on another (see
/// [`remounts`]); "..., data_cache": with the content cache on local disk.
fn reread(name: &'static str, big_mib: usize, goal: (f64, f64)) -> Workload {
    Workload {
        name,
        unit: "MiB",
        units: big_mib as f64,
        goal,
        prepare: |b| {
            prepare_big(b);
            // Not modified in the last seconds: the content cache keeps only settled files.
            sh(&b.server, "touch -d '2020-01-01' big");
        },
        warm_up: true,
        run: |b, mnt| {
            let mut f = File::open(mnt.join("big")).expect("open the large file");
            let mut got = Vec::with_capacity(b.big.len());
            f.read_to_end(&mut got).expect("read the large file");
            assert!(got == b.big, "the large file read back differs");
            String::new()
        },
        check: |_, _| {},
    }
}

/// Files in the tree `grep -r` reads.
const GREP_FILES: usize = 1000;

/// `grep -r` over a tree of [`GREP_FILES`] small files (kept between runs) on a new mount,
/// after a warm-up grep on another (see [`remounts`]).
fn grep_after_remount(name: &'static str, goal: (f64, f64)) -> Workload {
    Workload {
        name,
        unit: "file",
        units: GREP_FILES as f64,
        goal,
        prepare: |b| {
            let root = shared_tree(b, "grep-tree", GREP_FILES);
            sh(&root, "find . -exec touch -h -d 2020-01-01 {} +");
        },
        warm_up: true,
        run: |_, mnt| in_mount(mnt, "grep -r ' 1' grep-tree | wc -l"),
        check: |_, out| {
            // Lines "D F" with F starting with 1: 1, 10-19, 100-199 of 0..20 per directory.
            let want = TREE_DIRS
                * (0..GREP_FILES / TREE_DIRS)
                    .filter(|f| f.to_string().starts_with('1'))
                    .count();
            assert_eq!(out.trim(), want.to_string(), "lines found");
        },
    }
}

/// A walk of the server's 5000-file tree (kept between runs) whose output is the number of
/// files it saw.
fn tree_walk(
    name: &'static str,
    goal: (f64, f64),
    warm_up: bool,
    run: fn(&Bench, &Path) -> String,
) -> Workload {
    Workload {
        name,
        unit: "file",
        units: TREE_FILES as f64,
        goal,
        prepare: |b| {
            shared_tree(b, "tree", TREE_FILES);
        },
        warm_up,
        run,
        check: |_, out| assert_eq!(out.trim(), TREE_FILES.to_string(), "files seen"),
    }
}

/// A listing of one directory of [`BIG_DIR_FILES`] entries (made once, kept between runs)
/// whose output is the number of files it saw. Goal: no slower than the C sshfs at either RTT.
fn big_dir(name: &'static str, run: fn(&Bench, &Path) -> String) -> Workload {
    Workload {
        name,
        unit: "entry",
        units: BIG_DIR_FILES as f64,
        goal: (1.0, 1.0),
        prepare: |b| fill_dir(&b.server.join("bigdir"), BIG_DIR_FILES, 5),
        warm_up: false,
        run,
        check: |_, out| assert_eq!(out.trim(), BIG_DIR_FILES.to_string(), "entries seen"),
    }
}

/// A listing of the 200,000-entry directory: the daemon's peak and resident memory after it
/// show its memory bound.
fn huge_dir(name: &'static str, run: fn(&Bench, &Path) -> String) -> Workload {
    Workload {
        name,
        unit: "entry",
        units: HUGE_DIR_FILES as f64,
        goal: (1.0, 1.0),
        prepare: |b| fill_dir(&b.server.join("hugedir"), HUGE_DIR_FILES, 6),
        warm_up: false,
        run,
        check: |_, out| assert_eq!(out.trim(), HUGE_DIR_FILES.to_string(), "entries seen"),
    }
}

/// `dir` on the server with `files` one-byte files named `f` and `width` digits (made once,
/// kept between runs).
fn fill_dir(dir: &Path, files: usize, width: usize) {
    if dir.join(format!("f{:0width$}", files - 1)).exists() {
        return;
    }
    fs::create_dir_all(dir).expect("create the directory of many files on the server");
    for f in 0..files {
        fs::write(dir.join(format!("f{f:0width$}")), b"x")
            .expect("write a file of the directory of many files");
    }
}

/// The large file on the server (kept between runs).
fn prepare_big(b: &Bench) {
    let path = b.server.join("big");
    if fs::metadata(&path).map(|m| m.len()).ok() != Some(b.big.len() as u64) {
        fs::write(&path, &b.big).expect("write the large file on the server");
    }
}

/// A git repository of 5000 committed files on the server, its index as the server side wrote
/// it (restored before every run, so that git re-reads every file as after a fresh clone).
fn prepare_repo(b: &Bench) {
    let repo = b.server.join("repo");
    let index = b.local.path().join("repo-index");
    if !index.exists() {
        make_tree(&repo, TREE_DIRS, TREE_FILES);
        sh(
            &repo,
            "find . -exec touch -h -d 2020-01-01T00:00:00 {} + && git init -q -b main \
             && git add -A && git -c user.email=t@t -c user.name=t commit -q -m files",
        );
        fs::copy(repo.join(".git/index"), &index).expect("keep the git index");
    }
    fs::copy(&index, repo.join(".git/index")).expect("restore the git index");
}
