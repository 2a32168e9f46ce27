//! Prompts on the controlling terminal (`/dev/tty`), like OpenSSH: works even when stdin and
//! stdout are redirected, and answers "no terminal" (`None`) when there is none.

use std::io::{BufRead, BufReader, Write};

use sshfs_client::remote::ssh::auth::Prompter;

/// Asks on `/dev/tty`.
pub struct TtyPrompt;

impl Prompter for TtyPrompt {
    fn secret(&self, prompt: &str) -> Option<String> {
        // rpassword reads /dev/tty with echo off and restores the terminal afterwards.
        rpassword::prompt_password(prompt).ok()
    }

    fn ask(&self, prompt: &str) -> Option<String> {
        let mut tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()?;
        tty.write_all(prompt.as_bytes()).ok()?;
        tty.flush().ok()?;
        let mut line = String::new();
        BufReader::new(tty).read_line(&mut line).ok()?;
        Some(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    fn info(&self, message: &str) {
        eprintln!("{message}");
    }
}
