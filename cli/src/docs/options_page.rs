//! docs/options.md's "sshfs option -> sshfs-rs" table, made from the option table and checked
//! by a test.

#![allow(clippy::unwrap_used)]

#[cfg(test)]
mod tests {
    use crate::options::help::sshfs_table;

    /// docs/options.md holds the table made by [`sshfs_table`] between two marker lines;
    /// `SSHFS_RS_WRITE_DOCS=1 cargo test -p sshfs-rs options_table` writes it anew.
    #[test]
    fn options_table_in_docs_is_current() {
        const BEGIN: &str = "<!-- BEGIN sshfs-options: made by `SSHFS_RS_WRITE_DOCS=1 cargo test -p sshfs-rs options_table` from cli/src/options/table.rs -->\n";
        const END: &str = "<!-- END sshfs-options -->\n";
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/options.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let (head, rest) = doc
            .split_once(BEGIN)
            .expect("BEGIN marker in docs/options.md");
        let (old, tail) = rest.split_once(END).expect("END marker in docs/options.md");
        let table = sshfs_table();
        if std::env::var_os("SSHFS_RS_WRITE_DOCS").is_some() && old != table {
            std::fs::write(&path, format!("{head}{BEGIN}{table}{END}{tail}")).unwrap();
            return;
        }
        assert!(
            old == table,
            "the sshfs option table in docs/options.md is out of date: run SSHFS_RS_WRITE_DOCS=1 cargo test -p sshfs-rs options_table"
        );
    }
}
