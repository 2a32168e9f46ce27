//! The `--store-password`, `--forget-password`, `--store-passphrase` and `--forget-passphrase`
//! commands: one secret asked once (on the terminal, or one line of stdin with
//! `-o password_stdin`) and put in the OS keyring, or taken out of it; one line says what was
//! done.

use std::path::Path;

use sshfs_client::remote::{ssh::auth::Prompter, ssh::auth::Secret};

use super::prompt::TtyPrompt;
use super::store;
use crate::config;
use crate::options::args::Args;
use crate::options::mount_opts::KeyringChoice as Choice;

/// Runs the keyring command `args` names, if it names one: `None` for a mount. The `Ok` text is
/// the line to print.
pub fn run(args: &Args) -> Option<Result<String, String>> {
    let run = |f: fn(&Args) -> Result<String, String>| Some(f(args));
    if args.store_password.is_some() {
        run(store_password)
    } else if args.forget_password.is_some() {
        run(forget_password)
    } else if args.store_passphrase.is_some() {
        run(store_passphrase)
    } else if args.forget_passphrase.is_some() {
        run(forget_passphrase)
    } else {
        None
    }
}

/// The keyring the command works on; `-o keyring=no` is refused (there is nothing to do).
fn choice(choice: Choice) -> Result<Choice, String> {
    match choice {
        Choice::No => Err("-o keyring=no: no keyring to store in or remove from".to_owned()),
        c => Ok(c),
    }
}

/// The account a `--*-password` command names, the keyring, and whether the secret comes from
/// stdin.
fn password_account(spec: &str, args: &Args) -> Result<(String, Choice, bool), String> {
    let o = config::login::command_options(args)?;
    let (user, host, port) = config::login::login_of(spec, args, &o)?;
    Ok((
        store::password_account(&user, &host, port),
        choice(o.keyring)?,
        o.password_stdin,
    ))
}

/// Reads the secret: one line of stdin, or asked without echo on the terminal.
fn read_secret(from_stdin: bool, prompt: &str) -> Result<Secret, String> {
    if from_stdin {
        return config::password::read_password_stdin();
    }
    let secret = TtyPrompt
        .secret(prompt)
        .ok_or("no terminal to ask on: give the secret on stdin with -o password_stdin")?;
    Ok(Secret::new(secret))
}

fn store_password(args: &Args) -> Result<String, String> {
    let spec = args.store_password.as_deref().unwrap_or_default();
    let (account, choice, from_stdin) = password_account(spec, args)?;
    let password = read_secret(from_stdin, &format!("Password for {account}: "))?;
    if password.expose().is_empty() {
        return Err(format!("no password given for {account}: nothing stored"));
    }
    let backend = store::store(choice, &account, password)?;
    Ok(format!("stored the password for {account} in {backend}"))
}

fn forget_password(args: &Args) -> Result<String, String> {
    let spec = args.forget_password.as_deref().unwrap_or_default();
    let (account, choice, _) = password_account(spec, args)?;
    match store::forget(choice, &account)? {
        (true, backend) => Ok(format!("removed the password for {account} from {backend}")),
        (false, backend) => Err(format!(
            "no password for {account} in {backend}: nothing removed"
        )),
    }
}

fn store_passphrase(args: &Args) -> Result<String, String> {
    let key = args.store_passphrase.as_deref().unwrap_or(Path::new(""));
    let o = config::login::command_options(args)?;
    let choice = choice(o.keyring)?;
    let account = store::passphrase_account(key)?;
    match russh::keys::load_secret_key(key, None) {
        Err(russh::keys::Error::KeyIsEncrypted) => {}
        Ok(_) => {
            return Err(format!(
                "key file {account} has no passphrase: nothing to store"
            ));
        }
        Err(e) => return Err(format!("key file {account}: {e}")),
    }
    let passphrase = read_secret(
        o.password_stdin,
        &format!("Enter passphrase for key '{account}' to store: "),
    )?;
    if russh::keys::load_secret_key(key, Some(passphrase.expose())).is_err() {
        return Err(format!(
            "wrong passphrase for key {account}: nothing stored"
        ));
    }
    let backend = store::store(choice, &account, passphrase)?;
    Ok(format!(
        "stored the passphrase of key {account} in {backend}"
    ))
}

fn forget_passphrase(args: &Args) -> Result<String, String> {
    let key = args.forget_passphrase.as_deref().unwrap_or(Path::new(""));
    let o = config::login::command_options(args)?;
    let choice = choice(o.keyring)?;
    // A key file removed since: its entry is still named by the absolute path.
    let account = store::passphrase_account(key).or_else(|_| absolute(key))?;
    match store::forget(choice, &account)? {
        (true, backend) => Ok(format!(
            "removed the passphrase of key {account} from {backend}"
        )),
        (false, backend) => Err(format!(
            "no passphrase for key {account} in {backend}: nothing removed"
        )),
    }
}

fn absolute(key: &Path) -> Result<String, String> {
    std::path::absolute(key)
        .map_err(|e| format!("key file {}: {e}", key.display()))?
        .into_os_string()
        .into_string()
        .map_err(|p| format!("key file {}: the path is not UTF-8", p.to_string_lossy()))
}
