//! The room commands of one session: `/list`, `/join`, `/part`, `/rooms`, `/topic`.

use std::sync::Arc;

use serde_json::json;

use super::Session;
use crate::protocol::{EventKind, Request};
use crate::server::journal::Kind;

/// Lines' worth of flood control a room creation costs on top of its own line: with the
/// default `--rate 5 --burst 20`, four rooms in a row, then one a second (the lines
/// after are held, as fakelag holds any line over the rate). Rooms are server state that
/// outlives the line, so making them is dearer than talking. Charged before the next
/// line is looked at, so the creations in one packet are paid one by one.
const ROOM_CREATION_COST: u16 = 4;

impl Session {
    pub(super) fn handle_room(&mut self, request: Request<'_>) {
        let hub = Arc::clone(&self.hub);
        match request {
            Request::List { all } => {
                let command = if all { "/list all" } else { "/list" };
                hub.log.info("Command", json!({"nick": self.nick, "command": command}));
                self.send(if all { hub.list_all() } else { hub.list(self.id) });
            }
            // A new room's name is shown to others (`/rooms`, the part's "to"): a
            // muted user may go to rooms that exist, not name new ones.
            Request::Join(name) if !hub.has_room(name) && self.is_muted("/join of a new room") => {}
            Request::Join(name) => {
                let moved = hub.join_room(self.id, self.peer.ip(), name);
                self.after_move(moved, name);
            }
            Request::Part => {
                let moved = hub.part_room(self.id);
                self.after_move(moved, "");
            }
            Request::Rooms => {
                hub.log.info("Command", json!({"nick": self.nick, "command": "/rooms"}));
                self.send(EventKind::Rooms { rooms: hub.rooms() });
            }
            Request::Topic(None) => {
                hub.log.info("Command", json!({"nick": self.nick, "command": "/topic"}));
                hub.topic(self.id, None);
            }
            Request::Topic(Some(_)) if self.is_muted("/topic TEXT") => {}
            Request::Topic(Some(text)) => {
                let (room, id) = hub.topic(self.id, Some(text));
                let meta = json!({"nick": self.nick, "room": room, "topic": text, "id": id});
                hub.log.info("Topic set", Kind::Topic.tag(meta));
            }
            _ => {}
        }
    }

    /// Logs a move (or why it was refused, telling the client), follows it in
    /// `self.room`, and charges flood control for a room it created.
    fn after_move(
        &mut self,
        moved: Result<crate::server::hub::Moved, crate::server::rooms::JoinRefusal>,
        wanted: &str,
    ) {
        let moved = match moved {
            Ok(moved) => moved,
            Err(refusal) => {
                self.hub.log.warn(
                    "Room refused",
                    json!({"nick": self.nick, "room": wanted, "error": refusal.describe()}),
                );
                return self.error(refusal.code(), refusal.describe());
            }
        };
        if moved.created {
            self.flood_debt = self.flood_debt.saturating_add(ROOM_CREATION_COST);
            self.hub.log.info("Room created", json!({"nick": self.nick, "room": moved.to}));
        }
        // With the ids of its part and join, so ids continue past them after a restart
        // (see `journal`).
        let mut meta = json!({"nick": self.nick, "room": moved.to, "from": moved.from});
        if let Some(id) = moved.join_id {
            meta["id"] = id.into();
        }
        if let Some(id) = moved.part_id {
            meta["part_id"] = id.into();
        }
        self.hub.log.info("Room joined", Kind::Move.tag(meta));
        if moved.closed {
            self.hub.log.info("Room closed", json!({"room": moved.from}));
        }
        self.room = moved.to;
    }
}
