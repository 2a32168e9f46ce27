//! `-o password_stdin`: reading the password from stdin, without echo on a terminal.

use sshfs_client::os_message::os_message;
use sshfs_client::remote::ssh::auth::Secret;

/// `-o password_stdin`: one line from stdin, without its line end (as the C sshfs reads it).
/// On a terminal the line is read without echo.
pub fn read_password_stdin() -> Result<Secret, String> {
    use std::io::BufRead;
    let fail =
        |e: std::io::Error| format!("cannot read the password from stdin: {}", os_message(&e));
    let stdin = std::io::stdin();
    let echo_off = EchoOff::on(&stdin);
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    drop(echo_off);
    let password = Secret::new(line);
    read.map_err(fail)?;
    let mut text = password.expose();
    if text.is_empty() {
        return Err("-o password_stdin: stdin ended before a password was read".to_owned());
    }
    text = text.strip_suffix('\n').unwrap_or(text);
    text = text.strip_suffix('\r').unwrap_or(text);
    Ok(Secret::new(text.to_owned()))
}

/// Terminal echo turned off while it lives (when stdin is a terminal).
struct EchoOff(Option<nix::sys::termios::Termios>);

impl EchoOff {
    fn on(stdin: &std::io::Stdin) -> EchoOff {
        use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
        let Ok(saved) = tcgetattr(stdin) else {
            return EchoOff(None);
        };
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        quiet.local_flags.insert(LocalFlags::ECHONL);
        match tcsetattr(stdin, SetArg::TCSANOW, &quiet) {
            Ok(()) => EchoOff(Some(saved)),
            Err(_) => EchoOff(None),
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                saved,
            );
        }
    }
}
