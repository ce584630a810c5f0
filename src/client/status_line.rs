//! The reconnecting notice: one line that is rewritten in place at every attempt, not a
//! new line per attempt (which made about 60 lines an hour once the wait reached 60 s).
//!
//! The display decides what the notice says ([`Outage`]); the printer thread, which sees
//! everything printed in order, decides whether it can be rewritten ([`StatusLine`]):
//! only while it is the last thing printed, so that it sits right above the input line.
//! It is drawn with a hard break ending each row (as the input line is, see
//! `input_rows`), so a terminal that re-wraps on a resize never makes it fewer rows than
//! it was drawn with, and moving up that many rows from the top of the input line never
//! reaches a line above it. Piped (a script), only the first notice of an outage and a
//! change of reason are printed, one line each.

use std::time::Duration;

use jiff::Timestamp;

use super::screen::Geometry;

/// What the printer thread is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Print {
    /// Text with its line end, printed as it is.
    Line(String),
    /// The status line, without a line end: replaces the previous status line if that
    /// was the last thing printed. `news`: the first of an outage or a new reason, which
    /// is printed piped too.
    Status { text: String, news: bool },
}

/// The printer thread's memory of the status line.
#[derive(Debug, Default)]
pub struct StatusLine {
    /// The rows the status line took as drawn, while it is the last thing printed.
    rows: Option<u16>,
}

impl StatusLine {
    /// The text to print for `print` above the input line, on a terminal `geometry`
    /// wide; the cursor is at the start of the input line's top row (rustyline has
    /// cleared the input line's rows).
    pub fn render(&mut self, print: Print, geometry: Geometry) -> String {
        let text = match print {
            Print::Line(text) => {
                self.rows = None;
                return text;
            }
            Print::Status { text, .. } => text,
        };
        let (shown, _) = geometry.hard_wrap(&text, 0);
        let rows = u16::try_from(shown.lines().count().max(1)).unwrap_or(u16::MAX);
        // Up to the old status line's top row, then erase it and what is below it.
        let up = match self.rows.replace(rows) {
            Some(old) => format!("\x1b[{old}A\r\x1b[J"),
            None => String::new(),
        };
        format!("{up}{shown}\n")
    }
}

/// What is printed without a terminal (piped): lines, and the news among statuses.
pub fn piped(print: Print) -> Option<String> {
    match print {
        Print::Line(text) => Some(text),
        Print::Status { text, news: true } => Some(text + "\n"),
        Print::Status { news: false, .. } => None,
    }
}

/// The display's memory of the connection being down.
#[derive(Debug, Default)]
pub struct Outage {
    /// Since when, and the reason of the last failure shown.
    down: Option<(Timestamp, String)>,
}

impl Outage {
    /// The notice for attempt `attempt` (1 for the first after a loss), due in
    /// `retry_in`, after a failure for `reason` at `now`, and whether it is news: the
    /// first of the outage or another reason than the last.
    ///
    /// `Connection lost (REASON); reconnecting in 1.1 s (attempt 1; /quit or Ctrl-C to
    /// leave).`, then `Connection lost at HH:MM (REASON); …` with the loss's local time.
    pub fn lost(
        &mut self,
        (reason, retry_in, attempt): (&str, Duration, u32),
        now: Timestamp,
        clock: impl Fn(Timestamp) -> String,
    ) -> (String, bool) {
        let first = attempt <= 1 || self.down.is_none();
        let since = match &self.down {
            Some((since, _)) if !first => *since,
            _ => now,
        };
        let news = first || self.down.as_ref().is_some_and(|(_, shown)| shown != reason);
        self.down = Some((since, reason.to_owned()));
        let lost = if first { String::new() } else { format!(" at {}", clock(since)) };
        let text = format!(
            "Connection lost{lost} ({reason}); reconnecting in {:.1} s (attempt {attempt}; /quit \
             or Ctrl-C to leave).",
            retry_in.as_secs_f64()
        );
        (text, news)
    }

    /// The connection is back.
    pub fn over(&mut self) {
        self.down = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(cols: u16) -> Geometry {
        Geometry { cols, tab_stop: 8, mode: rustyline::GraphemeClusterMode::WcWidth }
    }

    fn status(text: &str) -> Print {
        Print::Status { text: text.into(), news: false }
    }

    #[test]
    fn a_status_line_is_rewritten_while_it_is_the_last_line() {
        let mut line = StatusLine::default();
        assert_eq!(line.render(status("first try"), at(80)), "first try\n");
        // Right above the input line: up its one row, erased, written again.
        assert_eq!(line.render(status("second try"), at(80)), "\x1b[1A\r\x1b[Jsecond try\n");
        // Two rows of 6 columns, each ended by a break of its own.
        assert_eq!(line.render(status("third try"), at(6)), "\x1b[1A\r\x1b[Jthird \r\ntry\n");
        // Wider since: still the two rows it was drawn with.
        assert_eq!(line.render(status("fourth"), at(80)), "\x1b[2A\r\x1b[Jfourth\n");
        // Anything else printed: the next status is a new line.
        assert_eq!(line.render(Print::Line("<bo> hi\n".into()), at(80)), "<bo> hi\n");
        assert_eq!(line.render(status("fifth"), at(80)), "fifth\n");
    }

    #[test]
    fn piped_only_the_news_is_printed() {
        assert_eq!(piped(Print::Line("x\n".into())).as_deref(), Some("x\n"));
        assert_eq!(piped(Print::Status { text: "a".into(), news: true }).as_deref(), Some("a\n"));
        assert_eq!(piped(status("b")), None);
    }

    #[test]
    fn an_outage_says_since_when_and_marks_new_reasons() {
        let clock = |t: Timestamp| t.strftime("%H:%M").to_string();
        let t0: Timestamp = "2026-12-06T08:40:00Z".parse().unwrap();
        let later = t0 + Duration::from_secs(600);
        let mut outage = Outage::default();
        let closed = "the server closed the connection";
        let (text, news) = outage.lost((closed, Duration::from_millis(1100), 1), t0, clock);
        assert_eq!(
            text,
            "Connection lost (the server closed the connection); reconnecting in 1.1 s \
             (attempt 1; /quit or Ctrl-C to leave)."
        );
        assert!(news);
        let refused = "connection refused";
        let (text, news) = outage.lost((refused, Duration::from_secs(60), 7), later, clock);
        assert_eq!(
            text,
            "Connection lost at 08:40 (connection refused); reconnecting in 60.0 s (attempt 7; \
             /quit or Ctrl-C to leave)."
        );
        assert!(news);
        let (_, news) = outage.lost((refused, Duration::from_secs(60), 8), later, clock);
        assert!(!news, "the same reason again");
        // Back, and lost again: a new outage from its own time.
        outage.over();
        let (text, news) = outage.lost((closed, Duration::from_secs(1), 1), later, clock);
        assert!(news && text.starts_with("Connection lost (the server"), "{text}");
    }
}
