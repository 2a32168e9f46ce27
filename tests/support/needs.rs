//! What a test needs from the machine beyond root, /dev/fuse and the packages of
//! scripts/install-deps.sh: kernel features (autofs, fusectl, the kernel keyring, overlayfs in a
//! private mount namespace, /proc/PID/syscall), services and programs a test may not find.
//!
//! Each check returns `Err(what is missing and how to get it)`. A test asks before it starts
//! and, lacking something, prints one `skipped: ...` line ([`lacking`], [`skip_note`]) instead
//! of failing; where part of what it covers of sshfs-rs does not need the missing piece, that
//! part still runs (a skip must never hide a failure of ours). docs/testing.md lists which
//! tests skip on what.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::process::run_bounded;
use super::{FUSECTL_DIR, is_mounted, run_command};

/// Bound on a probe (modprobe, mount, unshare).
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Prints `skipped: WHY [TEST]` straight to stderr, so that it shows in `cargo test`'s output
/// (libtest keeps what `eprintln!` prints to itself unless the test fails).
pub fn skip_note(why: &str) {
    let current = std::thread::current();
    let test = current.name().unwrap_or("?");
    // One write, so that it does not interleave with libtest's lines.
    let line = format!("skipped: {why} [{test}]\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// True, after printing the skip line, when `check` found something missing.
pub fn lacking(check: Result<(), String>) -> bool {
    match check {
        Ok(()) => false,
        Err(why) => {
            skip_note(&why);
            true
        }
    }
}

/// The kernel's autofs (what automount mounts its maps with). Tries `modprobe autofs4` first.
pub fn autofs() -> Result<(), String> {
    static RESULT: OnceLock<Result<(), String>> = OnceLock::new();
    RESULT
        .get_or_init(|| {
            if !has_filesystem("autofs") {
                run_bounded("modprobe", &["-q", "autofs4"], PROBE_TIMEOUT);
            }
            if has_filesystem("autofs") {
                return Ok(());
            }
            let device = if Path::new("/dev/autofs").exists() {
                ""
            } else {
                ", no /dev/autofs"
            };
            Err(format!(
                "the kernel has no autofs (no `autofs` in /proc/filesystems{device}, and \
                 `modprobe autofs4` loads no module): boot a kernel built with CONFIG_AUTOFS_FS \
                 (Debian's linux-image packages have it)"
            ))
        })
        .clone()
}

/// automount, the autofs daemon.
pub fn automount() -> Result<(), String> {
    if Path::new("/usr/sbin/automount").exists() {
        Ok(())
    } else {
        Err("/usr/sbin/automount is not installed (apt-get install autofs)".into())
    }
}

/// A private mount namespace (`unshare --mount`) in which an overlay can be mounted on
/// /usr/sbin: where the tests that run mount(8) put their helper links, so that nothing is
/// installed on the machine. Probed once, for real.
pub fn private_mount_namespace() -> Result<(), String> {
    static RESULT: OnceLock<Result<(), String>> = OnceLock::new();
    RESULT
        .get_or_init(|| {
            if !has_filesystem("overlay") {
                run_bounded("modprobe", &["-q", "overlay"], PROBE_TIMEOUT);
            }
            let upper = tempfile::tempdir().expect("create a temp dir");
            let script = format!(
                "mount -t overlay overlay -o lowerdir={}:/usr/sbin /usr/sbin",
                upper.path().display()
            );
            let out = run_command(
                Command::new("unshare").args([
                    "--mount",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    &script,
                ]),
                PROBE_TIMEOUT,
            );
            if out.status.success() {
                return Ok(());
            }
            Err(format!(
                "no overlay on /usr/sbin in a private mount namespace (`unshare --mount` and \
                 `mount -t overlay`: {}): needs util-linux's unshare, CAP_SYS_ADMIN (root \
                 outside a restricted container) and a kernel with overlayfs \
                 (CONFIG_OVERLAY_FS, `modprobe overlay`)",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        })
        .clone()
}

/// fusectl on /sys/fs/fuse/connections (each mount's `waiting`, `abort`, `max_background`);
/// mounted here if the system has not (and left mounted, as systemd would).
pub fn fusectl() -> Result<(), String> {
    static RESULT: OnceLock<Result<(), String>> = OnceLock::new();
    RESULT
        .get_or_init(|| {
            let dir = Path::new(FUSECTL_DIR);
            if !is_mounted(dir) {
                run_bounded(
                    "mount",
                    &["-t", "fusectl", "fusectl", FUSECTL_DIR],
                    PROBE_TIMEOUT,
                );
            }
            if is_mounted(dir) {
                Ok(())
            } else {
                Err(format!(
                    "fusectl is not mounted on {FUSECTL_DIR} and `mount -t fusectl none \
                     {FUSECTL_DIR}` failed (a read-only /sys, as in some containers?): mount it"
                ))
            }
        })
        .clone()
}

/// The kernel keyring with persistent keyrings, where `-o keyring=keyutils` keeps secrets.
pub fn kernel_persistent_keyring() -> Result<(), String> {
    const KEYCTL_GET_PERSISTENT: libc::c_long = 22;
    const KEY_SPEC_THREAD_KEYRING: libc::c_long = -1;
    const OWN_UID: libc::c_long = -1;
    // Links our persistent keyring into this thread's own keyring (gone with the thread).
    // SAFETY: keyctl with integer arguments only.
    let id = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_GET_PERSISTENT,
            OWN_UID,
            KEY_SPEC_THREAD_KEYRING,
        )
    };
    if id >= 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    let why = match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) => {
            "a kernel built with CONFIG_PERSISTENT_KEYRINGS has them".to_owned()
        }
        Some(libc::ENOSYS) => {
            "a kernel built with CONFIG_KEYS has it, unless a container's seccomp profile \
             blocks keyctl(2)"
                .to_owned()
        }
        _ => "a container's seccomp profile may block keyctl(2)".to_owned(),
    };
    Err(format!(
        "no persistent keyring in the kernel keyring (keyctl(KEYCTL_GET_PERSISTENT): {e}): {why}"
    ))
}

/// `program` on PATH (`package` is the Debian package that has it).
pub fn program(program: &str, package: &str) -> Result<(), String> {
    let found = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program)).is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
    });
    if found {
        Ok(())
    } else {
        Err(format!(
            "{program} is not installed (apt-get install {package}, or scripts/install-deps.sh)"
        ))
    }
}

/// The C sshfs, for the tests that compare with it or check the harness with it.
pub fn c_sshfs() -> Result<(), String> {
    program("sshfs", "sshfs")
}

/// python3, for the tests that make system calls std has no call for (copy_file_range, mmap
/// in a process of its own).
pub fn python3() -> Result<(), String> {
    program("python3", "python3")
}

/// What throwaway local users take: useradd, chpasswd and userdel (and pkill, which stops
/// what they left running).
pub fn local_users() -> Result<(), String> {
    program("useradd", "passwd")
        .and_then(|()| program("chpasswd", "passwd"))
        .and_then(|()| program("userdel", "passwd"))
        .and_then(|()| program("pkill", "procps"))
}

/// A Secret Service of the test's own: a session bus (dbus-run-session), gnome-keyring, and
/// libsecret's secret-tool to look into it.
pub fn secret_service_programs() -> Result<(), String> {
    program("dbus-run-session", "dbus")
        .and_then(|()| program("gnome-keyring-daemon", "gnome-keyring"))
        .and_then(|()| program("secret-tool", "libsecret-tools"))
}

/// /proc/PID/task/TID/syscall, which tells the system call a thread sleeps in.
pub fn proc_syscall() -> Result<(), String> {
    if std::fs::read_to_string("/proc/thread-self/syscall").is_ok() {
        Ok(())
    } else {
        Err("/proc/PID/syscall cannot be read (a kernel without \
             CONFIG_HAVE_ARCH_TRACEHOOK, or /proc mounted with hidepid): the interrupt tests \
             need it to see a process asleep in its system call"
            .into())
    }
}

/// Whether the kernel knows the file system `name` (a line of /proc/filesystems).
fn has_filesystem(name: &str) -> bool {
    std::fs::read_to_string("/proc/filesystems").is_ok_and(|t| {
        t.lines()
            .any(|l| l.split_whitespace().next_back() == Some(name))
    })
}

/// A kernel that lets a FUSE server make a name expire without dropping it
/// (`FUSE_EXPIRE_ONLY`, Linux 6.2): sshfs-rs then keeps directories' names in the kernel as
/// long as its cache, and `--flush` makes them expire. Asked of sshfs-rs's own check, so the
/// test and the mount never disagree.
pub fn expire_only_entries() -> Result<(), String> {
    match sshfs_client::fuse::kernel_expires_entries() {
        true => Ok(()),
        false => Err(format!(
            "kernel {} lacks FUSE_EXPIRE_ONLY (Linux 6.2+)",
            std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
        )),
    }
}
