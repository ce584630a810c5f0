//! Flood control: a token bucket per connection, with a warn-then-disconnect policy.
//!
//! Time is passed in rather than read here, so the policy is tested without sleeping.

use std::time::Duration;

use tokio::time::Instant;

/// After this many consecutive refused lines the sender is disconnected.
pub const KICK_AFTER: u32 = 30;

/// What to do with one incoming line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// First refused line of an episode: drop it and tell the sender to slow down.
    Warn,
    /// Further refused lines: drop them quietly (the warning was given).
    Drop,
    /// Still flooding after the warning: disconnect.
    Kick,
}

#[derive(Debug)]
pub struct FloodGuard {
    /// Lines per second refilled; `None` turns flood control off.
    rate: Option<f64>,
    burst: f64,
    tokens: f64,
    last: Instant,
    /// Refused lines since the last allowed one.
    strikes: u32,
}

impl FloodGuard {
    /// `rate` lines per second sustained, `burst` at once; a rate of 0 disables the guard.
    pub fn new(rate: f64, burst: u32, now: Instant) -> FloodGuard {
        let burst = f64::from(burst.max(1));
        let rate = (rate > 0.0 && rate.is_finite()).then_some(rate);
        FloodGuard { rate, burst, tokens: burst, last: now, strikes: 0 }
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        let Some(rate) = self.rate else { return Verdict::Allow };
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.strikes = 0;
            return Verdict::Allow;
        }
        self.strikes += 1;
        match self.strikes {
            1 => Verdict::Warn,
            n if n > KICK_AFTER => Verdict::Kick,
            _ => Verdict::Drop,
        }
    }

    /// How long until one more line would be allowed; for the warning text.
    pub fn retry_after(&self) -> Duration {
        match self.rate {
            Some(rate) => Duration::from_secs_f64(((1.0 - self.tokens).max(0.0)) / rate),
            None => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_is_allowed_then_warn_drop_kick() {
        let t0 = Instant::now();
        let mut g = FloodGuard::new(1.0, 3, t0);
        for _ in 0..3 {
            assert_eq!(g.check(t0), Verdict::Allow);
        }
        assert_eq!(g.check(t0), Verdict::Warn);
        for _ in 1..KICK_AFTER {
            assert_eq!(g.check(t0), Verdict::Drop);
        }
        assert_eq!(g.check(t0), Verdict::Kick);
    }

    #[test]
    fn a_steady_sender_within_the_rate_is_never_refused() {
        let t0 = Instant::now();
        let mut g = FloodGuard::new(5.0, 2, t0);
        for i in 0..1000u64 {
            let now = t0 + Duration::from_millis(200 * i);
            assert_eq!(g.check(now), Verdict::Allow, "line {i}");
        }
    }

    #[test]
    fn waiting_refills_and_forgives() {
        let t0 = Instant::now();
        let mut g = FloodGuard::new(2.0, 1, t0);
        assert_eq!(g.check(t0), Verdict::Allow);
        assert_eq!(g.check(t0), Verdict::Warn);
        assert!(g.retry_after() > Duration::ZERO);
        assert_eq!(g.check(t0 + Duration::from_millis(500)), Verdict::Allow);
        assert_eq!(g.check(t0 + Duration::from_millis(500)), Verdict::Warn);
    }

    #[test]
    fn zero_rate_disables() {
        let t0 = Instant::now();
        let mut g = FloodGuard::new(0.0, 1, t0);
        for _ in 0..10_000 {
            assert_eq!(g.check(t0), Verdict::Allow);
        }
    }
}
