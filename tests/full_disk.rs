//! A full remote disk is ENOSPC ("No space left on device"), not EIO (issue 20): the server's
//! directory is a private 1 MiB tmpfs with few inodes, mounted by the test (root only) and
//! unmounted on drop. OpenSSH's sftp-server answers ENOSPC with the generic FAILURE; sshfs-rs
//! asks statvfs after it and gives ENOSPC when no block (or, for a new name, no inode) is
//! left. Checked: `dd` past the size fails with ENOSPC and leaves on the server what the
//! mount shows; `touch` once the inodes run out fails with ENOSPC; with room again, writes
//! work.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{Mount, Sshd, lacking, run_command};

/// Bound on each command through the mount.
const STEP: Duration = Duration::from_secs(30);

/// A tmpfs of 1 MiB and `INODES` inodes, mounted on a new directory; unmounted (lazily) and
/// removed on drop.
struct SmallTmpfs {
    dir: tempfile::TempDir,
}

/// Inodes of the tmpfs (its root directory takes one).
const INODES: usize = 16;

impl SmallTmpfs {
    fn mount() -> Result<SmallTmpfs, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root: cannot mount a small tmpfs for the server".into());
        }
        let dir = tempfile::Builder::new()
            .prefix("sshfs-rs-full-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let out = run_command(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o"])
                .arg(format!("size=1m,nr_inodes={INODES},mode=0755"))
                .arg("tmpfs")
                .arg(dir.path()),
            Duration::from_secs(10),
        );
        if !out.status.success() {
            return Err(format!(
                "cannot mount a tmpfs: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(SmallTmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = run_command(
            Command::new("umount").arg("-l").arg(self.dir.path()),
            Duration::from_secs(10),
        );
    }
}

/// Runs `script` with `sh` in `dir`: (exit success, stderr).
fn sh(dir: &Path, script: &str) -> (bool, String) {
    let out = run_command(
        Command::new("sh").arg("-c").arg(script).current_dir(dir),
        STEP,
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_full_remote_disk_is_enospc() {
    let tmpfs = match SmallTmpfs::mount() {
        Ok(t) => t,
        Err(why) => {
            lacking(Err(why));
            return;
        }
    };
    let server: PathBuf = tmpfs.path().to_path_buf();
    let sshd = Sshd::start();
    let mount = Mount::start_remote(&sshd, &server.to_string_lossy(), &[]);
    let mnt = mount.path().to_path_buf();

    // Blocks: 4 MiB into 1 MiB.
    let (ok, stderr) = sh(&mnt, "dd if=/dev/zero of=big bs=64k count=64 status=none");
    assert!(!ok, "dd of 4 MiB into 1 MiB succeeded");
    assert!(
        stderr.contains("No space left on device"),
        "dd should fail with ENOSPC: {stderr}\n{}",
        mount.stderr()
    );
    let on_server = fs::metadata(server.join("big")).unwrap().len();
    assert!(on_server <= 1 << 20, "{on_server} bytes in a 1 MiB tmpfs");
    assert_eq!(
        fs::metadata(mnt.join("big")).unwrap().len(),
        on_server,
        "the mount shows another size than the server has"
    );
    assert!(
        mount.stderr().contains("the server's disk is full"),
        "said once in the log: {}",
        mount.stderr()
    );
    fs::remove_file(mnt.join("big")).unwrap();

    // Inodes: new names until there is none left.
    let (ok, stderr) = sh(
        &mnt,
        &format!("for i in $(seq 1 {INODES}); do touch f$i || exit 1; done"),
    );
    assert!(!ok, "{INODES} files made in a tmpfs of {INODES} inodes");
    assert!(
        stderr.contains("No space left on device"),
        "touch should fail with ENOSPC: {stderr}"
    );
    let (ok, stderr) = sh(&mnt, "mkdir d");
    assert!(
        !ok && stderr.contains("No space left on device"),
        "mkdir: {stderr}"
    );
    let listed = |dir: &Path| {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(listed(&mnt), listed(&server), "mount and server differ");

    // With room again, a write works.
    fs::remove_file(mnt.join("f1")).unwrap();
    fs::write(mnt.join("f1"), b"room again").unwrap();
    assert_eq!(fs::read(server.join("f1")).unwrap(), b"room again");
    drop(mount);
}
