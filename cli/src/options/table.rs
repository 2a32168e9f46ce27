//! The `-o name[=value]` options: one definition per option ([`DEFS`]: name, value, where the
//! name comes from, what it does, help), from which parsing, `--help`, the man page and the
//! "sshfs option -> sshfs-rs" table of docs/options.md are all made. Parsing checks values but
//! does no I/O.
//!
//! Every option the C sshfs lists (`sshfs -h`, `man sshfs`), every kernel mount flag mount(8)
//! passes on, and the fstab words meant for mount(8) itself has an entry here with one of three
//! answers: it is implemented ([`Does::Set`]), accepted with no effect and the reason written
//! down ([`Does::Nothing`], [`Does::Ignore`]), or refused with a message that says why
//! ([`Does::Refuse`]).

use std::path::PathBuf;
use std::time::Duration;

use sshfs_client::fs::idmap::NoMap;
use sshfs_client::fs::symlinks::LinkOptions;
use sshfs_client::fuse::Atime;
use sshfs_client::remote::algorithms::{self, ListKind};
use sshfs_client::remote::server::{ServerOverrides, SymlinkOrder};
use sshfs_client::remote::{AddressFamily, AuthMethod, StrictHostKeyChecking};

/// What an option's value looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
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
type Setter = fn(&mut MountOpts, &str) -> Result<(), String>;
/// Checks the value of an option that has no effect.
type Check = fn(&str) -> Result<(), String>;

/// What an option does.
#[derive(Clone, Copy)]
enum Does {
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
enum Origin {
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
struct Def {
    /// The name; one ending in `*` matches every name with that prefix.
    name: &'static str,
    value: Value,
    origin: Origin,
    does: Does,
    help: &'static str,
}

const fn def(
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
    }
}

use Does::{Ignore, Nothing, Refuse, Set};
use Origin::{Fuse, Kernel, Mount, Own, Ssh, Sshfs};
use Value::{Any, Flag, List, Optional, Required};

/// Why the libfuse modules are refused.
const NO_MODULES: &str = "libfuse modules are not available (sshfs-rs does not use libfuse); mount host:/dir/sub instead of subdir";

/// Every `-o` option we know.
const DEFS: &[Def] = &[
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
    ),
    def(
        "User",
        Required("NAME"),
        Ssh,
        Set(|o, v| {
            o.user = Some(v.to_owned());
            Ok(())
        }),
        "remote user name",
    ),
    def(
        "Port",
        Required("PORT"),
        Ssh,
        Set(|o, v| {
            o.port = Some(parse_port(v)?);
            Ok(())
        }),
        "remote SSH port (same as -p)",
    ),
    def(
        "UserKnownHostsFile",
        Required("FILE"),
        Ssh,
        Set(|o, v| {
            o.user_known_hosts = Some(v.split_ascii_whitespace().map(PathBuf::from).collect());
            Ok(())
        }),
        "known_hosts file(s), space separated (default ~/.ssh/known_hosts)",
    ),
    def(
        "StrictHostKeyChecking",
        Required("yes|accept-new|no|ask"),
        Ssh,
        Set(|o, v| {
            o.strict_host_key_checking = Some(parse_strict(v)?);
            Ok(())
        }),
        "what to do with an unknown host key (default ask); a changed key is always refused",
    ),
    def(
        "BatchMode",
        Required("yes|no"),
        Ssh,
        Set(|o, v| {
            o.batch_mode = Some(parse_yes_no(v)?);
            Ok(())
        }),
        "never prompt for passwords, passphrases or host keys",
    ),
    def(
        "ConnectTimeout",
        Required("SECONDS"),
        Ssh,
        Set(|o, v| {
            o.connect_timeout = Some(parse_secs(v)?);
            Ok(())
        }),
        "give up connecting after this long",
    ),
    def(
        "ServerAliveInterval",
        Required("SECONDS"),
        Ssh,
        Set(|o, v| {
            o.server_alive_interval = Some(parse_secs(v)?);
            Ok(())
        }),
        "send a keepalive after this much silence (default 15; 0 = never)",
    ),
    def(
        "ProxyJump",
        Required("HOST|none"),
        Ssh,
        Set(|o, v| {
            sshfs_client::remote::proxy::parse_jumps(v)?;
            o.proxy_jump = Some(v.to_owned());
            Ok(())
        }),
        "connect through jump hosts: [user@]host[:port], several separated by \\, (each looked up in ssh_config); none: directly",
    ),
    def(
        "ProxyCommand",
        Required("COMMAND|none"),
        Ssh,
        Set(|o, v| {
            o.proxy_command = Some(v.to_owned());
            Ok(())
        }),
        "run COMMAND (%h %p %r %n expanded) and speak SSH over its stdin and stdout; none: connect directly",
    ),
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
    ),
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
    ),
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
    ),
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
    ),
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
    ),
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
    ),
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
    ),
    def(
        "subtype",
        Required("NAME"),
        Fuse,
        Set(|o, v| {
            o.subtype = Some(v.to_owned());
            Ok(())
        }),
        "the mount's type in /proc/mounts is fuse.NAME (default sshfs-rs)",
    ),
    def(
        "allow_other",
        Flag,
        Fuse,
        Set(|o, _| {
            o.allow_other = true;
            Ok(())
        }),
        "let other users access the mount (non-root: needs user_allow_other in /etc/fuse.conf)",
    ),
    def(
        "allow_root",
        Flag,
        Fuse,
        Set(|o, _| {
            o.allow_root = true;
            Ok(())
        }),
        "let root use the mount besides its owner (others get EACCES; non-root: needs user_allow_other in /etc/fuse.conf)",
    ),
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
    ),
    def(
        "max_read",
        Required("BYTES"),
        Fuse,
        Set(|o, v| {
            o.max_read = Some(parse_size(v)?);
            Ok(())
        }),
        "largest read request the kernel sends (default: the kernel's, 1 MiB)",
    ),
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
    ),
    def(
        "async_read",
        Flag,
        Fuse,
        Set(|o, _| {
            o.async_read = true;
            Ok(())
        }),
        "the kernel sends its readahead in the background; only SIGKILL-like signals interrupt a blocked read()",
    ),
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
    ),
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
    ),
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
    ),
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
    ),
    def(
        "directport",
        Required("PORT"),
        Sshfs,
        Set(|o, v| {
            o.directport = Some(parse_port(v)?);
            Ok(())
        }),
        "speak SFTP straight to TCP port PORT of the host, without SSH: nothing is encrypted or authenticated, anyone who can reach the port has the server's access (loopback or a trusted network only); SSH options have no effect",
    ),
    def(
        "passive",
        Flag,
        Sshfs,
        Set(|o, _| {
            o.passive = true;
            Ok(())
        }),
        "speak SFTP over our own stdin and stdout, connected to an SFTP server by whoever runs us (no SSH, no reconnect: the mount ends when they close); stays in the foreground",
    ),
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
            o.keyring = crate::keyring::Choice::parse(v)?;
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
        "SFTP channels of the one SSH connection a file's writes may be spread over, at most 4 (1: one channel, writes in order). Default: 4 for OpenSSH's sftp-server, 1 for other servers, which may take writes only in order or mix up concurrent ones. Forced above 1 on another server, a session that dies while several channels are in use reconnects with one (said once, `--stats`: `channels=1 (after a crash)`)",
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
    ),
    def(
        "reconnect_timeout",
        Required("SECONDS"),
        Own,
        Set(|o, v| {
            o.reconnect_timeout = Some(parse_secs(v)?);
            Ok(())
        }),
        "while reconnecting, a request waits this long before failing with EIO (default 60); later ones fail at once until the link is back",
    ),
    def(
        "attr_timeout",
        Required("SECONDS"),
        Fuse,
        Set(|o, v| {
            o.attr_timeout = Some(parse_secs_f(v)?);
            Ok(())
        }),
        "how long the kernel caches attributes (default 1)",
    ),
    def(
        "entry_timeout",
        Required("SECONDS"),
        Fuse,
        Set(|o, v| {
            o.entry_timeout = Some(parse_secs_f(v)?);
            Ok(())
        }),
        "how long the kernel caches names (default 1)",
    ),
    def(
        "negative_timeout",
        Required("SECONDS"),
        Fuse,
        Set(|o, v| {
            o.negative_timeout = Some(parse_secs_f(v)?);
            Ok(())
        }),
        "how long the kernel caches 'no such file' (default 0: our own cache answers it)",
    ),
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
    ),
    def(
        "dir_cache",
        Required("yes|no"),
        Sshfs,
        Set(|o, v| {
            o.dir_cache = Some(parse_yes_no(v)?);
            Ok(())
        }),
        "cache directory listings (default yes)",
    ),
    def(
        "cache_timeout",
        Required("SECONDS"),
        Sshfs,
        Set(set_cache_timeout),
        "sets the three cache_*_timeout options below",
    ),
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
    ),
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
    ),
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
    ),
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
    ),
    def(
        "cache_max_size",
        Required("N"),
        Sshfs,
        Set(set_cache_max_size),
        "most paths the cache holds; the least recently used go first (default 10000)",
    ),
    def(
        "dcache_max_size",
        Required("N"),
        Sshfs,
        Set(set_cache_max_size),
        "same as cache_max_size",
    ),
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

/// `-o idmap=`: how remote owners are shown.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum IdMapping {
    /// As the server has them (the default, as sshfs's).
    #[default]
    None,
    /// The login user's remote ids shown as the local user's.
    User,
    /// The ids of `uidfile` and `gidfile`.
    File,
}

/// Settings collected from `-o` options. `None` means "not given" (ssh_config or the default
/// applies).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MountOpts {
    /// IdentityFile, in order.
    pub identity_files: Vec<PathBuf>,
    /// User.
    pub user: Option<String>,
    /// Port.
    pub port: Option<u16>,
    /// UserKnownHostsFile.
    pub user_known_hosts: Option<Vec<PathBuf>>,
    /// StrictHostKeyChecking.
    pub strict_host_key_checking: Option<StrictHostKeyChecking>,
    /// BatchMode.
    pub batch_mode: Option<bool>,
    /// ConnectTimeout.
    pub connect_timeout: Option<Duration>,
    /// ServerAliveInterval (zero = off).
    pub server_alive_interval: Option<Duration>,
    /// password_stdin: read the password from stdin.
    pub password_stdin: bool,
    /// keyring: where stored secrets are looked up.
    pub keyring: crate::keyring::Choice,
    /// ProxyJump (as given).
    pub proxy_jump: Option<String>,
    /// ProxyCommand (as given).
    pub proxy_command: Option<String>,
    /// Every SSH option given (origin ssh_config(5)), as `Name=value`, in order: passed on to
    /// the program of `ssh_command`.
    pub ssh_options: Vec<String>,
    /// ssh_command (as given).
    pub ssh_command: Option<String>,
    /// sftp_server (as given).
    pub sftp_server: Option<String>,
    /// directport.
    pub directport: Option<u16>,
    /// passive.
    pub passive: bool,
    /// ro.
    pub read_only: bool,
    /// suid (default nosuid).
    pub suid: bool,
    /// dev (default nodev).
    pub dev: bool,
    /// noexec.
    pub noexec: bool,
    /// atime, noatime, relatime.
    pub atime: Atime,
    /// nodiratime.
    pub nodiratime: bool,
    /// sync.
    pub sync: bool,
    /// dirsync.
    pub dirsync: bool,
    /// fsname.
    pub fsname: Option<String>,
    /// subtype.
    pub subtype: Option<String>,
    /// max_read.
    pub max_read: Option<u32>,
    /// allow_other.
    pub allow_other: bool,
    /// allow_root.
    pub allow_root: bool,
    /// auto_unmount.
    pub auto_unmount: bool,
    /// direct_io.
    pub direct_io: bool,
    /// default_permissions.
    pub default_permissions: bool,
    /// idmap.
    pub idmap: IdMapping,
    /// uidfile.
    pub uid_file: Option<PathBuf>,
    /// gidfile.
    pub gid_file: Option<PathBuf>,
    /// nomap.
    pub nomap: Option<NoMap>,
    /// uid.
    pub uid: Option<u32>,
    /// gid.
    pub gid: Option<u32>,
    /// umask.
    pub umask: Option<u32>,
    /// async_read (sync_read clears it).
    pub async_read: bool,
    /// debug.
    pub debug: bool,
    /// timeout.
    pub request_timeout: Option<Duration>,
    /// reconnect.
    pub reconnect: Option<bool>,
    /// reconnect_timeout.
    pub reconnect_timeout: Option<Duration>,
    /// attr_timeout.
    pub attr_timeout: Option<Duration>,
    /// entry_timeout.
    pub entry_timeout: Option<Duration>,
    /// negative_timeout.
    pub negative_timeout: Option<Duration>,
    /// cache (false = no caching at all).
    pub cache: Option<bool>,
    /// dir_cache.
    pub dir_cache: Option<bool>,
    /// cache_stat_timeout (or cache_timeout).
    pub cache_stat_timeout: Option<Duration>,
    /// cache_dir_timeout (or cache_timeout).
    pub cache_dir_timeout: Option<Duration>,
    /// cache_link_timeout (or cache_timeout).
    pub cache_link_timeout: Option<Duration>,
    /// cache_max_size.
    pub cache_max_size: Option<usize>,
    /// recheck (zero: off).
    pub recheck: Option<Duration>,
    /// Options not known, skipped because of mount's sloppy flag (`-s` of a mount helper).
    pub skipped_unknown: Vec<String>,
    /// follow_symlinks, transform_symlinks, contain_symlinks, disable_hardlink.
    pub links: LinkOptions,
    /// max_write.
    pub max_write: Option<u32>,
    /// max_background.
    pub max_background: Option<u16>,
    /// Ciphers (checked, as given).
    pub ciphers: Option<String>,
    /// KexAlgorithms (checked, as given).
    pub kex_algorithms: Option<String>,
    /// MACs (checked, as given).
    pub macs: Option<String>,
    /// HostKeyAlgorithms (checked, as given).
    pub host_key_algorithms: Option<String>,
    /// PubkeyAcceptedAlgorithms (checked, as given).
    pub pubkey_accepted_algorithms: Option<String>,
    /// Compression (and -C).
    pub compression: Option<bool>,
    /// IdentitiesOnly.
    pub identities_only: Option<bool>,
    /// IdentityAgent (as given; expanded later).
    pub identity_agent: Option<String>,
    /// CertificateFile, in order.
    pub certificate_files: Vec<PathBuf>,
    /// AddressFamily.
    pub address_family: Option<AddressFamily>,
    /// HostKeyAlias.
    pub host_key_alias: Option<String>,
    /// GlobalKnownHostsFile.
    pub global_known_hosts: Option<Vec<PathBuf>>,
    /// ConnectionAttempts.
    pub connection_attempts: Option<u32>,
    /// PreferredAuthentications (the methods sshfs-rs implements, in order).
    pub preferred_authentications: Option<Vec<AuthMethod>>,
    /// PubkeyAuthentication.
    pub pubkey_authentication: Option<bool>,
    /// PasswordAuthentication.
    pub password_authentication: Option<bool>,
    /// KbdInteractiveAuthentication (ChallengeResponseAuthentication).
    pub kbd_interactive_authentication: Option<bool>,
    /// LogLevel.
    pub log_level: Option<LogLevel>,
    /// ServerAliveCountMax.
    pub server_alive_count_max: Option<usize>,
    /// ssh options given with -o that sshfs-rs knows but does not act on (named in a warning).
    pub ssh_unused: Vec<String>,
    /// ssh options given with -o that mean nothing for a mount (named with -v).
    pub ssh_irrelevant: Vec<String>,
    /// max_conns, symlink_order, hard_remove.
    pub server: ServerOverrides,
}

/// OpenSSH's `LogLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Nothing.
    Quiet,
    /// Fatal errors only.
    Fatal,
    /// Errors.
    Error,
    /// The default: errors and warnings.
    Info,
    /// What `-v` shows.
    Verbose,
    /// DEBUG, DEBUG1: every request.
    Debug1,
    /// DEBUG2.
    Debug2,
    /// DEBUG3: everything, the SSH library's too.
    Debug3,
}

impl Def {
    /// The option as users write it: `name`, `name=VALUE` or `name[=VALUE]`.
    fn shown(&self) -> String {
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
    fn matches(&self, name: &str) -> bool {
        match self.name.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None if self.origin == Mount => self.name == name,
            None => self.name.eq_ignore_ascii_case(name),
        }
    }

    /// Whether the option takes what was given (`has_value`: `name=...`).
    fn fits(&self, has_value: bool) -> bool {
        match self.value {
            Flag => !has_value,
            Required(_) | List(_) => has_value,
            Optional(_) | Any => true,
        }
    }

    /// The answer of the "sshfs option -> sshfs-rs" table.
    #[cfg(test)]
    fn verdict(&self) -> &'static str {
        match self.does {
            Set(_) => "implemented",
            Nothing(_) | Ignore => "accepted, no effect",
            Refuse(_) => "refused",
        }
    }
}

/// Every `-o` option as users see it (`name` or `name=VALUE`) and what it does (for the man
/// page, which a test makes).
#[cfg(test)]
pub fn documented() -> impl Iterator<Item = (String, &'static str)> {
    DEFS.iter().map(|d| (d.shown(), d.help))
}

/// The `-o` options for shell completion: `name=` for those that take a value, `name` for the
/// others, with their help (the `x-*` family has no single name to offer).
#[cfg(test)]
pub fn completion_words() -> impl Iterator<Item = (String, &'static str)> {
    DEFS.iter()
        .filter(|d| !d.name.ends_with('*'))
        .map(|d| match d.value {
            Required(_) | List(_) => (format!("{}=", d.name), d.help),
            Flag | Optional(_) | Any => (d.name.to_owned(), d.help),
        })
}

/// The `-o` part of `--help`, made from the definitions: what works in full, then the names
/// that are only accepted, and those refused.
pub fn help_text() -> String {
    let mut s = String::from("Mount options (-o name[=value][,name[=value]...]; repeatable):\n");
    for d in DEFS.iter().filter(|d| matches!(d.does, Set(_))) {
        s.push_str(&format!("  {:<42} {}\n", d.shown(), d.help));
    }
    let names = |pick: fn(&Does) -> bool| {
        DEFS.iter()
            .filter(|d| pick(&d.does))
            .map(|d| d.name)
            .collect::<Vec<_>>()
            .join(" ")
    };
    s.push_str(&wrap(
        "Accepted for sshfs and mount(8) compatibility, with no effect (see the man page):",
        &names(|d| matches!(d, Nothing(_) | Ignore)),
    ));
    s.push_str(&wrap(
        "Refused, each with the reason:",
        &names(|d| matches!(d, Refuse(_))),
    ));
    s
}

/// `head` followed by the words of `list`, wrapped at 100 columns and indented.
fn wrap(head: &str, list: &str) -> String {
    let mut out = format!("\n{head}\n ");
    let mut col = 1;
    for word in list.split(' ') {
        if col + word.len() + 1 > 100 {
            out.push_str("\n ");
            col = 1;
        }
        out.push(' ');
        out.push_str(word);
        col += word.len() + 1;
    }
    out.push('\n');
    out
}

/// The "sshfs option -> sshfs-rs" table of docs/options.md (Markdown): every option of the C
/// sshfs, libfuse and mount(8) with its answer (written and checked by a test).
#[cfg(test)]
pub fn sshfs_table() -> String {
    let mut s = String::from("| sshfs option | sshfs-rs | |\n|---|---|---|\n");
    for d in DEFS.iter().filter(|d| d.origin != Own) {
        let why = match d.does {
            Refuse(why) => why,
            _ => d.help,
        };
        s.push_str(&format!(
            "| `{}` | {} | {} |\n",
            d.shown().replace('|', "\\|"),
            d.verdict(),
            why.replace('|', "\\|")
        ));
    }
    s
}

/// Parses a list of `-o` arguments (each may hold several comma-separated options).
#[cfg(test)]
pub fn parse(args: &[String]) -> Result<MountOpts, String> {
    parse_with(args, false)
}

/// Splits an `-o` argument at its commas; `\,` is a comma inside a value (as libfuse's option
/// parser, and so the C sshfs, take it).
fn split_options(arg: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = arg.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                chars.next();
                if let Some(last) = out.last_mut() {
                    last.push(',');
                }
            }
            ',' => out.push(String::new()),
            c => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    out
}

/// Like [`parse`]; with `sloppy` (mount's `-s`), an unknown option is skipped (and listed in
/// [`MountOpts::skipped_unknown`]) instead of refused.
pub fn parse_with(args: &[String], sloppy: bool) -> Result<MountOpts, String> {
    let mut o = MountOpts::default();
    // ssh keywords we have no entry for: for the ssh of -o ssh_command, else warned about.
    let mut ssh_keywords = Vec::new();
    for arg in args {
        for item in join_lists(split_options(arg)).iter() {
            let item = item.as_str();
            let (name, value) = match item.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (item, None),
            };
            let def = lookup(name, value.is_some());
            let Some(def) = def else {
                if let Some(kind) = crate::ssh_config::kind_of(&name.to_ascii_lowercase()) {
                    // Passed on to the ssh of -o ssh_command; without one, named in a warning
                    // as in ssh_config (checked below, once ssh_command is known).
                    if let Some(v) = value.filter(|_| crate::ssh_config::is_ssh_option(name)) {
                        o.ssh_options.push(format!("{name}={v}"));
                    }
                    ssh_keywords.push((name.to_owned(), value.map(str::to_owned), kind));
                    continue;
                }
                if sloppy {
                    o.skipped_unknown.push(item.to_owned());
                    continue;
                }
                return Err(format!("unknown option '-o {name}' (see sshfs-rs --help)"));
            };
            let value = match (def.value, value) {
                (Any, v) => v.unwrap_or(""),
                (Flag, None) => "",
                (Flag, Some(_)) => return Err(format!("option '-o {name}' takes no value")),
                (Required(what), None) | (Required(what), Some("")) => {
                    return Err(format!(
                        "option '-o {name}' needs a value: -o {}={what}",
                        def.name
                    ));
                }
                (List(what), None) | (List(what), Some("")) => {
                    return Err(format!(
                        "option '-o {name}' needs a value: -o {}={what}",
                        def.name
                    ));
                }
                (Optional(_), v) | (Required(_), v) | (List(_), v) => v.unwrap_or(""),
            };
            let bad = |why: String| format!("bad value in '-o {item}': {why}");
            match def.does {
                Set(set) => set(&mut o, value).map_err(bad)?,
                Nothing(check) => check(value).map_err(bad)?,
                Ignore => {}
                Refuse(why) => return Err(format!("option '-o {name}' is not supported: {why}")),
            }
            if def.origin == Ssh {
                o.ssh_options.push(format!("{name}={value}"));
            }
        }
    }
    // With ssh_command they went to ssh above; the config language is never an -o option.
    for (name, value, kind) in ssh_keywords {
        if o.ssh_command.is_none() || kind == crate::ssh_config::Kind::Structure {
            ssh_keyword(&mut o, &name, value.as_deref(), kind)?;
        }
    }
    Ok(o)
}

/// An ssh option sshfs-rs has no `-o` definition for: one ssh_config knows but sshfs-rs does
/// not act on is kept to be named in a warning (one meaningless for a mount, only with -v),
/// as the same keyword in ssh_config is; the config language itself is refused.
fn ssh_keyword(
    o: &mut MountOpts,
    name: &str,
    value: Option<&str>,
    kind: crate::ssh_config::Kind,
) -> Result<(), String> {
    use crate::ssh_config::Kind;
    if value.is_none_or(str::is_empty) {
        return Err(format!("option '-o {name}' needs a value: -o {name}=..."));
    }
    match kind {
        Kind::Unsupported => o.ssh_unused.push(name.to_owned()),
        Kind::Irrelevant => o.ssh_irrelevant.push(name.to_owned()),
        Kind::Structure | Kind::Used => {
            return Err(format!(
                "option '-o {name}' is not supported with -o: set it in an ssh_config file (-F FILE)"
            ));
        }
    }
    Ok(())
}

/// Joins to a list option (`Ciphers=a`) the words after it that are not options themselves
/// (`b`, `c` of `-o Ciphers=a,b,c,ro`), as ssh reads `-o Ciphers=a,b,c`.
fn join_lists(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items.into_iter().filter(|s| !s.is_empty()) {
        let continues = !item.contains('=')
            && lookup(&item, false).is_none()
            && crate::ssh_config::kind_of(&item.to_ascii_lowercase()).is_none()
            && out.last().is_some_and(|last| {
                last.split_once('=')
                    .and_then(|(n, _)| lookup(n, true))
                    .is_some_and(|d| matches!(d.value, List(_)))
            });
        match out.last_mut() {
            Some(last) if continues => {
                last.push(',');
                last.push_str(&item);
            }
            _ => out.push(item),
        }
    }
    out
}

/// Checks an algorithm list (see [`algorithms::resolve`]); returns it as given.
fn check_list(kind: ListKind, v: &str) -> Result<String, String> {
    algorithms::resolve(kind, v)?;
    Ok(v.to_owned())
}

/// OpenSSH's AddressFamily values.
pub fn parse_address_family(v: &str) -> Result<AddressFamily, String> {
    match v.to_ascii_lowercase().as_str() {
        "any" => Ok(AddressFamily::Any),
        "inet" => Ok(AddressFamily::Inet),
        "inet6" => Ok(AddressFamily::Inet6),
        _ => Err(format!("'{v}' is not one of any, inet, inet6")),
    }
}

/// PreferredAuthentications: the methods sshfs-rs implements, in the order given (the ones it
/// does not, gssapi-with-mic and hostbased, are left out).
pub fn parse_preferred_auth(v: &str) -> Result<Vec<AuthMethod>, String> {
    let mut methods = Vec::new();
    for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let m = match name {
            "publickey" => AuthMethod::PublicKey,
            "keyboard-interactive" => AuthMethod::KeyboardInteractive,
            "password" => AuthMethod::Password,
            "gssapi-with-mic" | "gssapi-keyex" | "hostbased" => continue,
            _ => return Err(format!("'{name}' is not an authentication method")),
        };
        if !methods.contains(&m) {
            methods.push(m);
        }
    }
    if methods.is_empty() {
        return Err(format!(
            "'{v}' names none of the methods sshfs-rs implements (publickey, keyboard-interactive, password)"
        ));
    }
    Ok(methods)
}

/// PubkeyAuthentication: yes, no, and OpenSSH's unbound and host-bound (both yes here).
pub fn parse_pubkey_auth(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "unbound" | "host-bound" => Ok(true),
        _ => {
            parse_yes_no(v).map_err(|_| format!("'{v}' is not one of yes, no, unbound, host-bound"))
        }
    }
}

/// OpenSSH's LogLevel names.
pub fn parse_log_level(v: &str) -> Result<LogLevel, String> {
    Ok(match v.to_ascii_uppercase().as_str() {
        "QUIET" => LogLevel::Quiet,
        "FATAL" => LogLevel::Fatal,
        "ERROR" => LogLevel::Error,
        "INFO" => LogLevel::Info,
        "VERBOSE" => LogLevel::Verbose,
        "DEBUG" | "DEBUG1" => LogLevel::Debug1,
        "DEBUG2" => LogLevel::Debug2,
        "DEBUG3" => LogLevel::Debug3,
        _ => {
            return Err(format!(
                "'{v}' is not one of QUIET, FATAL, ERROR, INFO, VERBOSE, DEBUG, DEBUG1, DEBUG2, DEBUG3"
            ));
        }
    })
}

/// A count, 0 or more.
pub fn parse_count(v: &str) -> Result<usize, String> {
    v.parse::<usize>()
        .map_err(|_| format!("'{v}' is not a number"))
}

/// The definition of `name`: of those it matches, one that takes what was given first, an exact
/// spelling first.
fn lookup(name: &str, has_value: bool) -> Option<&'static Def> {
    let matching = || DEFS.iter().filter(|d| d.matches(name));
    matching()
        .filter(|d| d.fits(has_value))
        .max_by_key(|d| d.name == name)
        .or_else(|| matching().next())
}

fn no_value(_: &str) -> Result<(), String> {
    Ok(())
}

fn check_secs(v: &str) -> Result<(), String> {
    parse_secs(v).map(drop)
}

fn check_secs_f(v: &str) -> Result<(), String> {
    parse_secs_f(v).map(drop)
}

/// sshfs's `workaround=` list: colon-separated names, each optionally prefixed with `no`.
fn check_workarounds(v: &str) -> Result<(), String> {
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

fn set_cache_timeout(o: &mut MountOpts, v: &str) -> Result<(), String> {
    let t = parse_secs_f(v)?;
    o.cache_stat_timeout = Some(t);
    o.cache_dir_timeout = Some(t);
    o.cache_link_timeout = Some(t);
    Ok(())
}

fn set_stat_timeout(o: &mut MountOpts, v: &str) -> Result<(), String> {
    o.cache_stat_timeout = Some(parse_secs_f(v)?);
    Ok(())
}

fn set_dir_timeout(o: &mut MountOpts, v: &str) -> Result<(), String> {
    o.cache_dir_timeout = Some(parse_secs_f(v)?);
    Ok(())
}

fn set_link_timeout(o: &mut MountOpts, v: &str) -> Result<(), String> {
    o.cache_link_timeout = Some(parse_secs_f(v)?);
    Ok(())
}

fn set_cache_max_size(o: &mut MountOpts, v: &str) -> Result<(), String> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => {
            o.cache_max_size = Some(n);
            Ok(())
        }
        _ => Err(format!("'{v}' is not a positive number of entries")),
    }
}

/// A positive size or count that fits in 32 bits.
pub fn parse_size(v: &str) -> Result<u32, String> {
    match v.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{v}' is not a positive number")),
    }
}

/// A user or group id.
fn parse_id(v: &str) -> Result<u32, String> {
    v.parse::<u32>()
        .map_err(|_| format!("'{v}' is not a user or group id number"))
}

/// Permission bits to hide, in octal (`022`).
fn parse_umask(v: &str) -> Result<u32, String> {
    match u32::from_str_radix(v, 8) {
        Ok(m) if m <= 0o7777 => Ok(m),
        _ => Err(format!("'{v}' is not an octal mode mask such as 022")),
    }
}

/// A TCP port number 1..=65535.
pub fn parse_port(v: &str) -> Result<u16, String> {
    match v.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("'{v}' is not a port number (1-65535)")),
    }
}

/// OpenSSH's StrictHostKeyChecking values (`off` = no, `on` = yes, like OpenSSH).
pub fn parse_strict(v: &str) -> Result<StrictHostKeyChecking, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "on" | "true" => Ok(StrictHostKeyChecking::Yes),
        "accept-new" => Ok(StrictHostKeyChecking::AcceptNew),
        "no" | "off" | "false" => Ok(StrictHostKeyChecking::No),
        "ask" => Ok(StrictHostKeyChecking::Ask),
        _ => Err(format!("'{v}' is not one of yes, accept-new, no, ask")),
    }
}

/// yes/no.
pub fn parse_yes_no(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" => Ok(true),
        "no" | "false" | "off" => Ok(false),
        _ => Err(format!("'{v}' is not yes or no")),
    }
}

/// Whole seconds.
pub fn parse_secs(v: &str) -> Result<Duration, String> {
    v.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("'{v}' is not a number of seconds"))
}

fn parse_secs_f(v: &str) -> Result<Duration, String> {
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("'{v}' is not a number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<MountOpts, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn server_overrides_are_parsed() {
        let o = p(&["max_conns=1,symlink_order=draft,hard_remove"]).unwrap();
        assert_eq!(o.server.max_conns, Some(1));
        assert_eq!(o.server.symlink_order, Some(SymlinkOrder::Draft));
        assert_eq!(o.server.hard_remove, Some(true));
        assert_eq!(
            p(&["hard_remove=no"]).unwrap().server.hard_remove,
            Some(false)
        );
        assert_eq!(p(&["ro"]).unwrap().server.hard_remove, None);
        assert!(p(&["hard_remove=maybe"]).is_err());
    }

    #[test]
    fn ssh_options_case_insensitive_and_comma_lists() {
        let o = p(&[
            "identityfile=/k1,IdentityFile=/k2",
            "port=2222,ro",
            "stricthostkeychecking=accept-new",
        ])
        .unwrap();
        assert_eq!(
            o.identity_files,
            vec![PathBuf::from("/k1"), PathBuf::from("/k2")]
        );
        assert_eq!(o.port, Some(2222));
        assert!(o.read_only);
        assert_eq!(
            o.strict_host_key_checking,
            Some(StrictHostKeyChecking::AcceptNew)
        );
    }

    #[test]
    fn ssh_lists_take_their_commas_and_other_ssh_keywords_are_kept() {
        let o = p(&[
            "Ciphers=aes128-ctr,aes256-ctr,ro,MACs=-hmac-sha1*,KexAlgorithms=^curve25519-sha256",
        ])
        .unwrap();
        assert_eq!(o.ciphers.as_deref(), Some("aes128-ctr,aes256-ctr"));
        assert!(o.read_only);
        assert_eq!(o.macs.as_deref(), Some("-hmac-sha1*"));
        assert!(
            p(&["Ciphers=aes128-ctr,frob"])
                .unwrap_err()
                .contains("frob")
        );
        assert_eq!(
            p(&["PreferredAuthentications=password,gssapi-with-mic,publickey"])
                .unwrap()
                .preferred_authentications,
            Some(vec![AuthMethod::Password, AuthMethod::PublicKey])
        );
        let o =
            p(&["ControlMaster=auto,SendEnv=LANG,ServerAliveCountMax=7,LogLevel=debug3"]).unwrap();
        assert_eq!(o.ssh_unused, vec!["ControlMaster"]);
        assert_eq!(o.ssh_irrelevant, vec!["SendEnv"]);
        assert_eq!(o.server_alive_count_max, Some(7));
        assert_eq!(o.log_level, Some(LogLevel::Debug3));
        assert!(p(&["Host=x"]).unwrap_err().contains("ssh_config file"));
        assert!(p(&["AddressFamily=ipx"]).is_err());
    }

    /// Every keyword ssh_config acts on can be given with -o too.
    #[test]
    fn every_used_ssh_keyword_is_an_option() {
        for (key, kind) in crate::ssh_config::KEYWORDS {
            // HostName and the old IdentityFile2 are read from ssh_config only.
            if *kind == crate::ssh_config::Kind::Used
                && !["hostname", "identityfile2"].contains(key)
            {
                assert!(
                    DEFS.iter().any(|d| d.origin == Ssh && d.matches(key)),
                    "ssh_config keyword {key} has no -o definition"
                );
            }
        }
    }

    #[test]
    fn unknown_option_is_named() {
        let e = p(&["ro,frobnicate"]).unwrap_err();
        assert!(e.contains("frobnicate"), "{e}");
        let o = parse_with(&["ro,frobnicate=1".to_owned()], true).unwrap();
        assert_eq!(o.skipped_unknown, vec!["frobnicate=1".to_owned()]);
    }

    /// An ssh option we have no entry for goes to the ssh of ssh_command; without one it is
    /// named in a warning, as in ssh_config.
    #[test]
    fn other_ssh_options_go_to_ssh_command() {
        let o = p(&["ro,ControlMaster=auto"]).unwrap();
        assert_eq!(o.ssh_unused, ["ControlMaster"]);
        let o = p(&["GSSAPIAuthentication=yes,ssh_command=ssh,IdentityFile=/k"]).unwrap();
        assert_eq!(
            o.ssh_options,
            ["GSSAPIAuthentication=yes", "IdentityFile=/k"]
        );
        assert!(o.ssh_unused.is_empty(), "{:?}", o.ssh_unused);
        assert!(
            p(&["ssh_command=ssh,Frobnicate=1"]).is_err(),
            "not an ssh option"
        );
        assert!(p(&["ssh_command=ssh,Host=x"]).is_err(), "config language");
    }

    #[test]
    fn bad_values() {
        assert!(p(&["Port=0"]).unwrap_err().contains("port"));
        assert!(p(&["Port=x"]).is_err());
        assert!(p(&["BatchMode=maybe"]).is_err());
        assert!(p(&["StrictHostKeyChecking=sometimes"]).is_err());
        assert!(p(&["ro=1"]).unwrap_err().contains("takes no value"));
        assert!(p(&["User"]).unwrap_err().contains("needs a value"));
        assert!(p(&["attr_timeout=-1"]).is_err());
        assert!(p(&["workaround=rename:nofrob"]).is_err());
        assert!(p(&["ssh_protocol=1"]).unwrap_err().contains("protocol 1"));
        assert!(p(&["idmap=group"]).unwrap_err().contains("idmap=group"));
        assert!(p(&["nomap=maybe"]).is_err());
        assert!(p(&["uid=-1"]).is_err());
        assert!(p(&["umask=8"]).is_err());
        assert!(p(&["umask=77777"]).is_err());
    }

    #[test]
    fn values() {
        let o = p(&["BatchMode=yes,ConnectTimeout=5,timeout=7,attr_timeout=0.5,allow_other,default_permissions,UserKnownHostsFile=/a /b"]).unwrap();
        assert_eq!(o.batch_mode, Some(true));
        assert_eq!(o.connect_timeout, Some(Duration::from_secs(5)));
        assert_eq!(o.request_timeout, Some(Duration::from_secs(7)));
        assert_eq!(o.attr_timeout, Some(Duration::from_millis(500)));
        assert!(o.allow_other && o.default_permissions);
        assert_eq!(
            o.user_known_hosts,
            Some(vec![PathBuf::from("/a"), PathBuf::from("/b")])
        );
    }

    #[test]
    fn owner_options() {
        let o = p(&["idmap=file,uidfile=/u,gidfile=/g,nomap=ignore,uid=1000,gid=100,umask=027"])
            .unwrap();
        assert_eq!(o.idmap, IdMapping::File);
        assert_eq!(o.uid_file, Some(PathBuf::from("/u")));
        assert_eq!(o.gid_file, Some(PathBuf::from("/g")));
        assert_eq!(o.nomap, Some(NoMap::Ignore));
        assert_eq!((o.uid, o.gid, o.umask), (Some(1000), Some(100), Some(0o27)));
        assert_eq!(p(&["idmap=user"]).unwrap().idmap, IdMapping::User);
        assert_eq!(
            p(&["idmap=user,idmap=none"]).unwrap().idmap,
            IdMapping::None
        );
    }

    #[test]
    fn cache_options() {
        let o =
            p(&["cache_timeout=5,cache_dir_timeout=2.5,dir_cache=no,cache_max_size=100"]).unwrap();
        assert_eq!(o.cache_stat_timeout, Some(Duration::from_secs(5)));
        assert_eq!(o.cache_link_timeout, Some(Duration::from_secs(5)));
        assert_eq!(o.cache_dir_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(o.dir_cache, Some(false));
        assert_eq!(o.cache_max_size, Some(100));
        assert!(p(&["cache_max_size=0"]).is_err());
        assert!(p(&["cache=maybe"]).is_err());
        assert!(p(&["cache_clean_interval=60"]).is_ok());
        let d = p(&["dcache_timeout=3,dcache_link_timeout=1,dcache_max_size=7"]).unwrap();
        assert_eq!(d.cache_stat_timeout, Some(Duration::from_secs(3)));
        assert_eq!(d.cache_link_timeout, Some(Duration::from_secs(1)));
        assert_eq!(d.cache_max_size, Some(7));
        assert_eq!(p(&["recheck=0"]).unwrap().recheck, Some(Duration::ZERO));
        assert_eq!(
            p(&["recheck=5"]).unwrap().recheck,
            Some(Duration::from_secs(5))
        );
        assert!(p(&["recheck=soon"]).is_err());
    }

    /// What mount(8) and mount.fuse3 pass on: kernel flags and fstab words.
    #[test]
    fn kernel_flags_and_fstab_words() {
        let o = p(&["rw,nosuid,nodev,noexec,noatime,_netdev,nofail,x-systemd.automount,comment=x,defaults,user,noauto"]).unwrap();
        assert!(!o.suid && !o.dev && o.noexec && !o.read_only);
        assert_eq!(o.atime, Atime::Never);
        let o = p(&["dev,suid,relatime,sync,dirsync,nodiratime"]).unwrap();
        assert!(o.suid && o.dev && o.sync && o.dirsync && o.nodiratime);
        assert_eq!(o.atime, Atime::Relative);
        let o = p(&[""]).unwrap();
        assert!(!o.suid && !o.dev, "nosuid,nodev by default");
        let o = p(&["fsname=me@x:/y,subtype=sshfs,max_read=65536,reconnect"]).unwrap();
        assert_eq!(o.fsname.as_deref(), Some("me@x:/y"));
        assert_eq!(o.subtype.as_deref(), Some("sshfs"));
        assert_eq!(o.max_read, Some(65536));
        assert_eq!(o.reconnect, Some(true), "a bare reconnect means yes");
        assert_eq!(p(&["reconnect=no"]).unwrap().reconnect, Some(false));
        // fstab's bare `user` is mount(8)'s; `user=NAME` is ssh's User, as ssh -o takes it.
        assert_eq!(p(&["user"]).unwrap(), MountOpts::default());
        assert_eq!(p(&["user=bob"]).unwrap().user.as_deref(), Some("bob"));
        assert!(p(&["User"]).unwrap_err().contains("needs a value"));
    }

    /// A value each option accepts, from its description.
    fn sample(d: &Def) -> Option<String> {
        let v = match d.value {
            Flag | Any | Optional(_) => return None,
            List(_) => match d.name {
                "Ciphers" => "aes128-ctr",
                "KexAlgorithms" => "curve25519-sha256",
                "MACs" => "hmac-sha2-256",
                "PreferredAuthentications" => "publickey",
                _ => "ssh-ed25519",
            },
            Required(what) => match what {
                "SECONDS" | "N" | "BYTES" | "PORT" => "5",
                "OCTAL" => "022",
                "LIST" => "rename:nofstat",
                _ => what.split('|').next().unwrap_or(what),
            },
        };
        Some(v.to_owned())
    }

    /// The parser does what each definition says (and so what the docs table says): `Set` and
    /// `Nothing` are accepted, `Ignore` too whatever the value, `Refuse` is refused with its
    /// reason.
    #[test]
    fn every_definition_parses_as_its_answer() {
        for d in DEFS {
            let name = d.name.replace('*', "foo");
            let item = match sample(d) {
                Some(v) => format!("{name}={v}"),
                None => name.clone(),
            };
            let got = p(&[&item]);
            match d.does {
                Set(_) | Nothing(_) | Ignore => {
                    assert!(got.is_ok(), "{item}: {got:?}")
                }
                Refuse(why) => {
                    let e = got.unwrap_err();
                    assert!(e.contains(&name) && e.contains(why), "{item}: {e}");
                }
            }
            if matches!(d.does, Nothing(_) | Ignore) && d.name != "x-*" {
                let mut o = p(&[&item]).unwrap();
                o.skipped_unknown.clear();
                // SSH options are kept for an ssh_command whatever they do for us.
                o.ssh_options.clear();
                assert_eq!(o, MountOpts::default(), "{item} has no effect");
            }
        }
    }

    /// Every option the C sshfs 3.7 lists in `sshfs -h` and `man sshfs` (and the FUSE ones it
    /// passes on) has a definition: no sshfs option is "unknown".
    #[test]
    fn every_sshfs_option_has_an_answer() {
        let sshfs = "reconnect delay_connect sshfs_sync no_readahead sync_readdir dir_cache \
            dcache_max_size dcache_timeout dcache_stat_timeout dcache_link_timeout \
            dcache_dir_timeout dcache_clean_interval dcache_min_clean_interval direct_io \
            workaround idmap uidfile gidfile nomap ssh_command ssh_protocol sftp_server \
            directport passive disable_hardlink transform_symlinks contain_symlinks \
            no_contain_symlinks follow_symlinks no_check_root password_stdin max_conns \
            kernel_cache auto_cache noauto_cache no_rofd_flush umask uid gid entry_timeout \
            negative_timeout attr_timeout ac_attr_timeout noforget remember modules \
            allow_other allow_root auto_unmount subdir rellinks norellinks from_code to_code \
            max_read large_read atime noatime relatime dev nodev suid nosuid exec noexec \
            fsname subtype max_write max_background writeback_cache rw ro sync async dirsync \
            default_permissions debug cache cache_timeout cache_max_size \
            _netdev nofail auto noauto user users nouser defaults comment x-systemd.foo";
        for name in sshfs.split_ascii_whitespace() {
            assert!(
                DEFS.iter().any(|d| d.matches(name)),
                "sshfs option {name} has no definition"
            );
        }
    }

    #[test]
    fn help_lists_every_option() {
        let h = help_text();
        for d in DEFS {
            assert!(h.contains(d.name), "{} missing from help", d.name);
        }
    }

    /// docs/options.md holds the table made by [`sshfs_table`] between two marker lines;
    /// `SSHFS_RS_WRITE_DOCS=1 cargo test -p sshfs-rs options_table` writes it anew.
    #[test]
    fn options_table_in_docs_is_current() {
        const BEGIN: &str = "<!-- BEGIN sshfs-options: made by `SSHFS_RS_WRITE_DOCS=1 cargo test -p sshfs-rs options_table` from cli/src/options.rs -->\n";
        const END: &str = "<!-- END sshfs-options -->\n";
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/options.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let (head, rest) = doc
            .split_once(BEGIN)
            .expect("BEGIN marker in docs/options.md");
        let (old, tail) = rest.split_once(END).expect("END marker in docs/options.md");
        let table = sshfs_table();
        if std::env::var_os("SSHFS_RS_WRITE_DOCS").is_some() && old != table {
            std::fs::write(&path, format!("{head}{BEGIN}{table}{END}{tail}")).unwrap();
            return;
        }
        assert!(
            old == table,
            "the sshfs option table in docs/options.md is out of date: run SSHFS_RS_WRITE_DOCS=1 cargo test -p sshfs-rs options_table"
        );
    }
}
