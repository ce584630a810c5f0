//! The wire protocol: what a client may send (parsed by [`Request::parse`]) and what the
//! server sends back ([`Event`]), in either of its two encodings.
//!
//! Client-to-server lines are always what a person types, so `nc` and `telnet` can chat.
//! Server-to-client lines are human-readable text by default; a client that sends
//! [`HELLO`] as its first line gets one JSON object per line instead. docs/protocol.md
//! documents both for client authors.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::sanitize::has_visible;

/// The usage `/history 0` and `/history x` are refused with. A larger n than the most
/// the server sends again ([`crate::server`]'s 200) is not refused but capped, with an
/// info line that says so: ergo's CHATHISTORY also serves its maximum for a larger
/// limit; 0 asks for nothing, likelier a slip than a wish.
pub const HISTORY_USAGE: &str = "/history [n] (n is 1 to 200)";

/// First word of the line that switches a connection to structured (JSON) mode:
/// `/hello json [NICK]`. Only honoured as the first line a client sends.
pub const HELLO: &str = "/hello";

/// The mode word a structured client puts after [`HELLO`].
pub const HELLO_MODE_JSON: &str = "json";

/// Every command with its usage and a one-line description; `/help` sends this list and
/// the client completes command names from it.
pub const COMMANDS: &[(&str, &str)] = &[
    ("/nick <name>", "set or change your nickname"),
    ("/list [all]", "list the users in your room, or everyone with their room (also /who, /names)"),
    ("/join <#room>", "move to a room, creating it if needed (you are in one room at a time)"),
    ("/part", "go back to the default room"),
    ("/rooms", "list the rooms with how many are in each and their topics"),
    ("/topic [text]", "show your room's topic, or set it"),
    (
        "/msg <user> <text>",
        "send a message only that user is shown; the server logs it like any line (also /query, /tell)",
    ),
    ("/me <action>", "send an action, shown as \"* nick action\""),
    ("/quit [reason]", "leave the chat (also /exit, /bye)"),
    ("/reply <text>", "answer the last private message you received (also /r)"),
    ("/away [message]", "mark yourself away; private messages get your message once"),
    ("/back", "you are back: clear your away message"),
    ("/whois <user>", "who a user is: room, online since, idle time, away, operator"),
    ("/motd", "show the message of the day"),
    ("/oper <password>", "become an operator (with the server's operator password)"),
    (
        "/register [password]",
        "keep your nick: register it to your key (tchat join has one), or to a password",
    ),
    (
        "/identify <nick> <password>",
        "prove a registered nick with its password (adds this device's key)",
    ),
    ("/unregister", "give your registered nick up"),
    ("/keys [remove <fingerprint>]", "list your registered nick's keys, or remove one"),
    ("/password <new password>", "set or change your registered nick's password"),
    (
        "/history [n]",
        "show the last n lines of your room again (default: as many as the server replays on joining; at most 200)",
    ),
    ("/help", "list these commands (also /?)"),
    ("//text", "send a public line that starts with '/'"),
];

/// The commands an operator may use in chat after `/oper`, with their usage; `/help`
/// lists them for operators only. The same commands (and a few more) work on the
/// server's console and through `tchat ctl`.
pub const OPERATOR_COMMANDS: &[(&str, &str)] = &[
    ("/kick <user> [reason]", "disconnect a user"),
    ("/ban <nick|addr|cidr> [duration] [reason]", "ban a nick, address or network (10m, 2h, 7d)"),
    ("/unban <nick|addr|cidr>", "lift a ban"),
    ("/bans", "list the bans in force"),
    ("/mute <user> [duration]", "refuse a user's messages, for a while or until /unmute"),
    ("/unmute <user>", "let a muted user speak again"),
    ("/say <text>", "send a notice from the server to everyone"),
    ("/motd <text>", "set the message of the day (until the next reload)"),
];

/// Other names a command answers to, for people used to IRC and other chats:
/// `(alias, command)`. Each is named in its command's [`COMMANDS`] description.
pub const ALIASES: &[(&str, &str)] = &[
    ("/who", "/list"),
    ("/names", "/list"),
    ("/query", "/msg"),
    ("/tell", "/msg"),
    ("/exit", "/quit"),
    ("/bye", "/quit"),
    ("/?", "/help"),
    ("/r", "/reply"),
];

/// The command `name` (a `/word`, any case) stands for: itself unless it is an alias.
pub fn canonical(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match ALIASES.iter().find(|(alias, _)| *alias == lower) {
        Some((_, command)) => (*command).to_owned(),
        None => lower,
    }
}

/// One line from a client, parsed. Borrowed from the line so parsing allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// A blank line: nothing to do.
    Empty,
    Public(&'a str),
    Nick(&'a str),
    /// `/list` (your room) or `/list all` (everyone, with their room).
    List {
        all: bool,
    },
    Join(&'a str),
    Part,
    Rooms,
    /// `/topic` shows the topic, `/topic TEXT` sets it.
    Topic(Option<&'a str>),
    Msg {
        to: &'a str,
        text: &'a str,
    },
    Me(&'a str),
    Quit(Option<&'a str>),
    Help,
    /// `/hello json [NICK [resume TOKEN LAST_ID [ROOM]]]`; valid only as the first line.
    Hello {
        nick: Option<&'a str>,
        resume: Option<Resume<'a>>,
    },
    /// `/reply TEXT`: a private message to the last user who sent you one.
    Reply(&'a str),
    /// `/away [MESSAGE]`; an empty message marks you away without one.
    Away(&'a str),
    Back,
    Whois(&'a str),
    /// `/motd [TEXT]`: show it, or (operators) set it.
    Motd(Option<&'a str>),
    /// `/oper PASSWORD`. Its `Debug` form hides the password, so no log shows it.
    Oper(Secret<'a>),
    /// An operator command ([`OPERATOR_COMMANDS`]), the whole line, for the server's
    /// operator interpreter to parse.
    Operator(&'a str),
    /// `/history [N]`: the last N public events again (`None`: the server's default).
    History(Option<usize>),
    /// `/register [PASSWORD]`: register the current nick to the connection's key, and
    /// to a password if one is given.
    Register(Option<Secret<'a>>),
    /// `/identify NICK PASSWORD`: prove a registered nick with its password.
    Identify {
        nick: &'a str,
        password: Secret<'a>,
    },
    Unregister,
    /// `/keys`: the fingerprints of the account's keys.
    Keys,
    /// `/keys remove FINGERPRINT`.
    KeysRemove(&'a str),
    /// `/password NEW`: set or change the account's password.
    Password(Secret<'a>),
}

/// A password as typed: compared, never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<'a>(pub &'a str);

impl std::fmt::Debug for Secret<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The resume part of a hello: `resume TOKEN LAST_ID [ROOM]`, where TOKEN is the
/// `resume` field of the previous session's welcome, LAST_ID the last event id it saw
/// and ROOM the room it was in: where a server that no longer holds the session (it
/// restarted, or the grace ran out) puts it, so that the catch-up is that room's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume<'a> {
    pub token: &'a str,
    pub last_id: u64,
    pub room: Option<&'a str>,
}

/// The word in a hello before the resume token.
pub const HELLO_RESUME: &str = "resume";

/// A line that is not a valid request. The `Display` text is sent to the user as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// A known command with missing or extra arguments; holds the right usage.
    Usage(&'static str),
    /// A `/word` that is no command.
    Unknown(String),
    /// Text to send with nothing a reader could see: only invisible characters
    /// (U+200B, U+3164, U+FEFF, U+2800 …) and spaces. It would show as an empty line.
    Invisible,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Usage(usage) => write!(f, "usage: {usage}"),
            ParseError::Unknown(cmd) => write!(
                f,
                "unknown command {cmd}; type /help for the list (start a line with // to send a literal /)"
            ),
            ParseError::Invisible => write!(
                f,
                "nothing visible to send: the text is only spaces and invisible characters"
            ),
        }
    }
}

impl ParseError {
    /// Machine-readable code for the structured protocol's error event.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::Usage(_) => "usage",
            ParseError::Unknown(_) => "unknown_command",
            ParseError::Invisible => "empty",
        }
    }
}

impl<'a> Request<'a> {
    /// Parses one input line (without its line ending). Command names are
    /// case-insensitive; trailing white space is ignored. A blank line is
    /// [`Request::Empty`]; text to send (a public line, `/me`, `/msg`, a `/topic`) with
    /// nothing visible in it is [`ParseError::Invisible`]; a `/quit` reason with nothing
    /// visible is dropped.
    pub fn parse(line: &'a str) -> Result<Request<'a>, ParseError> {
        let line = line.trim_end();
        if line.trim_start().is_empty() {
            return Ok(Request::Empty);
        }
        let Some(rest) = line.strip_prefix('/') else {
            return visible(line).map(Request::Public);
        };
        if rest.starts_with('/') {
            return visible(rest).map(Request::Public);
        }
        let (word, args) = match rest.split_once(char::is_whitespace) {
            Some((word, args)) => (word, args.trim_start()),
            None => (rest, ""),
        };
        Request::command(line, word, args)
    }

    /// The command table: `/word args`, `line` being the whole line as typed (without
    /// trailing white space), `word` the command name as typed (without its `/`).
    fn command(line: &'a str, word: &'a str, args: &'a str) -> Result<Request<'a>, ParseError> {
        let usage = |u: &'static str| Err(ParseError::Usage(u));
        // `line` without the arguments: the `/word` as typed.
        match canonical(&line[..word.len() + 1]).as_str() {
            "/nick" if args.is_empty() => usage("/nick <name>"),
            "/nick" => Ok(Request::Nick(args)),
            "/list" if args.is_empty() => Ok(Request::List { all: false }),
            "/list" if args.eq_ignore_ascii_case("all") => Ok(Request::List { all: true }),
            "/list" => usage("/list [all]"),
            "/join" => match args.split_whitespace().collect::<Vec<_>>().as_slice() {
                [room] => Ok(Request::Join(room)),
                _ => usage("/join <#room>"),
            },
            "/part" if args.is_empty() => Ok(Request::Part),
            "/part" => usage("/part"),
            "/rooms" if args.is_empty() => Ok(Request::Rooms),
            "/rooms" => usage("/rooms"),
            "/topic" if args.is_empty() => Ok(Request::Topic(None)),
            "/topic" => visible(args).map(|topic| Request::Topic(Some(topic))),
            "/msg" => match args.split_once(char::is_whitespace) {
                Some((to, text)) if !text.trim().is_empty() => {
                    visible(text.trim_start()).map(|text| Request::Msg { to, text })
                }
                _ => usage("/msg <user> <text>"),
            },
            "/me" if args.is_empty() => usage("/me <action>"),
            "/me" => visible(args).map(Request::Me),
            "/quit" => Ok(Request::Quit(Some(args).filter(|a| has_visible(a)))),
            "/help" if args.is_empty() => Ok(Request::Help),
            "/help" => usage("/help"),
            "/history" if args.is_empty() => Ok(Request::History(None)),
            "/history" => history(args),
            "/hello" => hello(args),
            "/reply" if args.is_empty() => usage("/reply <text>"),
            "/reply" => visible(args).map(Request::Reply),
            "/away" => Ok(Request::Away(args)),
            "/back" if args.is_empty() => Ok(Request::Back),
            "/back" => usage("/back"),
            "/whois" if args.is_empty() || args.contains(char::is_whitespace) => {
                usage("/whois <user>")
            }
            "/whois" => Ok(Request::Whois(args)),
            "/motd" => Ok(Request::Motd(Some(args).filter(|a| !a.is_empty()))),
            "/oper" if args.is_empty() => usage("/oper <password>"),
            "/oper" => Ok(Request::Oper(Secret(args))),
            "/register" if args.is_empty() => Ok(Request::Register(None)),
            "/register" => Ok(Request::Register(Some(Secret(args)))),
            "/identify" => match args.split_once(char::is_whitespace) {
                Some((nick, password)) if !password.trim().is_empty() => {
                    Ok(Request::Identify { nick, password: Secret(password.trim_start()) })
                }
                _ => usage("/identify <nick> <password>"),
            },
            "/unregister" if args.is_empty() => Ok(Request::Unregister),
            "/unregister" => usage("/unregister"),
            "/keys" if args.is_empty() => Ok(Request::Keys),
            "/keys" => match args.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["remove", fingerprint] => Ok(Request::KeysRemove(fingerprint)),
                _ => usage("/keys [remove <fingerprint>]"),
            },
            "/password" if args.is_empty() => usage("/password <new password>"),
            "/password" => Ok(Request::Password(Secret(args))),
            name if is_operator_command(name) => Ok(Request::Operator(line.trim_start())),
            _ => Err(ParseError::Unknown(format!("/{word}"))),
        }
    }
}

const HELLO_USAGE: &str = "/hello json [nick [resume token last_id [room]]]";

/// `/history n`'s arguments: n > 0 events.
fn history(args: &str) -> Result<Request<'_>, ParseError> {
    match args.parse::<usize>() {
        Ok(n) if n > 0 => Ok(Request::History(Some(n))),
        // Too many digits for a usize is more than the server sends anyway: it is capped
        // as any large n is.
        Err(_) if args.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Request::History(Some(usize::MAX)))
        }
        _ => Err(ParseError::Usage(HISTORY_USAGE)),
    }
}

/// `/hello`'s arguments: the mode, then optionally the nick, then optionally a resume.
fn hello(args: &str) -> Result<Request<'_>, ParseError> {
    let usage = Err(ParseError::Usage(HELLO_USAGE));
    match args.split_whitespace().collect::<Vec<_>>().as_slice() {
        [HELLO_MODE_JSON] => Ok(Request::Hello { nick: None, resume: None }),
        [HELLO_MODE_JSON, nick] => Ok(Request::Hello { nick: Some(nick), resume: None }),
        [HELLO_MODE_JSON, nick, HELLO_RESUME, token, last_id, room @ ..] if room.len() <= 1 => {
            match last_id.parse() {
                Ok(last_id) => {
                    let resume = Resume { token, last_id, room: room.first().copied() };
                    Ok(Request::Hello { nick: Some(nick), resume: Some(resume) })
                }
                Err(_) => usage,
            }
        }
        _ => usage,
    }
}

/// `text` if a reader would see something of it.
fn visible(text: &str) -> Result<&str, ParseError> {
    if has_visible(text) { Ok(text) } else { Err(ParseError::Invisible) }
}

/// Whether `/name` is one of [`OPERATOR_COMMANDS`].
fn is_operator_command(name: &str) -> bool {
    OPERATOR_COMMANDS.iter().any(|(usage, _)| usage.split_whitespace().next() == Some(name))
}

/// Something that happened, as sent to clients. Serialised as one JSON object per line
/// with a `type` tag and an RFC 3339 `ts` in whole seconds (see [`crate::timestamp`]);
/// see docs/protocol.md.
///
/// Conversation events (public, private, action, join, leave, nick) carry an `id`:
/// increasing and unique per server, also across restarts on the same `--save` log. It
/// is the first field, so the hub can add it to a line encoded before the id was known
/// ([`Event::json_line_with_id`]). Events sent again (replay on join, `/history`, a
/// resume) have `history` set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    #[serde(serialize_with = "crate::timestamp::serialize")]
    pub ts: jiff::Timestamp,
    #[serde(default, skip_serializing_if = "is_false")]
    pub history: bool,
    #[serde(flatten)]
    pub kind: EventKind,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The events of the structured protocol. Every variant carries what a client needs to
/// render it and to keep its nick list current without asking again. Every event that
/// happens in a room carries that room's name in `room`; the fields rooms added to older
/// events default when absent, so the client still reads a server without rooms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// First event after the hello: who you are and who is here.
    /// `users` lists everyone online, you included, unless the server has more than its
    /// announce limit online: then it is empty and `/list` fetches it. `room` is the
    /// room you start in; a [`EventKind::Room`] event follows with its members.
    ///
    /// `last_id` is the id of the latest conversation event at the time, the place to
    /// resume from if nothing arrives before the connection drops. `resume` is the
    /// token for resuming this session (structured mode only; secret, 32 hex digits).
    Welcome {
        server: String,
        version: String,
        nick: String,
        online: usize,
        users: Vec<String>,
        #[serde(default)]
        room: String,
        #[serde(default)]
        last_id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
    },
    /// After a welcome that answered a resume: `missed` events follow (marked
    /// `history`), then the live stream. `unavailable` ids after the client's last id
    /// are not sent (no longer kept by the server, or too many bytes to send at once),
    /// so up to that many events are lost to it.
    /// `resumed` is true when the session itself was resumed (its token was valid: same
    /// nick, nothing announced), false when only the events could be caught up (after a
    /// server restart, or once the grace period was over).
    Resumed {
        missed: usize,
        unavailable: u64,
        resumed: bool,
    },
    Public {
        from: String,
        text: String,
        #[serde(default)]
        room: String,
    },
    /// Sent to the target, and to the sender as confirmation (`from` is then the sender).
    /// Private messages cross rooms, so they carry none.
    Private {
        from: String,
        to: String,
        text: String,
    },
    Action {
        from: String,
        text: String,
        #[serde(default)]
        room: String,
    },
    /// Someone came into your room: connected to the server (`from_room` absent), or
    /// moved here with `/join` or `/part` (`from_room` is the room they left). `here`
    /// counts the room, `online` the server.
    Join {
        nick: String,
        online: usize,
        #[serde(default)]
        room: String,
        #[serde(default)]
        here: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_room: Option<String>,
    },
    /// Someone left the server from your room.
    Leave {
        nick: String,
        reason: String,
        online: usize,
        #[serde(default)]
        room: String,
        #[serde(default)]
        here: usize,
    },
    /// Someone left your room for room `to`, staying on the server.
    Part {
        nick: String,
        room: String,
        to: String,
        here: usize,
    },
    /// A nick change in your room, yours too.
    Nick {
        old: String,
        new: String,
        #[serde(default)]
        room: String,
    },
    /// Answer to `/list`: the people in `room`, sorted case-insensitively; `online`
    /// counts the server. `away` names those of `users` who are away (omitted when
    /// nobody is).
    Users {
        users: Vec<String>,
        #[serde(default)]
        room: String,
        #[serde(default)]
        online: usize,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        away: Vec<String>,
    },
    /// Answer to `/list all`: everyone online with their room, sorted by nick.
    AllUsers {
        users: Vec<UserRoom>,
    },
    /// Answer to `/rooms`, sorted by name.
    Rooms {
        rooms: Vec<RoomInfo>,
    },
    /// The room you are in now, with its topic (empty: none) and members, you
    /// included: after the welcome and after every `/join` and `/part` of yours.
    Room {
        room: String,
        topic: String,
        users: Vec<String>,
    },
    /// A room's topic (empty: none): set by `by`, or shown on `/topic` (`by` absent).
    Topic {
        room: String,
        topic: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// Answer to `/whois`. `room` is the room the user is in; `since` is when the user
    /// connected; `idle_secs` the seconds since their last message; `addr` (IP:port) is
    /// sent to operators only.
    Whois {
        nick: String,
        #[serde(default)]
        room: String,
        since: jiff::Timestamp,
        idle_secs: u64,
        away: Option<String>,
        oper: bool,
        tls: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        addr: Option<String>,
        /// The nick is registered (`/register`): only a connection that proves it may
        /// hold it.
        #[serde(default, skip_serializing_if = "is_false")]
        registered: bool,
        /// How the user's connection proved the registered nick: `key` or `password`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proven_by: Option<String>,
    },
    /// The automatic answer to a private message sent to a user who is away; sent once
    /// per sender and away spell.
    Away {
        nick: String,
        message: String,
    },
    /// The message of the day, on join and on `/motd`; `text` may hold several lines.
    Motd {
        text: String,
    },
    /// A notice to everyone from the server (`/say`); `from` is the server's name.
    Notice {
        from: String,
        text: String,
    },
    Help {
        commands: Vec<HelpEntry>,
    },
    Info {
        message: String,
    },
    /// `code` is stable for programs (`bad_nick`, `nick_taken`, `usage`, …); `message`
    /// is for people.
    Error {
        code: String,
        message: String,
    },
    Shutdown {
        reason: String,
    },
}

/// One entry of [`EventKind::AllUsers`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRoom {
    pub nick: String,
    pub room: String,
}

/// One entry of [`EventKind::Rooms`]: a room, how many are in it, its topic (empty: none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomInfo {
    pub room: String,
    pub here: usize,
    pub topic: String,
}

/// Error codes of the line the server sends just before it disconnects a client:
/// flooding beyond the kick bound, not reading (send queue full), and an operator's kick
/// or ban. A client must not come back by itself after one of them.
pub const KICK_CODES: &[&str] = &["flood", "too_slow", "kicked"];

impl EventKind {
    /// True for the events that tell a client the server is ending its session (a kick,
    /// a shutdown), as opposed to answering its `/quit`.
    pub fn ends_session(&self) -> bool {
        match self {
            EventKind::Shutdown { .. } => true,
            EventKind::Error { code, .. } => KICK_CODES.contains(&code.as_str()),
            _ => false,
        }
    }

    /// Something someone said (a line, an action, a private message, a topic), as
    /// opposed to a join, leave, move or rename: what replays and "messages" count.
    pub fn is_said(&self) -> bool {
        matches!(
            self,
            EventKind::Public { .. }
                | EventKind::Action { .. }
                | EventKind::Private { .. }
                | EventKind::Topic { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HelpEntry {
    pub usage: String,
    pub description: String,
}

impl Event {
    pub fn now(kind: EventKind) -> Event {
        Event { id: None, ts: jiff::Timestamp::now(), history: false, kind }
    }

    /// `line`, the [`Event::json_line`] of this event encoded without an id, with `id`
    /// added as its first field: the same bytes as encoding the event with the id set.
    pub fn json_line_with_id(line: &str, id: u64) -> String {
        let rest = line.strip_prefix('{').unwrap_or(line);
        let mut out = String::with_capacity(line.len() + 24);
        let _ = write!(out, "{{\"id\":{id},");
        out.push_str(rest);
        out
    }

    /// The structured encoding: one JSON object and `\n`.
    pub fn json_line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("events always serialise");
        line.push('\n');
        line
    }

    /// The human-readable encoding for `nc`/`telnet` users, one or more lines each
    /// ending in `\n`. `me` is the receiving user's nick: a private message reads
    /// differently for its sender and its target.
    pub fn text_line(&self, me: &str) -> String {
        // The server's local time: the only zone it knows of an nc user's.
        self.text_line_in(me, &jiff::tz::TimeZone::system(), jiff::Timestamp::now())
    }

    /// [`Event::text_line`] with its times in `tz` and dated against `now` (see
    /// [`crate::local_time`]): a replayed line from another day shows its date.
    pub fn text_line_in(&self, me: &str, tz: &jiff::tz::TimeZone, now: jiff::Timestamp) -> String {
        let mut s = String::new();
        if self.history {
            let today = crate::local_time::today(now, tz);
            let _ = write!(s, "[{}] ", crate::local_time::clock(self.ts, tz, today));
        }
        match &self.kind {
            said @ (EventKind::Public { .. }
            | EventKind::Private { .. }
            | EventKind::Action { .. }
            | EventKind::Leave { .. }
            | EventKind::Nick { .. }) => conversation_text(&mut s, said, me),
            answer @ (EventKind::Whois { .. }
            | EventKind::Away { .. }
            | EventKind::Motd { .. }
            | EventKind::Help { .. }) => answer_text(&mut s, answer, tz),
            session @ (EventKind::Welcome { .. }
            | EventKind::Resumed { .. }
            | EventKind::Notice { .. }
            | EventKind::Info { .. }
            | EventKind::Error { .. }
            | EventKind::Shutdown { .. }) => session_text(&mut s, session),
            room_event @ (EventKind::Join { .. }
            | EventKind::Part { .. }
            | EventKind::Users { .. }
            | EventKind::AllUsers { .. }
            | EventKind::Rooms { .. }
            | EventKind::Room { .. }
            | EventKind::Topic { .. }) => room_text(&mut s, room_event),
        }
        s.push('\n');
        s
    }
}

/// The text form of the conversation events but a join (which reads by room, see
/// [`room_text`]): what people say and do, leaves and renames. `me` tells a private
/// message's sender from its target.
fn conversation_text(s: &mut String, kind: &EventKind, me: &str) {
    match kind {
        EventKind::Public { from, text, .. } => {
            let _ = write!(s, "<{from}> {text}");
        }
        EventKind::Private { from, to, text } if from == me && to != me => {
            let _ = write!(s, "-> *{to}* {text}");
        }
        EventKind::Private { from, text, .. } => {
            let _ = write!(s, "*{from}* {text}");
        }
        EventKind::Action { from, text, .. } => {
            let _ = write!(s, "* {from} {text}");
        }
        EventKind::Leave { nick, reason, online, .. } => {
            let _ = write!(s, "*** {nick} left: {reason} ({online} online)");
        }
        EventKind::Nick { old, new, .. } => {
            let _ = write!(s, "*** {old} is now known as {new}");
        }
        // The rest are not conversation; `text_line` renders them.
        _ => {}
    }
}

/// The text form of the answers to a user's questions (`/whois`, `/motd`, `/help`) and
/// of the away reply to a private message.
fn answer_text(s: &mut String, kind: &EventKind, tz: &jiff::tz::TimeZone) {
    match kind {
        EventKind::Whois { .. } => whois_text(s, kind, tz),
        EventKind::Away { nick, message } => {
            let _ = write!(s, "*** {nick} is away: {}", or_none(message));
        }
        EventKind::Motd { text } => {
            let mut lines = text.lines().peekable();
            if lines.peek().is_none() {
                s.push_str("*** (no message of the day)");
            }
            for (i, line) in lines.enumerate() {
                let _ = write!(s, "{}*** MOTD: {line}", if i == 0 { "" } else { "\n" });
            }
        }
        EventKind::Help { commands } => {
            s.push_str("*** Commands:");
            let width = commands.iter().map(|c| c.usage.len()).max().unwrap_or(0);
            for c in commands {
                let _ = write!(s, "\n***   {:width$}  {}", c.usage, c.description);
            }
        }
        // The rest are no answers; `text_line` renders them.
        _ => {}
    }
}

/// The text form of a `/whois` answer: one line, then one more for each of away,
/// operator and (to operators) the address.
fn whois_text(s: &mut String, kind: &EventKind, tz: &jiff::tz::TimeZone) {
    let EventKind::Whois {
        nick,
        room,
        since,
        idle_secs,
        away,
        oper,
        tls,
        addr,
        registered,
        proven_by,
    } = kind
    else {
        return;
    };
    let transport = if *tls { "TLS" } else { "plain TCP" };
    let _ = write!(s, "*** {nick}: ");
    if !room.is_empty() {
        let _ = write!(s, "in {room}, ");
    }
    let _ = write!(
        s,
        "online since {}, idle {}, {transport}",
        crate::local_time::full(*since, tz),
        span(*idle_secs)
    );
    if let Some(message) = away {
        let _ = write!(s, "\n*** {nick} is away: {}", or_none(message));
    }
    if *oper {
        let _ = write!(s, "\n*** {nick} is an operator");
    }
    match (registered, proven_by) {
        (true, Some(how)) => {
            let _ = write!(s, "\n*** {nick} is registered and proved it by {how}");
        }
        (true, None) => {
            let _ = write!(s, "\n*** {nick} is registered");
        }
        (false, _) => {}
    }
    if let Some(addr) = addr {
        let _ = write!(s, "\n*** {nick} connects from {addr}");
    }
}

/// The text form of what the server says about the session itself: the welcome, a
/// resume, notices, errors and the shutdown.
fn session_text(s: &mut String, kind: &EventKind) {
    match kind {
        EventKind::Welcome { server, version, nick, online, room, .. } => {
            let _ = write!(
                s,
                "*** Welcome to {server} (tchat {version})! You are {nick}; {online} online; \
                 you are in {room}. Type /help for commands, /nick <name> to pick a name."
            );
        }
        EventKind::Resumed { missed, unavailable, .. } => {
            let _ = write!(s, "*** {missed} events while you were away");
            if *unavailable > 0 {
                let _ = write!(s, "; up to {unavailable} more are not available");
            }
        }
        EventKind::Notice { from, text } => {
            let _ = write!(s, "-{from}- {text}");
        }
        EventKind::Info { message } => {
            let _ = write!(s, "*** {message}");
        }
        EventKind::Error { message, .. } => {
            let _ = write!(s, "!!! {message}");
        }
        EventKind::Shutdown { reason } => {
            let _ = write!(s, "*** Server shutting down: {reason}");
        }
        // The rest are about other things; `text_line` renders them.
        _ => {}
    }
}

/// The text form of the events about rooms and who is in them. A server where nobody
/// uses rooms reads as before rooms existed: a join from outside is `joined (N online)`
/// and a list of the room that holds everyone is `N online: …`.
fn room_text(s: &mut String, kind: &EventKind) {
    match kind {
        EventKind::Join { nick, online, from_room: None, .. } => {
            let _ = write!(s, "*** {nick} joined ({online} online)");
        }
        EventKind::Join { nick, room, here, .. } => {
            let _ = write!(s, "*** {nick} joined {room} ({here} here)");
        }
        EventKind::Part { nick, room, to, here } => {
            let _ = write!(s, "*** {nick} left {room} for {to} ({here} here)");
        }
        EventKind::Users { users, online, away, .. } if users.len() == *online => {
            let _ = write!(s, "*** {online} online: {}", marked_away(users, away));
        }
        EventKind::Users { users, room, online, away } => {
            let (n, list) = (users.len(), marked_away(users, away));
            let _ = write!(s, "*** {n} in {room}, {online} online: {list}");
        }
        EventKind::AllUsers { users } => {
            let _ = write!(s, "*** {} online:", users.len());
            let mut by_room: Vec<&UserRoom> = users.iter().collect();
            by_room.sort_by(|a, b| a.room.cmp(&b.room));
            for (i, chunk) in by_room.chunk_by(|a, b| a.room == b.room).enumerate() {
                let nicks: Vec<&str> = chunk.iter().map(|u| u.nick.as_str()).collect();
                let sep = if i == 0 { "" } else { ";" };
                let _ = write!(s, "{sep} {}: {}", chunk[0].room, nicks.join(", "));
            }
        }
        EventKind::Rooms { rooms } => {
            let _ =
                write!(s, "*** {} room{}:", rooms.len(), if rooms.len() == 1 { "" } else { "s" });
            let width = rooms.iter().map(|r| r.room.chars().count()).max().unwrap_or(0);
            for r in rooms {
                let _ = write!(s, "\n***   {:width$}  {:>4} here  {}", r.room, r.here, r.topic);
                s.truncate(s.trim_end().len());
            }
        }
        EventKind::Room { room, topic, users } => {
            let _ = write!(s, "*** You are in {room} ({} here): {}", users.len(), users.join(", "));
            if !topic.is_empty() {
                let _ = write!(s, "\n*** Topic of {room}: {topic}");
            }
        }
        EventKind::Topic { room, topic, by: Some(by) } => {
            let _ = write!(s, "*** {by} set the topic of {room}: {topic}");
        }
        EventKind::Topic { room, topic, by: None } if topic.is_empty() => {
            let _ = write!(s, "*** {room} has no topic; set one with /topic <text>");
        }
        EventKind::Topic { room, topic, by: None } => {
            let _ = write!(s, "*** Topic of {room}: {topic}");
        }
        // The rest are not about rooms; `text_line` renders them.
        _ => {}
    }
}

/// `secs` as people read a duration: `45s`, `12m 5s`, `3h 2m`, `2d 4h`.
pub fn span(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// `users` joined by commas, each of those in `away` followed by ` (away)`.
fn marked_away(users: &[String], away: &[String]) -> String {
    let marked =
        users.iter().map(|u| if away.contains(u) { format!("{u} (away)") } else { u.clone() });
    marked.collect::<Vec<_>>().join(", ")
}

fn or_none(message: &str) -> &str {
    if message.is_empty() { "(no message)" } else { message }
}

/// The `/help` answer; an operator's also lists [`OPERATOR_COMMANDS`].
/// `history_default`: how many lines `/history` without a count sends (the server's
/// `--replay`, at least 1), which its line names.
pub fn help_entries_for(oper: bool, history_default: usize) -> Vec<HelpEntry> {
    let mut entries = help_entries();
    // The default is the server's `--replay` count: the answer says the number itself.
    if let Some(history) = entries.iter_mut().find(|e| e.usage.starts_with("/history")) {
        history.description = format!(
            "show the last n lines of your room again (default {history_default}, at most 200)"
        );
    }
    if oper {
        entries.extend(OPERATOR_COMMANDS.iter().map(|(usage, description)| HelpEntry {
            usage: (*usage).to_owned(),
            description: format!("(operator) {description}"),
        }));
    }
    entries
}

/// The `/help` answer.
pub fn help_entries() -> Vec<HelpEntry> {
    COMMANDS
        .iter()
        .map(|(usage, description)| HelpEntry {
            usage: (*usage).to_owned(),
            description: (*description).to_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Request<'_>, ParseError> {
        Request::parse(line)
    }

    #[test]
    fn aliases_parse_as_their_commands_and_are_listed_in_help() {
        assert_eq!(p("/WHO"), Ok(Request::List { all: false }));
        assert_eq!(p("/names"), Ok(Request::List { all: false }));
        assert_eq!(p("/query bob hi"), Ok(Request::Msg { to: "bob", text: "hi" }));
        assert_eq!(p("/Tell bob hi"), Ok(Request::Msg { to: "bob", text: "hi" }));
        assert_eq!(p("/exit"), Ok(Request::Quit(None)));
        assert_eq!(p("/bye now"), Ok(Request::Quit(Some("now"))));
        assert_eq!(p("/?"), Ok(Request::Help));
        assert_eq!(p("/who me"), Err(ParseError::Usage("/list [all]")));
        for (alias, command) in ALIASES {
            let (_, description) = COMMANDS
                .iter()
                .find(|(usage, _)| usage.split_whitespace().next() == Some(command))
                .unwrap_or_else(|| panic!("{alias} stands for {command}, not a command"));
            assert!(description.contains(alias), "/help does not mention {alias}");
        }
    }

    #[test]
    fn plain_lines_are_public() {
        assert_eq!(p("hello everyone"), Ok(Request::Public("hello everyone")));
        assert_eq!(p("  indented  "), Ok(Request::Public("  indented")));
        assert_eq!(p("a/b"), Ok(Request::Public("a/b")));
    }

    #[test]
    fn blank_lines_are_empty() {
        assert_eq!(p(""), Ok(Request::Empty));
        assert_eq!(p("   \t "), Ok(Request::Empty));
    }

    #[test]
    fn text_with_nothing_visible_is_refused() {
        for blank in ["\u{200b}", "\u{3164}", "\u{feff}", "\u{2800}", " \u{200b}\u{3164} \u{2060}"]
        {
            assert_eq!(p(blank), Err(ParseError::Invisible), "{blank:?}");
            assert_eq!(p(&format!("/me {blank}")), Err(ParseError::Invisible), "{blank:?}");
            assert_eq!(p(&format!("/msg bob {blank}")), Err(ParseError::Invisible), "{blank:?}");
            assert_eq!(p(&format!("/quit {blank}")), Ok(Request::Quit(None)), "{blank:?}");
            assert_eq!(p(&format!("/topic {blank}")), Err(ParseError::Invisible), "{blank:?}");
        }
        assert_eq!(p("/topic"), Ok(Request::Topic(None)));
        assert_eq!(p("/topic  a\u{200b}b"), Ok(Request::Topic(Some("a\u{200b}b"))));
        assert_eq!(ParseError::Invisible.code(), "empty");
        assert!(ParseError::Invisible.to_string().contains("nothing visible"));
        // Invisible characters next to visible text are the sender's business.
        assert_eq!(p("a\u{200b}b"), Ok(Request::Public("a\u{200b}b")));
    }

    #[test]
    fn double_slash_sends_a_literal_slash() {
        assert_eq!(p("//shrug"), Ok(Request::Public("/shrug")));
        assert_eq!(p("///"), Ok(Request::Public("//")));
    }

    #[test]
    fn commands_parse_with_their_arguments() {
        assert_eq!(p("/nick alice"), Ok(Request::Nick("alice")));
        assert_eq!(p("/NICK  alice "), Ok(Request::Nick("alice")));
        assert_eq!(p("/nick two words"), Ok(Request::Nick("two words")));
        assert_eq!(p("/list"), Ok(Request::List { all: false }));
        assert_eq!(p("/msg bob hi there"), Ok(Request::Msg { to: "bob", text: "hi there" }));
        assert_eq!(p("/msg bob   spaced"), Ok(Request::Msg { to: "bob", text: "spaced" }));
        assert_eq!(p("/me waves"), Ok(Request::Me("waves")));
        assert_eq!(p("/quit"), Ok(Request::Quit(None)));
        assert_eq!(p("/quit gone fishing"), Ok(Request::Quit(Some("gone fishing"))));
        assert_eq!(p("/help"), Ok(Request::Help));
        assert_eq!(p("/hello json"), Ok(Request::Hello { nick: None, resume: None }));
        assert_eq!(p("/hello json bob"), Ok(Request::Hello { nick: Some("bob"), resume: None }));
        assert_eq!(
            p("/hello json bob resume 00ff 42"),
            Ok(Request::Hello {
                nick: Some("bob"),
                resume: Some(Resume { token: "00ff", last_id: 42, room: None })
            })
        );
        assert_eq!(
            p("/hello json bob resume 00ff 42 #dev"),
            Ok(Request::Hello {
                nick: Some("bob"),
                resume: Some(Resume { token: "00ff", last_id: 42, room: Some("#dev") })
            })
        );
        assert_eq!(p("/history"), Ok(Request::History(None)));
        assert_eq!(p("/history 50"), Ok(Request::History(Some(50))));
    }

    #[test]
    fn an_id_goes_first_in_a_line_encoded_without_it() {
        let mut event = Event::now(EventKind::Public {
            from: "a".into(),
            text: "b".into(),
            room: String::new(),
        });
        let without = event.json_line();
        event.id = Some(7);
        assert_eq!(Event::json_line_with_id(&without, 7), event.json_line());
        assert!(event.json_line().starts_with("{\"id\":7,\"ts\":"), "{}", event.json_line());
        event.history = true;
        assert!(event.json_line().contains("\"history\":true"));
        let back: Event = serde_json::from_str(&event.json_line()).unwrap();
        assert_eq!((back.id, back.history, back.kind), (event.id, event.history, event.kind));
    }

    #[test]
    fn everyday_and_operator_commands_parse() {
        assert_eq!(p("/r thanks"), Ok(Request::Reply("thanks")));
        assert_eq!(p("/reply"), Err(ParseError::Usage("/reply <text>")));
        assert_eq!(p("/away"), Ok(Request::Away("")));
        assert_eq!(p("/away at lunch"), Ok(Request::Away("at lunch")));
        assert_eq!(p("/back"), Ok(Request::Back));
        assert_eq!(p("/whois bob"), Ok(Request::Whois("bob")));
        assert_eq!(p("/whois a b"), Err(ParseError::Usage("/whois <user>")));
        assert_eq!(p("/motd"), Ok(Request::Motd(None)));
        assert_eq!(p("/motd be nice"), Ok(Request::Motd(Some("be nice"))));
        assert_eq!(p("/oper pw"), Ok(Request::Oper(Secret("pw"))));
        assert_eq!(format!("{:?}", p("/oper hunter2")), "Ok(Oper(Secret(…)))");
        assert_eq!(p("/KICK bob spam"), Ok(Request::Operator("/KICK bob spam")));
        assert_eq!(p("/shutdown"), Err(ParseError::Unknown("/shutdown".into())));
    }

    #[test]
    fn new_events_read_naturally_as_text() {
        let t = |k: EventKind| Event::now(k).text_line("me");
        let users = |online| EventKind::Users {
            users: vec!["a".into(), "b".into()],
            room: "#lobby".into(),
            online,
            away: vec!["b".into()],
        };
        assert_eq!(t(users(2)), "*** 2 online: a, b (away)\n");
        assert_eq!(t(users(5)), "*** 2 in #lobby, 5 online: a, b (away)\n");
        assert_eq!(
            t(EventKind::Motd { text: "one\ntwo".into() }),
            "*** MOTD: one\n*** MOTD: two\n"
        );
        assert_eq!(
            t(EventKind::Away { nick: "b".into(), message: String::new() }),
            "*** b is away: (no message)\n"
        );
        assert_eq!(span(59), "59s");
        assert_eq!(span(3725), "1h 2m");
        assert_eq!(span(90_000), "1d 1h");
    }

    #[test]
    fn wrong_arguments_give_the_usage() {
        assert_eq!(p("/nick"), Err(ParseError::Usage("/nick <name>")));
        assert_eq!(p("/msg"), Err(ParseError::Usage("/msg <user> <text>")));
        assert_eq!(p("/msg bob"), Err(ParseError::Usage("/msg <user> <text>")));
        assert_eq!(p("/msg bob   "), Err(ParseError::Usage("/msg <user> <text>")));
        assert_eq!(p("/me"), Err(ParseError::Usage("/me <action>")));
        assert_eq!(p("/list x"), Err(ParseError::Usage("/list [all]")));
        assert_eq!(p("/hello xml"), Err(ParseError::Usage(HELLO_USAGE)));
        assert_eq!(p("/hello json bob resume t notanumber"), Err(ParseError::Usage(HELLO_USAGE)));
        assert_eq!(p("/history 0"), Err(ParseError::Usage(HISTORY_USAGE)));
        assert_eq!(p("/history x"), Err(ParseError::Usage(HISTORY_USAGE)));
        assert_eq!(p("/history -5"), Err(ParseError::Usage(HISTORY_USAGE)));
        assert_eq!(p("/history 500"), Ok(Request::History(Some(500))));
        assert_eq!(p("/history 99999999999999999999999"), Ok(Request::History(Some(usize::MAX))));
        assert_eq!(p("/history 0").unwrap_err().to_string(), "usage: /history [n] (n is 1 to 200)");
        assert_eq!(p("/msg").unwrap_err().to_string(), "usage: /msg <user> <text>");
    }

    #[test]
    fn unknown_commands_are_errors_not_messages() {
        let err = p("/frobnicate now").unwrap_err();
        assert_eq!(err, ParseError::Unknown("/frobnicate".into()));
        assert!(err.to_string().contains("/help"));
        assert_eq!(p("/").unwrap_err(), ParseError::Unknown("/".into()));
    }

    #[test]
    fn events_round_trip_through_json() {
        let ev = Event::now(EventKind::Private {
            from: "a".into(),
            to: "b".into(),
            text: "hi \"there\"".into(),
        });
        let line = ev.json_line();
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["type"], "private");
        assert_eq!(v["from"], "a");
        // Whole seconds, as in the --save log: `2026-11-25T19:13:51Z`.
        let ts = v["ts"].as_str().unwrap();
        assert!(ts.len() == 20 && ts.ends_with('Z') && !ts.contains('.'), "{ts}");
        let ev = Event { ts: crate::timestamp::whole_second(ev.ts), ..ev };
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), ev);
        // A client still reads a server that sends fractions.
        let older = r#"{"ts":"2026-11-25T19:13:51.44Z","type":"info","message":"m"}"#;
        assert!(serde_json::from_str::<Event>(older).is_ok());
    }

    #[test]
    fn text_lines_read_naturally() {
        let t = |k: EventKind, me: &str| Event::now(k).text_line(me);
        assert_eq!(
            t(
                EventKind::Public { from: "a".into(), text: "hi".into(), room: "#lobby".into() },
                "b"
            ),
            "<a> hi\n"
        );
        let pm = EventKind::Private { from: "a".into(), to: "b".into(), text: "psst".into() };
        assert_eq!(t(pm.clone(), "b"), "*a* psst\n");
        assert_eq!(t(pm, "a"), "-> *b* psst\n");
        assert_eq!(
            t(
                EventKind::Action { from: "a".into(), text: "waves".into(), room: "#lobby".into() },
                "b"
            ),
            "* a waves\n"
        );
        let help = t(EventKind::Help { commands: help_entries() }, "a");
        for (usage, _) in COMMANDS {
            assert!(help.contains(usage), "{help}");
        }
    }
}
