//! Members in and out: a connection admitted under a guest nick (or on probation over a
//! limit), registered at the end of its hello window with its welcome and announced join,
//! and removed with its announced leave.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::json;

use super::backbone;
use super::fan_out::Frames;
use super::profile::Profile;
use super::{Hub, Joined, Member, Refusal, Registry, Removed, Skip, encode_for};
use crate::net::origin;
use crate::protocol::{Event, EventKind, Resume};
use crate::server::outbox::Outbox;
use crate::server::resume::{self, Token};

impl Hub {
    /// Admits a new connection under a fresh guest nick, or refuses it.
    ///
    /// Over `--max-clients` or `--max-per-ip`, a connection is still let in *on
    /// probation* while sessions that could be resumed (structured, with a token) count
    /// against the same limit, one per such session: it may be their owner coming back,
    /// and the token it presents in its hello proves it. A probation that does not
    /// resume a session ends in the refusal (see [`Hub::register`]).
    pub fn admit(&self, peer: IpAddr, outbox: Arc<Outbox>) -> Result<(u64, String), Refusal> {
        let ip = origin(peer);
        let mut reg = self.lock();
        let probation = match self.over_limit(&reg, ip, peer) {
            None => None,
            Some(refusal) if reg.may_probe(ip, &refusal) => Some(refusal),
            Some(refusal) => return Err(refusal),
        };
        reg.next_id += 1;
        let id = reg.next_id;
        let guest = reg.new_guest();
        reg.hold(&guest, id);
        *reg.per_ip.entry(ip).or_default() += 1;
        let member = Member {
            nick: guest.clone(),
            ip,
            outbox,
            json: false,
            room: reg.rooms.default_key().to_owned(),
            registered: false,
            announced: false,
            profile: Profile::new(),
            session: reg.new_session(id),
            token: None,
            held: false,
            shown_until: None,
            replay: None,
            probation: probation.map(Box::new),
        };
        reg.members.insert(id, Box::new(member));
        Ok((id, guest))
    }

    /// The limit a new connection from `peer` (origin `ip`) is over, if any.
    fn over_limit(&self, reg: &Registry, ip: IpAddr, peer: IpAddr) -> Option<Refusal> {
        if reg.members.len() >= self.config.max_clients {
            return Some(Refusal::Full(self.config.max_clients));
        }
        let from_ip = reg.per_ip.get(&ip).copied().unwrap_or(0);
        let limit = self.config.max_per_ip;
        let exempt = self.config.max_per_ip_exempt.contains(peer);
        (limit > 0 && from_ip as usize >= limit && !exempt).then_some(Refusal::PerIp(limit))
    }

    /// Ends the hello window: switches the encoding, claims `wanted` if given (falling
    /// back to the guest nick), puts the member in the default room, sends the welcome,
    /// the room's recent history (or, for a `resume`, the events after its last id) and,
    /// if `announce`, announces the join there (else [`Hub::announce`] does later). A
    /// `resume` whose token is that of the session holding `wanted` takes that session
    /// back instead, silently.
    pub fn register(
        &self,
        id: u64,
        json: bool,
        wanted: Option<&str>,
        announce: bool,
        resume: Option<Resume<'_>>,
    ) -> Joined {
        let mut reg = self.lock();
        if let (Some(wanted), Some(resume)) = (wanted, resume)
            && let Some(held) = reg.resumable(wanted, resume.token)
        {
            return self.take_over(&mut reg, id, held, resume.last_id);
        }
        if let Some(refusal) = reg.members.get_mut(&id).and_then(|m| m.probation.take()) {
            return Joined::Refused(*refusal);
        }
        // What the claim across nodes was made with, all but the nick (the claim was
        // for the one the member now takes): put again below only if registering
        // changes it (a structured client's token, a resumed room, an operator's right).
        let claimed = reg.claim_of(id, "");
        let refused = wanted.and_then(|w| self.claim(&mut reg, id, w).err());
        self.apply_standing_mute(&mut reg, id);
        let m = reg.members.get_mut(&id).expect("registering member exists");
        m.json = json;
        m.registered = true;
        if json {
            self.json_members.fetch_add(1, Ordering::Relaxed);
            m.token = self.new_token();
        }
        let nick = m.nick.clone();
        let default = m.room.clone();
        // A resume the server no longer holds goes back to its room (opened again after
        // a restart), so that its catch-up is that room's; else the default room.
        let key = match resume.and_then(|r| r.room) {
            Some(name) => reg.rooms.open(name, &default).map_or(default, |(key, _)| key),
            None => default,
        };
        reg.members.get_mut(&id).expect("registering member exists").room = key.clone();
        reg.rooms.enter(&key, id);
        self.welcome(&reg, id);
        self.send_motd(&reg, id);
        self.history_before_join(&reg, id, resume);
        let join_id = if announce { self.announce_locked(&mut reg, id) } else { None };
        // On a backbone, the claim learns the session's token (and its room). A text
        // client's claim stays as made: a put and its read saved per registration (a
        // third of what every node's watch of the claims gets in a connect storm).
        if reg.claim_of(id, "") != claimed {
            reg.update_claim(id);
        }
        Joined::Fresh { nick, room: reg.room_name(&key), refused, join_id }
    }

    /// Sends member `id` the history before its join: a resume's catch-up after its last
    /// id, else the room's replay. Sent before the join is announced, so that it holds
    /// neither the member's own join nor anything it will also get live.
    fn history_before_join(&self, reg: &Registry, id: u64, resume: Option<Resume<'_>>) {
        match resume {
            Some(resume) => {
                let same_run = resume::run_of(resume.token) == Some(self.run);
                let last_id = reg.history.comparable(resume.last_id, same_run);
                self.catch_up(reg, id, last_id, false);
            }
            None => reg.replay(id, self.config.replay),
        }
    }

    /// Tells everyone else that member `id`, welcomed earlier, joined. Returns the id of
    /// the join event, if one was sent.
    pub fn announce(&self, id: u64) -> Option<u64> {
        let mut reg = self.lock();
        if reg.members.get(&id).is_some_and(|m| m.registered && !m.announced) {
            self.announce_locked(&mut reg, id)
        } else {
            None
        }
    }

    fn announce_locked(&self, reg: &mut Registry, id: u64) -> Option<u64> {
        reg.online += 1;
        let online = reg.online_everywhere();
        let m = reg.members.get_mut(&id).expect("announced member exists");
        m.announced = true;
        let (nick, key) = (m.nick.clone(), m.room.clone());
        self.announces(online)
            .then(|| {
                let (room, here) = (reg.room_name(&key), reg.here(&key));
                let join = EventKind::Join { nick, online, room, here, from_room: None };
                let frames = Frames::new(Event::now(join), self.json_wanted());
                reg.publish(&key, frames, Skip::Member(id), id)
            })
            .flatten()
    }

    /// Switches a member already welcomed in text mode to structured mode: for a hello
    /// that arrived after the hello window (a lost first packet on a slow link).
    pub fn upgrade_to_json(&self, id: u64) {
        let mut reg = self.lock();
        if let Some(m) = reg.members.get_mut(&id) {
            if !m.json && m.registered {
                self.json_members.fetch_add(1, Ordering::Relaxed);
            }
            m.json = true;
            self.welcome(&reg, id);
        }
    }

    /// Queues the welcome for member `id` in its encoding, and the room it is in.
    pub(super) fn welcome(&self, reg: &Registry, id: u64) {
        let m = &reg.members[&id];
        // A member not announced yet counts itself.
        let online = reg.online_everywhere() + usize::from(!m.announced);
        let announce = self.announces(online);
        let welcome = Event::now(EventKind::Welcome {
            server: self.config.server_name.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            nick: m.nick.clone(),
            online,
            users: if announce { reg.sorted_nicks_with(id) } else { Vec::new() },
            room: reg.room_name(&m.room),
            last_id: reg.history.last_id(),
            resume: m.token.as_ref().filter(|_| m.json).map(Token::to_hex),
            flood: self.config.flood_limit(),
        });
        m.outbox.push(encode_for(&welcome, m.json, &m.nick).as_bytes());
        // The room: the `room` event in structured mode; in text mode, whose welcome
        // names the room, only its topic if it has one.
        let Some(room) = reg.rooms.get(&m.room) else { return };
        if m.json {
            reg.send_room_event(id);
        } else if !room.topic.is_empty() {
            let topic =
                EventKind::Topic { room: room.name.clone(), topic: room.topic.clone(), by: None };
            m.outbox.push(Event::now(topic).text_line(&m.nick).as_bytes());
        }
    }

    /// Forgets member `id` and frees its nick; announces the leave if `reason` is given
    /// and its join was announced.
    /// Returns its nick, the name of the room it left, and the leave's id and how many
    /// are then online if the leave was announced.
    pub fn remove(&self, id: u64, reason: Option<&str>) -> Option<Removed> {
        let mut reg = self.lock();
        let member = reg.members.remove(&id)?;
        reg.release(&member.nick, id);
        // A node stopping on a backbone keeps the claims of the sessions that can resume
        // on another node (said nothing: no leave); the others leave, announced.
        let stopping = reg.link.is_some() && self.is_shutting_down();
        let moves_on = stopping && member.json && member.announced && member.token.is_some();
        let reason = reason.or((stopping && !moves_on).then_some(backbone::STOPPING));
        if let Some(link) = reg.link.as_ref().filter(|_| !moves_on) {
            link.release(backbone::claim_keys(&member.nick, None), member.session);
        }
        reg.forget_ip(member.ip);
        let mut leave = None;
        if member.registered && member.json {
            self.json_members.fetch_sub(1, Ordering::Relaxed);
        }
        let room = reg.room_name(&member.room);
        if member.announced {
            reg.online -= 1;
        }
        let closed = member.registered && reg.rooms.leave(&member.room, id);
        if closed {
            reg.history.room_closed(&member.room);
            self.log.info("Room closed", json!({"room": room}));
        }
        // A room closed here may still have members on other nodes.
        if member.announced && (!closed || reg.link.is_some()) {
            let online = reg.online_everywhere();
            if let Some(reason) = reason.filter(|_| self.announces(online + 1)) {
                let event = Event::now(EventKind::Leave {
                    nick: member.nick.clone(),
                    reason: reason.to_owned(),
                    online,
                    room: room.clone(),
                    here: reg.here(&member.room),
                });
                let frames = Frames::new(event, self.json_wanted());
                leave = Some((reg.publish(&member.room, frames, Skip::Nobody, 0), online));
            }
        }
        Some(Removed { nick: member.nick, room, leave })
    }
}

impl Registry {
    /// Whether one more connection over `refusal`'s limit may be let in on probation:
    /// while fewer are on probation than there are sessions its owner could resume
    /// (structured, with a token, not kicked), from the same origin `ip` for
    /// `--max-per-ip`, from anywhere for `--max-clients`.
    fn may_probe(&self, ip: IpAddr, refusal: &Refusal) -> bool {
        let in_scope = |m: &&Member| matches!(refusal, Refusal::Full(_)) || m.ip == ip;
        let members = || self.members.values().map(|m| &**m).filter(in_scope);
        let resumable =
            members().filter(|m| m.json && m.token.is_some() && !m.profile.kicked()).count();
        let probing = members().filter(|m| m.probation.is_some()).count();
        probing < resumable
    }

    pub(super) fn forget_ip(&mut self, ip: IpAddr) {
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}
