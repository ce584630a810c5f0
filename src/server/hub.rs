//! Who is connected, under which nick, and how an event reaches them.
//!
//! The [`Registry`] is the single owner of the nick table and of the room table
//! ([`Rooms`]). It sits behind a
//! `std::sync::Mutex` (not tokio's): every critical section is a few map operations and
//! non-blocking queue pushes, never an `.await`. Fan-out happens under the same lock,
//! which gives every member of a room the same order of events; it costs one
//! non-blocking copy of the line per member of the room (the room keeps its own member
//! set), and the encoding is done before the lock is taken.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::json;

mod people;

pub use people::Mute;
use people::Profile;

use super::Config;
use super::moderation::Moderation;
use super::outbox::Outbox;
use super::rooms::{JoinRefusal, Rooms};
use crate::event_log::EventLog;
use crate::nick::{self, NickError};
use crate::protocol::{Event, EventKind, RoomInfo, UserRoom};

/// Shared by the accept loop and every connection task.
pub struct Hub {
    state: Mutex<Registry>,
    /// Registered members in structured mode, readable without the lock: whether an
    /// event needs its JSON encoding.
    json_members: AtomicUsize,
    /// Set by [`Hub::shut_down`]; each connection task checks it when woken.
    shutting_down: AtomicBool,
    pub config: Config,
    pub log: EventLog,
    /// Bans, MOTD, operator password, stop requests.
    pub moderation: Moderation,
}

struct Registry {
    members: HashMap<u64, Member>,
    rooms: Rooms,
    /// [`nick::key`] -> member id: one person per nick, whatever its case or form.
    nicks: HashMap<String, u64>,
    /// [`nick::skeleton`] -> member id: no nick may look like another held one.
    looks: HashMap<String, u64>,
    /// Open connections per [`origin`], for `--max-per-ip` (exempt peers are counted
    /// too, but never refused).
    per_ip: HashMap<IpAddr, u32>,
    /// Members that have been announced (see [`Member::announced`]).
    online: usize,
    next_id: u64,
    next_guest: u64,
}

struct Member {
    nick: String,
    /// Its [`origin`], counted in `per_ip`.
    ip: IpAddr,
    outbox: Arc<Outbox>,
    /// Structured (JSON) or text encoding for this member.
    json: bool,
    /// Key of the room it is in; it is in that room's member set once registered.
    room: String,
    /// False during the hello window: such a member holds its guest nick but neither
    /// receives broadcasts nor shows in `/list` yet.
    registered: bool,
    /// True once the others were told it joined; until then it is not in `online`, in
    /// `/list` or in anyone's welcome, and its leaving is not announced either. A
    /// connection that says nothing is welcomed after the hello window but announced
    /// only later (see `QUIET_JOIN` in `connection`), so a TCP health check that
    /// connects and closes never shows as a join and a leave.
    announced: bool,
    /// What `/whois`, `/away`, `/reply`, mutes and operators need (see [`people`]).
    profile: Profile,
}

/// Why a new connection was turned away; the text goes to the refused client.
#[derive(Debug)]
pub enum Refusal {
    Full(usize),
    PerIp(usize),
    /// A ban covers the address; holds the text the client gets.
    Banned(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Full(1) => write!(f, "server full (1 client); try again later"),
            Refusal::Full(n) => write!(f, "server full ({n} clients); try again later"),
            Refusal::PerIp(n) => write!(f, "too many connections from your address (limit {n})"),
            Refusal::Banned(text) => f.write_str(text),
        }
    }
}

/// Why a nick change failed.
#[derive(Debug)]
pub enum NickChange {
    Invalid(NickError),
    /// The same nick ([`nick::key`]) is held by someone else, named here as shown.
    Taken(String),
    /// A nick with the same [`nick::skeleton`] is held by someone else, named here.
    LooksLike(String),
    /// A ban covers the nick; holds the text the client gets. The connection closes.
    Banned(String),
}

/// Which member, if any, an event is not sent to.
#[derive(Clone, Copy)]
pub enum Skip {
    Nobody,
    /// Not to this member at all (it gets its own reply).
    Member(u64),
    /// Not to this member if it is in text mode: the line it typed is already on its
    /// screen. A structured client gets its own message back as confirmation.
    TextEcho(u64),
}

/// An event encoded once for each mode in use, for all recipients. The JSON form
/// is encoded only when some member is in structured mode (it costs several times the
/// text form): before the lock is taken if [`Hub::json_members`] says so, else under it
/// for a member that became structured meanwhile.
struct Frames<'a> {
    event: &'a Event,
    text: String,
    json: OnceCell<String>,
}

impl Frames<'_> {
    fn new(event: &Event, json_wanted: bool) -> Frames<'_> {
        let json = OnceCell::new();
        if json_wanted {
            let _ = json.set(event.json_line());
        }
        Frames { event, text: event.text_line(""), json }
    }

    fn get(&self, json: bool) -> &[u8] {
        if json {
            self.json.get_or_init(|| self.event.json_line()).as_bytes()
        } else {
            self.text.as_bytes()
        }
    }
}

impl Hub {
    pub fn new(config: Config, log: EventLog, moderation: Moderation) -> Hub {
        Hub {
            state: Mutex::new(Registry {
                members: HashMap::new(),
                rooms: Rooms::new(&config.default_room, config.max_rooms),
                nicks: HashMap::new(),
                looks: HashMap::new(),
                per_ip: HashMap::new(),
                online: 0,
                next_id: 0,
                next_guest: 0,
            }),
            json_members: AtomicUsize::new(0),
            shutting_down: AtomicBool::new(false),
            config,
            log,
            moderation,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing the whole server, so keep serving.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Admits a new connection under a fresh guest nick, or refuses it.
    pub fn admit(&self, peer: IpAddr, outbox: Arc<Outbox>) -> Result<(u64, String), Refusal> {
        let ip = origin(peer);
        let mut reg = self.lock();
        if reg.members.len() >= self.config.max_clients {
            return Err(Refusal::Full(self.config.max_clients));
        }
        let from_ip = reg.per_ip.get(&ip).copied().unwrap_or(0);
        let limit = self.config.max_per_ip;
        if limit > 0 && from_ip as usize >= limit && !self.config.max_per_ip_exempt.contains(peer) {
            return Err(Refusal::PerIp(limit));
        }
        reg.next_id += 1;
        let id = reg.next_id;
        let guest = loop {
            reg.next_guest += 1;
            let candidate = format!("guest{}", reg.next_guest);
            if reg.is_free(&candidate) {
                break candidate;
            }
        };
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
        };
        reg.members.insert(id, member);
        Ok((id, guest))
    }

    /// Ends the hello window: switches the encoding, claims `wanted` if given (falling
    /// back to the guest nick), puts the member in the default room, sends the welcome
    /// and, if `announce`, announces the join there (else [`Hub::announce`] does later).
    /// Returns the nick in use, the room's name, and the reason `wanted` was refused, if
    /// it was.
    pub fn register(
        &self,
        id: u64,
        json: bool,
        wanted: Option<&str>,
        announce: bool,
    ) -> (String, String, Option<NickChange>) {
        let mut reg = self.lock();
        let refused = wanted.and_then(|w| self.claim(&mut reg, id, w).err());
        let m = reg.members.get_mut(&id).expect("registering member exists");
        m.json = json;
        m.registered = true;
        if json {
            self.json_members.fetch_add(1, Ordering::Relaxed);
        }
        let nick = m.nick.clone();
        let key = m.room.clone();
        reg.rooms.enter(&key, id);
        if announce {
            self.announce_locked(&mut reg, id);
        }
        self.welcome(&reg, id);
        self.send_motd(&reg, id);
        (nick, reg.room_name(&key), refused)
    }

    /// Tells everyone else that member `id`, welcomed earlier, joined.
    pub fn announce(&self, id: u64) {
        let mut reg = self.lock();
        if reg.members.get(&id).is_some_and(|m| m.registered && !m.announced) {
            self.announce_locked(&mut reg, id);
        }
    }

    fn announce_locked(&self, reg: &mut Registry, id: u64) {
        reg.online += 1;
        let online = reg.online;
        let m = reg.members.get_mut(&id).expect("announced member exists");
        m.announced = true;
        if self.announces(online) {
            let (nick, key) = (m.nick.clone(), m.room.clone());
            let (room, here) = (reg.room_name(&key), reg.here(&key));
            let join = EventKind::Join { nick, online, room, here, from_room: None };
            reg.fan_out(
                &key,
                &Frames::new(&Event::now(join), self.json_wanted()),
                Skip::Member(id),
            );
        }
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
    fn welcome(&self, reg: &Registry, id: u64) {
        let m = &reg.members[&id];
        // A member not announced yet counts itself.
        let online = reg.online + usize::from(!m.announced);
        let announce = self.announces(online);
        let welcome = Event::now(EventKind::Welcome {
            server: self.config.server_name.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            nick: m.nick.clone(),
            online,
            users: if announce { reg.sorted_nicks_with(id) } else { Vec::new() },
            room: reg.room_name(&m.room),
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

    /// Renames member `id` to the enforced form of `wanted`, announcing the change to
    /// its room (the renamed member too). Returns the old and the new nick; they are equal,
    /// and nothing is announced, when `wanted` is the nick already held.
    pub fn rename(&self, id: u64, wanted: &str) -> Result<(String, String), NickChange> {
        let mut reg = self.lock();
        let old = reg.members[&id].nick.clone();
        let new = self.claim(&mut reg, id, wanted)?;
        if new != old {
            let key = reg.members[&id].room.clone();
            let room = reg.room_name(&key);
            let event = Event::now(EventKind::Nick { old: old.clone(), new: new.clone(), room });
            reg.fan_out(&key, &Frames::new(&event, self.json_wanted()), Skip::Nobody);
        }
        Ok((old, new))
    }

    /// Sends `event` to every registered member, whatever their room (shutdown).
    pub fn broadcast(&self, event: &Event) {
        let frames = Frames::new(event, self.json_wanted());
        let reg = self.lock();
        for m in reg.members.values().filter(|m| m.registered) {
            m.outbox.push(frames.get(m.json));
        }
    }

    /// Sends `event` to the members of member `id`'s room, except as `skip` says.
    /// Only `id`'s own task moves it between rooms, so the room it named in `event`
    /// is the one it is in.
    pub fn to_room(&self, id: u64, event: &Event, skip: Skip) {
        let frames = Frames::new(event, self.json_wanted());
        let reg = self.lock();
        if let Some(m) = reg.members.get(&id) {
            reg.fan_out(&m.room, &frames, skip);
        }
    }

    /// Delivers a private message to `to` and a confirmation to the sender. Returns the
    /// target's nick as registered, or `None` if nobody has that nick.
    pub fn private(&self, from_id: u64, to: &str, text: &str) -> Option<String> {
        let mut reg = self.lock();
        let target_id = *reg.nicks.get(&nick::key(to))?;
        // Only someone the others can know of (in `/list`) can be written to.
        let target = reg.members.get(&target_id).filter(|m| m.announced)?;
        let sender = &reg.members[&from_id];
        let event = Event::now(EventKind::Private {
            from: sender.nick.clone(),
            to: target.nick.clone(),
            text: text.to_owned(),
        });
        target.outbox.push(encode_for(&event, target.json, &target.nick).as_bytes());
        if target_id != from_id {
            sender.outbox.push(encode_for(&event, sender.json, &sender.nick).as_bytes());
        }
        let target = target.nick.clone();
        people::after_private(&mut reg, from_id, target_id);
        Some(target)
    }

    /// The `/list` answer for member `id`: the announced nicks in its room (and its
    /// own), sorted by [`nick::key`].
    pub fn list(&self, id: u64) -> EventKind {
        let reg = self.lock();
        let key = &reg.members[&id].room;
        let users = reg.sorted_room_nicks(key, id);
        let away = reg.away_among(&users);
        EventKind::Users { users, room: reg.room_name(key), online: reg.online, away }
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
        users.sort_by_cached_key(|u| nick::key(&u.nick));
        EventKind::AllUsers { users }
    }

    /// The `/rooms` answer.
    pub fn rooms(&self) -> Vec<RoomInfo> {
        self.lock().rooms.list()
    }

    /// Everyone announced, sorted by [`nick::key`]: the console's Tab completion.
    pub fn nicks(&self) -> Vec<String> {
        self.lock().sorted_nicks_with(0)
    }

    pub fn online(&self) -> usize {
        self.lock().online
    }

    /// Forgets member `id` and frees its nick; announces the leave if `reason` is given
    /// and its join was announced.
    /// Returns its nick and the name of the room it left.
    pub fn remove(&self, id: u64, reason: Option<&str>) -> Option<(String, String)> {
        let mut reg = self.lock();
        let member = reg.members.remove(&id)?;
        reg.release(&member.nick);
        if let Some(n) = reg.per_ip.get_mut(&member.ip) {
            *n -= 1;
            if *n == 0 {
                reg.per_ip.remove(&member.ip);
            }
        }
        if member.registered && member.json {
            self.json_members.fetch_sub(1, Ordering::Relaxed);
        }
        let room = reg.room_name(&member.room);
        if member.announced {
            reg.online -= 1;
        }
        if member.registered && reg.rooms.leave(&member.room, id) {
            self.log.info("Room closed", json!({"room": room}));
        } else if member.announced {
            let online = reg.online;
            if let Some(reason) = reason.filter(|_| self.announces(online + 1)) {
                let event = Event::now(EventKind::Leave {
                    nick: member.nick.clone(),
                    reason: reason.to_owned(),
                    online,
                    room: room.clone(),
                    here: reg.here(&member.room),
                });
                reg.fan_out(&member.room, &Frames::new(&event, self.json_wanted()), Skip::Nobody);
            }
        }
        Some((member.nick, room))
    }

    /// Sends `event` to member `id` alone, in its encoding.
    pub fn send_to(&self, id: u64, event: &Event) {
        let reg = self.lock();
        if let Some(m) = reg.members.get(&id) {
            m.outbox.push(encode_for(event, m.json, &m.nick).as_bytes());
        }
    }

    /// `event` encoded for member `id` (its mode, its nick), without queueing it: for
    /// the last line of a client whose queue is closed.
    pub fn encode_for_member(&self, id: u64, event: &Event) -> Option<String> {
        let reg = self.lock();
        reg.members.get(&id).map(|m| encode_for(event, m.json, &m.nick))
    }

    /// Tells every connection task, registered or not, that the server is stopping.
    pub fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        for m in self.lock().members.values() {
            m.outbox.wake.notify_one();
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    fn json_wanted(&self) -> bool {
        self.json_members.load(Ordering::Relaxed) > 0
    }

    fn announces(&self, online: usize) -> bool {
        self.config.announce_limit == 0 || online <= self.config.announce_limit
    }
}

impl Hub {
    /// [`Registry::claim`], unless a ban covers `wanted`.
    fn claim(&self, reg: &mut Registry, id: u64, wanted: &str) -> Result<String, NickChange> {
        if let Some(ban) = self.moderation.banned_nick(wanted) {
            return Err(NickChange::Banned(ban));
        }
        reg.claim(id, wanted)
    }
}

impl Registry {
    /// Gives member `id` the enforced form of `wanted`, releasing its old nick, and
    /// returns it. The nick must pass the rules, be nobody else's ([`nick::key`]) and look
    /// like nobody else's ([`nick::skeleton`]). The mixed-script rule comes after the
    /// look-alike check, so `аlice` (Cyrillic `а`) is told it looks like `alice`.
    fn claim(&mut self, id: u64, wanted: &str) -> Result<String, NickChange> {
        let new = nick::enforce(wanted).map_err(NickChange::Invalid)?;
        if let Some(owner) = self.other_holder(&self.nicks, &nick::key(&new), id) {
            return Err(NickChange::Taken(owner));
        }
        if let Some(owner) = self.other_holder(&self.looks, &nick::skeleton(&new), id) {
            return Err(NickChange::LooksLike(owner));
        }
        nick::check_scripts(&new).map_err(NickChange::Invalid)?;
        let member = self.members.get_mut(&id).expect("claiming member exists");
        let old = std::mem::replace(&mut member.nick, new.clone());
        self.release(&old);
        self.hold(&new, id);
        Ok(new)
    }

    /// The nick of the member other than `id` that `index` maps `value` to, if any.
    fn other_holder(&self, index: &HashMap<String, u64>, value: &str, id: u64) -> Option<String> {
        let owner = *index.get(value).filter(|&&owner| owner != id)?;
        Some(self.members.get(&owner).map_or_else(String::new, |m| m.nick.clone()))
    }

    /// True when nobody holds `nick` or one that looks like it.
    fn is_free(&self, nick: &str) -> bool {
        !self.nicks.contains_key(&nick::key(nick))
            && !self.looks.contains_key(&nick::skeleton(nick))
    }

    fn hold(&mut self, nick: &str, id: u64) {
        self.nicks.insert(nick::key(nick), id);
        self.looks.insert(nick::skeleton(nick), id);
    }

    fn release(&mut self, nick: &str) {
        self.nicks.remove(&nick::key(nick));
        self.looks.remove(&nick::skeleton(nick));
    }

    /// Sends `frames` to the members of room `key` except as `skip` says: one
    /// delivery per member of the room, whatever the size of the server.
    fn fan_out(&self, key: &str, frames: &Frames, skip: Skip) {
        let Some(room) = self.rooms.get(key) else { return };
        for &id in &room.members {
            let Some(m) = self.members.get(&id) else { continue };
            match skip {
                Skip::Member(s) if s == id => continue,
                Skip::TextEcho(s) if s == id && !m.json => continue,
                _ => {}
            }
            m.outbox.push(frames.get(m.json));
        }
    }

    /// The display name of room `key` (empty if it is gone, which a member's room never is).
    fn room_name(&self, key: &str) -> String {
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
        nicks.sort_by_cached_key(|n| nick::key(n));
        nicks
    }

    /// How many announced members room `key` holds: its `here` count.
    fn here(&self, key: &str) -> usize {
        let Some(room) = self.rooms.get(key) else { return 0 };
        room.members.iter().filter(|id| self.members.get(id).is_some_and(|m| m.announced)).count()
    }

    /// Tells member `id` which room it is in now, with the topic and who is there.
    fn send_room_event(&self, id: u64) {
        let m = &self.members[&id];
        let Some(room) = self.rooms.get(&m.room) else { return };
        let event = Event::now(EventKind::Room {
            room: room.name.clone(),
            topic: room.topic.clone(),
            users: self.sorted_room_nicks(&m.room, id),
        });
        m.outbox.push(encode_for(&event, m.json, &m.nick).as_bytes());
    }

    /// Announced nicks plus member `also` (0 for none), sorted by [`nick::key`].
    fn sorted_nicks_with(&self, also: u64) -> Vec<String> {
        let mut nicks: Vec<String> = self
            .members
            .iter()
            .filter(|(id, m)| m.announced || **id == also)
            .map(|(_, m)| m.nick.clone())
            .collect();
        nicks.sort_by_cached_key(|n| nick::key(n));
        nicks
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
}

/// Moving between rooms and their topics.
impl Hub {
    /// Moves member `id` to room `name`, creating it if it does not exist.
    pub fn join_room(&self, id: u64, name: &str) -> Result<Moved, JoinRefusal> {
        let mut reg = self.lock();
        let current = reg.members[&id].room.clone();
        let (key, created) = reg.rooms.open(name, &current)?;
        Ok(self.move_to(&mut reg, id, key, created))
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
        let m = reg.members.get_mut(&id).expect("moving member exists");
        let old = std::mem::replace(&mut m.room, key.clone());
        let nick = m.nick.clone();
        let (from, to) = (reg.room_name(&old), reg.room_name(&key));
        let json = self.json_wanted();
        let closed = reg.rooms.leave(&old, id);
        let here = reg.here(&old);
        if !closed && self.announces(here + 1) {
            let part =
                EventKind::Part { nick: nick.clone(), room: from.clone(), to: to.clone(), here };
            reg.fan_out(&old, &Frames::new(&Event::now(part), json), Skip::Nobody);
        }
        reg.rooms.enter(&key, id);
        let here = reg.here(&key);
        if self.announces(here) {
            let online = reg.online;
            let from_room = Some(from.clone());
            let join = EventKind::Join { nick, online, room: to.clone(), here, from_room };
            reg.fan_out(&key, &Frames::new(&Event::now(join), json), Skip::Member(id));
        }
        reg.send_room_event(id);
        Moved { from, to, created, closed }
    }

    /// `/topic`: shows member `id` its room's topic, or sets it to `text` and announces
    /// that in the room. Returns the room's name.
    pub fn topic(&self, id: u64, text: Option<&str>) -> String {
        let mut reg = self.lock();
        let m = &reg.members[&id];
        let (key, nick) = (m.room.clone(), m.nick.clone());
        let Some(room) = reg.rooms.get_mut(&key) else { return String::new() };
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
                reg.fan_out(
                    &key,
                    &Frames::new(&Event::now(topic), self.json_wanted()),
                    Skip::Nobody,
                );
            }
        }
        name
    }
}

impl NickChange {
    /// The error text for the user who asked for `wanted`.
    pub fn describe(&self, wanted: &str) -> String {
        match self {
            NickChange::Invalid(e) => format!("invalid nick: {e}"),
            NickChange::Taken(owner) if owner == wanted => {
                format!("the nick {wanted} is already taken")
            }
            NickChange::Taken(owner) => {
                format!("the nick {wanted} is already taken: {owner} is online")
            }
            NickChange::LooksLike(owner) => {
                format!("the nick {wanted} looks like {owner}, who is online")
            }
            NickChange::Banned(text) => text.clone(),
        }
    }

    /// Machine-readable code for the structured protocol's error event. A look-alike
    /// counts as taken: the name is in use, only spelt differently.
    pub fn code(&self) -> &'static str {
        match self {
            NickChange::Invalid(_) => "bad_nick",
            NickChange::Taken(_) | NickChange::LooksLike(_) => "nick_taken",
            NickChange::Banned(_) => "banned",
        }
    }
}

/// What `--max-per-ip` counts a peer address as: an IPv4 address as itself (also when
/// it arrives IPv4-mapped on an IPv6 socket), an IPv6 address as its /64 network. One
/// IPv6 host usually holds a whole /64 and can connect from as many addresses as it
/// likes, so a limit per IPv6 address would limit nobody.
fn origin(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !(u128::MAX >> 64)).into()),
        },
    }
}

fn encode_for(event: &Event, json: bool, nick: &str) -> String {
    if json { event.json_line() } else { event.text_line(nick) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_address_limit_counts_ipv6_by_its_64_network() {
        let o = |s: &str| origin(s.parse().unwrap()).to_string();
        assert_eq!(o("192.0.2.7"), "192.0.2.7");
        assert_eq!(o("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(o("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(o("2001:db8:1:2::1"), o("2001:db8:1:2:ffff::9"));
        assert_ne!(o("2001:db8:1:2::1"), o("2001:db8:1:3::1"));
        assert_eq!(o("::1"), "::");
    }
}
