//! The command line as clap reads it ([`Args`]): the flags and the two positional arguments;
//! the `-o` options are in the option table ([`super::table`]) and appended to `--help` from it.

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, ValueHint};

use super::help;

/// The flags that make the program do something else than mount (no source, no mountpoint).
const NOT_A_MOUNT: [&str; 6] = [
    "flush",
    "stats",
    "store_password",
    "forget_password",
    "store_passphrase",
    "forget_passphrase",
];

/// sshfs-rs: mount a remote directory over SSH.
#[derive(Parser, Debug)]
#[command(
    name = "sshfs-rs",
    version,
    about = "Mount a remote directory over SSH (SFTP)",
    group(clap::ArgGroup::new("keyring_command").multiple(false))
)]
pub struct Args {
    /// Remote directory: [user@]host:[path] (empty path: the remote home; IPv6 in brackets)
    #[arg(required_unless_present_any = NOT_A_MOUNT, value_parser = source_parser())]
    pub source: Option<String>,
    /// Local directory to mount on
    #[arg(required_unless_present_any = NOT_A_MOUNT, value_hint = ValueHint::DirPath)]
    pub mountpoint: Option<PathBuf>,
    /// Drop every cache of the sshfs-rs mount on MOUNTPOINT now (after changes made directly on
    /// the server), then exit
    #[arg(long, value_name = "MOUNTPOINT", value_hint = ValueHint::DirPath, conflicts_with_all = ["source", "stats"])]
    pub flush: Option<PathBuf>,
    /// Print the SFTP request and cache counters of the sshfs-rs mount on MOUNTPOINT, then exit
    #[arg(long, value_name = "MOUNTPOINT", value_hint = ValueHint::DirPath, conflicts_with = "source")]
    pub stats: Option<PathBuf>,
    /// Ask for the password of [USER@]HOST[:PORT] (on the terminal, or one line from stdin
    /// with -o password_stdin) and store it in the OS keyring for later mounts, then exit
    #[arg(long, value_name = "[USER@]HOST[:PORT]", conflicts_with_all = ["source", "flush", "stats"], group = "keyring_command")]
    pub store_password: Option<String>,
    /// Remove the password of [USER@]HOST[:PORT] from the OS keyring, then exit
    #[arg(long, value_name = "[USER@]HOST[:PORT]", conflicts_with_all = ["source", "flush", "stats"], group = "keyring_command")]
    pub forget_password: Option<String>,
    /// Ask for the passphrase of the private key KEYFILE (checked against the key) and store it
    /// in the OS keyring for later mounts, then exit
    #[arg(long, value_name = "KEYFILE", conflicts_with_all = ["source", "flush", "stats"], group = "keyring_command")]
    pub store_passphrase: Option<PathBuf>,
    /// Remove the passphrase of KEYFILE from the OS keyring, then exit
    #[arg(long, value_name = "KEYFILE", conflicts_with_all = ["source", "flush", "stats"], group = "keyring_command")]
    pub forget_passphrase: Option<PathBuf>,
    /// Remote SSH port
    #[arg(short = 'p', value_name = "PORT")]
    pub port: Option<String>,
    /// ssh_config file to read instead of ~/.ssh/config
    #[arg(short = 'F', value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub ssh_config: Option<PathBuf>,
    /// Stay in the foreground
    #[arg(short = 'f')]
    pub foreground: bool,
    /// Debug: stay in the foreground and log every request (also -o debug)
    #[arg(short = 'd', long = "debug")]
    pub debug: bool,
    /// Log the steps of connecting and authenticating on stderr
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Compress the connection (same as -o Compression=yes)
    #[arg(short = 'C')]
    pub compression: bool,
    /// Same as -o ssh_protocol=1, which is refused (SSH protocol 1 is not supported)
    #[arg(short = '1')]
    pub protocol_1: bool,
    /// Single-threaded (accepted for sshfs compatibility; no effect)
    #[arg(short = 's')]
    pub single_threaded: bool,
    /// Mount options, see below (repeatable, comma-separated)
    #[arg(short = 'o', value_name = "OPT[,OPT...]")]
    pub options: Vec<String>,
    /// Run as the mount helper mount.fuse.sshfs-rs: never prompt.
    #[arg(skip)]
    pub helper: bool,
    /// mount's `-s` (sloppy): skip unknown options instead of refusing them.
    #[arg(skip)]
    pub sloppy: bool,
    /// mount's `-f` (fake): check everything that needs no network, then exit without mounting.
    #[arg(skip)]
    pub fake: bool,
}

/// The remote directory's argument as bytes: a path that is not UTF-8 is kept in the escape
/// the client keeps names in (`sshfs_client::kernel_names`), so it reaches the server unchanged.
fn source_parser() -> impl clap::builder::TypedValueParser<Value = String> {
    use clap::builder::TypedValueParser;
    clap::builder::OsStringValueParser::new()
        .map(|s: std::ffi::OsString| sshfs_client::kernel_names::name_from_kernel(&s).into_owned())
}

/// The flags that stand for an option of the `-o` table: (short flag, option name). The two
/// say so in their help, and a test holds clap's arguments and the table to this list.
#[cfg(test)]
pub const SAME_AS_OPTION: [(char, &str); 4] = [
    ('p', "Port"),
    ('C', "Compression"),
    ('d', "debug"),
    ('1', "ssh_protocol"),
];

/// The whole command line, `-o` options included (for `--help` and the man page).
pub fn command() -> clap::Command {
    Args::command().after_help(help::help_text())
}

/// Parses the process arguments (clap prints help, version and missing-argument errors and
/// exits itself; an unknown flag is one line, without clap's "use '-- -X'" tip).
pub fn parse_args() -> Args {
    let matches = match command().try_get_matches() {
        Ok(m) => m,
        Err(e) => usage_error(e),
    };
    match Args::from_arg_matches(&matches) {
        Ok(a) => a,
        Err(e) => usage_error(e),
    }
}

fn usage_error(e: clap::Error) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if let (ErrorKind::UnknownArgument, Some(ContextValue::String(arg))) =
        (e.kind(), e.get(ContextKind::InvalidArg))
    {
        eprintln!("sshfs-rs: unknown option '{arg}' (see sshfs-rs --help)");
        std::process::exit(2);
    }
    e.exit()
}

#[cfg(test)]
mod tests {
    use super::super::table::DEFS;
    use super::*;

    fn def_help(name: &str) -> Option<&'static str> {
        DEFS.iter().find(|d| d.name == name).map(|d| d.help)
    }

    /// clap's flags and the `-o` table are two lists with no name in common, except the flags
    /// of [`SAME_AS_OPTION`]: the option's help names each of those flags (the flag's help, when it
    /// names an option, names that one), and every `-o NAME` a flag's help names is in the table.
    #[test]
    fn flags_and_the_option_table_agree() {
        let cmd = command();
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(!help.is_empty(), "argument {id} has no help");
            let alias = arg
                .get_short()
                .and_then(|c| SAME_AS_OPTION.iter().find(|(s, _)| *s == c));
            if let Some(long) = arg.get_long() {
                let same_name = DEFS.iter().any(|d| d.name.eq_ignore_ascii_case(long));
                assert!(
                    !same_name || alias.is_some_and(|(_, o)| o.eq_ignore_ascii_case(long)),
                    "--{long} is also an -o option: list it in SAME_AS_OPTION"
                );
            }
            if let Some((short, option)) = alias
                && help.contains("-o ")
            {
                assert!(
                    help.contains(&format!("-o {option}")),
                    "-{short}'s help names another option than -o {option}: {help}"
                );
            }
            for (at, _) in help.match_indices("-o ") {
                let named: String = help[at + 3..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    named == "OPT" || def_help(&named).is_some(),
                    "{id}'s help names -o {named}, which the table does not have"
                );
            }
        }
        for (short, option) in SAME_AS_OPTION {
            let help = def_help(option).unwrap_or_else(|| panic!("no -o {option} in the table"));
            assert!(
                help.contains(&format!("-{short})")) || help.contains(&format!("-{short} ")),
                "-o {option}'s help does not name -{short}: {help}"
            );
            assert!(
                cmd.get_arguments().any(|a| a.get_short() == Some(short)),
                "no flag -{short}"
            );
        }
        for d in DEFS {
            for marker in ["same as -", "also -"] {
                if let Some(at) = d.help.find(marker) {
                    let flag = d.help[at + marker.len()..].chars().next();
                    assert!(
                        SAME_AS_OPTION
                            .iter()
                            .any(|(s, o)| Some(*s) == flag && *o == d.name),
                        "-o {}'s help names a flag not in SAME_AS_OPTION",
                        d.name
                    );
                }
            }
        }
    }
}
