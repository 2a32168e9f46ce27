//! The reference-model test of the fs layer: random sequences of what programs do, run on
//! [`SshFs`] over an in-process SFTP server (no FUSE, no network) and on a plain POSIX model,
//! compared after every step and at the end, with the link cut at random points and several
//! processes' operations in flight at once. Proptest shrinks a failure to a short sequence.
//!
//! - [`ops`]: the operations and their strategies;
//! - [`posix`]: the model, which says what each operation gives a program;
//! - [`driver`]: runs an operation on [`SshFs`] as the kernel would;
//! - [`check`]: compares, step by step and the whole tree at the end;
//! - [`server`]: the servers under test and what they can do.
//!
//! Each case runs on its own current-thread tokio runtime with the clock paused, so waits
//! (reconnect backoff, timers) take no wall time and a case replays the same way.
//!
//! The properties: the in-memory server (answers jittered 0 to 3 ms in virtual time) without
//! and with cuts, the same answering every READ short, or announcing no extension, and the
//! fake server without and with cuts; 10,000 cases in all. A cut ends the connection before or after the server carried out
//! the step's N-th request (it may come in a later step: a write's packets leave after write()
//! returned). Where SFTP cannot do what a local filesystem does, the model follows
//! docs/SEMANTICS.md (see [`posix`] and [`server::Caps`]); where the client has a known bug,
//! [`KNOWN_BUGS`] steers clear of it.
//!
//! Running and replaying:
//! - `cargo test -p sshfs-client model` runs every property with its default case count;
//!   `MODEL_CASES=N` changes it (for each property), `MODEL_SEED=S` replays a seed (each
//!   property prints its seed when it fails). Without `MODEL_SEED` every run uses
//!   [`FIXED_SEED`], so CI runs the same cases each time; `MODEL_SEED=random` explores with a
//!   new seed each run (how new findings are made: run it in a loop).
//!   `MODEL_LOG=1` prints every case's steps and what the program saw; `MODEL_STRICT=1` stops
//!   steering clear of the known bugs ([`KNOWN_BUGS`]).
//! - A failure prints the shrunk sequence as Rust: paste it into [`regressions`] as a named
//!   `#[test]` calling [`replay`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod check;
pub mod driver;
pub mod ops;
pub mod posix;
#[cfg(test)]
mod regressions;
pub mod server;

use std::sync::Arc;
use std::time::Duration;

use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use sshfs_cache::CacheConfig;

use crate::fs::SshFs;
use crate::remote::testing::{StreamConnector, quick_reconnect};
use check::{Expect, Outcome, first_difference, tree_differences};
use driver::Driver;
use ops::{At, Mix, OFlags, Op, Step};
use posix::{FdId, Model, Plan, Planned};
use server::{Harness, ROOT};

/// Runs one case on a server made by `make` and compares; the error says where and how the
/// fs layer and the model parted.
///
/// No steering clear of known bugs: a regression case shows its bug.
pub fn replay<H: Harness + 'static>(
    make: impl FnOnce() -> H,
    steps: &[Step],
) -> Result<(), String> {
    replay_with(make, steps, KnownBugs::NONE)
}

/// [`replay`], steering clear of `known` bugs.
pub fn replay_with<H: Harness + 'static>(
    make: impl FnOnce() -> H,
    steps: &[Step],
    known: KnownBugs,
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let harness: Arc<dyn Harness> = Arc::new(make());
    rt.block_on(async {
        // Virtual time: a case that waits for nothing that can come ends here.
        match tokio::time::timeout(Duration::from_secs(3600), run(harness, steps, known)).await {
            Ok(r) => r,
            Err(_) => Err("stuck: no progress for an hour of virtual time".to_owned()),
        }
    })
}

async fn run(harness: Arc<dyn Harness>, steps: &[Step], known: KnownBugs) -> Result<(), String> {
    let connector = StreamConnector::new(harness.serve());
    let sftp = connector.connect_sftp(quick_reconnect()).await;
    let fs = Arc::new(SshFs::new(sftp, ROOT.into(), CacheConfig::default()));
    let driver = Driver::new(fs);
    let mut model = Model::new(harness.caps(), known.nlink_after_forget);
    let mut log: Vec<String> = Vec::new();
    let fail = |log: &[String], what: String| {
        let tail = log.len().saturating_sub(40);
        let trace = harness.trace();
        let trace = if trace.is_empty() || trace.len() > 6000 {
            String::new()
        } else {
            format!("\nthe server received:{trace}")
        };
        Err(format!("{}\n{what}{trace}", log[tail..].join("\n")))
    };
    for (i, step) in steps.iter().enumerate() {
        if harness.fired() {
            // Made by a packet that left after its step ended (a write's).
            model.link_cut();
            log.push("(the link was cut between steps)".to_owned());
        }
        let planned = model.plan(&step.op);
        let opens_appending = |p: &Plan| matches!(p.op, Op::Open { flags, .. } if flags.append);
        let appends = match &planned {
            Planned::One(p) => opens_appending(p),
            Planned::Join(ps) => ps.iter().any(opens_appending),
            Planned::Skip => false,
        };
        // SEMANTICS.md: an O_APPEND write whose answer a cut lost (the cut of its request, or
        // of any later one while the answer was on its way) is resent and appended twice. The
        // model does not predict that: no cut is made while a file is open so.
        let appending = appends || model.fds().values().any(|f| f.append);
        if appending {
            harness.disarm();
        }
        if let Some(cut) = step
            .cut
            .filter(|_| !matches!(planned, Planned::Skip) && !appending)
        {
            harness.cut_at(u64::from(cut.at), cut.after);
        }
        let doubtful = per_op(&model, &planned, |m, fd| m.doubtful(fd));
        let nameless_before = per_op(&model, &planned, |m, fd| m.nameless(fd));
        // To take the operation back if it failed as a doubtful handle may.
        let before = nameless_before.contains(&true).then(|| model.clone());
        let seen = driver.run(&planned).await;
        // A cut asked for waits for its request, which may come in a later step (a write's
        // packets leave after write() returned).
        let cut = harness.fired();
        let mut expect = model.apply(&planned);
        let nameless_after = per_op(&model, &planned, |m, fd| m.nameless(fd));
        let may_fail: Vec<bool> = (0..doubtful.len())
            .map(|i| doubtful[i] || cut && (nameless_before[i] || nameless_after[i]))
            .collect();
        let strict = expect.clone();
        expect = may_lose(expect, &may_fail);
        if let (Some(before), Planned::One(plan)) = (before, &planned)
            && !matches!(plan.op, Op::Close { .. })
            && seen == Outcome::Err(libc::EIO)
            && !strict.allows(&seen)
        {
            // The handle could not be reopened: the operation did not happen (a close closes
            // the descriptor whatever it reports).
            model = before;
        }
        if cut {
            model.link_cut();
        }
        if let (Planned::One(plan), false) = (&planned, cut) {
            // (A cut during the step may have come after the handle was used.)
            used_handle(&mut model, plan, &seen);
        }
        let cut_note = if cut { " [link cut]" } else { "" };
        log.push(format!("step {i}: {:?}{cut_note} -> {seen:?}", step.op));
        if !expect.allows(&seen) {
            return fail(&log, format!("step {i}: the model expects {expect:?}"));
        }
        // (Cheap for the in-memory server, not for the fake: after cuts, and at the end.)
        if cut && let Err(e) = invariants(&harness, &driver) {
            return fail(&log, format!("after step {i}: {e}"));
        }
    }
    if let Err(e) = final_check(&harness, &driver, &mut model, &mut log).await {
        return fail(&log, e);
    }
    if std::env::var_os("MODEL_LOG").is_some() {
        eprintln!(
            "{}\nthe server received:{}\n",
            log.join("\n"),
            harness.trace()
        );
    }
    Ok(())
}

/// Known client bugs the strategies steer clear of, so that a run keeps finding others. Each
/// steered bug has a named regression case marked `#[ignore]`; `MODEL_STRICT=1` turns every
/// steering off (to see a fix work). None is steered today: the one field is kept, false, as
/// the place to add the next.
#[derive(Clone, Copy, Debug)]
pub struct KnownBugs {
    /// After the kernel forgot its inodes, a name of a file that had several names may show
    /// a link count above the true one once another name is removed (SEMANTICS.md promises
    /// never more links than exist). Steered clear of by not comparing the link count of such
    /// a file after a [`ops::Op::DropCaches`].
    pub nlink_after_forget: bool,
}

/// The known bugs to steer clear of (see [`KnownBugs`]).
pub const KNOWN_BUGS: KnownBugs = KnownBugs {
    nlink_after_forget: false,
};

impl KnownBugs {
    /// None: every case runs as generated.
    pub const NONE: KnownBugs = KnownBugs {
        nlink_after_forget: false,
    };
}

fn known_bugs() -> KnownBugs {
    if std::env::var_os("MODEL_STRICT").is_some() {
        KnownBugs::NONE
    } else {
        KNOWN_BUGS
    }
}

/// For each operation of a planned step: whether `test` holds for an open file it names.
fn per_op(model: &Model, planned: &Planned, test: impl Fn(&Model, FdId) -> bool) -> Vec<bool> {
    let one = |p: &Plan| p.fds.iter().any(|f| test(model, *f));
    match planned {
        Planned::Skip => vec![false],
        Planned::One(p) => vec![one(p)],
        Planned::Join(ps) => ps.iter().map(one).collect(),
    }
}

/// Operations that succeed only through the file's server handle: it is open on the
/// current connection since.
fn used_handle(model: &mut Model, plan: &Plan, seen: &Outcome) {
    let through_handle = match &plan.op {
        // (Not fsync: without fsync@openssh.com it sends nothing.)
        Op::SeekEnd { .. } | Op::Ftruncate { .. } => true,
        Op::Read { direct, len, .. } => *direct && *len > 0,
        _ => false,
    };
    if through_handle
        && !matches!(seen, Outcome::Err(_))
        && let Some(fd) = plan.fds.first()
    {
        model.handle_used(*fd);
    }
}

/// An operation on a file with no name left whose server handle a cut may have closed may
/// fail with EIO (SEMANTICS.md: such a file cannot be reopened).
fn may_lose(expect: Expect, nameless: &[bool]) -> Expect {
    match expect {
        Expect::Join(all) => Expect::Join(
            all.into_iter()
                .zip(nameless)
                .map(|(e, n)| if *n { e.or(Outcome::Err(libc::EIO)) } else { e })
                .collect(),
        ),
        e if nameless.first() == Some(&true) => e.or(Outcome::Err(libc::EIO)),
        e => e,
    }
}

/// What must hold after every step.
fn invariants(harness: &Arc<dyn Harness>, driver: &Driver) -> Result<(), String> {
    let bad = harness.bad_handles();
    if bad > 0 {
        return Err(format!(
            "{bad} requests named a handle the server did not hold"
        ));
    }
    let misuse = driver.fs().sftp().handles().misuse();
    if misuse > 0 {
        return Err(format!(
            "{misuse} requests on handles the session does not hold"
        ));
    }
    Ok(())
}

/// Closes every open file, then compares what the mount shows of every name (attributes,
/// contents read through a new open, listings, targets) and the server's tree with the model.
async fn final_check(
    harness: &Arc<dyn Harness>,
    driver: &Driver,
    model: &mut Model,
    log: &mut Vec<String>,
) -> Result<(), String> {
    if harness.fired() {
        model.link_cut();
        log.push("(the link was cut after the last step)".to_owned());
    }
    harness.disarm();
    let open: Vec<_> = model.fds().keys().copied().collect();
    for fd in open {
        let plan = Planned::One(Plan {
            op: Op::Close { p: 0, fd: 0 },
            fds: vec![fd],
            new_fd: 0,
            range: (0, 0),
        });
        let doubtful = model.doubtful(fd);
        let seen = driver.run(&plan).await;
        let expect = may_lose(model.apply(&plan), &[doubtful]);
        log.push(format!("end: close fd {fd} -> {seen:?}"));
        if !expect.allows(&seen) {
            return Err(format!("end: close: the model expects {expect:?}"));
        }
    }
    // Closes of server handles and other work behind the program's back settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (path, ino) in model.paths() {
        let path: &'static str = Box::leak(path.into_boxed_str());
        let mut ops = vec![Op::Stat {
            path,
            follow: false,
        }];
        match model.kind_of(ino) {
            Some(check::Kind::File) => {
                let size = model.contents(ino).len() as u32;
                ops.push(Op::Open {
                    p: 0,
                    path,
                    flags: OFlags {
                        acc: ops::Acc::R,
                        creat: false,
                        excl: false,
                        trunc: false,
                        append: false,
                    },
                    mode: 0,
                });
                ops.push(Op::Read {
                    p: 0,
                    fd: 0,
                    at: At::Off(0),
                    len: size + 4096,
                    direct: true,
                });
                ops.push(Op::Close { p: 0, fd: 0 });
            }
            Some(check::Kind::Dir) => ops.push(Op::Readdir { path }),
            Some(check::Kind::Symlink) => ops.push(Op::Readlink { path }),
            None => {}
        }
        for op in ops {
            let planned = model.plan(&op);
            let seen = driver.run(&planned).await;
            let expect = model.apply(&planned);
            log.push(format!("end: {op:?} -> {seen:?}"));
            if !expect.allows(&seen) {
                let why = match (&expect, &seen) {
                    (Expect::Is(Outcome::Data(want)), Outcome::Data(got)) => format!(
                        " (first difference at byte {:?})",
                        first_difference(want, got)
                    ),
                    _ => String::new(),
                };
                return Err(format!("end: the model expects {expect:?}{why}"));
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let differences = tree_differences(&model.tree(), &harness.tree());
    if !differences.is_empty() {
        return Err(format!(
            "end: the server's tree differs from the model's:\n  {}",
            differences.join("\n  ")
        ));
    }
    invariants(harness, driver)
}

/// The steps of a case that do something (a skipped step changes nothing on either side).
fn effective(caps: server::Caps, steps: &[Step]) -> Vec<Step> {
    let mut model = Model::new(caps, true);
    steps
        .iter()
        .filter(|step| {
            let planned = model.plan(&step.op);
            model.apply(&planned);
            !matches!(planned, Planned::Skip)
        })
        .cloned()
        .collect()
}

/// The seed CI runs every property with: its cases are the same in every run, so a failure
/// there is a change of the client (or of the model), not a new corner found by chance.
/// `MODEL_SEED=random` explores: each run draws a seed of its own (printed on failure).
pub const FIXED_SEED: u64 = 20_261_207;

/// The seed of a property run: `MODEL_SEED` (a number, or `random`), else [`FIXED_SEED`].
fn seed() -> u64 {
    match std::env::var("MODEL_SEED").ok().as_deref() {
        Some("random") => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
        Some(s) => s.parse().unwrap_or(FIXED_SEED),
        None => FIXED_SEED,
    }
}

/// Runs `cases` random cases (`MODEL_CASES` overrides) of `mix` on servers made by `make`;
/// a failure panics with the seed and the shrunk sequence as Rust.
pub fn property<H: Harness + 'static>(name: &str, make: fn() -> H, mix: Mix, cases: u32) {
    let cases = std::env::var("MODEL_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    let seed = seed();
    let caps = make().caps();
    let config = Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        rng_algorithm: proptest::test_runner::RngAlgorithm::XorShift,
        max_shrink_iters: 4096,
        ..Config::default()
    };
    let known = known_bugs();
    let mut runner = TestRunner::new(config);
    let started = std::time::Instant::now();
    let result = runner.run(&ops::steps(caps, mix), |steps| {
        replay_with(make, &steps, known).map_err(TestCaseError::fail)
    });
    match result {
        Ok(()) => eprintln!(
            "{name}: {cases} cases in {:.1} s (MODEL_SEED={seed})",
            started.elapsed().as_secs_f64()
        ),
        Err(TestError::Fail(why, steps)) => {
            let steps: Vec<String> = effective(caps, &steps)
                .iter()
                .map(|s| format!("        {s:?},"))
                .collect();
            panic!(
                "{name} failed (replay: MODEL_SEED={seed}); shrunk to:\n\
                 vec![\n{}\n    ]\n{why}",
                steps.join("\n")
            );
        }
        Err(TestError::Abort(why)) => panic!("{name} aborted (MODEL_SEED={seed}): {why}"),
    }
}

/// Over `remote::fake_server`: files in one directory, no cuts.
#[test]
fn model_fake_server() {
    property(
        "model_fake_server",
        server::Fake::new,
        Mix::with_cuts(0),
        1000,
    );
}

/// Over `remote::fake_server`, with the link cut during one step in five.
#[test]
fn model_fake_server_with_cuts() {
    property(
        "model_fake_server_with_cuts",
        server::Fake::new,
        Mix::with_cuts(5),
        1000,
    );
}

/// Over the in-memory OpenSSH-like server: directories, links, setattr; no cuts.
#[test]
fn model_memory_server() {
    property(
        "model_memory_server",
        server::Memory::jittery,
        Mix::with_cuts(0),
        2500,
    );
}

/// Over the in-memory server, with the link cut during one step in five.
#[test]
fn model_memory_server_with_cuts() {
    property(
        "model_memory_server_with_cuts",
        server::Memory::jittery,
        Mix::with_cuts(5),
        4000,
    );
}

/// Over the in-memory server answering every READ short, with cuts.
#[test]
fn model_memory_server_short_reads() {
    property(
        "model_memory_server_short_reads",
        server::Memory::short_reads,
        Mix::with_cuts(5),
        1000,
    );
}

/// Over the in-memory server announcing no extension, with cuts.
#[test]
fn model_memory_server_no_extensions() {
    property(
        "model_memory_server_no_extensions",
        server::Memory::no_extensions,
        Mix::with_cuts(5),
        500,
    );
}
