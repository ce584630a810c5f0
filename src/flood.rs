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
//! Only sustained abuse ends in a kick: a sender that has been behind (lines waiting)
//! without once catching up for longer than `--flood-kick-after` seconds. A paste or a
//! script of a few hundred lines catches up long before that.
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
    /// Behind for longer than the kick bound: disconnect.
    Kick,
}

/// The fakelag state of one connection; only its own task touches it.
#[derive(Debug)]
pub struct Fakelag {
    /// Lines per second refilled; `None` turns flood control off.
    rate: Option<f64>,
    /// Most tokens the bucket holds: lines a sender may send at once without waiting.
    burst: f64,
    tokens: f64,
    /// When `tokens` was last brought up to date.
    last: Instant,
    /// Since when the sender has had lines waiting without catching up; `None` while it
    /// keeps within its budget. The kick bound is measured from here.
    behind_since: Option<Instant>,
    /// The sender was told it is being slowed in this episode. An episode ends when the
    /// bucket is full again, i.e. after the sender paused for `burst / rate` seconds.
    told: bool,
    /// Longest a sender may stay behind before it is kicked; `None`: never.
    kick_after: Option<Duration>,
}

impl Fakelag {
    /// `rate` lines per second sustained, `burst` at once (a rate of 0 turns flood
    /// control off); a sender behind for longer than `kick_after` is kicked (`None`:
    /// never).
    pub fn new(rate: f64, burst: u32, kick_after: Option<Duration>, now: Instant) -> Fakelag {
        let burst = f64::from(burst.max(1));
        let rate = (rate > 0.0 && rate.is_finite()).then_some(rate);
        Fakelag {
            rate,
            burst,
            tokens: burst,
            last: now,
            behind_since: None,
            told: false,
            kick_after,
        }
    }

    /// Whether the next line may be handled at `now`. Takes no token: a line that is
    /// then handled pays with [`Fakelag::take`] (bytes that complete no line, such as
    /// the rest of an over-long one, cost nothing).
    pub fn check(&mut self, now: Instant) -> Verdict {
        let Some(rate) = self.rate else { return Verdict::Go };
        self.refill(rate, now);
        if self.tokens >= self.burst {
            // A full bucket: the sender paused long enough, the episode is over.
            self.behind_since = None;
            self.told = false;
        }
        if let (Some(since), Some(bound)) = (self.behind_since, self.kick_after)
            && now.saturating_duration_since(since) > bound
        {
            return Verdict::Kick;
        }
        // A token due now counts as here, whatever the float rounding of the wait.
        if self.tokens >= 1.0 - 1e-6 {
            return Verdict::Go;
        }
        self.behind_since.get_or_insert(now);
        let tell = !std::mem::replace(&mut self.told, true);
        let wait = Duration::from_secs_f64((1.0 - self.tokens) / rate);
        Verdict::Hold { until: now + wait, tell }
    }

    /// Pays for one handled line (after [`Verdict::Go`]).
    pub fn take(&mut self) {
        if self.rate.is_some() {
            self.tokens = (self.tokens - 1.0).max(0.0);
        }
    }

    /// Charges `lines` more lines' worth for something dearer than a line (creating a
    /// room). The bucket may go below empty, so the lines after it wait longer.
    pub fn charge(&mut self, lines: u32) {
        if self.rate.is_some() {
            self.tokens -= f64::from(lines);
        }
    }

    /// The connection has handled everything it held and found its socket empty: the
    /// sender is no longer behind, and the kick bound starts afresh.
    pub fn caught_up(&mut self) {
        self.behind_since = None;
    }

    fn refill(&mut self, rate: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * rate).min(self.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KICK: Option<Duration> = Some(Duration::from_secs(30));

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
                Verdict::Kick => panic!("kicked after {} lines", handled.len()),
            }
        }
        (handled, told)
    }

    #[test]
    fn a_burst_goes_at_once_and_the_rest_at_the_rate_none_lost() {
        let t0 = Instant::now();
        let mut g = Fakelag::new(5.0, 20, KICK, t0);
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
        let mut g = Fakelag::new(5.0, 2, KICK, t0);
        for i in 0..1000u64 {
            let now = t0 + Duration::from_millis(200 * i);
            assert_eq!(g.check(now), Verdict::Go, "line {i}");
            g.take();
        }
    }

    #[test]
    fn a_script_of_sixty_lines_catches_up_long_before_the_bound() {
        let t0 = Instant::now();
        let mut g = Fakelag::new(5.0, 20, Some(Duration::from_secs(10)), t0);
        let (handled, _) = drain(&mut g, t0, 61);
        assert!(handled[60].duration_since(t0) < Duration::from_secs(9));
    }

    #[test]
    fn a_charge_costs_as_many_lines() {
        let t0 = Instant::now();
        let mut g = Fakelag::new(1.0, 5, KICK, t0);
        assert_eq!(g.check(t0), Verdict::Go);
        g.take();
        g.charge(4);
        assert!(matches!(g.check(t0), Verdict::Hold { .. }));
        assert_eq!(g.check(t0 + Duration::from_secs(1)), Verdict::Go);
    }

    #[test]
    fn sustained_abuse_is_kicked_after_the_bound_not_before() {
        let t0 = Instant::now();
        let bound = Duration::from_secs(30);
        let mut g = Fakelag::new(5.0, 20, Some(bound), t0);
        // The sender never lets up: every check finds another line waiting.
        let mut now = t0;
        let mut handled = 0;
        let kicked_at = loop {
            match g.check(now) {
                Verdict::Go => {
                    g.take();
                    handled += 1;
                }
                Verdict::Hold { until, .. } => now = until,
                Verdict::Kick => break now,
            }
        };
        // Behind from the first hold, at t0; kicked at the first check after the bound.
        assert!(kicked_at.duration_since(t0) > bound, "{kicked_at:?}");
        assert!(kicked_at.duration_since(t0) <= bound + Duration::from_millis(200));
        // The burst, then one line per token for the whole bound.
        assert!((20 + 150..=20 + 151).contains(&handled), "{handled}");
    }

    #[test]
    fn catching_up_restarts_the_bound_and_a_rest_restarts_the_notice() {
        let t0 = Instant::now();
        let mut g = Fakelag::new(1.0, 2, Some(Duration::from_secs(5)), t0);
        for _ in 0..2 {
            assert_eq!(g.check(t0), Verdict::Go);
            g.take();
        }
        let mut now = t0;
        // Behind for 4 s, caught up, behind for 4 s again: never 5 s in one stretch.
        for _ in 0..2 {
            for _ in 0..4 {
                let Verdict::Hold { until, .. } = g.check(now) else { panic!("should hold") };
                now = until;
                assert_eq!(g.check(now), Verdict::Go);
                g.take();
            }
            g.caught_up();
        }
        // Told only once: the bucket was never full again in between.
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
    fn bytes_that_complete_no_line_cost_nothing() {
        let t0 = Instant::now();
        let mut g = Fakelag::new(1.0, 1, KICK, t0);
        for _ in 0..10 {
            assert_eq!(g.check(t0), Verdict::Go);
        }
        g.take();
        assert!(matches!(g.check(t0), Verdict::Hold { .. }));
    }

    #[test]
    fn no_kick_bound_and_zero_rate() {
        let t0 = Instant::now();
        let mut g = Fakelag::new(5.0, 1, None, t0);
        let (handled, _) = drain(&mut g, t0, 5000);
        assert!(handled[4999].duration_since(t0) > Duration::from_secs(900));

        let mut g = Fakelag::new(0.0, 1, KICK, t0);
        for _ in 0..10_000 {
            assert_eq!(g.check(t0), Verdict::Go);
            g.take();
        }
    }
}
