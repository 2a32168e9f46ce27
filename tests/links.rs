//! The C sshfs's link options through a real mount: `transform_symlinks`, `contain_symlinks`,
//! `follow_symlinks` and `disable_hardlink`, each against the same tree of symlinks on the
//! server (absolute inside and outside the mounted directory, `..`, dangling, to a directory),
//! and the default, which shows every target exactly as the server has it.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{Mount, Sshd};

/// The server's tree: files, a directory, and one symlink of each kind.
fn make_tree(root: &Path) {
    fs::write(root.join("file"), b"top file").unwrap();
    fs::create_dir(root.join("dir")).unwrap();
    fs::write(root.join("dir/inner"), b"inner file, longer").unwrap();
    symlink(root.join("dir/inner"), root.join("abs_in")).unwrap();
    symlink(root.join("file"), root.join("dir/abs_up")).unwrap();
    symlink("/etc/hostname", root.join("abs_out")).unwrap();
    symlink("../file", root.join("dir/rel_up")).unwrap();
    symlink("dir/inner", root.join("rel_in")).unwrap();
    symlink("nowhere", root.join("dangling")).unwrap();
    symlink("dir", root.join("to_dir")).unwrap();
}

fn target(path: PathBuf) -> Result<PathBuf, i32> {
    fs::read_link(path).map_err(|e| e.raw_os_error().unwrap_or(0))
}

#[test]
fn link_options_show_targets_as_sshfs_does() {
    let sshd = Sshd::start();
    let root = sshd.root_dir().to_path_buf();
    make_tree(&root);

    // Default: every target as the server has it; symlinks are symlinks.
    let mount = Mount::start(&sshd, &[]);
    let m = mount.path().to_path_buf();
    for name in [
        "abs_in",
        "dir/abs_up",
        "abs_out",
        "dir/rel_up",
        "rel_in",
        "dangling",
        "to_dir",
    ] {
        assert_eq!(
            target(m.join(name)),
            Ok(fs::read_link(root.join(name)).unwrap()),
            "{name}"
        );
        assert!(
            fs::symlink_metadata(m.join(name))
                .unwrap()
                .file_type()
                .is_symlink(),
            "{name}"
        );
    }
    drop(mount);

    // transform_symlinks: absolute targets inside the mounted directory become relative, and
    // the kernel, following them, stays inside the mount.
    let mount = Mount::start(&sshd, &["-o", "transform_symlinks"]);
    let m = mount.path().to_path_buf();
    assert_eq!(target(m.join("abs_in")), Ok("dir/inner".into()));
    assert_eq!(target(m.join("dir/abs_up")), Ok("../file".into()));
    assert_eq!(target(m.join("abs_out")), Ok("/etc/hostname".into()));
    assert_eq!(target(m.join("dir/rel_up")), Ok("../file".into()));
    assert_eq!(fs::read(m.join("abs_in")).unwrap(), b"inner file, longer");
    assert_eq!(fs::read(m.join("dir/abs_up")).unwrap(), b"top file");
    drop(mount);

    // contain_symlinks: absolute targets and `..` refused (EPERM); with transform_symlinks
    // first, an absolute target inside the mount that becomes `dir/inner` is shown.
    let mount = Mount::start(&sshd, &["-o", "contain_symlinks"]);
    let m = mount.path().to_path_buf();
    assert_eq!(target(m.join("abs_in")), Err(libc::EPERM));
    assert_eq!(target(m.join("abs_out")), Err(libc::EPERM));
    assert_eq!(target(m.join("dir/rel_up")), Err(libc::EPERM));
    assert_eq!(target(m.join("rel_in")), Ok("dir/inner".into()));
    assert_eq!(target(m.join("to_dir")), Ok("dir".into()));
    drop(mount);
    let mount = Mount::start(&sshd, &["-o", "transform_symlinks,contain_symlinks"]);
    let m = mount.path().to_path_buf();
    assert_eq!(target(m.join("abs_in")), Ok("dir/inner".into()));
    assert_eq!(target(m.join("dir/abs_up")), Err(libc::EPERM));
    assert_eq!(target(m.join("abs_out")), Err(libc::EPERM));
    drop(mount);
}

#[test]
fn follow_symlinks_shows_what_links_point_to() {
    let sshd = Sshd::start();
    let root = sshd.root_dir().to_path_buf();
    make_tree(&root);
    let mount = Mount::start(&sshd, &["-o", "follow_symlinks"]);
    let m = mount.path().to_path_buf();

    // Through a listing (readdir's types and the attributes it carries) and through lookups.
    let types: Vec<(String, bool, bool)> = fs::read_dir(&m)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            (
                e.file_name().into_string().unwrap(),
                t.is_file(),
                t.is_symlink(),
            )
        })
        .collect();
    let kind = |name: &str| types.iter().find(|t| t.0 == name).cloned().unwrap();
    assert_eq!(kind("abs_in"), ("abs_in".into(), true, false));
    assert_eq!(kind("rel_in"), ("rel_in".into(), true, false));
    assert_eq!(kind("dangling"), ("dangling".into(), false, true));
    for name in ["abs_in", "rel_in", "abs_out"] {
        let meta = fs::symlink_metadata(m.join(name)).unwrap();
        let want = fs::metadata(root.join(name)).unwrap();
        assert!(meta.file_type().is_file(), "{name}");
        assert_eq!(meta.len(), want.len(), "{name}");
    }
    assert!(fs::symlink_metadata(m.join("to_dir")).unwrap().is_dir());
    let mut inside: Vec<_> = fs::read_dir(m.join("to_dir"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    inside.sort();
    assert_eq!(inside, ["abs_up", "inner", "rel_up"]);
    assert!(
        fs::symlink_metadata(m.join("dangling"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(target(m.join("dangling")), Ok("nowhere".into()));

    // Content and changes go to the file the link points to, and show at once.
    assert_eq!(fs::read(m.join("abs_in")).unwrap(), b"inner file, longer");
    fs::write(m.join("rel_in"), b"rewritten through a link").unwrap();
    assert_eq!(
        fs::read(root.join("dir/inner")).unwrap(),
        b"rewritten through a link"
    );
    assert!(
        fs::symlink_metadata(root.join("rel_in"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // Another link to the same file is another file to the kernel, whose attributes it keeps
    // for its attribute timeout (1 s): as with the C sshfs, the change shows there after it.
    assert!(
        support::wait_until(Duration::from_secs(3), || {
            fs::symlink_metadata(m.join("abs_in")).unwrap().len() == 24
        }),
        "the size through another link stays stale"
    );
    fs::set_permissions(m.join("rel_in"), fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        fs::metadata(root.join("dir/inner")).unwrap().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::symlink_metadata(m.join("rel_in")).unwrap().mode() & 0o777,
        0o600
    );
    drop(mount);
}

#[test]
fn disable_hardlink_makes_link_fail() {
    let sshd = Sshd::start();
    let root = sshd.root_dir().to_path_buf();
    fs::write(root.join("file"), b"x").unwrap();

    let mount = Mount::start(&sshd, &["-o", "disable_hardlink"]);
    // We answer ENOSYS, as the C sshfs; the kernel turns that into EPERM for link(2).
    let err = fs::hard_link(mount.path().join("file"), mount.path().join("second")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    assert!(!root.join("second").exists());
    drop(mount);

    let mount = Mount::start(&sshd, &[]);
    fs::hard_link(mount.path().join("file"), mount.path().join("second")).unwrap();
    assert_eq!(
        fs::metadata(root.join("second")).unwrap().ino(),
        fs::metadata(root.join("file")).unwrap().ino()
    );
    drop(mount);
}
