//! What the server sends: the [`Event`] schema and its structured (JSON) encoding.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Something that happened, as sent to clients. Serialised as one JSON object per line
/// with a `type` tag and an RFC 3339 `ts` in whole seconds (see [`crate::timestamp`]);
/// see docs/protocol.md.
///
/// Conversation events (public, private, action, join, leave, nick) carry an `id`:
/// increasing and unique per server, also across restarts on the same `--save` log. It
/// is the first field, so the hub can add it to a line encoded before the id was known
/// ([`Event::json_line_with_id`]). Events sent again (replay on join, `/history`, a
/// resume) have `history` set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    #[serde(serialize_with = "crate::timestamp::serialize")]
    pub ts: jiff::Timestamp,
    #[serde(default, skip_serializing_if = "is_false")]
    pub history: bool,
    #[serde(flatten)]
    pub kind: EventKind,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The events of the structured protocol. Every variant carries what a client needs to
/// render it and to keep its nick list current without asking again. Every event that
/// happens in a room carries that room's name in `room`; the fields rooms added to older
/// events default when absent, so the client still reads a server without rooms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// First event after the hello: who you are and who is here.
    /// `users` lists everyone online, you included, unless the server has more than its
    /// announce limit online: then it is empty and `/list` fetches it. `room` is the
    /// room you start in; a [`EventKind::Room`] event follows with its members.
    ///
    /// `last_id` is the id of the latest conversation event at the time, the place to
    /// resume from if nothing arrives before the connection drops. `resume` is the
    /// token for resuming this session (structured mode only; secret, 32 hex digits).
    /// `flood` is the server's flood control (absent when it has none): a client that
    /// sends no faster never has its lines delayed.
    Welcome {
        server: String,
        version: String,
        nick: String,
        online: usize,
        users: Vec<String>,
        #[serde(default)]
        room: String,
        #[serde(default)]
        last_id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flood: Option<FloodLimit>,
    },
    /// After a welcome that answered a resume: `missed` events follow (marked
    /// `history`), then the live stream. `unavailable` ids after the client's last id
    /// are not sent (no longer kept by the server, or too many bytes to send at once),
    /// so up to that many events are lost to it.
    /// `resumed` is true when the session itself was resumed (its token was valid: same
    /// nick, nothing announced), false when only the events could be caught up (after a
    /// server restart, or once the grace period was over).
    Resumed {
        missed: usize,
        unavailable: u64,
        resumed: bool,
    },
    Public {
        from: String,
        text: String,
        #[serde(default)]
        room: String,
    },
    /// Sent to the target, and to the sender as confirmation (`from` is then the sender).
    /// Private messages cross rooms, so they carry none.
    Private {
        from: String,
        to: String,
        text: String,
    },
    Action {
        from: String,
        text: String,
        #[serde(default)]
        room: String,
    },
    /// Someone came into your room: connected to the server (`from_room` absent), or
    /// moved here with `/join` or `/part` (`from_room` is the room they left). `here`
    /// counts the room, `online` the server.
    Join {
        nick: String,
        online: usize,
        #[serde(default)]
        room: String,
        #[serde(default)]
        here: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_room: Option<String>,
    },
    /// Someone left the server from your room.
    Leave {
        nick: String,
        reason: String,
        online: usize,
        #[serde(default)]
        room: String,
        #[serde(default)]
        here: usize,
    },
    /// Someone left your room for room `to`, staying on the server.
    Part {
        nick: String,
        room: String,
        to: String,
        here: usize,
    },
    /// A nick change in your room, yours too.
    Nick {
        old: String,
        new: String,
        #[serde(default)]
        room: String,
    },
    /// Answer to `/list`: the people in `room`, sorted case-insensitively; `online`
    /// counts the server. `away` names those of `users` who are away (omitted when
    /// nobody is).
    Users {
        users: Vec<String>,
        #[serde(default)]
        room: String,
        #[serde(default)]
        online: usize,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        away: Vec<String>,
    },
    /// Answer to `/list all`: everyone online with their room, sorted by nick.
    AllUsers {
        users: Vec<UserRoom>,
    },
    /// Answer to `/rooms`, sorted by name.
    Rooms {
        rooms: Vec<RoomInfo>,
    },
    /// The room you are in now, with its topic (empty: none) and members, you
    /// included: after the welcome and after every `/join` and `/part` of yours.
    Room {
        room: String,
        topic: String,
        users: Vec<String>,
    },
    /// A room's topic (empty: none): set by `by`, or shown on `/topic` (`by` absent).
    Topic {
        room: String,
        topic: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// Answer to `/whois`. `room` is the room the user is in; `since` is when the user
    /// connected; `idle_secs` the seconds since their last message (absent for a user
    /// of another node of a backbone, whose node alone knows it); `addr` (IP:port) is
    /// sent to operators only.
    Whois {
        nick: String,
        #[serde(default)]
        room: String,
        since: jiff::Timestamp,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idle_secs: Option<u64>,
        away: Option<String>,
        oper: bool,
        tls: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        addr: Option<String>,
        /// The nick is registered (`/register`): only a connection that proves it may
        /// hold it.
        #[serde(default, skip_serializing_if = "is_false")]
        registered: bool,
        /// How the user's connection proved the registered nick: `key` or `password`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proven_by: Option<String>,
    },
    /// The automatic answer to a private message sent to a user who is away; sent once
    /// per sender and away spell.
    Away {
        nick: String,
        message: String,
    },
    /// The message of the day, on join and on `/motd`; `text` may hold several lines.
    Motd {
        text: String,
    },
    /// A notice to everyone from the server (`/say`); `from` is the server's name.
    Notice {
        from: String,
        text: String,
    },
    Help {
        commands: Vec<HelpEntry>,
    },
    Info {
        message: String,
    },
    /// `code` is stable for programs (`bad_nick`, `nick_taken`, `usage`, …); `message`
    /// is for people.
    Error {
        code: String,
        message: String,
    },
    Shutdown {
        reason: String,
    },
}

/// One entry of [`EventKind::AllUsers`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRoom {
    pub nick: String,
    pub room: String,
}

/// The flood control a server applies to every connection (`--rate`, `--burst`), as
/// the welcome states it: `burst` lines at once, then `rate` lines per second. Lines
/// beyond it are delayed to the rate, never dropped.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FloodLimit {
    /// Lines per second, sustained; above 0.
    pub rate: f64,
    /// Lines at once before the rate applies; at least 1.
    pub burst: u32,
}

/// One entry of [`EventKind::Rooms`]: a room, how many are in it, its topic (empty: none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomInfo {
    pub room: String,
    pub here: usize,
    pub topic: String,
}

/// Error codes of the line the server sends just before it disconnects a client:
/// excess flood (bytes without a line end), not reading (send queue full), and an operator's kick
/// or ban. A client must not come back by itself after one of them.
pub const KICK_CODES: &[&str] = &["flood", "too_slow", "kicked"];

impl EventKind {
    /// True for the events that tell a client the server is ending its session (a kick,
    /// a shutdown), as opposed to answering its `/quit`.
    pub fn ends_session(&self) -> bool {
        match self {
            EventKind::Shutdown { .. } => true,
            EventKind::Error { code, .. } => KICK_CODES.contains(&code.as_str()),
            _ => false,
        }
    }

    /// Something someone said (a line, an action, a private message, a topic), as
    /// opposed to a join, leave, move or rename: what replays and "messages" count.
    pub fn is_said(&self) -> bool {
        matches!(
            self,
            EventKind::Public { .. }
                | EventKind::Action { .. }
                | EventKind::Private { .. }
                | EventKind::Topic { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HelpEntry {
    pub usage: String,
    pub description: String,
}

impl Event {
    pub fn now(kind: EventKind) -> Event {
        Event { id: None, ts: jiff::Timestamp::now(), history: false, kind }
    }

    /// `line`, the [`Event::json_line`] of this event encoded without an id, with `id`
    /// added as its first field: the same bytes as encoding the event with the id set.
    pub fn json_line_with_id(line: &str, id: u64) -> String {
        let rest = line.strip_prefix('{').unwrap_or(line);
        let mut out = String::with_capacity(line.len() + 24);
        let _ = write!(out, "{{\"id\":{id},");
        out.push_str(rest);
        out
    }

    /// The structured encoding: one JSON object and `\n`.
    pub fn json_line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("events always serialise");
        line.push('\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_goes_first_in_a_line_encoded_without_it() {
        let mut event = Event::now(EventKind::Public {
            from: "a".into(),
            text: "b".into(),
            room: String::new(),
        });
        let without = event.json_line();
        event.id = Some(7);
        assert_eq!(Event::json_line_with_id(&without, 7), event.json_line());
        assert!(event.json_line().starts_with("{\"id\":7,\"ts\":"), "{}", event.json_line());
        event.history = true;
        assert!(event.json_line().contains("\"history\":true"));
        let back: Event = serde_json::from_str(&event.json_line()).unwrap();
        assert_eq!((back.id, back.history, back.kind), (event.id, event.history, event.kind));
    }

    #[test]
    fn events_round_trip_through_json() {
        let ev = Event::now(EventKind::Private {
            from: "a".into(),
            to: "b".into(),
            text: "hi \"there\"".into(),
        });
        let line = ev.json_line();
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["type"], "private");
        assert_eq!(v["from"], "a");
        // Whole seconds, as in the --save log: `2026-11-25T19:13:51Z`.
        let ts = v["ts"].as_str().unwrap();
        assert!(ts.len() == 20 && ts.ends_with('Z') && !ts.contains('.'), "{ts}");
        let ev = Event { ts: crate::timestamp::whole_second(ev.ts), ..ev };
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), ev);
        // A client still reads a server that sends fractions.
        let older = r#"{"ts":"2026-11-25T19:13:51.44Z","type":"info","message":"m"}"#;
        assert!(serde_json::from_str::<Event>(older).is_ok());
    }
}
