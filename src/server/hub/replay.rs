//! The past sent again: the replay on entering a room, `/history`, `/search`, all
//! within the replay budget.

use super::{Hub, Member, Registry, encode_for};
use crate::protocol::{Event, EventKind};
use crate::server::history::{MAX_HISTORY_REQUEST, Stored, newest_that_fit};
use crate::server::search;

impl Hub {
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

    /// `/search`: sends member `id` what [`search::search`] finds for `query` in its
    /// room's kept history (and its own private messages): a heading, the matches as
    /// history (the newest [`search::MAX_SEARCH_RESULTS`]), and the end line. Returns
    /// how many matched in all.
    pub fn search(&self, id: u64, query: &str) -> usize {
        let reg = self.lock();
        let Some(m) = reg.members.get(&id) else { return 0 };
        let found = search::search(reg.history.recent(m.session, &m.room, usize::MAX), query);
        let info = |message: String| {
            let event = Event::now(EventKind::Info { message });
            m.outbox.push(encode_for(&event, m.json, &m.nick).as_bytes());
        };
        info(search::heading(query, &reg.room_name(&m.room), &found));
        if found.total > 0 {
            reg.send_again(m, &found.shown);
            info(search::END_OF_RESULTS.into());
        }
        found.total
    }

    /// Member `id` wants at most `n` lines replayed on entering a room (its hello's
    /// `replay=N`; `None`: the server's `--replay`), never more than the server's.
    pub fn limit_replay(&self, id: u64, n: Option<usize>) {
        if let Some(m) = self.lock().members.get_mut(&id) {
            // Saturated: it only ever lowers the server's `--replay`.
            m.replay = n.map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        }
    }
}

impl Registry {
    /// Sends member `id` the last `n` public events of its room again: of those, the
    /// ones it has not been shown (after the id it left the room at, if it was here
    /// before), and not the setting of the topic it has (the `room` event before the
    /// replay shows the topic). `n` is the server's `--replay`, lowered by the member's
    /// own limit ([`Hub::limit_replay`]).
    pub(super) fn replay(&self, id: u64, n: usize) {
        let m = &self.members[&id];
        let n = m.replay.map_or(n, |limit| n.min(limit as usize));
        if n == 0 {
            return;
        }
        let shown = m.shown_until.as_ref().and_then(|s| s.get(&m.room)).copied().unwrap_or(0);
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
        let (frames, left_out) = self.replay_lines(m, events);
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
    pub(super) fn replay_lines(&self, m: &Member, events: &[&Stored]) -> (Vec<String>, usize) {
        let newest_first = events.iter().rev().map(|stored| {
            let mut event = stored.event.clone();
            event.history = true;
            encode_for(&event, m.json, &m.nick)
        });
        let frames = newest_that_fit(newest_first, self.replay_budget);
        let left_out = events.len() - frames.len();
        (frames, left_out)
    }
}
