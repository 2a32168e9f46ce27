//! Child processes and the process tree: bounded waits, termination, `/proc/PID/stat`.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::wait_until;

/// Waits up to `timeout` for `child` to exit; `None` if it is still running.
pub(super) fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let mut status = None;
    wait_until(timeout, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    status
}

/// Runs a helper command (output discarded) and reports whether it exited
/// successfully within `timeout`; it is killed if it runs longer.
pub(super) fn run_bounded(program: &str, args: &[&str], timeout: Duration) -> bool {
    let spawned = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = spawned else { return false };
    match wait_timeout(&mut child, timeout) {
        Some(status) => status.success(),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            false
        }
    }
}

/// Sends SIGTERM, waits up to `grace`, then SIGKILLs and reaps `child`.
pub(super) fn terminate(child: &mut Child, grace: Duration) -> ExitStatus {
    if let Ok(Some(status)) = child.try_wait() {
        return status;
    }
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    if let Some(status) = wait_timeout(child, grace) {
        return status;
    }
    let _ = child.kill();
    child.wait().expect("wait for killed child")
}

/// The fields of `/proc/PID/stat` the harness uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ProcStat {
    pub(super) pid: i32,
    pub(super) ppid: i32,
    pub(super) comm: String,
    pub(super) state: char,
    pub(super) start_time: u64,
}

/// Reads `/proc/PID/stat`; `None` if the process does not exist.
pub(super) fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, tail) = text.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    // After "comm)": state(3) ppid(4) ... starttime(22), numbered from 1 as in proc(5).
    let fields: Vec<&str> = tail.split_whitespace().collect();
    Some(ProcStat {
        pid,
        ppid: fields.get(1)?.parse().ok()?,
        comm,
        state: fields.first()?.chars().next()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// True while the process recorded in `p` runs (same start time, not a zombie).
pub(super) fn still_running(p: &ProcStat) -> bool {
    proc_stat(p.pid).is_some_and(|now| now.start_time == p.start_time && now.state != 'Z')
}

/// True once the process recorded in `p` is gone from /proc (its parent reaped it).
pub(super) fn is_reaped(p: &ProcStat) -> bool {
    proc_stat(p.pid).is_none_or(|now| now.start_time != p.start_time)
}

/// All descendants of `root` (children, grandchildren, ...), zombies included,
/// each listed after its parent.
pub(super) fn descendants(root: i32) -> Vec<ProcStat> {
    let all: Vec<ProcStat> = std::fs::read_dir("/proc")
        .expect("list /proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(proc_stat)
        .collect();
    let mut found: Vec<ProcStat> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for p in all.iter().filter(|p| p.ppid == parent) {
            frontier.push(p.pid);
            found.push(p.clone());
        }
    }
    found
}
