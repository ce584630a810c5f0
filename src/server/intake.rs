//! A connection's input on its way from the socket to the chat: the line buffer, the
//! fakelag policy, and the bytes held back while the sender is over its rate.
//!
//! Lines are handed on one at a time, each when [`Fakelag`] allows, and a line that
//! costs more than one (a room created) pays before the next is looked at. What a read
//! brought beyond that is held, in order, and handed on as tokens come due; meanwhile the
//! connection reads nothing more, so the rest waits in the kernel's buffers and TCP
//! back-pressure slows the sender. The hold is bounded by one read's bytes (plus the
//! partial line the [`LineBuffer`] keeps, bounded by `--max-line`).
//!
//! So a sender over its rate costs the server nothing however long it stays behind, and
//! is never disconnected for it. The one input that does keep the server reading is
//! bytes that form no line: a line never ended (its bytes past `--max-line` are read
//! and thrown away) or telnet negotiation without end. Fakelag charges lines, so those
//! would be read as fast as they come; past [`excess_flood_bound`] such bytes in a row
//! the sender is disconnected, as IRC servers do when a client's receive queue overflows
//! ("Excess Flood").
//!
//! On a backbone, lines are also held while the node is too far behind the stream
//! ([`Window`]), for at most [`window::LONGEST_HOLD`] at a time.

use std::sync::Arc;

use tokio::time::Instant;

use crate::flood::{Fakelag, Verdict};
use crate::framing::{Line, LineBuffer};
use crate::server::backbone::window::{self, Window};

/// How many bytes may come without a line end before the sender is disconnected for
/// excess flood: 16 lines of `max_line` bytes, and at least 64 KiB. A line ends within
/// `--max-line` bytes (a longer one is refused as too long at its end, and dropped), so
/// no chat client comes near this: 64 KiB at the default 4096.
pub fn excess_flood_bound(max_line: usize) -> usize {
    max_line.saturating_mul(16).max(64 * 1024)
}

pub struct Intake {
    lines: LineBuffer,
    flood: Fakelag,
    /// On a backbone, the node's lag behind the stream, and since when it has held
    /// lines for it (`None`: not holding for it). Boxed: without `--backbone` it is
    /// unused, and 8 bytes rather than 24 in every connection's task (idle ones
    /// included) keep the task's block for tokio one 128-byte step smaller.
    window: Option<Box<(Arc<Window>, Option<Instant>)>>,
    /// Bytes read but not yet fed to `lines`: the sender is over its rate. At most one
    /// read's worth, since nothing is read while it holds any. Unallocated while empty,
    /// which is the usual case.
    held: Vec<u8>,
    /// How much of `held` has been fed.
    fed: usize,
    /// Bytes fed since the last line end: the excess flood count. A `u32`, as
    /// `excess`: the bound is at most 16 MiB (16 lines of the largest `--max-line`),
    /// and the two make the task 8 bytes smaller than `usize`s.
    lineless: u32,
    /// The excess flood bound, in bytes ([`excess_flood_bound`]; more than
    /// `u32::MAX` counts as that).
    excess: u32,
}

/// What the session made of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// False once the session takes no more lines (it is closing).
    pub open: bool,
    /// Lines' worth of flood control the line costs on top of its own (creating a room):
    /// charged before the next line is looked at.
    pub extra: u32,
    /// The session waits before it takes another line (a nick claim across nodes): the
    /// rest is held until [`Intake::resume`].
    pub waits: bool,
}

#[cfg(test)]
impl Taken {
    /// A line handled at the cost of one line; `open` as [`Taken::open`].
    fn line(open: bool) -> Taken {
        Taken { open, extra: 0, waits: false }
    }
}

/// Where feeding stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Everything read so far was handed on (or the session stopped taking lines).
    Done,
    /// Bytes are held until `until`; read nothing more before then. `tell`: first hold
    /// of an episode, tell the sender it is being slowed.
    Hold { until: Instant, tell: bool },
    /// Excess flood: this many bytes came without a line end.
    Kick { lineless: usize },
    /// Bytes are held until the node's [`Window`] opens, or until `until` at the latest.
    Window { until: Instant },
    /// The session waits on something of its own ([`Taken::waits`]): bytes are held
    /// until it calls [`Intake::resume`].
    Waits,
}

impl Step {
    /// Whether bytes not fed yet are held.
    fn holds(&self) -> bool {
        matches!(self, Step::Hold { .. } | Step::Window { .. } | Step::Waits)
    }
}

impl Intake {
    /// Input through `lines` at the rate `flood` allows, ended by `excess` bytes
    /// without a line end ([`excess_flood_bound`]), and on a backbone only while
    /// `window` is open.
    pub fn new(
        lines: LineBuffer,
        flood: Fakelag,
        excess: usize,
        window: Option<Arc<Window>>,
    ) -> Intake {
        let window = window.map(|w| Box::new((w, None)));
        let excess = u32::try_from(excess).unwrap_or(u32::MAX);
        Intake { lines, flood, window, held: Vec::new(), fed: 0, lineless: 0, excess }
    }

    /// True while bytes are held: the connection must not read its socket.
    pub fn is_holding(&self) -> bool {
        self.fed < self.held.len()
    }

    /// Hands on the lines of freshly read `data` while the rate allows, and holds the
    /// rest. Must not be called while holding.
    pub fn feed(
        &mut self,
        data: &[u8],
        now: Instant,
        on_line: impl FnMut(Line<'_>) -> Taken,
    ) -> Step {
        debug_assert!(!self.is_holding());
        let (step, used) = self.feed_lines(data, now, on_line);
        if used < data.len() && step.holds() {
            self.held.clear();
            self.held.extend_from_slice(&data[used..]);
            self.fed = 0;
        }
        step
    }

    /// Hands on held lines that are due at `now`.
    pub fn resume(&mut self, now: Instant, on_line: impl FnMut(Line<'_>) -> Taken) -> Step {
        let held = std::mem::take(&mut self.held);
        let (step, used) = self.feed_lines(&held[self.fed..], now, on_line);
        self.fed += used;
        if self.fed < held.len() && step.holds() {
            self.held = held;
        } else {
            self.fed = 0;
        }
        step
    }

    /// Feeds `data` one line at a time, each when the policy allows, charging what each
    /// cost before the next; returns where it stopped and how many bytes were fed.
    fn feed_lines(
        &mut self,
        data: &[u8],
        now: Instant,
        mut on_line: impl FnMut(Line<'_>) -> Taken,
    ) -> (Step, usize) {
        let mut used = 0;
        while used < data.len() {
            if let Some(until) = self.window_closed(now) {
                return (Step::Window { until }, used);
            }
            if let Verdict::Hold { until, tell } = self.flood.check(now) {
                return (Step::Hold { until, tell }, used);
            }
            let rest = &data[used..];
            // One line at most per piece (a line ends at a CR or an LF, see
            // `framing`), so each line is checked on its own.
            let end = rest.iter().position(|&b| b == b'\n' || b == b'\r');
            let ends_line = end.is_some();
            let end = end.map_or(rest.len(), |p| p + 1);
            let (mut open, mut waits) = (true, false);
            let flood = &mut self.flood;
            self.lines.feed(&rest[..end], |line| {
                flood.take();
                let taken = on_line(line);
                flood.charge(taken.extra);
                (open, waits) = (taken.open, taken.waits);
            });
            used += end;
            let piece = u32::try_from(end).unwrap_or(u32::MAX);
            self.lineless = if ends_line { 0 } else { self.lineless.saturating_add(piece) };
            if self.lineless > self.excess {
                return (Step::Kick { lineless: self.lineless as usize }, used);
            }
            if !open {
                break;
            }
            if waits {
                return (Step::Waits, used);
            }
        }
        (Step::Done, used)
    }

    /// When to look again if the node's window holds lines at `now`; `None` when lines
    /// may go (no backbone, the window open, or held for [`window::LONGEST_HOLD`]
    /// already: they then go and are delivered or refused as without it).
    fn window_closed(&mut self, now: Instant) -> Option<Instant> {
        let (window, since) = &mut **self.window.as_mut()?;
        if window.is_open() {
            *since = None;
            return None;
        }
        let until = *since.get_or_insert(now) + window::LONGEST_HOLD;
        (now < until).then_some(until)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn intake(rate: f64, burst: u32, t0: Instant) -> Intake {
        Intake::new(LineBuffer::new(16), Fakelag::new(rate, burst, t0), 16 * 16, None)
    }

    fn text(line: Line<'_>) -> String {
        match line {
            Line::Text(t) => t.into_owned(),
            Line::TooLong => "<too long>".into(),
        }
    }

    #[test]
    fn over_the_burst_lines_are_held_in_order_and_handed_on_as_tokens_come() {
        let t0 = Instant::now();
        let mut input = intake(10.0, 2, t0);
        let mut got = Vec::new();
        let step = input.feed(b"1\n2\n3\n4\npart", t0, |l| {
            got.push(text(l));
            Taken::line(true)
        });
        assert_eq!(got, ["1", "2"]);
        let Step::Hold { until, tell: true } = step else { panic!("{step:?}") };
        assert!(input.is_holding());
        let mut now = until;
        loop {
            match input.resume(now, |l| {
                got.push(text(l));
                Taken::line(true)
            }) {
                Step::Hold { until, tell } => {
                    assert!(!tell, "told once");
                    now = until;
                }
                Step::Done => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, ["1", "2", "3", "4"]);
        assert!(!input.is_holding(), "the partial line went to the line buffer");
        assert!(input.held.capacity() == 0, "the hold is freed");
        input.feed(b"ial\n", now + Duration::from_secs(1), |l| {
            got.push(text(l));
            Taken::line(true)
        });
        assert_eq!(got.last().unwrap(), "partial");
    }

    #[test]
    fn a_closing_session_stops_the_feed_without_holding() {
        let t0 = Instant::now();
        let mut input = intake(10.0, 20, t0);
        let mut got = Vec::new();
        let step = input.feed(b"a\n/quit\nb\nc\n", t0, |l| {
            let t = text(l);
            let open = t != "/quit";
            got.push(t);
            Taken::line(open)
        });
        assert_eq!(step, Step::Done);
        assert_eq!(got, ["a", "/quit"]);
        assert!(!input.is_holding());
    }

    #[test]
    fn every_line_end_is_checked_on_its_own() {
        let t0 = Instant::now();
        let mut input = intake(1.0, 2, t0);
        let mut got = Vec::new();
        // Bare CR, CRLF and CR NUL each end one line; only the burst goes at once.
        let step = input.feed(b"a\rb\r\nc\r\0d\n", t0, |l| {
            got.push(text(l));
            Taken::line(true)
        });
        assert_eq!(got, ["a", "b"]);
        let Step::Hold { mut until, .. } = step else { panic!("{step:?}") };
        let mut holds = 0;
        loop {
            let step = input.resume(until, |l| {
                got.push(text(l));
                Taken::line(true)
            });
            match step {
                Step::Hold { until: next, .. } => (until, holds) = (next, holds + 1),
                Step::Done => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, ["a", "b", "c", "d"]);
        assert_eq!(holds, 1, "c and d come a token apart");
    }

    #[test]
    fn an_over_long_line_costs_one_token() {
        let t0 = Instant::now();
        let mut input = intake(1.0, 2, t0);
        let mut got = Vec::new();
        let long = [b'x'; 100];
        let step = input.feed(&[&long[..], b"\nok\nlate\n"].concat(), t0, |l| {
            got.push(text(l));
            Taken::line(true)
        });
        assert_eq!(got, ["<too long>", "ok"]);
        assert!(matches!(step, Step::Hold { .. }));
    }

    /// A dear line (a room created) pays before the next line is looked at, so the
    /// lines after it in the same read wait: four rooms in one packet at a burst of 10
    /// and a cost of 4 more each make two rooms now, not four.
    #[test]
    fn a_dear_line_is_charged_before_the_next() {
        let t0 = Instant::now();
        let mut input = intake(1.0, 10, t0);
        let mut got = Vec::new();
        let step = input.feed(b"/join #a\n/join #b\n/join #c\n/join #d\n", t0, |l| {
            got.push(text(l));
            Taken { open: true, extra: 4, waits: false }
        });
        assert_eq!(got, ["/join #a", "/join #b"]);
        let Step::Hold { until, .. } = step else { panic!("{step:?}") };
        // Ten tokens went on two lines of five; the third line needs one more token.
        assert_eq!(until.duration_since(t0), std::time::Duration::from_secs(1));
    }

    /// A line the session must wait on (a nick claim across nodes) holds the lines after
    /// it, the partial one included, until the session resumes; each waiting line holds
    /// the rest again.
    #[test]
    fn a_line_the_session_waits_on_holds_the_rest_until_resumed() {
        let t0 = Instant::now();
        let mut input = intake(1.0, 100, t0);
        let mut got = Vec::new();
        let mut take = |l: Line<'_>| {
            let t = text(l);
            let waits = t.starts_with("/nick");
            got.push(t);
            Taken { open: true, extra: 0, waits }
        };
        assert_eq!(input.feed(b"/nick a\nhello\n/nick b\nlast\npart", t0, &mut take), Step::Waits);
        assert!(input.is_holding());
        assert_eq!(input.resume(t0, &mut take), Step::Waits);
        assert!(input.is_holding());
        assert_eq!(input.resume(t0, &mut take), Step::Done);
        assert!(!input.is_holding());
        // A waiting line that ends the read holds nothing.
        assert_eq!(input.feed(b"ial\n/nick c\n", t0, &mut take), Step::Waits);
        assert!(!input.is_holding());
        assert_eq!(got, ["/nick a", "hello", "/nick b", "last", "partial", "/nick c"]);
    }

    /// Bytes that form no line are not rate-limited, so the server would read them as
    /// fast as they come: past the bound they end the connection. Lines up to the bound
    /// in pieces, and an over-long line that ends, do not. (The bound is 256 bytes here.)
    #[test]
    fn bytes_without_a_line_end_past_the_bound_are_excess_flood() {
        let t0 = Instant::now();
        let mut input = intake(1.0, 1000, t0);
        let mut got = Vec::new();
        let mut on_line = |l: Line<'_>| {
            got.push(text(l));
            Taken::line(true)
        };
        // 16 × 16 bytes is the bound: one over-long line of 200 bytes ends in time.
        assert_eq!(input.feed(&[b'x'; 200], t0, &mut on_line), Step::Done);
        assert_eq!(input.feed(b"\nok\n", t0, &mut on_line), Step::Done);
        for _ in 0..16 {
            assert_eq!(input.feed(&[b'y'; 16], t0, &mut on_line), Step::Done);
        }
        assert_eq!(input.feed(b"z", t0, &mut on_line), Step::Kick { lineless: 257 });
        assert_eq!(got, ["<too long>", "ok", "<too long>"]);
    }

    #[test]
    fn lines_wait_for_the_backbone_window_at_most_so_long() {
        let t0 = Instant::now();
        let window = Arc::new(Window::default());
        let flood = Fakelag::new(0.0, 0, t0);
        let mut input = Intake::new(LineBuffer::new(16), flood, 256, Some(window.clone()));
        let mut got = Vec::new();
        let mut take = |l: Line<'_>| {
            got.push(text(l));
            Taken::line(true)
        };
        assert_eq!(input.feed(b"a\n", t0, &mut take), Step::Done);
        window.acked(Some(window::WINDOW));
        let step = input.feed(b"b\nc\n", t0, &mut take);
        assert_eq!(step, Step::Window { until: t0 + window::LONGEST_HOLD });
        assert!(input.is_holding());
        let later = t0 + Duration::from_millis(10);
        assert_eq!(input.resume(later, &mut take), step, "still closed: the same bound");
        window.applied(1);
        assert_eq!(input.resume(later, &mut take), Step::Done, "open again");
        window.acked(Some(window::WINDOW * 3));
        let step = input.feed(b"d\n", later, &mut take);
        assert_eq!(step, Step::Window { until: later + window::LONGEST_HOLD });
        let step = input.resume(later + window::LONGEST_HOLD, &mut take);
        assert_eq!(step, Step::Done, "held long enough: the line goes");
        assert_eq!(got, ["a", "b", "c", "d"]);
    }
}
