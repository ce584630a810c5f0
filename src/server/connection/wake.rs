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

use tokio::io::{Interest, Ready};
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

/// Whether a wait reads the socket, and whether what it holds then comes before the
/// hello timer (see [`wait`]). One byte, as the `bool` it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reads {
    No,
    Yes,
    /// While the hello window runs.
    BeforeHello,
}

/// Waits for the first of: the close bound, the hello timer, the nick claim in
/// `claim`, held lines coming due (only if `lag` is true: not while closing), the
/// socket's readiness (to read unless `reads` is [`Reads::No`], to write if `writes` or
/// the TLS session has bytes to send; not waited for if neither), and the outbox's
/// wake-up. While a claim is in flight the timers wait with the session's lines (a
/// closing session finishes its claim first: `closing::finish`). A timer or claim that
/// is done must be replaced or cleared before the next wait (a finished future must not
/// be polled again).
///
/// With [`Reads::BeforeHello`] (the hello window runs), what the socket holds comes
/// before the hello timer: a node busy enough (thousands of clients connecting at once)
/// may first look at a connection after its window ended, when the client's hello has
/// been waiting in the socket all along. Taken for silence, it made the client a guest
/// and its hello a rename: two more nick claims across nodes each, which kept the node
/// busier still (13,270 of 45,000 clients so renamed in one run at load 10-14).
pub(super) fn wait<'a>(
    timers: &'a mut Timers,
    claim: &'a mut Option<Claiming>,
    lag: bool,
    transport: &'a Transport,
    (reads, writes): (Reads, bool),
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
            if reads == Reads::BeforeHello
                && let Poll::Ready(ready) = transport.poll_ready(cx, Interest::READABLE)
            {
                return Poll::Ready(Wake::Ready(ready));
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
        let reads = reads != Reads::No;
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A hello already in the socket when a busy node first looks at the connection,
    /// after the hello window ended, is read as the hello rather than taken for silence.
    #[tokio::test]
    async fn a_hello_received_in_the_window_comes_before_the_timer_fired_since() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.write_all(b"/nick alice\n").unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        stream.readable().await.unwrap();
        let transport = Transport::plain(stream);
        // The window ended a while ago: the timer is due at its first poll.
        let ended = tokio::time::Instant::now() - std::time::Duration::from_secs(1);
        let mut timers =
            Timers { hello: Some(Box::pin(tokio::time::sleep_until(ended))), ..Default::default() };
        let outbox = Outbox::new(1024);
        let socket = (Reads::BeforeHello, false);
        let woke = wait(&mut timers, &mut None, true, &transport, socket, &outbox).await;
        assert!(matches!(woke, Wake::Ready(Ok(ready)) if ready.is_readable()));
        // Once welcomed, the timer (then the wait before the join is announced) comes
        // first, as before.
        let socket = (Reads::Yes, false);
        let woke = wait(&mut timers, &mut None, true, &transport, socket, &outbox).await;
        assert!(matches!(woke, Wake::Hello));
    }
}
