//! The conversation as the `--save` log holds it: which records are events with an id,
//! and reading the recent ones back on start so ids continue and history survives a
//! restart.
//!
//! The log keeps its own record names and fields (`Public message` with `from`, `text`,
//! …); a conversation event's record adds `meta.id`. [`event_of`] turns such a record
//! back into the event that was sent.

use std::fs::File;
use std::io;
use std::path::Path;

use serde_json::Value;

use super::history::{Scope, Stored};
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
    /// Up to the history capacity of the latest room events, oldest first.
    pub events: Vec<Stored>,
    /// Bytes read from the file.
    pub bytes_read: u64,
}

/// Reads the newest records of the log at `path` until it has `capacity` room events
/// and the last id (or reaches the start, or [`SCAN_LIMIT`]). A missing file is an empty
/// log. Lines that are not records (a line cut by a crash) are skipped. A record without
/// a `room` (logged before rooms) belongs to `default_room`.
pub fn load(path: &Path, capacity: usize, default_room: &str) -> io::Result<Loaded> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::default()),
        Err(e) => return Err(e),
    };
    let mut tail = TailReader::new(file)?;
    let mut loaded = Loaded::default();
    while loaded.last_id == 0 || loaded.events.len() < capacity {
        if tail.bytes_read() > SCAN_LIMIT {
            break;
        }
        let Some(line) = tail.prev_line()? else { break };
        let Ok(record) = serde_json::from_slice::<Value>(&line) else { continue };
        let Some(id) = record["meta"]["id"].as_u64() else { continue };
        // A move between rooms logs its part in the room left as `part_id`.
        let part_id = record["meta"]["part_id"].as_u64().unwrap_or(0);
        loaded.last_id = loaded.last_id.max(id).max(part_id);
        if loaded.events.len() < capacity
            && let Some(event) = event_of(&record)
        {
            let room = record["meta"]["room"].as_str().unwrap_or(default_room);
            let scope = Scope::Room(crate::room::key(room).into());
            loaded.events.push(Stored { event, scope });
        }
    }
    loaded.bytes_read = tail.bytes_read();
    // The log is written by one thread in the order events were logged, which can
    // differ slightly from id order (connection tasks log after delivering).
    loaded.events.sort_by_key(|s| s.id());
    loaded.events.dedup_by_key(|s| s.id());
    Ok(loaded)
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
        let loaded = load(&path, 50, "#lobby").unwrap();
        assert_eq!(loaded.last_id, 200_000);
        let ids: Vec<u64> = loaded.events.iter().map(|s| s.id()).collect();
        assert_eq!(ids, (199_951..=200_000).collect::<Vec<_>>());
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
        let loaded = load(&path, 0, "#lobby").unwrap();
        assert_eq!((loaded.last_id, loaded.events.len()), (9, 0));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(load(&path, 10, "#lobby").unwrap().last_id, 0);
    }
}
