//! What a conversation event looks like on the backbone: its subject, its headers and
//! its payload, and reading one back. Pure, so it is tested without NATS.
//!
//! - Subject: `tchat.ev.r.<room>` for a room's events, the room key
//!   ([`crate::room::key`]) in unpadded base64url (NATS subjects allow only a few
//!   characters, room keys are Unicode); `tchat.ev.pm` for private messages. The stream
//!   keeps `--history` messages per subject: each room's ring and the one private ring,
//!   as a single server keeps them.
//! - Payload: the event's JSON line without an id: the stream sequence is the id.
//! - `Tchat-Origin: NODE MEMBER SKIP`: the node it was said on, and which of that node's
//!   members does not get it back (`-`: nobody; `m`: that member; `t`: that member if it
//!   is in text mode, whose screen already shows what it typed).
//! - `Tchat-Private: FROM TO`: the two sessions of a private message.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use serde::{Deserialize, Serialize};

use crate::protocol::Event;

/// Every subject the stream holds.
pub const ALL: &str = "tchat.ev.>";
/// The subject of private messages.
pub const PRIVATE: &str = "tchat.ev.pm";
/// The subject of moderation given on one node for users wherever they are.
pub const MODERATION: &str = "tchat.ev.mod";
const ROOM_PREFIX: &str = "tchat.ev.r.";
pub const ORIGIN: &str = "Tchat-Origin";
pub const SESSIONS: &str = "Tchat-Private";

/// The subject of room `key`'s events.
pub fn room_subject(key: &str) -> String {
    format!("{ROOM_PREFIX}{}", URL_SAFE_NO_PAD.encode(key))
}

/// Who, on the node an event was said on, does not get it back; mirrors the hub's
/// `Skip` with member ids that mean something only on that node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    All,
    NotTo(u64),
    NotToText(u64),
}

/// Where an event was said: a node and one of its members (0: none, the console say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub node: String,
    pub member: u64,
    pub echo: Echo,
}

impl Origin {
    pub fn header(&self) -> String {
        let (kind, member) = match self.echo {
            Echo::All => ('-', self.member),
            Echo::NotTo(m) => ('m', m),
            Echo::NotToText(m) => ('t', m),
        };
        format!("{} {member} {kind}", self.node)
    }

    pub fn parse(header: &str) -> Option<Origin> {
        let mut parts = header.split(' ');
        let node = parts.next().filter(|n| !n.is_empty())?.to_owned();
        let member = parts.next()?.parse().ok()?;
        let echo = match parts.next()? {
            "-" => Echo::All,
            "m" => Echo::NotTo(member),
            "t" => Echo::NotToText(member),
            _ => return None,
        };
        parts.next().is_none().then_some(Origin { node, member, echo })
    }
}

/// Where a delivered event goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// To the members of the room with this key.
    Room(String),
    /// To the two sessions of a private message.
    Private { from: u64, to: u64 },
}

/// A conversation event read from the stream: its id is the stream sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    pub event: Event,
    pub target: Target,
    pub origin: Option<Origin>,
}

/// A kick, mute or ban given on one node, for the node where its target is (or, for a
/// ban, for every node's list). Nicks are matched as the hub matches them. A mute's
/// `ip` is the address it holds for as well (as in a single process): known to the
/// node where the muted user is, which keeps the mute again with it when the node that
/// gave it did not know it; absent in what older nodes kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Moderation {
    Kick {
        nick: String,
        why: String,
    },
    Mute {
        nick: String,
        until: Option<jiff::Timestamp>,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ip: Option<std::net::IpAddr>,
    },
    Unmute {
        nick: String,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ip: Option<std::net::IpAddr>,
    },
    Ban {
        ban: crate::server::bans::Ban,
    },
    Unban {
        target: String,
    },
}

/// A message of the stream: a conversation event, or moderation.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Event(Delivered),
    Moderation(Moderation, Option<Origin>),
}

/// Why a stream message is not a tchat event (written by something else, or by a newer
/// tchat): the node skips it and says so.
#[derive(Debug, PartialEq, Eq)]
pub struct Unreadable(pub String);

/// Reads the message on `subject` with headers `header` (a lookup) and `payload`.
pub fn read(
    subject: &str,
    header: impl Fn(&str) -> Option<String>,
    payload: &[u8],
) -> Result<Incoming, Unreadable> {
    if subject == MODERATION {
        let action = serde_json::from_slice(payload)
            .map_err(|e| Unreadable(format!("bad moderation: {e}")))?;
        let origin = header(ORIGIN).and_then(|h| Origin::parse(&h));
        return Ok(Incoming::Moderation(action, origin));
    }
    let target = if subject == PRIVATE {
        let sessions = header(SESSIONS).ok_or_else(|| Unreadable("no sessions".into()))?;
        let (from, to) = sessions
            .split_once(' ')
            .and_then(|(f, t)| Some((f.parse().ok()?, t.parse().ok()?)))
            .ok_or_else(|| Unreadable(format!("bad sessions {sessions:?}")))?;
        Target::Private { from, to }
    } else {
        let encoded = subject
            .strip_prefix(ROOM_PREFIX)
            .ok_or_else(|| Unreadable(format!("unknown subject {subject}")))?;
        let key = URL_SAFE_NO_PAD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| Unreadable(format!("bad room in subject {subject}")))?;
        Target::Room(key)
    };
    let mut event: Event =
        serde_json::from_slice(payload).map_err(|e| Unreadable(format!("bad event: {e}")))?;
    event.id = None;
    event.history = false;
    let origin = header(ORIGIN).and_then(|h| Origin::parse(&h));
    Ok(Incoming::Event(Delivered { event, target, origin }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::EventKind;

    fn public(room: &str) -> Event {
        Event::now(EventKind::Public { from: "ana".into(), text: "hi".into(), room: room.into() })
    }

    #[test]
    fn a_room_event_reads_back() {
        let key = crate::room::key("#Café");
        let subject = room_subject(&key);
        assert!(subject.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
        let origin = Origin { node: "a-1".into(), member: 7, echo: Echo::NotToText(7) };
        let header = origin.header();
        let event = public("#Café");
        let line = event.json_line();
        let got = read(&subject, |h| (h == ORIGIN).then(|| header.clone()), line.as_bytes());
        let Ok(Incoming::Event(got)) = got else { panic!("{got:?}") };
        assert_eq!(got.target, Target::Room(key));
        assert_eq!(got.origin, Some(origin));
        // The time goes over the wire to the second, as clients get it.
        assert_eq!(got.event.json_line(), line);
    }

    #[test]
    fn a_private_message_reads_back() {
        let event = Event::now(EventKind::Private {
            from: "ana".into(),
            to: "bo".into(),
            text: "psst".into(),
        });
        let sessions = |h: &str| (h == SESSIONS).then(|| "12 34".to_owned());
        let got = read(PRIVATE, sessions, event.json_line().as_bytes());
        let Ok(Incoming::Event(got)) = got else { panic!("{got:?}") };
        assert_eq!(got.target, Target::Private { from: 12, to: 34 });
        assert_eq!(got.origin, None);
    }

    #[test]
    fn moderation_reads_back() {
        let kick = Moderation::Kick { nick: "bo".into(), why: "kicked by console".into() };
        let payload = serde_json::to_vec(&kick).unwrap();
        let got = read(MODERATION, |_| None, &payload);
        assert_eq!(got, Ok(Incoming::Moderation(kick, None)));
        assert!(read(MODERATION, |_| None, b"{\"action\":\"nuke\"}").is_err());
    }

    #[test]
    fn foreign_messages_are_unreadable() {
        let line = public("#lobby").json_line();
        assert!(read("tchat.ev.x", |_| None, line.as_bytes()).is_err());
        assert!(read("tchat.ev.r.!!", |_| None, line.as_bytes()).is_err());
        assert!(read(&room_subject("#a"), |_| None, b"not json").is_err());
        assert!(read(PRIVATE, |_| None, line.as_bytes()).is_err(), "no sessions");
        assert!(read(PRIVATE, |_| Some("1".into()), line.as_bytes()).is_err());
    }

    #[test]
    fn origin_headers_round_trip_and_refuse_junk() {
        for echo in [Echo::All, Echo::NotTo(3), Echo::NotToText(3)] {
            let origin = Origin { node: "n".into(), member: 3, echo };
            assert_eq!(Origin::parse(&origin.header()), Some(origin));
        }
        for bad in ["", "n", "n x -", "n 1 q", "n 1 - extra", " 1 -"] {
            assert_eq!(Origin::parse(bad), None, "{bad:?}");
        }
    }
}
