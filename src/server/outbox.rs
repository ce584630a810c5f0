//! A connection's bounded queue of encoded lines waiting to be written.
//!
//! Senders append the bytes of each line to the queue and never wait: when a
//! recipient's queue would exceed its byte limit, the queue closes itself instead, and
//! that connection's task drops the client. So the fan-out never waits on a slow reader
//! and memory per client stays bounded.
//!
//! The queue is one byte buffer rather than a list of shared frames: a chat line is a
//! few dozen bytes, and copying it costs less than sharing it. A shared frame needs a
//! reference count bumped by the fan-out and dropped by each recipient's task on the
//! other core (the same cache line bouncing between cores for every delivery), a list
//! slot, and a copy into the write buffer all the same. Here each delivery is one copy,
//! and the writer hands the kernel the buffer it takes, as is.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

pub struct Outbox {
    /// A plain mutex: it guards a copy of a line and is never held across an `.await`.
    state: Mutex<State>,
    /// Wakes the connection task when the queue stops being empty or closes.
    pub(super) wake: Notify,
    /// Most bytes queued before the client counts as not reading.
    limit: usize,
    /// Whether `state.close` is set, readable without the lock: the task checks it on
    /// every wake-up.
    close_requested: AtomicBool,
    /// Another connection took this session over (a resume while this connection still
    /// looked alive): the task ends without a word to anyone.
    superseded: AtomicBool,
}

/// Room for a queue's first lines: a busy spell then grows the buffer a few times
/// rather than once per line.
const FIRST_CAPACITY: usize = 512;

#[derive(Default)]
struct State {
    /// Lines, back to back; unallocated while empty.
    queue: Vec<u8>,
    /// Set when the client overflowed its queue; the task then drops it.
    overflowed: bool,
    /// Set by an operator's kick or ban: the leave reason the task closes with, after
    /// the lines queued before it (the kicked user's own notice) are written.
    close: Option<String>,
}

impl Outbox {
    pub fn new(limit: usize) -> Outbox {
        Outbox {
            state: Mutex::default(),
            wake: Notify::new(),
            limit,
            close_requested: AtomicBool::new(false),
            superseded: AtomicBool::new(false),
        }
    }

    /// Tells the task that its session now belongs to another connection.
    pub fn supersede(&self) {
        self.superseded.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    pub fn is_superseded(&self) -> bool {
        self.superseded.load(Ordering::Acquire)
    }

    /// Queues a copy of `line`; never blocks. Lines pushed after an overflow are ignored.
    pub fn push(&self, line: &[u8]) {
        let mut s = self.state.lock().expect("outbox lock poisoned");
        if s.overflowed {
            return;
        }
        let was_empty = s.queue.is_empty();
        if s.queue.len() + line.len() > self.limit {
            s.overflowed = true;
            s.queue = Vec::new();
        } else {
            if s.queue.capacity() == 0 {
                s.queue.reserve(line.len().max(FIRST_CAPACITY));
            }
            s.queue.extend_from_slice(line);
            if !was_empty {
                // The task was already woken for the first line and will take this too.
                return;
            }
        }
        drop(s);
        self.wake.notify_one();
    }

    /// Moves everything queued into `into`, if `into` is empty (a batch still being
    /// written keeps the rest counted against the limit here). Returns false once the
    /// client has overflowed its queue.
    pub fn take(&self, into: &mut Vec<u8>) -> bool {
        let mut s = self.state.lock().expect("outbox lock poisoned");
        if s.overflowed {
            return false;
        }
        if into.is_empty() {
            std::mem::swap(into, &mut s.queue);
        }
        true
    }

    /// Asks the connection's task to close with the leave reason `reason`.
    pub fn close(&self, reason: String) {
        self.state.lock().expect("outbox lock poisoned").close.get_or_insert(reason);
        self.close_requested.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// The reason given to [`Outbox::close`], once.
    pub fn take_close(&self) -> Option<String> {
        if !self.close_requested.swap(false, Ordering::Acquire) {
            return None;
        }
        self.state.lock().expect("outbox lock poisoned").close.take()
    }

    pub fn is_empty(&self) -> bool {
        self.state.lock().expect("outbox lock poisoned").queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_out_in_order() {
        let o = Outbox::new(100);
        o.push(b"a\n");
        o.push(b"b\n");
        let mut out = Vec::new();
        assert!(o.take(&mut out));
        assert_eq!(out, b"a\nb\n");
        assert!(o.is_empty());
    }

    #[test]
    fn overflow_closes_and_frees_the_queue() {
        let o = Outbox::new(10);
        o.push(b"12345\n");
        o.push(b"12345\n");
        let mut out = Vec::new();
        assert!(!o.take(&mut out));
        assert!(out.is_empty() && o.is_empty());
        o.push(b"x");
        assert!(o.is_empty());
    }

    #[test]
    fn overflow_is_seen_while_a_batch_is_still_pending() {
        let o = Outbox::new(10);
        let mut pending = Vec::new();
        o.push(b"first\n");
        assert!(o.take(&mut pending));
        o.push(b"second\n");
        assert!(o.take(&mut pending), "not overflowed yet");
        assert_eq!(pending, b"first\n", "nothing more is taken while a batch is pending");
        o.push(b"third\n");
        assert!(!o.take(&mut pending));
    }

    #[test]
    fn a_close_request_is_taken_once() {
        let o = Outbox::new(10);
        assert_eq!(o.take_close(), None);
        o.close("kicked".into());
        o.close("again".into());
        assert_eq!(o.take_close().as_deref(), Some("kicked"));
        assert_eq!(o.take_close(), None);
    }

    #[test]
    fn taking_resets_the_budget() {
        let o = Outbox::new(10);
        let mut out = Vec::new();
        for _ in 0..100 {
            o.push(b"12345678\n");
            assert!(o.take(&mut out));
            out.clear();
        }
    }
}
