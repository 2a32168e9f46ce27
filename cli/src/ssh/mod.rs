//! Where and how to reach the server: the source argument ([`target`]), ssh_config(5)
//! ([`ssh_config`]) and the command line of an external ssh ([`ssh_command`]).

pub mod ssh_command;
pub mod ssh_config;
pub mod target;
