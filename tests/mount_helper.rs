//! sshfs-rs as the system mounts network filesystems: `mount -t fuse.sshfs-rs`, an fstab line,
//! mount.fuse3 (which appends `dev,suid`), and the mount helper `mount.fuse.sshfs-rs` called
//! the way mount(8) calls it, with no terminal.
//!
//! Each test starts its own sshd, mounts with the real programs (`mount`, `mount.fuse3`,
//! `umount`), checks /proc/mounts (type `fuse.sshfs-rs`, source `user@host:/path`, flags), reads
//! and writes through the mount and checks the server's directory directly. The links the
//! programs look for are made in a temporary directory: `sshfs-rs` on PATH for mount.fuse3, and
//! `mount.fuse.sshfs-rs` in /sbin for mount(8) inside a private mount namespace (an overlay on
//! /usr/sbin that only that namespace sees), so nothing is installed on the machine.
//!
//! Every mount is undone on drop, also when a test fails: `umount`, then `umount -l`, then the
//! daemons started for that mountpoint (found by the mountpoint in their command line) are
//! sent SIGTERM by pid.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use support::{
    Sshd, assert_sshfs_rs_gone, is_mounted, lacking, needs, run_command, run_to_eof, skip_note,
    sshfs_rs_bin, unmount_and_stop,
};

/// Bound on each program run (a hang fails the test instead of blocking it).
const RUN_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on a daemon going away after its mount did.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// One test's scene: a server, a mountpoint, and a directory holding the links.
struct Scene {
    sshd: Sshd,
    dir: TempDir,
    mnt: PathBuf,
}

impl Scene {
    fn new() -> Scene {
        let sshd = Sshd::start();
        let dir = tempfile::Builder::new()
            .prefix("sshfs-rs-helper-")
            .tempdir()
            .unwrap();
        let base = dir.path().canonicalize().unwrap();
        let mnt = base.join("mnt");
        fs::create_dir(&mnt).unwrap();
        let bin = base.join("bin");
        fs::create_dir(&bin).unwrap();
        symlink(sshfs_rs_bin(), bin.join("sshfs-rs")).unwrap();
        symlink(sshfs_rs_bin(), bin.join("mount.fuse.sshfs-rs")).unwrap();
        fs::write(sshd.root_dir().join("hello.txt"), "hello from the server\n").unwrap();
        Scene { sshd, dir, mnt }
    }

    fn base(&self) -> PathBuf {
        self.mnt.parent().unwrap().to_path_buf()
    }

    fn bin(&self) -> PathBuf {
        self.base().join("bin")
    }

    /// `root@127.0.0.1:/path/of/the/server/dir`.
    fn source(&self) -> String {
        format!("root@127.0.0.1:{}", self.sshd.root_dir().display())
    }

    /// The ssh options of an fstab line: port, key, known_hosts.
    fn ssh_options(&self) -> String {
        format!(
            "port={},IdentityFile={},UserKnownHostsFile={},StrictHostKeyChecking=yes",
            self.sshd.port(),
            self.sshd.user_key().display(),
            self.sshd.known_hosts().display()
        )
    }

    /// PATH with the links' directory first.
    fn path_env(&self) -> String {
        let old = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
        format!("{}:{old}", self.bin().display())
    }

    /// A command with HOME at the server's empty client home, no agent, PATH with the links.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("HOME", self.sshd.home())
            .env("PATH", self.path_env())
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("SSHFS_RS_LOG");
        cmd
    }

    /// Our line of /proc/self/mounts: (source, type, options).
    fn mount_entry(&self) -> Option<(String, String, String)> {
        mount_entry_in(&fs::read_to_string("/proc/self/mounts").unwrap(), &self.mnt)
    }

    /// Reads the server's file through the mount and writes one through it, checked on the
    /// server's side.
    fn read_and_write(&self, name: &str) {
        assert_eq!(
            fs::read_to_string(self.mnt.join("hello.txt")).unwrap(),
            "hello from the server\n"
        );
        fs::write(self.mnt.join(name), "written through the mount\n").unwrap();
        assert_eq!(
            fs::read_to_string(self.sshd.root_dir().join(name)).unwrap(),
            "written through the mount\n"
        );
    }

    /// `umount MNT`, then waits for the daemon to go.
    fn umount(&self) {
        // Something else on the machine walking /tmp (a find, an indexer) can hold the mount
        // for a moment: "target is busy" is asked again for a few seconds.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let out = loop {
            let out = run_command(Command::new("umount").arg(&self.mnt), RUN_TIMEOUT);
            if out.status.success()
                || !text(&out.stderr).contains("busy")
                || std::time::Instant::now() > deadline
            {
                break out;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(out.status.success(), "umount: {}", text(&out.stderr));
        assert!(!is_mounted(&self.mnt));
        assert_sshfs_rs_gone(&self.mnt, SETTLE_TIMEOUT);
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        unmount_and_stop(&self.mnt);
        if is_mounted(&self.mnt) {
            eprintln!(
                "warning: leaving {} in place, it is still mounted",
                self.mnt.display()
            );
            let _ = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()).keep();
        }
    }
}

/// The line of a mounts table (`SOURCE MOUNTPOINT TYPE OPTIONS 0 0`) for `mnt`, last one wins.
fn mount_entry_in(table: &str, mnt: &Path) -> Option<(String, String, String)> {
    let wanted = mnt.to_string_lossy();
    table.lines().rev().find_map(|line| {
        let f: Vec<&str> = line.split(' ').collect();
        (f.len() >= 4 && f[1] == wanted)
            .then(|| (f[0].to_owned(), f[2].to_owned(), f[3].to_owned()))
    })
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn options_of(entry: &(String, String, String)) -> Vec<String> {
    entry.2.split(',').map(str::to_owned).collect()
}

/// `mount -t fuse.sshfs-rs SRC MNT -o OPTS` with fstab-style options, through mount.fuse3:
/// mount(8) finds no mount.fuse.sshfs-rs, runs mount.fuse, which runs `sshfs-rs` from the shell's
/// default PATH (mount(8) passes helpers no PATH and no HOME), here /usr/sbin/sshfs-rs. The mount
/// is typed `fuse.sshfs-rs`, its source is `user@host:/path`, the flags asked for are there, it
/// reads and writes, and `umount` ends it and its daemon. (Where mount.fuse.sshfs-rs is
/// installed, mount(8) runs that instead; the same checks hold.)
#[test]
fn mount_t_fuse_sshfs_rs() {
    if lacking(needs::private_mount_namespace()) {
        return;
    }
    let s = Scene::new();
    let opts = format!(
        "{},nosuid,nodev,noatime,_netdev,nofail,user,x-systemd.automount,reconnect,delay_connect",
        s.ssh_options()
    );
    let mnt = s.mnt.display();
    let script = format!(
        "mount -t fuse.sshfs-rs '{src}' '{mnt}' -o '{opts}'\n\
         grep ' {mnt} ' /proc/self/mounts\n\
         cat '{mnt}/hello.txt' >/dev/null\n\
         echo written > '{mnt}/through-mount-t.txt'\n\
         umount '{mnt}'\n",
        src = s.source(),
    );
    let out = in_namespace_with(&s, &["sshfs-rs"], &script);
    let entry = mount_entry_in(&out, &s.mnt).expect("a mount line");
    assert_eq!(entry.0, s.source());
    assert_eq!(entry.1, "fuse.sshfs-rs");
    let flags = options_of(&entry);
    for f in ["rw", "nosuid", "nodev", "noatime"] {
        assert!(flags.contains(&f.to_owned()), "{f} missing: {entry:?}");
    }
    assert_eq!(
        fs::read_to_string(s.sshd.root_dir().join("through-mount-t.txt")).unwrap(),
        "written\n"
    );
    assert_sshfs_rs_gone(&s.mnt, SETTLE_TIMEOUT);
}

/// mount.fuse3 appends `dev,suid` unless told `nodev,nosuid` (the first failure:
/// "unknown option '-o dev'"); root's mount then honours them. Without the link on PATH,
/// mount.fuse3 fails with its own message, and nothing is mounted.
#[test]
fn mount_fuse3_appends_dev_suid() {
    let s = Scene::new();
    let out = run_to_eof(
        s.command("mount.fuse3")
            .arg(format!("sshfs-rs#{}", s.source()))
            .arg(&s.mnt)
            .args(["-o", &format!("{},ro,noexec", s.ssh_options())]),
    );
    assert!(out.status.success(), "mount.fuse3: {}", text(&out.stderr));
    let entry = s.mount_entry().expect("mounted");
    assert_eq!(entry.1, "fuse.sshfs-rs");
    let flags = options_of(&entry);
    assert!(flags.contains(&"ro".to_owned()), "{entry:?}");
    assert!(flags.contains(&"noexec".to_owned()), "{entry:?}");
    assert!(
        !flags.contains(&"nosuid".to_owned()),
        "suid asked for: {entry:?}"
    );
    assert!(
        !flags.contains(&"nodev".to_owned()),
        "dev asked for: {entry:?}"
    );
    assert_eq!(
        fs::read_to_string(s.mnt.join("hello.txt")).unwrap(),
        "hello from the server\n"
    );
    s.umount();
}

/// The helper called directly in mount(8)'s form (`SRC MNT -n -o OPTS`), piped like autofs
/// runs it: it returns once the mount is live, with its stdout and stderr closed; the mount is
/// `nosuid,nodev` by default, typed and named like the C sshfs's; `fsname=` and `subtype=`
/// change the name and type.
#[test]
fn helper_call_form() {
    let s = Scene::new();
    let helper = s.bin().join("mount.fuse.sshfs-rs");
    let out = run_to_eof(s.command(&helper).arg(s.source()).arg(&s.mnt).args([
        "-n",
        "-o",
        &format!("rw,{}", s.ssh_options()),
    ]));
    assert!(out.status.success(), "helper: {}", text(&out.stderr));
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    let entry = s.mount_entry().expect("mounted");
    assert_eq!(entry.0, s.source());
    assert_eq!(entry.1, "fuse.sshfs-rs");
    let flags = options_of(&entry);
    assert!(flags.contains(&"nosuid".to_owned()), "{entry:?}");
    assert!(flags.contains(&"nodev".to_owned()), "{entry:?}");
    assert!(flags.contains(&"relatime".to_owned()), "{entry:?}");
    s.read_and_write("through-helper.txt");
    s.umount();

    let out = run_to_eof(s.command(&helper).arg(s.source()).arg(&s.mnt).args([
        "-o",
        &format!(
            "{},fsname=backup,subtype=sshfs,exec,strictatime",
            s.ssh_options()
        ),
    ]));
    assert!(out.status.success(), "helper: {}", text(&out.stderr));
    let entry = s.mount_entry().expect("mounted");
    assert_eq!(
        (entry.0.as_str(), entry.1.as_str()),
        ("backup", "fuse.sshfs")
    );
    assert!(
        !options_of(&entry).contains(&"noexec".to_owned()),
        "{entry:?}"
    );
    s.umount();
}

/// As a helper it never prompts: an unknown host key (StrictHostKeyChecking=ask, the default)
/// fails at once with one line and a non-zero exit, as does a server that is not there; `-f`
/// (mount's fake mode) checks and mounts nothing; a refused option names itself.
#[test]
fn helper_fails_with_one_line() {
    let s = Scene::new();
    let helper = s.bin().join("mount.fuse.sshfs-rs");
    let empty_known_hosts = s.base().join("known_hosts");
    fs::write(&empty_known_hosts, "").unwrap();
    let cases: [(String, &str); 4] = [
        (
            format!(
                "port={},IdentityFile={},UserKnownHostsFile={}",
                s.sshd.port(),
                s.sshd.user_key().display(),
                empty_known_hosts.display()
            ),
            "Host key verification failed",
        ),
        (format!("{},port=1", s.ssh_options()), "127.0.0.1"),
        (
            format!("{},password_stdin", s.ssh_options()),
            "password_stdin",
        ),
        (format!("{},idmap=file", s.ssh_options()), "idmap=file"),
    ];
    for (opts, named) in &cases {
        let out = run_to_eof(
            s.command(&helper)
                .arg(s.source())
                .arg(&s.mnt)
                .args(["-o", opts]),
        );
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{opts}: {err}");
        assert_eq!(err.lines().count(), 1, "{opts}: one line: {err}");
        assert!(
            err.starts_with("sshfs-rs: ") && err.contains(named),
            "{opts}: {err}"
        );
        assert!(!is_mounted(&s.mnt));
    }
    let out = run_to_eof(s.command(&helper).arg(s.source()).arg(&s.mnt).args([
        "-f",
        "-o",
        &s.ssh_options(),
    ]));
    assert!(out.status.success(), "fake mount: {}", text(&out.stderr));
    assert!(!is_mounted(&s.mnt));
    let out = run_to_eof(s.command(&helper).arg(s.source()));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("usage: mount.fuse.sshfs-rs"),
        "{out:?}"
    );
}

/// Runs `script` with sh in a private mount namespace where /usr/sbin (= /sbin) also holds
/// links named `links` to the binary under test, as installed ones would be; returns its
/// stdout.
fn in_namespace_with(s: &Scene, links: &[&str], script: &str) -> String {
    let upper = s.base().join("sbin");
    fs::create_dir_all(&upper).unwrap();
    for name in links {
        let link = upper.join(name);
        if !link.exists() {
            symlink(sshfs_rs_bin(), &link).unwrap();
        }
    }
    let full = format!(
        "set -e\nmount -t overlay overlay -o lowerdir={}:/usr/sbin /usr/sbin\n{script}",
        upper.display()
    );
    let out = run_to_eof(s.command("unshare").args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &full,
    ]));
    assert!(
        out.status.success(),
        "script failed ({}): {}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// mount(8) runs /sbin/mount.fuse.sshfs-rs for `-t fuse.sshfs-rs` and for an fstab line
/// (`mount -T FSTAB MNT`, with the words fstab lines carry): both mount `nosuid,nodev`, typed
/// and named as they should be, and `umount` takes them down.
#[test]
fn mount_8_runs_the_helper_link_and_fstab_works() {
    if lacking(needs::private_mount_namespace()) {
        return;
    }
    let s = Scene::new();
    let fstab = s.base().join("fstab");
    fs::write(
        &fstab,
        format!(
            "# a test fstab\n{} {} fuse.sshfs-rs noauto,_netdev,nofail,user,x-systemd.automount,comment=x,{} 0 0\n",
            s.source(),
            s.mnt.display(),
            s.ssh_options()
        ),
    )
    .unwrap();
    let mnt = s.mnt.display();
    let script = format!(
        "mount -t fuse.sshfs-rs '{src}' '{mnt}' -o '{opts}'\n\
         grep ' {mnt} ' /proc/self/mounts\n\
         cat '{mnt}/hello.txt' >/dev/null\n\
         echo one > '{mnt}/by-mount-t.txt'\n\
         umount '{mnt}'\n\
         mount -T '{fstab}' '{mnt}'\n\
         grep ' {mnt} ' /proc/self/mounts\n\
         echo two > '{mnt}/by-fstab.txt'\n\
         umount '{mnt}'\n",
        src = s.source(),
        opts = s.ssh_options(),
        fstab = fstab.display(),
    );
    let out = in_namespace_with(&s, &["mount.fuse.sshfs-rs"], &script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for line in lines {
        let entry = mount_entry_in(line, &s.mnt).expect("a mount line");
        assert_eq!(entry.0, s.source(), "{line}");
        assert_eq!(entry.1, "fuse.sshfs-rs", "{line}");
        let flags = options_of(&entry);
        assert!(
            flags.contains(&"nosuid".to_owned()) && flags.contains(&"nodev".to_owned()),
            "{line}"
        );
    }
    let server = s.sshd.root_dir();
    assert_eq!(
        fs::read_to_string(server.join("by-mount-t.txt")).unwrap(),
        "one\n"
    );
    assert_eq!(
        fs::read_to_string(server.join("by-fstab.txt")).unwrap(),
        "two\n"
    );
    assert_sshfs_rs_gone(&s.mnt, SETTLE_TIMEOUT);
}

/// A value for an option of the docs table, from how the table shows it (`name=VALUE`).
fn sample(shown: &str) -> String {
    let shown = shown.replace("\\|", "|");
    if let Some(prefix) = shown.strip_suffix('*') {
        return format!("{prefix}foo");
    }
    if let Some((name, _)) = shown.split_once("[=") {
        return name.to_owned();
    }
    let Some((name, what)) = shown.split_once('=') else {
        return shown;
    };
    let value = match what {
        "SECONDS" | "N" | "BYTES" | "PORT" => "5",
        "OCTAL" => "022",
        "LIST" => "rename:nofstat",
        "FILE" => "/dev/null",
        // ssh's list options ([+-^]NAME,...): one name of each kind.
        w if w.contains("CIPHER") => "aes128-ctr",
        w if w.contains("KEX") => "curve25519-sha256",
        w if w.contains("MAC") => "hmac-sha2-256",
        w if w.contains("ALGORITHM") => "ssh-ed25519",
        w if w.contains("METHOD") => "publickey",
        _ => what.split('|').next().unwrap_or(what),
    };
    format!("{name}={value}")
}

/// Every row of the "sshfs option -> sshfs-rs" table in docs/options.md, given to the binary
/// (as the helper in fake mode: everything is checked, nothing connects or mounts): each
/// option the table answers "implemented" or "accepted, no effect" is accepted, each
/// "refused" one fails with one line that names it.
#[test]
fn every_sshfs_option_is_answered_as_the_table_says() {
    let s = Scene::new();
    let doc = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/options.md"))
        .unwrap();
    let table = doc
        .split_once("<!-- BEGIN sshfs-options")
        .and_then(|(_, rest)| rest.split_once("<!-- END sshfs-options"))
        .expect("the table markers in docs/options.md")
        .0;
    let helper = s.bin().join("mount.fuse.sshfs-rs");
    // uidfile= and gidfile= are read only with idmap=file, from a file only its owner may write.
    let map_dir = tempfile::tempdir().unwrap();
    let map = map_dir.path().join("ids");
    fs::write(&map, "root:0\n").unwrap();
    fs::set_permissions(&map, fs::Permissions::from_mode(0o600)).unwrap();
    let mut rows = 0;
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let mut cells = line.split(" | ");
        let shown = cells
            .next()
            .unwrap()
            .trim_start_matches("| `")
            .trim_end_matches('`');
        let verdict = cells.next().unwrap();
        let option = match sample(shown).split_once('=') {
            Some((name @ ("uidfile" | "gidfile"), _)) => {
                format!("idmap=file,{name}={}", map.display())
            }
            _ => sample(shown),
        };
        let out = run_command(
            s.command(&helper).arg(s.source()).arg(&s.mnt).args([
                "-f",
                "-o",
                &format!("{},{option}", s.ssh_options()),
            ]),
            RUN_TIMEOUT,
        );
        let err = text(&out.stderr);
        match verdict {
            "implemented" | "accepted, no effect" => {
                assert!(out.status.success(), "{option} ({verdict}): {err}")
            }
            "refused" => {
                let name = option.split('=').next().unwrap();
                assert!(!out.status.success(), "{option} must be refused");
                assert_eq!(err.lines().count(), 1, "{option}: {err}");
                assert!(err.contains(name), "{option}: {err}");
            }
            other => panic!("unknown answer {other:?} in: {line}"),
        }
        rows += 1;
    }
    assert!(rows > 100, "only {rows} rows in the table");
    assert!(!is_mounted(&s.mnt));
}

/// The sshfs short flags are taken as sshfs takes them, and an unknown one is one line
/// without clap's "use '-- -X'" tip.
#[test]
fn sshfs_short_flags() {
    let s = Scene::new();
    let run = |args: &[&str]| {
        run_command(
            s.command(sshfs_rs_bin())
                .args(args)
                .args(["-F", "/dev/null"]),
            RUN_TIMEOUT,
        )
    };
    let out = run(&["-C", "-s", "-v", "--debug", "--help"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["-1", "h:", "/nonexistent"]);
    assert!(text(&out.stderr).contains("protocol 1"), "{out:?}");
    let out = run(&["-X", "h:", "/nonexistent"]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(
        err.trim_end(),
        "sshfs-rs: unknown option '-X' (see sshfs-rs --help)"
    );
    // -C and -s really are accepted in a mount (here, one that fails later on the mountpoint).
    let out = run(&["-C", "-s", &s.source(), "/nonexistent"]);
    assert!(text(&out.stderr).contains("/nonexistent"), "{out:?}");
}

/// Sends SIGTERM to the process whose pid is in the file, if it is still there, on drop (the
/// automount a failed test started).
struct StopByPidFile(PathBuf);

impl Drop for StopByPidFile {
    fn drop(&mut self) {
        let pid = fs::read_to_string(&self.0).ok();
        if let Some(pid) = pid.and_then(|p| p.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}

/// autofs (Debian `autofs`), in a private mount namespace that sees the helper link in /sbin:
/// `automount -f` on a temporary master map with a 2 s timeout; reading a file under the map's
/// key mounts the server's directory (typed, named and flagged as it should be), the timeout
/// unmounts it, and stopping automount (by its pid) leaves nothing behind.
///
/// Where automount cannot run (not installed: `apt-get install autofs`; a kernel without
/// autofs; no private mount namespace) it prints a `skipped:` line naming what is missing, and
/// checks our part instead: the helper called as automount's mount(8) calls it
/// ([`helper_as_automount_runs_it`]).
#[test]
fn autofs_mounts_on_access_and_unmounts_on_timeout() {
    let missing = needs::automount()
        .and_then(|()| needs::autofs())
        .and_then(|()| needs::private_mount_namespace());
    if let Err(why) = missing {
        skip_note(&format!(
            "automount: {why}; the helper is run as automount runs it instead"
        ));
        helper_as_automount_runs_it(&Scene::new());
        return;
    }
    let s = Scene::new();
    let base = s.base();
    let auto = base.join("auto");
    fs::create_dir(&auto).unwrap();
    let map = base.join("auto.map");
    let ssh = s.ssh_options();
    fs::write(
        &map,
        format!(
            "x -fstype=fuse.sshfs-rs,rw,{ssh} :root@127.0.0.1\\:{}\n",
            s.sshd.root_dir().display()
        ),
    )
    .unwrap();
    let master = base.join("auto.master");
    fs::write(
        &master,
        format!("{} {} --timeout=2\n", auto.display(), map.display()),
    )
    .unwrap();
    let pidfile = base.join("automount.pid");
    let _stop = StopByPidFile(pidfile.clone());
    let auto_x = auto.join("x");
    let script = format!(
        "trap 'st=$?; p=$(cat {pid} 2>/dev/null || true); [ -z \"$p\" ] || kill $p; exit $st' EXIT\n\
         setsid automount -f -d -p '{pid}' '{master}' >'{log}' 2>&1 &\n\
         for i in $(seq 100); do grep -q ' {auto} autofs ' /proc/self/mounts && break; sleep 0.1; done\n\
         cat '{x}/hello.txt' >/dev/null || {{ echo no-mount; sleep 1; cat '{log}'; }}\n\
         grep ' {x} ' /proc/self/mounts || true\n\
         for i in $(seq 300); do grep -q ' {x} ' /proc/self/mounts || break; sleep 0.1; done\n\
         grep -q ' {x} ' /proc/self/mounts && echo still-mounted\n\
         kill $(cat '{pid}')\n\
         wait\n\
         grep -q ' {auto} ' /proc/self/mounts && echo autofs-left\n\
         true\n",
        pid = pidfile.display(),
        master = master.display(),
        log = base.join("automount.log").display(),
        auto = auto.display(),
        x = auto_x.display(),
    );
    let out = in_namespace_with(&s, &["mount.fuse.sshfs-rs"], &script);
    let log = fs::read_to_string(base.join("automount.log")).unwrap_or_default();
    let entry = mount_entry_in(&out, &auto_x)
        .unwrap_or_else(|| panic!("no mount on access: {out}\nautomount log:\n{log}"));
    assert_eq!(entry.0, s.source());
    assert_eq!(entry.1, "fuse.sshfs-rs");
    let flags = options_of(&entry);
    assert!(
        flags.contains(&"nosuid".to_owned()) && flags.contains(&"nodev".to_owned()),
        "{entry:?}"
    );
    assert!(
        !out.contains("still-mounted"),
        "the timeout did not unmount: {out}\n{log}"
    );
    assert!(
        !out.contains("autofs-left"),
        "automount left its mount: {out}\n{log}"
    );
    assert_sshfs_rs_gone(&auto_x, SETTLE_TIMEOUT);
}

/// What autofs does for a map entry `x -fstype=fuse.sshfs-rs,rw,OPTS :SRC`, without autofs:
/// the helper called as mount(8) calls it for automount, `mount.fuse.sshfs-rs SRC MNT -n -o
/// rw,OPTS`, as root, in a session of its own (no terminal), stdin null, stdout and stderr
/// pipes read until EOF (as automount reads them). It returns promptly with its stdio released
/// (a bounded wait for EOF), exits 0 with nothing said, and the mount is live: typed and named
/// as it should be, `nosuid,nodev`, and a file written through it is on the server. `umount`
/// ends it and its daemon.
fn helper_as_automount_runs_it(s: &Scene) {
    use std::os::unix::process::CommandExt;

    let auto = s.base().join("auto");
    fs::create_dir(&auto).unwrap();
    let mnt = auto.join("x");
    fs::create_dir(&mnt).unwrap();
    let helper = s.bin().join("mount.fuse.sshfs-rs");
    let mut cmd = s.command(&helper);
    cmd.arg(s.source())
        .arg(&mnt)
        .args(["-n", "-o", &format!("rw,{}", s.ssh_options())]);
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let started = std::time::Instant::now();
    let out = run_to_eof(&mut cmd);
    let took = started.elapsed();
    let cleanup = Unmount(mnt.clone());
    assert!(
        out.status.success(),
        "helper as automount runs it: {} ({took:?})",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    let table = fs::read_to_string("/proc/self/mounts").unwrap();
    let entry = mount_entry_in(&table, &mnt).expect("mounted when the helper returned");
    assert_eq!(entry.0, s.source());
    assert_eq!(entry.1, "fuse.sshfs-rs");
    let flags = options_of(&entry);
    assert!(
        flags.contains(&"rw".to_owned())
            && flags.contains(&"nosuid".to_owned())
            && flags.contains(&"nodev".to_owned()),
        "{entry:?}"
    );
    assert_eq!(
        fs::read_to_string(mnt.join("hello.txt")).unwrap(),
        "hello from the server\n"
    );
    fs::write(mnt.join("through-autofs-form.txt"), "as automount mounts\n").unwrap();
    assert_eq!(
        fs::read_to_string(s.sshd.root_dir().join("through-autofs-form.txt")).unwrap(),
        "as automount mounts\n"
    );
    let out = run_command(Command::new("umount").arg(&mnt), RUN_TIMEOUT);
    assert!(out.status.success(), "umount: {}", text(&out.stderr));
    assert!(!is_mounted(&mnt));
    assert_sshfs_rs_gone(&mnt, SETTLE_TIMEOUT);
    drop(cleanup);
}

/// Unmounts and stops what is left on a mountpoint on drop (also when a test fails).
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        unmount_and_stop(&self.0);
    }
}
