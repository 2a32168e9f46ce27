//! A regular file's bytes, sparse: only the 4 KiB blocks that were written are allocated, so a
//! write far past the end (or a truncate up) costs nothing for the hole, which reads as zeros,
//! as on a real filesystem. Allocated blocks are also what a quota counts.

use std::collections::BTreeMap;

/// The allocation unit (and `f_bsize` in statvfs answers).
pub(crate) const BLOCK: u64 = 4096;

/// A file's content: its size and the blocks that hold data.
#[derive(Debug, Clone, Default)]
pub(crate) struct Content {
    size: u64,
    blocks: BTreeMap<u64, Box<[u8]>>,
}

impl Content {
    /// The file's size.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Blocks allocated.
    pub(crate) fn blocks(&self) -> u64 {
        self.blocks.len() as u64
    }

    /// Up to `len` bytes at `offset` (fewer at the end of the file, none past it).
    pub(crate) fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        if offset >= self.size {
            return Vec::new();
        }
        let end = self.size.min(offset.saturating_add(len as u64));
        let mut out = vec![0; (end - offset) as usize];
        let first = offset / BLOCK;
        let last = (end - 1) / BLOCK;
        for (&index, block) in self.blocks.range(first..=last) {
            let start = index * BLOCK;
            let from = offset.max(start);
            let to = end.min(start + BLOCK);
            out[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&block[(from - start) as usize..(to - start) as usize]);
        }
        out
    }

    /// Writes `data` at `offset`, allocating at most `budget` new blocks (taken from it).
    /// Returns how many bytes were written: all of them, or those before the first block that
    /// could not be allocated (a disk that filled up in the middle of a write).
    pub(crate) fn write(&mut self, offset: u64, data: &[u8], budget: &mut u64) -> usize {
        let mut written = 0usize;
        while written < data.len() {
            let at = offset + written as u64;
            let index = at / BLOCK;
            let within = (at % BLOCK) as usize;
            let n = (BLOCK as usize - within).min(data.len() - written);
            let block = match self.blocks.entry(index) {
                std::collections::btree_map::Entry::Occupied(b) => b.into_mut(),
                std::collections::btree_map::Entry::Vacant(_) if *budget == 0 => break,
                std::collections::btree_map::Entry::Vacant(v) => {
                    *budget -= 1;
                    v.insert(vec![0; BLOCK as usize].into_boxed_slice())
                }
            };
            block[within..within + n].copy_from_slice(&data[written..written + n]);
            written += n;
        }
        self.size = self.size.max(offset + written as u64);
        written
    }

    /// Sets the size: blocks wholly past it are freed (their number is returned), the tail of
    /// the last one is zeroed (so growing the file again shows zeros); growing allocates
    /// nothing.
    pub(crate) fn truncate(&mut self, size: u64) -> u64 {
        let keep = size.div_ceil(BLOCK);
        let gone = self.blocks.split_off(&keep);
        if !size.is_multiple_of(BLOCK)
            && let Some(block) = self.blocks.get_mut(&(size / BLOCK))
        {
            block[(size % BLOCK) as usize..].fill(0);
        }
        self.size = size;
        gone.len() as u64
    }

    /// The allocated blocks: (index, its 4 KiB).
    pub(crate) fn allocated(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.blocks.iter().map(|(i, b)| (*i, &b[..]))
    }

    /// The bytes of block `index` (`None`: a hole, zeros).
    pub(crate) fn block(&self, index: u64) -> Option<&[u8]> {
        self.blocks.get(&index).map(|b| &b[..])
    }

    /// The whole content.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        self.read(0, usize::try_from(self.size).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_past_the_end_leaves_an_unallocated_hole() {
        let mut c = Content::default();
        let mut budget = u64::MAX;
        assert_eq!(c.write(1 << 40, b"end", &mut budget), 3);
        assert_eq!(c.size(), (1 << 40) + 3);
        assert_eq!(c.blocks(), 1);
        assert_eq!(c.read((1 << 40) - 2, 10), b"\0\0end");
    }

    #[test]
    fn truncate_down_then_up_reads_zeros() {
        let mut c = Content::default();
        let mut budget = u64::MAX;
        c.write(0, &[7; 10_000], &mut budget);
        assert_eq!(c.blocks(), 3);
        assert_eq!(c.truncate(5000), 1);
        c.truncate(9000);
        let back = c.read(0, 9000);
        assert!(back[..5000].iter().all(|&b| b == 7));
        assert!(back[5000..].iter().all(|&b| b == 0));
    }

    #[test]
    fn a_full_budget_stops_the_write_at_a_block() {
        let mut c = Content::default();
        let mut budget = 1;
        assert_eq!(c.write(100, &[1; 8000], &mut budget), 3996);
        assert_eq!(c.size(), 4096);
        assert_eq!(budget, 0);
    }
}
