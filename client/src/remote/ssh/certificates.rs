//! User certificates to offer (`CertificateFile`, and `KEY-cert.pub` next to an identity file
//! as ssh finds it), and the public halves of the identity files (what `IdentitiesOnly` lets
//! the agent offer).

use crate::os_message::os_message;
use std::path::{Path, PathBuf};

use russh::keys::{Certificate, PublicKey};

/// The certificates read, each with the file it came from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Certificates(Vec<(PathBuf, Certificate)>);

impl Certificates {
    /// Reads `given` (`CertificateFile`s: a missing or bad one is named in `problems`), then
    /// `IDENTITY-cert.pub` next to each identity file that has one.
    pub(crate) fn load(
        given: &[PathBuf],
        identity_files: &[PathBuf],
        problems: &mut Vec<String>,
    ) -> Certificates {
        let next_to_keys = identity_files.iter().map(|p| {
            let mut name = p.clone().into_os_string();
            name.push("-cert.pub");
            (PathBuf::from(name), false)
        });
        let mut certs = Vec::new();
        for (path, explicit) in given.iter().map(|p| (p.clone(), true)).chain(next_to_keys) {
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    if explicit {
                        problems.push(format!(
                            "certificate {} (cannot read it: {})",
                            path.display(),
                            os_message(&e)
                        ));
                    }
                    continue;
                }
            };
            match Certificate::from_openssh(text.trim()) {
                Ok(cert) => certs.push((path, cert)),
                Err(e) => problems.push(format!(
                    "certificate {} (not an OpenSSH certificate: {e})",
                    path.display()
                )),
            }
        }
        Certificates(certs)
    }

    /// The certificates of `key`.
    pub(crate) fn of(&self, key: &PublicKey) -> Vec<(PathBuf, Certificate)> {
        self.0
            .iter()
            .filter(|(_, c)| c.public_key() == key.key_data())
            .cloned()
            .collect()
    }

    /// The keys they certify.
    pub(crate) fn keys(&self) -> impl Iterator<Item = PublicKey> + '_ {
        self.0
            .iter()
            .map(|(_, c)| PublicKey::new(c.public_key().clone(), ""))
    }
}

/// The public keys of the identity files (`FILE.pub`, else the private key when it has no
/// passphrase).
pub(crate) fn identity_public_keys(files: &[PathBuf]) -> Vec<PublicKey> {
    files.iter().filter_map(|p| public_key_of(p)).collect()
}

fn public_key_of(path: &Path) -> Option<PublicKey> {
    let mut public = path.to_path_buf().into_os_string();
    public.push(".pub");
    std::fs::read_to_string(&public)
        .ok()
        .and_then(|t| PublicKey::from_openssh(t.trim()).ok())
        .or_else(|| {
            russh::keys::load_secret_key(path, None)
                .ok()
                .map(|k| k.public_key().clone())
        })
}
