//! The man page, docs/sshfs-rs.1: made from the same definitions as `--help` (clap's arguments
//! and the `-o` table), so the two cannot drift apart. A test compares it with the committed
//! file; after changing an option, `SSHFS_RS_WRITE_MAN=1 cargo test -p sshfs-rs man_page`
//! writes it anew.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use clap::CommandFactory;
use roff::{Roff, bold, italic, roman};

use crate::options::args::Args;
use crate::options::help;

const DESCRIPTION: &str = "sshfs-rs mounts SOURCE, a directory [user@]host:[path] of an SSH server \
(the remote home when path is empty), on MOUNTPOINT through FUSE, speaking SFTP to the server (any OpenSSH works). It takes the C sshfs's command \
line. Data written through the mount is on the server when close() or fsync() returns. A process \
blocked on the mount can always be interrupted or killed: each request has a deadline, and a \
signal cancels the network request behind it. Attributes, names and listings are cached (20 s \
by default, as sshfs), and the kernel is told when the server is seen to have changed. Without \
-f or -d, sshfs-rs returns once the mount is ready and keeps serving it in the background.";

/// (signal, effect) for the SIGNALS section.
const SIGNALS: &[(&str, &str)] = &[
    ("SIGTERM, SIGINT", "unmount and exit"),
    ("SIGHUP", "drop every cache (as --flush)"),
    (
        "SIGUSR1",
        "print the SFTP request and cache counters on stderr",
    ),
];

/// (variable, meaning) for the ENVIRONMENT section.
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "SSHFS_RS_LOG",
        "log filter (tracing EnvFilter syntax), e.g. sshfs_client=debug",
    ),
    (
        "SSHFS_RS_SYSLOG_SOCKET",
        "the system log's socket a mount in the background logs to (default /dev/log)",
    ),
    ("SSH_AUTH_SOCK", "the ssh-agent to authenticate with"),
    ("HOME", "where ~/.ssh is"),
];

const FILES: &[(&str, &str)] = &[
    (
        "~/.ssh/config",
        "host aliases, users, ports and identity files (or the file of -F)",
    ),
    (
        "~/.ssh/known_hosts, /etc/ssh/ssh_known_hosts",
        "known host keys",
    ),
    (
        "/run/sshfs-rs/, $XDG_RUNTIME_DIR/sshfs-rs/, /tmp/sshfs-rs-UID/",
        "the control sockets --flush and --stats use",
    ),
];

const EXAMPLES: &[(&str, &str)] = &[
    (
        "sshfs-rs me@build:/src ~/src",
        "mount /src of host build on ~/src",
    ),
    (
        "sshfs-rs build: ~/home -o ro,IdentityFile=~/.ssh/ci",
        "its home, read-only, with that key",
    ),
    (
        "sshfs-rs --flush ~/src",
        "see changes made on the server at once",
    ),
    ("fusermount3 -u ~/src", "unmount"),
];

fn definitions(page: &mut Roff, title: &str, items: impl IntoIterator<Item = (String, String)>) {
    page.control("SH", [title]);
    for (term, text) in items {
        page.control("TP", [])
            .text([bold(term)])
            .text([roman(text)]);
    }
}

fn owned<'a>(items: &'a [(&str, &str)]) -> impl Iterator<Item = (String, String)> + 'a {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
}

/// The SYNOPSIS: every flag with the name of its value (clap_mangen's leaves the values out),
/// then the two control forms and the mount helper's form.
fn synopsis() -> Roff {
    let mut cmd = Args::command();
    cmd.build();
    let mut line = vec![bold("sshfs-rs")];
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if arg.is_positional() || arg.is_hide_set() || id == "flush" || id == "stats" {
            continue;
        }
        let flag = match (arg.get_short(), arg.get_long()) {
            (Some(c), _) => format!("-{c}"),
            (None, Some(l)) => format!("--{l}"),
            (None, None) => continue,
        };
        line.push(roman(" ["));
        line.push(bold(flag));
        if arg.get_action().takes_values() {
            let names = arg.get_value_names().unwrap_or_default();
            let value = names
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            line.push(roman(" "));
            line.push(italic(value));
        }
        line.push(roman("]"));
    }
    for positional in ["SOURCE", "MOUNTPOINT"] {
        line.push(roman(" "));
        line.push(italic(positional));
    }
    let mut page = Roff::new();
    page.control("SH", ["SYNOPSIS"]).text(line);
    for flag in ["--flush", "--stats"] {
        page.control("br", []).text([
            bold("sshfs-rs"),
            roman(" "),
            bold(flag),
            roman(" "),
            italic("MOUNTPOINT"),
        ]);
    }
    page.control("br", []).text([
        bold(crate::mount::helper::NAME),
        roman(" "),
        italic("SOURCE"),
        roman(" "),
        italic("MOUNTPOINT"),
        roman(" [-n] [-s] [-f] [-v] [-o "),
        italic("OPTIONS"),
        roman("]"),
    ]);
    page
}

/// The man page, in roff.
fn man_page() -> Vec<u8> {
    let man = clap_mangen::Man::new(Args::command()).date("2026-11");
    let mut out = Vec::new();
    man.render_title(&mut out).unwrap();
    man.render_name_section(&mut out).unwrap();
    synopsis().to_writer(&mut out).unwrap();
    let mut page = Roff::new();
    page.control("SH", ["DESCRIPTION"])
        .text([roman(DESCRIPTION)]);
    page.to_writer(&mut out).unwrap();
    man.render_options_section(&mut out).unwrap();
    let mut page = Roff::new();
    definitions(
        &mut page,
        "MOUNT OPTIONS",
        help::documented().map(|(shown, help)| (format!("-o {shown}"), help.to_owned())),
    );
    definitions(&mut page, "SIGNALS", owned(SIGNALS));
    definitions(&mut page, "ENVIRONMENT", owned(ENVIRONMENT));
    definitions(&mut page, "FILES", owned(FILES));
    page.control("SH", ["EXIT STATUS"]).text([roman(
        "0 once the mount is ready (or, in the foreground, once it is unmounted); 1 with a one-line \
         error on stderr when it cannot be made, and nothing is left mounted.",
    )]);
    definitions(&mut page, "EXAMPLES", owned(EXAMPLES));
    page.control("SH", ["SEE ALSO"])
        .text([roman("sshfs(1), ssh(1), ssh_config(5), fusermount3(1)")]);
    page.to_writer(&mut out).unwrap();
    man.render_version_section(&mut out).unwrap();
    out
}

#[test]
fn man_page_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/sshfs-rs.1");
    let page = man_page();
    if std::env::var_os("SSHFS_RS_WRITE_MAN").is_some() {
        std::fs::write(&path, &page).unwrap();
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == page,
        "docs/sshfs-rs.1 is out of date: run SSHFS_RS_WRITE_MAN=1 cargo test -p sshfs-rs man_page"
    );
}
