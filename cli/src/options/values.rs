//! Parsers of option values shared by `-o`, ssh_config and the command line: ports, yes/no,
//! seconds, sizes and OpenSSH's enumerations. Each error is a phrase naming the bad value.

use std::time::Duration;

use sshfs_client::remote::{
    ssh::auth::AuthMethod, ssh::connect::AddressFamily, ssh::connect::StrictHostKeyChecking,
};

use super::mount_opts::LogLevel;

/// OpenSSH's AddressFamily values.
pub fn parse_address_family(v: &str) -> Result<AddressFamily, String> {
    match v.to_ascii_lowercase().as_str() {
        "any" => Ok(AddressFamily::Any),
        "inet" => Ok(AddressFamily::Inet),
        "inet6" => Ok(AddressFamily::Inet6),
        _ => Err(format!("'{v}' is not one of any, inet, inet6")),
    }
}

/// PreferredAuthentications: the methods sshfs-rs implements, in the order given (the ones it
/// does not, gssapi-with-mic and hostbased, are left out).
pub fn parse_preferred_auth(v: &str) -> Result<Vec<AuthMethod>, String> {
    let mut methods = Vec::new();
    for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let m = match name {
            "publickey" => AuthMethod::PublicKey,
            "keyboard-interactive" => AuthMethod::KeyboardInteractive,
            "password" => AuthMethod::Password,
            "gssapi-with-mic" | "gssapi-keyex" | "hostbased" => continue,
            _ => return Err(format!("'{name}' is not an authentication method")),
        };
        if !methods.contains(&m) {
            methods.push(m);
        }
    }
    if methods.is_empty() {
        return Err(format!(
            "'{v}' names none of the methods sshfs-rs implements (publickey, keyboard-interactive, password)"
        ));
    }
    Ok(methods)
}

/// PubkeyAuthentication: yes, no, and OpenSSH's unbound and host-bound (both yes here).
pub fn parse_pubkey_auth(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "unbound" | "host-bound" => Ok(true),
        _ => {
            parse_yes_no(v).map_err(|_| format!("'{v}' is not one of yes, no, unbound, host-bound"))
        }
    }
}

/// OpenSSH's LogLevel names.
pub fn parse_log_level(v: &str) -> Result<LogLevel, String> {
    Ok(match v.to_ascii_uppercase().as_str() {
        "QUIET" => LogLevel::Quiet,
        "FATAL" => LogLevel::Fatal,
        "ERROR" => LogLevel::Error,
        "INFO" => LogLevel::Info,
        "VERBOSE" => LogLevel::Verbose,
        "DEBUG" | "DEBUG1" => LogLevel::Debug1,
        "DEBUG2" => LogLevel::Debug2,
        "DEBUG3" => LogLevel::Debug3,
        _ => {
            return Err(format!(
                "'{v}' is not one of QUIET, FATAL, ERROR, INFO, VERBOSE, DEBUG, DEBUG1, DEBUG2, DEBUG3"
            ));
        }
    })
}

/// A count, 0 or more.
pub fn parse_count(v: &str) -> Result<usize, String> {
    v.parse::<usize>()
        .map_err(|_| format!("'{v}' is not a number"))
}

/// A positive size or count that fits in 32 bits.
pub fn parse_size(v: &str) -> Result<u32, String> {
    match v.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{v}' is not a positive number")),
    }
}

/// A positive number of bytes, with an optional suffix K, M, G or T (powers of 1024).
pub fn parse_bytes(v: &str) -> Result<u64, String> {
    let (digits, unit) = match v.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&v[..i], c.to_ascii_uppercase()),
        _ => (v, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        'T' => 40,
        _ => return Err(format!("'{v}': the unit must be K, M, G or T")),
    };
    match digits.parse::<u64>() {
        Ok(n) if n > 0 && n.leading_zeros() >= shift => Ok(n << shift),
        _ => Err(format!("'{v}' is not a positive number of bytes")),
    }
}

/// A user or group id.
pub fn parse_id(v: &str) -> Result<u32, String> {
    v.parse::<u32>()
        .map_err(|_| format!("'{v}' is not a user or group id number"))
}

/// Permission bits to hide, in octal (`022`).
pub fn parse_umask(v: &str) -> Result<u32, String> {
    match u32::from_str_radix(v, 8) {
        Ok(m) if m <= 0o7777 => Ok(m),
        _ => Err(format!("'{v}' is not an octal mode mask such as 022")),
    }
}

/// A TCP port number 1..=65535.
pub fn parse_port(v: &str) -> Result<u16, String> {
    match v.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("'{v}' is not a port number (1-65535)")),
    }
}

/// OpenSSH's StrictHostKeyChecking values (`off` = no, `on` = yes, like OpenSSH).
pub fn parse_strict(v: &str) -> Result<StrictHostKeyChecking, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "on" | "true" => Ok(StrictHostKeyChecking::Yes),
        "accept-new" => Ok(StrictHostKeyChecking::AcceptNew),
        "no" | "off" | "false" => Ok(StrictHostKeyChecking::No),
        "ask" => Ok(StrictHostKeyChecking::Ask),
        _ => Err(format!("'{v}' is not one of yes, accept-new, no, ask")),
    }
}

/// yes/no.
pub fn parse_yes_no(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" => Ok(true),
        "no" | "false" | "off" => Ok(false),
        _ => Err(format!("'{v}' is not yes or no")),
    }
}

/// Whole seconds.
pub fn parse_secs(v: &str) -> Result<Duration, String> {
    v.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("'{v}' is not a number of seconds"))
}

pub fn parse_secs_f(v: &str) -> Result<Duration, String> {
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("'{v}' is not a number of seconds")),
    }
}
