//! The one table of `-o name[=value]` options ([`DEFS`]: name, value, where the name comes
//! from, what it does, help), from which parsing, `--help`, the man page, the shell completions
//! and docs/options.md are all made.
//!
//! Every option the C sshfs lists (`sshfs -h`, `man sshfs`), every kernel mount flag mount(8)
//! passes on, and the fstab words meant for mount(8) itself has an entry here with one of three
//! answers: it is implemented ([`Does::Set`]), accepted with no effect and the reason written
//! down ([`Does::Nothing`], [`Does::Ignore`]), or refused with a message that says why
//! ([`Does::Refuse`]).

use std::path::PathBuf;

use sshfs_client::fs::idmap::NoMap;
use sshfs_client::fuse::Atime;
use sshfs_client::remote::sftp::server::SymlinkOrder;
use sshfs_client::remote::ssh::algorithms::{self, ListKind};

use super::mount_opts::{IdMapping, KeyringChoice, MountOpts};
use super::values::*;

/// What an option's value looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// A bare flag (`-o ro`).
    Flag,
    /// `name=value`.
    Required(&'static str),
    /// `name` or `name=value` (a bare name means the first alternative of the value).
    Optional(&'static str),
    /// Anything (words for mount(8) that we skip whatever they carry).
    Any,
    /// `name=a,b,c`: a comma-separated list (as ssh takes it); the words after it that are not
    /// options themselves continue the list, so its commas need no `\,`.
    List(&'static str),
}

/// Sets what an option means in [`MountOpts`] from its value ("" for a flag).
pub(super) type Setter = fn(&mut MountOpts, &str) -> Result<(), String>;
/// Checks the value of an option that has no effect.
pub(super) type Check = fn(&str) -> Result<(), String>;

/// What an option does.
#[derive(Clone, Copy)]
pub enum Does {
    /// Implemented.
    Set(Setter),
    /// Accepted with no effect (the value is still checked); the reason is in the help.
    Nothing(Check),
    /// A word for mount(8) or fstab, not for the filesystem: skipped.
    Ignore,
    /// Refused with this reason.
    Refuse(&'static str),
}

/// Where an option's name comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An OpenSSH option (ssh_config(5)), matched case-insensitively as OpenSSH does.
    Ssh,
    /// An option of the C sshfs (`sshfs -h`, `man sshfs`).
    Sshfs,
    /// A FUSE mount option (libfuse, `man mount.fuse3`), also accepted by sshfs.
    Fuse,
    /// A kernel mount flag mount(8) passes on (`nosuid`, `noatime`, ...).
    Kernel,
    /// An fstab word meant for mount(8) itself (`_netdev`, `nofail`, `x-*`, ...).
    Mount,
    /// Our own.
    Own,
}

/// One `-o` option.
pub struct Def {
    /// The name; one ending in `*` matches every name with that prefix.
    pub name: &'static str,
    pub value: Value,
    pub origin: Origin,
    pub does: Does,
    pub help: &'static str,
    /// The default, for docs/options.md (Markdown; empty: none to name).
    #[cfg_attr(not(test), allow(dead_code))] // read by the docs/options.md test only
    pub default: &'static str,
    /// What docs/options.md says the option does (Markdown), when it says more than `help`.
    #[cfg_attr(not(test), allow(dead_code))] // read by the docs/options.md test only
    pub doc: &'static str,
}

pub(super) const fn def(
    name: &'static str,
    value: Value,
    origin: Origin,
    does: Does,
    help: &'static str,
) -> Def {
    Def {
        name,
        value,
        origin,
        does,
        help,
        default: "",
        doc: "",
    }
}

impl Def {
    /// The same definition with its default named in docs/options.md.
    const fn default_is(self, default: &'static str) -> Def {
        Def { default, ..self }
    }

    /// The same definition with a longer description for docs/options.md.
    const fn doc(self, doc: &'static str) -> Def {
        Def { doc, ..self }
    }
}

pub(super) use Does::{Ignore, Nothing, Refuse, Set};
pub(super) use Origin::{Fuse, Kernel, Mount, Own, Ssh, Sshfs};
pub(super) use Value::{Any, Flag, List, Optional, Required};

/// Why the libfuse modules are refused.
pub(super) const NO_MODULES: &str = "libfuse modules are not available (sshfs-rs does not use libfuse); mount host:/dir/sub instead of subdir";

/// Every `-o` option we know.
pub const DEFS: &[Def] = &[
    // SSH options, named as in OpenSSH.
    def(
        "IdentityFile",
        Required("FILE"),
        Ssh,
        Set(|o, v| {
            o.identity_files.push(PathBuf::from(v));
            Ok(())
        }),
        "private key to authenticate with (repeatable; default ~/.ssh/id_ed25519, id_ecdsa, id_rsa)",
    )
    .default_is("`~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`")
    .doc("private key to try (repeatable); `~`, `%d`, `%u`, `%h`, `%r` are expanded. Encrypted keys ask for their passphrase on the terminal."),
    def(
        "User",
        Required("NAME"),
        Ssh,
        Set(|o, v| {
            o.user = Some(v.to_owned());
            Ok(())
        }),
        "remote user name",
    )
    .default_is("the local user")
    .doc("remote user (a `user@` in the source wins)"),
    def(
        "Port",
        Required("PORT"),
        Ssh,
        Set(|o, v| {
            o.port = Some(parse_port(v)?);
            Ok(())
        }),
        "remote SSH port (same as -p)",
    )
    .default_is("22")
    .doc("SSH port"),
    def(
        "UserKnownHostsFile",
        Required("FILE"),
        Ssh,
        Set(|o, v| {
            o.user_known_hosts = Some(v.split_ascii_whitespace().map(PathBuf::from).collect());
            Ok(())
        }),
        "known_hosts file(s), space separated (default ~/.ssh/known_hosts)",
    )
    .default_is("`~/.ssh/known_hosts ~/.ssh/known_hosts2`")
    .doc("space-separated; new keys go to the first"),
    def(
        "StrictHostKeyChecking",
        Required("yes|accept-new|no|ask"),
        Ssh,
        Set(|o, v| {
            o.strict_host_key_checking = Some(parse_strict(v)?);
            Ok(())
        }),
        "what to do with an unknown host key (default ask); a changed key is always refused",
    )
    .default_is("`ask`")
    .doc("unknown host keys: refuse / record / record / ask on the terminal. A changed key is always refused, naming the file and line. `/etc/ssh/ssh_known_hosts` is read too."),
    def(
        "BatchMode",
        Required("yes|no"),
        Ssh,
        Set(|o, v| {
            o.batch_mode = Some(parse_yes_no(v)?);
            Ok(())
        }),
        "never prompt for passwords, passphrases or host keys",
    )
    .default_is("`no`")
    .doc("never prompt (passwords, passphrases, host keys)"),
    def(
        "ConnectTimeout",
        Required("SECONDS"),
        Ssh,
        Set(|o, v| {
            o.connect_timeout = Some(parse_secs(v)?);
            Ok(())
        }),
        "give up connecting after this long",
    )
    .default_is("none")
    .doc("limit on resolving, TCP connect and SSH handshake"),
    def(
        "ServerAliveInterval",
        Required("SECONDS"),
        Ssh,
        Set(|o, v| {
            o.server_alive_interval = Some(parse_secs(v)?);
            Ok(())
        }),
        "send a keepalive after this much silence (default 15; 0 = never)",
    )
    .default_is("15")
    .doc("SSH keepalive after this much silence; 3 missed answers end the connection (0 = off)"),
    def(
        "ProxyJump",
        Required("HOST|none"),
        Ssh,
        Set(|o, v| {
            sshfs_client::remote::ssh::proxy::parse_jumps(v)?;
            o.proxy_jump = Some(v.to_owned());
            Ok(())
        }),
        "connect through jump hosts: [user@]host[:port], several separated by \\, (each looked up in ssh_config); none: directly",
    )
    .default_is("none")
    .doc("connect through these jump hosts (each a full SSH connection, looked up in ssh_config); write the comma between hops as `\\,`. See [ssh.md](ssh.md)"),
    def(
        "ProxyCommand",
        Required("COMMAND|none"),
        Ssh,
        Set(|o, v| {
            o.proxy_command = Some(v.to_owned());
            Ok(())
        }),
        "run COMMAND (%h %p %r %n expanded) and speak SSH over its stdin and stdout; none: connect directly",
    )
    .default_is("none")
    .doc("speak SSH over the stdin/stdout of COMMAND (`%h %p %r %n` expanded), e.g. `ssh -W %h:%p bastion`; run again at each reconnect"),
    def(
        "Compression",
        Required("yes|no"),
        Ssh,
        Set(|o, v| {
            o.compression = Some(parse_yes_no(v)?);
            Ok(())
        }),
        "compress the connection with zlib (zlib@openssh.com, once logged in) when the server agrees (same as -C)",
    ),
    def(
        "Ciphers",
        List("[+-^]CIPHER,..."),
        Ssh,
        Set(|o, v| {
            o.ciphers = Some(check_list(ListKind::Cipher, v)?);
            Ok(())
        }),
        "ciphers to offer, as in ssh_config(5): a list replaces the default, +list appends, -list removes (wildcards), ^list puts first",
    ),
    def(
        "KexAlgorithms",
        List("[+-^]KEX,..."),
        Ssh,
        Set(|o, v| {
            o.kex_algorithms = Some(check_list(ListKind::Kex, v)?);
            Ok(())
        }),
        "key exchange algorithms to offer (+, -, ^ as for Ciphers)",
    ),
    def(
        "MACs",
        List("[+-^]MAC,..."),
        Ssh,
        Set(|o, v| {
            o.macs = Some(check_list(ListKind::Mac, v)?);
            Ok(())
        }),
        "MAC algorithms to offer (+, -, ^ as for Ciphers)",
    ),
    def(
        "HostKeyAlgorithms",
        List("[+-^]ALGORITHM,..."),
        Ssh,
        Set(|o, v| {
            o.host_key_algorithms = Some(check_list(ListKind::HostKey, v)?);
            Ok(())
        }),
        "host key algorithms to accept (+, -, ^ as for Ciphers); default: those known_hosts has for the host first",
    ),
    def(
        "PubkeyAcceptedAlgorithms",
        List("[+-^]ALGORITHM,..."),
        Ssh,
        Set(|o, v| {
            o.pubkey_accepted_algorithms = Some(check_list(ListKind::Pubkey, v)?);
            Ok(())
        }),
        "key and certificate types to authenticate with (+, -, ^ as for Ciphers)",
    ),
    def(
        "PubkeyAcceptedKeyTypes",
        List("[+-^]ALGORITHM,..."),
        Ssh,
        Set(|o, v| {
            o.pubkey_accepted_algorithms = Some(check_list(ListKind::Pubkey, v)?);
            Ok(())
        }),
        "old name of PubkeyAcceptedAlgorithms",
    ),
    def(
        "IdentitiesOnly",
        Required("yes|no"),
        Ssh,
        Set(|o, v| {
            o.identities_only = Some(parse_yes_no(v)?);
            Ok(())
        }),
        "authenticate only with the IdentityFile and CertificateFile keys, even when the agent holds others",
    ),
    def(
        "IdentityAgent",
        Required("SOCKET|SSH_AUTH_SOCK|none"),
        Ssh,
        Set(|o, v| {
            o.identity_agent = Some(v.to_owned());
            Ok(())
        }),
        "the ssh-agent socket (~, %-tokens and ${VAR} expanded; $VAR: the socket named by that variable); none: no agent",
    ),
    def(
        "CertificateFile",
        Required("FILE"),
        Ssh,
        Set(|o, v| {
            o.certificate_files.push(PathBuf::from(v));
            Ok(())
        }),
        "OpenSSH user certificate to offer with its key (repeatable; KEY-cert.pub next to an IdentityFile is offered too)",
    ),
    def(
        "AddressFamily",
        Required("any|inet|inet6"),
        Ssh,
        Set(|o, v| {
            o.address_family = Some(parse_address_family(v)?);
            Ok(())
        }),
        "connect over IPv4 (inet), IPv6 (inet6) or either (any, the default)",
    ),
    def(
        "HostKeyAlias",
        Required("ALIAS"),
        Ssh,
        Set(|o, v| {
            o.host_key_alias = Some(v.to_owned());
            Ok(())
        }),
        "look the host key up (and add it) in known_hosts under this name instead of host or [host]:port",
    ),
    def(
        "GlobalKnownHostsFile",
        Required("FILE"),
        Ssh,
        Set(|o, v| {
            o.global_known_hosts = Some(v.split_ascii_whitespace().map(PathBuf::from).collect());
            Ok(())
        }),
        "system known_hosts file(s), space separated (default /etc/ssh/ssh_known_hosts, ssh_known_hosts2); read only",
    ),
    def(
        "CheckHostIP",
        Required("yes|no"),
        Ssh,
        Nothing(|v| parse_yes_no(v).map(drop)),
        "no effect: the host key is checked under the host name (or HostKeyAlias) only, as with OpenSSH's default (no)",
    ),
    def(
        "ConnectionAttempts",
        Required("N"),
        Ssh,
        Set(|o, v| {
            o.connection_attempts = Some(parse_size(v)?);
            Ok(())
        }),
        "TCP connects tried, one second apart, before giving up (default 1)",
    ),
    def(
        "PreferredAuthentications",
        List("METHOD,..."),
        Ssh,
        Set(|o, v| {
            o.preferred_authentications = Some(parse_preferred_auth(v)?);
            Ok(())
        }),
        "authentication methods to try, in order: publickey, keyboard-interactive, password (gssapi-with-mic and hostbased are skipped)",
    ),
    def(
        "PubkeyAuthentication",
        Required("yes|no|unbound|host-bound"),
        Ssh,
        Set(|o, v| {
            o.pubkey_authentication = Some(parse_pubkey_auth(v)?);
            Ok(())
        }),
        "try keys (agent, IdentityFile, CertificateFile) (default yes)",
    ),
    def(
        "PasswordAuthentication",
        Required("yes|no"),
        Ssh,
        Set(|o, v| {
            o.password_authentication = Some(parse_yes_no(v)?);
            Ok(())
        }),
        "try the password method (default yes)",
    ),
    def(
        "KbdInteractiveAuthentication",
        Required("yes|no"),
        Ssh,
        Set(|o, v| {
            o.kbd_interactive_authentication = Some(parse_yes_no(v)?);
            Ok(())
        }),
        "try keyboard-interactive (default yes)",
    ),
    def(
        "ChallengeResponseAuthentication",
        Required("yes|no"),
        Ssh,
        Set(|o, v| {
            o.kbd_interactive_authentication = Some(parse_yes_no(v)?);
            Ok(())
        }),
        "old name of KbdInteractiveAuthentication",
    ),
    def(
        "LogLevel",
        Required("QUIET|FATAL|ERROR|INFO|VERBOSE|DEBUG|DEBUG1|DEBUG2|DEBUG3"),
        Ssh,
        Set(|o, v| {
            o.log_level = Some(parse_log_level(v)?);
            Ok(())
        }),
        "how much to log on stderr: QUIET, FATAL and ERROR also drop warnings; VERBOSE is -v; DEBUG logs every request (without -f); -v and -d win",
    ),
    def(
        "ServerAliveCountMax",
        Required("N"),
        Ssh,
        Set(|o, v| {
            o.server_alive_count_max = Some(parse_count(v)?);
            Ok(())
        }),
        "keepalives left unanswered before the connection is given up (default 3; 0 is taken as 1)",
    ),
    // Mount options.
    def(
        "ro",
        Flag,
        Kernel,
        Set(|o, _| {
            o.read_only = true;
            Ok(())
        }),
        "mount read-only",
    )
    .default_is("`rw`")
    .doc("read-only mount"),
    def(
        "rw",
        Flag,
        Kernel,
        Set(|o, _| {
            o.read_only = false;
            Ok(())
        }),
        "mount read-write (the default)",
    ),
    def(
        "nosuid",
        Flag,
        Kernel,
        Set(|o, _| {
            o.suid = false;
            Ok(())
        }),
        "ignore set-user-ID and set-group-ID bits (the default)",
    )
    .default_is("`nosuid`")
    .doc("set-user-ID bits ignored; `suid` only for root (a user's mount is always `nosuid`)"),
    def(
        "suid",
        Flag,
        Kernel,
        Set(|o, _| {
            o.suid = true;
            Ok(())
        }),
        "honour set-user-ID and set-group-ID bits (root only; a user's mount is always nosuid)",
    ),
    def(
        "nodev",
        Flag,
        Kernel,
        Set(|o, _| {
            o.dev = false;
            Ok(())
        }),
        "do not open device files (the default)",
    )
    .default_is("`nodev`")
    .doc("device files cannot be opened; `dev` only for root (a user's mount is always `nodev`)"),
    def(
        "dev",
        Flag,
        Kernel,
        Set(|o, _| {
            o.dev = true;
            Ok(())
        }),
        "open device files (root only; a user's mount is always nodev)",
    ),
    def(
        "noexec",
        Flag,
        Kernel,
        Set(|o, _| {
            o.noexec = true;
            Ok(())
        }),
        "do not run programs from the mount",
    )
    .default_is("`exec`")
    .doc("programs on the mount cannot be run"),
    def(
        "exec",
        Flag,
        Kernel,
        Set(|o, _| {
            o.noexec = false;
            Ok(())
        }),
        "run programs from the mount (the default)",
    ),
    def(
        "relatime",
        Flag,
        Kernel,
        Set(|o, _| {
            o.atime = Atime::Relative;
            Ok(())
        }),
        "update access times only when older than the modification time (the default)",
    )
    .default_is("`relatime`")
    .doc("the kernel's access-time flags"),
    def(
        "noatime",
        Flag,
        Kernel,
        Set(|o, _| {
            o.atime = Atime::Never;
            Ok(())
        }),
        "never update access times",
    ),
    def(
        "atime",
        Flag,
        Kernel,
        Set(|o, _| {
            o.atime = Atime::Always;
            Ok(())
        }),
        "update access times on every access (strictatime; root only: fusermount3 cannot set it)",
    ),
    def(
        "strictatime",
        Flag,
        Kernel,
        Set(|o, _| {
            o.atime = Atime::Always;
            Ok(())
        }),
        "same as atime",
    ),
    def(
        "nodiratime",
        Flag,
        Kernel,
        Set(|o, _| {
            o.nodiratime = true;
            Ok(())
        }),
        "never update access times of directories (root only: fusermount3 cannot set it)",
    ),
    def(
        "diratime",
        Flag,
        Kernel,
        Set(|o, _| {
            o.nodiratime = false;
            Ok(())
        }),
        "update access times of directories (the default)",
    ),
    def(
        "sync",
        Flag,
        Kernel,
        Set(|o, _| {
            o.sync = true;
            Ok(())
        }),
        "the kernel's synchronous-writes flag (each write(2) then waits for the server)",
    )
    .default_is("`async`")
    .doc("the kernel's synchronous-write flags (`sync`: each write(2) waits for the server)"),
    def(
        "async",
        Flag,
        Kernel,
        Set(|o, _| {
            o.sync = false;
            Ok(())
        }),
        "clears sync (the default)",
    ),
    def(
        "dirsync",
        Flag,
        Kernel,
        Set(|o, _| {
            o.dirsync = true;
            Ok(())
        }),
        "the kernel's synchronous-directory-changes flag (they are synchronous anyway)",
    ),
    def(
        "fsname",
        Required("NAME"),
        Fuse,
        Set(|o, v| {
            o.fsname = Some(v.to_owned());
            Ok(())
        }),
        "the mount's source in /proc/mounts (default user@host:path)",
    )
    .default_is("`user@host:path`")
    .doc("the source shown in /proc/mounts"),
    def(
        "subtype",
        Required("NAME"),
        Fuse,
        Set(|o, v| {
            o.subtype = Some(v.to_owned());
            Ok(())
        }),
        "the mount's type in /proc/mounts is fuse.NAME (default sshfs-rs)",
    )
    .default_is("`sshfs-rs`")
    .doc("the type shown in /proc/mounts is `fuse.NAME`"),
    def(
        "allow_other",
        Flag,
        Fuse,
        Set(|o, _| {
            o.allow_other = true;
            Ok(())
        }),
        "let other users access the mount (non-root: needs user_allow_other in /etc/fuse.conf)",
    )
    .default_is("off")
    .doc("other users may use the mount (non-root: needs `user_allow_other` in `/etc/fuse.conf`)"),
    def(
        "allow_root",
        Flag,
        Fuse,
        Set(|o, _| {
            o.allow_root = true;
            Ok(())
        }),
        "let root use the mount besides its owner (others get EACCES; non-root: needs user_allow_other in /etc/fuse.conf)",
    )
    .default_is("off")
    .doc("root's own mount: no effect (root owns it); a user's mount: refused (use `allow_other`)"),
    def(
        "auto_unmount",
        Flag,
        Fuse,
        Set(|o, _| {
            o.auto_unmount = true;
            Ok(())
        }),
        "unmount when sshfs-rs dies, even by SIGKILL (a watcher process of its own, `sshfs-rs --auto-unmount-watcher PID`, detaches the mount)",
    ),
    def(
        "default_permissions",
        Flag,
        Fuse,
        Set(|o, _| {
            o.default_permissions = true;
            Ok(())
        }),
        "let the kernel check access from the file modes",
    )
    .default_is("off")
    .doc("the kernel checks access against the file modes (otherwise the server decides)"),
    def(
        "max_read",
        Required("BYTES"),
        Fuse,
        Set(|o, v| {
            o.max_read = Some(parse_size(v)?);
            Ok(())
        }),
        "largest read request the kernel sends (default: the kernel's, 1 MiB)",
    )
    .default_is("the kernel's (1 MiB)")
    .doc("largest read request the kernel sends"),
    def(
        "max_write",
        Required("BYTES"),
        Fuse,
        Set(|o, v| {
            // As the kernel: at least a page.
            o.max_write = Some(parse_size(v)?.max(4096));
            Ok(())
        }),
        "largest write request the kernel sends (default and most: 1 MiB)",
    ),
    def(
        "max_background",
        Required("N"),
        Fuse,
        Set(|o, v| {
            let n = u16::try_from(parse_size(v)?).map_err(|_| "at most 65535".to_owned())?;
            o.max_background = Some(n.max(1));
            Ok(())
        }),
        "background requests (readahead, async writes) the kernel keeps in flight (default 12)",
    ),
    def(
        "large_read",
        Flag,
        Fuse,
        Nothing(no_value),
        "no effect (obsolete since Linux 2.6; reads are large anyway)",
    ),
    def(
        "sync_read",
        Flag,
        Fuse,
        Set(|o, _| {
            o.async_read = false;
            Ok(())
        }),
        "the kernel reads one request at a time; any signal interrupts a blocked read() (default; we read ahead ourselves)",
    )
    .default_is("on")
    .doc("the kernel sends READs from the reading process, so any signal interrupts a read() blocked on the network; sshfs-rs reads ahead itself (see [interrupts.md](interrupts.md))"),
    def(
        "async_read",
        Flag,
        Fuse,
        Set(|o, _| {
            o.async_read = true;
            Ok(())
        }),
        "the kernel sends its readahead in the background; only SIGKILL-like signals interrupt a blocked read()",
    )
    .default_is("off")
    .doc("the kernel's own background readahead instead; a blocked read() then yields only to fatal signals (SIGKILL, or SIGINT/SIGTERM without a handler)"),
    def(
        "kernel_cache",
        Flag,
        Fuse,
        Nothing(no_value),
        "no effect: a file's pages are kept across opens unless its size or mtime on the server changed (what auto_cache does); keeping them even then, as libfuse's kernel_cache does, is not offered: sshfs-rs tells the kernel to drop what it sees changed",
    ),
    def(
        "auto_cache",
        Flag,
        Fuse,
        Nothing(no_value),
        "no effect: what sshfs-rs always does (pages kept unless size or mtime changed)",
    ),
    def(
        "noauto_cache",
        Flag,
        Fuse,
        Nothing(no_value),
        "no effect: pages are kept unless size or mtime changed",
    ),
    def(
        "direct_io",
        Flag,
        Fuse,
        Set(|o, _| {
            o.direct_io = true;
            Ok(())
        }),
        "every read(2) and write(2) goes to the server, none is kept in the page cache (mmap still works; before Linux 6.6 a shared mapping fails with ENODEV)",
    ),
    def(
        "writeback_cache",
        Flag,
        Fuse,
        Refuse(
            "the kernel would keep written data after close(); sshfs-rs has it on the server when close() returns",
        ),
        "refused: data must be on the server when close() returns",
    ),
    def(
        "no_rofd_flush",
        Flag,
        Fuse,
        Nothing(no_value),
        "no effect: closing a read-only file costs no round trip anyway",
    ),
    def(
        "umask",
        Required("OCTAL"),
        Fuse,
        Set(|o, v| {
            o.umask = Some(parse_umask(v)?);
            Ok(())
        }),
        "show every file's permission bits as 0777 minus these (as libfuse: the server's bits are not shown)",
    ),
    def(
        "uid",
        Required("N"),
        Fuse,
        Set(|o, v| {
            o.uid = Some(parse_id(v)?);
            Ok(())
        }),
        "show every file as owned by user id N",
    ),
    def(
        "gid",
        Required("N"),
        Fuse,
        Set(|o, v| {
            o.gid = Some(parse_id(v)?);
            Ok(())
        }),
        "show every file as owned by group id N",
    ),
    def(
        "ac_attr_timeout",
        Required("SECONDS"),
        Fuse,
        Nothing(check_secs_f),
        "no effect: attributes are kept for attr_timeout, and dropped when the server changed",
    ),
    def(
        "noforget",
        Flag,
        Fuse,
        Nothing(no_value),
        "no effect: an inode number stays the same while the kernel knows the file",
    ),
    def(
        "remember",
        Required("SECONDS"),
        Fuse,
        Nothing(check_secs_f),
        "no effect: an inode number stays the same while the kernel knows the file",
    ),
    def(
        "modules",
        Required("M1[:M2...]"),
        Fuse,
        Refuse(NO_MODULES),
        "refused: no libfuse modules",
    ),
    def(
        "subdir",
        Required("DIR"),
        Fuse,
        Refuse(NO_MODULES),
        "refused: no libfuse modules (mount host:/dir/sub)",
    ),
    def(
        "rellinks",
        Flag,
        Fuse,
        Refuse(NO_MODULES),
        "refused: no libfuse modules",
    ),
    def(
        "norellinks",
        Flag,
        Fuse,
        Nothing(no_value),
        "no effect: symlink targets are not rewritten",
    ),
    def(
        "from_code",
        Required("CHARSET"),
        Fuse,
        Refuse(NO_MODULES),
        "refused: no libfuse modules (names are passed through as bytes)",
    ),
    def(
        "to_code",
        Required("CHARSET"),
        Fuse,
        Refuse(NO_MODULES),
        "refused: no libfuse modules (names are passed through as bytes)",
    ),
    def(
        "debug",
        Flag,
        Fuse,
        Set(|o, _| {
            o.debug = true;
            Ok(())
        }),
        "stay in the foreground and log every request (same as -d)",
    )
    .default_is("off")
    .doc("same as `-d`"),
    // sshfs's own options.
    def(
        "reconnect",
        Optional("yes|no"),
        Sshfs,
        Set(|o, v| {
            o.reconnect = Some(v.is_empty() || parse_yes_no(v)?);
            Ok(())
        }),
        "when the connection drops, connect again and carry on with the open files (default yes); no: unmount and exit",
    )
    .default_is("yes")
    .doc("when the connection drops, connect again (same host key, no prompt) and carry on: open files are reopened underneath, lost writes resent ([SEMANTICS.md](SEMANTICS.md#connection-loss-and-reconnect)); `no`: unmount and exit"),
    def(
        "delay_connect",
        Flag,
        Sshfs,
        Nothing(no_value),
        "no effect: sshfs-rs connects before mounting, so a mount that exists works and a failure is reported at once",
    ),
    def(
        "sshfs_sync",
        Flag,
        Sshfs,
        Nothing(no_value),
        "no effect: close() and fsync() return only once every write is on the server (use -o sync to make each write(2) wait)",
    ),
    def(
        "no_readahead",
        Flag,
        Sshfs,
        Nothing(no_value),
        "no effect: sequential reads are always read ahead (random reads are not)",
    ),
    def(
        "sync_readdir",
        Flag,
        Sshfs,
        Nothing(no_value),
        "no effect: directory listings are read in one pass anyway",
    ),
    def(
        "workaround",
        Required("LIST"),
        Sshfs,
        Nothing(check_workarounds),
        "no effect: the workarounds (rename, renamexdev, truncate, buflimit, fstat, createmode) are for servers older than OpenSSH 5; sshfs-rs uses posix-rename and fstat",
    ),
    def(
        "idmap",
        Required("none|user|file"),
        Sshfs,
        Set(|o, v| {
            o.idmap = match v {
                "none" => IdMapping::None,
                "user" => IdMapping::User,
                "file" => IdMapping::File,
                _ => return Err(format!("'{v}' is not one of none, user, file")),
            };
            Ok(())
        }),
        "none (default): owners as the server has them; user: the login user's remote uid/gid shown as yours, and back for chown; file: the ids of uidfile/gidfile",
    ),
    def(
        "uidfile",
        Required("FILE"),
        Sshfs,
        Set(|o, v| {
            o.uid_file = Some(PathBuf::from(v));
            Ok(())
        }),
        "with idmap=file: lines name:remote_uid (or a passwd file); each name is a local user",
    ),
    def(
        "gidfile",
        Required("FILE"),
        Sshfs,
        Set(|o, v| {
            o.gid_file = Some(PathBuf::from(v));
            Ok(())
        }),
        "with idmap=file: lines name:remote_gid (or a group file); each name is a local group",
    ),
    def(
        "nomap",
        Required("ignore|error"),
        Sshfs,
        Set(|o, v| {
            o.nomap = Some(match v {
                "ignore" => NoMap::Ignore,
                "error" => NoMap::Error,
                _ => return Err(format!("'{v}' is not ignore or error")),
            });
            Ok(())
        }),
        "with idmap=file, an id the files do not list: ignore shows it as it is; error (default) makes its stat, listing and chown fail with EPERM",
    ),
    def(
        "ssh_command",
        Required("CMD"),
        Sshfs,
        Set(|o, v| {
            o.ssh_command = Some(v.to_owned());
            Ok(())
        }),
        "speak SFTP over the stdin and stdout of CMD (e.g. ssh, with words of its own; '\\ ' is a space) instead of our own SSH, run as sshfs runs it: CMD -x -a -oClearAllForwardings=yes [-F FILE] [-p PORT] [-l USER] [-oNAME=VALUE...] -s -- HOST sftp, the SSH options given with -o passed on (with it, any option ssh takes, e.g. ControlMaster=auto); ssh checks host keys, logs in and keeps the link alive; run again on reconnect",
    )
    .doc("run CMD (normally `ssh`, with words of its own) as sshfs does: `CMD -x -a -oClearAllForwardings=yes [-F FILE] [-p PORT] [-l USER] [-oNAME=VALUE...] -s -- HOST sftp`, every SSH option given with `-o` passed on; SFTP goes over its stdin and stdout. ssh checks the host key, logs in (asking on the terminal itself; `password_stdin` is refused) and keeps the link alive (give `-o ServerAliveInterval=15`, ours cannot see the link); its stderr goes to the log and its last line is the error when the first connect fails; a reconnect runs it again"),
    def(
        "ssh_protocol",
        Required("2"),
        Sshfs,
        Nothing(|v| match v {
            "2" => Ok(()),
            "1" => Err(
                "SSH protocol 1 is not supported (it is insecure; OpenSSH removed it)".to_owned(),
            ),
            _ => Err(format!("'{v}' is not an SSH protocol version")),
        }),
        "2: no effect (the only protocol spoken); 1 (also -1) is refused",
    ),
    def(
        "sftp_server",
        Required("SERV"),
        Sshfs,
        Set(|o, v| {
            o.sftp_server = Some(v.to_owned());
            Ok(())
        }),
        "the SSH subsystem to ask for (default sftp), or with a '/' the command to run on the server instead (e.g. '/usr/bin/sudo /usr/lib/openssh/sftp-server'); also with ssh_command",
    )
    .doc("the subsystem to ask for instead of `sftp`, or with a `/` the command the server runs instead (e.g. `/usr/bin/sudo /usr/lib/openssh/sftp-server`); over our own SSH and with `ssh_command`"),
    def(
        "directport",
        Required("PORT"),
        Sshfs,
        Set(|o, v| {
            o.directport = Some(parse_port(v)?);
            Ok(())
        }),
        "speak SFTP straight to TCP port PORT of the host, without SSH: nothing is encrypted or authenticated, anyone who can reach the port has the server's access (loopback or a trusted network only); SSH options have no effect",
    )
    .doc("SFTP straight to TCP port PORT of the host, no SSH: **nothing is encrypted or authenticated**, anyone who can reach the port has the server's access (loopback or a trusted network only); SSH options have no effect"),
    def(
        "passive",
        Flag,
        Sshfs,
        Set(|o, _| {
            o.passive = true;
            Ok(())
        }),
        "speak SFTP over our own stdin and stdout, connected to an SFTP server by whoever runs us (no SSH, no reconnect: the mount ends when they close); stays in the foreground",
    )
    .doc("SFTP over our own stdin and stdout, connected to an SFTP server by whoever runs us; stays in the foreground; no reconnect (the mount ends when the other end closes)"),
    def(
        "disable_hardlink",
        Flag,
        Sshfs,
        Set(|o, _| {
            o.links.no_hardlinks = true;
            Ok(())
        }),
        "link(2) fails with ENOSYS (default: hard links through the server's hardlink@openssh.com)",
    ),
    def(
        "transform_symlinks",
        Flag,
        Sshfs,
        Set(|o, _| {
            o.links.transform = true;
            Ok(())
        }),
        "show absolute symlink targets inside the mounted directory as relative ones",
    ),
    def(
        "contain_symlinks",
        Flag,
        Sshfs,
        Set(|o, _| {
            o.links.contain = true;
            Ok(())
        }),
        "readlink of an absolute target or one with '..' fails (EPERM), after transform_symlinks; off by default (sshfs 3.7.6 turned it on)",
    ),
    def(
        "no_contain_symlinks",
        Flag,
        Sshfs,
        Set(|o, _| {
            o.links.contain = false;
            Ok(())
        }),
        "show every symlink target (the default)",
    ),
    def(
        "follow_symlinks",
        Flag,
        Sshfs,
        Set(|o, _| {
            o.links.follow = true;
            Ok(())
        }),
        "show what symlinks point to, resolved on the server (a dangling one stays a symlink)",
    ),
    def(
        "no_check_root",
        Flag,
        Sshfs,
        Nothing(no_value),
        "no effect: the remote directory is always checked before mounting",
    ),
    def(
        "password_stdin",
        Flag,
        Sshfs,
        Set(|o, _| {
            o.password_stdin = true;
            Ok(())
        }),
        "read the password from stdin (one line) before going to the background; kept in memory only, for reconnects",
    ),
    def(
        "keyring",
        Required("auto|secret-service|keyutils|no"),
        Own,
        Set(|o, v| {
            o.keyring = KeyringChoice::parse(v)?;
            Ok(())
        }),
        "where passwords and key passphrases stored with --store-password / --store-passphrase are looked up: auto (default: the Secret Service when one answers on the session bus, else the kernel keyring), secret-service, keyutils, or no (never look)",
    ),
    def(
        "max_conns",
        Required("N"),
        Sshfs,
        Set(|o, v| {
            o.server.max_conns = Some(usize::try_from(parse_size(v)?).unwrap_or(usize::MAX));
            Ok(())
        }),
        "SFTP channels a file's writes may be spread over, at most 16: 8 on the SSH connection, the rest on a second connection to the server (1: one channel, writes in order). Default: 4 for OpenSSH's sftp-server (more when the measured round trip is long: at 100 ms 12, 8 on the SSH connection and 4 on a second one to the server, made when a large write first asks for it, only where reconnecting is on, and authenticated as a reconnect is; at a round trip of 10 ms or more they are opened at mount, each its own sftp-server on the server, so the first large write need not wait for them; max_conns=8 keeps to one connection), 1 for other servers, which may take writes only in order or mix up concurrent ones. Forced above 1 on another server, a session that dies while several channels are in use reconnects with one (said once, `--stats`: `channels=1 (after a crash)`)",
    ),
    def(
        "symlink_order",
        Required("openssh|draft"),
        Own,
        Set(|o, v| {
            o.server.symlink_order = Some(SymlinkOrder::parse(v)?);
            Ok(())
        }),
        "the order of SYMLINK's paths: openssh (target first, as OpenSSH's clients send them and most servers read them) or draft (link first, the SFTP draft's order). Default: draft for asyncssh, openssh for every other server",
    ),
    def(
        "hard_remove",
        Optional("yes|no"),
        Fuse,
        Set(|o, v| {
            o.server.hard_remove = Some(v.is_empty() || parse_yes_no(v)?);
            Ok(())
        }),
        "unlink (or rename over) a file open through the mount removes it at once, as libfuse's hard_remove. Default: yes for OpenSSH's sftp-server, which keeps a removed open file readable; no for other servers: the file is renamed to .fuse_hidden* in its directory, left out of listings, and removed at its last close",
    ),
    def(
        "timeout",
        Required("SECONDS"),
        Own,
        Set(|o, v| {
            o.request_timeout = Some(parse_secs(v)?);
            Ok(())
        }),
        "fail an SFTP request with EIO when the server has not answered after this long (default 60)",
    )
    .default_is("60")
    .doc("an SFTP request not answered after this long fails with `EIO`"),
    def(
        "reconnect_timeout",
        Required("SECONDS"),
        Own,
        Set(|o, v| {
            o.reconnect_timeout = Some(parse_secs(v)?);
            Ok(())
        }),
        "while reconnecting, a request waits this long before failing with EIO (default 60); later ones fail at once until the link is back",
    )
    .default_is("60")
    .doc("while reconnecting, a request waits this long (counted from the moment the link went down) before failing with `EIO`; later ones fail at once until the link is back"),
    def(
        "attr_timeout",
        Required("SECONDS"),
        Fuse,
        Set(|o, v| {
            o.attr_timeout = Some(parse_secs_f(v)?);
            Ok(())
        }),
        "how long the kernel caches attributes (default: as long as our cache keeps them, at least 1 s)",
    )
    .default_is("our cache's life, at least 1")
    .doc("how long the kernel keeps attributes. Not given: as long as our own cache would answer them without asking the server (the rest of `cache_stat_timeout` since the server said them), at least 1 s; 1 s for what our cache does not keep (`cache=no`, a file with several names, any file with `follow_symlinks`, a file open for writing through the mount). Whatever we learn meanwhile is sent to the kernel as an invalidation ([cache.md](cache.md))"),
    def(
        "entry_timeout",
        Required("SECONDS"),
        Fuse,
        Set(|o, v| {
            o.entry_timeout = Some(parse_secs_f(v)?);
            Ok(())
        }),
        "how long the kernel caches names (default: as long as our cache keeps their attributes, at least 1 s; a directory's 1 s before Linux 6.2)",
    )
    .default_is("our cache's life, at least 1")
    .doc("how long the kernel keeps names. Not given: as `attr_timeout`, a directory's name too where `--flush` can make it expire without unmounting what is mounted on it (`FUSE_EXPIRE_ONLY`, Linux 6.2+); on an older kernel a directory's name 1 s"),
    def(
        "negative_timeout",
        Required("SECONDS"),
        Fuse,
        Set(|o, v| {
            o.negative_timeout = Some(parse_secs_f(v)?);
            Ok(())
        }),
        "how long the kernel caches 'no such file' (default 0: our own cache answers it)",
    )
    .default_is("0")
    .doc("how long the kernel keeps \"no such file\" (our own cache answers it meanwhile; a kernel negative entry hides a name created on the server until it expires)"),
    // The metadata cache, under sshfs 2's names (cache_*) and sshfs 3's (dcache_*).
    def(
        "cache",
        Required("yes|no"),
        Sshfs,
        Set(|o, v| {
            o.cache = Some(parse_yes_no(v)?);
            Ok(())
        }),
        "cache attributes, names and listings (default yes; no = ask the server every time)",
    )
    .default_is("yes")
    .doc("`no`: every operation asks the server"),
    def(
        "dir_cache",
        Required("yes|no"),
        Sshfs,
        Set(|o, v| {
            o.dir_cache = Some(parse_yes_no(v)?);
            Ok(())
        }),
        "cache directory listings (default yes)",
    )
    .default_is("yes")
    .doc("cache directory listings"),
    def(
        "cache_timeout",
        Required("SECONDS"),
        Sshfs,
        Set(set_cache_timeout),
        "sets the three cache_*_timeout options below",
    )
    .doc("sets `cache_stat_timeout`, `cache_dir_timeout` and `cache_link_timeout`"),
    def(
        "dcache_timeout",
        Required("SECONDS"),
        Sshfs,
        Set(set_cache_timeout),
        "same as cache_timeout",
    ),
    def(
        "cache_stat_timeout",
        Required("SECONDS"),
        Sshfs,
        Set(set_stat_timeout),
        "how long cached attributes (and 'no such file') are used (default 20)",
    )
    .default_is("20")
    .doc("attributes and \"no such file\""),
    def(
        "dcache_stat_timeout",
        Required("SECONDS"),
        Sshfs,
        Set(set_stat_timeout),
        "same as cache_stat_timeout",
    ),
    def(
        "cache_dir_timeout",
        Required("SECONDS"),
        Sshfs,
        Set(set_dir_timeout),
        "how long cached directory listings are used (default 20)",
    )
    .default_is("20")
    .doc("directory listings"),
    def(
        "dcache_dir_timeout",
        Required("SECONDS"),
        Sshfs,
        Set(set_dir_timeout),
        "same as cache_dir_timeout",
    ),
    def(
        "cache_link_timeout",
        Required("SECONDS"),
        Sshfs,
        Set(set_link_timeout),
        "how long cached symlink targets are used (default 20)",
    )
    .default_is("20")
    .doc("symlink targets"),
    def(
        "dcache_link_timeout",
        Required("SECONDS"),
        Sshfs,
        Set(set_link_timeout),
        "same as cache_link_timeout",
    ),
    def(
        "recheck",
        Required("SECONDS"),
        Own,
        Set(|o, v| {
            o.recheck = Some(parse_secs(v)?);
            Ok(())
        }),
        "re-check directories programs use (open, listed in the last 3 minutes, or made through the mount) this often while the mount is idle: an LSTAT each, the listing again when it changed (default 2; 0 = off)",
    )
    .default_is("2")
    .doc("re-check directories programs use (open, listed in the last 3 minutes, or made through the mount; at most 64) this often while the mount is idle: one LSTAT each, the listing again when it changed, at most 10 a second; a change made on the server shows there within about 2 s ([cache.md](cache.md)); 0 = off"),
    def(
        "cache_max_size",
        Required("N"),
        Sshfs,
        Set(set_cache_max_size),
        "most paths the cache holds; the least recently used go first (default 10000)",
    )
    .default_is("10000")
    .doc("most paths cached; least recently used go first"),
    def(
        "dcache_max_size",
        Required("N"),
        Sshfs,
        Set(set_cache_max_size),
        "same as cache_max_size",
    ),
    def(
        "cache_max_bytes",
        Required("BYTES"),
        Own,
        Set(|o, v| {
            o.cache_max_bytes = Some(parse_bytes(v)?);
            Ok(())
        }),
        "most memory the metadata cache takes for attributes, names and listings, estimated per entry; least recently used go first, and a listing larger than this is not cached (default 32M; K, M, G suffixes)",
    )
    .default_is("32M")
    .doc("most memory the metadata cache takes (attributes, symlink targets, listings' names), estimated per entry; least recently used go first, as with `cache_max_size`, whichever bound is reached first; a directory whose listing would not fit is not cached and an open handle on it keeps only the entries the kernel has not read yet ([cache.md](cache.md)); suffixes K, M, G (powers of 1024)"),
    def(
        "data_cache",
        Optional("DIR"),
        Own,
        Set(|o, v| {
            o.data_cache = Some((!v.is_empty()).then(|| PathBuf::from(v)));
            Ok(())
        }),
        "keep the contents of files read through the mount on local disk, in DIR (default $XDG_CACHE_HOME/sshfs-rs, or ~/.cache/sshfs-rs), across unmounts and reboots; each file is checked at open by its size and mtime (off by default)",
    )
    .doc("keep file contents read through the mount on local disk in DIR (default `$XDG_CACHE_HOME/sshfs-rs`, else `~/.cache/sshfs-rs`), across unmounts, reconnects and reboots: a file read again with the same size and mtime costs no transfer; checksummed, private (0700), bounded by `data_cache_size`, emptied by `--flush` ([data-cache.md](data-cache.md)); off by default"),
    def(
        "data_cache_size",
        Required("BYTES"),
        Own,
        Set(|o, v| {
            o.data_cache_size = Some(parse_bytes(v)?);
            Ok(())
        }),
        "the most disk the content cache (data_cache) takes for one server, user and remote directory, counted as allocated blocks; least recently used files go first (default 1G; K, M, G, T suffixes)",
    )
    .default_is("1G")
    .doc("the most disk `data_cache` takes for one server, user and remote directory (allocated blocks); least recently used files go first, never an open one; suffixes K, M, G, T (powers of 1024)"),
    def(
        "cache_clean_interval",
        Required("SECONDS"),
        Sshfs,
        Nothing(check_secs),
        "no effect: the cache is bounded by cache_max_size, not cleaned periodically",
    ),
    def(
        "dcache_clean_interval",
        Required("SECONDS"),
        Sshfs,
        Nothing(check_secs),
        "no effect: the cache is bounded by cache_max_size",
    ),
    def(
        "cache_min_clean_interval",
        Required("SECONDS"),
        Sshfs,
        Nothing(check_secs),
        "no effect: the cache is bounded by cache_max_size",
    ),
    def(
        "dcache_min_clean_interval",
        Required("SECONDS"),
        Sshfs,
        Nothing(check_secs),
        "no effect: the cache is bounded by cache_max_size",
    ),
    // Words in fstab lines and autofs maps that are meant for mount(8), not for the filesystem.
    def("defaults", Flag, Mount, Ignore, "ignored (for mount(8))"),
    def("auto", Flag, Mount, Ignore, "ignored (for mount -a)"),
    def("noauto", Flag, Mount, Ignore, "ignored (for mount -a)"),
    def(
        "user",
        Flag,
        Mount,
        Ignore,
        "ignored (for mount(8): users may mount)",
    ),
    def(
        "users",
        Flag,
        Mount,
        Ignore,
        "ignored (for mount(8): users may mount and unmount)",
    ),
    def("nouser", Flag, Mount, Ignore, "ignored (for mount(8))"),
    def("owner", Flag, Mount, Ignore, "ignored (for mount(8))"),
    def("group", Flag, Mount, Ignore, "ignored (for mount(8))"),
    def(
        "_netdev",
        Flag,
        Mount,
        Ignore,
        "ignored (for mount(8) and systemd: needs the network)",
    ),
    def(
        "nofail",
        Flag,
        Mount,
        Ignore,
        "ignored (for mount(8) and systemd: no error when it fails at boot)",
    ),
    def("comment", Any, Mount, Ignore, "ignored (for fstab tools)"),
    def(
        "x-*",
        Any,
        Mount,
        Ignore,
        "ignored (for systemd and other fstab tools)",
    ),
    def(
        "setuid",
        Required("USER"),
        Mount,
        Refuse("mount as that user instead (sshfs-rs does not change users)"),
        "refused: handled by mount.fuse3",
    ),
    def(
        "drop_privileges",
        Flag,
        Mount,
        Refuse("mounting on a /dev/fd/N descriptor passed by mount.fuse3 is not supported"),
        "refused: no mounting on an inherited /dev/fuse descriptor",
    ),
];

impl Def {
    /// The option as users write it: `name`, `name=VALUE` or `name[=VALUE]`.
    pub fn shown(&self) -> String {
        match self.value {
            Flag => self.name.to_owned(),
            Required(v) => format!("{}={v}", self.name),
            Optional(v) => format!("{}[={v}]", self.name),
            Any if self.name.ends_with('*') => self.name.to_owned(),
            Any => format!("{}[=...]", self.name),
            List(v) => format!("{}={v}", self.name),
        }
    }

    /// Whether `name` is this option: case-insensitively, as OpenSSH matches its options,
    /// except mount(8)'s own words (bare `user` is fstab's, `User=NAME` is ssh's).
    pub(super) fn matches(&self, name: &str) -> bool {
        match self.name.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None if self.origin == Mount => self.name == name,
            None => self.name.eq_ignore_ascii_case(name),
        }
    }

    /// Whether the option takes what was given (`has_value`: `name=...`).
    pub(super) fn fits(&self, has_value: bool) -> bool {
        match self.value {
            Flag => !has_value,
            Required(_) | List(_) => has_value,
            Optional(_) | Any => true,
        }
    }

    /// The answer of the "sshfs option -> sshfs-rs" table.
    #[cfg(test)]
    pub(super) fn verdict(&self) -> &'static str {
        match self.does {
            Set(_) => "implemented",
            Nothing(_) | Ignore => "accepted, no effect",
            Refuse(_) => "refused",
        }
    }
}

/// The definition of `name`: of those it matches, one that takes what was given first, an exact
/// spelling first.
pub(super) fn lookup(name: &str, has_value: bool) -> Option<&'static Def> {
    let matching = || DEFS.iter().filter(|d| d.matches(name));
    matching()
        .filter(|d| d.fits(has_value))
        .max_by_key(|d| d.name == name)
        .or_else(|| matching().next())
}

pub(super) fn no_value(_: &str) -> Result<(), String> {
    Ok(())
}

pub(super) fn check_secs(v: &str) -> Result<(), String> {
    parse_secs(v).map(drop)
}

pub(super) fn check_secs_f(v: &str) -> Result<(), String> {
    parse_secs_f(v).map(drop)
}

/// sshfs's `workaround=` list: colon-separated names, each optionally prefixed with `no`.
pub(super) fn check_workarounds(v: &str) -> Result<(), String> {
    const KNOWN: &[&str] = &[
        "none",
        "all",
        "rename",
        "renamexdev",
        "truncate",
        "buflimit",
        "fstat",
        "createmode",
        "nodelaysrv",
    ];
    for w in v.split(':').filter(|w| !w.is_empty()) {
        let base = w
            .strip_prefix("no")
            .filter(|b| KNOWN.contains(b))
            .unwrap_or(w);
        if !KNOWN.contains(&base) {
            return Err(format!("'{w}' is not a workaround sshfs knows"));
        }
    }
    Ok(())
}

pub(super) fn set_cache_timeout(o: &mut MountOpts, v: &str) -> Result<(), String> {
    let t = parse_secs_f(v)?;
    o.cache_stat_timeout = Some(t);
    o.cache_dir_timeout = Some(t);
    o.cache_link_timeout = Some(t);
    Ok(())
}

pub(super) fn set_stat_timeout(o: &mut MountOpts, v: &str) -> Result<(), String> {
    o.cache_stat_timeout = Some(parse_secs_f(v)?);
    Ok(())
}

pub(super) fn set_dir_timeout(o: &mut MountOpts, v: &str) -> Result<(), String> {
    o.cache_dir_timeout = Some(parse_secs_f(v)?);
    Ok(())
}

pub(super) fn set_link_timeout(o: &mut MountOpts, v: &str) -> Result<(), String> {
    o.cache_link_timeout = Some(parse_secs_f(v)?);
    Ok(())
}

pub(super) fn set_cache_max_size(o: &mut MountOpts, v: &str) -> Result<(), String> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => {
            o.cache_max_size = Some(n);
            Ok(())
        }
        _ => Err(format!("'{v}' is not a positive number of entries")),
    }
}

/// Checks an algorithm list (see [`algorithms::resolve`]); returns it as given.
pub(super) fn check_list(kind: ListKind, v: &str) -> Result<String, String> {
    algorithms::resolve(kind, v)?;
    Ok(v.to_owned())
}
