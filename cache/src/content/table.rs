//! The block table of one cached file (`<key>.meta`): which blocks of its sparse data file
//! hold the file's bytes, and the checksum of every chunk of them.
//!
//! Format (version [`VERSION`], little endian): the magic `SSHFSRSC`, the version (u32), the
//! remote path (u32 length, bytes), the file's identity when it was cached (size u64, mtime
//! u64) and the local time it was cached at (u64 seconds), then the blocks (u32 count; each:
//! index u32, length u32, one CRC32 per [`CHUNK`] of it), and last a CRC32 of everything
//! before it. A table that is short, of another version, or whose last CRC does not match is
//! no table: the entry is dropped (it holds only clean copies of the server's bytes, so
//! dropping loses nothing). It is written to a temporary file and renamed over the old one, so
//! a crash leaves the old table or the new one, never a mix.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use super::{BLOCK, CHUNK};

/// The magic at the start of every table.
const MAGIC: &[u8; 8] = b"SSHFSRSC";
/// The format version written and the only one read.
pub const VERSION: u32 = 1;

/// One cached file's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The file's path under the mount's remote root.
    pub path: String,
    /// Its size when cached.
    pub size: u64,
    /// Its modification time (seconds) when cached.
    pub mtime: u64,
    /// When it was cached (local seconds since the epoch).
    pub cached_at: u64,
    /// The blocks present, by index: the CRC32 of each chunk.
    pub blocks: BTreeMap<u32, Vec<u32>>,
}

impl Table {
    /// The bytes of the table.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.path.len() + self.blocks.len() * 80);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.path.len() as u32).to_le_bytes());
        out.extend_from_slice(self.path.as_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.mtime.to_le_bytes());
        out.extend_from_slice(&self.cached_at.to_le_bytes());
        out.extend_from_slice(&(self.blocks.len() as u32).to_le_bytes());
        for (index, crcs) in &self.blocks {
            let len = block_len(self.size, *index);
            out.extend_from_slice(&index.to_le_bytes());
            out.extend_from_slice(&(len as u32).to_le_bytes());
            for crc in crcs {
                out.extend_from_slice(&crc.to_le_bytes());
            }
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// The table in `bytes`; `None` if they are not a whole table of this version.
    pub fn decode(bytes: &[u8]) -> Option<Table> {
        let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
        if crc32fast::hash(body).to_le_bytes() != crc {
            return None;
        }
        let mut r = Reader(body);
        if r.take(8)? != MAGIC || r.u32()? != VERSION {
            return None;
        }
        let path_len = r.u32()? as usize;
        let path = String::from_utf8(r.take(path_len)?.to_vec()).ok()?;
        let (size, mtime, cached_at) = (r.u64()?, r.u64()?, r.u64()?);
        let count = r.u32()?;
        let mut blocks = BTreeMap::new();
        for _ in 0..count {
            let index = r.u32()?;
            let len = u64::from(r.u32()?);
            if len == 0 || len != block_len(size, index) {
                return None;
            }
            let crcs = (0..chunks_in(len))
                .map(|_| r.u32())
                .collect::<Option<Vec<_>>>()?;
            blocks.insert(index, crcs);
        }
        if !r.0.is_empty() {
            return None;
        }
        Some(Table {
            path,
            size,
            mtime,
            cached_at,
            blocks,
        })
    }

    /// Writes the table to `path` through a temporary file renamed over it (no fsync: a table
    /// lost in a crash only loses cached copies, and a torn one fails its CRC).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let tmp = path.with_extension("meta.tmp");
        write_private(&tmp, &self.encode())?;
        std::fs::rename(&tmp, path)
    }

    /// The table saved at `path`; `None` if there is none or it is not whole.
    pub fn load(path: &Path) -> Option<Table> {
        Table::decode(&std::fs::read(path).ok()?)
    }
}

/// Writes `bytes` to a new file `path` readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

/// The length of block `index` of a file of `size` bytes (0 past its end).
pub fn block_len(size: u64, index: u32) -> u64 {
    let start = u64::from(index) * BLOCK;
    size.saturating_sub(start).min(BLOCK)
}

/// How many chunks a block of `len` bytes has.
pub fn chunks_in(len: u64) -> u64 {
    len.div_ceil(CHUNK)
}

/// The CRC32 of each chunk of `block`.
pub fn checksums(block: &[u8]) -> Vec<u32> {
    block.chunks(CHUNK as usize).map(crc32fast::hash).collect()
}

/// A cursor over the table's bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}
