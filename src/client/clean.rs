//! Received text, made harmless once, where it enters the client.
//!
//! What the server sends ends up on the user's terminal: in chat lines, the nick list,
//! completion and the prompt. The client trusts the server no more than the server
//! trusts its peers, so every string the connection core receives goes through
//! [`crate::sanitize::sanitize`] as it is decoded, and comes out as a [`Clean`] value.
//! The renderer, the nick list and completion take only [`Clean`] values, so none of
//! them sanitises again, and none can be handed raw text by mistake.

use std::fmt;
use std::ops::Deref;

use crate::protocol::{Event, EventKind, HelpEntry, RoomInfo, UserRoom};
use crate::sanitize::{needs_sanitizing, sanitize};

/// A value with every terminal control removed from every string in it: no escape
/// sequence (CSI, OSC, DCS, …), no C0 or C1 control, DEL or Bidi_Control character,
/// and no line separator (VT, FF, NEL, U+2028, U+2029): tabs and separators became
/// spaces (the rule is [`sanitize`]'s). The one exception: the text of a message of
/// the day ([`EventKind::Motd`]) keeps its `\n` line breaks, each line cleaned.
///
/// Made only by [`Clean::text`] and [`Clean::event`], which run the sanitiser, and
/// read-only after that (it derefs to the value, never mutably). The connection core
/// makes them from each line the server sends; the UI makes them from the events it
/// builds itself (its own commands' answers, a catch-up's summary), so the renderer
/// has one input type. A substring of clean text is clean, so what is taken out of
/// one (a nick, a room) may be kept as a plain `String`.
#[derive(Clone, PartialEq)]
pub struct Clean<T>(T);

impl Clean<String> {
    /// `text`, sanitised: a line that is not an event (a refusal, a banner).
    pub fn text(text: &str) -> Clean<String> {
        Clean(sanitize(text))
    }
}

impl Clean<Event> {
    /// `event` with every string in it sanitised (see [`Clean`]).
    pub fn event(mut event: Event) -> Clean<Event> {
        clean_kind(&mut event.kind);
        Clean(event)
    }
}

impl<T> Deref for Clean<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// As the value itself: a clean nick in an error message reads as the nick.
impl<T: fmt::Debug> fmt::Debug for Clean<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: fmt::Display> fmt::Display for Clean<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Sanitises `s` in place, copying only when something must go.
fn clean(s: &mut String) {
    if needs_sanitizing(s) {
        *s = sanitize(s);
    }
}

/// Sanitises every string in `kind`.
// Over 60 lines: one arm per event kind, each naming every field (no `..`), so that a
// string field added to the schema cannot be missed: it does not compile until it is
// cleaned here or named as no text.
fn clean_kind(kind: &mut EventKind) {
    match kind {
        EventKind::Welcome {
            server,
            version,
            nick,
            online: _,
            users,
            room,
            last_id: _,
            resume,
            flood: _,
        } => {
            [server, version, nick, room].into_iter().chain(resume).for_each(clean);
            users.iter_mut().for_each(clean);
        }
        EventKind::Resumed { missed: _, unavailable: _, resumed: _ } => {}
        EventKind::Public { from, text, room } | EventKind::Action { from, text, room } => {
            [from, text, room].into_iter().for_each(clean)
        }
        EventKind::Private { from, to, text } => [from, to, text].into_iter().for_each(clean),
        EventKind::Join { nick, online: _, room, here: _, from_room } => {
            [nick, room].into_iter().chain(from_room).for_each(clean)
        }
        EventKind::Leave { nick, reason, online: _, room, here: _ } => {
            [nick, reason, room].into_iter().for_each(clean)
        }
        EventKind::Part { nick, room, to, here: _ } => [nick, room, to].into_iter().for_each(clean),
        EventKind::Nick { old, new, room } => [old, new, room].into_iter().for_each(clean),
        EventKind::Users { users, room, online: _, away } => {
            users.iter_mut().chain(away).for_each(clean);
            clean(room);
        }
        EventKind::AllUsers { users } => {
            for UserRoom { nick, room } in users {
                [nick, room].into_iter().for_each(clean);
            }
        }
        EventKind::Rooms { rooms } => {
            for RoomInfo { room, here: _, topic } in rooms {
                [room, topic].into_iter().for_each(clean);
            }
        }
        EventKind::Room { room, topic, users } => {
            [room, topic].into_iter().chain(users).for_each(clean)
        }
        EventKind::Topic { room, topic, by } => [room, topic].into_iter().chain(by).for_each(clean),
        EventKind::Help { commands } => {
            for HelpEntry { usage, description } in commands {
                [usage, description].into_iter().for_each(clean);
            }
        }
        EventKind::Whois {
            nick,
            room,
            since: _,
            idle_secs: _,
            away,
            oper: _,
            tls: _,
            addr,
            registered: _,
            proven_by,
        } => [nick, room].into_iter().chain(away).chain(addr).chain(proven_by).for_each(clean),
        EventKind::Away { nick, message } => [nick, message].into_iter().for_each(clean),
        // Several lines: each is cleaned, the line breaks stay.
        EventKind::Motd { text } if needs_sanitizing(text) => {
            *text = text.split('\n').map(sanitize).collect::<Vec<_>>().join("\n");
        }
        EventKind::Motd { text: _ } => {}
        EventKind::Notice { from, text } => [from, text].into_iter().for_each(clean),
        EventKind::Info { message } => clean(message),
        EventKind::Error { code, message } => [code, message].into_iter().for_each(clean),
        EventKind::Shutdown { reason } => clean(reason),
    }
}

/// One event of every kind that carries text, with `s` as each of its strings: for
/// tests that hostile text is cleaned, and harmless once rendered, in every field.
#[cfg(test)]
pub(crate) fn every_kind(s: &str) -> Vec<EventKind> {
    vec![
        EventKind::Welcome {
            server: s.into(),
            version: s.into(),
            nick: s.into(),
            online: 3,
            users: vec![s.into()],
            room: s.into(),
            last_id: 9,
            resume: Some(s.into()),
            flood: None,
        },
        EventKind::Public { from: s.into(), text: s.into(), room: s.into() },
        EventKind::Action { from: s.into(), text: s.into(), room: s.into() },
        EventKind::Private { from: s.into(), to: s.into(), text: s.into() },
        EventKind::Join {
            nick: s.into(),
            online: 2,
            room: s.into(),
            here: 1,
            from_room: Some(s.into()),
        },
        EventKind::Leave { nick: s.into(), reason: s.into(), online: 2, room: s.into(), here: 1 },
        EventKind::Part { nick: s.into(), room: s.into(), to: s.into(), here: 1 },
        EventKind::Nick { old: s.into(), new: s.into(), room: s.into() },
        EventKind::Users { users: vec![s.into()], room: s.into(), online: 1, away: vec![s.into()] },
        EventKind::AllUsers { users: vec![UserRoom { nick: s.into(), room: s.into() }] },
        EventKind::Rooms { rooms: vec![RoomInfo { room: s.into(), here: 4, topic: s.into() }] },
        EventKind::Room { room: s.into(), topic: s.into(), users: vec![s.into()] },
        EventKind::Topic { room: s.into(), topic: s.into(), by: Some(s.into()) },
        EventKind::Help { commands: vec![HelpEntry { usage: s.into(), description: s.into() }] },
        EventKind::Whois {
            nick: s.into(),
            room: s.into(),
            since: "2026-11-25T19:00:00Z".parse().unwrap(),
            idle_secs: Some(5),
            away: Some(s.into()),
            oper: true,
            tls: true,
            addr: Some(s.into()),
            registered: true,
            proven_by: Some(s.into()),
        },
        EventKind::Away { nick: s.into(), message: s.into() },
        EventKind::Notice { from: s.into(), text: s.into() },
        EventKind::Info { message: s.into() },
        EventKind::Error { code: s.into(), message: s.into() },
        EventKind::Shutdown { reason: s.into() },
        EventKind::Motd { text: s.into() },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Escape sequences (CSI, OSC, a two-byte one), C0 and C1 controls (C1 CSI among
    /// them), DEL, bidi overrides and isolates, and every line separator.
    const HOSTILE: &str = "a\u{1b}[2J\u{1b}]0;pwned\u{7}\u{1b}7\u{9b}31m\u{85}\u{8d}\u{7f}\
                           \u{0}b\u{202e}c\u{2066}\u{2028}d\u{2029}\u{b}\u{c}\te";

    /// What [`HOSTILE`] becomes: the separators and the tab are spaces.
    const CLEANED: &str = "a bc d    e";

    fn harmless(text: &str) -> bool {
        !text.chars().any(|c| {
            c.is_control()
                || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}')
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{2066}'..='\u{2069}')
        })
    }

    #[test]
    fn clean_text_has_no_controls_bidi_or_line_separators() {
        let text = Clean::text(HOSTILE);
        assert_eq!(text.as_str(), CLEANED);
        assert!(harmless(&text));
        assert_eq!(format!("{text:?}"), format!("{CLEANED:?}"), "shows as the text");
        assert_eq!(*Clean::text("plain, ünïcode 名"), "plain, ünïcode 名");
    }

    fn event(kind: EventKind) -> EventKind {
        let ts = "2026-11-25T19:07:30Z".parse().unwrap();
        Clean::event(Event { id: Some(1), ts, history: false, kind }).kind.clone()
    }

    /// Every string of every kind of event is cleaned, the whois's `proven_by` (which
    /// a list of fields once missed) among them; numbers and the rest are kept.
    #[test]
    fn every_string_of_an_event_is_cleaned() {
        for (hostile, cleaned) in every_kind(HOSTILE).into_iter().zip(every_kind(CLEANED)) {
            assert_eq!(event(hostile), cleaned);
        }
        let resumed = EventKind::Resumed { missed: 3, unavailable: 1, resumed: true };
        assert_eq!(event(resumed.clone()), resumed);
    }

    #[test]
    fn a_message_of_the_day_keeps_its_line_breaks() {
        let motd = EventKind::Motd { text: format!("{HOSTILE}\n\r\u{1b}[1mtwo") };
        assert_eq!(event(motd), EventKind::Motd { text: format!("{CLEANED}\ntwo") });
        let plain = EventKind::Motd { text: "one\ntwo".into() };
        assert_eq!(event(plain.clone()), plain);
    }
}
