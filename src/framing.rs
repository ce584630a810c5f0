//! Splitting a byte stream into bounded lines, apart from any socket so it can be tested
//! on its own.
//!
//! A peer controls how much it sends before a line end; the buffer never holds more than
//! `max` bytes of one line. An over-long line is reported once, then skipped up to its
//! line end, and the stream carries on with the next line.
//!
//! Line ends are those of the clients people use: LF (`nc`, Unix), CRLF (telnet,
//! Windows), a bare CR (some terminals in raw mode, old Macs) and CR NUL (RFC 854's
//! carriage return without a line feed). Each ends exactly one line, also when its two
//! bytes arrive in different reads.

use std::borrow::Cow;

use crate::telnet::TelnetFilter;

/// One complete input line, or the news that one was too long.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// The line without its line end. Invalid UTF-8 is replaced with U+FFFD, so a bad
    /// byte costs that character only, never the line or the connection.
    Text(Cow<'a, str>),
    /// A line longer than the limit; its bytes were discarded.
    TooLong,
}

/// Accumulates the partial line between reads.
#[derive(Debug)]
pub struct LineBuffer {
    /// Bytes of a line whose line end has not arrived yet. Empty (and unallocated)
    /// between lines, which is the usual case, so idle connections cost no buffer.
    partial: Vec<u8>,
    /// Longest line accepted, in bytes, not counting the line end. A `u32` (as
    /// `--max-line`), which makes the buffer 8 bytes smaller in every connection's task.
    max: u32,
    /// Set after a too-long line was reported, until its line end arrives.
    discarding: bool,
    /// The last byte seen was a CR that ended a line: an LF or NUL right after it
    /// belongs to the same line end.
    after_cr: bool,
    /// Removes telnet commands before lines are split; `None` for a peer that never
    /// speaks telnet (the server, as the client sees it).
    telnet: Option<TelnetFilter>,
}

impl LineBuffer {
    /// A buffer for lines from a tchat server: no telnet commands expected. Lines over
    /// `max` bytes (at most `u32::MAX`; more counts as that) are reported as too long.
    pub fn new(max: usize) -> LineBuffer {
        let max = u32::try_from(max).unwrap_or(u32::MAX);
        LineBuffer { partial: Vec::new(), max, discarding: false, after_cr: false, telnet: None }
    }

    /// A buffer for lines from a chat client, which may be a telnet client: its
    /// command sequences are removed first (see [`crate::telnet`]).
    pub fn with_telnet(max: usize) -> LineBuffer {
        LineBuffer { telnet: Some(TelnetFilter::default()), ..LineBuffer::new(max) }
    }

    /// Feeds freshly read bytes and calls `on_line` for each line they complete, in order.
    pub fn feed(&mut self, data: &[u8], on_line: impl FnMut(Line<'_>)) {
        match &mut self.telnet {
            Some(telnet) if telnet.needs_filter(data) => {
                let mut clean = Vec::with_capacity(data.len());
                telnet.filter(data, &mut clean);
                self.split(&clean, on_line);
            }
            _ => self.split(data, on_line),
        }
    }

    fn split(&mut self, mut data: &[u8], mut on_line: impl FnMut(Line<'_>)) {
        if self.after_cr && !data.is_empty() {
            self.after_cr = false;
            if let [b'\n' | 0, rest @ ..] = data {
                data = rest;
            }
        }
        while let Some(pos) = data.iter().position(|&b| b == b'\n' || b == b'\r') {
            let chunk = &data[..pos];
            let cr = data[pos] == b'\r';
            data = &data[pos + 1..];
            if cr {
                match data {
                    [b'\n' | 0, rest @ ..] => data = rest,
                    [] => self.after_cr = true,
                    _ => {}
                }
            }
            if self.discarding {
                self.discarding = false;
                continue;
            }
            if self.partial.is_empty() {
                on_line(self.decode(chunk));
            } else if self.partial.len() + chunk.len() > self.max as usize {
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
        if self.partial.len() + data.len() > self.max as usize {
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
        if raw.len() > self.max as usize {
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
    fn cr_lf_crlf_and_cr_nul_each_end_one_line() {
        let mut b = LineBuffer::new(100);
        assert_eq!(
            lines(&mut b, b"/nick crman\rhello\rworld\n"),
            ["/nick crman", "hello", "world"]
        );
        assert_eq!(lines(&mut b, b"a\r\nb\r\0c\nd\re\n"), ["a", "b", "c", "d", "e"]);
        // Empty lines stay lines: CR CR is two, LF CR is two, CR LF LF is two.
        for input in [b"\r\r" as &[u8], b"\n\r", b"\r\n\n"] {
            assert_eq!(lines(&mut LineBuffer::new(100), input), ["", ""], "{input:?}");
        }
    }

    #[test]
    fn a_two_byte_line_end_split_across_reads_ends_one_line() {
        for end in [b"\r\n" as &[u8], b"\r\0"] {
            let mut b = LineBuffer::new(100);
            assert_eq!(lines(&mut b, &[b"one" as &[u8], &end[..1]].concat()), ["one"]);
            assert_eq!(lines(&mut b, &[&end[1..], b"two" as &[u8]].concat()), Vec::<String>::new());
            assert!(b.has_partial(), "the LF or NUL must not end an empty line");
            assert_eq!(lines(&mut b, b"\n"), ["two"]);
            // An empty read in between changes nothing.
            assert_eq!(lines(&mut b, b"x\r"), ["x"]);
            assert!(lines(&mut b, b"").is_empty());
            assert_eq!(lines(&mut b, &[&end[1..], b"y\n" as &[u8]].concat()), ["y"]);
        }
        // Every split of a mixed stream gives the same lines.
        let input = b"a\r\nb\rc\r\0d\ne\r\r\nf\n";
        let want = ["a", "b", "c", "d", "e", "", "f"];
        for split in 0..=input.len() {
            let mut b = LineBuffer::new(100);
            let mut got = lines(&mut b, &input[..split]);
            got.extend(lines(&mut b, &input[split..]));
            assert_eq!(got, want, "split at {split}");
        }
    }

    #[test]
    fn telnet_negotiation_before_a_line_is_removed() {
        let putty =
            b"\xff\xfb\x1f\xff\xfb\x20\xff\xfb\x18\xff\xfb\x27\xff\xfd\x01\xff\xfb\x03\xff\xfd\x03";
        let input = [putty as &[u8], b"/nick bob\r\n"].concat();
        let mut b = LineBuffer::with_telnet(100);
        assert_eq!(lines(&mut b, &input), ["/nick bob"]);
        for split in 0..=input.len() {
            let mut b = LineBuffer::with_telnet(100);
            let mut got = lines(&mut b, &input[..split]);
            got.extend(lines(&mut b, &input[split..]));
            assert_eq!(got, ["/nick bob"], "split at {split}");
        }
        // Commands do not count towards the line limit, and IAC IAC is a data byte.
        let mut b = LineBuffer::with_telnet(3);
        assert_eq!(lines(&mut b, &[putty as &[u8], b"abc\xff\xf1\n"].concat()), ["abc"]);
        assert_eq!(lines(&mut b, b"a\xff\xffb\n"), ["a\u{fffd}b"]);
        // A server's lines are never filtered.
        let mut b = LineBuffer::new(100);
        assert_eq!(lines(&mut b, b"a\xff\xf1b\n"), ["a\u{fffd}\u{fffd}b"]);
    }

    #[test]
    fn exact_limit_is_accepted_one_more_is_not() {
        let mut b = LineBuffer::new(5);
        assert_eq!(lines(&mut b, b"12345\r\n"), ["12345"]);
        assert_eq!(lines(&mut b, b"123456\n"), ["<too long>"]);
        assert_eq!(lines(&mut b, b"123"), Vec::<String>::new());
        assert_eq!(lines(&mut b, b"45\n"), ["12345"]);
        // A maximal line whose CR comes in the next read.
        assert!(lines(&mut b, b"12345").is_empty());
        assert_eq!(lines(&mut b, b"\r\nok\n"), ["12345", "ok"]);
        assert_eq!(lines(&mut b, b"123456\rok\r"), ["<too long>", "ok"]);
        assert!(lines(&mut b, b"123").is_empty());
        assert_eq!(lines(&mut b, b"456\r\0ok\n"), ["<too long>", "ok"]);
    }

    #[test]
    fn overlong_line_is_reported_once_and_skipped_without_buffering() {
        let mut b = LineBuffer::new(10);
        assert_eq!(lines(&mut b, &[b'x'; 8]), Vec::<String>::new());
        assert_eq!(lines(&mut b, &[b'x'; 8]), ["<too long>"]);
        assert!(!b.has_partial());
        for _ in 0..1000 {
            assert!(lines(&mut b, &[b'y'; 1000]).is_empty());
            assert!(b.partial.capacity() <= 10);
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
        let mut b = LineBuffer::with_telnet(64);
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
            assert!(b.partial.len() <= 64);
        }
    }
}
