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

use std::sync::Mutex;
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};

/// How far the wall clock may part from the monotonic one before [`now`] takes it
/// again: more than reading the two clocks one after the other ever differs by, less
/// than anyone reading a ban's `until` would notice.
const REANCHOR: SignedDuration = SignedDuration::from_millis(10);

/// A moment read on both clocks: [`now`] counts monotonic time from it.
static ANCHOR: Mutex<Option<(Instant, Timestamp)>> = Mutex::new(None);

/// Wall time as tokio's clock sees it. The wall time of an anchor (a moment read on the
/// wall and the monotonic clock) plus tokio's time since; the anchor is taken again
/// whenever the wall clock has parted from it by more than 10 ms (a clock step, a
/// suspend, NTP's slewing). So while the runtime runs in real time (always, in `tchat
/// serve`) this is [`Timestamp::now`] within that; on a paused runtime it stands
/// still with tokio's clock, to the nanosecond, and moves only as the test advances it,
/// so a ban's `until` lapses when the test moves past it.
pub fn now() -> Timestamp {
    let (real, wall) = (Instant::now(), Timestamp::now());
    let mut anchor = ANCHOR.lock().unwrap_or_else(|e| e.into_inner());
    let (at, at_wall) = match *anchor {
        Some((at, at_wall)) if (at_wall + since(at, real) - wall).abs() <= REANCHOR => {
            (at, at_wall)
        }
        _ => *anchor.insert((real, wall)),
    };
    at_wall + since(at, tokio::time::Instant::now().into_std())
}

/// `to - from`, negative when `to` is earlier.
fn since(from: Instant, to: Instant) -> SignedDuration {
    let signed = |d| SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
    match to.checked_duration_since(from) {
        Some(d) => signed(d),
        None => -signed(from - to),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn wall_time_follows_a_paused_clock() {
        let before = now();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(now(), before, "real time passed, the paused clock stood still");
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(now().duration_since(before), SignedDuration::from_secs(30));
    }

    #[tokio::test]
    async fn in_real_time_it_is_the_wall_clock() {
        let (a, ours, b) = (Timestamp::now(), now(), Timestamp::now());
        let slack = SignedDuration::from_millis(50);
        assert!(ours >= a - slack && ours <= b + slack, "{a} {ours} {b}");
    }
}
