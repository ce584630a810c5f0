//! How an event reaches members: encoded once per mode ([`Frames`]), given its id and
//! kept, and pushed to each member's queue under the lock; private messages; on a
//! backbone, handed to it instead.

use std::cell::OnceCell;

use super::profile;
use super::{Hub, Registry, Skip, encode_for};
use crate::nick;
use crate::protocol::{Event, EventKind};
use crate::server::backbone::Link;
use crate::server::backbone::wire::{Echo, Origin};
use crate::server::history::{Scope, Stored};
use crate::server::outbox::Frame;

/// An event encoded once for each mode in use, for all recipients. The JSON form
/// is encoded only when some member is in structured mode (it costs several times the
/// text form): before the lock is taken if [`Hub::json_members`] says so, else under it
/// for a member that became structured meanwhile.
///
/// A conversation event gets its id under the lock ([`Frames::id`]); the JSON line,
/// encoded without it, then has it put in front ([`Event::json_line_with_id`]), a copy
/// rather than a second encoding.
pub(super) struct Frames {
    pub(super) event: Event,
    text: Frame,
    /// The JSON form without an id.
    base: OnceCell<String>,
    id: Option<u64>,
    /// The JSON form with `id`.
    json: OnceCell<Frame>,
}

impl Frames {
    pub(super) fn new(event: Event, json_wanted: bool) -> Frames {
        let base = OnceCell::new();
        if json_wanted {
            let _ = base.set(event.json_line());
        }
        let text = Frame::from(event.text_line("").as_bytes());
        Frames { event, text, base, id: None, json: OnceCell::new() }
    }

    /// The JSON form without an id: what goes on the backbone.
    fn base(&self) -> &str {
        self.base.get_or_init(|| self.event.json_line())
    }

    /// The line for a member in structured mode (`json`) or text mode, shared.
    pub(super) fn get(&self, json: bool) -> &Frame {
        if !json {
            return &self.text;
        }
        self.json.get_or_init(|| {
            let base = self.base.get_or_init(|| self.event.json_line());
            match self.id {
                None => Frame::from(base.as_bytes()),
                Some(id) => Frame::from(Event::json_line_with_id(base, id).as_bytes()),
            }
        })
    }
}

impl Hub {
    /// Sends `event`, not part of the conversation (no id, not kept), to every
    /// registered member, whatever their room (shutdown).
    pub fn broadcast(&self, event: &Event) {
        let frames = Frames::new(event.clone(), self.json_wanted());
        let reg = self.lock();
        for m in reg.members.values().filter(|m| m.registered && !m.held) {
            m.outbox.push_frame(frames.get(m.json));
        }
    }

    /// Sends the conversation event `event` (a public line or an action) to the members
    /// of member `id`'s room, except as `skip` says, with the next id, and keeps it.
    /// Returns the id (`None` on a backbone, which gives it later). Only `id`'s own task
    /// moves it between rooms, so the room it named in `event` is the one it is in.
    pub fn to_room(&self, id: u64, event: Event, skip: Skip) -> Option<u64> {
        let frames = Frames::new(event, self.json_wanted());
        let mut reg = self.lock();
        let key = reg.members.get(&id)?.room.clone();
        reg.publish(&key, frames, skip, id)
    }

    /// Delivers a private message to `to` and a confirmation to the sender. Returns the
    /// target's nick as registered and the message's id (`None` on a backbone, which gives
    /// it later), or `None` if nobody has that nick. A held target gets it when it
    /// resumes.
    pub fn private(&self, from_id: u64, to: &str, text: &str) -> Option<(String, Option<u64>)> {
        let mut reg = self.lock();
        let Some(target_id) = reg.holder(&nick::key(to)) else {
            return reg.private_to_other_node(from_id, to, text);
        };
        // Only someone the others can know of (in `/list`) can be written to.
        let target = reg.members.get(&target_id).filter(|m| m.announced)?;
        let sender = &reg.members[&from_id];
        let mut event = Event::now(EventKind::Private {
            from: sender.nick.clone(),
            to: target.nick.clone(),
            text: text.to_owned(),
        });
        let (from, to) = (sender.session, target.session);
        let target_nick = target.nick.clone();
        if let Some(link) = &reg.link {
            // Delivered, to both sides, when it comes back from the stream.
            let origin = said_by(link, from_id, Skip::Nobody);
            if link.private(event.json_line().trim_end(), origin, from, to).is_err() {
                reg.not_sent(from_id, Unsent::Dropped);
            }
            profile::after_private(&mut reg, from_id, target_id);
            return Some((target_nick, None));
        }
        let id = reg.keep_private(event.clone(), from, to);
        event.id = Some(id);
        let target = &reg.members[&target_id];
        if !target.held {
            target.outbox.push(encode_for(&event, target.json, &target.nick).as_bytes());
        }
        let sender = &reg.members[&from_id];
        if target_id != from_id {
            sender.outbox.push(encode_for(&event, sender.json, &sender.nick).as_bytes());
        }
        profile::after_private(&mut reg, from_id, target_id);
        Some((target_nick, Some(id)))
    }

    /// Sends `event` to member `id` alone, in its encoding.
    pub fn send_to(&self, id: u64, event: &Event) {
        let reg = self.lock();
        if let Some(m) = reg.members.get(&id).filter(|m| !m.held) {
            m.outbox.push(encode_for(event, m.json, &m.nick).as_bytes());
        }
    }

    /// Queues `line` (with its line end) for member `id` as it is: a refusal's `!!!`
    /// line, which clients read before any welcome whatever their mode.
    pub fn send_line(&self, id: u64, line: &str) {
        if let Some(m) = self.lock().members.get(&id) {
            m.outbox.push(line.as_bytes());
        }
    }

    /// `event` encoded for member `id` (its mode, its nick), without queueing it: for
    /// the last line of a client whose queue is closed.
    pub fn encode_for_member(&self, id: u64, event: &Event) -> Option<String> {
        let reg = self.lock();
        reg.members.get(&id).map(|m| encode_for(event, m.json, &m.nick))
    }
}

impl Registry {
    /// Gives `frames` the next id, keeps its event as one of room `key`, and sends it to
    /// the members of the room except as `skip` says. Returns the id.
    ///
    /// On a backbone the event is only handed to it, and comes back through
    /// [`Hub::apply`] with its id: the id is not known yet (`None`). `by` is the member
    /// who said it (0: the server), told if the backbone does not take it.
    pub(super) fn publish(
        &mut self,
        key: &str,
        frames: Frames,
        skip: Skip,
        by: u64,
    ) -> Option<u64> {
        if let Some(link) = &self.link {
            let origin = said_by(link, by, skip);
            if link.room(key, frames.base(), origin).is_err() {
                self.not_sent(by, Unsent::Dropped);
            }
            return None;
        }
        let id = self.history.next_id();
        self.deliver(key, frames, skip, id);
        Some(id)
    }

    /// Sends `frames` with id `id` to the members of room `key` except as `skip` says,
    /// and keeps it in the room's history.
    pub(super) fn deliver(&mut self, key: &str, mut frames: Frames, skip: Skip, id: u64) {
        frames.id = Some(id);
        self.fan_out(key, &frames, skip);
        // Moved rather than copied, into the room's ring found by one lookup with the
        // key as it is: this runs under the lock for every message.
        if self.history.keeps() {
            let mut event = frames.event;
            event.id = Some(id);
            self.history.push_room(key, Stored { event, scope: Scope::Room });
        }
    }

    /// Tells member `by` (0: nobody) that what it said was not delivered, and whether
    /// it may still show (`unsent`).
    pub(super) fn not_sent(&self, by: u64, unsent: Unsent) {
        if let Some(m) = self.members.get(&by).filter(|m| !m.held) {
            let message = match unsent {
                Unsent::Dropped => DROPPED,
                Unsent::Unconfirmed => UNCONFIRMED,
            };
            let kind = EventKind::Error { code: "not_sent".into(), message: message.into() };
            m.outbox.push(encode_for(&Event::now(kind), m.json, &m.nick).as_bytes());
        }
    }

    /// Gives the private message `event` between sessions `from` and `to` the next id
    /// and keeps it (unless history is off).
    fn keep_private(&mut self, mut event: Event, from: u64, to: u64) -> u64 {
        let id = self.history.next_id();
        if self.history.keeps() {
            event.id = Some(id);
            self.history.push_private(Stored { event, scope: Scope::Private { from, to } });
        }
        id
    }

    /// Sends `frames` to the members of room `key` except as `skip` says: one
    /// delivery per member of the room, whatever the size of the server.
    fn fan_out(&self, key: &str, frames: &Frames, skip: Skip) {
        let Some(room) = self.rooms.get(key) else { return };
        for &id in &room.members {
            let Some(m) = self.members.get(&id).filter(|m| !m.held) else { continue };
            match skip {
                Skip::Member(s) if s == id => continue,
                Skip::TextEcho(s) if s == id && !m.json => continue,
                _ => {}
            }
            m.outbox.push_frame(frames.get(m.json));
        }
    }
}

/// What a member whose line the backbone did not take is told.
const DROPPED: &str = "not delivered: the backbone is unavailable and your line was dropped; \
    say it again once it is back";
const UNCONFIRMED: &str = "not delivered: the backbone did not confirm your line in time; if it \
    does not show once the backbone is back, say it again";

/// What became of a line the backbone did not take, for its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsent {
    /// It was never handed to NATS (the backbone was away for `--backbone-persist`, or
    /// the node's queue was full) and never will be: it never shows.
    Dropped,
    /// It was handed to NATS and not confirmed in time: NATS may still have it (stored
    /// once, by its message id), so it may show.
    Unconfirmed,
}

/// Where an event said by member `by` (0: the server) comes from, for the backbone:
/// `skip` as the other nodes cannot read it (their members have other ids).
pub(super) fn said_by(link: &Link, by: u64, skip: Skip) -> Origin {
    let echo = match skip {
        Skip::Nobody => Echo::All,
        Skip::Member(m) => Echo::NotTo(m),
        Skip::TextEcho(m) => Echo::NotToText(m),
    };
    Origin { node: link.node.to_string(), member: by, echo }
}
