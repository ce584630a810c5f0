//! A connection's bounded queue of encoded lines waiting to be written.
//!
//! Senders push shared `Bytes` (an event is encoded once and the same buffer goes to
//! every recipient) and never wait: when a recipient's queue would exceed its byte limit,
//! the queue closes itself instead, and that connection's task drops the client. So the
//! fan-out never waits on a slow reader and memory per client stays bounded.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;

pub struct Outbox {
    /// A plain mutex: it guards a few pointer moves and is never held across an `.await`.
    state: Mutex<State>,
    /// Wakes the connection task when the queue stops being empty or closes.
    pub(super) wake: Notify,
    /// Most bytes queued before the client counts as not reading.
    limit: usize,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Bytes>,
    bytes: usize,
    /// Set when the client overflowed its queue; the task then drops it.
    overflowed: bool,
}

impl Outbox {
    pub fn new(limit: usize) -> Outbox {
        Outbox { state: Mutex::default(), wake: Notify::new(), limit }
    }

    /// Queues `frame`; never blocks. Frames pushed after an overflow are ignored.
    pub fn push(&self, frame: Bytes) {
        let mut s = self.state.lock().expect("outbox lock poisoned");
        if s.overflowed {
            return;
        }
        if s.bytes + frame.len() > self.limit {
            s.overflowed = true;
            s.queue = VecDeque::new();
            s.bytes = 0;
        } else {
            s.bytes += frame.len();
            s.queue.push_back(frame);
            if s.queue.len() > 1 {
                // The task was already woken for the first frame and will take this too.
                return;
            }
        }
        drop(s);
        self.wake.notify_one();
    }

    /// Moves everything queued into `into`, if `into` is empty (a batch still being
    /// written keeps the rest counted against the limit here). Returns false once the
    /// client has overflowed its queue.
    pub fn take(&self, into: &mut VecDeque<Bytes>) -> bool {
        let mut s = self.state.lock().expect("outbox lock poisoned");
        if s.overflowed {
            return false;
        }
        if into.is_empty() {
            std::mem::swap(into, &mut s.queue);
            s.bytes = 0;
        }
        true
    }

    pub fn is_empty(&self) -> bool {
        self.state.lock().expect("outbox lock poisoned").queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_out_in_order() {
        let o = Outbox::new(100);
        o.push(Bytes::from_static(b"a\n"));
        o.push(Bytes::from_static(b"b\n"));
        let mut out = VecDeque::new();
        assert!(o.take(&mut out));
        assert_eq!(out, [Bytes::from_static(b"a\n"), Bytes::from_static(b"b\n")]);
        assert!(o.is_empty());
    }

    #[test]
    fn overflow_closes_and_frees_the_queue() {
        let o = Outbox::new(10);
        o.push(Bytes::from_static(b"12345\n"));
        o.push(Bytes::from_static(b"12345\n"));
        let mut out = VecDeque::new();
        assert!(!o.take(&mut out));
        assert!(out.is_empty() && o.is_empty());
        o.push(Bytes::from_static(b"x"));
        assert!(o.is_empty());
    }

    #[test]
    fn overflow_is_seen_while_a_batch_is_still_pending() {
        let o = Outbox::new(10);
        let mut pending = VecDeque::new();
        o.push(Bytes::from_static(b"first\n"));
        assert!(o.take(&mut pending));
        o.push(Bytes::from_static(b"second\n"));
        assert!(o.take(&mut pending), "not overflowed yet");
        assert_eq!(pending.len(), 1, "nothing more is taken while a batch is pending");
        o.push(Bytes::from_static(b"third\n"));
        assert!(!o.take(&mut pending));
    }

    #[test]
    fn taking_resets_the_budget() {
        let o = Outbox::new(10);
        let mut out = VecDeque::new();
        for _ in 0..100 {
            o.push(Bytes::from_static(b"12345678\n"));
            assert!(o.take(&mut out));
            out.clear();
        }
    }
}
