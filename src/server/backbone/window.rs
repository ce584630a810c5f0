//! Flow control between a node's senders and its mirror of the stream.
//!
//! In a single process a line is fanned out as it is read, so a sender can never run
//! ahead of delivery: the socket is not read again until its line is delivered. On a
//! backbone, reading a line and delivering it are two ends of a round trip through
//! NATS, and a burst read in a few milliseconds can put thousands of events in the
//! stream before the node has fanned out the first. The stream keeps only so many
//! events per room ([`super::RETAINED_BEYOND_HISTORY`] beyond `--history`) and drops the
//! oldest first, even those a node has not read yet: a node that falls that far behind
//! loses them. So a node lets its clients hand it lines only while its mirror is less
//! than [`WINDOW`] events behind the stream as its own publishes last saw it; past
//! that, connections hold their input (as fakelag does: nothing is read, TCP slows the
//! sender) until the mirror has caught up.
//!
//! The lag counted is this node's: events it queued and NATS has not acked yet, plus
//! how far its mirror is behind the last stream sequence an ack gave. Another node's
//! burst that this node cannot keep up with only shows once this node publishes; if it
//! then still falls behind what the stream keeps, the mirror sees the gap and says so
//! (the `mirror` task).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use tokio::sync::Notify;

/// How many events a node may be behind the stream before its connections hold their
/// input. At this machine's fan-out speed (~15,000 events a second per node to 100
/// clients) it is a few tens of milliseconds of delivery.
pub const WINDOW: u64 = 512;

/// Longest a connection holds its input for the window at a time: a mirror that does
/// not move for that long is stuck (NATS lost), and holding further would only stall
/// the sender; its lines then go out and are refused or delivered as without the
/// window.
pub const LONGEST_HOLD: Duration = super::TIMEOUT;

/// A node's lag behind the stream, and the connections waiting for it to shrink.
#[derive(Default)]
pub struct Window {
    /// Events queued for the stream and not yet acked or refused.
    unacked: AtomicU64,
    /// The highest stream sequence an ack of this node's publishes gave.
    head: AtomicU64,
    /// The last sequence the mirror applied.
    applied: AtomicU64,
    /// Set by a connection before it waits, so that the mirror wakes it.
    waiting: AtomicBool,
    opened: Notify,
}

impl Window {
    /// Events this node is behind: unacked ones and those between the mirror and the
    /// last acked sequence.
    pub fn lag(&self) -> u64 {
        let behind = self.head.load(SeqCst).saturating_sub(self.applied.load(SeqCst));
        self.unacked.load(SeqCst) + behind
    }

    /// Whether a connection may hand the node another line now.
    pub fn is_open(&self) -> bool {
        self.lag() < WINDOW
    }

    /// An event was queued for the stream.
    pub fn queued(&self) {
        self.unacked.fetch_add(1, SeqCst);
    }

    /// A queued event was acked as stream sequence `seq`, or refused (`None`).
    pub fn acked(&self, seq: Option<u64>) {
        if let Some(seq) = seq {
            self.head.fetch_max(seq, SeqCst);
        }
        // Never below zero: a restarted count or a late ack after a refusal.
        let _ = self.unacked.fetch_update(SeqCst, SeqCst, |n| Some(n.saturating_sub(1)));
        self.wake_if_open();
    }

    /// The mirror applied stream sequence `seq`.
    pub fn applied(&self, seq: u64) {
        self.applied.fetch_max(seq, SeqCst);
        self.wake_if_open();
    }

    fn wake_if_open(&self) {
        // Read after the change above: either this sees a waiter's flag, or the
        // waiter, which sets its flag before looking, sees the change (both SeqCst).
        if self.waiting.load(SeqCst) && self.is_open() {
            self.waiting.store(false, SeqCst);
            self.opened.notify_waiters();
        }
    }

    /// Waits until the window is open, or until `until` at the latest.
    pub async fn wait_open(&self, until: tokio::time::Instant) {
        let wait = async {
            loop {
                let opened = self.opened.notified();
                tokio::pin!(opened);
                opened.as_mut().enable();
                self.waiting.store(true, SeqCst);
                if self.is_open() {
                    return;
                }
                opened.await;
            }
        };
        let _ = tokio::time::timeout_at(until, wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_counts_unacked_events_and_the_mirror_behind_the_last_ack() {
        let w = Window::default();
        assert!(w.is_open());
        for _ in 0..WINDOW {
            w.queued();
        }
        assert!(!w.is_open(), "{} unacked", w.lag());
        (1..=WINDOW).for_each(|seq| w.acked(Some(seq)));
        assert_eq!(w.lag(), WINDOW, "acked but not applied yet");
        w.applied(10);
        assert!(w.is_open());
        assert_eq!(w.lag(), WINDOW - 10);
        w.acked(None);
        assert_eq!(w.lag(), WINDOW - 10, "a refusal with nothing unacked stays at zero");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_connection_wakes_when_the_mirror_catches_up() {
        let w = std::sync::Arc::new(Window::default());
        w.acked(Some(WINDOW * 2));
        let waiter = tokio::spawn({
            let w = w.clone();
            async move {
                let t = tokio::time::Instant::now();
                w.wait_open(t + LONGEST_HOLD).await;
                t.elapsed()
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiter.is_finished());
        w.applied(WINDOW * 2 - 1);
        let waited = waiter.await.unwrap();
        assert_eq!(waited, Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_mirror_holds_a_connection_only_so_long() {
        let w = Window::default();
        w.acked(Some(WINDOW * 2));
        let t = tokio::time::Instant::now();
        w.wait_open(t + LONGEST_HOLD).await;
        assert_eq!(t.elapsed(), LONGEST_HOLD);
    }
}
