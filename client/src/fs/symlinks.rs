//! The C sshfs's link options: `follow_symlinks` (the kernel sees what a symlink points to),
//! `transform_symlinks` (absolute targets inside the mounted tree shown as relative ones),
//! `contain_symlinks` (targets that could lead out of the mount refused) and
//! `disable_hardlink` (link(2) fails with ENOSYS).
//!
//! The options and the target rewriting are pure ([`LinkOptions::shown_target`],
//! [`transform`], [`contained`]); the filesystem applies them in READLINK, and follows symlinks
//! wherever the kernel is shown a file's attributes by path ([`super::follow`]), so that with
//! `follow_symlinks` it never sees a symlink it could follow itself.

use super::errno::{FsError, FsResult};

/// How symlinks and hard links are shown and made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkOptions {
    /// `follow_symlinks`: the server resolves symlinks (STAT instead of LSTAT); a symlink whose
    /// target does not exist is still shown as a symlink.
    pub follow: bool,
    /// `transform_symlinks`: an absolute target inside the mounted directory is shown relative
    /// to the link, so it still points into the mount.
    pub transform: bool,
    /// `contain_symlinks`: READLINK of an absolute target, or one with a `..` component, fails
    /// with EPERM (after `transform`).
    pub contain: bool,
    /// `disable_hardlink`: link(2) fails with ENOSYS even when the server could make one.
    pub no_hardlinks: bool,
}

impl LinkOptions {
    /// The target READLINK shows for the link at `rel` (relative to the mount root, the
    /// server's directory `root`), whose target on the server is `target`: transformed and
    /// checked as the options say.
    pub fn shown_target(&self, root: &str, rel: &str, target: String) -> FsResult<String> {
        let target = match self.transform {
            true => transform(&target, root, rel).unwrap_or(target),
            false => target,
        };
        if self.contain && !contained(&target) {
            return Err(FsError::new(
                libc::EPERM,
                format!("symlink {rel} points outside its directory ({target}): contain_symlinks"),
            ));
        }
        Ok(target)
    }
}

/// The components of a path, without empty ones (`//`) or `.`.
fn components(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

/// `target`, an absolute symlink target, rewritten relative to the link at `link_rel` (its path
/// relative to the mount root) when it points inside `root` (the mounted directory); `None`
/// when it stays as it is. As the C sshfs's `transform_symlink`: the part of the target inside
/// the mount, after as many `../` as the link's directory is deep below their common prefix.
pub fn transform(target: &str, root: &str, link_rel: &str) -> Option<String> {
    if !target.starts_with('/') || !root.starts_with('/') {
        return None;
    }
    let target = components(target);
    let root = components(root);
    let inside = target.strip_prefix(root.as_slice())?;
    let link = components(link_rel);
    let common = inside.iter().zip(&link).take_while(|(a, b)| a == b).count();
    let (inside, link) = (&inside[common..], &link[common..]);
    // The link's own name is not a directory to climb out of.
    let up = link.len().checked_sub(1)?;
    let mut out = "../".repeat(up);
    if inside.is_empty() {
        if up == 0 {
            out.push('.');
        } else {
            out.pop();
        }
    } else {
        out.push_str(&inside.join("/"));
    }
    Some(out)
}

/// Whether `target` stays inside the directory its link is in, as far as its text tells: not
/// absolute and no `..` component. (Lexical: the server controls every component, so a `..`
/// is refused rather than resolved.)
pub fn contained(target: &str) -> bool {
    !target.starts_with('/') && !target.split('/').any(|c| c == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_targets_inside_the_mount_become_relative() {
        let root = "/home/u/proj";
        assert_eq!(
            transform("/home/u/proj/a/c/f", root, "a/b/l").as_deref(),
            Some("../c/f")
        );
        assert_eq!(transform("/home/u/proj/x", root, "l").as_deref(), Some("x"));
        assert_eq!(
            transform("/home/u/proj/a/b", root, "a/l").as_deref(),
            Some("b")
        );
        assert_eq!(
            transform("/home/u/proj/x/y", root, "a/b/l").as_deref(),
            Some("../../x/y")
        );
        // The mount root itself, and the link's own directory.
        assert_eq!(
            transform("/home/u/proj", root, "a/b/l").as_deref(),
            Some("../..")
        );
        assert_eq!(
            transform("/home/u/proj/a", root, "a/l").as_deref(),
            Some(".")
        );
        assert_eq!(
            transform("/home/u/proj//a/./c", root, "a/b/l").as_deref(),
            Some("../c")
        );
    }

    #[test]
    fn targets_outside_the_mount_or_relative_stay() {
        let root = "/home/u/proj";
        assert_eq!(transform("/etc/passwd", root, "a/l"), None);
        assert_eq!(transform("/home/u/project/x", root, "a/l"), None);
        assert_eq!(transform("../x", root, "a/l"), None);
        assert_eq!(transform("x", root, "a/l"), None);
    }

    #[test]
    fn contained_refuses_absolute_and_dotdot() {
        assert!(contained("x"));
        assert!(contained("a/b/c"));
        assert!(contained("./a..b"));
        assert!(!contained("/etc/passwd"));
        assert!(!contained("../x"));
        assert!(!contained("a/../../x"));
        assert!(!contained(".."));
    }
}
