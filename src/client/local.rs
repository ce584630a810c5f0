//! The commands the client keeps to itself instead of sending them to the server:
//! `/ignore`, `/unignore`, `/bell` and `/clear`, and what they change: which events are hidden
//! and when the terminal bell rings. Remembered per server ([`super::settings`]).
//!
//! They are the UI's business: [`filter_input`] takes them out of what the user enters
//! before it reaches the connection core, so they work while the client is offline too,
//! and the core only ever sees lines for the server.

use std::cell::RefCell;
use std::convert::Infallible;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use super::Input;
use super::settings::{Bell, ServerSettings, SettingsFile};
use crate::nick;
use crate::protocol::{EventKind, Request};

/// The client's own commands with their usage, for `/help`, the man page and Tab
/// completion.
pub const CLIENT_COMMANDS: &[(&str, &str)] = &[
    (
        "/ignore [nick]",
        "hide a person's public messages, actions and private messages on this client \
         (remembered for this server); without a nick, list who is ignored",
    ),
    ("/unignore <nick>", "show that person's messages again"),
    (
        "/bell [off|mentions|all]",
        "when the terminal bell rings: never, when you are mentioned or written to \
         privately (the default), or on every message (remembered for this server)",
    ),
    ("/clear", "clear the screen; what it showed stays in the terminal's scrollback"),
];

/// One of the client's own commands, parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum Local<'a> {
    Ignored,
    Ignore(&'a str),
    Unignore(&'a str),
    ShowBell,
    SetBell(Bell),
    /// `/clear` that reached the filter: piped, or within a pasted block. Typed alone
    /// on a terminal, the editor clears the screen itself (see [`super::clear`]).
    Clear,
    /// `/help COMMAND` or `/help keys` (`/help` alone goes to the server, which lists
    /// its commands): see [`super::help::topic`].
    Help(&'a str),
}

impl<'a> Local<'a> {
    /// `None` when `line` is not one of the client's commands (it goes to the server);
    /// else the command, or the usage to show.
    pub fn parse(line: &'a str) -> Option<Result<Local<'a>, String>> {
        let mut words = line.split_whitespace();
        let name = words.next()?.to_ascii_lowercase();
        let args: Vec<&str> = words.collect();
        let usage = |name: &str| {
            let found = CLIENT_COMMANDS.iter().find(|(u, _)| u.split(' ').next() == Some(name));
            Err(format!("usage: {}", found.map_or(name, |(u, _)| u)))
        };
        Some(match (name.as_str(), args.as_slice()) {
            ("/ignore", []) => Ok(Local::Ignored),
            ("/ignore", [nick]) => Ok(Local::Ignore(nick)),
            ("/unignore", [nick]) => Ok(Local::Unignore(nick)),
            ("/bell", []) => Ok(Local::ShowBell),
            ("/bell", [word]) => Bell::parse(word).map(Local::SetBell).ok_or(()).or(usage("/bell")),
            ("/clear", []) => Ok(Local::Clear),
            ("/help" | "/?", [topic]) => Ok(Local::Help(topic)),
            ("/help" | "/?", [_, _, ..]) => Err("usage: /help [command|keys]".into()),
            ("/ignore" | "/unignore" | "/bell" | "/clear", _) => usage(&name),
            _ => return None,
        })
    }
}

/// Takes the client's own commands out of what the user enters (a line, or a pasted
/// block of them), carries each out on `state` and shows its answer through `answer`,
/// and passes the rest on to `to_core` in order. Nothing after a `/quit` is the client's:
/// the core drops it unsent. Once the input ends (and is passed on), `to_core` is
/// dropped and this waits for good: run it beside the core, which ends the client.
pub async fn filter_input(
    mut from_user: UnboundedReceiver<Input>,
    to_core: UnboundedSender<Input>,
    state: &RefCell<LocalState>,
    mut answer: impl FnMut(EventKind),
) -> Infallible {
    while let Some(input) = from_user.recv().await {
        let input = match input {
            Input::Line(text) => {
                let rest = take_local(&text, |parsed| answer(state.borrow_mut().answer(parsed)));
                match rest {
                    Some(rest) => Input::Line(rest),
                    None => continue,
                }
            }
            Input::Quit => Input::Quit,
        };
        if to_core.send(input).is_err() {
            break;
        }
    }
    drop(to_core);
    std::future::pending().await
}

/// Hands every line of `input` that is one of the client's commands to `run`, up to a
/// `/quit`; returns the other lines, as entered, or `None` if none is left.
pub fn take_local(input: &str, mut run: impl FnMut(Result<Local<'_>, String>)) -> Option<String> {
    let mut rest = Vec::new();
    let mut quit = false;
    for part in input.split('\n') {
        let line = part.trim_end_matches('\r');
        if !quit {
            if let Some(parsed) = Local::parse(line) {
                run(parsed);
                continue;
            }
            quit = matches!(Request::parse(line.trim_end()), Ok(Request::Quit(_)));
        }
        rest.push(part);
    }
    (!rest.is_empty()).then(|| rest.join("\n"))
}

/// The client's own settings in force, and where they are saved.
pub struct LocalState {
    settings: ServerSettings,
    file: SettingsFile,
    /// `--no-bell`: no bell this run, whatever the setting.
    no_bell: bool,
}

impl LocalState {
    pub fn load(file: SettingsFile, no_bell: bool) -> LocalState {
        LocalState { settings: file.load(), file, no_bell }
    }

    /// Carries out a parsed command, or shows its usage: the event to show the user.
    pub fn answer(&mut self, parsed: Result<Local<'_>, String>) -> EventKind {
        if let Ok(Local::Help(topic)) = parsed {
            return match super::help::topic(topic) {
                Ok(commands) => EventKind::Help { commands },
                Err(message) => EventKind::Error { code: "usage".into(), message },
            };
        }
        match parsed.map(|command| self.run(command)) {
            Ok((message, false)) => EventKind::Info { message },
            Ok((message, true)) | Err(message) => {
                EventKind::Error { code: "usage".into(), message }
            }
        }
    }

    /// Carries out `command`; returns the line to show the user, and whether it is an
    /// error.
    pub fn run(&mut self, command: Local<'_>) -> (String, bool) {
        let is = |a: &str, b: &str| nick::key(a) == nick::key(b);
        let list = &mut self.settings.ignore;
        let answer = match command {
            Local::Ignored if list.is_empty() => return ("you ignore nobody".into(), false),
            Local::Ignored => return (format!("you ignore: {}", list.join(", ")), false),
            Local::Ignore(nick) if list.iter().any(|n| is(n, nick)) => {
                return (format!("you already ignore {nick}"), true);
            }
            Local::Ignore(nick) => {
                list.push(nick.to_owned());
                format!("ignoring {nick}: their messages are hidden on this client")
            }
            Local::Unignore(nick) => {
                let before = list.len();
                list.retain(|n| !is(n, nick));
                if list.len() == before {
                    return (format!("you do not ignore {nick}"), true);
                }
                format!("no longer ignoring {nick}")
            }
            Local::ShowBell => return (format!("bell: {}", self.settings.bell.name()), false),
            // Answered by `answer` from the command tables; nothing to carry out.
            Local::Help(topic) => return (format!("/help {topic}"), false),
            Local::Clear => {
                return ("/clear clears the screen when typed alone on a terminal".into(), false);
            }
            Local::SetBell(bell) => {
                self.settings.bell = bell;
                self.no_bell = false;
                format!("bell: {}", bell.name())
            }
        };
        match self.file.save(&self.settings) {
            Ok(()) => (answer, false),
            Err(e) => (format!("{answer} (for this session only: cannot save it: {e})"), true),
        }
    }

    /// Whether `event` comes from someone ignored: their public lines, actions and
    /// private messages are not shown. Never the user's own.
    pub fn hides(&self, event: &EventKind, me: &str) -> bool {
        let from = match event {
            EventKind::Public { from, .. }
            | EventKind::Action { from, .. }
            | EventKind::Private { from, .. } => from,
            _ => return false,
        };
        let key = nick::key(from);
        key != nick::key(me) && self.settings.ignore.iter().any(|n| nick::key(n) == key)
    }

    /// Whether the bell rings for `event`, which the renderer flagged as a mention or a
    /// private message to the user (`alert`) or not.
    pub fn rings(&self, event: &EventKind, me: &str, alert: bool) -> bool {
        match (self.no_bell, self.settings.bell) {
            (true, _) | (_, Bell::Off) => false,
            (_, Bell::Mentions) => alert,
            (_, Bell::All) => {
                alert
                    || matches!(event,
                        EventKind::Public { from, .. } | EventKind::Action { from, .. }
                            | EventKind::Private { from, .. } if nick::key(from) != nick::key(me))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_commands_parse_and_others_go_to_the_server() {
        assert_eq!(Local::parse("/ignore"), Some(Ok(Local::Ignored)));
        assert_eq!(Local::parse("/IGNORE  Bob "), Some(Ok(Local::Ignore("Bob"))));
        assert_eq!(Local::parse("/unignore bob"), Some(Ok(Local::Unignore("bob"))));
        assert_eq!(Local::parse("/bell ALL"), Some(Ok(Local::SetBell(Bell::All))));
        assert_eq!(Local::parse("/bell"), Some(Ok(Local::ShowBell)));
        assert_eq!(Local::parse("/bell loud"), Some(Err("usage: /bell [off|mentions|all]".into())));
        assert_eq!(Local::parse("/unignore"), Some(Err("usage: /unignore <nick>".into())));
        assert_eq!(Local::parse("/ignore a b"), Some(Err("usage: /ignore [nick]".into())));
        assert_eq!(Local::parse("/msg bob hi"), None);
        assert_eq!(Local::parse("//ignore me"), None);
        assert_eq!(Local::parse("ignore"), None);
    }

    #[test]
    fn the_client_commands_are_taken_out_of_a_pasted_block_up_to_quit() {
        let mut ran = Vec::new();
        let mut take = |input: &str| take_local(input, |parsed| ran.push(parsed.is_ok()));
        assert_eq!(take("/ignore bob"), None);
        assert_eq!(take("first\r\n/bell\nsecond\n"), Some("first\r\nsecond\n".into()));
        assert_eq!(take("/bell loud"), None);
        assert_eq!(take(""), Some(String::new()));
        assert_eq!(take("x\n/QUIT bye\n/ignore bob"), Some("x\n/QUIT bye\n/ignore bob".into()));
        assert_eq!(ran, [true, true, false]);
    }

    fn state() -> LocalState {
        LocalState {
            settings: ServerSettings::default(),
            file: SettingsFile::in_memory(),
            no_bell: false,
        }
    }

    #[test]
    fn ignoring_hides_by_the_nick_key_and_never_your_own_lines() {
        let mut s = state();
        assert!(!s.run(Local::Ignore("BOB")).1);
        assert!(s.run(Local::Ignore("bob")).1, "already ignored");
        let public = |from: &str| EventKind::Public {
            from: from.into(),
            text: "hi".into(),
            room: "#lobby".into(),
        };
        assert!(s.hides(&public("bob"), "me"));
        let private = EventKind::Private { from: "Bob".into(), to: "me".into(), text: "x".into() };
        assert!(s.hides(&private, "me"));
        assert!(!s.hides(&public("carol"), "me"));
        assert!(!s.hides(&public("bob"), "BOB"), "your own line");
        let nick = EventKind::Nick { old: "bob".into(), new: "b".into(), room: String::new() };
        assert!(!s.hides(&nick, "me"));
        assert_eq!(s.run(Local::Ignored).0, "you ignore: BOB");
        assert!(!s.run(Local::Unignore("bob")).1);
        assert!(!s.hides(&public("bob"), "me"));
        assert!(s.run(Local::Unignore("bob")).1, "not ignored any more");
    }

    #[test]
    fn the_bell_follows_the_setting() {
        let mut s = state();
        let public =
            EventKind::Public { from: "bob".into(), text: "hi".into(), room: String::new() };
        assert!(s.rings(&public, "me", true) && !s.rings(&public, "me", false));
        s.run(Local::SetBell(Bell::All));
        assert!(s.rings(&public, "me", false));
        assert!(!s.rings(&public, "bob", false), "not your own line");
        s.run(Local::SetBell(Bell::Off));
        assert!(!s.rings(&public, "me", true));
        let quiet = LocalState { no_bell: true, ..state() };
        assert!(!quiet.rings(&public, "me", true), "--no-bell");
    }
}
