//! `sshfs-rs [user@]host:[path] mountpoint [options]`: mount a remote directory over SSH.

mod config;
mod control;
mod daemon;
#[cfg(test)]
mod man;
mod options;
mod prompt;
mod serve;
mod ssh_config;
mod target;

fn main() {
    let args = config::parse_args();
    std::process::exit(serve::run(args));
}
