//! User authentication in OpenSSH's order: ssh-agent, identity files (asking for a passphrase
//! when one is encrypted), then keyboard-interactive and password on the terminal. `BatchMode`
//! never prompts. Secrets only live in memory for the call that uses them.

use std::path::Path;
use std::sync::Arc;

use russh::MethodKind;
use russh::client::{self, AuthResult, KeyboardInteractiveAuthResponse};
use russh::keys::{Algorithm, PrivateKey, PrivateKeyWithHashAlg};

use super::connect::{ConnectError, ConnectOptions, HostKeyCheck};

/// How many times a password or passphrase is asked (OpenSSH's NumberOfPasswordPrompts).
const PROMPT_TRIES: usize = 3;

/// Talks to the user (on the terminal). Implemented by the command line; the library never
/// touches the terminal itself.
pub trait Prompter: Send + Sync {
    /// Reads a secret without echo. `None` if there is no terminal.
    fn secret(&self, prompt: &str) -> Option<String>;
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

type Ssh = client::Handle<HostKeyCheck>;

struct Attempt<'a> {
    ssh: &'a mut Ssh,
    opts: &'a ConnectOptions,
    prompter: &'a dyn Prompter,
    tried: Vec<String>,
    allowed: Vec<MethodKind>,
}

/// Authenticates `ssh` as `opts.user`, or says which methods were tried.
pub async fn authenticate(
    ssh: &mut Ssh,
    opts: &ConnectOptions,
    prompter: &dyn Prompter,
) -> Result<(), ConnectError> {
    let mut a = Attempt {
        ssh,
        opts,
        prompter,
        tried: Vec::new(),
        allowed: Vec::new(),
    };
    // "none" tells us which methods the server accepts.
    let first = a
        .ssh
        .authenticate_none(&opts.user)
        .await
        .map_err(|e| a.ssh_error(e))?;
    if a.done(first) {
        return Ok(());
    }
    if a.allows(MethodKind::PublicKey) && (a.agent().await? || a.identity_files().await?) {
        return Ok(());
    }
    if !opts.batch_mode {
        if a.allows(MethodKind::KeyboardInteractive) && a.keyboard_interactive().await? {
            return Ok(());
        }
        if a.allows(MethodKind::Password) && a.password().await? {
            return Ok(());
        }
    }
    let tried = if a.tried.is_empty() {
        format!(
            "nothing: the server offers {}",
            a.allowed
                .iter()
                .map(<&str>::from)
                .collect::<Vec<_>>()
                .join(",")
        )
    } else {
        a.tried.join(", ")
    };
    Err(ConnectError::Auth {
        user: opts.user.clone(),
        host: opts.host.clone(),
        tried,
    })
}

impl Attempt<'_> {
    fn ssh_error(&self, e: russh::Error) -> ConnectError {
        ConnectError::Ssh {
            host: self.opts.host.clone(),
            reason: format!("authentication failed: {e}"),
        }
    }

    /// Records the server's answer; true on success.
    fn done(&mut self, result: AuthResult) -> bool {
        match result {
            AuthResult::Success => true,
            AuthResult::Failure {
                remaining_methods, ..
            } => {
                self.allowed = remaining_methods.to_vec();
                false
            }
        }
    }

    fn allows(&self, m: MethodKind) -> bool {
        self.allowed.contains(&m)
    }

    async fn agent(&mut self) -> Result<bool, ConnectError> {
        if std::env::var_os("SSH_AUTH_SOCK").is_none() {
            return Ok(false);
        }
        let Ok(mut agent) = russh::keys::agent::client::AgentClient::connect_env().await else {
            return Ok(false);
        };
        let Ok(identities) = agent.request_identities().await else {
            return Ok(false);
        };
        for identity in identities {
            let russh::keys::agent::AgentIdentity::PublicKey { key, comment } = identity else {
                continue;
            };
            let hash = self.rsa_hash(key.algorithm()).await;
            self.tried
                .push(format!("publickey from ssh-agent ({comment})"));
            if let Ok(r) = self
                .ssh
                .authenticate_publickey_with(&self.opts.user, key, hash, &mut agent)
                .await
                && self.done(r)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn identity_files(&mut self) -> Result<bool, ConnectError> {
        for path in self.opts.identity_files.clone() {
            if !path.exists() {
                if self.opts.identity_files_explicit {
                    self.prompter.info(&format!(
                        "Warning: identity file {} not accessible: No such file or directory.",
                        path.display()
                    ));
                }
                continue;
            }
            let Some(key) = self.load_key(&path)? else {
                continue;
            };
            let hash = self.rsa_hash(key.algorithm()).await;
            self.tried.push(format!("publickey {}", path.display()));
            let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
            let r = self
                .ssh
                .authenticate_publickey(&self.opts.user, key)
                .await
                .map_err(|e| self.ssh_error(e))?;
            if self.done(r) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Loads a private key, asking for its passphrase if it is encrypted (unless batch mode).
    fn load_key(&self, path: &Path) -> Result<Option<PrivateKey>, ConnectError> {
        match russh::keys::load_secret_key(path, None) {
            Ok(k) => return Ok(Some(k)),
            Err(russh::keys::Error::KeyIsEncrypted) => {}
            Err(e) => {
                self.prompter.info(&format!(
                    "Warning: cannot load identity file {}: {e}",
                    path.display()
                ));
                return Ok(None);
            }
        }
        if self.opts.batch_mode {
            return Ok(None);
        }
        for _ in 0..PROMPT_TRIES {
            let Some(passphrase) = self
                .prompter
                .secret(&format!("Enter passphrase for key '{}': ", path.display()))
            else {
                return Ok(None);
            };
            if passphrase.is_empty() {
                return Ok(None);
            }
            match russh::keys::load_secret_key(path, Some(&passphrase)) {
                Ok(k) => return Ok(Some(k)),
                Err(_) => self.prompter.info("Bad passphrase, try again."),
            }
        }
        Ok(None)
    }

    async fn rsa_hash(&self, algo: Algorithm) -> Option<russh::keys::HashAlg> {
        if !matches!(algo, Algorithm::Rsa { .. }) {
            return None;
        }
        self.ssh
            .best_supported_rsa_hash()
            .await
            .ok()
            .flatten()
            .flatten()
    }

    async fn keyboard_interactive(&mut self) -> Result<bool, ConnectError> {
        self.tried.push("keyboard-interactive".into());
        let mut reply = self
            .ssh
            .authenticate_keyboard_interactive_start(&self.opts.user, None::<String>)
            .await
            .map_err(|e| self.ssh_error(e))?;
        for _ in 0..PROMPT_TRIES * 2 {
            match reply {
                KeyboardInteractiveAuthResponse::Success => return Ok(true),
                KeyboardInteractiveAuthResponse::Failure {
                    remaining_methods, ..
                } => {
                    self.allowed = remaining_methods.to_vec();
                    return Ok(false);
                }
                KeyboardInteractiveAuthResponse::InfoRequest {
                    name,
                    instructions,
                    prompts,
                } => {
                    for text in [name, instructions] {
                        if !text.is_empty() {
                            self.prompter.info(&text);
                        }
                    }
                    let mut answers = Vec::with_capacity(prompts.len());
                    for p in prompts {
                        let answer = if p.echo {
                            self.prompter.ask(&p.prompt)
                        } else {
                            self.prompter.secret(&p.prompt)
                        };
                        let Some(answer) = answer else {
                            return Ok(false);
                        };
                        answers.push(answer);
                    }
                    reply = self
                        .ssh
                        .authenticate_keyboard_interactive_respond(answers)
                        .await
                        .map_err(|e| self.ssh_error(e))?;
                }
            }
        }
        Ok(false)
    }

    async fn password(&mut self) -> Result<bool, ConnectError> {
        self.tried.push("password".into());
        let prompt = format!("{}@{}'s password: ", self.opts.user, self.opts.host);
        for _ in 0..PROMPT_TRIES {
            let Some(password) = self.prompter.secret(&prompt) else {
                return Ok(false);
            };
            let r = self
                .ssh
                .authenticate_password(&self.opts.user, password)
                .await
                .map_err(|e| self.ssh_error(e))?;
            if self.done(r) {
                return Ok(true);
            }
            self.prompter.info("Permission denied, please try again.");
        }
        Ok(false)
    }
}
