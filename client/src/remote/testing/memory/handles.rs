//! One session's handle table, numbered as OpenSSH's `sftp-server` numbers it.
//!
//! A handle is a 4-byte big-endian index into a table that grows by one slot when no slot is
//! free. A closed slot goes on top of a free list and the next OPEN or OPENDIR takes the top:
//! the handle just closed is the next one given out (after CLOSE of 13, the next OPEN gets 13),
//! so a late request on an old handle string reaches whatever holds that number now. A handle
//! string of another length, or naming a free slot, is a handle the server does not hold.

use super::namespace::Ino;

/// An open file or directory.
#[derive(Debug, Clone)]
pub(super) enum Open {
    /// A file opened with OPEN (a directory opened read-only is one too, as with open(2)).
    File(OpenFile),
    /// A directory opened with OPENDIR.
    Dir(OpenDir),
}

impl Open {
    /// The inode it holds open.
    pub(super) fn ino(&self) -> Ino {
        match self {
            Open::File(f) => f.ino,
            Open::Dir(d) => d.ino,
        }
    }
}

/// A file handle.
#[derive(Debug, Clone)]
pub(super) struct OpenFile {
    /// The inode.
    pub(super) ino: Ino,
    /// The path as the OPEN named it.
    pub(super) path: Vec<u8>,
    /// Opened for reading.
    pub(super) read: bool,
    /// Opened for writing.
    pub(super) write: bool,
    /// O_APPEND: every write goes to the end.
    pub(super) append: bool,
    /// Where this handle's writes have got to (for
    /// [`super::Personality::writes_in_order`]).
    pub(super) next_write: u64,
}

/// A directory handle and how far READDIR got.
#[derive(Debug, Clone)]
pub(super) struct OpenDir {
    /// The directory's inode.
    pub(super) ino: Ino,
    /// The path as the OPENDIR named it.
    pub(super) path: Vec<u8>,
    /// `.` and `..` given (0, 1 or 2 of them).
    pub(super) dots: u8,
    /// The last name given; the next page starts after it (names made meanwhile after it
    /// show, names removed meanwhile do not, as with a real directory stream).
    pub(super) after: Option<Vec<u8>>,
}

/// The handles of one session.
#[derive(Debug, Default)]
pub(super) struct Handles {
    slots: Vec<Option<Open>>,
    /// Free slots, the next one to give out last.
    free: Vec<u32>,
}

impl Handles {
    /// Stores `open` and returns its handle string.
    pub(super) fn insert(&mut self, open: Open) -> Vec<u8> {
        let n = match self.free.pop() {
            Some(n) => n,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        if let Some(slot) = self.slots.get_mut(n as usize) {
            *slot = Some(open);
        }
        n.to_be_bytes().to_vec()
    }

    /// The slot a handle string names, if it holds something.
    pub(super) fn number(&self, handle: &[u8]) -> Option<u32> {
        let bytes: [u8; 4] = handle.try_into().ok()?;
        let n = u32::from_be_bytes(bytes);
        self.slots.get(n as usize)?.as_ref().map(|_| n)
    }

    /// What `handle` holds.
    pub(super) fn get(&self, handle: &[u8]) -> Option<&Open> {
        let n = self.number(handle)?;
        self.slots.get(n as usize)?.as_ref()
    }

    /// What `handle` holds, to change it.
    pub(super) fn get_mut(&mut self, handle: &[u8]) -> Option<&mut Open> {
        let n = self.number(handle)?;
        self.slots.get_mut(n as usize)?.as_mut()
    }

    /// Closes `handle`: its slot is the next one given out.
    pub(super) fn remove(&mut self, handle: &[u8]) -> Option<Open> {
        let n = self.number(handle)?;
        let open = self.slots.get_mut(n as usize)?.take();
        self.free.push(n);
        open
    }

    /// Handles open.
    pub(super) fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Closes every handle (the session ended).
    pub(super) fn drain(&mut self) -> Vec<Open> {
        self.free.clear();
        std::mem::take(&mut self.slots)
            .into_iter()
            .flatten()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(ino: Ino) -> Open {
        Open::File(OpenFile {
            ino,
            path: Vec::new(),
            read: true,
            write: false,
            append: false,
            next_write: 0,
        })
    }

    /// OpenSSH's free list: the most recently closed slot is reused first.
    #[test]
    fn the_slot_closed_last_is_given_out_first() {
        let mut h = Handles::default();
        let a = h.insert(file(1));
        let b = h.insert(file(2));
        let c = h.insert(file(3));
        assert_eq!(
            (a.clone(), b.clone(), c.clone()),
            (vec![0, 0, 0, 0], vec![0, 0, 0, 1], vec![0, 0, 0, 2])
        );
        h.remove(&a);
        h.remove(&c);
        assert_eq!(h.insert(file(4)), c);
        assert_eq!(h.insert(file(5)), a);
        assert_eq!(h.insert(file(6)), vec![0, 0, 0, 3]);
        assert!(h.get(&[0, 0, 0, 9]).is_none());
        assert!(h.get(&[0, 0, 1]).is_none(), "a handle string of 3 bytes");
        assert_eq!(h.len(), 4);
    }
}
