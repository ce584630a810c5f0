//! Event ids and the recent conversation, kept in memory for replay on join, `/history`
//! and resuming a dropped session.
//!
//! Pure data: the hub owns one [`History`] under its lock, so ids are handed out in the
//! order events are delivered, and a resumed client that says "the last id I saw" gets
//! exactly what came after it. Ids are dense (every conversation event takes the next
//! one), which is what lets a resume say how many events are no longer kept.
//!
//! Shaped like ergo's `irc/history`: a ring buffer queried by id or by count. It is one
//! ring for the server with a scope per entry (a room's key, or the two sessions of a
//! private message), not one per room, so every id stays accounted for in one place and
//! a resume can say how many are gone. The price: a busy room can push a quiet room's
//! events out of the ring.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::protocol::{Event, EventKind};

/// A room key for the tests.
#[cfg(test)]
const LOBBY: &str = "#lobby";

/// Most events one `/history N` may ask for.
pub const MAX_HISTORY_REQUEST: usize = 200;

/// Who may see a kept event again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everyone in the room (by its key): public lines, actions, joins, parts, leaves,
    /// renames, topics. Shared, so the many events of one room can share one key.
    Room(Arc<str>),
    /// Only the two sessions of a private message (see [`Stored::visible_to`]). Session
    /// numbers are the server's own and die with it, so a private message reloaded from
    /// the log after a restart is visible to nobody: a nick alone does not prove who
    /// someone is.
    Private { from: u64, to: u64 },
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
        matches!(
            self.event.kind,
            EventKind::Public { .. }
                | EventKind::Action { .. }
                | EventKind::Private { .. }
                | EventKind::Topic { .. }
        )
    }

    /// Whether `session`, in `room`, may see this event again.
    pub fn visible_to(&self, session: u64, room: &str) -> bool {
        match &self.scope {
            Scope::Room(r) => **r == *room,
            Scope::Private { from, to } => session != 0 && (*from == session || *to == session),
        }
    }
}

/// What a resume gets: the events after its last id that it may see, and how many ids
/// after it are no longer kept (events it may have missed for good; some of them may
/// have been private messages between others, hence "up to" to the user).
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

/// The most recent events, at most `capacity` of them, and the last id given out.
#[derive(Debug)]
pub struct History {
    capacity: usize,
    ring: VecDeque<Stored>,
    last_id: u64,
    /// The last id logged before this run started: the ids above it are this run's.
    started_after: u64,
}

impl History {
    /// An empty history keeping up to `capacity` events (0: none, ids are still given
    /// out) whose ids continue after `last_id` (the last one logged before a restart).
    pub fn new(capacity: usize, last_id: u64) -> History {
        History { capacity, ring: VecDeque::new(), last_id, started_after: last_id }
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

    /// Whether events are kept at all (`--history 0` keeps none).
    pub fn keeps(&self) -> bool {
        self.capacity > 0
    }

    pub fn last_id(&self) -> u64 {
        self.last_id
    }

    /// Keeps `stored`, forgetting the oldest event when full. Ids must arrive in
    /// increasing order (they do: the hub assigns and stores under one lock).
    pub fn push(&mut self, stored: Stored) {
        if self.capacity == 0 {
            return;
        }
        if self.ring.len() == self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(stored);
    }

    /// Up to `n` of the latest things said that `session` may see in `room`, oldest
    /// first: for replay on join and `/history`. Comings and goings are left out, as
    /// ssh-chat's replay does: after a restart the log has joins whose leaves were never
    /// announced, and who is here now is in the room event anyway. A resume gets them
    /// all ([`History::after`]).
    pub fn recent(&self, session: u64, room: &str, n: usize) -> Vec<&Stored> {
        let mut out: Vec<_> = self
            .ring
            .iter()
            .rev()
            .filter(|s| s.is_said() && s.visible_to(session, room))
            .take(n)
            .collect();
        out.reverse();
        out
    }

    /// The events after `last_id` that `session` may see in `room`, oldest first, and
    /// how many ids after `last_id` are gone from the ring.
    pub fn after(&self, last_id: u64, session: u64, room: &str) -> CatchUp<'_> {
        let start = self.ring.partition_point(|s| s.id() <= last_id);
        let events = self.ring.range(start..).filter(|s| s.visible_to(session, room)).collect();
        // Ids are dense, so the ids after `last_id` that are not kept are those before
        // the oldest kept one (or every one given out, when nothing is kept).
        let first_kept = self.ring.front().map_or(self.last_id + 1, |s| s.id());
        let unavailable = first_kept.saturating_sub(last_id.saturating_add(1));
        CatchUp { events, unavailable: unavailable.min(self.last_id.saturating_sub(last_id)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::EventKind;

    fn public(h: &mut History, text: &str) -> u64 {
        let id = h.next_id();
        let mut event = Event::now(EventKind::Public {
            from: "a".into(),
            text: text.into(),
            room: LOBBY.into(),
        });
        event.id = Some(id);
        h.push(Stored { event, scope: Scope::Room(LOBBY.into()) });
        id
    }

    fn private(h: &mut History, from: u64, to: u64) -> u64 {
        let id = h.next_id();
        let kind = EventKind::Private { from: "a".into(), to: "b".into(), text: "psst".into() };
        let mut event = Event::now(kind);
        event.id = Some(id);
        h.push(Stored { event, scope: Scope::Private { from, to } });
        id
    }

    #[test]
    fn an_id_from_an_earlier_run_counts_only_up_to_what_it_logged() {
        let mut h = History::new(10, 5);
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

    fn ids(events: &[&Stored]) -> Vec<u64> {
        events.iter().map(|s| s.id()).collect()
    }

    #[test]
    fn replay_leaves_out_comings_and_goings_but_a_resume_gets_them() {
        let mut h = History::new(10, 0);
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
        h.push(Stored { event, scope: Scope::Room(LOBBY.into()) });
        public(&mut h, "after");
        assert_eq!(ids(&h.recent(0, LOBBY, 10)), [1, 3]);
        assert_eq!(ids(&h.after(0, 0, LOBBY).events), [1, 2, 3]);
    }

    #[test]
    fn ids_continue_after_the_last_logged_one() {
        let mut h = History::new(10, 41);
        assert_eq!(public(&mut h, "x"), 42);
        assert_eq!(h.next_id(), 43);
        assert_eq!(h.last_id(), 43);
    }

    #[test]
    fn the_ring_keeps_the_latest_capacity_events() {
        let mut h = History::new(3, 0);
        for i in 0..5 {
            public(&mut h, &i.to_string());
        }
        assert_eq!(ids(&h.recent(0, LOBBY, 10)), [3, 4, 5]);
        assert_eq!(ids(&h.recent(0, LOBBY, 2)), [4, 5]);
        assert!(h.recent(0, "#other", 10).is_empty());
    }

    #[test]
    fn zero_capacity_keeps_nothing_but_still_counts() {
        let mut h = History::new(0, 0);
        public(&mut h, "x");
        public(&mut h, "y");
        assert!(h.recent(0, LOBBY, 10).is_empty());
        assert_eq!(h.after(0, 0, LOBBY), CatchUp { events: vec![], unavailable: 2 });
    }

    #[test]
    fn private_messages_are_seen_again_only_by_their_two_sessions() {
        let mut h = History::new(10, 0);
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
    fn after_gives_exactly_the_later_events_and_counts_the_lost_ones() {
        let mut h = History::new(4, 0);
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
}
