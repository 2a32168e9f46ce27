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

#[cfg(test)]
mod tests {
    use super::*;

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
