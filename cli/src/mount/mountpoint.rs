//! Checks of the mountpoint made before connecting, and reading /proc/self/mountinfo.

use std::path::{Path, PathBuf};

use sshfs_client::os_message::os_message;

/// Checks the mountpoint before connecting: it exists, is a directory, is not mounted already.
/// Returns its absolute form (the daemon leaves the working directory).
pub fn check_mountpoint(p: &Path) -> Result<PathBuf, String> {
    let shown = p.display();
    if p.starts_with("/dev/fd") {
        return Err(format!(
            "mountpoint {shown}: mounting on a /dev/fuse descriptor passed in (mount.fuse3's drop_privileges) is not supported; mount without drop_privileges"
        ));
    }
    // A dead FUSE mount (its daemon killed) answers ENOTCONN; `canonicalize` may not notice it
    // (realpath does not stat the last component), so every step names the fix the same way.
    let fail = |e: std::io::Error| {
        if e.raw_os_error() == Some(libc::ENOTCONN) {
            format!(
                "mountpoint {shown}: a dead mount is still there (Transport endpoint is not connected); unmount it with: fusermount3 -u {shown}"
            )
        } else {
            format!("mountpoint {shown}: {}", os_message(&e))
        }
    };
    let abs = std::fs::canonicalize(p).map_err(fail)?;
    let meta = std::fs::metadata(&abs).map_err(fail)?;
    if !meta.is_dir() {
        return Err(format!("mountpoint {shown}: Not a directory"));
    }
    if is_mounted(&abs) {
        return Err(format!(
            "mountpoint {shown} is already mounted; unmount it first (fusermount3 -u {shown})"
        ));
    }
    Ok(abs)
}

/// Whether something is mounted exactly on `path` (from /proc/self/mountinfo).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| Path::new(&unescape_mountinfo(m)) == path)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
pub fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/tmp/a\\040b"), "/tmp/a b");
        assert_eq!(unescape_mountinfo("/x\\134y"), "/x\\y");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
