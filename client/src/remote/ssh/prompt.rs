//! Secrets and the prompts that ask for them: passwords and passphrases held in memory
//! ([`Secret`]), what is asked for ([`SecretFor`]), and who answers ([`Prompter`]).

use std::path::Path;

/// A password or passphrase held in memory: never shown by `Debug`, its bytes overwritten when
/// it is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.fill(0);
        std::hint::black_box(&bytes);
    }
}

/// Whether a prompt asks for a password (OpenSSH's own password prompt, and the "Password:" of
/// keyboard-interactive): what `-o password_stdin` answers, as the C sshfs does.
pub fn is_password_prompt(prompt: &str) -> bool {
    prompt.to_ascii_lowercase().contains("password")
}

/// What a stored secret is for: what it is stored under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretFor<'a> {
    /// The password of `user` on `host` (the name connected to, ssh_config's `HostName`), `port`.
    Password {
        /// Remote user.
        user: &'a str,
        /// Host.
        host: &'a str,
        /// Port.
        port: u16,
    },
    /// The passphrase of this private key file (as named in the options).
    Passphrase(&'a Path),
}

/// Talks to the user (on the terminal), and hands over secrets the user stored beforehand.
/// Implemented by the command line; the library never touches the terminal or a keyring itself.
pub trait Prompter: Send + Sync {
    /// Reads a secret without echo. `None` if there is no terminal.
    fn secret(&self, prompt: &str) -> Option<String>;
    /// A secret known without asking anyone (given on stdin, or remembered from the first
    /// login), used even in batch mode. `None` by default.
    fn known_secret(&self, _prompt: &str) -> Option<String> {
        None
    }
    /// A secret the user stored for `what` (the OS keyring), asked for after [`known_secret`]
    /// and before anyone is asked, used even in batch mode. `prompt` is what would be asked
    /// (wrappers remember the answer under it). `None` by default.
    ///
    /// [`known_secret`]: Prompter::known_secret
    fn stored_secret(&self, _prompt: &str, _what: &SecretFor<'_>) -> Option<String> {
        None
    }
    /// Asks a question with echo. `None` if there is no terminal.
    fn ask(&self, prompt: &str) -> Option<String>;
    /// Shows a message (warnings, banners) on stderr.
    fn info(&self, message: &str);
}

/// A prompter that never prompts (batch mode, tests).
pub struct NoPrompt;

impl Prompter for NoPrompt {
    fn secret(&self, _: &str) -> Option<String> {
        None
    }
    fn ask(&self, _: &str) -> Option<String> {
        None
    }
    fn info(&self, message: &str) {
        eprintln!("{message}");
    }
}
