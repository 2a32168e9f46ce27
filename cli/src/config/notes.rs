//! What working out the options found to tell the user, and telling it: warnings, and lines
//! shown with `-v` only, as ssh's `LogLevel` allows.

use crate::options::mount_opts::{LogLevel, MountOpts};

/// What working out the SSH options found to tell the user.
#[derive(Debug, Default)]
pub struct Notes {
    /// Warnings (one line each).
    pub warnings: Vec<String>,
    /// Shown with -v only.
    pub verbose: Vec<String>,
    /// The mounted host's LogLevel from ssh_config.
    pub log_level: Option<LogLevel>,
}

impl Notes {
    /// Adds what `-o` said that sshfs-rs does not act on: ssh options it knows but does not
    /// implement (a warning) and those meaningless for a mount (`-v` only).
    pub fn add_options(&mut self, o: &MountOpts) {
        if !o.ssh_unused.is_empty() {
            self.warnings.push(format!(
                "-o {}: sshfs-rs does not act on {} (see docs/ssh.md)",
                o.ssh_unused.join(", -o "),
                if o.ssh_unused.len() == 1 {
                    "it"
                } else {
                    "them"
                }
            ));
        }
        if !o.ssh_irrelevant.is_empty() {
            self.verbose.push(format!(
                "ssh options with no effect on this mount: {}",
                o.ssh_irrelevant.join(", ")
            ));
        }
    }

    /// Prints the notes on stderr: warnings unless `log_level` is QUIET, FATAL or ERROR (as in
    /// ssh; `-v` shows them anyway), the verbose lines with `verbose`.
    pub fn print(&self, log_level: Option<LogLevel>, dash_v: bool, verbose: bool) {
        if log_level.is_none_or(|l| l > LogLevel::Error) || dash_v {
            for w in &self.warnings {
                eprintln!("sshfs-rs: warning: {w}");
            }
        }
        if verbose {
            for v in &self.verbose {
                eprintln!("sshfs-rs: {v}");
            }
        }
    }
}
