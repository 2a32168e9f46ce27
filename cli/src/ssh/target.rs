//! The `[user@]host:[path]` argument.

/// A parsed remote location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// User, if given before `@`.
    pub user: Option<String>,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Remote path; empty means the remote home directory.
    pub path: String,
}

/// Parses `[user@]host:[path]`; IPv6 addresses go in brackets: `user@[::1]:/srv`.
pub fn parse(s: &str) -> Result<Target, String> {
    let usage = || format!("'{s}' is not a remote location: use [user@]host:[path]");
    let end_of_user_part = s.find([':', '[']).unwrap_or(s.len());
    let (user, rest) = match s[..end_of_user_part].rfind('@') {
        Some(i) => (Some(&s[..i]), &s[i + 1..]),
        None => (None, s),
    };
    let (host, path) = if let Some(bracketed) = rest.strip_prefix('[') {
        let close = bracketed.find(']').ok_or_else(usage)?;
        let after = &bracketed[close + 1..];
        let path = after.strip_prefix(':').ok_or_else(usage)?;
        (&bracketed[..close], path)
    } else {
        rest.split_once(':').ok_or_else(usage)?
    };
    if host.is_empty() || user == Some("") {
        return Err(usage());
    }
    Ok(Target {
        user: user.map(str::to_owned),
        host: host.to_owned(),
        path: path.to_owned(),
    })
}

/// A login named on the command line of `--store-password` / `--forget-password`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// User, if given before `@`.
    pub user: Option<String>,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port, if given after `:`.
    pub port: Option<u16>,
}

/// Parses `[user@]host[:port]`; an IPv6 address goes in brackets: `me@[::1]:2222`.
pub fn parse_login(s: &str) -> Result<Login, String> {
    let usage = || format!("'{s}' is not a login: use [user@]host[:port]");
    let (user, rest) = match s.rfind('@') {
        Some(i) => (Some(&s[..i]), &s[i + 1..]),
        None => (None, s),
    };
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let close = bracketed.find(']').ok_or_else(usage)?;
        match &bracketed[close + 1..] {
            "" => (&bracketed[..close], None),
            after => (
                &bracketed[..close],
                Some(after.strip_prefix(':').ok_or_else(usage)?),
            ),
        }
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() || user == Some("") || host.contains(['/', ' ']) {
        return Err(usage());
    }
    let port = port
        .map(|p| crate::options::values::parse_port(p).map_err(|e| format!("'{s}': {e}")))
        .transpose()?;
    Ok(Login {
        user: user.map(str::to_owned),
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins() {
        let l = |u: Option<&str>, h: &str, p: Option<u16>| Login {
            user: u.map(str::to_owned),
            host: h.into(),
            port: p,
        };
        assert_eq!(parse_login("h").unwrap(), l(None, "h", None));
        assert_eq!(
            parse_login("me@h:2222").unwrap(),
            l(Some("me"), "h", Some(2222))
        );
        assert_eq!(parse_login("[::1]").unwrap(), l(None, "::1", None));
        assert_eq!(
            parse_login("me@[::1]:22").unwrap(),
            l(Some("me"), "::1", Some(22))
        );
        assert!(parse_login("me@h:x").is_err());
        assert!(parse_login("@h").is_err());
        assert!(parse_login("me@h:/srv").is_err());
        assert!(parse_login("[::1]x").is_err());
    }

    fn t(user: Option<&str>, host: &str, path: &str) -> Target {
        Target {
            user: user.map(str::to_owned),
            host: host.into(),
            path: path.into(),
        }
    }

    #[test]
    fn forms() {
        assert_eq!(parse("h:").unwrap(), t(None, "h", ""));
        assert_eq!(parse("u@h:/srv").unwrap(), t(Some("u"), "h", "/srv"));
        assert_eq!(
            parse("u@h:dir/a@b:c").unwrap(),
            t(Some("u"), "h", "dir/a@b:c")
        );
        assert_eq!(parse("[::1]:/x").unwrap(), t(None, "::1", "/x"));
        assert_eq!(
            parse("me@[fe80::1]:").unwrap(),
            t(Some("me"), "fe80::1", "")
        );
        assert_eq!(parse("a@b@h:p").unwrap(), t(Some("a@b"), "h", "p"));
    }

    #[test]
    fn rejects() {
        assert!(parse("host").is_err());
        assert!(parse(":path").is_err());
        assert!(parse("@h:p").is_err());
        assert!(parse("[::1]/x").is_err());
        assert!(parse("[::1").is_err());
    }
}
