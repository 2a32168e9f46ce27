//! Stored passwords and passphrases: the OS keyring ([`store`]), the `--store-*` and
//! `--forget-*` commands ([`command`]) and the terminal prompt ([`prompt`]).

pub mod command;
pub mod prompt;
pub mod store;
