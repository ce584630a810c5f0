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
//!
//! The parts: `admission` (in and out), `nicks` (the nick index), `resuming` (held
//! sessions taken back), `replay` (the past sent again), `fan_out` (how an event reaches
//! members), `rooms` (moves, topics, lists), `profile` (what the hub knows of a member
//! beyond its nick: away, mute, operator, `/whois`), `ownership` (registered nicks) and
//! `backbone` (events from the other nodes).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rustc_hash::FxHashMap;

mod admission;
mod backbone;
mod fan_out;
mod nick_table;
mod nicks;
mod ownership;
mod profile;
mod replay;
mod resuming;
mod rooms;

pub use backbone::Across;
pub use fan_out::Unsent;
use fan_out::{Frames, said_by};
use nick_table::NickTable;
pub use profile::Mute;
use profile::Profile;
pub use rooms::Moved;

use super::Config;
use super::backbone::leases::Leases;
use super::backbone::presence::Presence;
use super::backbone::{HubSide, Link};
use super::history::History;
use super::moderation::Moderation;
use super::outbox::Outbox;
use super::resume::{self, Token};
use super::room_budget::RoomBudget;
use super::rooms::Rooms;
use crate::event_log::EventLog;
use crate::nick::NickError;
use crate::protocol::Event;

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
    /// On a backbone, the bucket of bans and mutes.
    kept: Option<async_nats::jetstream::kv::Store>,
    /// On a backbone, the stream and this node's progress through it.
    mirror: Option<super::backbone::Mirror>,
    /// On a backbone, how far this node is behind the stream, read by connections
    /// without the lock before they hand on a line.
    window: Option<Arc<super::backbone::Window>>,
}

struct Registry {
    /// By connection id. Looked up once per recipient of every line, so hashed with Fx
    /// rather than SipHash (8 to 12% of the server's CPU in `burst 200x50`): the ids are
    /// the server's own counter, not input, so there is no flooding to resist.
    ///
    /// Boxed: a member is 216 bytes, and the table keeps about 1.6 slots per member
    /// (hashbrown's power-of-two capacity), so inline records would cost an idle
    /// connection some 360 bytes here; boxed, a slot is 16 bytes and the record one
    /// allocation.
    members: FxHashMap<u64, Box<Member>>,
    rooms: Rooms,
    /// [`nick::key`] -> member id: one person per nick, whatever its case or form.
    /// Keeps ids and hashes, not the keys (see [`NickTable`]): 16 bytes a slot.
    nicks: NickTable,
    /// [`nick::skeleton`] -> member id: no nick may look like another held one.
    looks: NickTable,
    /// Open connections per [`origin`], for `--max-per-ip` (exempt peers are counted
    /// too, but never refused).
    per_ip: HashMap<IpAddr, u32>,
    /// Members that have been announced (see [`Member::announced`]).
    online: usize,
    next_id: u64,
    next_guest: u64,
    history: History,
    /// Rooms each address may still create.
    room_budget: RoomBudget,
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
    /// What `/whois`, `/away`, `/reply`, mutes and operators need (see [`profile`]).
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
    /// when it came in). One entry per room visited, dropped with the member. Boxed and
    /// made on the first move: most members never leave their first room.
    #[allow(clippy::box_collection)] // an empty map is 48 bytes in every member; this, 8
    shown_until: Option<Box<HashMap<String, u64>>>,
    /// The most lines replayed to it on entering a room, from its hello (`replay=N`);
    /// `None`: the server's `--replay`. A `u32`, so the record is 216 bytes, one
    /// allocator step (16 bytes) under the 224 a `usize` made it.
    replay: Option<u32>,
    /// Let in over a limit ([`Hub::admit`]): its hello must resume a session, else it is
    /// refused with this. Boxed: few members are ever on probation.
    probation: Option<Box<Refusal>>,
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
    /// The session is no longer this connection's: its client resumed it on another
    /// node (or it was fenced) while the nick was being claimed.
    Moved,
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
        let kept = side.as_ref().map(|s| s.moderation.clone());
        let mirror = side.as_ref().map(|s| s.mirror.clone());
        let window = side.as_ref().map(|s| s.link.window.clone());
        let link = side.map(|s| s.link);
        Hub {
            state: Mutex::new(Registry {
                members: FxHashMap::default(),
                rooms: Rooms::new(&config.default_room, config.max_rooms),
                nicks: NickTable::new(),
                looks: NickTable::new(),
                per_ip: HashMap::new(),
                online: 0,
                next_id: 0,
                next_guest: 0,
                history,
                room_budget: RoomBudget::default(),
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
            kept,
            mirror,
            window,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing the whole server, so keep serving.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn online(&self) -> usize {
        self.lock().online
    }

    /// Tells every connection task, registered or not, that the server is stopping.
    pub fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        for m in self.lock().members.values() {
            m.outbox.wake();
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

impl Registry {}

impl NickChange {}

fn encode_for(event: &Event, json: bool, nick: &str) -> String {
    if json { event.json_line() } else { event.text_line(nick) }
}
