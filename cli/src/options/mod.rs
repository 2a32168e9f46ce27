//! Everything the user can say on the command line and nothing that acts on it: clap's flags
//! ([`args`]), the one table of `-o` options ([`table`]), parsing them into [`MountOpts`]
//! ([`parse`]), the value parsers shared with ssh_config ([`values`]), the text made from the
//! table ([`help`]) and OpenSSH's keyword table ([`ssh_keywords`]). No I/O.
//!
//! [`MountOpts`]: mount_opts::MountOpts

pub mod args;
pub mod help;
pub mod mount_opts;
pub mod parse;
pub mod ssh_keywords;
pub mod table;
pub mod values;
