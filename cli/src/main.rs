//! `sshfs-rs [user@]host:[path] mountpoint [options]`: mount a remote directory over SSH.
//! Started as `mount.fuse.sshfs-rs`, it takes mount(8)'s helper call form instead.
//!
//! The modules, from the top down (each imports only those below it): [`daemon`] serves a
//! mount, [`keyring`] stores and finds secrets, [`config`] turns the parsed options into the
//! client's configuration, [`mount`] and [`ssh`] read the mountpoint, mount(8)'s call form and
//! ssh_config, and [`options`] holds what the user can say, with no I/O. [`docs`] (tests only)
//! makes the man page, completions and docs from the tables.

mod config;
mod daemon;
#[cfg(test)]
mod docs;
mod keyring;
mod mount;
mod options;
mod ssh;

use daemon::auto_unmount;
use mount::helper;

fn main() {
    // The -o auto_unmount watcher, executed by a mount (see auto_unmount.rs).
    if std::env::args_os().nth(1).as_deref() == Some(auto_unmount::WATCHER_FLAG.as_ref()) {
        std::process::exit(auto_unmount::run_watcher());
    }
    let mut argv = std::env::args_os();
    let args = match argv.next() {
        Some(argv0) if helper::invoked_as_helper(&argv0) => {
            let words: Result<Vec<String>, _> = argv.map(|a| a.into_string()).collect();
            let parsed = words
                .map_err(|a| format!("argument {a:?} is not UTF-8"))
                .and_then(helper::parse);
            match parsed {
                Ok(args) => args,
                Err(e) => {
                    eprintln!("{}: {e}", helper::NAME);
                    std::process::exit(1);
                }
            }
        }
        _ => options::args::parse_args(),
    };
    std::process::exit(daemon::serve::run(args));
}
