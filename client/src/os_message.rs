//! The one place an OS error becomes the words a user reads.

/// The OS's words for `e` without Rust's " (os error N)" suffix: "No such file or directory",
/// "Connection refused", as OpenSSH and coreutils print them.
pub fn os_message(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::os_message;

    #[test]
    fn drops_the_os_error_suffix() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(os_message(&e), "No such file or directory");
        let plain = std::io::Error::other("plain words");
        assert_eq!(os_message(&plain), "plain words");
    }
}
