//! Running a future from synchronous code: at once when it is ready, else in a task.
//!
//! Account writes and moderation kept across nodes are futures: on a backbone they wait
//! for NATS, and a task that awaits them leaves its worker thread free (blocking one
//! instead, thousands at once, used up tokio's blocking pool and stalled the node).
//! Without a backbone the same futures are ready when first polled (a file written, a
//! list changed in memory): polled once (`FutureExt::now_or_never`), the single process
//! acts on them synchronously, exactly as before, and waits for nothing.

use std::future::Future;

use futures_util::FutureExt;

/// Runs `future` to its end: at once when it is ready, else in a task of its own (its
/// caller does not wait for the outcome, only the future acts on it).
pub(crate) fn now_or_spawn(future: impl Future<Output = ()> + Send + 'static) {
    let mut future = Box::pin(future);
    if future.as_mut().now_or_never().is_none() {
        tokio::spawn(future);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// A ready future runs before `now_or_spawn` returns, with no runtime at all.
    #[test]
    fn a_ready_future_runs_at_once() {
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        now_or_spawn(async move { flag.store(true, Ordering::SeqCst) });
        assert!(ran.load(Ordering::SeqCst));
    }
}
