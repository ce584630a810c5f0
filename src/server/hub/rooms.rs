//! The hub's side of rooms: moving between them, topics, and the `/list` and `/rooms`
//! answers. The room table itself is [`crate::server::rooms`].

use std::net::IpAddr;

use super::fan_out::Frames;
use super::{Hub, Registry, Skip, encode_for};
use crate::net::origin;
use crate::nick;
use crate::protocol::{Event, EventKind, RoomInfo, UserRoom};
use crate::server::rooms::JoinRefusal;

impl Hub {
    /// The `/list` answer for member `id`: the announced nicks in its room (and its
    /// own), sorted by [`nick::key`].
    pub fn list(&self, id: u64) -> EventKind {
        let reg = self.lock();
        let key = &reg.members[&id].room;
        let users = reg.sorted_room_nicks(key, id);
        let away = reg.away_among(&users);
        let online = reg.online_everywhere();
        EventKind::Users { users, room: reg.room_name(key), online, away }
    }

    /// The `/list all` answer: everyone announced with their room, sorted by nick.
    pub fn list_all(&self) -> EventKind {
        let reg = self.lock();
        let mut users: Vec<UserRoom> = reg
            .members
            .values()
            .filter(|m| m.announced)
            .map(|m| UserRoom { nick: m.nick.clone(), room: reg.room_name(&m.room) })
            .collect();
        let others = reg.presence.all();
        users.extend(others.map(|c| UserRoom { nick: c.nick.clone(), room: c.room.clone() }));
        users.sort_by_cached_key(|u| nick::key(&u.nick));
        EventKind::AllUsers { users }
    }

    /// The `/rooms` answer.
    pub fn rooms(&self) -> Vec<RoomInfo> {
        self.lock().rooms_everywhere()
    }

    /// Moves member `id`, connected from `peer`, to room `name`, creating it if it
    /// does not exist and `peer`'s address has the budget for it (see `room_budget`).
    pub fn join_room(&self, id: u64, peer: IpAddr, name: &str) -> Result<Moved, JoinRefusal> {
        let mut reg = self.lock();
        reg.room_limit_everywhere(name, self.config.max_rooms)?;
        let current = reg.members[&id].room.clone();
        let (key, created) = reg.rooms.open(name, &current)?;
        if created && !self.config.max_per_ip_exempt.contains(peer) {
            let now = tokio::time::Instant::now();
            if let Err(wait) = reg.room_budget.take(origin(peer), now) {
                reg.rooms.discard(&key);
                return Err(JoinRefusal::TooFast(wait));
            }
        }
        if created {
            reg.adopt_room(&key);
        }
        Ok(self.move_to(&mut reg, id, key, created))
    }

    /// Whether a room named `name` is open now.
    pub fn has_room(&self, name: &str) -> bool {
        self.lock().rooms.get(&crate::room::key(name)).is_some()
    }

    /// Moves member `id` back to the default room.
    pub fn part_room(&self, id: u64) -> Result<Moved, JoinRefusal> {
        let mut reg = self.lock();
        let default = reg.rooms.default_key().to_owned();
        if reg.members[&id].room == default {
            return Err(JoinRefusal::AlreadyThere(reg.room_name(&default)));
        }
        Ok(self.move_to(&mut reg, id, default, false))
    }

    /// Takes member `id` from its room to room `key` (which exists): the part is
    /// announced in the old room, the join in the new one, and the member gets the new
    /// room's `room` event. Announcements follow `--announce-limit`, counted per room.
    fn move_to(&self, reg: &mut Registry, id: u64, key: String, created: bool) -> Moved {
        let shown = reg.history.last_id();
        let m = reg.members.get_mut(&id).expect("moving member exists");
        let old = std::mem::replace(&mut m.room, key.clone());
        m.shown_until.get_or_insert_default().insert(old.clone(), shown);
        let nick = m.nick.clone();
        let (from, to) = (reg.room_name(&old), reg.room_name(&key));
        let json = self.json_wanted();
        let closed = reg.rooms.leave(&old, id);
        if closed {
            reg.history.room_closed(&old);
        }
        let here = reg.here(&old);
        let mut part_id = None;
        if (!closed || reg.link.is_some()) && self.announces(here + 1) {
            let part =
                EventKind::Part { nick: nick.clone(), room: from.clone(), to: to.clone(), here };
            part_id = reg.publish(&old, Frames::new(Event::now(part), json), Skip::Nobody, id);
        }
        reg.rooms.enter(&key, id);
        // The room and its recent history first, then the join: the replay holds
        // neither the mover's own join nor anything it will also get live.
        reg.send_room_event(id);
        reg.replay(id, self.config.replay);
        let here = reg.here(&key);
        let mut join_id = None;
        if self.announces(here) {
            let online = reg.online_everywhere();
            let from_room = Some(from.clone());
            let join = EventKind::Join { nick, online, room: to.clone(), here, from_room };
            let frames = Frames::new(Event::now(join), json);
            join_id = reg.publish(&key, frames, Skip::Member(id), id);
        }
        reg.update_claim(id);
        Moved { from, to, created, closed, part_id, join_id }
    }

    /// `/topic`: shows member `id` its room's topic, or sets it to `text` and announces
    /// that in the room. Returns the room's name, and the id of the announcement.
    pub fn topic(&self, id: u64, text: Option<&str>) -> (String, Option<u64>) {
        let mut reg = self.lock();
        let m = &reg.members[&id];
        let (key, nick) = (m.room.clone(), m.nick.clone());
        let Some(room) = reg.rooms.get_mut(&key) else { return (String::new(), None) };
        let name = room.name.clone();
        match text {
            None => {
                let topic =
                    EventKind::Topic { room: name.clone(), topic: room.topic.clone(), by: None };
                let m = &reg.members[&id];
                m.outbox.push(encode_for(&Event::now(topic), m.json, &m.nick).as_bytes());
            }
            Some(text) => {
                room.topic = text.to_owned();
                let topic =
                    EventKind::Topic { room: name.clone(), topic: text.to_owned(), by: Some(nick) };
                let frames = Frames::new(Event::now(topic), self.json_wanted());
                return (name, reg.publish(&key, frames, Skip::Nobody, id));
            }
        }
        (name, None)
    }
}

impl Registry {
    /// The display name of room `key` (empty if it is gone, which a member's room never is).
    pub(super) fn room_name(&self, key: &str) -> String {
        self.rooms.get(key).map(|r| r.name.clone()).unwrap_or_default()
    }

    /// The announced nicks in room `key` plus member `also`'s, sorted by [`nick::key`].
    fn sorted_room_nicks(&self, key: &str, also: u64) -> Vec<String> {
        let Some(room) = self.rooms.get(key) else { return Vec::new() };
        let mut nicks: Vec<String> = room
            .members
            .iter()
            .filter_map(|id| self.members.get(id).filter(|m| m.announced || *id == also))
            .map(|m| m.nick.clone())
            .collect();
        nicks.extend(self.remote_in_room(&self.room_name(key)));
        nicks.sort_by_cached_key(|n| nick::key(n));
        nicks
    }

    /// How many announced members room `key` holds, on every node: its `here` count.
    pub(super) fn here(&self, key: &str) -> usize {
        let elsewhere = self.presence.count_in(key);
        let Some(room) = self.rooms.get(key) else { return elsewhere };
        let members = |id: &&u64| self.members.get(*id).is_some_and(|m| m.announced);
        room.members.iter().filter(members).count() + elsewhere
    }

    /// Tells member `id` which room it is in now, with the topic and who is there.
    pub(super) fn send_room_event(&self, id: u64) {
        let m = &self.members[&id];
        let Some(room) = self.rooms.get(&m.room) else { return };
        let event = Event::now(EventKind::Room {
            room: room.name.clone(),
            topic: room.topic.clone(),
            users: self.sorted_room_nicks(&m.room, id),
        });
        m.outbox.push(encode_for(&event, m.json, &m.nick).as_bytes());
    }
}

/// What a move between rooms did, for the log.
pub struct Moved {
    /// Names of the room left and the room entered.
    pub from: String,
    pub to: String,
    /// The room entered did not exist before: the caller charges flood control for it.
    pub created: bool,
    /// The room left went away with its last member.
    pub closed: bool,
    /// Ids of the part announced in the room left and of the join in the room entered.
    pub part_id: Option<u64>,
    pub join_id: Option<u64>,
}
