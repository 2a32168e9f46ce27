//! The life of a mount: validate, (fork), connect, check the remote path, mount, go to the
//! background, serve until unmounted or signalled, unmount.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sshfs_client::fs::SshFs;
use sshfs_client::fs::open_files::stripes::open_channels_ahead;
use sshfs_client::fuse::{self, Atime, MountConfig};
use sshfs_client::os_message::os_message;
use sshfs_client::remote::sftp::server::{ServerOverrides, ServerProfile, missing_features};
use sshfs_client::remote::{self, sftp::Sftp, ssh::auth::Prompter};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

use super::auto_unmount::{self, Watch};
use super::control;
use super::detach::{self, Detach};
use super::logging;
use crate::config::owners;
use crate::config::{self, Config};
use crate::keyring::command as keyring_cmd;
use crate::keyring::prompt::TtyPrompt;
use crate::keyring::store::KeyringAnswers;
use crate::mount::mountpoint;
use crate::options::args::Args;

/// Runs the program; returns the exit code. Errors are printed as one line.
pub fn run(args: Args) -> i32 {
    match run_inner(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("sshfs-rs: {e}");
            1
        }
    }
}

fn run_inner(args: Args) -> Result<(), String> {
    if let Some(mountpoint) = &args.flush {
        control::ask(mountpoint, control::Request::Flush)?;
        return Ok(());
    }
    if let Some(mountpoint) = &args.stats {
        println!("{}", control::ask(mountpoint, control::Request::Stats)?);
        return Ok(());
    }
    if let Some(done) = keyring_cmd::run(&args) {
        println!("sshfs-rs: {}", done?);
        return Ok(());
    }
    let fake = args.fake;
    let config = config::build(args)?;
    for skipped in &config.skipped_options {
        eprintln!("sshfs-rs: ignoring unknown option '-o {skipped}' (sloppy mount)");
    }
    let mountpoint = mountpoint::check_mountpoint(&config.mountpoint)?;
    if fake {
        return Ok(());
    }
    let detach = if config.foreground {
        None
    } else {
        Some(detach::fork_and_wait()?)
    };
    let watch = if config.auto_unmount {
        Some(auto_unmount::start(&mountpoint, config.mount.unprivileged)?)
    } else {
        None
    };
    logging::init(config.log_filter, !config.foreground);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let result = runtime.block_on(serve(config, mountpoint, detach, watch));
    // A blocked read of stdin (-o passive) would hold up dropping the runtime for ever.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

async fn serve(
    config: Config,
    mountpoint: PathBuf,
    detach: Option<Detach>,
    mut watch: Option<Watch>,
) -> Result<(), String> {
    // Our own SSH connection (kept to say goodbye at the end), or an external one; and the
    // server's identity for the content cache (its host key, or how it is reached).
    let server_id: String;
    let (sftp, reconnector, ssh, banner) = match &config.external {
        None => {
            let prompter: Arc<dyn Prompter> = Arc::new(KeyringAnswers {
                inner: TtyPrompt,
                choice: config.keyring,
            });
            let conn = remote::ssh::connect::connect(&config.connect, prompter)
                .await
                .map_err(|e| e.to_string())?;
            info!(
                "connected to {}@{} port {}",
                config.connect.user, config.connect.host, config.connect.port
            );
            let banner = conn.banner.clone();
            server_id = conn
                .host_key_fingerprint
                .clone()
                .unwrap_or_else(|| format!("{}:{}", config.connect.host, config.connect.port));
            (conn.sftp.clone(), conn.reconnector(), Some(conn), banner)
        }
        Some(external) => {
            let conn = remote::ssh::external::connect(external).await?;
            info!("connected to {} through {}", external.host, external.how);
            server_id = format!("{} through {}", external.host, external.how);
            (conn.sftp.clone(), conn.reconnector(), None, None)
        }
    };
    know_the_server(&sftp, banner.as_deref(), config.server);
    if let Some(policy) = &config.reconnect {
        sftp.reconnect_with(reconnector, policy.clone());
    }
    // On a long link the channels open while the mount finishes.
    tokio::spawn(open_channels_ahead(Arc::clone(&sftp)));
    let root = remote_root(&sftp, &config).await?;
    let mut owners = config.owners.clone();
    if config.idmap_user {
        let remote = owners::login_user_ids(&sftp, &config.connect.host).await?;
        owners.map = owners::user_map(remote);
    }
    let data_cache = open_data_cache(&config, server_id, &root);
    let fs = Arc::new(
        SshFs::new(sftp, root, config.cache.clone())
            .with_owners(owners)
            .with_link_options(config.links)
            .with_data_cache(data_cache),
    );
    // Before the first stat is answered: every one shows the same estimate of st_blocks.
    fs.learn_block_unit().await;
    tokio::spawn(fs.clone().revalidate_after_reconnects());
    let leftovers = fs.clone();
    tokio::spawn(async move {
        leftovers.note_hidden_leftovers().await;
    });
    fs.start_recheck(config.recheck);
    let cannot = |e: std::io::Error| {
        format!(
            "cannot mount on {}: {}",
            mountpoint.display(),
            os_message(&e)
        )
    };
    let mut handle = fuse::mount(fs.clone(), &mountpoint, &config.mount)
        .await
        .map_err(cannot)?;
    if !config.mount.unprivileged
        && let Err(e) = apply_mount_flags(&mountpoint, &config.mount)
    {
        let _ = handle.unmount().await;
        return Err(cannot(e.into()));
    }
    if let Some(w) = &mut watch
        && let Err(e) = w.arm(&mountpoint)
    {
        let _ = handle.unmount().await;
        return Err(e);
    }
    info!(
        "mounted {} on {}",
        config.mount.fs_name,
        mountpoint.display()
    );
    let control = control::listen(&mountpoint, fs.clone());
    if let Err(e) = &control {
        warn!("no control socket (--flush and --stats will not reach this mount): {e}");
    }
    if let Some(d) = detach {
        d.ready();
    }

    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(|e| e.to_string())?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    // Without reconnecting, a lost connection ends the mount (as the C sshfs does), rather than
    // leaving one that answers EIO to everything.
    let link_gone = async {
        match config.reconnect {
            Some(_) => std::future::pending().await,
            None => fs.sftp().gone().await,
        }
    };
    tokio::pin!(link_gone);
    let mut lost = None;
    let signalled = loop {
        tokio::select! {
            why = &mut link_gone => {
                warn!("{why}; unmounting (reconnect=no)");
                lost = Some(why);
                break true;
            }
            r = &mut handle => {
                if let Err(e) = r {
                    warn!("FUSE session ended: {e}");
                }
                break false;
            }
            _ = term.recv() => break true,
            _ = int.recv() => break true,
            _ = usr1.recv() => eprintln!("sshfs-rs: {}", fs.stats_line()),
            _ = hup.recv() => {
                info!("SIGHUP: dropping every cache");
                fs.flush_caches();
            }
        }
    };
    if signalled && let Err(e) = handle.unmount().await {
        warn!("unmount failed ({e}); detaching the mount");
        lazy_unmount(&mountpoint, config.mount.unprivileged);
    }
    drop(control);
    // Only now, with the mount gone, may the watcher look for it (it finds nothing to do).
    drop(watch);
    if config.debug {
        eprintln!("sshfs-rs: {}", fs.stats_line());
    }
    // What still runs in the background (re-checks, listings ahead) must not take the closed
    // connection for a lost one and log in again.
    fs.sftp().shut_down();
    if let Some(conn) = ssh {
        let _ = conn
            .ssh
            .disconnect(russh::Disconnect::ByApplication, "unmounted", "en")
            .await;
    }
    match lost {
        Some(why) => Err(format!("{why}; unmounted {}", mountpoint.display())),
        None => Ok(()),
    }
}

/// The content cache (`-o data_cache`) of this server, user and remote root; without one (a
/// warning says why) when its directory is not private or another mount uses it: the mount
/// works as without the option.
fn open_data_cache(
    config: &Config,
    server: String,
    root: &str,
) -> Option<sshfs_cache::content::ContentCache> {
    let dc = config.data_cache.as_ref()?;
    let scope = sshfs_cache::content::Scope {
        server,
        user: config.connect.user.clone(),
        root: root.to_owned(),
    };
    match sshfs_cache::content::ContentCache::open(&dc.dir, &scope, dc.limit) {
        Ok(cache) => {
            info!("content cache in {}", cache.dir().display());
            Some(cache)
        }
        Err(e) => {
            warn!("no content cache (data_cache): {e}");
            None
        }
    }
}

/// Sets the per-mount flags of root's mount (`nosuid`, `nodev`, `noexec`, atime, `ro`), which
/// fuse3 cannot pass to mount(2): a bind remount of the mount just made, before it is announced.
fn apply_mount_flags(mountpoint: &Path, mount: &MountConfig) -> nix::Result<()> {
    use nix::mount::MsFlags;
    let f = &mount.flags;
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND;
    flags.set(MsFlags::MS_RDONLY, mount.read_only);
    flags.set(MsFlags::MS_NOSUID, f.nosuid);
    flags.set(MsFlags::MS_NODEV, f.nodev);
    flags.set(MsFlags::MS_NOEXEC, f.noexec);
    flags.set(MsFlags::MS_NODIRATIME, f.nodiratime);
    flags |= match f.atime {
        Atime::Relative => MsFlags::MS_RELATIME,
        Atime::Never => MsFlags::MS_NOATIME,
        Atime::Always => MsFlags::MS_STRICTATIME,
    };
    nix::mount::mount(None::<&str>, mountpoint, None::<&str>, flags, None::<&str>)
}

/// Detaches a busy mount so no stale mountpoint stays behind.
fn lazy_unmount(mountpoint: &Path, unprivileged: bool) {
    if unprivileged {
        let _ = std::process::Command::new("fusermount3")
            .args(["-u", "-z"])
            .arg(mountpoint)
            .status();
    } else {
        let _ = nix::mount::umount2(mountpoint, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// The absolute remote directory to mount: REALPATH of the given path ("." = home), which must
/// exist and be a directory.
/// Decides what the server allows (channels, SYMLINK's order; see
/// `sshfs_client::remote::sftp::server`), says so at -v, and warns once about what a user of this
/// server will notice missing.
fn know_the_server(sftp: &Sftp, banner: Option<&str>, overrides: ServerOverrides) {
    let profile = ServerProfile::decide(banner, sftp.extensions(), overrides);
    info!("server: {}", profile.summary());
    sftp.set_server(profile);
    for missing in missing_features(sftp.extensions()) {
        warn!("{missing}");
    }
}

async fn remote_root(sftp: &Sftp, config: &Config) -> Result<String, String> {
    let given = if config.remote_path.is_empty() {
        "."
    } else {
        config.remote_path.as_str()
    };
    let shown = format!("{}:{}", config.connect.host, config.remote_path);
    let fail = |e: remote::sftp::SftpError| {
        let why = match e.status() {
            Some(remote::sftp::FX_NO_SUCH_FILE) => "No such file or directory".to_owned(),
            Some(remote::sftp::FX_PERMISSION_DENIED) => "Permission denied".to_owned(),
            _ => e.to_string(),
        };
        format!("remote path {shown}: {why}")
    };
    let root = sftp.realpath(given).await.map_err(fail)?;
    let attrs = sftp.stat(&root).await.map_err(fail)?;
    if attrs.permissions.unwrap_or(0) & libc::S_IFMT != libc::S_IFDIR {
        return Err(format!("remote path {shown}: Not a directory"));
    }
    Ok(root)
}
