//! What a connection task waits for between turns, and the one wait over all of it.
//!
//! The wait is a hand-written poll rather than `tokio::select!`: `select!` keeps a
//! future per branch in the task while it waits (the socket's readiness future alone is
//! 136 bytes, the outbox's `Notified` 64, each timer's 24), and every connection's task,
//! idle ones included, carried those 296 bytes. Here the socket is polled through its
//! registration's own waker slots (`poll_read_ready`, `poll_write_ready`), the outbox
//! through its waker, and the timers in place, so the wait holds only references.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::Ready;
use tokio::time::Sleep;

use super::super::outbox::Outbox;
use super::super::transport::Transport;
use super::claiming::{Claimed, Claiming};

/// What held lines wait for: a fakelag timer, or the backbone's window.
pub(super) type Due = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The task's timers, each boxed and made only while it runs, so that an idle
/// connection's task holds three empty slots rather than three timer entries.
#[derive(Default)]
pub(super) struct Timers {
    /// The bound on flushing a closing session's last lines; set once closing.
    pub close_by: Option<Pin<Box<Sleep>>>,
    /// The hello window, then (reset) the wait before a silent connection is announced;
    /// dropped once the client is announced.
    pub hello: Option<Pin<Box<Sleep>>>,
    /// When held lines are due (fakelag, the backbone's window); set while holding.
    pub lag: Option<Due>,
}

/// What ended a wait, in the order they are looked at (the first ready wins).
pub(super) enum Wake {
    /// The closing session's grace ran out.
    CloseBy,
    /// The hello timer fired.
    Hello,
    /// The nick claim across nodes is done. Boxed: its outcome is 264 bytes, and the
    /// release build keeps a wake-up in the task across the yield that may follow it,
    /// so every connection's task would carry them.
    Claimed(Box<Claimed>),
    /// Held lines are due.
    Lag,
    /// The socket is ready for the interest waited on (or failed).
    Ready(io::Result<Ready>),
    /// The outbox has lines, or a close, takeover or shutdown to tell.
    Outbox,
}

/// Waits for the first of: the close bound, the hello timer, the nick claim in
/// `claim`, held lines coming due (only if `lag` is true: not while closing), the
/// socket's readiness (to read if `reads`, to write if `writes` or the TLS session has
/// bytes to send; not waited for if neither), and the outbox's wake-up. While a claim is
/// in flight the timers wait with the session's lines (a closing session finishes its
/// claim first: `closing::finish`). A timer or claim that is done must be replaced or
/// cleared before the next wait (a finished future must not be polled again).
pub(super) fn wait<'a>(
    timers: &'a mut Timers,
    claim: &'a mut Option<Claiming>,
    lag: bool,
    transport: &'a Transport,
    (reads, writes): (bool, bool),
    outbox: &'a Outbox,
) -> impl Future<Output = Wake> + 'a {
    poll_fn(move |cx| {
        if let Some(claim) = claim.as_mut() {
            if let Poll::Ready(claimed) = Pin::new(claim).poll(cx) {
                return Poll::Ready(Wake::Claimed(Box::new(claimed)));
            }
        } else {
            if fired(&mut timers.close_by, cx) {
                return Poll::Ready(Wake::CloseBy);
            }
            if fired(&mut timers.hello, cx) {
                return Poll::Ready(Wake::Hello);
            }
            if lag && fired(&mut timers.lag, cx) {
                return Poll::Ready(Wake::Lag);
            }
        }
        // Worked out on each poll rather than kept (an `Option<Interest>` is 16 bytes
        // in every waiting task): the transport does not change while it waits.
        if (reads || writes || transport.wants_write())
            && let Poll::Ready(ready) = transport.poll_ready(cx, transport.interest(reads, writes))
        {
            return Poll::Ready(Wake::Ready(ready));
        }
        outbox.poll_woken(cx).map(|()| Wake::Outbox)
    })
}

/// Polls the timer in `slot`, if any: true once it is done.
fn fired<F: Future + ?Sized>(slot: &mut Option<Pin<Box<F>>>, cx: &mut Context<'_>) -> bool {
    slot.as_mut().is_some_and(|timer| timer.as_mut().poll(cx).is_ready())
}
