//! Checking the server's host key while connecting: against known_hosts (asking, adding or
//! refusing as `StrictHostKeyChecking` says), or on a reconnect against the key seen first.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use russh::client;
use russh::keys::{HashAlg, PublicKey};

use super::known_hosts::{self, HostKeyStatus};
use super::options::{ConnectOptions, StrictHostKeyChecking};
use super::prompt::Prompter;

/// russh's handler: checks the server's key against known_hosts (or, on a reconnect, against
/// the key seen at the first connection) and records the verdict and the key.
pub struct HostKeyCheck {
    pub(super) opts: ConnectOptions,
    pub(super) prompter: Arc<dyn Prompter>,
    pub(super) refusal: Arc<Mutex<Option<String>>>,
    /// On a reconnect: the key the server had at the first connection.
    pub(super) pinned: Option<PublicKey>,
    /// The key the server showed.
    pub(super) seen: Arc<Mutex<Option<PublicKey>>>,
    /// The server's version banner, kept at the end of the key exchange.
    pub(super) banner: Arc<Mutex<Option<String>>>,
}

impl HostKeyCheck {
    async fn verdict(&self, key: &PublicKey) -> Result<(), String> {
        let host = self.opts.known_hosts_name();
        let algo = key.algorithm().as_str().to_owned();
        let fp = key.fingerprint(HashAlg::Sha256);
        if let Some(pinned) = &self.pinned {
            return if pinned.fingerprint(HashAlg::Sha256) == fp {
                Ok(())
            } else {
                Err(format!(
                    "the {algo} key of {host} changed since the mount (was {}, now {fp}); not reconnecting",
                    pinned.fingerprint(HashAlg::Sha256)
                ))
            };
        }
        let files = self.opts.known_hosts_files();
        match known_hosts::check_name(&files, &host, key) {
            HostKeyStatus::Known(_) => Ok(()),
            HostKeyStatus::Revoked(loc) => Err(format!(
                "the {algo} key of {host} is marked @revoked at {loc}"
            )),
            HostKeyStatus::Changed(loc) => Err(format!(
                "the {algo} key of {host} has CHANGED (now {fp}); someone may be intercepting the connection. If the change is expected, remove the old key at {loc}"
            )),
            HostKeyStatus::Unknown => {
                self.unknown_host(key, &host, &algo, &fp.to_string(), &files)
                    .await
            }
        }
    }

    async fn unknown_host(
        &self,
        key: &PublicKey,
        host: &str,
        algo: &str,
        fp: &str,
        files: &[PathBuf],
    ) -> Result<(), String> {
        let listed = files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        // A key of another type is known: the algorithms offered did not pick it.
        let others: Vec<String> = known_hosts::known_types(files, host)
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect();
        let refuse = || {
            if others.is_empty() {
                format!(
                    "no {algo} key for {host} in {listed} (server key {fp}); add it there, or connect once with -o StrictHostKeyChecking=accept-new"
                )
            } else {
                format!(
                    "no {algo} key for {host} in {listed} (server key {fp}), which has a {} key for it; allow that type with -o HostKeyAlgorithms",
                    others.join(", ")
                )
            }
        };
        let accept = match self.opts.strict_host_key_checking {
            StrictHostKeyChecking::Yes => false,
            StrictHostKeyChecking::AcceptNew | StrictHostKeyChecking::No => true,
            StrictHostKeyChecking::Ask if self.opts.batch_mode => false,
            StrictHostKeyChecking::Ask => {
                let question = format!(
                    "The authenticity of host '{host}' can't be established.\n{algo} key fingerprint is {fp}.\nAre you sure you want to continue connecting (yes/no/[fingerprint])? "
                );
                let prompter = self.prompter.clone();
                let answer = tokio::task::spawn_blocking(move || prompter.ask(&question))
                    .await
                    .ok()
                    .flatten();
                matches!(answer.as_deref().map(str::trim), Some(a) if a == "yes" || a == fp)
            }
        };
        if !accept {
            return Err(refuse());
        }
        if let Some(file) = self.opts.user_known_hosts.first() {
            let learned = match &self.opts.host_key_alias {
                Some(alias) => known_hosts::learn_name(file, alias, key),
                None => known_hosts::learn(file, &self.opts.host, self.opts.port, key),
            };
            match learned {
                Ok(()) => self.prompter.info(&format!(
                    "Warning: Permanently added '{host}' ({algo}) to the list of known hosts ({}).",
                    file.display()
                )),
                Err(e) => self.prompter.info(&format!(
                    "Warning: could not add '{host}' to {}: {e}",
                    file.display()
                )),
            }
        }
        Ok(())
    }
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = server_public_key else {
            if let Ok(mut r) = self.refusal.lock() {
                *r = Some(
                    "the server offered a host certificate; certificates are not supported yet"
                        .into(),
                );
            }
            return Ok(false);
        };
        match self.verdict(key).await {
            Ok(()) => {
                if let Ok(mut seen) = self.seen.lock() {
                    *seen = Some(key.clone());
                }
                Ok(true)
            }
            Err(why) => {
                if let Ok(mut r) = self.refusal.lock() {
                    *r = Some(why);
                }
                Ok(false)
            }
        }
    }

    async fn kex_done(
        &mut self,
        _shared_secret: Option<&[u8]>,
        _names: &russh::Names,
        session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        if let Ok(mut b) = self.banner.lock() {
            let id = String::from_utf8_lossy(session.remote_sshid());
            *b = Some(id.trim_end().to_owned());
        }
        Ok(())
    }

    async fn auth_banner(
        &mut self,
        banner: &str,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        if !self.opts.batch_mode {
            self.prompter.info(banner.trim_end());
        }
        Ok(())
    }
}
