//! The user's lines on their way to the server, queued as bytes, paced to the server's
//! flood control, and written as the socket takes them.
//!
//! The connection loop writes from this queue in one branch of its `select!` and reads
//! in another, so it keeps showing what the server sends while lines wait for their
//! turn, or after a write has failed (the server's last words, such as why it
//! disconnected the client, are still read and shown).
//!
//! Pacing: the server delays the lines of a sender over its rate (fakelag) and says so.
//! Its welcome states that rate ([`FloodLimit`]), and the client keeps under it with a
//! token bucket of its own, the server's [`Fakelag`]: a paste or a piped script of any
//! length goes out at the rate, in order, and the server never has to slow it. Until
//! the welcome has come, only the hello goes; lines waiting then go after it.

use tokio::time::Instant;

use crate::flood::{Fakelag, Verdict};
use crate::protocol::{FloodLimit, Request};

/// Bytes queued beyond which the connection takes no more input until some are
/// written; the rest waits in the input channel.
const LIMIT: usize = 64 * 1024;

/// The client sends at most this share of the server's burst at once. The rest is slack
/// for the server's side: the lines it counted before the welcome (the hello, a
/// password), and above all its own stalls. The server's bucket stops filling at the
/// burst while it is not reading (a busy machine), and the lines the client sent at its
/// rate meanwhile then arrive together: the slack covers a stall of `burst / 2 / rate`
/// seconds (two at the defaults) before the server would have to hold a line.
const BURST_SHARE: u32 = 2;

/// The share of the server's rate the client sends at: a little under, so the server's
/// bucket refills faster than the client draws on it.
const RATE_SHARE: f64 = 0.95;

/// How lines are let out.
#[derive(Debug)]
pub enum Pace {
    /// Not known yet: nothing but the hello goes before the welcome.
    Waiting,
    /// Every line at once (the server has no flood control, or did not say).
    Free,
    /// At most the server's burst at once, then its rate.
    Paced(Fakelag),
}

impl Pace {
    /// The pace for the limit a welcome stated (`None`: the server has none, or is older
    /// than the `flood` field).
    pub fn of(limit: Option<FloodLimit>) -> Pace {
        match limit {
            Some(FloodLimit { rate, burst }) if rate > 0.0 => {
                let burst = (burst / BURST_SHARE).max(1);
                Pace::Paced(Fakelag::new(rate * RATE_SHARE, burst, Instant::now()))
            }
            _ => Pace::Free,
        }
    }
}

#[derive(Debug)]
pub struct Outgoing {
    /// Whole lines, each ending in `\n`, not yet written; the front may be written in
    /// part.
    buf: Vec<u8>,
    /// How much of the front of `buf` the pace has let out: whole lines.
    released: usize,
    pace: Pace,
}

impl Outgoing {
    /// A queue that sends `hello` at once and the rest at `pace`.
    pub fn new(hello: &[String], pace: Pace) -> Outgoing {
        let mut out = Outgoing { buf: Vec::new(), released: 0, pace: Pace::Free };
        hello.iter().for_each(|line| out.push_line(line));
        out.release(Instant::now());
        out.pace = pace;
        out
    }

    /// Sets the pace (from the welcome); [`Outgoing::release`] then lets lines out by it.
    pub fn set_pace(&mut self, pace: Pace) {
        self.pace = pace;
    }

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

    /// The user leaves now (a signal): lines not let out yet are dropped, and `/quit`
    /// goes next, whatever the pace.
    pub fn quit_now(&mut self) {
        self.buf.truncate(self.released);
        self.push_line("/quit");
        self.released = self.buf.len();
    }

    /// Lets out the lines the pace allows at `now`; returns when the next one may go,
    /// if one is waiting for its turn.
    pub fn release(&mut self, now: Instant) -> Option<Instant> {
        while self.released < self.buf.len() {
            match &mut self.pace {
                Pace::Waiting => return None,
                Pace::Free => {}
                Pace::Paced(bucket) => match bucket.check(now) {
                    Verdict::Go => bucket.take(),
                    Verdict::Hold { until, .. } => return Some(until),
                },
            }
            let rest = &self.buf[self.released..];
            let end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |p| p + 1);
            self.released += end;
        }
        None
    }

    /// What may be written now.
    pub fn pending(&self) -> &[u8] {
        &self.buf[..self.released]
    }

    /// `n` bytes of [`Outgoing::pending`] were written.
    pub fn advance(&mut self, n: usize) {
        self.buf.drain(..n);
        self.released -= n;
    }

    /// Nothing is left to write, let out or not.
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
    use std::time::Duration;

    use super::*;

    fn free(hello: &[&str]) -> Outgoing {
        let hello: Vec<String> = hello.iter().map(|l| l.to_string()).collect();
        Outgoing::new(&hello, Pace::Free)
    }

    #[test]
    fn a_pasted_block_becomes_one_line_each_up_to_quit() {
        let mut out = free(&["/hello json"]);
        assert!(!out.push_input("first\r\nsecond\n\n  \n"));
        assert!(out.push_input("third\n/quit bye\nnever sent"));
        out.release(Instant::now());
        assert_eq!(out.pending(), b"/hello json\nfirst\nsecond\nthird\n/quit bye\n");
        out.advance(12);
        assert_eq!(out.pending(), b"first\nsecond\nthird\n/quit bye\n");
        out.advance(out.pending().len());
        assert!(out.is_empty() && !out.is_full());
    }

    /// Before the welcome only the hello goes; after it, half the burst the server
    /// allows, then one line per token, at a little under the server's rate.
    #[test]
    fn lines_wait_for_the_welcome_then_go_at_the_servers_rate() {
        let mut out = Outgoing::new(&["/hello json me".into()], Pace::Waiting);
        for i in 0..10 {
            out.push_input(&format!("line {i}"));
        }
        assert_eq!(out.release(Instant::now()), None);
        assert_eq!(out.pending(), b"/hello json me\n");
        let t0 = Instant::now();
        out.set_pace(Pace::of(Some(FloodLimit { rate: 10.0, burst: 5 })));
        let next = out.release(t0).expect("lines wait their turn");
        let sent = String::from_utf8(out.pending().to_vec()).unwrap();
        assert_eq!(sent, "/hello json me\nline 0\nline 1\n");
        let wait = next.duration_since(t0);
        let token = Duration::from_secs_f64(1.0 / (10.0 * RATE_SHARE));
        assert!(wait.abs_diff(token) < Duration::from_millis(2), "{wait:?}");
        // The rest, one token apart: every line, in order.
        let mut now = next;
        while let Some(at) = out.release(now) {
            assert!(at.duration_since(now).abs_diff(token) < Duration::from_millis(2));
            now = at;
        }
        let sent = String::from_utf8(out.pending().to_vec()).unwrap();
        let lines: Vec<_> = sent.lines().skip(1).collect();
        let expected: Vec<_> = (0..10).map(|i| format!("line {i}")).collect();
        assert_eq!(lines, expected);
    }

    #[test]
    fn a_server_without_flood_control_gets_everything_at_once() {
        let mut out = Outgoing::new(&[], Pace::Waiting);
        (0..100).for_each(|i| assert!(!out.push_input(&format!("{i}"))));
        out.set_pace(Pace::of(None));
        assert_eq!(out.release(Instant::now()), None);
        assert_eq!(out.pending().iter().filter(|&&b| b == b'\n').count(), 100);
    }

    #[test]
    fn leaving_drops_what_waits_and_quits_next() {
        let mut out = Outgoing::new(&[], Pace::of(Some(FloodLimit { rate: 1.0, burst: 3 })));
        (0..5).for_each(|i| assert!(!out.push_input(&format!("l{i}"))));
        assert!(out.release(Instant::now()).is_some());
        out.advance(1);
        out.quit_now();
        assert_eq!(out.pending(), b"0\n/quit\n");
        assert_eq!(out.release(Instant::now()), None);
    }
}
