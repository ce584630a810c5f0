//! The conversation as the `--save` log holds it: which records are events with an id,
//! and reading the recent ones back on start so ids continue and history survives a
//! restart.
//!
//! The log keeps its own record names and fields (`Public message` with `from`, `text`,
//! …); a conversation event's record adds `meta.id`. [`event_of`] turns such a record
//! back into the event that was sent.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::history::Reread;
use crate::event_log::tail::TailReader;
use crate::protocol::{Event, EventKind};

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
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::default()),
        Err(e) => return Err(e),
    };
    let mut tail = TailReader::new(file)?;
    let mut reading = Reading::new(capacity, max_rooms, default_room);
    let mut whole_file = false;
    while !reading.enough() && tail.bytes_read() <= SCAN_LIMIT {
        let Some(line) = tail.prev_line()? else {
            whole_file = true;
            break;
        };
        if let Ok(record) = serde_json::from_slice::<Value>(&line) {
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
    fn add(&mut self, record: &Value) {
        let meta = &record["meta"];
        let id = meta["id"].as_u64();
        // A move between rooms logs its part in the room left as `part_id`.
        let part_id = meta["part_id"].as_u64();
        for seen in id.into_iter().chain(part_id) {
            self.last_id = self.last_id.max(seen);
            self.lowest = self.lowest.min(seen);
        }
        if self.capacity == 0 {
            return;
        }
        let room_of = |field: &str| meta[field].as_str().unwrap_or(self.default_room).to_owned();
        match record["msg"].as_str() {
            Some("Private message") => {
                if let Some(id) = id {
                    self.records.push(Reread { id, room: None, event: None });
                }
            }
            // Not shown again (the log keeps the ids of a move, not all it said), but
            // counted: the join in the room entered, the part in the room left.
            Some("Room joined") => {
                if let Some(id) = id {
                    let room = Some(self.key(room_of("room")));
                    self.records.push(Reread { id, room, event: None });
                }
                if let Some(id) = part_id {
                    let room = Some(self.key(room_of("from")));
                    self.records.push(Reread { id, room, event: None });
                }
            }
            _ => {
                let Some(id) = id else { return };
                let key = self.key(room_of("room"));
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
pub fn event_of(record: &Value) -> Option<Event> {
    let meta = &record["meta"];
    let id = meta["id"].as_u64()?;
    let ts = record["ts"].as_str()?.parse().ok()?;
    let s = |key: &str| meta[key].as_str().map(str::to_owned);
    let online = meta["online"].as_u64().unwrap_or(0) as usize;
    let here = meta["here"].as_u64().unwrap_or(0) as usize;
    let room = s("room").unwrap_or_default();
    let kind = match record["msg"].as_str()? {
        "Public message" => EventKind::Public { from: s("from")?, text: s("text")?, room },
        "Action" => EventKind::Action { from: s("from")?, text: s("text")?, room },
        "Nick changed" => EventKind::Nick { old: s("old")?, new: s("new")?, room },
        "Nick set" => EventKind::Join { nick: s("new")?, online, room, here, from_room: None },
        "Joined" => EventKind::Join { nick: s("nick")?, online, room, here, from_room: None },
        "Disconnected" => {
            EventKind::Leave { nick: s("nick")?, reason: s("reason")?, online, room, here }
        }
        "Topic set" => EventKind::Topic { room, topic: s("topic")?, by: s("nick") },
        // Moves between rooms ("Room joined") are not replayed after a restart: the log
        // keeps their ids, not all they said.
        _ => return None,
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
        let rec = |msg, meta| serde_json::from_str::<Value>(&record(msg, meta)).unwrap();
        let e = event_of(&rec(
            "Public message",
            serde_json::json!({"from": "a", "text": "hi", "id": 3}),
        ));
        let e = e.unwrap();
        assert_eq!(e.id, Some(3));
        assert_eq!(
            e.kind,
            EventKind::Public { from: "a".into(), text: "hi".into(), room: String::new() }
        );
        let leave = serde_json::json!({"nick": "a", "reason": "quit", "online": 2, "id": 4});
        assert!(matches!(
            event_of(&rec("Disconnected", leave)).unwrap().kind,
            EventKind::Leave { online: 2, .. }
        ));
        let private = serde_json::json!({"from": "a", "to": "b", "text": "psst", "id": 5});
        assert!(event_of(&rec("Private message", private)).is_none());
        assert!(
            event_of(&rec("Public message", serde_json::json!({"from": "a", "text": "x"})))
                .is_none()
        );
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
