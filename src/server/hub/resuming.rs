//! Sessions held for a resume: a lost structured member held for `--resume-grace`, and a
//! new connection that presents its token taking its place, caught up on what it missed.

use serde_json::json;

use super::{Hub, Joined, Registry, encode_for};
use crate::nick;
use crate::protocol::{Event, EventKind};
use crate::server::resume::Token;

impl Hub {
    /// Member `id` (a new connection) becomes the session `held`: same nick, same room,
    /// same session, a new token; the old entry goes. Nobody else is told.
    pub(super) fn take_over(&self, reg: &mut Registry, id: u64, held: u64, last_id: u64) -> Joined {
        let old = reg.members.remove(&held).expect("resumed member exists");
        reg.release(&old.nick, held);
        reg.forget_ip(old.ip);
        // In first, so that the room never looks empty (an empty room closes).
        reg.rooms.enter(&old.room, id);
        reg.rooms.leave(&old.room, held);
        // Its task waits for the grace period to end, or still serves a connection that
        // is gone: this ends it, silently.
        if old.held {
            old.outbox.wake();
        } else {
            old.outbox.supersede();
        }
        let guest = reg.members[&id].nick.clone();
        reg.release(&guest, id);
        reg.hold(&old.nick, id);
        let token = self.new_token();
        let m = reg.members.get_mut(&id).expect("resuming member exists");
        // The old member was counted online, announced and structured; this one takes
        // its place in those counts.
        m.nick = old.nick.clone();
        m.room = old.room.clone();
        m.json = true;
        m.registered = true;
        m.announced = old.announced;
        m.session = old.session;
        m.token = token;
        m.probation = None;
        m.profile.resumed_from(old.profile);
        self.welcome(reg, id);
        let missed = self.catch_up(reg, id, last_id, true);
        reg.update_claim(id);
        let room = reg.room_name(&old.room);
        Joined::Resumed { nick: old.nick, room, missed, took_over: !old.held }
    }

    /// Sends member `id` a `resumed` event and the events after `last_id` it may see in
    /// its room, marked as history. Returns how many.
    pub(super) fn catch_up(&self, reg: &Registry, id: u64, last_id: u64, resumed: bool) -> usize {
        let m = &reg.members[&id];
        let caught = reg.history.after(last_id, m.session, &m.room);
        // What does not fit in one go is lost to the client as surely as what the ring
        // no longer keeps, and is counted with it.
        let (frames, left_out) = reg.replay_lines(m, &caught.events);
        let missed = frames.len();
        let unavailable = caught.unavailable + left_out as u64;
        let kind = EventKind::Resumed { missed, unavailable, resumed };
        m.outbox.push(encode_for(&Event::now(kind), m.json, &m.nick).as_bytes());
        for frame in &frames {
            m.outbox.push(frame.as_bytes());
        }
        missed
    }

    /// A fresh resume token, or none if the OS has no randomness (then the session
    /// cannot be resumed, and the error is logged).
    pub(super) fn new_token(&self) -> Option<Token> {
        Token::generate(self.run)
            .map_err(|e| {
                self.log.error("No randomness for a resume token", json!({"error": e.to_string()}))
            })
            .ok()
    }

    /// Holds member `id`, whose connection was lost, for a resume: true when it can be
    /// resumed (an announced structured member with a token, not kicked, and a grace
    /// period set).
    pub fn hold_for_resume(&self, id: u64) -> bool {
        if self.config.resume_grace.is_zero() {
            return false;
        }
        let mut reg = self.lock();
        match reg.members.get_mut(&id) {
            Some(m) if m.announced && m.json && m.token.is_some() && !m.profile.kicked() => {
                m.held = true;
                true
            }
            _ => false,
        }
    }

    /// Whether member `id` is still held (not resumed, not removed).
    pub fn is_held(&self, id: u64) -> bool {
        self.lock().members.get(&id).is_some_and(|m| m.held)
    }
}

impl Registry {
    /// The member that holds `wanted` and whose token `token` is, if any: held, or
    /// still connected as far as the server can tell (a dropped peer is noticed only by
    /// keepalive, after a minute and more, while its client is already back). A wrong
    /// token finds nothing, so the nick stays taken.
    pub(super) fn resumable(&self, wanted: &str, token: &str) -> Option<u64> {
        let id = self.holder(&nick::key(wanted))?;
        let m = self.members.get(&id)?;
        // A kicked session is over, even if its task has not closed it yet.
        let ready = (m.held || (m.announced && m.json)) && !m.profile.kicked();
        (ready && m.token.as_ref().is_some_and(|t| t.matches(token))).then_some(id)
    }
}
