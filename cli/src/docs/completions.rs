//! Shell completions (bash, zsh, fish) in completions/: made by clap_complete from the same
//! clap definitions as `--help`, with the `-o` option names of the options table offered as the
//! values of `-o`. A test compares them with the committed files;
//! `SSHFS_RS_WRITE_MAN=1 cargo test -p sshfs-rs man_page` writes them anew with the man page.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use clap::builder::{PossibleValue, PossibleValuesParser};
use clap_complete::Shell;

use crate::options::{args, help};

/// The shells, and the file each one's script is installed as.
const SCRIPTS: &[(Shell, &str)] = &[
    (Shell::Bash, "sshfs-rs.bash"),
    (Shell::Zsh, "_sshfs-rs"),
    (Shell::Fish, "sshfs-rs.fish"),
];

/// The command as completion sees it: `-o` offers the option names. (Only here: the real
/// parser takes any comma-separated list and checks it with the options table.)
fn command() -> clap::Command {
    let words: Vec<PossibleValue> = help::completion_words()
        // clap keeps 'static strings; this runs once per test.
        .map(|(word, help)| PossibleValue::new(&*word.leak()).help(help))
        .collect();
    args::command().mut_arg("options", |a| {
        a.value_parser(PossibleValuesParser::new(words))
    })
}

/// One shell's completion script.
fn script(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command(), "sshfs-rs", &mut out);
    out
}

#[test]
fn man_page_completions_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../completions");
    let write = std::env::var_os("SSHFS_RS_WRITE_MAN").is_some();
    for (shell, file) in SCRIPTS {
        let path = dir.join(file);
        let made = script(*shell);
        let text = String::from_utf8_lossy(&made);
        for name in [
            "IdentityFile=",
            "auto_unmount",
            "reconnect",
            "cache_timeout=",
        ] {
            assert!(text.contains(name), "{shell}: no {name} in the completions");
        }
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &made).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == made,
            "completions/{file} is out of date: run SSHFS_RS_WRITE_MAN=1 cargo test -p sshfs-rs man_page"
        );
    }
}
