//! Taking a future's outcome at once when it has one, from synchronous code.
//!
//! Account writes and moderation kept across nodes are futures: on a backbone they wait
//! for NATS, and a task that awaits them leaves its worker thread free (blocking one
//! instead, thousands at once, used up tokio's blocking pool and stalled the node).
//! Without a backbone the same futures are ready when first polled (a file written, a
//! list changed in memory): polled once here, the single process acts on them
//! synchronously, exactly as before, and waits for nothing.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// `future`'s outcome if it has one on its first poll; `None` when it waits (it is then
/// to be polled again by a task, which registers its own waker).
pub(crate) fn at_once<F: Future + ?Sized>(future: Pin<&mut F>) -> Option<F::Output> {
    match future.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

/// Runs `future` to its end: at once when it is ready, else in a task of its own (its
/// caller does not wait for the outcome, only the future acts on it).
pub(crate) fn now_or_spawn(future: impl Future<Output = ()> + Send + 'static) {
    let mut future = Box::pin(future);
    if at_once(future.as_mut()).is_none() {
        tokio::spawn(future);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_future_is_taken_a_waiting_one_is_not() {
        assert_eq!(at_once(std::pin::pin!(async { 7 })), Some(7));
        assert_eq!(at_once(std::pin::pin!(std::future::pending::<u8>())), None);
    }
}
