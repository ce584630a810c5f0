//! What a client may send: one line parsed into a [`Request`], or the [`ParseError`]
//! the user is shown.

use super::commands::{OPERATOR_COMMANDS, canonical};
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
    /// `/hello json [NICK [resume TOKEN LAST_ID [ROOM]]] [replay=N]`; valid only as the
    /// first line. `replay`: at most N lines replayed on joining and on each `/join`
    /// (0: none, for scripts and bots); `None`: the server's `--replay`.
    Hello {
        nick: Option<&'a str>,
        resume: Option<Resume<'a>>,
        replay: Option<usize>,
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
    /// `/search TEXT`: the room's kept lines that contain TEXT, in any case.
    Search(&'a str),
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
    // Over 60 lines: the command table, one arm per command and usage.
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
            "/search" if args.is_empty() => usage("/search <text>"),
            "/search" => visible(args).map(Request::Search),
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

const HELLO_USAGE: &str = "/hello json [nick [resume token last_id [room]]] [replay=n]";

/// The hello option that limits the replay on joining a room: `replay=N`.
pub const HELLO_REPLAY: &str = "replay";

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

/// `/hello`'s arguments: the mode, then optionally the nick, then optionally a resume,
/// then the options ([`hello_options`]).
fn hello(args: &str) -> Result<Request<'_>, ParseError> {
    let usage = Err(ParseError::Usage(HELLO_USAGE));
    let words: Vec<&str> = args.split_whitespace().collect();
    // Options are `NAME=VALUE` words at the end: no nick, token, id or room has a `=`.
    let (words, options) =
        words.split_at(words.iter().position(|w| w.contains('=')).unwrap_or(words.len()));
    let Some(replay) = hello_options(options) else { return usage };
    match words {
        [HELLO_MODE_JSON] => Ok(Request::Hello { nick: None, resume: None, replay }),
        [HELLO_MODE_JSON, nick] => Ok(Request::Hello { nick: Some(nick), resume: None, replay }),
        [HELLO_MODE_JSON, nick, HELLO_RESUME, token, last_id, room @ ..] if room.len() <= 1 => {
            match last_id.parse() {
                Ok(last_id) => {
                    let resume = Resume { token, last_id, room: room.first().copied() };
                    Ok(Request::Hello { nick: Some(nick), resume: Some(resume), replay })
                }
                Err(_) => usage,
            }
        }
        _ => usage,
    }
}

/// The option a hello may end with: `replay=N` (N lines at most replayed on joining a
/// room). Returns it (`None` when not given), or `None` outright for an unknown option,
/// one given twice, or a count that is not a number.
fn hello_options(options: &[&str]) -> Option<Option<usize>> {
    let mut replay = None;
    for option in options {
        match option.split_once('=') {
            Some((HELLO_REPLAY, n)) if replay.is_none() => replay = Some(n.parse().ok()?),
            _ => return None,
        }
    }
    Some(replay)
}

/// `text` if a reader would see something of it.
fn visible(text: &str) -> Result<&str, ParseError> {
    if has_visible(text) { Ok(text) } else { Err(ParseError::Invisible) }
}

/// Whether `/name` is one of [`OPERATOR_COMMANDS`].
fn is_operator_command(name: &str) -> bool {
    OPERATOR_COMMANDS.iter().any(|(usage, _)| usage.split_whitespace().next() == Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::commands::{ALIASES, COMMANDS};

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
        let hello = |nick, replay| Ok(Request::Hello { nick, resume: None, replay });
        assert_eq!(p("/hello json"), hello(None, None));
        assert_eq!(p("/hello json bob"), hello(Some("bob"), None));
        assert_eq!(p("/hello json replay=0"), hello(None, Some(0)));
        assert_eq!(p("/hello json bob replay=5"), hello(Some("bob"), Some(5)));
        assert_eq!(
            p("/hello json bob resume 00ff 42"),
            Ok(Request::Hello {
                nick: Some("bob"),
                resume: Some(Resume { token: "00ff", last_id: 42, room: None }),
                replay: None,
            })
        );
        assert_eq!(
            p("/hello json bob resume 00ff 42 #dev replay=0"),
            Ok(Request::Hello {
                nick: Some("bob"),
                resume: Some(Resume { token: "00ff", last_id: 42, room: Some("#dev") }),
                replay: Some(0),
            })
        );
        assert_eq!(p("/history"), Ok(Request::History(None)));
        assert_eq!(p("/search Vault code"), Ok(Request::Search("Vault code")));
        assert_eq!(p("/search"), Err(ParseError::Usage("/search <text>")));
        assert_eq!(p("/history 50"), Ok(Request::History(Some(50))));
    }

    #[test]
    fn profile_and_operator_commands_parse() {
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

    /// A password is everything after the command (or the nick), inner spaces kept, the
    /// spaces around it dropped by all three commands alike; no `Debug` shows it.
    #[test]
    fn account_commands_parse_and_hide_their_passwords() {
        assert_eq!(p("/register"), Ok(Request::Register(None)));
        assert_eq!(
            p("/REGISTER  open sesame  "),
            Ok(Request::Register(Some(Secret("open sesame"))))
        );
        let identify = |nick, password| Ok(Request::Identify { nick, password: Secret(password) });
        assert_eq!(p("/identify alice open  sesame"), identify("alice", "open  sesame"));
        assert_eq!(p("/Identify  alice   open sesame "), identify("alice", "open sesame"));
        assert_eq!(p("/identify alice"), Err(ParseError::Usage("/identify <nick> <password>")));
        assert_eq!(p("/identify alice   "), Err(ParseError::Usage("/identify <nick> <password>")));
        assert_eq!(p("/unregister"), Ok(Request::Unregister));
        assert_eq!(p("/unregister alice"), Err(ParseError::Usage("/unregister")));
        assert_eq!(p("/keys"), Ok(Request::Keys));
        assert_eq!(p("/keys remove SHA256:abc"), Ok(Request::KeysRemove("SHA256:abc")));
        assert_eq!(
            p("/keys drop SHA256:abc"),
            Err(ParseError::Usage("/keys [remove <fingerprint>]"))
        );
        assert_eq!(p("/password  new one "), Ok(Request::Password(Secret("new one"))));
        assert_eq!(p("/password"), Err(ParseError::Usage("/password <new password>")));
        for line in ["/register hunter2", "/identify alice hunter2", "/password hunter2"] {
            let shown = format!("{:?}", p(line));
            assert!(!shown.contains("hunter2"), "{shown}");
        }
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
        for bad in ["replay=x", "replay=", "replay=1 replay=2", "colour=red", "replay=0 bob"] {
            let line = format!("/hello json {bad}");
            assert_eq!(p(&line), Err(ParseError::Usage(HELLO_USAGE)), "{line}");
        }
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
}
