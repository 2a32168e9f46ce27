//! docs/options.md, made whole: clap's flags and the `-o` table give the tables, the prose
//! around them is here. A test compares the page with the committed file;
//! `SSHFS_RS_WRITE_DOCS=1 cargo test -p sshfs-rs options_table` writes it anew.

#![allow(clippy::unwrap_used)]

use crate::options::args;
use crate::options::help::sshfs_table;
use crate::options::table::{DEFS, Does, Origin};

/// The title and what the page is.
const INTRO: &str = r#"# Options

<!-- Made whole by `SSHFS_RS_WRITE_DOCS=1 cargo test -p sshfs-rs options_table` from cli/src/options/ (the -o table, clap's flags) and the prose in cli/src/docs/options_page.rs: edit those, not this file. -->

`sshfs-rs [OPTIONS] [user@]host:[path] MOUNTPOINT` — options may come before or after the two
positional arguments, and `-o` may be repeated and take comma-separated lists, as with sshfs.
An option sshfs-rs does not know, or a value it cannot use, is an error that names it. Every
option of the C sshfs has an answer (the last table below): implemented, accepted with no effect
(each says why that is honest), or refused with the reason; fstab's words for mount(8) are
skipped. `--help`, the man page, the parser and this page are all made from one table,
`cli/src/options/table.rs`, and clap's flags in `cli/src/options/args.rs`.
"#;

/// The source argument.
const SOURCE: &str = r#"## The source
`[user@]host:[path]`: an empty path mounts the remote user's home directory; a relative path is
relative to it. IPv6 addresses go in brackets: `[2001:db8::1]:/srv`. The path must exist and be
a directory, or nothing is mounted.
"#;

/// Before the table of SSH options: precedence.
const SSH_BEFORE: &str = r#"## SSH options (named as in OpenSSH, case-insensitive)
Precedence: the command line, then ssh_config (`-F FILE` or `~/.ssh/config`, then
`/etc/ssh/ssh_config`; first value wins; [ssh.md](ssh.md) says what happens to every ssh_config
keyword), then the default.
"#;

/// After the table of SSH options: other ssh options, authentication, password_stdin.
const SSH_AFTER: &str = r#"Any other option `ssh` takes (`ControlMaster`, `GSSAPIAuthentication`, ...) is accepted only
together with `ssh_command` (below), and passed on to that ssh with the ones above; without it,
it is refused with a line that says so.

Authentication runs in OpenSSH's order: ssh-agent (`SSH_AUTH_SOCK`), the identity files,
keyboard-interactive, password. When all fail the error lists what was tried and why each
failed (refused by the server; a key that needs a passphrase with no one to ask; ...).

`-o password_stdin` (as in sshfs) reads one line from stdin before going to the background and
answers the password prompts of the login with it (password and keyboard-interactive
"Password:"), also in batch mode and as a mount helper; a refused one is not sent again. Like a
password typed on the terminal, it is kept in the process's memory only (never on disk, in argv,
the environment or logs) so that a reconnect logs in without asking.
"#;

/// Before the table of sshfs's options.
const SSHFS_BEFORE: &str = r#"## sshfs's options
The options of the C sshfs that sshfs-rs implements. `ssh_command`, `sftp_server`, `directport`
and `passive` reach the server another way than our own SSH connection, as the C sshfs does
(details in [ssh.md](ssh.md#running-ssh-itself--o-ssh_command)); the cache options keep sshfs's
names and defaults (see [cache.md](cache.md)).
"#;

/// The mount helper, the environment and signals.
const HELPER_ENV_SIGNALS: &str = r#"## The mount helper
Started as `mount.fuse.sshfs-rs` (the link `scripts/install.sh` puts in /sbin, where mount(8)
looks for helpers), sshfs-rs takes mount(8)'s call form
`mount.fuse.sshfs-rs SOURCE MOUNTPOINT [-n] [-s] [-f] [-v] [-o OPTIONS] [-t TYPE]`, so
`mount -t fuse.sshfs-rs`, fstab lines, systemd mount units and autofs maps work. The flags mean
what mount(8) means by them: `-n` (no /etc/mtab) has no effect, `-s` (sloppy) skips unknown
options with a warning instead of refusing them, `-f` (fake) checks the options and the
mountpoint and mounts nothing, `-v` logs the steps of connecting; `-N` (another namespace) is
refused. The helper never prompts (`BatchMode=yes` whatever the options say), goes to the
background once the mount is live with stdin, stdout and stderr on /dev/null, and a failure is one
line on stderr and exit status 1. A `/dev/fd/N` mountpoint (mount.fuse3's `drop_privileges`) is
refused with a message. mount(8) gives helpers neither `PATH` nor `HOME`: name key and known_hosts
files in full.

## Environment
| variable | meaning |
|---|---|
| `SSHFS_RS_LOG` | log filter (tracing `EnvFilter` syntax), e.g. `sshfs_client=debug` |
| `SSH_AUTH_SOCK` | ssh-agent to use |
| `HOME` | where `~/.ssh` is |

## Signals (to the running daemon)
| signal | effect |
|---|---|
| SIGTERM, SIGINT | unmount and exit |
| SIGHUP | drop every cache (same as `--flush`) |
| SIGUSR1 | print the SFTP request and cache counters on stderr (visible in the foreground; `--stats` works always) |
"#;

/// Before the "sshfs option -> sshfs-rs" table.
const SSHFS_TABLE_BEFORE: &str = r#"## sshfs option -> sshfs-rs
Every option the C sshfs lists (`sshfs -h`, `man sshfs`, with the libfuse options it passes on),
the kernel flags mount(8) passes to a helper, and the fstab words meant for mount(8) itself, each
with one of three answers: **implemented**; **accepted, no effect** (and why that is honest);
**refused** (with the message's reason). An option in none of these tables is refused as unknown.
This table is made from the same definitions as the parser (`cli/src/options/table.rs`) and a test
keeps it current.

"#;

/// What the page says about a flag beyond its `--help` line: (clap's id, more).
const FLAG_NOTES: &[(&str, &str)] = &[
    ("port", "wins over `-o Port` and ssh_config"),
    ("ssh_config", "`-F /dev/null`: none"),
    ("foreground", "SIGINT/SIGTERM unmount and exit"),
    ("debug", "the request counters are printed at exit"),
    (
        "stats",
        "the SFTP request counts by kind, the link (`state=up|down(Ns)|gave-up`, `epoch`, the SFTP `channels` open and the SSH `connections` they use, `reconnects`, `reopened`, `reopen-failed`), the server handles it holds open and `handle-misuse` (requests refused because they named a handle not open: always 0 unless there is a bug), cache hits/misses/entries, open-ahead counts",
    ),
];

/// The `-o` sections: which options each lists, its heading and the prose before its table.
const SECTIONS: [(Origin, &str); 5] = [
    (Origin::Ssh, SSH_BEFORE),
    (Origin::Sshfs, SSHFS_BEFORE),
    (
        Origin::Fuse,
        "## FUSE mount options\nlibfuse's options, as sshfs passes them on.\n",
    ),
    (
        Origin::Kernel,
        "## Kernel mount flags\nThe flags mount(8) passes on to a helper (and `-o` takes too).\n",
    ),
    (Origin::Own, "## sshfs-rs's own options\n"),
];

/// A Markdown table cell: `|` escaped.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The flags table, from clap's arguments (the positional ones are the source and mountpoint).
fn flags_table() -> String {
    let mut cmd = args::command();
    cmd.build();
    let mut s = String::from("## Command-line flags\n| flag | meaning |\n|---|---|\n");
    for arg in cmd.get_arguments().filter(|a| !a.is_positional()) {
        let value = arg
            .get_value_names()
            .filter(|_| arg.get_action().takes_values())
            .map(|v| format!(" {}", v.join(" ")))
            .unwrap_or_default();
        let mut names = Vec::new();
        if let Some(c) = arg.get_short() {
            names.push(format!("`-{c}{value}`"));
        }
        if let Some(l) = arg.get_long() {
            names.push(format!("`--{l}{value}`"));
        }
        let id = arg.get_id().as_str();
        let mut meaning = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        if let Some((_, more)) = FLAG_NOTES.iter().find(|(i, _)| *i == id) {
            meaning.push_str("; ");
            meaning.push_str(more);
        }
        s.push_str(&format!("| {} | {} |\n", names.join(", "), cell(&meaning)));
    }
    s
}

/// The table of the implemented `-o` options of one origin.
fn option_table(origin: Origin) -> String {
    let mut s = String::from("| option | default | meaning |\n|---|---|---|\n");
    for d in DEFS
        .iter()
        .filter(|d| d.origin == origin && matches!(d.does, Does::Set(_)))
    {
        let meaning = if d.doc.is_empty() { d.help } else { d.doc };
        s.push_str(&format!(
            "| `{}` | {} | {} |\n",
            cell(&d.shown()),
            cell(d.default),
            cell(meaning)
        ));
    }
    s
}

/// The whole page.
pub fn page() -> String {
    let mut s = [INTRO, SOURCE, &flags_table()].join("\n");
    for (origin, before) in SECTIONS {
        s.push('\n');
        s.push_str(before);
        s.push('\n');
        s.push_str(&option_table(origin));
        if origin == Origin::Ssh {
            s.push('\n');
            s.push_str(SSH_AFTER);
        }
    }
    s.push('\n');
    s.push_str(HELPER_ENV_SIGNALS);
    s.push('\n');
    s.push_str(SSHFS_TABLE_BEFORE);
    s.push('\n');
    // The end-to-end test of the mount helper reads the table between these markers.
    s.push_str("<!-- BEGIN sshfs-options -->\n");
    s.push_str(&sshfs_table());
    s.push_str("<!-- END sshfs-options -->\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/options.md is [`page`], whole; `SSHFS_RS_WRITE_DOCS=1 cargo test -p sshfs-rs
    /// options_table` writes it anew.
    #[test]
    fn options_table_in_docs_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/options.md");
        let old = std::fs::read_to_string(&path).unwrap();
        let page = page();
        if std::env::var_os("SSHFS_RS_WRITE_DOCS").is_some() && old != page {
            std::fs::write(&path, &page).unwrap();
            return;
        }
        assert!(
            old == page,
            "docs/options.md is out of date: run SSHFS_RS_WRITE_DOCS=1 cargo test -p sshfs-rs options_table"
        );
    }

    #[test]
    fn flag_notes_name_flags() {
        let cmd = args::command();
        for (id, _) in FLAG_NOTES {
            assert!(
                cmd.get_arguments().any(|a| a.get_id() == *id),
                "FLAG_NOTES names {id}, which is not a flag"
            );
        }
    }
}
