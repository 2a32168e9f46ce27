//! User authentication in OpenSSH's order: ssh-agent, identity files (asking for a passphrase
//! when one is encrypted), each key's certificates before the key, then keyboard-interactive and
//! password on the terminal; the methods, keys and agent as ssh_config chooses them
//! ([`AuthOptions`]). `BatchMode` never prompts. A secret known beforehand (`-o password_stdin`,
//! or one stored in the OS keyring and handed over by the [`Prompter`]) is used without asking,
//! and not again once refused. Secrets only live in memory for the call that uses them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh::MethodKind;
use russh::client::{self, AuthResult, KeyboardInteractiveAuthResponse};
use russh::keys::{Algorithm, Certificate, PrivateKey, PrivateKeyWithHashAlg, PublicKey};

pub use super::auth_options::{AuthMethod, AuthOptions, IdentityAgent};
use super::certificates::{self, Certificates};
use super::host_key::HostKeyCheck;
use super::options::{ConnectError, ConnectOptions};
pub use super::prompt::{NoPrompt, Prompter, Secret, SecretFor, is_password_prompt};

/// How many times a password or passphrase is asked (OpenSSH's NumberOfPasswordPrompts).
const PROMPT_TRIES: usize = 3;

type Ssh = client::Handle<HostKeyCheck>;

/// Where a secret came from: what to say, and whether to ask again, when it is refused.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Known without asking (given on stdin, or remembered): not used again when refused.
    Known,
    /// Stored by the user in the OS keyring: not used again when refused.
    Stored,
    /// Typed by the user, who may try again.
    Typed,
}

/// The answer to a secret prompt.
enum Answer {
    /// A secret, and where it came from.
    Given(String, Source),
    /// No one to ask; why.
    NoOne(&'static str),
}

struct Attempt<'a> {
    ssh: &'a mut Ssh,
    opts: &'a ConnectOptions,
    prompter: &'a dyn Prompter,
    /// Each method or key tried, with why it failed ("publickey /k/id (refused by the server)").
    tried: Vec<String>,
    /// The methods the server allows now (from its last failure answer).
    allowed: Vec<MethodKind>,
    /// The methods the server allowed at first.
    offered: Vec<MethodKind>,
    /// Certificates (`CertificateFile`, `IDENTITY-cert.pub`).
    certificates: Certificates,
    /// Public keys of the agent refused by the server (an identity file holding one is not
    /// offered again).
    refused: Vec<PublicKey>,
    /// A stored password was refused: it is not sent again in this attempt.
    stored_password_refused: bool,
}

/// Authenticates `ssh` as `opts.user`, or says what was tried and why each failed.
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
        offered: Vec::new(),
        certificates: Certificates::default(),
        refused: Vec::new(),
        stored_password_refused: false,
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
    a.offered = a.allowed.clone();
    for method in opts.auth.order() {
        if !a.allows(method.kind()) {
            continue;
        }
        let done = match method {
            AuthMethod::PublicKey => {
                a.certificates = Certificates::load(
                    &opts.auth.certificate_files,
                    &opts.identity_files,
                    &mut a.tried,
                );
                a.agent().await? || a.identity_files().await?
            }
            AuthMethod::KeyboardInteractive => a.keyboard_interactive().await?,
            AuthMethod::Password => a.password().await?,
        };
        if done {
            return Ok(());
        }
    }
    for method in [
        AuthMethod::PublicKey,
        AuthMethod::KeyboardInteractive,
        AuthMethod::Password,
    ] {
        if a.offered.contains(&method.kind())
            && let Some(why) = opts.auth.skipped(method)
        {
            a.tried
                .push(format!("{} (not tried: {why})", method.name()));
        }
    }
    Err(a.failure())
}

impl Attempt<'_> {
    fn ssh_error(&self, e: russh::Error) -> ConnectError {
        ConnectError::Ssh {
            host: self.opts.host.clone(),
            reason: format!("authentication failed: {e}"),
        }
    }

    /// The error naming every method and key tried, why each failed, and what the server offers.
    fn failure(&self) -> ConnectError {
        let offered = self
            .offered
            .iter()
            .map(<&str>::from)
            .collect::<Vec<_>>()
            .join(",");
        let tried = if self.tried.is_empty() {
            format!("nothing: the server offers {offered}")
        } else {
            format!("{}; the server offers {offered}", self.tried.join(", "))
        };
        ConnectError::Auth {
            user: self.opts.user.clone(),
            host: self.opts.host.clone(),
            tried,
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

    /// Why no one can be asked for a secret now.
    fn no_one(&self) -> &'static str {
        if self.opts.batch_mode {
            "BatchMode is set"
        } else {
            "no terminal to ask on"
        }
    }

    /// Answers a secret prompt: a secret known for it, else one stored for `what`, else the
    /// user (never in batch mode).
    fn answer(&self, prompt: &str, what: Option<SecretFor<'_>>) -> Answer {
        if let Some(s) = self.prompter.known_secret(prompt) {
            return Answer::Given(s, Source::Known);
        }
        if let Some(what) = what
            && let Some(s) = self.prompter.stored_secret(prompt, &what)
        {
            return Answer::Given(s, Source::Stored);
        }
        if self.opts.batch_mode {
            return Answer::NoOne(self.no_one());
        }
        match self.prompter.secret(prompt) {
            Some(s) => Answer::Given(s, Source::Typed),
            None => Answer::NoOne(self.no_one()),
        }
    }

    async fn connect_agent(
        &mut self,
    ) -> Option<russh::keys::agent::client::AgentClient<tokio::net::UnixStream>> {
        use russh::keys::agent::client::AgentClient;
        let socket = match &self.opts.auth.agent {
            IdentityAgent::None => return None,
            IdentityAgent::Env => PathBuf::from(std::env::var_os("SSH_AUTH_SOCK")?),
            IdentityAgent::Socket(p) => p.clone(),
        };
        match AgentClient::connect_uds(&socket).await {
            Ok(agent) => Some(agent),
            Err(e) => {
                self.tried.push(format!(
                    "ssh-agent (cannot reach {}: {e})",
                    socket.display()
                ));
                None
            }
        }
    }

    async fn agent(&mut self) -> Result<bool, ConnectError> {
        let Some(mut agent) = self.connect_agent().await else {
            return Ok(false);
        };
        let identities = match agent.request_identities().await {
            Ok(ids) => ids,
            Err(e) => {
                self.tried.push(format!("ssh-agent (no answer: {e})"));
                return Ok(false);
            }
        };
        if identities.is_empty() {
            self.tried.push("ssh-agent (it holds no keys)".into());
        }
        // IdentitiesOnly: only the agent's keys that are identity files or certificates.
        let only: Option<Vec<PublicKey>> = self.opts.auth.identities_only.then(|| {
            let mut keys = certificates::identity_public_keys(&self.opts.identity_files);
            keys.extend(self.certificates.keys());
            keys
        });
        for identity in identities {
            let (key, comment) = match identity {
                russh::keys::agent::AgentIdentity::PublicKey { key, comment } => (key, comment),
                russh::keys::agent::AgentIdentity::Certificate {
                    certificate,
                    comment,
                } => {
                    if let Some(only) = &only
                        && !only
                            .iter()
                            .any(|k| k.key_data() == certificate.public_key())
                    {
                        continue;
                    }
                    if self
                        .agent_certificate(&mut agent, certificate, &comment)
                        .await?
                    {
                        return Ok(true);
                    }
                    continue;
                }
            };
            if let Some(only) = &only
                && !only.iter().any(|k| k.key_data() == key.key_data())
            {
                continue;
            }
            for (path, cert) in self.certificates.of(&key) {
                let shown = format!("{} (key in ssh-agent)", path.display());
                if self.agent_certificate(&mut agent, cert, &shown).await? {
                    return Ok(true);
                }
            }
            if !self.accepts_key(&key.algorithm()) {
                self.tried.push(format!(
                    "publickey from ssh-agent ({comment}) (not tried: {} is not in PubkeyAcceptedAlgorithms)",
                    key.algorithm().as_str()
                ));
                continue;
            }
            let hash = self.rsa_hash(key.algorithm()).await;
            let public = key.clone();
            match self
                .ssh
                .authenticate_publickey_with(&self.opts.user, key, hash, &mut agent)
                .await
            {
                Ok(r) => {
                    if self.done(r) {
                        return Ok(true);
                    }
                    self.refused.push(public.clone());
                    self.tried.push(format!(
                        "publickey from ssh-agent ({comment}) (refused by the server)"
                    ));
                }
                Err(e) => self.tried.push(format!(
                    "publickey from ssh-agent ({comment}) (the agent could not sign: {e})"
                )),
            }
        }
        Ok(false)
    }

    /// Offers a certificate whose key the agent holds.
    async fn agent_certificate(
        &mut self,
        agent: &mut russh::keys::agent::client::AgentClient<tokio::net::UnixStream>,
        cert: Certificate,
        shown: &str,
    ) -> Result<bool, ConnectError> {
        if !self
            .opts
            .algorithms
            .accepts_pubkey(cert.algorithm().to_certificate_type().as_str())
        {
            self.tried.push(format!(
                "certificate {shown} (not tried: its type is not in PubkeyAcceptedAlgorithms)"
            ));
            return Ok(false);
        }
        let hash = self.rsa_hash(cert.algorithm()).await;
        match self
            .ssh
            .authenticate_certificate_with(&self.opts.user, cert, hash, agent)
            .await
        {
            Ok(r) => {
                if self.done(r) {
                    return Ok(true);
                }
                self.tried
                    .push(format!("certificate {shown} (refused by the server)"));
            }
            Err(e) => self.tried.push(format!(
                "certificate {shown} (the agent could not sign: {e})"
            )),
        }
        Ok(false)
    }

    /// Offers the certificates of `key` (an identity file's), then the key itself.
    async fn with_key(&mut self, path: &Path, key: PrivateKey) -> Result<bool, ConnectError> {
        let key = Arc::new(key);
        for (cert_path, cert) in self.certificates.of(key.public_key()) {
            if !self
                .opts
                .algorithms
                .accepts_pubkey(&cert.algorithm().to_certificate_type())
            {
                self.tried.push(format!(
                    "certificate {} (not tried: its type is not in PubkeyAcceptedAlgorithms)",
                    cert_path.display()
                ));
                continue;
            }
            let r = self
                .ssh
                .authenticate_openssh_cert(&self.opts.user, Arc::clone(&key), cert)
                .await
                .map_err(|e| self.ssh_error(e))?;
            if self.done(r) {
                return Ok(true);
            }
            self.tried.push(format!(
                "certificate {} (refused by the server)",
                cert_path.display()
            ));
        }
        if self
            .refused
            .iter()
            .any(|k| k.key_data() == key.public_key().key_data())
        {
            return Ok(false);
        }
        let algo = key.algorithm();
        if !self.accepts_key(&algo) {
            self.tried.push(format!(
                "publickey {} (not tried: {} is not in PubkeyAcceptedAlgorithms)",
                path.display(),
                algo.as_str()
            ));
            return Ok(false);
        }
        let hash = self.rsa_hash(algo).await;
        let key = PrivateKeyWithHashAlg::new(key, hash);
        let r = self
            .ssh
            .authenticate_publickey(&self.opts.user, key)
            .await
            .map_err(|e| self.ssh_error(e))?;
        if self.done(r) {
            return Ok(true);
        }
        self.tried.push(format!(
            "publickey {} (refused by the server)",
            path.display()
        ));
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
                    self.tried
                        .push(format!("publickey {} (no such file)", path.display()));
                }
                continue;
            }
            let key = match self.load_key(&path) {
                Ok(key) => key,
                Err(why) => {
                    self.tried
                        .push(format!("publickey {} ({why})", path.display()));
                    continue;
                }
            };
            if self.with_key(&path, key).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Loads a private key, asking for its passphrase if it is encrypted (unless batch mode);
    /// the error says why it could not be used.
    fn load_key(&self, path: &Path) -> Result<PrivateKey, String> {
        match russh::keys::load_secret_key(path, None) {
            Ok(k) => return Ok(k),
            Err(russh::keys::Error::KeyIsEncrypted) => {}
            Err(e) => {
                self.prompter.info(&format!(
                    "Warning: cannot load identity file {}: {e}",
                    path.display()
                ));
                return Err(format!("cannot load it: {e}"));
            }
        }
        let prompt = format!("Enter passphrase for key '{}': ", path.display());
        let what = SecretFor::Passphrase(path);
        for _ in 0..PROMPT_TRIES {
            let (passphrase, from) = match self.answer(&prompt, Some(what)) {
                Answer::Given(p, from) => (Secret::new(p), from),
                Answer::NoOne(why) => {
                    return Err(format!("it needs a passphrase and {why}"));
                }
            };
            if passphrase.expose().is_empty() {
                return Err("it needs a passphrase and none was given".into());
            }
            match (
                russh::keys::load_secret_key(path, Some(passphrase.expose())),
                from,
            ) {
                (Ok(k), _) => return Ok(k),
                (Err(_), Source::Known) => {
                    return Err("the passphrase remembered for it is wrong".into());
                }
                (Err(_), Source::Stored) => {
                    return Err(format!(
                        "the passphrase stored in the keyring for it is wrong; store the right one with: sshfs-rs --store-passphrase {}",
                        path.display()
                    ));
                }
                (Err(_), Source::Typed) => self.prompter.info("Bad passphrase, try again."),
            }
        }
        Err("wrong passphrase".into())
    }

    /// Whether PubkeyAcceptedAlgorithms lets a key of type `algo` be offered (an RSA key: under
    /// any of its three names).
    fn accepts_key(&self, algo: &Algorithm) -> bool {
        use russh::keys::HashAlg;
        match algo {
            Algorithm::Rsa { .. } => [None, Some(HashAlg::Sha256), Some(HashAlg::Sha512)]
                .into_iter()
                .any(|hash| {
                    self.opts
                        .algorithms
                        .accepts_pubkey(Algorithm::Rsa { hash }.as_str())
                }),
            a => self.opts.algorithms.accepts_pubkey(a.as_str()),
        }
    }

    /// The hash an RSA key signs with: the server's best, unless PubkeyAcceptedAlgorithms
    /// excludes it (then the first of rsa-sha2-512, rsa-sha2-256 it accepts).
    async fn rsa_hash(&self, algo: Algorithm) -> Option<russh::keys::HashAlg> {
        use russh::keys::HashAlg;
        if !matches!(algo, Algorithm::Rsa { .. }) {
            return None;
        }
        let best = self
            .ssh
            .best_supported_rsa_hash()
            .await
            .ok()
            .flatten()
            .flatten();
        let name = |h: Option<HashAlg>| Algorithm::Rsa { hash: h }.as_str().to_owned();
        let accepts = |h: Option<HashAlg>| self.opts.algorithms.accepts_pubkey(&name(h));
        [best, Some(HashAlg::Sha512), Some(HashAlg::Sha256)]
            .into_iter()
            .find(|h| accepts(*h))
            .unwrap_or(best)
    }

    async fn keyboard_interactive(&mut self) -> Result<bool, ConnectError> {
        // In batch mode only a secret known beforehand can answer: do not start an exchange
        // that can only be abandoned (the server would log a failure for nothing).
        if self.opts.batch_mode && !self.password_without_asking() {
            self.tried.push(format!(
                "keyboard-interactive (not tried: {})",
                self.no_one()
            ));
            return Ok(false);
        }
        let mut reply = self
            .ssh
            .authenticate_keyboard_interactive_start(&self.opts.user, None::<String>)
            .await
            .map_err(|e| self.ssh_error(e))?;
        let mut answered = false;
        let mut known_used = false;
        let mut stored_used = false;
        for _ in 0..PROMPT_TRIES * 2 {
            match reply {
                KeyboardInteractiveAuthResponse::Success => return Ok(true),
                KeyboardInteractiveAuthResponse::Failure {
                    remaining_methods, ..
                } => {
                    self.allowed = remaining_methods.to_vec();
                    if stored_used {
                        self.stored_password_refused = true;
                        let why = self.stored_password_refusal();
                        self.tried.push(format!("keyboard-interactive ({why})"));
                        return Ok(false);
                    }
                    self.tried.push(if answered {
                        "keyboard-interactive (refused by the server)".into()
                    } else {
                        "keyboard-interactive (the server asked nothing and refused)".into()
                    });
                    return Ok(false);
                }
                KeyboardInteractiveAuthResponse::InfoRequest {
                    name,
                    instructions,
                    prompts,
                } => {
                    for text in [name, instructions] {
                        if !text.is_empty() && !self.opts.batch_mode {
                            self.prompter.info(&text);
                        }
                    }
                    let mut answers = Vec::with_capacity(prompts.len());
                    for p in prompts {
                        let answer = if p.echo {
                            match self.opts.batch_mode {
                                true => None,
                                false => self.prompter.ask(&p.prompt),
                            }
                        } else {
                            // Only a password prompt is answered from the keyring (not a
                            // one-time code), and not once the stored password was refused.
                            let what = (is_password_prompt(&p.prompt)
                                && !self.stored_password_refused)
                                .then(|| self.password_for());
                            match self.answer(&p.prompt, what) {
                                // A known secret the server asks for again was refused.
                                Answer::Given(_, Source::Known) if known_used => {
                                    self.tried.push(
                                        "keyboard-interactive (the password given was refused by the server)".into(),
                                    );
                                    return Ok(false);
                                }
                                Answer::Given(_, Source::Stored) if stored_used => {
                                    self.stored_password_refused = true;
                                    let why = self.stored_password_refusal();
                                    self.tried.push(format!("keyboard-interactive ({why})"));
                                    return Ok(false);
                                }
                                Answer::Given(s, from) => {
                                    known_used |= from == Source::Known;
                                    stored_used |= from == Source::Stored;
                                    Some(s)
                                }
                                Answer::NoOne(_) => None,
                            }
                        };
                        let Some(answer) = answer else {
                            self.tried.push(format!(
                                "keyboard-interactive (nothing to answer '{}' with: {})",
                                p.prompt.trim(),
                                self.no_one()
                            ));
                            return Ok(false);
                        };
                        answers.push(answer);
                    }
                    answered = true;
                    reply = self
                        .ssh
                        .authenticate_keyboard_interactive_respond(answers)
                        .await
                        .map_err(|e| self.ssh_error(e))?;
                }
            }
        }
        self.tried
            .push("keyboard-interactive (too many questions)".into());
        Ok(false)
    }

    fn password_prompt(&self) -> String {
        format!("{}@{}'s password: ", self.opts.user, self.opts.host)
    }

    /// Whether a password is at hand without asking anyone: given beforehand, or stored (and
    /// not refused yet).
    fn password_without_asking(&self) -> bool {
        let prompt = self.password_prompt();
        self.prompter.known_secret(&prompt).is_some()
            || (!self.stored_password_refused
                && self
                    .prompter
                    .stored_secret(&prompt, &self.password_for())
                    .is_some())
    }

    /// What this login's password is stored under.
    fn password_for(&self) -> SecretFor<'_> {
        SecretFor::Password {
            user: &self.opts.user,
            host: &self.opts.host,
            port: self.opts.port,
        }
    }

    /// Why a stored password failed, and how to replace it.
    fn stored_password_refusal(&self) -> String {
        let host = if self.opts.host.contains(':') {
            format!("[{}]", self.opts.host)
        } else {
            self.opts.host.clone()
        };
        format!(
            "the password stored in the keyring was refused by the server; store the right one with: sshfs-rs --store-password {}@{host}:{}",
            self.opts.user, self.opts.port
        )
    }

    async fn password(&mut self) -> Result<bool, ConnectError> {
        let prompt = self.password_prompt();
        for _ in 0..PROMPT_TRIES {
            let what = (!self.stored_password_refused).then(|| self.password_for());
            let (password, from) = match self.answer(&prompt, what) {
                Answer::Given(p, from) => (Secret::new(p), from),
                Answer::NoOne(why) => {
                    self.tried.push(format!("password (not tried: {why})"));
                    return Ok(false);
                }
            };
            let r = self
                .ssh
                .authenticate_password(&self.opts.user, password.expose())
                .await
                .map_err(|e| self.ssh_error(e))?;
            if self.done(r) {
                return Ok(true);
            }
            match from {
                Source::Known => {
                    self.tried
                        .push("password (the one given was refused by the server)".into());
                    return Ok(false);
                }
                Source::Stored => {
                    self.stored_password_refused = true;
                    let why = self.stored_password_refusal();
                    self.tried.push(format!("password ({why})"));
                    return Ok(false);
                }
                Source::Typed => {}
            }
            self.prompter.info("Permission denied, please try again.");
        }
        self.tried.push("password (refused by the server)".into());
        Ok(false)
    }
}
