//! Turning server events into display lines, apart from the terminal so every format is
//! unit-tested.
//!
//! It renders only [`Clean`] events and lines: every string that came from the network
//! was sanitised where it entered the client (see [`super::clean`]), so nothing here
//! sanitises again. The only escape sequences in the output are the colors added here.

use std::fmt::Write as _;
use std::ops::Range;

use jiff::tz::TimeZone;
use owo_colors::{OwoColorize, Style};

use crate::local_time;
use crate::nick;
use crate::protocol::{Event, EventKind, HelpEntry, RoomInfo};

use super::clean::Clean;
/// The keys of the interactive client, listed after the server's commands by `/help`
/// (shared with the man page, which lists the same keys).
pub use super::editor::CLIENT_KEYS;
use super::help;
pub use super::palette::nick_color;

/// How lines are drawn; fixed for a session.
#[derive(Debug, Clone)]
pub struct Renderer {
    /// Whether to add ANSI colors (`--color`, NO_COLOR, terminal or not).
    pub color: bool,
    /// Whether nick colors are sent as 24-bit colors (see [`super::palette`]).
    pub truecolor: bool,
    /// Zone for the HH:MM timestamps: the system's, or UTC in tests.
    pub tz: TimeZone,
    /// Whether `/help` lists [`CLIENT_KEYS`]; they mean nothing when stdin is a pipe.
    pub show_keys: bool,
    /// The terminal's width now, to wrap `/help` at word boundaries; `None` piped (a
    /// script reads whole lines).
    pub cols: Option<fn() -> u16>,
    /// The clock that says what "today" is, for dating replayed lines from other days
    /// (`jiff::Timestamp::now`, or a fixed time in tests).
    pub now: fn() -> jiff::Timestamp,
}

/// One rendered event: the text (one or more lines, no trailing newline) and whether it
/// deserves the terminal bell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    /// True for a message that mentions the user, and for a private message to them.
    pub alert: bool,
}

/// Adds `text` to the rows of a `/help` answer, wrapped at word boundaries to `cols`
/// (each row comes after `HH:MM *** ` or its indent, 10 columns), its later rows
/// indented 2 more.
fn help_item(rows: &mut Vec<String>, text: &str, cols: Option<u16>) {
    for (i, row) in help::wrap(text, cols, 12).into_iter().enumerate() {
        rows.push(if i == 0 { row } else { format!("  {row}") });
    }
}

/// Byte ranges in `text` where `nick` appears as a whole word, compared by
/// [`nick::key`]: `CAFE\u{301}` mentions `café`, `ΣΑΣ` mentions `σασ`.
pub fn mentions(text: &str, nick: &str) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    let want = nick::key(nick);
    if want.is_empty() {
        return found;
    }
    // A stretch of text can be longer than the key it folds to (combining marks, width
    // forms) or shorter (`ß` folds to `ss`); none is more than this many characters.
    let longest = 4 * want.chars().count() + 4;
    let mut prev: Option<char> = None;
    let mut done = 0;
    for (at, c) in text.char_indices() {
        if at >= done
            && prev.is_none_or(|p| !is_word(p))
            && let Some(end) = mention_at(text, at, &want, longest)
        {
            found.push(at..end);
            done = end;
        }
        prev = Some(c);
    }
    found
}

/// The end of the shortest whole word or words from `at` whose key is `want`.
fn mention_at(text: &str, at: usize, want: &str, longest: usize) -> Option<usize> {
    let rest = &text[at..];
    let mut ends = rest.char_indices().skip(1).map(|(i, _)| i).chain([rest.len()]);
    for end in ends.by_ref().take(longest) {
        let boundary = rest[end..].chars().next().is_none_or(|n| !is_word(n));
        if boundary && nick::key(&rest[..end]) == want {
            return Some(at + end);
        }
    }
    None
}

/// Characters that continue a word: a nick is not mentioned inside a longer one.
/// Combining marks belong to the letter before them (`cafe` is not in `cafe\u{301}`).
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-' || unicode_normalization::char::is_combining_mark(c)
}

impl Renderer {
    /// Renders one event for the user whose nick is `me` at the time it arrives (before
    /// the event itself is applied, so a rename reads "you are now known as").
    pub fn event(&self, event: &Clean<Event>, me: &str) -> Rendered {
        // Sent again (replay, `/history`, a resume): bracketed as in the server's text
        // form, so it does not read as said just now, and dated when from another day.
        let time = if event.history {
            format!("[{}]", local_time::clock(event.ts, &self.tz, self.today()))
        } else {
            self.clock(event.ts)
        };
        let (body, alert) = match &event.kind {
            said @ (EventKind::Public { .. }
            | EventKind::Action { .. }
            | EventKind::Private { .. }) => self.conversation(said, me),
            EventKind::Whois { .. } | EventKind::Away { .. } | EventKind::Motd { .. } => {
                let text = self.stamp(&time, &self.answer(event, me));
                return Rendered { text, alert: false };
            }
            EventKind::Help { commands } => {
                return Rendered { text: self.stamp(&time, &self.help(commands)), alert: false };
            }
            EventKind::Resumed { missed, unavailable, .. } => {
                let text = self.away_marker(*missed, 0, *unavailable);
                return Rendered { text, alert: false };
            }
            moved @ (EventKind::Join { .. }
            | EventKind::Leave { .. }
            | EventKind::Part { .. }
            | EventKind::Nick { .. }) => (self.membership(moved, me), false),
            list @ (EventKind::Users { .. }
            | EventKind::AllUsers { .. }
            | EventKind::Rooms { .. }) => (self.listing(list, me), false),
            room @ (EventKind::Room { .. } | EventKind::Topic { .. }) => {
                (self.room_event(room, me), false)
            }
            session @ (EventKind::Welcome { .. }
            | EventKind::Notice { .. }
            | EventKind::Info { .. }
            | EventKind::Error { .. }
            | EventKind::Shutdown { .. }) => (self.session(session), false),
        };
        // History keeps its colors (dimming it took nick colors below 2:1 on dark
        // terminals): its bracketed time, dim as every time is, sets it apart.
        let text = self.stamp(&time, &body);
        // An old mention is no reason to ring the bell now.
        Rendered { text, alert: alert && !event.history }
    }

    /// Today's date in the renderer's zone.
    pub fn today(&self) -> jiff::civil::Date {
        local_time::today((self.now)(), &self.tz)
    }

    /// What people say: public lines, actions and private messages, with mentions of
    /// `me` highlighted; true when the line deserves the bell.
    fn conversation(&self, kind: &EventKind, me: &str) -> (String, bool) {
        match kind {
            EventKind::Public { from, text, .. } => {
                let own = from == me;
                let (text, hit) = self.text(text, me, own);
                (format!("{} {}", self.bracketed(from, own), text), hit)
            }
            EventKind::Action { from, text, .. } => {
                let own = from == me;
                let (text, hit) = self.text(text, me, own);
                let star = self.paint("*", Style::new().bold());
                (format!("{} {} {}", star, self.nick(from, own), text), hit)
            }
            EventKind::Private { from, to, text } => {
                let pm = Style::new().magenta().bold();
                if from == me && to != me {
                    let arrow = self.paint("->", pm);
                    (format!("{arrow} {} {}", self.paint(&format!("*{to}*"), pm), text), false)
                } else {
                    let (text, _) = self.text(text, me, false);
                    (format!("{} {}", self.paint(&format!("*{from}*"), pm), text), from != me)
                }
            }
            // The rest are not conversation; `event` renders them.
            _ => (String::new(), false),
        }
    }

    /// The answers whose text form is already what a person reads (`/whois`, `/motd`,
    /// an away reply): that form, each line shown as a system line.
    fn answer(&self, event: &Event, me: &str) -> String {
        let text = event.text_line_in(me, &self.tz, (self.now)());
        let lines: Vec<String> = text
            .lines()
            .map(|l| self.system(l.trim_start_matches("*** "), Style::new().cyan()))
            .collect();
        lines.join("\n")
    }

    /// The `/help` answer: the server's commands, then the client's own, then the keys
    /// when the client reads a terminal.
    fn help(&self, commands: &[HelpEntry]) -> String {
        let cols = self.cols.map(|cols| cols());
        let commands = commands.to_vec();
        let mut rows = Vec::new();
        let full = help::in_full(&commands, cols);
        let Some(cols) = cols else {
            // Piped: a script reads the whole table, one command a line, the client's
            // own after the server's.
            let mut commands = commands;
            if !full {
                commands.extend(help::client_entries());
            }
            let width = commands.iter().map(|e| e.usage.chars().count()).max().unwrap_or(0);
            rows.push("Commands:".to_owned());
            for entry in &commands {
                rows.push(format!("  {:width$}  {}", entry.usage, entry.description));
            }
            let style = Style::new().cyan();
            let rows: Vec<String> = rows.iter().map(|row| self.system(row, style)).collect();
            return rows.join("\n");
        };
        let cols = Some(cols);
        if full {
            for entry in &commands {
                help_item(&mut rows, &entry.usage, cols);
                for row in help::wrap(&entry.description, cols, 14) {
                    rows.push(format!("    {row}"));
                }
            }
        } else {
            let (groups, more) = help::overview(&commands, self.show_keys);
            for (group, names) in groups {
                help_item(&mut rows, &format!("{group}: {}", names.join(" ")), cols);
            }
            help_item(&mut rows, &more, cols);
        }
        let style = Style::new().cyan();
        let rows: Vec<String> = rows.iter().map(|row| self.system(row, style)).collect();
        rows.join("\n")
    }

    /// What the server says about the session itself: the welcome, notices, errors
    /// and the shutdown.
    fn session(&self, kind: &EventKind) -> String {
        match kind {
            EventKind::Welcome { server, version, nick, online, users, .. } => {
                let mut s = format!(
                    "Welcome to {} (tchat {})! You are {}; {online} online",
                    server,
                    version,
                    self.nick(nick, true)
                );
                if !users.is_empty() {
                    let _ = write!(s, ": {}", self.nick_list(users, nick));
                }
                s.push_str(if self.show_keys {
                    ". Type /help for commands and keys."
                } else {
                    ". Type /help for commands."
                });
                self.system(&s, Style::new().green())
            }
            EventKind::Notice { from, text } => {
                self.system(&format!("Notice from {from}: {text}"), Style::new().yellow().bold())
            }
            EventKind::Info { message } => self.system(message, Style::new().dimmed()),
            EventKind::Error { message, .. } => self.error(message),
            EventKind::Shutdown { reason } => self
                .system(&format!("Server shutting down: {reason}"), Style::new().yellow().bold()),
            // The rest are about other things; `event` renders them.
            _ => String::new(),
        }
    }

    /// Someone coming, leaving, moving between rooms or changing nick. A server where
    /// nobody uses rooms reads as before rooms existed: a join from outside shows the
    /// server's count, not the room's.
    fn membership(&self, kind: &EventKind, me: &str) -> String {
        let room = |name: &str| self.paint(name, Style::new().bold());
        match kind {
            EventKind::Join { nick, online, from_room: None, .. } => self.system(
                &format!("{} joined ({online} online)", self.nick(nick, false)),
                Style::new().green().dimmed(),
            ),
            EventKind::Join { nick, room: to, here, .. } => self.system(
                &format!("{} joined {} ({here} here)", self.nick(nick, false), room(to)),
                Style::new().green().dimmed(),
            ),
            EventKind::Leave { nick, reason, online, .. } => self.system(
                &format!("{} left: {reason} ({online} online)", self.nick(nick, false)),
                Style::new().dimmed(),
            ),
            EventKind::Part { nick, room: from, to, here } => self.system(
                &format!(
                    "{} left {} for {} ({here} here)",
                    self.nick(nick, false),
                    room(from),
                    room(to)
                ),
                Style::new().dimmed(),
            ),
            EventKind::Nick { old, new, .. } => {
                let line = if old == me {
                    format!("You are now known as {}", self.nick(new, true))
                } else {
                    format!("{} is now known as {}", old, self.nick(new, false))
                };
                self.system(&line, Style::new().cyan().dimmed())
            }
            // The rest are not about membership; `event` renders them.
            _ => String::new(),
        }
    }

    /// The answers to `/list`, `/list all` and `/rooms`.
    fn listing(&self, kind: &EventKind, me: &str) -> String {
        let room = |name: &str| self.paint(name, Style::new().bold());
        match kind {
            // A server without rooms sends neither room nor count.
            EventKind::Users { users, online, room, away }
                if users.len() == *online || room.is_empty() =>
            {
                let list = self.nick_list(users, me) + &away_list(away);
                self.system(&format!("{} online: {list}", users.len()), Style::new().cyan())
            }
            EventKind::Users { users, room: name, online, away } => self.system(
                &format!(
                    "{} in {}, {online} online: {}{}",
                    users.len(),
                    room(name),
                    self.nick_list(users, me),
                    away_list(away)
                ),
                Style::new().cyan(),
            ),
            EventKind::AllUsers { users } => {
                let mut lines =
                    vec![self.system(&format!("{} online:", users.len()), Style::new().cyan())];
                let mut sorted: Vec<_> = users.iter().collect();
                sorted.sort_by(|a, b| a.room.cmp(&b.room));
                for chunk in sorted.chunk_by(|a, b| a.room == b.room) {
                    let nicks: Vec<String> = chunk.iter().map(|u| u.nick.clone()).collect();
                    let line =
                        format!("  {}: {}", room(&chunk[0].room), self.nick_list(&nicks, me));
                    lines.push(self.system(&line, Style::new().cyan()));
                }
                lines.join("\n")
            }
            EventKind::Rooms { rooms } => self.rooms(rooms),
            // The rest are no lists; `event` renders them.
            _ => String::new(),
        }
    }

    /// The answer to `/rooms`: one line per room, names padded to one width.
    fn rooms(&self, rooms: &[RoomInfo]) -> String {
        let style = Style::new().cyan();
        let plural = if rooms.len() == 1 { "" } else { "s" };
        let mut lines = vec![self.system(&format!("{} room{plural}:", rooms.len()), style)];
        let width = rooms.iter().map(|r| r.room.chars().count()).max().unwrap_or(0);
        for r in rooms {
            let padded = format!("{:width$}", r.room);
            let line = format!(
                "  {}  {:>4} here  {}",
                self.paint(&padded, Style::new().bold()),
                r.here,
                r.topic
            );
            lines.push(self.system(line.trim_end(), style));
        }
        lines.join("\n")
    }

    /// The room you are in now, and its topic: shown, set or missing.
    fn room_event(&self, kind: &EventKind, me: &str) -> String {
        let room = |name: &str| self.paint(name, Style::new().bold());
        match kind {
            EventKind::Room { room: name, topic, users } => {
                let mut s = self.system(
                    &format!(
                        "You are in {} ({} here): {}",
                        room(name),
                        users.len(),
                        self.nick_list(users, me)
                    ),
                    Style::new().green(),
                );
                if !topic.is_empty() {
                    let line = format!("Topic of {}: {topic}", room(name));
                    let _ = write!(s, "\n{}", self.system(&line, Style::new().green()));
                }
                s
            }
            EventKind::Topic { room: name, topic, by: Some(by) } => self.system(
                &format!("{} set the topic of {}: {}", self.nick(by, by == me), room(name), topic),
                Style::new().green(),
            ),
            EventKind::Topic { room: name, topic, by: None } if topic.is_empty() => self.system(
                &format!("{} has no topic; set one with /topic <text>", room(name)),
                Style::new().dimmed(),
            ),
            EventKind::Topic { room: name, topic, by: None } => {
                self.system(&format!("Topic of {}: {topic}", room(name)), Style::new().green())
            }
            // The rest are not about the room; `event` renders them.
            _ => String::new(),
        }
    }

    /// A line from the server that is not an event (a refusal such as `!!! server
    /// full`), shown as a system line.
    pub fn raw_line(&self, line: &Clean<String>) -> Rendered {
        let line = line.as_str();
        let text = match line.strip_prefix("!!! ") {
            Some(message) => self.error(message),
            None => self.system(line.strip_prefix("*** ").unwrap_or(line), Style::new().dimmed()),
        };
        Rendered { text, alert: false }
    }

    /// The line before the events missed while the connection was down:
    /// `--- 37 messages while you were away ---`, with the comings and goings counted
    /// apart (they are not messages) and how many are lost for good.
    pub fn away_marker(&self, said: usize, others: usize, unavailable: u64) -> String {
        let mut line = match said {
            0 => "--- no messages".to_owned(),
            1 => "--- 1 message".to_owned(),
            n => format!("--- {n} messages"),
        };
        line.push_str(" while you were away");
        if others > 0 {
            let noun =
                if others == 1 { "join, leave or rename" } else { "joins, leaves or renames" };
            let _ = write!(line, " (and {others} {noun})");
        }
        if unavailable > 0 {
            let _ = write!(line, "; up to {unavailable} more are not available from the server");
        }
        line.push_str(" ---");
        self.paint(&line, Style::new().yellow())
    }

    /// The line between the last live line of one day and the first of the next, in
    /// a client that runs past midnight: `--- Day changed to Sun 6 Dec 2026 ---`.
    pub fn day_changed(&self, date: jiff::civil::Date) -> String {
        let line = format!("--- {} ---", local_time::day_changed(date));
        self.paint(&line, Style::new().dimmed())
    }

    /// A note from the client itself (not from the server), such as a lost connection,
    /// with the local time `ts` as chat lines have it.
    pub fn notice(&self, ts: jiff::Timestamp, text: &str) -> String {
        self.stamp(&self.clock(ts), &self.system(text, Style::new().yellow()))
    }

    /// `ts` as the local `HH:MM` of live lines.
    pub fn clock(&self, ts: jiff::Timestamp) -> String {
        ts.to_zoned_datetime(self.tz.clone()).strftime("%H:%M").to_string()
    }

    fn stamp(&self, time: &str, body: &str) -> String {
        // Continuation lines (help) are indented under the first line's text.
        let pad = " ".repeat(time.chars().count() + 1);
        let mut out = String::new();
        for (i, line) in body.lines().enumerate() {
            if i == 0 {
                let _ = write!(out, "{} {line}", self.paint(time, Style::new().dimmed()));
            } else {
                let _ = write!(out, "\n{pad}{line}");
            }
        }
        out
    }

    /// A system line in `style`. `text` may hold colored nicks: their reset would end
    /// the line's style, so it is started again after each one.
    fn system(&self, text: &str, style: Style) -> String {
        let body = if self.color {
            let marked = "\u{0}".style(style).to_string();
            let prefix = marked.split('\u{0}').next().unwrap_or_default();
            let reset = "\u{1b}[0m";
            self.paint(&text.replace(reset, &format!("{reset}{prefix}")), style)
        } else {
            text.to_owned()
        };
        format!("{} {body}", self.paint("***", style))
    }

    fn error(&self, text: &str) -> String {
        let style = Style::new().red().bold();
        format!("{} {}", self.paint("!!!", style), self.paint(text, Style::new().red()))
    }

    /// Message text with mentions of `me` highlighted; true when there was one. The
    /// user's own lines never alert.
    fn text(&self, text: &str, me: &str, own: bool) -> (String, bool) {
        if own {
            return (text.to_owned(), false);
        }
        let hits = mentions(text, me);
        if hits.is_empty() || !self.color {
            return (text.to_owned(), !hits.is_empty());
        }
        let mut out = String::new();
        let mut done = 0;
        for hit in &hits {
            out.push_str(&text[done..hit.start]);
            out.push_str(&self.paint(&text[hit.clone()], Style::new().bold().reversed()));
            done = hit.end;
        }
        out.push_str(&text[done..]);
        (out, true)
    }

    /// A nick in its own color; the user's own nick bold in the default color instead,
    /// so their lines stand apart from everyone else's. At normal intensity even inside
    /// a dimmed system line (SGR 22), which would take its contrast below what the
    /// palette was chosen for.
    fn nick(&self, nick: &str, own: bool) -> String {
        if !self.color {
            return nick.to_owned();
        }
        let color = if own { "1".to_owned() } else { nick_color(nick).sgr(self.truecolor) };
        format!("\u{1b}[22;{color}m{nick}\u{1b}[0m")
    }

    fn bracketed(&self, nick: &str, own: bool) -> String {
        let dim = Style::new().dimmed();
        format!("{}{}{}", self.paint("<", dim), self.nick(nick, own), self.paint(">", dim))
    }

    fn nick_list(&self, users: &[String], me: &str) -> String {
        let names: Vec<String> = users.iter().map(|u| self.nick(u, u == me)).collect();
        names.join(", ")
    }

    fn paint(&self, text: &str, style: Style) -> String {
        if self.color { text.style(style).to_string() } else { text.to_owned() }
    }
}

/// `; away: a, b` naming those of a `/list` who are away, or nothing.
fn away_list(away: &[String]) -> String {
    if away.is_empty() {
        return String::new();
    }
    format!("; away: {}", away.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::help_entries;

    fn plain() -> Renderer {
        Renderer {
            color: false,
            truecolor: false,
            tz: TimeZone::UTC,
            show_keys: true,
            cols: None,
            now: same_day,
        }
    }

    /// The day the test events are from.
    fn same_day() -> jiff::Timestamp {
        "2026-11-25T23:59:00Z".parse().unwrap()
    }

    fn raw(kind: EventKind) -> Event {
        Event { id: None, ts: "2026-11-25T19:07:30Z".parse().unwrap(), history: false, kind }
    }

    fn ev(kind: EventKind) -> Clean<Event> {
        Clean::event(raw(kind))
    }

    fn show(kind: EventKind, me: &str) -> String {
        plain().event(&ev(kind), me).text
    }

    #[test]
    fn messages_have_a_local_timestamp_and_read_like_irc() {
        let public =
            EventKind::Public { from: "alice".into(), text: "hello".into(), room: "#lobby".into() };
        assert_eq!(show(public, "bob"), "19:07 <alice> hello");
        let action =
            EventKind::Action { from: "alice".into(), text: "waves".into(), room: "#lobby".into() };
        assert_eq!(show(action, "bob"), "19:07 * alice waves");
        let r = Renderer { tz: TimeZone::fixed(jiff::tz::offset(2)), ..plain() };
        let public =
            EventKind::Public { from: "a".into(), text: "x".into(), room: "#lobby".into() };
        assert!(r.event(&ev(public), "b").text.starts_with("21:07 "));
    }

    #[test]
    fn the_away_marker_counts_messages_apart_from_comings_and_goings() {
        let r = plain();
        assert_eq!(r.away_marker(37, 0, 0), "--- 37 messages while you were away ---");
        assert_eq!(r.away_marker(1, 0, 0), "--- 1 message while you were away ---");
        assert_eq!(
            r.away_marker(0, 4, 0),
            "--- no messages while you were away (and 4 joins, leaves or renames) ---"
        );
        assert_eq!(
            r.away_marker(2, 1, 3),
            "--- 2 messages while you were away (and 1 join, leave or rename); \
             up to 3 more are not available from the server ---"
        );
    }

    #[test]
    fn history_is_bracketed_apart_from_live_lines_and_keeps_its_colors() {
        let public = EventKind::Public {
            from: "alice".into(),
            text: "hi bob".into(),
            room: "#lobby".into(),
        };
        let old = Clean::event(Event { history: true, ..raw(public.clone()) });
        let replayed = plain().event(&old, "bob");
        assert_eq!(replayed.text, "[19:07] <alice> hi bob");
        assert!(!replayed.alert, "an old mention rang the bell");
        assert_eq!(show(public, "bob"), "19:07 <alice> hi bob");
        let topic = EventKind::Topic {
            room: "#lobby".into(),
            topic: "rust".into(),
            by: Some("carol".into()),
        };
        let old = Clean::event(Event { history: true, ..raw(topic) });
        assert_eq!(
            plain().event(&old, "bob").text,
            "[19:07] *** carol set the topic of #lobby: rust"
        );

        // In color only the time is dim, as on live lines: the rest keeps its contrast.
        let colored = Renderer { color: true, ..plain() };
        let text = colored.event(&old, "bob").text;
        let dim = "\u{1b}[2m";
        assert!(text.starts_with(&format!("{dim}[19:07]\u{1b}[0m ")), "{text:?}");
        assert_eq!(text.matches(dim).count(), 1, "{text:?}");
        let live = Clean::event(Event { history: false, ..Event::clone(&old) });
        assert!(colored.event(&live, "bob").text.starts_with(&format!("{dim}19:07")));
    }

    /// A replayed line from another day carries its date, in the reader's zone; one
    /// from today only its time.
    #[test]
    fn replayed_lines_from_other_days_are_dated() {
        let public = EventKind::Public { from: "al".into(), text: "x".into(), room: "#l".into() };
        let old =
            Event { history: true, ts: "2026-11-20T22:30:00Z".parse().unwrap(), ..raw(public) };
        let show = |r: &Renderer, event: &Event| r.event(&Clean::event(event.clone()), "b").text;
        assert_eq!(show(&plain(), &old), "[2026-11-20 22:30] <al> x");
        // Two hours east, 22:30 UTC is the next day.
        let east = Renderer { tz: TimeZone::fixed(jiff::tz::offset(2)), ..plain() };
        assert_eq!(show(&east, &old), "[2026-11-21 00:30] <al> x");
        let today = Event { ts: "2026-11-25T08:00:00Z".parse().unwrap(), ..old.clone() };
        assert_eq!(show(&plain(), &today), "[08:00] <al> x");
        let live = Event { history: false, ..old };
        assert_eq!(show(&plain(), &live), "22:30 <al> x");
        assert_eq!(
            plain().day_changed("2026-11-26".parse().unwrap()),
            "--- Day changed to Thu 26 Nov 2026 ---"
        );
    }

    #[test]
    fn private_messages_are_marked_both_ways() {
        let pm = EventKind::Private { from: "alice".into(), to: "bob".into(), text: "psst".into() };
        let incoming = plain().event(&ev(pm.clone()), "bob");
        assert_eq!(incoming.text, "19:07 *alice* psst");
        assert!(incoming.alert);
        let outgoing = plain().event(&ev(pm), "alice");
        assert_eq!(outgoing.text, "19:07 -> *bob* psst");
        assert!(!outgoing.alert);
    }

    #[test]
    fn room_events_read_naturally() {
        let show = |k: EventKind| plain().event(&ev(k), "me").text;
        let room = |name: &str| name.to_string();
        assert_eq!(
            show(EventKind::Room {
                room: room("#dev"),
                topic: "plans".into(),
                users: vec!["a".into(), "me".into()]
            }),
            "19:07 *** You are in #dev (2 here): a, me\n      *** Topic of #dev: plans"
        );
        let part =
            EventKind::Part { nick: "a".into(), room: room("#dev"), to: room("#x"), here: 1 };
        assert_eq!(show(part), "19:07 *** a left #dev for #x (1 here)");
        let join = EventKind::Join {
            nick: "b".into(),
            online: 5,
            room: room("#dev"),
            here: 3,
            from_room: Some(room("#lobby")),
        };
        assert_eq!(show(join), "19:07 *** b joined #dev (3 here)");
        let users = EventKind::Users {
            users: vec!["a".into()],
            room: room("#dev"),
            online: 5,
            away: vec![],
        };
        assert_eq!(show(users), "19:07 *** 1 in #dev, 5 online: a");
        let rooms = EventKind::Rooms {
            rooms: vec![
                crate::protocol::RoomInfo { room: room("#dev"), here: 2, topic: "plans".into() },
                crate::protocol::RoomInfo { room: room("#lobby"), here: 12, topic: String::new() },
            ],
        };
        assert_eq!(
            show(rooms),
            "19:07 *** 2 rooms:\n      ***   #dev       2 here  plans\n      ***   #lobby    12 here"
        );
        // One room is "1 room:", as the server's text mode says it.
        let one = EventKind::Rooms {
            rooms: vec![crate::protocol::RoomInfo {
                room: room("#lobby"),
                here: 1,
                topic: String::new(),
            }],
        };
        assert_eq!(show(one), "19:07 *** 1 room:\n      ***   #lobby     1 here");
        let all = EventKind::AllUsers {
            users: vec![
                crate::protocol::UserRoom { nick: "b".into(), room: room("#lobby") },
                crate::protocol::UserRoom { nick: "a".into(), room: room("#dev") },
            ],
        };
        assert_eq!(show(all), "19:07 *** 2 online:\n      ***   #dev: a\n      ***   #lobby: b");
        let set = EventKind::Topic { room: room("#dev"), topic: "x".into(), by: Some("a".into()) };
        assert_eq!(show(set), "19:07 *** a set the topic of #dev: x");
        let none = EventKind::Topic { room: room("#dev"), topic: String::new(), by: None };
        assert_eq!(show(none), "19:07 *** #dev has no topic; set one with /topic <text>");
    }

    #[test]
    fn system_events_are_starred() {
        assert_eq!(
            show(
                EventKind::Join {
                    nick: "carol".into(),
                    online: 3,
                    room: "#lobby".into(),
                    here: 3,
                    from_room: None
                },
                "me"
            ),
            "19:07 *** carol joined (3 online)"
        );
        assert_eq!(
            show(
                EventKind::Leave {
                    nick: "c".into(),
                    reason: "quit: bye".into(),
                    online: 2,
                    room: "#lobby".into(),
                    here: 2
                },
                "me"
            ),
            "19:07 *** c left: quit: bye (2 online)"
        );
        assert_eq!(
            show(EventKind::Nick { old: "a".into(), new: "b".into(), room: "#lobby".into() }, "me"),
            "19:07 *** a is now known as b"
        );
        assert_eq!(
            show(
                EventKind::Nick { old: "me".into(), new: "you".into(), room: "#lobby".into() },
                "me"
            ),
            "19:07 *** You are now known as you"
        );
        assert_eq!(
            show(
                EventKind::Users {
                    users: vec!["a".into(), "b".into()],
                    room: "#lobby".into(),
                    online: 2,
                    away: vec![],
                },
                "me"
            ),
            "19:07 *** 2 online: a, b"
        );
        assert_eq!(
            show(EventKind::Error { code: "usage".into(), message: "usage: /me".into() }, "me"),
            "19:07 !!! usage: /me"
        );
        let welcome = EventKind::Welcome {
            server: "lan".into(),
            version: "0.1.0".into(),
            nick: "me".into(),
            online: 2,
            users: vec!["me".into(), "zed".into()],
            room: "#lobby".into(),
            last_id: 0,
            resume: None,
            flood: None,
        };
        assert_eq!(
            show(welcome, ""),
            "19:07 *** Welcome to lan (tchat 0.1.0)! You are me; 2 online: me, zed. \
             Type /help for commands and keys."
        );
    }

    #[test]
    fn help_is_an_overview_that_fits_and_a_topic_in_full() {
        use crate::protocol::help_entries_for;
        fn at(cols: u16) -> u16 {
            cols
        }
        let widths: [(u16, fn() -> u16); 3] = [(80, || at(80)), (40, || at(40)), (100, || at(100))];
        for (cols, width) in widths {
            let r = Renderer { cols: Some(width), ..plain() };
            let help = r.event(&ev(EventKind::Help { commands: help_entries_for(true, 5) }), "me");
            let rows: Vec<&str> = help.text.lines().collect();
            // Under 20 rows of an 80×24 screen, on a screen at 40 columns; no row wraps.
            let most = if cols >= 80 { 19 } else { 23 };
            assert!(rows.len() <= most, "{} rows at {cols}:\n{}", rows.len(), help.text);
            assert!(
                rows.iter().all(|row| row.chars().count() <= usize::from(cols)),
                "{}",
                help.text
            );
            assert!(rows[0].starts_with("19:07 *** Talk: /msg"), "{}", help.text);
            assert!(rows.iter().all(|row| row.starts_with("      *** ") || row == &rows[0]));
            // Every command whole on some row: nothing cut mid-word.
            let words: Vec<&str> = help.text.split_whitespace().collect();
            for command in ["/unregister", "/identify", "/history", "/kick", "/ignore", "Ctrl-R"] {
                assert!(words.contains(&command), "{command} at {cols}:\n{}", help.text);
            }
        }
        // Piped: the whole table, one command a line, no keys.
        let piped = Renderer { show_keys: false, ..plain() };
        let help = piped.event(&ev(EventKind::Help { commands: help_entries() }), "me").text;
        assert!(!help.contains("Ctrl-R") && help.contains("/ignore [nick]"), "{help}");
        let msg = help.lines().find(|l| l.contains("/msg <user> <text> ")).unwrap();
        assert!(msg.contains(" send a message only that user is shown"), "{help}");

        // A topic: the usage, then the description (which names the aliases) under it.
        let r = Renderer { cols: Some(|| 40), ..plain() };
        let msg = crate::client::help::topic("msg").unwrap();
        let text = r.event(&ev(EventKind::Help { commands: msg }), "me").text;
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows[0], "19:07 *** /msg <user> <text>");
        assert_eq!(rows[1], "      ***     send a message only that");
        assert!(rows.iter().all(|row| row.chars().count() <= 40), "{text}");
        assert!(text.contains("may log it"), "{text}");
    }

    #[test]
    fn mentions_compare_by_the_identity_key() {
        assert_eq!(mentions("hi ΣΑΣ!", "σασ"), vec![3..9]);
        // Full case folding: the final sigma is σ too.
        assert_eq!(mentions("hi σας!", "ΣΑΣ"), vec![3..9]);
        assert_eq!(mentions("CAFE\u{301}: hi", "café"), vec![0.."CAFE\u{301}".len()]);
        assert_eq!(mentions("STRASSE, hi", "straße"), vec![0..7]);
        assert!(mentions("cafe\u{301}", "cafe").is_empty());
        assert_eq!(nick_color("ΣΑΣ"), nick_color("σασ"));
        assert_eq!(nick_color("cafe\u{301}"), nick_color("CAFÉ"));
    }

    #[test]
    fn mentions_are_whole_words_in_any_case() {
        assert_eq!(mentions("hi bob!", "bob"), vec![3..6]);
        assert_eq!(mentions("BOB: hi", "bob"), vec![0..3]);
        assert!(mentions("bobby and kebob", "bob").is_empty());
        assert_eq!(mentions("bob bob", "bob").len(), 2);
        assert!(mentions("anything", "").is_empty());
        let alert = |text: &str, from: &str| {
            plain().event(
                &ev(EventKind::Public {
                    from: from.into(),
                    text: text.into(),
                    room: "#lobby".into(),
                }),
                "bob",
            )
        };
        assert!(alert("ping bob", "alice").alert);
        assert!(!alert("ping bobby", "alice").alert);
        assert!(!alert("I am bob", "bob").alert, "own lines never alert");
    }

    #[test]
    fn colors_mark_nicks_mentions_and_own_lines() {
        let r = Renderer { color: true, ..plain() };
        let hit = r.event(
            &ev(EventKind::Public {
                from: "al".into(),
                text: "yo bob".into(),
                room: "#lobby".into(),
            }),
            "bob",
        );
        assert!(hit.text.contains("\u{1b}[1;7mbob\u{1b}[0m"), "{:?}", hit.text);
        let own = r.event(
            &ev(EventKind::Public { from: "bob".into(), text: "hi".into(), room: "#lobby".into() }),
            "bob",
        );
        let other = r.event(
            &ev(EventKind::Public { from: "al".into(), text: "hi".into(), room: "#lobby".into() }),
            "bob",
        );
        assert!(own.text.contains("\u{1b}[22;1mbob"), "{:?}", own.text);
        assert!(other.text.contains("\u{1b}[22;38;5;"), "{:?}", other.text);
        let deep = Renderer { truecolor: true, ..r.clone() };
        let other = deep.event(
            &ev(EventKind::Public { from: "al".into(), text: "hi".into(), room: "#lobby".into() }),
            "bob",
        );
        let (red, green, blue) = nick_color("al").rgb;
        assert!(other.text.contains(&format!("\u{1b}[22;38;2;{red};{green};{blue}mal")));
        assert_ne!(own.text.replace("bob", "al"), other.text);
        // A system line keeps its style after a colored nick inside it.
        let join = r
            .event(
                &ev(EventKind::Join {
                    nick: "al".into(),
                    online: 2,
                    room: "#lobby".into(),
                    here: 2,
                    from_room: None,
                }),
                "bob",
            )
            .text;
        // The nick at normal intensity inside the dim line, which then goes on.
        let (before, after_nick) = join.split_once("al\u{1b}[0m").expect("nick is reset");
        assert!(before.ends_with(&format!("\u{1b}[22;{}m", nick_color("al").sgr(false))));
        assert!(after_nick.starts_with("\u{1b}[32;2m joined"), "{join:?}");
    }

    #[test]
    fn nothing_from_the_network_reaches_the_terminal_raw() {
        let evil = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31mx\u{202e}\u{2028}";
        // Every kind with every string hostile, and the branches that takes not: a join
        // from outside, a /list naming its room, a private message to me, a topic shown.
        let mut kinds = crate::client::clean::every_kind(evil);
        kinds.extend([
            EventKind::Join {
                nick: evil.into(),
                online: 1,
                room: evil.into(),
                here: 1,
                from_room: None,
            },
            EventKind::Users {
                users: vec![evil.into()],
                room: evil.into(),
                online: 99,
                away: vec![evil.into()],
            },
            EventKind::Private { from: evil.into(), to: "me".into(), text: evil.into() },
            EventKind::Topic { room: evil.into(), topic: evil.into(), by: None },
        ]);
        for kind in kinds {
            let text = show(kind, "me");
            let bad = |c: char| c.is_control() || matches!(c, '\u{202e}' | '\u{2028}');
            assert!(!text.chars().filter(|&c| c != '\n').any(bad), "{text:?}");
            assert!(!text.contains("pwned"), "{text:?}");
        }
        let raw = plain().raw_line(&Clean::text(&format!("!!! full{evil}")));
        assert!(!raw.text.chars().any(char::is_control), "{:?}", raw.text);
        assert!(raw.text.starts_with("!!! full"));
    }
}
