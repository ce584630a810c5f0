//! The room table: which rooms exist, their topics, and who is in each.
//!
//! Owned by the hub's `Registry` and used only under its lock, so membership and the
//! nick table never disagree. Each room keeps its own member set so that an event for a
//! room costs one delivery per member of that room, not a scan of the whole server.

use std::collections::HashMap;

use rustc_hash::FxHashSet;

use crate::protocol::RoomInfo;
use crate::room::{self, RoomNameError};

/// One room.
pub struct Room {
    /// The name as first given (`#Dev`), shown to everyone; the table's key folds it.
    pub name: String,
    /// Empty: no topic. Lives and dies with the room.
    pub topic: String,
    /// Member ids of registered members in this room, walked for every line said here:
    /// hashed with Fx, as the hub's members are (see `Registry::members`).
    pub members: FxHashSet<u64>,
}

/// Why a member could not move to a room.
#[derive(Debug)]
pub enum JoinRefusal {
    BadName(RoomNameError),
    /// `--max-rooms`, the default room included, would be exceeded.
    TooMany(usize),
    /// The member is in that room already; holds its name.
    AlreadyThere(String),
    /// Another room has a name that looks the same ([`room::skeleton`]); holds it.
    LooksLike(String),
    /// The member's address created its share of rooms lately; one more is due in this
    /// long (see `room_budget`).
    TooFast(std::time::Duration),
}

impl JoinRefusal {
    /// The error text for the user.
    pub fn describe(&self) -> String {
        match self {
            JoinRefusal::BadName(e) => format!("invalid room name: {e}"),
            JoinRefusal::TooMany(max) => {
                format!("too many rooms (limit {max}); join one of those in /rooms")
            }
            JoinRefusal::AlreadyThere(name) => format!("you are already in {name}"),
            JoinRefusal::LooksLike(name) => {
                format!("that room name looks like {name}; join {name} or pick another name")
            }
            JoinRefusal::TooFast(wait) => {
                let minutes = wait.as_secs().div_ceil(60);
                format!(
                    "your address has made {} rooms lately; you may make another in {minutes} \
                     min (join one of those in /rooms meanwhile)",
                    crate::server::room_budget::ROOMS_AT_ONCE
                )
            }
        }
    }

    /// Stable code for the structured protocol's error event.
    pub fn code(&self) -> &'static str {
        match self {
            JoinRefusal::BadName(_) | JoinRefusal::LooksLike(_) => "bad_room",
            JoinRefusal::TooMany(_) => "too_many_rooms",
            JoinRefusal::AlreadyThere(_) => "already_there",
            JoinRefusal::TooFast(_) => "throttled",
        }
    }
}

pub struct Rooms {
    /// Folded name ([`room::key`]) -> room.
    table: HashMap<String, Room>,
    /// [`room::skeleton`] -> key: no room may look like another.
    looks: HashMap<String, String>,
    /// Key of the room everyone starts in; it exists even when empty.
    default_key: String,
    /// `--max-rooms`, the default room included.
    max: usize,
}

impl Rooms {
    /// A table holding the default room `default_name` (already validated).
    pub fn new(default_name: &str, max: usize) -> Rooms {
        let default_key = room::key(default_name);
        let mut table = HashMap::new();
        table.insert(default_key.clone(), Room::named(default_name));
        let looks = HashMap::from([(room::skeleton(default_name), default_key.clone())]);
        Rooms { table, looks, default_key, max: max.max(1) }
    }

    pub fn default_key(&self) -> &str {
        &self.default_key
    }

    /// The keys of the open rooms.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.table.keys()
    }

    pub fn get(&self, key: &str) -> Option<&Room> {
        self.table.get(key)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Room> {
        self.table.get_mut(key)
    }

    /// The key of room `name` for a member now in room `current`, creating the room if
    /// it does not exist. Returns the key and whether the room was created.
    pub fn open(&mut self, name: &str, current: &str) -> Result<(String, bool), JoinRefusal> {
        let name = room::validate(name).map_err(JoinRefusal::BadName)?;
        let key = room::key(&name);
        if key == current {
            return Err(JoinRefusal::AlreadyThere(self.table[current].name.clone()));
        }
        if self.table.contains_key(&key) {
            return Ok((key, false));
        }
        let skeleton = room::skeleton(&name);
        if let Some(other) = self.looks.get(&skeleton).and_then(|k| self.table.get(k)) {
            return Err(JoinRefusal::LooksLike(other.name.clone()));
        }
        if self.table.len() >= self.max {
            return Err(JoinRefusal::TooMany(self.max));
        }
        self.table.insert(key.clone(), Room::named(&name));
        self.looks.insert(skeleton, key.clone());
        Ok((key, true))
    }

    /// Removes room `key`, just opened by [`Rooms::open`] and not entered: its creation
    /// was refused after all.
    pub fn discard(&mut self, key: &str) {
        if key == self.default_key {
            return;
        }
        if let Some(room) = self.table.remove(key) {
            self.looks.remove(&room::skeleton(&room.name));
        }
    }

    /// Puts member `id` in room `key` (which exists).
    pub fn enter(&mut self, key: &str, id: u64) {
        if let Some(room) = self.table.get_mut(key) {
            room.members.insert(id);
        }
    }

    /// Takes member `id` out of room `key`. A room other than the default goes away
    /// with its last member, topic and all; returns true if it did.
    pub fn leave(&mut self, key: &str, id: u64) -> bool {
        let Some(room) = self.table.get_mut(key) else { return false };
        room.members.remove(&id);
        if room.members.is_empty() && key != self.default_key {
            let name = room.name.clone();
            self.table.remove(key);
            self.looks.remove(&room::skeleton(&name));
            return true;
        }
        false
    }

    /// Every room with its head count and topic, sorted by name (case-insensitively).
    pub fn list(&self) -> Vec<RoomInfo> {
        let mut keyed: Vec<(&String, &Room)> = self.table.iter().collect();
        keyed.sort_by_key(|(key, _)| *key);
        keyed
            .into_iter()
            .map(|(_, r)| RoomInfo {
                room: r.name.clone(),
                here: r.members.len(),
                topic: r.topic.clone(),
            })
            .collect()
    }
}

impl Room {
    fn named(name: &str) -> Room {
        Room { name: name.to_owned(), topic: String::new(), members: FxHashSet::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_are_created_once_and_vanish_with_their_last_member() {
        let mut rooms = Rooms::new("#lobby", 3);
        let lobby = rooms.default_key().to_owned();
        rooms.enter(&lobby, 1);
        let (dev, created) = rooms.open("#Dev", &lobby).unwrap();
        assert!(created);
        rooms.enter(&dev, 1);
        assert_eq!(rooms.open("#dev", &lobby).unwrap(), (dev.clone(), false));
        assert!(
            matches!(rooms.open("#DEV", &dev), Err(JoinRefusal::AlreadyThere(n)) if n == "#Dev")
        );
        assert_eq!(rooms.list()[0].room, "#Dev");
        assert!(rooms.leave(&dev, 1));
        assert!(rooms.get(&dev).is_none());
        assert!(!rooms.leave(&lobby, 1), "the default room stays");
        assert!(rooms.get(&lobby).is_some());
    }

    #[test]
    fn the_limit_counts_the_default_room() {
        let mut rooms = Rooms::new("#lobby", 2);
        let lobby = rooms.default_key().to_owned();
        let (a, _) = rooms.open("#a", &lobby).unwrap();
        rooms.enter(&a, 1);
        let refused = rooms.open("#b", &lobby).unwrap_err();
        assert_eq!(refused.code(), "too_many_rooms");
        assert!(refused.describe().contains("limit 2"));
        assert!(matches!(rooms.open("b", &lobby), Err(JoinRefusal::BadName(_))));
    }

    #[test]
    fn a_room_that_looks_like_another_is_refused() {
        let mut rooms = Rooms::new("#lobby", 10);
        let lobby = rooms.default_key().to_owned();
        let (dev, _) = rooms.open("#dev", &lobby).unwrap();
        rooms.enter(&dev, 1);
        // All Cyrillic (one script), and the same skeleton as the Latin #coco.
        let (coco, _) = rooms.open("#coco", &lobby).unwrap();
        rooms.enter(&coco, 2);
        let refused = rooms.open("#\u{0441}\u{043e}\u{0441}\u{043e}", &lobby).unwrap_err();
        assert!(refused.describe().contains("looks like #coco"), "{}", refused.describe());
        assert!(matches!(rooms.open("#l\u{043e}bby", &lobby), Err(JoinRefusal::BadName(_))));
        rooms.leave(&coco, 2);
        let cyrillic = "#\u{0441}\u{043e}\u{0441}\u{043e}";
        assert!(rooms.open(cyrillic, &lobby).is_ok(), "free again once #coco is gone");
    }
}
