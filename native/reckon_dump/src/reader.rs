//! A line reader over any [`Read`] that holds at most [`READ_BUF`] +
//! [`MAX_LINE`] bytes whatever the input: a line longer than [`MAX_LINE`]
//! is handed over cut to its first [`MAX_LINE`] bytes, with its full length,
//! and the rest of it is read and skipped. A crash dump's refc binary is one
//! base64 line that can be gigabytes long; this reader never holds it.

use std::io::{self, Read};

/// Bytes read from the input at a time.
pub const READ_BUF: usize = 64 * 1024;
/// Most bytes of one line that are kept (the rest is counted, not kept).
pub const MAX_LINE: usize = 64 * 1024;

/// One line of the input, without its newline.
#[derive(Debug)]
pub struct Line<'a> {
    /// The line's first bytes (all of it unless `truncated`).
    pub text: &'a [u8],
    /// The line's full length in bytes, newline excluded.
    pub len: u64,
    /// Whether `text` holds only the first [`MAX_LINE`] bytes.
    pub truncated: bool,
    /// Whether the line ended with a newline (the last line of a cut file may not).
    pub terminated: bool,
    /// Offset in the input of the line's first byte.
    pub offset: u64,
    /// Line number, from 1.
    pub number: u64,
}

/// Streams the lines of `R` in bounded memory.
pub struct LineReader<R> {
    inner: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    line: Vec<u8>,
    eof: bool,
    offset: u64,
    number: u64,
}

impl<R: Read> LineReader<R> {
    /// A reader over `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            line: Vec::with_capacity(MAX_LINE),
            eof: false,
            offset: 0,
            number: 0,
        }
    }

    /// Bytes consumed so far (the offset of the next line).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes this reader holds (its buffers).
    pub fn footprint(&self) -> usize {
        self.buf.len() + self.line.capacity()
    }

    fn fill(&mut self) -> io::Result<()> {
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    self.start = 0;
                    self.end = 0;
                    return Ok(());
                }
                Ok(n) => {
                    self.start = 0;
                    self.end = n.min(self.buf.len());
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The next line, `None` at the end of the input.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.line.clear();
        let offset = self.offset;
        let mut len: u64 = 0;
        let mut terminated = false;
        // Fast path: the whole line is in the buffer.
        if self.start < self.end {
            let chunk = self.buf.get(self.start..self.end).unwrap_or(&[]);
            if let Some(pos) = memchr::memchr(b'\n', chunk) {
                let from = self.start;
                self.start += pos + 1;
                self.offset += pos as u64 + 1;
                self.number += 1;
                let keep = pos.min(MAX_LINE);
                return Ok(Some(Line {
                    text: self.buf.get(from..from + keep).unwrap_or(&[]),
                    len: pos as u64,
                    truncated: pos > MAX_LINE,
                    terminated: true,
                    offset,
                    number: self.number,
                }));
            }
        }
        loop {
            if self.start >= self.end {
                if self.eof {
                    break;
                }
                self.fill()?;
                if self.eof {
                    break;
                }
            }
            let chunk = self.buf.get(self.start..self.end).unwrap_or(&[]);
            let (take, found) = match memchr::memchr(b'\n', chunk) {
                Some(pos) => (pos, true),
                None => (chunk.len(), false),
            };
            let room = MAX_LINE.saturating_sub(self.line.len());
            if let Some(part) = chunk.get(..take.min(room)) {
                self.line.extend_from_slice(part);
            }
            len += take as u64;
            let used = take + usize::from(found);
            self.start += used;
            self.offset += used as u64;
            if found {
                terminated = true;
                break;
            }
        }
        if len == 0 && !terminated {
            return Ok(None);
        }
        self.number += 1;
        Ok(Some(Line {
            text: &self.line,
            len,
            truncated: len > MAX_LINE as u64,
            terminated,
            offset,
            number: self.number,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per read.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn lines(data: &[u8], step: usize) -> Vec<(Vec<u8>, u64, bool, bool)> {
        let mut r = LineReader::new(Trickle { data, step });
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push((l.text.to_vec(), l.len, l.truncated, l.terminated));
        }
        out
    }

    #[test]
    fn splits_lines_across_reads() {
        for step in [1, 2, 3, 7, 1 << 20] {
            let got = lines(b"ab\n\ncd\nef", step);
            assert_eq!(
                got,
                vec![
                    (b"ab".to_vec(), 2, false, true),
                    (b"".to_vec(), 0, false, true),
                    (b"cd".to_vec(), 2, false, true),
                    (b"ef".to_vec(), 2, false, false),
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn cuts_a_huge_line_and_counts_it_whole() {
        let mut data = vec![b'x'; 3 * READ_BUF + 17];
        data.push(b'\n');
        data.extend_from_slice(b"next\n");
        for step in [READ_BUF, 4096, 1 << 22] {
            let mut r = LineReader::new(Trickle { data: &data, step });
            let l = r.next_line().unwrap().unwrap();
            assert_eq!(l.text.len(), MAX_LINE);
            assert_eq!(l.len, 3 * READ_BUF as u64 + 17);
            assert!(l.truncated && l.terminated);
            let l = r.next_line().unwrap().unwrap();
            assert_eq!((l.text, l.number), (&b"next"[..], 2));
            assert!(r.next_line().unwrap().is_none());
            assert!(r.footprint() <= READ_BUF + MAX_LINE);
        }
    }
}
