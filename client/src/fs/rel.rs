//! Paths relative to the mount root ("" is the root): the keys of the metadata cache and of
//! everything the filesystem remembers by name.

/// `rel/name` ("" is the root).
pub fn join_rel(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_owned()
    } else {
        format!("{rel}/{name}")
    }
}

/// ("dir", "name") of a relative path; the root's parent is itself.
pub fn split_rel(rel: &str) -> (&str, &str) {
    match rel.rsplit_once('/') {
        Some((dir, name)) => (dir, name),
        None => ("", rel),
    }
}

#[cfg(test)]
mod tests {
    use super::{join_rel, split_rel};

    #[test]
    fn split() {
        assert_eq!(split_rel("a/b/c"), ("a/b", "c"));
        assert_eq!(split_rel("a"), ("", "a"));
        assert_eq!(split_rel(""), ("", ""));
    }

    #[test]
    fn join() {
        assert_eq!(join_rel("", "a"), "a");
        assert_eq!(join_rel("a/b", "c"), "a/b/c");
    }
}
