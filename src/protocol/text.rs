//! The human-readable encoding of an [`Event`] for `nc` and `telnet` users.

use std::fmt::Write as _;

use super::event::{Event, EventKind, UserRoom};

impl Event {
    /// The human-readable encoding for `nc`/`telnet` users, one or more lines each
    /// ending in `\n`. `me` is the receiving user's nick: a private message reads
    /// differently for its sender and its target.
    pub fn text_line(&self, me: &str) -> String {
        // The server's local time: the only zone it knows of an nc user's.
        self.text_line_in(me, &jiff::tz::TimeZone::system(), jiff::Timestamp::now())
    }

    /// [`Event::text_line`] with its times in `tz` and dated against `now` (see
    /// [`crate::local_time`]): a replayed line from another day shows its date.
    pub fn text_line_in(&self, me: &str, tz: &jiff::tz::TimeZone, now: jiff::Timestamp) -> String {
        let mut s = String::new();
        if self.history {
            let today = crate::local_time::today(now, tz);
            let _ = write!(s, "[{}] ", crate::local_time::clock(self.ts, tz, today));
        }
        match &self.kind {
            said @ (EventKind::Public { .. }
            | EventKind::Private { .. }
            | EventKind::Action { .. }
            | EventKind::Leave { .. }
            | EventKind::Nick { .. }) => conversation_text(&mut s, said, me),
            answer @ (EventKind::Whois { .. }
            | EventKind::Away { .. }
            | EventKind::Motd { .. }
            | EventKind::Help { .. }) => answer_text(&mut s, answer, tz),
            session @ (EventKind::Welcome { .. }
            | EventKind::Resumed { .. }
            | EventKind::Notice { .. }
            | EventKind::Info { .. }
            | EventKind::Error { .. }
            | EventKind::Shutdown { .. }) => session_text(&mut s, session),
            room_event @ (EventKind::Join { .. }
            | EventKind::Part { .. }
            | EventKind::Users { .. }
            | EventKind::AllUsers { .. }
            | EventKind::Rooms { .. }
            | EventKind::Room { .. }
            | EventKind::Topic { .. }) => room_text(&mut s, room_event),
        }
        s.push('\n');
        s
    }
}

/// The text form of the conversation events but a join (which reads by room, see
/// [`room_text`]): what people say and do, leaves and renames. `me` tells a private
/// message's sender from its target.
fn conversation_text(s: &mut String, kind: &EventKind, me: &str) {
    match kind {
        EventKind::Public { from, text, .. } => {
            let _ = write!(s, "<{from}> {text}");
        }
        EventKind::Private { from, to, text } if from == me && to != me => {
            let _ = write!(s, "-> *{to}* {text}");
        }
        EventKind::Private { from, text, .. } => {
            let _ = write!(s, "*{from}* {text}");
        }
        EventKind::Action { from, text, .. } => {
            let _ = write!(s, "* {from} {text}");
        }
        EventKind::Leave { nick, reason, online, .. } => {
            let _ = write!(s, "*** {nick} left: {reason} ({online} online)");
        }
        EventKind::Nick { old, new, .. } => {
            let _ = write!(s, "*** {old} is now known as {new}");
        }
        // The rest are not conversation; `text_line` renders them.
        _ => {}
    }
}

/// The text form of the answers to a user's questions (`/whois`, `/motd`, `/help`) and
/// of the away reply to a private message.
fn answer_text(s: &mut String, kind: &EventKind, tz: &jiff::tz::TimeZone) {
    match kind {
        EventKind::Whois { .. } => whois_text(s, kind, tz),
        EventKind::Away { nick, message } => {
            let _ = write!(s, "*** {nick} is away: {}", or_none(message));
        }
        EventKind::Motd { text } => {
            let mut lines = text.lines().peekable();
            if lines.peek().is_none() {
                s.push_str("*** (no message of the day)");
            }
            for (i, line) in lines.enumerate() {
                let _ = write!(s, "{}*** MOTD: {line}", if i == 0 { "" } else { "\n" });
            }
        }
        EventKind::Help { commands } => {
            s.push_str("*** Commands:");
            let width = commands.iter().map(|c| c.usage.len()).max().unwrap_or(0);
            for c in commands {
                let _ = write!(s, "\n***   {:width$}  {}", c.usage, c.description);
            }
        }
        // The rest are no answers; `text_line` renders them.
        _ => {}
    }
}

/// The text form of a `/whois` answer: one line, then one more for each of away,
/// operator and (to operators) the address.
fn whois_text(s: &mut String, kind: &EventKind, tz: &jiff::tz::TimeZone) {
    let EventKind::Whois {
        nick,
        room,
        since,
        idle_secs,
        away,
        oper,
        tls,
        addr,
        registered,
        proven_by,
    } = kind
    else {
        return;
    };
    let transport = if *tls { "TLS" } else { "plain TCP" };
    let _ = write!(s, "*** {nick}: ");
    if !room.is_empty() {
        let _ = write!(s, "in {room}, ");
    }
    let _ = write!(s, "online since {}, ", crate::local_time::full(*since, tz));
    if let Some(idle) = idle_secs {
        let _ = write!(s, "idle {}, ", span(*idle));
    }
    let _ = write!(s, "{transport}");
    if let Some(message) = away {
        let _ = write!(s, "\n*** {nick} is away: {}", or_none(message));
    }
    if *oper {
        let _ = write!(s, "\n*** {nick} is an operator");
    }
    match (registered, proven_by) {
        (true, Some(how)) => {
            let _ = write!(s, "\n*** {nick} is registered and proved it by {how}");
        }
        (true, None) => {
            let _ = write!(s, "\n*** {nick} is registered");
        }
        (false, _) => {}
    }
    if let Some(addr) = addr {
        let _ = write!(s, "\n*** {nick} connects from {addr}");
    }
}

/// The text form of what the server says about the session itself: the welcome, a
/// resume, notices, errors and the shutdown.
fn session_text(s: &mut String, kind: &EventKind) {
    match kind {
        EventKind::Welcome { server, version, nick, online, room, .. } => {
            let _ = write!(
                s,
                "*** Welcome to {server} (tchat {version})! You are {nick}; {online} online; \
                 you are in {room}. Type /help for commands, /nick <name> to pick a name."
            );
        }
        EventKind::Resumed { missed, unavailable, .. } => {
            let _ = write!(s, "*** {missed} events while you were away");
            if *unavailable > 0 {
                let _ = write!(s, "; up to {unavailable} more are not available");
            }
        }
        EventKind::Notice { from, text } => {
            let _ = write!(s, "-{from}- {text}");
        }
        EventKind::Info { message } => {
            let _ = write!(s, "*** {message}");
        }
        EventKind::Error { message, .. } => {
            let _ = write!(s, "!!! {message}");
        }
        EventKind::Shutdown { reason } => {
            let _ = write!(s, "*** Server shutting down: {reason}");
        }
        // The rest are about other things; `text_line` renders them.
        _ => {}
    }
}

/// The text form of the events about rooms and who is in them. A server where nobody
/// uses rooms reads as before rooms existed: a join from outside is `joined (N online)`
/// and a list of the room that holds everyone is `N online: …`.
fn room_text(s: &mut String, kind: &EventKind) {
    match kind {
        EventKind::Join { nick, online, from_room: None, .. } => {
            let _ = write!(s, "*** {nick} joined ({online} online)");
        }
        EventKind::Join { nick, room, here, .. } => {
            let _ = write!(s, "*** {nick} joined {room} ({here} here)");
        }
        EventKind::Part { nick, room, to, here } => {
            let _ = write!(s, "*** {nick} left {room} for {to} ({here} here)");
        }
        EventKind::Users { users, online, away, .. } if users.len() == *online => {
            let _ = write!(s, "*** {online} online: {}", marked_away(users, away));
        }
        EventKind::Users { users, room, online, away } => {
            let (n, list) = (users.len(), marked_away(users, away));
            let _ = write!(s, "*** {n} in {room}, {online} online: {list}");
        }
        EventKind::AllUsers { users } => {
            let _ = write!(s, "*** {} online:", users.len());
            let mut by_room: Vec<&UserRoom> = users.iter().collect();
            by_room.sort_by(|a, b| a.room.cmp(&b.room));
            for (i, chunk) in by_room.chunk_by(|a, b| a.room == b.room).enumerate() {
                let nicks: Vec<&str> = chunk.iter().map(|u| u.nick.as_str()).collect();
                let sep = if i == 0 { "" } else { ";" };
                let _ = write!(s, "{sep} {}: {}", chunk[0].room, nicks.join(", "));
            }
        }
        EventKind::Rooms { rooms } => {
            let _ =
                write!(s, "*** {} room{}:", rooms.len(), if rooms.len() == 1 { "" } else { "s" });
            let width = rooms.iter().map(|r| r.room.chars().count()).max().unwrap_or(0);
            for r in rooms {
                let _ = write!(s, "\n***   {:width$}  {:>4} here  {}", r.room, r.here, r.topic);
                s.truncate(s.trim_end().len());
            }
        }
        EventKind::Room { room, topic, users } => {
            let _ = write!(s, "*** You are in {room} ({} here): {}", users.len(), users.join(", "));
            if !topic.is_empty() {
                let _ = write!(s, "\n*** Topic of {room}: {topic}");
            }
        }
        EventKind::Topic { room, topic, by: Some(by) } => {
            let _ = write!(s, "*** {by} set the topic of {room}: {topic}");
        }
        EventKind::Topic { room, topic, by: None } if topic.is_empty() => {
            let _ = write!(s, "*** {room} has no topic; set one with /topic <text>");
        }
        EventKind::Topic { room, topic, by: None } => {
            let _ = write!(s, "*** Topic of {room}: {topic}");
        }
        // The rest are not about rooms; `text_line` renders them.
        _ => {}
    }
}

/// `secs` as people read a duration: `45s`, `12m 5s`, `3h 2m`, `2d 4h`.
pub fn span(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// `users` joined by commas, each of those in `away` followed by ` (away)`.
fn marked_away(users: &[String], away: &[String]) -> String {
    let marked =
        users.iter().map(|u| if away.contains(u) { format!("{u} (away)") } else { u.clone() });
    marked.collect::<Vec<_>>().join(", ")
}

fn or_none(message: &str) -> &str {
    if message.is_empty() { "(no message)" } else { message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::commands::{COMMANDS, help_entries};

    #[test]
    fn new_events_read_naturally_as_text() {
        let t = |k: EventKind| Event::now(k).text_line("me");
        let users = |online| EventKind::Users {
            users: vec!["a".into(), "b".into()],
            room: "#lobby".into(),
            online,
            away: vec!["b".into()],
        };
        assert_eq!(t(users(2)), "*** 2 online: a, b (away)\n");
        assert_eq!(t(users(5)), "*** 2 in #lobby, 5 online: a, b (away)\n");
        assert_eq!(
            t(EventKind::Motd { text: "one\ntwo".into() }),
            "*** MOTD: one\n*** MOTD: two\n"
        );
        assert_eq!(
            t(EventKind::Away { nick: "b".into(), message: String::new() }),
            "*** b is away: (no message)\n"
        );
        assert_eq!(span(59), "59s");
        assert_eq!(span(3725), "1h 2m");
        assert_eq!(span(90_000), "1d 1h");
    }

    #[test]
    fn text_lines_read_naturally() {
        let t = |k: EventKind, me: &str| Event::now(k).text_line(me);
        assert_eq!(
            t(
                EventKind::Public { from: "a".into(), text: "hi".into(), room: "#lobby".into() },
                "b"
            ),
            "<a> hi\n"
        );
        let pm = EventKind::Private { from: "a".into(), to: "b".into(), text: "psst".into() };
        assert_eq!(t(pm.clone(), "b"), "*a* psst\n");
        assert_eq!(t(pm, "a"), "-> *b* psst\n");
        assert_eq!(
            t(
                EventKind::Action { from: "a".into(), text: "waves".into(), room: "#lobby".into() },
                "b"
            ),
            "* a waves\n"
        );
        let help = t(EventKind::Help { commands: help_entries() }, "a");
        for (usage, _) in COMMANDS {
            assert!(help.contains(usage), "{help}");
        }
    }
}
