//! The `ls -l` style long name of a READDIR entry, as OpenSSH's `ls_file` writes it
//! ("-rw-r--r--    1 root     root            5 Jan  2 03:04 name"). Clients parse it: ours
//! reads the link count from its second field. Times are shown in UTC.

use super::namespace::Stat;

/// Half a year, in seconds: older (or future) times show the year instead of the time of day.
const HALF_YEAR: u64 = 365 * 24 * 60 * 60 / 2;

/// `ls_file(name, st, 0, 0, NULL, NULL)`: `names` gives the user and group names
/// (`user_from_uid`, `group_from_gid`: the number when there is none).
pub(super) fn long_name(
    name: &[u8],
    st: &Stat,
    now: u64,
    names: impl Fn(u32, bool) -> Option<String>,
) -> Vec<u8> {
    let user = names(st.uid, true).unwrap_or_else(|| st.uid.to_string());
    let group = names(st.gid, false).unwrap_or_else(|| st.gid.to_string());
    let recent = now.saturating_sub(HALF_YEAR) < st.mtime && now >= st.mtime;
    let line = format!(
        "{} {:>3} {:<8} {:<8} {:>8} {} ",
        strmode(st.mode),
        st.nlink,
        user,
        group,
        st.size,
        date(st.mtime, recent)
    );
    let mut out = line.into_bytes();
    out.extend_from_slice(name);
    out
}

/// OpenBSD's `strmode`: the type, the nine permission characters and a space.
fn strmode(mode: u32) -> String {
    let kind = match mode & libc::S_IFMT {
        libc::S_IFDIR => 'd',
        libc::S_IFLNK => 'l',
        libc::S_IFCHR => 'c',
        libc::S_IFBLK => 'b',
        libc::S_IFIFO => 'p',
        libc::S_IFSOCK => 's',
        _ => '-',
    };
    let bit = |b: u32, c: char| if mode & b != 0 { c } else { '-' };
    let special = |x: u32, s: u32, set: char, unset: char| match (mode & x != 0, mode & s != 0) {
        (true, true) => set,
        (false, true) => unset,
        (true, false) => 'x',
        (false, false) => '-',
    };
    [
        kind,
        bit(libc::S_IRUSR, 'r'),
        bit(libc::S_IWUSR, 'w'),
        special(libc::S_IXUSR, libc::S_ISUID, 's', 'S'),
        bit(libc::S_IRGRP, 'r'),
        bit(libc::S_IWGRP, 'w'),
        special(libc::S_IXGRP, libc::S_ISGID, 's', 'S'),
        bit(libc::S_IROTH, 'r'),
        bit(libc::S_IWOTH, 'w'),
        special(libc::S_IXOTH, libc::S_ISVTX, 't', 'T'),
        ' ',
    ]
    .iter()
    .collect()
}

/// `strftime("%b %e %H:%M")` (recent) or `("%b %e  %Y")`, in UTC.
fn date(t: u64, recent: bool) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (t / 86_400) as i64;
    let secs = t % 86_400;
    let (year, month, day) = civil_from_days(days);
    let month = MONTHS[(month - 1) as usize];
    if recent {
        format!(
            "{month} {day:>2} {:02}:{:02}",
            secs / 3600,
            secs % 3600 / 60
        )
    } else {
        format!("{month} {day:>2}  {year}")
    }
}

/// (year, month 1..=12, day 1..=31) of a day count since 1970-01-01 (Howard Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_openssh_writes_it() {
        let st = Stat {
            ino: 5,
            mode: libc::S_IFREG | 0o4755,
            nlink: 2,
            uid: 0,
            gid: 1000,
            size: 5,
            atime: 0,
            mtime: 1_700_000_000,
            ctime: 0,
        };
        let names = |id: u32, _user: bool| (id == 0).then(|| "root".to_owned());
        let line = long_name(b"a", &st, 1_700_000_100, names);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "-rwsr-xr-x    2 root     1000            5 Nov 14 22:13 a"
        );
        let old = long_name(b"b", &st, 1_800_000_000, names);
        assert!(String::from_utf8(old).unwrap().contains("Nov 14  2023 b"));
        assert_eq!(strmode(libc::S_IFDIR | 0o1777), "drwxrwxrwt ");
    }
}
