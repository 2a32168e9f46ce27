//! docs/errno.md's first table against `client/src/fs/errno.rs`: every SFTP status code and
//! every other kind of `SftpError` gives the errno the table says, and the table names no
//! mapping the code does not make.

use sshfs_client::fs::errno::{FsError, errno_for_status};
use sshfs_client::remote::sftp::{FX_FAILURE, SftpError};

use super::{doc, table_rows, ticked};

/// SFTP v3's codes by the names the table uses (draft-ietf-secsh-filexfer-02; fixed by the
/// protocol). The later drafts' codes are given by number in the table itself.
const V3_CODES: [(&str, u32); 8] = [
    ("EOF", 1),
    ("NO_SUCH_FILE", 2),
    ("PERMISSION_DENIED", 3),
    ("FAILURE", 4),
    ("BAD_MESSAGE", 5),
    ("NO_CONNECTION", 6),
    ("CONNECTION_LOST", 7),
    ("OP_UNSUPPORTED", 8),
];

/// The errno names the table may use.
const ERRNOS: [(&str, i32); 24] = [
    ("EACCES", libc::EACCES),
    ("EAGAIN", libc::EAGAIN),
    ("EBADF", libc::EBADF),
    ("EBUSY", libc::EBUSY),
    ("ECONNABORTED", libc::ECONNABORTED),
    ("EDQUOT", libc::EDQUOT),
    ("EEXIST", libc::EEXIST),
    ("EINTR", libc::EINTR),
    ("EINVAL", libc::EINVAL),
    ("EIO", libc::EIO),
    ("EISDIR", libc::EISDIR),
    ("ELOOP", libc::ELOOP),
    ("ENAMETOOLONG", libc::ENAMETOOLONG),
    ("ENOENT", libc::ENOENT),
    ("ENOLCK", libc::ENOLCK),
    ("ENOMEDIUM", libc::ENOMEDIUM),
    ("ENOSPC", libc::ENOSPC),
    ("ENOSYS", libc::ENOSYS),
    ("ENOTCONN", libc::ENOTCONN),
    ("ENOTDIR", libc::ENOTDIR),
    ("ENOTEMPTY", libc::ENOTEMPTY),
    ("EOPNOTSUPP", libc::EOPNOTSUPP),
    ("EPERM", libc::EPERM),
    ("EROFS", libc::EROFS),
];

/// An errno's name, for messages.
fn name_of(errno: i32) -> String {
    ERRNOS
        .iter()
        .find(|(_, e)| *e == errno)
        .map_or_else(|| errno.to_string(), |(n, _)| (*n).to_owned())
}

/// The table's row for each kind of failure that is not a status code, by the words its first
/// cell starts with. The match has no wildcard: a new kind of `SftpError` does not compile
/// here until the table has a row for it.
fn row_of(e: &SftpError) -> &'static str {
    match e {
        SftpError::Status { .. } => "a reply that does not decode",
        SftpError::Timeout(_) => "no answer within the deadline",
        SftpError::Transport(_) => "transport failure",
        SftpError::HandleClosed => "a request on a handle closed meanwhile",
        SftpError::Protocol(_) => "an answer that makes no sense",
        SftpError::Lost(_) => "an open file lost in a reconnect",
    }
}

/// One of each kind of failure that is not a status the server chose.
fn failures() -> Vec<SftpError> {
    vec![
        // What the vendored russh-sftp makes of a reply that does not decode.
        SftpError::Status {
            code: FX_FAILURE,
            message: "malformed reply from the server: bad".into(),
        },
        SftpError::Timeout(std::time::Duration::from_secs(60)),
        SftpError::Transport("stream ended".into()),
        SftpError::HandleClosed,
        SftpError::Protocol("a NAME with no entries".into()),
        SftpError::Lost("removed on the server".into()),
    ]
}

/// Rows the fs layer answers outside errno.rs's mapping, by the words their first cell starts
/// with (checked elsewhere: the FUSE layer's INTERRUPT registry).
const ANSWERED_ELSEWHERE: [&str; 1] = ["request interrupted by a signal"];

/// The errno a row's second cell names (its first backticked word).
fn errno_of(row: &[String]) -> Result<i32, String> {
    let cell = row.get(1).ok_or(format!("row {row:?} has no errno cell"))?;
    let name = ticked(cell)
        .into_iter()
        .next()
        .ok_or(format!("row {row:?}: no `E...` in its errno cell"))?;
    ERRNOS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, e)| *e)
        .ok_or(format!(
            "row {row:?}: unknown errno {name} (add it to ERRNOS)"
        ))
}

/// The status codes a row names: its backticked names (v3's by name, later ones by the
/// numbers in parentheses), empty for a row that is not about status codes.
fn codes_of(first: &str) -> Result<Vec<u32>, String> {
    let names: Vec<String> = ticked(first)
        .into_iter()
        .filter(|n| n.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect();
    let numbers: Vec<u32> = match (first.find('('), first.find(')')) {
        (Some(open), Some(close)) if open < close => first[open + 1..close]
            .split(',')
            .map(|n| n.trim().parse::<u32>().map_err(|e| format!("{first}: {e}")))
            .collect::<Result<_, _>>()?,
        _ => Vec::new(),
    };
    if !numbers.is_empty() {
        if numbers.len() != names.len() {
            return Err(format!(
                "{first}: {} names, {} codes",
                names.len(),
                numbers.len()
            ));
        }
        return Ok(numbers);
    }
    names
        .iter()
        .map(|n| {
            V3_CODES
                .iter()
                .find(|(name, _)| name == n)
                .map(|(_, c)| *c)
                .ok_or(format!("{first}: {n} is not a v3 code: give its number"))
        })
        .collect()
}

#[test]
fn errno_md_says_what_errno_rs_does() {
    let text = doc("docs/errno.md");
    let rows = table_rows(&text, "| SFTP status | errno | note |");
    assert!(
        rows.len() > 10,
        "docs/errno.md: the status table was not found"
    );
    let mut wrong = Vec::new();
    let mut listed = std::collections::BTreeMap::new();
    let mut other_code = None;
    let mut failure_rows = Vec::new();
    for row in &rows {
        let first = row[0].as_str();
        let errno = match errno_of(row) {
            Ok(e) => e,
            Err(e) => {
                wrong.push(e);
                continue;
            }
        };
        if first.starts_with("any other code") {
            other_code = Some(errno);
            continue;
        }
        if ANSWERED_ELSEWHERE.iter().any(|w| first.starts_with(w)) {
            continue;
        }
        if let Some(e) = failures().iter().find(|e| first.starts_with(row_of(e))) {
            failure_rows.push(row_of(e));
            let code_says = FsError::from(e.clone()).errno;
            if code_says != errno {
                wrong.push(format!(
                    "{first}: the table says {}, errno.rs gives {}",
                    name_of(errno),
                    name_of(code_says)
                ));
            }
            continue;
        }
        match codes_of(first) {
            Ok(codes) if codes.is_empty() => wrong.push(format!(
                "{first}: a row the test does not know (no status code)"
            )),
            Ok(codes) => {
                for code in codes {
                    listed.insert(code, errno);
                }
            }
            Err(e) => wrong.push(e),
        }
    }
    for e in failures() {
        if !failure_rows.contains(&row_of(&e)) {
            wrong.push(format!("no row starts with \"{}\" ({e:?})", row_of(&e)));
        }
    }
    let other_code = other_code.unwrap_or_else(|| {
        wrong.push("no row \"any other code\"".into());
        libc::EIO
    });
    // Every code the table names, and every other code up to well past the last draft's.
    for code in 1..=64 {
        let says = listed.get(&code).copied().unwrap_or(other_code);
        let gives = errno_for_status(code);
        if says != gives {
            wrong.push(format!(
                "status {code}: the table says {}, errno_for_status gives {}",
                name_of(says),
                name_of(gives)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/errno.md and client/src/fs/errno.rs disagree:\n  {}",
        wrong.join("\n  ")
    );
}
