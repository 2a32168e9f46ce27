//! The SFTP v3 wire format from the server's side (draft-ietf-secsh-filexfer-02, with
//! OpenSSH's extensions): requests decoded, answers encoded.
//!
//! Written apart from russh-sftp's codec on purpose: a bug in the client's encoding must show
//! as a wrong answer here, not be undone by the same code decoding it again.

/// `SSH_FXP_INIT`.
pub(super) const INIT: u8 = 1;
/// `SSH_FXP_VERSION`.
pub(super) const VERSION: u8 = 2;
const OPEN: u8 = 3;
const CLOSE: u8 = 4;
const READ: u8 = 5;
const WRITE: u8 = 6;
const LSTAT: u8 = 7;
const FSTAT: u8 = 8;
const SETSTAT: u8 = 9;
const FSETSTAT: u8 = 10;
const OPENDIR: u8 = 11;
const READDIR: u8 = 12;
const REMOVE: u8 = 13;
const MKDIR: u8 = 14;
const RMDIR: u8 = 15;
const REALPATH: u8 = 16;
const STAT: u8 = 17;
const RENAME: u8 = 18;
const READLINK: u8 = 19;
const SYMLINK: u8 = 20;
const STATUS: u8 = 101;
const HANDLE: u8 = 102;
const DATA: u8 = 103;
const NAME: u8 = 104;
const ATTRS: u8 = 105;
const EXTENDED: u8 = 200;
const EXTENDED_REPLY: u8 = 201;

/// `SSH_FXF_READ`.
pub(super) const FXF_READ: u32 = 0x01;
/// `SSH_FXF_WRITE`.
pub(super) const FXF_WRITE: u32 = 0x02;
/// `SSH_FXF_APPEND`.
pub(super) const FXF_APPEND: u32 = 0x04;
/// `SSH_FXF_CREAT`.
pub(super) const FXF_CREAT: u32 = 0x08;
/// `SSH_FXF_TRUNC`.
pub(super) const FXF_TRUNC: u32 = 0x10;
/// `SSH_FXF_EXCL`.
pub(super) const FXF_EXCL: u32 = 0x20;

const ATTR_SIZE: u32 = 0x1;
const ATTR_UIDGID: u32 = 0x2;
const ATTR_PERMISSIONS: u32 = 0x4;
const ATTR_ACMODTIME: u32 = 0x8;
const ATTR_EXTENDED: u32 = 0x8000_0000;

/// A packet that does not parse: OpenSSH's server ends the session (`fatal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Malformed;

/// Reads the fields of one packet.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader of `body`.
    pub(super) fn new(body: &'a [u8]) -> Self {
        Self { rest: body }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.rest.len() < n {
            return Err(Malformed);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// A `byte`.
    pub(super) fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    /// A `uint32`.
    pub(super) fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A `uint64`.
    pub(super) fn u64(&mut self) -> Result<u64, Malformed> {
        Ok((u64::from(self.u32()?) << 32) | u64::from(self.u32()?))
    }

    /// A `string` (bytes, not necessarily UTF-8).
    pub(super) fn string(&mut self) -> Result<Vec<u8>, Malformed> {
        let len = self.u32()? as usize;
        Ok(self.take(len)?.to_vec())
    }

    /// An `ATTRS` block (v3).
    pub(super) fn attrs(&mut self) -> Result<Attrs, Malformed> {
        let flags = self.u32()?;
        let mut a = Attrs::default();
        if flags & ATTR_SIZE != 0 {
            a.size = Some(self.u64()?);
        }
        if flags & ATTR_UIDGID != 0 {
            a.uid_gid = Some((self.u32()?, self.u32()?));
        }
        if flags & ATTR_PERMISSIONS != 0 {
            a.perm = Some(self.u32()?);
        }
        if flags & ATTR_ACMODTIME != 0 {
            a.times = Some((self.u32()?, self.u32()?));
        }
        if flags & ATTR_EXTENDED != 0 {
            // OpenSSH's decode_attrib reads and drops the extended pairs.
            for _ in 0..self.u32()? {
                self.string()?;
                self.string()?;
            }
        }
        Ok(a)
    }

    /// What is left of the packet.
    pub(super) fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

/// SFTP v3 file attributes; a field is `None` when its flag is not set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Attrs {
    /// `SSH_FILEXFER_ATTR_SIZE`.
    pub(super) size: Option<u64>,
    /// `SSH_FILEXFER_ATTR_UIDGID`.
    pub(super) uid_gid: Option<(u32, u32)>,
    /// `SSH_FILEXFER_ATTR_PERMISSIONS` (the whole st_mode in answers).
    pub(super) perm: Option<u32>,
    /// `SSH_FILEXFER_ATTR_ACMODTIME`: (atime, mtime).
    pub(super) times: Option<(u32, u32)>,
}

/// One request (the request id is kept apart), named after its packet (`SSH_FXP_OPEN`...),
/// with its fields as the draft lists them.
#[derive(Debug, Clone)]
pub(super) enum Request {
    Open {
        path: Vec<u8>,
        pflags: u32,
        attrs: Attrs,
    },
    Close {
        handle: Vec<u8>,
    },
    Read {
        handle: Vec<u8>,
        offset: u64,
        len: u32,
    },
    Write {
        handle: Vec<u8>,
        offset: u64,
        data: Vec<u8>,
    },
    Lstat {
        path: Vec<u8>,
    },
    Fstat {
        handle: Vec<u8>,
    },
    Setstat {
        path: Vec<u8>,
        attrs: Attrs,
    },
    Fsetstat {
        handle: Vec<u8>,
        attrs: Attrs,
    },
    Opendir {
        path: Vec<u8>,
    },
    Readdir {
        handle: Vec<u8>,
    },
    Remove {
        path: Vec<u8>,
    },
    Mkdir {
        path: Vec<u8>,
        attrs: Attrs,
    },
    Rmdir {
        path: Vec<u8>,
    },
    Realpath {
        path: Vec<u8>,
    },
    Stat {
        path: Vec<u8>,
    },
    Rename {
        from: Vec<u8>,
        to: Vec<u8>,
    },
    Readlink {
        path: Vec<u8>,
    },
    /// The two paths as sent: which is the target depends on the server (see
    /// [`super::personality::Personality::symlink_draft_order`]).
    Symlink {
        first: Vec<u8>,
        second: Vec<u8>,
    },
    /// `name` and the request's remaining bytes.
    Extended {
        name: Vec<u8>,
        data: Vec<u8>,
    },
}

impl Request {
    /// The request's name as OpenSSH's server names it (`sftp-server -Q requests`); an
    /// extended request by its extension name.
    pub(super) fn name(&self) -> String {
        match self {
            Request::Open { .. } => "open".into(),
            Request::Close { .. } => "close".into(),
            Request::Read { .. } => "read".into(),
            Request::Write { .. } => "write".into(),
            Request::Lstat { .. } => "lstat".into(),
            Request::Fstat { .. } => "fstat".into(),
            Request::Setstat { .. } => "setstat".into(),
            Request::Fsetstat { .. } => "fsetstat".into(),
            Request::Opendir { .. } => "opendir".into(),
            Request::Readdir { .. } => "readdir".into(),
            Request::Remove { .. } => "remove".into(),
            Request::Mkdir { .. } => "mkdir".into(),
            Request::Rmdir { .. } => "rmdir".into(),
            Request::Realpath { .. } => "realpath".into(),
            Request::Stat { .. } => "stat".into(),
            Request::Rename { .. } => "rename".into(),
            Request::Readlink { .. } => "readlink".into(),
            Request::Symlink { .. } => "symlink".into(),
            Request::Extended { name, .. } => String::from_utf8_lossy(name).into_owned(),
        }
    }
}

impl Request {
    /// The (first) path the request names, if it names one.
    pub(super) fn path(&self) -> Option<&[u8]> {
        match self {
            Request::Open { path, .. }
            | Request::Lstat { path }
            | Request::Stat { path }
            | Request::Setstat { path, .. }
            | Request::Opendir { path }
            | Request::Remove { path }
            | Request::Mkdir { path, .. }
            | Request::Rmdir { path }
            | Request::Realpath { path }
            | Request::Readlink { path } => Some(path),
            Request::Rename { from, .. } => Some(from),
            _ => None,
        }
    }
}

/// A packet from the client.
#[derive(Debug, Clone)]
pub(super) enum Incoming {
    /// `SSH_FXP_INIT` (OpenSSH answers version 3 whatever the client's is).
    Init,
    /// A request and its id.
    Request(u32, Request),
    /// A packet type the server does not know (OpenSSH logs it and answers nothing).
    Unknown(u8),
}

/// Decodes one packet body (after the length).
pub(super) fn decode(body: &[u8]) -> Result<Incoming, Malformed> {
    let mut r = Reader::new(body);
    let kind = r.u8()?;
    if kind == INIT {
        r.u32()?;
        return Ok(Incoming::Init);
    }
    let known = matches!(kind, OPEN..=SYMLINK | EXTENDED);
    if !known {
        return Ok(Incoming::Unknown(kind));
    }
    let id = r.u32()?;
    let request = match kind {
        OPEN => Request::Open {
            path: r.string()?,
            pflags: r.u32()?,
            attrs: r.attrs()?,
        },
        CLOSE => Request::Close {
            handle: r.string()?,
        },
        READ => Request::Read {
            handle: r.string()?,
            offset: r.u64()?,
            len: r.u32()?,
        },
        WRITE => Request::Write {
            handle: r.string()?,
            offset: r.u64()?,
            data: r.string()?,
        },
        LSTAT => Request::Lstat { path: r.string()? },
        FSTAT => Request::Fstat {
            handle: r.string()?,
        },
        SETSTAT => Request::Setstat {
            path: r.string()?,
            attrs: r.attrs()?,
        },
        FSETSTAT => Request::Fsetstat {
            handle: r.string()?,
            attrs: r.attrs()?,
        },
        OPENDIR => Request::Opendir { path: r.string()? },
        READDIR => Request::Readdir {
            handle: r.string()?,
        },
        REMOVE => Request::Remove { path: r.string()? },
        MKDIR => Request::Mkdir {
            path: r.string()?,
            attrs: r.attrs()?,
        },
        RMDIR => Request::Rmdir { path: r.string()? },
        REALPATH => Request::Realpath { path: r.string()? },
        STAT => Request::Stat { path: r.string()? },
        RENAME => Request::Rename {
            from: r.string()?,
            to: r.string()?,
        },
        READLINK => Request::Readlink { path: r.string()? },
        SYMLINK => Request::Symlink {
            first: r.string()?,
            second: r.string()?,
        },
        _ => Request::Extended {
            name: r.string()?,
            data: r.rest().to_vec(),
        },
    };
    Ok(Incoming::Request(id, request))
}

/// One entry of a NAME answer.
#[derive(Debug, Clone)]
pub(super) struct NameEntry {
    /// The file name (or the path, for REALPATH and READLINK).
    pub(super) name: Vec<u8>,
    /// The `ls -l` line (the same as `name` for REALPATH and READLINK).
    pub(super) longname: Vec<u8>,
    /// The attributes (none for REALPATH and READLINK).
    pub(super) attrs: Attrs,
}

/// An answer to one request.
#[derive(Debug, Clone)]
pub(super) enum Reply {
    /// `SSH_FXP_STATUS`: the code and its message.
    Status(u32, String),
    /// `SSH_FXP_HANDLE`.
    Handle(Vec<u8>),
    /// `SSH_FXP_DATA`.
    Data(Vec<u8>),
    /// `SSH_FXP_NAME`.
    Name(Vec<NameEntry>),
    /// `SSH_FXP_ATTRS`.
    Attrs(Attrs),
    /// The body of an `SSH_FXP_EXTENDED_REPLY` after the id.
    Extended(Vec<u8>),
}

/// Builds the bytes of one packet.
#[derive(Default)]
pub(super) struct Writer {
    out: Vec<u8>,
}

impl Writer {
    /// A `byte`.
    pub(super) fn u8(&mut self, v: u8) -> &mut Self {
        self.out.push(v);
        self
    }

    /// A `uint32`.
    pub(super) fn u32(&mut self, v: u32) -> &mut Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A `uint64`.
    pub(super) fn u64(&mut self, v: u64) -> &mut Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A `string`.
    pub(super) fn string(&mut self, s: &[u8]) -> &mut Self {
        self.u32(s.len() as u32);
        self.out.extend_from_slice(s);
        self
    }

    /// An `ATTRS` block: only the fields that are set.
    pub(super) fn attrs(&mut self, a: &Attrs) -> &mut Self {
        let mut flags = 0;
        flags |= if a.size.is_some() { ATTR_SIZE } else { 0 };
        flags |= if a.uid_gid.is_some() { ATTR_UIDGID } else { 0 };
        flags |= if a.perm.is_some() {
            ATTR_PERMISSIONS
        } else {
            0
        };
        flags |= if a.times.is_some() { ATTR_ACMODTIME } else { 0 };
        self.u32(flags);
        if let Some(size) = a.size {
            self.u64(size);
        }
        if let Some((uid, gid)) = a.uid_gid {
            self.u32(uid).u32(gid);
        }
        if let Some(perm) = a.perm {
            self.u32(perm);
        }
        if let Some((atime, mtime)) = a.times {
            self.u32(atime).u32(mtime);
        }
        self
    }

    /// The bytes written so far.
    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.out
    }
}

/// The whole packet (length included) answering request `id` with `reply`.
pub(super) fn encode(id: u32, reply: &Reply) -> Vec<u8> {
    let mut w = Writer::default();
    match reply {
        Reply::Status(code, message) => {
            w.u8(STATUS).u32(id).u32(*code);
            w.string(message.as_bytes()).string(b"");
        }
        Reply::Handle(h) => {
            w.u8(HANDLE).u32(id).string(h);
        }
        Reply::Data(d) => {
            w.u8(DATA).u32(id).string(d);
        }
        Reply::Name(entries) => {
            w.u8(NAME).u32(id).u32(entries.len() as u32);
            for e in entries {
                w.string(&e.name).string(&e.longname).attrs(&e.attrs);
            }
        }
        Reply::Attrs(a) => {
            w.u8(ATTRS).u32(id).attrs(a);
        }
        Reply::Extended(body) => {
            w.u8(EXTENDED_REPLY).u32(id);
            w.out.extend_from_slice(body);
        }
    }
    framed(w.into_bytes())
}

/// The VERSION packet (length included) announcing `extensions` (name, version).
pub(super) fn version(extensions: &[(&str, &str)]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(VERSION).u32(3);
    for (name, version) in extensions {
        w.string(name.as_bytes()).string(version.as_bytes());
    }
    framed(w.into_bytes())
}

fn framed(body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_round_trip() {
        let a = Attrs {
            size: Some(1 << 40),
            uid_gid: Some((1, 2)),
            perm: Some(0o100644),
            times: Some((3, 4)),
        };
        let mut w = Writer::default();
        w.attrs(&a);
        let bytes = w.into_bytes();
        assert_eq!(Reader::new(&bytes).attrs(), Ok(a));
    }

    #[test]
    fn a_truncated_packet_is_malformed() {
        let mut w = Writer::default();
        w.u8(3).u32(7).string(b"/a");
        assert!(decode(&w.into_bytes()).is_err(), "OPEN without pflags");
    }

    #[test]
    fn unknown_packet_types_are_reported() {
        assert!(matches!(
            decode(&[99, 0, 0, 0, 1]),
            Ok(Incoming::Unknown(99))
        ));
    }
}
