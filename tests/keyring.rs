//! Passwords and key passphrases stored in the OS keyring (`--store-password`,
//! `--store-passphrase`, `--forget-*`), used by mounts that have no terminal and no
//! `-o password_stdin`: the mount helper form (as mount(8) and autofs run it), against a real
//! sshd that takes passwords.
//!
//! The kernel keyring (keyutils) tests store in root's persistent keyring under the entry of
//! their own sshd's port, and forget it again; the processes they run see no session bus, so
//! the keyutils store is chosen. The Secret Service test runs under `dbus-run-session` with a
//! gnome-keyring of its own (HOME and XDG_RUNTIME_DIR in a temp dir), and checks the entry with
//! libsecret's `secret-tool`.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::login::{
    Mountpoint, TestUser, UserDir, files_go_both_ways_and_after_a_cut, key_with_passphrase, logins,
    password_sshd, run_ok,
};
use support::{
    FaultProxy, Sshd, is_mounted, lacking, needs, run_command, skip_note, sshfs_rs_bin, wait_until,
};

/// Bound on one sshfs-rs command (a mount returns once it is live).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the test's sshfs-rs processes run: HOME, a runtime dir with no session bus in it, and
/// `mount.fuse.sshfs-rs` (the helper form) linked to the binary under test.
struct Place {
    mnt: Mountpoint,
}

impl Place {
    fn new() -> Place {
        let mnt = Mountpoint::new();
        symlink(sshfs_rs_bin(), mnt.base().join("mount.fuse.sshfs-rs")).unwrap();
        fs::create_dir(mnt.base().join("run")).unwrap();
        Place { mnt }
    }

    /// `program args` in a session of its own (no terminal), `stdin` on its stdin, no
    /// ssh-agent and no session bus (so the kernel keyring is the store).
    fn run(&self, program: &Path, args: &[String], stdin: &str) -> Output {
        let input = self.mnt.base().join("stdin");
        fs::write(&input, stdin).unwrap();
        // run_command gives the command /dev/null as stdin: the shell redirects the file.
        let out = run_command(
            Command::new("sh")
                .arg("-c")
                .arg(r#"exec setsid -w "$0" "$@" < "$STDIN_FILE""#)
                .arg(program)
                .args(args)
                .env("STDIN_FILE", &input)
                .env("HOME", self.mnt.home())
                .env("XDG_RUNTIME_DIR", self.mnt.base().join("run"))
                .env_remove("DBUS_SESSION_BUS_ADDRESS")
                .env_remove("SSH_AUTH_SOCK"),
            COMMAND_TIMEOUT,
        );
        let _ = fs::remove_file(&input);
        out
    }

    /// `sshfs-rs args`.
    fn sshfs_rs(&self, args: &[String], stdin: &str) -> Output {
        self.run(&sshfs_rs_bin(), args, stdin)
    }

    /// `sshfs-rs --store-WHAT ENTRY -o password_stdin` (WHAT `password` or `passphrase`),
    /// `input` on its stdin.
    fn store(&self, what: &str, entry: &str, input: &str) -> Output {
        self.sshfs_rs(
            &[
                format!("--store-{what}"),
                entry.to_owned(),
                "-o".into(),
                "password_stdin".into(),
            ],
            input,
        )
    }

    /// `sshfs-rs --forget-WHAT ENTRY`.
    fn forget(&self, what: &str, entry: &str) -> Output {
        self.sshfs_rs(&[format!("--forget-{what}"), entry.to_owned()], "")
    }

    /// The mount helper, as mount(8) runs it: `mount.fuse.sshfs-rs SRC MNT -o OPTS`.
    fn helper_mount(&self, source: &str, opts: &str) -> Output {
        let helper = self.mnt.base().join("mount.fuse.sshfs-rs");
        let args = [
            source.to_owned(),
            self.mnt.path().display().to_string(),
            "-o".to_owned(),
            opts.to_owned(),
        ];
        self.run(&helper, &args, "")
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The pid of the sshfs-rs daemon serving `mnt` (its command line names the mountpoint).
fn daemon_of(mnt: &Path) -> Option<i32> {
    let wanted = mnt.display().to_string();
    fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let words: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let ours = words.first().is_some_and(|w| {
            let w = String::from_utf8_lossy(w);
            w.ends_with("sshfs-rs")
        });
        let names_mnt = words.contains(&wanted.as_bytes());
        (ours && names_mnt).then_some(pid)
    })
}

/// Asserts that `secret` is in neither the command line nor the environment of process `pid`.
fn assert_not_in_argv_or_env(pid: i32, secret: &str) {
    for what in ["cmdline", "environ"] {
        let bytes = fs::read(format!("/proc/{pid}/{what}")).unwrap();
        assert!(
            !text(&bytes).contains(secret),
            "the secret is in /proc/{pid}/{what}"
        );
    }
}

/// Unmounts `mnt` and waits (bounded) for its daemon to exit.
fn unmount(mnt: &Path, daemon: Option<i32>) {
    run_ok("fusermount3", &["-u", &mnt.display().to_string()], None);
    if let Some(pid) = daemon {
        let gone = wait_until(Duration::from_secs(10), || {
            !Path::new(&format!("/proc/{pid}")).exists()
                || fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
        });
        assert!(gone, "the daemon {pid} did not exit after the unmount");
    }
}

/// The entry a password of `user` on the test's sshd (port `port`) is stored under.
fn login(user: &str, port: u16) -> String {
    format!("{user}@127.0.0.1:{port}")
}

/// Forgets the keyutils entry (`what`: password or passphrase, of `entry`) when dropped (a
/// failed test leaves nothing behind).
struct Forget<'a> {
    place: &'a Place,
    what: &'static str,
    entry: String,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        let _ = self.place.forget(self.what, &self.entry);
    }
}

/// keyutils: a password stored with `--store-password` (one line of stdin) lets the mount
/// helper (background, no terminal, no password_stdin, batch mode) mount; files go both ways;
/// a cut connection comes back with the same password; the password is in neither the
/// daemon's argv nor its environment. After `--forget-password` the same mount fails with one
/// line and nothing is mounted.
#[test]
fn keyutils_stored_password_mounts_without_asking() {
    if lacking(needs::kernel_persistent_keyring().and_then(|()| needs::local_users())) {
        return;
    }
    let password = "kr pass 1 keyutils";
    let user = TestUser::with_password("kr", password);
    let sshd = password_sshd();
    let dir = UserDir::new(&user);
    let proxy = FaultProxy::start(sshd.port());
    sshd.trust_port(proxy.port());
    let place = Place::new();
    let who = login(&user.name, proxy.port());
    let _forget = Forget {
        place: &place,
        what: "password",
        entry: who.clone(),
    };

    let out = place.store("password", &who, &format!("{password}\n"));
    assert!(out.status.success(), "store: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim_end(),
        format!(
            "sshfs-rs: stored the password for {who} in the kernel keyring (keyutils, persistent keyring)"
        )
    );
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));

    let source = format!("{}@127.0.0.1:{}", user.name, dir.data.display());
    let opts = format!(
        "port={},UserKnownHostsFile={},StrictHostKeyChecking=yes",
        proxy.port(),
        sshd.known_hosts().display()
    );
    let out = place.helper_mount(&source, &opts);
    assert!(
        out.status.success(),
        "helper mount: {}\nsshd log:\n{}",
        text(&out.stderr),
        sshd.log()
    );
    let mnt = place.mnt.path();
    assert!(is_mounted(mnt), "not mounted after exit 0");
    let daemon = daemon_of(mnt);
    assert_eq!(logins(&sshd, "password", &user.name), 1, "{}", sshd.log());

    // Then a cut connection: the reconnect logs in with the same password, asking no one.
    let stats = files_go_both_ways_and_after_a_cut(
        mnt,
        &dir,
        &user,
        &proxy,
        b"through the stored password\n",
    );
    assert!(stats.get("reconnects=") >= 1);
    assert_eq!(logins(&sshd, "password", &user.name), 2, "{}", sshd.log());

    let pid = daemon.expect("the daemon serving the mount");
    assert_not_in_argv_or_env(pid, password);
    unmount(mnt, Some(pid));

    let out = place.forget("password", &who);
    assert!(out.status.success(), "forget: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim_end(),
        format!(
            "sshfs-rs: removed the password for {who} from the kernel keyring (keyutils, persistent keyring)"
        )
    );
    let out = place.helper_mount(&source, &opts);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("Permission denied") && stderr.contains("password (not tried"),
        "{stderr}"
    );
    assert!(!is_mounted(mnt));
    // Forgetting again: nothing there, one line, non-zero.
    let out = place.forget("password", &who);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("nothing removed"),
        "{}",
        text(&out.stderr)
    );
}

/// A stored password the server refuses: the mount fails with one line that says so and how
/// to store the right one, and the password is sent once (not retried in a loop).
#[test]
fn refused_stored_password_is_one_line_and_sent_once() {
    if lacking(needs::kernel_persistent_keyring().and_then(|()| needs::local_users())) {
        return;
    }
    let user = TestUser::with_password("krbad", "the right one");
    let sshd = password_sshd();
    let dir = UserDir::new(&user);
    let place = Place::new();
    let who = login(&user.name, sshd.port());
    let _forget = Forget {
        place: &place,
        what: "password",
        entry: who.clone(),
    };
    let out = place.store("password", &who, "a wrong one\n");
    assert!(out.status.success(), "store: {}", text(&out.stderr));

    let source = format!("{}@127.0.0.1:{}", user.name, dir.data.display());
    let opts = format!(
        "port={},UserKnownHostsFile={}",
        sshd.port(),
        sshd.known_hosts().display()
    );
    let out = place.helper_mount(&source, &opts);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("the password stored in the keyring was refused by the server")
            && stderr.contains(&format!("sshfs-rs --store-password {who}")),
        "{stderr}"
    );
    assert!(!is_mounted(place.mnt.path()));
    let failed = sshd
        .log()
        .lines()
        .filter(|l| l.contains("Failed password for"))
        .count();
    assert_eq!(failed, 1, "the password is sent once:\n{}", sshd.log());
}

/// A passphrase-protected key: `--store-passphrase` checks the passphrase against the key
/// (a wrong one is not stored), and the stored one lets the mount helper use the key with no
/// terminal. A foreground `-d` mount logs that the keyring was used, never the passphrase.
#[test]
fn stored_passphrase_unlocks_the_key_without_a_terminal() {
    if lacking(needs::kernel_persistent_keyring()) {
        return;
    }
    let passphrase = "kr phrase for the key";
    let sshd = Sshd::start();
    let place = Place::new();
    let key = place.mnt.base().join("locked_ed25519");
    key_with_passphrase(&key, passphrase);
    let public = fs::read_to_string(key.with_extension("pub")).unwrap();
    fs::OpenOptions::new()
        .append(true)
        .open(sshd.temp_dir().join("authorized_keys"))
        .unwrap()
        .write_all(public.as_bytes())
        .unwrap();
    let key_arg = key.display().to_string();
    let _forget = Forget {
        place: &place,
        what: "passphrase",
        entry: key_arg.clone(),
    };
    let store = |input: &str| place.store("passphrase", &key_arg, input);
    let out = store("not the passphrase\n");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("wrong passphrase")
            && text(&out.stderr).contains("nothing stored"),
        "{}",
        text(&out.stderr)
    );
    let out = store(&format!("{passphrase}\n"));
    assert!(out.status.success(), "store: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!(
            "stored the passphrase of key {key_arg} in the kernel keyring"
        )),
        "{}",
        text(&out.stdout)
    );

    let source = format!("root@127.0.0.1:{}", sshd.root_dir().display());
    let opts = format!(
        "port={},IdentityFile={key_arg},UserKnownHostsFile={}",
        sshd.port(),
        sshd.known_hosts().display()
    );
    let out = place.helper_mount(&source, &opts);
    assert!(out.status.success(), "helper mount: {}", text(&out.stderr));
    let mnt = place.mnt.path();
    fs::write(mnt.join("by-key"), b"unlocked from the keyring").unwrap();
    assert_eq!(
        fs::read(sshd.root_dir().join("by-key")).unwrap(),
        b"unlocked from the keyring"
    );
    let daemon = daemon_of(mnt);
    assert_not_in_argv_or_env(daemon.expect("the daemon"), passphrase);
    unmount(mnt, daemon);

    // In the foreground with -d, everything logged: the keyring is named, the secret is not.
    let log = place.mnt.base().join("debug.log");
    let mut child = Command::new("setsid")
        .arg(sshfs_rs_bin())
        .arg(&source)
        .arg(mnt)
        .args(["-d", "-o", &format!("{opts},BatchMode=yes")])
        .env("HOME", place.mnt.home())
        .env("XDG_RUNTIME_DIR", place.mnt.base().join("run"))
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mounted = wait_until(COMMAND_TIMEOUT, || is_mounted(mnt));
    if mounted {
        assert_eq!(
            fs::read(mnt.join("by-key")).unwrap(),
            b"unlocked from the keyring"
        );
        let _ = Command::new("fusermount3").arg("-u").arg(mnt).status();
    }
    let exited = wait_until(Duration::from_secs(10), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
    let logged = fs::read_to_string(&log).unwrap();
    assert!(mounted, "the -d mount did not mount: {logged}");
    assert!(
        logged.contains(&format!(
            "using the secret stored for {key_arg} in the kernel keyring"
        )),
        "{logged}"
    );
    assert!(!logged.contains(passphrase), "the passphrase is in the log");

    let out = place.forget("passphrase", &key_arg);
    assert!(out.status.success(), "forget: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("removed the passphrase of key"));
}

/// The Secret Service: under `dbus-run-session` with a gnome-keyring of its own, the password
/// is stored there (secret-tool finds it; the kernel keyring has no entry), a background mount
/// with no terminal uses it, and `--forget-password` removes it.
#[test]
fn secret_service_stored_password_mounts_without_asking() {
    if lacking(needs::secret_service_programs().and_then(|()| needs::local_users())) {
        return;
    }
    let password = "kr pass 2 secret service";
    let user = TestUser::with_password("krss", password);
    let sshd = password_sshd();
    let dir = UserDir::new(&user);
    let place = Place::new();
    let base = place.mnt.base().to_path_buf();
    let who = login(&user.name, sshd.port());
    // The password reaches the store command through a file (never argv or environment).
    let secret_file = base.join("password");
    fs::write(&secret_file, format!("{password}\n")).unwrap();
    fs::create_dir(base.join("ss-home")).unwrap();
    let bin = sshfs_rs_bin();
    let mnt = place.mnt.path();
    let script = format!(
        r#"set -u
exec 2>>"{base}/script.err"
echo up > "{base}/bus"
echo -n unlock-for-test | gnome-keyring-daemon --unlock --components=secrets > /dev/null
# Whether this machine gives a working Secret Service at all, before sshfs-rs is asked.
if ! echo -n probe | secret-tool store --label=probe service sshfs-rs-probe item probe \
    || [ "$(secret-tool lookup service sshfs-rs-probe item probe)" != probe ]; then
  echo broken > "{base}/no-secret-service"
  exit 0
fi
"{bin}" --store-password {who} -o password_stdin < "{secret}" > "{base}/store.out"
rm -f "{secret}"
secret-tool lookup service sshfs-rs username {who} > "{base}/lookup.out"
secret-tool search service sshfs-rs username {who} > "{base}/search.out" 2>&1
"{bin}" --forget-password {who} -o keyring=keyutils > "{base}/keyutils.out" 2>&1
setsid -w "{bin}" {user}@127.0.0.1:{data} "{mnt}" -p {port} -o UserKnownHostsFile={kh},BatchMode=yes < /dev/null > "{base}/mount.out" 2>&1
echo "mount exit $?" >> "{base}/mount.out"
echo through-secret-service > "{mnt}/ss-file"
cat "{mnt}/server-file" > "{base}/read.out"
fusermount3 -u "{mnt}"
"{bin}" --forget-password {who} > "{base}/forget.out" 2>&1
secret-tool lookup service sshfs-rs username {who} > "{base}/lookup-after.out"
echo done > "{base}/done"
"#,
        base = base.display(),
        bin = bin.display(),
        secret = secret_file.display(),
        user = user.name,
        data = dir.data.display(),
        mnt = mnt.display(),
        port = sshd.port(),
        kh = sshd.known_hosts().display(),
    );
    fs::write(dir.data.join("server-file"), b"from the server").unwrap();
    let runtime = base.join("ss-run");
    fs::create_dir(&runtime).unwrap();
    fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let out = run_command(
        Command::new("dbus-run-session")
            .args(["--", "sh", "-c", &script])
            .env("HOME", base.join("ss-home"))
            .env("XDG_RUNTIME_DIR", &runtime)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("SSH_AUTH_SOCK"),
        Duration::from_secs(120),
    );
    if is_mounted(mnt) {
        let _ = Command::new("fusermount3").arg("-u").arg(mnt).status();
    }
    // Whatever the script left behind: the keyring daemon it started is gone with the bus.
    let read = |name: &str| fs::read_to_string(base.join(name)).unwrap_or_default();
    if read("bus").is_empty() {
        skip_note(&format!(
            "dbus-run-session starts no session bus here ({}): check the dbus package's \
             session configuration",
            text(&out.stderr).trim()
        ));
        return;
    }
    if !read("no-secret-service").is_empty() {
        skip_note(&format!(
            "gnome-keyring-daemon on a session bus gives no working Secret Service here \
             (secret-tool cannot store and read back an item: {}): check gnome-keyring",
            read("script.err").trim()
        ));
        return;
    }
    let context = format!(
        "script stderr:\n{}\nrun stderr:\n{}\nmount:\n{}",
        read("script.err"),
        text(&out.stderr),
        read("mount.out")
    );
    assert_eq!(read("done"), "done\n", "{context}");
    assert_eq!(
        read("store.out").trim_end(),
        format!("sshfs-rs: stored the password for {who} in the Secret Service (D-Bus)"),
        "{context}"
    );
    assert_eq!(
        read("lookup.out"),
        password,
        "secret-tool lookup: {context}"
    );
    assert!(
        read("search.out").contains(&format!("label = sshfs-rs: {who}")),
        "the item's label: {}",
        read("search.out")
    );
    assert!(
        read("keyutils.out").contains("no password for")
            && read("keyutils.out").contains("kernel keyring"),
        "the kernel keyring has it too: {}",
        read("keyutils.out")
    );
    assert!(read("mount.out").contains("mount exit 0"), "{context}");
    assert_eq!(
        fs::read(dir.data.join("ss-file")).unwrap(),
        b"through-secret-service\n"
    );
    assert_eq!(read("read.out"), "from the server");
    assert_eq!(logins(&sshd, "password", &user.name), 1, "{}", sshd.log());
    assert!(
        read("forget.out").contains(&format!(
            "removed the password for {who} from the Secret Service"
        )),
        "{context}\n{}",
        read("forget.out")
    );
    assert_eq!(read("lookup-after.out"), "", "still in the Secret Service");
}
