//! Event ids and the recent conversation, kept in memory for replay on join, `/history`
//! and resuming a dropped session.
//!
//! Pure data: the hub owns one [`History`] under its lock, so ids are handed out in the
//! order events are delivered, and a resumed client that says "the last id I saw" gets
//! exactly what came after it. Ids are one sequence for the server, across rooms.
//!
//! Shaped like ergo's `irc/history` (a ring buffer per target, queried by id or by
//! count) and ssh-chat's per-room backlog: one [`Ring`] per room, so a busy room cannot
//! push a quiet room's events out, and one ring for the server's private messages. Each
//! ring also remembers the ids of the last events it let go, so a resume can say how many
//! of *its* events (its room's, its private messages) are no longer kept: exactly while
//! they are remembered, else an upper bound ([`Ring::unavailable_after`]).
//!
//! Rooms are at most `--max-rooms`, and so are rings: a room's ring outlives the room
//! (empty rooms close), so that a room reopened later, or after a restart, still has its
//! past; when a ring is needed and `--max-rooms` rings exist, the ring of a closed room
//! goes, the one worth least ([`Ring::worth`]): one where nothing was said first, then
//! one where nothing was said for [`DORMANT`], then the one with the fewest lines kept,
//! the quietest among equals. So a stranger who opens room after room (each costs flood
//! control, and an address only has so many, see `room_budget`) pushes out their own
//! empty rooms and the dormant ones, and a conversation only with as many lines said in
//! each of the other rooms. Memory stays at most `--max-rooms` + 1 rings of `--history`
//! events and as many ids.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::protocol::Event;

/// How long after its last line a closed room's ring counts as dormant, and goes before
/// any ring with more recent conversation (a week).
pub const DORMANT: jiff::SignedDuration = jiff::SignedDuration::from_hours(24 * 7);

/// A room key for the tests.
#[cfg(test)]
const LOBBY: &str = "#lobby";

/// Most events one `/history N` may ask for.
pub const MAX_HISTORY_REQUEST: usize = 200;

/// Who may see a kept event again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everyone in its room (the room whose ring holds it): public lines, actions,
    /// joins, parts, leaves, renames, topics.
    Room,
    /// Only the two sessions of a private message (see [`Stored::visible_to`]). Session
    /// numbers are the server's own and die with it, so a private message reloaded from
    /// the log after a restart (sessions 0) is visible to nobody: a nick alone does not
    /// prove who someone is.
    Private { from: u64, to: u64 },
}

impl Scope {
    /// Whether an event of this scope, in the ring of `session`'s room or the private
    /// ring, was addressed to `session`. Sessions 0 (a private message read back from
    /// the log) may have been anyone's: counted as missed, never shown.
    fn concerns(self, session: u64) -> bool {
        match self {
            Scope::Room => true,
            Scope::Private { from: 0, to: 0 } => true,
            Scope::Private { from, to } => session != 0 && (from == session || to == session),
        }
    }
}

/// One kept event: its `id` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub event: Event,
    pub scope: Scope,
}

impl Stored {
    pub fn id(&self) -> u64 {
        self.event.id.unwrap_or(0)
    }

    /// Something someone said (a line, an action, a private message, a topic), as
    /// opposed to a join, leave, move or rename.
    pub fn is_said(&self) -> bool {
        self.event.kind.is_said()
    }

    /// Whether `session` may see this event again (from its room's ring, or the
    /// private ring).
    pub fn visible_to(&self, session: u64) -> bool {
        match self.scope {
            Scope::Room => true,
            Scope::Private { from, to } => session != 0 && (from == session || to == session),
        }
    }
}

/// What a resume gets: the events after its last id that it may see, and up to how many
/// of its events after it are no longer kept (see [`History::after`]).
#[derive(Debug, Default, PartialEq)]
pub struct CatchUp<'a> {
    pub events: Vec<&'a Stored>,
    pub unavailable: u64,
}

/// The newest of `newest_first` (encoded events to send again, newest first) whose
/// bytes fit in `budget` together, oldest first: the first that does not fit ends the
/// selection, so what is kept has no gap. The caller counts the rest as not sent.
///
/// A client's send queue (`--send-queue`) drops it when over its limit, so what is sent
/// again at once (a replay, `/history`, a resume's catch-up) must stay under it, with
/// room for the live events that keep coming (the hub's `replay_budget`).
pub fn newest_that_fit(newest_first: impl Iterator<Item = String>, budget: usize) -> Vec<String> {
    let mut bytes = 0;
    let mut kept: Vec<String> = newest_first
        .take_while(|frame| {
            bytes += frame.len();
            bytes <= budget
        })
        .collect();
    kept.reverse();
    kept
}

/// An event a ring let go: its id and who it concerned (8 bytes and a scope, not the
/// event), for counting what a resume missed.
#[derive(Debug, Clone, Copy)]
struct Gone {
    id: u64,
    scope: Scope,
}

/// The latest events of one room (or the server's private messages), in id order, and
/// the ids of the last ones let go.
#[derive(Debug)]
struct Ring {
    kept: VecDeque<Stored>,
    /// The last `capacity` events let go, oldest first: a resume whose last id is at
    /// or above the oldest of them is told exactly how many it missed.
    gone: VecDeque<Gone>,
    /// Every event of this ring with a higher id is in `kept` or `gone`; of those at or
    /// below it, only `lost` is known.
    horizon: u64,
    /// How many events at or below `horizon` this ring let go, if it knows (it does not
    /// when it started after a restart, or after the ring of a closed room was dropped:
    /// then every id up to `horizon` may have been one of its events).
    lost: Option<u64>,
    /// The room closed (nobody in it): the ring may go to make room for another.
    closed: bool,
    /// How many of `kept` are things said ([`Stored::is_said`]), and when the newest of
    /// them was: what the ring is worth ([`Ring::worth`]).
    said: usize,
    last_said: Option<jiff::Timestamp>,
}

impl Ring {
    /// An empty ring that knows nothing of the ids up to `horizon`.
    fn new(horizon: u64) -> Ring {
        let lost = (horizon == 0).then_some(0);
        let (kept, gone) = (VecDeque::new(), VecDeque::new());
        Ring { kept, gone, horizon, lost, closed: false, said: 0, last_said: None }
    }

    /// What keeping this ring is worth at `now`, lowest first: nothing said kept, then
    /// nothing said for [`DORMANT`], then anything else; within each, the fewer lines
    /// said kept, the less; then the quieter (the older its newest id), the less.
    fn worth(&self, now: jiff::Timestamp) -> (u8, usize, u64) {
        let class = match self.last_said {
            None => 0,
            Some(at) if now.duration_since(at) > DORMANT => 1,
            Some(_) => 2,
        };
        (class, self.said, self.newest())
    }

    /// Keeps `stored`, letting the oldest go when `capacity` are kept.
    fn push(&mut self, stored: Stored, capacity: usize) {
        if self.kept.len() == capacity
            && let Some(old) = self.kept.pop_front()
        {
            self.said -= usize::from(old.is_said());
            self.let_go(Gone { id: old.id(), scope: old.scope }, capacity);
        }
        if stored.is_said() {
            self.said += 1;
            self.last_said =
                Some(self.last_said.map_or(stored.event.ts, |t| t.max(stored.event.ts)));
        }
        self.kept.push_back(stored);
    }

    /// Remembers that event `gone` is no longer kept, forgetting the oldest remembered
    /// one (it then counts in `lost`) when more than `capacity` are remembered.
    fn let_go(&mut self, gone: Gone, capacity: usize) {
        if self.gone.back().is_none_or(|last| last.id < gone.id) {
            self.gone.push_back(gone);
        } else {
            // Only while restoring: a record the log cannot show again, among kept ones.
            let at = self.gone.partition_point(|g| g.id < gone.id);
            self.gone.insert(at, gone);
        }
        if self.gone.len() > capacity
            && let Some(oldest) = self.gone.pop_front()
        {
            self.horizon = self.horizon.max(oldest.id);
            self.lost = self.lost.map(|n| n + 1);
        }
    }

    /// The newest id this ring has seen (kept or let go), or its horizon.
    fn newest(&self) -> u64 {
        let kept = self.kept.back().map(Stored::id);
        kept.or(self.gone.back().map(|g| g.id)).unwrap_or(self.horizon)
    }

    /// The kept events after `last_id` that `session` may see, oldest first.
    fn after(&self, last_id: u64, session: u64) -> impl Iterator<Item = &Stored> {
        let start = self.kept.partition_point(|s| s.id() <= last_id);
        self.kept.range(start..).filter(move |s| s.visible_to(session))
    }

    /// Up to the `n` newest things said that `session` may see, newest first.
    fn recent(&self, session: u64, n: usize) -> impl Iterator<Item = &Stored> {
        self.kept.iter().rev().filter(move |s| s.is_said() && s.visible_to(session)).take(n)
    }

    /// Up to how many events of this ring that concern `session` and have an id after
    /// `last_id` are no longer kept: exact for those still remembered in `gone`; for
    /// those at or below `horizon`, the ring's `lost` count or, when it does not know,
    /// every id up to `horizon` (ids are unique, so that many at most).
    ///
    /// Returns the exact part and the bound apart: the bounds of two rings may count the
    /// same ids.
    fn unavailable_after(&self, last_id: u64, session: u64) -> (u64, u64) {
        let start = self.gone.partition_point(|g| g.id <= last_id);
        let exact = self.gone.range(start..).filter(|g| g.scope.concerns(session)).count();
        let span = self.horizon.saturating_sub(last_id);
        (exact as u64, self.lost.map_or(span, |lost| lost.min(span)))
    }
}

/// `a` and `b` (each in id order) as one list in id order: a room's events and a
/// session's private messages, which share one sequence of ids.
fn merge<'a>(
    a: impl Iterator<Item = &'a Stored>,
    b: impl Iterator<Item = &'a Stored>,
) -> Vec<&'a Stored> {
    let mut out: Vec<&Stored> = a.chain(b).collect();
    // Stable and nearly sorted: two runs.
    out.sort_by_key(|s| s.id());
    out
}

/// The most recent events, at most `capacity` per room and `capacity` private messages,
/// and the last id given out.
#[derive(Debug)]
pub struct History {
    /// `--history`: events kept per ring (0: none).
    capacity: usize,
    /// `--max-rooms`: most room rings kept at once.
    max_rooms: usize,
    /// Room key ([`crate::room::key`]) -> its ring: one hash lookup per event stored.
    /// Keys are shared (`Arc`) and made once per ring, not per event. SipHash, as the
    /// room table: room names are input.
    rooms: HashMap<Arc<str>, Ring>,
    /// Private messages of every session.
    private: Ring,
    last_id: u64,
    /// The last id logged before this run started: the ids above it are this run's.
    started_after: u64,
    /// A ring made now knows nothing of its room's events up to this id: those of an
    /// earlier run the log did not give back, or of a ring dropped in this run.
    floor: u64,
}

impl History {
    /// An empty history keeping up to `capacity` events per room (0: none, ids are still
    /// given out) for up to `max_rooms` rooms, whose ids continue after `last_id` (the
    /// last one logged before a restart).
    pub fn new(capacity: usize, max_rooms: usize, last_id: u64) -> History {
        History {
            capacity,
            max_rooms: max_rooms.max(1),
            rooms: HashMap::new(),
            private: Ring::new(last_id),
            last_id,
            started_after: last_id,
            floor: last_id,
        }
    }

    /// The point to catch a resuming client up from, given the last id it saw and
    /// whether that id was given out by this run (its token says so). An id from an
    /// earlier run that is above the last one logged was never written down (the old
    /// run was killed, or kept no log): this run may have given the same id to another
    /// event since, so everything this run said counts as missed.
    pub fn comparable(&self, last_id: u64, same_run: bool) -> u64 {
        if same_run { last_id } else { last_id.min(self.started_after) }
    }

    /// Gives out the next id.
    pub fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// Takes `id`, given by the backbone's stream, as the last id: events then arrive
    /// with their ids already set, in increasing order.
    pub fn advance_to(&mut self, id: u64) {
        self.last_id = self.last_id.max(id);
    }

    /// The topic the last kept topic change of room `key` set, if one is kept.
    pub fn last_topic(&self, key: &str) -> Option<String> {
        let ring = self.rooms.get(key)?;
        ring.kept.iter().rev().find_map(|s| match &s.event.kind {
            crate::protocol::EventKind::Topic { topic, by: Some(_), .. } => Some(topic.clone()),
            _ => None,
        })
    }

    /// Whether events are kept at all (`--history 0` keeps none).
    pub fn keeps(&self) -> bool {
        self.capacity > 0
    }

    pub fn last_id(&self) -> u64 {
        self.last_id
    }

    /// Keeps `stored` as the newest event of room `key` (one hash lookup; a key is
    /// copied only when the room gets its ring), forgetting the room's oldest when
    /// full. Ids must arrive in increasing order (they do: the hub assigns and stores
    /// under one lock).
    pub fn push_room(&mut self, key: &str, stored: Stored) {
        if self.capacity == 0 {
            return;
        }
        let capacity = self.capacity;
        match self.rooms.get_mut(key) {
            Some(ring) => {
                ring.closed = false;
                ring.push(stored, capacity);
            }
            None => self.new_ring(key).push(stored, capacity),
        }
    }

    /// Keeps the private message `stored`, forgetting the oldest one when full.
    pub fn push_private(&mut self, stored: Stored) {
        if self.capacity > 0 {
            self.private.push(stored, self.capacity);
        }
    }

    /// Room `key` closed (its last member left): its ring stays, and may now go to make
    /// room for another's.
    pub fn room_closed(&mut self, key: &str) {
        if let Some(ring) = self.rooms.get_mut(key) {
            ring.closed = true;
        }
    }

    /// A ring for room `key`, dropping the ring of the closed room worth least
    /// ([`Ring::worth`]) when `max_rooms` exist. There is one: at most `max_rooms` rooms
    /// are open, `key`'s among them, and a ring is open only while its room is.
    fn new_ring(&mut self, key: &str) -> &mut Ring {
        if self.rooms.len() >= self.max_rooms {
            let now = jiff::Timestamp::now();
            let least = self
                .rooms
                .iter()
                .filter(|(_, ring)| ring.closed)
                .min_by_key(|(_, ring)| ring.worth(now))
                .map(|(k, ring)| (Arc::clone(k), ring.newest()));
            if let Some((k, newest)) = least {
                self.rooms.remove(&k);
                // A ring made for that room later knows nothing of what this one held.
                self.floor = self.floor.max(newest);
            }
        }
        let floor = self.floor;
        self.rooms.entry(Arc::from(key)).or_insert_with(|| Ring::new(floor))
    }

    /// Room `key`'s ring, made if it has none.
    fn ring_mut(&mut self, key: &str) -> &mut Ring {
        if self.rooms.contains_key(key) {
            return self.rooms.get_mut(key).expect("checked just above");
        }
        self.new_ring(key)
    }

    /// Up to `n` of the latest things said in `room` and, for a `session` other than 0,
    /// its own private messages, oldest first: for replay on join (session 0: public
    /// only) and `/history`. Comings and goings are left out, as ssh-chat's replay does:
    /// after a restart the log has joins whose leaves were never announced, and who is
    /// here now is in the room event anyway. A resume gets them all ([`History::after`]).
    pub fn recent(&self, session: u64, room: &str, n: usize) -> Vec<&Stored> {
        let in_room: Vec<_> =
            self.rooms.get(room).map(|r| r.recent(session, n).collect()).unwrap_or_default();
        // Session 0 (a replay on join) sees no private message: no need to look.
        let private: Vec<_> =
            if session == 0 { Vec::new() } else { self.private.recent(session, n).collect() };
        let mut out = merge(in_room.into_iter().rev(), private.into_iter().rev());
        out.drain(..out.len().saturating_sub(n));
        out
    }

    /// The events after `last_id` that `session` may see in `room` (its room's and its
    /// private messages, merged in id order), and up to how many of those it would have
    /// seen are no longer kept.
    ///
    /// The count is exact while the rings still remember the ids they let go (the last
    /// `capacity` of each); beyond that, and for what happened before a restart that the
    /// log did not give back, it is an upper bound, never more than the ids given out
    /// after `last_id`.
    pub fn after(&self, last_id: u64, session: u64, room: &str) -> CatchUp<'_> {
        let everything = self.last_id.saturating_sub(last_id);
        if self.capacity == 0 {
            return CatchUp { events: Vec::new(), unavailable: everything };
        }
        let ring = self.rooms.get(room);
        let in_room = ring.into_iter().flat_map(|r| r.after(last_id, session));
        let events = merge(in_room, self.private.after(last_id, session));
        // A room without a ring had no event since the floor.
        let (room_exact, room_unknown) = match ring {
            Some(r) => r.unavailable_after(last_id, session),
            None => (0, self.floor.saturating_sub(last_id)),
        };
        let (private_exact, private_unknown) = self.private.unavailable_after(last_id, session);
        // The unknown parts count ids up to each ring's horizon: the same ids, maybe.
        let unknown = (room_unknown + private_unknown).min(room_unknown.max(private_unknown));
        let unavailable = (room_exact + private_exact + unknown).min(everything);
        CatchUp { events, unavailable }
    }

    /// Fills the rings from `records` read back from the `--save` log (in id order),
    /// all of whose ids above `floor` were read: as if they had just been said, except
    /// that rooms other than `default_key` are closed (nobody is in them yet), so
    /// `--max-rooms` rings at most stay, those of the rooms active last.
    pub fn restore(&mut self, floor: u64, default_key: &str, records: Vec<Reread>) {
        self.floor = floor;
        self.private = Ring::new(floor);
        let capacity = self.capacity;
        if capacity == 0 {
            return;
        }
        for Reread { id, room, event } in records {
            let Some(key) = room else {
                // Whose it was died with the old run: it may have been anyone's.
                let scope = Scope::Private { from: 0, to: 0 };
                self.private.let_go(Gone { id, scope }, capacity);
                continue;
            };
            let ring = self.ring_mut(&key);
            match event {
                Some(event) => ring.push(Stored { event, scope: Scope::Room }, capacity),
                None => ring.let_go(Gone { id, scope: Scope::Room }, capacity),
            }
            ring.closed = *key != *default_key;
        }
    }
}

/// A conversation record read back from the `--save` log, for [`History::restore`].
#[derive(Debug)]
pub struct Reread {
    pub id: u64,
    /// The room's key; `None` for a private message.
    pub room: Option<Arc<str>>,
    /// The event to show again, if the record holds all of it and is among those kept.
    pub event: Option<Event>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::EventKind;

    fn said(id: u64, room: &str, text: &str) -> Stored {
        let kind = EventKind::Public { from: "a".into(), text: text.into(), room: room.into() };
        let mut event = Event::now(kind);
        event.id = Some(id);
        Stored { event, scope: Scope::Room }
    }

    fn public_in(h: &mut History, room: &str, text: &str) -> u64 {
        let id = h.next_id();
        h.push_room(room, said(id, room, text));
        id
    }

    fn public(h: &mut History, text: &str) -> u64 {
        public_in(h, LOBBY, text)
    }

    fn private(h: &mut History, from: u64, to: u64) -> u64 {
        let id = h.next_id();
        let kind = EventKind::Private { from: "a".into(), to: "b".into(), text: "psst".into() };
        let mut event = Event::now(kind);
        event.id = Some(id);
        h.push_private(Stored { event, scope: Scope::Private { from, to } });
        id
    }

    fn ids(events: &[&Stored]) -> Vec<u64> {
        events.iter().map(|s| s.id()).collect()
    }

    #[test]
    fn an_id_from_an_earlier_run_counts_only_up_to_what_it_logged() {
        let mut h = History::new(10, 10, 5);
        let first = public(&mut h, "said after the restart");
        assert_eq!(first, 6);
        // Seen before a kill -9 that lost the log's tail: 6 to 9 were other events.
        assert_eq!(h.comparable(9, false), 5);
        assert_eq!(h.after(h.comparable(9, false), 0, LOBBY).events.len(), 1);
        assert_eq!(h.comparable(4, false), 4, "logged: the same event in both runs");
        assert_eq!(h.comparable(9, true), 9, "this run's own id is taken as it is");
    }

    #[test]
    fn what_is_sent_again_at_once_is_the_newest_that_fit_in_order() {
        let frames = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let newest_first = || ["ccc", "bb", "aaaa"].into_iter().map(String::from);
        assert_eq!(newest_that_fit(newest_first(), 100), frames(&["aaaa", "bb", "ccc"]));
        assert_eq!(newest_that_fit(newest_first(), 5), frames(&["bb", "ccc"]));
        // Exactly the budget fits; a smaller older one after a gap is not taken.
        assert_eq!(newest_that_fit(newest_first(), 3), frames(&["ccc"]));
        assert_eq!(newest_that_fit(newest_first(), 2), frames(&[]));
        let with_small_older = ["ccc", "bbbbbb", "a"].into_iter().map(String::from);
        assert_eq!(newest_that_fit(with_small_older, 4), frames(&["ccc"]));
    }

    #[test]
    fn replay_leaves_out_comings_and_goings_but_a_resume_gets_them() {
        let mut h = History::new(10, 10, 0);
        public(&mut h, "before");
        let id = h.next_id();
        let kind = EventKind::Join {
            nick: "b".into(),
            online: 2,
            room: LOBBY.into(),
            here: 2,
            from_room: None,
        };
        let mut event = Event::now(kind);
        event.id = Some(id);
        h.push_room(LOBBY, Stored { event, scope: Scope::Room });
        public(&mut h, "after");
        assert_eq!(ids(&h.recent(0, LOBBY, 10)), [1, 3]);
        assert_eq!(ids(&h.after(0, 0, LOBBY).events), [1, 2, 3]);
    }

    #[test]
    fn ids_continue_after_the_last_logged_one() {
        let mut h = History::new(10, 10, 41);
        assert_eq!(public(&mut h, "x"), 42);
        assert_eq!(h.next_id(), 43);
        assert_eq!(h.last_id(), 43);
    }

    #[test]
    fn the_ring_keeps_the_latest_capacity_events() {
        let mut h = History::new(3, 10, 0);
        for i in 0..5 {
            public(&mut h, &i.to_string());
        }
        assert_eq!(ids(&h.recent(0, LOBBY, 10)), [3, 4, 5]);
        assert_eq!(ids(&h.recent(0, LOBBY, 2)), [4, 5]);
        assert!(h.recent(0, "#other", 10).is_empty());
    }

    #[test]
    fn a_busy_room_does_not_push_a_quiet_rooms_events_out() {
        let mut h = History::new(3, 10, 0);
        let quiet = public_in(&mut h, "#b", "quiet");
        for i in 0..50 {
            public_in(&mut h, "#a", &i.to_string());
        }
        assert_eq!(ids(&h.recent(0, "#b", 10)), [quiet]);
        assert_eq!(ids(&h.recent(0, "#a", 10)), [49, 50, 51]);
        // A resume in #b after its line missed nothing of #b's, and #a's are not its.
        assert_eq!(h.after(quiet, 0, "#b"), CatchUp { events: vec![], unavailable: 0 });
        let c = h.after(0, 0, "#b");
        assert_eq!((ids(&c.events), c.unavailable), (vec![quiet], 0));
    }

    #[test]
    fn zero_capacity_keeps_nothing_but_still_counts() {
        let mut h = History::new(0, 10, 0);
        public(&mut h, "x");
        public(&mut h, "y");
        assert!(h.recent(0, LOBBY, 10).is_empty());
        assert_eq!(h.after(0, 0, LOBBY), CatchUp { events: vec![], unavailable: 2 });
    }

    #[test]
    fn private_messages_are_seen_again_only_by_their_two_sessions() {
        let mut h = History::new(10, 10, 0);
        public(&mut h, "x");
        private(&mut h, 7, 8);
        assert_eq!(ids(&h.recent(7, LOBBY, 10)), [1, 2]);
        assert_eq!(ids(&h.recent(8, LOBBY, 10)), [1, 2]);
        assert_eq!(ids(&h.recent(9, LOBBY, 10)), [1]);
        // Reloaded after a restart: session 0 is nobody.
        private(&mut h, 0, 0);
        assert_eq!(ids(&h.recent(0, LOBBY, 10)), [1]);
    }

    #[test]
    fn a_rooms_events_and_a_sessions_private_messages_merge_in_id_order() {
        let mut h = History::new(10, 10, 0);
        public(&mut h, "1");
        private(&mut h, 7, 8);
        public_in(&mut h, "#other", "3");
        public(&mut h, "4");
        private(&mut h, 8, 7);
        private(&mut h, 5, 6);
        public(&mut h, "7");
        let c = h.after(1, 7, LOBBY);
        assert_eq!((ids(&c.events), c.unavailable), (vec![2, 4, 5, 7], 0));
        assert_eq!(ids(&h.recent(7, LOBBY, 10)), [1, 2, 4, 5, 7]);
        // The newest n of the merged list, not n of each.
        assert_eq!(ids(&h.recent(7, LOBBY, 3)), [4, 5, 7]);
        assert_eq!(ids(&h.recent(0, LOBBY, 3)), [1, 4, 7]);
    }

    #[test]
    fn after_gives_exactly_the_later_events_and_counts_the_lost_ones() {
        let mut h = History::new(4, 10, 0);
        for i in 0..6 {
            public(&mut h, &i.to_string());
        }
        // Kept: 3, 4, 5, 6.
        let c = h.after(4, 0, LOBBY);
        assert_eq!((ids(&c.events), c.unavailable), (vec![5, 6], 0));
        let c = h.after(2, 0, LOBBY);
        assert_eq!((ids(&c.events), c.unavailable), (vec![3, 4, 5, 6], 0));
        let c = h.after(0, 0, LOBBY);
        assert_eq!((ids(&c.events), c.unavailable), (vec![3, 4, 5, 6], 2));
        let c = h.after(6, 0, LOBBY);
        assert_eq!((ids(&c.events), c.unavailable), (vec![], 0));
        // A last id from the future (another server, or ids reused after a crash).
        let c = h.after(99, 0, LOBBY);
        assert_eq!((ids(&c.events), c.unavailable), (vec![], 0));
    }

    #[test]
    fn the_unavailable_count_is_exact_while_remembered_then_an_upper_bound() {
        let mut h = History::new(2, 10, 0);
        // #b: 1, then #a: 2..=5, #b: 6..=10 (kept: 9, 10; remembered gone: 7, 8).
        public_in(&mut h, "#b", "first");
        for i in 0..4 {
            public_in(&mut h, "#a", &i.to_string());
        }
        for i in 0..5 {
            public_in(&mut h, "#b", &i.to_string());
        }
        // Exact: of #b's 6..=10 after 6, 7 and 8 are gone; #a's are not counted.
        assert_eq!(h.after(6, 0, "#b").unavailable, 2);
        assert_eq!(h.after(7, 0, "#b").unavailable, 1);
        // 1 and 6 were forgotten, but counted (the ring has been there from the start):
        // after 0, all four of #b's gone.
        assert_eq!(h.after(0, 0, "#b").unavailable, 4);
        // After 1: three, but up to four, as the ring no longer knows 1 was one of them.
        assert_eq!(h.after(1, 0, "#b").unavailable, 4);
        // Private messages: only this session's count.
        for _ in 0..3 {
            private(&mut h, 7, 8);
        }
        private(&mut h, 5, 6);
        private(&mut h, 5, 6);
        // 11 to 13 are 7's (11 forgotten), 14 and 15 are 5's and kept.
        let c = h.after(11, 7, "#b");
        assert_eq!((ids(&c.events), c.unavailable), (vec![], 2));
        assert_eq!(h.after(11, 9, "#b").unavailable, 0);
        assert_eq!(h.after(11, 5, "#b").unavailable, 0, "both of 5's are kept");
        // Whose the forgotten 11 was is not known: up to one for anyone.
        assert_eq!(h.after(10, 9, "#b").unavailable, 1);
        assert_eq!(h.after(10, 7, "#b").unavailable, 3);
    }

    #[test]
    fn past_a_restart_the_count_is_bounded_by_the_ids_it_cannot_account_for() {
        // Ids up to 100 were logged; this run started knowing nothing of them.
        let mut h = History::new(3, 10, 100);
        public(&mut h, "new");
        let c = h.after(90, 0, LOBBY);
        assert_eq!((ids(&c.events), c.unavailable), (vec![101], 10), "up to 91..=100");
        assert_eq!(h.after(100, 0, LOBBY).unavailable, 0);
    }

    #[test]
    fn rings_are_at_most_max_rooms_and_a_closed_rooms_goes_first() {
        let mut h = History::new(5, 2, 0);
        public(&mut h, "lobby");
        let quiet = public_in(&mut h, "#b", "quiet");
        h.room_closed("#b");
        // A closed room keeps its history while there is room for it.
        assert_eq!(ids(&h.recent(0, "#b", 5)), [quiet]);
        let c = public_in(&mut h, "#c", "c");
        assert!(h.recent(0, "#b", 5).is_empty(), "#b's ring went for #c's");
        assert_eq!(ids(&h.recent(0, "#c", 5)), [c]);
        assert_eq!(ids(&h.recent(0, LOBBY, 5)), [1]);
        // A ring made for #b again cannot say which ids up to then were its: up to all
        // three (1 to 3; only 2 was).
        h.room_closed("#c");
        let again = public_in(&mut h, "#b", "again");
        let caught = h.after(0, 0, "#b");
        assert_eq!((ids(&caught.events), caught.unavailable), (vec![again], 3));
        assert!(h.recent(0, "#c", 5).is_empty(), "#c's went for #b's");
    }

    /// A stranger opening room after room, each with a join and a line, pushes out its
    /// own rooms' rings, never that of a closed room where more was said.
    #[test]
    fn a_conversation_outlasts_the_rooms_a_stranger_opens() {
        let mut h = History::new(10, 4, 0);
        public(&mut h, "lobby");
        let project: Vec<u64> =
            (0..5).map(|i| public_in(&mut h, "#project", &i.to_string())).collect();
        h.room_closed("#project");
        for i in 0..30 {
            let room = format!("#r{i}");
            let id = h.next_id();
            let join = EventKind::Join {
                nick: "x".into(),
                online: 1,
                room: room.clone(),
                here: 1,
                from_room: None,
            };
            let mut event = Event::now(join);
            event.id = Some(id);
            h.push_room(&room, Stored { event, scope: Scope::Room });
            public_in(&mut h, &room, "spam");
            h.room_closed(&room);
        }
        assert_eq!(ids(&h.recent(0, "#project", 10)), project);
        assert_eq!(h.rooms.len(), 4);
    }

    /// A ring where nothing was said for a week goes before one said in lately, however
    /// many lines it holds.
    #[test]
    fn a_dormant_ring_goes_before_a_recent_one() {
        let mut h = History::new(10, 3, 0);
        public(&mut h, "lobby");
        for i in 0..5 {
            let id = h.next_id();
            let mut stored = said(id, "#old", &i.to_string());
            stored.event.ts = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * 8);
            h.push_room("#old", stored);
        }
        h.room_closed("#old");
        let recent = public_in(&mut h, "#recent", "one line");
        h.room_closed("#recent");
        public_in(&mut h, "#new", "new");
        assert!(h.recent(0, "#old", 10).is_empty(), "the dormant ring went");
        assert_eq!(ids(&h.recent(0, "#recent", 10)), [recent]);
    }

    #[test]
    fn a_restored_history_fills_each_rooms_ring_and_counts_what_the_log_held() {
        let mut h = History::new(2, 3, 20);
        let room = |k: &str| Some(Arc::<str>::from(k));
        let mut records = Vec::new();
        // Read back above id 10: #b's 11, 12 (a move: id only), 13; #a's 14..=18;
        // a private message 19 and #a's 20.
        records.push(Reread { id: 11, room: room("#b"), event: Some(said(11, "#b", "b1").event) });
        records.push(Reread { id: 12, room: room("#b"), event: None });
        records.push(Reread { id: 13, room: room("#b"), event: Some(said(13, "#b", "b3").event) });
        for id in 14..=18 {
            records.push(Reread { id, room: room("#a"), event: Some(said(id, "#a", "a").event) });
        }
        records.push(Reread { id: 19, room: None, event: None });
        records.push(Reread { id: 20, room: room("#a"), event: Some(said(20, "#a", "a").event) });
        h.restore(10, LOBBY, records);
        assert_eq!(ids(&h.recent(0, "#b", 5)), [11, 13]);
        assert_eq!(ids(&h.recent(0, "#a", 5)), [18, 20]);
        // In #b after 11: the move 12 (not shown again) and maybe the private 19.
        let c = h.after(11, 3, "#b");
        assert_eq!((ids(&c.events), c.unavailable), (vec![13], 2));
        // Before the floor: up to every id.
        assert_eq!(h.after(5, 3, "#b").unavailable, 5 + 2);
        // A room the log had nothing of since the floor.
        assert_eq!(h.after(11, 3, "#z").unavailable, 1);
        assert_eq!(public_in(&mut h, LOBBY, "x"), 21);
    }
}
