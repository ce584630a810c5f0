//! The conversation as the `--save` log holds it: which records are events with an id,
//! and reading the recent ones back on start so ids continue and history survives a
//! restart.
//!
//! A conversation event's record keeps the seed's schema (`{ts, level, msg, meta}`)
//! and adds to its `meta` the event's `id` and its kind in `kind` ([`Kind`]: `public`,
//! `topic`, …). History is rebuilt from those typed fields, parsed with serde
//! ([`Record`]), never from the wording of `msg`: a message reworded on the console
//! cannot silently empty history. Records written before `kind` existed are read by
//! their `msg`, as it was then (a frozen table in `Kind::of_legacy_msg`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::history::Reread;
use crate::event_log::tail::TailReader;
use crate::protocol::{Event, EventKind};

/// What a conversation record stands for: `meta.kind` in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A public line: `from`, `text`, `room`.
    Public,
    /// `/me`: `from`, `text`, `room`.
    Action,
    /// A rename: `old`, `new`, `room`.
    Nick,
    /// A join announced on registration: `new` or `nick`, `online`, `room`.
    Join,
    /// A leave: `nick`, `reason`, `online`, `room`.
    Leave,
    /// A topic set: `nick`, `topic`, `room`.
    Topic,
    /// A move between rooms: its join's `id` in `room`, its part's `part_id` in `from`.
    Move,
    /// A private message: `from`, `to` (never shown again after a restart).
    Private,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Public => "public",
            Kind::Action => "action",
            Kind::Nick => "nick",
            Kind::Join => "join",
            Kind::Leave => "leave",
            Kind::Topic => "topic",
            Kind::Move => "move",
            Kind::Private => "private",
        }
    }

    /// `meta` with this kind in its `kind` field: what every conversation record logs.
    pub fn tag(self, mut meta: Value) -> Value {
        meta["kind"] = self.as_str().into();
        meta
    }

    /// The kind of a record written before `meta.kind` existed, by its `msg` as it was
    /// then. Frozen: new records carry their kind, whatever their `msg` says.
    fn of_legacy_msg(msg: &str) -> Option<Kind> {
        Some(match msg {
            "Public message" => Kind::Public,
            "Action" => Kind::Action,
            "Nick changed" => Kind::Nick,
            "Nick set" | "Joined" => Kind::Join,
            "Disconnected" => Kind::Leave,
            "Topic set" => Kind::Topic,
            "Room joined" => Kind::Move,
            "Private message" => Kind::Private,
            _ => return None,
        })
    }
}

/// One line of the log as the journal reads it: the seed's `{ts, level, msg, meta}`,
/// with only the fields of conversation records typed (the rest is skipped).
#[derive(Debug, Deserialize)]
pub struct Record<'a> {
    #[serde(borrow)]
    pub ts: Cow<'a, str>,
    #[serde(borrow)]
    pub msg: Cow<'a, str>,
    #[serde(default)]
    pub meta: Option<Meta<'a>>,
}

/// The `meta` fields of conversation records.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Meta<'a> {
    pub kind: Option<Kind>,
    pub id: Option<u64>,
    pub part_id: Option<u64>,
    #[serde(borrow)]
    pub room: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub from: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub old: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub new: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub nick: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub reason: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub topic: Option<Cow<'a, str>>,
    pub online: Option<u64>,
    pub here: Option<u64>,
}

impl Record<'_> {
    /// The record's kind, if it is a conversation event: its `meta.kind`, or for an
    /// older record its `msg`.
    pub fn kind(&self) -> Option<Kind> {
        let meta = self.meta.as_ref()?;
        meta.kind.or_else(|| Kind::of_legacy_msg(&self.msg))
    }
}

/// Parses one log line when it may be a conversation record (it has an `"id"` or a
/// `"part_id"`: others are skipped unparsed, most of a busy log); `None` otherwise, or
/// for a line that is not a record (cut by a crash).
fn parse(line: &[u8]) -> Option<Record<'_>> {
    memchr::memmem::find(line, b"id\":")?;
    serde_json::from_slice(line).ok()
}

/// Most bytes read from the end of the log looking for ids and history. A log whose
/// last records with an id lie further back than this (a server that ran long without
/// any conversation) starts its ids after the last one found, or at 1.
pub const SCAN_LIMIT: u64 = 64 * 1024 * 1024;

/// What the log's tail gave back.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The last id logged (0 if none was found).
    pub last_id: u64,
    /// Every id above this one was read back (0: the whole log was): what
    /// `History::restore` may count exactly.
    pub floor: u64,
    /// The conversation records read back, in id order: the events of up to
    /// `capacity` per room (of the `max_rooms` rooms active last), the ids of the rest.
    pub records: Vec<Reread>,
    /// Bytes read from the file.
    pub bytes_read: u64,
}

/// Reads the log at `path` back from its end, for the last id and the history of each
/// room: up to `capacity` events for each of the first `max_rooms` rooms met (those
/// active last), and the ids of every other conversation record read, so a resume can
/// be told how many of its events are gone.
///
/// It reads until the start of the file or [`SCAN_LIMIT`] bytes, and stops earlier once
/// it has an id and enough: `max_rooms` rooms with `capacity` events each (nothing more
/// could be kept), or every room met with `capacity` events after at least
/// `capacity × max_rooms` conversation records (a room still unmet by then was quieter
/// than that). A missing file is an empty log. Lines that are not records (a line cut
/// by a crash) are skipped. A record without a `room` (logged before rooms) belongs to
/// `default_room`.
pub fn load(
    path: &Path,
    capacity: usize,
    max_rooms: usize,
    default_room: &str,
) -> io::Result<Loaded> {
    load_within(path, (capacity, max_rooms), default_room, SCAN_LIMIT)
}

/// [`load`] reading at most about `limit` bytes (whole blocks of
/// [`crate::event_log::tail::BLOCK`], so up to one block more).
fn load_within(
    path: &Path,
    (capacity, max_rooms): (usize, usize),
    default_room: &str,
    limit: u64,
) -> io::Result<Loaded> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::default()),
        Err(e) => return Err(e),
    };
    let mut tail = TailReader::new(file)?;
    let mut reading = Reading::new(capacity, max_rooms, default_room);
    let mut whole_file = false;
    while !reading.enough() && tail.bytes_read() <= limit {
        let Some(line) = tail.prev_line()? else {
            whole_file = true;
            break;
        };
        if let Some(record) = parse(&line) {
            reading.add(&record);
        }
    }
    let mut records = reading.records;
    // The log is written by one thread in the order events were logged, which can
    // differ slightly from id order (connection tasks log after delivering).
    records.sort_by_key(|r| r.id);
    records.dedup_by_key(|r| r.id);
    let floor = if whole_file { 0 } else { reading.lowest.min(reading.last_id) };
    let bytes_read = tail.bytes_read();
    Ok(Loaded { last_id: reading.last_id, floor, records, bytes_read })
}

/// What [`load`] has read so far, newest first.
struct Reading<'a> {
    capacity: usize,
    max_rooms: usize,
    default_room: &'a str,
    /// Room name as logged -> its key, worked out once per name.
    keys: HashMap<String, Arc<str>>,
    /// Room key -> events kept for it so far; at most `max_rooms` rooms.
    kept: HashMap<Arc<str>, usize>,
    /// Rooms in `kept` with `capacity` events.
    full: usize,
    records: Vec<Reread>,
    last_id: u64,
    /// The lowest id read (`u64::MAX`: none yet).
    lowest: u64,
}

impl<'a> Reading<'a> {
    fn new(capacity: usize, max_rooms: usize, default_room: &'a str) -> Reading<'a> {
        Reading {
            capacity,
            max_rooms: max_rooms.max(1),
            default_room,
            keys: HashMap::new(),
            kept: HashMap::new(),
            full: 0,
            records: Vec::new(),
            last_id: 0,
            lowest: u64::MAX,
        }
    }

    /// Whether reading further back can change nothing that matters (see [`load`]).
    fn enough(&self) -> bool {
        if self.last_id == 0 {
            return false;
        }
        let every_room_full = self.full == self.kept.len();
        self.full >= self.max_rooms
            || (every_room_full && self.records.len() >= self.capacity * self.max_rooms)
    }

    /// Takes in one record of the log: nothing unless it is a conversation event.
    fn add(&mut self, record: &Record<'_>) {
        let Some(meta) = &record.meta else { return };
        let (id, part_id) = (meta.id, meta.part_id);
        // A move between rooms logs its part in the room left as `part_id`.
        for seen in id.into_iter().chain(part_id) {
            self.last_id = self.last_id.max(seen);
            self.lowest = self.lowest.min(seen);
        }
        if self.capacity == 0 {
            return;
        }
        let room_of =
            |field: &Option<Cow<'_, str>>| field.as_deref().unwrap_or(self.default_room).to_owned();
        match record.kind() {
            Some(Kind::Private) => {
                if let Some(id) = id {
                    self.records.push(Reread { id, room: None, event: None });
                }
            }
            // Not shown again (the log keeps the ids of a move, not all it said), but
            // counted: the join in the room entered, the part in the room left.
            Some(Kind::Move) => {
                if let Some(id) = id {
                    let room = Some(self.key(room_of(&meta.room)));
                    self.records.push(Reread { id, room, event: None });
                }
                if let Some(id) = part_id {
                    let room = Some(self.key(room_of(&meta.from)));
                    self.records.push(Reread { id, room, event: None });
                }
            }
            _ => {
                let Some(id) = id else { return };
                let key = self.key(room_of(&meta.room));
                let event = self.keeps(&key).then(|| event_of(record)).flatten();
                if event.is_some() {
                    self.count(&key);
                }
                self.records.push(Reread { id, room: Some(key), event });
            }
        }
    }

    /// Room `name`'s key, shared by all its records.
    fn key(&mut self, name: String) -> Arc<str> {
        if let Some(key) = self.keys.get(&name) {
            return Arc::clone(key);
        }
        let key: Arc<str> = crate::room::key(&name).into();
        self.keys.insert(name, Arc::clone(&key));
        key
    }

    /// Whether one more event of room `key` is to be kept.
    fn keeps(&self, key: &Arc<str>) -> bool {
        match self.kept.get(key) {
            Some(&n) => n < self.capacity,
            None => self.capacity > 0 && self.kept.len() < self.max_rooms,
        }
    }

    fn count(&mut self, key: &Arc<str>) {
        let n = self.kept.entry(Arc::clone(key)).or_default();
        *n += 1;
        if *n == self.capacity {
            self.full += 1;
        }
    }
}

/// The room event a log record stands for, with its id and time. Private messages give
/// `None`: nobody can prove after a restart that they were one of its two parties.
pub fn event_of(record: &Record<'_>) -> Option<Event> {
    let meta = record.meta.as_ref()?;
    let id = meta.id?;
    let ts = record.ts.parse().ok()?;
    let s = |field: &Option<Cow<'_, str>>| field.as_deref().map(str::to_owned);
    let online = meta.online.unwrap_or(0) as usize;
    let here = meta.here.unwrap_or(0) as usize;
    let room = s(&meta.room).unwrap_or_default();
    let kind = match record.kind()? {
        Kind::Public => EventKind::Public { from: s(&meta.from)?, text: s(&meta.text)?, room },
        Kind::Action => EventKind::Action { from: s(&meta.from)?, text: s(&meta.text)?, room },
        Kind::Nick => EventKind::Nick { old: s(&meta.old)?, new: s(&meta.new)?, room },
        Kind::Join => {
            let nick = s(&meta.nick).or_else(|| s(&meta.new))?;
            EventKind::Join { nick, online, room, here, from_room: None }
        }
        Kind::Leave => {
            let (nick, reason) = (s(&meta.nick)?, s(&meta.reason)?);
            EventKind::Leave { nick, reason, online, room, here }
        }
        Kind::Topic => EventKind::Topic { room, topic: s(&meta.topic)?, by: s(&meta.nick) },
        // Moves between rooms are not replayed after a restart: the log keeps their
        // ids, not all they said. Private messages are nobody's to see again.
        Kind::Move | Kind::Private => return None,
    };
    Some(Event { id: Some(id), ts, history: false, kind })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("tchat-journal-{}-{name}", std::process::id()))
    }

    fn record(msg: &str, meta: Value) -> String {
        let v = serde_json::json!({"ts": "2026-11-25T19:07:30Z", "level": "INFO", "msg": msg, "meta": meta});
        format!("{v}\n")
    }

    #[test]
    fn records_turn_back_into_the_events_sent() {
        let lines: Vec<String> = vec![
            record("Public message", serde_json::json!({"from": "a", "text": "hi", "id": 3})),
            record(
                "Disconnected",
                serde_json::json!({"nick": "a", "reason": "quit", "online": 2, "id": 4}),
            ),
            record(
                "Private message",
                serde_json::json!({"from": "a", "to": "b", "text": "psst", "id": 5}),
            ),
            record("Public message", serde_json::json!({"from": "a", "text": "x"})),
        ];
        let rec = |i: usize| serde_json::from_str::<Record<'_>>(&lines[i]).unwrap();
        let e = event_of(&rec(0));
        let e = e.unwrap();
        assert_eq!(e.id, Some(3));
        assert_eq!(
            e.kind,
            EventKind::Public { from: "a".into(), text: "hi".into(), room: String::new() }
        );
        assert!(matches!(event_of(&rec(1)).unwrap().kind, EventKind::Leave { online: 2, .. }));
        assert!(event_of(&rec(2)).is_none());
        assert!(event_of(&rec(3)).is_none());
    }

    /// History follows `meta.kind`, not `msg`: a record whose message was reworded
    /// (or translated) still comes back, with escapes in its text undone.
    #[test]
    fn the_kind_comes_from_the_typed_field_not_the_message_text() {
        let meta = Kind::Public.tag(
            serde_json::json!({"from": "a", "text": "line\u{2028}\"q\"", "id": 7, "room": "#x"}),
        );
        let line = record("Un message public", meta);
        let rec: Record<'_> = serde_json::from_str(&line).unwrap();
        assert_eq!(rec.kind(), Some(Kind::Public));
        let e = event_of(&rec).unwrap();
        assert_eq!(
            e.kind,
            EventKind::Public {
                from: "a".into(),
                text: "line\u{2028}\"q\"".into(),
                room: "#x".into()
            }
        );
        let topic = record(
            "Topic changed",
            Kind::Topic.tag(serde_json::json!({"nick": "b", "topic": "t", "id": 8})),
        );
        let rec: Record<'_> = serde_json::from_str(&topic).unwrap();
        assert!(matches!(event_of(&rec).unwrap().kind, EventKind::Topic { by: Some(_), .. }));
        // A record that is not a conversation event has no kind, whatever its msg.
        let listening = record("Listening", serde_json::json!({"addr": "x"}));
        let other: Record<'_> = serde_json::from_str(&listening).unwrap();
        assert_eq!(other.kind(), None);
        assert!(parse(record("Listening", Value::Null).as_bytes()).is_none());
    }

    #[test]
    fn a_large_log_is_read_from_its_tail_only() {
        let path = temp("large.jsonl");
        let mut f = std::io::BufWriter::new(File::create(&path).unwrap());
        let filler =
            record("Connection", serde_json::json!({"peer": "127.0.0.1:1", "nick": "guest1"}));
        for i in 1..=200_000u64 {
            let meta = serde_json::json!({"from": "a", "text": format!("line {i}"), "id": i});
            f.write_all(record("Public message", meta).as_bytes()).unwrap();
            f.write_all(filler.as_bytes()).unwrap();
        }
        f.write_all(b"{\"cut\":").unwrap();
        drop(f);
        let size = std::fs::metadata(&path).unwrap().len();
        // One room: its 50 events, then 50 × 10 conversation records in all.
        let loaded = load(&path, 50, 10, "#lobby").unwrap();
        assert_eq!(loaded.last_id, 200_000);
        let ids: Vec<u64> =
            loaded.records.iter().filter(|r| r.event.is_some()).map(|r| r.id).collect();
        assert_eq!(ids, (199_951..=200_000).collect::<Vec<_>>());
        assert_eq!(loaded.records.len(), 500);
        assert_eq!(loaded.floor, 199_501);
        assert!(size > 30_000_000, "{size}");
        assert!(
            loaded.bytes_read <= 2 * crate::event_log::tail::BLOCK as u64,
            "{}",
            loaded.bytes_read
        );
        std::fs::remove_file(&path).unwrap();
    }

    /// A log of mostly other records (connections) is read no further back than the
    /// limit, however large: the start stays bounded. Ids found within it continue.
    #[test]
    fn the_start_reads_at_most_the_limit_of_a_log_without_conversation() {
        let path = temp("bounded.jsonl");
        let mut f = std::io::BufWriter::new(File::create(&path).unwrap());
        let meta = Kind::Public.tag(serde_json::json!({"from": "a", "text": "old", "id": 41}));
        f.write_all(record("Public message", meta).as_bytes()).unwrap();
        let filler =
            record("Connection", serde_json::json!({"peer": "127.0.0.1:1", "nick": "guest1"}));
        for _ in 0..40_000 {
            f.write_all(filler.as_bytes()).unwrap();
        }
        drop(f);
        let size = std::fs::metadata(&path).unwrap().len();
        let limit = 1024 * 1024;
        assert!(size > 3 * limit, "{size}");
        let block = crate::event_log::tail::BLOCK as u64;
        let loaded = load_within(&path, (10, 10), "#lobby", limit).unwrap();
        assert!(loaded.bytes_read <= limit + block, "{}", loaded.bytes_read);
        assert_eq!((loaded.last_id, loaded.records.len()), (0, 0));
        // Within the limit, the id is found.
        let loaded = load_within(&path, (10, 10), "#lobby", size).unwrap();
        assert_eq!(loaded.last_id, 41);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn no_history_still_finds_the_last_id_and_no_file_is_empty() {
        let path = temp("zero.jsonl");
        let meta = serde_json::json!({"from": "a", "text": "x", "id": 9});
        std::fs::write(&path, record("Public message", meta) + &record("Listening", Value::Null))
            .unwrap();
        let loaded = load(&path, 0, 10, "#lobby").unwrap();
        assert_eq!((loaded.last_id, loaded.records.len()), (9, 0));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(load(&path, 10, 10, "#lobby").unwrap().last_id, 0);
    }

    /// `n` public lines in `room` with ids from `first`, as the log holds them.
    fn lines(room: &str, first: u64, n: u64) -> String {
        (first..first + n)
            .map(|id| {
                let meta = serde_json::json!({"from": "a", "text": format!("{room} {id}"), "id": id, "room": room});
                record("Public message", meta)
            })
            .collect()
    }

    fn kept_ids(loaded: &Loaded, room: &str) -> Vec<u64> {
        let room = crate::room::key(room);
        loaded
            .records
            .iter()
            .filter(|r| r.event.is_some() && r.room.as_deref() == Some(room.as_str()))
            .map(|r| r.id)
            .collect()
    }

    #[test]
    fn each_room_gets_its_own_events_back_however_busy_the_others() {
        let path = temp("rooms.jsonl");
        // #b says two lines, then #a floods; then a move, and a private message.
        let mut log = lines("#b", 1, 2) + &lines("#a", 3, 100);
        let moved =
            serde_json::json!({"nick": "a", "room": "#b", "from": "#a", "id": 104, "part_id": 103});
        log += &record("Room joined", moved);
        let private = serde_json::json!({"from": "a", "to": "b", "text": "psst", "id": 105});
        log += &record("Private message", private);
        std::fs::write(&path, log).unwrap();
        let loaded = load(&path, 5, 30, "#lobby").unwrap();
        assert_eq!(loaded.last_id, 105);
        assert_eq!(kept_ids(&loaded, "#b"), [1, 2]);
        assert_eq!(kept_ids(&loaded, "#a"), [98, 99, 100, 101, 102]);
        // #b was never full: read to the start, so every id is accounted for.
        assert_eq!(loaded.floor, 0);
        assert_eq!(loaded.records.len(), 105);
        let unshown = |id: u64| loaded.records.iter().find(|r| r.id == id).unwrap();
        assert_eq!(unshown(103).room.as_deref(), Some("#a"));
        assert_eq!(unshown(104).room.as_deref(), Some("#b"));
        assert!(unshown(105).room.is_none() && unshown(105).event.is_none());
        // With 10 rooms at most, 50 records with every room met full are enough: a room
        // quieter than that (#b) is not looked for further back.
        let loaded = load(&path, 5, 10, "#lobby").unwrap();
        assert_eq!(kept_ids(&loaded, "#a"), [98, 99, 100, 101, 102]);
        assert_eq!((loaded.records.len(), loaded.floor), (50, 56));
        // With two rooms at most, and both full, it stops there.
        let both_full = lines("#b", 1, 5) + &lines("#a", 6, 100) + &lines("#b", 106, 5);
        std::fs::write(&path, both_full).unwrap();
        let loaded = load(&path, 5, 2, "#lobby").unwrap();
        assert_eq!(kept_ids(&loaded, "#b"), [1, 2, 3, 4, 5, 106, 107, 108, 109, 110][5..]);
        assert_eq!(kept_ids(&loaded, "#a"), [101, 102, 103, 104, 105]);
        assert_eq!((loaded.records.len(), loaded.floor), (10, 101));
        std::fs::remove_file(&path).unwrap();
    }
}
