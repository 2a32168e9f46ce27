//! docs/architecture.md's module table ("Where each module lives") against the tree: every
//! `.rs` file under `cache/src`, `client/src` and `cli/src` has a row, or sits in a folder that
//! has one (a path ending in `/`), and every row names something that exists. Test-only files
//! are not left out: they are named like the others, or by their folder.

use std::path::Path;

use super::{doc, table_rows, ticked, workspace};

/// The folders whose files the table lists.
const ROOTS: [&str; 3] = ["cache/src", "client/src", "cli/src"];

/// The section of docs/architecture.md that holds the table, and the table's header.
const SECTION: &str = "## Where each module lives";
const HEADER: &str = "| module | its job |";

/// Every `.rs` file below `dir` (relative to the workspace, with `/`), in `out`.
fn rust_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(root, &path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            let rel = path.strip_prefix(root).unwrap();
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// The first line of a file's `//!` doc, as a proposed job for its row.
fn first_doc_line(path: &str) -> String {
    let text = std::fs::read_to_string(workspace().join(path)).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("//!"))
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "(no //! doc: say its job)".to_owned())
}

#[test]
fn architecture_md_names_every_module() {
    let root = workspace();
    let mut files = Vec::new();
    for dir in ROOTS {
        rust_files(&root, &root.join(dir), &mut files);
    }
    files.sort();

    let text = doc("docs/architecture.md");
    let section = text
        .split_once(SECTION)
        .map(|(_, rest)| rest.split("\n## ").next().unwrap_or(rest))
        .unwrap_or_else(|| panic!("docs/architecture.md has no section \"{SECTION}\""));
    let named: Vec<String> = table_rows(section, HEADER)
        .iter()
        .filter_map(|row| ticked(&row[0]).into_iter().next())
        .collect();
    assert!(
        !named.is_empty(),
        "docs/architecture.md: no table \"{HEADER}\" under \"{SECTION}\""
    );

    let covers = |name: &str, file: &str| match name.strip_suffix('/') {
        Some(folder) => file.starts_with(&format!("{folder}/")),
        None => name == file,
    };
    let missing: Vec<&String> = files
        .iter()
        .filter(|f| !named.iter().any(|n| covers(n, f)))
        .collect();
    let mut stale: Vec<String> = named
        .iter()
        .filter(|n| !files.iter().any(|f| covers(n, f)))
        .map(|n| format!("{n} (no such file)"))
        .collect();
    for (i, n) in named.iter().enumerate() {
        if named[..i].contains(n) {
            stale.push(format!("{n} (named twice)"));
        }
        if let Some(folder) = named
            .iter()
            .find(|m| *m != n && m.ends_with('/') && covers(m, n))
        {
            stale.push(format!("{n} (inside {folder}, which is named whole)"));
        }
    }

    let mut message = String::new();
    if !missing.is_empty() {
        message.push_str("add these rows (the job proposed is the file's first //! line):\n");
        for f in &missing {
            message.push_str(&format!("| `{f}` | {} |\n", first_doc_line(f)));
        }
    }
    if !stale.is_empty() {
        message.push_str("remove (or correct) the rows of:\n");
        for s in &stale {
            message.push_str(&format!("  {s}\n"));
        }
    }
    assert!(
        message.is_empty(),
        "docs/architecture.md, \"{SECTION}\", is out of step with the tree; {message}"
    );
}
