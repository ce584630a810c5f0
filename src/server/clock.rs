//! The server's two clocks, and which rule reads which.
//!
//! - **Wall time** ([`now`]) for what outlives the process or leaves the machine: a
//!   ban's or a mute's `until`, written to `--bans` and sent to the other nodes of a
//!   backbone, must mean the same instant after a restart and on another machine, which
//!   only wall time does.
//! - **Monotonic time** (`tokio::time::Instant`) for waits that live and die with the
//!   process: the wrong-password backoff ([`crate::auth::Failures`]), the hello window,
//!   flood control. A wall clock stepped by NTP or by hand must not shorten or stretch
//!   them, and tokio's clock is the one `tokio::time::pause()` and `advance()` move.
//!
//! Both follow tokio's clock, so a test on a paused runtime advances through a 2 s ban
//! or a 30 s backoff without waiting for it.

use jiff::{SignedDuration, Timestamp};

/// Wall time as tokio's clock sees it: the system's wall clock, moved by however far
/// tokio's clock stands from the real monotonic clock. While the runtime runs in real
/// time (always, in `tchat serve`) the two stand together and this is
/// [`Timestamp::now`]; on a paused runtime it is the wall time at the pause plus what
/// the test has advanced since, so a ban's `until` lapses when the test moves past it.
pub fn now() -> Timestamp {
    let wall = Timestamp::now();
    let (tokio, real) = (tokio::time::Instant::now().into_std(), std::time::Instant::now());
    let ahead = match tokio.checked_duration_since(real) {
        Some(ahead) => SignedDuration::try_from(ahead),
        None => SignedDuration::try_from(real - tokio).map(|behind| -behind),
    };
    ahead.ok().and_then(|ahead| wall.checked_add(ahead).ok()).unwrap_or(wall)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn wall_time_follows_a_paused_clock() {
        let before = now();
        tokio::time::advance(Duration::from_secs(30)).await;
        let after = now();
        let moved = after.duration_since(before);
        // 30 s advanced; the real time the test took is not added (the clock is paused).
        assert!(moved >= SignedDuration::from_secs(30), "{moved:?}");
        assert!(moved < SignedDuration::from_secs(31), "{moved:?}");
    }

    #[tokio::test]
    async fn in_real_time_it_is_the_wall_clock() {
        let (a, ours, b) = (Timestamp::now(), now(), Timestamp::now());
        let slack = SignedDuration::from_millis(50);
        assert!(ours >= a - slack && ours <= b + slack, "{a} {ours} {b}");
    }
}
