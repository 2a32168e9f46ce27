//! `-o ssh_command`, `-o sftp_server`, `-o directport`: SFTP over an external program or a
//! plain TCP port instead of our own SSH connection. This module turns the command line into
//! the program's argument list the way the C sshfs builds its ssh command line
//! (`sshfs.c`: `ssh_add_arg`, `set_ssh_command`); `sshfs_client::remote::ssh::external` runs it.

use std::path::PathBuf;

use sshfs_client::remote::ssh::external::External;

use crate::options::mount_opts::MountOpts;

/// What the command line says that goes on the external ssh's command line.
#[derive(Debug, Default)]
pub struct SshArgs {
    /// `-F FILE`.
    pub config_file: Option<PathBuf>,
    /// `-p PORT` (the flag; `-o Port=` is among `options`).
    pub port: Option<u16>,
    /// `user@` of the source (`-o User=` is among `options`).
    pub user: Option<String>,
    /// Never prompt (a mount helper).
    pub batch_mode: bool,
    /// The SSH `-o` options given, as `Name=value`, in order.
    pub options: Vec<String>,
    /// The host as given (ssh looks it up in its own config).
    pub host: String,
}

/// The transport `-o ssh_command` / `-o directport` / `-o passive` ask for, if any; refuses combinations
/// that cannot work.
pub fn external(o: &MountOpts, args: &SshArgs) -> Result<Option<External>, String> {
    if o.sftp_server.is_some() && o.directport.is_some() {
        return Err("options '-o sftp_server' and '-o directport' exclude each other: directport speaks to an SFTP server already running".to_owned());
    }
    if o.passive {
        if o.ssh_command.is_some() || o.directport.is_some() || o.sftp_server.is_some() {
            return Err("option '-o passive' speaks SFTP over stdin and stdout: it cannot be used with ssh_command, directport or sftp_server".to_owned());
        }
        if o.password_stdin {
            return Err(
                "options '-o passive' and '-o password_stdin' cannot both be used: stdin carries SFTP"
                    .to_owned(),
            );
        }
        return Ok(Some(External::Stdio));
    }
    let external = match (&o.ssh_command, o.directport) {
        (Some(_), Some(_)) => {
            return Err(
                "options '-o ssh_command' and '-o directport' exclude each other: directport speaks SFTP to the port without any ssh"
                    .to_owned(),
            );
        }
        (Some(command), None) => External::Command(argv(command, o.sftp_server.as_deref(), args)?),
        (None, Some(port)) => External::Port {
            host: args.host.clone(),
            port,
        },
        (None, None) => return Ok(None),
    };
    if o.password_stdin {
        let which = match external {
            External::Command(_) => {
                "with -o ssh_command, ssh asks for passwords itself (use a key, ssh-agent or ControlMaster)"
            }
            External::Port { .. } | External::Stdio => "-o directport logs in nowhere",
        };
        return Err(format!(
            "option '-o password_stdin' cannot be used here: {which}"
        ));
    }
    Ok(Some(external))
}

/// `CMD [its words] -x -a -oClearAllForwardings=yes [-F FILE] [-p PORT] [-l USER]
/// [-oBatchMode=yes] [-oName=value...] [-s] -- HOST SERVER`, as the C sshfs runs ssh: SERVER
/// is the `sftp` subsystem unless `sftp_server` names another one, or a path (with a `/`),
/// which ssh then runs as a command (without `-s`). `-p` and `user@` come before the `-o`
/// options because ssh takes the first value it gets, and they win over `-o Port`/`User`
/// (as with our own SSH).
pub fn argv(command: &str, sftp_server: Option<&str>, a: &SshArgs) -> Result<Vec<String>, String> {
    let mut argv = split_words(command);
    if argv.is_empty() {
        return Err("option '-o ssh_command' needs a command, e.g. -o ssh_command=ssh".to_owned());
    }
    argv.extend(["-x", "-a", "-oClearAllForwardings=yes"].map(str::to_owned));
    if let Some(file) = &a.config_file {
        argv.push("-F".to_owned());
        argv.push(file.display().to_string());
    }
    if let Some(port) = a.port {
        argv.push("-p".to_owned());
        argv.push(port.to_string());
    }
    if let Some(user) = &a.user {
        argv.push("-l".to_owned());
        argv.push(user.clone());
    }
    if a.batch_mode {
        argv.push("-oBatchMode=yes".to_owned());
    }
    argv.extend(a.options.iter().map(|o| format!("-o{o}")));
    let server = sftp_server.unwrap_or("sftp");
    if !server.contains('/') {
        argv.push("-s".to_owned());
    }
    argv.push("--".to_owned());
    argv.push(a.host.clone());
    argv.push(server.to_owned());
    Ok(argv)
}

/// Splits at spaces; `\ ` is a space inside a word (sshfs's rule, whose own splitter keeps
/// the backslash).
fn split_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => {
                chars.next();
                word.push(' ');
            }
            ' ' => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_as_sshfs_builds_it() {
        let a = SshArgs {
            config_file: Some(PathBuf::from("/cfg")),
            port: Some(2222),
            user: Some("me".into()),
            batch_mode: false,
            options: vec!["IdentityFile=/k".into(), "Compression=yes".into()],
            host: "h".into(),
        };
        let got = argv("ssh  -v -o ControlPath=/a\\ b", None, &a).unwrap();
        let want = "ssh|-v|-o|ControlPath=/a b|-x|-a|-oClearAllForwardings=yes|-F|/cfg|-p|2222|-l|me|-oIdentityFile=/k|-oCompression=yes|-s|--|h|sftp";
        assert_eq!(got.join("|"), want);
        let a = SshArgs {
            host: "h".into(),
            batch_mode: true,
            ..SshArgs::default()
        };
        let got = argv("ssh", Some("/usr/lib/openssh/sftp-server"), &a).unwrap();
        assert_eq!(
            got.join("|"),
            "ssh|-x|-a|-oClearAllForwardings=yes|-oBatchMode=yes|--|h|/usr/lib/openssh/sftp-server"
        );
        let got = argv("ssh", Some("sftp-other"), &a).unwrap();
        assert!(got.ends_with(&["-s".into(), "--".into(), "h".into(), "sftp-other".into()]));
        assert!(argv("  ", None, &a).is_err());
    }

    #[test]
    fn combinations_that_cannot_work_are_refused() {
        let a = SshArgs {
            host: "h".into(),
            ..SshArgs::default()
        };
        let o = |f: fn(&mut MountOpts)| {
            let mut o = MountOpts::default();
            f(&mut o);
            external(&o, &a)
        };
        assert_eq!(o(|_| {}), Ok(None));
        assert_eq!(o(|o| o.sftp_server = Some("/x".into())), Ok(None));
        assert!(
            o(|o| {
                o.sftp_server = Some("/x".into());
                o.directport = Some(5);
            })
            .is_err()
        );
        assert!(
            o(|o| {
                o.ssh_command = Some("ssh".into());
                o.directport = Some(5);
            })
            .is_err()
        );
        assert!(
            o(|o| {
                o.directport = Some(5);
                o.password_stdin = true;
            })
            .unwrap_err()
            .contains("password_stdin")
        );
        assert_eq!(o(|o| o.passive = true), Ok(Some(External::Stdio)));
        assert!(
            o(|o| {
                o.passive = true;
                o.password_stdin = true;
            })
            .is_err()
        );
        assert_eq!(
            o(|o| o.directport = Some(5)),
            Ok(Some(External::Port {
                host: "h".into(),
                port: 5
            }))
        );
    }
}
