//! Where ssh_config is read from (`-F FILE`, else the user's and the system's files), and the
//! home directory and local user its `~` and `%u` stand for.

use std::path::PathBuf;

use crate::options::args::Args;
use crate::ssh::ssh_config;

/// The user's home directory.
pub fn home_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map_or_else(|| PathBuf::from("/"), |u| u.dir)
}

pub(super) fn local_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".to_owned())
}

/// The ssh_config files to read: `-F FILE`, else `~/.ssh/config` then `/etc/ssh/ssh_config`.
pub(super) fn ssh_sources(args: &Args) -> ssh_config::Sources {
    let home = home_dir();
    ssh_config::Sources {
        user_file: args
            .ssh_config
            .clone()
            .unwrap_or_else(|| home.join(".ssh/config")),
        // As ssh: -F replaces both the user's and the system's file.
        system_file: args
            .ssh_config
            .is_none()
            .then(|| PathBuf::from("/etc/ssh/ssh_config")),
        home,
        local_user: local_user(),
    }
}

/// The ssh_config files to read for this mount: none when an external ssh reads its own.
pub(super) fn mount_sources(args: &Args, external: bool) -> ssh_config::Sources {
    if !external {
        return ssh_sources(args);
    }
    ssh_config::Sources {
        user_file: PathBuf::from("/dev/null"),
        system_file: None,
        home: home_dir(),
        local_user: local_user(),
    }
}
