//! Path resolution as Linux does it (`path_walk`), and OpenSSH's own `sftp_realpath`.
//!
//! A path is absolute or starts at the working directory; empty components are skipped, `.`
//! stays, `..` goes up (the root's parent is itself). Every directory passed through must be
//! searchable (EACCES) and be a directory (ENOTDIR); a symlink met on the way is followed (at
//! most 40 in one resolution: ELOOP), the last component's only when asked or when a slash
//! follows it. A trailing slash demands a directory.

use super::{Errno, Ino, MAY_EXEC, NAME_MAX, Namespace, PATH_MAX, ROOT, SysResult};
use crate::remote::testing::memory::namespace::{Cred, Kind};

/// Most symlinks followed in one resolution (Linux's `MAXSYMLINKS`).
const MAX_SYMLINKS: u32 = 40;
/// Most symlinks `sftp_realpath` follows (OpenSSH's `SYMLOOP_MAX`).
const SYMLOOP_MAX: u32 = 32;

/// The last component of a path whose parent was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Last {
    /// A name.
    Name(Vec<u8>),
    /// `.`
    Dot,
    /// `..`
    DotDot,
    /// The path is `/` (no last component).
    Root,
}

/// A path split into its resolved parent directory and its last component.
#[derive(Debug, Clone)]
pub(crate) struct Parent {
    /// The directory holding the last component.
    pub(crate) dir: Ino,
    /// The last component.
    pub(crate) last: Last,
    /// The path ended with a slash.
    pub(crate) trailing_slash: bool,
}

impl Parent {
    /// The name, or the errno `otherwise` gives for `.`, `..` and `/`.
    pub(crate) fn name(&self, otherwise: impl Fn(&Last) -> i32) -> SysResult<&[u8]> {
        match &self.last {
            Last::Name(n) => Ok(n),
            other => Err(Errno(otherwise(other))),
        }
    }
}

impl Namespace {
    /// The inode `path` names, following a final symlink if `follow` (stat, open) or not
    /// (lstat, readlink).
    pub(crate) fn resolve(&self, cred: &Cred, path: &[u8], follow: bool) -> SysResult<Ino> {
        let mut links = 0;
        self.walk_from(cred, self.cwd, path, follow, &mut links)
    }

    fn walk_from(
        &self,
        cred: &Cred,
        start: Ino,
        path: &[u8],
        follow_last: bool,
        links: &mut u32,
    ) -> SysResult<Ino> {
        if path.is_empty() {
            return Err(Errno(libc::ENOENT));
        }
        if path.len() >= PATH_MAX {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        let mut cur = if path[0] == b'/' { ROOT } else { start };
        let parts: Vec<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let trailing_slash = path.ends_with(b"/");
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            cur = self.step(
                cred,
                cur,
                part,
                !last || follow_last || trailing_slash,
                links,
            )?;
        }
        if trailing_slash && !self.inode(cur)?.is_dir() {
            return Err(Errno(libc::ENOTDIR));
        }
        Ok(cur)
    }

    /// One component `part` in directory `dir`.
    fn step(
        &self,
        cred: &Cred,
        dir: Ino,
        part: &[u8],
        follow: bool,
        links: &mut u32,
    ) -> SysResult<Ino> {
        let d = self.dir(dir)?;
        self.require(cred, dir, MAY_EXEC)?;
        if part.len() > NAME_MAX {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        match part {
            b"." => Ok(dir),
            b".." => Ok(d.parent),
            name => {
                let child = *d.entries.get(name).ok_or(Errno(libc::ENOENT))?;
                match &self.inode(child)?.kind {
                    Kind::Symlink(target) if follow => {
                        *links += 1;
                        if *links > MAX_SYMLINKS {
                            return Err(Errno(libc::ELOOP));
                        }
                        self.walk_from(cred, dir, target, true, links)
                    }
                    _ => Ok(child),
                }
            }
        }
    }

    /// `path`'s parent directory, resolved and searchable, and its last component (what
    /// creating and removing system calls start with).
    pub(crate) fn parent_of(&self, cred: &Cred, path: &[u8]) -> SysResult<Parent> {
        self.parent_at(cred, self.cwd, path)
    }

    /// [`Namespace::parent_of`] for a relative `path` starting at directory `start` (a
    /// symlink's target starts at the directory holding the symlink).
    pub(crate) fn parent_at(&self, cred: &Cred, start: Ino, path: &[u8]) -> SysResult<Parent> {
        if path.is_empty() {
            return Err(Errno(libc::ENOENT));
        }
        if path.len() >= PATH_MAX {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        let trimmed_len = path.iter().rposition(|&b| b != b'/').map_or(0, |p| p + 1);
        let trimmed = &path[..trimmed_len];
        let trailing_slash = trimmed_len < path.len();
        if trimmed.is_empty() {
            return Ok(Parent {
                dir: ROOT,
                last: Last::Root,
                trailing_slash: false,
            });
        }
        let (dir, name) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(slash) => {
                let dir_part = &trimmed[..slash];
                let dir = if dir_part.iter().all(|&b| b == b'/') {
                    ROOT
                } else {
                    let mut links = 0;
                    self.walk_from(cred, start, dir_part, true, &mut links)?
                };
                (dir, &trimmed[slash + 1..])
            }
            None => (start, trimmed),
        };
        self.dir(dir)?;
        self.require(cred, dir, MAY_EXEC)?;
        if name.len() > NAME_MAX {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        let last = match name {
            b"." => Last::Dot,
            b".." => Last::DotDot,
            n => Last::Name(n.to_vec()),
        };
        Ok(Parent {
            dir,
            last,
            trailing_slash,
        })
    }

    /// The entry `name` of directory `dir`.
    pub(crate) fn lookup(&self, dir: Ino, name: &[u8]) -> Option<Ino> {
        self.dir(dir).ok()?.entries.get(name).copied()
    }

    /// The absolute path of directory `dir` (what `getcwd` gives; ENOENT for a removed one).
    pub(crate) fn dir_path(&self, dir: Ino) -> SysResult<Vec<u8>> {
        let mut parts = Vec::new();
        let mut cur = dir;
        while cur != ROOT {
            let d = self.dir(cur)?;
            if d.dead {
                return Err(Errno(libc::ENOENT));
            }
            let name = self
                .dir(d.parent)?
                .entries
                .iter()
                .find(|(_, i)| **i == cur)
                .map(|(n, _)| n.clone())
                .ok_or(Errno(libc::ENOENT))?;
            parts.push(name);
            cur = d.parent;
        }
        if parts.is_empty() {
            return Ok(b"/".to_vec());
        }
        let mut out = Vec::new();
        for p in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        Ok(out)
    }

    /// OpenSSH's `sftp_realpath` (sftp-realpath.c) step by step: `.`, `..` and symlinks
    /// removed by looking at each prefix with `lstat`; a missing last component is allowed
    /// (the path need not exist), a missing one before it is not.
    pub(crate) fn realpath(&self, cred: &Cred, path: &[u8]) -> SysResult<Vec<u8>> {
        if path.is_empty() {
            return Err(Errno(libc::ENOENT));
        }
        let mut resolved: Vec<u8>;
        let mut left: Vec<u8>;
        if path[0] == b'/' {
            resolved = b"/".to_vec();
            if path.len() == 1 {
                return Ok(resolved);
            }
            left = path[1..].to_vec();
        } else {
            resolved = self.dir_path(self.cwd)?;
            left = path.to_vec();
        }
        if left.len() >= PATH_MAX || resolved.len() >= PATH_MAX {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        let mut symlinks = 0;
        while !left.is_empty() {
            let (next, more) = match left.iter().position(|&b| b == b'/') {
                Some(p) => (left[..p].to_vec(), Some(left[p + 1..].to_vec())),
                None => (std::mem::take(&mut left), None),
            };
            left = more.clone().unwrap_or_default();
            if resolved.last() != Some(&b'/') {
                resolved.push(b'/');
            }
            match next.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    if resolved.len() > 1 {
                        resolved.pop();
                        let cut = resolved
                            .iter()
                            .rposition(|&b| b == b'/')
                            .map_or(0, |p| p + 1);
                        resolved.truncate(cut);
                    }
                    continue;
                }
                _ => {}
            }
            resolved.extend_from_slice(&next);
            if resolved.len() >= PATH_MAX {
                return Err(Errno(libc::ENAMETOOLONG));
            }
            let ino = match self.resolve(cred, &resolved, false) {
                Ok(ino) => ino,
                Err(Errno(libc::ENOENT)) if more.is_none() => return Ok(resolved),
                Err(e) => return Err(e),
            };
            let Kind::Symlink(target) = &self.inode(ino)?.kind else {
                continue;
            };
            if symlinks > SYMLOOP_MAX {
                return Err(Errno(libc::ELOOP));
            }
            symlinks += 1;
            let mut target = target.clone();
            if target.first() == Some(&b'/') {
                resolved = b"/".to_vec();
            } else if resolved.len() > 1 {
                resolved.pop();
                let cut = resolved
                    .iter()
                    .rposition(|&b| b == b'/')
                    .map_or(0, |p| p + 1);
                resolved.truncate(cut);
            }
            if more.is_some() {
                if target.last() != Some(&b'/') {
                    target.push(b'/');
                }
                target.extend_from_slice(&left);
            }
            left = target;
        }
        if resolved.len() > 1 && resolved.last() == Some(&b'/') {
            resolved.pop();
        }
        Ok(resolved)
    }
}
