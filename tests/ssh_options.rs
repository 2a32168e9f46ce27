//! OpenSSH's options with their ssh_config(5) meaning, through a real mount against real sshd
//! instances: algorithm lists (`+`, `-`, `^`) checked against what sshd logs it negotiated,
//! compression, user certificates, IdentitiesOnly and IdentityAgent with a real ssh-agent,
//! PreferredAuthentications / PubkeyAuthentication, HostKeyAlias and GlobalKnownHostsFile,
//! AddressFamily and ConnectionAttempts.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::ffi::OsStr;
use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::login::key_with_passphrase;
use support::{
    FaultProxy, Mount, MountStats, Sshd, SshdOptions, is_mounted, no_config_args, run_plain,
    wait_until,
};

/// Bound on a failing sshfs-rs run.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// An sshd logging at DEBUG (it names the negotiated algorithms and each key offered), with
/// `extra` sshd_config lines.
fn debug_sshd(extra: &str) -> Sshd {
    Sshd::start_with(SshdOptions {
        extra_config: format!("LogLevel DEBUG1\n{extra}"),
        ..SshdOptions::default()
    })
}

/// `root@127.0.0.1:ROOT`.
fn source(sshd: &Sshd) -> String {
    format!("root@127.0.0.1:{}", sshd.root_dir().display())
}

/// `-F /dev/null -p PORT -o UserKnownHostsFile=..,StrictHostKeyChecking=yes,BatchMode=yes`:
/// the server's known_hosts, no key.
fn base_args(sshd: &Sshd) -> Vec<String> {
    no_config_args(
        sshd.port(),
        format!(
            "UserKnownHostsFile={},StrictHostKeyChecking=yes,BatchMode=yes",
            sshd.known_hosts().display()
        ),
    )
}

/// [`base_args`] with the server's user key.
fn key_args(sshd: &Sshd) -> Vec<String> {
    let mut a = base_args(sshd);
    a.extend([
        "-o".into(),
        format!("IdentityFile={}", sshd.user_key().display()),
    ]);
    a
}

fn with(mut args: Vec<String>, more: &[&str]) -> Vec<String> {
    args.extend(more.iter().map(|s| s.to_string()));
    args
}

/// Mounts with `args` (HOME the server's empty client home, `env` applied).
fn mount(sshd: &Sshd, args: &[String], env: &[(&str, Option<&OsStr>)]) -> Mount {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Mount::start_plain(&source(sshd), &args, sshd.home(), env)
}

/// Runs sshfs-rs in the foreground with `args`, expecting it to fail; returns its stderr after
/// checking the failure is one line and nothing is left mounted.
fn fails(sshd: &Sshd, args: &[String], env: &[(&str, Option<&OsStr>)]) -> String {
    let mnt = tempfile::tempdir().unwrap();
    let out = run(&source(sshd), mnt.path(), args, sshd.home(), env);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} mounted: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(!is_mounted(mnt.path()));
    stderr
}

fn run(
    source: &str,
    mnt: &Path,
    args: &[String],
    home: &Path,
    env: &[(&str, Option<&OsStr>)],
) -> Output {
    run_plain(source, mnt, args, home, env, RUN_TIMEOUT)
}

/// Writes a file through the mount and reads it on the server.
fn works(m: &Mount, sshd: &Sshd, name: &str) {
    fs::write(m.path().join(name), name.as_bytes()).unwrap();
    assert_eq!(
        fs::read(sshd.root_dir().join(name)).unwrap(),
        name.as_bytes()
    );
}

/// Mounts with `args` and `env` ([`mount`]), writes `name` through the mount ([`works`]),
/// unmounts, and returns what sshd logged meanwhile.
fn mount_and_log(
    sshd: &Sshd,
    args: &[String],
    env: &[(&str, Option<&OsStr>)],
    name: &str,
) -> String {
    let at = sshd.log().len();
    let m = mount(sshd, args, env);
    works(&m, sshd, name);
    drop(m);
    log_since(sshd, at)
}

/// sshd's log from byte `from` on.
fn log_since(sshd: &Sshd, from: usize) -> String {
    sshd.log().get(from..).unwrap_or_default().to_owned()
}

/// The last line of `log` that contains `what`.
fn last_line<'a>(log: &'a str, what: &str) -> &'a str {
    log.lines()
        .rev()
        .find(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no '{what}' in the sshd log:\n{log}"))
}

/// Ciphers, MACs, KexAlgorithms and HostKeyAlgorithms, against an sshd that takes two of each:
/// the default picks sshfs-rs's first choice, `^` puts another first (sshd's log shows it
/// negotiated), an explicit list is used as is, `-` (with a wildcard) removing both fails with
/// one line naming the algorithm kind, and a name sshfs-rs does not implement is an error when
/// it is the only one, a warning otherwise. `-C` compresses (zlib@openssh.com in the log).
#[test]
fn algorithm_lists_decide_what_is_negotiated() {
    let sshd = debug_sshd(
        "Ciphers aes128-ctr,aes256-ctr\nMACs hmac-sha2-256,hmac-sha2-512\nKexAlgorithms curve25519-sha256,diffie-hellman-group14-sha256\n",
    );
    let cipher_line = "kex: client->server cipher:";

    let log = mount_and_log(&sshd, &key_args(&sshd), &[], "default");
    let line = last_line(&log, cipher_line);
    assert!(
        line.contains("cipher: aes256-ctr MAC: hmac-sha2-512 compression: none"),
        "{line}"
    );
    assert!(last_line(&log, "kex: algorithm:").contains("curve25519-sha256"));

    let log = mount_and_log(
        &sshd,
        &with(
            key_args(&sshd),
            &[
                "-o",
                "Ciphers=^aes128-ctr,MACs=^hmac-sha2-256,KexAlgorithms=^diffie-hellman-group14-sha256",
            ],
        ),
        &[],
        "caret",
    );
    assert!(
        last_line(&log, cipher_line).contains("cipher: aes128-ctr MAC: hmac-sha2-256"),
        "{log}"
    );
    assert!(last_line(&log, "kex: algorithm:").contains("diffie-hellman-group14-sha256"));

    // An explicit list (its commas need no escaping), and compression.
    let at = sshd.log().len();
    let m = mount(
        &sshd,
        &with(
            key_args(&sshd),
            &["-C", "-o", "Ciphers=aes256-gcm@openssh.com,aes128-ctr,ro"],
        ),
        &[],
    );
    assert_eq!(
        fs::read_dir(m.path()).unwrap().count(),
        fs::read_dir(sshd.root_dir()).unwrap().count()
    );
    assert!(
        fs::write(m.path().join("ro"), b"x").is_err(),
        "ro after the list"
    );
    drop(m);
    let log = log_since(&sshd, at);
    assert!(
        last_line(&log, cipher_line)
            .contains("cipher: aes128-ctr MAC: hmac-sha2-512 compression: zlib@openssh.com"),
        "{log}"
    );

    for (option, kind) in [
        ("Ciphers=-aes*-ctr", "no matching cipher found"),
        ("MACs=-hmac-sha2-256,hmac-sha2-512", "no matching MAC found"),
        (
            "KexAlgorithms=curve25519-sha256@libssh.org",
            "no matching key exchange method found",
        ),
        (
            "HostKeyAlgorithms=rsa-sha2-512",
            "no matching host key type found",
        ),
    ] {
        let e = fails(&sshd, &with(key_args(&sshd), &["-o", option]), &[]);
        assert!(
            e.contains(kind) && e.contains("Unable to negotiate with 127.0.0.1"),
            "{option}: {e}"
        );
    }

    let e = fails(
        &sshd,
        &with(key_args(&sshd), &["-o", "Ciphers=3des-cbc"]),
        &[],
    );
    assert!(
        e.contains("3des-cbc") && e.contains("does not implement"),
        "{e}"
    );
    let e = fails(
        &sshd,
        &with(key_args(&sshd), &["-o", "MACs=hmac-sha3"]),
        &[],
    );
    assert!(e.contains("unknown MAC 'hmac-sha3'"), "{e}");
    let m = mount(
        &sshd,
        &with(key_args(&sshd), &["-o", "Ciphers=3des-cbc,aes128-ctr"]),
        &[],
    );
    works(&m, &sshd, "skipped");
    assert!(
        m.stderr()
            .contains("warning: Ciphers: sshfs-rs does not implement 3des-cbc; skipped"),
        "{}",
        m.stderr()
    );
}

/// The same lists from ssh_config: a `Host` block's `Ciphers -aes256*` makes aes128-ctr the
/// choice; other ssh options with -o are warned about as in ssh_config (unless LogLevel ERROR);
/// AddressFamily inet6 to an IPv4 address fails with one line.
#[test]
fn algorithm_lists_and_address_family_from_ssh_config() {
    let sshd = debug_sshd("Ciphers aes128-ctr,aes256-ctr\n");
    let config = sshd.temp_dir().join("client_config");
    fs::write(
        &config,
        format!(
            "Host srv\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile {}\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  BatchMode yes\n  Ciphers -aes256*\n  AddressFamily inet\n",
            sshd.port(),
            sshd.user_key().display(),
            sshd.known_hosts().display()
        ),
    )
    .unwrap();
    let src = format!("srv:{}", sshd.root_dir().display());
    let f = config.display().to_string();
    let at = sshd.log().len();
    let m = Mount::start_plain(&src, &["-F", &f], sshd.home(), &[]);
    fs::write(m.path().join("via-config"), b"c").unwrap();
    assert_eq!(fs::read(sshd.root_dir().join("via-config")).unwrap(), b"c");
    drop(m);
    let log = log_since(&sshd, at);
    assert!(
        last_line(&log, "kex: client->server cipher:").contains("cipher: aes128-ctr"),
        "{log}"
    );

    // Other ssh options given with -o are taken as in ssh_config: one not acted on is named in
    // one warning line (not with LogLevel ERROR), one meaningless for a mount is not.
    let m = Mount::start_plain(
        &src,
        &["-F", &f, "-o", "ControlMaster=auto,SendEnv=LANG"],
        sshd.home(),
        &[],
    );
    let warnings: Vec<String> = m
        .stderr()
        .lines()
        .filter(|l| l.contains("warning"))
        .map(str::to_owned)
        .collect();
    assert_eq!(warnings.len(), 1, "{}", m.stderr());
    assert!(
        warnings[0].contains("-o ControlMaster") && !warnings[0].contains("SendEnv"),
        "{warnings:?}"
    );
    drop(m);
    let m = Mount::start_plain(
        &src,
        &["-F", &f, "-o", "ControlMaster=auto,LogLevel=ERROR"],
        sshd.home(),
        &[],
    );
    assert!(!m.stderr().contains("warning"), "{}", m.stderr());
    drop(m);

    let mnt = tempfile::tempdir().unwrap();
    let out = run(
        &src,
        mnt.path(),
        &["-F".into(), f, "-o".into(), "AddressFamily=inet6".into()],
        sshd.home(),
        &[],
    );
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(e.contains("no IPv6 address"), "{e}");
}

/// `ssh-keygen` output checked.
fn keygen(args: &[&str]) {
    let out = Command::new("ssh-keygen")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A new unencrypted ed25519 key at `path`.
fn new_key(path: &Path) {
    key_with_passphrase(path, "");
}

/// `SHA256:...` of a public key file.
fn fingerprint(public: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(public)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned()
}

/// A user certificate signed by a CA sshd trusts (no authorized key at all): the certificate
/// next to the key (`KEY-cert.pub`) is offered, as by ssh; one elsewhere with CertificateFile;
/// without the certificate the same key is refused.
#[test]
fn certificate_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().canonicalize().unwrap();
    let ca = d.join("ca");
    new_key(&ca);
    let sshd = Sshd::start_with(SshdOptions {
        extra_config: format!(
            "LogLevel INFO\nTrustedUserCAKeys {}\nAuthorizedKeysFile none\n",
            ca.with_extension("pub").display()
        ),
        ..SshdOptions::default()
    });
    let key = d.join("user");
    new_key(&key);
    keygen(&[
        "-q",
        "-s",
        ca.to_str().unwrap(),
        "-I",
        "sshfs-rs-test",
        "-n",
        "root",
        "-V",
        "-5m:+1h",
        d.join("user.pub").to_str().unwrap(),
    ]);
    let cert_next_to_key = d.join("user-cert.pub");
    assert!(cert_next_to_key.exists());
    let id = format!("IdentityFile={}", key.display());

    let m = mount(&sshd, &with(base_args(&sshd), &["-o", &id]), &[]);
    works(&m, &sshd, "next-to-key");
    drop(m);
    let accepted = |log: &str| {
        log.lines()
            .filter(|l| l.contains("Accepted publickey for root") && l.contains("ED25519-CERT"))
            .count()
    };
    assert_eq!(accepted(&sshd.log()), 1, "{}", sshd.log());

    let elsewhere = d.join("elsewhere.cert");
    fs::rename(&cert_next_to_key, &elsewhere).unwrap();
    let e = fails(&sshd, &with(base_args(&sshd), &["-o", &id]), &[]);
    assert!(
        e.contains(&format!(
            "publickey {} (refused by the server)",
            key.display()
        )),
        "{e}"
    );
    let m = mount(
        &sshd,
        &with(
            base_args(&sshd),
            &[
                "-o",
                &id,
                "-o",
                &format!("CertificateFile={}", elsewhere.display()),
            ],
        ),
        &[],
    );
    works(&m, &sshd, "certificate-file");
    drop(m);
    assert_eq!(accepted(&sshd.log()), 2, "{}", sshd.log());
}

/// An ssh-agent started by the test, stopped (by its pid) when dropped.
struct Agent {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start() -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().canonicalize().unwrap().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run ssh-agent");
        let mut agent = Agent {
            child,
            socket,
            _dir: dir,
        };
        assert!(
            wait_until(Duration::from_secs(10), || agent.socket.exists()),
            "ssh-agent made no socket"
        );
        assert!(
            agent.child.try_wait().unwrap().is_none(),
            "ssh-agent exited"
        );
        agent
    }

    fn add(&self, key: &Path) {
        let out = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh-add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn env(&self) -> (&'static str, Option<&OsStr>) {
        ("SSH_AUTH_SOCK", Some(self.socket.as_os_str()))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An agent holding only a wrong key, the right key as IdentityFile: without IdentitiesOnly the
/// agent's key is offered first (sshd logs its fingerprint); with IdentitiesOnly=yes, or
/// IdentityAgent=none, it is never offered. IdentityAgent=SOCKET finds an agent that
/// SSH_AUTH_SOCK does not name.
#[test]
fn identities_only_and_identity_agent() {
    let sshd = debug_sshd("");
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().canonicalize().unwrap().join("wrong");
    new_key(&wrong);
    let wrong_fp = fingerprint(&wrong.with_extension("pub"));
    let agent = Agent::start();
    agent.add(&wrong);
    let env = [agent.env()];

    let log = mount_and_log(&sshd, &key_args(&sshd), &env, "agent-first");
    assert!(log.contains(&wrong_fp), "the agent's key was not offered");

    for option in ["IdentitiesOnly=yes", "IdentityAgent=none"] {
        let log = mount_and_log(&sshd, &with(key_args(&sshd), &["-o", option]), &env, "only");
        assert!(
            !log.contains(&wrong_fp),
            "{option}: the agent's key was offered:\n{log}"
        );
    }

    // The right key in a second agent that only IdentityAgent names; no IdentityFile.
    let right_agent = Agent::start();
    right_agent.add(sshd.user_key());
    let socket = format!("IdentityAgent={}", right_agent.socket.display());
    let m = mount(&sshd, &with(base_args(&sshd), &["-o", &socket]), &env);
    works(&m, &sshd, "identity-agent");
    drop(m);
    let e = fails(
        &sshd,
        &with(base_args(&sshd), &["-o", "IdentityAgent=none"]),
        &[right_agent.env()],
    );
    assert!(e.contains("Permission denied for root@127.0.0.1"), "{e}");
}

/// PreferredAuthentications and PubkeyAuthentication=no: the error names each method the
/// server offers and why it was not tried; a preferred order that ends in publickey mounts.
#[test]
fn preferred_authentications_and_pubkey_authentication() {
    let sshd = Sshd::start_with(SshdOptions {
        password_auth: true,
        ..SshdOptions::default()
    });
    let refusals: [(&str, &[&str]); 3] = [
        (
            "PubkeyAuthentication=no",
            &[
                "Permission denied for root@127.0.0.1",
                "password (not tried: BatchMode is set)",
                "publickey (not tried: PubkeyAuthentication is no)",
            ],
        ),
        (
            "PreferredAuthentications=password",
            &["publickey (not tried: not in PreferredAuthentications)"],
        ),
        (
            "PasswordAuthentication=no,PubkeyAuthentication=no",
            &["password (not tried: PasswordAuthentication is no)"],
        ),
    ];
    for (option, wants) in refusals {
        let e = fails(&sshd, &with(key_args(&sshd), &["-o", option]), &[]);
        for want in wants {
            assert!(e.contains(want), "-o {option}: {want:?} not in {e}");
        }
    }
    let m = mount(
        &sshd,
        &with(
            key_args(&sshd),
            &["-o", "PreferredAuthentications=password,publickey"],
        ),
        &[],
    );
    works(&m, &sshd, "preferred");
}

/// HostKeyAlias and GlobalKnownHostsFile with StrictHostKeyChecking=yes: the key listed in a
/// global file under the alias is accepted, the same file without the alias is not; with
/// accept-new the key is added to the user's file under the alias (no port).
#[test]
fn host_key_alias_and_global_known_hosts_file() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().canonicalize().unwrap();
    let global = d.join("global_known_hosts");
    fs::write(&global, format!("myalias {}\n", sshd.host_pubkey_line())).unwrap();
    let empty = d.join("empty_known_hosts");
    fs::write(&empty, "").unwrap();
    let args = |extra: &str| {
        no_config_args(
            sshd.port(),
            format!(
                "IdentityFile={},UserKnownHostsFile={},GlobalKnownHostsFile={},BatchMode=yes{extra}",
                sshd.user_key().display(),
                empty.display(),
                global.display()
            ),
        )
    };
    let m = mount(
        &sshd,
        &args(",StrictHostKeyChecking=yes,HostKeyAlias=myalias"),
        &[],
    );
    works(&m, &sshd, "alias");
    drop(m);

    let e = fails(&sshd, &args(",StrictHostKeyChecking=yes"), &[]);
    assert!(
        e.contains("Host key verification failed")
            && e.contains(&format!("[127.0.0.1]:{}", sshd.port())),
        "{e}"
    );
    let e = fails(
        &sshd,
        &args(",StrictHostKeyChecking=yes,HostKeyAlias=other"),
        &[],
    );
    assert!(e.contains("no ssh-ed25519 key for other"), "{e}");

    let m = mount(
        &sshd,
        &args(",StrictHostKeyChecking=accept-new,HostKeyAlias=newalias"),
        &[],
    );
    works(&m, &sshd, "learned");
    drop(m);
    let learned = fs::read_to_string(&empty).unwrap();
    assert_eq!(
        learned,
        format!("newalias {}\n", sshd.host_pubkey_line()),
        "added under the alias"
    );
}

/// ConnectionAttempts=3 to a port nobody listens on: three connects, one second apart, then
/// one line.
#[test]
fn connection_attempts() {
    let port = {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let home = tempfile::tempdir().unwrap();
    let mnt = tempfile::tempdir().unwrap();
    let args = |n: &str| no_config_args(port, format!("BatchMode=yes,ConnectionAttempts={n}"));
    let start = Instant::now();
    let out = run("127.0.0.1:", mnt.path(), &args("1"), home.path(), &[]);
    let once = start.elapsed();
    assert!(!out.status.success());
    let start = Instant::now();
    let out = run("127.0.0.1:", mnt.path(), &args("3"), home.path(), &[]);
    let thrice = start.elapsed();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(e.contains("Connection refused"), "{e}");
    assert!(
        thrice >= once + Duration::from_millis(1900),
        "3 attempts took {thrice:?}, 1 took {once:?}"
    );
}

/// A server with an Ed25519 and an ECDSA host key, known_hosts listing only the ECDSA one:
/// without HostKeyAlgorithms the known type is asked for first (as OpenSSH does), so the mount
/// works with StrictHostKeyChecking=yes; `HostKeyAlgorithms=ssh-ed25519` gets the other key,
/// refused with a line naming the type known_hosts has.
#[test]
fn known_hosts_steers_the_host_key_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().canonicalize().unwrap();
    let ecdsa = d.join("host_ecdsa");
    keygen(&[
        "-q",
        "-t",
        "ecdsa",
        "-N",
        "",
        "-C",
        "",
        "-f",
        ecdsa.to_str().unwrap(),
    ]);
    let sshd = debug_sshd(&format!("HostKey {}\n", ecdsa.display()));
    let public = fs::read_to_string(ecdsa.with_extension("pub")).unwrap();
    let public: Vec<&str> = public.split_whitespace().take(2).collect();
    let known = d.join("known_hosts");
    fs::write(
        &known,
        format!("[127.0.0.1]:{} {}\n", sshd.port(), public.join(" ")),
    )
    .unwrap();
    let args = |extra: &str| {
        no_config_args(
            sshd.port(),
            format!(
                "IdentityFile={},UserKnownHostsFile={},GlobalKnownHostsFile=/dev/null,StrictHostKeyChecking=yes,BatchMode=yes{extra}",
                sshd.user_key().display(),
                known.display()
            ),
        )
    };
    let log = mount_and_log(&sshd, &args(""), &[], "ecdsa");
    assert!(
        last_line(&log, "kex: host key algorithm:").contains("ecdsa-sha2-nistp256"),
        "{log}"
    );
    let e = fails(&sshd, &args(",HostKeyAlgorithms=ssh-ed25519"), &[]);
    assert!(
        e.contains("Host key verification failed")
            && e.contains("no ssh-ed25519 key for")
            && e.contains("which has a ecdsa-sha2-nistp256 key for it"),
        "{e}"
    );
    let e = fails(
        &sshd,
        &with(
            args(""),
            &["-o", "PubkeyAcceptedAlgorithms=rsa-sha2-512,rsa-sha2-256"],
        ),
        &[],
    );
    assert!(
        e.contains("(not tried: ssh-ed25519 is not in PubkeyAcceptedAlgorithms)"),
        "{e}"
    );
}

/// ServerAliveCountMax as -o and from ssh_config, with keepalives every second and a request
/// waiting on each connection when its proxy freezes: the mount allowed 1 unanswered keepalive
/// gives its connection up within seconds (the request's failure takes the link down: `--stats`
/// shows `state=down`); those allowed 30 (one by -o, one by ssh_config) are still up 10 s after
/// the freeze, when the default (3) would have given up long before.
#[test]
fn server_alive_count_max_from_option_and_config() {
    let sshd = Sshd::start();
    let proxies: Vec<FaultProxy> = (0..3).map(|_| FaultProxy::start(sshd.port())).collect();
    for p in &proxies {
        sshd.trust_port(p.port());
    }
    let by_option = |proxy: &FaultProxy, count: &str| {
        let mut args = key_args(&sshd);
        let p = args.iter().position(|a| a == "-p").unwrap();
        args[p + 1] = proxy.port().to_string();
        let alive = format!("ServerAliveInterval=1,ServerAliveCountMax={count}");
        mount(&sshd, &with(args, &["-o", &alive]), &[])
    };
    let quick = by_option(&proxies[0], "1");
    let patient = by_option(&proxies[1], "30");
    let config = sshd.temp_dir().join("alive_config");
    fs::write(
        &config,
        format!(
            "Host patient\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile {}\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  BatchMode yes\n  ServerAliveInterval 1\n  ServerAliveCountMax 30\n",
            proxies[2].port(),
            sshd.user_key().display(),
            sshd.known_hosts().display()
        ),
    )
    .unwrap();
    let f = config.display().to_string();
    let src = format!("patient:{}", sshd.root_dir().display());
    let configured = Mount::start_plain(&src, &["-F", &f], sshd.home(), &[]);
    let mounts = [&quick, &patient, &configured];
    let up = |m: &Mount| format!("{:?}", MountStats::of(m.path())).contains("state=up");
    assert!(mounts.iter().all(|m| up(m)));
    for p in &proxies {
        p.freeze();
    }
    let frozen = Instant::now();
    // A request on each frozen connection (a name never looked up: not cached).
    let (done, finished) = std::sync::mpsc::channel();
    for m in mounts {
        let probe = m.path().join("probe-after-freeze");
        let done = done.clone();
        std::thread::spawn(move || {
            let _ = fs::metadata(&probe);
            let _ = done.send(());
        });
    }
    let quick_down = wait_until(Duration::from_secs(20), || !up(&quick));
    let took = frozen.elapsed();
    std::thread::sleep(Duration::from_secs(10).saturating_sub(frozen.elapsed()));
    let (patient_up, configured_up) = (up(&patient), up(&configured));
    let waited = frozen.elapsed();
    for p in &proxies {
        p.resume();
    }
    for _ in mounts {
        let _ = finished.recv_timeout(Duration::from_secs(60));
    }
    assert!(
        quick_down,
        "ServerAliveCountMax=1: the link is still up after {took:?}"
    );
    assert!(
        patient_up,
        "-o ServerAliveCountMax=30: the link went down within {waited:?}"
    );
    assert!(
        configured_up,
        "ServerAliveCountMax 30 in ssh_config: the link went down within {waited:?}"
    );
}
