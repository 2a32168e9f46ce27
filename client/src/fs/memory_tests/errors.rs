//! The errno a program sees for each failure, as a local filesystem would give it, although
//! OpenSSH answers most of them with one status (FAILURE): the fs layer looks at the names
//! involved to tell EEXIST, ENOTEMPTY, ENOTDIR, EISDIR and EINVAL apart.

use fuse3::SetAttr;

use super::{DIR, ROOT, flags, mount, mount_as, name};
use crate::fs::FsResult;
use crate::remote::testing::memory::Personality;

/// Records (what was done, the errno it gave, the errno expected) in `$got`.
macro_rules! check {
    ($got:ident, $op:expr, $want:expr) => {
        $got.push((stringify!($op), errno($op), $want))
    };
}

/// The errno of a failure (panics on success).
fn errno<T: std::fmt::Debug>(r: FsResult<T>) -> i32 {
    r.unwrap_err().errno
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_give_the_local_errno() {
    let m = mount().await;
    let fs = &m.fs;
    m.server.mkdir_all(&m.path("full/x")).unwrap();
    m.server.mkdir(&m.path("empty")).unwrap();
    m.server.put_file(&m.path("file"), b"x").unwrap();
    let full = fs.lookup(ROOT, name("full")).await.unwrap().ino;

    let mut got = Vec::new();
    check!(got, fs.lookup(ROOT, name("missing")).await, libc::ENOENT);
    check!(got, fs.mkdir(ROOT, name("full"), 0o755).await, libc::EEXIST);
    check!(got, fs.mkdir(ROOT, name("file"), 0o755).await, libc::EEXIST);
    let excl = flags(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL);
    check!(
        got,
        fs.create(ROOT, name("file"), 0o644, excl).await,
        libc::EEXIST
    );
    check!(
        got,
        fs.symlink(ROOT, name("file"), name("t")).await,
        libc::EEXIST
    );
    let file = fs.lookup(ROOT, name("file")).await.unwrap().ino;
    check!(got, fs.link(file, ROOT, name("empty")).await, libc::EEXIST);

    check!(got, fs.rmdir(ROOT, name("full")).await, libc::ENOTEMPTY);
    check!(got, fs.rmdir(ROOT, name("missing")).await, libc::ENOENT);
    check!(got, fs.unlink(ROOT, name("full")).await, libc::EISDIR);
    check!(got, fs.unlink(ROOT, name("missing")).await, libc::ENOENT);

    check!(
        got,
        fs.rename(ROOT, name("empty"), ROOT, name("full"), 0).await,
        libc::ENOTEMPTY
    );
    check!(
        got,
        fs.rename(ROOT, name("file"), ROOT, name("empty"), 0).await,
        libc::EISDIR
    );
    check!(
        got,
        fs.rename(ROOT, name("full"), full, name("inside"), 0).await,
        libc::EINVAL
    );
    check!(
        got,
        fs.rename(ROOT, name("missing"), ROOT, name("x"), 0).await,
        libc::ENOENT
    );

    let dir = fs.lookup(ROOT, name("empty")).await.unwrap().ino;
    check!(got, fs.open(dir, flags(libc::O_WRONLY)).await, libc::EISDIR);
    check!(got, fs.readlink(file).await, libc::EINVAL);
    check!(got, fs.link(dir, ROOT, name("dirlink")).await, libc::EACCES);
    // A name longer than NAME_MAX (pjdfstest */02.t): ENAMETOOLONG, as a local filesystem says,
    // not what the server's status would map to (EINVAL, or ENOENT for a lookup).
    let long = "x".repeat(256);
    check!(got, fs.lookup(ROOT, name(&long)).await, libc::ENAMETOOLONG);
    check!(
        got,
        fs.mkdir(ROOT, name(&long), 0o755).await,
        libc::ENAMETOOLONG
    );
    check!(
        got,
        fs.create(ROOT, name(&long), 0o644, excl).await,
        libc::ENAMETOOLONG
    );
    check!(
        got,
        fs.symlink(ROOT, name(&long), name("t")).await,
        libc::ENAMETOOLONG
    );
    check!(
        got,
        fs.link(file, ROOT, name(&long)).await,
        libc::ENAMETOOLONG
    );
    check!(
        got,
        fs.rename(ROOT, name("file"), ROOT, name(&long), 0).await,
        libc::ENAMETOOLONG
    );
    check!(got, fs.unlink(ROOT, name(&long)).await, libc::ENAMETOOLONG);

    let wrong: Vec<_> = got.iter().filter(|(_, got, want)| got != want).collect();
    assert!(wrong.is_empty(), "(operation, errno, expected): {wrong:#?}");
    // Nothing changed on the server.
    let paths: Vec<String> = m.server.snapshot().into_keys().collect();
    assert_eq!(
        paths,
        ["/", DIR, "/m/empty", "/m/file", "/m/full", "/m/full/x"]
    );
    // NAME_MAX bytes is allowed, and a symlink's target may be longer.
    let longest = "y".repeat(255);
    let made = fs.mkdir(ROOT, name(&longest), 0o755).await.unwrap().ino;
    assert_eq!(fs.lookup(ROOT, name(&longest)).await.unwrap().ino, made);
    fs.rmdir(ROOT, name(&longest)).await.unwrap();
    fs.symlink(ROOT, name("t"), name(&long)).await.unwrap();
    fs.unlink(ROOT, name("t")).await.unwrap();
    m.assert_clean().await;
}

/// As an ordinary user: what the server refuses is EACCES.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_of_an_ordinary_user_are_eacces() {
    let m = mount_as(Personality::openssh_as_user(1000)).await;
    let fs = &m.fs;
    m.server.chown(super::DIR, 1000, 1000).unwrap();
    m.server.put_file(&m.path("roots"), b"r").unwrap();
    m.server.chmod(&m.path("roots"), 0o600).unwrap();
    m.server.mkdir(&m.path("ro")).unwrap();
    let f = fs.lookup(ROOT, name("roots")).await.unwrap().ino;
    let ro = fs.lookup(ROOT, name("ro")).await.unwrap().ino;
    assert_eq!(errno(fs.open(f, flags(libc::O_RDONLY)).await), libc::EACCES);
    let chmod = SetAttr {
        mode: Some(0o644),
        ..SetAttr::default()
    };
    assert_eq!(errno(fs.setattr(f, None, &chmod).await), libc::EACCES);
    let excl = flags(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL);
    assert_eq!(
        errno(fs.create(ro, name("x"), 0o644, excl).await),
        libc::EACCES
    );
    let (attr, fh) = fs.create(ROOT, name("mine"), 0o640, excl).await.unwrap();
    assert_eq!((attr.uid, attr.gid, attr.perm), (1000, 1000, 0o640));
    fs.release(fh).await.unwrap();
    m.assert_clean().await;
}

/// rmdir(2) of a file, and rename(2) of a directory onto a file, fail with ENOTDIR on Linux.
/// OpenSSH's server turns ENOTDIR into NO_SUCH_FILE (`errno_to_portable`): the fs layer looks at
/// what the names are before passing ENOENT on. Found with the memory server (the refinements
/// in `names.rs` looked only at FAILURE).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_a_directory_is_enotdir() {
    let m = mount().await;
    let fs = &m.fs;
    m.server.mkdir(&m.path("empty")).unwrap();
    m.server.put_file(&m.path("file"), b"x").unwrap();
    let mut got = Vec::new();
    check!(got, fs.rmdir(ROOT, name("file")).await, libc::ENOTDIR);
    check!(
        got,
        fs.rename(ROOT, name("empty"), ROOT, name("file"), 0).await,
        libc::ENOTDIR
    );
    let wrong: Vec<_> = got.iter().filter(|(_, got, want)| got != want).collect();
    assert!(wrong.is_empty(), "(operation, errno, expected): {wrong:#?}");
}

/// A full disk (the memory server's quota): OpenSSH's answer to a WRITE that does not fit is
/// FAILURE, which the statvfs after it makes ENOSPC, at flush and at close; the server keeps
/// what fitted. With room again, writes work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_enospc_not_eio() {
    let m = mount_as(Personality {
        quota: Some(4 * 4096),
        ..Personality::openssh()
    })
    .await;
    let fs = &m.fs;
    let rw = flags(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL);
    let (_, fh) = fs.create(ROOT, name("f"), 0o644, rw).await.unwrap();
    let written = fs.write(fh, 0, &[7; 64 * 1024]).await;
    let flushed = fs.flush(fh).await.map_err(|e| e.errno);
    let closed = fs.release(fh).await.map_err(|e| e.errno);
    assert!(written.is_ok(), "the write returns before its answer");
    assert_eq!((flushed, closed), (Err(libc::ENOSPC), Err(libc::ENOSPC)));
    assert_eq!(m.content("f").unwrap(), vec![7; 4 * 4096], "what fitted");

    m.server.set_personality(|p| p.quota = Some(64 * 4096));
    let (_, fh) = fs.create(ROOT, name("g"), 0o644, rw).await.unwrap();
    fs.write(fh, 0, b"fits").await.unwrap();
    fs.flush(fh).await.unwrap();
    fs.release(fh).await.unwrap();
    assert_eq!(m.content("g").unwrap(), b"fits");
}
