//! Owners and modes as the C sshfs shows them (`-o idmap=user|file`, `uidfile`, `gidfile`,
//! `nomap`, `uid`, `gid`, `umask`), and mounts by a user who is not root (through
//! fusermount3), through real mounts against a real sshd.
//!
//! The tests run as root. A user's mount needs a throwaway local user (support::TestUser,
//! removed at the end also when a test fails) and /dev/fuse open to it (support::DevFuseOpen,
//! its mode put back afterwards). The "remote" login is another throwaway user on the test
//! sshd, so the server's owners (that user) differ from the local user's: what idmap changes
//! shows. Only the user can look into its own mount (no allow_other), so every check through
//! the mount runs as that user.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Output, Stdio};
use std::time::Duration;

use support::{
    DevFuseOpen, Mount, Sshd, TestUser, is_mounted, lacking, needs, skip_note, sshfs_rs_bin,
    wait_until,
};
use tempfile::TempDir;

/// Bound on a command run through the mount.
const STEP: Duration = Duration::from_secs(30);
/// Bound on a mount coming up.
const MOUNT_WAIT: Duration = Duration::from_secs(20);

/// A mount made by a local user: `sshfs-rs -f` running as that user, logged in on the test
/// sshd as `remote`. Dropping it unmounts (as root if need be) and stops the process.
struct UserMount {
    child: Option<Child>,
    _dir: TempDir,
    mnt: PathBuf,
    stderr: PathBuf,
}

impl UserMount {
    /// Runs `sshfs-rs -f` as `local`, for `remote`'s home on `sshd`, with `extra` options.
    /// Returns the mount once it is up, or the process's exit status and stderr if it ended
    /// first. Without `-f` in `extra`, the process must end (0) with the mount up: the daemon
    /// it leaves ends at the unmount.
    fn try_start(
        sshd: &Sshd,
        local: &TestUser,
        remote: &TestUser,
        extra: &[&str],
    ) -> Result<UserMount, (ExitStatus, String)> {
        let background = !extra.contains(&"-f");
        let (dir, mnt) = local.mountpoint("sshfs-rs-user-mnt-");
        let stderr = mnt.with_file_name("stderr.log");
        let source = format!("{}@127.0.0.1:", remote.name);
        let child = local.spawn_sshfs_rs(sshd, &source, &mnt, extra, &stderr);
        let mut this = UserMount {
            child: Some(child),
            _dir: dir,
            mnt,
            stderr,
        };
        let mut exited = None;
        wait_until(MOUNT_WAIT, || {
            exited = this.child.as_mut().unwrap().try_wait().unwrap();
            exited.is_some() || !background && is_mounted(&this.mnt)
        });
        let up = match background {
            true => exited.is_some_and(|s| s.success()) && is_mounted(&this.mnt),
            false => exited.is_none() && is_mounted(&this.mnt),
        };
        if up && background {
            this.child = None;
        }
        match (up, exited) {
            (true, _) => Ok(this),
            (false, Some(status)) => Err((status, this.stderr())),
            (false, None) => panic!("no mount within {MOUNT_WAIT:?}: {}", this.stderr()),
        }
    }

    fn start(sshd: &Sshd, local: &TestUser, remote: &TestUser, extra: &[&str]) -> UserMount {
        UserMount::try_start(sshd, local, remote, extra)
            .unwrap_or_else(|(status, err)| panic!("sshfs-rs exited ({status}): {err}"))
    }

    fn path(&self) -> &Path {
        &self.mnt
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits for the process to end (after an unmount); its exit status.
    fn wait_exit(&mut self) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let mut status = None;
        wait_until(Duration::from_secs(10), || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        status.unwrap_or_else(|| panic!("sshfs-rs still running after the unmount"))
    }
}

impl Drop for UserMount {
    fn drop(&mut self) {
        if is_mounted(&self.mnt) {
            let mnt = self.mnt.to_string_lossy().into_owned();
            let _ = std::process::Command::new("fusermount3")
                .args(["-u", "-z", &mnt])
                .status();
            let _ = std::process::Command::new("umount")
                .args(["-l", &mnt])
                .stderr(Stdio::null())
                .status();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Two throwaway users (the one who mounts, the one who logs in on the server) and a server
/// that lets the second in with its test key.
struct Setup {
    // Dropped in this order: the server, the users, then /dev/fuse's mode.
    sshd: Sshd,
    local: TestUser,
    remote: TestUser,
    _dev_fuse: DevFuseOpen,
}

impl Setup {
    /// `None`, after the `skipped:` line, where throwaway users cannot be made.
    fn new(tag: &str) -> Option<Setup> {
        if lacking(needs::local_users()) {
            return None;
        }
        let dev_fuse = DevFuseOpen::new();
        let local = TestUser::create(&format!("{tag}l"));
        let remote = TestUser::create(&format!("{tag}r"));
        let sshd = Sshd::start();
        sshd.let_users_log_in();
        Some(Setup {
            sshd,
            local,
            remote,
            _dev_fuse: dev_fuse,
        })
    }

    /// A file in the remote user's home, owned by `uid`:`gid` with `mode`.
    fn remote_file(&self, name: &str, uid: u32, gid: u32, mode: u32) -> PathBuf {
        let path = self.remote.home().join(name);
        fs::write(&path, format!("{name}\n")).unwrap();
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    /// Mounts in the foreground (`-f`) with `extra` options.
    fn mount(&self, extra: &[&str]) -> UserMount {
        let args: Vec<&str> = ["-f"].iter().chain(extra).copied().collect();
        UserMount::start(&self.sshd, &self.local, &self.remote, &args)
    }
}

/// `stat -c '%u %g %a' path` as `user`: (uid, gid, mode in octal text), or its stderr.
fn stat_as(user: &TestUser, path: &Path) -> Result<(u32, u32, String), String> {
    let out = user.sh(&format!("stat -c '%u %g %a' '{}'", path.display()), STEP);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = text.split_whitespace();
    let mut next = || {
        words
            .next()
            .unwrap_or_else(|| panic!("stat printed {text:?}"))
    };
    Ok((
        next().parse().unwrap(),
        next().parse().unwrap(),
        next().to_owned(),
    ))
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `/proc/mounts` line of the mount on `mnt`.
fn proc_mounts_line(mnt: &Path) -> String {
    let mnt = mnt.to_string_lossy();
    fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(&*mnt))
        .unwrap_or_else(|| panic!("{mnt} not in /proc/mounts"))
        .to_owned()
}

/// A user mounts through fusermount3: the mount is `fuse.sshfs-rs`, `nosuid,nodev`, the
/// user's; without idmap the server's numeric owners show; `fusermount3 -u` as the user
/// unmounts and the program exits 0.
#[test]
fn a_user_mounts_and_unmounts_with_fusermount3() {
    let Some(s) = Setup::new("a") else {
        return;
    };
    s.remote_file("theirs", s.remote.uid, s.remote.gid, 0o644);
    let mut m = s.mount(&[]);
    let line = proc_mounts_line(m.path());
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields[2], "fuse.sshfs-rs", "{line}");
    let opts: Vec<&str> = fields[3].split(',').collect();
    for want in ["nosuid", "nodev", &format!("user_id={}", s.local.uid)] {
        assert!(opts.contains(&want), "{want} missing: {line}");
    }
    assert_eq!(
        stat_as(&s.local, &m.path().join("theirs")),
        Ok((s.remote.uid, s.remote.gid, "644".to_owned())),
        "no idmap: the server's owner, as a number"
    );
    let out = s
        .local
        .sh(&format!("echo mine > '{}/new'", m.path().display()), STEP);
    ok(&out, "create through the mount");
    let created = fs::metadata(s.remote.home().join("new")).unwrap();
    assert_eq!(
        (created.uid(), created.gid()),
        (s.remote.uid, s.remote.gid),
        "created by the login user on the server"
    );
    let out = s
        .local
        .sh(&format!("fusermount3 -u '{}'", m.path().display()), STEP);
    ok(&out, "fusermount3 -u as the user");
    assert!(!is_mounted(m.path()));
    let status = m.wait_exit();
    assert!(status.success(), "{status}: {}", m.stderr());
}

/// Without `-f`, a user's mount goes to the background once it is up: the command returns 0,
/// `sshfs-rs --stats` reaches the daemon, and `fusermount3 -u` ends it.
#[test]
fn a_user_mount_goes_to_the_background() {
    let Some(s) = Setup::new("b") else {
        return;
    };
    let m = UserMount::start(&s.sshd, &s.local, &s.remote, &["-o", "idmap=user"]);
    let out = s.local.sh(
        &format!(
            "'{}' --stats '{}'",
            sshfs_rs_bin().display(),
            m.path().display()
        ),
        STEP,
    );
    ok(&out, "--stats as the user");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("total="),
        "{out:?}"
    );
    let daemon = || {
        let out = std::process::Command::new("pgrep")
            .args(["-u", &s.local.name, "-x", "sshfs-rs"])
            .output()
            .unwrap();
        out.status.success()
    };
    assert!(daemon(), "a daemon runs as the user");
    let out = s
        .local
        .sh(&format!("fusermount3 -u '{}'", m.path().display()), STEP);
    ok(&out, "fusermount3 -u");
    assert!(!is_mounted(m.path()));
    assert!(
        wait_until(Duration::from_secs(10), || !daemon()),
        "the daemon ends at the unmount"
    );
}

/// `idmap=user`: the login user's files are the local user's (stat through the mount), others
/// keep their numbers; a chown to yourself reaches the server as the login user; and with
/// `default_permissions` the kernel lets you read your (mapped) private file, as sshfs.
#[test]
fn idmap_user_shows_the_login_user_as_you() {
    let Some(s) = Setup::new("u") else {
        return;
    };
    s.remote_file("theirs", s.remote.uid, s.remote.gid, 0o600);
    s.remote_file("roots", 0, 0, 0o644);
    let mut m = s.mount(&["-o", "idmap=user,default_permissions"]);
    let theirs = m.path().join("theirs");
    assert_eq!(
        stat_as(&s.local, &theirs),
        Ok((s.local.uid, s.local.gid, "600".to_owned()))
    );
    assert_eq!(
        stat_as(&s.local, &m.path().join("roots")),
        Ok((0, 0, "644".to_owned()))
    );
    // The kernel checks 0600 against the shown owner: you.
    let out = s.local.sh(&format!("cat '{}'", theirs.display()), STEP);
    ok(&out, "reading a mapped 0600 file with default_permissions");
    // chown to the local user: the server is asked for the login user (which it allows);
    // unmapped, it would be asked for the local uid and refuse.
    let out = s.local.sh(
        &format!(
            "chown {}:{} '{}'",
            s.local.uid,
            s.local.gid,
            theirs.display()
        ),
        STEP,
    );
    ok(&out, "chown to yourself");
    let meta = fs::metadata(s.remote.home().join("theirs")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (s.remote.uid, s.remote.gid));
    // New files are the login user's on the server, and yours in the mount.
    let out = s
        .local
        .sh(&format!("echo x > '{}/made'", m.path().display()), STEP);
    ok(&out, "create");
    let meta = fs::metadata(s.remote.home().join("made")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (s.remote.uid, s.remote.gid));
    assert_eq!(
        stat_as(&s.local, &m.path().join("made")).map(|(u, g, _)| (u, g)),
        Ok((s.local.uid, s.local.gid))
    );
    let out = s
        .local
        .sh(&format!("fusermount3 -u '{}'", m.path().display()), STEP);
    ok(&out, "fusermount3 -u");
    assert!(m.wait_exit().success(), "{}", m.stderr());

    // Without idmap, default_permissions sees the login user's 0600 file as someone else's.
    let m = s.mount(&["-o", "default_permissions"]);
    let out = s
        .local
        .sh(&format!("cat '{}/theirs'", m.path().display()), STEP);
    assert!(!out.status.success(), "read someone else's 0600 file");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{out:?}"
    );
}

/// `-o allow_other` (and `allow_root`) for a user, with no `user_allow_other` in
/// /etc/fuse.conf: one line that says what to do, a non-zero exit, nothing mounted.
#[test]
fn allow_other_without_user_allow_other_is_one_clear_line() {
    let conf = fs::read_to_string("/etc/fuse.conf").unwrap_or_default();
    if conf.lines().any(|l| l.trim() == "user_allow_other") {
        skip_note("/etc/fuse.conf has user_allow_other (this test needs it without)");
        return;
    }
    let Some(s) = Setup::new("o") else {
        return;
    };
    for option in ["allow_other", "allow_root"] {
        let (status, stderr) = UserMount::try_start(&s.sshd, &s.local, &s.remote, &["-o", option])
            .map(|m| panic!("mounted on {}", m.path().display()))
            .unwrap_err();
        assert!(!status.success());
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with("sshfs-rs: ")
                && stderr.contains(option)
                && stderr.contains("user_allow_other")
                && stderr.contains("/etc/fuse.conf"),
            "{stderr}"
        );
    }
}

/// Flags fusermount3 cannot set on a user's mount (`strictatime`, `nodiratime`): one line
/// naming the flag, instead of fusermount3's "unknown option"; nothing mounted.
#[test]
fn root_only_flags_are_one_clear_line_for_a_user() {
    let Some(s) = Setup::new("f") else {
        return;
    };
    for option in ["strictatime", "nodiratime"] {
        let (status, stderr) =
            UserMount::try_start(&s.sshd, &s.local, &s.remote, &["-f", "-o", option])
                .map(|m| panic!("mounted on {}", m.path().display()))
                .unwrap_err();
        assert!(!status.success());
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with("sshfs-rs: ") && stderr.contains(option) && stderr.contains("root"),
            "{stderr}"
        );
    }
}

/// `allow_root` (root's mount here) as libfuse has it: root uses the mount, another user gets
/// EACCES, while with `allow_other` (alone) that user gets in.
#[test]
fn allow_root_lets_only_root_and_the_owner_in() {
    if lacking(needs::local_users()) {
        return;
    }
    let user = TestUser::create("r");
    let sshd = Sshd::start();
    fs::write(sshd.root_dir().join("f"), "f\n").unwrap();
    let allow_root = Mount::start(&sshd, &["-o", "allow_root"]);
    // The user must be able to reach the mountpoint (the harness's temp dir is 700).
    open_path_to(allow_root.path());
    // The user first: what root looked up the kernel may answer from its cache (as with
    // libfuse).
    let err = stat_as(&user, &allow_root.path().join("f")).unwrap_err();
    assert!(err.contains("Permission denied"), "{err}");
    assert!(
        fs::metadata(allow_root.path().join("f")).is_ok(),
        "root gets in"
    );
    drop(allow_root);
    let allow_other = Mount::start(&sshd, &["-o", "allow_other"]);
    open_path_to(allow_other.path());
    assert!(
        stat_as(&user, &allow_other.path().join("f")).is_ok(),
        "allow_other lets the user in"
    );
    drop(allow_other);
    // Both: allow_root decides, as in libfuse 3.
    let both = Mount::start(&sshd, &["-o", "allow_other,allow_root"]);
    open_path_to(both.path());
    let err = stat_as(&user, &both.path().join("f")).unwrap_err();
    assert!(err.contains("Permission denied"), "{err}");
}

/// Makes the directories above `mnt` enterable by everyone.
fn open_path_to(mnt: &Path) {
    let parent = mnt.parent().unwrap();
    fs::set_permissions(parent, fs::Permissions::from_mode(0o755)).unwrap();
}

/// `uid=`, `gid=`, `umask=` (libfuse's): every file shown with that owner and with the
/// permission bits `0777 & !umask`; the server's values are unchanged.
#[test]
fn uid_gid_umask_change_what_stat_shows() {
    let sshd = Sshd::start();
    let file = sshd.root_dir().join("f");
    fs::write(&file, "f\n").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o4600)).unwrap();
    let m = Mount::start(&sshd, &["-o", "uid=12345,gid=23456,umask=027"]);
    let meta = fs::metadata(m.path().join("f")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (12345, 23456));
    assert_eq!(meta.mode() & 0o7777, 0o750);
    assert!(meta.is_file());
    let dir = fs::metadata(m.path()).unwrap();
    assert_eq!(dir.mode() & 0o7777, 0o750);
    assert!(dir.is_dir());
    let server = fs::metadata(&file).unwrap();
    assert_eq!((server.uid(), server.mode() & 0o7777), (0, 0o4600));
    // A chmod goes to the server as given.
    fs::set_permissions(m.path().join("f"), fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(fs::metadata(&file).unwrap().mode() & 0o7777, 0o640);
}

/// `idmap=file`: names in uidfile/gidfile are local users and groups (`daemon`, `bin`),
/// their ids the server's; a chown maps back. `nomap=ignore` shows an unlisted owner as it
/// is; `nomap=error` (sshfs's default) makes its stat and the listing fail with EPERM.
#[test]
fn idmap_file_maps_names_and_nomap_decides_the_rest() {
    let (daemon, bin) = (local_id("-u", "daemon"), local_id("-g", "bin"));
    let sshd = Sshd::start();
    let maps = tempfile::tempdir().unwrap();
    let uidfile = maps.path().join("uids");
    let gidfile = maps.path().join("gids");
    // root:0 keeps the mount's root (the server's, owned by 0) visible with nomap=error.
    fs::write(&uidfile, "daemon:4242\nroot:0\n").unwrap();
    fs::write(&gidfile, "bin:x:4343:\nroot:x:0:\n").unwrap();
    for f in [&uidfile, &gidfile] {
        fs::set_permissions(f, fs::Permissions::from_mode(0o644)).unwrap();
    }
    let root = sshd.root_dir();
    let mapped = root.join("mapped");
    fs::write(&mapped, "m\n").unwrap();
    std::os::unix::fs::chown(&mapped, Some(4242), Some(4343)).unwrap();
    let other = root.join("other");
    fs::write(&other, "o\n").unwrap();
    std::os::unix::fs::chown(&other, Some(5151), Some(4343)).unwrap();
    let files = format!(
        "idmap=file,uidfile={},gidfile={}",
        uidfile.display(),
        gidfile.display()
    );
    {
        let m = Mount::start(&sshd, &["-o", &files, "-o", "nomap=ignore"]);
        let meta = fs::metadata(m.path().join("mapped")).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (daemon, bin));
        let meta = fs::metadata(m.path().join("other")).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (5151, bin),
            "unlisted uid as it is"
        );
        // chown to the local daemon user: the server gets its remote id.
        std::os::unix::fs::chown(m.path().join("other"), Some(daemon), None).unwrap();
        let server = fs::metadata(&other).unwrap();
        assert_eq!((server.uid(), server.gid()), (4242, 4343));
        std::os::unix::fs::chown(&other, Some(5151), Some(4343)).unwrap();
    }
    let m = Mount::start(&sshd, &["-o", &files]);
    assert!(fs::metadata(m.path()).is_ok(), "the root's owner is listed");
    let meta = fs::metadata(m.path().join("mapped")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (daemon, bin));
    let err = fs::metadata(m.path().join("other")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    let listed = fs::read_dir(m.path()).and_then(|d| d.collect::<Result<Vec<_>, _>>());
    assert_eq!(
        listed.map(|_| ()).map_err(|e| e.raw_os_error()),
        Err(Some(libc::EPERM)),
        "the listing holds an unlisted owner"
    );
    // A chown to a local id the files do not list is refused too.
    let err = std::os::unix::fs::chown(m.path().join("mapped"), Some(54321), None).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
}

/// The local id of a user (`-u`) or group (`-g`) name.
fn local_id(flag: &str, name: &str) -> u32 {
    let out = std::process::Command::new("getent")
        .args([if flag == "-u" { "passwd" } else { "group" }, name])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    line.split(':')
        .nth(2)
        .and_then(|id| id.trim().parse().ok())
        .unwrap_or_else(|| panic!("no local {name}: {line:?}"))
}
