//! The mount helper: the binary called `mount.fuse.sshfs-rs` (a link installed next to it).
//!
//! `mount -t fuse.sshfs-rs SRC MNT -o OPTS`, an fstab line and an autofs map entry all end in
//! mount(8) running `/sbin/mount.fuse.sshfs-rs SRC MNT [-sfnv] [-N NS] -o OPTS [-t TYPE]`, with
//! no terminal. In that form sshfs-rs never prompts (BatchMode), goes to the background only
//! once the mount is live (with stdio on /dev/null: autofs reads them until EOF), and a failure
//! is one line on stderr and a non-zero exit. The flags have mount(8)'s meanings: `-n` (do not
//! write /etc/mtab) is a no-op, `-s` (sloppy) skips unknown options, `-f` (fake) checks the
//! arguments and the mountpoint and stops, `-v` logs the steps of connecting.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::options::args::Args;

/// The name the helper link has.
pub const NAME: &str = "mount.fuse.sshfs-rs";

/// Whether the program was started as a mount helper (`mount.fuse.sshfs-rs`, `mount.sshfs-rs`).
pub fn invoked_as_helper(argv0: &OsStr) -> bool {
    Path::new(argv0)
        .file_name()
        .and_then(OsStr::to_str)
        .is_some_and(|n| n.starts_with("mount."))
}

fn usage(why: String) -> String {
    format!("{why}; usage: {NAME} [user@]host:[path] MOUNTPOINT [-n] [-s] [-f] [-v] [-o OPTIONS]")
}

/// Parses the helper's call form (the arguments after argv[0]).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut positional: Vec<String> = Vec::new();
    let mut options = Vec::new();
    let (mut sloppy, mut fake, mut verbose) = (false, false, false);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            positional.push(arg);
            continue;
        };
        for (i, c) in flags.char_indices() {
            match c {
                'n' => {}
                's' => sloppy = true,
                'f' => fake = true,
                'v' => verbose = true,
                // -o OPTS, -t TYPE, -N NAMESPACE: the value is the rest of this word or the next.
                'o' | 't' | 'N' => {
                    let rest = &flags[i + 1..];
                    let value = if rest.is_empty() {
                        args.next()
                            .ok_or_else(|| usage(format!("-{c} needs a value")))?
                    } else {
                        rest.to_owned()
                    };
                    match c {
                        'o' => options.push(value),
                        'N' => {
                            return Err(format!(
                                "-N {value}: mounting in another namespace is not supported"
                            ));
                        }
                        _ => {}
                    }
                    break;
                }
                _ => return Err(usage(format!("unknown flag '-{c}'"))),
            }
        }
    }
    let [source, mountpoint]: [String; 2] = positional
        .try_into()
        .map_err(|p: Vec<String>| usage(format!("{} arguments where 2 are needed", p.len())))?;
    Ok(Args {
        source: Some(source),
        mountpoint: Some(PathBuf::from(mountpoint)),
        flush: None,
        stats: None,
        store_password: None,
        forget_password: None,
        store_passphrase: None,
        forget_passphrase: None,
        port: None,
        ssh_config: None,
        foreground: false,
        debug: false,
        verbose,
        compression: false,
        protocol_1: false,
        single_threaded: false,
        options,
        helper: true,
        sloppy,
        fake,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Args, String> {
        parse(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn recognised_by_name() {
        assert!(invoked_as_helper(OsStr::new("/sbin/mount.fuse.sshfs-rs")));
        assert!(invoked_as_helper(OsStr::new("mount.sshfs-rs")));
        assert!(!invoked_as_helper(OsStr::new("/usr/bin/sshfs-rs")));
    }

    #[test]
    fn mount_call_forms() {
        let a = p(&[
            "me@h:/p",
            "/mnt",
            "-n",
            "-o",
            "rw,port=22",
            "-t",
            "fuse.sshfs-rs",
        ])
        .unwrap();
        assert_eq!(a.source.as_deref(), Some("me@h:/p"));
        assert_eq!(a.mountpoint, Some(PathBuf::from("/mnt")));
        assert_eq!(a.options, vec!["rw,port=22".to_owned()]);
        assert!(a.helper && !a.sloppy && !a.fake && !a.verbose);
        let a = p(&["h:", "/mnt", "-sfnv", "-orw"]).unwrap();
        assert!(a.sloppy && a.fake && a.verbose);
        assert_eq!(a.options, vec!["rw".to_owned()]);
    }

    #[test]
    fn bad_calls_name_the_problem() {
        assert!(
            p(&["h:"])
                .unwrap_err()
                .contains("usage: mount.fuse.sshfs-rs")
        );
        assert!(p(&["h:", "/m", "-x"]).unwrap_err().contains("'-x'"));
        assert!(
            p(&["h:", "/m", "-o"])
                .unwrap_err()
                .contains("-o needs a value")
        );
        assert!(
            p(&["h:", "/m", "-N", "x"])
                .unwrap_err()
                .contains("namespace")
        );
    }
}
