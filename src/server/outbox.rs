//! A connection's bounded queue of encoded lines waiting to be written (its sendq), and
//! the batch its task is writing.
//!
//! Senders append each line to the queue and never wait: when a recipient's queue
//! would exceed its byte limit, the queue closes itself instead, and that connection's
//! task drops the client. So the fan-out never waits on a slow reader and memory per
//! client stays bounded.
//!
//! A line is queued as a [`Frame`] shared by all its recipients, not as a copy of its
//! bytes: a fan-out to N members costs N reference counts and N 16-byte slots, however
//! long the line. The first version copied the bytes into one buffer per recipient,
//! which matched this for 20-byte lines but made every byte cost about 1.5 ns per
//! recipient: under a burst, each outbox's buffer grew by doubling (copying what it held
//! each time) into fresh pages the kernel had to fault in and zero, and a structured
//! client's 100-byte lines cost twice a text client's 20-byte ones (docs/benchmarks.md).
//! The bytes are copied once, by the writing task, into a write buffer of at most
//! [`WRITE_BATCH`] bytes, so the kernel still gets one `write` for many lines (a
//! `writev` of one iovec per line was measured slower).

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

/// One encoded line, its `\n` included, shared by every outbox it was queued in.
pub type Frame = Arc<[u8]>;

/// Most bytes copied into a write buffer for one `write`: large enough that a backlog
/// goes out in few system calls, small enough to stay below glibc's mmap threshold
/// (128 KiB), so the buffer is recycled by the allocator instead of mapped, faulted in
/// and unmapped each time.
pub const WRITE_BATCH: usize = 64 * 1024;

pub struct Outbox {
    /// A plain mutex: it guards a queue push and is never held across an `.await`.
    state: Mutex<State>,
    /// The connection task's waker, woken when the queue stops being empty or closes.
    /// Not a `Notify`: waiting on one takes a 64-byte `Notified` future in every
    /// connection's task, where this is polled in place ([`Outbox::poll_woken`]).
    waker: AtomicWaker,
    /// A wake-up not yet seen by the task (a permit, as `Notify::notify_one` keeps).
    woken: AtomicBool,
    /// Most bytes queued before the client counts as not reading: `--send-queue`, a
    /// `u32` (4 bytes here rather than 8 bring the shared block from 136 to 120 bytes,
    /// one allocator step less per connection).
    limit: u32,
    /// Whether `state.close` is set, readable without the lock: the task checks it on
    /// every wake-up.
    close_requested: AtomicBool,
    /// Another connection took this session over (a resume while this connection still
    /// looked alive): the task ends without a word to anyone.
    superseded: AtomicBool,
}

#[derive(Default)]
struct State {
    /// Lines in order; unallocated while empty.
    queue: VecDeque<Frame>,
    /// The bytes of the lines in `queue`, counted against the limit.
    bytes: usize,
    /// Set when the client overflowed its queue; the task then drops it.
    overflowed: bool,
    /// Set by an operator's kick or ban: the leave reason the task closes with, after
    /// the lines queued before it (the kicked user's own notice) are written. Boxed
    /// text: 8 bytes less than a `String` in every connection's outbox.
    close: Option<Box<str>>,
}

impl Outbox {
    /// An empty outbox that holds at most `limit` bytes (`--send-queue`; more than
    /// `u32::MAX` counts as `u32::MAX`).
    pub fn new(limit: usize) -> Outbox {
        Outbox {
            state: Mutex::default(),
            waker: AtomicWaker::new(),
            woken: AtomicBool::new(false),
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
            close_requested: AtomicBool::new(false),
            superseded: AtomicBool::new(false),
        }
    }

    /// Tells the task that its session now belongs to another connection.
    pub fn supersede(&self) {
        self.superseded.store(true, Ordering::Release);
        self.wake();
    }

    /// Wakes the connection task, or has its next wait end at once if it is not
    /// waiting: a queued line, a close, a takeover, a shutdown or a resume.
    pub fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Ready once [`Outbox::wake`] was called since the last time this was ready. Only
    /// the connection's own task waits here (the last waker polled is the one woken).
    pub fn poll_woken(&self, cx: &mut Context<'_>) -> Poll<()> {
        // Registered first, so a wake between the check and the registration is seen.
        self.waker.register(cx.waker());
        if self.woken.swap(false, Ordering::AcqRel) { Poll::Ready(()) } else { Poll::Pending }
    }

    /// [`Outbox::poll_woken`] as a future, for waits that are not the task's main one.
    pub fn woken(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(|cx| self.poll_woken(cx))
    }

    pub fn is_superseded(&self) -> bool {
        self.superseded.load(Ordering::Acquire)
    }

    /// Queues a line meant for this client only; never blocks.
    pub fn push(&self, line: &[u8]) {
        self.enqueue(line.len(), || Frame::from(line));
    }

    /// Queues a line shared with other recipients; never blocks.
    pub fn push_frame(&self, frame: &Frame) {
        self.enqueue(frame.len(), || Arc::clone(frame));
    }

    /// Queues the line `frame` makes, of `len` bytes, unless that overflows the queue
    /// (which closes it) or it already overflowed. Wakes the task for the first line.
    fn enqueue(&self, len: usize, frame: impl FnOnce() -> Frame) {
        let mut s = self.state.lock().expect("outbox lock poisoned");
        if s.overflowed {
            return;
        }
        let was_empty = s.queue.is_empty();
        if s.bytes + len > self.limit as usize {
            s.overflowed = true;
            s.queue = VecDeque::new();
            s.bytes = 0;
        } else {
            s.queue.push_back(frame());
            s.bytes += len;
            if !was_empty {
                // The task was already woken for the first line and will take this too.
                return;
            }
        }
        drop(s);
        self.wake();
    }

    /// Moves everything queued into `batch`, if `batch` is empty (a batch still being
    /// written keeps the rest counted against the limit here). Returns false once the
    /// client has overflowed its queue.
    pub fn take(&self, batch: &mut Batch) -> bool {
        let mut s = self.state.lock().expect("outbox lock poisoned");
        if s.overflowed {
            return false;
        }
        if batch.is_empty() && !s.queue.is_empty() {
            std::mem::swap(&mut batch.frames, &mut s.queue);
            s.bytes = 0;
        }
        true
    }

    /// Asks the connection's task to close with the leave reason `reason`.
    pub fn close(&self, reason: String) {
        self.state
            .lock()
            .expect("outbox lock poisoned")
            .close
            .get_or_insert(reason.into_boxed_str());
        self.close_requested.store(true, Ordering::Release);
        self.wake();
    }

    /// The reason given to [`Outbox::close`], once.
    pub fn take_close(&self) -> Option<String> {
        if !self.close_requested.swap(false, Ordering::Acquire) {
            return None;
        }
        self.state.lock().expect("outbox lock poisoned").close.take().map(String::from)
    }

    pub fn is_empty(&self) -> bool {
        self.state.lock().expect("outbox lock poisoned").queue.is_empty()
    }
}

/// Lines taken from the outbox and not yet written, all of them, so every line that
/// queued up while the task was away goes out in as few `write`s as the socket allows.
/// Holds no memory once written, so an idle connection keeps no buffer.
#[derive(Default)]
pub struct Batch {
    /// Lines not yet copied into `buf`, oldest first.
    frames: VecDeque<Frame>,
    /// Bytes for the next `write`: lines copied from `frames`, at most about
    /// [`WRITE_BATCH`].
    buf: Vec<u8>,
    /// How much of `buf` has been written.
    sent: usize,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty() && self.buf.is_empty()
    }

    /// Hands the batch to `write` (which returns the bytes it took, or `None` when the
    /// socket is full) until it is all written or the socket is full.
    ///
    /// # Errors
    /// The first error `write` returns; what it did not take stays in the batch.
    pub fn write_with(
        &mut self,
        mut write: impl FnMut(&[u8]) -> io::Result<Option<usize>>,
    ) -> io::Result<()> {
        loop {
            if self.sent == self.buf.len() && !self.refill() {
                return Ok(());
            }
            match write(&self.buf[self.sent..])? {
                Some(n) => self.sent += n,
                None => return Ok(()),
            }
        }
    }

    /// Replaces the written-out buffer with the next lines; returns false, and frees
    /// everything, when there are none.
    fn refill(&mut self) -> bool {
        self.buf.clear();
        self.sent = 0;
        if self.frames.is_empty() {
            *self = Batch::default();
            return false;
        }
        // Sized first, so a slow client's buffer holds what it waits for and no more.
        let (mut count, mut bytes) = (0, 0);
        for frame in &self.frames {
            if count > 0 && bytes + frame.len() > WRITE_BATCH {
                break;
            }
            count += 1;
            bytes += frame.len();
        }
        self.buf.reserve_exact(bytes);
        for frame in self.frames.drain(..count) {
            self.buf.extend_from_slice(&frame);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `batch` into a socket that takes at most `room` bytes per call and
    /// `calls` calls, collecting what it took.
    fn drain(batch: &mut Batch, room: usize, calls: usize, into: &mut Vec<u8>) {
        let mut left = calls;
        batch
            .write_with(|data| {
                if left == 0 {
                    return Ok(None);
                }
                left -= 1;
                let n = data.len().min(room);
                into.extend_from_slice(&data[..n]);
                Ok(Some(n))
            })
            .unwrap();
    }

    #[test]
    fn lines_come_out_in_order() {
        let o = Outbox::new(100);
        o.push(b"a\n");
        o.push_frame(&Frame::from(&b"b\n"[..]));
        let mut batch = Batch::default();
        assert!(o.take(&mut batch));
        assert!(o.is_empty());
        let mut out = Vec::new();
        drain(&mut batch, usize::MAX, usize::MAX, &mut out);
        assert_eq!(out, b"a\nb\n");
        assert!(batch.is_empty());
    }

    #[test]
    fn a_frame_is_shared_not_copied() {
        let (a, b) = (Outbox::new(100), Outbox::new(100));
        let frame = Frame::from(&b"hello\n"[..]);
        a.push_frame(&frame);
        b.push_frame(&frame);
        assert_eq!(Arc::strong_count(&frame), 3);
        let mut batch = Batch::default();
        assert!(a.take(&mut batch));
        drain(&mut batch, usize::MAX, usize::MAX, &mut Vec::new());
        assert_eq!(Arc::strong_count(&frame), 2, "a written line lets go of its frame");
    }

    #[test]
    fn a_full_socket_keeps_the_rest_for_later() {
        let o = Outbox::new(1 << 20);
        let line = [b'x'; 1000];
        let mut expected = Vec::new();
        for i in 0..200u8 {
            let mut l = line.to_vec();
            l[0] = i;
            l[999] = b'\n';
            o.push(&l);
            expected.extend_from_slice(&l);
        }
        let mut batch = Batch::default();
        assert!(o.take(&mut batch));
        let mut out = Vec::new();
        // 7 bytes a call, 10 calls a wake-up: every cut lands mid-line.
        while !batch.is_empty() {
            drain(&mut batch, 7_777, 10, &mut out);
        }
        assert_eq!(out, expected);
    }

    #[test]
    fn one_write_carries_at_most_a_write_batch() {
        let o = Outbox::new(1 << 20);
        for _ in 0..100 {
            o.push(&[b'y'; 2000]);
        }
        let mut batch = Batch::default();
        assert!(o.take(&mut batch));
        let mut sizes = Vec::new();
        batch
            .write_with(|data| {
                sizes.push(data.len());
                Ok(Some(data.len()))
            })
            .unwrap();
        assert!(sizes.iter().all(|&n| n <= WRITE_BATCH), "{sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 200_000);
        assert!(sizes.len() > 200_000 / WRITE_BATCH);
    }

    #[test]
    fn a_write_error_keeps_the_batch() {
        let o = Outbox::new(100);
        o.push(b"a\n");
        let mut batch = Batch::default();
        assert!(o.take(&mut batch));
        let err = batch.write_with(|_| Err(io::ErrorKind::BrokenPipe.into())).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        assert!(!batch.is_empty());
    }

    #[test]
    fn overflow_closes_and_frees_the_queue() {
        let o = Outbox::new(10);
        o.push(b"12345\n");
        o.push(b"12345\n");
        let mut batch = Batch::default();
        assert!(!o.take(&mut batch));
        assert!(batch.is_empty() && o.is_empty());
        o.push(b"x");
        assert!(o.is_empty());
    }

    #[test]
    fn overflow_is_seen_while_a_batch_is_still_pending() {
        let o = Outbox::new(10);
        let mut pending = Batch::default();
        o.push(b"first\n");
        assert!(o.take(&mut pending));
        o.push(b"second\n");
        assert!(o.take(&mut pending), "not overflowed yet");
        let mut out = Vec::new();
        drain(&mut pending, usize::MAX, 1, &mut out);
        assert_eq!(out, b"first\n", "nothing more is taken while a batch is pending");
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
        let mut batch = Batch::default();
        for _ in 0..100 {
            o.push(b"12345678\n");
            assert!(o.take(&mut batch));
            drain(&mut batch, usize::MAX, usize::MAX, &mut Vec::new());
        }
    }
}
