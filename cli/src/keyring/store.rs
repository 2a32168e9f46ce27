//! Passwords and key passphrases kept in the OS keyring: the Secret Service over D-Bus when one
//! answers on the session bus, else the Linux kernel keyring (keyutils, the user's persistent
//! keyring). Entries are service `sshfs-rs`, user `user@host:port` for a password and the key
//! file's absolute path for a passphrase.
//!
//! Every call runs on a thread of its own, bounded in time: a Secret Service that wants to
//! show an unlock dialog nobody can see must not hang a mount, and keyutils' session keyring
//! (joined below) belongs to the thread that joins it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use keyring_core::{CredentialStore, Entry, Error};
use sshfs_client::os_message::os_message;
use sshfs_client::remote::{ssh::auth::Prompter, ssh::auth::Secret, ssh::auth::SecretFor};

use crate::options::mount_opts::KeyringChoice as Choice;

/// The service name every entry is stored under.
pub const SERVICE: &str = "sshfs-rs";

/// How long a lookup made for a mount may take (no one can answer an unlock dialog there).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a `--store-*` / `--forget-*` command waits for the store (an unlock dialog the
/// user may answer).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Which store an entry is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The Secret Service over D-Bus (GNOME Keyring, KeePassXC, KWallet...).
    SecretService,
    /// The kernel keyring: the user's persistent keyring.
    Keyutils,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::SecretService => f.write_str("the Secret Service (D-Bus)"),
            Backend::Keyutils => f.write_str("the kernel keyring (keyutils, persistent keyring)"),
        }
    }
}

/// What an entry is stored under (its keyring "user"): `user@host:port`, IPv6 in brackets.
pub fn password_account(user: &str, host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("{user}@[{host}]:{port}")
    } else {
        format!("{user}@{host}:{port}")
    }
}

/// What a key file's passphrase is stored under: its absolute path, symlinks resolved.
pub fn passphrase_account(key: &Path) -> Result<String, String> {
    let abs: PathBuf = std::fs::canonicalize(key)
        .map_err(|e| format!("key file {}: {}", key.display(), os_message(&e)))?;
    abs.into_os_string()
        .into_string()
        .map_err(|p| format!("key file {}: the path is not UTF-8", p.to_string_lossy()))
}

/// The secret stored under `account`, and where it was found; `None` if there is none.
pub fn lookup(choice: Choice, account: &str) -> Result<Option<(Secret, Backend)>, String> {
    let account = account.to_owned();
    on_own_thread(LOOKUP_TIMEOUT, move || {
        let (store, backend) = open(choice)?;
        match entry(&store, backend, &account)?.get_password() {
            Ok(s) => Ok(Some((Secret::new(s), backend))),
            Err(Error::NoEntry) => Ok(None),
            Err(e) => Err(format!("cannot read {backend}: {e}")),
        }
    })
}

/// Stores `secret` under `account` (replacing what was there); says where.
pub fn store(choice: Choice, account: &str, secret: Secret) -> Result<Backend, String> {
    if secret.expose().is_empty() {
        return Err("an empty secret is not stored".to_owned());
    }
    let account = account.to_owned();
    on_own_thread(COMMAND_TIMEOUT, move || {
        let (store, backend) = open(choice)?;
        if backend == Backend::Keyutils {
            persistent_keyring()?;
        }
        entry(&store, backend, &account)?
            .set_password(secret.expose())
            .map_err(|e| format!("cannot store in {backend}: {e}"))?;
        Ok(backend)
    })
}

/// Removes what is stored under `account`; false if nothing was; with the store looked in.
pub fn forget(choice: Choice, account: &str) -> Result<(bool, Backend), String> {
    let account = account.to_owned();
    on_own_thread(COMMAND_TIMEOUT, move || {
        let (store, backend) = open(choice)?;
        match entry(&store, backend, &account)?.delete_credential() {
            Ok(()) => Ok((true, backend)),
            Err(Error::NoEntry) => Ok((false, backend)),
            Err(e) => Err(format!("cannot remove it from {backend}: {e}")),
        }
    })
}

/// The entry for `account`; in the Secret Service it is labelled for people browsing it
/// (Seahorse, KeePassXC).
fn entry(store: &Arc<CredentialStore>, backend: Backend, account: &str) -> Result<Entry, String> {
    let label = format!("{SERVICE}: {account}");
    let built = match backend {
        Backend::SecretService => Entry::new_in_store_with_modifiers(
            store,
            SERVICE,
            account,
            &std::collections::HashMap::from([("label", label.as_str())]),
        ),
        Backend::Keyutils => Entry::new_in_store(store, SERVICE, account),
    };
    built.map_err(|e| format!("keyring entry {SERVICE}/{account}: {e}"))
}

/// Runs `f` on a thread of its own; an error if it takes longer than `limit` (the thread is
/// left to finish by itself).
fn on_own_thread<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("keyring".to_owned())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| format!("cannot start the keyring thread: {e}"))?;
    match rx.recv_timeout(limit) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "the keyring did not answer within {} s (a Secret Service waiting to be unlocked?)",
            limit.as_secs()
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err("the keyring thread failed (see the messages above)".to_owned())
        }
    }
}

/// The store to use on this thread.
fn open(choice: Choice) -> Result<(Arc<CredentialStore>, Backend), String> {
    let secret_service = || -> Result<Arc<CredentialStore>, String> {
        let store = zbus_secret_service_keyring_store::Store::new()
            .map_err(|e| format!("no Secret Service on the session bus ({e})"))?;
        Ok(store)
    };
    let keyutils = || -> Result<Arc<CredentialStore>, String> {
        own_session_keyring()?;
        let store = linux_keyutils_keyring_store::Store::new()
            .map_err(|e| format!("cannot open the kernel keyring: {e}"))?;
        Ok(store)
    };
    match choice {
        Choice::No => Err("the keyring is off (-o keyring=no)".to_owned()),
        Choice::SecretService => Ok((secret_service()?, Backend::SecretService)),
        Choice::Keyutils => Ok((keyutils()?, Backend::Keyutils)),
        Choice::Auto => match secret_service() {
            Ok(s) => Ok((s, Backend::SecretService)),
            Err(why) => {
                tracing::info!("{why}: using the kernel keyring");
                Ok((keyutils()?, Backend::Keyutils))
            }
        },
    }
}

/// keyutils finds entries through the user's persistent keyring, which it links into the
/// session keyring. A thread whose session keyring is the user-session keyring (no login
/// session made one: containers, daemons, autofs) cannot hold that link: it joins a new
/// anonymous session keyring of its own first (KEYCTL_JOIN_SESSION_KEYRING).
fn own_session_keyring() -> Result<(), String> {
    let id_of = |special: libc::c_long| {
        // SAFETY: KEYCTL_GET_KEYRING_ID takes two integers and touches no memory of ours.
        unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                libc::c_long::from(libc::KEYCTL_GET_KEYRING_ID),
                special,
                0 as libc::c_long,
            )
        }
    };
    let session = id_of(libc::c_long::from(libc::KEY_SPEC_SESSION_KEYRING));
    let user_session = id_of(libc::c_long::from(libc::KEY_SPEC_USER_SESSION_KEYRING));
    if session >= 0 && session != user_session {
        return Ok(());
    }
    // SAFETY: a null name asks for a new anonymous session keyring; no memory is passed.
    let joined = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::c_long::from(libc::KEYCTL_JOIN_SESSION_KEYRING),
            std::ptr::null::<libc::c_char>(),
        )
    };
    if joined < 0 {
        return Err(format!(
            "cannot open the kernel keyring (joining a session keyring: {})",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Checks that the kernel has a persistent keyring for this user (Linux 3.13+,
/// CONFIG_PERSISTENT_KEYRINGS): without it an entry would vanish with this process.
fn persistent_keyring() -> Result<(), String> {
    use linux_keyutils::{KeyRing, KeyRingIdentifier};
    KeyRing::get_persistent(KeyRingIdentifier::Session)
        .map(|_| ())
        .map_err(|e| {
            format!(
                "the kernel keyring has no persistent keyring here ({e:?}): a secret stored there would not outlive this command; run a Secret Service (e.g. gnome-keyring) instead"
            )
        })
}

/// Hands the mount's authentication the secrets stored in the keyring, and asks `inner` for
/// everything else.
pub struct KeyringAnswers<P> {
    /// The prompter for everything else (the terminal).
    pub inner: P,
    /// Which store to look in.
    pub choice: Choice,
}

impl<P: Prompter> Prompter for KeyringAnswers<P> {
    fn secret(&self, prompt: &str) -> Option<String> {
        self.inner.secret(prompt)
    }
    fn known_secret(&self, prompt: &str) -> Option<String> {
        self.inner.known_secret(prompt)
    }
    fn stored_secret(&self, _prompt: &str, what: &SecretFor<'_>) -> Option<String> {
        if self.choice == Choice::No {
            return None;
        }
        let account = match what {
            SecretFor::Password { user, host, port } => password_account(user, host, *port),
            SecretFor::Passphrase(path) => passphrase_account(path).ok()?,
        };
        match lookup(self.choice, &account) {
            Ok(Some((secret, backend))) => {
                tracing::info!("using the secret stored for {account} in {backend}");
                Some(secret.expose().to_owned())
            }
            Ok(None) => {
                tracing::info!("nothing stored for {account} in the keyring");
                None
            }
            Err(e) => {
                self.inner.info(&format!(
                    "sshfs-rs: warning: keyring lookup for {account} failed: {e}"
                ));
                None
            }
        }
    }
    fn ask(&self, prompt: &str) -> Option<String> {
        self.inner.ask(prompt)
    }
    fn info(&self, message: &str) {
        self.inner.info(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts() {
        assert_eq!(password_account("me", "h", 22), "me@h:22");
        assert_eq!(password_account("me", "::1", 2222), "me@[::1]:2222");
        assert!(passphrase_account(Path::new("/no/such/key")).is_err());
        assert_eq!(passphrase_account(Path::new("/")).unwrap(), "/");
    }
}
