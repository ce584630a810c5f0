//! The user's lines on their way to the server, queued as bytes and written as the
//! socket takes them.
//!
//! The connection loop writes from this queue in one branch of its `select!` and reads
//! in another, so it keeps showing what the server sends while the server reads slowly
//! (its flood control delays a paste) or after a write has failed (the server's last
//! words, such as why it disconnected the client, are still read and shown).

use crate::protocol::Request;

/// Bytes queued beyond which the connection takes no more input until some are
/// written; the rest waits in the input channel.
const LIMIT: usize = 64 * 1024;

#[derive(Debug, Default)]
pub struct Outgoing {
    /// Whole lines, each ending in `\n`, not yet written; the front may be written in
    /// part.
    buf: Vec<u8>,
}

impl Outgoing {
    /// Queues `line` as is.
    pub fn push_line(&mut self, line: &str) {
        self.buf.extend_from_slice(line.as_bytes());
        self.buf.push(b'\n');
    }

    /// Queues what the user entered. A pasted block arrives as one entry with newlines
    /// in it: each line becomes one message, blank ones are skipped, and nothing after a
    /// `/quit` is sent. Returns true if a `/quit` was queued.
    pub fn push_input(&mut self, input: &str) -> bool {
        for part in input.split('\n').map(|l| l.trim_end_matches('\r')) {
            if part.trim().is_empty() {
                continue;
            }
            self.push_line(part);
            if matches!(Request::parse(part), Ok(Request::Quit(_))) {
                return true;
            }
        }
        false
    }

    /// What is still to be written.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// `n` bytes of [`Outgoing::pending`] were written.
    pub fn advance(&mut self, n: usize) {
        self.buf.drain(..n);
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// True while enough is queued that no more input should be taken.
    pub fn is_full(&self) -> bool {
        self.buf.len() >= LIMIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pasted_block_becomes_one_line_each_up_to_quit() {
        let mut out = Outgoing::default();
        out.push_line("/hello json");
        assert!(!out.push_input("first\r\nsecond\n\n  \n"));
        assert!(out.push_input("third\n/quit bye\nnever sent"));
        assert_eq!(out.pending(), b"/hello json\nfirst\nsecond\nthird\n/quit bye\n");
        out.advance(12);
        assert_eq!(out.pending(), b"first\nsecond\nthird\n/quit bye\n");
        out.advance(out.pending().len());
        assert!(out.is_empty() && !out.is_full());
    }
}
