//! Flood control by fakelag: a connection over its rate is read more slowly, never cut.
//!
//! A token bucket per connection (`--rate` lines per second refilled, `--burst` at most)
//! decides when the next line may be handled. A line that finds the bucket empty is not
//! dropped: the connection holds it (and what follows it) and stops reading its socket
//! until a token is due, so the kernel's buffers and TCP back-pressure hold the rest.
//! Every line arrives, in order; a sender within the burst and the rate never waits.
//! This is what ergo calls fakelag (`irc/fakelag.go`), which sleeps between commands of
//! a throttled client instead of refusing them.
//!
//! Being behind is never a reason to disconnect: a sender the server has stopped
//! reading costs it nothing (its lines wait in the sender's own buffers), so a script or
//! a paste of any length arrives whole at the rate. What does cost the server, bytes it
//! must read that form no line, is bounded by the connection's intake (see
//! `server::intake`), not here.
//!
//! Time is passed in rather than read here, so the policy is tested without sleeping.

use std::time::Duration;

use tokio::time::Instant;

/// What to do with the next line a connection has read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Handle it now. The line then pays with [`Fakelag::take`].
    Go,
    /// Hold it, and every line after it, until `until`, and read no more meanwhile.
    /// `tell` is set on the first hold of an episode: the sender is told once that it
    /// is being slowed down.
    Hold { until: Instant, tell: bool },
}

/// The fakelag state of one connection; only its own task touches it.
#[derive(Debug)]
pub struct Fakelag {
    /// Lines per second refilled, positive and finite; 0 turns flood control off. Not
    /// an `Option`, and `burst` a `u32`: every connection's task holds one of these,
    /// 40 bytes so rather than 56.
    rate: f64,
    /// Most tokens the bucket holds: lines a sender may send at once without waiting.
    burst: u32,
    tokens: f64,
    /// When `tokens` was last brought up to date.
    last: Instant,
    /// The sender was told it is being slowed in this episode. An episode ends when the
    /// bucket is full again, i.e. after the sender paused for `burst / rate` seconds.
    told: bool,
}

impl Fakelag {
    /// `rate` lines per second sustained, `burst` at once (a rate of 0 turns flood
    /// control off).
    pub fn new(rate: f64, burst: u32, now: Instant) -> Fakelag {
        let burst = burst.max(1);
        let rate = if rate > 0.0 && rate.is_finite() { rate } else { 0.0 };
        Fakelag { rate, burst, tokens: f64::from(burst), last: now, told: false }
    }

    /// Whether the next line may be handled at `now`. Takes no token: a line that is
    /// then handled pays with [`Fakelag::take`] (bytes that complete no line, such as
    /// the rest of an over-long one, cost nothing).
    pub fn check(&mut self, now: Instant) -> Verdict {
        if !self.limits() {
            return Verdict::Go;
        }
        let rate = self.rate;
        self.refill(rate, now);
        if self.tokens >= f64::from(self.burst) {
            // A full bucket: the sender paused long enough, the episode is over.
            self.told = false;
        }
        // A token due now counts as here, whatever the float rounding of the wait.
        if self.tokens >= 1.0 - 1e-6 {
            return Verdict::Go;
        }
        let tell = !std::mem::replace(&mut self.told, true);
        let wait = Duration::from_secs_f64((1.0 - self.tokens) / rate);
        Verdict::Hold { until: now + wait, tell }
    }

    /// Pays for one handled line (after [`Verdict::Go`]).
    pub fn take(&mut self) {
        if self.limits() {
            self.tokens = (self.tokens - 1.0).max(0.0);
        }
    }

    /// Charges `lines` more lines' worth for something dearer than a line (creating a
    /// room). The bucket may go below empty, so the lines after it wait longer.
    pub fn charge(&mut self, lines: u32) {
        if self.limits() {
            self.tokens -= f64::from(lines);
        }
    }

    /// Flood control is on (a rate was given).
    fn limits(&self) -> bool {
        self.rate > 0.0
    }

    fn refill(&mut self, rate: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * rate).min(f64::from(self.burst));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a sender that has `lines` lines ready at `t0` the way a connection does:
    /// each line goes when the policy says so, and waits until the hold ends otherwise.
    /// Returns when each line was handled, and how many notices were given.
    fn drain(g: &mut Fakelag, t0: Instant, lines: usize) -> (Vec<Instant>, usize) {
        let (mut now, mut handled, mut told) = (t0, Vec::new(), 0);
        while handled.len() < lines {
            match g.check(now) {
                Verdict::Go => {
                    g.take();
                    handled.push(now);
                }
                Verdict::Hold { until, tell } => {
                    assert!(until > now);
                    told += usize::from(tell);
                    now = until;
                }
            }
        }
        (handled, told)
    }

    #[test]
    fn a_burst_goes_at_once_and_the_rest_at_the_rate_none_lost() {
        let t0 = Instant::now();
        let mut g = Fakelag::new(5.0, 20, t0);
        let (handled, told) = drain(&mut g, t0, 40);
        assert_eq!(handled.len(), 40);
        assert!(handled[..20].iter().all(|&t| t == t0), "the burst waits for nothing");
        for (i, t) in handled[20..].iter().enumerate() {
            let due = Duration::from_millis(200 * (i as u64 + 1));
            let late = t.duration_since(t0).abs_diff(due);
            assert!(late < Duration::from_millis(1), "line {}: {late:?} off", i + 20);
        }
        assert_eq!(told, 1, "told once per episode");
    }

    #[test]
    fn a_steady_sender_within_the_rate_never_waits() {
        let t0 = Instant::now();
        let mut g = Fakelag::new(5.0, 2, t0);
        for i in 0..1000u64 {
            let now = t0 + Duration::from_millis(200 * i);
            assert_eq!(g.check(now), Verdict::Go, "line {i}");
            g.take();
        }
    }

    #[test]
    fn a_charge_costs_as_many_lines() {
        let t0 = Instant::now();
        let mut g = Fakelag::new(1.0, 5, t0);
        assert_eq!(g.check(t0), Verdict::Go);
        g.take();
        g.charge(4);
        assert!(matches!(g.check(t0), Verdict::Hold { .. }));
        assert_eq!(g.check(t0 + Duration::from_secs(1)), Verdict::Go);
    }

    /// However long a sender stays behind, its lines keep coming at the rate: an hour's
    /// worth of a script that never lets up, all of it, one token apart.
    #[test]
    fn a_sender_behind_for_an_hour_is_slowed_never_cut() {
        let t0 = Instant::now();
        let mut g = Fakelag::new(5.0, 20, t0);
        let (handled, told) = drain(&mut g, t0, 20 + 5 * 3600);
        let last = handled.last().unwrap().duration_since(t0);
        assert!(last.abs_diff(Duration::from_secs(3600)) < Duration::from_millis(5), "{last:?}");
        assert_eq!(told, 1, "one episode, told once");
    }

    #[test]
    fn a_rest_restarts_the_notice() {
        let t0 = Instant::now();
        let mut g = Fakelag::new(1.0, 2, t0);
        let (handled, told) = drain(&mut g, t0, 6);
        assert_eq!(told, 1);
        let mut now = *handled.last().unwrap();
        // Not rested long enough to refill the bucket: still the same episode.
        now += Duration::from_secs(1);
        assert_eq!(g.check(now), Verdict::Go);
        g.take();
        assert!(matches!(g.check(now), Verdict::Hold { tell: false, .. }));
        // A rest of a full bucket's time ends the episode: the next hold tells again.
        now += Duration::from_secs(2);
        for _ in 0..2 {
            assert_eq!(g.check(now), Verdict::Go);
            g.take();
        }
        assert!(matches!(g.check(now), Verdict::Hold { tell: true, .. }));
    }

    #[test]
    fn checks_without_a_line_cost_nothing() {
        let t0 = Instant::now();
        let mut g = Fakelag::new(1.0, 1, t0);
        for _ in 0..10 {
            assert_eq!(g.check(t0), Verdict::Go);
        }
        g.take();
        assert!(matches!(g.check(t0), Verdict::Hold { .. }));
    }

    #[test]
    fn zero_rate_is_no_flood_control() {
        let t0 = Instant::now();
        let mut g = Fakelag::new(0.0, 1, t0);
        for _ in 0..10_000 {
            assert_eq!(g.check(t0), Verdict::Go);
            g.take();
        }
    }
}
