//! The `-o` options and the login of a command that is not a mount (`--store-password`, ...).

use crate::options::args::Args;
use crate::options::mount_opts::MountOpts;
use crate::options::parse::parse_with;
use crate::ssh::target;

use super::given::{DEFAULT_REQUEST_TIMEOUT, SshGiven, port_given};
use super::notes::Notes;
use super::resolve::resolve;
use super::sources::ssh_sources;

/// The `-o` options of a command that is not a mount (`--store-password` ...).
pub fn command_options(args: &Args) -> Result<MountOpts, String> {
    parse_with(&args.options, false)
}

/// The login a password is stored under for `[user@]host[:port]`: user, host and port as a
/// mount of that host would use them (the login's own user and port, `-p`, `-o User=`/`Port=`,
/// then ssh_config's `User`, `HostName` and `Port`, then the local user and 22).
pub fn login_of(spec: &str, args: &Args, o: &MountOpts) -> Result<(String, String, u16), String> {
    let login = target::parse_login(spec)?;
    let given = SshGiven {
        user: login.user.or(o.user.clone()),
        port: login.port.or(port_given(args, o)?),
        request_deadline: DEFAULT_REQUEST_TIMEOUT,
        ..SshGiven::default()
    };
    // As a jump host (depth 1): the config's unused keywords are not reported again.
    let c = resolve(
        &login.host,
        &given,
        &ssh_sources(args),
        1,
        &mut Notes::default(),
    )?;
    Ok((c.user, c.host, c.port))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn args(v: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("sshfs-rs").chain(v.iter().copied())).unwrap()
    }

    #[test]
    fn stored_password_login_is_resolved_like_a_mount() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config");
        std::fs::write(
            &cfg,
            "Host work\n  HostName srv.example\n  Port 2222\n  User alice\n",
        )
        .unwrap();
        let cfg = cfg.display().to_string();
        let a = args(&["--store-password", "work", "-F", &cfg]);
        let o = command_options(&a).unwrap();
        let login = |spec: &str| login_of(spec, &a, &o).unwrap();
        assert_eq!(login("work"), ("alice".into(), "srv.example".into(), 2222));
        assert_eq!(
            login("bob@work:22"),
            ("bob".into(), "srv.example".into(), 22)
        );
        let a = args(&["--store-password", "work", "-F", &cfg, "-p", "23"]);
        assert_eq!(login_of("work", &a, &o).unwrap().2, 23);
    }
}
