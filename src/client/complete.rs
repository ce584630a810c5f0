//! Who is online as far as the client knows, and the Tab completion candidates drawn from
//! it. Pure logic: the line editor only asks [`complete`] and shows the answer.

use crate::nick;
use crate::protocol::{COMMANDS, EventKind, canonical};
use crate::sanitize::sanitize;

/// The live nick list and the user's own nick, kept current from the server's events so
/// completion and the prompt never need to ask the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    /// The user's current nick; empty until the welcome arrives.
    me: String,
    /// Everyone online (the user included), sanitised, sorted by [`nick::key`]. A nick
    /// is inserted into the edited line on completion, so it must be display-safe.
    nicks: Vec<String>,
}

impl Roster {
    pub fn me(&self) -> &str {
        &self.me
    }

    pub fn nicks(&self) -> &[String] {
        &self.nicks
    }

    /// Updates the roster from one event. Returns true when the user's own nick was set
    /// or changed (the prompt must follow).
    pub fn apply(&mut self, event: &EventKind) -> bool {
        match event {
            EventKind::Welcome { nick, users, .. } => {
                self.me = sanitize(nick);
                self.set_users(users);
                self.insert(self.me.clone());
                true
            }
            EventKind::Users { users, .. } => {
                self.set_users(users);
                if !self.me.is_empty() {
                    self.insert(self.me.clone());
                }
                false
            }
            EventKind::Join { nick, .. } => {
                self.insert(sanitize(nick));
                false
            }
            EventKind::Leave { nick, .. } => {
                let nick = sanitize(nick);
                self.nicks.retain(|n| *n != nick);
                false
            }
            EventKind::Nick { old, new, .. } => {
                let (old, new) = (sanitize(old), sanitize(new));
                self.nicks.retain(|n| *n != old);
                self.insert(new.clone());
                if old == self.me {
                    self.me = new;
                    true
                } else {
                    false
                }
            }
            _ => false,
        }
    }

    fn set_users(&mut self, users: &[String]) {
        self.nicks.clear();
        for user in users {
            self.insert(sanitize(user));
        }
    }

    fn insert(&mut self, nick: String) {
        if nick.is_empty() {
            return;
        }
        let key = nick::key(&nick);
        match self.nicks.binary_search_by(|n| nick::key(n).cmp(&key).then(n.cmp(&nick))) {
            Ok(_) => {}
            Err(at) => self.nicks.insert(at, nick),
        }
    }
}

/// The command names offered at the start of a line (`/nick`, `/msg`, …), from the
/// protocol's own list so the two cannot drift apart.
pub fn command_names() -> impl Iterator<Item = &'static str> {
    COMMANDS
        .iter()
        .filter_map(|(usage, _)| usage.split_whitespace().next())
        .filter(|name| name.len() > 1 && !name.starts_with("//"))
}

/// Commands whose first argument is a nick (their aliases too).
const NICK_ARGUMENT: &[&str] = &["/msg", "/nick"];

/// Completion for `line` with the cursor at byte `pos`: the byte offset where the word
/// being completed starts, and what may replace it (sorted, each with the separator that
/// should follow it). An empty list means nothing to complete.
///
/// - a `/word` at the start of the line completes to a command and a space;
/// - a word at the start of the line completes to a nick and `: ` (addressing someone);
/// - the first argument of `/msg` and `/nick` completes to a nick and a space;
/// - any other word completes to a nick as is.
///
/// Nicks match by [`nick::key`] (case, width and composition do not matter, so `STRASS`
/// finds `straße`); the user's own nick is never offered.
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
    let suffix = match preceding.as_slice() {
        [] => ": ",
        [cmd] if NICK_ARGUMENT.contains(&canonical(cmd).as_str()) => " ",
        _ => "",
    };
    let typed = nick::key(word);
    let found = roster
        .nicks
        .iter()
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

    fn roster(me: &str, users: &[&str]) -> Roster {
        let mut r = Roster::default();
        r.apply(&EventKind::Welcome {
            server: "t".into(),
            version: "0".into(),
            nick: me.into(),
            online: users.len(),
            users: users.iter().map(|u| u.to_string()).collect(),
            room: "#lobby".into(),
        });
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
        r.apply(&EventKind::Join {
            nick: "carol".into(),
            online: 3,
            room: "#lobby".into(),
            here: 3,
            from_room: None,
        });
        assert_eq!(c("ca", &r).1, vec!["carol: ".to_string()]);
        assert!(!r.apply(&EventKind::Nick {
            old: "carol".into(),
            new: "dave".into(),
            room: "#lobby".into()
        }));
        assert_eq!(c("ca", &r).1, Vec::<String>::new());
        assert_eq!(c("da", &r).1, vec!["dave: ".to_string()]);
        r.apply(&EventKind::Leave {
            nick: "dave".into(),
            reason: "quit".into(),
            online: 2,
            room: "#lobby".into(),
            here: 2,
        });
        assert_eq!(c("da", &r).1, Vec::<String>::new());
        assert!(r.apply(&EventKind::Nick {
            old: "me".into(),
            new: "myself".into(),
            room: "#lobby".into()
        }));
        assert_eq!(r.me(), "myself");
        assert_eq!(r.nicks(), ["alice", "myself"]);
        r.apply(&EventKind::Users { users: vec!["zed".into()], room: "#lobby".into(), online: 99 });
        assert_eq!(r.nicks(), ["myself", "zed"]);
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
