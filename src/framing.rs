//! Splitting a byte stream into bounded lines, apart from any socket so it can be tested
//! on its own.
//!
//! A peer controls how much it sends before a newline; the buffer never holds more than
//! `max` bytes of one line. An over-long line is reported once, then skipped up to its
//! newline, and the stream carries on with the next line.

use std::borrow::Cow;

/// One complete input line, or the news that one was too long.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// The line without `\n` or `\r\n`. Invalid UTF-8 is replaced with U+FFFD, so a bad
    /// byte costs that character only, never the line or the connection.
    Text(Cow<'a, str>),
    /// A line longer than the limit; its bytes were discarded.
    TooLong,
}

/// Accumulates the partial line between reads.
#[derive(Debug)]
pub struct LineBuffer {
    /// Bytes of a line whose newline has not arrived yet. Empty (and unallocated) between
    /// lines, which is the usual case, so idle connections cost no buffer.
    partial: Vec<u8>,
    /// Longest line accepted, in bytes, not counting the line ending.
    max: usize,
    /// Set after a too-long line was reported, until its newline arrives.
    discarding: bool,
}

impl LineBuffer {
    pub fn new(max: usize) -> LineBuffer {
        LineBuffer { partial: Vec::new(), max, discarding: false }
    }

    /// Feeds freshly read bytes and calls `on_line` for each line they complete, in order.
    pub fn feed(&mut self, mut data: &[u8], mut on_line: impl FnMut(Line<'_>)) {
        while let Some(pos) = data.iter().position(|&b| b == b'\n') {
            let chunk = &data[..pos];
            data = &data[pos + 1..];
            if self.discarding {
                self.discarding = false;
                continue;
            }
            if self.partial.is_empty() {
                on_line(self.decode(chunk));
            } else if self.partial.len() + chunk.len() > self.max + 1 {
                // +1: a trailing '\r' of a maximal line is not part of the line.
                self.partial.clear();
                on_line(Line::TooLong);
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(chunk);
                on_line(self.decode(&whole));
                whole.clear();
                self.partial = whole;
            }
        }
        if self.discarding || data.is_empty() {
            self.release_if_idle();
            return;
        }
        if self.partial.len() + data.len() > self.max + 1 {
            self.partial.clear();
            self.discarding = true;
            on_line(Line::TooLong);
        } else {
            self.partial.extend_from_slice(data);
        }
        self.release_if_idle();
    }

    /// True while part of a line is buffered.
    pub fn has_partial(&self) -> bool {
        !self.partial.is_empty()
    }

    fn decode<'a>(&self, raw: &'a [u8]) -> Line<'a> {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() > self.max {
            return Line::TooLong;
        }
        Line::Text(String::from_utf8_lossy(raw))
    }

    fn release_if_idle(&mut self) {
        if self.partial.is_empty() && self.partial.capacity() > 0 {
            self.partial = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(buf: &mut LineBuffer, data: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        buf.feed(data, |l| {
            out.push(match l {
                Line::Text(t) => t.into_owned(),
                Line::TooLong => "<too long>".to_owned(),
            })
        });
        out
    }

    #[test]
    fn splits_lines_and_strips_crlf() {
        let mut b = LineBuffer::new(100);
        assert_eq!(lines(&mut b, b"a\nb\r\nc"), ["a", "b"]);
        assert!(b.has_partial());
        assert_eq!(lines(&mut b, b"d\n"), ["cd"]);
        assert!(!b.has_partial());
        assert_eq!(lines(&mut b, b"\n"), [""]);
    }

    #[test]
    fn line_split_across_many_reads() {
        let mut b = LineBuffer::new(100);
        for byte in b"hello wor" {
            assert!(lines(&mut b, &[*byte]).is_empty());
        }
        assert_eq!(lines(&mut b, b"ld\r\nnext\n"), ["hello world", "next"]);
    }

    #[test]
    fn exact_limit_is_accepted_one_more_is_not() {
        let mut b = LineBuffer::new(5);
        assert_eq!(lines(&mut b, b"12345\r\n"), ["12345"]);
        assert_eq!(lines(&mut b, b"123456\n"), ["<too long>"]);
        assert_eq!(lines(&mut b, b"123"), Vec::<String>::new());
        assert_eq!(lines(&mut b, b"45\n"), ["12345"]);
    }

    #[test]
    fn overlong_line_is_reported_once_and_skipped_without_buffering() {
        let mut b = LineBuffer::new(10);
        assert_eq!(lines(&mut b, &[b'x'; 8]), Vec::<String>::new());
        assert_eq!(lines(&mut b, &[b'x'; 8]), ["<too long>"]);
        assert!(!b.has_partial());
        for _ in 0..1000 {
            assert!(lines(&mut b, &[b'y'; 1000]).is_empty());
            assert!(b.partial.capacity() <= 11);
        }
        assert_eq!(lines(&mut b, b"tail\nok\n"), ["ok"]);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let mut b = LineBuffer::new(100);
        assert_eq!(lines(&mut b, b"ok \xff\xfe end\n"), ["ok \u{fffd}\u{fffd} end"]);
        // A multi-byte character split across reads survives.
        let snow = "☃".as_bytes();
        assert!(lines(&mut b, &snow[..1]).is_empty());
        assert_eq!(lines(&mut b, &[&snow[1..], b"\n"].concat()), ["☃"]);
    }

    #[test]
    fn random_bytes_in_random_pieces_never_exceed_the_limit_or_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut b = LineBuffer::new(64);
        for _ in 0..2000 {
            let len = (next() % 200) as usize;
            let data: Vec<u8> = (0..len)
                .map(|_| match next() % 10 {
                    0 => b'\n',
                    1 => b'\r',
                    2 => 0x1b,
                    3 => 0xff,
                    _ => (next() >> 3) as u8,
                })
                .collect();
            b.feed(&data, |line| {
                if let Line::Text(text) = line {
                    assert!(text.len() <= 64 * 3, "{text:?}"); // U+FFFD is 3 bytes
                    let clean = crate::sanitize::sanitize(&text);
                    assert!(!clean.chars().any(char::is_control));
                    let _ = crate::protocol::Request::parse(&clean);
                }
            });
            assert!(b.partial.len() <= 65);
        }
    }
}
