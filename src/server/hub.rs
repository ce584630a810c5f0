//! Who is connected, under which nick, and how an event reaches them.
//!
//! The [`Registry`] is the single owner of the nick table and of the room table
//! ([`Rooms`]). It sits behind a
//! `std::sync::Mutex` (not tokio's): every critical section is a few map operations and
//! non-blocking queue pushes, never an `.await`. Fan-out happens under the same lock,
//! which gives every member of a room the same order of events; it costs one
//! non-blocking copy of the line per member of the room (the room keeps its own member
//! set), and the encoding is done before the lock is taken.
//!
//! The registry also owns the [`History`]: a conversation event takes its id, is kept
//! and is delivered under one lock, so the order of ids is the order every client sees.
//! A member whose connection was lost can be *held* for `--resume-grace`: it keeps its
//! nick, its room and its place in the online count, receives nothing, and a new
//! connection that presents its [`Token`] takes its place without anyone seeing a leave
//! or a join.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rustc_hash::FxHashMap;
use serde_json::json;

mod backbone;
mod ownership;
mod people;

pub use backbone::Across;
pub use people::Mute;
use people::Profile;

use super::Config;
use super::backbone::leases::Leases;
use super::backbone::presence::Presence;
use super::backbone::wire::{Echo, Origin};
use super::backbone::{HubSide, Link};
use super::history::{History, MAX_HISTORY_REQUEST, Scope, Stored, newest_that_fit};
use super::moderation::Moderation;
use super::outbox::{Frame, Outbox};
use super::resume::{self, Token};
use super::rooms::{JoinRefusal, Rooms};
use crate::event_log::EventLog;
use crate::net::origin;
use crate::nick::{self, NickError};
use crate::protocol::{Event, EventKind, Resume, RoomInfo, UserRoom};

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
    /// This run's tag, in every resume token it gives out ([`resume::run_of`]).
    run: u32,
    /// On a backbone, the bucket nicks are claimed in (see `hub::backbone`).
    nicks: Option<async_nats::jetstream::kv::Store>,
    /// On a backbone, the stream and this node's progress through it.
    mirror: Option<super::backbone::Mirror>,
}

struct Registry {
    /// By connection id. Looked up once per recipient of every line, so hashed with Fx
    /// rather than SipHash (8 to 12% of the server's CPU in `burst 200x50`): the ids are
    /// the server's own counter, not input, so there is no flooding to resist.
    ///
    /// Boxed: a member is 376 bytes, and the table keeps about 1.6 slots per member
    /// (hashbrown's power-of-two capacity), so inline records cost an idle connection
    /// some 600 bytes here; boxed, a slot is 16 bytes and the record one allocation.
    members: FxHashMap<u64, Box<Member>>,
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
    history: History,
    /// The backbone, when this node is one of several: conversation events are handed to
    /// it instead of being delivered here, and come back through [`Hub::apply`].
    link: Option<Link>,
    /// On a backbone: who is on the other nodes, from the bucket of nick claims.
    presence: Presence,
    /// On a backbone: which nodes are alive (see `backbone::leases`).
    leases: Leases,
    /// Most bytes of events sent again to one member at once (a replay, `/history`, a
    /// resume's catch-up): half its send queue, so that the live events that keep
    /// coming still fit and sending the past never drops a client as too slow.
    replay_budget: usize,
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
    /// Who this is across resumes: the member id it first registered under. Private
    /// messages are kept for their two sessions.
    session: u64,
    /// The secret for resuming this session (structured members only).
    token: Option<Token>,
    /// The connection was lost and the session waits for a resume: it receives nothing.
    held: bool,
    /// Per room key it left: the last event id of the server when it left, so that going
    /// back replays only what it has not been shown (it saw the rest live, or replayed
    /// when it came in). One entry per room visited, dropped with the member.
    shown_until: HashMap<String, u64>,
    /// Let in over a limit ([`Hub::admit`]): its hello must resume a session, else it is
    /// refused with this.
    probation: Option<Refusal>,
}

/// Who [`Hub::remove`] removed.
pub struct Removed {
    pub nick: String,
    /// The name of the room it left.
    pub room: String,
    /// The id of its announced leave (`None` on a backbone, which gives it later) and how
    /// many are then online; `None` if the leave was not announced.
    pub leave: Option<(Option<u64>, usize)>,
}

/// How a registration went.
#[derive(Debug)]
pub enum Joined {
    /// A new session, under `nick`, in room `room`; `refused` says why the wanted nick
    /// was not given; `join_id` is the id of its join, if announced now and to anyone.
    Fresh { nick: String, room: String, refused: Option<NickChange>, join_id: Option<u64> },
    /// A session taken back with its token: its nick and room, the events sent again,
    /// and whether its old connection was still open (and is now closed).
    Resumed { nick: String, room: String, missed: usize, took_over: bool },
    /// Let in on probation over a limit, and it resumed nothing: the refusal it was
    /// spared at the door.
    Refused(Refusal),
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
    /// A ban covers the nick; holds the text the client gets. On a first line the
    /// connection is refused before this (`refuse_banned_nick` in `connection`).
    Banned(String),
    /// The nick, or one it is a variant of, is registered, and this connection does
    /// not prove it; holds the registered nick.
    Registered(String),
    /// On a backbone that does not answer: no nick can be claimed across nodes now.
    Unavailable,
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
///
/// A conversation event gets its id under the lock ([`Frames::id`]); the JSON line,
/// encoded without it, then has it put in front ([`Event::json_line_with_id`]), a copy
/// rather than a second encoding.
struct Frames {
    event: Event,
    text: Frame,
    /// The JSON form without an id.
    base: OnceCell<String>,
    id: Option<u64>,
    /// The JSON form with `id`.
    json: OnceCell<Frame>,
}

impl Frames {
    fn new(event: Event, json_wanted: bool) -> Frames {
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
    fn get(&self, json: bool) -> &Frame {
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
    /// A hub whose conversation starts with `history` (reloaded from the log), on the
    /// backbone `side` if given, whose run tag its resume tokens then carry (the same on
    /// every node of the backbone).
    pub fn new(
        config: Config,
        log: EventLog,
        moderation: Moderation,
        history: History,
        side: Option<HubSide>,
    ) -> Hub {
        let backbone_run = side.as_ref().map(|s| s.run);
        let nicks = side.as_ref().map(|s| s.nicks.clone());
        let mirror = side.as_ref().map(|s| s.mirror.clone());
        let link = side.map(|s| s.link);
        Hub {
            state: Mutex::new(Registry {
                members: FxHashMap::default(),
                rooms: Rooms::new(&config.default_room, config.max_rooms),
                nicks: HashMap::new(),
                looks: HashMap::new(),
                per_ip: HashMap::new(),
                online: 0,
                next_id: 0,
                next_guest: 0,
                history,
                link,
                presence: Presence::default(),
                leases: Leases::new(tokio::time::Instant::now()),
                replay_budget: config.send_queue / 2,
            }),
            json_members: AtomicUsize::new(0),
            shutting_down: AtomicBool::new(false),
            config,
            log,
            moderation,
            // Without randomness tokens cannot be made either; any tag will do.
            run: backbone_run.unwrap_or_else(|| resume::new_run().unwrap_or(std::process::id())),
            nicks,
            mirror,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing the whole server, so keep serving.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

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
            shown_until: HashMap::new(),
            probation,
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
            return Joined::Refused(refusal);
        }
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
        // The history before the join: the replay then holds neither the member's own
        // join nor anything it will also get live.
        match resume {
            Some(resume) => {
                let same_run = resume::run_of(resume.token) == Some(self.run);
                let last_id = reg.history.comparable(resume.last_id, same_run);
                self.catch_up(&reg, id, last_id, false);
            }
            None => reg.replay(id, self.config.replay),
        }
        let join_id = if announce { self.announce_locked(&mut reg, id) } else { None };
        // On a backbone, the claim learns the session's token (and its room).
        reg.update_claim(id);
        Joined::Fresh { nick, room: reg.room_name(&key), refused, join_id }
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
        let online = reg.online;
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

    /// Member `id` (a new connection) becomes the session `held`: same nick, same room,
    /// same session, a new token; the old entry goes. Nobody else is told.
    fn take_over(&self, reg: &mut Registry, id: u64, held: u64, last_id: u64) -> Joined {
        let old = reg.members.remove(&held).expect("resumed member exists");
        reg.release(&old.nick);
        reg.forget_ip(old.ip);
        // In first, so that the room never looks empty (an empty room closes).
        reg.rooms.enter(&old.room, id);
        reg.rooms.leave(&old.room, held);
        // Its task waits for the grace period to end, or still serves a connection that
        // is gone: this ends it, silently.
        if old.held {
            old.outbox.wake.notify_one();
        } else {
            old.outbox.supersede();
        }
        let guest = reg.members[&id].nick.clone();
        reg.release(&guest);
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
    fn catch_up(&self, reg: &Registry, id: u64, last_id: u64, resumed: bool) -> usize {
        let m = &reg.members[&id];
        let caught = reg.history.after(last_id, m.session, &m.room);
        // What does not fit in one go is lost to the client as surely as what the ring
        // no longer keeps, and is counted with it.
        let (frames, left_out) = reg.again(m, &caught.events);
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
    fn new_token(&self) -> Option<Token> {
        Token::generate(self.run)
            .map_err(|e| {
                self.log.error("No randomness for a resume token", json!({"error": e.to_string()}))
            })
            .ok()
    }

    /// Sends member `id` up to `n` (at most [`MAX_HISTORY_REQUEST`]) recent events of
    /// its room again; `/history`. Returns how many there were (those too large to send
    /// at once included: the member is told about them).
    pub fn history(&self, id: u64, n: usize) -> usize {
        let reg = self.lock();
        reg.members.get(&id).map_or(0, |m| {
            let events = reg.history.recent(m.session, &m.room, n.min(MAX_HISTORY_REQUEST));
            reg.send_again(m, &events);
            events.len()
        })
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
    /// its room (the renamed member too). Returns the old and the new nick, and the id of
    /// the announcement; the nicks are equal, and nothing is announced, when `wanted` is
    /// the nick already held.
    pub fn rename(
        &self,
        id: u64,
        wanted: &str,
    ) -> Result<(String, String, Option<u64>), NickChange> {
        let mut reg = self.lock();
        let old = reg.members[&id].nick.clone();
        let new = self.claim(&mut reg, id, wanted)?;
        self.apply_standing_mute(&mut reg, id);
        let mut event_id = None;
        if new != old {
            let key = reg.members[&id].room.clone();
            let room = reg.room_name(&key);
            let event = Event::now(EventKind::Nick { old: old.clone(), new: new.clone(), room });
            let frames = Frames::new(event, self.json_wanted());
            event_id = reg.publish(&key, frames, Skip::Nobody, id);
        }
        Ok((old, new, event_id))
    }

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
        let Some(&target_id) = reg.nicks.get(&nick::key(to)) else {
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
                reg.not_sent(from_id);
            }
            people::after_private(&mut reg, from_id, target_id);
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
        people::after_private(&mut reg, from_id, target_id);
        Some((target_nick, Some(id)))
    }

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

    /// Everyone announced, sorted by [`nick::key`]: the console's Tab completion.
    pub fn nicks(&self) -> Vec<String> {
        self.lock().sorted_nicks_with(0)
    }

    pub fn online(&self) -> usize {
        self.lock().online
    }

    /// Forgets member `id` and frees its nick; announces the leave if `reason` is given
    /// and its join was announced.
    /// Returns its nick, the name of the room it left, and the leave's id and how many
    /// are then online if the leave was announced.
    pub fn remove(&self, id: u64, reason: Option<&str>) -> Option<Removed> {
        let mut reg = self.lock();
        let member = reg.members.remove(&id)?;
        reg.release(&member.nick);
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
            let online = reg.online;
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
    /// [`Registry::claim`], unless a ban covers `wanted` or it is registered to
    /// someone this member does not prove to be.
    fn claim(&self, reg: &mut Registry, id: u64, wanted: &str) -> Result<String, NickChange> {
        if let Some(ban) = self.moderation.banned_nick(wanted) {
            return Err(NickChange::Banned(ban));
        }
        let account = self.check_owner(reg, id, wanted)?;
        let nick = reg.claim(id, wanted)?;
        if let Some(account) = account {
            self.took_registered(reg, id, &account);
        }
        Ok(nick)
    }
}

impl Registry {
    /// Gives `frames` the next id, keeps its event as one of room `key`, and sends it to
    /// the members of the room except as `skip` says. Returns the id.
    ///
    /// On a backbone the event is only handed to it, and comes back through
    /// [`Hub::apply`] with its id: the id is not known yet (`None`). `by` is the member
    /// who said it (0: the server), told if the backbone does not take it.
    fn publish(&mut self, key: &str, frames: Frames, skip: Skip, by: u64) -> Option<u64> {
        if let Some(link) = &self.link {
            let origin = said_by(link, by, skip);
            if link.room(key, frames.base(), origin).is_err() {
                self.not_sent(by);
            }
            return None;
        }
        let id = self.history.next_id();
        self.deliver(key, frames, skip, id);
        Some(id)
    }

    /// Sends `frames` with id `id` to the members of room `key` except as `skip` says,
    /// and keeps it in the room's history.
    fn deliver(&mut self, key: &str, mut frames: Frames, skip: Skip, id: u64) {
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

    /// Tells member `by` (0: nobody) that what it said was not delivered.
    fn not_sent(&self, by: u64) {
        if let Some(m) = self.members.get(&by).filter(|m| !m.held) {
            let error =
                Event::now(EventKind::Error { code: "not_sent".into(), message: NOT_SENT.into() });
            m.outbox.push(encode_for(&error, m.json, &m.nick).as_bytes());
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

    /// Sends member `id` the last `n` public events of its room again: of those, the
    /// ones it has not been shown (after the id it left the room at, if it was here
    /// before), and not the setting of the topic it has (the `room` event before the
    /// replay shows the topic).
    fn replay(&self, id: u64, n: usize) {
        let m = &self.members[&id];
        let shown = m.shown_until.get(&m.room).copied().unwrap_or(0);
        let topic = self.rooms.get(&m.room).map(|r| r.topic.as_str());
        let mut events = self.history.recent(0, &m.room, n);
        events.retain(|stored| {
            let current_topic = matches!(&stored.event.kind,
                EventKind::Topic { topic: set, by: Some(_), .. } if Some(set.as_str()) == topic);
            stored.id() > shown && !current_topic
        });
        self.send_again(m, &events);
    }

    /// Queues `events` for `m`, marked as history: the newest that fit in the replay
    /// budget, after a note saying how many earlier ones did not.
    fn send_again(&self, m: &Member, events: &[&Stored]) {
        let (frames, left_out) = self.again(m, events);
        if left_out > 0 {
            let lines = if left_out == 1 { "line" } else { "lines" };
            let message =
                format!("{left_out} earlier {lines} not shown (too large to send at once)");
            let note = Event::now(EventKind::Info { message });
            m.outbox.push(encode_for(&note, m.json, &m.nick).as_bytes());
        }
        for frame in &frames {
            m.outbox.push(frame.as_bytes());
        }
    }

    /// `events` (oldest first) encoded for `m` and marked as history: the newest whose
    /// bytes fit in [`Registry::replay_budget`], oldest first, and how many older ones
    /// did not fit. Every path that sends the past goes through here.
    fn again(&self, m: &Member, events: &[&Stored]) -> (Vec<String>, usize) {
        let newest_first = events.iter().rev().map(|stored| {
            let mut event = stored.event.clone();
            event.history = true;
            encode_for(&event, m.json, &m.nick)
        });
        let frames = newest_that_fit(newest_first, self.replay_budget);
        let left_out = events.len() - frames.len();
        (frames, left_out)
    }

    /// The member that holds `wanted` and whose token `token` is, if any: held, or
    /// still connected as far as the server can tell (a dropped peer is noticed only by
    /// keepalive, after a minute and more, while its client is already back). A wrong
    /// token finds nothing, so the nick stays taken.
    fn resumable(&self, wanted: &str, token: &str) -> Option<u64> {
        let id = *self.nicks.get(&nick::key(wanted))?;
        let m = self.members.get(&id)?;
        // A kicked session is over, even if its task has not closed it yet.
        let ready = (m.held || (m.announced && m.json)) && !m.profile.kicked();
        (ready && m.token.as_ref().is_some_and(|t| t.matches(token))).then_some(id)
    }

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

    fn forget_ip(&mut self, ip: IpAddr) {
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

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
            let Some(m) = self.members.get(&id).filter(|m| !m.held) else { continue };
            match skip {
                Skip::Member(s) if s == id => continue,
                Skip::TextEcho(s) if s == id && !m.json => continue,
                _ => {}
            }
            m.outbox.push_frame(frames.get(m.json));
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
        nicks.extend(self.remote_in_room(&self.room_name(key)));
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
        nicks.extend(self.presence.all().map(|c| c.nick.clone()));
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
    /// Ids of the part announced in the room left and of the join in the room entered.
    pub part_id: Option<u64>,
    pub join_id: Option<u64>,
}

/// Moving between rooms and their topics.
impl Hub {
    /// Moves member `id` to room `name`, creating it if it does not exist.
    pub fn join_room(&self, id: u64, name: &str) -> Result<Moved, JoinRefusal> {
        let mut reg = self.lock();
        let current = reg.members[&id].room.clone();
        let (key, created) = reg.rooms.open(name, &current)?;
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
        m.shown_until.insert(old.clone(), shown);
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
            let online = reg.online;
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

impl NickChange {
    /// The error text for the user who asked for `wanted`. A taken or look-alike nick is
    /// named in its enforced form (`ＡＬＩＣＥ` as `ALICE`), the name that was compared.
    pub fn describe(&self, wanted: &str) -> String {
        let enforced = match self {
            NickChange::Taken(_) | NickChange::LooksLike(_) | NickChange::Registered(_) => {
                crate::nick::enforce(wanted).ok()
            }
            _ => None,
        };
        let wanted = enforced.as_deref().unwrap_or(wanted);
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
            NickChange::Registered(owner) if nick::key(owner) == nick::key(wanted) => format!(
                "the nick {wanted} is registered; if it is yours, connect with its key \
                 (tchat join presents it) or /identify {owner} PASSWORD"
            ),
            NickChange::Registered(owner) => format!(
                "the nick {wanted} looks like the registered nick {owner}; if that is yours, \
                 connect with its key or /identify {owner} PASSWORD"
            ),
            NickChange::Unavailable => {
                format!(
                    "cannot take the nick {wanted} now: the backbone is unavailable; try again later"
                )
            }
        }
    }

    /// Machine-readable code for the structured protocol's error event. A look-alike
    /// counts as taken: the name is in use, only spelt differently.
    pub fn code(&self) -> &'static str {
        match self {
            NickChange::Invalid(_) => "bad_nick",
            NickChange::Taken(_) | NickChange::LooksLike(_) => "nick_taken",
            NickChange::Banned(_) => "banned",
            NickChange::Registered(_) => "nick_registered",
            NickChange::Unavailable => "unavailable",
        }
    }
}

/// What a member whose line the backbone did not take is told.
const NOT_SENT: &str = "not delivered: the backbone is unavailable; say it again later";

/// Where an event said by member `by` (0: the server) comes from, for the backbone:
/// `skip` as the other nodes cannot read it (their members have other ids).
fn said_by(link: &Link, by: u64, skip: Skip) -> Origin {
    let echo = match skip {
        Skip::Nobody => Echo::All,
        Skip::Member(m) => Echo::NotTo(m),
        Skip::TextEcho(m) => Echo::NotToText(m),
    };
    Origin { node: link.node.to_string(), member: by, echo }
}

fn encode_for(event: &Event, json: bool, nick: &str) -> String {
    if json { event.json_line() } else { event.text_line(nick) }
}
