//! Reading a `--save` file from its end, line by line, newest first.
//!
//! A log grows to gigabytes, and a restart needs only its last few thousand records (the
//! last event id and the recent history), so [`TailReader`] seeks to the end and reads
//! backwards in blocks of [`BLOCK`] bytes, never more than it needs.

use std::io::{self, Read, Seek, SeekFrom};

/// Bytes read per step backwards.
pub const BLOCK: usize = 64 * 1024;

/// Yields the lines of a file from the last to the first.
pub struct TailReader<R> {
    file: R,
    /// File offset of the first byte in `pending`.
    pos: u64,
    /// Bytes between `pos` and the start of the last line returned, not yet split.
    pending: Vec<u8>,
    /// Set once the first line of the file has been returned.
    done: bool,
    /// Whether the block at the end has been read (its final newline ends the last
    /// line rather than starting an empty one).
    started: bool,
    bytes_read: u64,
}

impl<R: Read + Seek> TailReader<R> {
    pub fn new(mut file: R) -> io::Result<TailReader<R>> {
        let pos = file.seek(SeekFrom::End(0))?;
        // An empty file has no lines at all (not one empty line).
        let done = pos == 0;
        Ok(TailReader { file, pos, pending: Vec::new(), done, started: false, bytes_read: 0 })
    }

    /// Bytes read from the file so far: what a restart costs, whatever the file's size.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The line before the last one returned (without its `\n`), or `None` once the
    /// start of the file is reached.
    pub fn prev_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(at) = self.pending.iter().rposition(|&b| b == b'\n') {
                let line = self.pending.split_off(at + 1);
                self.pending.truncate(at);
                return Ok(Some(line));
            }
            if self.pos == 0 {
                if self.done {
                    return Ok(None);
                }
                self.done = true;
                return Ok(Some(std::mem::take(&mut self.pending)));
            }
            self.read_block()?;
        }
    }

    /// Prepends the block before `pos` to `pending`.
    fn read_block(&mut self) -> io::Result<()> {
        let n = (self.pos as usize).min(BLOCK);
        self.pos -= n as u64;
        self.file.seek(SeekFrom::Start(self.pos))?;
        let mut block = vec![0u8; n];
        self.file.read_exact(&mut block)?;
        self.bytes_read += n as u64;
        if !self.started {
            self.started = true;
            if block.last() == Some(&b'\n') {
                block.pop();
            }
            if block.is_empty() && self.pos == 0 {
                // An empty file, or one newline: no lines at all.
                self.done = true;
            }
        }
        block.extend_from_slice(&self.pending);
        self.pending = block;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn all(bytes: &[u8]) -> Vec<String> {
        let mut r = TailReader::new(Cursor::new(bytes.to_vec())).unwrap();
        let mut out = Vec::new();
        while let Some(line) = r.prev_line().unwrap() {
            out.push(String::from_utf8(line).unwrap());
        }
        out
    }

    #[test]
    fn lines_come_newest_first() {
        assert_eq!(all(b"a\nbb\nccc\n"), ["ccc", "bb", "a"]);
        assert_eq!(all(b"a\nbb\nccc"), ["ccc", "bb", "a"]);
        assert_eq!(all(b"a\n\nb\n"), ["b", "", "a"]);
        assert!(all(b"").is_empty());
        assert!(all(b"\n").is_empty());
    }

    #[test]
    fn lines_across_blocks_are_whole() {
        let line = "x".repeat(BLOCK / 3 + 7);
        let text: String = (0..10).map(|i| format!("{i}{line}\n")).collect();
        let got = all(text.as_bytes());
        assert_eq!(got.len(), 10);
        for (i, l) in got.iter().enumerate() {
            assert_eq!(*l, format!("{}{line}", 9 - i));
        }
    }

    #[test]
    fn only_the_blocks_needed_are_read() {
        let text = "0123456789abcde\n".repeat(1 << 16); // 1 MiB
        let mut r = TailReader::new(Cursor::new(text.into_bytes())).unwrap();
        for _ in 0..10 {
            r.prev_line().unwrap().unwrap();
        }
        assert_eq!(r.bytes_read(), BLOCK as u64);
    }
}
