//! What the operator is told about the NATS connection: one `Backbone lost` when it
//! goes and one `Backbone reconnected` when it is back (with how long it was down and
//! how many client errors that took), instead of every failed reconnect attempt (about
//! ten a second). Other events are logged once per [`QUIET`] for the same text. Pure,
//! so it is tested without NATS.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// The same event text is logged at most once in this long.
pub const QUIET: Duration = Duration::from_secs(10);

/// An event of the NATS client, as far as the log cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Connected,
    Disconnected,
    /// Anything else, by its text (a client or server error, lame duck mode…).
    Other(String),
}

/// What to log for an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Report {
    Lost,
    /// Back after `down`, with `errors` events not logged meanwhile.
    Back {
        down: Duration,
        errors: u64,
    },
    Event(String),
    Quiet,
}

/// The connection as the log knows it.
#[derive(Debug, Default)]
pub struct Reporter {
    /// Since when the connection is down, if it is.
    down_since: Option<Instant>,
    /// Events not logged since the last report of the connection.
    quieted: u64,
    /// When each event text was last logged.
    last: HashMap<String, Instant>,
}

impl Reporter {
    /// Takes `seen` at `now`; returns what to log. The first connection (at start) is
    /// logged by the start itself, so a `Connected` that ends no outage is quiet.
    pub fn take(&mut self, seen: Seen, now: Instant) -> Report {
        match seen {
            Seen::Disconnected if self.down_since.is_none() => {
                self.down_since = Some(now);
                Report::Lost
            }
            Seen::Disconnected => Report::Quiet,
            Seen::Connected => match self.down_since.take() {
                Some(since) => {
                    let errors = std::mem::take(&mut self.quieted);
                    Report::Back { down: now.duration_since(since), errors }
                }
                None => Report::Quiet,
            },
            Seen::Other(_) if self.down_since.is_some() => {
                self.quieted += 1;
                Report::Quiet
            }
            Seen::Other(text) => {
                let recent = self.last.get(&text).is_some_and(|t| now.duration_since(*t) < QUIET);
                if recent {
                    self.quieted += 1;
                    return Report::Quiet;
                }
                self.last.retain(|_, t| now.duration_since(*t) < QUIET);
                self.last.insert(text.clone(), now);
                Report::Event(text)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_one_lost_and_one_back_whatever_fails_between() {
        let t0 = Instant::now();
        let mut r = Reporter::default();
        assert_eq!(r.take(Seen::Connected, t0), Report::Quiet, "the start's own");
        let io = || Seen::Other("client error: nats: IO error".into());
        assert_eq!(r.take(io(), t0), Report::Event("client error: nats: IO error".into()));
        assert_eq!(r.take(Seen::Disconnected, t0), Report::Lost);
        for i in 0..50 {
            assert_eq!(r.take(io(), t0 + Duration::from_millis(100 * i)), Report::Quiet);
        }
        assert_eq!(r.take(Seen::Disconnected, t0), Report::Quiet);
        let back = r.take(Seen::Connected, t0 + Duration::from_secs(5));
        assert_eq!(back, Report::Back { down: Duration::from_secs(5), errors: 50 });
        assert_eq!(r.take(Seen::Connected, t0 + Duration::from_secs(6)), Report::Quiet);
    }

    #[test]
    fn the_same_event_is_logged_once_in_a_while() {
        let t0 = Instant::now();
        let mut r = Reporter::default();
        let slow = || Seen::Other("slow consumers for subscription 3".into());
        assert!(matches!(r.take(slow(), t0), Report::Event(_)));
        assert_eq!(r.take(slow(), t0 + Duration::from_secs(1)), Report::Quiet);
        assert!(matches!(r.take(Seen::Other("lame duck".into()), t0), Report::Event(_)));
        assert!(matches!(r.take(slow(), t0 + QUIET), Report::Event(_)));
    }
}
