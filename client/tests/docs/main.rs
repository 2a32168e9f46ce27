//! The docs that copy the code, held to it: docs/errno.md's status table to
//! `client/src/fs/errno.rs` ([`errno_md`]), docs/architecture.md's module table to the files of
//! the three packages ([`architecture_md`]). The round trips docs/SEMANTICS.md promises are
//! counted by `client/src/fs/memory_tests/round_trips.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod architecture_md;
mod errno_md;

use std::path::{Path, PathBuf};

/// The workspace's root directory.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("client/ has a parent")
        .to_path_buf()
}

/// The text of a file of the workspace (`docs/errno.md`).
fn doc(path: &str) -> String {
    let full = workspace().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The rows of the Markdown table whose header line is `header`, each as its trimmed cells.
fn table_rows(text: &str, header: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip_while(|l| l.trim() != header)
        .skip(2) // the header and the |---| line
        .take_while(|l| l.trim_start().starts_with('|'))
        .map(|l| {
            let l = l.trim().trim_start_matches('|').trim_end_matches('|');
            l.split('|').map(|c| c.trim().to_owned()).collect()
        })
        .collect()
}

/// The words between backticks in `cell`, in order.
fn ticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}
