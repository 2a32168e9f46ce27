//! `sshfs-rs [user@]host:[path] mountpoint [options]`: mount a remote directory over SSH.
//! Started as `mount.fuse.sshfs-rs`, it takes mount(8)'s helper call form instead.

mod auto_unmount;
#[cfg(test)]
mod completions;
mod config;
mod control;
mod daemon;
mod helper;
mod keyring;
mod keyring_cmd;
mod logging;
#[cfg(test)]
mod man;
mod options;
mod owners;
mod prompt;
mod serve;
mod ssh_command;
mod ssh_config;
#[cfg(test)]
mod ssh_docs;
mod target;

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
        _ => config::parse_args(),
    };
    std::process::exit(serve::run(args));
}
