//! Which authentication methods, keys and agent to use, as ssh_config says it:
//! `PreferredAuthentications`, `PubkeyAuthentication`, `KbdInteractiveAuthentication`,
//! `PasswordAuthentication`, `IdentitiesOnly`, `IdentityAgent`, `CertificateFile`.

use std::path::PathBuf;

use russh::MethodKind;

/// An authentication method sshfs-rs can use (`PreferredAuthentications` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// `publickey`: the agent's keys, then the identity files (and their certificates).
    PublicKey,
    /// `keyboard-interactive`.
    KeyboardInteractive,
    /// `password`.
    Password,
}

impl AuthMethod {
    /// Its name in the protocol and in `PreferredAuthentications`.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::PublicKey => "publickey",
            AuthMethod::KeyboardInteractive => "keyboard-interactive",
            AuthMethod::Password => "password",
        }
    }

    pub(crate) fn kind(self) -> MethodKind {
        match self {
            AuthMethod::PublicKey => MethodKind::PublicKey,
            AuthMethod::KeyboardInteractive => MethodKind::KeyboardInteractive,
            AuthMethod::Password => MethodKind::Password,
        }
    }

    /// The option that turns it off.
    fn switch(self) -> &'static str {
        match self {
            AuthMethod::PublicKey => "PubkeyAuthentication",
            AuthMethod::KeyboardInteractive => "KbdInteractiveAuthentication",
            AuthMethod::Password => "PasswordAuthentication",
        }
    }
}

/// OpenSSH's `IdentityAgent`: where the agent is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum IdentityAgent {
    /// `SSH_AUTH_SOCK` (the default).
    #[default]
    Env,
    /// No agent (`none`).
    None,
    /// This socket.
    Socket(PathBuf),
}

/// Which methods and keys authentication uses (`PreferredAuthentications`,
/// `PubkeyAuthentication`, `KbdInteractiveAuthentication`, `PasswordAuthentication`,
/// `IdentitiesOnly`, `IdentityAgent`, `CertificateFile`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthOptions {
    /// The methods in the order given by `PreferredAuthentications` (`None`: OpenSSH's order,
    /// publickey, keyboard-interactive, password).
    pub preferred: Option<Vec<AuthMethod>>,
    /// Methods switched off (`PubkeyAuthentication no`, ...).
    pub disabled: Vec<AuthMethod>,
    /// Only the agent's keys that are also identity files (or their certificates) are used.
    pub identities_only: bool,
    /// Where the agent is.
    pub agent: IdentityAgent,
    /// Certificates to offer with the matching key (from an identity file or the agent);
    /// `IDENTITY-cert.pub` next to an identity file is offered too, as ssh does.
    pub certificate_files: Vec<PathBuf>,
}

impl Default for AuthOptions {
    fn default() -> AuthOptions {
        AuthOptions {
            preferred: None,
            disabled: Vec::new(),
            identities_only: false,
            agent: IdentityAgent::Env,
            certificate_files: Vec::new(),
        }
    }
}

impl AuthOptions {
    /// The methods to try, in order.
    pub(crate) fn order(&self) -> Vec<AuthMethod> {
        let all = [
            AuthMethod::PublicKey,
            AuthMethod::KeyboardInteractive,
            AuthMethod::Password,
        ];
        self.preferred
            .clone()
            .unwrap_or_else(|| all.to_vec())
            .into_iter()
            .filter(|m| !self.disabled.contains(m))
            .collect()
    }

    /// Why `m` is not tried, if it is not.
    pub(crate) fn skipped(&self, m: AuthMethod) -> Option<String> {
        if self.disabled.contains(&m) {
            Some(format!("{} is no", m.switch()))
        } else if self.preferred.as_ref().is_some_and(|p| !p.contains(&m)) {
            Some("not in PreferredAuthentications".to_owned())
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_why_a_method_is_skipped() {
        let o = AuthOptions {
            preferred: Some(vec![AuthMethod::Password, AuthMethod::PublicKey]),
            disabled: vec![AuthMethod::PublicKey],
            ..AuthOptions::default()
        };
        assert_eq!(o.order(), vec![AuthMethod::Password]);
        assert_eq!(
            o.skipped(AuthMethod::PublicKey).as_deref(),
            Some("PubkeyAuthentication is no")
        );
        assert_eq!(
            o.skipped(AuthMethod::KeyboardInteractive).as_deref(),
            Some("not in PreferredAuthentications")
        );
        assert_eq!(o.skipped(AuthMethod::Password), None);
        assert_eq!(AuthOptions::default().order().len(), 3);
    }
}
