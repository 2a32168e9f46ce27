//! The default log filter, from `-d`, `-v` and ssh's `LogLevel`.

use crate::options::mount_opts::LogLevel;

/// Log filters for each verbosity.
// Not fuse3's own spans (INFO) with -d: they would repeat each raw request on every line.
pub(super) const LOG_DEBUG: &str = "sshfs_client=debug,sshfs_rs=debug,info,fuse3=warn";
pub(super) const LOG_VERBOSE: &str = "info";
// russh-sftp warns when its stream breaks (an ssh_command that exited, say); what that means
// for the mount is ours to say, once.
pub(super) const LOG_DEFAULT: &str = "warn,russh_sftp=error";

/// The log filter: `-d`, then the more verbose of `-v` and `LogLevel`.
pub(super) fn log_filter(debug: bool, verbose: bool, level: Option<LogLevel>) -> &'static str {
    if debug {
        return LOG_DEBUG;
    }
    match level {
        Some(LogLevel::Debug2 | LogLevel::Debug3) => "debug",
        Some(LogLevel::Debug1) => LOG_DEBUG,
        _ if verbose => LOG_VERBOSE,
        Some(LogLevel::Verbose) => LOG_VERBOSE,
        Some(LogLevel::Quiet) => "off",
        Some(LogLevel::Fatal | LogLevel::Error) => "error",
        Some(LogLevel::Info) | None => LOG_DEFAULT,
    }
}
