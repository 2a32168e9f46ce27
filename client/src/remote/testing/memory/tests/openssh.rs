//! The in-memory server against the real thing: the same requests go to OpenSSH's
//! `sftp-server` (run here as a child process in a temporary directory) and to a
//! [`MemoryServer`], and every answer must be the same: status codes, handle numbers, data,
//! attributes (less times, and directory sizes, which depend on the filesystem), listings,
//! resolved paths. A scripted scenario walks the edge cases one by one; random sequences over
//! a few names find what the script did not think of. Skipped where the program is missing.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as RawError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet};
use tokio::io::DuplexStream;

use crate::remote::testing::memory::{MemoryServer, Personality};
use crate::remote::testing::{PIPE_BUFFER, ServeSftp};

/// Where Debian installs OpenSSH's server.
const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

/// OpenSSH's `sftp-server` as a child process working in `dir`, run by `user` (root if
/// `None`), umask 022.
struct RealServer {
    dir: PathBuf,
    user: Option<u32>,
}

impl ServeSftp for RealServer {
    fn open_session(&self, _connection: u64, _channel: usize) -> DuplexStream {
        let (client, server) = tokio::io::duplex(PIPE_BUFFER);
        let mut cmd = tokio::process::Command::new(SFTP_SERVER);
        cmd.args(["-u", "022"])
            .current_dir(&self.dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(uid) = self.user {
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(uid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("spawn sftp-server");
        let mut stdin = child.stdin.take().expect("stdin");
        let mut stdout = child.stdout.take().expect("stdout");
        tokio::spawn(async move {
            let (mut rd, mut wr) = tokio::io::split(server);
            let up = tokio::io::copy(&mut rd, &mut stdin);
            let down = tokio::io::copy(&mut stdout, &mut wr);
            tokio::select! {
                _ = up => {}
                _ = down => {}
            }
            drop(stdin);
            let _ = child.wait().await;
        });
        client
    }
}

/// Whether the real server can be run here.
fn available() -> bool {
    if Path::new(SFTP_SERVER).exists() {
        return true;
    }
    println!("skipped: {SFTP_SERVER} is not installed");
    false
}

/// Attributes to set.
#[derive(Debug, Clone, Default)]
struct Set {
    size: Option<u64>,
    perm: Option<u32>,
    owner: Option<(u32, u32)>,
    times: Option<(u32, u32)>,
}

impl Set {
    fn attrs(&self) -> FileAttributes {
        FileAttributes {
            size: self.size,
            permissions: self.perm,
            uid: self.owner.map(|o| o.0),
            gid: self.owner.map(|o| o.1),
            atime: self.times.map(|t| t.0),
            mtime: self.times.map(|t| t.1),
            ..FileAttributes::empty()
        }
    }
}

/// One step, sent to both servers. Paths are relative to the server's working directory;
/// `{H}` in one stands for its absolute path.
#[derive(Debug, Clone)]
enum Op {
    /// Made by root on the filesystem itself (not through SFTP): a file with `data`, `perm`
    /// and owner.
    RootFile(&'static str, &'static [u8], u32, u32),
    /// Made by root: a directory with `perm` and owner.
    RootDir(&'static str, u32, u32),
    Open(&'static str, OpenFlags, Option<u32>),
    Close(u8),
    Read(u8, u64, u32),
    Write(u8, u64, Bytes),
    Lstat(&'static str),
    Stat(&'static str),
    Fstat(u8),
    Setstat(&'static str, Set),
    Fsetstat(u8, Set),
    Opendir(&'static str),
    /// READDIR until EOF: every entry and the number of pages.
    ReadAll(u8),
    Remove(&'static str),
    Mkdir(&'static str, Option<u32>),
    Rmdir(&'static str),
    Realpath(&'static str),
    Rename(&'static str, &'static str),
    Readlink(&'static str),
    /// SYMLINK with the two strings in the order sent (OpenSSH: target first).
    Symlink(&'static str, &'static str),
    PosixRename(&'static str, &'static str),
    Hardlink(&'static str, &'static str),
    Fsync(u8),
    Statvfs(&'static str),
    Fstatvfs(u8),
    Lsetstat(&'static str, Set),
    Limits,
    ExpandPath(&'static str),
    CopyData(u8, u64, u64, u8, u64),
    Extended(&'static str),
}

/// Data to write, shown short.
#[derive(Clone, Copy)]
struct Bytes(&'static [u8]);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = String::from_utf8_lossy(&self.0[..self.0.len().min(12)]).into_owned();
        write!(f, "{shown:?} ({} bytes)", self.0.len())
    }
}

/// One side of the comparison.
struct Side {
    raw: RawSftpSession,
    home: String,
    /// Applies the root-made fixtures.
    root: Box<dyn Fn(&Op) + Send + Sync>,
}

fn handle(n: u8) -> String {
    String::from_utf8(vec![0, 0, 0, n]).expect("small handle")
}

fn ssh_string(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

fn status_of(e: RawError) -> String {
    match e {
        RawError::Status(s) => format!("status {}", u32::from(s.status_code)),
        other => format!("error {other}"),
    }
}

/// Attributes as compared: no times; no size for directories.
fn shown(a: &FileAttributes) -> String {
    let dir = a
        .permissions
        .is_some_and(|m| m & libc::S_IFMT == libc::S_IFDIR);
    let size = if dir { None } else { a.size };
    format!(
        "size={size:?} mode={:o} owner={:?}:{:?}",
        a.permissions.unwrap_or(0),
        a.uid,
        a.gid
    )
}

fn extended_status(r: Result<Packet, RawError>) -> String {
    match r {
        Ok(Packet::Status(s)) => format!("status {}", u32::from(s.status_code)),
        Ok(Packet::ExtendedReply(_)) => "reply".into(),
        Ok(Packet::Name(n)) => format!("name {:?}", n.files.first().map(|f| &f.filename)),
        Ok(other) => format!("packet {other:?}"),
        Err(e) => status_of(e),
    }
}

impl Side {
    fn path(&self, p: &str) -> String {
        p.replace("{H}", &self.home)
    }

    /// Replaces this side's home with `~` in what it answered.
    fn norm(&self, s: String) -> String {
        s.replace(&self.home, "~")
    }

    async fn run(&self, op: &Op) -> String {
        let raw = &self.raw;
        let out = match op.clone() {
            Op::RootFile(..) | Op::RootDir(..) => {
                (self.root)(op);
                "made".into()
            }
            Op::Open(p, flags, perm) => {
                let attrs = FileAttributes {
                    permissions: perm,
                    ..FileAttributes::empty()
                };
                match raw.open(self.path(p), flags, attrs).await {
                    Ok(h) => format!("handle {:?}", h.handle.as_bytes()),
                    Err(e) => status_of(e),
                }
            }
            Op::Close(h) => raw
                .close(handle(h))
                .await
                .map_or_else(status_of, |_| "ok".into()),
            Op::Read(h, off, len) => match raw.read(handle(h), off, len).await {
                Ok(d) => format!("data {:?}", String::from_utf8_lossy(&d.data)),
                Err(e) => status_of(e),
            },
            Op::Write(h, off, Bytes(data)) => raw
                .write(handle(h), off, data.to_vec())
                .await
                .map_or_else(status_of, |_| "ok".into()),
            Op::Lstat(p) => raw
                .lstat(self.path(p))
                .await
                .map_or_else(status_of, |a| shown(&a.attrs)),
            Op::Stat(p) => raw
                .stat(self.path(p))
                .await
                .map_or_else(status_of, |a| shown(&a.attrs)),
            Op::Fstat(h) => raw
                .fstat(handle(h))
                .await
                .map_or_else(status_of, |a| shown(&a.attrs)),
            Op::Setstat(p, s) => raw
                .setstat(self.path(p), s.attrs())
                .await
                .map_or_else(status_of, |_| "ok".into()),
            Op::Fsetstat(h, s) => raw
                .fsetstat(handle(h), s.attrs())
                .await
                .map_or_else(status_of, |_| "ok".into()),
            Op::Opendir(p) => match raw.opendir(self.path(p)).await {
                Ok(h) => format!("handle {:?}", h.handle.as_bytes()),
                Err(e) => status_of(e),
            },
            Op::ReadAll(h) => {
                let mut entries = BTreeSet::new();
                let mut pages = 0;
                let end = loop {
                    match raw.readdir(handle(h)).await {
                        Ok(name) => {
                            pages += 1;
                            for f in name.files {
                                let mut long = f.longname.split_whitespace();
                                let (mode, nlink) = (long.next(), long.next());
                                entries.insert(format!(
                                    "{} [{} {}] {}",
                                    f.filename,
                                    mode.unwrap_or(""),
                                    nlink.unwrap_or(""),
                                    shown(&f.attrs)
                                ));
                            }
                        }
                        Err(e) => break status_of(e),
                    }
                };
                format!("{pages} pages, then {end}: {entries:#?}")
            }
            Op::Remove(p) => raw
                .remove(self.path(p))
                .await
                .map_or_else(status_of, |_| "ok".into()),
            Op::Mkdir(p, perm) => {
                let attrs = FileAttributes {
                    permissions: perm,
                    ..FileAttributes::empty()
                };
                raw.mkdir(self.path(p), attrs)
                    .await
                    .map_or_else(status_of, |_| "ok".into())
            }
            Op::Rmdir(p) => raw
                .rmdir(self.path(p))
                .await
                .map_or_else(status_of, |_| "ok".into()),
            Op::Realpath(p) => match raw.realpath(self.path(p)).await {
                Ok(n) => format!("{:?}", n.files.first().map(|f| &f.filename)),
                Err(e) => status_of(e),
            },
            Op::Rename(a, b) => raw
                .rename(self.path(a), self.path(b))
                .await
                .map_or_else(status_of, |_| "ok".into()),
            Op::Readlink(p) => match raw.readlink(self.path(p)).await {
                Ok(n) => format!("{:?}", n.files.first().map(|f| &f.filename)),
                Err(e) => status_of(e),
            },
            // russh-sftp sends (linkpath, targetpath) in this order: the first string first.
            Op::Symlink(first, second) => raw
                .symlink(self.path(first), self.path(second))
                .await
                .map_or_else(status_of, |_| "ok".into()),
            Op::PosixRename(a, b) => {
                let mut data = ssh_string(&self.path(a));
                data.extend(ssh_string(&self.path(b)));
                extended_status(raw.extended("posix-rename@openssh.com", data).await)
            }
            Op::Hardlink(a, b) => raw
                .hardlink(self.path(a), self.path(b))
                .await
                .map_or_else(status_of, |_| "ok".into()),
            Op::Fsync(h) => raw
                .fsync(handle(h))
                .await
                .map_or_else(status_of, |_| "ok".into()),
            Op::Statvfs(p) => raw
                .statvfs(self.path(p))
                .await
                .map_or_else(status_of, |s| format!("namemax {}", s.name_max)),
            Op::Fstatvfs(h) => extended_status(
                raw.extended("fstatvfs@openssh.com", ssh_string(&handle(h)))
                    .await,
            ),
            Op::Lsetstat(p, s) => {
                let mut data = ssh_string(&self.path(p));
                data.extend(
                    russh_sftp::ser::to_bytes(&s.attrs())
                        .expect("attrs")
                        .to_vec(),
                );
                extended_status(raw.extended("lsetstat@openssh.com", data).await)
            }
            Op::Limits => raw.limits().await.map_or_else(status_of, |l| {
                format!(
                    "{} {} {}",
                    l.max_packet_len, l.max_read_len, l.max_write_len
                )
            }),
            Op::ExpandPath(p) => match raw.expand_path(self.path(p)).await {
                Ok(n) => format!("{:?}", n.files.first().map(|f| &f.filename)),
                Err(e) => status_of(e),
            },
            Op::CopyData(from, off, len, to, to_off) => {
                let mut data = ssh_string(&handle(from));
                data.extend(off.to_be_bytes());
                data.extend(len.to_be_bytes());
                data.extend(ssh_string(&handle(to)));
                data.extend(to_off.to_be_bytes());
                extended_status(raw.extended("copy-data", data).await)
            }
            Op::Extended(name) => extended_status(raw.extended(name, Vec::new()).await),
        };
        self.norm(out)
    }
}

/// Both servers, side by side.
struct Pair {
    mem: Side,
    real: Side,
    memory: MemoryServer,
    _dir: tempfile::TempDir,
}

async fn pair(user: Option<u32>) -> Pair {
    let dir = tempfile::tempdir().expect("tempdir");
    let real_home = dir.path().to_str().expect("utf-8 temp dir").to_owned();
    let mut p = match user {
        Some(uid) => Personality::openssh_as_user(uid),
        None => Personality::openssh(),
    };
    // The same path as the real one: symlink sizes and resolved paths then compare as they are.
    p.home = real_home.clone();
    let memory = MemoryServer::with_personality(p);
    if let Some(uid) = user {
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(uid)).expect("chown temp dir");
        memory.chown(&real_home, uid, uid).unwrap();
    }
    let real_server = Arc::new(RealServer {
        dir: dir.path().to_owned(),
        user,
    });
    let real_raw = RawSftpSession::new(real_server.open_session(1, 0));
    real_raw.init().await.expect("INIT of the real sftp-server");
    let mem_raw = RawSftpSession::new(memory.open_session(1, 0));
    mem_raw.init().await.expect("INIT");
    let real_dir = dir.path().to_owned();
    let real_root = move |op: &Op| match *op {
        Op::RootFile(p, data, perm, owner) => {
            let path = real_dir.join(p);
            std::fs::write(&path, data).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(perm)).unwrap();
            std::os::unix::fs::chown(&path, Some(owner), Some(owner)).unwrap();
        }
        Op::RootDir(p, perm, owner) => {
            let path = real_dir.join(p);
            std::fs::create_dir(&path).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(perm)).unwrap();
            std::os::unix::fs::chown(&path, Some(owner), Some(owner)).unwrap();
        }
        _ => {}
    };
    let m = memory.clone();
    let home = real_home.clone();
    let mem_root = move |op: &Op| match *op {
        Op::RootFile(p, data, perm, owner) => {
            let path = format!("{home}/{p}");
            m.put_file(&path, data).unwrap();
            m.chmod(&path, perm).unwrap();
            m.chown(&path, owner, owner).unwrap();
        }
        Op::RootDir(p, perm, owner) => {
            let path = format!("{home}/{p}");
            m.mkdir(&path).unwrap();
            m.chmod(&path, perm).unwrap();
            m.chown(&path, owner, owner).unwrap();
        }
        _ => {}
    };
    Pair {
        mem: Side {
            raw: mem_raw,
            home: real_home.clone(),
            root: Box::new(mem_root),
        },
        real: Side {
            raw: real_raw,
            home: real_home,
            root: Box::new(real_root),
        },
        memory,
        _dir: dir,
    }
}

/// Runs `ops` on both servers; panics at the first answer that differs.
async fn compare(user: Option<u32>, ops: &[Op]) -> Pair {
    let p = pair(user).await;
    for (i, op) in ops.iter().enumerate() {
        let real = p.real.run(op).await;
        let mem = p.mem.run(op).await;
        if std::env::var_os("MEM_DIFF_SHOW").is_some() {
            println!("{i}: {op:?} -> {real}");
        }
        assert_eq!(mem, real, "step {i}: {op:?} (left: memory, right: OpenSSH)");
    }
    p
}

fn set_perm(perm: u32) -> Set {
    Set {
        perm: Some(perm),
        ..Set::default()
    }
}

fn set_size(size: u64) -> Set {
    Set {
        size: Some(size),
        ..Set::default()
    }
}

const RW_CREATE: OpenFlags = OpenFlags::READ
    .union(OpenFlags::WRITE)
    .union(OpenFlags::CREATE);
const EXCL: OpenFlags = OpenFlags::WRITE
    .union(OpenFlags::CREATE)
    .union(OpenFlags::EXCLUDE);

/// Files, handles and OPEN's flags, as root.
#[tokio::test]
async fn files_and_handles_answer_as_openssh() {
    if !available() {
        return;
    }
    use Op::*;
    compare(
        None,
        &[
            Open("a", RW_CREATE, Some(0o640)),
            Write(0, 0, Bytes(b"hello")),
            Write(0, 10, Bytes(b"world")),
            Read(0, 0, 100),
            Read(0, 15, 10),
            Read(0, 3, 0),
            Fstat(0),
            Open("a", EXCL, None),
            Open("b", EXCL, None),
            Open("a", OpenFlags::READ, None),
            Close(1),
            Open(
                "c",
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::APPEND,
                None,
            ),
            Write(1, 0, Bytes(b"12")),
            Write(1, 0, Bytes(b"34")),
            Read(1, 0, 10),
            Fstat(1),
            Close(0),
            Close(0),
            Read(0, 0, 1),
            Write(9, 0, Bytes(b"x")),
            Fstat(9),
            Open("missing", OpenFlags::READ, None),
            Open("a/x", RW_CREATE, None),
            Open("no/x", RW_CREATE, None),
            Open("", OpenFlags::READ, None),
            Mkdir("d", None),
            Mkdir("d", None),
            Mkdir("e", Some(0o1750)),
            Lstat("e"),
            Open("d", OpenFlags::WRITE, None),
            Open("d", OpenFlags::READ | OpenFlags::CREATE, None),
            Open("d", OpenFlags::READ, None),
            Read(0, 0, 10),
            Fstat(0),
            Fsetstat(0, set_perm(0o700)),
            Close(0),
            Open("d/", RW_CREATE, None),
            Open("a/", OpenFlags::READ, None),
            Open("a", OpenFlags::WRITE | OpenFlags::TRUNCATE, None),
            Fstat(0),
            Close(0),
            Open("a", OpenFlags::READ, None),
            Write(0, 0, Bytes(b"x")),
            Fsetstat(0, set_size(3)),
            Close(0),
            Open("a", OpenFlags::WRITE, None),
            Read(0, 0, 1),
            Fsetstat(0, set_size(5)),
            Fsync(0),
            Fstatvfs(0),
            Close(0),
            Lstat("a"),
            Setstat("a", set_size(2)),
            Setstat("a", set_perm(0o4755)),
            Lstat("a"),
            Setstat(
                "a",
                Set {
                    owner: Some((12, 34)),
                    ..Set::default()
                },
            ),
            Lstat("a"),
            Setstat("d", set_size(0)),
            Setstat("missing", set_perm(0o600)),
            Setstat(
                "a",
                Set {
                    size: Some(1),
                    perm: Some(0o600),
                    times: Some((1, 2)),
                    owner: Some((0, 0)),
                },
            ),
            Lstat("a"),
            Fsync(7),
            Fstatvfs(7),
            Limits,
            Extended("nonsense@example.com"),
            Close(1),
        ],
    )
    .await;
}

/// Directories, links, renames, paths, as root.
#[tokio::test]
async fn names_answer_as_openssh() {
    if !available() {
        return;
    }
    use Op::*;
    compare(
        None,
        &[
            Mkdir("d", Some(0o755)),
            Mkdir("d/sub", None),
            Open("d/f", RW_CREATE, None),
            Write(0, 0, Bytes(b"content")),
            Close(0),
            Opendir("d"),
            ReadAll(0),
            ReadAll(0),
            Close(0),
            Opendir("d/f"),
            Opendir("nothere"),
            Rmdir("d"),
            Rmdir("d/f"),
            Rmdir("nothere"),
            Rmdir("d/sub/."),
            Rmdir("d/sub/.."),
            Remove("d"),
            Remove("d/sub"),
            Remove("nothere"),
            Symlink("f", "d/l"),
            Symlink("f", "d/l"),
            Symlink("nowhere", "dangling"),
            Symlink("{H}/d", "abs"),
            Symlink("loop2", "loop1"),
            Symlink("loop1", "loop2"),
            Readlink("d/l"),
            Readlink("d/f"),
            Readlink("nothere"),
            Stat("d/l"),
            Lstat("d/l"),
            Stat("dangling"),
            Lstat("dangling"),
            Stat("loop1"),
            Stat("abs/f"),
            Open("dangling", RW_CREATE, None),
            Close(0),
            Lstat("nowhere"),
            Realpath("."),
            Realpath(""),
            Realpath("d/../d/./sub//"),
            Realpath("abs/sub"),
            Realpath("d/l"),
            Realpath("d/missing"),
            Realpath("d/missing/more"),
            Realpath("loop1"),
            Realpath("/"),
            ExpandPath("~"),
            ExpandPath("~/d/sub"),
            ExpandPath("d"),
            ExpandPath("~nosuchuser/x"),
            Hardlink("d/f", "d/g"),
            Hardlink("d/f", "d/g"),
            Hardlink("d", "d2"),
            Hardlink("nothere", "x"),
            Hardlink("d/l", "d/l2"),
            Lstat("d/l2"),
            Opendir("d"),
            ReadAll(0),
            Close(0),
            Rename("d/f", "d/g"),
            Rename("d/f", "d/h"),
            Rename("d/h", "d/sub/h"),
            Rename("nothere", "x"),
            Rename("d/sub", "d/sub2"),
            Rename("d/sub2", "dangling"),
            Lstat("dangling"),
            Rename("d/l", "d/g"),
            Mkdir("e", None),
            Rename("e", "d"),
            PosixRename("d/g", "d/sub/h"),
            PosixRename("d/g", "d/sub/h"),
            Lstat("d/sub/h"),
            PosixRename("d/sub/h", "d/sub/h"),
            PosixRename("e", "d"),
            Mkdir("e/x", None),
            PosixRename("d", "e"),
            PosixRename("e", "e/x/y"),
            PosixRename("d/sub/h", "e"),
            PosixRename("e", "d/sub/h"),
            PosixRename("nothere", "e"),
            PosixRename(".", "z"),
            Opendir("e"),
            ReadAll(0),
            Close(0),
            Lsetstat("d/l2", set_perm(0o700)),
            Lsetstat(
                "d/l2",
                Set {
                    times: Some((5, 6)),
                    ..Set::default()
                },
            ),
            Lsetstat("d/l2", set_size(0)),
            Lsetstat("d", set_perm(0o700)),
            Lstat("d"),
            Statvfs("."),
            Statvfs("nothere"),
        ],
    )
    .await;
}

/// Pages of 100 names, `.` and `..` included.
#[tokio::test]
async fn a_long_listing_comes_in_pages_as_openssh_sends_them() {
    if !available() {
        return;
    }
    let mut ops = vec![Op::Mkdir("big", None)];
    for i in 0..250 {
        let name: &'static str = Box::leak(format!("big/{i:03}").into_boxed_str());
        ops.push(Op::Mkdir(name, None));
    }
    ops.push(Op::Opendir("big"));
    ops.push(Op::ReadAll(0));
    ops.push(Op::Close(0));
    compare(None, &ops).await;
}

/// As an ordinary user: permission checks (EACCES is PERMISSION_DENIED), the sticky bit,
/// chown refused, protected hard links.
#[tokio::test]
async fn permissions_answer_as_openssh() {
    if !available() {
        return;
    }
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: running sftp-server as another user needs root");
        return;
    }
    use Op::*;
    let p = compare(
        Some(1000),
        &[
            RootFile("root_secret", b"s", 0o600, 0),
            RootFile("root_public", b"p", 0o644, 0),
            RootFile("other_file", b"o", 0o666, 2000),
            RootDir("sticky", 0o1777, 0),
            RootDir("locked", 0o700, 0),
            RootDir("readonly", 0o555, 1000),
            Open("root_secret", OpenFlags::READ, None),
            Open("root_public", OpenFlags::READ, None),
            Close(0),
            Open("root_public", OpenFlags::WRITE, None),
            Setstat("root_public", set_perm(0o666)),
            Setstat(
                "root_public",
                Set {
                    times: Some((1, 2)),
                    ..Set::default()
                },
            ),
            Setstat("root_public", set_size(0)),
            Open("mine", RW_CREATE, Some(0o600)),
            Fsetstat(
                0,
                Set {
                    owner: Some((1000, 1000)),
                    ..Set::default()
                },
            ),
            Fsetstat(
                0,
                Set {
                    owner: Some((0, 0)),
                    ..Set::default()
                },
            ),
            Fsetstat(
                0,
                Set {
                    owner: Some((1000, 0)),
                    ..Set::default()
                },
            ),
            Close(0),
            Open("locked/x", RW_CREATE, None),
            Lstat("locked/x"),
            Opendir("locked"),
            Mkdir("readonly/x", None),
            Open("readonly/x", RW_CREATE, None),
            Open("sticky/mine", RW_CREATE, None),
            Close(0),
            Remove("sticky/mine"),
            RootFile("sticky/roots", b"r", 0o666, 0),
            Remove("sticky/roots"),
            PosixRename("sticky/roots", "stolen"),
            Hardlink("root_public", "link_public"),
            Hardlink("other_file", "link_other"),
            Hardlink("mine", "link_mine"),
            Lstat("mine"),
            Rename("mine", "renamed"),
            Rename("root_public", "public_renamed"),
            Rename("other_file", "other_renamed"),
            PosixRename("root_public", "public_renamed"),
            Lstat("public_renamed"),
            Remove("public_renamed"),
            Realpath("locked/x"),
            Realpath("locked/x/y"),
        ],
    )
    .await;
    assert!(p.memory.bad_handle_requests().is_empty());
}

/// A small xorshift generator: the random sequences are replayed from their seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
}

/// A random step over a few names (so they collide), handles 0..4, odd offsets.
fn random_op(rng: &mut Rng) -> Op {
    const NAMES: [&str; 9] = ["a", "b", "d", "d/a", "d/b", "d/d", "l", "d/../a", "a/"];
    // Never out of the working directory: the real server would write there.
    const TARGETS: [&str; 5] = ["a", "d", "d/../a", "nowhere", "{H}/d/a"];
    const DATA: [&[u8]; 3] = [b"x", b"hello world", &[b'7'; 5000]];
    const OFFSETS: [u64; 5] = [0, 1, 5, 4095, 10_000];
    const PERMS: [u32; 6] = [0o644, 0o600, 0o755, 0o000, 0o4755, 0o1777];
    let name = |rng: &mut Rng| rng.pick(&NAMES);
    let h = |rng: &mut Rng| rng.below(4) as u8;
    let set = |rng: &mut Rng| Set {
        size: (rng.below(3) == 0).then(|| rng.pick(&OFFSETS)),
        perm: (rng.below(3) == 0).then(|| rng.pick(&PERMS)),
        owner: (rng.below(6) == 0).then_some((0, 0)),
        times: (rng.below(4) == 0).then_some((1_000_000, 2_000_000)),
    };
    match rng.below(26) {
        0..=3 => {
            let bits = rng.below(64) as u32;
            Op::Open(
                name(rng),
                OpenFlags::from_bits_truncate(bits),
                Some(rng.pick(&PERMS)),
            )
        }
        4 | 5 => Op::Close(h(rng)),
        6 => Op::Read(h(rng), rng.pick(&OFFSETS), rng.pick(&[0, 3, 100, 8192])),
        7 | 8 => Op::Write(h(rng), rng.pick(&OFFSETS), Bytes(rng.pick(&DATA))),
        9 => Op::Lstat(name(rng)),
        10 => Op::Stat(name(rng)),
        11 => Op::Fstat(h(rng)),
        12 => Op::Setstat(name(rng), set(rng)),
        13 => Op::Fsetstat(h(rng), set(rng)),
        14 => Op::Opendir(name(rng)),
        15 => Op::ReadAll(h(rng)),
        16 => Op::Remove(name(rng)),
        17 => Op::Mkdir(name(rng), Some(rng.pick(&PERMS))),
        18 => Op::Rmdir(name(rng)),
        19 => Op::Rename(name(rng), name(rng)),
        20 => Op::PosixRename(name(rng), name(rng)),
        21 => Op::Symlink(rng.pick(&TARGETS), name(rng)),
        22 => Op::Hardlink(name(rng), name(rng)),
        23 => match rng.below(3) {
            0 => Op::Readlink(name(rng)),
            1 => Op::Realpath(name(rng)),
            _ => Op::Lsetstat(name(rng), set(rng)),
        },
        24 => Op::CopyData(
            h(rng),
            rng.pick(&OFFSETS),
            rng.pick(&[0, 3, 70_000]),
            h(rng),
            rng.pick(&OFFSETS),
        ),
        _ => Op::Fsync(h(rng)),
    }
}

/// Random sequences, as root and as an ordinary user: the memory server answers every step as
/// OpenSSH's does. `MEM_DIFF_SEED=n` replays sequence n alone; `MEM_DIFF_SEQUENCES=n` runs n
/// (100 by default).
#[tokio::test]
async fn random_sequences_answer_as_openssh() {
    if !available() {
        return;
    }
    let as_user = unsafe { libc::geteuid() } == 0;
    let seeds: Vec<u64> = match std::env::var("MEM_DIFF_SEED") {
        Ok(s) => vec![s.parse().expect("MEM_DIFF_SEED")],
        Err(_) => {
            let n =
                std::env::var("MEM_DIFF_SEQUENCES").map_or(100, |n| n.parse().expect("a count"));
            (1..=n).collect()
        }
    };
    for seed in seeds {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let ops: Vec<Op> = (0..60).map(|_| random_op(&mut rng)).collect();
        let user = (as_user && seed % 2 == 0).then_some(1000);
        let p = pair(user).await;
        for (i, op) in ops.iter().enumerate() {
            let real = p.real.run(op).await;
            let mem = p.mem.run(op).await;
            if std::env::var_os("MEM_DIFF_SHOW").is_some() {
                println!("{i}: {op:?} -> {real}");
            }
            assert_eq!(
                mem,
                real,
                "sequence {seed} (user {user:?}), step {i}: {op:?} (left: memory, right: \
                 OpenSSH); the steps before it: {:#?}",
                &ops[..i]
            );
        }
    }
}
