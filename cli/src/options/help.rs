//! Text made from the option table: the `-o` part of `--help`, the words of the man page and
//! the shell completions, and the "sshfs option -> sshfs-rs" table of docs/options.md.

#[cfg(test)]
use super::table::{Any, Flag, List, Optional, Own, Required};
use super::table::{DEFS, Does, Ignore, Nothing, Refuse, Set};

/// Every `-o` option as users see it (`name` or `name=VALUE`) and what it does (for the man
/// page, which a test makes).
#[cfg(test)]
pub fn documented() -> impl Iterator<Item = (String, &'static str)> {
    DEFS.iter().map(|d| (d.shown(), d.help))
}

/// The `-o` options for shell completion: `name=` for those that take a value, `name` for the
/// others, with their help (the `x-*` family has no single name to offer).
#[cfg(test)]
pub fn completion_words() -> impl Iterator<Item = (String, &'static str)> {
    DEFS.iter()
        .filter(|d| !d.name.ends_with('*'))
        .map(|d| match d.value {
            Required(_) | List(_) => (format!("{}=", d.name), d.help),
            Flag | Optional(_) | Any => (d.name.to_owned(), d.help),
        })
}

/// The `-o` part of `--help`, made from the definitions: what works in full, then the names
/// that are only accepted, and those refused.
pub fn help_text() -> String {
    let mut s = String::from("Mount options (-o name[=value][,name[=value]...]; repeatable):\n");
    for d in DEFS.iter().filter(|d| matches!(d.does, Set(_))) {
        s.push_str(&format!("  {:<42} {}\n", d.shown(), d.help));
    }
    let names = |pick: fn(&Does) -> bool| {
        DEFS.iter()
            .filter(|d| pick(&d.does))
            .map(|d| d.name)
            .collect::<Vec<_>>()
            .join(" ")
    };
    s.push_str(&wrap(
        "Accepted for sshfs and mount(8) compatibility, with no effect (see the man page):",
        &names(|d| matches!(d, Nothing(_) | Ignore)),
    ));
    s.push_str(&wrap(
        "Refused, each with the reason:",
        &names(|d| matches!(d, Refuse(_))),
    ));
    s
}

/// `head` followed by the words of `list`, wrapped at 100 columns and indented.
fn wrap(head: &str, list: &str) -> String {
    let mut out = format!("\n{head}\n ");
    let mut col = 1;
    for word in list.split(' ') {
        if col + word.len() + 1 > 100 {
            out.push_str("\n ");
            col = 1;
        }
        out.push(' ');
        out.push_str(word);
        col += word.len() + 1;
    }
    out.push('\n');
    out
}

/// The "sshfs option -> sshfs-rs" table of docs/options.md (Markdown): every option of the C
/// sshfs, libfuse and mount(8) with its answer (written and checked by a test).
#[cfg(test)]
pub fn sshfs_table() -> String {
    let mut s = String::from("| sshfs option | sshfs-rs | |\n|---|---|---|\n");
    for d in DEFS.iter().filter(|d| d.origin != Own) {
        let why = match d.does {
            Refuse(why) => why,
            _ => d.help,
        };
        s.push_str(&format!(
            "| `{}` | {} | {} |\n",
            d.shown().replace('|', "\\|"),
            d.verdict(),
            why.replace('|', "\\|")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_option() {
        let h = help_text();
        for d in DEFS {
            assert!(h.contains(d.name), "{} missing from help", d.name);
        }
    }
}
