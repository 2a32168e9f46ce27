//! The documents made from the tables, each checked by a test that writes it anew on request:
//! the man page ([`man`]), shell completions ([`completions`]), docs/options.md
//! ([`options_page`]) and docs/ssh.md's keyword table ([`ssh_page`]).

mod completions;
mod man;
mod options_page;
mod ssh_page;
