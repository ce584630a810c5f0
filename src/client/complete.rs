//! Who is online as far as the client knows, and the Tab completion candidates drawn from
//! it. Pure logic: the line editor only asks [`complete`] and shows the answer.

use super::clean::Clean;
use super::local::CLIENT_COMMANDS;
use crate::nick;
use crate::protocol::{COMMANDS, Event, EventKind, canonical};

/// The live nick list, the rooms and the user's own nick and room, kept current from the
/// server's events so completion and the prompt never need to ask the server. Its only
/// input is [`Clean`] events, so every name in it is display-safe: a nick is inserted
/// into the edited line on completion, and the nick and room show in the prompt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    /// The user's current nick; empty until the welcome arrives.
    me: String,
    /// The room the user is in; empty until the welcome arrives (or from a server
    /// without rooms).
    room: String,
    /// The people in the user's room (the user included), sorted by [`nick::key`].
    nicks: Vec<String>,
    /// Everyone else the client knows to be online: from the welcome, `/list all`,
    /// people who left the room, and private messages. Offered after `nicks`.
    others: Vec<String>,
    /// Rooms the client has heard of (the room event, `/rooms`, `/list all`, moves), for
    /// completion after `/join`.
    rooms: Vec<String>,
}

impl Roster {
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The people in the user's room as the server last said (the user included),
    /// sorted case-insensitively.
    pub fn here(&self) -> &[String] {
        &self.nicks
    }

    /// Every nick the client knows of, the user's included, sorted case-insensitively.
    pub fn nicks(&self) -> Vec<String> {
        let mut all = self.nicks.clone();
        self.others.iter().for_each(|n| insert(&mut all, n.clone()));
        all
    }

    /// The prompt: `[nick #room] `, `[nick] ` before the room is known, `> ` before the
    /// welcome.
    pub fn prompt(&self) -> String {
        match (self.me.is_empty(), self.room.is_empty()) {
            (true, _) => "> ".to_owned(),
            (false, true) => format!("[{}] ", self.me),
            (false, false) => format!("[{} {}] ", self.me, self.room),
        }
    }

    /// Updates the roster from one event. Returns true when the user's own nick or room
    /// was set or changed (the prompt must follow).
    // Over 60 lines: one arm per event that changes who is where.
    pub fn apply(&mut self, event: &Clean<Event>) -> bool {
        match &event.kind {
            EventKind::Welcome { nick, users, room, .. } => {
                self.me.clone_from(nick);
                self.room.clone_from(room);
                insert(&mut self.rooms, self.room.clone());
                self.nicks.clear();
                self.others.clear();
                users.iter().for_each(|u| self.add_other(u.clone()));
                self.add_here(self.me.clone());
                true
            }
            EventKind::Room { room, users, .. } => {
                self.room.clone_from(room);
                insert(&mut self.rooms, self.room.clone());
                for nick in std::mem::take(&mut self.nicks) {
                    insert(&mut self.others, nick);
                }
                users.iter().for_each(|u| self.add_here(u.clone()));
                true
            }
            EventKind::Users { users, .. } => {
                self.nicks.clear();
                users.iter().for_each(|u| self.add_here(u.clone()));
                self.add_here(self.me.clone());
                false
            }
            EventKind::AllUsers { users } => {
                self.others.clear();
                for u in users {
                    insert(&mut self.rooms, u.room.clone());
                    self.add_other(u.nick.clone());
                }
                false
            }
            EventKind::Rooms { rooms } => {
                self.rooms.clear();
                rooms.iter().for_each(|r| insert(&mut self.rooms, r.room.clone()));
                false
            }
            EventKind::Join { nick, from_room, .. } => {
                from_room.iter().for_each(|r| insert(&mut self.rooms, r.clone()));
                self.add_here(nick.clone());
                false
            }
            EventKind::Part { nick, to, .. } => {
                insert(&mut self.rooms, to.clone());
                self.nicks.retain(|n| n != nick);
                self.add_other(nick.clone());
                false
            }
            EventKind::Private { from, to, .. } => {
                self.add_other(from.clone());
                self.add_other(to.clone());
                false
            }
            EventKind::Leave { nick, .. } => {
                self.nicks.retain(|n| n != nick);
                self.others.retain(|n| n != nick);
                false
            }
            EventKind::Nick { old, new, .. } => self.rename(old.clone(), new.clone()),
            _ => false,
        }
    }

    fn rename(&mut self, old: String, new: String) -> bool {
        let here = self.nicks.contains(&old) || old == self.me || !self.others.contains(&old);
        self.nicks.retain(|n| *n != old);
        self.others.retain(|n| *n != old);
        if here {
            self.add_here(new.clone());
        } else {
            self.add_other(new.clone());
        }
        if old == self.me {
            self.me = new;
            true
        } else {
            false
        }
    }

    /// Someone in the user's room: no longer among the others.
    fn add_here(&mut self, nick: String) {
        self.others.retain(|n| *n != nick);
        insert(&mut self.nicks, nick);
    }

    /// Someone online elsewhere, unless known to be in the user's room.
    fn add_other(&mut self, nick: String) {
        if !self.nicks.contains(&nick) {
            insert(&mut self.others, nick);
        }
    }
}

/// Inserts `name` into `list`, sorted by [`nick::key`], unless it is there or empty.
fn insert(list: &mut Vec<String>, name: String) {
    if name.is_empty() {
        return;
    }
    let key = nick::key(&name);
    if let Err(at) = list.binary_search_by(|n| nick::key(n).cmp(&key).then(n.cmp(&name))) {
        list.insert(at, name);
    }
}

/// The command names offered at the start of a line (`/nick`, `/msg`, …), from the
/// protocol's own list so the two cannot drift apart.
pub fn command_names() -> impl Iterator<Item = &'static str> {
    COMMANDS
        .iter()
        .chain(CLIENT_COMMANDS)
        .filter_map(|(usage, _)| usage.split_whitespace().next())
        .filter(|name| name.len() > 1 && !name.starts_with("//"))
}

/// Commands whose first argument is a nick (their aliases too).
const NICK_ARGUMENT: &[&str] = &["/msg", "/nick", "/ignore", "/unignore"];

/// Completion for `line` with the cursor at byte `pos`: the byte offset where the word
/// being completed starts, and what may replace it (sorted, each with the separator that
/// should follow it). An empty list means nothing to complete.
///
/// - a `/word` at the start of the line completes to a command and a space;
/// - a word at the start of the line completes to a nick and `: ` (addressing someone);
/// - the first argument of `/msg`, `/nick`, `/ignore` and `/unignore` completes to a
///   nick and a space; that of `/bell` to `off`, `mentions` or `all`;
/// - the first argument of `/join` completes to a room the client knows and a space;
/// - any other word completes to a nick as is.
///
/// Nicks match by [`nick::key`] (case, width and composition do not matter, so `STRASS`
/// finds `straße`), rooms the same way; nicks in the user's room come first, then
/// everyone else it knows of; the user's own nick is never offered.
pub fn complete(line: &str, pos: usize, roster: &Roster) -> (usize, Vec<String>) {
    let pos = floor_char_boundary(line, pos);
    let before = &line[..pos];
    let start = before
        .rfind(char::is_whitespace)
        .map_or(0, |i| i + before[i..].chars().next().map_or(1, char::len_utf8));
    let word = &before[start..];
    let preceding: Vec<&str> = before[..start].split_whitespace().collect();

    if preceding.is_empty() && word.starts_with('/') {
        let lower = word.to_lowercase();
        let found = command_names().filter(|c| c.starts_with(&lower)).map(|c| format!("{c} "));
        return (start, found.collect());
    }
    if let [cmd] = preceding.as_slice()
        && cmd.eq_ignore_ascii_case("/bell")
    {
        let found = ["all", "mentions", "off"].into_iter().filter(|b| b.starts_with(word));
        return (start, found.map(|b| format!("{b} ")).collect());
    }
    if let [cmd] = preceding.as_slice()
        && canonical(cmd) == "/join"
    {
        let typed = nick::key(word);
        let found = roster
            .rooms
            .iter()
            .filter(|r| **r != roster.room && nick::key(r).starts_with(&typed))
            .map(|r| format!("{r} "));
        return (start, found.collect());
    }
    let suffix = match preceding.as_slice() {
        [] => ": ",
        [cmd] if NICK_ARGUMENT.contains(&canonical(cmd).as_str()) => " ",
        _ => "",
    };
    let typed = nick::key(word);
    let found = roster
        .nicks
        .iter()
        .chain(&roster.others)
        .filter(|n| **n != roster.me && nick::key(n).starts_with(&typed))
        .map(|n| format!("{n}{suffix}"));
    (start, found.collect())
}

fn floor_char_boundary(s: &str, mut pos: usize) -> usize {
    pos = pos.min(s.len());
    while !s.is_char_boundary(pos) {
        pos -= 1;
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> Clean<Event> {
        Clean::event(Event::now(kind))
    }

    fn roster(me: &str, users: &[&str]) -> Roster {
        let mut r = Roster::default();
        r.apply(&event(EventKind::Welcome {
            server: "t".into(),
            version: "0".into(),
            nick: me.into(),
            online: users.len(),
            users: users.iter().map(|u| u.to_string()).collect(),
            room: "#lobby".into(),
            last_id: 0,
            resume: None,
            flood: None,
        }));
        r
    }

    fn c(line: &str, r: &Roster) -> (usize, Vec<String>) {
        complete(line, line.len(), r)
    }

    #[test]
    fn commands_complete_at_the_start_of_the_line() {
        let r = roster("me", &["me"]);
        assert_eq!(c("/ms", &r), (0, vec!["/msg ".to_string()]));
        assert_eq!(c("/MS", &r), (0, vec!["/msg ".to_string()]));
        assert_eq!(c("/n", &r), (0, vec!["/nick ".to_string()]));
        // The account commands, from the server's table like the rest.
        assert_eq!(c("/reg", &r), (0, vec!["/register ".to_string()]));
        assert_eq!(c("/id", &r), (0, vec!["/identify ".to_string()]));
        assert_eq!(c("/unr", &r), (0, vec!["/unregister ".to_string()]));
        assert_eq!(c("/ke", &r), (0, vec!["/keys ".to_string()]));
        assert_eq!(c("/passw", &r), (0, vec!["/password ".to_string()]));
        let all = c("/", &r).1;
        assert!(all.contains(&"/quit ".to_string()) && all.contains(&"/help ".to_string()));
        assert!(!all.iter().any(|a| a.starts_with("//")), "{all:?}");
        assert_eq!(c("/zz", &r).1, Vec::<String>::new());
        // Not at the start of the line: a slash word is not a command.
        assert_eq!(c("see /ms", &r).1, Vec::<String>::new());
    }

    #[test]
    fn a_nick_at_the_start_of_the_line_gets_a_colon() {
        let r = roster("me", &["alice", "Albert", "bob", "me"]);
        assert_eq!(c("al", &r), (0, vec!["Albert: ".to_string(), "alice: ".to_string()]));
        assert_eq!(c("BO", &r), (0, vec!["bob: ".to_string()]));
        assert_eq!(c("", &r).1.len(), 3, "own nick is not offered");
    }

    #[test]
    fn nicks_complete_anywhere_and_after_msg_and_nick() {
        let r = roster("me", &["alice", "bob", "me"]);
        assert_eq!(c("hi al", &r), (3, vec!["alice".to_string()]));
        assert_eq!(c("/msg b", &r), (5, vec!["bob ".to_string()]));
        assert_eq!(c("/Query b", &r), (7, vec!["bob ".to_string()]));
        assert_eq!(c("/nick a", &r), (6, vec!["alice ".to_string()]));
        assert_eq!(c("/msg bob hey a", &r), (13, vec!["alice".to_string()]));
        assert_eq!(c("/me pokes m", &r).1, Vec::<String>::new());
        // The cursor in the middle of the line: only the text before it counts.
        assert_eq!(complete("al is here", 2, &r), (0, vec!["alice: ".to_string()]));
    }

    #[test]
    fn the_roster_follows_joins_leaves_and_renames() {
        let mut r = roster("me", &["me", "alice"]);
        r.apply(&event(EventKind::Join {
            nick: "carol".into(),
            online: 3,
            room: "#lobby".into(),
            here: 3,
            from_room: None,
        }));
        assert_eq!(c("ca", &r).1, vec!["carol: ".to_string()]);
        assert!(!r.apply(&event(EventKind::Nick {
            old: "carol".into(),
            new: "dave".into(),
            room: "#lobby".into()
        })));
        assert_eq!(c("ca", &r).1, Vec::<String>::new());
        assert_eq!(c("da", &r).1, vec!["dave: ".to_string()]);
        r.apply(&event(EventKind::Leave {
            nick: "dave".into(),
            reason: "quit".into(),
            online: 2,
            room: "#lobby".into(),
            here: 2,
        }));
        assert_eq!(c("da", &r).1, Vec::<String>::new());
        assert!(r.apply(&event(EventKind::Nick {
            old: "me".into(),
            new: "myself".into(),
            room: "#lobby".into()
        })));
        assert_eq!(r.me(), "myself");
        assert_eq!(r.nicks(), ["alice", "myself"]);
        r.apply(&event(EventKind::Users {
            users: vec!["zed".into()],
            room: "#lobby".into(),
            online: 99,
            away: vec![],
        }));
        // /list names the room; alice, known from the welcome, is still online elsewhere.
        assert_eq!(r.nicks(), ["alice", "myself", "zed"]);
        assert_eq!(c("", &r).1, ["zed: ", "alice: "], "the room first");
    }

    #[test]
    fn the_client_commands_complete_too() {
        let r = roster("me", &["me", "bob"]);
        assert_eq!(c("/ign", &r).1, ["/ignore "]);
        assert_eq!(c("/unignore b", &r).1, ["bob "]);
        assert_eq!(c("/bell m", &r).1, ["mentions "]);
    }

    #[test]
    fn rooms_complete_after_join_and_the_room_is_in_the_prompt() {
        let mut r = roster("me", &["me", "alice", "bob", "zoe"]);
        assert_eq!(r.prompt(), "[me #lobby] ");
        r.apply(&event(EventKind::Rooms {
            rooms: ["#dev", "#Design", "#lobby"]
                .map(|n| crate::protocol::RoomInfo {
                    room: n.into(),
                    here: 1,
                    topic: String::new(),
                })
                .to_vec(),
        }));
        assert_eq!(c("/join #d", &r), (6, vec!["#Design ".to_string(), "#dev ".to_string()]));
        assert_eq!(c("/join ", &r).1.len(), 2, "not the room you are in");
        assert!(r.apply(&event(EventKind::Room {
            room: "#dev".into(),
            topic: String::new(),
            users: vec!["me".into(), "zoe".into()],
        })));
        assert_eq!(r.prompt(), "[me #dev] ");
        assert_eq!(c("/join #", &r).1, ["#Design ", "#lobby "]);
        // Your room first, then everyone else the client knows of.
        assert_eq!(c("", &r).1, ["zoe: ", "alice: ", "bob: "]);
        // Someone in another room who writes privately completes too.
        r.apply(&event(EventKind::Private {
            from: "xavier".into(),
            to: "me".into(),
            text: "hi".into(),
        }));
        assert_eq!(c("/msg x", &r).1, ["xavier "]);
        r.apply(&event(EventKind::Part {
            nick: "zoe".into(),
            room: "#dev".into(),
            to: "#zen".into(),
            here: 1,
        }));
        assert_eq!(c("", &r).1, ["alice: ", "bob: ", "xavier: ", "zoe: "]);
        assert_eq!(c("/join #z", &r).1, ["#zen "]);
    }

    #[test]
    fn nicks_match_by_their_identity_key() {
        let r = roster("me", &["σασ", "straße", "café", "ＺＯＥ"]);
        // Full case folding: to_lowercase("ΣΑΣ") is "σας", which is no prefix of "σασ".
        assert_eq!(c("ΣΑΣ", &r).1, vec!["σασ: ".to_string()]);
        assert_eq!(c("STRASS", &r).1, vec!["straße: ".to_string()]);
        assert_eq!(c("/msg cafe\u{301}", &r).1, vec!["café ".to_string()]);
        assert_eq!(c("zo", &r).1, vec!["ＺＯＥ: ".to_string()]);
    }

    #[test]
    fn nicks_from_the_network_are_sanitised() {
        let r = roster("me", &["ev\u{1b}[2Jil"]);
        assert_eq!(r.nicks(), ["evil", "me"]);
    }

    #[test]
    fn multibyte_text_does_not_break_word_boundaries() {
        let r = roster("me", &["élodie"]);
        assert_eq!(c("café él", &r), ("café ".len(), vec!["élodie".to_string()]));
        assert_eq!(complete("é", 1, &r).0, 0);
    }
}
