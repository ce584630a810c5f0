//! A line from the client: checked, parsed, the hello and a first `/nick` taken as
//! registration, and the chat commands acted on; rooms, accounts and the profile
//! commands have modules of their own.

use std::sync::Arc;

use serde_json::json;

use super::{Closing, Phase, Session, claiming};
use crate::auth;
use crate::framing::Line;
use crate::protocol::{Event, EventKind, Request, help_entries_for};
use crate::sanitize::{line_separator_in, needs_sanitizing, sanitize};
use crate::server::history::MAX_HISTORY_REQUEST;
use crate::server::hub::{Across, NickChange, Skip};
use crate::server::intake::Taken;
use crate::server::journal::Kind;

impl Session {
    /// Handles one line; says whether the session takes more (not once it is closing)
    /// and what the line cost beyond itself.
    pub(super) fn on_line(&mut self, line: Line<'_>) -> Taken {
        self.handle_line(line);
        let extra = u32::from(std::mem::take(&mut self.flood_debt));
        Taken { open: !self.closing.is_set(), extra, waits: self.claim.is_some() }
    }

    /// A `/nick` or `/join` whose line holds a line separator is refused naming it:
    /// sanitizing would make it a space, or drop it at an end, and take a name the user
    /// did not type. (In text, a separator becomes a space.) Returns true if refused.
    fn refuse_separated_name(&mut self, text: &str) -> bool {
        let Some(c) = line_separator_in(text) else { return false };
        let word = text.split(|c: char| c.is_whitespace()).next().unwrap_or_default();
        let (code, what) = match crate::protocol::canonical(word).as_str() {
            "/nick" => ("bad_nick", "invalid nick: a nick"),
            "/join" => ("bad_room", "invalid room name: a room name"),
            _ => return false,
        };
        if self.register_if_needed(text) {
            return true;
        }
        let error = format!("{what} cannot contain a line separator (U+{:04X})", c as u32);
        self.hub.log.warn("Bad command", json!({"nick": self.nick, "error": error}));
        self.error(code, error);
        true
    }

    // Over 60 lines: the checks every line passes before its command, in the order they
    // apply (closing, password, announcement, length, `/pass`, parse, hello and first
    // `/nick`).
    pub(super) fn handle_line(&mut self, line: Line<'_>) {
        if self.closing.is_set() {
            return;
        }
        if !self.phase.authenticated() {
            return self.authenticate(line);
        }
        let first = !self.seen_a_line;
        self.seen_a_line = true;
        if self.phase == Phase::Welcomed {
            self.announce();
        }
        let text = match line {
            Line::Text(text) => text,
            Line::TooLong => {
                let max = self.hub.config.max_line;
                self.hub.log.warn("Line too long", json!({"nick": self.nick, "max": max}));
                return self.error(
                    "too_long",
                    format!("line too long (limit {max} bytes); it was not sent"),
                );
            }
        };
        if auth::parse_pass(&text).is_some() {
            // Never parsed as a command or a message: the secret must not reach the log.
            return self.info(auth::PASSWORD_NOT_NEEDED.into());
        }
        if self.refuse_separated_name(&text) {
            return;
        }
        let text = if needs_sanitizing(&text) { sanitize(&text).into() } else { text };
        let request = match Request::parse(&text) {
            Ok(r) => r,
            Err(e) => {
                if self.register_if_needed(&text) {
                    return;
                }
                self.hub
                    .log
                    .warn("Bad command", json!({"nick": self.nick, "error": e.to_string()}));
                return self.error(e.code(), e.to_string());
            }
        };
        match request {
            Request::Hello { .. } if self.phase.registered() && !first => {
                return self.error("usage", "/hello is only valid as the first line".into());
            }
            Request::Hello { nick, replay, .. } if self.phase.registered() => {
                // Welcomed already, its first room replayed: the limit holds for /join.
                self.hub.limit_replay(self.id, replay);
                self.hub.upgrade_to_json(self.id);
                self.hub.log.info("Late hello", json!({"nick": self.nick}));
                if let Some(nick) = nick {
                    self.handle(Request::Nick(nick));
                }
                return;
            }
            Request::Hello { nick, .. } if self.refuse_banned_nick(nick) => return,
            Request::Hello { nick, resume, replay } => {
                self.hub.limit_replay(self.id, replay);
                return self.register(true, nick, resume);
            }
            Request::Nick(nick)
                if !self.phase.registered() && self.refuse_banned_nick(Some(nick)) =>
            {
                return;
            }
            // A first line of `/nick NAME` joins under NAME directly: nobody sees a
            // guest name come and go.
            Request::Nick(nick) if !self.phase.registered() => {
                return self.register(false, Some(nick), None);
            }
            _ => {}
        }
        if self.register_if_needed(&text) {
            return;
        }
        self.handle(request);
    }

    pub(super) fn handle(&mut self, request: Request<'_>) {
        let hub = Arc::clone(&self.hub);
        match request {
            Request::Empty | Request::Hello { .. } => {}
            Request::Public(_) | Request::Me(_) if !self.may_speak() => {}
            Request::Public(text) => {
                let event = Event::now(EventKind::Public {
                    from: self.nick.clone(),
                    text: text.to_owned(),
                    room: self.room.clone(),
                });
                let id = hub.to_room(self.id, event, Skip::TextEcho(self.id));
                if !hub.on_backbone() {
                    let meta = self.room_message_meta(text, id);
                    hub.log.info("Public message", Kind::Public.tag(meta));
                }
            }
            Request::Me(text) => {
                let event = Event::now(EventKind::Action {
                    from: self.nick.clone(),
                    text: text.to_owned(),
                    room: self.room.clone(),
                });
                let id = hub.to_room(self.id, event, Skip::Nobody);
                if !hub.on_backbone() {
                    hub.log.info("Action", Kind::Action.tag(self.room_message_meta(text, id)));
                }
            }
            Request::History(n) => self.history(n),
            Request::Msg { to, text } => self.private_message(to, text),
            Request::Nick(wanted) => self.rename(wanted),
            Request::List { .. }
            | Request::Join(_)
            | Request::Part
            | Request::Rooms
            | Request::Topic(_) => self.handle_room(request),
            Request::Help => {
                hub.log.info("Command", json!({"nick": self.nick, "command": "/help"}));
                let history_default = hub.config.replay.max(1);
                let commands = help_entries_for(hub.is_oper(self.id), history_default);
                self.send(EventKind::Help { commands });
            }
            Request::Quit(reason) => self.quit(reason),
            other => self.handle_profile_command(other),
        }
    }

    /// `/history [n]`: the last `n` events (the `--replay` count by default, at least
    /// one) of the client's room, capped at [`MAX_HISTORY_REQUEST`] with a line saying so.
    pub(super) fn history(&self, n: Option<usize>) {
        let hub = &self.hub;
        hub.log.info("Command", json!({"nick": self.nick, "command": "/history"}));
        if n.is_some_and(|n| n > MAX_HISTORY_REQUEST) {
            self.info(format!(
                "/history sends at most {MAX_HISTORY_REQUEST} lines at once; \
                 here are up to the last {MAX_HISTORY_REQUEST}"
            ));
        }
        if hub.history(self.id, n.unwrap_or(hub.config.replay.max(1))) == 0 {
            self.info("no earlier events are kept".into());
        }
    }

    /// `/nick NAME` of a registered client. On a backbone the nick is claimed across
    /// nodes first, and the session waits for that ([`claiming`]).
    pub(super) fn rename(&mut self, wanted: &str) {
        if self.is_muted("/nick") {
            return;
        }
        match self.hub.on_backbone() {
            true => {
                let hub = Arc::clone(&self.hub);
                self.claim = Some(claiming::rename(hub, self.id, wanted.to_owned()));
            }
            false => self.renamed(wanted, Ok(Across::No), None),
        }
    }

    /// `/nick wanted`, once `across` says how claiming it across nodes went
    /// (`Across::No` without a backbone): the old nick is let go once the new one is
    /// given.
    pub(super) fn renamed(
        &mut self,
        wanted: &str,
        across: Result<Across, NickChange>,
        session: Option<u64>,
    ) {
        let hub = Arc::clone(&self.hub);
        let claimed = matches!(across, Ok(Across::Claimed));
        let result = match across {
            Ok(_) => hub.rename(self.id, wanted),
            Err(refused) => Err(refused),
        };
        // By the session the claim was made for: the member may be gone (resumed on
        // another node meanwhile), and the nick would stay held by nobody.
        if let (Err(_), true, Some(session)) = (&result, claimed, session) {
            hub.release_session(session, wanted, Some(&self.nick));
        }
        match result {
            Ok((old, new, _)) if old == new => self.info(format!("you are already {new}")),
            Ok((old, new, id)) => {
                hub.release_across(self.id, &old, Some(&new));
                let meta = json!({"old": old, "new": new, "room": self.room, "id": id});
                hub.log.info("Nick changed", Kind::Nick.tag(meta));
                self.nick = new;
                self.note_seen();
            }
            Err(e) => {
                hub.log.warn(
                    "Nick refused",
                    json!({"nick": self.nick, "wanted": wanted, "error": e.describe(wanted)}),
                );
                self.error(e.code(), e.describe(wanted));
            }
        }
    }

    /// `/quit [reason]`: a goodbye, then the session closes with the reason.
    pub(super) fn quit(&mut self, reason: Option<&str>) {
        // A muted user leaves, but its reason reaches nobody.
        let reason = reason.filter(|_| !self.is_muted("/quit REASON"));
        self.hub
            .log
            .info("Command", json!({"nick": self.nick, "command": "/quit", "reason": reason}));
        self.info(format!("Goodbye, {}!", self.nick));
        self.closing = Closing::Leave(match reason {
            Some(r) => format!("quit: {r}").into(),
            None => "quit".into(),
        });
    }
}
