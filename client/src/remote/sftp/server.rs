//! Which SFTP server is at the other end, and what sshfs-rs may ask of it.
//!
//! SFTP v3 leaves room for servers to differ, and they do. OpenSSH's `sftp-server` (also what
//! Dropbear runs) takes writes in any order, over several channels of one connection and on
//! several handles of one file; it reads SYMLINK's two paths in the opposite order from the
//! draft. Other servers do not: ProFTPD's mod_sftp reassembles split packets in one buffer per
//! connection (concurrent large WRITEs on several channels corrupt each other), rclone takes
//! writes only in order and loses data when a file is opened again while open, and asyncssh
//! expects SYMLINK in the draft's order. So the fast patterns (several channels, a file reopened
//! on each) are used only where the server is known to be OpenSSH's; elsewhere one channel,
//! in order. Each choice can be forced (`-o max_conns=N`, `-o symlink_order=openssh|draft`);
//! several channels forced on such a server are given up once its session breaks under them
//! ([`ServerProfile::fall_back_after_crash`]).
//!
//! SYMLINK's order is another matter: OpenSSH's swapped order is what most servers read, since
//! OpenSSH's clients send it (ProFTPD's mod_sftp reads it so from any client, and so does Go's
//! pkg/sftp, rclone's). Only servers known to follow the draft get the draft's order: asyncssh
//! (which reads the draft's order from any client whose banner is not OpenSSH's or paramiko's).
//!
//! A removed open file: OpenSSH's server on Linux keeps it usable through its handles; the
//! others drop it with its name, so there a file unlinked while open through the mount is
//! hidden until its last close instead (`fs::hidden`; `-o hard_remove` forces either way).
//!
//! What counts as OpenSSH: the SSH version banner (`SSH-2.0-OpenSSH_...`; Dropbear with an
//! `sftp-server` that announces OpenSSH's extensions), or, where the banner is not known (the
//! SFTP session runs over an external ssh program), the extensions only OpenSSH's server
//! announces (`limits@openssh.com`, `lsetstat@openssh.com`, ...; OpenSSH 8.0 and later).

use std::fmt;

/// SFTP channels a connection opens at the first large write: OpenSSH's server gives each
/// channel a fixed 2 MiB window, about 100 MiB/s at 20 ms round trip; a large write spread over
/// 4 is not bound by it there.
pub const CHANNELS: usize = 4;
/// SFTP channels per SSH connection at most: more than [`CHANNELS`] are opened only when a
/// large write on a long link asks for them (2 MiB per round trip each: 8 carry 160 MiB/s at
/// 100 ms).
pub const CONNECTION_CHANNELS: usize = 8;
/// SFTP channels at most, over two SSH connections: the channels beyond
/// [`CONNECTION_CHANNELS`] are opened on a second connection to the same server, made only
/// when a large write on a very long link asks for them (and authenticated as a reconnect is,
/// without prompting). One connection's bytes cross one TCP connection, whose window and the
/// server's per-channel windows bound it on a long link.
pub const MAX_CHANNELS: usize = 2 * CONNECTION_CHANNELS;

/// The two orders of SYMLINK's paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymlinkOrder {
    /// OpenSSH's: the target first, then the link's path (what OpenSSH's server reads).
    OpenSsh,
    /// The draft's: the link's path first, then the target.
    Draft,
}

impl SymlinkOrder {
    /// `openssh` or `draft`, as `-o symlink_order=` takes them.
    pub fn parse(v: &str) -> Result<Self, String> {
        match v {
            "openssh" => Ok(Self::OpenSsh),
            "draft" => Ok(Self::Draft),
            _ => Err(format!("'{v}': expected openssh or draft")),
        }
    }
}

impl fmt::Display for SymlinkOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::OpenSsh => "openssh",
            Self::Draft => "draft",
        })
    }
}

/// What the user forced (`None`: decided from the server).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerOverrides {
    /// `-o max_conns=N`: SFTP channels at most (1: one channel, writes in order).
    pub max_conns: Option<usize>,
    /// `-o symlink_order=`.
    pub symlink_order: Option<SymlinkOrder>,
    /// `-o hard_remove` (libfuse's name): `Some(true)` removes a file open through the mount
    /// at once, as on OpenSSH's server; `Some(false)` (`hard_remove=no`) hides it until its
    /// last close, whatever the server.
    pub hard_remove: Option<bool>,
}

/// The server family, as far as it matters here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// OpenSSH's `sftp-server` (behind OpenSSH or Dropbear).
    OpenSsh,
    /// Anything else (ProFTPD, rclone, asyncssh, appliances...).
    Other,
}

/// What was decided for one mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerProfile {
    /// The server's SSH version banner, if known.
    pub banner: Option<String>,
    /// The family decided.
    pub family: Family,
    /// SYMLINK's order.
    pub symlink_order: SymlinkOrder,
    /// SFTP channels at most (1: writes on one channel, in order; no file opened twice).
    pub channels: usize,
    /// Whether a file unlinked while open through the mount is renamed to a hidden name and
    /// removed at its last close (libfuse's answer, for servers that drop a removed open file
    /// with its name), rather than removed at once (OpenSSH's server keeps it readable).
    pub hide_removed_open: bool,
    /// Whether each choice was forced by an option (symlink order, channels, hard_remove).
    forced: (bool, bool, bool),
    /// The session died while several channels were in use on a server not known to take
    /// them: one channel from then on ([`ServerProfile::fall_back_after_crash`]).
    fell_back: bool,
}

/// Extensions only OpenSSH's `sftp-server` announces (8.0 and later).
const OPENSSH_ONLY: &[&str] = &[
    "lsetstat@openssh.com",
    "limits@openssh.com",
    "expand-path@openssh.com",
    "users-groups-by-id@openssh.com",
    "home-directory",
    "copy-data",
];

impl ServerProfile {
    /// The choices for a server with this `banner` (if known) that announced `extensions`,
    /// with what `overrides` forces.
    pub fn decide(
        banner: Option<&str>,
        extensions: &[String],
        overrides: ServerOverrides,
    ) -> ServerProfile {
        let has = |name: &str| extensions.iter().any(|e| e == name);
        let openssh_extensions = OPENSSH_ONLY.iter().any(|e| has(e));
        let family = match banner.map(|b| b.to_ascii_lowercase()) {
            Some(b) if b.starts_with("ssh-2.0-openssh") => Family::OpenSsh,
            // Dropbear runs whatever sftp-server it finds, usually OpenSSH's.
            Some(b) if b.contains("dropbear") && has("posix-rename@openssh.com") => Family::OpenSsh,
            Some(_) => Family::Other,
            None if openssh_extensions => Family::OpenSsh,
            None => Family::Other,
        };
        let channels = match family {
            Family::OpenSsh => MAX_CHANNELS,
            Family::Other => 1,
        };
        // OpenSSH's server on Linux keeps a removed open file usable through its handles;
        // rclone's, Windows' and others drop it with its name.
        let hide_removed_open = family == Family::Other;
        let draft = banner.is_some_and(|b| b.to_ascii_lowercase().contains("asyncssh"));
        let symlink_order = if draft {
            SymlinkOrder::Draft
        } else {
            SymlinkOrder::OpenSsh
        };
        ServerProfile {
            banner: banner.map(str::to_owned),
            family,
            symlink_order: overrides.symlink_order.unwrap_or(symlink_order),
            channels: overrides
                .max_conns
                .unwrap_or(channels)
                .clamp(1, MAX_CHANNELS),
            hide_removed_open: overrides
                .hard_remove
                .map_or(hide_removed_open, |hard| !hard),
            forced: (
                overrides.symlink_order.is_some(),
                overrides.max_conns.is_some(),
                overrides.hard_remove.is_some(),
            ),
            fell_back: false,
        }
    }

    /// The session died while several channels were in use: on a server not known to take
    /// them (not OpenSSH's, several channels forced by `-o max_conns`), the pattern may be what
    /// crashed it (ProFTPD's mod_sftp reassembles packets of all channels in one buffer), so
    /// the next connection gets the safe one: one channel, writes in order, no file opened
    /// twice. `true` when this changed something (the caller says so, once).
    pub fn fall_back_after_crash(&mut self) -> bool {
        if self.family == Family::OpenSsh || self.channels <= 1 {
            return false;
        }
        self.channels = 1;
        self.fell_back = true;
        true
    }

    /// What sshfs-rs assumed before it knew servers differ, and what tests of our own
    /// server-less engine use: OpenSSH's server.
    pub fn openssh() -> ServerProfile {
        ServerProfile::decide(Some("SSH-2.0-OpenSSH"), &[], ServerOverrides::default())
    }

    /// One line for `-v` and `--stats`, e.g. `OpenSSH sftp-server (SSH-2.0-OpenSSH_9.2p1):
    /// channels=8 symlink-order=openssh removed-open=remove`.
    pub fn summary(&self) -> String {
        let family = match self.family {
            Family::OpenSsh => "OpenSSH sftp-server",
            Family::Other => "not OpenSSH",
        };
        let banner = self.banner.as_deref().unwrap_or("banner unknown");
        let forced = |f: bool| if f { " (forced)" } else { "" };
        let channels_why = if self.fell_back {
            " (after a crash)"
        } else {
            forced(self.forced.1)
        };
        let removed_open = if self.hide_removed_open {
            "hide"
        } else {
            "remove"
        };
        format!(
            "{family} ({banner}): channels={}{} symlink-order={}{} removed-open={removed_open}{}",
            self.channels,
            channels_why,
            self.symlink_order,
            forced(self.forced.0),
            forced(self.forced.2)
        )
    }
}

/// One line each for what a user will notice missing on this server (warned once at mount).
pub fn missing_features(extensions: &[String]) -> Vec<&'static str> {
    let has = |name: &str| extensions.iter().any(|e| e == name);
    let mut out = Vec::new();
    if !has("posix-rename@openssh.com") {
        out.push("the server has no posix-rename: a rename over an existing file is not atomic");
    }
    if !has("fsync@openssh.com") {
        out.push(
            "the server has no fsync: fsync() only makes sure the server process has the data",
        );
    }
    if !has("statvfs@openssh.com") {
        out.push("the server has no statvfs: df shows no sizes for this mount");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn openssh_by_its_banner_or_its_extensions() {
        let none = ServerOverrides::default();
        let p = ServerProfile::decide(Some("SSH-2.0-OpenSSH_7.4"), &[], none);
        assert_eq!((p.family, p.channels), (Family::OpenSsh, MAX_CHANNELS));
        assert_eq!(p.symlink_order, SymlinkOrder::OpenSsh);
        assert!(!p.hide_removed_open, "OpenSSH keeps a removed open file");
        let dropbear = ext(&["posix-rename@openssh.com", "fsync@openssh.com"]);
        let p = ServerProfile::decide(Some("SSH-2.0-dropbear_2022.83"), &dropbear, none);
        assert_eq!(p.family, Family::OpenSsh);
        let p = ServerProfile::decide(None, &ext(&["limits@openssh.com"]), none);
        assert_eq!(p.family, Family::OpenSsh);
    }

    #[test]
    fn other_servers_get_one_channel() {
        let none = ServerOverrides::default();
        // ProFTPD announces some of OpenSSH's extensions, but its banner says what it is.
        let proftpd = ext(&[
            "posix-rename@openssh.com",
            "fsync@openssh.com",
            "hardlink@openssh.com",
        ]);
        for banner in [Some("SSH-2.0-mod_sftp"), Some("SSH-2.0-Go"), None] {
            let p = ServerProfile::decide(banner, &proftpd, none);
            assert_eq!(p.family, Family::Other, "{banner:?}");
            assert_eq!(p.channels, 1);
            assert!(p.hide_removed_open);
            // Both read SYMLINK in OpenSSH's order.
            assert_eq!(p.symlink_order, SymlinkOrder::OpenSsh);
        }
        let p = ServerProfile::decide(Some("SSH-2.0-AsyncSSH_2.10.1"), &[], none);
        assert_eq!((p.channels, p.symlink_order), (1, SymlinkOrder::Draft));
    }

    #[test]
    fn overrides_win_and_are_named() {
        let o = ServerOverrides {
            max_conns: Some(2),
            symlink_order: Some(SymlinkOrder::OpenSsh),
            hard_remove: Some(true),
        };
        let p = ServerProfile::decide(Some("SSH-2.0-AsyncSSH_2.10"), &[], o);
        assert_eq!((p.channels, p.symlink_order), (2, SymlinkOrder::OpenSsh));
        assert!(!p.hide_removed_open);
        assert!(
            p.summary().contains("channels=2 (forced)"),
            "{}",
            p.summary()
        );
        assert!(
            p.summary().contains("removed-open=remove (forced)"),
            "{}",
            p.summary()
        );
        let many = ServerOverrides {
            max_conns: Some(99),
            symlink_order: None,
            hard_remove: Some(false),
        };
        let p = ServerProfile::decide(Some("SSH-2.0-OpenSSH_9.2"), &[], many);
        assert_eq!(p.channels, MAX_CHANNELS);
        assert!(p.hide_removed_open, "hard_remove=no hides even on OpenSSH");
        assert_eq!(SymlinkOrder::parse("draft"), Ok(SymlinkOrder::Draft));
        assert!(SymlinkOrder::parse("swapped").is_err());
    }

    #[test]
    fn a_crash_with_several_channels_falls_back_to_one_on_other_servers_only() {
        let four = ServerOverrides {
            max_conns: Some(4),
            ..ServerOverrides::default()
        };
        let mut p = ServerProfile::decide(Some("SSH-2.0-mod_sftp"), &[], four);
        assert_eq!(p.channels, 4);
        assert!(p.fall_back_after_crash());
        assert_eq!(p.channels, 1);
        assert!(!p.fall_back_after_crash(), "said once");
        assert!(
            p.summary().contains("channels=1 (after a crash)"),
            "{}",
            p.summary()
        );
        let mut p = ServerProfile::decide(Some("SSH-2.0-OpenSSH_9.2"), &[], four);
        assert!(!p.fall_back_after_crash(), "OpenSSH takes several channels");
        assert_eq!(p.channels, 4);
    }

    #[tokio::test]
    async fn symlink_goes_out_in_the_order_decided() {
        let server = crate::remote::fake_server::FakeServer::new(1);
        let sftp = server.connect().await;
        sftp.symlink("/r/link", "target").await.unwrap();
        let draft = ServerProfile::decide(
            Some("SSH-2.0-AsyncSSH_2.10"),
            &[],
            ServerOverrides::default(),
        );
        sftp.set_server(draft);
        sftp.symlink("/r/link2", "target2").await.unwrap();
        assert_eq!(
            server.symlinks(),
            [
                ("target".to_string(), "/r/link".to_string()),
                ("/r/link2".to_string(), "target2".to_string())
            ]
        );
    }

    #[test]
    fn missing_features_are_named_once_each() {
        assert_eq!(missing_features(&ext(&["hardlink@openssh.com"])).len(), 3);
        let all = ext(&[
            "posix-rename@openssh.com",
            "fsync@openssh.com",
            "statvfs@openssh.com",
        ]);
        assert!(missing_features(&all).is_empty());
    }
}
